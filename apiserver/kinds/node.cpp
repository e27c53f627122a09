// core/v1 Node: pkg/registry/core/node/strategy.go, the node parts of pkg/apis/core/v1
// (defaults, NodeSpec conversion) and pkg/apis/core/validation, printNode for the Table.
#include <arpa/inet.h>

#include <algorithm>
#include <set>

#include "api/validation.h"
#include "apiserver/kinds/other_kinds.h"

namespace berth::apiserver {
namespace {

std::string str(const json& j) { return j.is_string() ? j.get<std::string>() : std::string(); }

// netutils.ParseCIDRSloppy: an address (v4 or v6) and a prefix length in range.
bool is_cidr(const std::string& s, bool* v6 = nullptr) {
  auto slash = s.find('/');
  if (slash == std::string::npos || slash + 1 >= s.size()) return false;
  std::string addr = s.substr(0, slash), bits = s.substr(slash + 1);
  if (!std::all_of(bits.begin(), bits.end(), [](char c) { return c >= '0' && c <= '9'; }) || bits.size() > 3)
    return false;
  int n = std::stoi(bits);
  unsigned char buf[16];
  if (inet_pton(AF_INET, addr.c_str(), buf) == 1) {
    if (v6) *v6 = false;
    return n <= 32;
  }
  if (inet_pton(AF_INET6, addr.c_str(), buf) == 1) {
    if (v6) *v6 = true;
    return n <= 128;
  }
  return false;
}

std::vector<std::string> string_list(const json& j) {
  std::vector<std::string> out;
  if (j.is_array())
    for (const auto& v : j) out.push_back(str(v));
  return out;
}

// validateNodeTaints. Upstream passes the metadata path, so causes read "metadata.taints[i]...".
void validate_taints(const json& taints, std::vector<api::Cause>& errors) {
  if (!taints.is_array()) return;
  std::set<std::pair<std::string, std::string>> seen;  // (effect, key)
  for (std::size_t i = 0; i < taints.size(); ++i) {
    const json& t = taints[i];
    std::string path = "metadata.taints[" + std::to_string(i) + "]";
    std::string key = str(at(t, {"key"})), value = str(at(t, {"value"})), effect = str(at(t, {"effect"}));
    for (const auto& msg : api::is_qualified_name(key)) errors.push_back(api::field_invalid(path + ".key", key, msg));
    auto value_errs = api::is_valid_label_value(value);
    if (!value_errs.empty()) {
      std::string joined;
      for (std::size_t k = 0; k < value_errs.size(); ++k) joined += (k ? ";" : "") + value_errs[k];
      errors.push_back(api::field_invalid(path + ".value", value, joined));
    }
    if (effect.empty()) {
      errors.push_back(api::field_required(path + ".effect"));
    } else if (effect != "NoSchedule" && effect != "PreferNoSchedule" && effect != "NoExecute") {
      errors.push_back(api::field_not_supported(path + ".effect", effect, {"NoSchedule", "PreferNoSchedule", "NoExecute"}));
    }
    if (!seen.insert({effect, key}).second) {
      // field.Duplicate with a Taint value; its %#v rendering is Go-specific, the detail is what matters.
      api::Cause c = api::field_duplicate(path, json::object());
      c.message = "Duplicate value: core.Taint{Key:" + api::go_quote(key) + ", Value:" + api::go_quote(value) +
                  ", Effect:" + api::go_quote(effect) + ", TimeAdded:<nil>}: taints must be unique by key and effect pair";
      errors.push_back(c);
    }
  }
}

class NodeStrategy : public Strategy {
 public:
  NodeStrategy() {
    info_.group = "";
    info_.kind = "Node";
    info_.plural = "nodes";
    info_.singular = "node";
    info_.namespaced = false;
    info_.versions = {"v1"};
    info_.storage_version = "v1";
    info_.storage_prefix = "/registry/minions";  // upstream's historical key prefix
    info_.short_names = {"no"};
    info_.subresources = {{"status", "", "v1", "Node", {"get", "patch", "update"}}};
    info_.has_status = true;
    info_.allow_create_on_update = false;
    info_.allow_unconditional_update = true;
    info_.return_deleted_object = false;
  }

  const KindInfo& info() const override { return info_; }

  // Nodes are created by their kubelet with a status; PrepareForCreate keeps it.
  void prepare_for_create(json& obj) const override {}

  void apply_defaults(json& obj) const override {
    json& spec = obj["spec"];
    if (!spec.is_object()) spec = json::object();
    // Convert_v1_NodeSpec_To_core_NodeSpec and back: podCIDR mirrors podCIDRs[0].
    const json& cidrs = spec.contains("podCIDRs") ? spec["podCIDRs"] : json();
    if ((!cidrs.is_array() || cidrs.empty()) && spec.contains("podCIDR") && !str(spec["podCIDR"]).empty())
      spec["podCIDRs"] = json::array({spec["podCIDR"]});
    if (spec.contains("podCIDRs") && spec["podCIDRs"].is_array() && !spec["podCIDRs"].empty())
      spec["podCIDR"] = spec["podCIDRs"][0];

    json& status = obj["status"];
    if (!status.is_object()) status = json::object();
    // SetDefaults_NodeStatus: allocatable defaults to capacity.
    if ((!status.contains("allocatable") || status["allocatable"].is_null()) && status.contains("capacity") &&
        status["capacity"].is_object())
      status["allocatable"] = status["capacity"];
    // Non-omitempty struct fields Go always writes: clients (the Python client's models) expect them.
    json& daemon = status["daemonEndpoints"];
    if (!daemon.is_object()) daemon = json::object();
    json& kubelet = daemon["kubeletEndpoint"];
    if (!kubelet.is_object()) kubelet = json::object();
    if (!kubelet.contains("Port")) kubelet["Port"] = 0;
    json& node_info = status["nodeInfo"];
    if (!node_info.is_object()) node_info = json::object();
    for (const char* f : {"machineID", "systemUUID", "bootID", "kernelVersion", "osImage", "containerRuntimeVersion",
                          "kubeletVersion", "kubeProxyVersion", "operatingSystem", "architecture"})
      if (!node_info.contains(f) || node_info[f].is_null()) node_info[f] = "";
  }

  void validate(const json& obj, std::vector<api::Cause>& errors) const override {
    validate_taints(at(obj, {"spec", "taints"}), errors);
    auto cidrs = string_list(at(obj, {"spec", "podCIDRs"}));
    for (std::size_t i = 0; i < cidrs.size(); ++i)
      if (!is_cidr(cidrs[i]))
        errors.push_back(api::field_invalid("spec.podCIDRs[" + std::to_string(i) + "]", cidrs[i],
                                            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"));
    if (cidrs.size() > 1) {
      int v4 = 0, v6 = 0;
      bool all_valid = true;
      for (const auto& c : cidrs) {
        bool is6 = false;
        if (!is_cidr(c, &is6)) all_valid = false;
        (is6 ? v6 : v4)++;
      }
      if (all_valid && (v4 != 1 || v6 != 1 || cidrs.size() > 2))
        errors.push_back(api::field_invalid_rendered("spec.podCIDRs", api::go_string_slice(cidrs),
                                                     "may specify no more than one CIDR for each IP family"));
      std::set<std::string> seen;
      for (std::size_t i = 0; i < cidrs.size(); ++i)
        if (!seen.insert(cidrs[i]).second)
          errors.push_back(api::field_duplicate("spec.podCIDRs[" + std::to_string(i) + "]", cidrs[i]));
    }
  }

  // ValidateNodeUpdate: podCIDRs and providerID are set once; addresses are unique.
  void validate_update(const json& obj, const json& old, std::vector<api::Cause>& errors) const override {
    validate_taints(at(obj, {"spec", "taints"}), errors);
    const json& addresses = at(obj, {"status", "addresses"});
    if (addresses.is_array()) {
      std::set<std::pair<std::string, std::string>> seen;
      for (std::size_t i = 0; i < addresses.size(); ++i) {
        std::string type = str(at(addresses[i], {"type"})), address = str(at(addresses[i], {"address"}));
        if (!seen.insert({type, address}).second) {
          api::Cause c = api::field_duplicate("status.addresses[" + std::to_string(i) + "]", json::object());
          c.message = "Duplicate value: core.NodeAddress{Type:" + api::go_quote(type) +
                      ", Address:" + api::go_quote(address) + "}";
          errors.push_back(c);
        }
      }
    }
    auto old_cidrs = string_list(at(old, {"spec", "podCIDRs"}));
    auto new_cidrs = string_list(at(obj, {"spec", "podCIDRs"}));
    const char* cidr_msg = "node updates may not change podCIDR except from \"\" to valid";
    if (!old_cidrs.empty()) {
      if (old_cidrs.size() != new_cidrs.size()) {
        errors.push_back(api::field_forbidden("spec.podCIDRs", cidr_msg));
      } else {
        for (std::size_t i = 0; i < old_cidrs.size(); ++i)
          if (old_cidrs[i] != new_cidrs[i]) errors.push_back(api::field_forbidden("spec.podCIDRs", cidr_msg));
      }
    }
    std::string old_provider = str(at(old, {"spec", "providerID"}));
    if (!old_provider.empty() && old_provider != str(at(obj, {"spec", "providerID"})))
      errors.push_back(api::field_forbidden("spec.providerID", "node updates may not change providerID except from \"\" to valid"));
    if (at(obj, {"spec", "externalID"}) != at(old, {"spec", "externalID"}))
      errors.push_back(api::field_forbidden("spec.externalID", "may not be updated"));
  }

  std::optional<std::string> field_value(const json& obj, const std::string& field) const override {
    if (field == "spec.unschedulable") {
      const json& u = at(obj, {"spec", "unschedulable"});
      return (u.is_boolean() && u.get<bool>()) ? "true" : "false";
    }
    return std::nullopt;
  }

  std::vector<Column> columns() const override {
    auto def = Strategy::columns();  // Name, Age
    const char* addresses =
        "List of addresses reachable to the node. Queried from cloud provider, if available. More info: "
        "https://kubernetes.io/docs/reference/node/node-status/#addresses";
    return {def[0],
            {"Status", "string", "", "The status of the node", 0},
            {"Roles", "string", "", "The roles of the node", 0},
            def[1],
            {"Version", "string", "", "Kubelet Version reported by the node.", 0},
            {"Internal-IP", "string", "", addresses, 1},
            {"External-IP", "string", "", addresses, 1},
            {"OS-Image", "string", "", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).", 1},
            {"Kernel-Version", "string", "", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1},
            {"Container-Runtime", "string", "", "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).", 1}};
  }

  // printNode.
  json cells(const json& obj) const override {
    std::vector<std::string> status;
    const json& conditions = at(obj, {"status", "conditions"});
    if (conditions.is_array()) {
      // Only the Ready condition is shown (NodeAllConditions); the last entry of a type wins.
      const json* ready = nullptr;
      for (const auto& c : conditions)
        if (str(at(c, {"type"})) == "Ready") ready = &c;
      if (ready) status.push_back(str(at(*ready, {"status"})) == "True" ? "Ready" : "NotReady");
    }
    if (status.empty()) status.push_back("Unknown");
    const json& unsched = at(obj, {"spec", "unschedulable"});
    if (unsched.is_boolean() && unsched.get<bool>()) status.push_back("SchedulingDisabled");
    std::string status_text;
    for (std::size_t i = 0; i < status.size(); ++i) status_text += (i ? "," : "") + status[i];

    // findNodeRoles: node-role.kubernetes.io/<role> keys and kubernetes.io/role values, sorted.
    std::set<std::string> roles;
    const json& labels = at(obj, {"metadata", "labels"});
    if (labels.is_object()) {
      for (const auto& [k, v] : labels.items()) {
        static const std::string prefix = "node-role.kubernetes.io/";
        if (k.rfind(prefix, 0) == 0) {
          if (k.size() > prefix.size()) roles.insert(k.substr(prefix.size()));
        } else if (k == "kubernetes.io/role" && !str(v).empty()) {
          roles.insert(str(v));
        }
      }
    }
    std::string roles_text;
    for (const auto& r : roles) roles_text += (roles_text.empty() ? "" : ",") + r;
    if (roles_text.empty()) roles_text = "<none>";

    auto address_of = [&](const char* type) -> std::string {
      const json& addrs = at(obj, {"status", "addresses"});
      if (addrs.is_array())
        for (const auto& a : addrs)
          if (str(at(a, {"type"})) == type) return str(at(a, {"address"}));
      return "<none>";
    };
    auto info_or_unknown = [&](const char* f) {
      std::string v = str(at(obj, {"status", "nodeInfo", f}));
      return v.empty() ? std::string("<unknown>") : v;
    };
    return json::array({at(obj, {"metadata", "name"}), status_text, roles_text, age(obj),
                        str(at(obj, {"status", "nodeInfo", "kubeletVersion"})), address_of("InternalIP"),
                        address_of("ExternalIP"), info_or_unknown("osImage"), info_or_unknown("kernelVersion"),
                        info_or_unknown("containerRuntimeVersion")});
  }

 private:
  KindInfo info_;
};

}  // namespace

std::unique_ptr<Strategy> make_node_strategy() { return std::make_unique<NodeStrategy>(); }

}  // namespace berth::apiserver
