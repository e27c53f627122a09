// The Deployment controller's pure logic (pkg/controller/deployment/util/deployment_util.go,
// sync.go, progress.go), exposed for tests: surge and unavailability fence posts, how many pods
// the new ReplicaSet may have, proportional scaling, revisions and their annotations,
// conditions and the status `kubectl rollout status` reads.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "controllers/util.h"

namespace berth::controllers::deployment {

inline constexpr const char* kRevisionAnnotation = "deployment.kubernetes.io/revision";
inline constexpr const char* kRevisionHistoryAnnotation = "deployment.kubernetes.io/revision-history";
inline constexpr const char* kDesiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas";
inline constexpr const char* kMaxReplicasAnnotation = "deployment.kubernetes.io/max-replicas";
inline constexpr const char* kPodTemplateHashLabel = "pod-template-hash";
inline constexpr std::size_t kMaxRevHistoryLengthInChars = 2000;

// Condition reasons.
inline constexpr const char* kReplicaSetUpdatedReason = "ReplicaSetUpdated";
inline constexpr const char* kFailedRSCreateReason = "ReplicaSetCreateError";
inline constexpr const char* kNewReplicaSetReason = "NewReplicaSetCreated";
inline constexpr const char* kFoundNewRSReason = "FoundNewReplicaSet";
inline constexpr const char* kNewRSAvailableReason = "NewReplicaSetAvailable";
inline constexpr const char* kTimedOutReason = "ProgressDeadlineExceeded";
inline constexpr const char* kPausedDeployReason = "DeploymentPaused";
inline constexpr const char* kResumedDeployReason = "DeploymentResumed";
inline constexpr const char* kMinimumReplicasAvailable = "MinimumReplicasAvailable";
inline constexpr const char* kMinimumReplicasUnavailable = "MinimumReplicasUnavailable";

// ---- replica arithmetic -------------------------------------------------------------------

// intstr.GetScaledValueFromIntOrPercent: an int, or "N%" of total rounded up or down.
std::optional<std::int64_t> scaled_value(const json& int_or_percent, std::int64_t total, bool round_up);
// ResolveFenceposts: (surge, unavailable); both zero becomes unavailable 1.
std::pair<std::int64_t, std::int64_t> resolve_fenceposts(const json& max_surge, const json& max_unavailable,
                                                         std::int64_t desired);
std::int64_t replicas(const json& d);  // spec.replicas, default 1
bool is_rolling_update(const json& d);
std::int64_t max_surge(const json& d);
std::int64_t max_unavailable(const json& d);

std::int64_t rs_replicas(const json& rs);  // spec.replicas
// Sums over replica sets: spec.replicas, status.replicas, readyReplicas, availableReplicas.
std::int64_t replica_count(const std::vector<json>& rss);
std::int64_t actual_replica_count(const std::vector<json>& rss);
std::int64_t ready_replica_count(const std::vector<json>& rss);
std::int64_t available_replica_count(const std::vector<json>& rss);
std::vector<json> filter_active(const std::vector<json>& rss);  // spec.replicas > 0

// NewRSNewReplicas: the size the new ReplicaSet may grow to now.
std::int64_t new_rs_new_replicas(const json& d, const std::vector<json>& all_rss, const json& new_rs);
// IsSaturated: the new ReplicaSet has all the deployment's replicas available.
bool is_saturated(const json& d, const json* rs);
// GetProportion: how many replicas rs gains (or loses) of to_add, given added so far.
std::int64_t get_proportion(const json& rs, const json& d, std::int64_t to_add, std::int64_t added);

// ---- replica sets of a deployment ---------------------------------------------------------

// ComputeHash: FNV-32a of the template (and collision count), spelled with the safe alphabet.
std::string compute_hash(const json& pod_template, std::optional<std::int64_t> collision_count);
// EqualIgnoreHash: templates equal apart from the pod-template-hash label (Go's semantic
// equality: unset, empty and null are the same).
bool equal_ignore_hash(const json& a, const json& b);
void sort_by_creation(std::vector<json>& rss);           // oldest first, then name
void sort_by_size_newer(std::vector<json>& rss);         // larger first; ties newer first
void sort_by_size_older(std::vector<json>& rss);         // larger first; ties older first
void sort_by_revision(std::vector<json>& rss);           // lowest revision first
// FindNewReplicaSet: index of the oldest ReplicaSet whose template equals the deployment's.
std::optional<std::size_t> find_new_rs(const json& d, std::vector<json>& rss);  // sorts rss
// FindActiveOrLatest: the only active one, the newest, or nullptr when several are active.
const json* find_active_or_latest(const json* new_rs, std::vector<json>& old_rss);

std::int64_t revision(const json& obj);  // the revision annotation, 0 when absent or bad
std::int64_t max_revision(const std::vector<json>& rss);
// SetNewReplicaSetAnnotations; true when rs changed.
bool set_new_rs_annotations(const json& d, json& rs, const std::string& new_revision, bool exists);
bool replicas_annotations_need_update(const json& rs, std::int64_t desired, std::int64_t max);
bool set_replicas_annotations(json& rs, std::int64_t desired, std::int64_t max);
bool set_deployment_revision(json& d, const std::string& revision);

// ---- conditions and status -----------------------------------------------------------------

json new_condition(const std::string& type, const std::string& status, const std::string& reason,
                   const std::string& message, TimePoint now);
const json* get_condition(const json& status, const std::string& type);
// SetDeploymentCondition: no change when status and reason are the same; keeps
// lastTransitionTime when only the reason changes.
void set_condition(json& status, json condition);
void remove_condition(json& status, const std::string& type);

bool has_progress_deadline(const json& d);
bool deployment_complete(const json& d, const json& status);
bool deployment_progressing(const json& d, const json& new_status);
bool deployment_timed_out(const json& d, const json& status, TimePoint now);

// calculateStatus: replica counts over the deployment's replica sets and the Available
// condition; other conditions copied.
json calculate_status(const std::vector<json>& all_rss, const json* new_rs, const json& d, TimePoint now);
// syncRolloutStatus's status: calculate_status plus the Progressing condition and ReplicaFailure.
json rollout_status(const std::vector<json>& all_rss, const json* new_rs, const json& d, TimePoint now);
// The requeue delay for a deployment that may time out (requeueStuckDeployment); nullopt when
// no check is needed, zero for "now".
std::optional<std::chrono::milliseconds> stuck_requeue(const json& d, const json& new_status, TimePoint now);
// Statuses equal as Go's DeepEqual would see them.
bool status_equal(const json& a, const json& b);

// The message `kubectl rollout status` prints for a deployment and whether it is done.
std::pair<std::string, bool> rollout_status_message(const json& d);

}  // namespace berth::controllers::deployment
