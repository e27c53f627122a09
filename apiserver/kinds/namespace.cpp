// core/v1 Namespace: pkg/registry/core/namespace/strategy.go and the namespace parts of
// pkg/apis/core/v1/defaults.go and pkg/apis/core/validation/validation.go.
#include <algorithm>

#include "api/validation.h"
#include "apiserver/kinds/other_kinds.h"

namespace berth::apiserver {
namespace {

// The finalizer the namespace controller owns (api.FinalizerKubernetes).
constexpr const char* kKubernetesFinalizer = "kubernetes";

// helper.IsStandardFinalizerName: the names that may go without a domain prefix.
bool is_standard_finalizer(const std::string& name) {
  return name == "kubernetes" || name == "orphan" || name == "foregroundDeletion";
}

class NamespaceStrategy : public Strategy {
 public:
  NamespaceStrategy() {
    info_.group = "";
    info_.kind = "Namespace";
    info_.plural = "namespaces";
    info_.singular = "namespace";
    info_.namespaced = false;
    info_.versions = {"v1"};
    info_.storage_version = "v1";
    info_.storage_prefix = "/registry/namespaces";
    info_.short_names = {"ns"};
    info_.subresources = {{"finalize", "", "v1", "Namespace", {"update"}},
                          {"status", "", "v1", "Namespace", {"get", "patch", "update"}}};
    info_.has_status = true;
    info_.allow_create_on_update = false;
    info_.allow_unconditional_update = true;
    info_.return_deleted_object = true;  // the namespace REST store sets ReturnDeletedObject
    info_.name_rule = api::NameRule::DNS1123Label;  // ValidateNamespaceName
    // Namespaces have no deletecollection.
    info_.verbs = {"create", "delete", "get", "list", "patch", "update", "watch"};
  }

  const KindInfo& info() const override { return info_; }

  // PrepareForCreate: a new namespace is Active and carries the kubernetes finalizer.
  void prepare_for_create(json& obj) const override {
    obj["status"] = {{"phase", "Active"}};
    json& spec = obj["spec"];
    if (!spec.is_object()) spec = json::object();
    json& finalizers = spec["finalizers"];
    if (!finalizers.is_array()) finalizers = json::array();
    bool has = std::any_of(finalizers.begin(), finalizers.end(),
                           [](const json& f) { return f.is_string() && f.get<std::string>() == kKubernetesFinalizer; });
    if (!has) finalizers.push_back(kKubernetesFinalizer);
  }

  // Upstream PrepareForUpdate also keeps spec.finalizers from the old object (only /finalize
  // changes them). The generic path routes /finalize through this same hook, so finalizers are
  // left as the client sent them here; status is kept by the generic path.

  // SetDefaults_Namespace, SetDefaults_NamespaceStatus, and Canonicalize's name label.
  void apply_defaults(json& obj) const override {
    json& meta = obj["metadata"];
    if (!meta.is_object()) meta = json::object();
    const json& name = at(meta, {"name"});
    if (name.is_string() && !name.get<std::string>().empty()) {
      json& labels = meta["labels"];
      if (!labels.is_object()) labels = json::object();
      labels["kubernetes.io/metadata.name"] = name;
    }
    if (!obj["spec"].is_object()) obj["spec"] = json::object();
    json& status = obj["status"];
    if (!status.is_object()) status = json::object();
    const json& phase = at(status, {"phase"});
    if (!phase.is_string() || phase.get<std::string>().empty()) status["phase"] = "Active";
  }

  // A namespace with spec.finalizers turns Terminating and stays until the namespace
  // controller has emptied it and cleared them through /finalize.
  bool prepare_for_delete(json& obj) const override {
    const json& finalizers = at(obj, {"spec", "finalizers"});
    if (!finalizers.is_array() || finalizers.empty()) return false;
    obj["status"]["phase"] = "Terminating";
    return true;
  }

  // NamespaceLifecycle admission: the namespaces the cluster's own objects live in stay.
  api::Status admit_delete(const json& obj) const override {
    const json& name = at(obj, {"metadata", "name"});
    std::string n = name.is_string() ? name.get<std::string>() : "";
    if (n != "default" && n != "kube-system" && n != "kube-public") return {};
    return api::Status(api::Reason::Forbidden, "namespaces \"" + n + "\" is forbidden: this namespace may not be deleted")
        .with_details("namespaces", n);
  }

  // ShouldDeleteNamespaceDuringUpdate: only /finalize clearing spec.finalizers lets it go.
  bool held_by_spec(const json& obj) const override {
    const json& finalizers = at(obj, {"spec", "finalizers"});
    return finalizers.is_array() && !finalizers.empty();
  }

  // ValidateNamespace (metadata is checked by the generic path): each finalizer a qualified name,
  // and a bare name only if it is a standard one.
  void validate(const json& obj, std::vector<api::Cause>& errors) const override {
    const json& finalizers = at(obj, {"spec", "finalizers"});
    if (!finalizers.is_array()) return;
    for (const auto& f : finalizers) {
      std::string name = f.is_string() ? f.get<std::string>() : "";
      for (const auto& msg : api::is_qualified_name(name))
        errors.push_back(api::field_invalid("spec.finalizers", name, msg));
      if (name.find('/') == std::string::npos && !is_standard_finalizer(name))
        errors.push_back(api::field_invalid("spec.finalizers", name,
                                            "name is neither a standard finalizer name nor is it fully qualified"));
    }
  }

  std::optional<std::string> field_value(const json& obj, const std::string& field) const override {
    if (field == "status.phase") {
      const json& p = at(obj, {"status", "phase"});
      return p.is_string() ? p.get<std::string>() : std::string();
    }
    return std::nullopt;
  }

  std::vector<Column> columns() const override {
    auto def = Strategy::columns();  // Name, Age
    return {def[0], {"Status", "string", "", "The status of the namespace", 0}, def[1]};
  }

  json cells(const json& obj) const override {
    const json& phase = at(obj, {"status", "phase"});
    return json::array({at(obj, {"metadata", "name"}), phase.is_string() ? phase : json(""), age(obj)});
  }

 private:
  KindInfo info_;
};

}  // namespace

std::unique_ptr<Strategy> make_namespace_strategy() { return std::make_unique<NamespaceStrategy>(); }

}  // namespace berth::apiserver
