#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <atomic>

#include "controllers/replicaset.h"

using namespace berth::controllers;
using namespace berth::controllers::replicaset;
using nlohmann::json;

namespace {

TimePoint t(int seconds_ago) { return Clock::now() - std::chrono::seconds(seconds_ago); }

json pod(const std::string& name, const std::string& node, const std::string& phase, bool ready, int created_ago,
         int ready_ago = 0) {
  json p = {{"metadata", {{"name", name}, {"namespace", "default"}, {"uid", "uid-" + name},
                          {"creationTimestamp", format_time(t(created_ago))}}},
            {"spec", {{"nodeName", node}}},
            {"status", {{"phase", phase}}}};
  if (ready)
    p["status"]["conditions"] = json::array(
        {{{"type", "Ready"}, {"status", "True"}, {"lastTransitionTime", format_time(t(ready_ago))}}});
  return p;
}

std::vector<std::string> names(const std::vector<ObjectPtr>& pods) {
  std::vector<std::string> out;
  for (auto& p : pods) out.push_back(name_of(*p));
  return out;
}

ObjectPtr ptr(json j) { return std::make_shared<const json>(std::move(j)); }

}  // namespace

TEST_CASE("scale-down prefers unassigned, then pending, then not ready pods") {
  std::vector<ObjectPtr> pods{
      ptr(pod("running-ready", "n1", "Running", true, 1000, 900)),
      ptr(pod("running-notready", "n1", "Running", false, 1000)),
      ptr(pod("pending", "n2", "Pending", false, 1000)),
      ptr(pod("unassigned", "", "Pending", false, 1000)),
      ptr(pod("unknown", "n2", "Unknown", false, 1000)),
  };
  auto victims = pods_to_delete(pods, pods, 4, Clock::now());
  CHECK(names(victims) == std::vector<std::string>{"unassigned", "pending", "unknown", "running-notready"});
  CHECK(pods_to_delete(pods, pods, 2, Clock::now()).size() == 2);
  CHECK(pods_to_delete(pods, pods, 5, Clock::now()).size() == 5);  // all of them: no ranking needed
}

TEST_CASE("then deletion cost, doubled-up nodes, ready time, restarts, age") {
  auto now = Clock::now();
  // Deletion cost: lower first.
  json cheap = pod("cheap", "n1", "Running", true, 100, 90);
  cheap["metadata"]["annotations"] = {{kDeletionCostAnnotation, "-5"}};
  json dear = pod("dear", "n2", "Running", true, 100, 90);
  dear["metadata"]["annotations"] = {{kDeletionCostAnnotation, "10"}};
  CHECK(delete_before(cheap, 0, dear, 0, now));
  CHECK_FALSE(delete_before(dear, 0, cheap, 0, now));

  // Doubled up: the pod sharing its node with more related pods goes first.
  json a = pod("a", "crowded", "Running", true, 100, 90);
  json b = pod("b", "alone", "Running", true, 100, 90);
  std::vector<ObjectPtr> filtered{ptr(b), ptr(a)};
  std::vector<ObjectPtr> related{ptr(a), ptr(b), ptr(pod("c", "crowded", "Running", true, 100, 90))};
  CHECK(names(pods_to_delete(filtered, related, 1, now)) == std::vector<std::string>{"a"});

  // Ready for less time first (logarithmic buckets: 10s vs 10000s differ).
  json recent = pod("recent", "n1", "Running", true, 20000, 10);
  json longer = pod("longer", "n2", "Running", true, 20000, 10000);
  CHECK(delete_before(recent, 0, longer, 0, now));
  // Restarts: more first.
  json flappy = pod("flappy", "n1", "Running", true, 100, 50);
  flappy["status"]["containerStatuses"] = json::array({{{"name", "c"}, {"restartCount", 5}}});
  json steady = pod("steady", "n2", "Running", true, 100, 50);
  steady["status"]["containerStatuses"] = json::array({{{"name", "c"}, {"restartCount", 0}}});
  CHECK(delete_before(flappy, 0, steady, 0, now));
  // Newer first.
  json young = pod("young", "n1", "Pending", false, 5);
  json old = pod("old", "n2", "Pending", false, 50000);
  CHECK(delete_before(young, 0, old, 0, now));
  CHECK_FALSE(delete_before(old, 0, young, 0, now));
}

TEST_CASE("status counts replicas, fully labeled, ready and available (minReadySeconds)") {
  json rs = {{"metadata", {{"name", "web"}, {"generation", 2}}},
             {"spec", {{"replicas", 3}, {"minReadySeconds", 30},
                       {"template", {{"metadata", {{"labels", {{"app", "web"}, {"tier", "front"}}}}}}}}},
             {"status", {{"replicas", 0}, {"observedGeneration", 1}}}};
  json labeled = pod("a", "n1", "Running", true, 100, 60);
  labeled["metadata"]["labels"] = {{"app", "web"}, {"tier", "front"}, {"extra", "x"}};
  json partly = pod("b", "n1", "Running", true, 100, 5);  // ready, not yet available
  partly["metadata"]["labels"] = {{"app", "web"}};
  json pending = pod("c", "", "Pending", false, 1);
  pending["metadata"]["labels"] = {{"app", "web"}, {"tier", "front"}};
  std::vector<ObjectPtr> pods{ptr(labeled), ptr(partly), ptr(pending)};
  json s = calculate_status(rs, pods, {}, Clock::now());
  CHECK(s["replicas"] == 3);
  CHECK(s["fullyLabeledReplicas"] == 2);
  CHECK(s["readyReplicas"] == 2);
  CHECK(s["availableReplicas"] == 1);
  CHECK_FALSE(s.contains("conditions"));
  CHECK(status_needs_update(rs, s));

  // Zero counts are omitted; a create error becomes ReplicaFailure, and clears again.
  berth::api::Status quota(berth::api::Reason::Forbidden, "pods \"web-x\" is forbidden: exceeded quota");
  json failing = calculate_status(rs, {}, quota, Clock::now());
  CHECK(failing["replicas"] == 0);
  CHECK_FALSE(failing.contains("readyReplicas"));
  REQUIRE(failing["conditions"].size() == 1);
  CHECK(failing["conditions"][0]["type"] == "ReplicaFailure");
  CHECK(failing["conditions"][0]["reason"] == "FailedCreate");
  CHECK(failing["conditions"][0]["message"] == quota.message());
  rs["status"] = failing;
  json cleared = calculate_status(rs, {}, {}, Clock::now());
  CHECK_FALSE(cleared.contains("conditions"));

  json same = rs;
  same["status"] = {{"replicas", 0}, {"observedGeneration", 2}};
  CHECK_FALSE(status_needs_update(same, calculate_status(same, {}, {}, Clock::now())));
}

TEST_CASE("a pod from the template") {
  json tmpl = {{"metadata", {{"labels", {{"app", "web"}}}, {"annotations", {{"a", "b"}}}}},
               {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "nginx"}}})}}}};
  json ref = {{"apiVersion", "apps/v1"}, {"kind", "ReplicaSet"}, {"name", "web-abc"}, {"uid", "u"},
              {"controller", true}, {"blockOwnerDeletion", true}};
  json p = pod_from_template(tmpl, "default", "web-abc-", ref);
  CHECK(p["metadata"]["generateName"] == "web-abc-");
  CHECK(p["metadata"]["namespace"] == "default");
  CHECK(p["metadata"]["labels"]["app"] == "web");
  CHECK(p["metadata"]["annotations"]["a"] == "b");
  CHECK(p["metadata"]["ownerReferences"][0] == ref);
  CHECK(p["spec"]["containers"][0]["image"] == "nginx");
  CHECK_FALSE(p["metadata"].contains("name"));
}

TEST_CASE("slow start: batches of 1, 2, 4, ... stop at the first failing batch") {
  std::atomic<int> calls{0};
  auto [ok, err] = slow_start_batch(nullptr, 10, 1, [&] {
    ++calls;
    return berth::api::Status();
  });
  CHECK(ok == 10);
  CHECK(err.is_ok());
  CHECK(calls == 10);

  calls = 0;
  Executor pool(4);
  auto [ok2, err2] = slow_start_batch(&pool, 100, 1, [&] {
    int n = ++calls;
    // The 4th call fails: the batch of 4 (calls 4-7) completes, later batches never start.
    return n == 4 ? berth::api::Status(berth::api::Reason::Forbidden, "quota") : berth::api::Status();
  });
  CHECK(calls == 7);
  CHECK(ok2 == 6);
  CHECK(err2.message() == "quota");
}

TEST_CASE("expectations") {
  Expectations e(std::chrono::seconds(1));
  CHECK(e.satisfied("ns/rs"));
  e.expect_creations("ns/rs", 2);
  CHECK_FALSE(e.satisfied("ns/rs"));
  e.creation_observed("ns/rs");
  CHECK_FALSE(e.satisfied("ns/rs"));
  e.creation_observed("ns/rs");
  CHECK(e.satisfied("ns/rs"));
  e.expect_deletions("ns/rs", {"ns/a", "ns/b"});
  CHECK_FALSE(e.satisfied("ns/rs"));
  e.deletion_observed("ns/rs", "ns/a");
  e.deletion_observed("ns/rs", "ns/a");
  CHECK_FALSE(e.satisfied("ns/rs"));
  e.deletion_observed("ns/rs", "ns/b");
  CHECK(e.satisfied("ns/rs"));
  e.expect_creations("ns/rs", 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  CHECK(e.satisfied("ns/rs"));  // expired
  e.remove("ns/rs");
  CHECK(e.satisfied("ns/rs"));
}
