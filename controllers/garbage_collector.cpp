// Garbage collector (pkg/controller/garbagecollector): a graph of ownerReferences over every
// kind the API serves, built from informers, and three ways an owner's deletion reaches its
// dependents:
//  - Background: once the owner is gone, dependents whose owners are all gone are deleted;
//  - Foreground: an owner with deletionTimestamp and the foregroundDeletion finalizer waits
//    until its dependents with blockOwnerDeletion are gone, then the finalizer is removed;
//  - Orphan: an owner with the orphan finalizer has its ownerReference removed from every
//    dependent, then the finalizer is removed.
// Owners are always checked live (the cache may lag); owners known absent are remembered.
#include <algorithm>
#include <deque>
#include <unordered_set>

#include "client/client.h"
#include "controllers/controller.h"
#include "controllers/discovery.h"

namespace berth::controllers {

namespace {

constexpr const char* kForeground = "foregroundDeletion";
constexpr const char* kOrphan = "orphan";

struct OwnerRef {
  std::string api_version, kind, name, uid;
  bool block = false;
};

struct Identity {
  std::string api_version, kind, ns, name, uid;
};

struct GraphNode {
  Identity id;
  std::vector<OwnerRef> owners;
  std::unordered_set<std::string> dependents;  // uids
  bool observed = false;                       // false: a "virtual" node known only as an owner
  bool being_deleted = false;
  bool deleting_dependents = false;
};

std::vector<OwnerRef> owner_refs(const json& obj) {
  std::vector<OwnerRef> out;
  const json& refs = at(obj, {"metadata", "ownerReferences"});
  if (!refs.is_array()) return out;
  for (const auto& r : refs)
    out.push_back({str(at(r, {"apiVersion"})), str(at(r, {"kind"})), str(at(r, {"name"})), str(at(r, {"uid"})),
                   truthy(at(r, {"blockOwnerDeletion"}))});
  return out;
}

bool has_finalizer(const json& obj, const char* f) { return has_string(at(obj, {"metadata", "finalizers"}), f); }

class GarbageCollector final : public Controller {
 public:
  explicit GarbageCollector(Context& ctx)
      : ctx_(ctx),
        attempt_to_delete_("garbage_collector_attempt_to_delete"),
        attempt_to_orphan_("garbage_collector_attempt_to_orphan") {
    rediscover();
  }

  std::string name() const override { return "garbagecollector"; }

  void start() override {
    graph_thread_ = std::thread([this] { process_graph_changes(); });
    discovery_thread_ = std::thread([this] {
      for (;;) {
        std::unique_lock lock(changes_mu_);
        if (discovery_cv_.wait_for(lock, std::chrono::seconds(30), [&] { return stopping_; })) return;
        lock.unlock();
        rediscover();
      }
    });
    delete_workers_.start(attempt_to_delete_, ctx_.options.gc_workers,
                          [this](const std::string& uid) { return attempt_to_delete(uid); }, "garbagecollector");
    orphan_workers_.start(attempt_to_orphan_, 2, [this](const std::string& uid) { return attempt_to_orphan(uid); },
                          "garbagecollector");
  }

  void stop() override {
    {
      std::lock_guard lock(changes_mu_);
      stopping_ = true;
    }
    changes_cv_.notify_all();
    discovery_cv_.notify_all();
    if (graph_thread_.joinable()) graph_thread_.join();
    if (discovery_thread_.joinable()) discovery_thread_.join();
    attempt_to_delete_.shutdown();
    attempt_to_orphan_.shutdown();
    delete_workers_.join();
    orphan_workers_.join();
  }

 private:
  struct Change {
    enum Type { Add, Update, Delete, VirtualDelete } type;
    ObjectPtr obj;
    Identity id;  // for VirtualDelete
  };

  // ---- discovery and informers ------------------------------------------------------------

  void rediscover() {
    auto found = discover_resources(*ctx_.client);
    std::vector<ApiResource> all;
    if (found) {
      all = std::move(*found);
    } else {
      log('W', "garbagecollector", "discovery failed: " + found.status().message() + "; using the built-in kinds", 1);
      if (!mapping_ready_)
        for (const Resource* r : {&resources::kPods, &resources::kNodes, &resources::kNamespaces,
                                  &resources::kReplicaSets, &resources::kDeployments, &resources::kLeases})
          all.push_back({*r, {"list", "watch", "delete", "get"}});
    }
    if (all.empty()) return;
    {
      std::lock_guard lock(mapping_mu_);
      mapping_.set(all);
      mapping_ready_ = true;
    }
    for (const auto& r : all) {
      if (!r.can("list") || !r.can("watch") || !r.can("delete")) continue;
      // Events are never owners or dependents worth collecting (upstream ignores them).
      if (r.resource.plural == "events" && (r.resource.group.empty() || r.resource.group == "events.k8s.io")) continue;
      std::string id = r.resource.group + "/" + r.resource.plural;
      if (!watched_.insert(id).second) continue;
      auto inf = ctx_.informers.get(r.resource);
      inf->add_handler({
          [this](const ObjectPtr& o) { push({Change::Add, o, {}}); },
          [this](const ObjectPtr& old_o, const ObjectPtr& o) {
            // Only what the graph records matters.
            if (at(*old_o, {"metadata", "ownerReferences"}) == at(*o, {"metadata", "ownerReferences"}) &&
                at(*old_o, {"metadata", "finalizers"}) == at(*o, {"metadata", "finalizers"}) &&
                being_deleted(*old_o) == being_deleted(*o))
              return;
            push({Change::Update, o, {}});
          },
          [this](const ObjectPtr& o) { push({Change::Delete, o, {}}); },
      });
    }
  }

  // A copy: the map changes when discovery runs again.
  std::optional<Resource> resource_for(const std::string& api_version, const std::string& kind) {
    std::lock_guard lock(mapping_mu_);
    const Resource* r = mapping_.find(api_version, kind);
    if (!r) return std::nullopt;
    return *r;
  }

  void push(Change c) {
    {
      std::lock_guard lock(changes_mu_);
      changes_.push_back(std::move(c));
    }
    changes_cv_.notify_one();
  }

  // ---- the graph builder --------------------------------------------------------------------

  void process_graph_changes() {
    for (;;) {
      std::deque<Change> batch;
      {
        std::unique_lock lock(changes_mu_);
        changes_cv_.wait(lock, [&] { return stopping_ || !changes_.empty(); });
        if (stopping_) return;
        batch.swap(changes_);
      }
      std::lock_guard lock(graph_mu_);
      for (auto& c : batch) apply_change(c);
    }
  }

  static Identity identity_of(const json& obj) {
    return {str(at(obj, {"apiVersion"})), str(at(obj, {"kind"})), namespace_of(obj), name_of(obj), uid_of(obj)};
  }

  GraphNode& ensure_owner_locked(const OwnerRef& ref, const std::string& dependent_ns) {
    auto it = graph_.find(ref.uid);
    if (it != graph_.end()) return *it->second;
    // A virtual node: the owner is known only by reference until an informer shows it, or
    // attemptToDelete finds it absent.
    auto node = std::make_unique<GraphNode>();
    node->id = {ref.api_version, ref.kind, dependent_ns, ref.name, ref.uid};
    GraphNode& n = *node;
    graph_.emplace(ref.uid, std::move(node));
    attempt_to_delete_.add(ref.uid);
    return n;
  }

  void apply_change(Change& c) {
    if (c.type == Change::VirtualDelete) {
      auto it = graph_.find(c.id.uid);
      if (it == graph_.end() || it->second->observed) return;
      remove_node_locked(c.id.uid);
      return;
    }
    const json& obj = *c.obj;
    std::string uid = uid_of(obj);
    if (uid.empty()) return;
    auto it = graph_.find(uid);
    if (c.type == Change::Delete) {
      if (it != graph_.end()) remove_node_locked(uid);
      return;
    }
    auto owners = owner_refs(obj);
    GraphNode* node;
    if (it == graph_.end()) {
      auto fresh = std::make_unique<GraphNode>();
      node = fresh.get();
      node->id = identity_of(obj);
      node->observed = true;
      graph_.emplace(uid, std::move(fresh));
      for (const auto& o : owners) ensure_owner_locked(o, node->id.ns).dependents.insert(uid);
      node->owners = owners;
    } else {
      node = it->second.get();
      node->id = identity_of(obj);
      node->observed = true;
      // Owners added, removed, or no longer blocking.
      for (const auto& o : owners) {
        auto prev = std::find_if(node->owners.begin(), node->owners.end(), [&](const OwnerRef& p) { return p.uid == o.uid; });
        if (prev == node->owners.end()) {
          ensure_owner_locked(o, node->id.ns).dependents.insert(uid);
        } else if (prev->block && !o.block) {
          notify_waiting_owner_locked(o.uid);
        }
      }
      for (const auto& p : node->owners) {
        bool kept = std::any_of(owners.begin(), owners.end(), [&](const OwnerRef& o) { return o.uid == p.uid; });
        if (kept) continue;
        auto owner = graph_.find(p.uid);
        if (owner != graph_.end()) owner->second->dependents.erase(uid);
        notify_waiting_owner_locked(p.uid);
      }
      node->owners = owners;
    }
    // Transitions to a deletion that waits for dependents.
    node->being_deleted = being_deleted(obj);
    if (node->being_deleted && has_finalizer(obj, kOrphan)) attempt_to_orphan_.add(uid);
    if (node->being_deleted && has_finalizer(obj, kForeground) && !node->deleting_dependents) {
      node->deleting_dependents = true;
      for (const auto& d : node->dependents) attempt_to_delete_.add(d);
      attempt_to_delete_.add(uid);
    }
    if (!has_finalizer(obj, kForeground)) node->deleting_dependents = false;
  }

  void notify_waiting_owner_locked(const std::string& owner_uid) {
    auto it = graph_.find(owner_uid);
    if (it != graph_.end() && it->second->deleting_dependents) attempt_to_delete_.add(owner_uid);
  }

  void remove_node_locked(const std::string& uid) {
    auto it = graph_.find(uid);
    if (it == graph_.end()) return;
    GraphNode& n = *it->second;
    // Dependents of a gone owner may be garbage now.
    for (const auto& d : n.dependents) attempt_to_delete_.add(d);
    for (const auto& o : n.owners) {
      auto owner = graph_.find(o.uid);
      if (owner == graph_.end()) continue;
      owner->second->dependents.erase(uid);
      if (owner->second->deleting_dependents) attempt_to_delete_.add(o.uid);
    }
    graph_.erase(it);
  }

  // ---- attemptToDelete ------------------------------------------------------------------------

  struct Snapshot {
    Identity id;
    bool observed = false, being_deleted = false, deleting_dependents = false;
    std::vector<std::string> dependents;
    std::vector<std::string> blocking;             // dependents that block this owner's deletion
    std::vector<std::string> dependents_deleting;  // dependents that delete their own dependents
  };

  std::optional<Snapshot> snapshot(const std::string& uid) {
    std::lock_guard lock(graph_mu_);
    auto it = graph_.find(uid);
    if (it == graph_.end()) return std::nullopt;
    const GraphNode& n = *it->second;
    Snapshot s{n.id, n.observed, n.being_deleted, n.deleting_dependents, {}, {}, {}};
    for (const auto& d : n.dependents) {
      s.dependents.push_back(d);
      auto dn = graph_.find(d);
      if (dn == graph_.end()) continue;
      if (dn->second->deleting_dependents) s.dependents_deleting.push_back(d);
      for (const auto& o : dn->second->owners)
        if (o.uid == uid && o.block) s.blocking.push_back(d);
    }
    return s;
  }

  api::Result<json> get_live(const Identity& id, std::optional<Resource>* out_resource = nullptr) {
    auto r = resource_for(id.api_version, id.kind);
    if (!r) return api::Status(api::Reason::NotFound, "no resource for " + id.api_version + " " + id.kind);
    if (out_resource) *out_resource = r;
    return ctx_.client->get(r->path(r->namespaced ? id.ns : "", id.name));
  }

  SyncResult attempt_to_delete(const std::string& uid) {
    auto n = snapshot(uid);
    if (!n) return SyncResult::ok();
    log('I', "garbagecollector", "attempt " + n->id.kind + " " + make_key(n->id.ns, n->id.name) + " deleting=" +
                                     std::to_string(n->being_deleted) + " dd=" + std::to_string(n->deleting_dependents) +
                                     " observed=" + std::to_string(n->observed), 3);
    std::optional<Resource> resource;
    if (n->being_deleted && !n->deleting_dependents) return SyncResult::ok();
    if (!resource_for(n->id.api_version, n->id.kind)) {
      // Unknown kind: may be served later (rediscovery), check again then.
      return SyncResult::after(std::chrono::seconds(30));
    }
    auto latest = get_live(n->id, &resource);
    if (!latest) {
      if (latest.status().reason() == api::Reason::NotFound) {
        push({Change::VirtualDelete, nullptr, n->id});
        return SyncResult::ok();
      }
      return SyncResult::error(latest.take_status());
    }
    if (uid_of(*latest) != uid) {
      push({Change::VirtualDelete, nullptr, n->id});
      return SyncResult::ok();
    }
    if (n->deleting_dependents) return process_deleting_dependents(*n, *resource);

    auto refs = owner_refs(*latest);
    if (refs.empty()) return n->observed ? SyncResult::ok() : SyncResult::after(std::chrono::seconds(1));
    std::vector<OwnerRef> solid, dangling, waiting;
    for (const auto& ref : refs) {
      auto state = owner_state(ref, n->id);
      if (!state) return SyncResult::error(state.take_status());
      if (*state == OwnerState::Dangling) dangling.push_back(ref);
      else if (*state == OwnerState::Waiting) waiting.push_back(ref);
      else if (*state == OwnerState::Solid) solid.push_back(ref);
    }
    if (!solid.empty()) {
      if (dangling.empty() && waiting.empty()) return SyncResult::ok();
      // Still owned: drop only the references to owners that are gone or going.
      json keep = json::array();
      for (const auto& r : at(*latest, {"metadata", "ownerReferences"})) {
        std::string ruid = str(at(r, {"uid"}));
        bool drop = std::any_of(dangling.begin(), dangling.end(), [&](const OwnerRef& o) { return o.uid == ruid; }) ||
                    std::any_of(waiting.begin(), waiting.end(), [&](const OwnerRef& o) { return o.uid == ruid; });
        if (!drop) keep.push_back(r);
      }
      auto r = patch_owner_references(*ctx_.client, *resource, *latest, keep);
      if (!r && r.status().reason() != api::Reason::NotFound) return SyncResult::error(r.take_status());
      return SyncResult::ok();
    }
    std::string policy;
    if (!waiting.empty() && !n->dependents.empty()) {
      if (!n->dependents_deleting.empty()) {
        // Avoid a cycle: make our references non-blocking, then delete in foreground.
        json refs_json = at(*latest, {"metadata", "ownerReferences"});
        for (auto& r : refs_json) r["blockOwnerDeletion"] = false;
        auto r = patch_owner_references(*ctx_.client, *resource, *latest, refs_json);
        if (!r && r.status().reason() != api::Reason::NotFound) return SyncResult::error(r.take_status());
      }
      policy = "Foreground";
    } else if (has_finalizer(*latest, kOrphan)) {
      policy = "Orphan";
    } else if (has_finalizer(*latest, kForeground)) {
      policy = "Foreground";
    } else {
      policy = "Background";
    }
    log('I', "garbagecollector", n->id.kind + " " + make_key(n->id.ns, n->id.name) + ": owners gone; deleting (" +
                                     policy + ")", 1);
    json options = {{"kind", "DeleteOptions"},
                    {"apiVersion", "v1"},
                    {"propagationPolicy", policy},
                    {"preconditions", {{"uid", uid}}}};
    auto r = ctx_.client->remove(resource->path(resource->namespaced ? n->id.ns : "", n->id.name), options);
    if (!r && r.status().reason() != api::Reason::NotFound && r.status().reason() != api::Reason::Conflict)
      return SyncResult::error(r.take_status());
    return SyncResult::ok();
  }

  enum class OwnerState { Solid, Dangling, Waiting, Skip };

  api::Result<OwnerState> owner_state(const OwnerRef& ref, const Identity& dependent) {
    {
      std::lock_guard lock(absent_mu_);
      if (absent_.count(ref.uid)) return OwnerState::Dangling;
    }
    auto r = resource_for(ref.api_version, ref.kind);
    if (!r) return api::Status(api::Reason::NotFound, "unable to get REST mapping for " + ref.api_version + "/" + ref.kind);
    if (r->namespaced && dependent.ns.empty()) {
      log('W', "garbagecollector", dependent.kind + " " + dependent.name +
                                       ": cluster-scoped object with a namespaced owner " + ref.kind + " " + ref.name, 1);
      return OwnerState::Skip;
    }
    auto owner = ctx_.client->get(r->path(r->namespaced ? dependent.ns : "", ref.name));
    if (!owner) {
      if (owner.status().reason() != api::Reason::NotFound) return owner.take_status();
      remember_absent(ref.uid);
      return OwnerState::Dangling;
    }
    if (uid_of(*owner) != ref.uid) {
      remember_absent(ref.uid);
      return OwnerState::Dangling;
    }
    if (being_deleted(*owner) && has_finalizer(*owner, kForeground)) return OwnerState::Waiting;
    return OwnerState::Solid;
  }

  void remember_absent(const std::string& uid) {
    std::lock_guard lock(absent_mu_);
    if (absent_.size() > 4096) absent_.clear();
    absent_.insert(uid);
  }

  // An owner deleted in foreground: delete what blocks it; when nothing does, let it go.
  SyncResult process_deleting_dependents(const Snapshot& n, const Resource& resource) {
    log('I', "garbagecollector", n.id.kind + " " + make_key(n.id.ns, n.id.name) + ": waiting for " +
                                     std::to_string(n.blocking.size()) + " blocking dependents of " +
                                     std::to_string(n.dependents.size()), 2);
    if (n.blocking.empty()) {
      auto s = remove_finalizer(*ctx_.client, resource.path(resource.namespaced ? n.id.ns : "", n.id.name), kForeground);
      return s ? SyncResult::ok() : SyncResult::error(s);
    }
    for (const auto& d : n.blocking) {
      bool deleting;
      {
        std::lock_guard lock(graph_mu_);
        auto it = graph_.find(d);
        deleting = it != graph_.end() && it->second->deleting_dependents;
      }
      if (!deleting) attempt_to_delete_.add(d);
    }
    return SyncResult::ok();
  }

  // ---- attemptToOrphan ------------------------------------------------------------------------

  SyncResult attempt_to_orphan(const std::string& uid) {
    auto n = snapshot(uid);
    if (!n) return SyncResult::ok();
    for (const auto& d : n->dependents) {
      Identity id;
      {
        std::lock_guard lock(graph_mu_);
        auto it = graph_.find(d);
        if (it == graph_.end()) continue;
        id = it->second->id;
      }
      for (int attempt = 0; attempt < 5; ++attempt) {
        std::optional<Resource> r;
        auto dep = get_live(id, &r);
        if (!dep) {
          if (dep.status().reason() == api::Reason::NotFound) break;
          return SyncResult::error(dep.take_status());
        }
        json keep = json::array();
        bool had = false;
        for (const auto& ref : at(*dep, {"metadata", "ownerReferences"})) {
          if (str(at(ref, {"uid"})) == uid) had = true;
          else keep.push_back(ref);
        }
        if (!had) break;
        auto p = patch_owner_references(*ctx_.client, *r, *dep, keep);
        if (p || p.status().reason() == api::Reason::NotFound) break;
        if (p.status().reason() != api::Reason::Conflict) return SyncResult::error(p.take_status());
      }
    }
    auto r = resource_for(n->id.api_version, n->id.kind);
    if (!r) return SyncResult::after(std::chrono::seconds(30));
    log('I', "garbagecollector", n->id.kind + " " + make_key(n->id.ns, n->id.name) + ": dependents orphaned", 1);
    auto s = remove_finalizer(*ctx_.client, r->path(r->namespaced ? n->id.ns : "", n->id.name), kOrphan);
    return s ? SyncResult::ok() : SyncResult::error(s);
  }

  Context& ctx_;
  WorkQueue attempt_to_delete_, attempt_to_orphan_;
  WorkerPool delete_workers_, orphan_workers_;
  std::thread graph_thread_, discovery_thread_;

  std::mutex changes_mu_;
  std::condition_variable changes_cv_;    // the graph builder waits here
  std::condition_variable discovery_cv_;  // rediscovery sleeps here
  std::deque<Change> changes_;
  bool stopping_ = false;

  std::mutex graph_mu_;
  std::unordered_map<std::string, std::unique_ptr<GraphNode>> graph_;

  std::mutex mapping_mu_;
  ResourceMap mapping_;
  bool mapping_ready_ = false;
  std::set<std::string> watched_;

  std::mutex absent_mu_;
  std::unordered_set<std::string> absent_;
};

}  // namespace

std::unique_ptr<Controller> new_garbage_collector(Context& ctx) { return std::make_unique<GarbageCollector>(ctx); }

}  // namespace berth::controllers
