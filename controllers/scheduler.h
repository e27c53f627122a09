// The scheduler's framework (pkg/scheduler/framework and its default plugins), in compact
// structures so one pod is checked against thousands of nodes quickly: what a pod asks for
// (PodInfo), what a node offers and already carries (NodeInfo), the filters in Kubernetes'
// plugin order (NodeUnschedulable, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit)
// with their exact reasons, the scores (least allocated, balanced allocation, taint and affinity
// preferences, spreading an owner's pods over nodes) and the FitError message with its
// preemption part.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "controllers/util.h"

namespace berth::controllers::scheduling {

inline constexpr const char* kDefaultScheduler = "default-scheduler";
inline constexpr std::int64_t kDefaultMilliCPURequest = 100;               // for scoring only
inline constexpr std::int64_t kDefaultMemoryRequest = 200LL * 1024 * 1024;  // for scoring only
inline constexpr int kMaxNodeScore = 100;

struct Taint {
  std::string key, value, effect;
};
struct Toleration {
  std::string key, op, value, effect;
  bool tolerates(const Taint& t) const;
};
struct HostPort {
  std::string protocol, ip;
  std::int64_t port = 0;
};

struct Resources {
  std::int64_t milli_cpu = 0, memory = 0, ephemeral_storage = 0;
  std::map<std::string, std::int64_t> scalar;  // extended resources (nvidia.com/gpu, hugepages-*)
  void add(const Resources& o);
  void sub(const Resources& o);
  bool zero() const;
};

// What scheduling needs of a pod, parsed once.
struct PodInfo {
  ObjectPtr pod;
  std::string ns, name, uid, key;
  Resources requests;
  std::int64_t nonzero_milli_cpu = 0, nonzero_memory = 0;
  std::vector<Toleration> tolerations;
  json node_selector;        // {"k":"v"} or null
  json required_terms;       // nodeSelectorTerms of required node affinity, or null
  json preferred_terms;      // preferredDuringSchedulingIgnoredDuringExecution, or null
  std::vector<HostPort> host_ports;
  std::string owner_uid;     // controller ownerReference, for spreading
  std::int64_t priority = 0;
  std::string preemption_policy;

  static PodInfo from(ObjectPtr pod);
};

// A node and what the pods on it use (assumed pods included).
struct NodeInfo {
  std::string name;
  ObjectPtr node;
  Resources allocatable;
  std::int64_t allowed_pods = 0;
  std::vector<Taint> taints;  // as set, plus the implicit not-ready/unreachable NoSchedule taint
  bool unschedulable = false;
  std::string ready;          // the Ready condition's status: True, False, Unknown, or "" (none)

  Resources requested;
  std::int64_t nonzero_milli_cpu = 0, nonzero_memory = 0;
  int pod_count = 0;
  std::unordered_map<std::string, int> owner_pods;   // controller uid -> pods here
  std::map<std::int64_t, int> priorities;            // pod priority -> pods here
  std::vector<HostPort> used_ports;

  struct Usage {
    Resources requests;
    std::int64_t nonzero_milli_cpu = 0, nonzero_memory = 0;
    std::string owner_uid;
    std::int64_t priority = 0;
    std::vector<HostPort> ports;
  };
  std::unordered_map<std::string, Usage> pods;  // uid -> what it was counted with

  // Takes the node's fields (keeps the pods counted so far).
  void set_node(ObjectPtr node);
  void add_pod(const PodInfo& pod);
  bool remove_pod(const std::string& uid);
  bool has_pod(const std::string& uid) const { return pods.count(uid) > 0; }
};

enum class Code { Success, Unschedulable, UnschedulableAndUnresolvable };

struct Status {
  Code code = Code::Success;
  std::vector<std::string> reasons;
  bool ok() const { return code == Code::Success; }
};

// The filter plugins in the default profile's order; the first failure is the node's status.
Status filter(const PodInfo& pod, const NodeInfo& node);
// The individual plugins (exposed for tests).
Status filter_node_unschedulable(const PodInfo& pod, const NodeInfo& node);
Status filter_taint_toleration(const PodInfo& pod, const NodeInfo& node);
Status filter_node_affinity(const PodInfo& pod, const NodeInfo& node);
Status filter_node_ports(const PodInfo& pod, const NodeInfo& node);
Status filter_resources_fit(const PodInfo& pod, const NodeInfo& node);
bool node_matches_selector_terms(const json& terms, const NodeInfo& node);
bool node_matches_term(const json& term, const NodeInfo& node);

// Weighted sum of the score plugins for each feasible node, normalized as the framework does.
std::vector<std::int64_t> score(const PodInfo& pod, const std::vector<const NodeInfo*>& nodes);
std::int64_t least_allocated_score(const PodInfo& pod, const NodeInfo& node);
std::int64_t balanced_allocation_score(const PodInfo& pod, const NodeInfo& node);

// numFeasibleNodesToFind: how many feasible nodes to look for before scoring.
int num_feasible_nodes_to_find(int num_all_nodes, int percentage_of_nodes_to_score);

// One scheduling cycle (schedulePod): filters nodes from next_start on until enough feasible ones
// are found (num_feasible_nodes_to_find), scores them and picks the best, ties at random. Returns
// the node's index in nodes, or -1 with the FitError message in failure. next_start advances past
// the nodes looked at, so successive pods start where the last one stopped.
int schedule_cycle(const PodInfo& pod, const std::vector<NodeInfo*>& nodes, int& next_start, int percentage,
                   std::uint64_t random, std::string& failure);

// FitError.Error() for a pod no node fits, with DefaultPreemption's PostFilter message:
// "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {k: v}.
// preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
// statuses has one entry per node in nodes.
std::string fit_error_message(const PodInfo& pod, const std::vector<const NodeInfo*>& nodes,
                              const std::vector<Status>& statuses);

}  // namespace berth::controllers::scheduling
