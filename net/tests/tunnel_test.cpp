// Tests for upgraded connections in net::HttpsServer: WebSocket sessions (handshake, subprotocol,
// binary messages both ways, wake-ups from another thread, close handshakes from either side)
// and raw tunnels after a relayed 101. The client side is Beast's, over real TLS.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <utility>  // before Asio: Boost 1.74 needs std::exchange declared

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "net/https_server.h"
#include "net/pki.h"

using namespace berth::net;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

// Echoes each message back with "echo:" in front; "later" is answered from another thread a
// little later (through wake); "end" ends the tunnel with a last message.
class EchoTunnel final : public Tunnel {
 public:
  void start(std::function<void()> wake) override {
    std::lock_guard lock(mu);
    wake_ = std::move(wake);
    started = true;
  }
  void receive(std::string data) override {
    if (data == "later") {
      std::thread([this] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        std::function<void()> w;
        {
          std::lock_guard lock(mu);
          out_.push_back("from another thread");
          w = wake_;
        }
        w();
      }).detach();
      return;
    }
    std::lock_guard lock(mu);
    if (data == "end") {
      out_.push_back("bye");
      done_ = true;
      return;
    }
    out_.push_back(prefix + data);
  }
  State poll(std::vector<std::string>& out) override {
    std::lock_guard lock(mu);
    for (auto& m : out_) out.push_back(std::move(m));
    out_.clear();
    return done_ ? State::Done : State::Wait;
  }
  void client_closed() override {
    std::lock_guard lock(mu);
    closed_by_client = true;
    done_ = true;
  }
  void stop() override { stopped = true; }

  std::string prefix = "echo:";
  std::mutex mu;
  bool started = false, closed_by_client = false;
  std::atomic<bool> stopped{false};

 private:
  std::function<void()> wake_;
  std::vector<std::string> out_;
  bool done_ = false;
};

struct Fixture {
  CertKey ca, leaf;
  std::unique_ptr<HttpsServer> server;
  std::shared_ptr<EchoTunnel> last;
  std::mutex mu;

  Fixture() {
    ca = *create_ca("tunnel-test-ca", 1);
    leaf = *issue_cert(ca, "localhost", {}, {"127.0.0.1"}, true, false, 1);
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.cert_pem = leaf.cert_pem;
    o.key_pem = leaf.key_pem;
    o.io_threads = 1;
    o.worker_threads = 2;
    o.stream_poll = std::chrono::milliseconds(5000);  // wake-ups, not polling, must move data
    auto s = HttpsServer::start(o, [this](Request& req) {
      Response r;
      if (req.path == "/plain") return Response::text(200, "plain");
      auto tunnel = std::make_shared<EchoTunnel>();
      {
        std::lock_guard lock(mu);
        last = tunnel;
      }
      r.tunnel = tunnel;
      if (req.path == "/ws") {
        r.upgrade = Response::Upgrade::WebSocket;
        for (const auto& p : websocket_protocols(req))
          if (p == "v5.channel.k8s.io") {
            r.headers.emplace_back("Sec-WebSocket-Protocol", p);
            break;
          }
      } else {
        // Raw: a 101 as another server would have sent it.
        tunnel->prefix = "raw:";
        r.upgrade = Response::Upgrade::Raw;
        r.status = is_upgrade(req) ? 101 : 400;
        r.headers = {{"Connection", "Upgrade"}, {"Upgrade", "x-test"}};
        if (r.status != 101) {
          r.tunnel.reset();
          r.body = "no upgrade";
        }
      }
      return r;
    });
    REQUIRE(s);
    server = std::move(*s);
  }
  ~Fixture() { server->stop(); }

  std::shared_ptr<EchoTunnel> tunnel() {
    std::lock_guard lock(mu);
    return last;
  }
};

struct Client {
  asio::io_context ioc;
  ssl::context ctx{ssl::context::tls_client};
  beast::ssl_stream<beast::tcp_stream> stream{ioc, ctx};

  Client(const Fixture& f) {
    ctx.add_certificate_authority(asio::buffer(f.ca.cert_pem));
    ctx.set_verify_mode(ssl::verify_peer);
    beast::get_lowest_layer(stream).connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                                          static_cast<unsigned short>(f.server->port())));
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
    stream.handshake(ssl::stream_base::client);
  }
};

}  // namespace

TEST_CASE("a WebSocket handler gets whole binary messages and its subprotocol in the 101") {
  Fixture f;
  Client c(f);
  websocket::stream<beast::ssl_stream<beast::tcp_stream>&> ws(c.stream);
  ws.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
    req.set(http::field::sec_websocket_protocol, "v9.test, v5.channel.k8s.io");
  }));
  websocket::response_type answer;
  ws.handshake(answer, "127.0.0.1", "/ws");
  CHECK(answer.result_int() == 101);
  CHECK(answer[http::field::sec_websocket_protocol] == "v5.channel.k8s.io");
  ws.binary(true);

  std::string big(200000, 'x');
  big[0] = '\1';
  for (const std::string& m : {std::string("\0hello", 6), big}) {
    ws.write(asio::buffer(m));
    beast::flat_buffer b;
    ws.read(b);
    CHECK(ws.got_binary());
    CHECK(beast::buffers_to_string(b.data()) == "echo:" + m);
  }

  // An answer made on another thread arrives through wake, well before the 5 s poll.
  auto t0 = std::chrono::steady_clock::now();
  ws.write(asio::buffer(std::string("later")));
  beast::flat_buffer b;
  ws.read(b);
  CHECK(beast::buffers_to_string(b.data()) == "from another thread");
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));

  // The tunnel ends: its last message, then a normal close.
  ws.write(asio::buffer(std::string("end")));
  b.clear();
  ws.read(b);
  CHECK(beast::buffers_to_string(b.data()) == "bye");
  b.clear();
  beast::error_code ec;
  ws.read(b, ec);
  CHECK(ec == websocket::error::closed);
  CHECK(ws.reason().code == websocket::close_code::normal);
  auto t = f.tunnel();
  for (int i = 0; i < 100 && !t->stopped; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(t->stopped);
}

TEST_CASE("a client's close reaches the tunnel, which is then stopped") {
  Fixture f;
  Client c(f);
  websocket::stream<beast::ssl_stream<beast::tcp_stream>&> ws(c.stream);
  ws.handshake("127.0.0.1", "/ws");
  ws.binary(true);
  ws.write(asio::buffer(std::string("one")));
  beast::flat_buffer b;
  ws.read(b);
  CHECK(beast::buffers_to_string(b.data()) == "echo:one");
  ws.close(websocket::close_code::normal);
  auto t = f.tunnel();
  for (int i = 0; i < 100 && !t->stopped; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(t->stopped);
  std::lock_guard lock(t->mu);
  CHECK(t->closed_by_client);
}

TEST_CASE("a request that is not a WebSocket handshake gets 400 from a WebSocket handler") {
  Fixture f;
  Client c(f);
  http::request<http::empty_body> req{http::verb::get, "/ws", 11};
  req.set(http::field::host, "127.0.0.1");
  http::write(c.stream, req);
  beast::flat_buffer b;
  http::response<http::string_body> res;
  http::read(c.stream, b, res);
  CHECK(res.result_int() == 400);
}

TEST_CASE("a raw tunnel relays its 101 and then bytes both ways") {
  Fixture f;
  Client c(f);
  // The first bytes of the tunnel travel in the same write as the request.
  std::string request = "GET /raw HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: x-test\r\n\r\nfirst";
  asio::write(c.stream, asio::buffer(request));
  beast::flat_buffer b;
  http::response_parser<http::empty_body> parser;
  http::read_header(c.stream, b, parser);
  CHECK(parser.get().result_int() == 101);
  CHECK(parser.get()[http::field::upgrade] == "x-test");
  auto read_exact = [&](std::size_t n) {
    std::string got = beast::buffers_to_string(b.data());
    b.consume(b.size());
    while (got.size() < n) {
      char buf[1024];
      std::size_t k = c.stream.read_some(asio::buffer(buf));
      got.append(buf, k);
    }
    return got;
  };
  CHECK(read_exact(9) == "raw:first");
  asio::write(c.stream, asio::buffer(std::string("second")));
  CHECK(read_exact(10) == "raw:second");
  asio::write(c.stream, asio::buffer(std::string("end")));
  CHECK(read_exact(3) == "bye");
  // Then the server lets the connection go.
  char buf[16];
  beast::error_code ec;
  c.stream.read_some(asio::buffer(buf), ec);
  CHECK(ec);
}

TEST_CASE("a raw handler's refusal is an ordinary answer") {
  Fixture f;
  Client c(f);
  http::request<http::empty_body> req{http::verb::get, "/raw", 11};
  req.set(http::field::host, "127.0.0.1");
  http::write(c.stream, req);
  beast::flat_buffer b;
  http::response<http::string_body> res;
  http::read(c.stream, b, res);
  CHECK(res.result_int() == 400);
  CHECK(res.body() == "no upgrade");
  // The connection stays usable.
  http::request<http::empty_body> plain{http::verb::get, "/plain", 11};
  plain.set(http::field::host, "127.0.0.1");
  http::write(c.stream, plain);
  http::response<http::string_body> res2;
  http::read(c.stream, b, res2);
  CHECK(res2.body() == "plain");
}
