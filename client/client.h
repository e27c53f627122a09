// A Kubernetes API client over HTTPS: what controllers, the node agent and benchmarks use to
// talk to the API server like any other client (DESIGN.md, principle 3). Thread-safe; keeps a
// pool of keep-alive TLS connections. No Beast or Asio in this header.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "api/status.h"
#include "net/http.h"

namespace berth::client {

struct Config {
  std::string server;           // https://127.0.0.1:6443
  std::string ca_pem;           // trusted CA for the server certificate
  std::string cert_pem, key_pem;  // client certificate (optional)
  std::string token;            // bearer token (optional)
  std::string user_agent = "berth";
  std::size_t max_connections = 16;
  std::chrono::seconds timeout{30};  // per request (not for watches)
};

// Reads the current context of a kubeconfig (inline *-data or file paths, token).
api::Result<Config> load_kubeconfig(const std::string& path);

struct Response {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
};

// One open watch stream: events as they arrive, one JSON object per event.
class WatchStream {
 public:
  virtual ~WatchStream() = default;
  // Waits up to timeout for the next event {"type","object"}. nullopt on timeout; a non-ok
  // Status when the stream ended (Ok when the server closed it normally).
  virtual api::Result<std::optional<nlohmann::json>> next(std::chrono::milliseconds timeout) = 0;
  // Ends the stream from any thread; a blocked next() returns.
  virtual void close() = 0;
};

// One open streaming answer whose body is not events (followed logs): bytes as they arrive.
class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Waits up to timeout for more bytes. nullopt on timeout; a Status once the stream ended
  // (Ok when the server finished the body).
  virtual api::Result<std::optional<std::string>> read(std::chrono::milliseconds timeout) = 0;
  virtual void close() = 0;
};

// The answer to an Upgrade request: on 101 the connection, as a tunnel that relays bytes both
// ways once started (net::Response::Upgrade::Raw); any other answer as it came, body read.
struct Upgraded {
  Response response;
  std::shared_ptr<net::Tunnel> tunnel;  // set on 101
};

class Client {
 public:
  static api::Result<std::unique_ptr<Client>> create(Config config);
  virtual ~Client() = default;

  // A raw request. path includes the query: "/api/v1/namespaces/default/pods?limit=500".
  // headers are added to (or replace) the defaults, e.g. {"Accept", "application/json;as=Table;..."}.
  // A pooled connection the server has closed is replaced and the request sent once more.
  virtual api::Result<Response> request(const std::string& method, const std::string& path,
                                        const std::string& body = "",
                                        const std::string& content_type = "application/json",
                                        const std::vector<std::pair<std::string, std::string>>& headers = {}) = 0;

  // JSON conveniences: a non-2xx answer becomes the Status its metav1.Status body carries.
  api::Result<nlohmann::json> get(const std::string& path);
  api::Result<nlohmann::json> create(const std::string& path, const nlohmann::json& obj);
  api::Result<nlohmann::json> update(const std::string& path, const nlohmann::json& obj);
  api::Result<nlohmann::json> patch(const std::string& path, const nlohmann::json& patch,
                                    const std::string& content_type = "application/merge-patch+json");
  api::Result<nlohmann::json> remove(const std::string& path, const nlohmann::json& options = nullptr);

  // Opens a watch on a dedicated connection: path is a collection URL with its query;
  // watch=true is added. Returns once the server has answered with its headers (the watch is
  // then registered); a non-200 answer becomes its Status.
  virtual api::Result<std::unique_ptr<WatchStream>> watch(const std::string& path) = 0;

  // A GET whose body is read as it arrives (path with its query, used as given). A non-200
  // answer becomes its Status.
  virtual api::Result<std::unique_ptr<ByteStream>> stream(const std::string& path) = 0;

  // Sends method path on a new connection with the given headers (Connection: Upgrade,
  // Upgrade, Sec-WebSocket-* as the caller relays them) and waits for the answer's headers.
  virtual api::Result<Upgraded> upgrade(const std::string& method, const std::string& path,
                                        const std::vector<std::pair<std::string, std::string>>& headers);
};

// The Status a failed answer carries (its metav1.Status body, or one made from the code).
api::Status status_from(const Response& response);

}  // namespace berth::client
