#include "api/suspend.h"

namespace berth::api {

namespace {
// Read and written only through these out-of-line functions: a fiber may resume on another
// thread, and a caller must not keep a thread-local address across a suspension.
thread_local Suspender* current = nullptr;
}  // namespace

Suspender* current_suspender() { return current; }
void set_current_suspender(Suspender* s) { current = s; }

void leave_io_thread() {
  if (Suspender* s = current_suspender()) s->offload();
}

}  // namespace berth::api
