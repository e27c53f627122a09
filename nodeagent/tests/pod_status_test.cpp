#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "nodeagent/pod_status.h"

using namespace berth::nodeagent;
using namespace std::chrono_literals;

namespace {

Clock::time_point t0() { return *parse_time("2026-01-01T00:00:00Z"); }

json pod(const std::string& policy = "Always", bool with_init = false) {
  json p = {{"metadata", {{"name", "web"}, {"namespace", "default"}, {"uid", "u1"}}},
            {"spec", {{"restartPolicy", policy}, {"containers", {{{"name", "app"}, {"image", "busybox"}}}}}},
            {"status", {{"phase", "Pending"}, {"qosClass", "BestEffort"}}}};
  if (with_init) p["spec"]["initContainers"] = {{{"name", "setup"}, {"image", "busybox"}}};
  return p;
}

PodRecord record(const json& p) {
  PodRecord r;
  r.sync_with_spec(p);
  r.start_time = t0();
  return r;
}

Termination exited(int code) {
  Termination t;
  t.exit_code = code;
  t.reason = code == 0 ? "Completed" : "Error";
  t.started_at = t0();
  t.finished_at = t0() + 5s;
  t.container_id = "runc://abc";
  return t;
}

const json* condition(const json& status, const std::string& type) {
  for (const auto& c : status["conditions"])
    if (c["type"] == type) return &c;
  return nullptr;
}

}  // namespace

TEST_CASE("Go durations print as the kubelet's messages do") {
  CHECK(go_duration(10s) == "10s");
  CHECK(go_duration(80s) == "1m20s");
  CHECK(go_duration(300s) == "5m0s");
  CHECK(go_duration(160s) == "2m40s");
  CHECK(go_duration(1500ms) == "1.5s");
  CHECK(go_duration(250ms) == "250ms");
  CHECK(go_duration(3h + 2s) == "3h0m2s");
  CHECK(go_duration(0s) == "0s");
}

TEST_CASE("CrashLoopBackOff back-off: first restart at once, then 10s doubling to 5m") {
  Backoff b;
  auto now = t0();
  std::string k = "u1/app";
  // The first exit: not in back-off; the restart records 10s.
  CHECK_FALSE(b.in_backoff_since(k, now, now));
  b.next(k, now, now);
  CHECK(b.get(k) == 10s);
  // It crashes again 1s later: wait 10s from that exit.
  auto exit2 = now + 1s;
  CHECK(b.in_backoff_since(k, exit2, exit2 + 5s));
  CHECK_FALSE(b.in_backoff_since(k, exit2, exit2 + 10s));
  CHECK(b.ready_at(k, exit2) == exit2 + 10s);
  std::vector<std::chrono::seconds> seen;
  auto t = exit2 + 10s;
  for (int i = 0; i < 8; ++i) {
    b.next(k, t, t);
    seen.push_back(std::chrono::duration_cast<std::chrono::seconds>(b.get(k)));
    t += b.get(k) + 1s;
  }
  CHECK(seen == std::vector<std::chrono::seconds>{20s, 40s, 80s, 160s, 300s, 300s, 300s, 300s});
  // Idle for more than twice the maximum: back to the start.
  auto later = t + 11min;
  CHECK_FALSE(b.in_backoff_since(k, later, later));
  b.next(k, later, later);
  CHECK(b.get(k) == 10s);
  // Image pulls: since the last update.
  Backoff img;
  img.next("i", now, now);
  CHECK(img.in_backoff_since_update("i", now + 9s));
  CHECK_FALSE(img.in_backoff_since_update("i", now + 10s));
}

TEST_CASE("phase follows getPhase") {
  json p = pod();
  PodRecord r = record(p);
  CHECK(compute_phase(p, r, false) == "Pending");
  r.containers[0].state = ContainerRecord::State::Running;
  CHECK(compute_phase(p, r, false) == "Running");
  // Exited and restarting (Always): still Running.
  r.containers[0].state = ContainerRecord::State::Waiting;
  r.containers[0].terminated = exited(1);
  CHECK(compute_phase(p, r, false) == "Running");
  // Never: a failure is final.
  json never = pod("Never");
  PodRecord rn = record(never);
  rn.containers[0].state = ContainerRecord::State::Terminated;
  rn.containers[0].terminated = exited(1);
  CHECK(compute_phase(never, rn, false) == "Failed");
  rn.containers[0].terminated = exited(0);
  CHECK(compute_phase(never, rn, false) == "Succeeded");
  // OnFailure: success completes, failure restarts.
  json onf = pod("OnFailure");
  PodRecord ro = record(onf);
  ro.containers[0].state = ContainerRecord::State::Terminated;
  ro.containers[0].terminated = exited(0);
  CHECK(compute_phase(onf, ro, false) == "Succeeded");
  ro.containers[0].state = ContainerRecord::State::Waiting;
  ro.containers[0].terminated = exited(2);
  CHECK(compute_phase(onf, ro, false) == "Running");
  // Deleted: terminal once everything stopped.
  PodRecord rd = record(p);
  rd.containers[0].state = ContainerRecord::State::Terminated;
  rd.containers[0].terminated = exited(143);
  CHECK(compute_phase(p, rd, true) == "Failed");
  rd.containers[0].terminated = exited(0);
  CHECK(compute_phase(p, rd, true) == "Succeeded");
}

TEST_CASE("init containers: Pending until done; a failure with Never fails the pod") {
  json p = pod("Always", true);
  PodRecord r = record(p);
  CHECK(r.containers[0].waiting_reason == "PodInitializing");
  CHECK(r.init_containers[0].waiting_reason == "PodInitializing");
  r.init_containers[0].state = ContainerRecord::State::Running;
  CHECK(compute_phase(p, r, false) == "Pending");
  json s = compute_pod_status(p, r, {}, t0());
  const json* init = condition(s, "Initialized");
  REQUIRE(init);
  CHECK((*init)["status"] == "False");
  CHECK((*init)["reason"] == "ContainersNotInitialized");
  CHECK((*init)["message"] == "containers with incomplete status: [setup]");
  r.init_containers[0].state = ContainerRecord::State::Terminated;
  r.init_containers[0].terminated = exited(0);
  r.containers[0].state = ContainerRecord::State::Running;
  r.containers[0].ever_created = true;
  CHECK(compute_phase(p, r, false) == "Running");
  json never = pod("Never", true);
  PodRecord rn = record(never);
  rn.init_containers[0].state = ContainerRecord::State::Terminated;
  rn.init_containers[0].terminated = exited(1);
  CHECK(compute_phase(never, rn, false) == "Failed");
}

TEST_CASE("status: conditions, reasons, container states") {
  json p = pod();
  PodRecord r = record(p);
  r.sandbox_ready = true;
  r.pod_ips = {"10.88.0.9"};
  auto& c = r.containers[0];
  c.ever_created = true;
  c.id = "runc://abc";
  c.state = ContainerRecord::State::Running;
  c.started_at = t0() + 1s;
  c.ready = false;
  c.started = true;
  c.image_id = "127.0.0.1:5000/busybox@sha256:1234";
  json s = compute_pod_status(p, r, {"192.0.2.1", false}, t0() + 2s);
  CHECK(s["phase"] == "Running");
  CHECK(s["podIP"] == "10.88.0.9");
  CHECK(s["podIPs"] == json::array({{{"ip", "10.88.0.9"}}}));
  CHECK(s["hostIP"] == "192.0.2.1");
  CHECK(s["hostIPs"] == json::array({{{"ip", "192.0.2.1"}}}));
  CHECK(s["startTime"] == "2026-01-01T00:00:00Z");
  CHECK(s["qosClass"] == "BestEffort");
  std::vector<std::string> types;
  for (const auto& cond : s["conditions"]) types.push_back(cond["type"]);
  CHECK(types == std::vector<std::string>{"PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"});
  CHECK((*condition(s, "Ready"))["reason"] == "ContainersNotReady");
  CHECK((*condition(s, "Ready"))["message"] == "containers with unready status: [app]");
  CHECK((*condition(s, "Ready"))["lastProbeTime"].is_null());
  CHECK((*condition(s, "PodReadyToStartContainers"))["status"] == "True");
  const json& cs = s["containerStatuses"][0];
  CHECK(cs["name"] == "app");
  CHECK(cs["state"]["running"]["startedAt"] == "2026-01-01T00:00:01Z");
  CHECK(cs["containerID"] == "runc://abc");
  CHECK(cs["restartCount"] == 0);
  CHECK(cs["started"] == true);
  CHECK(cs["ready"] == false);
  CHECK(cs["image"] == "busybox");
  CHECK(cs["imageID"] == "127.0.0.1:5000/busybox@sha256:1234");
  CHECK(cs["lastState"] == json::object());

  // Ready: conditions flip; lastTransitionTime survives while the status holds.
  c.ready = true;
  json s2 = compute_pod_status(p, r, {"192.0.2.1", false}, t0() + 3s);
  CHECK((*condition(s2, "Ready"))["status"] == "True");
  CHECK((*condition(s2, "Ready")).contains("reason") == false);
  p["status"]["conditions"] = s2["conditions"];
  json s3 = compute_pod_status(p, r, {"192.0.2.1", false}, t0() + 60s);
  CHECK((*condition(s3, "Ready"))["lastTransitionTime"] == "2026-01-01T00:00:03Z");

  // CrashLoopBackOff: waiting, with the last termination.
  c.state = ContainerRecord::State::Waiting;
  c.waiting_reason = "CrashLoopBackOff";
  c.waiting_message = "back-off 10s restarting failed container=app pod=web_default(u1)";
  c.terminated = exited(1);
  c.restart_count = 1;
  c.ready = false;
  json s4 = compute_pod_status(p, r, {"192.0.2.1", false}, t0() + 61s);
  const json& w = s4["containerStatuses"][0];
  CHECK(w["state"]["waiting"]["reason"] == "CrashLoopBackOff");
  CHECK(w["state"]["waiting"]["message"] == "back-off 10s restarting failed container=app pod=web_default(u1)");
  CHECK(w["lastState"]["terminated"]["exitCode"] == 1);
  CHECK(w["lastState"]["terminated"]["reason"] == "Error");
  CHECK(w["lastState"]["terminated"]["finishedAt"] == "2026-01-01T00:00:05Z");
  CHECK(w["restartCount"] == 1);
  CHECK(w["started"] == false);
  CHECK(s4["phase"] == "Running");

  // Readiness gates
  json gated = pod();
  gated["spec"]["readinessGates"] = {{{"conditionType", "example.com/ready"}}};
  PodRecord rg = record(gated);
  rg.containers[0].state = ContainerRecord::State::Running;
  rg.containers[0].ready = true;
  json sg = compute_pod_status(gated, rg, {}, t0());
  CHECK((*condition(sg, "ContainersReady"))["status"] == "True");
  CHECK((*condition(sg, "Ready"))["status"] == "False");
  CHECK((*condition(sg, "Ready"))["reason"] == "ReadinessGatesNotReady");
  CHECK((*condition(sg, "Ready"))["message"] == "corresponding condition of pod readiness gate \"example.com/ready\" does not exist.");

  // Succeeded pods: PodCompleted
  json never = pod("Never");
  PodRecord rs = record(never);
  rs.containers[0].state = ContainerRecord::State::Terminated;
  rs.containers[0].terminated = exited(0);
  json ss = compute_pod_status(never, rs, {}, t0());
  CHECK(ss["phase"] == "Succeeded");
  CHECK((*condition(ss, "Ready"))["reason"] == "PodCompleted");
  CHECK(ss["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed");
}

TEST_CASE("records survive a round trip through JSON") {
  json p = pod("OnFailure", true);
  PodRecord r = record(p);
  r.sandbox_ready = true;
  r.pod_ips = {"10.88.0.3"};
  r.containers[0].terminated = exited(3);
  r.containers[0].last = exited(4);
  r.containers[0].restart_count = 2;
  r.containers[0].id = "runc://x";
  r.containers[0].prev_id = "runc://y";
  r.containers[0].ever_created = true;
  r.containers[0].termination_log = "/tmp/t";
  PodRecord back = PodRecord::from_json(r.to_json());
  CHECK(back.to_json() == r.to_json());
  CHECK(back.containers[0].terminated->exit_code == 3);
  CHECK(back.containers[0].last->exit_code == 4);
  CHECK(back.init_containers.size() == 1);
}

TEST_CASE("activeDeadlineSeconds counts from the start time") {
  json p = pod();
  CHECK_FALSE(active_deadline(p, t0()).has_value());
  p["spec"]["activeDeadlineSeconds"] = 30;
  CHECK(active_deadline(p, t0()) == t0() + 30s);
  CHECK_FALSE(active_deadline(p, Clock::time_point{}).has_value());  // not started here yet
  p["spec"]["activeDeadlineSeconds"] = 0;
  CHECK_FALSE(active_deadline(p, t0()).has_value());
}

TEST_CASE("a pod the agent failed itself: Failed at once with its reason and message") {
  json p = pod();
  PodRecord r = record(p);
  r.sandbox_ready = true;
  auto& c = r.containers[0];
  c.ever_created = true;
  c.id = "runc://abc";
  c.state = ContainerRecord::State::Running;  // still being stopped
  r.terminal = true;
  r.reason = kDeadlineExceededReason;
  r.message = kDeadlineExceededMessage;
  json s = compute_pod_status(p, r, {"192.0.2.1", false}, t0() + 40s);
  CHECK(s["phase"] == "Failed");
  CHECK(s["reason"] == "DeadlineExceeded");
  CHECK(s["message"] == "Pod was active on the node longer than the specified deadline");
  CHECK(s["containerStatuses"][0]["state"].contains("running"));
  c.state = ContainerRecord::State::Terminated;
  c.terminated = exited(137);
  s = compute_pod_status(p, r, {"192.0.2.1", false}, t0() + 42s);
  CHECK(s["phase"] == "Failed");
  CHECK(s["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137);
}

TEST_CASE("a pod rejected at admission: phase, reason, message, QoS and start time only") {
  json p = pod();
  PodRecord r;
  r.uid = "u1";
  r.terminal = r.rejected = true;
  r.reason = "OutOfcpu";
  r.message = "Pod was rejected: Node didn't have enough resource: cpu, requested: 4000, used: 0, capacity: 2000";
  r.start_time = t0();
  json s = compute_pod_status(p, r, {"192.0.2.1", false}, t0() + 1s);
  CHECK(s == json{{"phase", "Failed"},
                  {"reason", "OutOfcpu"},
                  {"message", "Pod was rejected: Node didn't have enough resource: cpu, requested: 4000, used: 0, capacity: 2000"},
                  {"qosClass", "BestEffort"},
                  {"startTime", "2026-01-01T00:00:00Z"}});
  PodRecord back = PodRecord::from_json(r.to_json());
  CHECK(back.rejected);
  CHECK(back.reason == "OutOfcpu");
  CHECK(back.message == r.message);
}

TEST_CASE("a terminal phase in the API is never left") {
  json p = pod();
  p["status"]["phase"] = "Failed";
  PodRecord r = record(p);  // known only from the API: nothing created here
  json s = compute_pod_status(p, r, {}, t0());
  CHECK(s["phase"] == "Failed");
}

TEST_CASE("image pull back-off: when the current back-off ends") {
  Backoff b;
  CHECK(b.ready_after_update("k") == Clock::time_point{});
  b.next("k", t0(), t0());
  CHECK(b.ready_after_update("k") == t0() + 10s);
  CHECK(b.in_backoff_since_update("k", t0() + 9s));
  b.next("k", t0() + 10s, t0() + 10s);
  CHECK(b.ready_after_update("k") == t0() + 30s);
}
