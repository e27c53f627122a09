// A request handler on its own stack, so that waiting for a store commit suspends it and
// frees the io thread for other connections (api::Suspender), instead of parking a thread.
#pragma once

#include <functional>

namespace berth::net {

// Schedules one step of a fiber on some thread (an io thread or the worker pool).
using Post = std::function<void(std::function<void()>)>;

// Runs body in a new fiber on the calling thread until it first suspends or ends. Resumes
// after a wait go through io, or through pool once the body has called api::leave_io_thread().
// done runs right after body returns, on the thread it returned on. body must not throw.
void start_fiber(std::function<void()> body, Post io, Post pool, std::function<void()> done);

}  // namespace berth::net
