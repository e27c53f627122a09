#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "nodeagent/admission.h"

using namespace berth::nodeagent;

namespace {

json node(int pods = 110) {
  return {{"metadata", {{"name", "n1"}, {"labels", {{"kubernetes.io/hostname", "n1"}, {"kubernetes.io/os", "linux"}}}}},
          {"status",
           {{"allocatable", {{"cpu", "2"}, {"memory", "4Gi"}, {"ephemeral-storage", "10Gi"}, {"pods", std::to_string(pods)}}},
            {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
}

json pod(const std::string& name, const std::string& cpu = "", const std::string& memory = "") {
  json c = {{"name", "main"}, {"image", "busybox"}};
  if (!cpu.empty()) c["resources"]["requests"]["cpu"] = cpu;
  if (!memory.empty()) c["resources"]["requests"]["memory"] = memory;
  return {{"metadata", {{"name", name}, {"namespace", "default"}, {"uid", "uid-" + name}}},
          {"spec", {{"nodeName", "n1"}, {"containers", json::array({c})}}}};
}

AdmitResult admit(const json& p, const json& n, const std::vector<json>& admitted) {
  std::vector<std::shared_ptr<const json>> ptrs;
  for (const auto& a : admitted) ptrs.push_back(std::make_shared<const json>(a));
  return admit_pod(p, n, ptrs);
}

}  // namespace

TEST_CASE("a pod that fits is admitted") {
  auto r = admit(pod("a", "500m", "1Gi"), node(), {pod("b", "1", "1Gi")});
  CHECK(r.admit);
}

TEST_CASE("cpu beyond allocatable: OutOfcpu with millicores, used and capacity") {
  auto r = admit(pod("a", "1500m"), node(), {pod("b", "600m"), pod("c")});
  CHECK_FALSE(r.admit);
  CHECK(r.reason == "OutOfcpu");
  CHECK(r.message == "Node didn't have enough resource: cpu, requested: 1500, used: 600, capacity: 2000");
  CHECK(rejection_message(r) ==
        "Pod was rejected: Node didn't have enough resource: cpu, requested: 1500, used: 600, capacity: 2000");
}

TEST_CASE("memory beyond allocatable: OutOfmemory in bytes") {
  auto r = admit(pod("a", "", "3Gi"), node(), {pod("b", "", "2Gi")});
  CHECK(r.reason == "OutOfmemory");
  CHECK(r.message == "Node didn't have enough resource: memory, requested: 3221225472, used: 2147483648, capacity: 4294967296");
}

TEST_CASE("the pod count is checked first, even for a pod without requests") {
  auto r = admit(pod("a", "5"), node(2), {pod("b"), pod("c")});
  CHECK(r.reason == "OutOfpods");
  CHECK(r.message == "Node didn't have enough resource: pods, requested: 1, used: 2, capacity: 2");
  CHECK(admit(pod("a"), node(3), {pod("b"), pod("c")}).admit);
}

TEST_CASE("init containers count by their largest request, sidecars add up; limits alone do not count") {
  json p = pod("a", "500m");
  p["spec"]["initContainers"] = {{{"name", "setup"}, {"resources", {{"requests", {{"cpu", "1800m"}}}}}},
                                 {{"name", "side"}, {"restartPolicy", "Always"}, {"resources", {{"requests", {{"cpu", "100m"}}}}}}};
  auto r = admit(p, node(), {pod("b", "300m")});
  CHECK(r.reason == "OutOfcpu");
  CHECK(r.message == "Node didn't have enough resource: cpu, requested: 1800, used: 300, capacity: 2000");
  json only_limits = pod("a");
  only_limits["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "64";
  CHECK(admit(only_limits, node(), {}).admit);
}

TEST_CASE("an extended resource the node does not have is ignored; one it has is checked") {
  json p = pod("a");
  p["spec"]["containers"][0]["resources"]["requests"]["example.com/dongle"] = "1";
  CHECK(admit(p, node(), {}).admit);
  json n = node();
  n["status"]["allocatable"]["example.com/dongle"] = "1";
  CHECK(admit(p, n, {}).admit);
  auto r = admit(p, n, {p});
  CHECK(r.reason == "OutOfexample.com/dongle");
  CHECK(r.message == "Node didn't have enough resource: example.com/dongle, requested: 1, used: 1, capacity: 1");
}

TEST_CASE("nodeSelector and required node affinity must match the node's labels") {
  json p = pod("a");
  p["spec"]["nodeSelector"] = {{"disk", "ssd"}};
  auto r = admit(p, node(), {});
  CHECK(r.reason == "NodeAffinity");
  CHECK(rejection_message(r) == "Pod was rejected: Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector");
  json n = node();
  n["metadata"]["labels"]["disk"] = "ssd";
  CHECK(admit(p, n, {}).admit);
  json q = pod("q");
  q["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] = {
      {{"matchExpressions", {{{"key", "kubernetes.io/hostname"}, {"operator", "NotIn"}, {"values", {"n1"}}}}}}};
  CHECK(admit(q, node(), {}).reason == "NodeAffinity");
}

TEST_CASE("a host port already taken on the node") {
  json p = pod("a");
  p["spec"]["containers"][0]["ports"] = {{{"containerPort", 80}, {"hostPort", 8080}}};
  json other = p;
  other["metadata"]["uid"] = "uid-b";
  auto r = admit(p, node(), {other});
  CHECK(r.reason == "NodePorts");
  CHECK(r.message == "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports");
}

TEST_CASE("untolerated NoExecute taints reject; NoSchedule ones do not") {
  json n = node();
  n["spec"]["taints"] = {{{"key", "dedicated"}, {"value", "db"}, {"effect", "NoSchedule"}}};
  CHECK(admit(pod("a"), n, {}).admit);
  n["spec"]["taints"].push_back({{"key", "evict"}, {"effect", "NoExecute"}});
  auto r = admit(pod("a"), n, {});
  CHECK(r.reason == "TaintToleration");
  CHECK(r.message == "Predicate TaintToleration failed: node(s) had taints that the pod didn't tolerate");
  json p = pod("a");
  p["spec"]["tolerations"] = {{{"key", "evict"}, {"operator", "Exists"}}};
  CHECK(admit(p, n, {}).admit);
}

TEST_CASE("the OS label and field") {
  json p = pod("a");
  p["metadata"]["labels"]["kubernetes.io/os"] = "windows";
  CHECK(admit(p, node(), {}).reason == "PodOSSelectorNodeLabelDoesNotMatch");
  json q = pod("b");
  q["spec"]["os"]["name"] = "windows";
  auto r = admit(q, node(), {});
  CHECK(r.reason == "PodOSNotSupported");
  CHECK(r.message == "Failed to admit pod as the OS field doesn't match node OS");
}
