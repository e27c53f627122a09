// The one translation unit that compiles Asio, its SSL support and Beast; everything else
// includes their headers with *_SEPARATE_COMPILATION and links this.
#include <utility>

#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
