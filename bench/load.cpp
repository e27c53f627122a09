#include <utility>  // before Asio: Boost 1.74 coroutines need std::exchange declared

#include "bench/load.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>

namespace berth::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;
using asio::redirect_error;
// Concrete executor types throughout: no type-erased executor to copy and query per operation.
using Executor = asio::io_context::executor_type;
constexpr asio::use_awaitable_t<Executor> use_awaitable;
template <class T>
using Task = asio::awaitable<T, Executor>;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>, Executor>;
using Stream = beast::ssl_stream<Socket>;

// A connection that has seen no answer for this long is cut off (the run then ends with an
// error rather than hanging on a server that stopped answering).
constexpr std::chrono::seconds kStall{30};

struct Shared {
  const LoadOptions& options;
  const NextRequest& next;
  int expected = 0;
  tcp::endpoint endpoint;
  std::string host, host_header;
  std::mutex mu;
  std::size_t errors = 0;
  std::string first_error;

  void error(const std::string& what) {
    std::lock_guard lock(mu);
    if (errors++ == 0) first_error = what;
  }
};

struct Conn {
  Conn(asio::io_context& ioc, ssl::context& ctx) : stream(Socket(ioc.get_executor()), ctx) {}
  Stream stream;
  beast::flat_buffer buffer;
  std::vector<double> latencies;
  Clock::time_point last_answer = Clock::now();
  bool open = false;
  bool done = false;
};

// One event loop's connections; touched only by its thread.
struct Loop {
  asio::io_context ioc{1};
  std::vector<std::unique_ptr<Conn>> conns;
};

Task<void> open(Conn& c, Shared& s) {
  error_code ec;
  co_await c.stream.next_layer().async_connect(s.endpoint, redirect_error(use_awaitable, ec));
  if (ec) {
    s.error("connecting to " + s.host_header + ": " + ec.message());
    co_return;
  }
  c.stream.next_layer().set_option(tcp::no_delay(true), ec);
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c.stream.native_handle()), s.host.c_str());
  co_await c.stream.async_handshake(ssl::stream_base::client, redirect_error(use_awaitable, ec));
  if (ec) {
    s.error("TLS handshake with " + s.host_header + ": " + ec.message());
    co_return;
  }
  c.open = true;
}

Task<void> drive(Conn& c, Shared& s) {
  std::string method, path, body;
  const auto& config = s.options.config;
  for (;;) {
    method.clear();
    path.clear();
    body.clear();
    if (!s.next(method, path, body)) break;
    http::request<http::string_body> req{http::string_to_verb(method), path, 11};
    req.set(http::field::host, s.host_header);
    req.set(http::field::user_agent, config.user_agent);
    req.set(http::field::accept, "application/json");
    if (!config.token.empty()) req.set(http::field::authorization, "Bearer " + config.token);
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
    req.keep_alive(true);
    req.prepare_payload();
    const auto t0 = Clock::now();
    error_code ec;
    co_await http::async_write(c.stream, req, redirect_error(use_awaitable, ec));
    if (ec) {
      s.error(method + " " + path + ": sending: " + ec.message());
      break;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    co_await http::async_read(c.stream, c.buffer, parser, redirect_error(use_awaitable, ec));
    if (ec) {
      s.error(method + " " + path + ": receiving: " + ec.message());
      break;
    }
    c.last_answer = Clock::now();
    const auto& res = parser.get();
    if (res.result_int() == static_cast<unsigned>(s.expected)) {
      c.latencies.push_back(std::chrono::duration<double, std::milli>(c.last_answer - t0).count());
    } else {
      s.error(method + " " + path + ": " + std::to_string(res.result_int()) + " " + res.body().substr(0, 300));
    }
    if (!res.keep_alive()) {
      s.error(method + " " + path + ": the server closed the connection");
      break;
    }
  }
  c.done = true;
}

// Cuts off a connection that waits longer than kStall for an answer, until all are done.
Task<void> watchdog(Loop& loop) {
  Timer timer(loop.ioc.get_executor());
  for (;;) {
    bool active = false;
    for (auto& c : loop.conns) {
      if (c->done) continue;
      active = true;
      if (Clock::now() - c->last_answer > kStall) {
        error_code ec;
        c->stream.next_layer().close(ec);
      }
    }
    if (!active) co_return;
    timer.expires_after(std::chrono::milliseconds(200));
    error_code ec;
    co_await timer.async_wait(redirect_error(use_awaitable, ec));
  }
}

void run_all(std::vector<std::unique_ptr<Loop>>& loops) {
  std::vector<std::thread> threads;
  for (auto& l : loops) threads.emplace_back([&l] { l->ioc.run(); });
  for (auto& t : threads) t.join();
}

}  // namespace

LoadResult run_load(const LoadOptions& options, const NextRequest& next, int expected_status,
                    const std::function<void()>& started) {
  LoadResult result;
  auto fail = [&](const std::string& what) {
    result.errors = 1;
    result.first_error = what;
    return result;
  };
  Shared shared{options, next, expected_status, {}, {}, {}, {}, 0, {}};
  // https://<IP>:<port>: the benchmarks start their server on an address, never a name.
  const std::string& url = options.config.server;
  const auto colon = url.rfind(':');
  if (url.rfind("https://", 0) != 0 || colon == std::string::npos || colon < 8)
    return fail("server URL must be https://<IP>:<port>, got \"" + url + "\"");
  shared.host = url.substr(8, colon - 8);
  if (shared.host.size() > 2 && shared.host.front() == '[') shared.host = shared.host.substr(1, shared.host.size() - 2);
  error_code ec;
  const auto address = asio::ip::make_address(shared.host, ec);
  if (ec) return fail("server URL must name an IP address, got \"" + url + "\"");
  shared.endpoint = tcp::endpoint(address, static_cast<unsigned short>(std::stoi(url.substr(colon + 1))));
  shared.host_header = url.substr(8);

  ssl::context ctx(ssl::context::tls_client);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  ctx.add_certificate_authority(asio::buffer(options.config.ca_pem), ec);
  if (ec) return fail("loading the CA certificate: " + ec.message());
  ctx.set_verify_mode(ssl::verify_peer);
  if (!options.config.cert_pem.empty()) {
    ctx.use_certificate_chain(asio::buffer(options.config.cert_pem), ec);
    if (!ec) ctx.use_private_key(asio::buffer(options.config.key_pem), ssl::context::pem, ec);
    if (ec) return fail("loading the client certificate: " + ec.message());
  }

  std::vector<std::unique_ptr<Loop>> loops;
  for (int t = 0; t < std::max(1, options.threads); ++t) loops.push_back(std::make_unique<Loop>());
  for (int i = 0; i < options.connections; ++i) {
    Loop& loop = *loops[static_cast<std::size_t>(i) % loops.size()];
    loop.conns.push_back(std::make_unique<Conn>(loop.ioc, ctx));
    asio::co_spawn(loop.ioc.get_executor(), open(*loop.conns.back(), shared), asio::detached);
  }
  run_all(loops);
  if (shared.errors) return fail(shared.first_error);

  started();
  const auto start = Clock::now();
  for (auto& loop : loops) {
    loop->ioc.restart();
    for (auto& c : loop->conns) {
      c->last_answer = start;
      asio::co_spawn(loop->ioc.get_executor(), drive(*c, shared), asio::detached);
    }
    asio::co_spawn(loop->ioc.get_executor(), watchdog(*loop), asio::detached);
  }
  run_all(loops);
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto& loop : loops)
    for (auto& c : loop->conns) result.latencies_ms.insert(result.latencies_ms.end(), c->latencies.begin(), c->latencies.end());
  result.errors = shared.errors;
  result.first_error = shared.first_error;
  return result;
}

}  // namespace berth::bench
