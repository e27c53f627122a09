// What a node reports about itself: the Node object at registration, its status (capacity,
// allocatable, addresses, nodeInfo, the four conditions with the kubelet's reasons), and its
// Lease in kube-node-lease. Pure functions over NodeFacts, so the same code serves real and
// simulated nodes and is unit-tested without a host.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "nodeagent/util.h"

namespace berth::nodeagent {

struct NodeFacts {
  std::string name;
  std::string hostname;
  std::string internal_ip;
  int kubelet_port = 10250;
  std::string pod_cidr;  // empty: not set by us
  std::map<std::string, std::string> labels;
  // capacity
  std::string cpu = "1";                   // a quantity: "2", "32"
  int64_t memory_bytes = 0;                // printed BinarySI ("16311612Ki")
  int64_t ephemeral_storage_bytes = 0;     // printed BinarySI
  int pods = 110;
  bool hugepages = true;                   // report hugepages-1Gi/2Mi: 0
  // allocatable = capacity minus the kubelet's default eviction thresholds
  int64_t memory_reserved_bytes = 100 * 1024 * 1024;  // memory.available<100Mi
  int ephemeral_reserved_percent = 10;                 // nodefs.available<10%
  // nodeInfo
  std::string machine_id, system_uuid, boot_id;
  std::string kernel_version, os_image, container_runtime_version, kubelet_version;
  std::string architecture = "amd64", operating_system = "linux";
};

struct NodeHealth {
  bool ready = true;
  std::string not_ready_message;  // KubeletNotReady's message
  bool memory_pressure = false, disk_pressure = false, pid_pressure = false;
};

// The Node to POST: labels (kubernetes.io/hostname, os, arch and the beta twins), the
// controller-managed-attach-detach annotation, spec.podCIDR(s), and the first status.
json build_node(const NodeFacts& facts, const NodeHealth& health, Clock::time_point now);

// The status the node reports. Conditions keep lastTransitionTime from `previous` (the
// status.conditions last sent) while their status is unchanged; lastHeartbeatTime is `now`.
json build_node_status(const NodeFacts& facts, const NodeHealth& health, const json& previous_conditions,
                       Clock::time_point now);

// True when `a` and `b` differ in more than heartbeat times (worth a status update now).
bool node_status_changed(const json& a, const json& b);

// The node's Lease (coordination.k8s.io/v1, kube-node-lease/<name>), owned by the Node.
json build_lease(const std::string& node_name, const std::string& node_uid, int duration_seconds,
                 Clock::time_point now);

// Facts read from this host: /proc, /etc/os-release, uname, statfs(data_dir), the runtime's
// version ("runc://1.1.5"), the default route's address.
NodeFacts detect_host_facts(const std::string& node_name, const std::string& node_ip, const std::string& data_dir,
                            const std::string& runtime_name, const std::string& runtime_path);

// The kubelet version we report: v1.32.0-berth.<berth version>.
std::string kubelet_version();

// Memory and disk pressure of this host, as the kubelet's default eviction thresholds see them.
NodeHealth host_health(const NodeFacts& facts, const std::string& data_dir);

// The address of the interface the default route uses; "" when there is none.
std::string default_route_ipv4();
std::string host_name();

}  // namespace berth::nodeagent
