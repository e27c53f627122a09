// The ReplicaSet controller's pure logic (pkg/controller/replicaset and controller_utils.go),
// exposed for tests: which pods go first on scale-down, the status it reports, the pod it
// creates from a template.
#pragma once

#include <vector>

#include "controllers/util.h"

namespace berth::controllers::replicaset {

inline constexpr int kBurstReplicas = 500;         // creates/deletes per sync
inline constexpr int kSlowStartInitialBatch = 1;
inline constexpr const char* kDeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost";

// ActivePodsWithRanks.Less: true when a should be deleted before b. rank_a/rank_b are the number
// of related active pods on each pod's node.
bool delete_before(const json& a, int rank_a, const json& b, int rank_b, TimePoint now);

// getPodsToDelete: the diff pods of filtered to delete first, ranked against related pods
// (those of every ReplicaSet of the same owner) sharing their node.
std::vector<ObjectPtr> pods_to_delete(std::vector<ObjectPtr> filtered, const std::vector<ObjectPtr>& related,
                                      int diff, TimePoint now);

// calculateStatus: the status for rs given the pods it owns (active ones) and the error of its
// last create/delete round (ReplicaFailure condition). Keeps fields it does not compute.
json calculate_status(const json& rs, const std::vector<ObjectPtr>& pods, const api::Status& manage_error,
                      TimePoint now);
// Whether status differs from what rs carries in a way worth a write (updateReplicaSetStatus).
bool status_needs_update(const json& rs, const json& status);

// GetPodFromTemplate: a pod for a template owned by owner through controller_ref.
json pod_from_template(const json& template_spec, const std::string& ns, const std::string& name_prefix,
                       const json& controller_ref);

}  // namespace berth::controllers::replicaset
