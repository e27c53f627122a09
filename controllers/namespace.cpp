// Namespace controller (pkg/controller/namespace/deletion): a namespace being deleted (status
// Terminating, spec.finalizers ["kubernetes"]) has every namespaced object of every kind the API
// serves deleted; while some remain, its status conditions say what (NamespaceContentRemaining,
// NamespaceFinalizersRemaining, ...); once empty, the kubernetes finalizer is removed through
// /finalize and the namespace is deleted for good.
#include <algorithm>
#include <map>

#include "client/client.h"
#include "controllers/controller.h"
#include "controllers/discovery.h"

namespace berth::controllers {

namespace {

constexpr const char* kFinalizer = "kubernetes";

struct Estimate {
  std::int64_t seconds = 0;  // how long until what remains should be gone
  std::map<std::string, int> remaining;            // "pods." -> count
  std::map<std::string, int> finalizers;           // finalizer -> count
  std::vector<std::string> delete_errors;
  std::vector<std::string> discovery_errors;
};

class NamespaceController final : public Controller {
 public:
  explicit NamespaceController(Context& ctx)
      : ctx_(ctx), namespaces_(ctx.informers.get(resources::kNamespaces)), queue_("namespace") {
    auto enqueue = [this](const ObjectPtr& ns) {
      if (being_deleted(*ns)) queue_.add(name_of(*ns));
    };
    namespaces_->add_handler({enqueue, [enqueue](const ObjectPtr&, const ObjectPtr& ns) { enqueue(ns); }, nullptr});
  }

  std::string name() const override { return "namespace"; }

  void start() override {
    workers_.start(queue_, ctx_.options.namespace_workers, [this](const std::string& key) { return sync(key); },
                   "namespace");
  }

  void stop() override {
    queue_.shutdown();
    workers_.join();
  }

 private:
  SyncResult sync(const std::string& name) {
    const std::string path = resources::kNamespaces.path("", name);
    auto ns = ctx_.client->get(path);
    if (!ns) return ns.status().reason() == api::Reason::NotFound ? SyncResult::ok() : SyncResult::error(ns.take_status());
    if (!being_deleted(*ns)) return SyncResult::ok();
    if (has_string(at(*ns, {"spec", "finalizers"}), kFinalizer)) {
      auto estimate = delete_all_content(name);
      update_conditions(*ns, estimate);
      if (!estimate.discovery_errors.empty() || !estimate.delete_errors.empty())
        return SyncResult::error(api::Status(api::Reason::InternalError,
                                             estimate.discovery_errors.empty() ? estimate.delete_errors[0]
                                                                               : estimate.discovery_errors[0]));
      if (!estimate.remaining.empty() || !estimate.finalizers.empty()) {
        // ResourcesRemainingError: look again in about half the estimate.
        return SyncResult::after(std::chrono::seconds(estimate.seconds / 2 + 1));
      }
      // Empty: our finalizer goes.
      auto fresh = ctx_.client->get(path);
      if (!fresh) return fresh.status().reason() == api::Reason::NotFound ? SyncResult::ok()
                                                                         : SyncResult::error(fresh.take_status());
      json body = std::move(*fresh);
      json kept = json::array();
      for (const auto& f : at(body, {"spec", "finalizers"}))
        if (!(f.is_string() && f.get<std::string>() == kFinalizer)) kept.push_back(f);
      body["spec"]["finalizers"] = kept;
      auto r = ctx_.client->update(resources::kNamespaces.path("", name, "finalize"), body);
      if (!r) return r.status().reason() == api::Reason::NotFound ? SyncResult::ok() : SyncResult::error(r.take_status());
      log('I', "namespace", name + ": content deleted, finalized");
      ns = std::move(r);
    }
    // Nothing left for us: delete it again, which removes it once no finalizer remains.
    const json& spec_fins = at(*ns, {"spec", "finalizers"});
    const json& meta_fins = at(*ns, {"metadata", "finalizers"});
    if ((spec_fins.is_array() && !spec_fins.empty()) || (meta_fins.is_array() && !meta_fins.empty()))
      return SyncResult::ok();
    json options = {{"kind", "DeleteOptions"}, {"apiVersion", "v1"}, {"preconditions", {{"uid", uid_of(*ns)}}}};
    auto r = ctx_.client->remove(path, options);
    if (!r && r.status().reason() != api::Reason::NotFound && r.status().reason() != api::Reason::Conflict)
      return SyncResult::error(r.take_status());
    return SyncResult::ok();
  }

  Estimate delete_all_content(const std::string& ns) {
    Estimate e;
    auto found = discover_resources(*ctx_.client);
    if (!found) {
      e.discovery_errors.push_back(found.status().message());
      return e;
    }
    for (const auto& r : *found) {
      if (!r.resource.namespaced || !r.can("delete") || !r.can("list")) continue;
      const std::string collection = r.resource.path(ns);
      const std::string gr = r.resource.plural + "." + r.resource.group;
      // deletecollection when served, else one by one.
      if (r.can("deletecollection")) {
        auto d = ctx_.client->remove(collection, json{{"kind", "DeleteOptions"}, {"apiVersion", "v1"},
                                                      {"propagationPolicy", "Background"}});
        if (!d && d.status().reason() != api::Reason::NotFound && d.status().reason() != api::Reason::MethodNotAllowed) {
          e.delete_errors.push_back(gr + ": " + d.status().message());
          continue;
        }
      }
      auto list = ctx_.client->get(collection);
      if (!list) {
        if (list.status().reason() != api::Reason::NotFound && list.status().reason() != api::Reason::MethodNotAllowed)
          e.delete_errors.push_back(gr + ": " + list.status().message());
        continue;
      }
      const json& items = at(*list, {"items"});
      if (!items.is_array() || items.empty()) continue;
      int count = 0;
      for (const auto& item : items) {
        ++count;
        if (!being_deleted(item)) {
          auto d = ctx_.client->remove(r.resource.path(ns, name_of(item)),
                                       json{{"kind", "DeleteOptions"}, {"apiVersion", "v1"}, {"propagationPolicy", "Background"}});
          if (!d && d.status().reason() != api::Reason::NotFound)
            e.delete_errors.push_back(gr + ": " + d.status().message());
        }
        for (const auto& f : string_list(at(item, {"metadata", "finalizers"}))) ++e.finalizers[f];
        // Pods terminate within their grace period (estimateGracefulTermination).
        if (r.resource.plural == "pods" && r.resource.group.empty()) {
          std::int64_t grace = num(at(item, {"spec", "terminationGracePeriodSeconds"}), 30);
          if (auto deleting = num(at(item, {"metadata", "deletionGracePeriodSeconds"}), -1); deleting >= 0)
            grace = deleting;
          e.seconds = std::max(e.seconds, grace);
        }
      }
      e.remaining[gr] = count;
    }
    return e;
  }

  // The namespace's deletion conditions, as upstream's namespaceConditionUpdater writes them.
  void update_conditions(const json& ns, const Estimate& e) {
    auto now = format_time(Clock::now());
    auto join = [](const std::vector<std::string>& v) {
      std::string out;
      for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
      return out;
    };
    std::vector<json> wanted;
    auto cond = [&](const char* type, bool failing, const char* ok_reason, const char* bad_reason,
                    const std::string& bad_message, const char* ok_message) {
      wanted.push_back({{"type", type},
                        {"status", failing ? "True" : "False"},
                        {"lastTransitionTime", now},
                        {"reason", failing ? bad_reason : ok_reason},
                        {"message", failing ? bad_message : std::string(ok_message)}});
    };
    cond("NamespaceDeletionDiscoveryFailure", !e.discovery_errors.empty(), "ResourcesDiscovered", "DiscoveryFailed",
         "Discovery failed for some groups: " + join(e.discovery_errors), "All resources successfully discovered");
    cond("NamespaceDeletionGroupVersionParsingFailure", false, "ParsedGroupVersions", "GroupVersionParsingFailed", "",
         "All legacy kube types successfully parsed");
    cond("NamespaceDeletionContentFailure", !e.delete_errors.empty(), "ContentDeleted", "ContentDeletionFailed",
         "Failed to delete all resource types, " + std::to_string(e.delete_errors.size()) +
             " remaining: " + join(e.delete_errors),
         "All content successfully deleted, may be waiting on finalization");
    std::vector<std::string> remaining, finalizers;
    for (const auto& [gr, n] : e.remaining) remaining.push_back(gr + " has " + std::to_string(n) + " resource instances");
    for (const auto& [f, n] : e.finalizers) finalizers.push_back(f + " in " + std::to_string(n) + " resource instances");
    cond("NamespaceContentRemaining", !remaining.empty(), "ContentRemoved", "SomeResourcesRemain",
         "Some resources are remaining: " + join(remaining), "All content successfully removed");
    cond("NamespaceFinalizersRemaining", !finalizers.empty(), "ContentHasNoFinalizers", "SomeFinalizersRemain",
         "Some content in the namespace has finalizers remaining: " + join(finalizers),
         "All content-preserving finalizers finished");

    json status = at(ns, {"status"}).is_object() ? at(ns, {"status"}) : json::object();
    json conditions = status.contains("conditions") && status["conditions"].is_array() ? status["conditions"] : json::array();
    bool changed = false;
    for (auto& w : wanted) {
      auto it = std::find_if(conditions.begin(), conditions.end(),
                             [&](const json& c) { return str(at(c, {"type"})) == str(w["type"]); });
      if (it == conditions.end()) {
        conditions.push_back(w);
        changed = true;
      } else if (str(at(*it, {"status"})) != str(w["status"]) || str(at(*it, {"reason"})) != str(w["reason"]) ||
                 str(at(*it, {"message"})) != str(w["message"])) {
        if (str(at(*it, {"status"})) == str(w["status"])) w["lastTransitionTime"] = at(*it, {"lastTransitionTime"});
        *it = w;
        changed = true;
      }
    }
    if (!changed) return;
    json body = ns;
    body["status"]["conditions"] = conditions;
    auto r = ctx_.client->update(resources::kNamespaces.path("", name_of(ns), "status"), body);
    if (!r && r.status().reason() != api::Reason::NotFound && r.status().reason() != api::Reason::Conflict)
      log('W', "namespace", name_of(ns) + ": could not update conditions: " + r.status().message(), 1);
  }

  Context& ctx_;
  std::shared_ptr<Informer> namespaces_;
  WorkQueue queue_;
  WorkerPool workers_;
};

}  // namespace

std::unique_ptr<Controller> new_namespace_controller(Context& ctx) {
  return std::make_unique<NamespaceController>(ctx);
}

}  // namespace berth::controllers
