#include <utility>  // before Asio: Boost 1.74 coroutines need std::exchange declared

#include "net/https_server.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cstdio>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_set>

#include "net/fiber.h"

namespace berth::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using asio::use_awaitable;
using error_code = boost::system::error_code;
// TLS straight over the socket: timeouts come from the server's deadline sweep (Deadline),
// not from a timer Beast's tcp_stream arms and cancels around every read and write.
using Stream = beast::ssl_stream<tcp::socket>;

// When a connection's current step (handshake, receiving a request, sending an answer) must be
// over. The server sweeps every open connection's deadline a few times a second and shuts the
// socket of one that is late, which ends the pending read or write; a request then costs two
// relaxed stores instead of a timer armed and cancelled per I/O operation.
class Deadline {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::int64_t kNever = INT64_MAX;

  explicit Deadline(int fd) : fd_(fd) {}
  void after(Clock::duration d) {
    at_.store(std::chrono::duration_cast<std::chrono::nanoseconds>((Clock::now() + d).time_since_epoch()).count(),
              std::memory_order_relaxed);
  }
  void never() { at_.store(kNever, std::memory_order_relaxed); }
  // Shuts the socket down if the deadline has passed (once); the connection's own code then
  // sees its read or write fail and ends.
  void enforce(std::int64_t now_ns) {
    if (at_.load(std::memory_order_relaxed) > now_ns) return;
    at_.store(kNever, std::memory_order_relaxed);
    ::shutdown(fd_, SHUT_RDWR);
  }

 private:
  const int fd_;
  std::atomic<std::int64_t> at_{kNever};
};

// How often deadlines are checked: a timeout fires up to this much late.
constexpr std::chrono::milliseconds kSweepPeriod{250};

// Reads CN and O of a verified client certificate.
Peer peer_of(SSL* ssl, const tcp::endpoint& remote) {
  Peer peer;
  peer.address = remote.address().to_string() + ":" + std::to_string(remote.port());
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return peer;
  if (SSL_get_verify_result(ssl) == X509_V_OK) {
    peer.client_certificate = true;
    X509_NAME* name = X509_get_subject_name(cert);
    for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
      X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
      int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
      ASN1_STRING* data = X509_NAME_ENTRY_get_data(e);
      std::string value(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                        static_cast<std::size_t>(ASN1_STRING_length(data)));
      if (nid == NID_commonName) peer.common_name = value;
      if (nid == NID_organizationName) peer.organizations.push_back(value);
    }
  }
  X509_free(cert);
  return peer;
}

bool split_host_port(const std::string& listen, std::string& host, std::string& port) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return false;
  host = listen.substr(0, colon);
  port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  return !port.empty();
}

class ServerImpl final : public HttpsServer {
 public:
  ServerImpl(ServerOptions options, Handler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        ssl_(asio::ssl::context::tls_server),
        acceptor_(ioc_),
        pool_(options_.worker_threads) {}

  ~ServerImpl() override { stop(); }

  api::Status init() {
    error_code ec;
    ssl_.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    ssl_.use_certificate_chain(asio::buffer(options_.cert_pem), ec);
    if (!ec) ssl_.use_private_key(asio::buffer(options_.key_pem), asio::ssl::context::pem, ec);
    if (ec) return {api::Reason::InternalError, "loading the serving certificate: " + ec.message()};
    if (!options_.client_ca_pem.empty()) {
      ssl_.add_certificate_authority(asio::buffer(options_.client_ca_pem), ec);
      if (ec) return {api::Reason::InternalError, "loading the client CA: " + ec.message()};
      // Ask for a client certificate but do not require one: bearer tokens and the
      // anonymous health endpoints must still get through the handshake.
      ssl_.set_verify_mode(asio::ssl::verify_peer);
      static const unsigned char kContext[] = "berth";
      SSL_CTX_set_session_id_context(ssl_.native_handle(), kContext, sizeof(kContext) - 1);
    }

    std::string host, port;
    if (!split_host_port(options_.listen, host, port))
      return {api::Reason::BadRequest, "--listen must be host:port, got \"" + options_.listen + "\""};
    tcp::resolver resolver(ioc_);
    auto results = resolver.resolve(host, port, ec);
    if (ec || results.empty())
      return {api::Reason::BadRequest, "cannot resolve listen address " + options_.listen + ": " + ec.message()};
    tcp::endpoint endpoint = results.begin()->endpoint();
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return {api::Reason::ServiceUnavailable, "cannot listen on " + options_.listen + ": " + ec.message()};
    port_ = acceptor_.local_endpoint().port();

    asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
    asio::co_spawn(ioc_, sweep_deadlines(), asio::detached);
    for (std::size_t i = 0; i < std::max<std::size_t>(1, options_.io_threads); ++i)
      threads_.emplace_back([this] { ioc_.run(); });
    return {};
  }

  int port() const override { return port_; }

  void stop() override {
    std::call_once(stopped_, [this] {
      asio::post(ioc_, [this] {
        error_code ec;
        acceptor_.close(ec);
      });
      {
        std::lock_guard lock(streams_mu_);
        stopping_ = true;
        for (auto& s : streams_) s->stop();
        for (auto& t : tunnels_) t->stop();
      }
      ioc_.stop();
      for (auto& t : threads_) t.join();
      pool_.join();
    });
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      error_code ec;
      // No strand: a connection's session is one coroutine that never runs two steps at once.
      // Its streaming and tunnel phases, which do, move to a strand of their own (in_strand).
      tcp::socket socket(ioc_);
      co_await acceptor_.async_accept(socket, asio::redirect_error(use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      if (ec) continue;
      socket.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(ioc_, session(std::move(socket)), asio::detached);
    }
  }

  Response error(int code, const std::string& message) {
    if (options_.error_response) return options_.error_response(code, message);
    return Response::text(code, message);
  }

  static Request to_request(http::request<http::string_body>& msg, const Peer& peer) {
    Request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    std::string_view target = req.target;
    auto q = target.find('?');
    req.path = url_decode(target.substr(0, q), false);
    if (q != std::string_view::npos) req.query = parse_query(target.substr(q + 1));
    for (const auto& field : msg) {
      std::string name(field.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    req.body = std::move(msg.body());
    req.peer = peer;
    return req;
  }

  asio::awaitable<bool> write_plain(Stream& stream, Deadline& deadline, Response r, unsigned version, bool keep_alive,
                                   bool head = false) {
    http::response<http::string_body> res{static_cast<http::status>(r.status), version};
    for (const auto& [k, v] : r.headers) res.set(k, v);
    res.keep_alive(keep_alive);
    res.body() = std::move(r.body);  // an answer can be megabytes: moved, not copied
    res.prepare_payload();
    if (head) res.body().clear();  // HEAD: the length of the body a GET would get, and no body
    error_code ec;
    deadline.after(options_.request_timeout);
    co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
    co_return !ec;
  }

  // Streams a chunked body until the source is done, the client goes away or we stop.
  asio::awaitable<bool> write_stream(Stream& stream, Deadline& deadline, Response& r, unsigned version, bool keep_alive) {
    auto source = r.stream;
    struct Registration {
      ServerImpl* self;
      std::shared_ptr<StreamSource> source;
      bool active = false;
      ~Registration() {
        source->stop();
        if (active) {
          std::lock_guard lock(self->streams_mu_);
          self->streams_.erase(source);
        }
      }
    } registration{this, source};
    {
      std::lock_guard lock(streams_mu_);
      if (stopping_) co_return false;
      streams_.insert(source);
      registration.active = true;
    }

    http::response<http::empty_body> res{static_cast<http::status>(r.status), version};
    for (const auto& [k, v] : r.headers) res.set(k, v);
    res.keep_alive(keep_alive);
    res.chunked(true);
    http::response_serializer<http::empty_body> serializer{res};
    error_code ec;
    deadline.after(options_.request_timeout);
    co_await http::async_write_header(stream, serializer, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return false;
    // Only writes have a deadline: a watch may sit idle between events for as long as it likes.
    deadline.never();

    auto executor = co_await asio::this_coro::executor;
    auto timer = std::make_shared<asio::steady_timer>(executor);
    auto pending = std::make_shared<std::atomic<bool>>(false);
    source->start(waker(executor, timer, pending));

    std::string chunk = std::move(r.body);
    for (;;) {
      pending->store(false);
      auto state = source->poll(chunk);
      if (!chunk.empty()) {
        deadline.after(options_.request_timeout);
        co_await asio::async_write(stream, http::make_chunk(asio::buffer(chunk)),
                                   asio::redirect_error(use_awaitable, ec));
        if (ec) co_return false;
        deadline.never();
        chunk.clear();
      }
      if (state == StreamSource::State::Done) break;
      if (state == StreamSource::State::More || pending->load()) continue;
      timer->expires_after(options_.stream_poll);
      co_await timer->async_wait(asio::redirect_error(use_awaitable, ec));
    }
    deadline.after(options_.request_timeout);
    co_await asio::async_write(stream, http::make_chunk_last(), asio::redirect_error(use_awaitable, ec));
    co_return !ec;
  }

  // Keeps a tunnel in the set stop() ends, and stops it when its connection ends.
  struct TunnelRegistration {
    ServerImpl* self;
    std::shared_ptr<Tunnel> tunnel;
    bool active = false;
    TunnelRegistration(ServerImpl* s, std::shared_ptr<Tunnel> t) : self(s), tunnel(std::move(t)) {
      std::lock_guard lock(self->streams_mu_);
      if (self->stopping_) return;
      self->tunnels_.insert(tunnel);
      active = true;
    }
    ~TunnelRegistration() {
      tunnel->stop();
      if (active) {
        std::lock_guard lock(self->streams_mu_);
        self->tunnels_.erase(tunnel);
      }
    }
  };

  // Sends what the tunnel produces until it is done or a write fails; send(out) writes one
  // chunk or message. wake and pending are the tunnel's wake-up, as in write_stream.
  template <class Send>
  asio::awaitable<bool> pump_out(Tunnel& tunnel, std::shared_ptr<asio::steady_timer> timer,
                                 std::shared_ptr<std::atomic<bool>> pending, Send send) {
    std::vector<std::string> out;
    for (;;) {
      pending->store(false);
      auto state = tunnel.poll(out);
      for (auto& piece : out)
        if (!co_await send(piece)) co_return false;
      out.clear();
      if (state == Tunnel::State::Done) co_return true;
      if (state == Tunnel::State::More || pending->load()) continue;
      error_code ec;
      timer->expires_after(options_.stream_poll);
      co_await timer->async_wait(asio::redirect_error(use_awaitable, ec));
    }
  }

  // What a producer calls from any thread when more may be ready: the flag is set and the
  // coroutine waiting on the timer is woken on the timer's own executor.
  template <class Executor>
  static std::function<void()> waker(Executor executor, std::shared_ptr<asio::steady_timer> timer,
                                     std::shared_ptr<std::atomic<bool>> pending) {
    return [executor, timer = std::move(timer), pending = std::move(pending)] {
      pending->store(true);
      asio::post(executor, [timer] { timer->cancel(); });
    };
  }

  // After the client sent something (or closed), the tunnel is polled at once: what it
  // received may have an answer ready.
  static void nudge(asio::steady_timer& timer, std::atomic<bool>& pending) {
    pending.store(true);
    timer.cancel();
  }

  // Waits until the reader is over (it refers to the session's stream); whoever sets
  // *done cancels the timer. A client that has not closed after two seconds is cut off.
  static asio::awaitable<void> wait_reader(Stream& stream, std::shared_ptr<asio::steady_timer> timer,
                                           std::shared_ptr<bool> done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    bool cut = false;
    while (!*done) {
      error_code ec;
      if (!cut && std::chrono::steady_clock::now() >= deadline) {
        beast::get_lowest_layer(stream).shutdown(tcp::socket::shutdown_both, ec);
        beast::get_lowest_layer(stream).cancel(ec);
        cut = true;
      }
      timer->expires_after(std::chrono::milliseconds(cut ? 100 : 500));
      co_await timer->async_wait(asio::redirect_error(use_awaitable, ec));
    }
  }

  // After a relayed 101: bytes both ways until the tunnel is done (the other server closed)
  // and the client has closed too, or two seconds after the tunnel is done.
  asio::awaitable<void> run_raw_tunnel(Stream& stream, Deadline& deadline, beast::flat_buffer& buffer, Response& r, unsigned version) {
    TunnelRegistration registration(this, r.tunnel);
    if (!registration.active) co_return;
    Tunnel& tunnel = *r.tunnel;
    http::response<http::empty_body> res{static_cast<http::status>(r.status), version};
    for (const auto& [k, v] : r.headers) res.set(k, v);
    http::response_serializer<http::empty_body> serializer{res};
    error_code ec;
    deadline.after(options_.request_timeout);
    co_await http::async_write_header(stream, serializer, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    deadline.never();

    auto executor = co_await asio::this_coro::executor;
    auto timer = std::make_shared<asio::steady_timer>(executor);
    auto pending = std::make_shared<std::atomic<bool>>(false);
    tunnel.start(waker(executor, timer, pending));
    // Bytes the client sent right behind its request are the tunnel's too.
    if (buffer.size() > 0) {
      tunnel.receive(beast::buffers_to_string(buffer.data()));
      buffer.consume(buffer.size());
      pending->store(true);
    }

    auto reader_timer = std::make_shared<asio::steady_timer>(executor);
    auto reader_done = std::make_shared<bool>(false);
    auto tunnel_ptr = r.tunnel;
    asio::co_spawn(
        executor,
        [&stream, tunnel_ptr, reader_timer, reader_done, timer, pending]() -> asio::awaitable<void> {
          std::string chunk(16 * 1024, '\0');
          for (;;) {
            error_code rec;
            std::size_t n = co_await stream.async_read_some(asio::buffer(chunk), asio::redirect_error(use_awaitable, rec));
            if (n > 0) tunnel_ptr->receive(chunk.substr(0, n));
            if (rec) break;
            nudge(*timer, *pending);
          }
          tunnel_ptr->client_closed();
          nudge(*timer, *pending);
          *reader_done = true;
          reader_timer->cancel();
        },
        asio::detached);

    co_await pump_out(tunnel, timer, pending, [&](std::string& piece) -> asio::awaitable<bool> {
      error_code wec;
      co_await asio::async_write(stream, asio::buffer(piece), asio::redirect_error(use_awaitable, wec));
      co_return !wec;
    });
    // The other end is gone: so is this connection, once the client has had a moment to
    // see the end (a relayed WebSocket close) and close too.
    beast::get_lowest_layer(stream).shutdown(tcp::socket::shutdown_send, ec);
    co_await wait_reader(stream, reader_timer, reader_done);
  }

  // A WebSocket: the handshake with the handler's headers in the 101, then whole binary
  // messages both ways; a normal close once the tunnel is done.
  asio::awaitable<void> run_websocket(Stream& stream, Deadline& deadline, http::request<http::string_body>& msg, Response& r) {
    TunnelRegistration registration(this, r.tunnel);
    if (!registration.active) co_return;
    Tunnel& tunnel = *r.tunnel;
    deadline.never();
    websocket::stream<Stream&> ws(stream);
    websocket::stream_base::timeout limits{};
    limits.handshake_timeout = options_.handshake_timeout;  // opening and closing handshakes
    limits.idle_timeout = websocket::stream_base::none();   // exec sessions may sit idle
    limits.keep_alive_pings = false;
    ws.set_option(limits);
    auto headers = r.headers;
    ws.set_option(websocket::stream_base::decorator([headers](websocket::response_type& res) {
      for (const auto& [k, v] : headers) res.set(k, v);
    }));
    ws.binary(true);
    error_code ec;
    co_await ws.async_accept(msg, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;  // Beast has answered 400

    auto executor = co_await asio::this_coro::executor;
    auto timer = std::make_shared<asio::steady_timer>(executor);
    auto pending = std::make_shared<std::atomic<bool>>(false);
    tunnel.start(waker(executor, timer, pending));

    auto reader_timer = std::make_shared<asio::steady_timer>(executor);
    auto reader_done = std::make_shared<bool>(false);
    auto tunnel_ptr = r.tunnel;
    asio::co_spawn(
        executor,
        [&ws, tunnel_ptr, reader_timer, reader_done, timer, pending]() -> asio::awaitable<void> {
          for (;;) {
            beast::flat_buffer message;
            error_code rec;
            co_await ws.async_read(message, asio::redirect_error(use_awaitable, rec));
            if (rec) break;
            tunnel_ptr->receive(beast::buffers_to_string(message.data()));
            nudge(*timer, *pending);
          }
          tunnel_ptr->client_closed();
          nudge(*timer, *pending);
          *reader_done = true;
          reader_timer->cancel();
        },
        asio::detached);

    bool finished = co_await pump_out(tunnel, timer, pending, [&](std::string& piece) -> asio::awaitable<bool> {
      error_code wec;
      co_await ws.async_write(asio::buffer(piece), asio::redirect_error(use_awaitable, wec));
      co_return !wec;
    });
    if (finished && !*reader_done) {
      // The close handshake: the reader sees the client's close frame and ends.
      co_await ws.async_close(websocket::close_code::normal, asio::redirect_error(use_awaitable, ec));
    }
    co_await wait_reader(stream, reader_timer, reader_done);
  }

  Response call_handler(Request& request) {
    try {
      return handler_(request);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "E request %s %s failed: %s\n", request.method.c_str(), request.target.c_str(), e.what());
      return error(500, std::string("internal error: ") + e.what());
    }
  }

  // A handler's answer, handed from the thread that finishes its fiber to the session. The
  // session's completion handler is parked here when the answer is not ready yet, and posted
  // back to the session's executor by finish(): no timer, no strand.
  class FiberOutcome {
   public:
    Response response;  // written by the fiber before finish()

    void finish() {
      std::unique_ptr<Parked> waiter;
      {
        std::lock_guard lock(mu_);
        done_ = true;
        waiter = std::move(waiter_);
      }
      if (waiter) waiter->post();
    }
    bool finished() {
      std::lock_guard lock(mu_);
      return done_;
    }
    // Completes once finish() has run.
    template <class Token>
    auto wait(Token&& token) {
      return asio::async_initiate<Token, void()>(
          [this](auto handler) {
            using Handler = decltype(handler);
            struct Holder final : Parked {
              explicit Holder(Handler&& h) : handler(std::move(h)) {}
              void post() override { asio::post(std::move(handler)); }  // to the handler's own executor
              Handler handler;
            };
            std::unique_lock lock(mu_);
            if (!done_) {
              waiter_ = std::make_unique<Holder>(std::move(handler));
              return;
            }
            lock.unlock();
            asio::post(std::move(handler));
          },
          token);
    }

   private:
    struct Parked {
      virtual ~Parked() = default;
      virtual void post() = 0;
    };
    std::mutex mu_;
    bool done_ = false;
    std::unique_ptr<Parked> waiter_;
  };

  // Starts the handler in a fiber on this io thread; it runs until it first waits or ends.
  std::shared_ptr<FiberOutcome> start_handler_fiber(Request& request) {
    auto outcome = std::make_shared<FiberOutcome>();
    auto executor = ioc_.get_executor();
    start_fiber([this, &request, outcome] { outcome->response = call_handler(request); },
                [executor](std::function<void()> step) { asio::post(executor, std::move(step)); },
                [this](std::function<void()> step) { asio::post(pool_, std::move(step)); },
                [outcome] { outcome->finish(); });
    return outcome;
  }

  asio::awaitable<Response> run_in_fiber(Request& request) {
    auto outcome = start_handler_fiber(request);
    if (!outcome->finished()) co_await outcome->wait(use_awaitable);
    co_return std::move(outcome->response);
  }

  // Runs a phase whose parts can run at once (a stream's wake-ups, a tunnel's reader and writer)
  // on a strand of its own; the connection's plain requests never pay for one.
  template <class T>
  asio::awaitable<T> in_strand(asio::awaitable<T> phase) {
    co_return co_await asio::co_spawn(asio::make_strand(ioc_), std::move(phase), use_awaitable);
  }

  // Keeps a connection's deadline in the set the sweep checks, while the connection is open.
  struct DeadlineRegistration {
    ServerImpl* self;
    Deadline* deadline;
    DeadlineRegistration(ServerImpl* s, Deadline* d) : self(s), deadline(d) {
      std::lock_guard lock(self->deadlines_mu_);
      self->deadlines_.insert(deadline);
    }
    ~DeadlineRegistration() {
      std::lock_guard lock(self->deadlines_mu_);
      self->deadlines_.erase(deadline);
    }
  };

  asio::awaitable<void> sweep_deadlines() {
    asio::steady_timer timer(ioc_);
    for (;;) {
      timer.expires_after(kSweepPeriod);
      error_code ec;
      co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
      if (ec) co_return;
      const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                           Deadline::Clock::now().time_since_epoch()).count();
      std::lock_guard lock(deadlines_mu_);
      for (Deadline* d : deadlines_) d->enforce(now);
    }
  }

  asio::awaitable<void> session(tcp::socket socket) {
    error_code ec;
    tcp::endpoint remote = socket.remote_endpoint(ec);
    Deadline deadline(socket.native_handle());
    Stream stream(std::move(socket), ssl_);
    // After the stream: it is unregistered before the stream closes its socket, whose number
    // the sweep must not shut down once it may belong to another connection.
    DeadlineRegistration registration(this, &deadline);
    deadline.after(options_.handshake_timeout);
    co_await stream.async_handshake(asio::ssl::stream_base::server, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    const Peer peer = peer_of(stream.native_handle(), remote);

    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(options_.body_limit);
      parser.header_limit(static_cast<std::uint32_t>(options_.header_limit));
      // Idle keep-alive connections and clients that trickle a request are both cut off.
      deadline.after(buffer.size() ? options_.request_timeout : options_.idle_timeout);
      co_await http::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
      if (ec == http::error::body_limit) {
        co_await write_plain(stream, deadline,
                             error(413, "Request entity too large: limit is " + std::to_string(options_.body_limit)),
                             11, false);
        break;
      }
      if (ec == http::error::header_limit) {
        co_await write_plain(stream, deadline, error(431, "request header fields too large"), 11, false);
        break;
      }
      if (ec) {
        if (ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
            ec != http::error::end_of_stream &&
            ec != http::error::partial_message)
          co_await write_plain(stream, deadline, error(400, "malformed HTTP request: " + ec.message()), 11, false);
        break;
      }
      auto& msg = parser.get();
      const unsigned version = msg.version();
      const bool keep_alive = msg.keep_alive();
      Request request = to_request(msg, peer);
      deadline.never();

      // (Ifs, not conditional expressions: GCC 12 miscompiled such a choice between co_awaits.)
      Response response;
      if (options_.handlers_in_fibers) {
        response = co_await run_in_fiber(request);
      } else {
        response = co_await asio::co_spawn(
            pool_.get_executor(), [this, &request]() -> asio::awaitable<Response> { co_return call_handler(request); },
            use_awaitable);
      }

      if (response.tunnel && response.upgrade == Response::Upgrade::WebSocket) {
        co_await in_strand(run_websocket(stream, deadline, msg, response));
        co_return;  // the close handshake ended the connection
      }
      if (response.tunnel && response.upgrade == Response::Upgrade::Raw && response.status == 101) {
        co_await in_strand(run_raw_tunnel(stream, deadline, buffer, response, version));
        co_return;  // the tunnel owned the connection to its end
      }
      bool ok = false;
      if (response.stream) {
        ok = co_await in_strand(write_stream(stream, deadline, response, version, keep_alive));
      } else {
        ok = co_await write_plain(stream, deadline, std::move(response), version, keep_alive, request.method == "HEAD");
      }
      if (!ok || !keep_alive) break;
    }
    deadline.after(std::chrono::seconds(2));
    co_await stream.async_shutdown(asio::redirect_error(use_awaitable, ec));
  }

  // Declared before ioc_: destroying ioc_ destroys the coroutines still suspended in it,
  // whose stream registrations reach back into these.
  ServerOptions options_;
  Handler handler_;
  std::mutex streams_mu_;
  bool stopping_ = false;
  std::set<std::shared_ptr<StreamSource>> streams_;
  std::set<std::shared_ptr<Tunnel>> tunnels_;
  std::mutex deadlines_mu_;
  std::unordered_set<Deadline*> deadlines_;
  asio::ssl::context ssl_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::thread_pool pool_;
  std::vector<std::thread> threads_;
  int port_ = 0;
  std::once_flag stopped_;
};

}  // namespace

api::Result<std::unique_ptr<HttpsServer>> HttpsServer::start(ServerOptions options, Handler handler) {
  auto server = std::make_unique<ServerImpl>(std::move(options), std::move(handler));
  if (auto s = server->init(); !s) return s;
  return std::unique_ptr<HttpsServer>(std::move(server));
}

}  // namespace berth::net
