// Root CA certificate publisher (pkg/controller/certificates/rootcacertpublisher): every active
// namespace holds the ConfigMap kube-root-ca.crt with the cluster CA under ca.crt, so pods can
// verify the API server at kubernetes.default.svc. A namespace that appears or changes while
// Active gets it; a deleted or edited copy is put back.
#include "client/client.h"
#include "controllers/controller.h"

namespace berth::controllers {

namespace {

constexpr const char* kName = "kube-root-ca.crt";
constexpr const char* kDescriptionAnnotation = "kubernetes.io/description";
// The description Kubernetes writes, word for word: clients may show it.
constexpr const char* kDescription =
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the "
    "internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes "
    "clusters.";

const Resource kConfigMaps{"", "v1", "configmaps", "ConfigMap", true};

class RootCAPublisher final : public Controller {
 public:
  explicit RootCAPublisher(Context& ctx)
      : ctx_(ctx), namespaces_(ctx.informers.get(resources::kNamespaces)), queue_("root_ca_cert_publisher") {
    // Only the one ConfigMap per namespace matters: the cache holds nothing else.
    InformerOptions only_ours;
    only_ours.field_selector = std::string("metadata.name=") + kName;
    configmaps_ = std::make_shared<Informer>(ctx.client, kConfigMaps, only_ours);
    namespaces_->add_handler({[this](const ObjectPtr& ns) { queue_.add(name_of(*ns)); },
                              [this](const ObjectPtr&, const ObjectPtr& ns) {
                                if (str(at(*ns, {"status", "phase"})) == "Active") queue_.add(name_of(*ns));
                              },
                              nullptr});
    auto changed = [this](const ObjectPtr& cm) { queue_.add(namespace_of(*cm)); };
    configmaps_->add_handler({nullptr, [changed](const ObjectPtr&, const ObjectPtr& cm) { changed(cm); }, changed});
  }

  std::string name() const override { return "root-ca-cert-publisher"; }

  void start() override {
    if (ctx_.options.root_ca_pem.empty()) {
      log('W', "root-ca-cert-publisher", "no cluster CA known: kube-root-ca.crt is not published");
      return;
    }
    configmaps_->start();
    workers_.start(queue_, 1, [this](const std::string& ns) { return sync(ns); }, "root-ca-cert-publisher");
  }

  void stop() override {
    configmaps_->stop();
    queue_.shutdown();
    workers_.join();
  }

 private:
  SyncResult sync(const std::string& ns) {
    // Until the cache has listed, a missing entry would mean a needless create. (Waiting in
    // start() instead would hold up the manager's shutdown while the server is unreachable.)
    if (!configmaps_->synced()) return SyncResult::after(std::chrono::milliseconds(200));
    const json data = {{"ca.crt", ctx_.options.root_ca_pem}};
    ObjectPtr cm = configmaps_->get(ns, kName);
    if (!cm) {
      json body = {{"apiVersion", "v1"},
                   {"kind", "ConfigMap"},
                   {"metadata", {{"name", kName}, {"annotations", {{kDescriptionAnnotation, kDescription}}}}},
                   {"data", data}};
      auto r = ctx_.client->create(kConfigMaps.path(ns), body);
      if (r) {
        configmaps_->apply("ADDED", std::move(*r));
        return SyncResult::ok();
      }
      // A namespace gone or terminating takes no new content: no retry.
      const auto& s = r.status();
      bool terminating = false;
      for (const auto& c : s.causes()) terminating |= c.reason == "NamespaceTerminating";
      if (s.reason() == api::Reason::NotFound || terminating) return SyncResult::ok();
      return SyncResult::error(r.take_status());
    }
    if (at(*cm, {"data"}) == data && !str(at(*cm, {"metadata", "annotations", kDescriptionAnnotation})).empty())
      return SyncResult::ok();
    json body = *cm;
    body["data"] = data;
    if (!body["metadata"]["annotations"].is_object()) body["metadata"]["annotations"] = json::object();
    body["metadata"]["annotations"][kDescriptionAnnotation] = kDescription;
    auto r = ctx_.client->update(kConfigMaps.path(ns, kName), body);
    if (!r && r.status().reason() != api::Reason::NotFound) return SyncResult::error(r.take_status());
    return SyncResult::ok();
  }

  Context& ctx_;
  std::shared_ptr<Informer> namespaces_;
  std::shared_ptr<Informer> configmaps_;
  WorkQueue queue_;
  WorkerPool workers_;
};

}  // namespace

std::unique_ptr<Controller> new_root_ca_publisher(Context& ctx) { return std::make_unique<RootCAPublisher>(ctx); }

}  // namespace berth::controllers
