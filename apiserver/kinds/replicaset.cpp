// apps/v1 ReplicaSet: pkg/registry/apps/replicaset/strategy.go, SetDefaults_ReplicaSet,
// ValidateReplicaSetSpec and the replica set Table printer.
#include "api/selector.h"
#include "api/validation.h"
#include "apiserver/kinds/pod_template.h"
#include "apiserver/kinds/workloads.h"

namespace berth::apiserver {

namespace {

using api::Cause;
using podspec::num;
using podspec::present;
using podspec::str;

const json& field(const json& obj, const char* k) {
  static const json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(k);
  return it == obj.end() ? kNull : *it;
}

json normalized(const json& v) {
  if (v.is_object()) {
    json out = json::object();
    for (const auto& [k, e] : v.items()) {
      json n = normalized(e);
      if (n.is_null() || (n.is_array() && n.empty()) || (n.is_object() && n.empty())) continue;
      out[k] = std::move(n);
    }
    return out;
  }
  return v;
}

class ReplicaSetStrategy final : public Strategy {
 public:
  const KindInfo& info() const override {
    static const KindInfo k = [] {
      KindInfo i;
      i.group = "apps";
      i.kind = "ReplicaSet";
      i.plural = "replicasets";
      i.singular = "replicaset";
      i.namespaced = true;
      i.versions = {"v1"};
      i.storage_version = "v1";
      i.storage_prefix = "/registry/replicasets";
      i.short_names = {"rs"};
      i.categories = {"all"};
      i.subresources = {
          {"scale", "autoscaling", "v1", "Scale", {"get", "patch", "update"}},
          {"status", "apps", "v1", "ReplicaSet", {"get", "patch", "update"}},
      };
      i.has_status = true;
      i.tracks_generation = true;
      i.default_propagation = "Background";
      return i;
    }();
    return k;
  }

  api::Result<json> from_version(json external, const std::string& version) const override {
    auto r = Strategy::from_version(std::move(external), version);
    if (!r) return r;
    if (auto s = podspec::check_pod_spec_quantities(at(*r, {"spec", "template", "spec"}), "ReplicaSet"); !s) return s;
    return r;
  }

  void apply_defaults(json& obj) const override {
    json& spec = obj["spec"];
    if (!spec.is_object()) spec = json::object();
    if (!present(spec, "replicas")) spec["replicas"] = 1;
    podspec::default_pod_template(spec["template"]);
  }

  void prepare_for_create(json& obj) const override {
    json& spec = obj["spec"];
    if (spec.is_object() && spec.contains("template") && spec["template"].is_object() &&
        spec["template"].contains("spec"))
      podspec::drop_disabled_fields(spec["template"]["spec"], json());
    obj["status"] = {{"replicas", 0}};  // ReplicaSetStatus.replicas has no omitempty
  }

  void prepare_for_update(json& obj, const json& old) const override {
    json& spec = obj["spec"];
    if (spec.is_object() && spec.contains("template") && spec["template"].is_object() &&
        spec["template"].contains("spec"))
      podspec::drop_disabled_fields(spec["template"]["spec"], at(old, {"spec", "template", "spec"}));
  }

  void validate(const json& obj, std::vector<Cause>& out) const override { validate_spec(field(obj, "spec"), out); }

  void validate_update(const json& obj, const json& old, std::vector<Cause>& out) const override {
    validate_spec(field(obj, "spec"), out);
    const json& sel = at(obj, {"spec", "selector"});
    if (normalized(sel) != normalized(at(old, {"spec", "selector"})))
      out.push_back(api::field_invalid_rendered("spec.selector", podspec::go_label_selector(sel), "field is immutable"));
  }

  std::optional<std::string> field_value(const json& obj, const std::string& f) const override {
    if (f == "metadata.name") return str(at(obj, {"metadata", "name"}));
    if (f == "metadata.namespace") return str(at(obj, {"metadata", "namespace"}));
    if (f == "status.replicas") return std::to_string(num(at(obj, {"status", "replicas"})));
    return std::nullopt;
  }

  std::vector<Column> columns() const override {
    return {
        {"Name", "string", "name", podspec::kNameDescription, 0},
        {"Desired", "integer", "",
         "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and "
         "unspecified. Defaults to 1. More info: "
         "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller",
         0},
        {"Current", "integer", "",
         "Replicas is the most recently observed number of replicas. More info: "
         "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller",
         0},
        {"Ready", "integer", "", "The number of ready replicas for this replica set.", 0},
        {"Age", "string", "", podspec::kAgeDescription, 0},
        {"Containers", "string", "", "Names of each container in the template.", 1},
        {"Images", "string", "", "Images referenced by each container in the template.", 1},
        {"Selector", "string", "",
         "Selector is a label query over pods that should match the replicas count. If the selector is empty, it is "
         "defaulted to the labels present on the pod template. Label keys and values that must match in order to be "
         "controlled by this replica set. More info: "
         "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
         1},
    };
  }

  json cells(const json& obj) const override {
    const json& spec = field(obj, "spec");
    const json& status = field(obj, "status");
    auto [names, images] = podspec::container_cells(at(spec, {"template", "spec", "containers"}));
    return json::array({str(at(obj, {"metadata", "name"})), num(field(spec, "replicas"), 1),
                        num(field(status, "replicas")), num(field(status, "readyReplicas")), age(obj), names, images,
                        podspec::format_label_selector(field(spec, "selector"))});
  }

  bool has_scale() const override { return true; }

 private:
  // ValidateReplicaSetSpec.
  static void validate_spec(const json& spec, std::vector<Cause>& out) {
    podspec::validate_nonnegative(field(spec, "replicas"), "spec.replicas", out);
    podspec::validate_nonnegative(field(spec, "minReadySeconds"), "spec.minReadySeconds", out);
    const json& sel = field(spec, "selector");
    if (!sel.is_object()) {
      out.push_back(api::field_required("spec.selector"));
    } else {
      api::validate_label_selector(sel, "spec.selector", out);
      const json& ml = field(sel, "matchLabels");
      const json& me = field(sel, "matchExpressions");
      if ((ml.is_object() ? ml.size() : 0) + (me.is_array() ? me.size() : 0) == 0)
        out.push_back(api::field_invalid_rendered("spec.selector", podspec::go_label_selector(sel),
                                                  "empty selector is invalid for deployment"));
    }
    if (!api::LabelSelector::from_json(sel))
      out.push_back(api::field_invalid_rendered("spec.selector", podspec::go_label_selector(sel), "invalid label selector"));
    else
      podspec::validate_pod_template_for_replicaset(field(spec, "template"), sel, num(field(spec, "replicas")),
                                                    "spec.template", out);
  }
};

}  // namespace

std::unique_ptr<Strategy> make_replicaset_strategy() { return std::make_unique<ReplicaSetStrategy>(); }

}  // namespace berth::apiserver
