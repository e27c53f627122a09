#include "apiserver/server.h"

#include <unistd.h>

#include <cstdio>

#include "apiserver/api.h"
#include "apiserver/data_dir.h"
#include "apiserver/errors.h"
#include "apiserver/kinds/registry.h"
#include "apiserver/metrics.h"
#include "apiserver/node_proxy.h"
#include "apiserver/router.h"
#include "net/https_server.h"
#include "net/pki.h"
#include "store/rocksdb_store.h"
#include "store/store.h"

namespace berth::apiserver {

namespace {

// The address clients are told to use: a wildcard listen address is reached through loopback.
std::string client_url(const std::string& listen, int port) {
  std::string host = listen.substr(0, listen.rfind(':'));
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::" || host == "[::]") host = "[::1]";
  if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
  return "https://" + host + ":" + std::to_string(port);
}

class ApiServerImpl final : public ApiServer {
 public:
  std::unique_ptr<DataDirLock> lock;
  std::unique_ptr<store::Store> db;
  std::shared_ptr<Api> api;
  std::unique_ptr<net::HttpsServer> https;
  std::string url_, kubeconfig_;
  bool stopped = false;

  ~ApiServerImpl() override { stop(); }
  std::string url() const override { return url_; }
  std::string kubeconfig_path() const override { return kubeconfig_; }
  store::Store& store() override { return *db; }
  void stop() override {
    if (stopped) return;
    stopped = true;
    if (https) https->stop();
    // The store closes before the HTTPS server is destroyed: closing completes the writes still
    // queued, and their fibers' resumptions must find the (stopped) server's queue still there;
    // destroying the server then discards them.
    db.reset();
    https.reset();
    api.reset();
    lock.reset();
  }
};

}  // namespace

api::Result<std::unique_ptr<ApiServer>> ApiServer::start(const ServerConfig& config) {
  auto server = std::make_unique<ApiServerImpl>();
  auto lock = DataDirLock::acquire(config.data_dir);
  if (!lock) return lock.take_status();
  server->lock = std::move(*lock);

  store::RocksDbOptions store_options;
  store_options.path = config.data_dir + "/db";
  store_options.compaction_window = config.compaction_window;
  auto db = store::open_rocksdb(store_options);
  if (!db) return db.take_status();
  server->db = std::move(*db);

  auto pki = net::ensure_server_pki(config.data_dir, config.tls_sans);
  if (!pki) return pki.take_status();
  for (const auto& what : pki->issued) std::fprintf(stderr, "I pki: issued %s\n", what.c_str());

  Authenticator authenticator;
  authenticator.add_token(pki->node_token, {"system:node-bootstrap", {"system:nodes", "system:bootstrappers"}});
  if (!config.token_auth_file.empty()) {
    if (auto s = authenticator.load_token_file(config.token_auth_file); !s) return s;
  }

  server->api = std::make_shared<Api>(*server->db, ApiOptions{});
  KindOptions kind_options;
  kind_options.default_not_ready_toleration_seconds = config.default_not_ready_toleration_seconds;
  kind_options.default_unreachable_toleration_seconds = config.default_unreachable_toleration_seconds;
  register_kinds(*server->api, kind_options);
  server->api->set_node_proxy(
      std::make_shared<NodeProxy>(pki->apiserver_client.cert_pem, pki->apiserver_client.key_pem, pki->ca.cert_pem));
  if (auto s = server->api->bootstrap(); !s) return s;
  store::Store* db_ptr = server->db.get();
  server->api->metrics().set_revision_source([db_ptr] { return db_ptr->current_revision(); });

  auto router = std::make_shared<Router>(std::move(authenticator), server->api);
  net::ServerOptions http;
  http.listen = config.listen;
  http.cert_pem = pki->server.cert_pem;
  http.key_pem = pki->server.key_pem;
  http.client_ca_pem = pki->ca.cert_pem;
  http.io_threads = config.io_threads;
  http.worker_threads = config.worker_threads;
  http.handlers_in_fibers = true;  // the API handlers leave the io thread where they would block
  http.error_response = [](int code, const std::string& message) {
    return error_response(reason_for_code(code), message);
  };
  auto https = net::HttpsServer::start(http, [router](net::Request& r) { return router->handle(r); });
  if (!https) return https.take_status();
  server->https = std::move(*https);

  if (auto s = server->api->ensure_kubernetes_service(server->https->port()); !s) return s;
  server->url_ = client_url(config.listen, server->https->port());
  server->kubeconfig_ = config.data_dir + "/kubeconfig";
  if (auto s = net::write_kubeconfig(server->kubeconfig_, server->url_, pki->ca.cert_pem, pki->admin, "admin"); !s)
    return s;
  return std::unique_ptr<ApiServer>(std::move(server));
}

}  // namespace berth::apiserver
