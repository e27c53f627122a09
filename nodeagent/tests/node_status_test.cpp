#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "nodeagent/node_status.h"
#include "nodeagent/simulated.h"

using namespace berth::nodeagent;
using namespace std::chrono_literals;

namespace {

NodeFacts facts() {
  NodeFacts f;
  f.name = "worker-1";
  f.hostname = "worker-1";
  f.internal_ip = "192.0.2.10";
  f.cpu = "2";
  f.memory_bytes = int64_t(16) * 1024 * 1024 * 1024;
  f.ephemeral_storage_bytes = int64_t(100) * 1024 * 1024 * 1024;
  f.kernel_version = "6.1.0";
  f.os_image = "Debian GNU/Linux 12 (bookworm)";
  f.container_runtime_version = "runc://1.1.5";
  f.kubelet_version = "v1.32.0-berth.0.1.0";
  f.pod_cidr = "10.88.0.0/16";
  return f;
}

const json* condition(const json& status, const std::string& type) {
  for (const auto& c : status["conditions"])
    if (c["type"] == type) return &c;
  return nullptr;
}

}  // namespace

TEST_CASE("the Node a kubelet registers") {
  auto now = *parse_time("2026-01-01T00:00:00Z");
  json node = build_node(facts(), NodeHealth{}, now);
  CHECK(node["metadata"]["name"] == "worker-1");
  CHECK(node["metadata"]["labels"]["kubernetes.io/hostname"] == "worker-1");
  CHECK(node["metadata"]["labels"]["kubernetes.io/os"] == "linux");
  CHECK(node["metadata"]["labels"]["kubernetes.io/arch"] == "amd64");
  CHECK(node["metadata"]["labels"]["beta.kubernetes.io/os"] == "linux");
  CHECK(node["spec"]["podCIDR"] == "10.88.0.0/16");
  const json& s = node["status"];
  CHECK(s["capacity"]["cpu"] == "2");
  CHECK(s["capacity"]["memory"] == "16Gi");
  CHECK(s["capacity"]["pods"] == "110");
  CHECK(s["allocatable"]["memory"] == "16284Mi");  // capacity - 100Mi
  CHECK(s["allocatable"]["ephemeral-storage"] == "96636764160");  // 90%
  CHECK(s["capacity"]["ephemeral-storage"] == "100Gi");
  CHECK(s["nodeInfo"]["containerRuntimeVersion"] == "runc://1.1.5");
  CHECK(s["nodeInfo"]["kubeletVersion"] == "v1.32.0-berth.0.1.0");
  CHECK(s["nodeInfo"]["operatingSystem"] == "linux");
  CHECK(s["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250);
  CHECK(s["addresses"] == json::array({{{"type", "InternalIP"}, {"address", "192.0.2.10"}},
                                      {{"type", "Hostname"}, {"address", "worker-1"}}}));
  std::vector<std::string> types;
  for (const auto& c : s["conditions"]) types.push_back(c["type"]);
  CHECK(types == std::vector<std::string>{"MemoryPressure", "DiskPressure", "PIDPressure", "Ready"});
  CHECK((*condition(s, "Ready"))["reason"] == "KubeletReady");
  CHECK((*condition(s, "Ready"))["message"] == "kubelet is posting ready status");
  CHECK((*condition(s, "MemoryPressure"))["reason"] == "KubeletHasSufficientMemory");
  CHECK((*condition(s, "MemoryPressure"))["message"] == "kubelet has sufficient memory available");
  CHECK((*condition(s, "DiskPressure"))["reason"] == "KubeletHasNoDiskPressure");
  CHECK((*condition(s, "DiskPressure"))["message"] == "kubelet has no disk pressure");
  CHECK((*condition(s, "PIDPressure"))["reason"] == "KubeletHasSufficientPID");
  CHECK((*condition(s, "PIDPressure"))["message"] == "kubelet has sufficient PID available");
}

TEST_CASE("status updates keep transition times and ignore heartbeats") {
  auto t1 = *parse_time("2026-01-01T00:00:00Z");
  json s1 = build_node_status(facts(), NodeHealth{}, json(), t1);
  json s2 = build_node_status(facts(), NodeHealth{}, s1["conditions"], t1 + 40s);
  CHECK((*condition(s2, "Ready"))["lastHeartbeatTime"] == "2026-01-01T00:00:40Z");
  CHECK((*condition(s2, "Ready"))["lastTransitionTime"] == "2026-01-01T00:00:00Z");
  CHECK_FALSE(node_status_changed(s1, s2));
  NodeHealth bad;
  bad.ready = false;
  bad.not_ready_message = "container runtime network not ready";
  bad.memory_pressure = true;
  json s3 = build_node_status(facts(), bad, s2["conditions"], t1 + 50s);
  CHECK(node_status_changed(s2, s3));
  CHECK((*condition(s3, "Ready"))["status"] == "False");
  CHECK((*condition(s3, "Ready"))["reason"] == "KubeletNotReady");
  CHECK((*condition(s3, "Ready"))["lastTransitionTime"] == "2026-01-01T00:00:50Z");
  CHECK((*condition(s3, "MemoryPressure"))["reason"] == "KubeletHasInsufficientMemory");
}

TEST_CASE("the node lease") {
  auto t = *parse_time("2026-01-01T00:00:00.123456Z");
  json lease = build_lease("worker-1", "uid-1", 40, t);
  CHECK(lease["metadata"]["namespace"] == "kube-node-lease");
  CHECK(lease["spec"]["holderIdentity"] == "worker-1");
  CHECK(lease["spec"]["leaseDurationSeconds"] == 40);
  CHECK(lease["spec"]["renewTime"] == "2026-01-01T00:00:00.123456Z");
  CHECK(lease["metadata"]["ownerReferences"][0]["kind"] == "Node");
  CHECK(lease["metadata"]["ownerReferences"][0]["uid"] == "uid-1");
}

TEST_CASE("time formats") {
  auto t = *parse_time("2026-11-26T07:05:07.5Z");
  CHECK(format_time(t) == "2026-11-26T07:05:07Z");
  CHECK(format_micro_time(t) == "2026-11-26T07:05:07.500000Z");
  CHECK(format_nano_fixed(t) == "2026-11-26T07:05:07.500000000Z");
  CHECK(format_nano_go(t) == "2026-11-26T07:05:07.5Z");
  CHECK(*parse_time("2026-11-26T08:05:07+01:00") == *parse_time("2026-11-26T07:05:07Z"));
  CHECK_FALSE(parse_time("yesterday").has_value());
}

TEST_CASE("simulated nodes: addresses, ranges, pod status") {
  CHECK(simulated_node_ip(0) == "127.1.0.1");
  CHECK(simulated_node_ip(253) == "127.1.0.254");
  CHECK(simulated_node_ip(254) == "127.1.1.1");
  CHECK(simulated_node_ip(4999) == "127.1.19.174");
  CHECK(simulated_pod_cidr("10.128.0.0/9", 0) == "10.128.0.0/24");
  CHECK(simulated_pod_cidr("10.128.0.0/9", 257) == "10.129.1.0/24");
  CHECK(simulated_pod_cidr("10.128.0.0/16", 256) == "");
  json pod = {{"metadata", {{"uid", "u"}, {"name", "p"}, {"namespace", "d"}}},
              {"spec", {{"containers", {{{"name", "a"}, {"image", "nginx"}}}},
                        {"initContainers", {{{"name", "i"}, {"image", "busybox"}}}}}}};
  auto now = *parse_time("2026-01-01T00:00:00Z");
  json s = simulated_pod_status(pod, "127.1.0.1", "10.128.0.5", now);
  CHECK(s["phase"] == "Running");
  CHECK(s["podIP"] == "10.128.0.5");
  CHECK(s["hostIP"] == "127.1.0.1");
  CHECK(s["containerStatuses"][0]["state"]["running"]["startedAt"] == "2026-01-01T00:00:00Z");
  CHECK(s["containerStatuses"][0]["ready"] == true);
  CHECK(starts_with(s["containerStatuses"][0]["containerID"].get<std::string>(), "simulated://"));
  CHECK(s["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed");
  for (const auto& c : s["conditions"]) CHECK(c["status"] == "True");
  pod["spec"]["hostNetwork"] = true;
  CHECK(simulated_pod_status(pod, "127.1.0.1", "10.128.0.5", now)["podIP"] == "127.1.0.1");
}
