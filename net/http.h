// HTTP requests and responses as the rest of Berth sees them: plain structs, no Beast
// types, so handlers compile without Asio and can be unit-tested without sockets.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace berth::net {

// Who is on the other end, as the transport established it.
struct Peer {
  std::string address;                     // "127.0.0.1:53422"
  bool client_certificate = false;         // a certificate that chains to our CA was presented
  std::string common_name;                 // its CN
  std::vector<std::string> organizations;  // its O values
};

struct Request {
  std::string method;  // "GET"
  std::string target;  // raw target: "/api/v1/pods?limit=500"
  std::string path;    // decoded path without the query: "/api/v1/pods"
  std::vector<std::pair<std::string, std::string>> query;   // decoded, in order
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  Peer peer;

  // First value of a header or query parameter.
  std::optional<std::string_view> header(std::string_view lower_name) const;
  std::optional<std::string_view> param(std::string_view name) const;
};

// A body produced over time (watch events, followed logs): the server writes each chunk
// as it comes, using chunked transfer encoding, until the source says it is done.
class StreamSource {
 public:
  virtual ~StreamSource() = default;
  // Called once, before the first poll, with a function the source calls from any thread
  // when more data may be ready. wake must not block.
  virtual void start(std::function<void()> wake) = 0;
  enum class State { More, Wait, Done };
  // Appends whatever is ready to out. More: call again at once; Wait: call after a wake or
  // after the poll interval; Done: the stream ends after out is written.
  virtual State poll(std::string& out) = 0;
  // The client went away or the server is stopping; release resources. Any thread.
  virtual void stop() = 0;
};

// The far end of an upgraded connection (kubectl exec): once the server has switched
// protocols it hands the connection to a Tunnel. The server's io threads call every method but
// stop, so none may block: a tunnel buffers what it is given and does slow work on its own
// threads, calling wake when it has something for the client.
class Tunnel {
 public:
  virtual ~Tunnel() = default;
  // Called once, before anything else, from the io thread; wake may be called from any thread.
  virtual void start(std::function<void()> wake) = 0;
  // What the client sent: raw bytes (Upgrade::Raw) or one whole binary message (WebSocket).
  virtual void receive(std::string data) = 0;
  enum class State { More, Wait, Done };
  // Appends what is ready for the client: byte chunks (Raw) or whole messages (WebSocket).
  // More: call again at once; Wait: after a wake or the poll interval; Done: the tunnel ends
  // after out is sent (a WebSocket then gets a normal close).
  virtual State poll(std::vector<std::string>& out) = 0;
  // The client closed its side (EOF, a WebSocket close, or an error); poll goes on until Done.
  virtual void client_closed() = 0;
  // The connection is gone or the server is stopping; release resources. Any thread.
  virtual void stop() = 0;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // Content-Type among them
  std::string body;
  std::shared_ptr<StreamSource> stream;  // set: body is streamed after `body`

  // Set with tunnel: how the connection switches protocols.
  //   Raw: the server sends this answer's status and headers as they are (a 101 relayed from
  //     another server, Upgrade and Connection included) and then passes bytes both ways.
  //   WebSocket: the server does the RFC 6455 handshake with the request (a 400 when it is not
  //     a valid one); status and body are unused; headers go into the 101, so a handler picks
  //     the subprotocol by setting Sec-WebSocket-Protocol. Messages are binary both ways.
  enum class Upgrade { None, Raw, WebSocket } upgrade = Upgrade::None;
  std::shared_ptr<Tunnel> tunnel;

  Response& set_header(std::string name, std::string value);
  static Response text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
};

using Handler = std::function<Response(Request&)>;

// Connection: upgrade with Upgrade: websocket (any case, in a list), as RFC 6455 asks.
bool is_websocket_upgrade(const Request& request);
// Upgrade asked for any protocol (a header Connection: upgrade and an Upgrade header).
bool is_upgrade(const Request& request);
// The subprotocols a WebSocket client offers (Sec-WebSocket-Protocol, every instance), in order.
std::vector<std::string> websocket_protocols(const Request& request);

// Percent-decoding for paths and query strings; '+' becomes ' ' in queries only.
std::string url_decode(std::string_view s, bool query);
// Percent-encoding of everything but RFC 3986's unreserved characters, for a path segment or
// a query value.
std::string url_encode(std::string_view s);
std::vector<std::pair<std::string, std::string>> parse_query(std::string_view q);

}  // namespace berth::net
