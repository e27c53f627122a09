// Resource usage from cgroups (v1 and v2) in the kubelet's Summary API shape (/stats/summary):
// node and pods with cpu usageNanoCores/usageCoreNanoSeconds and memory workingSetBytes. A
// sampler records CPU counters every few seconds so usageNanoCores is a rate, as cAdvisor's.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "nodeagent/pod_worker.h"
#include "nodeagent/util.h"

namespace berth::nodeagent {

struct MemoryUsage {
  uint64_t usage = 0, working_set = 0, rss = 0, page_faults = 0, major_page_faults = 0;
  bool valid = false;
};

// Paths are cgroupsPath-style ("/berth/kubepods/pod<uid>/<id>"); root is "/sys/fs/cgroup".
std::optional<uint64_t> cgroup_cpu_usage_ns(const std::string& root, const std::string& path, bool v2);
MemoryUsage cgroup_memory(const std::string& root, const std::string& path, bool v2);
std::optional<uint64_t> cgroup_process_count(const std::string& root, const std::string& path, bool v2);
// Whether /sys/fs/cgroup is a pure cgroup v2 hierarchy.
bool cgroup_v2_host();

// The node's CPU (from /proc/stat) and memory (the root cgroup / meminfo).
uint64_t node_cpu_usage_ns();
MemoryUsage node_memory(uint64_t capacity);

class StatsCollector {
 public:
  explicit StatsCollector(std::string cgroup_root_fs = "/sys/fs/cgroup") : root_(std::move(cgroup_root_fs)), v2_(cgroup_v2_host()) {}
  bool v2() const { return v2_; }
  // Records CPU counters for the node and every pod and container cgroup.
  void sample(const std::vector<PodSnapshot>& pods);
  // The Summary: node (name, startTime, cpu, memory, fs, rlimit) and pods.
  json summary(const std::string& node_name, const std::vector<PodSnapshot>& pods, const std::string& data_dir,
               uint64_t memory_capacity, Clock::time_point node_start);

 private:
  struct Sample {
    Clock::time_point t;
    uint64_t usage;
  };
  json cpu_json(const std::string& key, std::optional<uint64_t> usage, Clock::time_point now);
  std::string root_;
  bool v2_;
  std::mutex mu_;
  std::map<std::string, std::pair<Sample, Sample>> samples_;  // key -> (older, newer)
};

// The Summary API CPU/memory objects from raw numbers (shared with simulated nodes).
json summary_cpu(Clock::time_point t, std::optional<uint64_t> nano_cores, std::optional<uint64_t> core_ns);
json summary_memory(Clock::time_point t, const MemoryUsage& m, std::optional<uint64_t> available);

}  // namespace berth::nodeagent
