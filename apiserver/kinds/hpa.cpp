// autoscaling HorizontalPodAutoscaler, stored as autoscaling/v2 and served as v2 (preferred) and v1:
// pkg/registry/autoscaling/horizontalpodautoscaler/strategy.go, pkg/apis/autoscaling/v2/defaults.go,
// pkg/apis/autoscaling/v1/conversion.go (targetCPUUtilizationPercentage <-> a cpu Resource metric
// with a Utilization target; everything v1 cannot say rides in the autoscaling.alpha.kubernetes.io
// annotations), pkg/apis/autoscaling/validation, printHorizontalPodAutoscaler.
#include <cctype>

#include "api/quantity.h"
#include "api/validation.h"
#include "apiserver/kinds/other_kinds.h"

namespace berth::apiserver {
namespace {

using ojson = nlohmann::ordered_json;

constexpr const char* kMetricsAnnotation = "autoscaling.alpha.kubernetes.io/metrics";
constexpr const char* kCurrentMetricsAnnotation = "autoscaling.alpha.kubernetes.io/current-metrics";
constexpr const char* kConditionsAnnotation = "autoscaling.alpha.kubernetes.io/conditions";
constexpr const char* kBehaviorAnnotation = "autoscaling.alpha.kubernetes.io/behavior";
constexpr std::int64_t kDefaultCPUUtilization = 80;

std::string str(const json& j) { return j.is_string() ? j.get<std::string>() : std::string(); }
bool present(const json& j) { return !j.is_null(); }

// A Quantity as upstream prints it (String()); the text itself when it does not parse.
std::string quantity_text(const json& q) {
  auto parsed = api::Quantity::from_json(q);
  if (parsed) return parsed->to_string();
  return q.is_string() ? q.get<std::string>() : q.dump();
}
// A non-pointer Quantity field: "0" when unset.
json quantity_or_zero(const json& q) { return present(q) ? q : json("0"); }

// ---- v2 -> v1 (the v1 MetricSpec/MetricStatus shapes, for the round-trip annotations) ----

ojson v1_reference(const json& ref) {
  ojson out = ojson::object();
  out["kind"] = str(at(ref, {"kind"}));
  out["name"] = str(at(ref, {"name"}));
  if (!str(at(ref, {"apiVersion"})).empty()) out["apiVersion"] = at(ref, {"apiVersion"});
  return out;
}

ojson v1_metric_spec(const json& m) {
  ojson out = ojson::object();
  out["type"] = str(at(m, {"type"}));
  if (const json& o = at(m, {"object"}); o.is_object()) {
    ojson s = ojson::object();
    s["target"] = v1_reference(at(o, {"describedObject"}));
    s["metricName"] = str(at(o, {"metric", "name"}));
    s["targetValue"] = quantity_or_zero(at(o, {"target", "value"}));
    if (present(at(o, {"metric", "selector"}))) s["selector"] = at(o, {"metric", "selector"});
    if (present(at(o, {"target", "averageValue"}))) s["averageValue"] = at(o, {"target", "averageValue"});
    out["object"] = s;
  }
  if (const json& p = at(m, {"pods"}); p.is_object()) {
    ojson s = ojson::object();
    s["metricName"] = str(at(p, {"metric", "name"}));
    s["targetAverageValue"] = quantity_or_zero(at(p, {"target", "averageValue"}));
    if (present(at(p, {"metric", "selector"}))) s["selector"] = at(p, {"metric", "selector"});
    out["pods"] = s;
  }
  for (const char* kind : {"resource", "containerResource"}) {
    const json& r = at(m, {kind});
    if (!r.is_object()) continue;
    ojson s = ojson::object();
    s["name"] = str(at(r, {"name"}));
    if (present(at(r, {"target", "averageUtilization"}))) s["targetAverageUtilization"] = at(r, {"target", "averageUtilization"});
    if (present(at(r, {"target", "averageValue"}))) s["targetAverageValue"] = at(r, {"target", "averageValue"});
    if (std::string(kind) == "containerResource") s["container"] = str(at(r, {"container"}));
    out[kind] = s;
  }
  if (const json& e = at(m, {"external"}); e.is_object()) {
    ojson s = ojson::object();
    s["metricName"] = str(at(e, {"metric", "name"}));
    if (present(at(e, {"metric", "selector"}))) s["metricSelector"] = at(e, {"metric", "selector"});
    if (present(at(e, {"target", "value"}))) s["targetValue"] = at(e, {"target", "value"});
    if (present(at(e, {"target", "averageValue"}))) s["targetAverageValue"] = at(e, {"target", "averageValue"});
    out["external"] = s;
  }
  return out;
}

ojson v1_metric_status(const json& m) {
  ojson out = ojson::object();
  out["type"] = str(at(m, {"type"}));
  if (const json& o = at(m, {"object"}); o.is_object()) {
    ojson s = ojson::object();
    s["target"] = v1_reference(at(o, {"describedObject"}));
    s["metricName"] = str(at(o, {"metric", "name"}));
    s["currentValue"] = quantity_or_zero(at(o, {"current", "value"}));
    if (present(at(o, {"metric", "selector"}))) s["selector"] = at(o, {"metric", "selector"});
    if (present(at(o, {"current", "averageValue"}))) s["averageValue"] = at(o, {"current", "averageValue"});
    out["object"] = s;
  }
  if (const json& p = at(m, {"pods"}); p.is_object()) {
    ojson s = ojson::object();
    s["metricName"] = str(at(p, {"metric", "name"}));
    s["currentAverageValue"] = quantity_or_zero(at(p, {"current", "averageValue"}));
    if (present(at(p, {"metric", "selector"}))) s["selector"] = at(p, {"metric", "selector"});
    out["pods"] = s;
  }
  for (const char* kind : {"resource", "containerResource"}) {
    const json& r = at(m, {kind});
    if (!r.is_object()) continue;
    ojson s = ojson::object();
    s["name"] = str(at(r, {"name"}));
    if (present(at(r, {"current", "averageUtilization"})))
      s["currentAverageUtilization"] = at(r, {"current", "averageUtilization"});
    s["currentAverageValue"] = quantity_or_zero(at(r, {"current", "averageValue"}));
    if (std::string(kind) == "containerResource") s["container"] = str(at(r, {"container"}));
    out[kind] = s;
  }
  if (const json& e = at(m, {"external"}); e.is_object()) {
    ojson s = ojson::object();
    s["metricName"] = str(at(e, {"metric", "name"}));
    if (present(at(e, {"metric", "selector"}))) s["metricSelector"] = at(e, {"metric", "selector"});
    s["currentValue"] = quantity_or_zero(at(e, {"current", "value"}));
    if (present(at(e, {"current", "averageValue"}))) s["currentAverageValue"] = at(e, {"current", "averageValue"});
    out["external"] = s;
  }
  return out;
}

ojson v1_condition(const json& c) {
  ojson out = ojson::object();
  out["type"] = str(at(c, {"type"}));
  out["status"] = str(at(c, {"status"}));
  out["lastTransitionTime"] = at(c, {"lastTransitionTime"});
  if (!str(at(c, {"reason"})).empty()) out["reason"] = at(c, {"reason"});
  if (!str(at(c, {"message"})).empty()) out["message"] = at(c, {"message"});
  return out;
}

// The behavior annotation is json.Marshal of the internal type: Go field names, nothing omitted.
ojson internal_behavior(const json& b) {
  auto rules = [](const json& r) -> ojson {
    if (!r.is_object()) return nullptr;
    ojson out = ojson::object();
    out["StabilizationWindowSeconds"] = at(r, {"stabilizationWindowSeconds"});
    out["SelectPolicy"] = at(r, {"selectPolicy"});
    const json& policies = at(r, {"policies"});
    if (policies.is_array()) {
      ojson list = ojson::array();
      for (const auto& p : policies) {
        ojson po = ojson::object();
        po["Type"] = str(at(p, {"type"}));
        po["Value"] = at(p, {"value"}).is_number() ? at(p, {"value"}) : json(0);
        po["PeriodSeconds"] = at(p, {"periodSeconds"}).is_number() ? at(p, {"periodSeconds"}) : json(0);
        list.push_back(po);
      }
      out["Policies"] = list;
    } else {
      out["Policies"] = nullptr;
    }
    return out;
  };
  ojson out = ojson::object();
  out["ScaleUp"] = rules(at(b, {"scaleUp"}));
  out["ScaleDown"] = rules(at(b, {"scaleDown"}));
  return out;
}

// ---- v1 -> v2 ----

// encoding/json matches keys case-insensitively; the behavior annotation relies on it.
const json& find_ci(const json& obj, const std::string& key) {
  static const json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  if (it != obj.end()) return *it;
  for (auto i = obj.begin(); i != obj.end(); ++i) {
    const std::string& k = i.key();
    if (k.size() == key.size() &&
        std::equal(k.begin(), k.end(), key.begin(), [](char a, char b) { return std::tolower(a) == std::tolower(b); }))
      return i.value();
  }
  return kNull;
}

json v2_reference(const json& ref) {
  json out = json::object();
  out["kind"] = str(at(ref, {"kind"}));
  out["name"] = str(at(ref, {"name"}));
  if (!str(at(ref, {"apiVersion"})).empty()) out["apiVersion"] = at(ref, {"apiVersion"});
  return out;
}

json metric_identifier(const json& name, const json& selector) {
  json id = {{"name", str(name)}};
  if (present(selector)) id["selector"] = selector;
  return id;
}

json v2_metric_spec(const json& m) {
  json out = {{"type", str(at(m, {"type"}))}};
  if (const json& o = at(m, {"object"}); o.is_object()) {
    json target = {{"type", present(at(o, {"averageValue"})) ? "AverageValue" : "Value"},
                   {"value", quantity_or_zero(at(o, {"targetValue"}))}};
    if (present(at(o, {"averageValue"}))) target["averageValue"] = at(o, {"averageValue"});
    out["object"] = {{"describedObject", v2_reference(at(o, {"target"}))},
                     {"metric", metric_identifier(at(o, {"metricName"}), at(o, {"selector"}))},
                     {"target", target}};
  }
  if (const json& p = at(m, {"pods"}); p.is_object()) {
    out["pods"] = {{"metric", metric_identifier(at(p, {"metricName"}), at(p, {"selector"}))},
                   {"target", {{"type", "AverageValue"}, {"averageValue", quantity_or_zero(at(p, {"targetAverageValue"}))}}}};
  }
  for (const char* kind : {"resource", "containerResource"}) {
    const json& r = at(m, {kind});
    if (!r.is_object()) continue;
    const json& util = at(r, {"targetAverageUtilization"});
    json target = {{"type", present(util) ? "Utilization" : "AverageValue"}};
    if (present(util)) target["averageUtilization"] = util;
    if (present(at(r, {"targetAverageValue"}))) target["averageValue"] = at(r, {"targetAverageValue"});
    json s = {{"name", str(at(r, {"name"}))}, {"target", target}};
    if (std::string(kind) == "containerResource") s["container"] = str(at(r, {"container"}));
    out[kind] = s;
  }
  if (const json& e = at(m, {"external"}); e.is_object()) {
    const json& value = at(e, {"targetValue"});
    json target = {{"type", present(value) ? "Value" : "AverageValue"}};
    if (present(value)) target["value"] = value;
    if (present(at(e, {"targetAverageValue"}))) target["averageValue"] = at(e, {"targetAverageValue"});
    out["external"] = {{"metric", metric_identifier(at(e, {"metricName"}), at(e, {"metricSelector"}))}, {"target", target}};
  }
  return out;
}

json v2_metric_status(const json& m) {
  json out = {{"type", str(at(m, {"type"}))}};
  if (const json& o = at(m, {"object"}); o.is_object()) {
    json current = {{"value", quantity_or_zero(at(o, {"currentValue"}))}};
    if (present(at(o, {"averageValue"}))) current["averageValue"] = at(o, {"averageValue"});
    out["object"] = {{"describedObject", v2_reference(at(o, {"target"}))},
                     {"metric", metric_identifier(at(o, {"metricName"}), at(o, {"selector"}))},
                     {"current", current}};
  }
  if (const json& p = at(m, {"pods"}); p.is_object()) {
    out["pods"] = {{"metric", metric_identifier(at(p, {"metricName"}), at(p, {"selector"}))},
                   {"current", {{"averageValue", quantity_or_zero(at(p, {"currentAverageValue"}))}}}};
  }
  for (const char* kind : {"resource", "containerResource"}) {
    const json& r = at(m, {kind});
    if (!r.is_object()) continue;
    json current = {{"averageValue", quantity_or_zero(at(r, {"currentAverageValue"}))}};
    if (present(at(r, {"currentAverageUtilization"}))) current["averageUtilization"] = at(r, {"currentAverageUtilization"});
    json s = {{"name", str(at(r, {"name"}))}, {"current", current}};
    if (std::string(kind) == "containerResource") s["container"] = str(at(r, {"container"}));
    out[kind] = s;
  }
  if (const json& e = at(m, {"external"}); e.is_object()) {
    json current = {{"value", quantity_or_zero(at(e, {"currentValue"}))}};
    if (present(at(e, {"currentAverageValue"}))) current["averageValue"] = at(e, {"currentAverageValue"});
    out["external"] = {{"metric", metric_identifier(at(e, {"metricName"}), at(e, {"metricSelector"}))}, {"current", current}};
  }
  return out;
}

json v2_behavior(const json& b) {
  auto rules = [](const json& r) -> json {
    if (!r.is_object()) return nullptr;
    json out = json::object();
    if (present(find_ci(r, "stabilizationWindowSeconds"))) out["stabilizationWindowSeconds"] = find_ci(r, "stabilizationWindowSeconds");
    if (present(find_ci(r, "selectPolicy"))) out["selectPolicy"] = find_ci(r, "selectPolicy");
    const json& policies = find_ci(r, "policies");
    if (policies.is_array()) {
      json list = json::array();
      for (const auto& p : policies)
        list.push_back({{"type", find_ci(p, "type")}, {"value", find_ci(p, "value")}, {"periodSeconds", find_ci(p, "periodSeconds")}});
      out["policies"] = list;
    }
    return out;
  };
  json out = json::object();
  if (json up = rules(find_ci(b, "scaleUp")); !up.is_null()) out["scaleUp"] = up;
  if (json down = rules(find_ci(b, "scaleDown")); !down.is_null()) out["scaleDown"] = down;
  return out;
}

json cpu_utilization_metric(const json& percent) {
  return {{"type", "Resource"},
          {"resource", {{"name", "cpu"}, {"target", {{"type", "Utilization"}, {"averageUtilization", percent}}}}}};
}

bool is_cpu_utilization_metric(const json& m) {
  return str(at(m, {"type"})) == "Resource" && at(m, {"resource"}).is_object() &&
         str(at(m, {"resource", "name"})) == "cpu" && present(at(m, {"resource", "target", "averageUtilization"}));
}

// Quantities come back in the spelling upstream would serialize; a malformed one is a decode error.
api::Status normalize_quantities(json& hpa, const std::string& version) {
  auto fix = [&](json& parent, const char* key) -> api::Status {
    if (!parent.is_object() || !parent.contains(key) || parent[key].is_null()) return {};
    auto q = api::Quantity::from_json(parent[key]);
    if (!q)
      return api::Status(api::Reason::BadRequest, "HorizontalPodAutoscaler in version \"" + version +
                                                      "\" cannot be handled as a HorizontalPodAutoscaler: " +
                                                      q.status().message());
    parent[key] = q->to_json();
    return {};
  };
  auto walk = [&](json& list, const char* leaf) -> api::Status {
    if (!list.is_array()) return {};
    for (auto& m : list) {
      if (!m.is_object()) continue;
      for (const char* kind : {"object", "pods", "resource", "containerResource", "external"}) {
        if (!m.contains(kind) || !m[kind].is_object() || !m[kind].contains(leaf)) continue;
        json& t = m[kind][leaf];
        if (auto s = fix(t, "value"); !s) return s;
        if (auto s = fix(t, "averageValue"); !s) return s;
      }
    }
    return {};
  };
  if (hpa.contains("spec") && hpa["spec"].is_object() && hpa["spec"].contains("metrics"))
    if (auto s = walk(hpa["spec"]["metrics"], "target"); !s) return s;
  if (hpa.contains("status") && hpa["status"].is_object() && hpa["status"].contains("currentMetrics"))
    if (auto s = walk(hpa["status"]["currentMetrics"], "current"); !s) return s;
  return {};
}

// ---- validation (pkg/apis/autoscaling/validation) ----

int quantity_sign(const json& q) {
  auto parsed = api::Quantity::from_json(q);
  return parsed ? parsed->sign() : 0;
}

void validate_reference(const json& ref, const std::string& path, std::vector<api::Cause>& errors) {
  std::string kind = str(at(ref, {"kind"})), name = str(at(ref, {"name"}));
  if (kind.empty()) errors.push_back(api::field_required(path + ".kind"));
  else
    for (const auto& msg : api::is_valid_path_segment_name(kind)) errors.push_back(api::field_invalid(path + ".kind", kind, msg));
  if (name.empty()) errors.push_back(api::field_required(path + ".name"));
  else
    for (const auto& msg : api::is_valid_path_segment_name(name)) errors.push_back(api::field_invalid(path + ".name", name, msg));
}

void validate_metric_identifier(const json& id, const std::string& path, std::vector<api::Cause>& errors) {
  std::string name = str(at(id, {"name"}));
  if (name.empty()) errors.push_back(api::field_required(path + ".name", "must specify a metric name"));
  else
    for (const auto& msg : api::is_valid_path_segment_name(name)) errors.push_back(api::field_invalid(path + ".name", name, msg));
}

void validate_metric_target(const json& t, const std::string& path, std::vector<api::Cause>& errors) {
  std::string type = str(at(t, {"type"}));
  if (type.empty()) errors.push_back(api::field_required(path + ".type", "must specify a metric target type"));
  if (type != "Utilization" && type != "Value" && type != "AverageValue")
    errors.push_back(api::field_invalid(path + ".type", type, "must be either Utilization, Value, or AverageValue"));
  if (present(at(t, {"value"})) && quantity_sign(at(t, {"value"})) != 1)
    errors.push_back(api::field_invalid_rendered(path + ".value", quantity_text(at(t, {"value"})), "must be positive"));
  if (present(at(t, {"averageValue"})) && quantity_sign(at(t, {"averageValue"})) != 1)
    errors.push_back(api::field_invalid_rendered(path + ".averageValue", quantity_text(at(t, {"averageValue"})), "must be positive"));
  const json& util = at(t, {"averageUtilization"});
  if (util.is_number() && util.get<double>() < 1)
    errors.push_back(api::field_invalid(path + ".averageUtilization", util, "must be greater than 0"));
}

void validate_resource_source(const json& src, const std::string& path, bool container, std::vector<api::Cause>& errors) {
  std::string name = str(at(src, {"name"}));
  if (name.empty()) errors.push_back(api::field_required(path + ".name", "must specify a resource name"));
  else
    for (const auto& msg : api::is_qualified_name(name)) errors.push_back(api::field_invalid(path + ".name", name, msg));
  if (container) {
    std::string c = str(at(src, {"container"}));
    if (c.empty()) errors.push_back(api::field_required(path + ".container", "must specify a container"));
    else
      for (const auto& msg : api::is_dns1123_label(c)) errors.push_back(api::field_invalid(path + ".container", c, msg));
  }
  const json& t = at(src, {"target"});
  validate_metric_target(t, path + ".target", errors);
  bool util = present(at(t, {"averageUtilization"})), avg = present(at(t, {"averageValue"}));
  if (!util && !avg)
    errors.push_back(api::field_required(path + ".target.averageUtilization", "must set either a target raw value or a target utilization"));
  if (util && avg)
    errors.push_back(api::field_forbidden(path + ".target.averageValue", "may not set both a target raw value and a target utilization"));
}

void validate_metric_spec(const json& m, const std::string& path, std::vector<api::Cause>& errors) {
  static const std::vector<std::string> kTypes = {"ContainerResource", "External", "Object", "Pods", "Resource"};
  std::string type = str(at(m, {"type"}));
  if (type.empty()) errors.push_back(api::field_required(path + ".type", "must specify a metric source type"));
  if (std::find(kTypes.begin(), kTypes.end(), type) == kTypes.end())
    errors.push_back(api::field_not_supported(path + ".type", type, kTypes));
  std::vector<std::string> present_sources;
  for (const char* s : {"object", "pods", "resource", "containerResource", "external"})
    if (at(m, {s}).is_object()) present_sources.push_back(s);
  if (present_sources.size() == 1) {
    const std::string& s = present_sources[0];
    const json& src = at(m, {s.c_str()});
    std::string p = path + "." + s;
    if (s == "object") {
      validate_reference(at(src, {"describedObject"}), p + ".describedObject", errors);
      validate_metric_identifier(at(src, {"metric"}), p + ".metric", errors);
      validate_metric_target(at(src, {"target"}), p + ".target", errors);
      if (!present(at(src, {"target", "value"})) && !present(at(src, {"target", "averageValue"})))
        errors.push_back(api::field_required(p + ".target.averageValue", "must set either a target value or averageValue"));
    } else if (s == "pods") {
      validate_metric_identifier(at(src, {"metric"}), p + ".metric", errors);
      validate_metric_target(at(src, {"target"}), p + ".target", errors);
      if (!present(at(src, {"target", "averageValue"})))
        errors.push_back(api::field_required(p + ".target.averageValue", "must specify a positive target averageValue"));
    } else if (s == "resource" || s == "containerResource") {
      validate_resource_source(src, p, s == "containerResource", errors);
    } else if (s == "external") {
      validate_metric_identifier(at(src, {"metric"}), p + ".metric", errors);
      validate_metric_target(at(src, {"target"}), p + ".target", errors);
      bool value = present(at(src, {"target", "value"})), avg = present(at(src, {"target", "averageValue"}));
      if (!value && !avg)
        errors.push_back(api::field_required(p + ".target.averageValue", "must set either a target value for metric or a per-pod target"));
      if (value && avg)
        errors.push_back(api::field_forbidden(p + ".target.value", "may not set both a target value for metric and a per-pod target"));
    }
  }
  std::string expected;
  if (type == "Object") expected = "object";
  else if (type == "Pods") expected = "pods";
  else if (type == "Resource") expected = "resource";
  else if (type == "ContainerResource") expected = "containerResource";
  else if (type == "External") expected = "external";
  if (!expected.empty() && !at(m, {expected.c_str()}).is_object())
    errors.push_back(api::field_required(path + "." + expected, "must populate information for the given metric source"));
  if (expected.empty()) errors.push_back(api::field_not_supported(path + ".type", type, kTypes));
  if (present_sources.size() != 1)
    for (const auto& s : present_sources)
      if (s != expected) errors.push_back(api::field_forbidden(path + "." + s, "must populate the given metric source only"));
}

void validate_scaling_rules(const json& rules, const std::string& path, std::vector<api::Cause>& errors) {
  if (!rules.is_object()) return;
  const json& window = at(rules, {"stabilizationWindowSeconds"});
  if (window.is_number() && window.get<double>() < 0)
    errors.push_back(api::field_invalid(path + ".stabilizationWindowSeconds", window, "must be greater than or equal to zero"));
  if (window.is_number() && window.get<double>() > 3600)
    errors.push_back(api::field_invalid(path + ".stabilizationWindowSeconds", window, "must be less than or equal to 3600"));
  const json& select = at(rules, {"selectPolicy"});
  if (select.is_string() && select != "Max" && select != "Min" && select != "Disabled")
    errors.push_back(api::field_not_supported(path + ".selectPolicy", select, {"Disabled", "Max", "Min"}));
  const json& policies = at(rules, {"policies"});
  if (!policies.is_array() || policies.empty())
    errors.push_back(api::field_required(path + ".policies", "must specify at least one Policy"));
  if (!policies.is_array()) return;
  for (std::size_t i = 0; i < policies.size(); ++i) {
    std::string p = path + ".policies[" + std::to_string(i) + "]";
    const json& policy = policies[i];
    std::string type = str(at(policy, {"type"}));
    if (type != "Pods" && type != "Percent") errors.push_back(api::field_not_supported(p + ".type", type, {"Percent", "Pods"}));
    json value = at(policy, {"value"}).is_number() ? at(policy, {"value"}) : json(0);
    if (value.get<double>() <= 0) errors.push_back(api::field_invalid(p + ".value", value, "must be greater than zero"));
    json period = at(policy, {"periodSeconds"}).is_number() ? at(policy, {"periodSeconds"}) : json(0);
    if (period.get<double>() <= 0) errors.push_back(api::field_invalid(p + ".periodSeconds", period, "must be greater than zero"));
    if (period.get<double>() > 1800)
      errors.push_back(api::field_invalid(p + ".periodSeconds", period, "must be less than or equal to 1800"));
  }
}

// validateHorizontalPodAutoscalerSpec (minReplicas' lower bound is 1: HPAScaleToZero is off).
void validate_spec(const json& spec, std::vector<api::Cause>& errors) {
  const json& min = at(spec, {"minReplicas"});
  json max = at(spec, {"maxReplicas"}).is_number() ? at(spec, {"maxReplicas"}) : json(0);
  if (min.is_number() && min.get<double>() < 1)
    errors.push_back(api::field_invalid("spec.minReplicas", min, "must be greater than or equal to 1"));
  if (max.get<double>() < 1) errors.push_back(api::field_invalid("spec.maxReplicas", max, "must be greater than 0"));
  if (min.is_number() && max.get<double>() < min.get<double>())
    errors.push_back(api::field_invalid("spec.maxReplicas", max, "must be greater than or equal to `minReplicas`"));
  std::vector<api::Cause> ref_errors;
  validate_reference(at(spec, {"scaleTargetRef"}), "spec.scaleTargetRef", ref_errors);
  if (!ref_errors.empty()) {
    errors.insert(errors.end(), ref_errors.begin(), ref_errors.end());
    return;
  }
  std::vector<api::Cause> metric_errors;
  const json& metrics = at(spec, {"metrics"});
  bool object_or_external = false;
  if (metrics.is_array())
    for (std::size_t i = 0; i < metrics.size(); ++i) {
      validate_metric_spec(metrics[i], "spec.metrics[" + std::to_string(i) + "]", metric_errors);
      std::string t = str(at(metrics[i], {"type"}));
      object_or_external |= t == "Object" || t == "External";
    }
  if (min.is_number() && min.get<double>() == 0 && !object_or_external)
    metric_errors.push_back(api::field_forbidden("spec.metrics", "must specify at least one Object or External metric to support scaling to zero replicas"));
  if (!metric_errors.empty()) {
    errors.insert(errors.end(), metric_errors.begin(), metric_errors.end());
    return;
  }
  const json& behavior = at(spec, {"behavior"});
  if (behavior.is_object()) {
    validate_scaling_rules(at(behavior, {"scaleUp"}), "spec.behavior.scaleUp", errors);
    validate_scaling_rules(at(behavior, {"scaleDown"}), "spec.behavior.scaleDown", errors);
  }
}

// ---- the Table's TARGETS column (formatHPAMetrics) ----

std::string format_metrics(const json& specs, const json& statuses) {
  if (!specs.is_array() || specs.empty()) return "<none>";
  std::vector<std::string> list;
  auto status_at = [&](std::size_t i, const char* kind) -> const json& {
    static const json kNull;
    if (!statuses.is_array() || i >= statuses.size()) return kNull;
    return at(statuses[i], {kind});
  };
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const json& spec = specs[i];
    std::string type = str(at(spec, {"type"}));
    std::string current = "<unknown>";
    if (type == "External" || type == "Object") {
      const char* kind = type == "External" ? "external" : "object";
      const json& target = at(spec, {kind, "target"});
      const json& st = status_at(i, kind);
      if (present(at(target, {"averageValue"}))) {
        if (st.is_object() && present(at(st, {"current", "averageValue"}))) current = quantity_text(at(st, {"current", "averageValue"}));
        list.push_back(current + "/" + quantity_text(at(target, {"averageValue"})) + " (avg)");
      } else {
        if (st.is_object()) current = quantity_text(quantity_or_zero(at(st, {"current", "value"})));
        list.push_back(current + "/" + quantity_text(quantity_or_zero(at(target, {"value"}))));
      }
    } else if (type == "Pods") {
      const json& st = status_at(i, "pods");
      if (st.is_object()) current = quantity_text(quantity_or_zero(at(st, {"current", "averageValue"})));
      list.push_back(current + "/" + quantity_text(quantity_or_zero(at(spec, {"pods", "target", "averageValue"}))));
    } else if (type == "Resource" || type == "ContainerResource") {
      const char* kind = type == "Resource" ? "resource" : "containerResource";
      const json& src = at(spec, {kind});
      const json& st = status_at(i, kind);
      std::string name = str(at(src, {"name"}));
      if (type == "ContainerResource") name += "/" + str(at(src, {"container"}));
      if (present(at(src, {"target", "averageValue"}))) {
        if (st.is_object()) current = quantity_text(quantity_or_zero(at(st, {"current", "averageValue"})));
        list.push_back(name + ": " + current + "/" + quantity_text(at(src, {"target", "averageValue"})));
      } else {
        if (st.is_object() && at(st, {"current", "averageUtilization"}).is_number())
          current = std::to_string(at(st, {"current", "averageUtilization"}).get<std::int64_t>()) + "%";
        std::string target = "<auto>";
        if (at(src, {"target", "averageUtilization"}).is_number())
          target = std::to_string(at(src, {"target", "averageUtilization"}).get<std::int64_t>()) + "%";
        list.push_back(name + ": " + current + "/" + target);
      }
    } else {
      list.push_back("<unknown type>");
    }
  }
  constexpr std::size_t kMax = 2;
  std::size_t count = list.size();
  if (count > kMax) list.resize(kMax);
  std::string out;
  for (std::size_t i = 0; i < list.size(); ++i) out += (i ? ", " : "") + list[i];
  if (count > kMax) out += " + " + std::to_string(count - kMax) + " more...";
  return out;
}

// Fills `rules` from `defaults` where unset (copyHPAScalingRules).
void fill_rules(json& behavior, const char* which, const json& defaults) {
  json& rules = behavior[which];
  if (!rules.is_object()) {
    rules = defaults;
    return;
  }
  for (const char* f : {"selectPolicy", "stabilizationWindowSeconds", "policies"})
    if ((!rules.contains(f) || rules[f].is_null()) && defaults.contains(f)) rules[f] = defaults[f];
}

class HpaStrategy : public Strategy {
 public:
  HpaStrategy() {
    info_.group = "autoscaling";
    info_.kind = "HorizontalPodAutoscaler";
    info_.plural = "horizontalpodautoscalers";
    info_.singular = "horizontalpodautoscaler";
    info_.namespaced = true;
    info_.versions = {"v2", "v1"};
    info_.storage_version = "v2";
    info_.storage_prefix = "/registry/horizontalpodautoscalers";
    info_.short_names = {"hpa"};
    info_.categories = {"all"};
    // The response kind is the served version's HorizontalPodAutoscaler: version left empty.
    info_.subresources = {{"status", "autoscaling", "", "HorizontalPodAutoscaler", {"get", "patch", "update"}}};
    info_.has_status = true;
    info_.allow_create_on_update = false;
    info_.allow_unconditional_update = true;
    info_.name_rule = api::NameRule::PathSegment;  // ValidateHorizontalPodAutoscalerName
  }

  const KindInfo& info() const override { return info_; }

  bool serves_stored_form(const std::string&) const override { return false; }
  json to_version(json stored, const std::string& version) const override {
    if (version != "v1") {
      stored = Strategy::to_version(std::move(stored), version);
      ensure_v2_status(stored);
      return stored;
    }
    return to_v1(std::move(stored));
  }

  api::Result<json> from_version(json external, const std::string& version) const override {
    json v2 = version == "v1" ? from_v1(std::move(external)) : std::move(external);
    if (auto s = normalize_quantities(v2, version); !s) return s;
    return Strategy::from_version(std::move(v2), info_.storage_version);
  }

  // SetDefaults_HorizontalPodAutoscaler (v2), and the status fields Go always writes.
  void apply_defaults(json& obj) const override {
    json& spec = obj["spec"];
    if (!spec.is_object()) spec = json::object();
    if (!spec.contains("minReplicas") || spec["minReplicas"].is_null()) spec["minReplicas"] = 1;
    if (!at(spec, {"metrics"}).is_array() || at(spec, {"metrics"}).empty())
      spec["metrics"] = json::array({cpu_utilization_metric(kDefaultCPUUtilization)});
    if (spec.contains("behavior") && spec["behavior"].is_object()) {
      json& b = spec["behavior"];
      fill_rules(b, "scaleUp",
                 {{"stabilizationWindowSeconds", 0},
                  {"selectPolicy", "Max"},
                  {"policies", json::array({{{"type", "Pods"}, {"value", 4}, {"periodSeconds", 15}},
                                            {{"type", "Percent"}, {"value", 100}, {"periodSeconds", 15}}})}});
      // Scale-down's stabilization window stays unset: the controller's flag supplies it.
      fill_rules(b, "scaleDown",
                 {{"selectPolicy", "Max"},
                  {"policies", json::array({{{"type", "Percent"}, {"value", 100}, {"periodSeconds", 15}}})}});
    }
    ensure_v2_status(obj);
  }

  void validate(const json& obj, std::vector<api::Cause>& errors) const override {
    validate_spec(at(obj, {"spec"}), errors);
  }

  std::vector<Column> columns() const override {
    auto def = Strategy::columns();  // Name, Age
    return {def[0],
            {"Reference", "string", "", "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count.", 0},
            {"Targets", "string", "", "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).", 0},
            {"MinPods", "string", "", "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.", 0},
            {"MaxPods", "string", "", "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas.", 0},
            {"Replicas", "string", "", "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler.", 0},
            def[1]};
  }

  json cells(const json& obj) const override {
    const json& spec = at(obj, {"spec"});
    std::string reference = str(at(spec, {"scaleTargetRef", "kind"})) + "/" + str(at(spec, {"scaleTargetRef", "name"}));
    const json& min = at(spec, {"minReplicas"});
    std::string min_pods = min.is_number_integer() ? std::to_string(min.get<std::int64_t>()) : "<unset>";
    std::int64_t max = at(spec, {"maxReplicas"}).is_number_integer() ? at(spec, {"maxReplicas"}).get<std::int64_t>() : 0;
    const json& cur = at(obj, {"status", "currentReplicas"});
    std::int64_t replicas = cur.is_number_integer() ? cur.get<std::int64_t>() : 0;
    return json::array({at(obj, {"metadata", "name"}), reference,
                        format_metrics(at(spec, {"metrics"}), at(obj, {"status", "currentMetrics"})), min_pods, max,
                        replicas, age(obj)});
  }

 private:
  static void ensure_v2_status(json& obj) {
    json& status = obj["status"];
    if (!status.is_object()) status = json::object();
    if (!status.contains("currentMetrics")) status["currentMetrics"] = nullptr;
    if (!status.contains("desiredReplicas") || status["desiredReplicas"].is_null()) status["desiredReplicas"] = 0;
  }

  // Convert_autoscaling_HorizontalPodAutoscaler_To_v1_HorizontalPodAutoscaler.
  static json to_v1(json v2) {
    json out = json::object();
    out["apiVersion"] = "autoscaling/v1";
    out["kind"] = "HorizontalPodAutoscaler";
    json spec = v2.contains("spec") ? v2["spec"] : json::object();
    json status = v2.contains("status") ? v2["status"] : json::object();
    for (auto& [k, v] : v2.items())
      if (k != "apiVersion" && k != "kind" && k != "spec" && k != "status") out[k] = std::move(v);
    json& meta = out["metadata"];
    if (!meta.is_object()) meta = json::object();
    json annotations = meta.contains("annotations") && meta["annotations"].is_object() ? meta["annotations"] : json::object();
    for (const char* a : {kMetricsAnnotation, kCurrentMetricsAnnotation, kConditionsAnnotation, kBehaviorAnnotation})
      annotations.erase(a);

    json v1spec = json::object();
    v1spec["scaleTargetRef"] = v2_reference(at(spec, {"scaleTargetRef"}));
    if (present(at(spec, {"minReplicas"}))) v1spec["minReplicas"] = at(spec, {"minReplicas"});
    v1spec["maxReplicas"] = at(spec, {"maxReplicas"}).is_number() ? at(spec, {"maxReplicas"}) : json(0);
    ojson other = ojson::array();
    const json& metrics = at(spec, {"metrics"});
    if (metrics.is_array()) {
      for (const auto& m : metrics) {
        if (is_cpu_utilization_metric(m)) {
          if (!v1spec.contains("targetCPUUtilizationPercentage"))
            v1spec["targetCPUUtilizationPercentage"] = at(m, {"resource", "target", "averageUtilization"});
          continue;
        }
        other.push_back(v1_metric_spec(m));
      }
    }
    if (!other.empty()) annotations[kMetricsAnnotation] = other.dump();

    json v1status = json::object();
    if (present(at(status, {"observedGeneration"}))) v1status["observedGeneration"] = at(status, {"observedGeneration"});
    if (present(at(status, {"lastScaleTime"}))) v1status["lastScaleTime"] = at(status, {"lastScaleTime"});
    v1status["currentReplicas"] = at(status, {"currentReplicas"}).is_number() ? at(status, {"currentReplicas"}) : json(0);
    v1status["desiredReplicas"] = at(status, {"desiredReplicas"}).is_number() ? at(status, {"desiredReplicas"}) : json(0);
    const json& current = at(status, {"currentMetrics"});
    if (current.is_array() && !current.empty()) {
      ojson list = ojson::array();
      for (const auto& m : current) {
        list.push_back(v1_metric_status(m));
        if (str(at(m, {"type"})) == "Resource" && str(at(m, {"resource", "name"})) == "cpu" &&
            present(at(m, {"resource", "current", "averageUtilization"})))
          v1status["currentCPUUtilizationPercentage"] = at(m, {"resource", "current", "averageUtilization"});
      }
      annotations[kCurrentMetricsAnnotation] = list.dump();
    }
    if (at(spec, {"behavior"}).is_object()) annotations[kBehaviorAnnotation] = internal_behavior(at(spec, {"behavior"})).dump();
    const json& conditions = at(status, {"conditions"});
    if (conditions.is_array() && !conditions.empty()) {
      ojson list = ojson::array();
      for (const auto& c : conditions) list.push_back(v1_condition(c));
      annotations[kConditionsAnnotation] = list.dump();
    }
    if (annotations.empty()) meta.erase("annotations");
    else meta["annotations"] = annotations;
    out["spec"] = v1spec;
    out["status"] = v1status;
    return out;
  }

  // Convert_v1_HorizontalPodAutoscaler_To_autoscaling_HorizontalPodAutoscaler.
  static json from_v1(json v1) {
    json out = json::object();
    json spec = v1.contains("spec") && v1["spec"].is_object() ? v1["spec"] : json::object();
    json status = v1.contains("status") && v1["status"].is_object() ? v1["status"] : json::object();
    for (auto& [k, v] : v1.items())
      if (k != "spec" && k != "status") out[k] = std::move(v);
    json annotations = json::object();
    if (out.contains("metadata") && out["metadata"].is_object() && out["metadata"].contains("annotations") &&
        out["metadata"]["annotations"].is_object()) {
      json& a = out["metadata"]["annotations"];
      for (const char* key : {kMetricsAnnotation, kCurrentMetricsAnnotation, kConditionsAnnotation, kBehaviorAnnotation}) {
        if (!a.contains(key)) continue;
        annotations[key] = a[key];
        a.erase(key);
      }
      if (a.empty()) out["metadata"].erase("annotations");
    }
    auto parsed = [&](const char* key) -> json {
      if (!annotations.contains(key) || !annotations[key].is_string()) return json();
      json j = json::parse(annotations[key].get<std::string>(), nullptr, false);
      return j.is_discarded() ? json() : j;
    };

    json v2spec = json::object();
    if (spec.contains("scaleTargetRef")) v2spec["scaleTargetRef"] = spec["scaleTargetRef"];
    if (present(at(spec, {"minReplicas"}))) v2spec["minReplicas"] = spec["minReplicas"];
    if (spec.contains("maxReplicas")) v2spec["maxReplicas"] = spec["maxReplicas"];
    json metrics = json::array();
    if (json other = parsed(kMetricsAnnotation); other.is_array())
      for (const auto& m : other) metrics.push_back(v2_metric_spec(m));
    if (present(at(spec, {"targetCPUUtilizationPercentage"})))
      metrics.push_back(cpu_utilization_metric(spec["targetCPUUtilizationPercentage"]));
    if (!metrics.empty()) v2spec["metrics"] = metrics;
    if (json behavior = parsed(kBehaviorAnnotation); behavior.is_object()) v2spec["behavior"] = v2_behavior(behavior);

    json v2status = json::object();
    for (const char* f : {"observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas"})
      if (present(at(status, {f}))) v2status[f] = status[f];
    const json& cpu = at(status, {"currentCPUUtilizationPercentage"});
    if (json current = parsed(kCurrentMetricsAnnotation); current.is_array()) {
      // The annotation carries every metric, cpu included; the plain field wins for cpu's value.
      json list = json::array();
      for (const auto& m : current) {
        json s = v2_metric_status(m);
        if (present(cpu) && str(at(s, {"type"})) == "Resource" && str(at(s, {"resource", "name"})) == "cpu")
          s["resource"]["current"]["averageUtilization"] = cpu;
        list.push_back(s);
      }
      v2status["currentMetrics"] = list;
    } else if (present(cpu)) {
      v2status["currentMetrics"] = json::array(
          {{{"type", "Resource"}, {"resource", {{"name", "cpu"}, {"current", {{"averageUtilization", cpu}}}}}}});
    }
    if (json conditions = parsed(kConditionsAnnotation); conditions.is_array()) {
      json list = json::array();
      for (const auto& c : conditions) {
        json cond = {{"type", str(at(c, {"type"}))}, {"status", str(at(c, {"status"}))}};
        if (present(at(c, {"lastTransitionTime"}))) cond["lastTransitionTime"] = c["lastTransitionTime"];
        if (!str(at(c, {"reason"})).empty()) cond["reason"] = c["reason"];
        if (!str(at(c, {"message"})).empty()) cond["message"] = c["message"];
        list.push_back(cond);
      }
      v2status["conditions"] = list;
    }
    out["spec"] = v2spec;
    out["status"] = v2status;
    return out;
  }

  KindInfo info_;
};

}  // namespace

std::unique_ptr<Strategy> make_hpa_strategy() { return std::make_unique<HpaStrategy>(); }

}  // namespace berth::apiserver
