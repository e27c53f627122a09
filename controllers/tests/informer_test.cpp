#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <atomic>
#include <set>
#include <thread>

#include "controllers/informer.h"
#include "fake_api.h"

using namespace berth::controllers;
using namespace berth::controllers::testing;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

json pod(const std::string& ns, const std::string& name, const std::string& node = "", const std::string& owner = "") {
  json p = {{"metadata", {{"name", name}, {"namespace", ns}}}, {"spec", json::object()}};
  if (!node.empty()) p["spec"]["nodeName"] = node;
  if (!owner.empty()) p["metadata"]["ownerReferences"] = json::array({{{"uid", owner}, {"controller", true}}});
  return p;
}

template <class F>
bool eventually(F f, std::chrono::milliseconds limit = 3000ms) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return f();
}

struct Recorder {
  std::mutex mu;
  std::vector<std::string> seen;
  EventHandler handler() {
    return {[this](const ObjectPtr& o) { add("add " + key_of(*o)); },
            [this](const ObjectPtr&, const ObjectPtr& o) { add("update " + key_of(*o)); },
            [this](const ObjectPtr& o) { add("delete " + key_of(*o)); }};
  }
  void add(std::string s) {
    std::lock_guard l(mu);
    seen.push_back(std::move(s));
  }
  bool has(const std::string& s) {
    std::lock_guard l(mu);
    return std::find(seen.begin(), seen.end(), s) != seen.end();
  }
  std::size_t size() {
    std::lock_guard l(mu);
    return seen.size();
  }
};

}  // namespace

TEST_CASE("lists in pages, then follows the watch; indexes follow") {
  auto api = std::make_shared<FakeApi>();
  for (int i = 0; i < 5; ++i) api->put("pods", pod("a", "p" + std::to_string(i), i % 2 ? "n1" : "n2", "rs1"));
  api->put("pods", pod("b", "q", "n1"));
  InformerOptions opts;
  opts.page_size = 2;
  Informer inf(api, resources::kPods, opts);
  inf.add_index(indexes::kNodeName, indexes::node_name);
  inf.add_index(indexes::kController, indexes::controller);
  Recorder rec;
  inf.add_handler(rec.handler());
  inf.start();
  REQUIRE(inf.wait_synced(3000ms));
  CHECK(inf.size() == 6);
  CHECK(rec.size() == 6);
  CHECK(inf.list_namespace("a").size() == 5);
  CHECK(inf.by_index(indexes::kNodeName, "n1").size() == 3);
  CHECK(inf.by_index(indexes::kController, "rs1").size() == 5);
  CHECK(inf.get("b/q"));
  CHECK(inf.get("b", "q"));
  CHECK((*inf.get("a/p0"))["kind"] == "Pod");  // filled in for list items
  int lists = 0;
  for (const auto& c : api->calls)
    if (c.rfind("GET /api/v1/pods?limit=2", 0) == 0) ++lists;
  CHECK(lists == 3);

  api->put("pods", pod("a", "p9", "n1"));
  json moved = pod("a", "p0", "n1", "rs1");
  api->put("pods", moved);
  api->erase("pods", "b", "q");
  REQUIRE(eventually([&] { return rec.has("delete b/q"); }));
  CHECK(rec.has("add a/p9"));
  CHECK(rec.has("update a/p0"));
  CHECK(inf.by_index(indexes::kNodeName, "n1").size() == 4);  // p1, p3, p9, p0 (q gone)
  CHECK(inf.by_index(indexes::kNodeName, "n2").size() == 2);
  CHECK(!inf.get("b/q"));
  CHECK(inf.last_resource_version() == std::to_string(api->rv));
  inf.stop();
}

TEST_CASE("a watch that is too old lists again and reports what changed in between") {
  auto api = std::make_shared<FakeApi>();
  api->put("pods", pod("a", "keep"));
  api->put("pods", pod("a", "gone"));
  Informer inf(api, resources::kPods);
  Recorder rec;
  inf.add_handler(rec.handler());
  inf.start();
  REQUIRE(inf.wait_synced(3000ms));
  REQUIRE(eventually([&] { std::lock_guard l(api->mu); return api->watches_opened == 1; }));
  // The watch misses changes, history is compacted, and the stream ends: resuming gets 410.
  {
    std::lock_guard l(api->mu);
    api->paused = true;
  }
  api->erase("pods", "a", "gone");
  api->put("pods", pod("a", "new"));
  api->compact();
  api->end_watches();
  {
    std::lock_guard l(api->mu);
    api->paused = false;
  }
  REQUIRE(eventually([&] { return rec.has("delete a/gone") && rec.has("add a/new"); }));
  CHECK(inf.size() == 2);
  CHECK(inf.get("a/keep"));
  int lists = 0;
  {
    std::lock_guard l(api->mu);
    for (const auto& c : api->calls)
      if (c.rfind("GET /api/v1/pods?limit=", 0) == 0) ++lists;
  }
  CHECK(lists == 2);
  inf.stop();
}

TEST_CASE("a handler added late first sees everything cached") {
  auto api = std::make_shared<FakeApi>();
  api->put("pods", pod("a", "x"));
  api->put("pods", pod("a", "y"));
  Informer inf(api, resources::kPods);
  inf.start();
  REQUIRE(inf.wait_synced(3000ms));
  Recorder rec;
  inf.add_handler(rec.handler());
  CHECK(rec.size() == 2);
  api->put("pods", pod("a", "z"));
  REQUIRE(eventually([&] { return rec.has("add a/z"); }));
  inf.stop();
}

TEST_CASE("a failing list is retried") {
  auto api = std::make_shared<FakeApi>();
  api->put("pods", pod("a", "x"));
  std::atomic<int> failures{2};
  api->intercept = [&](const std::string& method, const std::string&) -> std::optional<berth::client::Response> {
    if (method == "GET" && failures-- > 0) {
      berth::client::Response r;
      r.status = 503;
      r.body = R"({"kind":"Status","status":"Failure","reason":"ServiceUnavailable","code":503,"message":"busy"})";
      return r;
    }
    return std::nullopt;
  };
  Informer inf(api, resources::kPods);
  inf.start();
  CHECK(inf.wait_synced(5000ms));
  CHECK(inf.size() == 1);
  inf.stop();
}

TEST_CASE("a namespaced informer") {
  auto api = std::make_shared<FakeApi>();
  api->put("leases", {{"metadata", {{"name", "n1"}, {"namespace", "kube-node-lease"}}}});
  api->put("leases", {{"metadata", {{"name", "other"}, {"namespace", "kube-system"}}}});
  InformerFactory factory(api);
  auto inf = factory.get(resources::kLeases, "kube-node-lease");
  CHECK(factory.get(resources::kLeases, "kube-node-lease") == inf);
  CHECK(factory.get(resources::kLeases) != inf);
  factory.start();
  REQUIRE(factory.wait_synced(3000ms));
  CHECK(inf->size() == 1);
  CHECK(inf->get("kube-node-lease/n1"));
  factory.stop();
}
