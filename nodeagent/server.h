// The agent's own HTTPS endpoint (the kubelet's port 10250), on net::HttpsServer: only the API
// server's client certificate (CN berth-apiserver, signed by the cluster CA) is let in.
//   GET /containerLogs/<ns>/<pod>/<container>?follow=&tailLines=&timestamps=&previous=&sinceSeconds=&limitBytes=
//   GET /stats/summary
//   GET|POST /exec/<ns>/<pod>/<container>?command=..&input=1&output=1&error=1&tty=1 (WebSocket)
//   GET /healthz
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "net/http.h"
#include "net/https_server.h"
#include "nodeagent/agent.h"
#include "nodeagent/util.h"

namespace berth::nodeagent {

// What the endpoint serves; implemented by the real agent and by the simulated fleet.
class EndpointBackend {
 public:
  virtual ~EndpointBackend() = default;
  virtual net::Response container_logs(const std::string& ns, const std::string& pod, const std::string& container,
                                       const net::Request& request) = 0;
  virtual net::Response stats_summary(const net::Request& request) = 0;
  // A WebSocket exec session in a running container (nodeagent/exec.h). Nodes without
  // containers (the simulated fleet) answer that they cannot.
  virtual net::Response exec(const std::string& ns, const std::string& pod, const std::string& container,
                             const net::Request& request);
};

struct EndpointTls {
  std::string cert_pem, key_pem, client_ca_pem;
};

// The serving certificate: the given files; else one issued by the cluster CA when its key is
// at hand (berth up); else self-signed. sans: node names and addresses.
api::Result<EndpointTls> endpoint_tls(const AgentOptions& options, const std::string& cluster_ca_pem,
                                      const std::string& node_name, const std::vector<std::string>& sans);

// Routes and authorizes a request (exposed for tests).
net::Response handle_endpoint_request(net::Request& request, EndpointBackend& backend,
                                      const std::vector<std::string>& allowed_clients);

api::Result<std::unique_ptr<net::HttpsServer>> start_endpoint(const std::string& listen, const EndpointTls& tls,
                                                              EndpointBackend& backend,
                                                              std::vector<std::string> allowed_clients);

// A kubelet-style plain-text error answer.
net::Response text_error(int code, const std::string& message);

}  // namespace berth::nodeagent
