// Node lifecycle (pkg/controller/nodelifecycle) and taint-based eviction
// (pkg/controller/tainteviction):
//  - a node whose kubelet stops renewing its Lease in kube-node-lease (and stops posting status)
//    for the grace period gets Ready (and the pressure conditions) Unknown, its pods are marked
//    not ready, and it is tainted node.kubernetes.io/unreachable (NoSchedule and NoExecute);
//    Ready=False gives the not-ready taints; a node Ready again loses them;
//  - spec.unschedulable gives node.kubernetes.io/unschedulable:NoSchedule, pressure conditions
//    their NoSchedule taints (TaintNodesByCondition);
//  - pods on a node with NoExecute taints are deleted at once when they do not tolerate them,
//    or when the shortest matching tolerationSeconds (300 s by default admission) has passed.
#include <algorithm>
#include <climits>
#include <set>

#include "client/client.h"
#include "controllers/controller.h"

namespace berth::controllers {

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr const char* kNodeLeaseNamespace = "kube-node-lease";
constexpr const char* kNotReady = "node.kubernetes.io/not-ready";
constexpr const char* kUnreachable = "node.kubernetes.io/unreachable";
constexpr const char* kUnschedulable = "node.kubernetes.io/unschedulable";

// The taints this controller owns: (key, effect).
const std::set<std::pair<std::string, std::string>>& managed_taints() {
  static const std::set<std::pair<std::string, std::string>> k = {
      {kNotReady, "NoExecute"},
      {kUnreachable, "NoExecute"},
      {kNotReady, "NoSchedule"},
      {kUnreachable, "NoSchedule"},
      {kUnschedulable, "NoSchedule"},
      {"node.kubernetes.io/memory-pressure", "NoSchedule"},
      {"node.kubernetes.io/disk-pressure", "NoSchedule"},
      {"node.kubernetes.io/pid-pressure", "NoSchedule"},
      {"node.kubernetes.io/network-unavailable", "NoSchedule"},
  };
  return k;
}

const json* condition(const json& node, const std::string& type) {
  const json& conds = at(node, {"status", "conditions"});
  if (!conds.is_array()) return nullptr;
  for (const auto& c : conds)
    if (str(at(c, {"type"})) == type) return &c;
  return nullptr;
}

std::string condition_status(const json& node, const std::string& type) {
  const json* c = condition(node, type);
  return c ? str(at(*c, {"status"})) : std::string();
}

// The (key, effect) taints the node should carry given its conditions and spec.
std::set<std::pair<std::string, std::string>> desired_taints(const json& node) {
  std::set<std::pair<std::string, std::string>> out;
  std::string ready = condition_status(node, "Ready");
  if (ready == "False") out.insert({kNotReady, "NoExecute"}), out.insert({kNotReady, "NoSchedule"});
  if (ready == "Unknown") out.insert({kUnreachable, "NoExecute"}), out.insert({kUnreachable, "NoSchedule"});
  if (condition_status(node, "MemoryPressure") == "True") out.insert({"node.kubernetes.io/memory-pressure", "NoSchedule"});
  if (condition_status(node, "DiskPressure") == "True") out.insert({"node.kubernetes.io/disk-pressure", "NoSchedule"});
  if (condition_status(node, "PIDPressure") == "True") out.insert({"node.kubernetes.io/pid-pressure", "NoSchedule"});
  if (condition_status(node, "NetworkUnavailable") == "True")
    out.insert({"node.kubernetes.io/network-unavailable", "NoSchedule"});
  if (truthy(at(node, {"spec", "unschedulable"}))) out.insert({kUnschedulable, "NoSchedule"});
  return out;
}

struct TolerationInfo {
  std::string key, op, value, effect;
  std::optional<std::int64_t> seconds;
  bool tolerates(const std::string& tkey, const std::string& tvalue, const std::string& teffect) const {
    if (!effect.empty() && effect != teffect) return false;
    if (!key.empty() && key != tkey) return false;
    if (op.empty() || op == "Equal") return value == tvalue;
    return op == "Exists";
  }
};

class NodeLifecycleController final : public Controller {
 public:
  explicit NodeLifecycleController(Context& ctx)
      : ctx_(ctx),
        nodes_(ctx.informers.get(resources::kNodes)),
        leases_(ctx.informers.get(resources::kLeases, kNodeLeaseNamespace)),
        pods_(ctx.informers.get(resources::kPods)),
        recorder_(ctx.events.recorder("node-controller")),
        taint_recorder_(ctx.events.recorder("taint-eviction-controller")),
        evictions_("taint-eviction") {
    pods_->add_index(indexes::kNodeName, indexes::node_name);
    nodes_->add_handler({
        [this](const ObjectPtr& n) { node_changed(nullptr, n); },
        [this](const ObjectPtr& o, const ObjectPtr& n) { node_changed(o, n); },
        [this](const ObjectPtr& n) {
          std::lock_guard lock(mu_);
          health_.erase(name_of(*n));
        },
    });
    pods_->add_handler({
        [this](const ObjectPtr& p) {
          if (!str(at(*p, {"spec", "nodeName"})).empty()) evictions_.add(key_of(*p));
        },
        [this](const ObjectPtr& o, const ObjectPtr& p) {
          if (str(at(*p, {"spec", "nodeName"})).empty()) return;
          if (str(at(*o, {"spec", "nodeName"})) != str(at(*p, {"spec", "nodeName"})) ||
              at(*o, {"spec", "tolerations"}) != at(*p, {"spec", "tolerations"}))
            evictions_.add(key_of(*p));
        },
        [this](const ObjectPtr& p) {
          std::lock_guard lock(mu_);
          scheduled_.erase(key_of(*p));
        },
    });
  }

  std::string name() const override { return "nodelifecycle"; }

  void start() override {
    monitor_ = std::thread([this] {
      while (!stopping_) {
        monitor();
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, ctx_.options.node_monitor_period, [&] { return stopping_.load(); });
      }
    });
    workers_.start(evictions_, 4, [this](const std::string& key) { return process_pod(key); }, "taint-eviction");
  }

  void stop() override {
    stopping_ = true;
    cv_.notify_all();
    if (monitor_.joinable()) monitor_.join();
    evictions_.shutdown();
    workers_.join();
  }

 private:
  struct Health {
    SteadyClock::time_point probe;
    std::string heartbeat, lease_renew;
  };

  void node_changed(const ObjectPtr& old_n, const ObjectPtr& n) {
    auto no_execute = [](const json& node) {
      std::set<std::pair<std::string, std::string>> out;
      const json& ts = at(node, {"spec", "taints"});
      if (ts.is_array())
        for (const auto& t : ts)
          if (str(at(t, {"effect"})) == "NoExecute") out.insert({str(at(t, {"key"})), str(at(t, {"value"}))});
      return out;
    };
    if (!old_n || no_execute(*old_n) != no_execute(*n))
      for (auto& p : pods_->by_index(indexes::kNodeName, name_of(*n))) evictions_.add(key_of(*p));
    // Taints that follow conditions and spec.unschedulable are reconciled right away.
    if (!old_n || desired_taints(*old_n) != desired_taints(*n) ||
        at(*old_n, {"spec", "taints"}) != at(*n, {"spec", "taints"})) {
      auto copy = n;
      ctx_.executor.submit([this, copy] {
        if (!stopping_) reconcile_taints(*copy);
      });
    }
  }

  // ---- monitorNodeHealth --------------------------------------------------------------------

  void monitor() {
    auto now = SteadyClock::now();
    for (auto& node : nodes_->list()) {
      if (stopping_) return;
      const std::string name = name_of(*node);
      const json* ready = condition(*node, "Ready");
      std::string heartbeat = ready ? str(at(*ready, {"lastHeartbeatTime"})) : "";
      std::string renew;
      if (auto lease = leases_->get(kNodeLeaseNamespace, name)) renew = str(at(*lease, {"spec", "renewTime"}));
      bool stale = false;
      {
        std::lock_guard lock(mu_);
        auto [it, fresh] = health_.try_emplace(name);
        Health& h = it->second;
        if (fresh) h.probe = now;
        if (heartbeat != h.heartbeat) h.heartbeat = heartbeat, h.probe = now;
        if (!renew.empty() && renew != h.lease_renew) h.lease_renew = renew, h.probe = now;
        auto grace = ready ? ctx_.options.node_monitor_grace : ctx_.options.node_startup_grace;
        stale = now > h.probe + grace;
      }
      if (stale) mark_unknown(*node);
    }
  }

  void mark_unknown(const json& node) {
    json updated = node;
    json& conds = updated["status"]["conditions"];
    if (!conds.is_array()) conds = json::array();
    std::string now = format_time(Clock::now());
    bool changed = false;
    std::string was_ready = condition_status(node, "Ready");
    for (const char* type : {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure"}) {
      auto it = std::find_if(conds.begin(), conds.end(), [&](const json& c) { return str(at(c, {"type"})) == type; });
      if (it == conds.end()) {
        conds.push_back({{"type", type},
                         {"status", "Unknown"},
                         {"lastHeartbeatTime", at(node, {"metadata", "creationTimestamp"})},
                         {"lastTransitionTime", now},
                         {"reason", "NodeStatusNeverUpdated"},
                         {"message", "Kubelet never posted node status."}});
        changed = true;
      } else if (str(at(*it, {"status"})) != "Unknown") {
        (*it)["status"] = "Unknown";
        (*it)["reason"] = "NodeStatusUnknown";
        (*it)["message"] = "Kubelet stopped posting node status.";
        (*it)["lastTransitionTime"] = now;
        changed = true;
      }
    }
    if (!changed) return;
    auto r = ctx_.client->update(resources::kNodes.path("", name_of(node), "status"), updated);
    if (!r) {
      log('W', "nodelifecycle", name_of(node) + ": could not mark Unknown: " + r.status().message(), 1);
      return;
    }
    log('I', "nodelifecycle", name_of(node) + ": no status or lease renewal within the grace period; Ready=Unknown");
    if (was_ready == "True") {
      json ref = {{"metadata", {{"name", name_of(node)}, {"uid", name_of(node)}}}};
      recorder_->event(ref, "v1", "Node", "Normal", "NodeNotReady", "Node " + name_of(node) + " status is now: NodeNotReady");
    }
    mark_pods_not_ready(name_of(node));
    reconcile_taints(*r);
  }

  void mark_pods_not_ready(const std::string& node) {
    for (auto& p : pods_->by_index(indexes::kNodeName, node)) {
      if (!pod_ready(*p)) continue;
      json pod = *p;
      for (auto& c : pod["status"]["conditions"]) {
        if (str(at(c, {"type"})) != "Ready") continue;
        c["status"] = "False";
        c["lastTransitionTime"] = format_time(Clock::now());
        break;
      }
      auto r = ctx_.client->update(resources::kPods.path(namespace_of(pod), name_of(pod), "status"), pod);
      if (r) recorder_->event(*r, "Warning", "NodeNotReady", "Node is not ready");
    }
  }

  // Adds the managed taints the node should have and removes the ones it should not.
  void reconcile_taints(const json& cached) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      json node = cached;
      if (attempt > 0) {
        auto fresh = ctx_.client->get(resources::kNodes.path("", name_of(cached)));
        if (!fresh) return;
        node = std::move(*fresh);
      }
      auto want = desired_taints(node);
      json taints = json::array();
      std::set<std::pair<std::string, std::string>> have;
      const json& current = at(node, {"spec", "taints"});
      bool changed = false;
      if (current.is_array())
        for (const auto& t : current) {
          std::pair<std::string, std::string> id{str(at(t, {"key"})), str(at(t, {"effect"}))};
          if (managed_taints().count(id) && !want.count(id)) {
            changed = true;
            continue;
          }
          have.insert(id);
          taints.push_back(t);
        }
      for (const auto& id : want) {
        if (have.count(id)) continue;
        json t = {{"key", id.first}, {"effect", id.second}};
        if (id.second == "NoExecute") t["timeAdded"] = format_time(Clock::now());
        taints.push_back(std::move(t));
        changed = true;
      }
      if (!changed) return;
      json patch = {{"metadata", {{"resourceVersion", rv_of(node)}}},
                    {"spec", {{"taints", taints.empty() ? json(nullptr) : taints}}}};
      auto r = ctx_.client->patch(resources::kNodes.path("", name_of(node)), patch, "application/merge-patch+json");
      if (r) {
        log('I', "nodelifecycle", name_of(node) + ": taints now " + (taints.empty() ? std::string("<none>") : taints.dump()), 1);
        return;
      }
      if (r.status().reason() != api::Reason::Conflict) {
        log('W', "nodelifecycle", name_of(node) + ": could not update taints: " + r.status().message(), 1);
        return;
      }
    }
  }

  // ---- taint-based eviction ------------------------------------------------------------------

  void cancel(const std::string& key, const ObjectPtr& pod) {
    bool had;
    {
      std::lock_guard lock(mu_);
      had = scheduled_.erase(key) > 0;
    }
    if (had && pod) taint_recorder_->event(*pod, "Normal", "TaintManagerEviction", "Cancelling deletion of Pod " + key);
  }

  SyncResult process_pod(const std::string& key) {
    auto pod = pods_->get(key);
    if (!pod || being_deleted(*pod)) {
      cancel(key, nullptr);
      return SyncResult::ok();
    }
    std::string node_name = str(at(*pod, {"spec", "nodeName"}));
    auto node = node_name.empty() ? nullptr : nodes_->get(node_name);
    std::vector<std::pair<std::string, std::string>> taints;  // NoExecute (key, value)
    if (node) {
      const json& ts = at(*node, {"spec", "taints"});
      if (ts.is_array())
        for (const auto& t : ts)
          if (str(at(t, {"effect"})) == "NoExecute") taints.emplace_back(str(at(t, {"key"})), str(at(t, {"value"})));
    }
    if (taints.empty()) {
      cancel(key, pod);
      return SyncResult::ok();
    }
    std::vector<TolerationInfo> tolerations;
    const json& tols = at(*pod, {"spec", "tolerations"});
    if (tols.is_array())
      for (const auto& t : tols) {
        TolerationInfo ti{str(at(t, {"key"})), str(at(t, {"operator"})), str(at(t, {"value"})), str(at(t, {"effect"})), {}};
        if (at(t, {"tolerationSeconds"}).is_number()) ti.seconds = num(at(t, {"tolerationSeconds"}));
        tolerations.push_back(std::move(ti));
      }
    // GetMatchingTolerations: the first toleration of each taint; any untolerated taint evicts now.
    std::int64_t min_seconds = LLONG_MAX;
    bool all_tolerated = true;
    for (const auto& [tkey, tvalue] : taints) {
      const TolerationInfo* match = nullptr;
      for (const auto& t : tolerations)
        if (t.tolerates(tkey, tvalue, "NoExecute")) {
          match = &t;
          break;
        }
      if (!match) {
        all_tolerated = false;
        break;
      }
      if (match->seconds) min_seconds = std::min(min_seconds, std::max<std::int64_t>(0, *match->seconds));
    }
    if (all_tolerated && min_seconds == LLONG_MAX) {
      cancel(key, pod);  // tolerated forever
      return SyncResult::ok();
    }
    auto now = SteadyClock::now();
    SteadyClock::time_point created;
    {
      std::lock_guard lock(mu_);
      auto [it, fresh] = scheduled_.try_emplace(key, now);
      created = it->second;
    }
    if (all_tolerated) {
      auto trigger = created + std::chrono::seconds(min_seconds);
      if (trigger > now) return SyncResult::after(std::chrono::duration_cast<std::chrono::milliseconds>(trigger - now) +
                                                  std::chrono::milliseconds(10));
    }
    return evict(key, *pod);
  }

  SyncResult evict(const std::string& key, const json& pod) {
    taint_recorder_->event(pod, "Normal", "TaintManagerEviction", "Marking for deletion Pod " + key);
    // The DisruptionTarget condition says why the pod goes.
    json conditions = at(pod, {"status", "conditions"}).is_array() ? at(pod, {"status", "conditions"}) : json::array();
    bool present = false;
    for (auto& c : conditions)
      if (str(at(c, {"type"})) == "DisruptionTarget") present = str(at(c, {"status"})) == "True";
    if (!present) {
      conditions.erase(std::remove_if(conditions.begin(), conditions.end(),
                                      [](const json& c) { return str(at(c, {"type"})) == "DisruptionTarget"; }),
                       conditions.end());
      conditions.push_back({{"type", "DisruptionTarget"},
                            {"status", "True"},
                            {"lastProbeTime", nullptr},
                            {"lastTransitionTime", format_time(Clock::now())},
                            {"reason", "DeletionByTaintManager"},
                            {"message", "Taint manager: deleting due to NoExecute taint"}});
      json patch = {{"metadata", {{"uid", uid_of(pod)}}}, {"status", {{"conditions", conditions}}}};
      auto r = ctx_.client->patch(resources::kPods.path(namespace_of(pod), name_of(pod), "status"), patch,
                                  "application/merge-patch+json");
      if (!r && r.status().reason() != api::Reason::NotFound) return SyncResult::error(r.take_status());
    }
    auto r = ctx_.client->remove(resources::kPods.path(namespace_of(pod), name_of(pod)));
    if (!r && r.status().reason() != api::Reason::NotFound) return SyncResult::error(r.take_status());
    log('I', "taint-eviction", key + ": deleted (NoExecute taint on " + str(at(pod, {"spec", "nodeName"})) + ")");
    std::lock_guard lock(mu_);
    scheduled_.erase(key);
    return SyncResult::ok();
  }

  Context& ctx_;
  std::shared_ptr<Informer> nodes_, leases_, pods_;
  std::shared_ptr<EventRecorder> recorder_, taint_recorder_;
  WorkQueue evictions_;
  WorkerPool workers_;
  std::thread monitor_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, Health> health_;
  std::unordered_map<std::string, SteadyClock::time_point> scheduled_;  // pod key -> first seen tainted
};

}  // namespace

std::unique_ptr<Controller> new_node_lifecycle_controller(Context& ctx) {
  return std::make_unique<NodeLifecycleController>(ctx);
}

}  // namespace berth::controllers
