#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "controllers/workqueue.h"

using namespace berth::controllers;
using namespace std::chrono_literals;

TEST_CASE("a key is queued once and never handed to two workers") {
  WorkQueue q;
  q.add("a");
  q.add("a");
  q.add("b");
  CHECK(q.len() == 2);
  auto first = q.get();
  REQUIRE(first);
  CHECK(*first == "a");
  // Added again while being processed: not handed out until done().
  q.add("a");
  auto second = q.get();
  REQUIRE(second);
  CHECK(*second == "b");
  CHECK(q.len() == 0);
  CHECK_FALSE(q.get_for(20ms).has_value());
  q.done("a");
  auto third = q.get_for(100ms);
  REQUIRE(third);
  CHECK(*third == "a");
  q.done("a");
  q.done("b");
  CHECK(q.len() == 0);
}

TEST_CASE("delayed adds come out in time order and keep the earliest time") {
  WorkQueue q;
  auto start = std::chrono::steady_clock::now();
  q.add_after("late", 200ms);
  q.add_after("early", 50ms);
  q.add_after("late", 80ms);   // earlier: replaces 200ms
  q.add_after("early", 500ms); // later: ignored
  CHECK(q.waiting() == 2);
  auto a = q.get();
  REQUIRE(a);
  CHECK(*a == "early");
  CHECK(std::chrono::steady_clock::now() - start >= 45ms);
  auto b = q.get();
  REQUIRE(b);
  CHECK(*b == "late");
  auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(elapsed >= 75ms);
  CHECK(elapsed < 190ms);
}

TEST_CASE("per-key exponential backoff from 5ms, capped, reset by forget") {
  RateLimiter::Options o;
  o.qps = 0;  // item limiter only
  o.max_delay = 100ms;
  RateLimiter r(o);
  CHECK(r.when("k") == 5ms);
  CHECK(r.when("k") == 10ms);
  CHECK(r.when("k") == 20ms);
  CHECK(r.when("k") == 40ms);
  CHECK(r.when("k") == 80ms);
  CHECK(r.when("k") == 100ms);
  CHECK(r.when("k") == 100ms);
  CHECK(r.num_requeues("k") == 7);
  CHECK(r.when("other") == 5ms);
  r.forget("k");
  CHECK(r.num_requeues("k") == 0);
  CHECK(r.when("k") == 5ms);
}

TEST_CASE("the overall token bucket limits retries beyond its burst") {
  RateLimiter::Options o;
  o.qps = 10;
  o.burst = 3;
  RateLimiter r(o);
  // Distinct keys: the item limiter says 5ms; the bucket lets three through, then spaces them 100ms.
  CHECK(r.when("a") == 5ms);
  CHECK(r.when("b") == 5ms);
  CHECK(r.when("c") == 5ms);
  auto d = r.when("d");
  CHECK(d >= 90ms);
  CHECK(d <= 100ms);
  auto e = r.when("e");
  CHECK(e >= 190ms);
}

TEST_CASE("add_rate_limited delays by the backoff") {
  WorkQueue q("t", RateLimiter::Options{50ms, 1000ms, 0, 0});
  auto start = std::chrono::steady_clock::now();
  q.add_rate_limited("x");
  auto k = q.get();
  REQUIRE(k);
  CHECK(std::chrono::steady_clock::now() - start >= 45ms);
  CHECK(q.num_requeues("x") == 1);
  q.forget("x");
  CHECK(q.num_requeues("x") == 0);
}

TEST_CASE("shutdown wakes blocked workers") {
  WorkQueue q;
  std::atomic<bool> returned{false};
  std::thread t([&] {
    auto k = q.get();
    CHECK_FALSE(k.has_value());
    returned = true;
  });
  std::this_thread::sleep_for(30ms);
  CHECK_FALSE(returned.load());
  q.shutdown();
  t.join();
  CHECK(returned.load());
  q.add("ignored");
  CHECK(q.len() == 0);
}

TEST_CASE("worker pool retries failures with backoff and honours requeue-after") {
  WorkQueue q("t", RateLimiter::Options{1ms, 10ms, 0, 0});
  std::atomic<int> calls{0}, later{0};
  WorkerPool pool;
  pool.start(q, 2,
             [&](const std::string& key) -> SyncResult {
               if (key == "fail") {
                 if (++calls < 3) return SyncResult::error(berth::api::Status(berth::api::Reason::Conflict, "try again"));
                 return SyncResult::ok();
               }
               if (++later == 1) return SyncResult::after(20ms);
               return SyncResult::ok();
             },
             "test");
  q.add("fail");
  q.add("again");
  for (int i = 0; i < 100 && (calls < 3 || later < 2); ++i) std::this_thread::sleep_for(10ms);
  CHECK(calls == 3);
  CHECK(later == 2);
  CHECK(q.num_requeues("fail") == 0);  // forgotten after success
  q.shutdown();
  pool.join();
}
