#include "nodeagent/network.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

namespace berth::nodeagent {

std::string gateway_of(const std::string& cidr) {
  auto slash = cidr.find('/');
  std::string addr = cidr.substr(0, slash);
  in_addr a{};
  if (inet_pton(AF_INET, addr.c_str(), &a) != 1) return "";
  int bits = slash == std::string::npos ? 32 : std::atoi(cidr.c_str() + slash + 1);
  uint32_t host = ntohl(a.s_addr);
  uint32_t mask = bits == 0 ? 0 : ~uint32_t(0) << (32 - bits);
  host = (host & mask) + 1;
  a.s_addr = htonl(host);
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}

json host_port_mappings(const json& pod) {
  json out = json::array();
  for (const char* list : {"initContainers", "containers"}) {
    const json& cs = at(pod, {"spec", list});
    if (!cs.is_array()) continue;
    for (const auto& c : cs) {
      const json& ports = at(c, {"ports"});
      if (!ports.is_array()) continue;
      for (const auto& p : ports) {
        int64_t host_port = jint(p, {"hostPort"});
        if (host_port <= 0) continue;
        std::string proto = jstr(p, {"protocol"}, "TCP");
        std::transform(proto.begin(), proto.end(), proto.begin(), [](unsigned char ch) { return std::tolower(ch); });
        json m = {{"hostPort", host_port}, {"containerPort", jint(p, {"containerPort"})}, {"protocol", proto}};
        if (!jstr(p, {"hostIP"}).empty()) m["hostIP"] = jstr(p, {"hostIP"});
        out.push_back(m);
      }
    }
  }
  return out;
}

json bridge_conf(const NetworkOptions& o, bool ip_masq) {
  json conf = {{"cniVersion", "1.0.0"},
               {"name", "berth"},
               {"type", "bridge"},
               {"bridge", o.bridge},
               {"isGateway", true},
               {"ipMasq", ip_masq},
               {"hairpinMode", true},
               {"ipam",
                {{"type", "host-local"},
                 {"ranges", json::array({json::array({{{"subnet", o.pod_cidr}, {"gateway", gateway_of(o.pod_cidr)}}})})},
                 {"routes", json::array({{{"dst", "0.0.0.0/0"}}})},
                 {"dataDir", o.state_dir + "/ipam"}}}};
  if (o.mtu > 0) conf["mtu"] = o.mtu;
  return conf;
}

namespace {

class CniNetwork final : public PodNetwork {
 public:
  explicit CniNetwork(NetworkOptions o) : o_(std::move(o)), gate_(startup_concurrency()) {
    iptables_ = ::access("/usr/sbin/iptables", X_OK) == 0 ? "/usr/sbin/iptables"
                : ::access("/sbin/iptables", X_OK) == 0  ? "/sbin/iptables"
                                                          : "";
  }

  std::string not_ready_reason() const override {
    for (const char* plugin : {"bridge", "host-local", "loopback"}) {
      if (::access((o_.cni_bin_dir + "/" + plugin).c_str(), X_OK) != 0)
        return std::string("container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
                           "message:Network plugin returns error: cni plugin not initialized (no ") +
               plugin + " in " + o_.cni_bin_dir + ")";
    }
    return "";
  }

  std::string netns_path(const std::string& sandbox) const override { return o_.netns_dir + "/berth-" + sandbox; }
  std::string ipc_path(const std::string& sandbox) const { return o_.ipcns_dir + "/berth-" + sandbox; }
  std::string result_path(const std::string& sandbox) const { return o_.state_dir + "/results/" + sandbox + ".json"; }
  // Sandboxes this agent made (namespace directories are shared by every agent on the host).
  std::string marker_path(const std::string& sandbox) const { return o_.state_dir + "/sandboxes/" + sandbox; }
  void mark(const std::string& sandbox) {
    mkdir_p(o_.state_dir + "/sandboxes", 0700);
    if (!exists(marker_path(sandbox))) write_file(marker_path(sandbox), "", 0600);
  }
  void unmark_if_gone(const std::string& sandbox) {
    if (!exists(netns_path(sandbox)) && !exists(ipc_path(sandbox))) ::unlink(marker_path(sandbox).c_str());
  }

  RunResult cni(const std::string& plugin, const std::string& command, const std::string& sandbox,
                const std::string& netns, const std::string& ns, const std::string& name, const std::string& uid,
                const json& conf) {
    std::vector<std::string> env = {
        "CNI_COMMAND=" + command,
        "CNI_CONTAINERID=" + sandbox,
        "CNI_NETNS=" + netns,
        "CNI_IFNAME=" + std::string(plugin == "loopback" ? "lo" : "eth0"),
        "CNI_PATH=" + o_.cni_bin_dir,
        "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=" + ns + ";K8S_POD_NAME=" + name +
            ";K8S_POD_INFRA_CONTAINER_ID=" + sandbox + ";K8S_POD_UID=" + uid};
    return run_command({o_.cni_bin_dir + "/" + plugin}, conf.dump(), std::chrono::seconds(60), env);
  }

  static std::string cni_error(const RunResult& r) {
    json j = json::parse(r.out, nullptr, false);
    if (j.is_object() && j.contains("msg")) {
      std::string msg = jstr(j, {"msg"});
      if (!jstr(j, {"details"}).empty()) msg += ": " + jstr(j, {"details"});
      return msg;
    }
    std::string t = trim(r.err.empty() ? r.out : r.err);
    return t.empty() ? "exit code " + std::to_string(r.exit_code) : t;
  }

  // A persistent namespace: a short-lived thread unshares it and bind-mounts its
  // /proc/thread-self/ns/<kind> onto path (what `unshare --net=path` does, without two execs).
  // Namespaces are per thread, so the rest of the agent is unaffected; the bind mount keeps the
  // namespace alive after the thread ends.
  api::Status make_ns_file(const std::string& dir, const std::string& path, int nstype) {
    if (is_mounted(path)) return {};
    if (auto st = mkdir_p(dir, 0755); !st) return st;
    if (!exists(path)) {
      if (auto st = write_file(path, "", 0644); !st) return st;
    }
    std::string self = nstype == CLONE_NEWNET ? "/proc/thread-self/ns/net" : "/proc/thread-self/ns/ipc";
    std::string err;
    std::thread([&] {
      if (::unshare(nstype) != 0) err = std::string("unshare: ") + std::strerror(errno);
      else if (::mount(self.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0)
        err = std::string("bind mount: ") + std::strerror(errno);
    }).join();
    if (!err.empty()) {
      ::unlink(path.c_str());
      return api::Status(api::Reason::InternalError, "create namespace " + path + ": " + err);
    }
    return {};
  }

  // One masquerade rule for the whole pod CIDR, installed once, instead of the bridge plugin's
  // ipMasq (a chain and eight iptables execs per pod on ADD, more on DEL). It matches what
  // ipMasq does (traffic from pods to anything but the pod network and multicast is
  // masqueraded), as the kubelet's kubenet did with the same plugin.
  api::Status ensure_masquerade() {
    if (iptables_.empty() || masq_ready_) return {};
    std::string chain = "BERTH-MASQ-" + sha256_hex(o_.bridge + " " + o_.pod_cidr).substr(0, 12);
    auto ipt = [&](std::vector<std::string> args) {
      args.insert(args.begin(), {iptables_, "-w", "-t", "nat"});
      return run_command(args, "", std::chrono::seconds(60));
    };
    ipt({"-N", chain});  // fails when it exists: it is refilled below
    std::string comment = "berth pod network " + o_.bridge;
    for (auto args : std::vector<std::vector<std::string>>{
             {"-F", chain},
             {"-A", chain, "-d", o_.pod_cidr, "-m", "comment", "--comment", comment, "-j", "ACCEPT"},
             {"-A", chain, "!", "-d", "224.0.0.0/4", "-m", "comment", "--comment", comment, "-j", "MASQUERADE"}}) {
      auto r = ipt(args);
      if (r.exit_code != 0) return api::Status(api::Reason::InternalError, "iptables: " + trim(r.err));
    }
    std::vector<std::string> jump = {"POSTROUTING", "-s", o_.pod_cidr, "-m", "comment", "--comment", comment, "-j", chain};
    std::vector<std::string> check = {"-C"}, add = {"-A"};
    check.insert(check.end(), jump.begin(), jump.end());
    add.insert(add.end(), jump.begin(), jump.end());
    if (ipt(check).exit_code != 0) {
      auto r = ipt(add);
      if (r.exit_code != 0) return api::Status(api::Reason::InternalError, "iptables: " + trim(r.err));
    }
    masq_ready_ = true;
    return {};
  }

  json portmap_conf(const json& mappings, const json& prev_result) const {
    return {{"cniVersion", "1.0.0"},
            {"name", "berth"},
            {"type", "portmap"},
            {"capabilities", {{"portMappings", true}}},
            {"snat", true},
            {"runtimeConfig", {{"portMappings", mappings}}},
            {"prevResult", prev_result}};
  }

  api::Result<PodNetworkStatus> setup(const std::string& sandbox, const std::string& ns, const std::string& name,
                                      const std::string& uid, const json& port_mappings) override {
    // Pods are set up a few at a time, in the order they came: with a burst of pods, the first
    // ones get their network (and so start) first instead of all finishing together at the end.
    auto slot = gate_.enter();
    // The first setup creates the bridge and its address, and the masquerade rule: alone.
    // host-local locks its own store, so later setups run side by side.
    std::unique_lock first(mu_, std::defer_lock);
    if (!bridge_ready_) first.lock();
    PodNetworkStatus status;
    status.netns_path = netns_path(sandbox);
    if (auto cached = read_file(result_path(sandbox)); cached && is_mounted(status.netns_path)) {
      json j = json::parse(*cached, nullptr, false);
      if (j.is_object() && j["ips"].is_array()) {
        for (const auto& ip : j["ips"]) status.ips.push_back(ip.get<std::string>());
        return status;
      }
    }
    if (auto r = not_ready_reason(); !r.empty()) return api::Status(api::Reason::ServiceUnavailable, r);
    if (auto st = ensure_masquerade(); !st) return st;
    mark(sandbox);
    if (auto st = make_ns_file(o_.netns_dir, status.netns_path, CLONE_NEWNET); !st) return st;
    json lo = {{"cniVersion", "1.0.0"}, {"name", "cni-loopback"}, {"type", "loopback"}};
    auto r = cni("loopback", "ADD", sandbox, status.netns_path, ns, name, uid, lo);
    if (r.exit_code != 0) {
      std::string err = cni_error(r);
      teardown_locked(sandbox, ns, name, uid);
      return api::Status(api::Reason::InternalError, "plugin type=\"loopback\" failed (add): " + err);
    }
    json conf = bridge_conf(o_, false);
    r = cni("bridge", "ADD", sandbox, status.netns_path, ns, name, uid, conf);
    if (r.exit_code != 0) {
      std::string err = cni_error(r);
      teardown_locked(sandbox, ns, name, uid);
      return api::Status(api::Reason::InternalError,
                         "plugin type=\"bridge\" name=\"berth\" failed (add): " + err);
    }
    json result = json::parse(r.out, nullptr, false);
    if (result.is_object() && result["ips"].is_array()) {
      for (const auto& ip : result["ips"]) {
        std::string address = jstr(ip, {"address"});
        status.ips.push_back(address.substr(0, address.find('/')));
      }
    }
    if (status.ips.empty()) {
      teardown_locked(sandbox, ns, name, uid);
      return api::Status(api::Reason::InternalError, "the bridge plugin returned no address: " + trim(r.out));
    }
    // ipMasq as used on ADD, so DEL matches (pods set up before the shared rule had it on).
    json saved = {{"ips", status.ips}, {"cni", result}, {"ipMasq", false}};
    if (port_mappings.is_array() && !port_mappings.empty()) {
      if (!exists(o_.cni_bin_dir + "/portmap")) {
        teardown_locked(sandbox, ns, name, uid);
        return api::Status(api::Reason::InternalError, "hostPort needs the CNI portmap plugin in " + o_.cni_bin_dir);
      }
      r = cni("portmap", "ADD", sandbox, status.netns_path, ns, name, uid, portmap_conf(port_mappings, result));
      if (r.exit_code != 0) {
        std::string err = cni_error(r);
        teardown_locked(sandbox, ns, name, uid);
        return api::Status(api::Reason::InternalError, "plugin type=\"portmap\" name=\"berth\" failed (add): " + err);
      }
      saved["portMappings"] = port_mappings;
    }
    mkdir_p(o_.state_dir + "/results", 0700);
    // Not fsynced: the namespace it describes does not survive the machine either.
    write_file_atomic(result_path(sandbox), saved.dump(), 0600, /*durable=*/false);
    bridge_ready_ = true;
    return status;
  }

  api::Status teardown_locked(const std::string& sandbox, const std::string& ns, const std::string& name,
                              const std::string& uid) {
    std::string path = netns_path(sandbox);
    std::string err;
    json saved = json::parse(read_file_or(result_path(sandbox), "{}"), nullptr, false);
    const json& mappings = at(saved, {"portMappings"});
    if (mappings.is_array() && !mappings.empty() && exists(o_.cni_bin_dir + "/portmap")) {
      auto r = cni("portmap", "DEL", sandbox, is_mounted(path) ? path : "", ns, name, uid,
                   portmap_conf(mappings, at(saved, {"cni"})));
      if (r.exit_code != 0) err = "plugin type=\"portmap\" name=\"berth\" failed (delete): " + cni_error(r);
    }
    if (exists(o_.cni_bin_dir + "/bridge")) {
      const json& masq = at(saved, {"ipMasq"});
      bool ip_masq = masq.is_boolean() ? masq.get<bool>() : !iptables_.empty();
      auto r = cni("bridge", "DEL", sandbox, is_mounted(path) ? path : "", ns, name, uid, bridge_conf(o_, ip_masq));
      if (r.exit_code != 0 && err.empty()) err = "plugin type=\"bridge\" name=\"berth\" failed (delete): " + cni_error(r);
    }
    unmount_all(path);
    ::unlink(path.c_str());
    ::unlink(result_path(sandbox).c_str());
    unmark_if_gone(sandbox);
    if (!err.empty()) return api::Status(api::Reason::InternalError, err);
    return {};
  }

  api::Status teardown(const std::string& sandbox, const std::string& ns, const std::string& name,
                       const std::string& uid) override {
    std::unique_lock first(mu_, std::defer_lock);
    if (!bridge_ready_) first.lock();
    return teardown_locked(sandbox, ns, name, uid);
  }

  api::Result<std::string> ensure_ipc_namespace(const std::string& sandbox) override {
    std::string path = ipc_path(sandbox);
    mark(sandbox);
    if (auto st = make_ns_file(o_.ipcns_dir, path, CLONE_NEWIPC); !st) return st;
    return path;
  }

  void remove_ipc_namespace(const std::string& sandbox) override {
    std::string path = ipc_path(sandbox);
    unmount_all(path);
    ::unlink(path.c_str());
    unmark_if_gone(sandbox);
  }

  std::vector<std::string> sandboxes() const override {
    std::vector<std::string> out;
    if (DIR* d = ::opendir((o_.state_dir + "/sandboxes").c_str())) {
      while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") out.push_back(n);
      }
      ::closedir(d);
    }
    return out;
  }

 private:
  NetworkOptions o_;
  std::string iptables_;  // empty: no iptables, no masquerading (as the bridge plugin's ipMasq needs it too)
  bool masq_ready_ = false;  // under mu_ (set during the first setup)
  std::atomic<bool> bridge_ready_{false};
  std::mutex mu_;
  FifoGate gate_;
};

}  // namespace

api::Result<std::unique_ptr<PodNetwork>> PodNetwork::open(NetworkOptions options) {
  if (options.state_dir.empty()) return api::Status(api::Reason::BadRequest, "network state directory not set");
  if (gateway_of(options.pod_cidr).empty())
    return api::Status(api::Reason::BadRequest, "invalid pod CIDR \"" + options.pod_cidr + "\"");
  if (auto st = mkdir_p(options.state_dir, 0700); !st) return st;
  return std::unique_ptr<PodNetwork>(new CniNetwork(std::move(options)));
}

}  // namespace berth::nodeagent
