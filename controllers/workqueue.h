// A work queue of object keys with client-go's semantics (util/workqueue): a key is queued at
// most once, is never handed to two workers at the same time, and a key added while it is
// being processed is queued again when its worker is done. Delayed adds and rate-limited
// retries (per-key exponential backoff combined with an overall token bucket, as client-go's
// DefaultControllerRateLimiter) keep failing keys from spinning.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "api/status.h"

namespace berth::controllers {

// How long a key waits before its next retry: max(per-key exponential backoff, token bucket).
class RateLimiter {
 public:
  struct Options {
    std::chrono::milliseconds base_delay{5};
    std::chrono::milliseconds max_delay{std::chrono::seconds(1000)};
    double qps = 10;      // overall retries per second; 0 disables the bucket
    int burst = 100;
  };
  RateLimiter() : RateLimiter(Options{}) {}
  explicit RateLimiter(Options options);

  // The delay for this retry of key; counts the failure.
  std::chrono::milliseconds when(const std::string& key);
  void forget(const std::string& key);
  int num_requeues(const std::string& key);

 private:
  std::mutex mu_;
  Options options_;
  std::unordered_map<std::string, int> failures_;
  double tokens_;
  std::chrono::steady_clock::time_point last_;
};

class WorkQueue {
 public:
  using SteadyClock = std::chrono::steady_clock;

  explicit WorkQueue(std::string name = "", RateLimiter::Options limiter = {});
  ~WorkQueue();

  void add(const std::string& key);
  // Adds key after delay; a key already waiting keeps the earlier of the two times.
  void add_after(const std::string& key, std::chrono::milliseconds delay);
  void add_rate_limited(const std::string& key);
  void forget(const std::string& key);
  int num_requeues(const std::string& key);

  // Blocks for the next key; nullopt once shut down.
  std::optional<std::string> get();
  // Like get(), but gives up after timeout (nullopt also on timeout; see shutting_down()).
  std::optional<std::string> get_for(std::chrono::milliseconds timeout);
  void done(const std::string& key);

  // Wakes every waiting get(); later adds are ignored.
  void shutdown();
  bool shutting_down() const;
  std::size_t len() const;           // keys ready to be handed out
  std::size_t waiting() const;       // keys waiting for their delay
  const std::string& name() const { return name_; }

 private:
  std::optional<std::string> get_until(std::optional<SteadyClock::time_point> deadline);
  void add_locked(const std::string& key);
  void promote_due_locked(SteadyClock::time_point now);

  std::string name_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::unordered_set<std::string> dirty_, processing_;
  // Delayed keys: the earliest ready time per key, and a heap ordered by time.
  std::unordered_map<std::string, SteadyClock::time_point> waiting_;
  using Delayed = std::pair<SteadyClock::time_point, std::string>;
  std::priority_queue<Delayed, std::vector<Delayed>, std::greater<Delayed>> heap_;
  bool shutting_down_ = false;
  RateLimiter limiter_;
};

// What a sync function asks of the queue: done (forget the key), retry with backoff, or come
// back after a delay (controller-runtime's Result{RequeueAfter}).
struct SyncResult {
  api::Status status;                              // not ok: retry with backoff
  std::optional<std::chrono::milliseconds> requeue_after;
  static SyncResult ok() { return {}; }
  static SyncResult error(api::Status s) { return {std::move(s), std::nullopt}; }
  static SyncResult after(std::chrono::milliseconds d) { return {api::Status(), d}; }
};

// Runs `workers` threads that take keys from queue and call sync, until the queue shuts down.
class WorkerPool {
 public:
  WorkerPool() = default;
  ~WorkerPool() { join(); }
  void start(WorkQueue& queue, int workers, std::function<SyncResult(const std::string&)> sync,
             std::string component);
  void join();

 private:
  std::vector<std::thread> threads_;
};

}  // namespace berth::controllers
