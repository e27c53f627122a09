#include "nodeagent/volumes.h"

#include <dirent.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

namespace berth::nodeagent {

namespace {

int mode_of(const json& v, int fallback) { return v.is_number_integer() ? static_cast<int>(v.get<int64_t>()) : fallback; }

api::Result<VolumePayload> keyed_payload(const json& source, const std::map<std::string, std::string>& data,
                                         const char* missing_prefix) {
  VolumePayload out;
  int default_mode = mode_of(at(source, {"defaultMode"}), 0644);
  const json& items = at(source, {"items"});
  if (items.is_array() && !items.empty()) {
    bool optional = jbool(source, {"optional"});
    for (const auto& item : items) {
      std::string key = jstr(item, {"key"});
      auto it = data.find(key);
      if (it == data.end()) {
        if (optional) continue;
        return api::Status(api::Reason::NotFound, std::string(missing_prefix) + key);
      }
      out[jstr(item, {"path"})] = {it->second, mode_of(at(item, {"mode"}), default_mode)};
    }
    return out;
  }
  for (const auto& [k, v] : data) out[k] = {v, default_mode};
  return out;
}

std::map<std::string, std::string> string_map(const json& obj, bool decode) {
  std::map<std::string, std::string> out;
  if (obj.is_object())
    for (const auto& [k, v] : obj.items())
      if (v.is_string()) out[k] = decode ? base64_decode(v.get<std::string>()) : v.get<std::string>();
  return out;
}

}  // namespace

api::Result<VolumePayload> configmap_payload(const json& source, const json& configmap) {
  auto data = string_map(at(configmap, {"data"}), false);
  for (auto& [k, v] : string_map(at(configmap, {"binaryData"}), true)) data[k] = v;
  return keyed_payload(source, data, "configmap references non-existent config key: ");
}

api::Result<VolumePayload> secret_payload(const json& source, const json& secret) {
  auto data = string_map(at(secret, {"data"}), true);
  for (auto& [k, v] : string_map(at(secret, {"stringData"}), false)) data[k] = v;
  return keyed_payload(source, data, "references non-existent secret key: ");
}

api::Result<VolumePayload> downward_api_payload(const json& source, const json& pod, const json& alloc) {
  VolumePayload out;
  int default_mode = mode_of(at(source, {"defaultMode"}), 0644);
  const json& items = at(source, {"items"});
  if (!items.is_array()) return out;
  for (const auto& item : items) {
    std::string value;
    if (at(item, {"fieldRef"}).is_object()) {
      auto v = pod_field_value(pod, jstr(item, {"fieldRef", "fieldPath"}));
      if (!v) return v.take_status();
      value = *v;
    } else if (at(item, {"resourceFieldRef"}).is_object()) {
      const json& ref = item["resourceFieldRef"];
      json container;
      for (const char* list : {"containers", "initContainers"}) {
        const json& cs = at(pod, {"spec", list});
        if (cs.is_array())
          for (const auto& c : cs)
            if (jstr(c, {"name"}) == jstr(ref, {"containerName"})) container = c;
      }
      auto v = resource_field_value(container, ref, alloc);
      if (!v) return v.take_status();
      value = *v;
    }
    out[jstr(item, {"path"})] = {value, mode_of(at(item, {"mode"}), default_mode)};
  }
  return out;
}

api::Status write_atomic_payload(const std::string& dir, const VolumePayload& payload) {
  if (auto st = mkdir_p(dir, 0755); !st) return st;
  // Unchanged? Compare with what ..data shows.
  std::string data_link = dir + "/..data";
  bool same = exists(data_link);
  if (same) {
    for (const auto& [path, file] : payload) {
      auto cur = read_file(data_link + "/" + path);
      struct stat st;
      if (!cur || *cur != file.content || ::stat((data_link + "/" + path).c_str(), &st) != 0 ||
          (st.st_mode & 07777) != static_cast<mode_t>(file.mode)) {
        same = false;
        break;
      }
    }
    // Also count the files: a removed key is a change.
    if (same) {
      std::size_t count = 0;
      std::function<void(const std::string&)> walk = [&](const std::string& d) {
        if (DIR* h = ::opendir(d.c_str())) {
          while (dirent* e = ::readdir(h)) {
            std::string n = e->d_name;
            if (n == "." || n == "..") continue;
            std::string p = d + "/" + n;
            struct stat st;
            if (::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) walk(p);
            else ++count;
          }
          ::closedir(h);
        }
      };
      walk(data_link + "/");
      same = count == payload.size();
    }
    if (same) return {};
  }
  char ts[64];
  auto now = Clock::now();
  std::time_t secs = Clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::strftime(ts, sizeof(ts), "..%Y_%m_%d_%H_%M_%S.", &tm);
  std::string ts_name = std::string(ts) + random_hex(6);
  std::string ts_dir = dir + "/" + ts_name;
  if (auto st = mkdir_p(ts_dir, 0755); !st) return st;
  std::set<std::string> top;
  for (const auto& [path, file] : payload) {
    if (path.empty() || path[0] == '/' || path.find("..") != std::string::npos)
      return api::Status(api::Reason::Invalid, "invalid path " + path);
    std::string full = ts_dir + "/" + path;
    mkdir_p(full.substr(0, full.rfind('/')), 0755);
    if (auto st = write_file(full, file.content, static_cast<mode_t>(file.mode)); !st) return st;
    top.insert(path.substr(0, path.find('/')));
  }
  std::string old_target;
  char buf[4096];
  ssize_t n = ::readlink(data_link.c_str(), buf, sizeof(buf) - 1);
  if (n > 0) old_target.assign(buf, static_cast<std::size_t>(n));
  std::string tmp_link = dir + "/..data_tmp";
  ::unlink(tmp_link.c_str());
  if (::symlink(ts_name.c_str(), tmp_link.c_str()) != 0 || ::rename(tmp_link.c_str(), data_link.c_str()) != 0)
    return api::Status(api::Reason::InternalError, "atomic write in " + dir + ": " + std::strerror(errno));
  // User-visible names are links into ..data; drop the ones no longer in the payload.
  for (const auto& t : top) {
    std::string link = dir + "/" + t;
    struct stat st;
    if (::lstat(link.c_str(), &st) != 0) ::symlink(("..data/" + t).c_str(), link.c_str());
  }
  if (DIR* h = ::opendir(dir.c_str())) {
    std::vector<std::string> names;
    while (dirent* e = ::readdir(h)) names.push_back(e->d_name);
    ::closedir(h);
    for (const auto& name : names) {
      if (name == "." || name == ".." || name == "..data" || name == ts_name) continue;
      if (starts_with(name, "..")) {
        if (name == old_target || starts_with(name, "..20")) remove_all(dir + "/" + name);
        continue;
      }
      if (!top.count(name)) ::unlink((dir + "/" + name).c_str());
    }
  }
  return {};
}

namespace {

std::string plugin_dir(const std::string& pod_dir, const std::string& plugin, const std::string& name) {
  return pod_dir + "/volumes/kubernetes.io~" + plugin + "/" + name;
}

api::Status mount_tmpfs(const std::string& dir, const std::string& size) {
  if (is_mounted(dir)) return {};
  if (auto st = mkdir_p(dir, 0755); !st) return st;
  std::string opts = "mode=0755";
  if (!size.empty()) opts += ",size=" + size;
  if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0)
    return api::Status(api::Reason::InternalError, "mount tmpfs on " + dir + ": " + std::strerror(errno));
  return {};
}

api::Status check_host_path(const std::string& path, const std::string& type) {
  struct stat st;
  bool present = ::stat(path.c_str(), &st) == 0;
  auto fail = [&](const std::string& what) {
    return api::Status(api::Reason::Invalid, "hostPath type check failed: " + path + " is not " + what);
  };
  if (type.empty()) return {};
  if (type == "DirectoryOrCreate") {
    if (!present) return mkdir_p(path, 0755);
    return S_ISDIR(st.st_mode) ? api::Status() : fail("a directory");
  }
  if (type == "Directory") return present && S_ISDIR(st.st_mode) ? api::Status() : fail("a directory");
  if (type == "FileOrCreate") {
    if (!present) {
      mkdir_p(path.substr(0, path.rfind('/')), 0755);
      return write_file(path, "", 0644);
    }
    return S_ISREG(st.st_mode) ? api::Status() : fail("a file");
  }
  if (type == "File") return present && S_ISREG(st.st_mode) ? api::Status() : fail("a file");
  if (type == "Socket") return present && S_ISSOCK(st.st_mode) ? api::Status() : fail("a socket file");
  if (type == "CharDevice") return present && S_ISCHR(st.st_mode) ? api::Status() : fail("a character device");
  if (type == "BlockDevice") return present && S_ISBLK(st.st_mode) ? api::Status() : fail("a block device");
  return {};
}

void apply_fs_group(const std::string& dir, int64_t gid, bool read_only) {
  std::function<void(const std::string&)> walk = [&](const std::string& p) {
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0 || S_ISLNK(st.st_mode)) return;
    ::lchown(p.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(gid));
    mode_t mode = st.st_mode & 07777;
    if (S_ISDIR(st.st_mode)) {
      ::chmod(p.c_str(), mode | S_ISGID | (read_only ? 0050 : 0070));
      if (DIR* h = ::opendir(p.c_str())) {
        std::vector<std::string> names;
        while (dirent* e = ::readdir(h)) names.push_back(e->d_name);
        ::closedir(h);
        for (const auto& n : names)
          if (n != "." && n != "..") walk(p + "/" + n);
      }
    } else {
      ::chmod(p.c_str(), mode | (read_only ? 0040 : 0060));
    }
  };
  walk(dir);
}

}  // namespace

api::Result<std::map<std::string, std::string>> VolumeManager::setup(const json& pod, const json& alloc) {
  std::map<std::string, std::string> out;
  std::string uid = jstr(pod, {"metadata", "uid"});
  std::string ns = jstr(pod, {"metadata", "namespace"});
  std::string pdir = pod_dir(uid);
  const json& volumes = at(pod, {"spec", "volumes"});
  if (!volumes.is_array()) return out;
  const json& fs_group = at(pod, {"spec", "securityContext", "fsGroup"});
  for (const auto& v : volumes) {
    std::string name = jstr(v, {"name"});
    auto failed = [&](const api::Status& st) {
      return api::Status(st.reason(), "MountVolume.SetUp failed for volume \"" + name + "\" : " + st.message());
    };
    std::string path;
    if (v.contains("emptyDir")) {
      path = plugin_dir(pdir, "empty-dir", name);
      if (jstr(v, {"emptyDir", "medium"}) == "Memory") {
        std::string size;
        if (auto bytes = quantity_value(at(v, {"emptyDir", "sizeLimit"})); bytes > 0) size = std::to_string(bytes);
        if (auto st = mount_tmpfs(path, size); !st) return failed(st);
      } else if (auto st = mkdir_p(path, 0777); !st) {
        return failed(st);
      }
      ::chmod(path.c_str(), 0777);
      if (fs_group.is_number_integer()) apply_fs_group(path, fs_group.get<int64_t>(), false);
    } else if (v.contains("hostPath")) {
      path = jstr(v, {"hostPath", "path"});
      if (auto st = check_host_path(path, jstr(v, {"hostPath", "type"})); !st) return failed(st);
    } else if (v.contains("configMap") || v.contains("secret") || v.contains("downwardAPI") || v.contains("projected")) {
      VolumePayload payload;
      std::string plugin;
      bool tmpfs = false;
      auto merge = [&](const VolumePayload& p) {
        for (const auto& [k, f] : p) payload[k] = f;
      };
      auto load_cm = [&](const json& src) -> api::Status {
        std::string cm = jstr(src, {"name"});
        auto obj = source_.configmap(ns, cm);
        if (!obj) {
          if (obj.status().reason() == api::Reason::NotFound) {
            if (cm == "kube-root-ca.crt" && !source_.cluster_ca().empty()) {
              obj = json{{"data", {{"ca.crt", source_.cluster_ca()}}}};
            } else if (jbool(src, {"optional"})) {
              return {};
            } else {
              return api::Status(api::Reason::NotFound, "configmap \"" + cm + "\" not found");
            }
          } else {
            return obj.take_status();
          }
        }
        auto p = configmap_payload(src, *obj);
        if (!p) return p.take_status();
        merge(*p);
        return {};
      };
      auto load_secret = [&](const json& src, const char* name_field) -> api::Status {
        std::string sname = jstr(src, {name_field});
        auto obj = source_.secret(ns, sname);
        if (!obj) {
          if (obj.status().reason() == api::Reason::NotFound) {
            if (jbool(src, {"optional"})) return {};
            return api::Status(api::Reason::NotFound, "secret \"" + sname + "\" not found");
          }
          return obj.take_status();
        }
        auto p = secret_payload(src, *obj);
        if (!p) return p.take_status();
        merge(*p);
        return {};
      };
      api::Status st;
      if (v.contains("configMap")) {
        plugin = "configmap";
        st = load_cm(v["configMap"]);
      } else if (v.contains("secret")) {
        plugin = "secret";
        tmpfs = true;
        st = load_secret(v["secret"], "secretName");
      } else if (v.contains("downwardAPI")) {
        plugin = "downward-api";
        auto p = downward_api_payload(v["downwardAPI"], pod, alloc);
        if (!p) st = p.take_status();
        else merge(*p);
      } else {
        plugin = "projected";
        tmpfs = true;
        const json& proj = v["projected"];
        int default_mode = mode_of(at(proj, {"defaultMode"}), 0644);
        const json& sources = at(proj, {"sources"});
        if (sources.is_array()) {
          for (const auto& s : sources) {
            if (!st) break;
            if (s.contains("configMap")) {
              json src = s["configMap"];
              if (!src.contains("defaultMode")) src["defaultMode"] = default_mode;
              st = load_cm(src);
            } else if (s.contains("secret")) {
              json src = s["secret"];
              if (!src.contains("defaultMode")) src["defaultMode"] = default_mode;
              st = load_secret(src, "name");
            } else if (s.contains("downwardAPI")) {
              json src = s["downwardAPI"];
              if (!src.contains("defaultMode")) src["defaultMode"] = default_mode;
              auto p = downward_api_payload(src, pod, alloc);
              if (!p) st = p.take_status();
              else merge(*p);
            } else if (s.contains("serviceAccountToken")) {
              const json& t = s["serviceAccountToken"];
              auto token = source_.service_account_token(
                  ns, jstr(pod, {"spec", "serviceAccountName"}, "default"), jstr(t, {"audience"}),
                  jint(t, {"expirationSeconds"}, 3607), pod);
              payload[jstr(t, {"path"}, "token")] = {token ? *token : std::string(), default_mode};
            }
          }
        }
      }
      if (!st) return failed(st);
      path = plugin_dir(pdir, plugin, name);
      if (tmpfs) {
        if (auto m = mount_tmpfs(path, ""); !m) return failed(m);
      }
      if (auto w = write_atomic_payload(path, payload); !w) return failed(w);
      if (fs_group.is_number_integer()) apply_fs_group(path, fs_group.get<int64_t>(), true);
    } else if (v.contains("persistentVolumeClaim")) {
      return api::Status(api::Reason::Invalid, "MountVolume.SetUp failed for volume \"" + name +
                                                   "\" : persistentVolumeClaim volumes are not supported by this node");
    } else {
      return api::Status(api::Reason::Invalid,
                         "MountVolume.SetUp failed for volume \"" + name + "\" : unsupported volume type");
    }
    out[name] = path;
  }
  return out;
}

void VolumeManager::teardown(const std::string& uid) {
  std::string vdir = pod_dir(uid) + "/volumes";
  if (DIR* plugins = ::opendir(vdir.c_str())) {
    std::vector<std::string> pnames;
    while (dirent* e = ::readdir(plugins)) pnames.push_back(e->d_name);
    ::closedir(plugins);
    for (const auto& p : pnames) {
      if (p == "." || p == "..") continue;
      std::string pd = vdir + "/" + p;
      if (DIR* vols = ::opendir(pd.c_str())) {
        std::vector<std::string> vnames;
        while (dirent* e = ::readdir(vols)) vnames.push_back(e->d_name);
        ::closedir(vols);
        for (const auto& v : vnames)
          if (v != "." && v != "..") unmount_all(pd + "/" + v);
      }
    }
  }
  // Any other mount left under the pod directory (shm, for one).
  auto mounts = read_file("/proc/self/mountinfo");
  if (mounts) {
    std::vector<std::string> under;
    std::string prefix = pod_dir(uid) + "/";
    for (const auto& line : split(*mounts, '\n')) {
      auto f = split(line, ' ');
      if (f.size() > 4 && starts_with(f[4], prefix)) under.push_back(f[4]);
    }
    std::sort(under.rbegin(), under.rend());
    for (const auto& m : under) unmount_all(m);
  }
  remove_all(vdir);
}

std::string pod_hostname(const json& pod) {
  std::string h = jstr(pod, {"spec", "hostname"});
  if (h.empty()) h = jstr(pod, {"metadata", "name"});
  if (h.size() > 63) {
    h = h.substr(0, 63);
    while (!h.empty() && (h.back() == '-' || h.back() == '.')) h.pop_back();
  }
  return h;
}

std::string managed_hosts_file(const json& pod, const std::string& pod_ip, bool host_network,
                               const std::string& host_hosts) {
  std::string out;
  if (host_network) {
    out = "# Kubernetes-managed hosts file (host network).\n" + host_hosts;
    if (!out.empty() && out.back() != '\n') out += '\n';
  } else {
    out = "# Kubernetes-managed hosts file.\n"
          "127.0.0.1\tlocalhost\n"
          "::1\tlocalhost ip6-localhost ip6-loopback\n"
          "fe00::0\tip6-localnet\n"
          "fe00::0\tip6-mcastprefix\n"
          "fe00::1\tip6-allnodes\n"
          "fe00::2\tip6-allrouters\n";
    std::string hostname = pod_hostname(pod);
    std::string subdomain = jstr(pod, {"spec", "subdomain"});
    if (!pod_ip.empty()) {
      if (!subdomain.empty())
        out += pod_ip + "\t" + hostname + "." + subdomain + "." + jstr(pod, {"metadata", "namespace"}) +
               ".svc.cluster.local\t" + hostname + "\n";
      else
        out += pod_ip + "\t" + hostname + "\n";
    }
  }
  const json& aliases = at(pod, {"spec", "hostAliases"});
  if (aliases.is_array() && !aliases.empty()) {
    out += "\n# Entries added by HostAliases.\n";
    for (const auto& a : aliases) {
      std::string line = jstr(a, {"ip"});
      const json& names = at(a, {"hostnames"});
      if (names.is_array())
        for (const auto& n : names) line += "\t" + n.get<std::string>();
      out += line + "\n";
    }
  }
  return out;
}

std::string pod_resolv_conf(const json& pod, const std::string& host_resolv, const std::string& cluster_dns,
                            const std::string& cluster_domain) {
  std::string policy = jstr(pod, {"spec", "dnsPolicy"}, "ClusterFirst");
  bool host_network = jbool(pod, {"spec", "hostNetwork"});
  std::vector<std::string> nameservers, searches, options;
  std::vector<std::string> host_ns, host_search, host_opts;
  for (const auto& line : split(host_resolv, '\n')) {
    auto words = split(trim(line), ' ');
    words.erase(std::remove(words.begin(), words.end(), ""), words.end());
    if (words.empty()) continue;
    if (words[0] == "nameserver" && words.size() > 1) host_ns.push_back(words[1]);
    else if ((words[0] == "search" || words[0] == "domain") && words.size() > 1)
      host_search.assign(words.begin() + 1, words.end());
    else if (words[0] == "options")
      host_opts.insert(host_opts.end(), words.begin() + 1, words.end());
  }
  bool cluster = (policy == "ClusterFirst" && !host_network) || policy == "ClusterFirstWithHostNet";
  if (cluster && !cluster_dns.empty()) {
    std::string ns = jstr(pod, {"metadata", "namespace"});
    nameservers = {cluster_dns};
    searches = {ns + ".svc." + cluster_domain, "svc." + cluster_domain, cluster_domain};
    searches.insert(searches.end(), host_search.begin(), host_search.end());
    options = {"ndots:5"};
  } else if (policy != "None") {
    nameservers = host_ns;
    searches = host_search;
    options = host_opts;
  }
  const json& cfg = at(pod, {"spec", "dnsConfig"});
  if (cfg.is_object()) {
    for (const auto& n : at(cfg, {"nameservers"}).is_array() ? cfg["nameservers"] : json::array())
      if (std::find(nameservers.begin(), nameservers.end(), n.get<std::string>()) == nameservers.end())
        nameservers.push_back(n.get<std::string>());
    for (const auto& s : at(cfg, {"searches"}).is_array() ? cfg["searches"] : json::array())
      if (std::find(searches.begin(), searches.end(), s.get<std::string>()) == searches.end())
        searches.push_back(s.get<std::string>());
    for (const auto& o : at(cfg, {"options"}).is_array() ? cfg["options"] : json::array()) {
      std::string name = jstr(o, {"name"});
      std::string text = name + (at(o, {"value"}).is_string() ? ":" + jstr(o, {"value"}) : "");
      options.erase(std::remove_if(options.begin(), options.end(),
                                   [&](const std::string& x) { return x.substr(0, x.find(':')) == name; }),
                    options.end());
      options.push_back(text);
    }
  }
  if (nameservers.size() > 3) nameservers.resize(3);
  std::string out;
  if (!searches.empty()) {
    out += "search";
    for (const auto& s : searches) out += " " + s;
    out += "\n";
  }
  for (const auto& n : nameservers) out += "nameserver " + n + "\n";
  if (!options.empty()) {
    out += "options";
    for (const auto& o : options) out += " " + o;
    out += "\n";
  }
  return out;
}

}  // namespace berth::nodeagent
