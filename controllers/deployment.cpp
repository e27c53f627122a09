// Deployment controller (pkg/controller/deployment: deployment_controller.go, sync.go,
// rolling.go, recreate.go, progress.go): rolls a pod template out through ReplicaSets named
// <deployment>-<pod-template-hash>, with RollingUpdate (maxSurge/maxUnavailable) or Recreate,
// revisions, rollback by template, pause, proportional scaling, history cleanup and the
// Progressing/Available conditions.
#include "controllers/deployment.h"

#include <algorithm>

#include "api/selector.h"
#include "client/client.h"
#include "controllers/controller.h"

namespace berth::controllers {

namespace {

namespace du = deployment;

class DeploymentController final : public Controller {
 public:
  explicit DeploymentController(Context& ctx)
      : ctx_(ctx),
        deployments_(ctx.informers.get(resources::kDeployments)),
        rs_(ctx.informers.get(resources::kReplicaSets)),
        pods_(ctx.informers.get(resources::kPods)),
        queue_("deployment"),
        recorder_(ctx.events.recorder("deployment-controller")) {
    rs_->add_index(indexes::kController, indexes::controller);
    rs_->add_index(indexes::kOrphan, indexes::orphan);
    pods_->add_index(indexes::kController, indexes::controller);

    deployments_->add_handler({
        [this](const ObjectPtr& d) { queue_.add(key_of(*d)); },
        [this](const ObjectPtr&, const ObjectPtr& d) { queue_.add(key_of(*d)); },
        [this](const ObjectPtr& d) { queue_.add(key_of(*d)); },
    });
    rs_->add_handler({
        [this](const ObjectPtr& rs) { add_rs(rs); },
        [this](const ObjectPtr& old_rs, const ObjectPtr& rs) { update_rs(old_rs, rs); },
        [this](const ObjectPtr& rs) {
          if (auto d = resolve(namespace_of(*rs), controller_ref(*rs))) queue_.add(key_of(*d));
        },
    });
    pods_->add_handler({nullptr, nullptr, [this](const ObjectPtr& pod) { delete_pod(pod); }});
  }

  std::string name() const override { return "deployment"; }

  void start() override {
    workers_.start(queue_, ctx_.options.deployment_workers, [this](const std::string& key) { return sync(key); },
                   "deployment");
  }

  void stop() override {
    queue_.shutdown();
    workers_.join();
  }

 private:
  // ---- handlers -------------------------------------------------------------------------------

  ObjectPtr resolve(const std::string& ns, const json* ref) {
    if (!ref || str(at(*ref, {"kind"})) != "Deployment" || group_of(str(at(*ref, {"apiVersion"}))) != "apps")
      return nullptr;
    auto d = deployments_->get(ns, str(at(*ref, {"name"})));
    if (!d || uid_of(*d) != str(at(*ref, {"uid"}))) return nullptr;
    return d;
  }

  std::vector<ObjectPtr> matching_deployments(const json& rs) {
    std::vector<ObjectPtr> out;
    const json& labels = at(rs, {"metadata", "labels"});
    if (!labels.is_object() || labels.empty()) return out;
    for (auto& d : deployments_->list_namespace(namespace_of(rs))) {
      auto sel = api::LabelSelector::from_json(at(*d, {"spec", "selector"}));
      if (!sel || sel->empty()) continue;
      if (sel->matches(labels)) out.push_back(d);
    }
    return out;
  }

  void add_rs(const ObjectPtr& rs) {
    if (being_deleted(*rs)) {
      if (auto d = resolve(namespace_of(*rs), controller_ref(*rs))) queue_.add(key_of(*d));
      return;
    }
    if (const json* ref = controller_ref(*rs)) {
      if (auto d = resolve(namespace_of(*rs), ref)) queue_.add(key_of(*d));
      return;
    }
    for (auto& d : matching_deployments(*rs)) queue_.add(key_of(*d));
  }

  void update_rs(const ObjectPtr& old_rs, const ObjectPtr& rs) {
    if (rv_of(*old_rs) == rv_of(*rs)) return;
    const json* cur_ref = controller_ref(*rs);
    const json* old_ref = controller_ref(*old_rs);
    bool ref_changed = (cur_ref ? *cur_ref : json()) != (old_ref ? *old_ref : json());
    if (ref_changed && old_ref)
      if (auto d = resolve(namespace_of(*old_rs), old_ref)) queue_.add(key_of(*d));
    if (cur_ref) {
      if (auto d = resolve(namespace_of(*rs), cur_ref)) queue_.add(key_of(*d));
      return;
    }
    bool labels_changed = at(*old_rs, {"metadata", "labels"}) != at(*rs, {"metadata", "labels"});
    if (labels_changed || ref_changed)
      for (auto& d : matching_deployments(*rs)) queue_.add(key_of(*d));
  }

  // Recreate waits for the old pods to be gone: their deletion may unblock it.
  void delete_pod(const ObjectPtr& pod) {
    const json* ref = controller_ref(*pod);
    if (!ref || str(at(*ref, {"kind"})) != "ReplicaSet") return;
    auto rs = rs_->get(namespace_of(*pod), str(at(*ref, {"name"})));
    if (!rs) return;
    auto d = resolve(namespace_of(*rs), controller_ref(*rs));
    if (d && str(at(*d, {"spec", "strategy", "type"})) == "Recreate") queue_.add(key_of(*d));
  }

  // ---- API writes -------------------------------------------------------------------------------

  api::Result<json> update_rs_object(const json& rs) {
    return ctx_.client->update(resources::kReplicaSets.path(namespace_of(rs), name_of(rs)), rs);
  }

  api::Status update_deployment_status(json& d) {
    auto r = ctx_.client->update(resources::kDeployments.path(namespace_of(d), name_of(d), "status"), d);
    if (!r) return r.take_status();
    d = std::move(*r);
    return {};
  }

  // ---- the sync ---------------------------------------------------------------------------------

  SyncResult sync(const std::string& key) {
    auto cached = deployments_->get(key);
    if (!cached) return SyncResult::ok();
    json d = *cached;
    const json& sel_json = at(d, {"spec", "selector"});
    if (sel_json.is_object() && sel_json.empty()) {
      recorder_->event(d, "Warning", "SelectingAll",
                       "This deployment is selecting all pods. A non-empty selector is required.");
      if (num(at(d, {"status", "observedGeneration"})) < num(at(d, {"metadata", "generation"}))) {
        d["status"]["observedGeneration"] = num(at(d, {"metadata", "generation"}));
        update_deployment_status(d);
      }
      return SyncResult::ok();
    }
    auto selector = api::LabelSelector::from_json(sel_json);
    if (!selector) return SyncResult::error(selector.take_status());

    auto rs_list = replica_sets_for(d, *selector);
    if (!rs_list) return SyncResult::error(rs_list.take_status());

    if (being_deleted(d)) return result(sync_status_only(d, *rs_list));
    if (auto s = check_paused_conditions(d); !s) return SyncResult::error(s);
    if (truthy(at(d, {"spec", "paused"}))) return result(sync_paused_or_scaled(d, *rs_list));
    auto scaling = is_scaling_event(d, *rs_list);
    if (!scaling) return SyncResult::error(scaling.take_status());
    if (*scaling) return result(sync_paused_or_scaled(d, *rs_list));
    if (str(at(d, {"spec", "strategy", "type"})) == "Recreate") return rollout_recreate(d, *rs_list);
    return rollout_rolling(d, *rs_list);
  }

  static SyncResult result(api::Status s) { return s ? SyncResult::ok() : SyncResult::error(std::move(s)); }

  // getReplicaSetsForDeployment: owned ReplicaSets that match, adopting matching orphans and
  // releasing owned ones that no longer match.
  api::Result<std::vector<json>> replica_sets_for(const json& d, const api::LabelSelector& selector) {
    std::vector<json> out;
    for (auto& rs : rs_->by_index(indexes::kController, uid_of(d))) {
      if (selector.matches(at(*rs, {"metadata", "labels"}))) {
        out.push_back(*rs);
        continue;
      }
      if (being_deleted(d)) continue;
      json refs = json::array();
      for (const auto& r : at(*rs, {"metadata", "ownerReferences"}))
        if (str(at(r, {"uid"})) != uid_of(d)) refs.push_back(r);
      auto r = patch_owner_references(*ctx_.client, resources::kReplicaSets, *rs, refs);
      if (!r && r.status().reason() != api::Reason::NotFound) return r.take_status();
    }
    if (being_deleted(d) || selector.empty()) return out;
    bool checked = false;
    for (auto& rs : rs_->by_index(indexes::kOrphan, namespace_of(d))) {
      if (being_deleted(*rs) || !selector.matches(at(*rs, {"metadata", "labels"}))) continue;
      if (!checked) {
        auto fresh = ctx_.client->get(resources::kDeployments.path(namespace_of(d), name_of(d)));
        if (!fresh) return fresh.take_status();
        if (uid_of(*fresh) != uid_of(d) || being_deleted(*fresh))
          return api::Status(api::Reason::Conflict, "deployment " + key_of(d) + " changed; not adopting");
        checked = true;
      }
      json refs = at(*rs, {"metadata", "ownerReferences"}).is_array() ? at(*rs, {"metadata", "ownerReferences"})
                                                                       : json::array();
      refs.push_back(new_controller_ref(d, "apps/v1", "Deployment"));
      auto r = patch_owner_references(*ctx_.client, resources::kReplicaSets, *rs, refs);
      if (!r) {
        if (r.status().reason() == api::Reason::NotFound) continue;
        return r.take_status();
      }
      out.push_back(std::move(*r));
    }
    return out;
  }

  struct Sets {
    std::optional<json> new_rs;
    std::vector<json> old_rss;
    std::vector<json> all() const {
      std::vector<json> a = old_rss;
      if (new_rs) a.push_back(*new_rs);
      return a;
    }
  };

  // rs_list is kept current with what this sync writes, so a later step does not write a stale copy.
  api::Result<Sets> all_replica_sets(json& d, std::vector<json>& rs_list, bool create) {
    Sets sets;
    auto idx = du::find_new_rs(d, rs_list);
    for (std::size_t i = 0; i < rs_list.size(); ++i)
      if (!idx || i != *idx) sets.old_rss.push_back(rs_list[i]);
    auto n = new_replica_set(d, rs_list, sets.old_rss, create);
    if (!n) return n.take_status();
    sets.new_rs = std::move(*n);
    return sets;
  }

  api::Result<std::optional<json>> new_replica_set(json& d, std::vector<json>& rs_list, const std::vector<json>& old_rss,
                                                   bool create) {
    auto now = Clock::now();
    auto existing = du::find_new_rs(d, rs_list);
    std::string new_revision = std::to_string(du::max_revision(old_rss) + 1);
    if (existing) {
      json rs = rs_list[*existing];
      bool annotations_updated = du::set_new_rs_annotations(d, rs, new_revision, true);
      bool min_ready_changed = num(at(rs, {"spec", "minReadySeconds"})) != num(at(d, {"spec", "minReadySeconds"}));
      if (annotations_updated || min_ready_changed) {
        rs["spec"]["minReadySeconds"] = num(at(d, {"spec", "minReadySeconds"}));
        auto r = update_rs_object(rs);
        if (!r) return r.take_status();
        rs_list[*existing] = *r;
        return std::optional<json>(std::move(*r));
      }
      bool needs_update = du::set_deployment_revision(d, str(at(rs, {"metadata", "annotations", du::kRevisionAnnotation})));
      if (du::has_progress_deadline(d) && !du::get_condition(at(d, {"status"}), "Progressing")) {
        du::set_condition(d["status"], du::new_condition("Progressing", "True", du::kFoundNewRSReason,
                                                         "Found new replica set \"" + name_of(rs) + "\"", now));
        needs_update = true;
      }
      if (needs_update)
        if (auto s = update_deployment_status(d); !s) return s;
      return std::optional<json>(std::move(rs));
    }
    if (!create) return std::optional<json>();

    // A new ReplicaSet named after the template's hash.
    json tmpl = at(d, {"spec", "template"});
    std::optional<std::int64_t> collisions;
    if (at(d, {"status", "collisionCount"}).is_number_integer()) collisions = num(at(d, {"status", "collisionCount"}));
    std::string hash = du::compute_hash(tmpl, collisions);
    if (!tmpl["metadata"].is_object()) tmpl["metadata"] = json::object();
    if (!tmpl["metadata"]["labels"].is_object()) tmpl["metadata"]["labels"] = json::object();
    tmpl["metadata"]["labels"][du::kPodTemplateHashLabel] = hash;
    json selector = at(d, {"spec", "selector"});
    if (!selector["matchLabels"].is_object()) selector["matchLabels"] = json::object();
    selector["matchLabels"][du::kPodTemplateHashLabel] = hash;
    std::string rs_name = name_of(d) + "-" + hash;
    json rs = {{"apiVersion", "apps/v1"},
               {"kind", "ReplicaSet"},
               {"metadata",
                {{"name", rs_name},
                 {"namespace", namespace_of(d)},
                 {"ownerReferences", json::array({new_controller_ref(d, "apps/v1", "Deployment")})},
                 {"labels", tmpl["metadata"]["labels"]}}},
               {"spec",
                {{"replicas", 0},
                 {"minReadySeconds", num(at(d, {"spec", "minReadySeconds"}))},
                 {"selector", selector},
                 {"template", tmpl}}}};
    std::vector<json> all = old_rss;
    all.push_back(rs);
    std::int64_t count = du::new_rs_new_replicas(d, all, rs);
    rs["spec"]["replicas"] = count;
    du::set_new_rs_annotations(d, rs, new_revision, false);

    bool already_exists = false;
    json created;
    auto r = ctx_.client->create(resources::kReplicaSets.path(namespace_of(d)), rs);
    if (r) {
      created = std::move(*r);
    } else if (r.status().reason() == api::Reason::AlreadyExists) {
      already_exists = true;
      ObjectPtr cur = rs_->get(namespace_of(d), rs_name);
      json live;
      if (cur) {
        live = *cur;
      } else {
        auto got = ctx_.client->get(resources::kReplicaSets.path(namespace_of(d), rs_name));
        if (!got) return got.take_status();
        live = std::move(*got);
      }
      const json* ref = controller_ref(live);
      if (ref && str(at(*ref, {"uid"})) == uid_of(d) && du::equal_ignore_hash(at(d, {"spec", "template"}), at(live, {"spec", "template"}))) {
        created = std::move(live);
      } else {
        // A hash collision: bump collisionCount so the next attempt hashes differently.
        std::int64_t before = collisions.value_or(0);
        d["status"]["collisionCount"] = before + 1;
        if (update_deployment_status(d))
          log('I', "deployment", key_of(d) + ": hash collision, collisionCount " + std::to_string(before) + " -> " +
                                     std::to_string(before + 1));
        return r.take_status();
      }
    } else {
      api::Status s = r.take_status();
      if (s.reason() == api::Reason::Forbidden && s.message().find("being terminated") != std::string::npos) return s;
      std::string msg = "Failed to create new replica set \"" + rs_name + "\": " + s.message();
      if (du::has_progress_deadline(d)) {
        du::set_condition(d["status"], du::new_condition("Progressing", "False", du::kFailedRSCreateReason, msg, now));
        update_deployment_status(d);
      }
      recorder_->event(d, "Warning", du::kFailedRSCreateReason, msg);
      return s;
    }
    rs_list.push_back(created);
    if (!already_exists && count > 0)
      recorder_->event(d, "Normal", "ScalingReplicaSet",
                       "Scaled up replica set " + name_of(created) + " to " + std::to_string(count));
    bool needs_update = du::set_deployment_revision(d, new_revision);
    if (!already_exists && du::has_progress_deadline(d)) {
      du::set_condition(d["status"], du::new_condition("Progressing", "True", du::kNewReplicaSetReason,
                                                       "Created new replica set \"" + name_of(created) + "\"", now));
      needs_update = true;
    }
    if (needs_update)
      if (auto s = update_deployment_status(d); !s) return s;
    return std::optional<json>(std::move(created));
  }

  // scaleReplicaSet: sets spec.replicas and the replica annotations; true when the size changed.
  api::Result<std::pair<bool, json>> scale_replica_set(const json& rs, std::int64_t new_scale, const json& d,
                                                       const std::string& op) {
    bool size_changes = du::rs_replicas(rs) != new_scale;
    std::int64_t want = du::replicas(d), max = want + du::max_surge(d);
    bool annotations_change = du::replicas_annotations_need_update(rs, want, max);
    if (!size_changes && !annotations_change) return std::make_pair(false, rs);
    std::int64_t old_scale = du::rs_replicas(rs);
    json copy = rs;
    copy["spec"]["replicas"] = new_scale;
    du::set_replicas_annotations(copy, want, max);
    auto r = update_rs_object(copy);
    if (!r) return r.take_status();
    if (size_changes) {
      recorder_->event(d, "Normal", "ScalingReplicaSet",
                       "Scaled " + op + " replica set " + name_of(*r) + " to " + std::to_string(new_scale) + " from " +
                           std::to_string(old_scale));
      log('I', "deployment", key_of(d) + ": scaled " + op + " replica set " + name_of(*r) + " to " +
                                 std::to_string(new_scale) + " from " + std::to_string(old_scale));
    }
    return std::make_pair(size_changes, std::move(*r));
  }

  api::Result<std::pair<bool, json>> scale_and_record(const json& rs, std::int64_t new_scale, const json& d) {
    if (du::rs_replicas(rs) == new_scale) return std::make_pair(false, rs);
    return scale_replica_set(rs, new_scale, d, du::rs_replicas(rs) < new_scale ? "up" : "down");
  }

  // scale: proportional scaling on a scaling event or while paused.
  api::Status scale(const json& d, const std::optional<json>& new_rs, std::vector<json> old_rss) {
    const json* nrs = new_rs ? &*new_rs : nullptr;
    if (const json* aol = du::find_active_or_latest(nrs, old_rss)) {
      if (du::rs_replicas(*aol) == du::replicas(d)) return {};
      json target = *aol;
      auto r = scale_and_record(target, du::replicas(d), d);
      return r ? api::Status() : r.take_status();
    }
    if (du::is_saturated(d, nrs)) {
      for (auto& old : du::filter_active(old_rss)) {
        auto r = scale_and_record(old, 0, d);
        if (!r) return r.take_status();
      }
      return {};
    }
    if (!du::is_rolling_update(d)) return {};
    std::vector<json> with_new = old_rss;
    if (new_rs) with_new.push_back(*new_rs);
    std::vector<json> all = du::filter_active(with_new);
    std::int64_t all_replicas = du::replica_count(all);
    std::int64_t allowed = du::replicas(d) > 0 ? du::replicas(d) + du::max_surge(d) : 0;
    std::int64_t to_add = allowed - all_replicas;
    std::string op;
    if (to_add > 0) {
      du::sort_by_size_newer(all);
      op = "up";
    } else if (to_add < 0) {
      du::sort_by_size_older(all);
      op = "down";
    }
    std::int64_t added = 0;
    std::vector<std::int64_t> sizes(all.size());
    for (std::size_t i = 0; i < all.size(); ++i) {
      if (to_add != 0) {
        std::int64_t p = du::get_proportion(all[i], d, to_add, added);
        sizes[i] = du::rs_replicas(all[i]) + p;
        added += p;
      } else {
        sizes[i] = du::rs_replicas(all[i]);
      }
    }
    for (std::size_t i = 0; i < all.size(); ++i) {
      if (i == 0 && to_add != 0) {
        sizes[i] += to_add - added;  // leftovers to the largest
        if (sizes[i] < 0) sizes[i] = 0;
      }
      auto r = scale_replica_set(all[i], sizes[i], d, op);
      if (!r) return r.take_status();
    }
    return {};
  }

  // cleanupDeployment: keep revisionHistoryLimit old ReplicaSets that are scaled to zero.
  api::Status cleanup(const std::vector<json>& old_rss, const json& d) {
    const json& limit_json = at(d, {"spec", "revisionHistoryLimit"});
    if (!limit_json.is_number_integer() || limit_json.get<std::int64_t>() == INT32_MAX) return {};
    std::vector<json> cleanable;
    for (const auto& rs : old_rss)
      if (!being_deleted(rs)) cleanable.push_back(rs);
    std::int64_t diff = static_cast<std::int64_t>(cleanable.size()) - limit_json.get<std::int64_t>();
    if (diff <= 0) return {};
    du::sort_by_revision(cleanable);
    for (std::int64_t i = 0; i < diff; ++i) {
      const json& rs = cleanable[static_cast<std::size_t>(i)];
      if (num(at(rs, {"status", "replicas"})) != 0 || du::rs_replicas(rs) != 0 ||
          num(at(rs, {"metadata", "generation"})) > num(at(rs, {"status", "observedGeneration"})) || being_deleted(rs))
        continue;
      log('I', "deployment", key_of(d) + ": cleaning up old replica set " + name_of(rs), 1);
      auto r = ctx_.client->remove(resources::kReplicaSets.path(namespace_of(rs), name_of(rs)));
      if (!r && r.status().reason() != api::Reason::NotFound) return r.take_status();
    }
    return {};
  }

  api::Status sync_deployment_status(const std::vector<json>& all, const std::optional<json>& new_rs, json& d) {
    json status = du::calculate_status(all, new_rs ? &*new_rs : nullptr, d, Clock::now());
    if (du::status_equal(at(d, {"status"}), status)) return {};
    d["status"] = std::move(status);
    return update_deployment_status(d);
  }

  SyncResult sync_rollout_status(const std::vector<json>& all, const std::optional<json>& new_rs, json& d) {
    auto now = Clock::now();
    json status = du::rollout_status(all, new_rs ? &*new_rs : nullptr, d, now);
    if (du::status_equal(at(d, {"status"}), status)) {
      if (auto after = du::stuck_requeue(d, status, now))
        return SyncResult::after(std::max(*after, std::chrono::milliseconds(200)));
      return SyncResult::ok();
    }
    d["status"] = std::move(status);
    return result(update_deployment_status(d));
  }

  api::Status sync_status_only(json& d, std::vector<json>& rs_list) {
    auto sets = all_replica_sets(d, rs_list, false);
    if (!sets) return sets.take_status();
    return sync_deployment_status(sets->all(), sets->new_rs, d);
  }

  api::Status sync_paused_or_scaled(json& d, std::vector<json>& rs_list) {
    auto sets = all_replica_sets(d, rs_list, false);
    if (!sets) return sets.take_status();
    if (auto s = scale(d, sets->new_rs, sets->old_rss); !s) return s;
    if (truthy(at(d, {"spec", "paused"})))
      if (auto s = cleanup(sets->old_rss, d); !s) return s;
    return sync_deployment_status(sets->all(), sets->new_rs, d);
  }

  api::Status check_paused_conditions(json& d) {
    if (!du::has_progress_deadline(d)) return {};
    const json* cond = du::get_condition(at(d, {"status"}), "Progressing");
    if (cond && str(at(*cond, {"reason"})) == du::kTimedOutReason) return {};
    bool paused_cond = cond && str(at(*cond, {"reason"})) == du::kPausedDeployReason;
    bool paused = truthy(at(d, {"spec", "paused"}));
    auto now = Clock::now();
    if (paused && !paused_cond) {
      du::set_condition(d["status"], du::new_condition("Progressing", "Unknown", du::kPausedDeployReason,
                                                       "Deployment is paused", now));
    } else if (!paused && paused_cond) {
      du::set_condition(d["status"], du::new_condition("Progressing", "Unknown", du::kResumedDeployReason,
                                                       "Deployment is resumed", now));
    } else {
      return {};
    }
    return update_deployment_status(d);
  }

  api::Result<bool> is_scaling_event(json& d, std::vector<json>& rs_list) {
    auto sets = all_replica_sets(d, rs_list, false);
    if (!sets) return sets.take_status();
    for (const auto& rs : du::filter_active(sets->all())) {
      const json& desired = at(rs, {"metadata", "annotations", du::kDesiredReplicasAnnotation});
      if (!desired.is_string()) continue;
      try {
        if (std::stoll(desired.get<std::string>()) != du::replicas(d)) return true;
      } catch (...) {
      }
    }
    return false;
  }

  // ---- RollingUpdate --------------------------------------------------------------------------

  SyncResult rollout_rolling(json& d, std::vector<json>& rs_list) {
    auto sets = all_replica_sets(d, rs_list, true);
    if (!sets) return SyncResult::error(sets.take_status());
    if (!sets->new_rs) return SyncResult::error(api::Status(api::Reason::InternalError, "no new replica set"));
    std::vector<json> all = sets->all();
    const json new_rs = *sets->new_rs;

    // Scale up, if we can.
    auto up = reconcile_new_rs(all, new_rs, d);
    if (!up) return SyncResult::error(up.take_status());
    if (*up) return sync_rollout_status(all, sets->new_rs, d);
    // Scale down, if we can.
    auto down = reconcile_old_rss(all, du::filter_active(sets->old_rss), new_rs, d);
    if (!down) return SyncResult::error(down.take_status());
    if (*down) return sync_rollout_status(all, sets->new_rs, d);
    if (du::deployment_complete(d, at(d, {"status"})))
      if (auto s = cleanup(sets->old_rss, d); !s) return SyncResult::error(s);
    return sync_rollout_status(all, sets->new_rs, d);
  }

  api::Result<bool> reconcile_new_rs(const std::vector<json>& all, const json& new_rs, const json& d) {
    std::int64_t want = du::replicas(d);
    if (du::rs_replicas(new_rs) == want) return false;
    std::int64_t target = du::rs_replicas(new_rs) > want ? want : du::new_rs_new_replicas(d, all, new_rs);
    auto r = scale_and_record(new_rs, target, d);
    if (!r) return r.take_status();
    return r->first;
  }

  api::Result<bool> reconcile_old_rss(const std::vector<json>& all, std::vector<json> old_rss, const json& new_rs,
                                      const json& d) {
    std::int64_t old_pods = du::replica_count(old_rss);
    if (old_pods == 0) return false;
    std::int64_t all_pods = du::replica_count(all);
    std::int64_t min_available = du::replicas(d) - du::max_unavailable(d);
    std::int64_t new_unavailable = du::rs_replicas(new_rs) - num(at(new_rs, {"status", "availableReplicas"}));
    std::int64_t max_scaled_down = all_pods - min_available - new_unavailable;
    if (max_scaled_down <= 0) return false;
    // Clean up unhealthy replicas first, otherwise they block the rollout.
    auto cleaned = cleanup_unhealthy_replicas(old_rss, d, max_scaled_down);
    if (!cleaned) return cleaned.take_status();
    std::vector<json> all_now = old_rss;
    all_now.push_back(new_rs);
    auto scaled = scale_down_old_for_rolling_update(all_now, old_rss, d);
    if (!scaled) return scaled.take_status();
    return *cleaned + *scaled > 0;
  }

  api::Result<std::int64_t> cleanup_unhealthy_replicas(std::vector<json>& old_rss, const json& d,
                                                       std::int64_t max_cleanup) {
    du::sort_by_creation(old_rss);
    std::int64_t total = 0;
    for (auto& rs : old_rss) {
      if (total >= max_cleanup) break;
      std::int64_t spec = du::rs_replicas(rs), available = num(at(rs, {"status", "availableReplicas"}));
      if (spec == 0 || spec == available) continue;
      std::int64_t count = std::min(max_cleanup - total, spec - available);
      auto r = scale_and_record(rs, spec - count, d);
      if (!r) return r.take_status();
      total += count;
      rs = std::move(r->second);
    }
    return total;
  }

  api::Result<std::int64_t> scale_down_old_for_rolling_update(const std::vector<json>& all, std::vector<json> old_rss,
                                                              const json& d) {
    std::int64_t min_available = du::replicas(d) - du::max_unavailable(d);
    std::int64_t available = du::available_replica_count(all);
    if (available <= min_available) return 0;
    du::sort_by_creation(old_rss);
    std::int64_t total = 0, to_scale = available - min_available;
    for (auto& rs : old_rss) {
      if (total >= to_scale) break;
      if (du::rs_replicas(rs) == 0) continue;
      std::int64_t count = std::min(du::rs_replicas(rs), to_scale - total);
      auto r = scale_and_record(rs, du::rs_replicas(rs) - count, d);
      if (!r) return r.take_status();
      total += count;
    }
    return total;
  }

  // ---- Recreate -------------------------------------------------------------------------------

  SyncResult rollout_recreate(json& d, std::vector<json>& rs_list) {
    auto sets = all_replica_sets(d, rs_list, false);
    if (!sets) return SyncResult::error(sets.take_status());
    std::vector<json> all = sets->all();
    // Scale down the old ones first.
    bool scaled_down = false;
    for (auto& rs : du::filter_active(sets->old_rss)) {
      auto r = scale_and_record(rs, 0, d);
      if (!r) return SyncResult::error(r.take_status());
      if (r->first) scaled_down = true;
    }
    if (scaled_down) return sync_rollout_status(all, sets->new_rs, d);
    // Wait until no old pod runs.
    if (old_pods_running(sets->new_rs ? &*sets->new_rs : nullptr, sets->old_rss, rs_list))
      return sync_rollout_status(all, sets->new_rs, d);
    if (!sets->new_rs) {
      auto created = all_replica_sets(d, rs_list, true);
      if (!created) return SyncResult::error(created.take_status());
      sets = std::move(created);
      all = sets->all();
    }
    auto up = scale_and_record(*sets->new_rs, du::replicas(d), d);
    if (!up) return SyncResult::error(up.take_status());
    if (du::deployment_complete(d, at(d, {"status"})))
      if (auto s = cleanup(sets->old_rss, d); !s) return SyncResult::error(s);
    return sync_rollout_status(all, sets->new_rs, d);
  }

  bool old_pods_running(const json* new_rs, const std::vector<json>& old_rss, const std::vector<json>& rs_list) {
    if (du::actual_replica_count(old_rss) > 0) return true;
    for (const auto& rs : rs_list) {
      if (new_rs && uid_of(rs) == uid_of(*new_rs)) continue;
      for (auto& p : pods_->by_index(indexes::kController, uid_of(rs))) {
        std::string phase = pod_phase(*p);
        if (phase == "Failed" || phase == "Succeeded") continue;
        return true;
      }
    }
    return false;
  }

  Context& ctx_;
  std::shared_ptr<Informer> deployments_, rs_, pods_;
  WorkQueue queue_;
  WorkerPool workers_;
  std::shared_ptr<EventRecorder> recorder_;
};

}  // namespace

std::unique_ptr<Controller> new_deployment_controller(Context& ctx) {
  return std::make_unique<DeploymentController>(ctx);
}

}  // namespace berth::controllers
