#include "apiserver/kinds/pod_template.h"

#include <arpa/inet.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <map>
#include <set>

#include "api/validation.h"
#include "apiserver/strategy.h"

namespace berth::apiserver::podspec {

using api::Cause;
using Causes = std::vector<Cause>;

// ---------------------------------------------------------------------------------------------
// JSON accessors

std::string str(const json& v) { return v.is_string() ? v.get<std::string>() : std::string(); }

std::int64_t num(const json& v, std::int64_t fallback) {
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (v.is_number_float()) return static_cast<std::int64_t>(v.get<double>());
  return fallback;
}

bool present(const json& obj, const char* key) {
  if (!obj.is_object()) return false;
  auto it = obj.find(key);
  return it != obj.end() && !it->is_null();
}

namespace {

const json& get(const json& obj, const char* key) {
  static const json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

// The string at obj[key]; "" when absent (Go's zero value).
std::string sget(const json& obj, const char* key) { return str(get(obj, key)); }

bool empty_string_field(const json& obj, const char* key) { return sget(obj, key).empty(); }

void set_if_empty(json& obj, const char* key, const json& value) {
  if (!obj.is_object()) return;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null() || (it->is_string() && it->get<std::string>().empty())) obj[key] = value;
}

// Integer fields whose Go zero value (0) means "unset" and is defaulted.
void set_if_zero(json& obj, const char* key, std::int64_t value) {
  if (!obj.is_object()) return;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null() || (it->is_number() && num(*it) == 0)) obj[key] = value;
}

void set_if_absent(json& obj, const char* key, const json& value) {
  if (!obj.is_object()) return;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) obj[key] = value;
}

std::string idx(const std::string& path, std::size_t i) { return path + "[" + std::to_string(i) + "]"; }
std::string key(const std::string& path, const std::string& k) { return path + "[" + k + "]"; }

const json& arr(const json& obj, const char* k) {
  static const json kEmpty = json::array();
  const json& v = get(obj, k);
  return v.is_array() ? v : kEmpty;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Quantities

namespace {

using api::Quantity;

// RoundUp(-3), what SetDefaults_ResourceList does: a value finer than milli is rounded up (and then
// serialized canonically); one already at milli precision keeps its spelling.
Quantity round_up_to_milli(const Quantity& q) {
  std::int64_t m = q.milli_value();
  if (m == INT64_MAX || m == INT64_MIN) return q;  // far beyond milli precision concerns
  Quantity r = Quantity::from_milli(m, q.format());
  return r == q ? q : r;
}

std::optional<Quantity> quantity(const json& v) {
  auto q = Quantity::from_json(v);
  if (!q) return std::nullopt;
  return *q;
}

}  // namespace

namespace {

// Every quantity in a ResourceList rounded to milli (SetDefaults_ResourceList) and serialized as
// Kubernetes serializes it.
void canonicalize_resource_list(json& list, bool round) {
  if (!list.is_object()) return;
  for (auto& [name, value] : list.items()) {
    auto q = quantity(value);
    if (!q) continue;  // left for the decode check to reject
    value = (round ? round_up_to_milli(*q) : *q).to_string();
  }
}

void canonicalize_quantity(json& obj, const char* k) {
  if (!present(obj, k)) return;
  auto q = quantity(obj[k]);
  if (q) obj[k] = q->to_string();
}

// Calls fn(container) for containers, initContainers and ephemeralContainers.
template <class Spec, class Fn>
void for_each_container(Spec& spec, Fn fn) {
  for (const char* list : {"initContainers", "containers", "ephemeralContainers"}) {
    if (!spec.is_object()) return;
    auto it = spec.find(list);
    if (it == spec.end() || !it->is_array()) continue;
    for (auto& c : *it)
      if (c.is_object()) fn(c, list);
  }
}

api::Status quantity_error(const std::string& kind, const std::string& err) {
  return api::Status(api::Reason::BadRequest, kind + " in version \"v1\" cannot be handled as a " + kind + ": " + err);
}

}  // namespace

api::Status check_pod_spec_quantities(const json& spec, const std::string& kind) {
  if (!spec.is_object()) return {};
  std::string err;
  auto check_one = [&](const json& v) -> bool {
    if (v.is_null()) return true;
    auto q = Quantity::from_json(v);
    if (!q) err = q.status().message();
    return q.ok();
  };
  auto check_list = [&](const json& list) -> bool {
    if (!list.is_object()) return true;
    for (const auto& [k, v] : list.items())
      if (!check_one(v)) return false;
    return true;
  };
  auto check_items = [&](const json& items) -> bool {
    if (!items.is_array()) return true;
    for (const auto& item : items)
      if (!check_one(at(item, {"resourceFieldRef", "divisor"}))) return false;
    return true;
  };
  bool ok = true;
  for_each_container(spec, [&](const json& c, const char*) {
    if (!ok) return;
    ok = check_list(at(c, {"resources", "limits"})) && check_list(at(c, {"resources", "requests"}));
    for (const auto& e : arr(c, "env"))
      if (ok) ok = check_one(at(e, {"valueFrom", "resourceFieldRef", "divisor"}));
  });
  if (ok) ok = check_list(get(spec, "overhead"));
  if (ok) ok = check_list(at(spec, {"resources", "limits"})) && check_list(at(spec, {"resources", "requests"}));
  for (const auto& vol : arr(spec, "volumes")) {
    if (!ok) break;
    ok = check_one(at(vol, {"emptyDir", "sizeLimit"})) && check_items(at(vol, {"downwardAPI", "items"})) &&
         check_list(at(vol, {"ephemeral", "volumeClaimTemplate", "spec", "resources", "limits"})) &&
         check_list(at(vol, {"ephemeral", "volumeClaimTemplate", "spec", "resources", "requests"}));
    for (const auto& src : arr(get(vol, "projected"), "sources"))
      if (ok) ok = check_items(at(src, {"downwardAPI", "items"}));
  }
  if (!ok) return quantity_error(kind, err);
  return {};
}

// ---------------------------------------------------------------------------------------------
// Go rendering

std::string go_string_map(const json& m) {
  if (!m.is_object()) return "map[string]string(nil)";
  std::string out = "map[string]string{";
  bool first = true;
  for (const auto& [k, v] : m.items()) {
    if (!first) out += ", ";
    first = false;
    out += api::go_quote(k) + ":" + api::go_quote(str(v));
  }
  return out + "}";
}

std::string go_label_selector(const json& sel) {
  std::string out = "v1.LabelSelector{MatchLabels:" + go_string_map(get(sel, "matchLabels")) + ", MatchExpressions:";
  const json& exprs = get(sel, "matchExpressions");
  if (!exprs.is_array()) {
    out += "[]v1.LabelSelectorRequirement(nil)";
  } else {
    out += "[]v1.LabelSelectorRequirement{";
    bool first = true;
    for (const auto& e : exprs) {
      if (!first) out += ", ";
      first = false;
      out += "v1.LabelSelectorRequirement{Key:" + api::go_quote(sget(e, "key")) +
             ", Operator:" + api::go_quote(sget(e, "operator")) + ", Values:";
      const json& values = get(e, "values");
      if (!values.is_array()) {
        out += "[]string(nil)";
      } else {
        std::vector<std::string> vs;
        for (const auto& v : values) vs.push_back(str(v));
        out += api::go_string_slice(vs);
      }
      out += "}";
    }
    out += "}";
  }
  return out + "}";
}

std::string go_int_or_string(const json& v) {
  if (v.is_string())
    return "intstr.IntOrString{Type:1, IntVal:0, StrVal:" + api::go_quote(v.get<std::string>()) + "}";
  return "intstr.IntOrString{Type:0, IntVal:" + std::to_string(num(v)) + ", StrVal:\"\"}";
}

// ---------------------------------------------------------------------------------------------
// Label selectors

std::string format_label_selector(const json& ls) {
  auto s = api::LabelSelector::from_json(ls);
  if (!s) return "<error>";
  std::string out = s->to_string();
  return out.empty() ? "<none>" : out;
}

// ---------------------------------------------------------------------------------------------
// Defaulting

namespace {

bool valid_path_component(std::string_view c) {
  if (c.empty()) return false;
  auto alnum = [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'); };
  if (!alnum(c.front()) || !alnum(c.back())) return false;
  for (char ch : c)
    if (!alnum(ch) && ch != '.' && ch != '_' && ch != '-') return false;
  return true;
}

// parsers.ParseImageName's tag: the explicit tag, "latest" when neither tag nor digest is given,
// "" when the reference does not parse (then IfNotPresent applies).
std::string image_tag(const std::string& image) {
  if (image.empty()) return "";
  std::string name = image;
  bool digest = false;
  if (auto at_pos = name.find('@'); at_pos != std::string::npos) {
    std::string d = name.substr(at_pos + 1);
    auto colon = d.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 >= d.size()) return "";
    digest = true;
    name.resize(at_pos);
  }
  std::string tag;
  auto slash = name.rfind('/');
  auto colon = name.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    tag = name.substr(colon + 1);
    name.resize(colon);
    if (tag.empty() || tag.size() > 128) return "";
    for (char ch : tag)
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '.' && ch != '-') return "";
    if (tag[0] == '.' || tag[0] == '-') return "";
  }
  // Path components (after an optional domain) must be lower case.
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    auto s = name.find('/', start);
    parts.push_back(name.substr(start, s == std::string::npos ? std::string::npos : s - start));
    if (s == std::string::npos) break;
    start = s + 1;
  }
  std::size_t first = 0;
  if (parts.size() > 1) {
    const std::string& d = parts[0];
    bool lower = std::none_of(d.begin(), d.end(), [](char ch) { return ch >= 'A' && ch <= 'Z'; });
    if (d.find_first_of(".:") != std::string::npos || d == "localhost" || !lower) first = 1;
  }
  for (std::size_t i = first; i < parts.size(); ++i)
    if (!valid_path_component(parts[i])) return "";
  if (tag.empty() && !digest) tag = "latest";
  return tag;
}

void default_http_get(json& h) {
  if (!h.is_object()) return;
  set_if_empty(h, "path", "/");
  set_if_empty(h, "scheme", "HTTP");
}

void default_handler(json& handler) {
  if (!handler.is_object()) return;
  if (present(handler, "httpGet")) default_http_get(handler["httpGet"]);
}

void default_probe(json& p) {
  if (!p.is_object()) return;
  set_if_zero(p, "timeoutSeconds", 1);
  set_if_zero(p, "periodSeconds", 10);
  set_if_zero(p, "successThreshold", 1);
  set_if_zero(p, "failureThreshold", 3);
  default_handler(p);
  if (present(p, "grpc") && p["grpc"].is_object()) set_if_absent(p["grpc"], "service", "");
}

void default_field_ref(json& holder) {
  if (present(holder, "fieldRef") && holder["fieldRef"].is_object()) set_if_empty(holder["fieldRef"], "apiVersion", "v1");
  if (present(holder, "resourceFieldRef") && holder["resourceFieldRef"].is_object()) {
    json& r = holder["resourceFieldRef"];
    if (!present(r, "divisor")) r["divisor"] = "0";
    else canonicalize_quantity(r, "divisor");
  }
}

void default_container(json& c) {
  if (!c.is_object()) return;
  if (empty_string_field(c, "imagePullPolicy"))
    c["imagePullPolicy"] = image_tag(sget(c, "image")) == "latest" ? "Always" : "IfNotPresent";
  set_if_empty(c, "terminationMessagePath", "/dev/termination-log");
  set_if_empty(c, "terminationMessagePolicy", "File");
  if (c.contains("ports") && c["ports"].is_array())
    for (auto& p : c["ports"])
      if (p.is_object()) set_if_empty(p, "protocol", "TCP");
  if (c.contains("env") && c["env"].is_array())
    for (auto& e : c["env"])
      if (present(e, "valueFrom") && e["valueFrom"].is_object()) default_field_ref(e["valueFrom"]);
  if (!c.contains("resources") || !c["resources"].is_object()) c["resources"] = json::object();
  json& res = c["resources"];
  if (present(res, "limits")) canonicalize_resource_list(res["limits"], true);
  if (present(res, "requests")) canonicalize_resource_list(res["requests"], true);
  for (const char* probe : {"livenessProbe", "readinessProbe", "startupProbe"})
    if (present(c, probe)) default_probe(c[probe]);
  if (present(c, "lifecycle") && c["lifecycle"].is_object()) {
    for (const char* h : {"postStart", "preStop"})
      if (present(c["lifecycle"], h)) default_handler(c["lifecycle"][h]);
  }
}

// The volume source keys, in the order validateVolumeSource checks them.
const std::vector<std::string>& volume_sources() {
  static const std::vector<std::string> k = {
      "hostPath",     "emptyDir",      "gitRepo",    "gcePersistentDisk",    "awsElasticBlockStore",
      "secret",       "nfs",           "iscsi",      "glusterfs",            "flocker",
      "persistentVolumeClaim", "rbd",  "quobyte",    "cinder",               "cephfs",
      "downwardAPI",  "fc",            "azureFile",  "configMap",            "vsphereVolume",
      "photonPersistentDisk", "portworxVolume", "azureDisk", "storageos",   "projected",
      "scaleIO",      "csi",           "ephemeral",  "image"};
  return k;
}

void default_volume(json& v) {
  if (!v.is_object()) return;
  bool any = false;
  for (const auto& [k, val] : v.items())
    if (k != "name" && !val.is_null()) any = true;
  if (!any) v["emptyDir"] = json::object();
  auto src = [&](const char* k) -> json* {
    if (!present(v, k) || !v[k].is_object()) return nullptr;
    return &v[k];
  };
  if (json* s = src("hostPath")) set_if_absent(*s, "type", "");
  if (json* s = src("emptyDir")) canonicalize_quantity(*s, "sizeLimit");
  if (json* s = src("secret")) set_if_absent(*s, "defaultMode", 420);
  if (json* s = src("configMap")) set_if_absent(*s, "defaultMode", 420);
  if (json* s = src("downwardAPI")) {
    set_if_absent(*s, "defaultMode", 420);
    if (s->contains("items") && (*s)["items"].is_array())
      for (auto& item : (*s)["items"]) default_field_ref(item);
  }
  if (json* s = src("projected")) {
    set_if_absent(*s, "defaultMode", 420);
    if (s->contains("sources") && (*s)["sources"].is_array()) {
      for (auto& source : (*s)["sources"]) {
        if (present(source, "downwardAPI") && source["downwardAPI"].contains("items") &&
            source["downwardAPI"]["items"].is_array())
          for (auto& item : source["downwardAPI"]["items"]) default_field_ref(item);
        if (present(source, "serviceAccountToken") && source["serviceAccountToken"].is_object())
          set_if_absent(source["serviceAccountToken"], "expirationSeconds", 3600);
      }
    }
  }
  if (json* s = src("iscsi")) set_if_empty(*s, "iscsiInterface", "default");
  if (json* s = src("rbd")) {
    set_if_empty(*s, "pool", "rbd");
    set_if_empty(*s, "user", "admin");
    set_if_empty(*s, "keyring", "/etc/ceph/keyring");
  }
  if (json* s = src("azureDisk")) {
    set_if_absent(*s, "cachingMode", "ReadWrite");
    set_if_absent(*s, "kind", "Shared");
    set_if_absent(*s, "fsType", "ext4");
    set_if_absent(*s, "readOnly", false);
  }
  if (json* s = src("scaleIO")) {
    set_if_empty(*s, "storageMode", "ThinProvisioned");
    set_if_empty(*s, "fsType", "xfs");
  }
  if (json* s = src("ephemeral")) {
    if (present(*s, "volumeClaimTemplate") && present((*s)["volumeClaimTemplate"], "spec")) {
      json& pvc = (*s)["volumeClaimTemplate"]["spec"];
      if (pvc.is_object()) {
        set_if_absent(pvc, "volumeMode", "Filesystem");
        if (present(pvc, "resources")) {
          if (present(pvc["resources"], "limits")) canonicalize_resource_list(pvc["resources"]["limits"], true);
          if (present(pvc["resources"], "requests")) canonicalize_resource_list(pvc["resources"]["requests"], true);
        }
      }
    }
  }
}

}  // namespace

void default_pod_spec(json& spec, bool is_pod) {
  if (!spec.is_object()) spec = json::object();
  if (is_pod) {
    // SetDefaults_Pod: requests default to limits (pods only, not templates).
    for (const char* list : {"containers", "initContainers"}) {
      if (!spec.contains(list) || !spec[list].is_array()) continue;
      for (auto& c : spec[list]) {
        if (!c.is_object() || !present(c, "resources")) continue;
        json& res = c["resources"];
        if (!res.is_object() || !present(res, "limits") || !res["limits"].is_object() || res["limits"].empty())
          continue;
        if (!present(res, "requests") || !res["requests"].is_object()) res["requests"] = json::object();
        for (const auto& [k, v] : res["limits"].items())
          if (!res["requests"].contains(k)) res["requests"][k] = v;
      }
    }
    set_if_absent(spec, "enableServiceLinks", true);
    if (get(spec, "hostNetwork") == json(true)) {
      for (const char* list : {"containers", "initContainers"}) {
        if (!spec.contains(list) || !spec[list].is_array()) continue;
        for (auto& c : spec[list]) {
          if (!c.is_object() || !c.contains("ports") || !c["ports"].is_array()) continue;
          for (auto& p : c["ports"])
            if (p.is_object() && num(get(p, "hostPort")) == 0 && present(p, "containerPort"))
              p["hostPort"] = p["containerPort"];
        }
      }
    }
  }
  // SetDefaults_PodSpec.
  set_if_empty(spec, "dnsPolicy", "ClusterFirst");
  set_if_empty(spec, "restartPolicy", "Always");
  set_if_absent(spec, "securityContext", json::object());
  set_if_absent(spec, "terminationGracePeriodSeconds", 30);
  set_if_empty(spec, "schedulerName", "default-scheduler");
  // The v1 <-> internal conversion keeps serviceAccount as a mirror of serviceAccountName.
  if (empty_string_field(spec, "serviceAccountName") && !empty_string_field(spec, "serviceAccount"))
    spec["serviceAccountName"] = spec["serviceAccount"];
  if (!empty_string_field(spec, "serviceAccountName")) spec["serviceAccount"] = spec["serviceAccountName"];
  else spec.erase("serviceAccount");

  if (spec.contains("volumes") && spec["volumes"].is_array())
    for (auto& v : spec["volumes"]) default_volume(v);
  for_each_container(spec, [](json& c, const char*) { default_container(c); });
  if (present(spec, "overhead")) canonicalize_resource_list(spec["overhead"], true);
}

void default_pod_template(json& tmpl) {
  if (!tmpl.is_object()) tmpl = json::object();
  if (!tmpl.contains("metadata") || !tmpl["metadata"].is_object()) tmpl["metadata"] = json::object();
  if (!tmpl["metadata"].contains("creationTimestamp")) tmpl["metadata"]["creationTimestamp"] = nullptr;
  default_pod_spec(tmpl["spec"], false);
}

void drop_disabled_fields(json& spec, const json& old_spec) {
  if (!spec.is_object()) return;
  auto old_uses = [&](auto&& pred) {
    if (!old_spec.is_object()) return false;
    return pred(old_spec);
  };
  auto any_container = [](const json& s, auto&& pred) {
    bool found = false;
    for_each_container(s, [&](const json& c, const char*) { found = found || pred(c); });
    return found;
  };
  // PodLevelResources (alpha).
  if (!old_uses([](const json& s) { return present(s, "resources"); })) spec.erase("resources");
  // InPlacePodVerticalScaling (alpha): resizePolicy.
  if (!old_uses([&](const json& s) { return any_container(s, [](const json& c) { return present(c, "resizePolicy"); }); }))
    for_each_container(spec, [](json& c, const char*) { c.erase("resizePolicy"); });
  // UserNamespacesSupport (beta, off by default).
  if (!old_uses([](const json& s) { return present(s, "hostUsers"); })) spec.erase("hostUsers");
  // DynamicResourceAllocation (beta, off by default).
  if (!old_uses([&](const json& s) {
        return present(s, "resourceClaims") ||
               any_container(s, [](const json& c) { return present(get(c, "resources"), "claims"); });
      })) {
    spec.erase("resourceClaims");
    for_each_container(spec, [](json& c, const char*) {
      if (c.contains("resources") && c["resources"].is_object()) c["resources"].erase("claims");
    });
  }
  // SupplementalGroupsPolicy and SELinuxChangePolicy (alpha).
  if (spec.contains("securityContext") && spec["securityContext"].is_object()) {
    for (const char* f : {"supplementalGroupsPolicy", "seLinuxChangePolicy"})
      if (!old_uses([&](const json& s) { return present(get(s, "securityContext"), f); }))
        spec["securityContext"].erase(f);
  }
  // ImageVolume (alpha).
  if (!old_uses([](const json& s) {
        for (const auto& v : arr(s, "volumes"))
          if (present(v, "image")) return true;
        return false;
      }) &&
      spec.contains("volumes") && spec["volumes"].is_array()) {
    for (auto& v : spec["volumes"])
      if (v.is_object()) v.erase("image");
  }
}

// ---------------------------------------------------------------------------------------------
// QoS

std::string compute_qos_class(const json& spec) {
  std::map<std::string, Quantity> requests, limits;
  bool guaranteed = true;
  auto add = [](std::map<std::string, Quantity>& m, const std::string& k, const Quantity& q) {
    auto it = m.find(k);
    if (it == m.end()) m[k] = q;
    else it->second.add(q);
  };
  for (const char* list : {"containers", "initContainers"}) {
    for (const auto& c : arr(spec, list)) {
      const json& res = get(c, "resources");
      const json& req = get(res, "requests");
      if (req.is_object()) {
        for (const auto& [k, v] : req.items()) {
          if (k != "cpu" && k != "memory") continue;
          auto q = quantity(v);
          if (q && q->sign() > 0) add(requests, k, *q);
        }
      }
      std::set<std::string> found;
      const json& lim = get(res, "limits");
      if (lim.is_object()) {
        for (const auto& [k, v] : lim.items()) {
          if (k != "cpu" && k != "memory") continue;
          auto q = quantity(v);
          if (q && q->sign() > 0) {
            found.insert(k);
            add(limits, k, *q);
          }
        }
      }
      if (!found.count("cpu") || !found.count("memory")) guaranteed = false;
    }
  }
  if (requests.empty() && limits.empty()) return "BestEffort";
  if (guaranteed) {
    for (const auto& [k, q] : requests) {
      auto it = limits.find(k);
      if (it == limits.end() || it->second != q) {
        guaranteed = false;
        break;
      }
    }
  }
  if (guaranteed && requests.size() == limits.size()) return "Guaranteed";
  return "Burstable";
}

// ---------------------------------------------------------------------------------------------
// Validation

namespace {

Cause not_found(const std::string& path, const std::string& value) {
  return Cause{"FieldValueNotFound", "Not found: " + api::go_quote(value), path};
}

const char* kPortRange = "must be between 1 and 65535, inclusive";
const char* kFileModeError = "must be a number between 0 and 0777 (octal), both inclusive";

std::vector<std::string> is_valid_port_name(const std::string& port) {
  std::vector<std::string> errs;
  if (port.size() > 15) errs.push_back("must be no more than 15 characters");
  bool charset = !port.empty() && std::all_of(port.begin(), port.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
  if (!charset) errs.push_back("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
  if (std::none_of(port.begin(), port.end(), [](char c) { return c >= 'a' && c <= 'z'; }))
    errs.push_back("must contain at least one letter (a-z)");
  if (port.find("--") != std::string::npos) errs.push_back("must not contain consecutive hyphens");
  if (!port.empty() && (port.front() == '-' || port.back() == '-'))
    errs.push_back("must not begin or end with a hyphen");
  return errs;
}

void validate_port_num_or_name(const json& port, const std::string& path, Causes& out) {
  if (port.is_string()) {
    for (auto& msg : is_valid_port_name(port.get<std::string>()))
      out.push_back(api::field_invalid(path, port, msg));
  } else {
    std::int64_t p = num(port);
    if (p < 1 || p > 65535) out.push_back(api::field_invalid(path, json(p), kPortRange));
  }
}

void validate_dns1123_label(const std::string& v, const std::string& path, Causes& out) {
  for (auto& msg : api::is_dns1123_label(v)) out.push_back(api::field_invalid(path, v, msg));
}

void validate_subdomain(const std::string& v, const std::string& path, Causes& out) {
  for (auto& msg : api::is_dns1123_subdomain(v)) out.push_back(api::field_invalid(path, v, msg));
}

void validate_not_supported(const json& value, const std::string& path, const std::vector<std::string>& valid,
                            bool required, Causes& out) {
  std::string v = str(value);
  if (v.empty()) {
    if (required) out.push_back(api::field_required(path));
    return;
  }
  if (std::find(valid.begin(), valid.end(), v) == valid.end())
    out.push_back(api::field_not_supported(path, v, valid));
}

bool valid_ip(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// ---- volumes ----

using Volumes = std::map<std::string, const json*>;

void validate_key_to_paths(const json& items, const std::string& path, Causes& out) {
  for (std::size_t i = 0; i < items.size(); ++i) {
    const json& item = items[i];
    std::string p = idx(path, i);
    if (sget(item, "key").empty()) out.push_back(api::field_required(p + ".key"));
    std::string target = sget(item, "path");
    if (target.empty()) {
      out.push_back(api::field_required(p + ".path"));
    } else {
      if (target[0] == '/') out.push_back(api::field_invalid(p + ".path", target, "must be a relative path"));
      std::size_t start = 0;
      while (true) {
        auto s = target.find('/', start);
        if (target.substr(start, s == std::string::npos ? std::string::npos : s - start) == "..") {
          out.push_back(api::field_invalid(p + ".path", target, "must not contain '..'"));
          break;
        }
        if (s == std::string::npos) break;
        start = s + 1;
      }
    }
    if (present(item, "mode")) {
      std::int64_t m = num(get(item, "mode"));
      if (m < 0 || m > 0777) out.push_back(api::field_invalid(p + ".mode", json(m), kFileModeError));
    }
  }
}

void validate_default_mode(const json& src, const std::string& path, Causes& out) {
  if (!present(src, "defaultMode")) return;
  std::int64_t m = num(get(src, "defaultMode"));
  if (m < 0 || m > 0777) out.push_back(api::field_invalid(path + ".defaultMode", json(m), kFileModeError));
}

Causes validate_volume_source(const json& vol, const std::string& path) {
  Causes out;
  std::string first;
  for (const auto& s : volume_sources()) {
    if (!present(vol, s.c_str())) continue;
    if (!first.empty()) {
      out.push_back(api::field_forbidden(path + "." + s, "may not specify more than 1 volume type"));
      continue;
    }
    first = s;
    const json& src = vol[s];
    std::string p = path + "." + s;
    if (s == "hostPath") {
      if (sget(src, "path").empty()) out.push_back(api::field_required(p + ".path"));
      static const std::vector<std::string> kTypes = {"", "DirectoryOrCreate", "Directory", "FileOrCreate",
                                                      "File", "Socket", "CharDevice", "BlockDevice"};
      if (present(src, "type")) {
        std::string t = sget(src, "type");
        if (std::find(kTypes.begin(), kTypes.end(), t) == kTypes.end())
          out.push_back(api::field_not_supported(p + ".type", t, kTypes));
      }
    } else if (s == "secret") {
      if (sget(src, "secretName").empty()) out.push_back(api::field_required(p + ".secretName"));
      validate_default_mode(src, p, out);
      validate_key_to_paths(arr(src, "items"), p + ".items", out);
    } else if (s == "configMap") {
      if (sget(src, "name").empty()) out.push_back(api::field_required(p + ".name"));
      validate_default_mode(src, p, out);
      validate_key_to_paths(arr(src, "items"), p + ".items", out);
    } else if (s == "persistentVolumeClaim") {
      if (sget(src, "claimName").empty()) out.push_back(api::field_required(p + ".claimName"));
    } else if (s == "nfs") {
      if (sget(src, "server").empty()) out.push_back(api::field_required(p + ".server"));
      std::string np = sget(src, "path");
      if (np.empty()) out.push_back(api::field_required(p + ".path"));
      else if (np[0] != '/') out.push_back(api::field_invalid(p + ".path", np, "must be an absolute path"));
    } else if (s == "downwardAPI" || s == "projected") {
      validate_default_mode(src, p, out);
    }
  }
  if (first.empty()) out.push_back(api::field_required(path, "must specify a volume type"));
  return out;
}

Volumes validate_volumes(const json& volumes, const std::string& path, Causes& out) {
  Volumes vols;
  std::set<std::string> names;
  for (std::size_t i = 0; i < volumes.size(); ++i) {
    const json& vol = volumes[i];
    std::string p = idx(path, i);
    Causes el = validate_volume_source(vol, p);
    std::string name = sget(vol, "name");
    if (name.empty()) el.push_back(api::field_required(p + ".name"));
    else validate_dns1123_label(name, p + ".name", el);
    if (names.count(name)) el.push_back(api::field_duplicate(p + ".name", name));
    if (el.empty()) {
      names.insert(name);
      vols[name] = &vol;
    } else {
      out.insert(out.end(), el.begin(), el.end());
    }
  }
  return vols;
}

// ---- containers ----

void validate_ports(const json& ports, const std::string& path, Causes& out) {
  std::set<std::string> names;
  for (std::size_t i = 0; i < ports.size(); ++i) {
    const json& port = ports[i];
    std::string p = idx(path, i);
    std::string name = sget(port, "name");
    if (!name.empty()) {
      auto msgs = is_valid_port_name(name);
      if (!msgs.empty()) {
        for (auto& m : msgs) out.push_back(api::field_invalid(p + ".name", name, m));
      } else if (names.count(name)) {
        out.push_back(api::field_duplicate(p + ".name", name));
      } else {
        names.insert(name);
      }
    }
    std::int64_t cp = num(get(port, "containerPort"));
    if (cp == 0) out.push_back(api::field_required(p + ".containerPort"));
    else if (cp < 1 || cp > 65535) out.push_back(api::field_invalid(p + ".containerPort", json(cp), kPortRange));
    std::int64_t hp = num(get(port, "hostPort"));
    if (hp != 0 && (hp < 1 || hp > 65535)) out.push_back(api::field_invalid(p + ".hostPort", json(hp), kPortRange));
    validate_not_supported(get(port, "protocol"), p + ".protocol", {"SCTP", "TCP", "UDP"}, true, out);
  }
}

const std::set<std::string>& env_field_paths() {
  static const std::set<std::string> k = {"metadata.name",   "metadata.namespace", "metadata.uid",
                                          "spec.nodeName",   "spec.serviceAccountName", "status.hostIP",
                                          "status.hostIPs",  "status.podIP",       "status.podIPs"};
  return k;
}

void validate_field_ref(const json& fr, const std::string& path, Causes& out) {
  if (sget(fr, "apiVersion").empty()) {
    out.push_back(api::field_required(path + ".apiVersion"));
    return;
  }
  std::string fp = sget(fr, "fieldPath");
  if (fp.empty()) {
    out.push_back(api::field_required(path + ".fieldPath"));
    return;
  }
  if (sget(fr, "apiVersion") != "v1") {
    out.push_back(api::field_invalid(path + ".fieldPath", fp,
                                     "error converting fieldPath: unsupported pod version: " + sget(fr, "apiVersion")));
    return;
  }
  // metadata.labels['key'] / metadata.annotations['key']
  auto bracket = fp.find('[');
  if (bracket != std::string::npos && fp.size() > bracket + 3 && fp[bracket + 1] == '\'' &&
      fp.substr(fp.size() - 2) == "']") {
    std::string base = fp.substr(0, bracket);
    std::string sub = fp.substr(bracket + 2, fp.size() - bracket - 4);
    if (base == "metadata.annotations") {
      std::string lower = sub;
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      for (auto& m : api::is_qualified_name(lower)) out.push_back(api::field_invalid(path, lower, m));
    } else if (base == "metadata.labels") {
      for (auto& m : api::is_qualified_name(sub)) out.push_back(api::field_invalid(path, sub, m));
    } else {
      out.push_back(api::field_invalid(path + ".fieldPath", fp,
                                       "error converting fieldPath: field label not supported: " + fp));
    }
    return;
  }
  static const std::set<std::string> kConvertible = {
      "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid",
      "spec.nodeName", "spec.restartPolicy", "spec.serviceAccountName", "spec.schedulerName", "status.phase",
      "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"};
  if (!kConvertible.count(fp)) {
    out.push_back(api::field_invalid(path + ".fieldPath", fp,
                                     "error converting fieldPath: field label not supported: " + fp));
    return;
  }
  if (!env_field_paths().count(fp))
    out.push_back(api::field_not_supported(path + ".fieldPath", fp,
                                           std::vector<std::string>(env_field_paths().begin(), env_field_paths().end())));
}

void validate_env(const json& env, const std::string& path, Causes& out) {
  for (std::size_t i = 0; i < env.size(); ++i) {
    const json& ev = env[i];
    std::string p = idx(path, i);
    std::string name = sget(ev, "name");
    if (name.empty()) {
      out.push_back(api::field_required(p + ".name"));
    } else if (std::any_of(name.begin(), name.end(), [](char c) { return c < 32 || c > 126 || c == '='; })) {
      out.push_back(api::field_invalid(p + ".name", name,
                                       "a valid environment variable name must consist only of printable ASCII "
                                       "characters other than '='"));
    }
    const json& vf = get(ev, "valueFrom");
    if (!vf.is_object()) continue;
    std::string vp = p + ".valueFrom";
    int sources = 0;
    if (present(vf, "fieldRef")) {
      ++sources;
      validate_field_ref(vf["fieldRef"], vp + ".fieldRef", out);
    }
    if (present(vf, "resourceFieldRef")) {
      ++sources;
      if (sget(vf["resourceFieldRef"], "resource").empty())
        out.push_back(api::field_required(vp + ".resourceFieldRef.resource"));
    }
    for (const char* ref : {"configMapKeyRef", "secretKeyRef"}) {
      if (!present(vf, ref)) continue;
      ++sources;
      const json& r = vf[ref];
      std::string rn = sget(r, "name");
      for (auto& m : api::validate_name(rn, api::NameRule::DNS1123Subdomain, false))
        out.push_back(api::field_invalid(vp + "." + ref + ".name", rn, m));
      if (sget(r, "key").empty()) out.push_back(api::field_required(vp + "." + ref + ".key"));
    }
    if (sources == 0)
      out.push_back(api::field_invalid(vp, "",
                                       "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or "
                                       "`secretKeyRef`"));
    else if (!sget(ev, "value").empty())
      out.push_back(api::field_invalid(vp, "", "may not be specified when `value` is not empty"));
    else if (sources > 1)
      out.push_back(api::field_invalid(vp, "", "may not have more than one field specified at a time"));
  }
}

void validate_env_from(const json& env_from, const std::string& path, Causes& out) {
  for (std::size_t i = 0; i < env_from.size(); ++i) {
    const json& ef = env_from[i];
    std::string p = idx(path, i);
    std::string prefix = sget(ef, "prefix");
    if (std::any_of(prefix.begin(), prefix.end(), [](char c) { return c < 32 || c > 126 || c == '='; }))
      out.push_back(api::field_invalid(p + ".prefix", prefix,
                                       "a valid environment variable name must consist only of printable ASCII "
                                       "characters other than '='"));
    int sources = 0;
    for (const char* ref : {"configMapRef", "secretRef"}) {
      if (!present(ef, ref)) continue;
      ++sources;
      std::string rn = sget(ef[ref], "name");
      if (rn.empty()) out.push_back(api::field_required(p + "." + ref + ".name"));
      else
        for (auto& m : api::validate_name(rn, api::NameRule::DNS1123Subdomain, true))
          out.push_back(api::field_invalid(p + "." + ref + ".name", rn, m));
    }
    if (sources == 0) out.push_back(api::field_invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"));
    else if (sources > 1)
      out.push_back(api::field_invalid(path, "", "may not have more than one field specified at a time"));
  }
}

void validate_local_descending_path(const std::string& target, const std::string& path, Causes& out) {
  if (!target.empty() && target[0] == '/') out.push_back(api::field_invalid(path, target, "must be a relative path"));
  std::size_t start = 0;
  while (true) {
    auto s = target.find('/', start);
    if (target.substr(start, s == std::string::npos ? std::string::npos : s - start) == "..") {
      out.push_back(api::field_invalid(path, target, "must not contain '..'"));
      return;
    }
    if (s == std::string::npos) return;
    start = s + 1;
  }
}

void validate_volume_mounts(const json& mounts, const Volumes& vols, const std::string& path, Causes& out) {
  std::set<std::string> mount_points;
  for (std::size_t i = 0; i < mounts.size(); ++i) {
    const json& m = mounts[i];
    std::string p = idx(path, i);
    std::string name = sget(m, "name");
    if (name.empty()) out.push_back(api::field_required(p + ".name"));
    if (!vols.count(name)) out.push_back(not_found(p + ".name", name));
    std::string mp = sget(m, "mountPath");
    if (mp.empty()) out.push_back(api::field_required(p + ".mountPath"));
    if (mount_points.count(mp)) out.push_back(api::field_invalid(p + ".mountPath", mp, "must be unique"));
    mount_points.insert(mp);
    std::string sub = sget(m, "subPath"), sub_expr = sget(m, "subPathExpr");
    if (!sub.empty()) validate_local_descending_path(sub, path + ".subPath", out);
    if (!sub_expr.empty()) {
      if (!sub.empty())
        out.push_back(api::field_invalid(p + ".subPathExpr", sub_expr, "subPathExpr and subPath are mutually exclusive"));
      validate_local_descending_path(sub_expr, path + ".subPathExpr", out);
    }
  }
}

// ---- resources ----

bool is_hugepages(const std::string& name) { return name.rfind("hugepages-", 0) == 0; }
bool is_native(const std::string& name) {
  return name.find('/') == std::string::npos || name.find("kubernetes.io/") != std::string::npos;
}
bool overcommit_allowed(const std::string& name) { return is_native(name) && !is_hugepages(name); }
bool is_extended(const std::string& name) {
  if (is_native(name) || name.rfind("requests.", 0) == 0) return false;
  return api::is_qualified_name("requests." + name).empty();
}

const std::set<std::string>& standard_resources() {
  static const std::set<std::string> k = {
      "cpu", "memory", "requests.cpu", "requests.memory", "requests.storage", "limits.cpu", "limits.memory",
      "limits.ephemeral-storage", "pods", "quota", "services", "replicationcontrollers", "resourcequotas",
      "secrets", "configmaps", "persistentvolumeclaims", "storage", "requests.ephemeral-storage",
      "services.nodeports", "services.loadbalancers", "ephemeral-storage"};
  return k;
}

void validate_container_resource_name(const std::string& name, const std::string& path, Causes& out) {
  std::size_t before = out.size();
  for (auto& m : api::is_qualified_name(name)) out.push_back(api::field_invalid(path, name, m));
  if (out.size() != before) return;
  bool unprefixed = name.find('/') == std::string::npos;
  if (unprefixed && !standard_resources().count(name) && !is_hugepages(name) &&
      name.rfind("requests.hugepages-", 0) != 0) {
    out.push_back(api::field_invalid(path, name, "must be a standard resource type or fully qualified"));
    return;
  }
  if (unprefixed) {
    if (name != "cpu" && name != "memory" && name != "ephemeral-storage" && !is_hugepages(name))
      out.push_back(api::field_invalid(path, name, "must be a standard resource for containers"));
  } else if (!is_native(name) && !is_extended(name)) {
    out.push_back(api::field_invalid(path, name, "doesn't follow extended resource name standard"));
  }
}

void validate_quantity_value(const std::string& name, const Quantity& q, const std::string& path, Causes& out) {
  if (q.sign() < 0) out.push_back(api::field_invalid(path, q.to_string(), "must be greater than or equal to 0"));
  if (is_extended(name) && q.milli_value() % 1000 != 0)
    out.push_back(api::field_invalid(path, q.to_string(), "must be an integer"));
}

// IsHugePageResourceValueDivisible.
void validate_hugepage_value(const std::string& name, const Quantity& q, const std::string& path, Causes& out) {
  if (!is_hugepages(name)) return;
  auto page = Quantity::parse(name.substr(std::string("hugepages-").size()));
  bool divisible = page && page->sign() > 0 && page->milli_value() % 1000 == 0 && page->value() != 0 &&
                   q.value() % page->value() == 0;
  if (!divisible)
    out.push_back(api::field_invalid(path, q.to_string(), q.to_string() + " is not positive integer multiple of " + name));
}

}  // namespace

// validateResourceRequirements (containers and, with the limits alone, spec.overhead).
static void validate_resource_requirements(const json& res, const std::string& path, Causes& out) {
  std::string lim_path = path + ".limits", req_path = path + ".requests";
  const json& limits = get(res, "limits");
  const json& requests = get(res, "requests");
  bool lim_cpu_mem = false, req_cpu_mem = false, lim_huge = false, req_huge = false;
  std::map<std::string, Quantity> lim_q;
  if (limits.is_object()) {
    for (const auto& [name, v] : limits.items()) {
      std::string p = key(lim_path, name);
      validate_container_resource_name(name, p, out);
      auto q = quantity(v);
      if (!q) continue;
      lim_q[name] = *q;
      validate_quantity_value(name, *q, p, out);
      if (is_hugepages(name)) {
        lim_huge = true;
        validate_hugepage_value(name, *q, p, out);
      }
      if (name == "cpu" || name == "memory") lim_cpu_mem = true;
    }
  }
  if (requests.is_object()) {
    for (const auto& [name, v] : requests.items()) {
      std::string p = key(req_path, name);
      validate_container_resource_name(name, p, out);
      auto q = quantity(v);
      if (!q) continue;
      validate_quantity_value(name, *q, p, out);
      auto lim = lim_q.find(name);
      if (lim != lim_q.end()) {
        if (q->compare(lim->second) != 0 && !overcommit_allowed(name))
          out.push_back(api::field_invalid(req_path, q->to_string(),
                                           "must be equal to " + name + " limit of " + lim->second.to_string()));
        else if (q->compare(lim->second) > 0)
          out.push_back(api::field_invalid(req_path, q->to_string(),
                                           "must be less than or equal to " + name + " limit of " +
                                               lim->second.to_string()));
      } else if (!overcommit_allowed(name)) {
        out.push_back(api::field_required(lim_path, "Limit must be set for non overcommitable resources"));
      }
      if (is_hugepages(name)) {
        req_huge = true;
        validate_hugepage_value(name, *q, p, out);
      }
      if (name == "cpu" || name == "memory") req_cpu_mem = true;
    }
  }
  if (!lim_cpu_mem && !req_cpu_mem && (req_huge || lim_huge))
    out.push_back(api::field_forbidden(path, "HugePages require cpu or memory"));
}

namespace {

void validate_security_context(const json& sc, const std::string& path, Causes& out) {
  if (!sc.is_object()) return;
  for (const char* f : {"runAsUser", "runAsGroup"}) {
    if (!present(sc, f)) continue;
    std::int64_t v = num(get(sc, f));
    if (v < 0 || v > 2147483647)
      out.push_back(api::field_invalid(path + "." + f, json(v), "must be between 0 and 2147483647, inclusive"));
  }
  if (get(sc, "privileged") == json(true) && get(sc, "allowPrivilegeEscalation") == json(false))
    out.push_back(api::field_invalid(path, "", "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"));
}

void validate_handler(const json& h, const std::string& path, Causes& out) {
  int handlers = 0;
  for (const char* t : {"exec", "httpGet", "tcpSocket", "grpc", "sleep"}) {
    if (!present(h, t)) continue;
    std::string p = path + "." + t;
    if (handlers > 0) {
      out.push_back(api::field_forbidden(p, "may not specify more than 1 handler type"));
      continue;
    }
    ++handlers;
    const json& a = h[t];
    std::string type = t;
    if (type == "exec") {
      if (arr(a, "command").empty()) out.push_back(api::field_required(p + ".command"));
    } else if (type == "httpGet") {
      if (sget(a, "path").empty()) out.push_back(api::field_required(p + ".path"));
      validate_port_num_or_name(get(a, "port"), p + ".port", out);
      std::string scheme = sget(a, "scheme");
      if (scheme != "HTTP" && scheme != "HTTPS")
        out.push_back(api::field_not_supported(p + ".scheme", scheme, {"HTTP", "HTTPS"}));
    } else if (type == "tcpSocket") {
      validate_port_num_or_name(get(a, "port"), p + ".port", out);
    } else if (type == "grpc") {
      std::int64_t port = num(get(a, "port"));
      if (port < 1 || port > 65535) out.push_back(api::field_invalid(p + ".port", json(port), kPortRange));
    }
  }
  if (handlers == 0) out.push_back(api::field_required(path, "must specify a handler type"));
}

void validate_probe(const json& probe, const std::string& path, const std::string& kind, Causes& out) {
  if (!probe.is_object()) return;
  validate_handler(probe, path, out);
  for (const char* f : {"initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"})
    validate_nonnegative(get(probe, f), path + "." + f, out);
  if (present(probe, "terminationGracePeriodSeconds") && num(get(probe, "terminationGracePeriodSeconds")) <= 0)
    out.push_back(api::field_invalid(path + ".terminationGracePeriodSeconds",
                                     json(num(get(probe, "terminationGracePeriodSeconds"))), "must be greater than 0"));
  if ((kind == "livenessProbe" || kind == "startupProbe") && num(get(probe, "successThreshold")) != 1)
    out.push_back(api::field_invalid(path + ".successThreshold", json(num(get(probe, "successThreshold"))), "must be 1"));
  if (kind == "readinessProbe" && present(probe, "terminationGracePeriodSeconds"))
    out.push_back(api::field_invalid(path + ".terminationGracePeriodSeconds",
                                     json(num(get(probe, "terminationGracePeriodSeconds"))),
                                     "must not be set for readinessProbes"));
}

void validate_lifecycle(const json& lc, const std::string& path, Causes& out) {
  if (!lc.is_object()) return;
  for (const char* h : {"postStart", "preStop"})
    if (present(lc, h)) validate_handler(lc[h], path + "." + h, out);
}

void validate_container_common(const json& c, const Volumes& vols, const std::string& path, Causes& out) {
  std::string name = sget(c, "name");
  if (name.empty()) out.push_back(api::field_required(path + ".name"));
  else validate_dns1123_label(name, path + ".name", out);
  if (sget(c, "image").empty()) out.push_back(api::field_required(path + ".image"));
  validate_not_supported(get(c, "terminationMessagePolicy"), path + ".terminationMessagePolicy",
                         {"File", "FallbackToLogsOnError"}, true, out);
  validate_ports(arr(c, "ports"), path + ".ports", out);
  validate_env(arr(c, "env"), path + ".env", out);
  validate_env_from(arr(c, "envFrom"), path + ".envFrom", out);
  validate_volume_mounts(arr(c, "volumeMounts"), vols, path + ".volumeMounts", out);
  validate_not_supported(get(c, "imagePullPolicy"), path + ".imagePullPolicy", {"Always", "IfNotPresent", "Never"},
                         true, out);
  validate_resource_requirements(get(c, "resources"), path + ".resources", out);
  validate_security_context(get(c, "securityContext"), path + ".securityContext", out);
}

void check_host_port_conflicts(const json& containers, const std::string& path, std::set<std::string>& seen,
                               std::size_t index_base, Causes& out) {
  for (std::size_t ci = 0; ci < containers.size(); ++ci) {
    const json& ports = arr(containers[ci], "ports");
    for (std::size_t pi = 0; pi < ports.size(); ++pi) {
      std::int64_t hp = num(get(ports[pi], "hostPort"));
      if (hp == 0) continue;
      std::string s = sget(ports[pi], "protocol") + "/" + sget(ports[pi], "hostIP") + "/" + std::to_string(hp);
      std::string p = idx(idx(path, ci + index_base) + ".ports", pi) + ".hostPort";
      if (seen.count(s)) out.push_back(api::field_duplicate(p, s));
      else seen.insert(s);
    }
  }
}

void validate_containers(const json& containers, const Volumes& vols, const std::string& path, Causes& out) {
  if (containers.empty()) {
    out.push_back(api::field_required(path));
    return;
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < containers.size(); ++i) {
    const json& c = containers[i];
    std::string p = idx(path, i);
    validate_container_common(c, vols, p, out);
    std::string name = sget(c, "name");
    if (names.count(name)) out.push_back(api::field_duplicate(p + ".name", name));
    else names.insert(name);
    if (present(c, "lifecycle")) validate_lifecycle(c["lifecycle"], p + ".lifecycle", out);
    for (const char* probe : {"livenessProbe", "readinessProbe", "startupProbe"})
      if (present(c, probe)) validate_probe(c[probe], p + "." + probe, probe, out);
    if (present(c, "restartPolicy"))
      out.push_back(api::field_forbidden(p + ".restartPolicy", "may not be set for non-init containers"));
  }
  std::set<std::string> seen;
  check_host_port_conflicts(containers, path, seen, 0, out);
}

void validate_init_containers(const json& inits, const json& containers, const Volumes& vols,
                              const std::string& path, Causes& out) {
  std::set<std::string> names;
  for (const auto& c : containers) names.insert(sget(c, "name"));
  for (std::size_t i = 0; i < inits.size(); ++i) {
    const json& c = inits[i];
    std::string p = idx(path, i);
    validate_container_common(c, vols, p, out);
    bool restart_always = false;
    if (present(c, "restartPolicy")) {
      std::string rp = sget(c, "restartPolicy");
      if (rp != "Always") out.push_back(api::field_not_supported(p + ".restartPolicy", rp, {"Always"}));
      restart_always = rp == "Always";
    }
    std::string name = sget(c, "name");
    if (names.count(name)) out.push_back(api::field_duplicate(p + ".name", name));
    else if (!name.empty()) names.insert(name);
    std::set<std::string> seen;
    check_host_port_conflicts(json::array({c}), path, seen, i, out);
    if (restart_always) {
      if (present(c, "lifecycle")) validate_lifecycle(c["lifecycle"], p + ".lifecycle", out);
      for (const char* probe : {"livenessProbe", "readinessProbe", "startupProbe"})
        if (present(c, probe)) validate_probe(c[probe], p + "." + probe, probe, out);
    } else {
      for (const char* f : {"lifecycle", "livenessProbe", "readinessProbe", "startupProbe"})
        if (present(c, f))
          out.push_back(api::field_forbidden(p + "." + f, "may not be set for init containers without restartPolicy=Always"));
    }
  }
}

void validate_dns_config(const json& spec, const std::string& path, Causes& out) {
  const json& cfg = get(spec, "dnsConfig");
  if (sget(spec, "dnsPolicy") == "None") {
    if (!cfg.is_object()) {
      out.push_back(api::field_required(path, "must provide `dnsConfig` when `dnsPolicy` is None"));
      return;
    }
    if (arr(cfg, "nameservers").empty()) {
      out.push_back(api::field_required(path + ".nameservers",
                                        "must provide at least one DNS nameserver when `dnsPolicy` is None"));
      return;
    }
  }
  if (!cfg.is_object()) return;
  const json& ns = arr(cfg, "nameservers");
  if (ns.size() > 3) {
    std::vector<std::string> v;
    for (const auto& n : ns) v.push_back(str(n));
    out.push_back(api::field_invalid_rendered(path + ".nameservers", api::go_string_slice(v),
                                              "must not have more than 3 nameservers"));
  }
  for (std::size_t i = 0; i < ns.size(); ++i)
    if (!valid_ip(str(ns[i])))
      out.push_back(api::field_invalid(idx(path + ".nameservers", i), str(ns[i]),
                                       "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"));
  const json& options = arr(cfg, "options");
  for (std::size_t i = 0; i < options.size(); ++i)
    if (sget(options[i], "name").empty())
      out.push_back(api::field_required(idx(path + ".options", i), "must not be empty"));
}

}  // namespace

void validate_nonnegative(const json& v, const std::string& path, Causes& out) {
  if (v.is_number() && num(v) < 0)
    out.push_back(api::field_invalid(path, json(num(v)), "must be greater than or equal to 0"));
}

void validate_tolerations(const json& tolerations, const std::string& path, Causes& out) {
  if (!tolerations.is_array()) return;
  for (std::size_t i = 0; i < tolerations.size(); ++i) {
    const json& t = tolerations[i];
    std::string p = idx(path, i);
    std::string k = sget(t, "key"), op = sget(t, "operator"), effect = sget(t, "effect"), value = sget(t, "value");
    if (!k.empty())
      for (auto& m : api::is_qualified_name(k)) out.push_back(api::field_invalid(p + ".key", k, m));
    if (k.empty() && op != "Exists")
      out.push_back(api::field_invalid(p + ".operator", op,
                                       "operator must be Exists when `key` is empty, which means \"match all values "
                                       "and all keys\""));
    if (present(t, "tolerationSeconds") && effect != "NoExecute")
      out.push_back(api::field_invalid(p + ".effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"));
    if (op == "Equal" || op.empty()) {
      auto errs = api::is_valid_label_value(value);
      if (!errs.empty()) {
        std::string joined;
        for (std::size_t j = 0; j < errs.size(); ++j) joined += (j ? ";" : "") + errs[j];
        out.push_back(api::field_invalid(p + ".operator", value, joined));
      }
    } else if (op == "Exists") {
      if (!value.empty())
        out.push_back(api::field_invalid(p + ".operator", value, "value must be empty when `operator` is 'Exists'"));
    } else {
      out.push_back(api::field_not_supported(p + ".operator", op, {"Equal", "Exists"}));
    }
    if (!effect.empty() && effect != "NoSchedule" && effect != "PreferNoSchedule" && effect != "NoExecute")
      out.push_back(api::field_not_supported(p + ".effect", effect, {"NoSchedule", "PreferNoSchedule", "NoExecute"}));
  }
}

void validate_pod_spec(const json& spec, const std::string& path, const PodValidationOptions& opts, Causes& out) {
  if (!present(spec, "terminationGracePeriodSeconds"))
    out.push_back(api::field_required(path + ".terminationGracePeriodSeconds"));
  Volumes vols = validate_volumes(arr(spec, "volumes"), path + ".volumes", out);
  validate_containers(arr(spec, "containers"), vols, path + ".containers", out);
  validate_init_containers(arr(spec, "initContainers"), arr(spec, "containers"), vols, path + ".initContainers", out);
  // Ephemeral containers share the common container checks and must have unique names.
  {
    std::set<std::string> names;
    for (const char* l : {"containers", "initContainers"})
      for (const auto& c : arr(spec, l)) names.insert(sget(c, "name"));
    const json& eph = arr(spec, "ephemeralContainers");
    for (std::size_t i = 0; i < eph.size(); ++i) {
      std::string p = idx(path + ".ephemeralContainers", i);
      validate_container_common(eph[i], vols, p, out);
      std::string n = sget(eph[i], "name");
      if (names.count(n)) out.push_back(api::field_duplicate(p + ".name", n));
      else names.insert(n);
    }
  }
  // validatePodHostNetworkDeps.
  if (get(spec, "hostNetwork") == json(true)) {
    const json& cs = arr(spec, "containers");
    for (std::size_t i = 0; i < cs.size(); ++i) {
      const json& ports = arr(cs[i], "ports");
      for (std::size_t j = 0; j < ports.size(); ++j) {
        std::int64_t hp = num(get(ports[j], "hostPort")), cp = num(get(ports[j], "containerPort"));
        if ((opts.resource_is_pod || hp != 0) && hp != cp)
          out.push_back(api::field_invalid(idx(idx(path + ".containers", i) + ".ports", j) + ".hostPort", json(hp),
                                           "must match `containerPort` when `hostNetwork` is true"));
      }
    }
  }
  validate_not_supported(get(spec, "restartPolicy"), path + ".restartPolicy", {"Always", "OnFailure", "Never"}, true, out);
  validate_not_supported(get(spec, "dnsPolicy"), path + ".dnsPolicy",
                         {"ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"}, true, out);
  api::validate_labels(get(spec, "nodeSelector"), path + ".nodeSelector", out);
  {
    const json& sc = get(spec, "securityContext");
    std::string sp = path + ".securityContext";
    for (const char* f : {"fsGroup", "runAsUser", "runAsGroup"}) {
      if (!present(sc, f)) continue;
      std::int64_t v = num(get(sc, f));
      if (v < 0 || v > 2147483647)
        out.push_back(api::field_invalid(sp + "." + f, json(v), "must be between 0 and 2147483647, inclusive"));
    }
    const json& groups = arr(sc, "supplementalGroups");
    for (std::size_t i = 0; i < groups.size(); ++i) {
      std::int64_t v = num(groups[i]);
      if (v < 0 || v > 2147483647)
        out.push_back(api::field_invalid(idx(sp + ".supplementalGroups", i), json(v),
                                         "must be between 0 and 2147483647, inclusive"));
    }
  }
  validate_dns_config(spec, path + ".dnsConfig", out);
  {
    const json& gates = arr(spec, "readinessGates");
    for (std::size_t i = 0; i < gates.size(); ++i) {
      std::string ct = sget(gates[i], "conditionType");
      for (auto& m : api::is_qualified_name(ct))
        out.push_back(api::field_invalid(idx(path + ".readinessGates", i) + ".conditionType", ct, m));
    }
    const json& sgates = arr(spec, "schedulingGates");
    std::set<std::string> seen;
    for (std::size_t i = 0; i < sgates.size(); ++i) {
      std::string n = sget(sgates[i], "name");
      for (auto& m : api::is_qualified_name(n)) out.push_back(api::field_invalid(idx(path + ".schedulingGates", i), n, m));
      if (seen.count(n)) out.push_back(api::field_duplicate(idx(path + ".schedulingGates", i), n));
      seen.insert(n);
    }
  }
  if (std::string sa = sget(spec, "serviceAccountName"); !sa.empty()) validate_subdomain(sa, path + ".serviceAccountName", out);
  if (std::string node = sget(spec, "nodeName"); !node.empty()) validate_subdomain(node, path + ".nodeName", out);
  if (present(spec, "activeDeadlineSeconds")) {
    std::int64_t v = num(get(spec, "activeDeadlineSeconds"));
    if (v < 1 || v > 2147483647)
      out.push_back(api::field_invalid(path + ".activeDeadlineSeconds", json(v), "must be between 1 and 2147483647, inclusive"));
  }
  if (std::string h = sget(spec, "hostname"); !h.empty()) validate_dns1123_label(h, path + ".hostname", out);
  if (std::string s = sget(spec, "subdomain"); !s.empty()) validate_dns1123_label(s, path + ".subdomain", out);
  validate_tolerations(get(spec, "tolerations"), path + ".tolerations", out);
  {
    const json& aliases = arr(spec, "hostAliases");
    for (std::size_t i = 0; i < aliases.size(); ++i) {
      std::string p = idx(path + ".hostAliases", i);
      std::string ip = sget(aliases[i], "ip");
      if (!valid_ip(ip))
        out.push_back(api::field_invalid(p + ".ip", ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"));
      const json& hosts = arr(aliases[i], "hostnames");
      for (std::size_t j = 0; j < hosts.size(); ++j) validate_subdomain(str(hosts[j]), idx(p + ".hostnames", j), out);
    }
  }
  if (std::string pc = sget(spec, "priorityClassName"); !pc.empty()) validate_subdomain(pc, path + ".priorityClassName", out);
  if (present(spec, "runtimeClassName")) validate_subdomain(sget(spec, "runtimeClassName"), path + ".runtimeClassName", out);
  if (present(spec, "preemptionPolicy"))
    validate_not_supported(get(spec, "preemptionPolicy"), path + ".preemptionPolicy", {"PreemptLowerPriority", "Never"},
                           true, out);
  if (present(spec, "overhead")) validate_resource_requirements(json{{"limits", spec["overhead"]}}, path + ".overhead", out);
  if (present(spec, "os")) {
    std::string os = sget(spec["os"], "name");
    if (os.empty()) out.push_back(api::field_required(path + ".os.name"));
    else if (os != "linux" && os != "windows") out.push_back(api::field_not_supported(path + ".os", os, {"linux", "windows"}));
  }
}

void validate_pod_template_spec(const json& tmpl, const std::string& path, Causes& out) {
  const json& meta = get(tmpl, "metadata");
  api::validate_labels(get(meta, "labels"), path + ".labels", out);
  api::validate_annotations(get(meta, "annotations"), path + ".annotations", out);
  PodValidationOptions opts;
  validate_pod_spec(get(tmpl, "spec"), path + ".spec", opts, out);
  if (!arr(get(tmpl, "spec"), "ephemeralContainers").empty())
    out.push_back(api::field_forbidden(path + ".spec.ephemeralContainers", "ephemeral containers not allowed in pod template"));
}

void validate_pod_template_for_replicaset(const json& tmpl, const json& selector, std::int64_t replicas,
                                          const std::string& path, Causes& out) {
  auto sel = api::LabelSelector::from_json(selector);
  const json& labels = at(tmpl, {"metadata", "labels"});
  if (sel && !sel->empty() && !sel->matches(labels))
    out.push_back(api::field_invalid_rendered(path + ".metadata.labels", go_string_map(labels),
                                              "`selector` does not match template `labels`"));
  validate_pod_template_spec(tmpl, path, out);
  if (replicas > 1) {
    const json& vols = arr(get(tmpl, "spec"), "volumes");
    for (std::size_t i = 0; i < vols.size(); ++i)
      if (present(vols[i], "gcePersistentDisk") && get(vols[i]["gcePersistentDisk"], "readOnly") != json(true))
        out.push_back(api::field_invalid(idx(path + ".spec.volumes", i) + ".gcePersistentDisk.readOnly", false,
                                         "must be true for replicated pods > 1; GCE PD can only be mounted on "
                                         "multiple machines if it is read-only"));
  }
  std::string rp = str(at(tmpl, {"spec", "restartPolicy"}));
  if (rp != "Always") out.push_back(api::field_not_supported(path + ".spec.restartPolicy", rp, {"Always"}));
  if (present(get(tmpl, "spec"), "activeDeadlineSeconds"))
    out.push_back(api::field_forbidden(path + ".spec.activeDeadlineSeconds",
                                       "activeDeadlineSeconds in ReplicaSet is not Supported"));
}

// ---------------------------------------------------------------------------------------------
// Printing

std::pair<std::string, std::string> container_cells(const json& containers) {
  std::string names, images;
  if (!containers.is_array()) return {names, images};
  for (std::size_t i = 0; i < containers.size(); ++i) {
    if (i) names += ",", images += ",";
    names += sget(containers[i], "name");
    images += sget(containers[i], "image");
  }
  return {names, images};
}

}  // namespace berth::apiserver::podspec
