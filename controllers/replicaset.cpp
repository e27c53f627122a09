// ReplicaSet controller (pkg/controller/replicaset/replica_set.go): keeps spec.replicas pods
// matching the selector, owned through a controller ownerReference; adopts matching orphans,
// releases pods that stop matching, and reports what it sees in status.
#include "controllers/replicaset.h"

#include <algorithm>
#include <cmath>

#include "api/selector.h"
#include "client/client.h"
#include "controllers/controller.h"

namespace berth::controllers {

namespace replicaset {

namespace {

int phase_ordinal(const std::string& phase) {
  if (phase == "Unknown") return 1;
  if (phase == "Running") return 2;
  return 0;  // Pending, and anything not in upstream's map
}

std::int64_t deletion_cost(const json& pod) {
  const json& v = at(pod, {"metadata", "annotations", kDeletionCostAnnotation});
  if (!v.is_string()) return 0;
  try {
    std::size_t used = 0;
    long long n = std::stoll(v.get<std::string>(), &used);
    if (used != v.get<std::string>().size() || n < INT32_MIN || n > INT32_MAX) return 0;
    return n;
  } catch (...) {
    return 0;
  }
}

// afterOrZero: true when a is zero (unset) or later than b.
bool after_or_zero(std::optional<TimePoint> a, std::optional<TimePoint> b) {
  if (!a || !b) return !a;
  return *a > *b;
}

std::int64_t log_rank_diff(TimePoint t1, TimePoint t2, TimePoint now) {
  auto d1 = std::chrono::duration_cast<std::chrono::nanoseconds>(now - t1).count();
  auto d2 = std::chrono::duration_cast<std::chrono::nanoseconds>(now - t2).count();
  std::int64_t r1 = d1 > 0 ? static_cast<std::int64_t>(std::log2(static_cast<double>(d1))) : -1;
  std::int64_t r2 = d2 > 0 ? static_cast<std::int64_t>(std::log2(static_cast<double>(d2))) : -1;
  return r1 - r2;
}

// The highest restart count among regular containers and among sidecars (restartable init containers).
std::pair<std::int64_t, std::int64_t> max_restarts(const json& pod) {
  std::int64_t regular = 0, sidecar = 0;
  const json& statuses = at(pod, {"status", "containerStatuses"});
  if (statuses.is_array())
    for (const auto& s : statuses) regular = std::max(regular, num(at(s, {"restartCount"})));
  const json& init_specs = at(pod, {"spec", "initContainers"});
  const json& init_statuses = at(pod, {"status", "initContainerStatuses"});
  if (init_statuses.is_array()) {
    for (const auto& s : init_statuses) {
      bool restartable = false;
      if (init_specs.is_array())
        for (const auto& c : init_specs)
          if (str(at(c, {"name"})) == str(at(s, {"name"})) && str(at(c, {"restartPolicy"})) == "Always")
            restartable = true;
      if (restartable) sidecar = std::max(sidecar, num(at(s, {"restartCount"})));
    }
  }
  return {regular, sidecar};
}

std::optional<TimePoint> creation_time(const json& obj) { return parse_time(at(obj, {"metadata", "creationTimestamp"})); }

}  // namespace

bool delete_before(const json& a, int rank_a, const json& b, int rank_b, TimePoint now) {
  // 1. Unassigned < assigned.
  std::string na = str(at(a, {"spec", "nodeName"})), nb = str(at(b, {"spec", "nodeName"}));
  if (na != nb && (na.empty() || nb.empty())) return na.empty();
  // 2. Pending < Unknown < Running.
  int pa = phase_ordinal(pod_phase(a)), pb = phase_ordinal(pod_phase(b));
  if (pa != pb) return pa < pb;
  // 3. Not ready < ready.
  bool ra = pod_ready(a), rb = pod_ready(b);
  if (ra != rb) return !ra;
  // 4. Lower pod-deletion-cost < higher.
  std::int64_t ca = deletion_cost(a), cb = deletion_cost(b);
  if (ca != cb) return ca < cb;
  // 5. Doubled up < not doubled up.
  if (rank_a != rank_b) return rank_a > rank_b;
  // 6. Been ready for less time < more time (logarithmic buckets: LogarithmicScaleDown).
  if (ra && rb) {
    auto ta = pod_ready_since(a), tb = pod_ready_since(b);
    if (ta != tb) {
      if (!ta || !tb) return after_or_zero(ta, tb);
      std::int64_t diff = log_rank_diff(*ta, *tb, now);
      if (diff == 0) return uid_of(a) < uid_of(b);
      return diff < 0;
    }
  }
  // 7. Higher restart counts < lower.
  auto [reg_a, side_a] = max_restarts(a);
  auto [reg_b, side_b] = max_restarts(b);
  if (side_a != side_b) return side_a > side_b;
  if (reg_a != reg_b) return reg_a > reg_b;
  // 8. Empty creation time < newer < older.
  auto ta = creation_time(a), tb = creation_time(b);
  if (ta != tb) {
    if (!ta || !tb) return after_or_zero(ta, tb);
    std::int64_t diff = log_rank_diff(*ta, *tb, now);
    if (diff == 0) return uid_of(a) < uid_of(b);
    return diff < 0;
  }
  return false;
}

std::vector<ObjectPtr> pods_to_delete(std::vector<ObjectPtr> filtered, const std::vector<ObjectPtr>& related,
                                      int diff, TimePoint now) {
  if (diff < static_cast<int>(filtered.size())) {
    std::unordered_map<std::string, int> on_node;
    for (const auto& p : related)
      if (pod_active(*p)) ++on_node[str(at(*p, {"spec", "nodeName"}))];
    std::vector<std::pair<ObjectPtr, int>> ranked;
    ranked.reserve(filtered.size());
    for (auto& p : filtered) {
      auto it = on_node.find(str(at(*p, {"spec", "nodeName"})));
      ranked.emplace_back(p, it == on_node.end() ? 0 : it->second);
    }
    std::stable_sort(ranked.begin(), ranked.end(), [&](const auto& x, const auto& y) {
      return delete_before(*x.first, x.second, *y.first, y.second, now);
    });
    for (std::size_t i = 0; i < ranked.size(); ++i) filtered[i] = ranked[i].first;
  }
  if (diff < 0) diff = 0;
  if (diff > static_cast<int>(filtered.size())) diff = static_cast<int>(filtered.size());
  filtered.resize(static_cast<std::size_t>(diff));
  return filtered;
}

json calculate_status(const json& rs, const std::vector<ObjectPtr>& pods, const api::Status& manage_error,
                      TimePoint now) {
  json status = at(rs, {"status"}).is_object() ? at(rs, {"status"}) : json::object();
  std::int64_t min_ready = num(at(rs, {"spec", "minReadySeconds"}));
  const json& template_labels = at(rs, {"spec", "template", "metadata", "labels"});
  std::int64_t fully_labeled = 0, ready = 0, available = 0;
  for (const auto& p : pods) {
    const json& labels = at(*p, {"metadata", "labels"});
    bool all = true;
    if (template_labels.is_object())
      for (const auto& [k, v] : template_labels.items())
        if (!labels.is_object() || !labels.contains(k) || labels[k] != v) {
          all = false;
          break;
        }
    if (all) ++fully_labeled;
    if (pod_ready(*p)) {
      ++ready;
      if (pod_available(*p, min_ready, now)) ++available;
    }
  }
  // The ReplicaFailure condition reports the last create/delete error.
  json conditions = status.contains("conditions") && status["conditions"].is_array() ? status["conditions"] : json::array();
  auto failure = std::find_if(conditions.begin(), conditions.end(),
                              [](const json& c) { return str(at(c, {"type"})) == "ReplicaFailure"; });
  if (!manage_error.is_ok() && failure == conditions.end()) {
    std::int64_t diff = static_cast<std::int64_t>(pods.size()) - num(at(rs, {"spec", "replicas"}), 1);
    std::string reason = diff < 0 ? "FailedCreate" : diff > 0 ? "FailedDelete" : "";
    conditions.push_back({{"type", "ReplicaFailure"},
                          {"status", "True"},
                          {"lastTransitionTime", format_time(now)},
                          {"reason", reason},
                          {"message", manage_error.message()}});
  } else if (manage_error.is_ok() && failure != conditions.end()) {
    conditions.erase(failure);
  }
  if (conditions.empty()) status.erase("conditions");
  else status["conditions"] = conditions;
  // Zero values are omitted, as Kubernetes serializes them (replicas always present).
  status["replicas"] = static_cast<std::int64_t>(pods.size());
  auto set = [&](const char* k, std::int64_t v) {
    if (v) status[k] = v;
    else status.erase(k);
  };
  set("fullyLabeledReplicas", fully_labeled);
  set("readyReplicas", ready);
  set("availableReplicas", available);
  return status;
}

bool status_needs_update(const json& rs, const json& status) {
  const json& cur = at(rs, {"status"});
  auto field = [](const json& s, const char* k) { return num(at(s, {k})); };
  for (const char* k : {"replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas"})
    if (field(cur, k) != field(status, k)) return true;
  if (num(at(rs, {"metadata", "generation"})) != field(cur, "observedGeneration")) return true;
  json a = at(cur, {"conditions"}), b = at(status, {"conditions"});
  if (a.is_array() && a.empty()) a = nullptr;
  if (b.is_array() && b.empty()) b = nullptr;
  return a != b;
}

json pod_from_template(const json& template_spec, const std::string& ns, const std::string& name_prefix,
                       const json& controller_ref) {
  json meta = {{"generateName", name_prefix}, {"namespace", ns}};
  const json& tmeta = at(template_spec, {"metadata"});
  for (const char* f : {"labels", "annotations", "finalizers"}) {
    const json& v = at(tmeta, {f});
    if (!v.is_null() && !(v.is_object() && v.empty()) && !(v.is_array() && v.empty())) meta[f] = v;
  }
  meta["ownerReferences"] = json::array({controller_ref});
  json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", std::move(meta)}};
  const json& spec = at(template_spec, {"spec"});
  pod["spec"] = spec.is_object() ? spec : json::object();
  return pod;
}

}  // namespace replicaset

// ---------------------------------------------------------------------------------------------

std::string group_of(const std::string& api_version) {
  auto slash = api_version.find('/');
  return slash == std::string::npos ? std::string() : api_version.substr(0, slash);
}

api::Result<json> patch_owner_references(client::Client& client, const Resource& resource, const json& obj,
                                         const json& refs) {
  json patch = {{"metadata",
                 {{"ownerReferences", refs.is_array() && !refs.empty() ? refs : json(nullptr)},
                  {"uid", uid_of(obj)},
                  {"resourceVersion", rv_of(obj)}}}};
  return client.patch(resource.path(namespace_of(obj), name_of(obj)), patch, "application/merge-patch+json");
}

api::Status remove_finalizer(client::Client& client, const std::string& path, const std::string& finalizer) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto cur = client.get(path);
    if (!cur) return cur.status().reason() == api::Reason::NotFound ? api::Status() : cur.take_status();
    const json& fins = at(*cur, {"metadata", "finalizers"});
    if (!has_string(fins, finalizer)) return {};
    json kept = json::array();
    for (const auto& f : fins)
      if (!(f.is_string() && f.get<std::string>() == finalizer)) kept.push_back(f);
    json patch = {{"metadata",
                   {{"finalizers", kept.empty() ? json(nullptr) : kept},
                    {"uid", uid_of(*cur)},
                    {"resourceVersion", rv_of(*cur)}}}};
    auto r = client.patch(path, patch, "application/merge-patch+json");
    if (r || r.status().reason() == api::Reason::NotFound) return {};
    if (r.status().reason() != api::Reason::Conflict) return r.take_status();
  }
  return api::Status(api::Reason::Conflict, "could not remove finalizer " + finalizer + " from " + path);
}

namespace {

using replicaset::kBurstReplicas;

class ReplicaSetController final : public Controller {
 public:
  explicit ReplicaSetController(Context& ctx)
      : ctx_(ctx),
        rs_(ctx.informers.get(resources::kReplicaSets)),
        pods_(ctx.informers.get(resources::kPods)),
        queue_("replicaset"),
        recorder_(ctx.events.recorder("replicaset-controller")) {
    rs_->add_index(indexes::kController, indexes::controller);
    pods_->add_index(indexes::kController, indexes::controller);
    pods_->add_index(indexes::kOrphan, indexes::orphan);

    rs_->add_handler({
        [this](const ObjectPtr& rs) { queue_.add(key_of(*rs)); },
        [this](const ObjectPtr& old_rs, const ObjectPtr& rs) {
          (void)old_rs;
          queue_.add(key_of(*rs));
        },
        [this](const ObjectPtr& rs) {
          expectations_.remove(key_of(*rs));
          queue_.add(key_of(*rs));
        },
    });
    pods_->add_handler({
        [this](const ObjectPtr& pod) { add_pod(pod); },
        [this](const ObjectPtr& old_pod, const ObjectPtr& pod) { update_pod(old_pod, pod); },
        [this](const ObjectPtr& pod) { delete_pod(pod); },
    });
  }

  std::string name() const override { return "replicaset"; }

  void start() override {
    workers_.start(queue_, ctx_.options.replicaset_workers, [this](const std::string& key) { return sync(key); },
                   "replicaset");
  }

  void stop() override {
    queue_.shutdown();
    workers_.join();
  }

 private:
  // The ReplicaSet a controllerRef names, if it is (still) that object.
  ObjectPtr resolve(const std::string& ns, const json* ref) {
    if (!ref || str(at(*ref, {"kind"})) != "ReplicaSet" || group_of(str(at(*ref, {"apiVersion"}))) != "apps")
      return nullptr;
    auto rs = rs_->get(ns, str(at(*ref, {"name"})));
    if (!rs || uid_of(*rs) != str(at(*ref, {"uid"}))) return nullptr;
    return rs;
  }

  // getPodReplicaSets: the ReplicaSets in the pod's namespace whose selector matches it.
  std::vector<ObjectPtr> matching_replicasets(const json& pod) {
    std::vector<ObjectPtr> out;
    const json& labels = at(pod, {"metadata", "labels"});
    if (!labels.is_object() || labels.empty()) return out;
    for (auto& rs : rs_->list_namespace(namespace_of(pod))) {
      auto sel = api::LabelSelector::from_json(at(*rs, {"spec", "selector"}));
      if (!sel || sel->empty()) continue;
      if (sel->matches(labels)) out.push_back(rs);
    }
    return out;
  }

  void add_pod(const ObjectPtr& pod) {
    if (being_deleted(*pod)) {
      // A pod shows up already being deleted (after a restart): count the deletion now.
      delete_pod(pod);
      return;
    }
    if (const json* ref = controller_ref(*pod)) {
      auto rs = resolve(namespace_of(*pod), ref);
      if (!rs) return;
      std::string key = key_of(*rs);
      expectations_.creation_observed(key);
      queue_.add(key);
      return;
    }
    for (auto& rs : matching_replicasets(*pod)) queue_.add(key_of(*rs));
  }

  void update_pod(const ObjectPtr& old_pod, const ObjectPtr& pod) {
    if (rv_of(*old_pod) == rv_of(*pod)) return;
    bool labels_changed = at(*old_pod, {"metadata", "labels"}) != at(*pod, {"metadata", "labels"});
    if (being_deleted(*pod)) {
      // Terminating pods are gone as far as the ReplicaSet is concerned.
      delete_pod(pod);
      if (labels_changed) delete_pod(old_pod);
      return;
    }
    const json* cur_ref = controller_ref(*pod);
    const json* old_ref = controller_ref(*old_pod);
    bool ref_changed = (cur_ref ? *cur_ref : json()) != (old_ref ? *old_ref : json());
    if (ref_changed && old_ref) {
      if (auto rs = resolve(namespace_of(*old_pod), old_ref)) queue_.add(key_of(*rs));
    }
    if (cur_ref) {
      auto rs = resolve(namespace_of(*pod), cur_ref);
      if (!rs) return;
      queue_.add(key_of(*rs));
      std::int64_t min_ready = num(at(*rs, {"spec", "minReadySeconds"}));
      if (!pod_ready(*old_pod) && pod_ready(*pod) && min_ready > 0)
        queue_.add_after(key_of(*rs), std::chrono::seconds(min_ready) + std::chrono::seconds(1));
      return;
    }
    if (labels_changed || ref_changed)
      for (auto& rs : matching_replicasets(*pod)) queue_.add(key_of(*rs));
  }

  void delete_pod(const ObjectPtr& pod) {
    const json* ref = controller_ref(*pod);
    if (!ref) return;
    auto rs = resolve(namespace_of(*pod), ref);
    if (!rs) return;
    std::string key = key_of(*rs);
    expectations_.deletion_observed(key, key_of(*pod));
    queue_.add(key);
  }

  // ---- sync ---------------------------------------------------------------------------------

  SyncResult sync(const std::string& key) {
    auto rs = rs_->get(key);
    if (!rs) {
      expectations_.remove(key);
      return SyncResult::ok();
    }
    bool needs_sync = expectations_.satisfied(key);
    auto selector = api::LabelSelector::from_json(at(*rs, {"spec", "selector"}));
    if (!selector) {
      log('E', "replicaset", key + ": invalid selector: " + selector.status().message());
      return SyncResult::ok();
    }
    std::vector<ObjectPtr> owned, orphans;
    for (auto& p : pods_->by_index(indexes::kController, uid_of(*rs)))
      if (pod_active(*p)) owned.push_back(p);
    for (auto& p : pods_->by_index(indexes::kOrphan, namespace_of(*rs)))
      if (pod_active(*p)) orphans.push_back(p);
    auto claimed = claim_pods(*rs, *selector, owned, orphans);
    if (!claimed) return SyncResult::error(claimed.take_status());
    api::Status manage_error;
    if (needs_sync && !being_deleted(*rs)) manage_error = manage_replicas(*claimed, *rs, key);

    auto now = Clock::now();
    json status = replicaset::calculate_status(*rs, *claimed, manage_error, now);
    json updated = *rs;
    if (replicaset::status_needs_update(*rs, status)) {
      auto r = update_status(*rs, std::move(status));
      if (!r) return SyncResult::error(r.take_status());
      updated = std::move(*r);
    }
    if (!manage_error.is_ok()) return SyncResult::error(manage_error);
    std::int64_t min_ready = num(at(updated, {"spec", "minReadySeconds"}));
    std::int64_t replicas = num(at(updated, {"spec", "replicas"}), 1);
    if (min_ready > 0 && num(at(updated, {"status", "readyReplicas"})) == replicas &&
        num(at(updated, {"status", "availableReplicas"})) != replicas)
      return SyncResult::after(std::chrono::seconds(min_ready));
    return SyncResult::ok();
  }

  // ClaimPods: keep owned pods that match, release owned ones that do not, adopt matching orphans.
  api::Result<std::vector<ObjectPtr>> claim_pods(const json& rs, const api::LabelSelector& selector,
                                                 const std::vector<ObjectPtr>& owned,
                                                 const std::vector<ObjectPtr>& orphans) {
    std::vector<ObjectPtr> claimed;
    claimed.reserve(owned.size());
    for (const auto& p : owned) {
      if (selector.matches(at(*p, {"metadata", "labels"}))) {
        claimed.push_back(p);
        continue;
      }
      if (being_deleted(rs)) continue;
      // Release: drop our controllerRef.
      json refs = json::array();
      for (const auto& r : at(*p, {"metadata", "ownerReferences"}))
        if (str(at(r, {"uid"})) != uid_of(rs)) refs.push_back(r);
      auto r = patch_owner_references(*ctx_.client, resources::kPods, *p, refs);
      if (!r && r.status().reason() != api::Reason::NotFound && r.status().reason() != api::Reason::Invalid)
        return r.take_status();
      log('I', "replicaset", key_of(rs) + ": released pod " + name_of(*p) + " that no longer matches", 1);
    }
    if (being_deleted(rs) || selector.empty()) return claimed;
    bool checked = false;
    for (const auto& p : orphans) {
      if (!selector.matches(at(*p, {"metadata", "labels"}))) continue;
      if (!checked) {
        // RecheckDeletionTimestamp: adopt only for a live, current ReplicaSet.
        auto fresh = ctx_.client->get(resources::kReplicaSets.path(namespace_of(rs), name_of(rs)));
        if (!fresh) {
          if (fresh.status().reason() == api::Reason::NotFound) return claimed;  // gone: adopt nothing
          return fresh.take_status();
        }
        if (uid_of(*fresh) != uid_of(rs))
          return api::Status(api::Reason::Conflict, "original ReplicaSet " + key_of(rs) + " is gone: got uid " +
                                                        uid_of(*fresh) + ", wanted " + uid_of(rs));
        if (being_deleted(*fresh))
          return api::Status(api::Reason::Conflict, key_of(rs) + " has just been deleted at " +
                                                        str(at(*fresh, {"metadata", "deletionTimestamp"})));
        checked = true;
      }
      json refs = at(*p, {"metadata", "ownerReferences"}).is_array() ? at(*p, {"metadata", "ownerReferences"})
                                                                      : json::array();
      refs.push_back(new_controller_ref(rs, "apps/v1", "ReplicaSet"));
      auto r = patch_owner_references(*ctx_.client, resources::kPods, *p, refs);
      if (!r) {
        if (r.status().reason() == api::Reason::NotFound) continue;
        return r.take_status();
      }
      log('I', "replicaset", key_of(rs) + ": adopted pod " + name_of(*p), 1);
      claimed.push_back(std::make_shared<const json>(std::move(*r)));
    }
    return claimed;
  }

  api::Status manage_replicas(const std::vector<ObjectPtr>& pods, const json& rs, const std::string& key) {
    std::int64_t want = num(at(rs, {"spec", "replicas"}), 1);
    int diff = static_cast<int>(static_cast<std::int64_t>(pods.size()) - want);
    if (diff < 0) {
      int n = std::min(-diff, kBurstReplicas);
      expectations_.expect_creations(key, n);
      log('I', "replicaset", key + ": too few replicas: need " + std::to_string(want) + ", creating " +
                                 std::to_string(n), 1);
      json ref = new_controller_ref(rs, "apps/v1", "ReplicaSet");
      json pod = replicaset::pod_from_template(at(rs, {"spec", "template"}), namespace_of(rs), name_of(rs) + "-", ref);
      const std::string path = resources::kPods.path(namespace_of(rs));
      auto [created, err] = slow_start_batch(&ctx_.executor, n, replicaset::kSlowStartInitialBatch,
                                             [&]() -> api::Status { return create_pod(rs, path, pod); });
      if (int skipped = n - created; skipped > 0) expectations_.lower_creations(key, skipped);
      return err;
    }
    if (diff > 0) {
      int n = std::min(diff, kBurstReplicas);
      log('I', "replicaset", key + ": too many replicas: need " + std::to_string(want) + ", deleting " +
                                 std::to_string(n), 1);
      auto victims = replicaset::pods_to_delete(pods, related_pods(rs), n, Clock::now());
      std::vector<std::string> keys;
      for (auto& p : victims) keys.push_back(key_of(*p));
      expectations_.expect_deletions(key, keys);
      std::vector<api::Status> errors(victims.size());
      ctx_.executor.parallel(victims.size(), [&](std::size_t i) {
        const json& p = *victims[i];
        auto r = ctx_.client->remove(resources::kPods.path(namespace_of(p), name_of(p)));
        if (r) {
          recorder_->event(rs, "Normal", "SuccessfulDelete", "Deleted pod: " + name_of(p));
          return;
        }
        expectations_.deletion_observed(key, key_of(p));
        if (r.status().reason() == api::Reason::NotFound) return;
        recorder_->event(rs, "Warning", "FailedDelete", "Error deleting: " + r.status().message());
        errors[i] = r.take_status();
      });
      for (auto& e : errors)
        if (!e.is_ok()) return e;
    }
    return {};
  }

  api::Status create_pod(const json& rs, const std::string& path, const json& pod) {
    auto r = ctx_.client->create(path, pod);
    if (r) {
      recorder_->event(rs, "Normal", "SuccessfulCreate", "Created pod: " + name_of(*r));
      return {};
    }
    api::Status s = r.take_status();
    // A terminating namespace refuses every create: nothing to do until it is gone.
    if (s.reason() == api::Reason::Forbidden && s.message().find("because it is being terminated") != std::string::npos)
      return {};
    recorder_->event(rs, "Warning", "FailedCreate", "Error creating: " + s.message());
    return s;
  }

  // getIndirectlyRelatedPods: pods of every ReplicaSet sharing this one's controller.
  std::vector<ObjectPtr> related_pods(const json& rs) {
    std::vector<ObjectPtr> out;
    std::string owner = controller_uid(rs);
    std::vector<ObjectPtr> sets;
    if (owner.empty()) sets.push_back(std::make_shared<const json>(rs));
    else sets = rs_->by_index(indexes::kController, owner);
    for (auto& s : sets) {
      auto pods = pods_->by_index(indexes::kController, uid_of(*s));
      out.insert(out.end(), pods.begin(), pods.end());
    }
    return out;
  }

  api::Result<json> update_status(const json& rs, json status) {
    status["observedGeneration"] = num(at(rs, {"metadata", "generation"}));
    if (num(status["observedGeneration"]) == 0) status.erase("observedGeneration");
    json body = rs;
    const std::string path = resources::kReplicaSets.path(namespace_of(rs), name_of(rs), "status");
    for (int i = 0;; ++i) {
      body["status"] = status;
      auto r = ctx_.client->update(path, body);
      if (r) return r;
      if (i >= 1 || r.status().reason() != api::Reason::Conflict) return r.take_status();
      auto fresh = ctx_.client->get(resources::kReplicaSets.path(namespace_of(rs), name_of(rs)));
      if (!fresh) return fresh.take_status();
      body = std::move(*fresh);
    }
  }

  Context& ctx_;
  std::shared_ptr<Informer> rs_, pods_;
  WorkQueue queue_;
  Expectations expectations_;
  WorkerPool workers_;
  std::shared_ptr<EventRecorder> recorder_;
};

}  // namespace

std::unique_ptr<Controller> new_replicaset_controller(Context& ctx) {
  return std::make_unique<ReplicaSetController>(ctx);
}

}  // namespace berth::controllers
