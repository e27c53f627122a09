// Unit tests of the request fibers (net/fiber.h): a body that waits gives its thread back,
// is resumed through the poster it started on, and moves to the pool when asked.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "api/suspend.h"
#include "net/fiber.h"

using namespace berth;

namespace {

// A queue of steps the test runs by hand, standing in for an io thread or the pool.
struct Queue {
  std::deque<std::function<void()>> steps;
  net::Post post() {
    return [this](std::function<void()> step) { steps.push_back(std::move(step)); };
  }
  bool run_one() {
    if (steps.empty()) return false;
    auto step = std::move(steps.front());
    steps.pop_front();
    step();
    return true;
  }
};

}  // namespace

TEST_CASE("a body that never waits runs to its end inside start_fiber") {
  Queue io, pool;
  bool ran = false, done = false;
  net::start_fiber([&] { ran = api::current_suspender() != nullptr; }, io.post(), pool.post(), [&] { done = true; });
  CHECK(ran);
  CHECK(done);
  CHECK(io.steps.empty());
  CHECK(api::current_suspender() == nullptr);  // only set while the body runs
}

TEST_CASE("a waiting body gives the thread back and continues where it stopped once resumed") {
  Queue io, pool;
  std::function<void()> resume;
  std::vector<int> trace;
  bool done = false;
  net::start_fiber(
      [&] {
        trace.push_back(1);
        api::current_suspender()->suspend([&](std::function<void()> r) { resume = std::move(r); });
        trace.push_back(2);
      },
      io.post(), pool.post(), [&] { done = true; });
  CHECK(trace == std::vector<int>{1});
  CHECK_FALSE(done);
  CHECK(api::current_suspender() == nullptr);
  REQUIRE(resume);
  CHECK(io.steps.empty());
  std::thread other(resume);  // the waited-for event happens on another thread
  other.join();
  REQUIRE(io.steps.size() == 1);  // the continuation goes through io, not the resuming thread
  CHECK(pool.steps.empty());
  io.run_one();
  CHECK(trace == std::vector<int>{1, 2});
  CHECK(done);
}

TEST_CASE("resuming before arm returns is allowed") {
  Queue io, pool;
  bool done = false;
  net::start_fiber([&] { api::current_suspender()->suspend([](std::function<void()> r) { r(); }); }, io.post(),
                   pool.post(), [&] { done = true; });
  CHECK_FALSE(done);
  CHECK(io.run_one());
  CHECK(done);
}

TEST_CASE("leave_io_thread moves the rest of the body, and later resumes, to the pool") {
  Queue io, pool;
  std::function<void()> resume;
  bool done = false;
  int phase = 0;
  net::start_fiber(
      [&] {
        phase = 1;
        api::leave_io_thread();
        phase = 2;
        api::leave_io_thread();  // already there: no further hop
        api::current_suspender()->suspend([&](std::function<void()> r) { resume = std::move(r); });
        phase = 3;
      },
      io.post(), pool.post(), [&] { done = true; });
  CHECK(phase == 1);
  CHECK(io.steps.empty());
  REQUIRE(pool.run_one());
  CHECK(phase == 2);
  REQUIRE(resume);
  resume();
  CHECK(io.steps.empty());
  REQUIRE(pool.run_one());
  CHECK(phase == 3);
  CHECK(done);
}

TEST_CASE("leave_io_thread outside a fiber does nothing") {
  api::leave_io_thread();
  CHECK(api::current_suspender() == nullptr);
}

TEST_CASE("many fibers interleave, each keeping its own stack") {
  Queue io, pool;
  std::vector<std::function<void()>> resumes(100);
  std::vector<int> results(100, 0);
  int finished = 0;
  for (int i = 0; i < 100; ++i) {
    net::start_fiber(
        [&, i] {
          int local = i * 7;  // lives on the fiber's own stack across the suspension
          api::current_suspender()->suspend([&, i](std::function<void()> r) { resumes[i] = std::move(r); });
          results[i] = local + 1;
        },
        io.post(), pool.post(), [&] { ++finished; });
  }
  CHECK(finished == 0);
  for (int i = 99; i >= 0; --i) resumes[i]();
  while (io.run_one()) {
  }
  CHECK(finished == 100);
  for (int i = 0; i < 100; ++i) CHECK(results[i] == i * 7 + 1);
}
