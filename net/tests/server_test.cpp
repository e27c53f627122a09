// Tests of net::HttpsServer's connection deadlines: a handshake, a request or an answer that
// takes too long is cut off, while a stream (a watch) may sit idle between chunks for as long
// as it likes. The client side is Beast's, over real TLS.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <utility>  // before Asio: Boost 1.74 needs std::exchange declared

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "net/https_server.h"
#include "net/pki.h"

using namespace berth::net;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// "a", then nothing for `pause`, then "b" and the end.
class PausingSource final : public StreamSource {
 public:
  explicit PausingSource(std::chrono::milliseconds pause) : pause_(pause) {}
  void start(std::function<void()> wake) override {
    // The waking thread shares the flag, not the source, which may be gone before it wakes.
    std::thread([later = later_, pause = pause_, wake] {
      std::this_thread::sleep_for(pause);
      later->store(true);
      wake();
    }).detach();
  }
  State poll(std::string& out) override {
    if (!first_sent_) {
      first_sent_ = true;
      out += "a";
      return State::Wait;
    }
    if (!later_->load()) return State::Wait;
    out += "b";
    return State::Done;
  }
  void stop() override {}

 private:
  std::chrono::milliseconds pause_;
  std::shared_ptr<std::atomic<bool>> later_ = std::make_shared<std::atomic<bool>>(false);
  bool first_sent_ = false;  // poll is called from one coroutine at a time
};

struct Fixture {
  CertKey ca, leaf;
  std::unique_ptr<HttpsServer> server;

  Fixture() {
    ca = *create_ca("server-test-ca", 1);
    leaf = *issue_cert(ca, "localhost", {}, {"127.0.0.1"}, true, false, 1);
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.cert_pem = leaf.cert_pem;
    o.key_pem = leaf.key_pem;
    o.io_threads = 2;
    o.worker_threads = 2;
    o.handlers_in_fibers = true;
    o.handshake_timeout = std::chrono::seconds(1);
    o.request_timeout = std::chrono::seconds(1);
    o.idle_timeout = std::chrono::seconds(1);
    auto s = HttpsServer::start(o, [](Request& req) {
      if (req.path == "/stream") {
        Response r;
        r.status = 200;
        r.stream = std::make_shared<PausingSource>(std::chrono::milliseconds(2500));
        return r;
      }
      if (req.path == "/big") return Response::text(200, std::string(64 << 20, 'x'));
      return Response::text(200, "hello");
    });
    REQUIRE(s);
    server = std::move(*s);
  }
  ~Fixture() { server->stop(); }

  tcp::endpoint endpoint() const {
    return {asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(server->port())};
  }
};

struct Client {
  asio::io_context ioc;
  ssl::context ctx{ssl::context::tls_client};
  beast::ssl_stream<tcp::socket> stream{ioc, ctx};

  explicit Client(const Fixture& f) {
    ctx.add_certificate_authority(asio::buffer(f.ca.cert_pem));
    ctx.set_verify_mode(ssl::verify_peer);
    stream.next_layer().connect(f.endpoint());
    stream.handshake(ssl::stream_base::client);
  }
  void send(const std::string& target) {
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    http::write(stream, req);
  }
};

// Waits for the server to close the connection: true when it did within `limit`.
template <class Stream>
bool closed_by_server(Stream& s, std::chrono::seconds limit) {
  const auto start = Clock::now();
  char byte;
  boost::system::error_code ec;
  while (Clock::now() - start < limit) {
    s.read_some(asio::buffer(&byte, 1), ec);
    if (ec) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a stream may sit idle between chunks longer than the request timeout") {
  Fixture f;
  Client c(f);
  c.send("/stream");
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  boost::system::error_code ec;
  http::read(c.stream, buffer, res, ec);  // the whole chunked body: "a", 2.5 s, "b"
  CHECK_MESSAGE(!ec, ec.message());
  CHECK(res.body() == "ab");
  // And the connection is still good for another request.
  c.send("/plain");
  http::response<http::string_body> again;
  http::read(c.stream, buffer, again, ec);
  CHECK_MESSAGE(!ec, ec.message());
  CHECK(again.body() == "hello");
}

TEST_CASE("a connection that never starts its TLS handshake is closed") {
  Fixture f;
  asio::io_context ioc;
  tcp::socket s(ioc);
  s.connect(f.endpoint());
  CHECK(closed_by_server(s, std::chrono::seconds(10)));
}

TEST_CASE("an idle keep-alive connection and a request that never ends are closed") {
  Fixture f;
  Client idle(f);
  idle.send("/plain");
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(idle.stream, buffer, res);
  CHECK(res.body() == "hello");
  CHECK(closed_by_server(idle.stream, std::chrono::seconds(10)));

  Client trickle(f);
  asio::write(trickle.stream, asio::buffer(std::string("GET /plain HTTP/1.1\r\nHost: x\r\n")));
  CHECK(closed_by_server(trickle.stream, std::chrono::seconds(10)));
}

TEST_CASE("an answer the client does not read is cut off, and the server goes on serving") {
  Fixture f;
  Client slow(f);
  slow.send("/big");
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // past the write's deadline
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(128 << 20);
  boost::system::error_code ec;
  http::read(slow.stream, buffer, parser, ec);
  CHECK(ec);  // 64 MiB never fit in the socket buffers: the answer was cut off
  Client next(f);
  next.send("/plain");
  http::response<http::string_body> res;
  beast::flat_buffer b2;
  http::read(next.stream, b2, res);
  CHECK(res.body() == "hello");
}
