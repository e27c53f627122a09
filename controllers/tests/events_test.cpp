#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "controllers/events.h"

using namespace berth::controllers;
using nlohmann::json;

namespace {

json rs_object() {
  return {{"apiVersion", "apps/v1"},
          {"kind", "ReplicaSet"},
          {"metadata", {{"name", "web-abc"}, {"namespace", "shop"}, {"uid", "rs-uid"}, {"resourceVersion", "42"}}}};
}

json make(const std::string& reason, const std::string& message, TimePoint now) {
  return EventRecorder::make_event(rs_object(), "apps/v1", "ReplicaSet", "Normal", reason, message,
                                   "replicaset-controller", "", now);
}

}  // namespace

TEST_CASE("an event as client-go's recorder makes it") {
  auto now = Clock::now();
  json e = make("SuccessfulCreate", "Created pod: web-abc-x2b7q", now);
  CHECK(e["apiVersion"] == "v1");
  CHECK(e["kind"] == "Event");
  CHECK(e["metadata"]["namespace"] == "shop");
  std::string name = e["metadata"]["name"];
  CHECK(name.rfind("web-abc.", 0) == 0);
  CHECK(name.size() > 10);
  CHECK(e["involvedObject"] == json{{"kind", "ReplicaSet"}, {"namespace", "shop"}, {"name", "web-abc"},
                                    {"uid", "rs-uid"}, {"apiVersion", "apps/v1"}, {"resourceVersion", "42"}});
  CHECK(e["source"] == json{{"component", "replicaset-controller"}});
  CHECK(e["count"] == 1);
  CHECK(e["type"] == "Normal");
  CHECK(e["firstTimestamp"] == e["lastTimestamp"]);
  CHECK(e["reportingComponent"] == "replicaset-controller");

  // Cluster-scoped objects' events go to "default".
  json node = {{"metadata", {{"name", "n1"}, {"uid", "n1"}}}};
  json ne = EventRecorder::make_event(node, "v1", "Node", "Normal", "NodeNotReady", "Node n1 status is now: NodeNotReady",
                                      "node-controller", "", now);
  CHECK(ne["metadata"]["namespace"] == "default");
  CHECK_FALSE(ne["involvedObject"].contains("namespace"));
}

TEST_CASE("a repeated event patches count and lastTimestamp") {
  EventCorrelator c;
  auto now = Clock::now();
  auto first = c.correlate(make("FailedCreate", "quota exceeded", now), now);
  CHECK_FALSE(first.skip);
  CHECK_FALSE(first.patch);
  json written = first.event;
  written["metadata"]["resourceVersion"] = "7";
  c.update_state(first.key, written);
  auto later = now + std::chrono::seconds(5);
  auto second = c.correlate(make("FailedCreate", "quota exceeded", later), later);
  CHECK(second.patch);
  CHECK(second.event["count"] == 2);
  CHECK(second.event["metadata"]["name"] == written["metadata"]["name"]);
  CHECK(second.event["firstTimestamp"] == written["firstTimestamp"]);
  CHECK(second.event["lastTimestamp"] == format_time(later));
  auto third = c.correlate(make("FailedCreate", "quota exceeded", later), later);
  CHECK(third.event["count"] == 3);
}

TEST_CASE("similar events with different messages are combined after ten") {
  EventCorrelator c;
  auto now = Clock::now();
  for (int i = 0; i < 9; ++i) {
    auto r = c.correlate(make("SuccessfulCreate", "Created pod: web-abc-" + std::to_string(i), now), now);
    CHECK_FALSE(r.patch);
    CHECK(r.event["message"] == "Created pod: web-abc-" + std::to_string(i));
  }
  auto tenth = c.correlate(make("SuccessfulCreate", "Created pod: web-abc-9", now), now);
  CHECK(tenth.event["message"] == "(combined from similar events): Created pod: web-abc-9");
  CHECK_FALSE(tenth.patch);
  c.update_state(tenth.key, tenth.event);
  auto eleventh = c.correlate(make("SuccessfulCreate", "Created pod: web-abc-10", now), now);
  CHECK(eleventh.patch);
  CHECK(eleventh.event["message"] == "(combined from similar events): Created pod: web-abc-10");
  CHECK(eleventh.event["count"] == 2);
}

TEST_CASE("the spam filter lets a burst of 25 per object through, then one per five minutes") {
  EventCorrelator c;
  auto now = Clock::now();
  int passed = 0;
  for (int i = 0; i < 40; ++i)
    if (!c.correlate(make("SuccessfulDelete", "Deleted pod: p" + std::to_string(i), now), now).skip) ++passed;
  CHECK(passed == 25);
  auto later = now + std::chrono::seconds(301);
  CHECK_FALSE(c.correlate(make("SuccessfulDelete", "Deleted pod: late", later), later).skip);
  CHECK(c.correlate(make("SuccessfulDelete", "Deleted pod: late2", later), later).skip);
  // Another object has its own bucket.
  json other = EventRecorder::make_event({{"metadata", {{"name", "other"}, {"namespace", "shop"}, {"uid", "o"}}}},
                                         "apps/v1", "ReplicaSet", "Normal", "SuccessfulDelete", "x",
                                         "replicaset-controller", "", now);
  CHECK_FALSE(c.correlate(other, now).skip);
}
