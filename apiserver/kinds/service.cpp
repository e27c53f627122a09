// core/v1 Service: pkg/registry/core/service/strategy.go (NormalizeClusterIPs,
// dropTypeDependentFields), the allocation its REST storage does (storage/alloc.go: cluster IPs
// from 10.96.0.0/12, node ports from 30000-32767, IP families), SetDefaults_Service,
// ValidateService / ValidateServiceUpdate, and printService for the Table.
//
// Allocation picks values at random; claim() then checks them against the other services (a
// value the client asked for that another service holds is refused with the allocator's words,
// one the server picked is picked again). Upstream keeps allocation bitmaps, which also close
// the race between two creates that Berth's read of the other services leaves open.
#include <arpa/inet.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "api/validation.h"
#include "apiserver/errors.h"
#include "apiserver/kinds/other_kinds.h"

namespace berth::apiserver {
namespace {

constexpr std::uint32_t kServiceNet = 0x0A600000;   // 10.96.0.0
constexpr std::uint32_t kServiceMask = 0xFFF00000;  // /12
constexpr const char* kServiceCIDR = "10.96.0.0/12";
constexpr int kNodePortMin = 30000, kNodePortMax = 32767;

std::string str(const json& j) { return j.is_string() ? j.get<std::string>() : std::string(); }
std::int64_t int_of(const json& j) { return j.is_number_integer() ? j.get<std::int64_t>() : 0; }

std::mt19937_64& rng() {
  thread_local std::mt19937_64 r{std::random_device{}()};
  return r;
}

bool parse_v4(const std::string& s, std::uint32_t* out = nullptr) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return false;
  if (out) *out = ntohl(a.s_addr);
  return true;
}
bool parse_v6(const std::string& s, unsigned char* out = nullptr) {
  unsigned char buf[16];
  if (inet_pton(AF_INET6, s.c_str(), buf) != 1) return false;
  if (out) std::copy(buf, buf + 16, out);
  return true;
}
bool is_ip(const std::string& s) { return parse_v4(s) || parse_v6(s); }
bool is_cidr(std::string s) {
  auto slash = s.find('/');
  if (slash == std::string::npos || slash + 1 >= s.size() || s.size() - slash > 4) return false;
  std::string bits = s.substr(slash + 1);
  if (!std::all_of(bits.begin(), bits.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
  int n = std::stoi(bits);
  std::string addr = s.substr(0, slash);
  if (parse_v4(addr)) return n <= 32;
  if (parse_v6(addr)) return n <= 128;
  return false;
}

std::string ip_string(std::uint32_t ip) {
  return std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 255) + "." + std::to_string((ip >> 8) & 255) +
         "." + std::to_string(ip & 255);
}

// A dynamic address: upstream's allocator hands out the upper band first and keeps the lowest
// 256 addresses of a /12 for static assignment (and never the network or broadcast address).
std::string allocate_cluster_ip() {
  std::uniform_int_distribution<std::uint32_t> d(256, (~kServiceMask) - 1);
  return ip_string(kServiceNet + d(rng()));
}

// A node port at random, held neither by other services (taken) nor by this one (own).
int free_node_port(const std::set<std::int64_t>& taken, const std::set<std::int64_t>& own) {
  std::uniform_int_distribution<int> d(kNodePortMin, kNodePortMax);
  int port;
  do port = d(rng());
  while (taken.count(port) || own.count(port));
  return port;
}

std::vector<std::string> string_list(const json& j) {
  std::vector<std::string> out;
  if (j.is_array())
    for (const auto& v : j) out.push_back(str(v));
  return out;
}

std::string type_of(const json& svc) { return str(at(svc, {"spec", "type"})); }
bool needs_cluster_ip(const json& svc) { return type_of(svc) != "ExternalName"; }
bool needs_node_port(const json& svc) {
  std::string t = type_of(svc);
  if (t == "NodePort") return true;
  if (t == "LoadBalancer") {
    const json& a = at(svc, {"spec", "allocateLoadBalancerNodePorts"});
    return !a.is_boolean() || a.get<bool>();
  }
  return false;
}
bool needs_hc_node_port(const json& svc) {
  return type_of(svc) == "LoadBalancer" && str(at(svc, {"spec", "externalTrafficPolicy"})) == "Local";
}
bool externally_accessible(const json& svc) {
  std::string t = type_of(svc);
  return t == "LoadBalancer" || t == "NodePort" ||
         (t == "ClusterIP" && at(svc, {"spec", "externalIPs"}).is_array() && !at(svc, {"spec", "externalIPs"}).empty());
}
bool is_headless(const json& svc) {
  const json& ips = at(svc, {"spec", "clusterIPs"});
  return ips.is_array() && ips.size() == 1 && str(ips[0]) == "None";
}

// SetDefaults_Service.
void set_defaults(json& svc) {
  json& spec = svc["spec"];
  if (!spec.is_object()) spec = json::object();
  if (str(at(spec, {"sessionAffinity"})).empty()) spec["sessionAffinity"] = "None";
  if (str(at(spec, {"sessionAffinity"})) == "None") spec.erase("sessionAffinityConfig");
  if (str(at(spec, {"sessionAffinity"})) == "ClientIP") {
    const json& t = at(spec, {"sessionAffinityConfig", "clientIP", "timeoutSeconds"});
    if (t.is_null()) spec["sessionAffinityConfig"] = {{"clientIP", {{"timeoutSeconds", 10800}}}};
  }
  if (str(at(spec, {"type"})).empty()) spec["type"] = "ClusterIP";
  if (spec.contains("ports") && at(spec, {"ports"}).is_array()) {
    for (auto& p : spec["ports"]) {
      if (!p.is_object()) continue;
      if (str(at(p, {"protocol"})).empty()) p["protocol"] = "TCP";
      const json& tp = p.contains("targetPort") ? p["targetPort"] : json();
      if (tp.is_null() || (tp.is_number_integer() && tp.get<std::int64_t>() == 0) ||
          (tp.is_string() && tp.get<std::string>().empty()))
        p["targetPort"] = p.contains("port") ? p["port"] : json(0);
    }
  }
  if (externally_accessible(svc) && str(at(spec, {"externalTrafficPolicy"})).empty()) spec["externalTrafficPolicy"] = "Cluster";
  std::string type = str(at(spec, {"type"}));
  if ((!spec.contains("internalTrafficPolicy") || spec["internalTrafficPolicy"].is_null()) &&
      (type == "NodePort" || type == "LoadBalancer" || type == "ClusterIP"))
    spec["internalTrafficPolicy"] = "Cluster";
  if (type == "LoadBalancer" && (!spec.contains("allocateLoadBalancerNodePorts") || spec["allocateLoadBalancerNodePorts"].is_null()))
    spec["allocateLoadBalancerNodePorts"] = true;
  if (!svc["status"].is_object()) svc["status"] = json::object();
  if (!svc["status"]["loadBalancer"].is_object()) svc["status"]["loadBalancer"] = json::object();
}

// The allocation done when a service is created or updated: cluster IPs, families, node ports.
void allocate(json& svc) {
  json& spec = svc["spec"];
  // NormalizeClusterIPs (create): a client that set only clusterIP gets clusterIPs to match.
  if (!str(at(spec, {"clusterIP"})).empty() && (!at(spec, {"clusterIPs"}).is_array() || at(spec, {"clusterIPs"}).empty()))
    spec["clusterIPs"] = json::array({spec["clusterIP"]});
  if (needs_cluster_ip(svc)) {
    if (str(at(spec, {"clusterIP"})).empty() && (!at(spec, {"clusterIPs"}).is_array() || at(spec, {"clusterIPs"}).empty())) {
      std::string ip = allocate_cluster_ip();
      spec["clusterIP"] = ip;
      spec["clusterIPs"] = json::array({ip});
    }
    bool headless_selectorless = is_headless(svc) && (!at(spec, {"selector"}).is_object() || at(spec, {"selector"}).empty());
    if (!spec.contains("ipFamilyPolicy") || spec["ipFamilyPolicy"].is_null())
      spec["ipFamilyPolicy"] = headless_selectorless ? "RequireDualStack" : "SingleStack";
    if (!at(spec, {"ipFamilies"}).is_array() || at(spec, {"ipFamilies"}).empty()) spec["ipFamilies"] = json::array({"IPv4"});
  }
  // The service's own ports; claim() then checks them against the other services.
  std::set<std::int64_t> used;
  if (at(spec, {"ports"}).is_array())
    for (const auto& p : at(spec, {"ports"})) used.insert(int_of(at(p, {"nodePort"})));
  if (needs_node_port(svc) && at(spec, {"ports"}).is_array()) {
    for (auto& p : spec["ports"]) {
      if (!p.is_object() || int_of(at(p, {"nodePort"})) != 0) continue;
      p["nodePort"] = free_node_port({}, used);
      used.insert(int_of(p["nodePort"]));
    }
  }
  if (needs_hc_node_port(svc) && int_of(at(spec, {"healthCheckNodePort"})) == 0)
    spec["healthCheckNodePort"] = free_node_port({}, used);
}

bool same(const json& a, const json& b) {
  auto empty = [](const json& j) {
    return j.is_null() || (j.is_array() && j.empty()) || (j.is_string() && j.get<std::string>().empty()) ||
           (j.is_number() && j == 0);
  };
  return a == b || (empty(a) && empty(b));
}

std::vector<std::int64_t> node_ports(const json& svc) {
  std::vector<std::int64_t> out;
  const json& ports = at(svc, {"spec", "ports"});
  if (ports.is_array())
    for (const auto& p : ports) out.push_back(int_of(at(p, {"nodePort"})));
  return out;
}

// patchAllocatedValues: a client that left out what the server allocated keeps it.
void patch_allocated_values(json& svc, const json& old) {
  json& spec = svc["spec"];
  if (needs_cluster_ip(old) && needs_cluster_ip(svc)) {
    if (str(at(spec, {"clusterIP"})).empty() && at(old, {"spec", "clusterIP"}).is_string())
      spec["clusterIP"] = at(old, {"spec", "clusterIP"});
    const json& old_ips = at(old, {"spec", "clusterIPs"});
    if ((!at(spec, {"clusterIPs"}).is_array() || at(spec, {"clusterIPs"}).empty()) && old_ips.is_array() && !old_ips.empty())
      spec["clusterIPs"] = old_ips;
  }
  if (needs_node_port(old) && needs_node_port(svc) && at(spec, {"ports"}).is_array()) {
    std::set<std::int64_t> old_used, new_used, used;
    for (auto p : node_ports(old))
      if (p) old_used.insert(p);
    for (auto p : node_ports(svc))
      if (p) new_used.insert(p);
    std::set_intersection(old_used.begin(), old_used.end(), new_used.begin(), new_used.end(),
                          std::inserter(used, used.begin()));
    std::map<std::string, std::int64_t> by_name;
    const json& old_ports = at(old, {"spec", "ports"});
    if (old_ports.is_array())
      for (const auto& p : old_ports) by_name[str(at(p, {"name"}))] = int_of(at(p, {"nodePort"}));
    for (auto& p : spec["ports"]) {
      if (!p.is_object() || int_of(at(p, {"nodePort"})) != 0) continue;
      auto it = by_name.find(str(at(p, {"name"})));
      std::int64_t old_val = it == by_name.end() ? 0 : it->second;
      if (old_val && !used.count(old_val)) p["nodePort"] = old_val;
    }
  }
  if (needs_hc_node_port(old) && needs_hc_node_port(svc) && int_of(at(spec, {"healthCheckNodePort"})) == 0 &&
      int_of(at(old, {"spec", "healthCheckNodePort"})) != 0)
    spec["healthCheckNodePort"] = at(old, {"spec", "healthCheckNodePort"});
}

// NormalizeClusterIPs for an update.
void normalize_cluster_ips_update(json& svc, const json& old) {
  json& spec = svc["spec"];
  const json& old_ips = at(old, {"spec", "clusterIPs"});
  std::string old_ip = str(at(old, {"spec", "clusterIP"}));
  if (old_ips.is_array() && !old_ips.empty() && (!at(spec, {"clusterIPs"}).is_array() || at(spec, {"clusterIPs"}).empty())) {
    if (old_ip == str(at(spec, {"clusterIP"}))) spec["clusterIPs"] = old_ips;
  }
  std::string new_ip = str(at(spec, {"clusterIP"}));
  if (old_ip != new_ip) {
    bool same_ips = same(spec.contains("clusterIPs") ? spec["clusterIPs"] : json(), old_ips);
    if (!old_ip.empty() && new_ip.empty()) {
      if (same_ips) spec.erase("clusterIPs");
    } else if (same_ips) {
      spec["clusterIPs"] = json::array({spec["clusterIP"]});
    }
  }
}

// dropTypeDependentFields: what no longer applies after a change of type, unless the client
// changed it itself.
void drop_type_dependent_fields(json& svc, const json& old) {
  json& spec = svc["spec"];
  const json& os = at(old, {"spec"});
  auto field = [&](const char* f) -> json { return spec.contains(f) ? spec[f] : json(); };
  if (needs_cluster_ip(old) && !needs_cluster_ip(svc)) {
    if (same(field("clusterIP"), at(os, {"clusterIP"})) && same(field("clusterIPs"), at(os, {"clusterIPs"}))) {
      spec.erase("clusterIP");
      spec.erase("clusterIPs");
    }
    if (same(field("ipFamilies"), at(os, {"ipFamilies"}))) spec.erase("ipFamilies");
    if (same(field("ipFamilyPolicy"), at(os, {"ipFamilyPolicy"}))) spec.erase("ipFamilyPolicy");
  }
  if (needs_node_port(old) && !needs_node_port(svc) && node_ports(svc) == node_ports(old) && at(spec, {"ports"}).is_array())
    for (auto& p : spec["ports"])
      if (p.is_object()) p.erase("nodePort");
  if (needs_hc_node_port(old) && !needs_hc_node_port(svc) &&
      same(field("healthCheckNodePort"), at(os, {"healthCheckNodePort"})))
    spec.erase("healthCheckNodePort");
  if (type_of(old) == "LoadBalancer" && type_of(svc) != "LoadBalancer") {
    if (field("allocateLoadBalancerNodePorts").is_boolean() && at(os, {"allocateLoadBalancerNodePorts"}).is_boolean() &&
        field("allocateLoadBalancerNodePorts") == at(os, {"allocateLoadBalancerNodePorts"}))
      spec.erase("allocateLoadBalancerNodePorts");
    if (same(field("loadBalancerClass"), at(os, {"loadBalancerClass"}))) spec.erase("loadBalancerClass");
  }
  if (externally_accessible(old) && !externally_accessible(svc) &&
      same(field("externalTrafficPolicy"), at(os, {"externalTrafficPolicy"})))
    spec.erase("externalTrafficPolicy");
  if (type_of(svc) != "LoadBalancer") {
    if (!svc["status"].is_object()) svc["status"] = json::object();
    svc["status"]["loadBalancer"] = json::object();
  }
}

// %#v of the core.ServicePort key upstream reports duplicate ports with.
std::string go_service_port_key(const std::string& protocol, std::int64_t port) {
  return "core.ServicePort{Name:\"\", Protocol:" + api::go_quote(protocol) +
         ", AppProtocol:(*string)(nil), Port:" + std::to_string(port) +
         ", TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}";
}

std::vector<std::string> port_num_errors(std::int64_t port) {
  if (port < 1 || port > 65535) return {"must be between 1 and 65535, inclusive"};
  return {};
}

// validation.IsValidPortName.
std::vector<std::string> port_name_errors(const std::string& name) {
  std::vector<std::string> errs;
  if (name.size() > 15) errs.push_back("must be no more than 15 characters");
  bool charset = !name.empty(), letter = false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) charset = false;
    if (c >= 'a' && c <= 'z') letter = true;
  }
  if (!charset) errs.push_back("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
  if (!letter) errs.push_back("must contain at least one letter (a-z)");
  if (name.find("--") != std::string::npos) errs.push_back("must not contain consecutive hyphens");
  if (!name.empty() && (name.front() == '-' || name.back() == '-')) errs.push_back("must not begin or end with a hyphen");
  return errs;
}

// ValidateNonSpecialIP for externalIPs.
std::optional<std::string> special_ip(const std::string& ip) {
  std::uint32_t v4;
  if (parse_v4(ip, &v4)) {
    if (v4 == 0) return "may not be unspecified (0.0.0.0)";
    if ((v4 >> 24) == 127) return "may not be in the loopback range (127.0.0.0/8, ::1/128)";
    if ((v4 >> 16) == ((169u << 8) | 254u)) return "may not be in the link-local range (169.254.0.0/16, fe80::/10)";
    if ((v4 >> 8) == (224u << 16)) return "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)";
    return std::nullopt;
  }
  unsigned char b[16];
  if (parse_v6(ip, b)) {
    bool zero = std::all_of(b, b + 16, [](unsigned char c) { return c == 0; });
    if (zero) return "may not be unspecified (::)";
    bool loop = std::all_of(b, b + 15, [](unsigned char c) { return c == 0; }) && b[15] == 1;
    if (loop) return "may not be in the loopback range (127.0.0.0/8, ::1/128)";
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return "may not be in the link-local range (169.254.0.0/16, fe80::/10)";
    if (b[0] == 0xff && (b[1] & 0x0f) == 0x02) return "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)";
  }
  return std::nullopt;
}

const char* kBadIP = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
const char* kBadCIDR = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

// ValidateServiceClusterIPsRelatedFields.
void validate_cluster_ips(const json& svc, std::vector<api::Cause>& errors) {
  if (type_of(svc) == "ExternalName") return;
  const json& spec = at(svc, {"spec"});
  std::string cluster_ip = str(at(spec, {"clusterIP"}));
  auto ips = string_list(at(spec, {"clusterIPs"}));
  std::string rendered = api::go_string_slice(ips, true);
  if (!cluster_ip.empty()) {
    if (ips.empty()) errors.push_back(api::field_required("spec.clusterIPs"));
    else if (ips[0] != cluster_ip)
      errors.push_back(api::field_invalid_rendered("spec.clusterIPs", rendered, "first value must match `clusterIP`"));
  } else if (!ips.empty()) {
    errors.push_back(api::field_invalid_rendered("spec.clusterIPs", rendered, "must be empty when `clusterIP` is not specified"));
  }
  auto families = string_list(at(spec, {"ipFamilies"}));
  std::set<std::string> seen;
  for (std::size_t i = 0; i < families.size(); ++i) {
    std::string path = "spec.ipFamilies[" + std::to_string(i) + "]";
    if (families[i] != "IPv4" && families[i] != "IPv6")
      errors.push_back(api::field_not_supported(path, families[i], {"IPv4", "IPv6"}));
    if (!seen.insert(families[i]).second) errors.push_back(api::field_duplicate(path, families[i]));
  }
  const json& policy = at(spec, {"ipFamilyPolicy"});
  if (policy.is_string()) {
    std::string p = policy.get<std::string>();
    if (p != "SingleStack" && p != "PreferDualStack" && p != "RequireDualStack")
      errors.push_back(api::field_not_supported("spec.ipFamilyPolicy", p, {"PreferDualStack", "RequireDualStack", "SingleStack"}));
  }
  bool invalid_ips = false;
  for (std::size_t i = 0; i < ips.size(); ++i) {
    if (i == 0 && ips[i] == "None") {
      if (ips.size() > 1) {
        invalid_ips = true;
        errors.push_back(api::field_invalid_rendered("spec.clusterIPs", rendered, "'None' must be the first and only value"));
      }
      continue;
    }
    if (!is_ip(ips[i])) {
      invalid_ips = true;
      errors.push_back(api::field_invalid("spec.clusterIPs[" + std::to_string(i) + "]", ips[i], kBadIP));
    }
  }
  if (ips.size() > 2) errors.push_back(api::field_invalid_rendered("spec.clusterIPs", rendered, "may only hold up to 2 values"));
  if (invalid_ips) return;
  if (ips.size() > 1) {
    int v4 = 0, v6 = 0;
    for (const auto& ip : ips) (parse_v4(ip) ? v4 : v6)++;
    if (v4 != 1 || v6 != 1)
      errors.push_back(api::field_invalid_rendered("spec.clusterIPs", rendered, "may specify no more than one IP for each IP family"));
  }
  if (!is_headless(svc) && !ips.empty() && !families.empty()) {
    for (std::size_t i = 0; i < ips.size() && i < families.size(); ++i) {
      bool v6 = parse_v6(ips[i]);
      std::string path = "spec.clusterIPs[" + std::to_string(i) + "]";
      if (families[i] == "IPv4" && v6)
        errors.push_back(api::field_invalid(path, ips[i], "expected an IPv4 value as indicated by `ipFamilies[" + std::to_string(i) + "]`"));
      if (families[i] == "IPv6" && !v6)
        errors.push_back(api::field_invalid(path, ips[i], "expected an IPv6 value as indicated by `ipFamilies[" + std::to_string(i) + "]`"));
    }
  }
}

// ValidateService (metadata aside, which the generic path checks).
void validate_service(const json& svc, std::vector<api::Cause>& errors) {
  const json& spec = at(svc, {"spec"});
  std::string type = type_of(svc);
  const json& ports = at(spec, {"ports"});
  std::size_t nports = ports.is_array() ? ports.size() : 0;
  bool headless = is_headless(svc);
  if (nports == 0 && !headless && type != "ExternalName") errors.push_back(api::field_required("spec.ports"));
  auto ips = string_list(at(spec, {"clusterIPs"}));
  if (type == "LoadBalancer" && headless)
    errors.push_back(api::field_invalid("spec.clusterIPs[0]", ips[0], "may not be set to 'None' for LoadBalancer services"));
  if (type == "NodePort" && headless)
    errors.push_back(api::field_invalid("spec.clusterIPs[0]", ips[0], "may not be set to 'None' for NodePort services"));
  if (type == "ExternalName") {
    if (!ips.empty()) errors.push_back(api::field_forbidden("spec.clusterIPs", "may not be set for ExternalName services"));
    if (at(spec, {"ipFamilies"}).is_array() && !at(spec, {"ipFamilies"}).empty())
      errors.push_back(api::field_forbidden("spec.ipFamilies", "may not be set for ExternalName services"));
    if (!at(spec, {"ipFamilyPolicy"}).is_null())
      errors.push_back(api::field_forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"));
    std::string cname = str(at(spec, {"externalName"}));
    if (!cname.empty() && cname.back() == '.') cname.pop_back();
    if (cname.empty()) errors.push_back(api::field_required("spec.externalName"));
    else
      for (const auto& msg : api::is_dns1123_subdomain(cname))
        errors.push_back(api::field_invalid("spec.externalName", cname, msg));
  }

  std::set<std::string> names;
  for (std::size_t i = 0; i < nports; ++i) {
    const json& p = ports[i];
    std::string path = "spec.ports[" + std::to_string(i) + "]";
    std::string name = str(at(p, {"name"}));
    if (nports > 1 && name.empty()) {
      errors.push_back(api::field_required(path + ".name"));
    } else if (!name.empty()) {
      for (const auto& msg : api::is_dns1123_label(name)) errors.push_back(api::field_invalid(path + ".name", name, msg));
      if (!names.insert(name).second) errors.push_back(api::field_duplicate(path + ".name", name));
    }
    std::int64_t port = int_of(at(p, {"port"}));
    for (const auto& msg : port_num_errors(port)) errors.push_back(api::field_invalid(path + ".port", port, msg));
    std::string protocol = str(at(p, {"protocol"}));
    if (protocol.empty()) errors.push_back(api::field_required(path + ".protocol"));
    else if (protocol != "TCP" && protocol != "UDP" && protocol != "SCTP")
      errors.push_back(api::field_not_supported(path + ".protocol", protocol, {"SCTP", "TCP", "UDP"}));
    const json& target = at(p, {"targetPort"});
    if (target.is_number_integer()) {
      for (const auto& msg : port_num_errors(target.get<std::int64_t>()))
        errors.push_back(api::field_invalid(path + ".targetPort", target, msg));
    } else if (target.is_string()) {
      for (const auto& msg : port_name_errors(target.get<std::string>()))
        errors.push_back(api::field_invalid(path + ".targetPort", target, msg));
    }
    const json& app = at(p, {"appProtocol"});
    if (app.is_string())
      for (const auto& msg : api::is_qualified_name(app.get<std::string>()))
        errors.push_back(api::field_invalid(path + ".appProtocol", app, msg));
  }

  const json& selector = at(spec, {"selector"});
  if (selector.is_object()) api::validate_labels(selector, "spec.selector", errors);

  std::string affinity = str(at(spec, {"sessionAffinity"}));
  if (affinity.empty()) errors.push_back(api::field_required("spec.sessionAffinity"));
  else if (affinity != "ClientIP" && affinity != "None")
    errors.push_back(api::field_not_supported("spec.sessionAffinity", affinity, {"ClientIP", "None"}));
  if (affinity == "ClientIP") {
    const json& cfg = at(spec, {"sessionAffinityConfig"});
    const char* when = "when session affinity type is ClientIP";
    if (!cfg.is_object()) errors.push_back(api::field_required("spec.sessionAffinityConfig", when));
    else if (!at(cfg, {"clientIP"}).is_object()) errors.push_back(api::field_required("spec.sessionAffinityConfig.clientIP", when));
    else if (at(cfg, {"clientIP", "timeoutSeconds"}).is_null())
      errors.push_back(api::field_required("spec.sessionAffinityConfig.clientIP.timeoutSeconds", when));
    else {
      std::int64_t t = int_of(at(cfg, {"clientIP", "timeoutSeconds"}));
      if (t <= 0 || t > 86400)
        errors.push_back(api::field_invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", t,
                                            "must be greater than 0 and less than 86400"));
    }
  } else if (affinity == "None" && !at(spec, {"sessionAffinityConfig"}).is_null()) {
    errors.push_back(api::field_forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"));
  }

  validate_cluster_ips(svc, errors);

  auto external_ips = string_list(at(spec, {"externalIPs"}));
  for (std::size_t i = 0; i < external_ips.size(); ++i) {
    std::string path = "spec.externalIPs[" + std::to_string(i) + "]";
    if (!is_ip(external_ips[i])) errors.push_back(api::field_invalid(path, external_ips[i], kBadIP));
    else if (auto why = special_ip(external_ips[i])) errors.push_back(api::field_invalid(path, external_ips[i], *why));
  }

  if (type.empty()) errors.push_back(api::field_required("spec.type"));
  else if (type != "ClusterIP" && type != "NodePort" && type != "LoadBalancer" && type != "ExternalName")
    errors.push_back(api::field_not_supported("spec.type", type, {"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"}));

  if (type == "ClusterIP")
    for (std::size_t i = 0; i < nports; ++i)
      if (int_of(at(ports[i], {"nodePort"})) != 0)
        errors.push_back(api::field_forbidden("spec.ports[" + std::to_string(i) + "].nodePort",
                                              "may not be used when `type` is 'ClusterIP'"));

  std::set<std::pair<std::string, std::int64_t>> node_port_keys, port_keys;
  for (std::size_t i = 0; i < nports; ++i) {
    std::string protocol = str(at(ports[i], {"protocol"}));
    std::int64_t np = int_of(at(ports[i], {"nodePort"}));
    if (np != 0 && !node_port_keys.insert({protocol, np}).second)
      errors.push_back(api::field_duplicate("spec.ports[" + std::to_string(i) + "].nodePort", np));
  }
  for (std::size_t i = 0; i < nports; ++i) {
    std::string protocol = str(at(ports[i], {"protocol"}));
    std::int64_t port = int_of(at(ports[i], {"port"}));
    if (!port_keys.insert({protocol, port}).second) {
      api::Cause c = api::field_duplicate("spec.ports[" + std::to_string(i) + "]", json::object());
      c.message = "Duplicate value: " + go_service_port_key(protocol, port);
      errors.push_back(c);
    }
  }

  auto ranges = string_list(at(spec, {"loadBalancerSourceRanges"}));
  if (!ranges.empty()) {
    // Upstream's path for this field is capitalized.
    if (type != "LoadBalancer")
      errors.push_back(api::field_forbidden("spec.LoadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'"));
    for (std::size_t i = 0; i < ranges.size(); ++i) {
      std::string v = ranges[i];
      v.erase(0, v.find_first_not_of(" \t\n\r"));
      v.erase(v.find_last_not_of(" \t\n\r") + 1);
      if (!is_cidr(v)) errors.push_back(api::field_invalid("spec.LoadBalancerSourceRanges[" + std::to_string(i) + "]", v, kBadCIDR));
    }
  }

  // validateServiceExternalTrafficPolicy.
  std::string etp = str(at(spec, {"externalTrafficPolicy"}));
  if (!externally_accessible(svc)) {
    if (!etp.empty())
      errors.push_back(api::field_invalid("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services"));
  } else if (etp.empty()) {
    errors.push_back(api::field_required("spec.externalTrafficPolicy"));
  } else if (etp != "Cluster" && etp != "Local") {
    errors.push_back(api::field_not_supported("spec.externalTrafficPolicy", etp, {"Cluster", "Local"}));
  }
  std::int64_t hc = int_of(at(spec, {"healthCheckNodePort"}));
  if (!needs_hc_node_port(svc)) {
    if (hc != 0)
      errors.push_back(api::field_invalid("spec.healthCheckNodePort", hc,
                                          "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"));
  } else if (hc == 0) {
    errors.push_back(api::field_required("spec.healthCheckNodePort"));
  } else {
    for (const auto& msg : port_num_errors(hc)) errors.push_back(api::field_invalid("spec.healthCheckNodePort", hc, msg));
  }

  // validateServiceInternalTrafficFieldsValue.
  const json& itp = at(spec, {"internalTrafficPolicy"});
  if (itp.is_null()) {
    if (type == "NodePort" || type == "LoadBalancer" || type == "ClusterIP")
      errors.push_back(api::field_required("spec.internalTrafficPolicy", "must be specified"));
  } else if (str(itp) != "Cluster" && str(itp) != "Local") {
    errors.push_back(api::field_not_supported("spec.internalTrafficPolicy", itp, {"Cluster", "Local"}));
  }

  if (type != "LoadBalancer") {
    if (!at(spec, {"allocateLoadBalancerNodePorts"}).is_null())
      errors.push_back(api::field_forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'"));
    if (!at(spec, {"loadBalancerClass"}).is_null())
      errors.push_back(api::field_forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'"));
  } else if (at(spec, {"allocateLoadBalancerNodePorts"}).is_null()) {
    errors.push_back(api::field_required("allocateLoadBalancerNodePorts"));
  }
}

// What the allocator rejects: addresses outside the service range, node ports outside theirs.
// Only values not already held by `old` are checked (an update keeps what it had).
void validate_allocation(const json& svc, const json* old, std::vector<api::Cause>& errors) {
  const json& spec = at(svc, {"spec"});
  if (needs_cluster_ip(svc)) {
    auto ips = string_list(at(spec, {"clusterIPs"}));
    auto old_ips = old ? string_list(at(*old, {"spec", "clusterIPs"})) : std::vector<std::string>();
    for (const auto& ip : ips) {
      if (ip == "None" || std::find(old_ips.begin(), old_ips.end(), ip) != old_ips.end()) continue;
      std::uint32_t v4;
      if (!is_ip(ip)) continue;  // reported by validation
      if (!parse_v4(ip, &v4) || (v4 & kServiceMask) != kServiceNet || v4 == kServiceNet || v4 == (kServiceNet | ~kServiceMask)) {
        errors.push_back(api::field_invalid_rendered(
            "spec.clusterIPs", api::go_string_slice(ips),
            "failed to allocate IP " + ip + ": the provided IP (" + ip +
                ") is not in the valid range. The range of valid IPs is " + kServiceCIDR));
        break;
      }
    }
  }
  if (needs_node_port(svc)) {
    std::set<std::int64_t> old_ports;
    if (old && needs_node_port(*old))
      for (auto p : node_ports(*old)) old_ports.insert(p);
    const json& ports = at(spec, {"ports"});
    if (ports.is_array())
      for (std::size_t i = 0; i < ports.size(); ++i) {
        std::int64_t np = int_of(at(ports[i], {"nodePort"}));
        if (np == 0 || old_ports.count(np)) continue;
        if (np < kNodePortMin || np > kNodePortMax)
          errors.push_back(api::field_invalid("spec.ports[" + std::to_string(i) + "].nodePort", np,
                                              "provided port is not in the valid range. The range of valid ports is 30000-32767"));
      }
  }
}

// validateUpgradeDowngradeClusterIPs and the primary-family part of validateUpgradeDowngradeIPFamilies.
void validate_cluster_ip_changes(const json& svc, const json& old, std::vector<api::Cause>& errors) {
  if (type_of(svc) == "ExternalName" || type_of(old) == "ExternalName") return;
  if (is_headless(svc) && is_headless(old)) return;
  auto now = string_list(at(svc, {"spec", "clusterIPs"}));
  auto was = string_list(at(old, {"spec", "clusterIPs"}));
  std::string rendered = api::go_string_slice(now, true);
  const char* immutable = "may not change once set";
  if (was.size() == now.size()) {
    for (std::size_t i = 0; i < was.size(); ++i)
      if (was[i] != now[i])
        errors.push_back(api::field_invalid_rendered("spec.clusterIPs[" + std::to_string(i) + "]", rendered, immutable));
  } else if (was.size() > now.size()) {
    if (now.empty()) errors.push_back(api::field_invalid_rendered("spec.clusterIPs[0]", rendered, "primary clusterIP can not be unset"));
    if (!was.empty() && !now.empty() && now[0] != was[0])
      errors.push_back(api::field_invalid_rendered("spec.clusterIPs[0]", rendered, immutable));
    if (now.size() == 1 && str(at(svc, {"spec", "ipFamilyPolicy"})) != "SingleStack")
      errors.push_back(api::field_invalid_rendered("spec.clusterIPs[0]", rendered,
                                                   "`ipFamilyPolicy` must be set to 'SingleStack' when releasing the secondary clusterIP"));
  } else if (!was.empty() && now[0] != was[0]) {
    errors.push_back(api::field_invalid_rendered("spec.clusterIPs[0]", rendered, immutable));
  }
  auto fam_now = string_list(at(svc, {"spec", "ipFamilies"}));
  auto fam_was = string_list(at(old, {"spec", "ipFamilies"}));
  if (!fam_now.empty() && !fam_was.empty() && fam_now[0] != fam_was[0])
    errors.push_back(api::field_invalid_rendered("spec.ipFamilies[0]", api::go_string_slice(fam_now), immutable));
}

// What the other services hold of the two pools.
struct Taken {
  std::set<std::string> ips;
  std::set<std::int64_t> ports;  // node ports and health-check node ports share one pool
};

Taken taken_by(const std::vector<json>& others) {
  Taken t;
  for (const auto& o : others) {
    for (const auto& ip : string_list(at(o, {"spec", "clusterIPs"})))
      if (!ip.empty() && ip != "None") t.ips.insert(ip);
    std::string ip = str(at(o, {"spec", "clusterIP"}));
    if (!ip.empty() && ip != "None") t.ips.insert(ip);
    for (std::int64_t port : node_ports(o))
      if (port != 0) t.ports.insert(port);
    if (std::int64_t hc = int_of(at(o, {"spec", "healthCheckNodePort"})); hc != 0) t.ports.insert(hc);
  }
  return t;
}

// Cluster IPs and node ports are cluster-wide (storage/alloc.go's allocators). Berth reads the
// other services instead of keeping allocation bitmaps; values this service already held
// before an update are its own.
api::Status claim(json& svc, const json& sent, const json* old, const std::vector<json>& others) {
  Taken taken = taken_by(others);
  json& spec = svc["spec"];
  const auto old_ips = old ? string_list(at(*old, {"spec", "clusterIPs"})) : std::vector<std::string>{};
  const auto sent_ips = string_list(at(sent, {"spec", "clusterIPs"}));
  const std::string sent_ip = str(at(sent, {"spec", "clusterIP"}));
  if (spec.contains("clusterIPs") && spec["clusterIPs"].is_array()) {
    json& ips = spec["clusterIPs"];
    for (std::size_t i = 0; i < ips.size(); ++i) {
      const std::string ip = str(ips[i]);
      if (ip.empty() || ip == "None" || !taken.ips.count(ip)) continue;
      if (std::find(old_ips.begin(), old_ips.end(), ip) != old_ips.end()) continue;
      if (ip == sent_ip || std::find(sent_ips.begin(), sent_ips.end(), ip) != sent_ips.end()) {
        std::vector<api::Cause> causes{api::field_invalid_rendered(
            "spec.clusterIPs", api::go_string_slice(string_list(ips)),
            "failed to allocate IP " + ip + ": provided IP is already allocated")};
        return invalid("", "Service", str(at(svc, {"metadata", "name"})), std::move(causes));
      }
      std::string fresh;
      do fresh = allocate_cluster_ip();
      while (taken.ips.count(fresh));
      ips[i] = fresh;
      if (i == 0) spec["clusterIP"] = fresh;
    }
  }
  std::set<std::int64_t> old_ports, own;
  if (old) {
    for (std::int64_t port : node_ports(*old)) old_ports.insert(port);
    old_ports.insert(int_of(at(*old, {"spec", "healthCheckNodePort"})));
  }
  for (std::int64_t port : node_ports(svc)) own.insert(port);
  const json& sent_ports = at(sent, {"spec", "ports"});
  if (spec.contains("ports") && spec["ports"].is_array()) {
    json& ports = spec["ports"];
    for (std::size_t i = 0; i < ports.size(); ++i) {
      const std::int64_t port = int_of(at(ports[i], {"nodePort"}));
      if (port == 0 || !taken.ports.count(port) || old_ports.count(port)) continue;
      const bool requested = sent_ports.is_array() && i < sent_ports.size() && int_of(at(sent_ports[i], {"nodePort"})) == port;
      if (requested) {
        std::vector<api::Cause> causes{api::field_invalid("spec.ports[" + std::to_string(i) + "].nodePort", port,
                                                          "provided port is already allocated")};
        return invalid("", "Service", str(at(svc, {"metadata", "name"})), std::move(causes));
      }
      ports[i]["nodePort"] = free_node_port(taken.ports, own);
      own.insert(int_of(ports[i]["nodePort"]));
    }
  }
  if (std::int64_t hc = int_of(at(spec, {"healthCheckNodePort"})); hc != 0 && taken.ports.count(hc) && !old_ports.count(hc)) {
    if (int_of(at(sent, {"spec", "healthCheckNodePort"})) == hc)
      return api::Status(api::Reason::InternalError, "Internal error occurred: failed to allocate requested HealthCheck NodePort " +
                                                         std::to_string(hc) + ": provided port is already allocated");
    spec["healthCheckNodePort"] = free_node_port(taken.ports, own);
  }
  return {};
}

class ServiceStrategy : public Strategy {
 public:
  ServiceStrategy() {
    info_.group = "";
    info_.kind = "Service";
    info_.plural = "services";
    info_.singular = "service";
    info_.namespaced = true;
    info_.versions = {"v1"};
    info_.storage_version = "v1";
    info_.storage_prefix = "/registry/services/specs";
    info_.short_names = {"svc"};
    info_.categories = {"all"};
    info_.subresources = {{"status", "", "v1", "Service", {"get", "patch", "update"}}};
    info_.has_status = true;
    info_.allow_create_on_update = true;
    info_.allow_unconditional_update = true;
    info_.return_deleted_object = true;
    info_.name_rule = api::NameRule::DNS1035Label;  // ValidateServiceName
  }

  const KindInfo& info() const override { return info_; }

  void prepare_for_update(json& obj, const json& old) const override {
    set_defaults(obj);
    patch_allocated_values(obj, old);
    normalize_cluster_ips_update(obj, old);
    // initIPFamilyFields on update: an omitted policy or family list is the one from before.
    if (needs_cluster_ip(obj) && needs_cluster_ip(old)) {
      json& spec = obj["spec"];
      if ((!spec.contains("ipFamilyPolicy") || spec["ipFamilyPolicy"].is_null()) &&
          at(old, {"spec", "ipFamilyPolicy"}).is_string())
        spec["ipFamilyPolicy"] = at(old, {"spec", "ipFamilyPolicy"});
      if ((!at(spec, {"ipFamilies"}).is_array() || at(spec, {"ipFamilies"}).empty()) && at(old, {"spec", "ipFamilies"}).is_array())
        spec["ipFamilies"] = at(old, {"spec", "ipFamilies"});
    }
    drop_type_dependent_fields(obj, old);
  }

  void apply_defaults(json& obj) const override {
    set_defaults(obj);
    allocate(obj);
  }

  void validate(const json& obj, std::vector<api::Cause>& errors) const override {
    validate_allocation(obj, nullptr, errors);
    validate_service(obj, errors);
  }

  void validate_update(const json& obj, const json& old, std::vector<api::Cause>& errors) const override {
    validate_allocation(obj, &old, errors);
    validate_cluster_ip_changes(obj, old, errors);
    validate_service(obj, errors);
  }

  bool uses_pools() const override { return true; }
  api::Status claim_pools(json& obj, const json& sent, const json* old, const std::vector<json>& others) const override {
    return claim(obj, sent, old, others);
  }

  std::optional<std::string> field_value(const json& obj, const std::string& field) const override {
    if (field == "spec.clusterIP") return str(at(obj, {"spec", "clusterIP"}));
    if (field == "spec.type") return str(at(obj, {"spec", "type"}));
    return std::nullopt;
  }

  std::vector<Column> columns() const override {
    auto def = Strategy::columns();  // Name, Age
    return {def[0],
            {"Type", "string", "", "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer.", 0},
            {"Cluster-IP", "string", "", "clusterIP is the IP address of the service and is usually assigned randomly.", 0},
            {"External-IP", "string", "", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.", 0},
            {"Port(s)", "string", "", "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies", 0},
            def[1],
            {"Selector", "string", "", "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/", 1}};
  }

  // printService (wide, as the server prints).
  json cells(const json& obj) const override {
    const json& spec = at(obj, {"spec"});
    std::string type = str(at(spec, {"type"}));
    auto ips = string_list(at(spec, {"clusterIPs"}));
    std::string internal_ip = ips.empty() ? "<none>" : ips[0];
    auto external_ips = string_list(at(spec, {"externalIPs"}));
    auto join = [](const std::vector<std::string>& v) {
      std::string s;
      for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
      return s;
    };
    std::string external;
    if (type == "ClusterIP" || type == "NodePort") {
      external = external_ips.empty() ? "<none>" : join(external_ips);
    } else if (type == "LoadBalancer") {
      std::set<std::string> lb;
      const json& ingress = at(obj, {"status", "loadBalancer", "ingress"});
      if (ingress.is_array())
        for (const auto& i : ingress) {
          if (!str(at(i, {"ip"})).empty()) lb.insert(str(at(i, {"ip"})));
          else if (!str(at(i, {"hostname"})).empty()) lb.insert(str(at(i, {"hostname"})));
        }
      std::vector<std::string> all(lb.begin(), lb.end());
      if (!external_ips.empty()) {
        all.insert(all.end(), external_ips.begin(), external_ips.end());
        external = join(all);
      } else {
        external = all.empty() ? "<pending>" : join(all);
      }
    } else if (type == "ExternalName") {
      external = str(at(spec, {"externalName"}));
    } else {
      external = "<unknown>";
    }
    std::string ports_text;
    const json& ports = at(spec, {"ports"});
    if (ports.is_array())
      for (const auto& p : ports) {
        std::int64_t np = int_of(at(p, {"nodePort"}));
        std::string piece = std::to_string(int_of(at(p, {"port"}))) + (np > 0 ? ":" + std::to_string(np) : "") + "/" +
                            str(at(p, {"protocol"}));
        ports_text += (ports_text.empty() ? "" : ",") + piece;
      }
    if (ports_text.empty()) ports_text = "<none>";
    // labels.FormatLabels: sorted k=v pairs, "<none>" when empty.
    std::string selector;
    const json& sel = at(spec, {"selector"});
    if (sel.is_object())
      for (const auto& [k, v] : sel.items()) selector += (selector.empty() ? "" : ",") + k + "=" + str(v);
    if (selector.empty()) selector = "<none>";
    return json::array({at(obj, {"metadata", "name"}), type, internal_ip, external, ports_text, age(obj), selector});
  }

 private:
  KindInfo info_;
};

}  // namespace

std::unique_ptr<Strategy> make_service_strategy() { return std::make_unique<ServiceStrategy>(); }

}  // namespace berth::apiserver
