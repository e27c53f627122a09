#include "nodeagent/stats.h"

#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace berth::nodeagent {

namespace {

std::map<std::string, uint64_t> stat_file(const std::string& path) {
  std::map<std::string, uint64_t> out;
  auto text = read_file(path);
  if (!text) return out;
  for (const auto& line : split(*text, '\n')) {
    auto sp = line.find(' ');
    if (sp == std::string::npos) continue;
    out[line.substr(0, sp)] = std::strtoull(line.c_str() + sp + 1, nullptr, 10);
  }
  return out;
}

std::optional<uint64_t> number_file(const std::string& path) {
  auto text = read_file(path);
  if (!text) return std::nullopt;
  std::string t = trim(*text);
  if (t.empty() || t == "max") return std::nullopt;
  return std::strtoull(t.c_str(), nullptr, 10);
}

}  // namespace

bool cgroup_v2_host() {
  struct statfs fs;
  return ::statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == 0x63677270;
}

std::optional<uint64_t> cgroup_cpu_usage_ns(const std::string& root, const std::string& path, bool v2) {
  if (v2) {
    auto stat = stat_file(root + path + "/cpu.stat");
    auto it = stat.find("usage_usec");
    if (it == stat.end()) return std::nullopt;
    return it->second * 1000;
  }
  return number_file(root + "/cpuacct" + path + "/cpuacct.usage");
}

MemoryUsage cgroup_memory(const std::string& root, const std::string& path, bool v2) {
  MemoryUsage m;
  if (v2) {
    auto current = number_file(root + path + "/memory.current");
    if (!current) return m;
    auto stat = stat_file(root + path + "/memory.stat");
    m.usage = *current;
    uint64_t inactive = stat["inactive_file"];
    m.working_set = m.usage > inactive ? m.usage - inactive : 0;
    m.rss = stat["anon"];
    m.page_faults = stat["pgfault"];
    m.major_page_faults = stat["pgmajfault"];
  } else {
    auto usage = number_file(root + "/memory" + path + "/memory.usage_in_bytes");
    if (!usage) return m;
    auto stat = stat_file(root + "/memory" + path + "/memory.stat");
    m.usage = *usage;
    uint64_t inactive = stat.count("total_inactive_file") ? stat["total_inactive_file"] : stat["inactive_file"];
    m.working_set = m.usage > inactive ? m.usage - inactive : 0;
    m.rss = stat.count("total_rss") ? stat["total_rss"] : stat["rss"];
    m.page_faults = stat.count("total_pgfault") ? stat["total_pgfault"] : stat["pgfault"];
    m.major_page_faults = stat.count("total_pgmajfault") ? stat["total_pgmajfault"] : stat["pgmajfault"];
  }
  m.valid = true;
  return m;
}

std::optional<uint64_t> cgroup_process_count(const std::string& root, const std::string& path, bool v2) {
  if (v2) return number_file(root + path + "/pids.current");
  return number_file(root + "/pids" + path + "/pids.current");
}

uint64_t node_cpu_usage_ns() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  long hz = ::sysconf(_SC_CLK_TCK);
  if (hz <= 0) hz = 100;
  return (user + nice + system + irq + softirq + steal) * (1000000000ULL / static_cast<uint64_t>(hz));
}

MemoryUsage node_memory(uint64_t capacity) {
  MemoryUsage m;
  std::ifstream in("/proc/meminfo");
  std::map<std::string, uint64_t> info;
  std::string key, unit;
  uint64_t value;
  while (in >> key >> value) {
    std::getline(in, unit);
    if (!key.empty() && key.back() == ':') key.pop_back();
    info[key] = value * 1024;
  }
  uint64_t total = capacity ? capacity : info["MemTotal"];
  m.usage = total - std::min(total, info["MemFree"]);
  uint64_t inactive_file = info["Inactive(file)"];
  m.working_set = m.usage > inactive_file ? m.usage - inactive_file : 0;
  m.rss = info["AnonPages"];
  m.valid = true;
  return m;
}

json summary_cpu(Clock::time_point t, std::optional<uint64_t> nano_cores, std::optional<uint64_t> core_ns) {
  json j = {{"time", format_time(t)}};
  if (nano_cores) j["usageNanoCores"] = *nano_cores;
  if (core_ns) j["usageCoreNanoSeconds"] = *core_ns;
  return j;
}

json summary_memory(Clock::time_point t, const MemoryUsage& m, std::optional<uint64_t> available) {
  json j = {{"time", format_time(t)}};
  if (!m.valid) return j;
  if (available) j["availableBytes"] = *available;
  j["usageBytes"] = m.usage;
  j["workingSetBytes"] = m.working_set;
  j["rssBytes"] = m.rss;
  j["pageFaults"] = m.page_faults;
  j["majorPageFaults"] = m.major_page_faults;
  return j;
}

void StatsCollector::sample(const std::vector<PodSnapshot>& pods) {
  auto now = Clock::now();
  std::vector<std::pair<std::string, std::optional<uint64_t>>> values;
  values.emplace_back("node", node_cpu_usage_ns());
  for (const auto& p : pods) {
    if (!p.cgroup_parent.empty()) values.emplace_back(p.cgroup_parent, cgroup_cpu_usage_ns(root_, p.cgroup_parent, v2_));
    for (const auto& c : p.containers)
      if (c.running && !c.cgroup.empty()) values.emplace_back(c.cgroup, cgroup_cpu_usage_ns(root_, c.cgroup, v2_));
  }
  std::lock_guard lock(mu_);
  std::map<std::string, std::pair<Sample, Sample>> next;
  for (const auto& [key, usage] : values) {
    if (!usage) continue;
    auto it = samples_.find(key);
    Sample s{now, *usage};
    if (it == samples_.end()) next[key] = {s, s};
    else next[key] = {it->second.second, s};
  }
  samples_ = std::move(next);
}

json StatsCollector::cpu_json(const std::string& key, std::optional<uint64_t> usage, Clock::time_point now) {
  std::optional<uint64_t> rate;
  std::lock_guard lock(mu_);
  auto it = samples_.find(key);
  if (it != samples_.end()) {
    const auto& [a, b] = it->second;
    auto dt = std::chrono::duration_cast<std::chrono::nanoseconds>(b.t - a.t).count();
    if (dt > 0 && b.usage >= a.usage) rate = static_cast<uint64_t>(double(b.usage - a.usage) * 1e9 / double(dt));
  }
  return summary_cpu(now, rate, usage);
}

json StatsCollector::summary(const std::string& node_name, const std::vector<PodSnapshot>& pods,
                             const std::string& data_dir, uint64_t memory_capacity, Clock::time_point node_start) {
  auto now = Clock::now();
  MemoryUsage nm = node_memory(memory_capacity);
  uint64_t capacity = memory_capacity ? memory_capacity : nm.usage;
  json node = {{"nodeName", node_name},
               {"startTime", format_time(node_start)},
               {"cpu", cpu_json("node", node_cpu_usage_ns(), now)},
               {"memory", summary_memory(now, nm, capacity > nm.working_set ? capacity - nm.working_set : 0)}};
  struct statvfs vfs;
  if (::statvfs(data_dir.c_str(), &vfs) == 0) {
    uint64_t cap = uint64_t(vfs.f_blocks) * vfs.f_frsize, avail = uint64_t(vfs.f_bavail) * vfs.f_frsize;
    json fs = {{"time", format_time(now)},
               {"availableBytes", avail},
               {"capacityBytes", cap},
               {"usedBytes", cap - uint64_t(vfs.f_bfree) * vfs.f_frsize},
               {"inodesFree", uint64_t(vfs.f_ffree)},
               {"inodes", uint64_t(vfs.f_files)},
               {"inodesUsed", uint64_t(vfs.f_files - vfs.f_ffree)}};
    node["fs"] = fs;
    node["runtime"] = {{"imageFs", fs}, {"containerFs", fs}};
  }
  long max_pid = std::strtol(trim(read_file_or("/proc/sys/kernel/pid_max", "32768")).c_str(), nullptr, 10);
  std::size_t procs = 0;
  if (auto text = read_file("/proc/loadavg")) {
    auto f = split(*text, ' ');
    if (f.size() > 3) procs = std::strtoul(split(f[3], '/').back().c_str(), nullptr, 10);
  }
  node["rlimit"] = {{"time", format_time(now)}, {"maxpid", max_pid}, {"curproc", procs}};

  json pod_list = json::array();
  for (const auto& p : pods) {
    json containers = json::array();
    for (const auto& c : p.containers) {
      if (!c.running || c.cgroup.empty()) continue;
      containers.push_back({{"name", c.name},
                            {"startTime", format_time(c.started_at)},
                            {"cpu", cpu_json(c.cgroup, cgroup_cpu_usage_ns(root_, c.cgroup, v2_), now)},
                            {"memory", summary_memory(now, cgroup_memory(root_, c.cgroup, v2_), std::nullopt)}});
    }
    json entry = {{"podRef", {{"name", p.name}, {"namespace", p.ns}, {"uid", p.uid}}},
                  {"startTime", format_time(p.start_time)},
                  {"containers", containers}};
    if (!p.cgroup_parent.empty()) {
      entry["cpu"] = cpu_json(p.cgroup_parent, cgroup_cpu_usage_ns(root_, p.cgroup_parent, v2_), now);
      entry["memory"] = summary_memory(now, cgroup_memory(root_, p.cgroup_parent, v2_), std::nullopt);
      if (auto n = cgroup_process_count(root_, p.cgroup_parent, v2_)) entry["process_stats"] = {{"process_count", *n}};
    }
    pod_list.push_back(entry);
  }
  return {{"node", node}, {"pods", pod_list}};
}

}  // namespace berth::nodeagent
