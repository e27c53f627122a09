#include "nodeagent/container_spec.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "api/quantity.h"

namespace berth::nodeagent {

std::string expand_vars(const std::string& input,
                        const std::function<std::optional<std::string>(const std::string&)>& lookup) {
  std::string out;
  std::size_t checkpoint = 0;
  for (std::size_t cursor = 0; cursor < input.size(); ++cursor) {
    if (input[cursor] != '$' || cursor + 1 >= input.size()) continue;
    out.append(input, checkpoint, cursor - checkpoint);
    std::string_view rest(input.data() + cursor + 1, input.size() - cursor - 1);
    std::size_t advance = 1;
    if (rest[0] == '$') {
      out.push_back('$');
    } else if (rest[0] == '(') {
      auto close = rest.find(')');
      if (close == std::string_view::npos) {
        out += "$(";
      } else {
        std::string name(rest.substr(1, close - 1));
        auto v = lookup(name);
        out += v ? *v : "$(" + name + ")";
        advance = close + 1;
      }
    } else {
      out.push_back('$');
      out.push_back(rest[0]);
    }
    cursor += advance;
    checkpoint = cursor + 1;
  }
  if (checkpoint < input.size()) out.append(input, checkpoint, std::string::npos);
  return out;
}

static std::vector<std::string> strings_of(const json& j) {
  std::vector<std::string> out;
  if (j.is_array())
    for (const auto& v : j)
      if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

std::vector<std::string> container_process_args(const json& container, const std::vector<std::string>& entrypoint,
                                                const std::vector<std::string>& image_cmd, const EnvList& env) {
  auto lookup = [&](const std::string& name) -> std::optional<std::string> {
    for (auto it = env.rbegin(); it != env.rend(); ++it)
      if (it->first == name) return it->second;
    return std::nullopt;
  };
  std::vector<std::string> command, args;
  for (const auto& c : strings_of(at(container, {"command"}))) command.push_back(expand_vars(c, lookup));
  for (const auto& a : strings_of(at(container, {"args"}))) args.push_back(expand_vars(a, lookup));
  std::vector<std::string> out;
  if (!command.empty()) {
    out = command;
    out.insert(out.end(), args.begin(), args.end());
  } else {
    out = entrypoint;
    const auto& tail = args.empty() ? image_cmd : args;
    out.insert(out.end(), tail.begin(), tail.end());
  }
  return out;
}

std::string format_pod(const json& pod) {
  return jstr(pod, {"metadata", "name"}) + "_" + jstr(pod, {"metadata", "namespace"}) + "(" +
         jstr(pod, {"metadata", "uid"}) + ")";
}

namespace {

bool is_env_var_name(const std::string& s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = c == '-' || c == '.' || c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::string go_quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\x%02x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out + "\"";
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

std::string upper_env_name(const std::string& name) {
  std::string out = name;
  for (char& c : out) {
    if (c == '-') c = '_';
    else c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string not_found_message(const char* kind, const std::string& name) {
  return std::string(kind) + " \"" + name + "\" not found";
}

}  // namespace

std::string base64_decode(const std::string& in) {
  static int table[256];
  static bool init = false;
  if (!init) {
    for (int& t : table) t = -1;
    const char* chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) table[static_cast<unsigned char>(chars[i])] = i;
    init = true;
  }
  std::string out;
  int val = 0, bits = -8;
  for (unsigned char c : in) {
    if (table[c] < 0) continue;
    val = (val << 6) + table[c];
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

int64_t quantity_milli(const json& q) {
  if (q.is_null()) return 0;
  auto parsed = api::Quantity::from_json(q);
  return parsed ? parsed->milli_value() : 0;
}

int64_t quantity_value(const json& q) {
  if (q.is_null()) return 0;
  auto parsed = api::Quantity::from_json(q);
  return parsed ? parsed->value() : 0;
}

EnvList service_env(const std::vector<json>& services) {
  EnvList out;
  for (const auto& svc : services) {
    std::string ip = jstr(svc, {"spec", "clusterIP"});
    if (ip.empty() || ip == "None") continue;
    const json& ports = at(svc, {"spec", "ports"});
    if (!ports.is_array() || ports.empty()) continue;
    std::string prefix = upper_env_name(jstr(svc, {"metadata", "name"}));
    out.emplace_back(prefix + "_SERVICE_HOST", ip);
    out.emplace_back(prefix + "_SERVICE_PORT", std::to_string(jint(ports[0], {"port"})));
    for (const auto& p : ports) {
      std::string pname = jstr(p, {"name"});
      if (!pname.empty()) out.emplace_back(prefix + "_SERVICE_PORT_" + upper_env_name(pname), std::to_string(jint(p, {"port"})));
    }
    bool v6 = ip.find(':') != std::string::npos;
    for (std::size_t i = 0; i < ports.size(); ++i) {
      std::string proto = jstr(ports[i], {"protocol"}, "TCP");
      std::string lower = proto, upper = proto;
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
      std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
      std::string port = std::to_string(jint(ports[i], {"port"}));
      std::string host_port = (v6 ? "[" + ip + "]" : ip) + ":" + port;
      if (i == 0) out.emplace_back(prefix + "_PORT", lower + "://" + host_port);
      std::string pp = prefix + "_PORT_" + port + "_" + upper;
      out.emplace_back(pp, lower + "://" + host_port);
      out.emplace_back(pp + "_PROTO", lower);
      out.emplace_back(pp + "_PORT", port);
      out.emplace_back(pp + "_ADDR", ip);
    }
  }
  return out;
}

api::Result<std::string> pod_field_value(const json& pod, const std::string& path) {
  auto joined_ips = [&](const char* list, const char* single) {
    std::vector<std::string> ips;
    const json& arr = at(pod, {"status", list});
    if (arr.is_array())
      for (const auto& e : arr) ips.push_back(jstr(e, {"ip"}));
    if (ips.empty() && !jstr(pod, {"status", single}).empty()) ips.push_back(jstr(pod, {"status", single}));
    return join(ips, ",");
  };
  if (path == "metadata.name") return jstr(pod, {"metadata", "name"});
  if (path == "metadata.namespace") return jstr(pod, {"metadata", "namespace"});
  if (path == "metadata.uid") return jstr(pod, {"metadata", "uid"});
  if (path == "spec.nodeName") return jstr(pod, {"spec", "nodeName"});
  if (path == "spec.serviceAccountName") return jstr(pod, {"spec", "serviceAccountName"});
  if (path == "status.hostIP") return jstr(pod, {"status", "hostIP"});
  if (path == "status.hostIPs") return joined_ips("hostIPs", "hostIP");
  if (path == "status.podIP") return jstr(pod, {"status", "podIP"});
  if (path == "status.podIPs") return joined_ips("podIPs", "podIP");
  for (const char* which : {"labels", "annotations"}) {
    std::string prefix = std::string("metadata.") + which;
    if (path == prefix) {
      std::vector<std::string> lines;
      const json& m = at(pod, {"metadata", which});
      if (m.is_object())
        for (const auto& [k, v] : m.items()) lines.push_back(k + "=" + go_quote(v.is_string() ? v.get<std::string>() : ""));
      return join(lines, "\n");
    }
    if (starts_with(path, prefix + "['") && path.size() > prefix.size() + 4 && path.substr(path.size() - 2) == "']") {
      std::string key = path.substr(prefix.size() + 2, path.size() - prefix.size() - 4);
      return jstr(at(pod, {"metadata", which}), {key.c_str()});
    }
  }
  return api::Status(api::Reason::BadRequest, "unsupported fieldPath: " + path);
}

api::Result<std::string> resource_field_value(const json& container, const json& ref, const json& alloc) {
  std::string resource = jstr(ref, {"resource"});
  auto dot = resource.find('.');
  if (dot == std::string::npos) return api::Status(api::Reason::BadRequest, "unsupported container resource : " + resource);
  std::string kind = resource.substr(0, dot), name = resource.substr(dot + 1);
  if (kind != "limits" && kind != "requests")
    return api::Status(api::Reason::BadRequest, "unsupported container resource : " + resource);
  json value = at(container, {"resources", kind.c_str(), name.c_str()});
  if (value.is_null() && kind == "limits") value = at(alloc, {name.c_str()});
  json divisor = at(ref, {"divisor"});
  if (name == "cpu") {
    int64_t d = divisor.is_null() ? 1000 : quantity_milli(divisor);
    if (d <= 0) d = 1000;
    int64_t m = quantity_milli(value);
    return std::to_string(static_cast<int64_t>(std::ceil(double(m) / double(d))));
  }
  if (name == "memory" || name == "ephemeral-storage" || starts_with(name, "hugepages-")) {
    int64_t d = divisor.is_null() ? 1 : quantity_value(divisor);
    if (d <= 0) d = 1;
    int64_t v = quantity_value(value);
    return std::to_string(static_cast<int64_t>(std::ceil(double(v) / double(d))));
  }
  return api::Status(api::Reason::BadRequest, "unsupported container resource : " + resource);
}

api::Result<EnvList> container_env(const json& pod, const json& container, ObjectSource& source,
                                   const json& alloc, std::vector<std::string>* skipped) {
  std::string ns = jstr(pod, {"metadata", "namespace"});
  EnvList result;
  std::map<std::string, std::size_t> index;
  auto set = [&](const std::string& k, const std::string& v) {
    auto it = index.find(k);
    if (it != index.end()) {
      result[it->second].second = v;
    } else {
      index[k] = result.size();
      result.emplace_back(k, v);
    }
  };

  // Service links: the master service always; the namespace's services when enabled.
  EnvList services;
  {
    bool links = jbool(pod, {"spec", "enableServiceLinks"}, true);
    auto list = source.services(ns);
    if (list) {
      std::vector<json> chosen;
      std::map<std::string, json> by_name;
      for (const auto& svc : *list) {
        std::string sns = jstr(svc, {"metadata", "namespace"}), sname = jstr(svc, {"metadata", "name"});
        if (sns == "default" && sname == "kubernetes") {
          if (!by_name.count(sname)) by_name[sname] = svc;
        }
        if (sns == ns && links) by_name[sname] = svc;
      }
      for (auto& [k, v] : by_name) chosen.push_back(v);
      services = service_env(chosen);
    }
  }
  std::map<std::string, std::string> service_map(services.begin(), services.end());

  const json& env_from = at(container, {"envFrom"});
  if (env_from.is_array()) {
    for (const auto& from : env_from) {
      std::string prefix = jstr(from, {"prefix"});
      bool is_cm = at(from, {"configMapRef"}).is_object();
      const json& ref = is_cm ? at(from, {"configMapRef"}) : at(from, {"secretRef"});
      if (!ref.is_object()) continue;
      std::string name = jstr(ref, {"name"});
      bool optional = jbool(ref, {"optional"});
      auto obj = is_cm ? source.configmap(ns, name) : source.secret(ns, name);
      if (!obj) {
        if (obj.status().reason() == api::Reason::NotFound) {
          if (optional) continue;
          return api::Status(api::Reason::NotFound, not_found_message(is_cm ? "configmap" : "secret", name));
        }
        return obj.take_status();
      }
      std::vector<std::string> invalid;
      const json& data = at(*obj, {"data"});
      if (data.is_object()) {
        for (const auto& [k, v] : data.items()) {
          std::string key = prefix + k;
          if (!is_env_var_name(key)) {
            invalid.push_back(key);
            continue;
          }
          std::string value = v.is_string() ? v.get<std::string>() : "";
          set(key, is_cm ? value : base64_decode(value));
        }
      }
      if (!invalid.empty() && skipped) {
        std::sort(invalid.begin(), invalid.end());
        skipped->push_back("Keys [" + join(invalid, ", ") + "] from the EnvFrom " + (is_cm ? "configMap " : "secret ") +
                           ns + "/" + name + " were skipped since they are considered invalid environment variable names.");
      }
    }
  }

  const json& env = at(container, {"env"});
  if (env.is_array()) {
    for (const auto& e : env) {
      std::string name = jstr(e, {"name"});
      std::string value = jstr(e, {"value"});
      const json& from = at(e, {"valueFrom"});
      if (!value.empty()) {
        value = expand_vars(value, [&](const std::string& k) -> std::optional<std::string> {
          auto it = index.find(k);
          if (it != index.end()) return result[it->second].second;
          auto s = service_map.find(k);
          if (s != service_map.end()) return s->second;
          return std::nullopt;
        });
      } else if (from.is_object()) {
        if (from.contains("fieldRef")) {
          auto v = pod_field_value(pod, jstr(from, {"fieldRef", "fieldPath"}));
          if (!v) return v.take_status();
          value = *v;
        } else if (from.contains("resourceFieldRef")) {
          const json& ref = from["resourceFieldRef"];
          const json* target = &container;
          std::string cname = jstr(ref, {"containerName"});
          if (!cname.empty() && cname != jstr(container, {"name"})) {
            for (const char* list : {"containers", "initContainers"}) {
              const json& cs = at(pod, {"spec", list});
              if (cs.is_array())
                for (const auto& c : cs)
                  if (jstr(c, {"name"}) == cname) target = &c;
            }
          }
          auto v = resource_field_value(*target, ref, alloc);
          if (!v) return v.take_status();
          value = *v;
        } else if (from.contains("configMapKeyRef") || from.contains("secretKeyRef")) {
          bool is_cm = from.contains("configMapKeyRef");
          const json& ref = is_cm ? from["configMapKeyRef"] : from["secretKeyRef"];
          std::string oname = jstr(ref, {"name"}), key = jstr(ref, {"key"});
          bool optional = jbool(ref, {"optional"});
          auto obj = is_cm ? source.configmap(ns, oname) : source.secret(ns, oname);
          if (!obj) {
            if (obj.status().reason() == api::Reason::NotFound) {
              if (optional) continue;
              return api::Status(api::Reason::NotFound, not_found_message(is_cm ? "configmap" : "secret", oname));
            }
            return obj.take_status();
          }
          const json& v = at(*obj, {"data", key.c_str()});
          if (!v.is_string()) {
            if (optional) continue;
            return api::Status(api::Reason::NotFound, "couldn't find key " + key + " in " +
                                                          (is_cm ? "ConfigMap " : "Secret ") + ns + "/" + oname);
          }
          value = is_cm ? v.get<std::string>() : base64_decode(v.get<std::string>());
        }
      }
      set(name, value);
    }
  }
  for (const auto& [k, v] : services)
    if (!index.count(k)) {
      index[k] = result.size();
      result.emplace_back(k, v);
    }
  return result;
}

std::vector<std::string> merge_env(const std::vector<std::string>& image_env, const EnvList& env) {
  std::vector<std::string> out = image_env;
  for (const auto& [k, v] : env) {
    bool replaced = false;
    for (auto& e : out) {
      if (e.compare(0, k.size() + 1, k + "=") == 0) {
        e = k + "=" + v;
        replaced = true;
      }
    }
    if (!replaced) out.push_back(k + "=" + v);
  }
  return out;
}

namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

struct PasswdEntry {
  std::string name;
  uint32_t uid = 0, gid = 0;
};

std::optional<PasswdEntry> find_passwd(const std::string& passwd, const std::string& name_or_uid) {
  bool numeric = all_digits(name_or_uid);
  for (const auto& line : split(passwd, '\n')) {
    auto f = split(line, ':');
    if (f.size() < 4 || !all_digits(f[2]) || !all_digits(f[3])) continue;
    if ((numeric && f[2] == name_or_uid) || (!numeric && f[0] == name_or_uid))
      return PasswdEntry{f[0], static_cast<uint32_t>(std::stoul(f[2])), static_cast<uint32_t>(std::stoul(f[3]))};
  }
  return std::nullopt;
}

std::optional<uint32_t> find_group(const std::string& group, const std::string& name_or_gid) {
  if (all_digits(name_or_gid)) return static_cast<uint32_t>(std::stoul(name_or_gid));
  for (const auto& line : split(group, '\n')) {
    auto f = split(line, ':');
    if (f.size() >= 3 && f[0] == name_or_gid && all_digits(f[2])) return static_cast<uint32_t>(std::stoul(f[2]));
  }
  return std::nullopt;
}

std::vector<uint32_t> groups_of(const std::string& group, const std::string& user) {
  std::vector<uint32_t> out;
  if (user.empty()) return out;
  for (const auto& line : split(group, '\n')) {
    auto f = split(line, ':');
    if (f.size() < 4 || !all_digits(f[2])) continue;
    for (const auto& member : split(f[3], ','))
      if (member == user) out.push_back(static_cast<uint32_t>(std::stoul(f[2])));
  }
  return out;
}

const json& security_field(const json& pod, const json& container, const char* field) {
  const json& c = at(container, {"securityContext", field});
  if (!c.is_null()) return c;
  return at(pod, {"spec", "securityContext", field});
}

}  // namespace

api::Result<ProcessUser> resolve_user(const json& pod, const json& container, const std::string& image_user,
                                      const std::string& passwd, const std::string& group) {
  ProcessUser u;
  std::string user_part = image_user, group_part;
  if (auto colon = image_user.find(':'); colon != std::string::npos) {
    user_part = image_user.substr(0, colon);
    group_part = image_user.substr(colon + 1);
  }
  std::string username;
  const json& run_as_user = security_field(pod, container, "runAsUser");
  const json& run_as_group = security_field(pod, container, "runAsGroup");
  const json& non_root = security_field(pod, container, "runAsNonRoot");
  std::string pod_ref(1, '"');  // built in steps: GCC 12 misreports "\"" + string (-Wrestrict)
  pod_ref += format_pod(pod);
  pod_ref += '"';
  std::string cname = jstr(container, {"name"});

  if (run_as_user.is_number_integer()) {
    u.uid = static_cast<uint32_t>(run_as_user.get<int64_t>());
    if (auto e = find_passwd(passwd, std::to_string(u.uid))) {
      u.gid = e->gid;
      username = e->name;
    }
  } else if (!user_part.empty()) {
    auto e = find_passwd(passwd, user_part);
    if (all_digits(user_part)) {
      u.uid = static_cast<uint32_t>(std::stoul(user_part));
      if (e) {
        u.gid = e->gid;
        username = e->name;
      }
    } else {
      if (non_root.is_boolean() && non_root.get<bool>())
        return api::Status(api::Reason::Invalid, "container has runAsNonRoot and image has non-numeric user (" +
                                                     user_part + "), cannot verify user is non-root (pod: " + pod_ref +
                                                     ", container: " + cname + ")");
      if (!e)
        return api::Status(api::Reason::Invalid,
                           "unable to find user " + user_part + ": no matching entries in passwd file");
      u.uid = e->uid;
      u.gid = e->gid;
      username = e->name;
    }
    if (!group_part.empty()) {
      auto g = find_group(group, group_part);
      if (!g)
        return api::Status(api::Reason::Invalid,
                           "unable to find group " + group_part + ": no matching entries in group file");
      u.gid = *g;
    }
  }
  if (run_as_group.is_number_integer()) u.gid = static_cast<uint32_t>(run_as_group.get<int64_t>());
  if (non_root.is_boolean() && non_root.get<bool>() && u.uid == 0) {
    if (run_as_user.is_number_integer())
      return api::Status(api::Reason::Invalid, "container's runAsUser breaks non-root policy (pod: " + pod_ref +
                                                   ", container: " + cname + ")");
    return api::Status(api::Reason::Invalid, "container has runAsNonRoot and image will run as root (pod: " + pod_ref +
                                                 ", container: " + cname + ")");
  }
  std::set<uint32_t> extra;
  for (uint32_t g : groups_of(group, username)) extra.insert(g);
  const json& supplemental = at(pod, {"spec", "securityContext", "supplementalGroups"});
  if (supplemental.is_array())
    for (const auto& g : supplemental)
      if (g.is_number_integer()) extra.insert(static_cast<uint32_t>(g.get<int64_t>()));
  const json& fs_group = at(pod, {"spec", "securityContext", "fsGroup"});
  if (fs_group.is_number_integer()) extra.insert(static_cast<uint32_t>(fs_group.get<int64_t>()));
  extra.erase(u.gid);
  u.additional_gids.assign(extra.begin(), extra.end());
  return u;
}

CgroupResources container_cgroup_resources(const json& container) {
  CgroupResources r;
  int64_t request = quantity_milli(at(container, {"resources", "requests", "cpu"}));
  int64_t limit = quantity_milli(at(container, {"resources", "limits", "cpu"}));
  if (request == 0 && limit > 0) request = limit;
  if (request > 0) r.cpu_shares = std::max<uint64_t>(2, static_cast<uint64_t>(request) * 1024 / 1000);
  if (limit > 0) {
    r.cpu_period = 100000;
    r.cpu_quota = std::max<int64_t>(1000, limit * 100000 / 1000);
  }
  r.memory_limit = quantity_value(at(container, {"resources", "limits", "memory"}));
  return r;
}

std::optional<int> oom_score_adj(const std::string& qos, const json& container, int64_t memory_capacity) {
  if (qos == "Guaranteed") return std::nullopt;
  if (qos == "BestEffort") return 1000;
  int64_t request = quantity_value(at(container, {"resources", "requests", "memory"}));
  if (memory_capacity <= 0) return 999;
  int64_t adj = 1000 - (1000 * request) / memory_capacity;
  if (adj < 3) adj = 3;
  if (adj == 1000) adj = 999;
  return static_cast<int>(adj);
}

std::string pod_cgroup_parent(const std::string& root, const std::string& qos, const std::string& uid) {
  std::string base = root + "/kubepods";
  if (qos == "Burstable") base += "/burstable";
  else if (qos == "BestEffort") base += "/besteffort";
  return base + "/pod" + uid;
}

std::string pod_qos_class(const json& pod) {
  std::string q = jstr(pod, {"status", "qosClass"});
  if (!q.empty()) return q;
  bool any = false, guaranteed = true;
  for (const char* list : {"initContainers", "containers"}) {
    const json& cs = at(pod, {"spec", list});
    if (!cs.is_array()) continue;
    for (const auto& c : cs) {
      const json& req = at(c, {"resources", "requests"});
      const json& lim = at(c, {"resources", "limits"});
      if ((req.is_object() && !req.empty()) || (lim.is_object() && !lim.empty())) any = true;
      for (const char* r : {"cpu", "memory"}) {
        json l = at(lim, {r});
        json q2 = at(req, {r});
        if (l.is_null()) guaranteed = false;
        else if (!q2.is_null() && quantity_milli(q2) != quantity_milli(l)) guaranteed = false;
      }
    }
  }
  if (!any) return "BestEffort";
  return guaranteed ? "Guaranteed" : "Burstable";
}

}  // namespace berth::nodeagent
