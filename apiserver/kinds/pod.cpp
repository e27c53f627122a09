// core/v1 Pod: pkg/registry/core/pod/strategy.go, the pod admission plugins that shape every pod
// (ServiceAccount's name default, Priority, DefaultTolerationSeconds), and the pod Table printer.
#include <ctime>
#include <map>
#include <set>

#include "api/validation.h"
#include "apiserver/kinds/pod_template.h"
#include "apiserver/kinds/workloads.h"

namespace berth::apiserver {

namespace {

using api::Cause;
using podspec::num;
using podspec::present;
using podspec::str;


const char* kUpdatableFields =
    "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
    "`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

const json& field(const json& obj, const char* k) {
  static const json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(k);
  return it == obj.end() ? kNull : *it;
}

// What Go's semantic equality ignores: unset (zero) values and empty lists and maps.
json normalized(const json& v) {
  if (v.is_object()) {
    json out = json::object();
    for (const auto& [k, e] : v.items()) {
      json n = normalized(e);
      if (n.is_null() || n == json(false) || (n.is_string() && n.get<std::string>().empty()) ||
          (n.is_array() && n.empty()) || (n.is_object() && n.empty()))
        continue;
      out[k] = std::move(n);
    }
    return out;
  }
  if (v.is_array()) {
    json out = json::array();
    for (const auto& e : v) out.push_back(normalized(e));
    return out;
  }
  return v;
}

// A short, cmp.Diff-like account of which PodSpec fields differ.
std::string spec_diff(const json& old_spec, const json& new_spec) {
  json a = normalized(old_spec), b = normalized(new_spec);
  std::set<std::string> keys;
  for (const auto& [k, v] : a.items()) keys.insert(k);
  for (const auto& [k, v] : b.items()) keys.insert(k);
  std::string out = "  core.PodSpec{\n";
  std::size_t same = 0;
  for (const auto& k : keys) {
    const json& x = field(a, k.c_str());
    const json& y = field(b, k.c_str());
    if (x == y) {
      ++same;
      continue;
    }
    std::string name = k;
    name[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(name[0])));
    if (!x.is_null()) out += "- \t" + name + ": " + x.dump() + ",\n";
    if (!y.is_null()) out += "+ \t" + name + ": " + y.dump() + ",\n";
  }
  if (same) out += "  \t... // " + std::to_string(same) + " identical fields\n";
  return out + "  }\n";
}

// plugin/pkg/admission/defaulttolerationseconds.
void add_default_tolerations(json& spec, std::int64_t not_ready_seconds, std::int64_t unreachable_seconds) {
  bool not_ready = false, unreachable = false;
  const json& tolerations = field(spec, "tolerations");
  if (tolerations.is_array()) {
    for (const auto& t : tolerations) {
      std::string k = str(field(t, "key")), effect = str(field(t, "effect"));
      bool effect_ok = effect == "NoExecute" || effect.empty();
      if ((k == "node.kubernetes.io/not-ready" || k.empty()) && effect_ok) not_ready = true;
      if ((k == "node.kubernetes.io/unreachable" || k.empty()) && effect_ok) unreachable = true;
    }
  }
  if (not_ready && unreachable) return;
  if (!spec["tolerations"].is_array()) spec["tolerations"] = json::array();
  auto add = [&](const char* k, std::int64_t seconds) {
    spec["tolerations"].push_back(
        {{"key", k}, {"operator", "Exists"}, {"effect", "NoExecute"}, {"tolerationSeconds", seconds}});
  };
  if (!not_ready) add("node.kubernetes.io/not-ready", not_ready_seconds);
  if (!unreachable) add("node.kubernetes.io/unreachable", unreachable_seconds);
}

bool has_condition(const json& status, const char* type, const char* want_status) {
  const json& conds = field(status, "conditions");
  if (!conds.is_array()) return false;
  for (const auto& c : conds)
    if (str(field(c, "type")) == type) return str(field(c, "status")) == want_status;
  return false;
}

bool has_ready_condition(const json& status) {
  const json& conds = field(status, "conditions");
  if (!conds.is_array()) return false;
  for (const auto& c : conds)
    if (str(field(c, "type")) == "Ready" && str(field(c, "status")) == "True") return true;
  return false;
}

std::int64_t finished_at(const json& container_status) {
  const json& t = at(container_status, {"lastState", "terminated"});
  if (!t.is_object()) return 0;
  const json& f = field(t, "finishedAt");
  return f.is_string() ? parse_rfc3339(f.get<std::string>()) : 0;
}

std::string terminated_reason(const json& term, const char* prefix) {
  std::string reason = str(field(term, "reason"));
  if (!reason.empty()) return std::string(prefix) + reason;
  std::int64_t signal = num(field(term, "signal"));
  if (signal != 0) return std::string(prefix) + "Signal:" + std::to_string(signal);
  return std::string(prefix) + "ExitCode:" + std::to_string(num(field(term, "exitCode")));
}

class PodStrategy final : public Strategy {
 public:
  PodStrategy(std::int64_t not_ready_seconds, std::int64_t unreachable_seconds)
      : not_ready_seconds_(not_ready_seconds), unreachable_seconds_(unreachable_seconds) {}

  const KindInfo& info() const override {
    static const KindInfo k = [] {
      KindInfo i;
      i.group = "";
      i.kind = "Pod";
      i.plural = "pods";
      i.singular = "pod";
      i.namespaced = true;
      i.versions = {"v1"};
      i.storage_version = "v1";
      i.storage_prefix = "/registry/pods";
      i.short_names = {"po"};
      i.categories = {"all"};
      i.subresources = {
          {"binding", "", "v1", "Binding", {"create"}},
          {"eviction", "policy", "v1", "Eviction", {"create"}},
          {"exec", "", "v1", "PodExecOptions", {"create", "get"}},
          {"log", "", "v1", "Pod", {"get"}},
          {"status", "", "v1", "Pod", {"get", "patch", "update"}},
      };
      i.has_status = true;
      i.return_deleted_object = true;
      i.tracks_generation = false;
      i.default_propagation = "Background";
      return i;
    }();
    return k;
  }

  api::Result<json> from_version(json external, const std::string& version) const override {
    auto r = Strategy::from_version(std::move(external), version);
    if (!r) return r;
    if (auto s = podspec::check_pod_spec_quantities(at(*r, {"spec"}), "Pod"); !s) return s;
    return r;
  }

  void apply_defaults(json& obj) const override { podspec::default_pod_spec(obj["spec"], true); }
  bool defaults_in_prepare_for_create() const override { return true; }

  void prepare_for_create(json& obj) const override {
    json& spec = obj["spec"];
    if (!spec.is_object()) spec = json::object();
    podspec::drop_disabled_fields(spec, json());
    // ServiceAccount admission: the name only (no token volume is projected).
    bool mirror = at(obj, {"metadata", "annotations", "kubernetes.io/config.mirror"}).is_string();
    if (!mirror && str(field(spec, "serviceAccountName")).empty() && str(field(spec, "serviceAccount")).empty())
      spec["serviceAccountName"] = "default";
    // Priority admission with no default PriorityClass.
    std::string pc = str(field(spec, "priorityClassName"));
    if (!present(spec, "priority")) {
      if (pc == "system-node-critical") spec["priority"] = 2000001000;
      else if (pc == "system-cluster-critical") spec["priority"] = 2000000000;
      else if (pc.empty()) spec["priority"] = 0;
    }
    if (!present(spec, "preemptionPolicy")) spec["preemptionPolicy"] = "PreemptLowerPriority";
    add_default_tolerations(spec, not_ready_seconds_, unreachable_seconds_);
    apply_defaults(obj);  // QoS is computed on the defaulted spec (requests from limits)

    json status = {{"phase", "Pending"}, {"qosClass", podspec::compute_qos_class(spec)}};
    const json& gates = field(spec, "schedulingGates");
    if (gates.is_array() && !gates.empty()) {
      status["conditions"] = json::array({{{"type", "PodScheduled"},
                                           {"status", "False"},
                                           {"lastProbeTime", nullptr},
                                           {"lastTransitionTime", nullptr},
                                           {"reason", "SchedulingGated"},
                                           {"message", "Scheduling is blocked due to non-empty scheduling gates"}}});
    }
    obj["status"] = std::move(status);
  }

  void prepare_for_update(json& obj, const json& old) const override {
    json& spec = obj["spec"];
    if (!spec.is_object()) spec = json::object();
    const json& old_spec = field(old, "spec");
    podspec::drop_disabled_fields(spec, old_spec);
    // Priority admission keeps what it computed at creation.
    for (const char* f : {"priority", "preemptionPolicy"})
      if (!present(spec, f) && present(old_spec, f)) spec[f] = old_spec[f];
    // DefaultTolerationSeconds handles updates too.
    add_default_tolerations(spec, not_ready_seconds_, unreachable_seconds_);
  }

  void validate(const json& obj, std::vector<Cause>& out) const override {
    validate_metadata_and_spec(obj, out);
    const json& spec = field(obj, "spec");
    const json& eph = field(spec, "ephemeralContainers");
    if (eph.is_array() && !eph.empty()) out.push_back(api::field_forbidden("spec.ephemeralContainers", "cannot be set on create"));
    const json& gates = field(spec, "schedulingGates");
    if (!str(field(spec, "nodeName")).empty() && gates.is_array() && !gates.empty())
      out.push_back(api::field_forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared"));
  }

  void validate_update(const json& obj, const json& old, std::vector<Cause>& out) const override {
    validate_metadata_and_spec(obj, out);
    // The stored object is compared in its defaulted form, as Kubernetes defaults what it reads.
    json old_defaulted = old;
    if (old_defaulted.is_object()) apply_defaults(old_defaulted);
    validate_spec_update(field(obj, "spec"), field(old_defaulted, "spec"), out);
  }

  std::optional<std::string> field_value(const json& obj, const std::string& f) const override {
    const json& spec = field(obj, "spec");
    const json& status = field(obj, "status");
    if (f == "metadata.name") return str(at(obj, {"metadata", "name"}));
    if (f == "metadata.namespace") return str(at(obj, {"metadata", "namespace"}));
    if (f == "spec.nodeName") return str(field(spec, "nodeName"));
    if (f == "spec.restartPolicy") return str(field(spec, "restartPolicy"));
    if (f == "spec.schedulerName") return str(field(spec, "schedulerName"));
    if (f == "spec.serviceAccountName") return str(field(spec, "serviceAccountName"));
    if (f == "spec.hostNetwork") return field(spec, "hostNetwork") == json(true) ? "true" : "false";
    if (f == "status.phase") return str(field(status, "phase"));
    if (f == "status.podIP") return pod_ip(status);
    if (f == "status.nominatedNodeName") return str(field(status, "nominatedNodeName"));
    return std::nullopt;
  }

  std::vector<Column> columns() const override {
    return {
        {"Name", "string", "name", podspec::kNameDescription, 0},
        {"Ready", "string", "", "The aggregate readiness state of this pod for accepting traffic.", 0},
        {"Status", "string", "", "The aggregate status of the containers in this pod.", 0},
        {"Restarts", "string", "",
         "The number of times the containers in this pod have been restarted and when the last container in this pod "
         "has restarted.",
         0},
        {"Age", "string", "", podspec::kAgeDescription, 0},
        {"IP", "string", "",
         "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.", 1},
        {"Node", "string", "",
         "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by "
         "the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes "
         "responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to "
         "be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
         1},
        {"Nominated Node", "string", "",
         "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right "
         "away as preemption victims receive their graceful termination periods. This field does not guarantee that "
         "the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes "
         "become available sooner. Scheduler may also decide to give the resources on this node to a higher priority "
         "pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when "
         "the pod is scheduled.",
         1},
        {"Readiness Gates", "string", "",
         "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers "
         "are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: "
         "https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates",
         1},
    };
  }

  json cells(const json& pod) const override;

  std::optional<std::int64_t> grace_period(const json& obj, std::optional<std::int64_t> requested) const override {
    const json& spec = field(obj, "spec");
    std::int64_t period = requested ? *requested : num(field(spec, "terminationGracePeriodSeconds"), 30);
    if (str(field(spec, "nodeName")).empty()) period = 0;
    std::string phase = str(at(obj, {"status", "phase"}));
    if (phase == "Failed" || phase == "Succeeded") period = 0;
    if (period < 0) period = 1;
    return period;
  }

 private:
  std::int64_t not_ready_seconds_, unreachable_seconds_;

  static std::string pod_ip(const json& status) {
    const json& ips = field(status, "podIPs");
    if (ips.is_array() && !ips.empty()) return str(field(ips[0], "ip"));
    return str(field(status, "podIP"));
  }

  // validatePodMetadataAndSpec (metadata itself is checked by the generic path).
  static void validate_metadata_and_spec(const json& obj, std::vector<Cause>& out) {
    const json& spec = field(obj, "spec");
    podspec::PodValidationOptions opts;
    opts.resource_is_pod = true;
    podspec::validate_pod_spec(spec, "spec", opts, out);
    if (str(field(spec, "serviceAccountName")).empty()) {
      const json& vols = field(spec, "volumes");
      for (std::size_t i = 0; vols.is_array() && i < vols.size(); ++i) {
        const json& sources = at(vols[i], {"projected", "sources"});
        for (std::size_t j = 0; sources.is_array() && j < sources.size(); ++j)
          if (present(sources[j], "serviceAccountToken"))
            out.push_back(api::field_forbidden("spec.volumes[" + std::to_string(i) + "].projected.sources[" +
                                                   std::to_string(j) + "].serviceAccountToken",
                                               "must not be specified when serviceAccountName is not set"));
      }
    }
    for (const char* list : {"containers", "initContainers"}) {
      const json& cs = field(spec, list);
      for (std::size_t i = 0; cs.is_array() && i < cs.size(); ++i) {
        std::string image = str(field(cs[i], "image"));
        auto b = image.find_first_not_of(" \t\n\r\v\f");
        auto e = image.find_last_not_of(" \t\n\r\v\f");
        std::string trimmed = b == std::string::npos ? "" : image.substr(b, e - b + 1);
        if (trimmed.size() != image.size())
          out.push_back(api::field_invalid(std::string("spec.") + list + "[" + std::to_string(i) + "].image", image,
                                           "must not have leading or trailing whitespace"));
      }
    }
  }

  // The update rules of ValidatePodUpdate: only images, activeDeadlineSeconds, added tolerations,
  // removed scheduling gates (and terminationGracePeriodSeconds from negative to 1) may change.
  static void validate_spec_update(const json& ns, const json& os, std::vector<Cause>& out) {
    for (const char* list : {"containers", "initContainers"}) {
      const json& n = field(ns, list);
      const json& o = field(os, list);
      std::size_t nn = n.is_array() ? n.size() : 0, on = o.is_array() ? o.size() : 0;
      std::string path = std::string("spec.") + list;
      if (nn != on) {
        out.push_back(api::field_forbidden(path, "pod updates may not add or remove containers"));
        return;
      }
      for (std::size_t i = 0; i < nn; ++i) {
        std::string image = str(field(n[i], "image"));
        if (image.empty()) out.push_back(api::field_required(path + "[" + std::to_string(i) + "].image"));
        auto b = image.find_first_not_of(" \t\n\r\v\f");
        auto e = image.find_last_not_of(" \t\n\r\v\f");
        std::size_t trimmed = b == std::string::npos ? 0 : e - b + 1;
        if (trimmed != image.size())
          out.push_back(api::field_invalid(path + "[" + std::to_string(i) + "].image", image,
                                           "must not have leading or trailing whitespace"));
      }
    }
    if (present(ns, "activeDeadlineSeconds")) {
      std::int64_t v = num(field(ns, "activeDeadlineSeconds"));
      if (v < 0 || v > 2147483647) {
        out.push_back(api::field_invalid("spec.activeDeadlineSeconds", json(v), "must be between 0 and 2147483647, inclusive"));
        return;
      }
      if (present(os, "activeDeadlineSeconds") && num(field(os, "activeDeadlineSeconds")) < v) {
        out.push_back(api::field_invalid("spec.activeDeadlineSeconds", json(v), "must be less than or equal to previous value"));
        return;
      }
    } else if (present(os, "activeDeadlineSeconds")) {
      out.push_back(api::field_invalid("spec.activeDeadlineSeconds", json(), "must not update from a positive integer to nil value"));
    }
    // validateOnlyAddedTolerations.
    {
      const json& nt = field(ns, "tolerations");
      const json& ot = field(os, "tolerations");
      bool ok = true;
      for (std::size_t i = 0; ot.is_array() && i < ot.size() && ok; ++i) {
        json want = normalized(ot[i]);
        want.erase("tolerationSeconds");
        bool found = false;
        for (std::size_t j = 0; nt.is_array() && j < nt.size() && !found; ++j) {
          json have = normalized(nt[j]);
          have.erase("tolerationSeconds");
          found = have == want;
        }
        if (!found) {
          out.push_back(api::field_forbidden("spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"));
          ok = false;
        }
      }
      if (ok) podspec::validate_tolerations(nt, "spec.tolerations", out);
    }
    // validateOnlyDeletedSchedulingGates.
    {
      const json& ng = field(ns, "schedulingGates");
      const json& og = field(os, "schedulingGates");
      std::set<std::string> old_names;
      for (std::size_t i = 0; og.is_array() && i < og.size(); ++i) old_names.insert(str(field(og[i], "name")));
      std::map<std::string, std::size_t> added;
      for (std::size_t i = 0; ng.is_array() && i < ng.size(); ++i) {
        std::string n = str(field(ng[i], "name"));
        if (!old_names.count(n)) added[n] = i;
      }
      for (const auto& [n, i] : added)
        out.push_back(api::field_forbidden("spec.schedulingGates[" + std::to_string(i) + "].name",
                                           "only deletion is allowed, but found new scheduling gate '" + n + "'"));
    }
    if (normalized(ns) == normalized(os)) return;

    json munged = ns.is_object() ? ns : json::object();
    for (const char* list : {"containers", "initContainers"}) {
      if (!munged.contains(list) || !munged[list].is_array()) continue;
      const json& o = field(os, list);
      for (std::size_t i = 0; i < munged[list].size(); ++i) {
        const json& oi = field(o[i], "image");
        if (oi.is_null()) munged[list][i].erase("image");
        else munged[list][i]["image"] = oi;
      }
    }
    for (const char* f : {"activeDeadlineSeconds", "schedulingGates", "tolerations"}) {
      if (present(os, f)) munged[f] = os[f];
      else munged.erase(f);
    }
    if (present(os, "terminationGracePeriodSeconds") && num(field(os, "terminationGracePeriodSeconds")) < 0 &&
        num(field(munged, "terminationGracePeriodSeconds")) == 1)
      munged["terminationGracePeriodSeconds"] = os["terminationGracePeriodSeconds"];
    // A gated pod may gain nodeSelector entries.
    const json& og = field(os, "schedulingGates");
    if (og.is_array() && !og.empty()) {
      const json& nsel = field(munged, "nodeSelector");
      const json& osel = field(os, "nodeSelector");
      if (normalized(nsel) != normalized(osel)) {
        bool additions_only = true;
        if (osel.is_object())
          for (const auto& [k, v] : osel.items())
            if (field(nsel, k.c_str()) != v) additions_only = false;
        if (!additions_only)
          out.push_back(api::field_invalid_rendered("spec.nodeSelector", podspec::go_string_map(nsel),
                                                    "only additions to spec.nodeSelector are allowed (no mutations or deletions)"));
        if (present(os, "nodeSelector")) munged["nodeSelector"] = os["nodeSelector"];
        else munged.erase("nodeSelector");
      }
    }
    if (normalized(munged) != normalized(os))
      out.push_back(api::field_forbidden(
          "spec", std::string("pod updates may not change fields other than ") + kUpdatableFields + "\n" + spec_diff(os, munged)));
  }
};

// printPod (pkg/printers/internalversion/printers.go).
json PodStrategy::cells(const json& pod) const {
  const json& spec = field(pod, "spec");
  const json& status = field(pod, "status");
  const json& containers = field(spec, "containers");
  const json& init_specs = field(spec, "initContainers");
  std::int64_t restarts = 0, restartable_init_restarts = 0;
  std::int64_t total = containers.is_array() ? static_cast<std::int64_t>(containers.size()) : 0;
  std::int64_t ready = 0;
  std::int64_t last_restart = 0, last_restartable_init_restart = 0;

  std::string phase = str(field(status, "phase"));
  std::string reason = phase;
  if (!str(field(status, "reason")).empty()) reason = str(field(status, "reason"));
  const json& conditions = field(status, "conditions");
  if (conditions.is_array())
    for (const auto& c : conditions)
      if (str(field(c, "type")) == "PodScheduled" && str(field(c, "reason")) == "SchedulingGated") reason = "SchedulingGated";

  std::map<std::string, bool> restartable;  // init container name -> restartPolicy Always
  std::size_t init_count = init_specs.is_array() ? init_specs.size() : 0;
  for (std::size_t i = 0; i < init_count; ++i) {
    bool always = str(field(init_specs[i], "restartPolicy")) == "Always";
    restartable[str(field(init_specs[i], "name"))] = always;
    if (always) ++total;
  }

  bool initializing = false;
  const json& init_statuses = field(status, "initContainerStatuses");
  for (std::size_t i = 0; init_statuses.is_array() && i < init_statuses.size(); ++i) {
    const json& cs = init_statuses[i];
    restarts += num(field(cs, "restartCount"));
    std::int64_t fin = finished_at(cs);
    if (fin > last_restart) last_restart = fin;
    bool is_restartable = restartable.count(str(field(cs, "name"))) && restartable[str(field(cs, "name"))];
    if (is_restartable) {
      restartable_init_restarts += num(field(cs, "restartCount"));
      if (fin > last_restartable_init_restart) last_restartable_init_restart = fin;
    }
    const json& term = at(cs, {"state", "terminated"});
    const json& waiting = at(cs, {"state", "waiting"});
    if (term.is_object() && num(field(term, "exitCode")) == 0) continue;
    if (is_restartable && field(cs, "started") == json(true)) {
      if (field(cs, "ready") == json(true)) ++ready;
      continue;
    }
    if (term.is_object()) {
      reason = terminated_reason(term, "Init:");
    } else if (waiting.is_object() && !str(field(waiting, "reason")).empty() &&
               str(field(waiting, "reason")) != "PodInitializing") {
      reason = "Init:" + str(field(waiting, "reason"));
    } else {
      reason = "Init:" + std::to_string(i) + "/" + std::to_string(init_count);
    }
    initializing = true;
    break;
  }

  if (!initializing || has_condition(status, "Initialized", "True")) {
    restarts = restartable_init_restarts;
    last_restart = last_restartable_init_restart;
    bool has_running = false;
    const json& statuses = field(status, "containerStatuses");
    if (statuses.is_array()) {
      for (std::size_t n = statuses.size(); n-- > 0;) {
        const json& cs = statuses[n];
        restarts += num(field(cs, "restartCount"));
        std::int64_t fin = finished_at(cs);
        if (fin > last_restart) last_restart = fin;
        const json& waiting = at(cs, {"state", "waiting"});
        const json& term = at(cs, {"state", "terminated"});
        if (waiting.is_object() && !str(field(waiting, "reason")).empty()) {
          reason = str(field(waiting, "reason"));
        } else if (term.is_object()) {
          reason = terminated_reason(term, "");
        } else if (field(cs, "ready") == json(true) && at(cs, {"state", "running"}).is_object()) {
          has_running = true;
          ++ready;
        }
      }
    }
    if (reason == "Completed" && has_running) reason = has_ready_condition(status) ? "Running" : "NotReady";
  }

  bool deleting = at(pod, {"metadata", "deletionTimestamp"}).is_string();
  if (deleting && str(field(status, "reason")) == "NodeLost") reason = "Unknown";
  else if (deleting && phase != "Succeeded" && phase != "Failed") reason = "Terminating";

  std::string restarts_str = std::to_string(restarts);
  if (restarts != 0 && last_restart != 0)
    restarts_str += " (" + human_duration(static_cast<std::int64_t>(std::time(nullptr)) - last_restart) + " ago)";

  std::string ip = pod_ip(status);
  std::string node = str(field(spec, "nodeName"));
  std::string nominated = str(field(status, "nominatedNodeName"));
  std::string gates = "<none>";
  const json& rg = field(spec, "readinessGates");
  if (rg.is_array() && !rg.empty()) {
    int true_conditions = 0;
    for (const auto& g : rg) {
      std::string type = str(field(g, "conditionType"));
      if (!conditions.is_array()) continue;
      for (const auto& c : conditions) {
        if (str(field(c, "type")) != type) continue;
        if (str(field(c, "status")) == "True") ++true_conditions;
        break;
      }
    }
    gates = std::to_string(true_conditions) + "/" + std::to_string(rg.size());
  }
  return json::array({at(pod, {"metadata", "name"}).is_string() ? at(pod, {"metadata", "name"}) : json(""),
                      std::to_string(ready) + "/" + std::to_string(total), reason, restarts_str, age(pod),
                      ip.empty() ? "<none>" : ip, node.empty() ? "<none>" : node,
                      nominated.empty() ? "<none>" : nominated, gates});
}

}  // namespace

std::unique_ptr<Strategy> make_pod_strategy(std::int64_t not_ready_seconds, std::int64_t unreachable_seconds) {
  return std::make_unique<PodStrategy>(not_ready_seconds, unreachable_seconds);
}

}  // namespace berth::apiserver
