#include "nodeagent/admission.h"

#include <memory>

#include "controllers/scheduler.h"

namespace berth::nodeagent {

namespace {

namespace sched = controllers::scheduling;

// The OS of the pods this agent runs (the kubelet's runtime.GOOS).
constexpr const char* kLinux = "linux";

struct Insufficient {
  std::string resource;
  int64_t requested, used, capacity;
};

// Extended resources (example.com/foo) the node does not have at all are left out, as the
// kubelet's removeMissingExtendedResources does for cluster-level resources.
bool extended_resource(const std::string& name) {
  if (name.find('/') == std::string::npos) return false;
  if (name.find("kubernetes.io/") != std::string::npos) return false;  // a prefixed native resource
  return name.rfind("requests.", 0) != 0;
}

// noderesources.Fits, keeping the numbers for the message: pods first, then cpu, memory,
// ephemeral storage and the other resources.
std::vector<Insufficient> fits(const sched::PodInfo& pod, const sched::NodeInfo& node) {
  std::vector<Insufficient> out;
  if (node.pod_count + 1 > node.allowed_pods) out.push_back({"pods", 1, node.pod_count, node.allowed_pods});
  sched::Resources r = pod.requests;
  for (auto it = r.scalar.begin(); it != r.scalar.end();)
    it = extended_resource(it->first) && !node.allocatable.scalar.count(it->first) ? r.scalar.erase(it) : std::next(it);
  if (r.zero()) return out;
  const sched::Resources& a = node.allocatable;
  const sched::Resources& u = node.requested;
  if (r.milli_cpu > 0 && r.milli_cpu > a.milli_cpu - u.milli_cpu) out.push_back({"cpu", r.milli_cpu, u.milli_cpu, a.milli_cpu});
  if (r.memory > 0 && r.memory > a.memory - u.memory) out.push_back({"memory", r.memory, u.memory, a.memory});
  if (r.ephemeral_storage > 0 && r.ephemeral_storage > a.ephemeral_storage - u.ephemeral_storage)
    out.push_back({"ephemeral-storage", r.ephemeral_storage, u.ephemeral_storage, a.ephemeral_storage});
  for (const auto& [name, want] : r.scalar) {
    if (want == 0) continue;
    auto ai = a.scalar.find(name);
    auto ui = u.scalar.find(name);
    int64_t have = ai == a.scalar.end() ? 0 : ai->second, used = ui == u.scalar.end() ? 0 : ui->second;
    if (want > have - used) out.push_back({name, want, used, have});
  }
  return out;
}

AdmitResult reject(std::string reason, std::string message) { return {false, std::move(reason), std::move(message)}; }

AdmitResult predicate_failed(const std::string& name, const std::string& why) {
  return reject(name, "Predicate " + name + " failed: " + why);
}

}  // namespace

AdmitResult admit_pod(const json& pod, const json& node, const std::vector<std::shared_ptr<const json>>& admitted) {
  // The OS checks come first: no eviction could help them.
  const json& labels = at(node, {"metadata", "labels"});
  std::string node_os = jstr(labels, {"kubernetes.io/os"}, kLinux);
  const json& pod_os_label = at(pod, {"metadata", "labels", "kubernetes.io/os"});
  if (pod_os_label.is_string() && pod_os_label.get<std::string>() != node_os)
    return reject("PodOSSelectorNodeLabelDoesNotMatch",
                  "Failed to admit pod as the `kubernetes.io/os` label doesn't match node label");
  const json& pod_os = at(pod, {"spec", "os", "name"});
  if (pod_os.is_string() && pod_os.get<std::string>() != kLinux)
    return reject("PodOSNotSupported", "Failed to admit pod as the OS field doesn't match node OS");

  sched::NodeInfo info;
  info.set_node(std::make_shared<const json>(node));
  for (const auto& p : admitted) info.add_pod(sched::PodInfo::from(p));
  sched::PodInfo me = sched::PodInfo::from(std::make_shared<const json>(pod));

  // The scheduler's AdmissionCheck order: resources, node affinity, node name, host ports; the
  // kubelet reports the first failure.
  auto missing = fits(me, info);
  if (!missing.empty()) {
    const Insufficient& f = missing.front();
    return reject("OutOf" + f.resource, "Node didn't have enough resource: " + f.resource +
                                             ", requested: " + std::to_string(f.requested) +
                                             ", used: " + std::to_string(f.used) +
                                             ", capacity: " + std::to_string(f.capacity));
  }
  if (auto s = sched::filter_node_affinity(me, info); !s.ok())
    return predicate_failed("NodeAffinity", s.reasons.empty() ? "" : s.reasons.front());
  std::string bound = jstr(pod, {"spec", "nodeName"});
  if (!bound.empty() && bound != info.name)
    return predicate_failed("NodeName", "node(s) didn't match the requested node name");
  if (auto s = sched::filter_node_ports(me, info); !s.ok())
    return predicate_failed("NodePorts", s.reasons.empty() ? "" : s.reasons.front());

  // Of the taints, only NoExecute ones keep a pod off a node it is already bound to.
  const json& taints = at(node, {"spec", "taints"});
  if (taints.is_array())
    for (const auto& t : taints) {
      if (jstr(t, {"effect"}) != "NoExecute") continue;
      sched::Taint taint{jstr(t, {"key"}), jstr(t, {"value"}), "NoExecute"};
      bool tolerated = false;
      for (const auto& tol : me.tolerations) tolerated = tolerated || tol.tolerates(taint);
      if (!tolerated) return predicate_failed("TaintToleration", "node(s) had taints that the pod didn't tolerate");
    }
  return {};
}

}  // namespace berth::nodeagent
