// Node registration, status and lease, after pkg/kubelet/nodestatus/setters.go and
// pkg/kubelet/kubelet_node_status.go: the same labels, conditions, reasons and messages.
#include "nodeagent/node_status.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "api/quantity.h"

#ifndef BERTH_VERSION
#define BERTH_VERSION "0.0.0"
#endif

namespace berth::nodeagent {

std::string kubelet_version() { return std::string("v1.32.0-berth.") + BERTH_VERSION; }

namespace {

std::string binary_si(int64_t bytes) {
  return api::Quantity::from_int(bytes, api::Quantity::Format::BinarySI).to_string();
}

json condition(const char* type, bool is_true, const char* reason, const std::string& message, const json& previous,
               const std::string& now) {
  std::string status = is_true ? "True" : "False";
  std::string transition = now;
  if (previous.is_array()) {
    for (const auto& c : previous) {
      if (jstr(c, {"type"}) == type && jstr(c, {"status"}) == status && !jstr(c, {"lastTransitionTime"}).empty())
        transition = jstr(c, {"lastTransitionTime"});
    }
  }
  return {{"type", type},          {"status", status},        {"lastHeartbeatTime", now},
          {"lastTransitionTime", transition}, {"reason", reason}, {"message", message}};
}

}  // namespace

json build_node_status(const NodeFacts& f, const NodeHealth& h, const json& prev, Clock::time_point now_tp) {
  std::string now = format_time(now_tp);
  json capacity = {{"cpu", f.cpu},
                   {"memory", binary_si(f.memory_bytes)},
                   {"ephemeral-storage", binary_si(f.ephemeral_storage_bytes)},
                   {"pods", std::to_string(f.pods)}};
  int64_t mem_alloc = std::max<int64_t>(0, f.memory_bytes - f.memory_reserved_bytes);
  int64_t eph_alloc = f.ephemeral_storage_bytes - f.ephemeral_storage_bytes * f.ephemeral_reserved_percent / 100;
  json allocatable = {{"cpu", f.cpu},
                      {"memory", binary_si(mem_alloc)},
                      {"ephemeral-storage", api::Quantity::from_int(eph_alloc).to_string()},
                      {"pods", std::to_string(f.pods)}};
  if (f.hugepages) {
    capacity["hugepages-1Gi"] = "0";
    capacity["hugepages-2Mi"] = "0";
    allocatable["hugepages-1Gi"] = "0";
    allocatable["hugepages-2Mi"] = "0";
  }
  json conditions = json::array();
  conditions.push_back(condition("MemoryPressure", h.memory_pressure,
                                 h.memory_pressure ? "KubeletHasInsufficientMemory" : "KubeletHasSufficientMemory",
                                 h.memory_pressure ? "kubelet has insufficient memory available"
                                                   : "kubelet has sufficient memory available",
                                 prev, now));
  conditions.push_back(condition("DiskPressure", h.disk_pressure,
                                 h.disk_pressure ? "KubeletHasDiskPressure" : "KubeletHasNoDiskPressure",
                                 h.disk_pressure ? "kubelet has disk pressure" : "kubelet has no disk pressure", prev,
                                 now));
  conditions.push_back(condition("PIDPressure", h.pid_pressure,
                                 h.pid_pressure ? "KubeletHasInsufficientPID" : "KubeletHasSufficientPID",
                                 h.pid_pressure ? "kubelet has insufficient PID available"
                                                : "kubelet has sufficient PID available",
                                 prev, now));
  conditions.push_back(condition("Ready", h.ready, h.ready ? "KubeletReady" : "KubeletNotReady",
                                 h.ready ? "kubelet is posting ready status" : h.not_ready_message, prev, now));
  json addresses = json::array();
  if (!f.internal_ip.empty()) addresses.push_back({{"type", "InternalIP"}, {"address", f.internal_ip}});
  addresses.push_back({{"type", "Hostname"}, {"address", f.hostname.empty() ? f.name : f.hostname}});
  return {{"capacity", capacity},
          {"allocatable", allocatable},
          {"conditions", conditions},
          {"addresses", addresses},
          {"daemonEndpoints", {{"kubeletEndpoint", {{"Port", f.kubelet_port}}}}},
          {"nodeInfo",
           {{"machineID", f.machine_id},
            {"systemUUID", f.system_uuid},
            {"bootID", f.boot_id},
            {"kernelVersion", f.kernel_version},
            {"osImage", f.os_image},
            {"containerRuntimeVersion", f.container_runtime_version},
            {"kubeletVersion", f.kubelet_version},
            {"kubeProxyVersion", ""},
            {"operatingSystem", f.operating_system},
            {"architecture", f.architecture}}}};
}

json build_node(const NodeFacts& f, const NodeHealth& h, Clock::time_point now) {
  json labels = {{"beta.kubernetes.io/arch", f.architecture},
                 {"beta.kubernetes.io/os", f.operating_system},
                 {"kubernetes.io/arch", f.architecture},
                 {"kubernetes.io/hostname", f.hostname.empty() ? f.name : f.hostname},
                 {"kubernetes.io/os", f.operating_system}};
  for (const auto& [k, v] : f.labels) labels[k] = v;
  json node = {{"apiVersion", "v1"},
               {"kind", "Node"},
               {"metadata",
                {{"name", f.name},
                 {"labels", labels},
                 {"annotations", {{"volumes.kubernetes.io/controller-managed-attach-detach", "true"}}}}},
               {"spec", json::object()},
               {"status", build_node_status(f, h, json(), now)}};
  if (!f.pod_cidr.empty()) {
    node["spec"]["podCIDR"] = f.pod_cidr;
    node["spec"]["podCIDRs"] = json::array({f.pod_cidr});
  }
  return node;
}

bool node_status_changed(const json& a, const json& b) {
  auto strip = [](json s) {
    if (s.is_object() && s.contains("conditions") && s["conditions"].is_array())
      for (auto& c : s["conditions"])
        if (c.is_object()) c.erase("lastHeartbeatTime");
    return s;
  };
  return strip(a) != strip(b);
}

json build_lease(const std::string& node_name, const std::string& node_uid, int duration_seconds,
                 Clock::time_point now) {
  json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                {"kind", "Lease"},
                {"metadata", {{"name", node_name}, {"namespace", "kube-node-lease"}}},
                {"spec",
                 {{"holderIdentity", node_name},
                  {"leaseDurationSeconds", duration_seconds},
                  {"renewTime", format_micro_time(now)}}}};
  if (!node_uid.empty())
    lease["metadata"]["ownerReferences"] =
        json::array({{{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node_name}, {"uid", node_uid}}});
  return lease;
}

std::string host_name() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  std::string s = buf;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string default_route_ipv4() {
  std::ifstream in("/proc/net/route");
  std::string line, iface;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string name, dest;
    ss >> name >> dest;
    if (dest == "00000000") {
      iface = name;
      break;
    }
  }
  if (iface.empty()) return "";
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) != 0) return "";
  std::string out;
  for (ifaddrs* i = ifs; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || iface != i->ifa_name) continue;
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof(buf));
    out = buf;
    break;
  }
  ::freeifaddrs(ifs);
  return out;
}

namespace {

int64_t meminfo_kb(const std::string& key) {
  std::ifstream in("/proc/meminfo");
  std::string k;
  int64_t v = 0;
  std::string unit;
  while (in >> k >> v) {
    std::getline(in, unit);
    if (k == key + ":") return v;
  }
  return 0;
}

std::string os_release_pretty() {
  auto text = read_file("/etc/os-release");
  if (!text) return "Linux";
  for (const auto& line : split(*text, '\n')) {
    if (starts_with(line, "PRETTY_NAME=")) {
      std::string v = line.substr(12);
      if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'')) v = v.substr(1, v.size() - 2);
      return v;
    }
  }
  return "Linux";
}

}  // namespace

NodeFacts detect_host_facts(const std::string& node_name, const std::string& node_ip, const std::string& data_dir,
                            const std::string& runtime_name, const std::string& runtime_path) {
  NodeFacts f;
  f.name = node_name;
  f.hostname = node_name;
  f.internal_ip = node_ip.empty() ? default_route_ipv4() : node_ip;
  if (f.internal_ip.empty()) f.internal_ip = "127.0.0.1";
  long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  f.cpu = std::to_string(cpus > 0 ? cpus : 1);
  f.memory_bytes = meminfo_kb("MemTotal") * 1024;
  struct statvfs vfs;
  if (::statvfs(data_dir.c_str(), &vfs) == 0) f.ephemeral_storage_bytes = int64_t(vfs.f_blocks) * int64_t(vfs.f_frsize);
  f.machine_id = trim(read_file_or("/etc/machine-id"));
  f.system_uuid = trim(read_file_or("/sys/class/dmi/id/product_uuid"));
  if (f.system_uuid.empty()) f.system_uuid = f.machine_id;
  f.boot_id = trim(read_file_or("/proc/sys/kernel/random/boot_id"));
  utsname u{};
  if (::uname(&u) == 0) {
    f.kernel_version = u.release;
    std::string m = u.machine;
    f.architecture = m == "x86_64" ? "amd64" : m == "aarch64" ? "arm64" : m;
  }
  f.os_image = os_release_pretty();
  std::string version = "unknown";
  auto r = run_command({runtime_path.empty() ? runtime_name : runtime_path, "--version"}, "", std::chrono::seconds(10));
  if (r.exit_code == 0) {
    // "runc version 1.1.5" / "crun version 1.8.1"
    auto first = split(r.out, '\n')[0];
    auto words = split(first, ' ');
    if (words.size() >= 3) version = words[2];
    version = version.substr(0, version.find('+'));  // "1.1.5+ds1": distribution build metadata
  }
  f.container_runtime_version = runtime_name + "://" + version;
  f.kubelet_version = kubelet_version();
  return f;
}

NodeHealth host_health(const NodeFacts& facts, const std::string& data_dir) {
  NodeHealth h;
  int64_t available = meminfo_kb("MemAvailable") * 1024;
  if (available > 0 && available < facts.memory_reserved_bytes) h.memory_pressure = true;
  struct statvfs vfs;
  if (::statvfs(data_dir.c_str(), &vfs) == 0 && vfs.f_blocks > 0) {
    double free_ratio = double(vfs.f_bavail) / double(vfs.f_blocks);
    if (free_ratio * 100.0 < facts.ephemeral_reserved_percent) h.disk_pressure = true;
  }
  return h;
}

}  // namespace berth::nodeagent
