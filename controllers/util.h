// Small helpers every controller shares: reading JSON objects, object keys, owner references,
// pod readiness, time stamps in Kubernetes' formats, API paths, logging, a fixed thread pool
// for parallel API calls, and the create/delete expectations of pkg/controller.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/object.h"
#include "api/status.h"

namespace berth::controllers {

using json = nlohmann::json;
// Objects in caches are shared and never changed in place: copy before modifying.
using ObjectPtr = std::shared_ptr<const json>;
using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

// ---- reading JSON -------------------------------------------------------------------------

using api::at;
std::string str(const json& v);                         // "" unless a string
std::int64_t num(const json& v, std::int64_t fallback = 0);  // integers (and integral doubles)
bool truthy(const json& v);                               // true only for JSON true

std::string name_of(const json& obj);
std::string namespace_of(const json& obj);
std::string uid_of(const json& obj);
std::string rv_of(const json& obj);
bool being_deleted(const json& obj);  // metadata.deletionTimestamp set
// "ns/name" for namespaced objects, "name" otherwise (client-go's MetaNamespaceKeyFunc).
std::string key_of(const json& obj);
std::string make_key(const std::string& ns, const std::string& name);
std::pair<std::string, std::string> split_key(const std::string& key);  // {ns, name}

std::vector<std::string> string_list(const json& v);
bool has_string(const json& list, const std::string& s);

// ---- owner references ---------------------------------------------------------------------

// The ownerReference with controller: true, or null.
const json* controller_ref(const json& obj);
std::string controller_uid(const json& obj);  // "" when there is none
// metav1.NewControllerRef: blockOwnerDeletion and controller true.
json new_controller_ref(const json& owner, const std::string& api_version, const std::string& kind);

// ---- pods ---------------------------------------------------------------------------------

bool pod_ready(const json& pod);  // condition Ready True
std::optional<TimePoint> pod_ready_since(const json& pod);
// podutil.IsPodAvailable: ready for at least min_ready_seconds at now.
bool pod_available(const json& pod, std::int64_t min_ready_seconds, TimePoint now);
// controller.IsPodActive: not Succeeded/Failed and not being deleted.
bool pod_active(const json& pod);
std::string pod_phase(const json& pod);

// ---- time ---------------------------------------------------------------------------------

std::string format_time(TimePoint t);        // metav1.Time: 2006-01-02T15:04:05Z
std::string format_micro_time(TimePoint t);  // metav1.MicroTime: 2006-01-02T15:04:05.000000Z
std::optional<TimePoint> parse_time(const std::string& s);  // RFC 3339, fractions and offsets
std::optional<TimePoint> parse_time(const json& v);

// ---- API paths ----------------------------------------------------------------------------

// One resource of the API: what a path is built from.
struct Resource {
  std::string group;    // "" for core
  std::string version;  // "v1"
  std::string plural;   // "pods"
  std::string kind;     // "Pod"
  bool namespaced = true;

  std::string api_version() const { return group.empty() ? version : group + "/" + version; }
  // The collection (name empty) or object URL, optionally a subresource.
  std::string path(const std::string& ns = "", const std::string& name = "", const std::string& sub = "") const;
  std::string group_resource() const { return group.empty() ? plural : plural + "." + group; }
  bool operator<(const Resource& o) const {
    return std::tie(group, version, plural) < std::tie(o.group, o.version, o.plural);
  }
  bool operator==(const Resource& o) const {
    return group == o.group && version == o.version && plural == o.plural;
  }
};

namespace resources {
extern const Resource kPods, kNodes, kNamespaces, kEvents, kReplicaSets, kDeployments, kLeases;
}

std::string url_escape(const std::string& s);  // for query values

// ---- logging ------------------------------------------------------------------------------

// One line per event on stderr: "I replicaset default/web: created pod web-x2b7q". V-levels
// above the BERTH_V environment variable are dropped.
void log(char level, const std::string& component, const std::string& message, int verbosity = 0);
bool log_enabled(int verbosity);

// ---- a fixed pool of threads for parallel API calls ----------------------------------------

class Executor {
 public:
  explicit Executor(std::size_t threads);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  void submit(std::function<void()> task);
  // Runs fn(0..n-1) on the pool and waits for all of them. Must not be called from a pool thread.
  void parallel(std::size_t n, const std::function<void(std::size_t)>& fn);
  void stop();  // finishes queued tasks, joins

 private:
  void run();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

// slowStartBatch (pkg/controller/replicaset): calls fn `count` times in batches of 1, 2, 4, ...
// (each batch in parallel) and stops at the first batch with an error. Returns the number of
// successful calls and the first error.
std::pair<int, api::Status> slow_start_batch(Executor* executor, int count, int initial_batch,
                                             const std::function<api::Status()>& fn);

// ---- expectations (pkg/controller/controller_utils.go) -------------------------------------

// What a controller still expects to observe in its informer after its own creates and
// deletes, so it does not act twice on a stale cache. Expire after five minutes.
class Expectations {
 public:
  explicit Expectations(std::chrono::seconds ttl = std::chrono::minutes(5)) : ttl_(ttl) {}
  bool satisfied(const std::string& key);
  void expect_creations(const std::string& key, int adds);
  void expect_deletions(const std::string& key, const std::vector<std::string>& pod_keys);
  void creation_observed(const std::string& key);
  void deletion_observed(const std::string& key, const std::string& pod_key);
  void lower_creations(const std::string& key, int n);
  void remove(const std::string& key);

 private:
  struct Entry {
    int adds = 0;
    std::set<std::string> deletes;
    std::chrono::steady_clock::time_point timestamp;
  };
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::chrono::seconds ttl_;
};

// A random lower-case suffix from Kubernetes' name alphabet (no vowels, no look-alikes).
using api::random_suffix;

// A whole decimal integer (no trailing characters); false otherwise.
bool parse_int64(const std::string& s, std::int64_t& out);
std::string random_hex(std::size_t n);

}  // namespace berth::controllers
