// How code that has to wait (a store write for its commit) gives its thread back when it runs
// in one of the API server's fibers, instead of blocking an io thread. On an ordinary thread
// there is no suspender and the same code simply blocks.
#pragma once

#include <functional>

namespace berth::api {

class Suspender {
 public:
  // Called with a function that continues the suspended fiber: call it exactly once, from any
  // thread, when what the fiber waits for has happened (possibly before arm returns).
  using Arm = std::function<void(std::function<void()> resume)>;
  // Leaves the fiber; arm runs once the fiber is off its thread.
  virtual void suspend(Arm arm) = 0;
  // Moves the fiber to a thread that may block or compute at length (the worker pool). Later
  // resumes stay there.
  virtual void offload() = 0;

 protected:
  ~Suspender() = default;
};

// The fiber running on this thread, or null on an ordinary thread.
Suspender* current_suspender();
void set_current_suspender(Suspender* s);

// What a request handler calls before work that would stall an io thread (a long list, a
// call to another server, a stream): the rest of the handler runs on the worker pool.
// Does nothing outside a fiber.
void leave_io_thread();

}  // namespace berth::api
