// The HTTPS listener: TLS with optional client certificates, HTTP/1.1 keep-alive, chunked
// streaming, and handlers that may wait (on a store commit) without stalling I/O: on a worker
// pool, or in fibers that give their io thread back while they wait.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "api/status.h"
#include "net/http.h"

namespace berth::net {

struct ServerOptions {
  std::string listen = "127.0.0.1:6443";  // host:port; port 0 picks a free one
  std::string cert_pem, key_pem;          // the serving certificate chain and key
  std::string client_ca_pem;              // client certificates are verified against this CA
  std::size_t io_threads = 2;
  std::size_t worker_threads = 32;  // concurrent handlers; blocking writes share group commits
  // Handlers start in a fiber on the io thread (net/fiber.h): a store write suspends the fiber
  // instead of holding a thread, and a handler calls api::leave_io_thread() before anything
  // else that blocks or runs long. Off: every handler runs on the worker pool and may block.
  bool handlers_in_fibers = false;
  std::size_t body_limit = 3 * 1024 * 1024;
  std::size_t header_limit = 64 * 1024;
  std::chrono::seconds handshake_timeout{10};
  std::chrono::seconds request_timeout{60};  // to receive one whole request
  std::chrono::seconds idle_timeout{120};    // keep-alive connection with no request
  std::chrono::milliseconds stream_poll{1000};  // a streaming source is polled at least this often
  // Formats the server's own error answers (bad request line, body too large, timeouts).
  std::function<Response(int code, const std::string& message)> error_response;
};

class HttpsServer {
 public:
  // Binds and starts serving; returns once the socket listens.
  static api::Result<std::unique_ptr<HttpsServer>> start(ServerOptions options, Handler handler);
  virtual ~HttpsServer() = default;
  virtual int port() const = 0;
  // Stops accepting, ends streams and connections, joins threads. Idempotent.
  virtual void stop() = 0;
};

}  // namespace berth::net
