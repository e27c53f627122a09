// apps/v1 Deployment: pkg/registry/apps/deployment/strategy.go, pkg/apis/apps/v1/defaults.go,
// pkg/apis/apps/validation (ValidateDeploymentSpec) and the deployment Table printer.
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

const char* kPercentError =
    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for "
    "validation is '[0-9]+%')";

bool is_percent(const std::string& s) {
  if (s.size() < 2 || s.back() != '%') return false;
  for (std::size_t i = 0; i + 1 < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

// getIntOrPercentValue: the percentage number, the integer, or Atoi of any other string (0 on failure).
std::int64_t int_or_percent_value(const json& v) {
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (is_percent(s)) s.pop_back();
    try {
      std::size_t used = 0;
      long long n = std::stoll(s, &used);
      return used == s.size() ? n : 0;
    } catch (...) {
      return 0;
    }
  }
  return num(v);
}

void validate_positive_int_or_percent(const json& v, const std::string& path, std::vector<Cause>& out) {
  if (v.is_string()) {
    if (!is_percent(v.get<std::string>()))
      out.push_back(api::field_invalid_rendered(path, podspec::go_int_or_string(v), kPercentError));
  } else if (v.is_number()) {
    podspec::validate_nonnegative(v, path, out);
  }
}

void validate_strategy(const json& strategy, std::vector<Cause>& out) {
  std::string type = str(field(strategy, "type"));
  const json& ru = field(strategy, "rollingUpdate");
  if (type == "Recreate") {
    if (!ru.is_null())
      out.push_back(api::field_forbidden("spec.strategy.rollingUpdate",
                                         "may not be specified when strategy `type` is 'Recreate'"));
  } else if (type == "RollingUpdate") {
    if (ru.is_null()) {
      out.push_back(api::field_required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil"));
      return;
    }
    const std::string p = "spec.strategy.rollingUpdate";
    const json& mu = field(ru, "maxUnavailable");
    const json& ms = field(ru, "maxSurge");
    validate_positive_int_or_percent(mu, p + ".maxUnavailable", out);
    validate_positive_int_or_percent(ms, p + ".maxSurge", out);
    if (int_or_percent_value(mu) == 0 && int_or_percent_value(ms) == 0)
      out.push_back(api::field_invalid_rendered(p + ".maxUnavailable", podspec::go_int_or_string(mu),
                                                "may not be 0 when `maxSurge` is 0"));
    if (mu.is_string() && is_percent(mu.get<std::string>()) && int_or_percent_value(mu) > 100)
      out.push_back(api::field_invalid_rendered(p + ".maxUnavailable", podspec::go_int_or_string(mu),
                                                "must not be greater than 100%"));
  } else {
    std::string rendered = "apps.DeploymentStrategy{Type:" + api::go_quote(type) + ", RollingUpdate:" +
                           (ru.is_null() ? std::string("(*apps.RollingUpdateDeployment)(nil)")
                                         : std::string("(*apps.RollingUpdateDeployment)(0xc000000000)")) +
                           "}";
    out.push_back(Cause{"FieldValueNotSupported",
                        "Unsupported value: " + rendered + ": supported values: \"Recreate\", \"RollingUpdate\"",
                        "spec.strategy"});
  }
}

class DeploymentStrategy final : public Strategy {
 public:
  const KindInfo& info() const override {
    static const KindInfo k = [] {
      KindInfo i;
      i.group = "apps";
      i.kind = "Deployment";
      i.plural = "deployments";
      i.singular = "deployment";
      i.namespaced = true;
      i.versions = {"v1"};
      i.storage_version = "v1";
      i.storage_prefix = "/registry/deployments";
      i.short_names = {"deploy"};
      i.categories = {"all"};
      i.subresources = {
          {"scale", "autoscaling", "v1", "Scale", {"get", "patch", "update"}},
          {"status", "apps", "v1", "Deployment", {"get", "patch", "update"}},
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
    if (auto s = podspec::check_pod_spec_quantities(at(*r, {"spec", "template", "spec"}), "Deployment"); !s) return s;
    return r;
  }

  // SetDefaults_Deployment and the template's pod defaults.
  void apply_defaults(json& obj) const override {
    json& spec = obj["spec"];
    if (!spec.is_object()) spec = json::object();
    if (!present(spec, "replicas")) spec["replicas"] = 1;
    json& strategy = spec["strategy"];
    if (!strategy.is_object()) strategy = json::object();
    if (str(field(strategy, "type")).empty()) strategy["type"] = "RollingUpdate";
    if (str(field(strategy, "type")) == "RollingUpdate") {
      if (!strategy["rollingUpdate"].is_object()) strategy["rollingUpdate"] = json::object();
      json& ru = strategy["rollingUpdate"];
      if (!present(ru, "maxUnavailable")) ru["maxUnavailable"] = "25%";
      if (!present(ru, "maxSurge")) ru["maxSurge"] = "25%";
    }
    if (!present(spec, "revisionHistoryLimit")) spec["revisionHistoryLimit"] = 10;
    if (!present(spec, "progressDeadlineSeconds")) spec["progressDeadlineSeconds"] = 600;
    podspec::default_pod_template(spec["template"]);
  }

  void prepare_for_create(json& obj) const override {
    json& spec = obj["spec"];
    if (spec.is_object() && spec.contains("template") && spec["template"].is_object() &&
        spec["template"].contains("spec"))
      podspec::drop_disabled_fields(spec["template"]["spec"], json());
    obj["status"] = json::object();
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

  // Spec changes bump the generation, and so do annotation changes: they are copied to ReplicaSets.
  bool spec_changed(const json& obj, const json& old) const override {
    return Strategy::spec_changed(obj, old) ||
           normalized(at(obj, {"metadata", "annotations"})) != normalized(at(old, {"metadata", "annotations"}));
  }

  std::optional<std::string> field_value(const json& obj, const std::string& f) const override {
    if (f == "metadata.name") return str(at(obj, {"metadata", "name"}));
    if (f == "metadata.namespace") return str(at(obj, {"metadata", "namespace"}));
    return std::nullopt;
  }

  std::vector<Column> columns() const override {
    return {
        {"Name", "string", "name", podspec::kNameDescription, 0},
        {"Ready", "string", "", "Number of the pod with ready state", 0},
        {"Up-to-date", "string", "",
         "Total number of non-terminated pods targeted by this deployment that have the desired template spec.", 0},
        {"Available", "string", "",
         "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.", 0},
        {"Age", "string", "", podspec::kAgeDescription, 0},
        {"Containers", "string", "", "Names of each container in the template.", 1},
        {"Images", "string", "", "Images referenced by each container in the template.", 1},
        {"Selector", "string", "",
         "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by "
         "this deployment.",
         1},
    };
  }

  json cells(const json& obj) const override {
    const json& spec = field(obj, "spec");
    const json& status = field(obj, "status");
    std::int64_t desired = num(field(spec, "replicas"), 1);
    auto [names, images] = podspec::container_cells(at(spec, {"template", "spec", "containers"}));
    auto sel = api::LabelSelector::from_json(field(spec, "selector"));
    std::string selector = sel ? sel->to_string() : "<invalid>";
    return json::array({str(at(obj, {"metadata", "name"})),
                        std::to_string(num(field(status, "readyReplicas"))) + "/" + std::to_string(desired),
                        num(field(status, "updatedReplicas")), num(field(status, "availableReplicas")), age(obj), names,
                        images, selector});
  }

  bool has_scale() const override { return true; }

 private:
  // ValidateDeploymentSpec.
  static void validate_spec(const json& spec, std::vector<Cause>& out) {
    podspec::validate_nonnegative(field(spec, "replicas"), "spec.replicas", out);
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
    validate_strategy(field(spec, "strategy"), out);
    podspec::validate_nonnegative(field(spec, "minReadySeconds"), "spec.minReadySeconds", out);
    if (present(spec, "revisionHistoryLimit"))
      podspec::validate_nonnegative(field(spec, "revisionHistoryLimit"), "spec.revisionHistoryLimit", out);
    if (present(spec, "progressDeadlineSeconds")) {
      const json& pds = field(spec, "progressDeadlineSeconds");
      podspec::validate_nonnegative(pds, "spec.progressDeadlineSeconds", out);
      if (num(pds) <= num(field(spec, "minReadySeconds")))
        out.push_back(api::field_invalid("spec.progressDeadlineSeconds", json(num(pds)), "must be greater than minReadySeconds"));
    }
  }
};

}  // namespace

std::unique_ptr<Strategy> make_deployment_strategy() { return std::make_unique<DeploymentStrategy>(); }

}  // namespace berth::apiserver
