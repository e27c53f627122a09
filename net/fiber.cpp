#include "net/fiber.h"

#include <boost/context/fiber.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>

#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "api/suspend.h"

namespace berth::net {

namespace ctx = boost::context;

namespace {

// Thread-sized stacks (handlers parse bodies with recursive code) behind a guard page; only
// the pages a handler touches are ever resident. Reused, so a request costs no mmap.
constexpr std::size_t kStackSize = 8 * 1024 * 1024;
constexpr std::size_t kStacksKept = 256;

class StackPool {
 public:
  ctx::stack_context allocate() {
    {
      std::lock_guard lock(mu_);
      if (!free_.empty()) {
        ctx::stack_context sc = free_.back();
        free_.pop_back();
        return sc;
      }
    }
    return maker_.allocate();
  }
  void deallocate(ctx::stack_context& sc) {
    {
      std::lock_guard lock(mu_);
      if (free_.size() < kStacksKept) {
        free_.push_back(sc);
        return;
      }
    }
    maker_.deallocate(sc);
  }

 private:
  std::mutex mu_;
  std::vector<ctx::stack_context> free_;
  ctx::protected_fixedsize_stack maker_{kStackSize};
};

StackPool& stacks() {
  static StackPool* pool = new StackPool;  // outlives every fiber, even at exit
  return *pool;
}

struct PooledStack {
  ctx::stack_context allocate() { return stacks().allocate(); }
  void deallocate(ctx::stack_context& sc) { stacks().deallocate(sc); }
};

class Fiber final : public api::Suspender, public std::enable_shared_from_this<Fiber> {
 public:
  Fiber(std::function<void()> body, Post io, Post pool, std::function<void()> done)
      : body_(std::move(body)), io_(std::move(io)), pool_(std::move(pool)), done_(std::move(done)) {}

  void start() {
    self_ = ctx::fiber(std::allocator_arg, PooledStack{}, [this](ctx::fiber&& back) {
      back_ = std::move(back);
      api::set_current_suspender(this);
      body_();
      api::set_current_suspender(nullptr);
      finished_ = true;
      return std::move(back_);
    });
    step();
  }

  void suspend(Arm arm) override {
    arm_ = std::move(arm);
    api::set_current_suspender(nullptr);
    back_ = std::move(back_).resume();
    // Possibly on another thread now.
    api::set_current_suspender(this);
  }

  void offload() override {
    if (on_pool_) return;
    on_pool_ = true;
    suspend([](std::function<void()> resume) { resume(); });
  }

 private:
  // Runs the body until it suspends or ends; only ever on one thread at a time.
  void step() {
    self_ = std::move(self_).resume();
    if (finished_) {
      auto done = std::move(done_);
      done();
      return;
    }
    // Off the fiber's stack now, so whoever resumes it may do so at once, from any thread.
    Arm arm = std::move(arm_);
    arm([keep = shared_from_this()] {
      Post& post = keep->on_pool_ ? keep->pool_ : keep->io_;
      post([keep] { keep->step(); });
    });
  }

  std::function<void()> body_;
  Post io_, pool_;
  std::function<void()> done_;
  ctx::fiber self_;  // the body, while it is suspended
  ctx::fiber back_;  // inside the body: the step that resumed it
  Arm arm_;
  bool on_pool_ = false;
  bool finished_ = false;
};

}  // namespace

void start_fiber(std::function<void()> body, Post io, Post pool, std::function<void()> done) {
  auto fiber = std::make_shared<Fiber>(std::move(body), std::move(io), std::move(pool), std::move(done));
  fiber->start();
}

}  // namespace berth::net
