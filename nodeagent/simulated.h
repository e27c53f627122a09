// Simulated (hollow) nodes, as kwok provides them: K nodes in one process sharing one client and
// one pods watch. They register, renew their leases (spread over the interval), report status,
// move pods bound to them to Running/Ready after a delay without running anything, finish pods
// being deleted, and report configurable usage through the Summary API. No per-node threads:
// a timer queue and a small pool of request workers serve 5,000 nodes and 150,000 pods.
#pragma once

#include <memory>
#include <string>

#include "nodeagent/agent.h"
#include "nodeagent/server.h"
#include "nodeagent/util.h"

namespace berth::client {
class Client;
}

namespace berth::nodeagent {

class SimulatedFleet : public EndpointBackend {
 public:
  // Registers every node (in parallel on the workers) and starts the loops.
  static api::Result<std::unique_ptr<SimulatedFleet>> start(const AgentOptions& options, client::Client* client,
                                                            int endpoint_port);
  virtual void stop() = 0;
};

// Node i's InternalIP: a distinct loopback address (127.1.x.y), so the API server can reach each
// simulated node's endpoint (the shared listener tells them apart by the Host header).
std::string simulated_node_ip(int index);
// Node i's pod range: the i-th /24 of base ("10.128.0.0/9" -> 10.128.<i>.0/24 ...); "" past the end.
std::string simulated_pod_cidr(const std::string& base, int index);
// The status a simulated node reports for a pod: Running, every condition True, containers
// running since now, init containers completed.
json simulated_pod_status(const json& pod, const std::string& node_ip, const std::string& pod_ip,
                          Clock::time_point now);

}  // namespace berth::nodeagent
