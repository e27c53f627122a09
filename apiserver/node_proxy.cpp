#include "apiserver/node_proxy.h"

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "apiserver/errors.h"
#include "apiserver/strategy.h"
#include "client/client.h"

namespace berth::apiserver {

using api::Reason;
using api::Status;
using nlohmann::json;

namespace {

// Relays a followed log: a reader thread waits on the agent's stream and wakes the server's
// writer, which must never block.
class LogRelay final : public net::StreamSource {
 public:
  explicit LogRelay(std::unique_ptr<client::ByteStream> upstream) : upstream_(std::move(upstream)) {}
  ~LogRelay() override { stop(); }

  void start(std::function<void()> wake) override {
    reader_ = std::thread([this, wake = std::move(wake)] {
      while (!stopped_) {
        auto chunk = upstream_->read(std::chrono::milliseconds(500));
        std::lock_guard lock(mu_);
        if (!chunk) {
          done_ = true;
        } else if (*chunk) {
          buffer_ += **chunk;
        } else {
          continue;
        }
        wake();
        if (done_) return;
      }
    });
  }

  State poll(std::string& out) override {
    std::lock_guard lock(mu_);
    out += buffer_;
    buffer_.clear();
    return done_ ? State::Done : State::Wait;
  }

  void stop() override {
    if (stopped_.exchange(true)) return;
    upstream_->close();
    if (reader_.joinable()) reader_.join();
  }

 private:
  std::unique_ptr<client::ByteStream> upstream_;
  std::thread reader_;
  std::mutex mu_;
  std::string buffer_;
  bool done_ = false;
  std::atomic<bool> stopped_{false};
};

}  // namespace

NodeProxy::NodeProxy(std::string cert_pem, std::string key_pem, std::string ca_pem)
    : cert_pem_(std::move(cert_pem)), key_pem_(std::move(key_pem)), ca_pem_(std::move(ca_pem)) {}
NodeProxy::~NodeProxy() = default;

api::Result<std::shared_ptr<client::Client>> NodeProxy::client_for(const json& node) {
  std::string name = at(node, {"metadata", "name"}).is_string() ? at(node, {"metadata", "name"}).get<std::string>() : "";
  std::string address;
  const json& addresses = at(node, {"status", "addresses"});
  if (addresses.is_array()) {
    for (const auto& a : addresses)
      if (a.value("type", "") == "InternalIP" && address.empty()) address = a.value("address", "");
    for (const auto& a : addresses)
      if (a.value("type", "") == "Hostname" && address.empty()) address = a.value("address", "");
  }
  const json& port_json = at(node, {"status", "daemonEndpoints", "kubeletEndpoint", "Port"});
  int port = port_json.is_number_integer() ? port_json.get<int>() : 0;
  if (address.empty() || port <= 0)
    return Status(Reason::ServiceUnavailable, "node \"" + name + "\" reports no address and port for its agent");
  std::string host = address.find(':') != std::string::npos ? "[" + address + "]" : address;
  std::string url = "https://" + host + ":" + std::to_string(port);
  std::lock_guard lock(mu_);
  auto it = clients_.find(url);
  if (it != clients_.end()) return it->second;
  client::Config config;
  config.server = url;
  config.ca_pem = ca_pem_;
  config.cert_pem = cert_pem_;
  config.key_pem = key_pem_;
  config.user_agent = "berth-apiserver";
  config.max_connections = 4;
  auto c = client::Client::create(config);
  if (!c) return c.take_status();
  std::shared_ptr<client::Client> shared = std::move(*c);
  clients_[url] = shared;
  return shared;
}

net::Response NodeProxy::logs(const json& pod, const json& node, const std::string& container,
                              const net::Request& request) {
  auto c = client_for(node);
  if (!c) return status_response(c.status());
  std::string path = "/containerLogs/" + net::url_encode(at(pod, {"metadata", "namespace"}).get<std::string>()) + "/" +
                     net::url_encode(at(pod, {"metadata", "name"}).get<std::string>()) + "/" + net::url_encode(container);
  std::string query;
  bool follow = false;
  for (const auto& [k, v] : request.query) {
    if (k == "follow" || k == "tailLines" || k == "timestamps" || k == "previous" || k == "sinceSeconds" ||
        k == "sinceTime" || k == "limitBytes") {
      query += (query.empty() ? "?" : "&") + k + "=" + net::url_encode(v);
      if (k == "follow" && (v == "true" || v == "1")) follow = true;
    }
  }
  path += query;
  net::Response r;
  r.status = 200;
  r.headers.emplace_back("Content-Type", "text/plain");
  if (follow) {
    auto s = (*c)->stream(path);
    if (!s) return status_response(s.status());
    r.stream = std::make_shared<LogRelay>(std::move(*s));
    return r;
  }
  auto answer = (*c)->request("GET", path);
  if (!answer) return status_response(answer.status());
  if (answer->status != 200) return status_response(client::status_from(*answer));
  r.body = std::move(answer->body);
  return r;
}

net::Response NodeProxy::exec(const json& pod, const json& node, const std::string& container,
                              const ExecOptions& options, const net::Request& request) {
  auto c = client_for(node);
  if (!c) return status_response(c.status());
  // The kubelet's form: /exec/<ns>/<pod>/<container>?input=1&output=1&error=1&tty=1&command=...
  std::string path = "/exec/" + net::url_encode(at(pod, {"metadata", "namespace"}).get<std::string>()) + "/" +
                     net::url_encode(at(pod, {"metadata", "name"}).get<std::string>()) + "/" + net::url_encode(container);
  std::string query;
  auto add = [&](const std::string& k, const std::string& v) { query += (query.empty() ? "?" : "&") + k + "=" + net::url_encode(v); };
  for (const auto& arg : options.command) add("command", arg);
  if (options.input) add("input", "1");
  if (options.output) add("output", "1");
  if (options.error) add("error", "1");
  if (options.tty) add("tty", "1");
  path += query;
  // The upgrade travels as the client asked for it; credentials and hop-by-hop fields stay here.
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& [k, v] : request.headers) {
    if (k == "connection" || k == "upgrade" || k.rfind("sec-websocket-", 0) == 0 || k == "x-stream-protocol-version")
      headers.emplace_back(k, v);
  }
  auto upgraded = (*c)->upgrade(request.method, path, headers);
  if (!upgraded) return status_response(upgraded.status());
  net::Response r;
  r.status = upgraded->response.status;
  if (upgraded->tunnel) {
    r.headers = upgraded->response.headers;
    r.upgrade = net::Response::Upgrade::Raw;
    r.tunnel = std::move(upgraded->tunnel);
    return r;
  }
  // Not upgraded: the agent's answer as it came (the client reads its body as the reason).
  for (const auto& [k, v] : upgraded->response.headers)
    if (k == "content-type") r.headers.emplace_back("Content-Type", v);
  r.body = std::move(upgraded->response.body);
  return r;
}

}  // namespace berth::apiserver
