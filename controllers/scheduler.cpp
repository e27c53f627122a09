// The scheduler (pkg/scheduler: schedule_one.go, internal/queue, internal/cache): binds pending
// pods of schedulerName default-scheduler to nodes through pods/binding.
//
// One thread runs the scheduling cycles against an in-memory cache of nodes and the pods on
// them (bound and assumed); bindings go to a pool of threads so a cycle never waits for the API.
// A pod that fits nowhere gets PodScheduled=False (Unschedulable) and a FailedScheduling event,
// and waits until a node or an assigned pod changes (or five minutes pass).
#include <algorithm>
#include <random>
#include <set>

#include "client/client.h"
#include "controllers/controller.h"
#include "controllers/scheduler.h"

namespace berth::controllers {

namespace {

using namespace scheduling;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kInitialBackoff = std::chrono::seconds(1);
constexpr auto kMaxBackoff = std::chrono::seconds(10);
constexpr auto kMaxUnschedulableDuration = std::chrono::minutes(5);

bool responsible_for(const json& pod) {
  std::string name = str(at(pod, {"spec", "schedulerName"}));
  return name.empty() || name == kDefaultScheduler;
}

bool assigned(const json& pod) { return !str(at(pod, {"spec", "nodeName"})).empty(); }

bool terminal(const json& pod) {
  std::string phase = pod_phase(pod);
  return phase == "Succeeded" || phase == "Failed";
}

bool gated(const json& pod) {
  const json& gates = at(pod, {"spec", "schedulingGates"});
  return gates.is_array() && !gates.empty();
}

// The scheduling queue (internal/queue/scheduling_queue.go, much reduced): an active heap by
// priority then arrival, a backoff area, and the pods found unschedulable, which move back when
// the cluster changes.
class SchedulingQueue {
 public:
  struct Entry {
    ObjectPtr pod;
    std::int64_t priority = 0;
    std::uint64_t seq = 0;
    int attempts = 0;
    SteadyClock::time_point backoff_until{};
    SteadyClock::time_point unschedulable_since{};
    enum State { Active, Backoff, Unschedulable, InFlight } state = Active;
    std::uint64_t move_seq_at_pop = 0;
    bool deleted_in_flight = false;
  };

  void add_or_update(ObjectPtr pod) {
    std::lock_guard lock(mu_);
    if (closed_) return;
    std::string key = key_of(*pod);
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      Entry e;
      e.priority = num(at(*pod, {"spec", "priority"}));
      e.pod = std::move(pod);
      e.seq = ++seq_;
      it = entries_.emplace(key, std::move(e)).first;
      push_active(key, it->second);
      cv_.notify_one();
      return;
    }
    Entry& e = it->second;
    bool spec_changed = at(*e.pod, {"spec"}) != at(*pod, {"spec"}) ||
                        at(*e.pod, {"metadata", "labels"}) != at(*pod, {"metadata", "labels"});
    e.pod = std::move(pod);
    if (e.state == Entry::Unschedulable && spec_changed) {
      // An update that may make it schedulable.
      move_one(key, e, SteadyClock::now());
      cv_.notify_one();
    }
  }

  void remove(const std::string& key) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return;
    if (it->second.state == Entry::InFlight) {
      it->second.deleted_in_flight = true;
      return;
    }
    erase(key, it->second);
    entries_.erase(it);
  }

  // Blocks for the next pod to schedule; nullopt when closed.
  std::optional<std::pair<std::string, ObjectPtr>> pop() {
    std::unique_lock lock(mu_);
    for (;;) {
      if (closed_) return std::nullopt;
      auto now = SteadyClock::now();
      promote_backoff(now);
      if (now - last_flush_ > std::chrono::seconds(30)) flush_unschedulable(now);
      if (!active_.empty()) {
        auto first = active_.begin();
        std::string key = first->second;
        active_.erase(first);
        Entry& e = entries_.at(key);
        e.state = Entry::InFlight;
        e.move_seq_at_pop = move_seq_;
        return std::make_pair(key, e.pod);
      }
      auto wake = now + std::chrono::seconds(30);
      if (!backoff_.empty()) wake = std::min(wake, backoff_.begin()->first);
      cv_.wait_until(lock, wake);
    }
  }

  // The pod was bound (or will be): forget it.
  void done(const std::string& key) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end()) entries_.erase(it);
  }

  // A scheduling attempt failed. Unschedulable pods wait for a cluster change, unless one came
  // while they were being scheduled; errors go to backoff.
  void failed(const std::string& key, ObjectPtr latest, bool unschedulable) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return;
    Entry& e = it->second;
    if (e.deleted_in_flight) {
      entries_.erase(it);
      return;
    }
    if (latest) e.pod = std::move(latest);
    ++e.attempts;
    auto now = SteadyClock::now();
    auto backoff = kInitialBackoff;
    for (int i = 1; i < e.attempts && backoff < kMaxBackoff; ++i) backoff *= 2;
    if (backoff > kMaxBackoff) backoff = kMaxBackoff;
    e.backoff_until = now + backoff;
    e.seq = ++seq_;
    if (unschedulable && e.move_seq_at_pop == move_seq_) {
      e.state = Entry::Unschedulable;
      e.unschedulable_since = now;
      unschedulable_.insert(key);
    } else {
      e.state = Entry::Backoff;
      backoff_.emplace(e.backoff_until, key);
    }
    cv_.notify_one();
  }

  // MoveAllToActiveOrBackoffQueue: the cluster changed in a way that may help.
  void move_all() {
    std::lock_guard lock(mu_);
    ++move_seq_;
    auto now = SteadyClock::now();
    std::set<std::string> keys;
    keys.swap(unschedulable_);
    for (const auto& key : keys) {
      auto it = entries_.find(key);
      if (it != entries_.end()) move_one(key, it->second, now);
    }
    cv_.notify_all();
  }

  void close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }

  std::size_t size() {
    std::lock_guard lock(mu_);
    return entries_.size();
  }

 private:
  void push_active(const std::string& key, Entry& e) {
    e.state = Entry::Active;
    active_.emplace(std::make_pair(-e.priority, e.seq), key);
  }

  void erase(const std::string& key, Entry& e) {
    switch (e.state) {
      case Entry::Active: active_.erase({{-e.priority, e.seq}, key}); break;
      case Entry::Backoff: {
        auto range = backoff_.equal_range(e.backoff_until);
        for (auto it = range.first; it != range.second; ++it)
          if (it->second == key) {
            backoff_.erase(it);
            break;
          }
        break;
      }
      case Entry::Unschedulable: unschedulable_.erase(key); break;
      case Entry::InFlight: break;
    }
  }

  void move_one(const std::string& key, Entry& e, SteadyClock::time_point now) {
    if (e.state == Entry::InFlight || e.state == Entry::Active) return;
    erase(key, e);
    if (e.backoff_until > now) {
      e.state = Entry::Backoff;
      backoff_.emplace(e.backoff_until, key);
    } else {
      push_active(key, e);
    }
  }

  void promote_backoff(SteadyClock::time_point now) {
    while (!backoff_.empty() && backoff_.begin()->first <= now) {
      std::string key = backoff_.begin()->second;
      backoff_.erase(backoff_.begin());
      auto it = entries_.find(key);
      if (it != entries_.end() && it->second.state == Entry::Backoff) push_active(key, it->second);
    }
  }

  void flush_unschedulable(SteadyClock::time_point now) {
    last_flush_ = now;
    for (auto it = unschedulable_.begin(); it != unschedulable_.end();) {
      auto e = entries_.find(*it);
      if (e != entries_.end() && now - e->second.unschedulable_since > kMaxUnschedulableDuration) {
        std::string key = *it;
        it = unschedulable_.erase(it);
        e->second.state = Entry::Backoff;  // erase() already done for the set
        e->second.backoff_until = now;
        backoff_.emplace(now, key);
      } else {
        ++it;
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, Entry> entries_;
  std::set<std::pair<std::pair<std::int64_t, std::uint64_t>, std::string>> active_;
  std::multimap<SteadyClock::time_point, std::string> backoff_;
  std::set<std::string> unschedulable_;
  std::uint64_t seq_ = 0, move_seq_ = 0;
  SteadyClock::time_point last_flush_ = SteadyClock::now();
  bool closed_ = false;
};

class Scheduler final : public Controller {
 public:
  explicit Scheduler(Context& ctx)
      : ctx_(ctx),
        pods_(ctx.informers.get(resources::kPods)),
        nodes_(ctx.informers.get(resources::kNodes)),
        recorder_(ctx.events.recorder(kDefaultScheduler)) {
    nodes_->add_handler({
        [this](const ObjectPtr& n) { upsert_node(n, true); },
        [this](const ObjectPtr& old_n, const ObjectPtr& n) { upsert_node(n, node_change_may_help(*old_n, *n)); },
        [this](const ObjectPtr& n) { delete_node(*n); },
    });
    pods_->add_handler({
        [this](const ObjectPtr& p) { on_pod(nullptr, p); },
        [this](const ObjectPtr& old_p, const ObjectPtr& p) { on_pod(old_p, p); },
        [this](const ObjectPtr& p) { on_pod_deleted(p); },
    });
  }

  std::string name() const override { return "scheduler"; }

  void start() override {
    binder_ = std::make_unique<Executor>(static_cast<std::size_t>(std::max(1, ctx_.options.bind_workers)));
    thread_ = std::thread([this] { loop(); });
  }

  void stop() override {
    queue_.close();
    if (thread_.joinable()) thread_.join();
    if (binder_) binder_->stop();
  }

 private:
  // ---- cache maintenance (informer threads) ------------------------------------------------

  // Heartbeats change timestamps only; what scheduling reads is compared.
  static bool node_change_may_help(const json& a, const json& b) {
    auto condition_states = [](const json& n) {
      std::string out;
      for (const auto& c : at(n, {"status", "conditions"})) out += str(at(c, {"type"})) + "=" + str(at(c, {"status"})) + ";";
      return out;
    };
    return at(a, {"status", "allocatable"}) != at(b, {"status", "allocatable"}) ||
           at(a, {"metadata", "labels"}) != at(b, {"metadata", "labels"}) ||
           at(a, {"spec", "taints"}) != at(b, {"spec", "taints"}) ||
           at(a, {"spec", "unschedulable"}) != at(b, {"spec", "unschedulable"}) ||
           condition_states(a) != condition_states(b);
  }

  void upsert_node(const ObjectPtr& n, bool may_help) {
    {
      std::lock_guard lock(cache_mu_);
      std::string name = name_of(*n);
      auto it = nodes_by_name_.find(name);
      if (it == nodes_by_name_.end()) {
        auto info = std::make_unique<NodeInfo>();
        info->set_node(n);
        // Pods bound to it before the node was seen.
        auto pending = orphaned_.find(name);
        if (pending != orphaned_.end()) {
          for (auto& p : pending->second) info->add_pod(p);
          orphaned_.erase(pending);
        }
        node_list_.push_back(info.get());
        nodes_by_name_.emplace(name, std::move(info));
      } else {
        it->second->set_node(n);
      }
    }
    if (may_help) queue_.move_all();
  }

  void delete_node(const json& n) {
    std::lock_guard lock(cache_mu_);
    std::string name = name_of(n);
    auto it = nodes_by_name_.find(name);
    if (it == nodes_by_name_.end()) return;
    node_list_.erase(std::remove(node_list_.begin(), node_list_.end(), it->second.get()), node_list_.end());
    nodes_by_name_.erase(it);
  }

  // Counts a bound pod on its node (idempotent: an assumed pod is already counted).
  void account_pod(const ObjectPtr& p) {
    std::string node = str(at(*p, {"spec", "nodeName"}));
    std::string uid = uid_of(*p);
    {
      std::lock_guard lock(cache_mu_);
      auto prev = pod_node_.find(uid);
      if (prev != pod_node_.end() && prev->second == node) {
        assumed_.erase(uid);  // the binding is visible: no longer just assumed
        return;
      }
    }
    PodInfo info = PodInfo::from(p);  // parsed outside the lock
    std::lock_guard lock(cache_mu_);
    auto prev = pod_node_.find(uid);
    if (prev != pod_node_.end() && prev->second == node) return;
    if (prev != pod_node_.end()) uncount_locked(uid, prev->second);
    pod_node_[uid] = node;
    assumed_.erase(uid);
    auto it = nodes_by_name_.find(node);
    if (it == nodes_by_name_.end()) orphaned_[node].push_back(std::move(info));
    else it->second->add_pod(info);
  }

  void uncount_locked(const std::string& uid, const std::string& node) {
    auto it = nodes_by_name_.find(node);
    if (it != nodes_by_name_.end()) it->second->remove_pod(uid);
    auto orphan = orphaned_.find(node);
    if (orphan != orphaned_.end()) {
      auto& v = orphan->second;
      v.erase(std::remove_if(v.begin(), v.end(), [&](const PodInfo& p) { return p.uid == uid; }), v.end());
      if (v.empty()) orphaned_.erase(orphan);
    }
  }

  bool unaccount_pod(const json& p) {
    std::string uid = uid_of(p);
    std::lock_guard lock(cache_mu_);
    auto prev = pod_node_.find(uid);
    if (prev == pod_node_.end()) return false;
    uncount_locked(uid, prev->second);
    pod_node_.erase(prev);
    assumed_.erase(uid);
    return true;
  }

  void on_pod(const ObjectPtr& old_p, const ObjectPtr& p) {
    if (old_p && rv_of(*old_p) == rv_of(*p)) return;
    if (assigned(*p)) {
      if (old_p && !assigned(*old_p)) queue_.remove(key_of(*p));
      if (terminal(*p)) {
        // A finished pod frees its node's resources.
        if (unaccount_pod(*p)) queue_.move_all();
        return;
      }
      account_pod(p);
      return;
    }
    if (!responsible_for(*p) || being_deleted(*p) || terminal(*p) || gated(*p)) {
      queue_.remove(key_of(*p));
      return;
    }
    queue_.add_or_update(p);
  }

  void on_pod_deleted(const ObjectPtr& p) {
    if (assigned(*p)) {
      if (unaccount_pod(*p)) queue_.move_all();
      return;
    }
    queue_.remove(key_of(*p));
    // An assumed pod deleted before its binding was seen.
    std::string uid = uid_of(*p);
    std::lock_guard lock(cache_mu_);
    auto it = assumed_.find(uid);
    if (it != assumed_.end()) {
      uncount_locked(uid, it->second);
      pod_node_.erase(uid);
      assumed_.erase(it);
    }
  }

  // ---- the scheduling cycle ------------------------------------------------------------------

  void loop() {
    std::mt19937_64 rng{std::random_device{}()};
    while (auto item = queue_.pop()) {
      auto& [key, queued] = *item;
      // The latest copy of the pod decides.
      ObjectPtr pod = pods_->get(key);
      if (!pod || uid_of(*pod) != uid_of(*queued) || assigned(*pod) || being_deleted(*pod) || !responsible_for(*pod)) {
        queue_.done(key);
        continue;
      }
      schedule_one(key, pod, rng);
    }
  }

  void schedule_one(const std::string& key, const ObjectPtr& pod, std::mt19937_64& rng) {
    PodInfo info = PodInfo::from(pod);
    std::string chosen;
    std::string failure;
    {
      std::lock_guard lock(cache_mu_);
      int index = schedule_cycle(info, node_list_, next_start_, ctx_.options.percentage_of_nodes_to_score, rng(), failure);
      if (index >= 0) {
        NodeInfo* node = node_list_[static_cast<std::size_t>(index)];
        chosen = node->name;
        // Assume: count the pod on the node now, before the binding is written.
        node->add_pod(info);
        pod_node_[info.uid] = chosen;
        assumed_[info.uid] = chosen;
      }
    }
    if (!chosen.empty()) {
      binder_->submit([this, key, pod, chosen] { bind(key, pod, chosen); });
      return;
    }
    queue_.failed(key, pod, true);
    binder_->submit([this, pod, failure] { report_unschedulable(pod, failure); });
  }

  void bind(const std::string& key, const ObjectPtr& pod, const std::string& node) {
    const std::string ns = namespace_of(*pod), name = name_of(*pod);
    json binding = {{"apiVersion", "v1"},
                    {"kind", "Binding"},
                    {"metadata", {{"name", name}, {"namespace", ns}, {"uid", uid_of(*pod)}}},
                    {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node}}}};
    auto r = ctx_.client->create(resources::kPods.path(ns, name, "binding"), binding);
    if (r) {
      queue_.done(key);
      recorder_->event(*pod, "v1", "Pod", "Normal", "Scheduled",
                       "Successfully assigned " + ns + "/" + name + " to " + node);
      log('I', "scheduler", key + ": bound to " + node, 2);
      return;
    }
    // Forget the assumption; the pod goes back to the queue unless it is gone or bound already.
    {
      std::lock_guard lock(cache_mu_);
      std::string uid = uid_of(*pod);
      auto it = assumed_.find(uid);
      if (it != assumed_.end()) {
        uncount_locked(uid, it->second);
        pod_node_.erase(uid);
        assumed_.erase(it);
      }
    }
    api::Reason reason = r.status().reason();
    if (reason == api::Reason::NotFound || (reason == api::Reason::Conflict &&
                                            r.status().message().find("already assigned") != std::string::npos)) {
      queue_.done(key);
      return;
    }
    log('W', "scheduler", key + ": binding to " + node + " failed: " + r.status().message());
    recorder_->event(*pod, "v1", "Pod", "Warning", "FailedScheduling",
                     "Binding rejected: " + r.status().message());
    queue_.failed(key, nullptr, false);
  }

  // PodScheduled=False with the reason, and a FailedScheduling event.
  void report_unschedulable(const ObjectPtr& pod, const std::string& message) {
    recorder_->event(*pod, "v1", "Pod", "Warning", "FailedScheduling", message);
    log('I', "scheduler", key_of(*pod) + ": unschedulable: " + message, 1);
    ObjectPtr latest = pods_->get(key_of(*pod));
    const json& base = latest && uid_of(*latest) == uid_of(*pod) ? *latest : *pod;
    if (assigned(base)) return;
    json conditions = at(base, {"status", "conditions"}).is_array() ? at(base, {"status", "conditions"}) : json::array();
    bool found = false;
    for (auto& c : conditions) {
      if (str(at(c, {"type"})) != "PodScheduled") continue;
      found = true;
      if (str(at(c, {"status"})) == "False" && str(at(c, {"reason"})) == "Unschedulable" &&
          str(at(c, {"message"})) == message)
        return;  // nothing new to say
      if (str(at(c, {"status"})) != "False") c["lastTransitionTime"] = format_time(Clock::now());
      c["status"] = "False";
      c["reason"] = "Unschedulable";
      c["message"] = message;
      c["lastProbeTime"] = nullptr;
      if (!c.contains("lastTransitionTime") || c["lastTransitionTime"].is_null())
        c["lastTransitionTime"] = format_time(Clock::now());
    }
    if (!found)
      conditions.push_back({{"type", "PodScheduled"},
                            {"status", "False"},
                            {"lastProbeTime", nullptr},
                            {"lastTransitionTime", format_time(Clock::now())},
                            {"reason", "Unschedulable"},
                            {"message", message}});
    json patch = {{"metadata", {{"uid", uid_of(base)}}}, {"status", {{"conditions", conditions}}}};
    auto r = ctx_.client->patch(resources::kPods.path(namespace_of(base), name_of(base), "status"), patch,
                                "application/merge-patch+json");
    if (!r && r.status().reason() != api::Reason::NotFound)
      log('W', "scheduler", key_of(base) + ": could not update PodScheduled: " + r.status().message(), 1);
  }

  Context& ctx_;
  std::shared_ptr<Informer> pods_, nodes_;
  std::shared_ptr<EventRecorder> recorder_;
  SchedulingQueue queue_;

  std::mutex cache_mu_;
  std::unordered_map<std::string, std::unique_ptr<NodeInfo>> nodes_by_name_;
  std::vector<NodeInfo*> node_list_;
  std::unordered_map<std::string, std::string> pod_node_;   // uid -> node it is counted on
  std::unordered_map<std::string, std::string> assumed_;    // uid -> node, binding not yet seen
  std::unordered_map<std::string, std::vector<PodInfo>> orphaned_;  // pods on nodes not seen yet
  int next_start_ = 0;

  std::thread thread_;
  std::unique_ptr<Executor> binder_;
};

}  // namespace

std::unique_ptr<Controller> new_scheduler(Context& ctx) { return std::make_unique<Scheduler>(ctx); }

}  // namespace berth::controllers
