#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "controllers/deployment.h"

using namespace berth::controllers;
using namespace berth::controllers::deployment;
using nlohmann::json;

namespace {

json make_deployment(int replicas, json surge = "25%", json unavailable = "25%") {
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", "web"}, {"namespace", "default"}, {"uid", "d-uid"}, {"generation", 1}}},
          {"spec",
           {{"replicas", replicas},
            {"selector", {{"matchLabels", {{"app", "web"}}}}},
            {"strategy", {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxSurge", surge}, {"maxUnavailable", unavailable}}}}},
            {"progressDeadlineSeconds", 600},
            {"revisionHistoryLimit", 10},
            {"template", {{"metadata", {{"labels", {{"app", "web"}}}}}, {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "nginx:1"}}})}}}}}}},
          {"status", json::object()}};
}

json make_rs(const std::string& name, int spec, int available, const std::string& created, int max_replicas = -1) {
  json rs = {{"metadata", {{"name", name}, {"uid", name + "-uid"}, {"creationTimestamp", created}, {"annotations", json::object()}}},
             {"spec", {{"replicas", spec}}},
             {"status", {{"replicas", spec}, {"readyReplicas", available}, {"availableReplicas", available}}}};
  if (max_replicas >= 0) rs["metadata"]["annotations"][kMaxReplicasAnnotation] = std::to_string(max_replicas);
  return rs;
}

}  // namespace

TEST_CASE("surge rounds up, unavailability rounds down, never both zero") {
  CHECK(resolve_fenceposts("25%", "25%", 10) == std::make_pair<std::int64_t, std::int64_t>(3, 2));
  CHECK(resolve_fenceposts("25%", "25%", 1) == std::make_pair<std::int64_t, std::int64_t>(1, 0));
  CHECK(resolve_fenceposts("25%", "25%", 4) == std::make_pair<std::int64_t, std::int64_t>(1, 1));
  CHECK(resolve_fenceposts(0, "10%", 5) == std::make_pair<std::int64_t, std::int64_t>(0, 1));  // 0 and 0 -> 1
  CHECK(resolve_fenceposts(2, 0, 10) == std::make_pair<std::int64_t, std::int64_t>(2, 0));
  CHECK(resolve_fenceposts("50%", "100%", 3) == std::make_pair<std::int64_t, std::int64_t>(2, 3));
  CHECK(scaled_value("33%", 10, true) == 4);
  CHECK(scaled_value("33%", 10, false) == 3);
  CHECK_FALSE(scaled_value("abc", 10, true).has_value());

  CHECK(max_surge(make_deployment(10)) == 3);
  CHECK(max_unavailable(make_deployment(10)) == 2);
  CHECK(max_unavailable(make_deployment(2, 0, 5)) == 2);  // capped at replicas
  CHECK(max_unavailable(make_deployment(0)) == 0);
  json recreate = make_deployment(10);
  recreate["spec"]["strategy"] = {{"type", "Recreate"}};
  CHECK(max_surge(recreate) == 0);
  CHECK(max_unavailable(recreate) == 0);
}

TEST_CASE("how far the new ReplicaSet may grow") {
  json d = make_deployment(10);  // surge 3
  json old_rs = make_rs("old", 10, 10, "2024-01-01T00:00:00Z");
  json new_rs = make_rs("new", 0, 0, "2024-01-02T00:00:00Z");
  CHECK(new_rs_new_replicas(d, {old_rs, new_rs}, new_rs) == 3);
  old_rs["spec"]["replicas"] = 8;
  new_rs["spec"]["replicas"] = 3;
  CHECK(new_rs_new_replicas(d, {old_rs, new_rs}, new_rs) == 5);
  old_rs["spec"]["replicas"] = 2;
  new_rs["spec"]["replicas"] = 9;
  CHECK(new_rs_new_replicas(d, {old_rs, new_rs}, new_rs) == 10);  // never beyond spec.replicas
  json recreate = d;
  recreate["spec"]["strategy"] = {{"type", "Recreate"}};
  CHECK(new_rs_new_replicas(recreate, {old_rs, new_rs}, new_rs) == 10);
}

TEST_CASE("proportional scaling during a rollout") {
  // Scaled from 10 to 20 in the middle of a rollout with maxSurge 3: 23 allowed, 13 exist.
  json d = make_deployment(20, 3, 0);
  json old_rs = make_rs("old", 8, 8, "2024-01-01T00:00:00Z", 13);
  json new_rs = make_rs("new", 5, 0, "2024-01-02T00:00:00Z", 13);
  std::vector<json> all{old_rs, new_rs};
  sort_by_size_newer(all);
  CHECK(name_of(all[0]) == "old");
  std::int64_t to_add = 23 - 13, added = 0;
  std::int64_t p_old = get_proportion(all[0], d, to_add, added);
  added += p_old;
  std::int64_t p_new = get_proportion(all[1], d, to_add, added);
  added += p_new;
  CHECK(p_old == 6);   // round(8 * 23 / 13) - 8
  CHECK(p_new == 4);   // min(round(5 * 23 / 13) - 5, 10 - 6)
  CHECK(added == to_add);

  // Scaling down from 20 (+3) to 5 (+3 surge... 5 + 2 = 7 with 25%).
  json small = make_deployment(5, "25%", "25%");  // surge 2
  json a = make_rs("a", 14, 14, "2024-01-01T00:00:00Z", 23);
  json b = make_rs("b", 9, 0, "2024-01-02T00:00:00Z", 23);
  std::int64_t down = 7 - 23;
  std::int64_t pa = get_proportion(a, small, down, 0);
  std::int64_t pb = get_proportion(b, small, down, pa);
  CHECK(pa == -10);  // round(14 * 7 / 23) - 14 = 4 - 14
  CHECK(pb == -6);   // max(round(9 * 7 / 23) - 9, -16 + 10) = max(-6, -6)

  // Scaling to zero takes everything.
  json zero = make_deployment(0);
  CHECK(get_proportion(a, zero, -23, 0) == -14);
}

TEST_CASE("ordering and picking replica sets") {
  std::vector<json> rss{make_rs("b", 3, 3, "2024-01-02T00:00:00Z"), make_rs("a", 3, 3, "2024-01-01T00:00:00Z"),
                        make_rs("c", 5, 5, "2024-01-03T00:00:00Z")};
  sort_by_creation(rss);
  CHECK(name_of(rss[0]) == "a");
  CHECK(name_of(rss[2]) == "c");
  sort_by_size_older(rss);
  CHECK(name_of(rss[0]) == "c");
  CHECK(name_of(rss[1]) == "a");
  sort_by_size_newer(rss);
  CHECK(name_of(rss[1]) == "b");

  std::vector<json> old{make_rs("o1", 0, 0, "2024-01-01T00:00:00Z"), make_rs("o2", 0, 0, "2024-01-02T00:00:00Z")};
  json nrs = make_rs("n", 0, 0, "2024-01-03T00:00:00Z");
  CHECK(name_of(*find_active_or_latest(&nrs, old)) == "n");
  CHECK(name_of(*find_active_or_latest(nullptr, old)) == "o2");
  for (auto& rs : old)
    if (name_of(rs) == "o1") rs["spec"]["replicas"] = 2;
  CHECK(name_of(*find_active_or_latest(&nrs, old)) == "o1");
  nrs["spec"]["replicas"] = 1;
  CHECK(find_active_or_latest(&nrs, old) == nullptr);
}

TEST_CASE("the new ReplicaSet is the oldest one whose template matches, hash label aside") {
  json d = make_deployment(3);
  json a = make_rs("web-aaa", 0, 0, "2024-01-01T00:00:00Z");
  a["spec"]["template"] = d["spec"]["template"];
  a["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:0";
  json b = make_rs("web-bbb", 0, 0, "2024-01-02T00:00:00Z");
  b["spec"]["template"] = d["spec"]["template"];
  b["spec"]["template"]["metadata"]["labels"][kPodTemplateHashLabel] = "bbb";
  b["spec"]["template"]["spec"]["volumes"] = json::array();  // empty == unset
  std::vector<json> rss{b, a};
  auto idx = find_new_rs(d, rss);
  REQUIRE(idx);
  CHECK(name_of(rss[*idx]) == "web-bbb");
  CHECK(equal_ignore_hash(d["spec"]["template"], b["spec"]["template"]));
  CHECK_FALSE(equal_ignore_hash(d["spec"]["template"], a["spec"]["template"]));

  std::string h = compute_hash(d["spec"]["template"], std::nullopt);
  CHECK_FALSE(h.empty());
  CHECK(h.size() <= 10);
  CHECK(h.find_first_not_of("bcdfghjklmnpqrstvwxz2456789") == std::string::npos);
  CHECK(h == compute_hash(d["spec"]["template"], std::nullopt));
  CHECK(h != compute_hash(d["spec"]["template"], 1));
  CHECK(h != compute_hash(a["spec"]["template"], std::nullopt));
}

TEST_CASE("revision annotations, rollbacks keep their history") {
  json d = make_deployment(3);
  d["metadata"]["annotations"] = {{"team", "blue"},
                                  {kRevisionAnnotation, "7"},
                                  {"kubectl.kubernetes.io/last-applied-configuration", "{}"}};
  json rs = make_rs("web-x", 0, 0, "2024-01-01T00:00:00Z");
  CHECK(set_new_rs_annotations(d, rs, "1", false));
  const json& a = rs["metadata"]["annotations"];
  CHECK(a[kRevisionAnnotation] == "1");
  CHECK(a["team"] == "blue");
  CHECK_FALSE(a.contains("kubectl.kubernetes.io/last-applied-configuration"));
  CHECK(a[kDesiredReplicasAnnotation] == "3");
  CHECK(a[kMaxReplicasAnnotation] == "4");  // 3 + 25% rounded up
  CHECK_FALSE(a.contains(kRevisionHistoryAnnotation));
  CHECK_FALSE(set_new_rs_annotations(d, rs, "1", true));  // nothing new
  // Rolled back to: revision 1 becomes 4, history remembers 1, then 4 too.
  CHECK(set_new_rs_annotations(d, rs, "4", true));
  CHECK(rs["metadata"]["annotations"][kRevisionAnnotation] == "4");
  CHECK(rs["metadata"]["annotations"][kRevisionHistoryAnnotation] == "1");
  CHECK(set_new_rs_annotations(d, rs, "6", true));
  CHECK(rs["metadata"]["annotations"][kRevisionHistoryAnnotation] == "1,4");
  // Numbers compare as numbers (10 > 9).
  rs["metadata"]["annotations"][kRevisionAnnotation] = "10";
  CHECK_FALSE(set_new_rs_annotations(d, rs, "9", true));
  CHECK(max_revision({rs, make_rs("o", 0, 0, "x")}) == 10);

  CHECK(replicas_annotations_need_update(rs, 3, 4) == false);
  CHECK(replicas_annotations_need_update(rs, 5, 7));
  CHECK(set_deployment_revision(d, "8"));
  CHECK_FALSE(set_deployment_revision(d, "8"));
}

TEST_CASE("status and conditions as kubectl rollout status reads them") {
  auto now = Clock::now();
  json d = make_deployment(3);
  json new_rs = make_rs("web-new", 3, 1, "2024-01-02T00:00:00Z");
  json old_rs = make_rs("web-old", 1, 1, "2024-01-01T00:00:00Z");
  std::vector<json> all{old_rs, new_rs};
  json s = rollout_status(all, &new_rs, d, now);
  CHECK(s["observedGeneration"] == 1);
  CHECK(s["replicas"] == 4);
  CHECK(s["updatedReplicas"] == 3);
  CHECK(s["availableReplicas"] == 2);
  CHECK(s["unavailableReplicas"] == 2);
  const json* available = get_condition(s, "Available");
  REQUIRE(available);
  CHECK((*available)["status"] == "False");  // maxUnavailable floor(25% of 3) = 0: all 3 needed
  CHECK((*available)["reason"] == kMinimumReplicasUnavailable);
  CHECK((*available)["message"] == "Deployment does not have minimum availability.");
  const json* progressing = get_condition(s, "Progressing");
  REQUIRE(progressing);
  CHECK((*progressing)["reason"] == kReplicaSetUpdatedReason);
  CHECK((*progressing)["message"] == "ReplicaSet \"web-new\" is progressing.");

  d["status"] = s;
  auto [msg, done] = rollout_status_message(d);
  CHECK(msg == "Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending termination...");
  CHECK_FALSE(done);

  // Complete.
  json finished = make_rs("web-new", 3, 3, "2024-01-02T00:00:00Z");
  std::vector<json> only{finished};
  json c = rollout_status(only, &finished, d, now);
  CHECK((*get_condition(c, "Progressing"))["reason"] == kNewRSAvailableReason);
  CHECK((*get_condition(c, "Progressing"))["message"] == "ReplicaSet \"web-new\" has successfully progressed.");
  CHECK((*get_condition(c, "Progressing"))["lastTransitionTime"] == (*progressing)["lastTransitionTime"]);
  CHECK((*get_condition(c, "Available"))["reason"] == kMinimumReplicasAvailable);
  d["status"] = c;
  CHECK(rollout_status_message(d) == std::make_pair(std::string("deployment \"web\" successfully rolled out"), true));
  CHECK(deployment_complete(d, c));
  CHECK_FALSE(stuck_requeue(d, c, now).has_value());

  // A generation not yet observed.
  d["metadata"]["generation"] = 2;
  CHECK(rollout_status_message(d).first == "Waiting for deployment spec update to be observed...");
}

TEST_CASE("progress deadline") {
  auto now = Clock::now();
  json d = make_deployment(3);
  d["spec"]["progressDeadlineSeconds"] = 60;
  json rs = make_rs("web-new", 3, 0, "2024-01-02T00:00:00Z");
  rs["status"]["replicas"] = 3;
  json earlier = new_condition("Progressing", "True", kReplicaSetUpdatedReason, "ReplicaSet \"web-new\" is progressing.",
                               now - std::chrono::seconds(120));
  d["status"] = {{"observedGeneration", 1}, {"replicas", 3}, {"updatedReplicas", 3}, {"conditions", json::array({earlier})}};
  std::vector<json> all{rs};
  json s = rollout_status(all, &rs, d, now);
  const json* p = get_condition(s, "Progressing");
  REQUIRE(p);
  CHECK((*p)["status"] == "False");
  CHECK((*p)["reason"] == kTimedOutReason);
  CHECK((*p)["message"] == "ReplicaSet \"web-new\" has timed out progressing.");
  d["status"] = s;
  CHECK(rollout_status_message(d).first == "error: deployment \"web\" exceeded its progress deadline");

  // Not yet timed out: requeue for when it would.
  json fresh = d;
  fresh["status"]["conditions"] = json::array({new_condition("Progressing", "True", kReplicaSetUpdatedReason, "x",
                                                             now - std::chrono::seconds(20))});
  auto after = stuck_requeue(fresh, fresh["status"], now);
  REQUIRE(after);
  CHECK(*after > std::chrono::seconds(39));
  CHECK(*after < std::chrono::seconds(42));
}

TEST_CASE("conditions keep lastTransitionTime while their status holds") {
  auto t0 = Clock::now() - std::chrono::seconds(100);
  json status = json::object();
  set_condition(status, new_condition("Progressing", "True", "A", "a", t0));
  std::string first = status["conditions"][0]["lastTransitionTime"];
  set_condition(status, new_condition("Progressing", "True", "B", "b", Clock::now()));
  CHECK(status["conditions"][0]["reason"] == "B");
  CHECK(status["conditions"][0]["lastTransitionTime"] == first);
  set_condition(status, new_condition("Progressing", "True", "B", "ignored", Clock::now()));
  CHECK(status["conditions"][0]["message"] == "b");
  set_condition(status, new_condition("Progressing", "False", "C", "c", Clock::now()));
  CHECK(status["conditions"][0]["lastTransitionTime"] != first);
  remove_condition(status, "Progressing");
  CHECK_FALSE(status.contains("conditions"));

  CHECK(status_equal(json{{"replicas", 0}}, json::object()));
  CHECK_FALSE(status_equal(json{{"replicas", 1}}, json::object()));
  CHECK(status_equal(json{{"conditions", json::array()}}, json::object()));
}
