// The resource side of the server: discovery, OpenAPI, and the generic REST paths every
// kind is served through. Per-kind behaviour comes from its Strategy.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "apiserver/auth.h"
#include "apiserver/strategy.h"
#include "net/http.h"

namespace berth::store {
class Store;
}

namespace berth::apiserver {

class Metrics;
class NodeProxy;

struct ApiOptions {
  std::chrono::seconds bookmark_interval{60};
  std::chrono::seconds default_watch_timeout{1800};  // a watch without timeoutSeconds ends after this
  std::size_t max_nesting = 100;                       // JSON/YAML bodies nested deeper are rejected
};

class Api {
 public:
  Api(store::Store& store, ApiOptions options);
  ~Api();

  // Registers a kind. Kinds sharing a storage prefix must agree on the stored form.
  void add(std::unique_ptr<Strategy> strategy);
  // Creates what a new cluster has: the default, kube-system, kube-public and
  // kube-node-lease namespaces. Safe to call on every start.
  api::Status bootstrap();
  // The `kubernetes` Service in `default` that every cluster has, at the first address of the
  // service range and pointing at this server's port (kept up to date when the port changes).
  api::Status ensure_kubernetes_service(int port);

  net::Response handle(net::Request& request, const UserInfo& user);

  // Where to find a kind: by group and plural.
  const Strategy* find(const std::string& group, const std::string& plural) const;
  const std::vector<std::unique_ptr<Strategy>>& kinds() const { return kinds_; }
  Metrics& metrics() { return *metrics_; }
  // How pods/log reaches node agents; without one those requests answer 503.
  void set_node_proxy(std::shared_ptr<NodeProxy> proxy) { node_proxy_ = std::move(proxy); }

  struct Impl;  // the request handlers (api.cpp, watch.cpp, discovery.cpp)

 private:
  struct NamespaceStates;
  store::Store& store_;
  ApiOptions options_;
  std::vector<std::unique_ptr<Strategy>> kinds_;
  std::unique_ptr<Metrics> metrics_;
  std::shared_ptr<NodeProxy> node_proxy_;
  std::unique_ptr<NamespaceStates> namespace_states_;
};

}  // namespace berth::apiserver
