// One worker per pod (as the kubelet's pod workers): a thread that drives the pod to its spec
// and reports its status: volumes, the sandbox (network and IPC namespaces, /etc/hosts), images,
// init containers in order, containers with restartPolicy and CrashLoopBackOff, probes, and
// graceful deletion (preStop, SIGTERM, SIGKILL after the grace period, cleanup, then the final
// DELETE with gracePeriodSeconds=0).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "nodeagent/pod_status.h"
#include "nodeagent/probes.h"
#include "nodeagent/util.h"

namespace berth::client {
class Client;
}
namespace berth::nodeagent::images {
class ImageStore;
}

namespace berth::nodeagent {

class Runtime;
class PodNetwork;
class VolumeManager;
class ObjectSource;
class EventRecorder;

// What every pod worker shares (owned by the Agent).
struct AgentContext {
  client::Client* client = nullptr;
  Runtime* runtime = nullptr;
  images::ImageStore* images = nullptr;
  PodNetwork* network = nullptr;
  VolumeManager* volumes = nullptr;
  ObjectSource* objects = nullptr;
  EventRecorder* events = nullptr;
  std::string node_name, host_ip;
  json node_allocatable;      // for resourceFieldRef defaults
  int64_t memory_capacity = 0;
  std::string cgroup_root = "/berth";
  bool cgroup_v2 = false;
  std::string pods_dir;       // <data>/pods/<uid>/{state.json,volumes,etc-hosts,...}
  std::string logs_dir;       // CRI logs root
  std::string cluster_dns;
  std::string runtime_name = "runc";
};

// A read-only view of a running pod for the logs and stats endpoints.
struct PodSnapshot {
  std::string uid, ns, name;
  Clock::time_point start_time{};
  std::string cgroup_parent;
  struct Container {
    std::string name, id;  // id: runtime id (no prefix), "" when none
    bool running = false;
    Clock::time_point started_at{};
    int restart_count = 0;
    bool has_previous = false;
    bool init = false;
    std::string cgroup;  // the container's cgroupsPath
  };
  std::vector<Container> containers;
};

class PodWorker {
 public:
  // restored: the record from the state directory after an agent restart.
  PodWorker(AgentContext& ctx, std::string uid, std::optional<PodRecord> restored);
  ~PodWorker();
  // Starts the thread. Until the first update() or removed(), a restored worker only waits.
  void start();
  // The pod as the API server last showed it.
  void update(const json& pod);
  // The pod is gone from the API server (deleted, or never known there).
  void removed();
  // Agent shutdown: the thread ends, containers keep running.
  void stop();
  // The pod has been torn down; the worker can be dropped.
  bool finished() const { return finished_.load(); }
  PodSnapshot snapshot();
  // Wakes the worker (a container may have exited).
  void poke();
  // The pod as first given (as admitted), while it still holds resources on the node (the
  // kubelet's active pods: not yet in a terminal phase with everything stopped); what admission
  // counts. Null otherwise.
  std::shared_ptr<const json> admitted_pod();
  std::string uid() const { return uid_; }

 private:
  void run();
  void sync();
  void sync_running(json& pod);
  void terminate(const json& pod, bool deleted_from_api);
  void refresh_containers(const json& pod);
  bool start_container(const json& pod, ContainerRecord& rec, const json& spec);
  void maybe_start(const json& pod, ContainerRecord& rec, const json& spec);
  void run_probes(const json& pod);
  void kill_container(const json& pod, ContainerRecord& rec, const json* spec, int grace_seconds,
                      const std::string& reason_message);
  api::Status setup_sandbox(const json& pod);
  void teardown_sandbox();
  void stop_terminal_pod(const json& pod);
  // Stops every running container at once, as the kubelet kills a pod's containers in
  // parallel, each with its preStop hook and this grace period.
  void stop_running_containers(const json& pod, int64_t grace);
  bool any_running() const;
  void cleanup_all();
  void publish_status(const json& pod);
  void persist();
  void wake_at(Clock::time_point t);
  const json* spec_of(const json& pod, const std::string& name, bool init) const;
  std::string pod_dir() const;
  std::string log_path(const ContainerRecord& rec, int restart_count) const;

  AgentContext& ctx_;
  std::string uid_;
  PodRecord rec_;
  bool have_record_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<json> pod_;  // latest from the API
  std::shared_ptr<const json> first_pod_;  // the first seen, for admission
  bool removed_ = false;
  bool stopping_ = false;
  bool dirty_ = true;
  std::atomic<bool> finished_{false};
  std::atomic<bool> inactive_{false};  // terminal and nothing running
  std::thread thread_;

  // worker-thread state
  std::map<std::string, std::string> volumes_;  // volume name -> host path
  bool volumes_ready_ = false;
  Clock::time_point volumes_refresh_at_{};
  Clock::time_point next_wake_{};
  json last_sent_status_;
  std::string persisted_;  // state.json as last written
  Backoff container_backoff_, image_backoff_;
  std::map<std::string, std::string> prev_pull_error_;  // image back-off key -> "ErrImagePull: <why>"
  std::map<std::string, Clock::time_point> backoff_event_at_;
  std::map<std::string, std::map<std::string, ProbeState>> probes_;  // container -> probe kind -> state
  std::map<std::string, Clock::time_point> event_throttle_;
  uint64_t seen_exit_generation_ = 0;
  int status_failures_ = 0;
  std::string api_deleted_uid_;
  mutable std::mutex snapshot_mu_;
  PodRecord snapshot_rec_;
};

// The runtime id inside "runc://<id>".
std::string raw_container_id(const std::string& id);

}  // namespace berth::nodeagent
