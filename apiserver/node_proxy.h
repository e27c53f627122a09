// The API server's calls to node agents (pods/log), made with its own client certificate
// to the agent's HTTPS endpoint at the node's InternalIP and kubelet port.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "api/status.h"
#include "net/http.h"

namespace berth::client {
class Client;
}

namespace berth::apiserver {

class NodeProxy {
 public:
  // cert/key: the API server's client certificate (CN berth-apiserver); ca_pem: the cluster CA
  // the agents' serving certificates are checked against.
  NodeProxy(std::string cert_pem, std::string key_pem, std::string ca_pem);
  ~NodeProxy();

  // The kubelet's exec parameters.
  struct ExecOptions {
    std::vector<std::string> command;
    bool input = false, output = false, error = false, tty = false;  // stdin, stdout, stderr, tty
  };
  // Relays an Upgrade request (WebSocket, as kubectl and the client libraries send it) to
  // /exec/<ns>/<pod>/<container> on the pod's node: the agent's 101 and then the connection's
  // bytes both ways, as Kubernetes' upgrade-aware proxy does; any other answer as it came.
  net::Response exec(const nlohmann::json& pod, const nlohmann::json& node, const std::string& container,
                     const ExecOptions& options, const net::Request& request);

  // GET /containerLogs/<ns>/<pod>/<container> on the pod's node; followed logs stream.
  net::Response logs(const nlohmann::json& pod, const nlohmann::json& node, const std::string& container,
                     const net::Request& request);

 private:
  api::Result<std::shared_ptr<client::Client>> client_for(const nlohmann::json& node);

  std::string cert_pem_, key_pem_, ca_pem_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<client::Client>> clients_;  // by https://ip:port
};

}  // namespace berth::apiserver
