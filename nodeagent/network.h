// The pod network: a network namespace per pod (bind-mounted under /run/netns) wired by the CNI
// reference plugins as a kubelet's runtime calls them: bridge + host-local IPAM on the node's pod
// CIDR, loopback for lo. Also the pod's shared IPC namespace, created the same way.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nodeagent/util.h"

namespace berth::nodeagent {

struct NetworkOptions {
  std::string cni_bin_dir = "/usr/lib/cni";
  std::string bridge = "berth0";
  std::string pod_cidr = "10.88.0.0/16";
  std::string state_dir;  // host-local's dataDir lives under it
  std::string netns_dir = "/run/netns";
  std::string ipcns_dir = "/run/berth/ipc";
  int mtu = 0;  // 0: the plugin's default
};

struct PodNetworkStatus {
  std::string netns_path;
  std::vector<std::string> ips;  // "10.88.0.5"
};

class PodNetwork {
 public:
  static api::Result<std::unique_ptr<PodNetwork>> open(NetworkOptions options);
  virtual ~PodNetwork() = default;
  // Empty when ready; else why not ("cni plugin not initialized", a missing binary).
  virtual std::string not_ready_reason() const = 0;
  // Creates the namespace `berth-<sandbox>` and runs CNI ADD (loopback, bridge, and portmap for
  // hostPorts); idempotent for a sandbox whose namespace already exists (returns its addresses).
  // port_mappings: CNI portMappings [{hostPort, containerPort, protocol, hostIP}].
  virtual api::Result<PodNetworkStatus> setup(const std::string& sandbox_id, const std::string& ns,
                                              const std::string& name, const std::string& uid,
                                              const json& port_mappings = json::array()) = 0;
  // CNI DEL and the namespace's removal; safe to repeat.
  virtual api::Status teardown(const std::string& sandbox_id, const std::string& ns, const std::string& name,
                               const std::string& uid) = 0;
  // The pod's IPC namespace file (created on first use), and its removal.
  virtual api::Result<std::string> ensure_ipc_namespace(const std::string& sandbox_id) = 0;
  virtual void remove_ipc_namespace(const std::string& sandbox_id) = 0;
  virtual std::string netns_path(const std::string& sandbox_id) const = 0;
  // Sandboxes this agent created and has not torn down (for cleaning up after pods it no longer
  // knows); other agents' namespaces on the same host are never listed.
  virtual std::vector<std::string> sandboxes() const = 0;
};

// The CNI network configuration we pass the bridge plugin (exposed for tests).
json bridge_conf(const NetworkOptions& options, bool ip_masq);
// CNI portMappings for the pod's containers' hostPorts (the kubelet passes them the same way).
json host_port_mappings(const json& pod);
// The first address of a CIDR plus one: the bridge's gateway ("10.88.0.1").
std::string gateway_of(const std::string& cidr);

}  // namespace berth::nodeagent
