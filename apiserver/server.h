// `berth server`: opens the store and the PKI under a data directory and serves the
// Kubernetes API over HTTPS until stopped.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "api/status.h"

namespace berth::store {
class Store;
}

namespace berth::apiserver {

struct ServerConfig {
  std::string data_dir = "/var/lib/berth";
  std::string listen = "127.0.0.1:6443";
  std::vector<std::string> tls_sans;   // extra names and addresses for the serving certificate
  std::string token_auth_file;          // optional static bearer tokens (token,user,uid,"groups")
  std::chrono::milliseconds compaction_window{std::chrono::minutes(5)};
  std::size_t worker_threads = 32;
  std::size_t io_threads = 2;
  // --default-not-ready-toleration-seconds / --default-unreachable-toleration-seconds.
  std::int64_t default_not_ready_toleration_seconds = 300;
  std::int64_t default_unreachable_toleration_seconds = 300;
};

class ApiServer {
 public:
  // Locks the data directory, opens the store, creates or loads the PKI, writes the admin
  // kubeconfig and starts listening. Fails with a clear message (lock held, corrupt store,
  // address in use) without side effects on the data it did not create.
  static api::Result<std::unique_ptr<ApiServer>> start(const ServerConfig& config);
  virtual ~ApiServer() = default;

  virtual std::string url() const = 0;              // https://127.0.0.1:6443
  virtual std::string kubeconfig_path() const = 0;  // <data-dir>/kubeconfig
  virtual store::Store& store() = 0;
  // Stops serving, ends watches, closes the store. Idempotent.
  virtual void stop() = 0;
};

}  // namespace berth::apiserver
