// The HTTPS transport of the client: Beast over OpenSSL. Each connection owns a small
// io_context that the calling thread runs while its request is in flight, so a request costs
// no thread hand-off and its TLS work happens on the caller's core. The timeouts are Beast
// tcp_stream deadlines; a watch reads its chunked body a piece at a time.
#include <utility>  // before Asio: Boost 1.74 needs std::exchange declared

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>

#include <array>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <thread>
#include <limits>
#include <mutex>

#include "client/client.h"

namespace berth::client {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using api::Reason;
using api::Status;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr std::uint32_t kHeaderLimit = 256 * 1024;

// Where Config::server points.
struct Endpoint {
  std::string host;         // without brackets: "127.0.0.1", "::1", "api.example"
  std::string port;         // "6443"
  std::string host_header;  // as it goes in Host: "[::1]:6443"
  std::string base;         // "https://[::1]:6443" for messages
  bool is_ip = false;
  asio::ip::address address;  // when is_ip
};

api::Result<Endpoint> parse_server(const std::string& url) {
  Endpoint e;
  std::string_view rest = url;
  if (rest.rfind("https://", 0) != 0)
    return Status(Reason::BadRequest, "server URL must start with https://, got \"" + url + "\"");
  rest.remove_prefix(8);
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    // A path prefix (a proxy in front of the API) is not supported; a bare "/" is fine.
    if (rest.substr(slash) != "/")
      return Status(Reason::BadRequest, "server URL must not carry a path: \"" + url + "\"");
    rest = rest.substr(0, slash);
  }
  std::string_view hostport = rest;
  if (!hostport.empty() && hostport.front() == '[') {
    auto close = hostport.find(']');
    if (close == std::string_view::npos) return Status(Reason::BadRequest, "bad IPv6 address in \"" + url + "\"");
    e.host = std::string(hostport.substr(1, close - 1));
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Status(Reason::BadRequest, "bad server address \"" + url + "\"");
      e.port = std::string(after.substr(1));
    }
  } else {
    auto colon = hostport.rfind(':');
    if (colon == std::string_view::npos) {
      e.host = std::string(hostport);
    } else {
      e.host = std::string(hostport.substr(0, colon));
      e.port = std::string(hostport.substr(colon + 1));
    }
  }
  if (e.port.empty()) e.port = "443";
  if (e.host.empty()) return Status(Reason::BadRequest, "server URL has no host: \"" + url + "\"");
  for (char c : e.port)
    if (c < '0' || c > '9') return Status(Reason::BadRequest, "bad port in server URL \"" + url + "\"");
  error_code ec;
  e.address = asio::ip::make_address(e.host, ec);
  e.is_ip = !ec;
  bool v6 = e.is_ip && e.address.is_v6();
  e.host_header = (v6 ? "[" + e.host + "]" : e.host) + ":" + e.port;
  e.base = "https://" + e.host_header;
  return e;
}

bool connection_closed(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == http::error::partial_message || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::connection_aborted || ec == ssl::error::stream_truncated;
}

// One TLS connection and the io_context its operations run on.
struct Conn {
  explicit Conn(ssl::context& ctx) : stream(ioc, ctx) {}
  ~Conn() {
    error_code ec;
    beast::get_lowest_layer(stream).socket().close(ec);
  }

  // Starts one asynchronous operation through initiate(handler) and runs this connection's
  // io_context until it completes. The stream's deadline bounds it.
  template <class Initiate>
  error_code run(Initiate&& initiate) {
    error_code result = asio::error::would_block;
    ioc.restart();
    initiate([&result](error_code ec, auto&&...) { result = ec; });
    ioc.run();
    return result;
  }

  beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream); }

  // The server closed an idle connection (or sent something unasked): it cannot be reused.
  bool stale() {
    pollfd p{};
    p.fd = tcp().socket().native_handle();
    p.events = POLLIN;
    return ::poll(&p, 1, 0) != 0;
  }

  asio::io_context ioc{1};
  beast::ssl_stream<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  bool reused = false;
};

// An open streaming answer: read() gives raw bytes (followed logs), next() one JSON event
// per line (watches).
class WatchImpl final : public WatchStream, public ByteStream {
 public:
  WatchImpl(std::unique_ptr<Conn> conn, std::unique_ptr<http::response_parser<http::buffer_body>> parser,
            std::string what)
      : conn_(std::move(conn)), parser_(std::move(parser)), what_(std::move(what)), buf_(64 * 1024) {}

  ~WatchImpl() override {
    closed_ = true;
    if (reading_) {
      // Let the pending read finish (aborted) before the members it refers to go.
      error_code ec;
      conn_->tcp().socket().close(ec);
      conn_->ioc.restart();
      conn_->ioc.run_for(std::chrono::seconds(2));
    }
  }

  api::Result<std::optional<json>> next(std::chrono::milliseconds timeout) override {
    std::lock_guard lock(next_mu_);
    std::optional<json> event;
    Status bad;
    auto s = wait(timeout, [&](bool at_end) {
      auto line = take_line();
      if (!line && at_end) {
        // A last event without its newline, then the end the server chose.
        std::string rest = pending_.substr(head_);
        pending_.clear();
        head_ = 0;
        if (rest.find_first_not_of(" \t\r\n") != std::string::npos) line = std::move(rest);
      }
      if (!line) return false;
      json parsed = json::parse(*line, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_discarded()) bad = Status(Reason::InternalError, what_ + ": the server sent an event that is not JSON");
      else event = std::move(parsed);
      return true;
    });
    if (!bad.is_ok()) return bad;
    if (!s) return s.take_status();
    return event;
  }

  api::Result<std::optional<std::string>> read(std::chrono::milliseconds timeout) override {
    std::lock_guard lock(next_mu_);
    std::optional<std::string> chunk;
    auto s = wait(timeout, [&](bool) {
      if (head_ >= pending_.size()) return false;
      chunk = pending_.substr(head_);
      pending_.clear();
      head_ = 0;
      return true;
    });
    if (!s) return s.take_status();
    return chunk;
  }

  void close() override {
    closed_ = true;
    // The io_context's thread (a next() in progress, or the next one) closes the socket:
    // the pending read ends and the server sees the stream go.
    asio::post(conn_->ioc, [this] {
      error_code ec;
      conn_->tcp().socket().shutdown(tcp::socket::shutdown_both, ec);
      conn_->tcp().socket().close(ec);
    });
  }

 private:
  // Runs the connection until take(at_end) produces something, the stream ends or fails,
  // or the timeout passes. Ok(true) when take produced; Ok(false) on timeout; Ok status
  // when the stream ended normally, else the failure.
  template <class Take>
  api::Result<bool> wait(std::chrono::milliseconds timeout, Take take) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      if (closed_) return Status();
      if (take(false)) return true;
      if (failed_) return *failed_;
      if (done_) {
        if (take(true)) return true;
        return Status();
      }
      if (!reading_) start_read();
      conn_->ioc.restart();
      if (timeout.count() <= 0 || Clock::now() >= deadline)
        conn_->ioc.poll();
      else
        conn_->ioc.run_until(deadline);
      if (reading_ && Clock::now() >= deadline && !closed_) return false;
    }
  }

  std::optional<std::string> take_line() {
    for (;;) {
      auto nl = pending_.find('\n', head_);
      if (nl == std::string::npos) {
        if (head_ > 0 && head_ * 2 >= pending_.size()) {
          pending_.erase(0, head_);
          head_ = 0;
        }
        return std::nullopt;
      }
      std::size_t begin = head_, end = nl;
      head_ = nl + 1;
      while (end > begin && (pending_[end - 1] == '\r' || pending_[end - 1] == ' ')) --end;
      if (end == begin) continue;  // blank line: keep-alive padding
      return pending_.substr(begin, end - begin);
    }
  }

  void start_read() {
    auto& body = parser_->get().body();
    body.data = buf_.data();
    body.size = buf_.size();
    reading_ = true;
    http::async_read_some(conn_->stream, conn_->buffer, *parser_, [this](error_code ec, std::size_t) {
      reading_ = false;
      std::size_t n = buf_.size() - parser_->get().body().size;
      pending_.append(buf_.data(), n);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        if (!closed_)
          failed_ = Status(Reason::ServiceUnavailable,
                           what_ + ": the stream broke: " + ec.message());
      } else if (parser_->is_done()) {
        done_ = true;
      }
    });
  }

  std::unique_ptr<Conn> conn_;
  std::unique_ptr<http::response_parser<http::buffer_body>> parser_;
  std::string what_;
  std::vector<char> buf_;
  std::string pending_;
  std::size_t head_ = 0;
  std::mutex next_mu_;
  std::atomic<bool> closed_{false};
  bool reading_ = false, done_ = false;
  std::optional<Status> failed_;
};

// An upgraded connection as a net::Tunnel: a thread of its own runs the connection's
// io_context, reading into a buffer the server side polls and writing what the server side
// receives, so neither side's io threads ever wait on the other.
class UpgradedTunnel final : public net::Tunnel {
 public:
  UpgradedTunnel(std::unique_ptr<Conn> conn) : conn_(std::move(conn)), guard_(conn_->ioc.get_executor()) {
    // Bytes that came right behind the 101 (a WebSocket's first messages) come first.
    if (conn_->buffer.size() > 0) {
      in_ = beast::buffers_to_string(conn_->buffer.data());
      conn_->buffer.consume(conn_->buffer.size());
    }
  }
  ~UpgradedTunnel() override { stop(); }

  void start(std::function<void()> wake) override {
    {
      std::lock_guard lock(mu_);
      wake_ = std::move(wake);
    }
    conn_->tcp().expires_never();
    conn_->ioc.restart();
    asio::post(conn_->ioc, [this] { read_more(); });
    thread_ = std::thread([this] { conn_->ioc.run(); });
  }

  void receive(std::string data) override {
    asio::post(conn_->ioc, [this, data = std::move(data)]() mutable {
      out_.push_back(std::move(data));
      if (!writing_) write_more();
    });
  }

  State poll(std::vector<std::string>& out) override {
    std::lock_guard lock(mu_);
    if (!in_.empty()) out.push_back(std::move(in_));
    in_.clear();
    return ended_ ? State::Done : State::Wait;
  }

  void client_closed() override {
    asio::post(conn_->ioc, [this] {
      client_gone_ = true;
      if (!writing_) finish();
    });
  }

  void stop() override {
    if (stopped_.exchange(true)) return;
    if (thread_.joinable()) {
      asio::post(conn_->ioc, [this] {
        error_code ec;
        conn_->tcp().socket().close(ec);
        guard_.reset();
      });
      thread_.join();
    }
  }

 private:
  void read_more() {
    conn_->stream.async_read_some(asio::buffer(chunk_), [this](error_code ec, std::size_t n) {
      std::function<void()> wake;
      {
        std::lock_guard lock(mu_);
        in_.append(chunk_.data(), n);
        if (ec) ended_ = true;
        wake = wake_;
      }
      if (wake) wake();
      if (!ec) read_more();
    });
  }

  void write_more() {
    if (out_.empty()) {
      writing_ = false;
      if (client_gone_) finish();
      return;
    }
    writing_ = true;
    asio::async_write(conn_->stream, asio::buffer(out_.front()), [this](error_code ec, std::size_t) {
      out_.pop_front();
      if (ec) {
        out_.clear();
        writing_ = false;
        return;
      }
      write_more();
    });
  }

  // The client side is gone: so is this connection (its reader then ends the tunnel).
  void finish() {
    error_code ec;
    conn_->tcp().socket().shutdown(tcp::socket::shutdown_both, ec);
    conn_->tcp().socket().close(ec);
  }

  std::unique_ptr<Conn> conn_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
  std::array<char, 16 * 1024> chunk_{};
  std::deque<std::string> out_;  // io thread only
  bool writing_ = false, client_gone_ = false;
  std::mutex mu_;
  std::string in_;
  bool ended_ = false;
  std::function<void()> wake_;
  std::atomic<bool> stopped_{false};
};

class HttpsClient final : public Client {
 public:
  HttpsClient(Config config, Endpoint endpoint)
      : config_(std::move(config)), endpoint_(std::move(endpoint)), ctx_(ssl::context::tls_client) {}

  ~HttpsClient() override {
    std::lock_guard lock(mu_);
    idle_.clear();
  }

  Status init() {
    error_code ec;
    ctx_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                     ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    if (!config_.ca_pem.empty()) {
      ctx_.add_certificate_authority(asio::buffer(config_.ca_pem), ec);
      if (ec) return Status(Reason::BadRequest, "loading the CA certificate: " + ec.message());
    } else {
      ctx_.set_default_verify_paths(ec);
      if (ec) return Status(Reason::InternalError, "loading the system CA certificates: " + ec.message());
    }
    ctx_.set_verify_mode(ssl::verify_peer);
    if (!config_.cert_pem.empty() || !config_.key_pem.empty()) {
      if (config_.cert_pem.empty() || config_.key_pem.empty())
        return Status(Reason::BadRequest, "a client certificate needs both the certificate and its key");
      ctx_.use_certificate_chain(asio::buffer(config_.cert_pem), ec);
      if (ec) return Status(Reason::BadRequest, "loading the client certificate: " + ec.message());
      ctx_.use_private_key(asio::buffer(config_.key_pem), ssl::context::pem, ec);
      if (ec) return Status(Reason::BadRequest, "loading the client key: " + ec.message());
      if (SSL_CTX_check_private_key(ctx_.native_handle()) != 1)
        return Status(Reason::BadRequest, "the client certificate does not match its key");
    }
    if (config_.max_connections == 0) config_.max_connections = 1;
    if (config_.timeout.count() <= 0) config_.timeout = std::chrono::seconds(30);
    return {};
  }

  api::Result<Response> request(const std::string& method, const std::string& path, const std::string& body,
                                const std::string& content_type,
                                const std::vector<std::pair<std::string, std::string>>& headers) override {
    const std::string what = method + " " + endpoint_.base + path;
    if (path.empty() || path.front() != '/') return Status(Reason::BadRequest, what + ": the path must start with /");
    auto req = make_request(method, path, body, content_type, headers);
    const auto deadline = Clock::now() + config_.timeout;
    for (int attempt = 0;; ++attempt) {
      auto conn = acquire(deadline, what);
      if (!conn) return conn.take_status();
      Conn& c = **conn;
      c.tcp().expires_at(deadline);

      error_code ec = c.run([&](auto handler) { http::async_write(c.stream, req, std::move(handler)); });
      bool nothing_back = true;
      std::optional<http::response_parser<http::string_body>> parser;
      if (!ec) {
        parser.emplace();
        parser->body_limit(std::numeric_limits<std::uint64_t>::max());
        parser->header_limit(kHeaderLimit);
        if (req.method() == http::verb::head) parser->skip(true);
        ec = c.run([&](auto handler) { http::async_read(c.stream, c.buffer, *parser, std::move(handler)); });
        nothing_back = !parser->got_some();
      }
      if (ec) {
        bool retry = c.reused && attempt == 0 && nothing_back && connection_closed(ec) && Clock::now() < deadline;
        discard(std::move(*conn));
        if (retry) continue;  // the server had closed this pooled connection
        return transport_error(what, ec);
      }

      auto& msg = parser->get();
      Response response;
      response.status = static_cast<int>(msg.result_int());
      response.headers.reserve(std::distance(msg.begin(), msg.end()));
      for (const auto& field : msg) {
        std::string name(field.name_string());
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        response.headers.emplace_back(std::move(name), std::string(field.value()));
      }
      // Bytes beyond the answer (a body sent with a HEAD answer, say) would be read as the
      // next answer: such a connection is not reused.
      const bool keep = msg.keep_alive() && c.buffer.size() == 0;
      response.body = std::move(msg.body());
      if (keep)
        release(std::move(*conn));
      else
        discard(std::move(*conn));
      return response;
    }
  }

  api::Result<std::unique_ptr<WatchStream>> watch(const std::string& path) override {
    std::string full = path + (path.find('?') == std::string::npos ? "?" : "&") + "watch=true";
    auto opened = open_stream(full, "watch " + endpoint_.base + full);
    if (!opened) return opened.take_status();
    return std::unique_ptr<WatchStream>(std::move(*opened));
  }

  api::Result<std::unique_ptr<ByteStream>> stream(const std::string& path) override {
    auto opened = open_stream(path, "GET " + endpoint_.base + path);
    if (!opened) return opened.take_status();
    return std::unique_ptr<ByteStream>(std::move(*opened));
  }

  api::Result<Upgraded> upgrade(const std::string& method, const std::string& path,
                                const std::vector<std::pair<std::string, std::string>>& headers) override {
    const std::string what = method + " " + endpoint_.base + path;
    if (path.empty() || path.front() != '/') return Status(Reason::BadRequest, what + ": the path must start with /");
    const auto deadline = Clock::now() + config_.timeout;
    auto conn = connect(deadline, what);
    if (!conn) return conn.take_status();
    Conn& c = **conn;
    auto req = make_request(method, path, "", "", headers);
    req.keep_alive(true);
    for (const auto& [name, value] : headers) req.set(name, value);  // keep_alive rewrote Connection
    c.tcp().expires_at(deadline);
    error_code ec = c.run([&](auto handler) { http::async_write(c.stream, req, std::move(handler)); });
    if (ec) return transport_error(what, ec);
    http::response_parser<http::string_body> parser;
    parser.body_limit(1024 * 1024);
    parser.header_limit(kHeaderLimit);
    ec = c.run([&](auto handler) { http::async_read_header(c.stream, c.buffer, parser, std::move(handler)); });
    if (ec) return transport_error(what, ec);
    Upgraded out;
    out.response.status = static_cast<int>(parser.get().result_int());
    for (const auto& field : parser.get()) {
      std::string name(field.name_string());
      for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      out.response.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    if (out.response.status == 101) {
      out.tunnel = std::make_shared<UpgradedTunnel>(std::move(*conn));
      return out;
    }
    if (!parser.is_done()) {
      ec = c.run([&](auto handler) { http::async_read(c.stream, c.buffer, parser, std::move(handler)); });
      if (ec && !connection_closed(ec)) return transport_error(what, ec);
    }
    out.response.body = std::move(parser.get().body());
    return out;
  }

 private:
  api::Result<std::unique_ptr<WatchImpl>> open_stream(const std::string& full, const std::string& what) {
    if (full.empty() || full.front() != '/') return Status(Reason::BadRequest, what + ": the path must start with /");
    const auto deadline = Clock::now() + config_.timeout;
    auto conn = connect(deadline, what);
    if (!conn) return conn.take_status();
    Conn& c = **conn;
    auto req = make_request("GET", full, "", "", {});
    c.tcp().expires_at(deadline);
    error_code ec = c.run([&](auto handler) { http::async_write(c.stream, req, std::move(handler)); });
    if (ec) return transport_error(what, ec);
    auto parser = std::make_unique<http::response_parser<http::buffer_body>>();
    parser->body_limit(std::numeric_limits<std::uint64_t>::max());
    parser->header_limit(kHeaderLimit);
    ec = c.run([&](auto handler) { http::async_read_header(c.stream, c.buffer, *parser, std::move(handler)); });
    if (ec) return transport_error(what, ec);

    const int code = static_cast<int>(parser->get().result_int());
    if (code != 200) {
      Response response;
      response.status = code;
      for (const auto& field : parser->get()) {
        std::string name(field.name_string());
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        response.headers.emplace_back(std::move(name), std::string(field.value()));
      }
      std::vector<char> buf(16 * 1024);
      while (!parser->is_done()) {
        parser->get().body().data = buf.data();
        parser->get().body().size = buf.size();
        ec = c.run([&](auto handler) { http::async_read_some(c.stream, c.buffer, *parser, std::move(handler)); });
        response.body.append(buf.data(), buf.size() - parser->get().body().size);
        if (ec == http::error::need_buffer) ec = {};
        if (ec) break;
      }
      if (ec && response.body.empty()) return transport_error(what, ec);
      return status_from(response);
    }
    c.tcp().expires_never();
    return std::make_unique<WatchImpl>(std::move(*conn), std::move(parser), what);
  }

  http::request<http::string_body> make_request(const std::string& method, const std::string& path,
                                                const std::string& body, const std::string& content_type,
                                                const std::vector<std::pair<std::string, std::string>>& headers) {
    http::request<http::string_body> req;
    http::verb verb = http::string_to_verb(method);
    if (verb == http::verb::unknown)
      req.method_string(method);
    else
      req.method(verb);
    req.target(path);
    req.version(11);
    req.set(http::field::host, endpoint_.host_header);
    req.set(http::field::user_agent, config_.user_agent);
    req.set(http::field::accept, "application/json");
    if (!config_.token.empty()) req.set(http::field::authorization, "Bearer " + config_.token);
    if (!body.empty() && !content_type.empty()) req.set(http::field::content_type, content_type);
    for (const auto& [name, value] : headers) req.set(name, value);
    req.keep_alive(true);
    req.body() = body;
    // POST, PUT and PATCH carry a length even when empty; GET and DELETE only with a body.
    if (!body.empty() || verb == http::verb::post || verb == http::verb::put || verb == http::verb::patch)
      req.prepare_payload();
    return req;
  }

  Status transport_error(const std::string& what, const error_code& ec) {
    if (ec == beast::error::timeout)
      return Status(Reason::Timeout, what + ": no answer within " + std::to_string(config_.timeout.count()) + "s");
    return Status(Reason::ServiceUnavailable, what + ": " + ec.message());
  }

  // A new connection, TLS established, the server's certificate checked against the CA and
  // against the host name or address we dialled.
  api::Result<std::unique_ptr<Conn>> connect(Clock::time_point deadline, const std::string& what) {
    auto conn = std::make_unique<Conn>(ctx_);
    Conn& c = *conn;
    error_code ec;
    std::vector<tcp::endpoint> endpoints;
    if (endpoint_.is_ip) {
      endpoints.emplace_back(endpoint_.address, static_cast<unsigned short>(std::stoi(endpoint_.port)));
    } else {
      tcp::resolver resolver(c.ioc);
      auto results = resolver.resolve(endpoint_.host, endpoint_.port, ec);
      if (ec) return Status(Reason::ServiceUnavailable, what + ": cannot resolve " + endpoint_.host + ": " + ec.message());
      for (const auto& r : results) endpoints.push_back(r.endpoint());
    }
    c.tcp().expires_at(deadline);
    ec = c.run([&](auto handler) { c.tcp().async_connect(endpoints, std::move(handler)); });
    if (ec) return transport_error(what, ec);
    c.tcp().socket().set_option(tcp::no_delay(true), ec);

    SSL* ssl = c.stream.native_handle();
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (endpoint_.is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(param, endpoint_.host.c_str());
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, endpoint_.host.c_str(), endpoint_.host.size());
      SSL_set_tlsext_host_name(ssl, endpoint_.host.c_str());
    }
    ec = c.run([&](auto handler) { c.stream.async_handshake(ssl::stream_base::client, std::move(handler)); });
    if (ec) {
      if (ec == beast::error::timeout) return transport_error(what, ec);
      long verify = SSL_get_verify_result(ssl);
      std::string detail = verify != X509_V_OK ? std::string(X509_verify_cert_error_string(verify)) : ec.message();
      return Status(Reason::ServiceUnavailable, what + ": TLS handshake failed: " + detail);
    }
    return conn;
  }

  // A pooled connection (most recently used first) or a new one, within max_connections.
  api::Result<std::unique_ptr<Conn>> acquire(Clock::time_point deadline, const std::string& what) {
    std::unique_lock lock(mu_);
    for (;;) {
      while (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        if (!c->stale()) {
          c->reused = true;
          return c;
        }
        --open_;
        lock.unlock();
        c.reset();
        lock.lock();
      }
      if (open_ < config_.max_connections) {
        ++open_;
        lock.unlock();
        auto c = connect(deadline, what);
        if (!c) {
          lock.lock();
          --open_;
          cv_.notify_one();
        }
        return c;
      }
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
          open_ >= config_.max_connections)
        return Status(Reason::Timeout, what + ": all " + std::to_string(config_.max_connections) +
                                           " connections stayed busy for " +
                                           std::to_string(config_.timeout.count()) + "s");
    }
  }

  void release(std::unique_ptr<Conn> c) {
    c->tcp().expires_never();
    std::lock_guard lock(mu_);
    idle_.push_back(std::move(c));
    cv_.notify_one();
  }

  void discard(std::unique_ptr<Conn> c) {
    c.reset();
    std::lock_guard lock(mu_);
    --open_;
    cv_.notify_one();
  }

  Config config_;
  Endpoint endpoint_;
  ssl::context ctx_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> idle_;
  std::size_t open_ = 0;
};

}  // namespace

api::Result<std::unique_ptr<Client>> Client::create(Config config) {
  auto endpoint = parse_server(config.server);
  if (!endpoint) return endpoint.take_status();
  auto client = std::make_unique<HttpsClient>(std::move(config), std::move(*endpoint));
  if (auto s = client->init(); !s) return s;
  return std::unique_ptr<Client>(std::move(client));
}

}  // namespace berth::client
