// The scheduling cycle alone, without the API: how many pods per second the scheduler can place
// with N nodes (default 5000) and M pending pods (default 10000) of a few owners, as the
// scheduler's loop does it (filter until enough feasible nodes, score, pick, assume).
//
//   controllers_scheduler_bench [nodes] [pods]
// Prints `name: value unit` lines.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "controllers/scheduler.h"

using namespace berth::controllers;
using namespace berth::controllers::scheduling;
using nlohmann::json;

int main(int argc, char** argv) {
  int node_count = argc > 1 ? std::atoi(argv[1]) : 5000;
  int pod_count = argc > 2 ? std::atoi(argv[2]) : 10000;

  std::vector<std::unique_ptr<NodeInfo>> owned;
  std::vector<NodeInfo*> nodes;
  for (int i = 0; i < node_count; ++i) {
    std::string name = "node-" + std::to_string(i);
    json n = {{"metadata", {{"name", name}, {"labels", {{"kubernetes.io/hostname", name},
                                                         {"topology.kubernetes.io/zone", "zone-" + std::to_string(i % 3)}}}}},
              {"spec", json::object()},
              {"status", {{"allocatable", {{"cpu", "16"}, {"memory", "64Gi"}, {"pods", "110"}}},
                          {"conditions", json::array({{{"type", "Ready"}, {"status", "True"}}})}}}};
    if (i % 10 == 0) n["spec"]["taints"] = json::array({{{"key", "dedicated"}, {"value", "infra"}, {"effect", "NoSchedule"}}});
    auto info = std::make_unique<NodeInfo>();
    info->set_node(std::make_shared<const json>(std::move(n)));
    nodes.push_back(info.get());
    owned.push_back(std::move(info));
  }
  std::vector<PodInfo> pods;
  pods.reserve(static_cast<std::size_t>(pod_count));
  for (int i = 0; i < pod_count; ++i) {
    std::string name = "pod-" + std::to_string(i);
    json p = {{"metadata", {{"name", name}, {"namespace", "bench"}, {"uid", "uid-" + name},
                            {"ownerReferences", json::array({{{"uid", "rs-" + std::to_string(i % 20)}, {"controller", true}}})}}},
              {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "nginx"},
                                                     {"resources", {{"requests", {{"cpu", "100m"}, {"memory", "128Mi"}}}}}}})},
                        {"tolerations", json::array({{{"key", "node.kubernetes.io/not-ready"}, {"operator", "Exists"},
                                                      {"effect", "NoExecute"}, {"tolerationSeconds", 300}}})}}}};
    pods.push_back(PodInfo::from(std::make_shared<const json>(std::move(p))));
  }

  std::mt19937_64 rng{42};
  int next_start = 0, scheduled = 0;
  std::string failure;
  auto start = std::chrono::steady_clock::now();
  for (const auto& p : pods) {
    int index = schedule_cycle(p, nodes, next_start, 0, rng(), failure);
    if (index < 0) continue;
    nodes[static_cast<std::size_t>(index)]->add_pod(p);
    ++scheduled;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int max_per_node = 0;
  for (auto* n : nodes) max_per_node = std::max(max_per_node, n->pod_count);
  std::printf("scheduler_nodes: %d nodes\n", node_count);
  std::printf("scheduler_pods_scheduled: %d pods\n", scheduled);
  std::printf("scheduler_cycle_throughput: %.0f pods/s\n", scheduled / secs);
  std::printf("scheduler_cycle_mean: %.1f us\n", secs * 1e6 / std::max(1, scheduled));
  std::printf("scheduler_max_pods_on_a_node: %d pods\n", max_per_node);
  return scheduled == pod_count ? 0 : 1;
}
