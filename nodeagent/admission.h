// Pod admission as the kubelet does it before a pod bound to the node may run (its predicate
// admit handler, which reuses the scheduler's checks): the pod's requests must fit the node's
// allocatable beside the pods already admitted (pods count, cpu, memory, ephemeral storage,
// extended resources), its node selector and required node affinity must match the node, its
// host ports must be free, and NoExecute taints must be tolerated. A rejected pod is failed with
// the kubelet's reason (OutOfcpu, OutOfmemory, OutOfpods, NodeAffinity, ...) and message.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nodeagent/util.h"

namespace berth::nodeagent {

struct AdmitResult {
  bool admit = true;
  std::string reason;   // status.reason and the event's reason
  std::string message;  // the event's message; status.message is "Pod was rejected: " + message
};

// node: the Node object (labels, spec.taints, status.allocatable); admitted: the pods already
// admitted and still active on the node (the pod itself excluded), as they were admitted.
AdmitResult admit_pod(const json& pod, const json& node, const std::vector<std::shared_ptr<const json>>& admitted);

// The status message of a rejected pod (the kubelet's rejectPod).
inline std::string rejection_message(const AdmitResult& r) { return "Pod was rejected: " + r.message; }

}  // namespace berth::nodeagent
