// Pod garbage collection (pkg/controller/podgc): every period (20 s) it looks at all pods and
//  - deletes the oldest terminated (Succeeded/Failed) pods beyond --terminated-pod-gc-threshold
//    (12,500; 0 turns this off), evicted ones first;
//  - force-deletes terminating pods on nodes that are not Ready and carry the
//    node.kubernetes.io/out-of-service taint;
//  - force-deletes pods bound to nodes that no longer exist: a node missing from the cache is
//    quarantined (40 s) and then looked up through the API, so a node that is only slow to appear
//    does not lose its pods; such pods are first marked Failed with the DisruptionTarget condition
//    (DeletionByPodGC);
//  - force-deletes terminating pods that were never scheduled.
// Every deletion first moves a pod that is not terminal to phase Failed (nothing else would: no
// kubelet runs it), then deletes it with a grace period of 0.
#include <algorithm>
#include <condition_variable>
#include <set>

#include "client/client.h"
#include "controllers/controller.h"

namespace berth::controllers {

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr const char* kOutOfService = "node.kubernetes.io/out-of-service";

bool terminated(const json& pod) {
  std::string phase = pod_phase(pod);
  return phase == "Succeeded" || phase == "Failed";
}

// eviction.PodIsEvicted: Failed with reason Evicted.
bool evicted(const json& pod) { return pod_phase(pod) == "Failed" && str(at(pod, {"status", "reason"})) == "Evicted"; }

bool node_ready(const json& node) {
  const json& conds = at(node, {"status", "conditions"});
  if (!conds.is_array()) return false;
  for (const auto& c : conds)
    if (str(at(c, {"type"})) == "Ready") return str(at(c, {"status"})) == "True";
  return false;
}

bool has_taint_key(const json& node, const std::string& key) {
  const json& taints = at(node, {"spec", "taints"});
  if (!taints.is_array()) return false;
  for (const auto& t : taints)
    if (str(at(t, {"key"})) == key) return true;
  return false;
}

class PodGC final : public Controller {
 public:
  explicit PodGC(Context& ctx)
      : ctx_(ctx), pods_(ctx.informers.get(resources::kPods)), nodes_(ctx.informers.get(resources::kNodes)) {}

  std::string name() const override { return "podgc"; }

  void start() override {
    thread_ = std::thread([this] {
      std::unique_lock lock(mu_);
      while (!stop_) {
        lock.unlock();
        gc();
        lock.lock();
        cv_.wait_for(lock, ctx_.options.pod_gc_period, [&] { return stop_; });
      }
    });
  }

  void stop() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void gc() {
    std::vector<ObjectPtr> pods = pods_->list();
    std::map<std::string, ObjectPtr> nodes;
    for (auto& n : nodes_->list()) nodes.emplace(name_of(*n), n);
    if (ctx_.options.terminated_pod_gc_threshold > 0) gc_terminated(pods);
    gc_terminating(pods, nodes);
    gc_orphaned(pods, nodes);
    gc_unscheduled_terminating(pods);
  }

  void gc_terminated(const std::vector<ObjectPtr>& pods) {
    std::vector<ObjectPtr> done;
    for (const auto& p : pods)
      if (terminated(*p)) done.push_back(p);
    long excess = static_cast<long>(done.size()) - ctx_.options.terminated_pod_gc_threshold;
    if (excess <= 0) return;
    log('I', "podgc", "garbage collecting " + std::to_string(excess) + " terminated pods");
    // Evicted first, then the oldest, names breaking ties.
    auto order = [](const ObjectPtr& a, const ObjectPtr& b) {
      bool ea = evicted(*a), eb = evicted(*b);
      if (ea != eb) return ea;
      auto ta = parse_time(at(*a, {"metadata", "creationTimestamp"}));
      auto tb = parse_time(at(*b, {"metadata", "creationTimestamp"}));
      if (ta && tb && *ta != *tb) return *ta < *tb;
      return name_of(*a) < name_of(*b);
    };
    std::partial_sort(done.begin(), done.begin() + excess, done.end(), order);
    done.resize(static_cast<std::size_t>(excess));
    delete_all(done, nullptr, "terminated");
  }

  void gc_terminating(const std::vector<ObjectPtr>& pods, const std::map<std::string, ObjectPtr>& nodes) {
    std::vector<ObjectPtr> out;
    for (const auto& p : pods) {
      if (!being_deleted(*p)) continue;
      auto n = nodes.find(str(at(*p, {"spec", "nodeName"})));
      if (n == nodes.end()) continue;
      if (!node_ready(*n->second) && has_taint_key(*n->second, kOutOfService)) out.push_back(p);
    }
    if (!out.empty()) delete_all(out, nullptr, "terminating on an out-of-service node");
  }

  void gc_orphaned(const std::vector<ObjectPtr>& pods, const std::map<std::string, ObjectPtr>& nodes) {
    auto now = SteadyClock::now();
    // Quarantine nodes newly found missing; forget those that turned up.
    std::set<std::string> missing;
    for (const auto& p : pods) {
      std::string node = str(at(*p, {"spec", "nodeName"}));
      if (!node.empty() && !nodes.count(node)) missing.insert(node);
    }
    for (const auto& n : missing) missing_since_.emplace(n, now);
    std::set<std::string> deleted;
    for (auto it = missing_since_.begin(); it != missing_since_.end();) {
      if (nodes.count(it->first)) {
        it = missing_since_.erase(it);
        continue;
      }
      if (now - it->second < ctx_.options.pod_gc_quarantine) {
        ++it;
        continue;
      }
      // Still missing after the quarantine: ask the API, not the cache.
      auto r = ctx_.client->get(resources::kNodes.path("", it->first));
      if (!r && r.status().reason() == api::Reason::NotFound) deleted.insert(it->first);
      else if (!r) log('W', "podgc", "node " + it->first + ": " + r.status().message());
      // Checked: a node still missing is quarantined again on the next pass, as upstream does.
      it = missing_since_.erase(it);
    }
    if (deleted.empty()) return;
    std::vector<ObjectPtr> out;
    for (const auto& p : pods)
      if (deleted.count(str(at(*p, {"spec", "nodeName"})))) out.push_back(p);
    json condition = {{"type", "DisruptionTarget"},
                      {"status", "True"},
                      {"reason", "DeletionByPodGC"},
                      {"message", "PodGC: node no longer exists"}};
    delete_all(out, &condition, "orphaned (node no longer exists)");
  }

  void gc_unscheduled_terminating(const std::vector<ObjectPtr>& pods) {
    std::vector<ObjectPtr> out;
    for (const auto& p : pods)
      if (being_deleted(*p) && str(at(*p, {"spec", "nodeName"})).empty()) out.push_back(p);
    if (!out.empty()) delete_all(out, nullptr, "terminating and never scheduled");
  }

  void delete_all(const std::vector<ObjectPtr>& pods, const json* condition, const std::string& why) {
    ctx_.executor.parallel(pods.size(), [&](std::size_t i) {
      api::Status s = mark_failed_and_delete(*pods[i], condition);
      if (s.is_ok()) log('I', "podgc", key_of(*pods[i]) + ": force deleted (" + why + ")");
      else log('W', "podgc", key_of(*pods[i]) + ": could not delete: " + s.message());
    });
  }

  api::Status mark_failed_and_delete(const json& pod, const json* condition) {
    const std::string ns = namespace_of(pod), name = name_of(pod);
    const std::string path = resources::kPods.path(ns, name);
    if (!terminated(pod)) {
      json status = {{"phase", "Failed"}};
      if (condition) {
        // UpdatePodCondition: replace the condition of that type (keeping its transition time
        // when the status does not change), or add it.
        json conditions = at(pod, {"status", "conditions"}).is_array() ? at(pod, {"status", "conditions"}) : json::array();
        json c = *condition;
        c["lastProbeTime"] = nullptr;
        c["lastTransitionTime"] = format_time(Clock::now());
        bool found = false;
        for (auto& existing : conditions) {
          if (str(at(existing, {"type"})) != str(c["type"])) continue;
          if (str(at(existing, {"status"})) == str(c["status"]) && existing.contains("lastTransitionTime"))
            c["lastTransitionTime"] = existing["lastTransitionTime"];
          existing = c;
          found = true;
        }
        if (!found) conditions.push_back(c);
        status["conditions"] = conditions;
      }
      json patch = {{"metadata", {{"uid", uid_of(pod)}}}, {"status", status}};
      auto r = ctx_.client->patch(resources::kPods.path(ns, name, "status"), patch, "application/merge-patch+json");
      if (!r && r.status().reason() == api::Reason::NotFound) return {};
      if (!r) return r.take_status();
    }
    json options = {{"kind", "DeleteOptions"},
                    {"apiVersion", "v1"},
                    {"gracePeriodSeconds", 0},
                    {"preconditions", {{"uid", uid_of(pod)}}}};
    auto r = ctx_.client->remove(path, options);
    if (!r && r.status().reason() != api::Reason::NotFound && r.status().reason() != api::Reason::Conflict)
      return r.take_status();
    return {};
  }

  Context& ctx_;
  std::shared_ptr<Informer> pods_, nodes_;
  std::map<std::string, SteadyClock::time_point> missing_since_;  // node name -> first seen missing

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<Controller> new_pod_gc(Context& ctx) { return std::make_unique<PodGC>(ctx); }

}  // namespace berth::controllers
