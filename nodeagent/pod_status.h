// What the agent knows about a pod it runs (persisted in its state directory so a restarted agent
// re-adopts containers and never starts a pod twice), the CrashLoopBackOff back-off, and the pod
// status computed from it as the kubelet's generateAPIPodStatus/getPhase do: phase, the
// PodReadyToStartContainers/Initialized/Ready/ContainersReady/PodScheduled conditions, and
// (init)containerStatuses with waiting/running/terminated, lastState and restartCount.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nodeagent/util.h"

namespace berth::nodeagent {

struct Termination {
  int exit_code = 0;
  std::string reason;  // Completed | Error | OOMKilled | StartError | ContainerStatusUnknown
  std::string message;
  Clock::time_point started_at{}, finished_at{};
  std::string container_id;  // "runc://<id>"
  int signal = 0;
};

struct ContainerRecord {
  enum class State { Waiting, Running, Terminated };
  std::string name;
  bool init = false, sidecar = false;
  int restart_count = 0;
  bool ever_created = false;  // an instance was created (restartCount counts from the first)
  std::string id;             // the current (or most recent) instance, "runc://<runtime id>"
  std::string prev_id;        // the instance before it, kept for `logs --previous`
  State state = State::Waiting;
  std::string waiting_reason = "ContainerCreating", waiting_message;
  Clock::time_point started_at{};
  std::optional<Termination> terminated;  // of the most recent instance, once it exited
  std::optional<Termination> last;        // of the instance before
  std::string image, image_id;
  bool ready = false;
  bool started = false;  // startup probe passed (or none)
  std::string termination_log;  // host file mounted at terminationMessagePath
  std::string spec_hash;        // of the container spec the current instance was made from

  json to_json() const;
  static ContainerRecord from_json(const json& j);
};

struct PodRecord {
  std::string uid, ns, name;
  bool sandbox_ready = false;
  std::vector<std::string> pod_ips;
  Clock::time_point start_time{};
  std::vector<ContainerRecord> init_containers, containers;
  bool terminal = false;  // Succeeded or Failed: nothing is started again
  bool deleting = false;  // being torn down after a deletion
  // Why the agent itself failed the pod (status.reason/message): DeadlineExceeded when
  // activeDeadlineSeconds ran out, or an admission rejection (OutOfcpu, NodeAffinity, ...).
  std::string reason, message;
  bool rejected = false;  // refused at admission: nothing of it ever ran on this node

  json to_json() const;
  static PodRecord from_json(const json& j);
  ContainerRecord* find(const std::string& name, bool init);
  // Adds records for containers in the spec that have none yet (in spec order).
  void sync_with_spec(const json& pod);
};

// client-go's flowcontrol.Backoff as the kubelet uses it: 10 s doubling to 5 min, reset when an
// entry has been idle for twice the maximum.
class Backoff {
 public:
  Backoff(std::chrono::nanoseconds initial = std::chrono::seconds(10),
          std::chrono::nanoseconds max = std::chrono::minutes(5))
      : initial_(initial), max_(max) {}
  // Records an attempt at event_time (now when not given).
  void next(const std::string& key, Clock::time_point event_time, Clock::time_point now);
  // Whether a restart after an exit at event_time must still wait.
  bool in_backoff_since(const std::string& key, Clock::time_point event_time, Clock::time_point now) const;
  // Whether the last attempt (next()) was less than the current back-off ago (image pulls).
  bool in_backoff_since_update(const std::string& key, Clock::time_point now) const;
  std::chrono::nanoseconds get(const std::string& key) const;
  // When the back-off of the last attempt (next()) ends (image pulls).
  Clock::time_point ready_after_update(const std::string& key) const;
  // When waiting for key ends, for an exit at event_time.
  Clock::time_point ready_at(const std::string& key, Clock::time_point event_time) const;
  void reset(const std::string& key) { entries_.erase(key); }

 private:
  struct Entry {
    std::chrono::nanoseconds backoff;
    Clock::time_point last_update;
  };
  std::chrono::nanoseconds initial_, max_;
  std::map<std::string, Entry> entries_;
};

struct StatusInputs {
  std::string host_ip;
  bool deleting = false;  // the pod is being killed for deletion (podIsTerminal once all stopped)
};

// The pod phase (getPhase).
std::string compute_phase(const json& pod, const PodRecord& rec, bool pod_is_terminal);

// The kubelet's activeDeadlineHandler: whether a pod that started at start_time has been active
// longer than spec.activeDeadlineSeconds, and when it will be (nullopt: no deadline, or not started).
inline constexpr const char* kDeadlineExceededReason = "DeadlineExceeded";
inline constexpr const char* kDeadlineExceededMessage = "Pod was active on the node longer than the specified deadline";
std::optional<Clock::time_point> active_deadline(const json& pod, Clock::time_point start_time);

// The status we report (sent as a strategic merge patch; conditions merge by type, so
// conditions other components own survive). lastTransitionTime is kept from the API object's
// conditions when the status is unchanged.
json compute_pod_status(const json& pod, const PodRecord& rec, const StatusInputs& in, Clock::time_point now);

// The container status entry (v1.ContainerStatus) for one record and its spec.
json container_status_json(const ContainerRecord& rec, const json& spec_container);

}  // namespace berth::nodeagent
