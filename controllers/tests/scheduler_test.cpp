#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "controllers/scheduler.h"

using namespace berth::controllers;
using namespace berth::controllers::scheduling;
using nlohmann::json;

namespace {

json make_node(const std::string& name, const std::string& cpu, const std::string& memory, int pods = 110) {
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata", {{"name", name}, {"labels", {{"kubernetes.io/hostname", name}}}}},
          {"spec", json::object()},
          {"status",
           {{"allocatable", {{"cpu", cpu}, {"memory", memory}, {"pods", std::to_string(pods)}}},
            {"conditions", json::array({{{"type", "Ready"}, {"status", "True"}}})}}}};
}

NodeInfo info(const json& node) {
  NodeInfo n;
  n.set_node(std::make_shared<const json>(node));
  return n;
}

json make_pod(const std::string& name, const std::string& cpu = "", const std::string& memory = "") {
  json c = {{"name", "c"}, {"image", "nginx"}};
  if (!cpu.empty()) c["resources"]["requests"]["cpu"] = cpu;
  if (!memory.empty()) c["resources"]["requests"]["memory"] = memory;
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", "default"}, {"uid", "uid-" + name}}},
          {"spec", {{"containers", json::array({c})}, {"priority", 0}, {"preemptionPolicy", "PreemptLowerPriority"}}}};
}

PodInfo pod_info(const json& pod) { return PodInfo::from(std::make_shared<const json>(pod)); }

}  // namespace

TEST_CASE("pod requests: containers add up, init containers take the max, sidecars add") {
  json pod = make_pod("p", "100m", "64Mi");
  pod["spec"]["containers"].push_back({{"name", "d"}, {"resources", {{"requests", {{"cpu", "200m"}}}}}});
  pod["spec"]["initContainers"] = json::array(
      {{{"name", "side"}, {"restartPolicy", "Always"}, {"resources", {{"requests", {{"cpu", "50m"}}}}}},
       {{"name", "init"}, {"resources", {{"requests", {{"cpu", "1"}, {"memory", "1Gi"}}}}}}});
  PodInfo p = pod_info(pod);
  // containers 300m + sidecar 50m = 350m; init 1000m + sidecar 50m = 1050m -> 1050m
  CHECK(p.requests.milli_cpu == 1050);
  CHECK(p.requests.memory == 1024LL * 1024 * 1024);
  // Scoring fills unset requests with 100m / 200Mi per container.
  PodInfo empty = pod_info(make_pod("e"));
  CHECK(empty.requests.milli_cpu == 0);
  CHECK(empty.nonzero_milli_cpu == 100);
  CHECK(empty.nonzero_memory == 200LL * 1024 * 1024);
}

TEST_CASE("NodeResourcesFit reasons, in upstream's order") {
  NodeInfo n = info(make_node("n1", "1", "1Gi", 1));
  PodInfo small = pod_info(make_pod("a", "500m", "256Mi"));
  CHECK(filter(small, n).ok());
  n.add_pod(small);
  PodInfo big = pod_info(make_pod("b", "600m", "900Mi"));
  Status s = filter(big, n);
  CHECK(s.code == Code::Unschedulable);
  REQUIRE(s.reasons.size() == 3);
  CHECK(s.reasons[0] == "Too many pods");
  CHECK(s.reasons[1] == "Insufficient cpu");
  CHECK(s.reasons[2] == "Insufficient memory");
  // More than the whole node: preemption cannot help.
  PodInfo huge = pod_info(make_pod("h", "2"));
  CHECK(filter_resources_fit(huge, n).code == Code::UnschedulableAndUnresolvable);
  // Extended resources.
  json gpu = make_pod("g");
  gpu["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = "1";
  NodeInfo roomy = info(make_node("n2", "4", "4Gi"));
  auto r = filter(pod_info(gpu), roomy);
  REQUIRE(r.reasons.size() == 1);
  CHECK(r.reasons[0] == "Insufficient nvidia.com/gpu");
  // Removing the pod frees its share.
  CHECK(n.remove_pod("uid-a"));
  CHECK(n.requested.milli_cpu == 0);
  CHECK(n.pod_count == 0);
  CHECK(filter(big, n).ok());
}

TEST_CASE("taints and tolerations, cordon, not-ready nodes") {
  json node = make_node("n1", "4", "4Gi");
  node["spec"]["taints"] = json::array({{{"key", "dedicated"}, {"value", "gpu"}, {"effect", "NoSchedule"}},
                                        {{"key", "soft"}, {"effect", "PreferNoSchedule"}}});
  PodInfo p = pod_info(make_pod("p"));
  Status s = filter(p, info(node));
  CHECK(s.code == Code::UnschedulableAndUnresolvable);
  CHECK(s.reasons == std::vector<std::string>{"node(s) had untolerated taint {dedicated: gpu}"});

  json tolerant = make_pod("t");
  tolerant["spec"]["tolerations"] = json::array({{{"key", "dedicated"}, {"operator", "Equal"}, {"value", "gpu"}}});
  CHECK(filter(pod_info(tolerant), info(node)).ok());
  tolerant["spec"]["tolerations"] = json::array({{{"key", "dedicated"}, {"operator", "Exists"}, {"effect", "NoSchedule"}}});
  CHECK(filter(pod_info(tolerant), info(node)).ok());
  tolerant["spec"]["tolerations"] = json::array({{{"key", "dedicated"}, {"operator", "Exists"}, {"effect", "NoExecute"}}});
  CHECK_FALSE(filter(pod_info(tolerant), info(node)).ok());

  json cordoned = make_node("n2", "4", "4Gi");
  cordoned["spec"]["unschedulable"] = true;
  CHECK(filter(p, info(cordoned)).reasons == std::vector<std::string>{"node(s) were unschedulable"});
  json tolerates_cordon = make_pod("tc");
  tolerates_cordon["spec"]["tolerations"] =
      json::array({{{"key", "node.kubernetes.io/unschedulable"}, {"operator", "Exists"}, {"effect", "NoSchedule"}}});
  CHECK(filter(pod_info(tolerates_cordon), info(cordoned)).ok());

  json not_ready = make_node("n3", "4", "4Gi");
  not_ready["status"]["conditions"][0]["status"] = "False";
  CHECK(filter(p, info(not_ready)).reasons ==
        std::vector<std::string>{"node(s) had untolerated taint {node.kubernetes.io/not-ready: }"});
  json unknown = make_node("n4", "4", "4Gi");
  unknown["status"]["conditions"][0]["status"] = "Unknown";
  CHECK(filter(p, info(unknown)).reasons ==
        std::vector<std::string>{"node(s) had untolerated taint {node.kubernetes.io/unreachable: }"});
}

TEST_CASE("nodeSelector and required node affinity") {
  json node = make_node("n1", "4", "4Gi");
  node["metadata"]["labels"]["zone"] = "a";
  node["metadata"]["labels"]["gen"] = "5";
  NodeInfo n = info(node);
  json p = make_pod("p");
  p["spec"]["nodeSelector"] = {{"zone", "b"}};
  CHECK(filter(pod_info(p), n).reasons == std::vector<std::string>{"node(s) didn't match Pod's node affinity/selector"});
  p["spec"]["nodeSelector"] = {{"zone", "a"}};
  CHECK(filter(pod_info(p), n).ok());

  auto with_terms = [&](json terms) {
    json q = make_pod("q");
    q["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] = terms;
    return pod_info(q);
  };
  CHECK(filter(with_terms(json::array({{{"matchExpressions", json::array({{{"key", "zone"}, {"operator", "In"}, {"values", {"a", "c"}}}})}}})), n).ok());
  CHECK_FALSE(filter(with_terms(json::array({{{"matchExpressions", json::array({{{"key", "zone"}, {"operator", "NotIn"}, {"values", {"a"}}}})}}})), n).ok());
  CHECK(filter(with_terms(json::array({{{"matchExpressions", json::array({{{"key", "gen"}, {"operator", "Gt"}, {"values", {"4"}}}})}}})), n).ok());
  CHECK_FALSE(filter(with_terms(json::array({{{"matchExpressions", json::array({{{"key", "gen"}, {"operator", "Lt"}, {"values", {"4"}}}})}}})), n).ok());
  CHECK(filter(with_terms(json::array({{{"matchExpressions", json::array({{{"key", "gpu"}, {"operator", "DoesNotExist"}}})}}})), n).ok());
  CHECK(filter(with_terms(json::array({{{"matchFields", json::array({{{"key", "metadata.name"}, {"operator", "In"}, {"values", {"n1"}}}})}}})), n).ok());
  // Terms are ORed; an empty term matches nothing.
  CHECK(filter(with_terms(json::array({json::object(), {{"matchExpressions", json::array({{{"key", "zone"}, {"operator", "Exists"}}})}}})), n).ok());
  CHECK_FALSE(filter(with_terms(json::array({json::object()})), n).ok());
}

TEST_CASE("host ports") {
  NodeInfo n = info(make_node("n1", "4", "4Gi"));
  json a = make_pod("a");
  a["spec"]["containers"][0]["ports"] = json::array({{{"containerPort", 80}, {"hostPort", 8080}}});
  n.add_pod(pod_info(a));
  json b = make_pod("b");
  b["spec"]["containers"][0]["ports"] = json::array({{{"containerPort", 80}, {"hostPort", 8080}, {"hostIP", "10.0.0.1"}}});
  CHECK(filter(pod_info(b), n).reasons == std::vector<std::string>{"node(s) didn't have free ports for the requested pod ports"});
  b["spec"]["containers"][0]["ports"][0]["protocol"] = "UDP";
  CHECK(filter(pod_info(b), n).ok());
  n.remove_pod("uid-a");
  b["spec"]["containers"][0]["ports"][0]["protocol"] = "TCP";
  CHECK(filter(pod_info(b), n).ok());
}

TEST_CASE("the FitError message with its preemption part") {
  json tainted1 = make_node("n2", "4", "4Gi");
  tainted1["spec"]["taints"] = json::array({{{"key", "node-role.kubernetes.io/control-plane"}, {"effect", "NoSchedule"}}});
  json tainted2 = tainted1;
  tainted2["metadata"]["name"] = "n3";
  NodeInfo small = info(make_node("n1", "1", "4Gi"));
  NodeInfo t1 = info(tainted1), t2 = info(tainted2);
  std::vector<const NodeInfo*> nodes{&small, &t1, &t2};

  // More cpu than the small node has at all: no preemption can help anywhere.
  PodInfo p = pod_info(make_pod("p", "2"));
  std::vector<Status> statuses;
  for (auto* n : nodes) statuses.push_back(filter(p, *n));
  CHECK(fit_error_message(p, nodes, statuses) ==
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint "
        "{node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: "
        "3 Preemption is not helpful for scheduling.");

  // Fits the node when empty, but its pods are not of lower priority.
  small.add_pod(pod_info(make_pod("x", "800m")));
  PodInfo q = pod_info(make_pod("q", "500m"));
  statuses.clear();
  for (auto* n : nodes) statuses.push_back(filter(q, *n));
  CHECK(fit_error_message(q, nodes, statuses) ==
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint "
        "{node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: "
        "1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.");

  json never = make_pod("n", "500m");
  never["spec"]["preemptionPolicy"] = "Never";
  PodInfo nv = pod_info(never);
  CHECK(fit_error_message(nv, nodes, statuses) ==
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint "
        "{node-role.kubernetes.io/control-plane: }. preemption: not eligible due to preemptionPolicy=Never.");
}

TEST_CASE("scores prefer emptier nodes and spread an owner's pods") {
  NodeInfo busy = info(make_node("busy", "4", "8Gi"));
  NodeInfo idle = info(make_node("idle", "4", "8Gi"));
  busy.add_pod(pod_info(make_pod("x", "3", "6Gi")));
  PodInfo p = pod_info(make_pod("p", "100m", "128Mi"));
  CHECK(least_allocated_score(p, idle) > least_allocated_score(p, busy));
  auto scores = score(p, {&busy, &idle});
  CHECK(scores[1] > scores[0]);

  // Same load, but one node already runs a replica of the same owner.
  NodeInfo a = info(make_node("a", "4", "8Gi"));
  NodeInfo b = info(make_node("b", "4", "8Gi"));
  json sibling = make_pod("s1", "100m", "128Mi");
  sibling["metadata"]["ownerReferences"] = json::array({{{"uid", "rs-1"}, {"controller", true}, {"kind", "ReplicaSet"}}});
  json other = make_pod("o1", "100m", "128Mi");
  a.add_pod(pod_info(sibling));
  b.add_pod(pod_info(other));
  json mine = make_pod("s2", "100m", "128Mi");
  mine["metadata"]["ownerReferences"] = sibling["metadata"]["ownerReferences"];
  auto spread = score(pod_info(mine), {&a, &b});
  CHECK(spread[1] > spread[0]);
}

TEST_CASE("how many feasible nodes to find") {
  CHECK(num_feasible_nodes_to_find(3, 0) == 3);
  CHECK(num_feasible_nodes_to_find(99, 0) == 99);
  CHECK(num_feasible_nodes_to_find(100, 0) == 100);   // 50% = 50, at least 100
  CHECK(num_feasible_nodes_to_find(1000, 0) == 420);  // 50 - 8 = 42%
  CHECK(num_feasible_nodes_to_find(5000, 0) == 500);  // 50 - 40 = 10%
  CHECK(num_feasible_nodes_to_find(10000, 0) == 500); // floor of 5%
  CHECK(num_feasible_nodes_to_find(5000, 100) == 5000);
  CHECK(num_feasible_nodes_to_find(5000, 1) == 100);
}

// ---- the scheduler against a fake API: bindings in flight together, assumptions kept right ----

#include <atomic>
#include <thread>

#include "controllers/controller.h"
#include "controllers/tests/fake_api.h"

namespace {

using namespace std::chrono_literals;
using berth::controllers::testing::FakeApi;

template <class F>
bool eventually(F f, std::chrono::milliseconds timeout = 10000ms) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

}  // namespace

TEST_CASE("bindings run concurrently; a failed binding's assumption is forgotten and the pod retried") {
  auto api = std::make_shared<FakeApi>();
  api->put("nodes", make_node("n1", "1", "8Gi"));  // room for exactly ten pods of 100m
  for (int i = 0; i < 10; ++i) api->put("pods", make_pod("p-" + std::to_string(i), "100m"));

  std::atomic<int> in_flight{0}, max_in_flight{0}, failures{0};
  api->intercept = [&](const std::string& method, const std::string& path) -> std::optional<berth::client::Response> {
    if (method != "POST" || path.find("/binding") == std::string::npos) return std::nullopt;
    int now = ++in_flight;
    for (int m = max_in_flight.load(); now > m && !max_in_flight.compare_exchange_weak(m, now);) {
    }
    std::this_thread::sleep_for(100ms);  // a slow server: a scheduler waiting for each would take 1 s
    --in_flight;
    std::string name = path.substr(0, path.rfind("/binding"));
    name = name.substr(name.rfind('/') + 1);
    berth::client::Response r;
    if (name == "p-3" && failures++ == 0) {  // the first attempt fails as a server error would
      r.status = 500;
      r.body = json{{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Failure"}, {"reason", "InternalError"},
                    {"message", "etcdserver: request timed out"}, {"code", 500}}.dump();
      return r;
    }
    json pod;
    {
      std::lock_guard lock(api->mu);
      pod = api->objects.at(FakeApi::key("pods", "default", name));
    }
    pod["spec"]["nodeName"] = "n1";
    api->put("pods", pod);
    r.status = 201;
    r.body = json{{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Success"}, {"code", 201}}.dump();
    return r;
  };

  ControllerOptions options;
  InformerFactory informers(api);
  EventSink events(api, 1);
  Executor executor(4);
  Context ctx{api, informers, events, executor, options};
  auto scheduler = new_scheduler(ctx);
  informers.start();
  REQUIRE(informers.wait_synced(5000ms));
  auto started = std::chrono::steady_clock::now();
  scheduler->start();

  auto bound = [&] {
    std::lock_guard lock(api->mu);
    int n = 0;
    for (const auto& [k, obj] : api->objects)
      if (k.rfind("pods/", 0) == 0 && !str(at(obj, {"spec", "nodeName"})).empty()) ++n;
    return n;
  };
  REQUIRE(eventually([&] { return bound() == 10; }));
  CHECK(max_in_flight.load() >= 5);
  CHECK(failures.load() == 2);  // p-3 failed once, then was bound
  // Nine pods at 100 ms each plus a retry after a one-second backoff: far less than one at a time.
  CHECK(std::chrono::steady_clock::now() - started < 5s);

  // The node is full: had the failed attempt's assumption stayed, p-3 would have been counted
  // twice and one of the ten would not have fitted. An eleventh does not fit.
  api->put("pods", make_pod("p-10", "100m"));
  std::this_thread::sleep_for(500ms);
  CHECK(bound() == 10);
  {
    std::lock_guard lock(api->mu);
    CHECK(str(at(api->objects.at(FakeApi::key("pods", "default", "p-10")), {"spec", "nodeName"})).empty());
  }
  // Deleting a bound pod frees its room.
  api->erase("pods", "default", "p-0");
  REQUIRE(eventually([&] { return bound() == 10; }));
  {
    std::lock_guard lock(api->mu);
    CHECK(str(at(api->objects.at(FakeApi::key("pods", "default", "p-10")), {"spec", "nodeName"})) == "n1");
  }

  informers.stop();
  scheduler->stop();
  executor.stop();
  events.stop();
}
