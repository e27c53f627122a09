#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "controllers/leader_election.h"
#include "controllers/manager.h"
#include "fake_api.h"

using namespace berth::controllers;
using namespace berth::controllers::testing;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {
template <class F>
bool eventually(F f, std::chrono::milliseconds limit = 5000ms) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

json lease_of(FakeApi& api) {
  std::lock_guard l(api.mu);
  return api.objects.at("leases/kube-system/berth-controller-manager");
}

LeaderElectionConfig fast(const std::string& id) {
  LeaderElectionConfig c;
  c.identity = id;
  c.lease_duration = 1000ms;
  c.renew_deadline = 600ms;
  c.retry_period = 100ms;
  return c;
}
}  // namespace

TEST_CASE("--controllers as kube-controller-manager reads it") {
  auto all = parse_controllers("*");
  REQUIRE(all);
  CHECK(*all == all_controllers());
  auto some = parse_controllers("*,-scheduler");
  REQUIRE(some);
  CHECK(some->count("scheduler") == 0);
  CHECK(some->count("replicaset") == 1);
  auto named = parse_controllers("replicaset-controller, deployment");
  REQUIRE(named);
  CHECK(*named == std::set<std::string>{"replicaset", "deployment"});
  auto bad = parse_controllers("replicaset,nope");
  CHECK_FALSE(bad);
  CHECK(bad.status().message().find("unknown controller \"nope\"") != std::string::npos);
  auto none = parse_controllers("");
  REQUIRE(none);
  CHECK(none->empty());
  CHECK(ControllerOptions{}.enabled == all_controllers());
  auto podgc = parse_controllers("pod-garbage-collector-controller");
  REQUIRE(podgc);
  CHECK(*podgc == std::set<std::string>{"podgc"});
}

TEST_CASE("one leader at a time; a stopping leader hands over") {
  auto api = std::make_shared<FakeApi>();
  std::atomic<int> a_leading{0}, b_leading{0};
  LeaderElector a(api, fast("a"), [&] { ++a_leading; }, [&] { --a_leading; });
  a.start();
  REQUIRE(eventually([&] { return a.is_leader(); }));
  LeaderElector b(api, fast("b"), [&] { ++b_leading; }, [&] { --b_leading; });
  b.start();
  std::this_thread::sleep_for(1500ms);  // longer than the lease: a keeps renewing it
  CHECK(a.is_leader());
  CHECK_FALSE(b.is_leader());
  json lease = lease_of(*api);
  CHECK(lease["spec"]["holderIdentity"] == "a");
  CHECK(lease["spec"]["leaseTransitions"] == 0);
  CHECK(lease["spec"]["leaseDurationSeconds"] == 1);
  std::string renew = lease["spec"]["renewTime"];
  CHECK(renew.size() == std::string("2024-01-01T00:00:00.000000Z").size());

  auto handover = std::chrono::steady_clock::now();
  a.stop();  // releases
  CHECK(a_leading == 0);
  REQUIRE(eventually([&] { return b.is_leader(); }, 3000ms));
  CHECK(std::chrono::steady_clock::now() - handover < 800ms);  // no need to wait for expiry
  CHECK(b_leading == 1);
  json after = lease_of(*api);
  CHECK(after["spec"]["holderIdentity"] == "b");
  CHECK(after["spec"]["leaseTransitions"] == 1);
  b.stop();
}

TEST_CASE("an expired lease is taken over; a leader that cannot renew stops leading") {
  auto api = std::make_shared<FakeApi>();
  // Someone held it and vanished without releasing.
  api->put("leases", {{"metadata", {{"name", "berth-controller-manager"}, {"namespace", "kube-system"}}},
                      {"spec", {{"holderIdentity", "ghost"}, {"leaseDurationSeconds", 1},
                                {"renewTime", "2024-01-01T00:00:00.000000Z"}, {"leaseTransitions", 3}}}});
  std::atomic<bool> lost{false};
  LeaderElector a(api, fast("a"), [] {}, [&] { lost = true; });
  auto start = std::chrono::steady_clock::now();
  a.start();
  REQUIRE(eventually([&] { return a.is_leader(); }, 4000ms));
  // It waited a lease duration of its own observation before taking it.
  CHECK(std::chrono::steady_clock::now() - start >= 900ms);
  CHECK(lease_of(*api)["spec"]["leaseTransitions"] == 4);

  // The API starts refusing updates: within the renew deadline it stops leading.
  api->intercept = [](const std::string& method, const std::string&) -> std::optional<berth::client::Response> {
    if (method != "PUT") return std::nullopt;
    berth::client::Response r;
    r.status = 503;
    r.body = R"({"kind":"Status","status":"Failure","reason":"ServiceUnavailable","code":503,"message":"down"})";
    return r;
  };
  REQUIRE(eventually([&] { return lost.load(); }, 3000ms));
  CHECK_FALSE(a.is_leader());
  api->intercept = nullptr;
  a.stop();
}

#include "controllers/run.h"

TEST_CASE("controller flags") {
  std::map<std::string, std::string> flags;
  auto reader = [&](const std::string& n) -> std::optional<std::string> {
    auto it = flags.find(n);
    if (it == flags.end()) return std::nullopt;
    return it->second;
  };
  auto defaults = options_from_flags(reader);
  REQUIRE(defaults);
  CHECK(defaults->enabled == all_controllers());
  CHECK(defaults->node_monitor_grace == std::chrono::seconds(50));
  CHECK(defaults->leader_elect);
  flags = {{"controllers", "*,-scheduler"},
           {"node-monitor-grace-period", "1m30s"},
           {"leader-elect", "false"},
           {"concurrent-gc-syncs", "4"},
           {"leader-elect-retry-period", "500ms"}};
  auto o = options_from_flags(reader);
  REQUIRE(o);
  CHECK(o->enabled.count("scheduler") == 0);
  CHECK(o->node_monitor_grace == std::chrono::seconds(90));
  CHECK_FALSE(o->leader_elect);
  CHECK(o->gc_workers == 4);
  CHECK(o->leader_election.retry_period == std::chrono::milliseconds(500));
  CHECK(defaults->terminated_pod_gc_threshold == 12500);
  flags = {{"terminated-pod-gc-threshold", "0"}, {"pod-gc-period", "500ms"}, {"pod-gc-quarantine", "2s"}};
  o = options_from_flags(reader);
  REQUIRE(o);
  CHECK(o->terminated_pod_gc_threshold == 0);
  CHECK(o->pod_gc_period == std::chrono::milliseconds(500));
  CHECK(o->pod_gc_quarantine == std::chrono::milliseconds(2000));
  flags = {{"terminated-pod-gc-threshold", "-1"}};
  CHECK_FALSE(options_from_flags(reader));
  flags = {{"node-monitor-grace-period", "soon"}};
  auto bad = options_from_flags(reader);
  CHECK_FALSE(bad);
  CHECK(bad.status().message() == "--node-monitor-grace-period: invalid duration \"soon\"");
  flags = {{"controllers", "kubelet"}};
  CHECK_FALSE(options_from_flags(reader));
  CHECK(parse_duration("40") == std::chrono::milliseconds(40000));
  CHECK(parse_duration("2h") == std::chrono::milliseconds(7200000));
  CHECK(parse_duration("1.5s") == std::chrono::milliseconds(1500));
  CHECK_FALSE(parse_duration("5x").has_value());
}
