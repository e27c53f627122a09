#include "controllers/workqueue.h"

#include <algorithm>
#include <cmath>

#include "controllers/util.h"

namespace berth::controllers {

RateLimiter::RateLimiter(Options options)
    : options_(options), tokens_(options.burst), last_(std::chrono::steady_clock::now()) {}

std::chrono::milliseconds RateLimiter::when(const std::string& key) {
  std::lock_guard lock(mu_);
  // ItemExponentialFailureRateLimiter: base * 2^failures, capped.
  int exp = failures_[key]++;
  double backoff_ms = static_cast<double>(options_.base_delay.count()) * std::pow(2.0, std::min(exp, 62));
  double max_ms = static_cast<double>(options_.max_delay.count());
  auto item = std::chrono::milliseconds(static_cast<std::int64_t>(std::min(backoff_ms, max_ms)));
  // BucketRateLimiter: a reservation from a token bucket of qps/burst.
  std::chrono::milliseconds bucket{0};
  if (options_.qps > 0) {
    auto now = std::chrono::steady_clock::now();
    double elapsed = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_ = std::min<double>(options_.burst, tokens_ + elapsed * options_.qps);
    tokens_ -= 1;
    if (tokens_ < 0) bucket = std::chrono::milliseconds(static_cast<std::int64_t>(-tokens_ / options_.qps * 1000.0));
  }
  return std::max(item, bucket);
}

void RateLimiter::forget(const std::string& key) {
  std::lock_guard lock(mu_);
  failures_.erase(key);
}

int RateLimiter::num_requeues(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

WorkQueue::WorkQueue(std::string name, RateLimiter::Options limiter) : name_(std::move(name)), limiter_(limiter) {}

WorkQueue::~WorkQueue() { shutdown(); }

void WorkQueue::add_locked(const std::string& key) {
  if (shutting_down_) return;
  if (dirty_.count(key)) return;
  dirty_.insert(key);
  if (processing_.count(key)) return;  // queued again by done()
  queue_.push_back(key);
  cv_.notify_one();
}

void WorkQueue::add(const std::string& key) {
  std::lock_guard lock(mu_);
  add_locked(key);
}

void WorkQueue::add_after(const std::string& key, std::chrono::milliseconds delay) {
  if (delay.count() <= 0) {
    add(key);
    return;
  }
  std::lock_guard lock(mu_);
  if (shutting_down_) return;
  auto when = SteadyClock::now() + delay;
  auto it = waiting_.find(key);
  if (it != waiting_.end() && it->second <= when) return;
  waiting_[key] = when;
  heap_.emplace(when, key);
  cv_.notify_all();  // a waiter may need to wake earlier
}

void WorkQueue::add_rate_limited(const std::string& key) { add_after(key, limiter_.when(key)); }
void WorkQueue::forget(const std::string& key) { limiter_.forget(key); }
int WorkQueue::num_requeues(const std::string& key) { return limiter_.num_requeues(key); }

void WorkQueue::promote_due_locked(SteadyClock::time_point now) {
  while (!heap_.empty() && heap_.top().first <= now) {
    auto [when, key] = heap_.top();
    heap_.pop();
    auto it = waiting_.find(key);
    if (it == waiting_.end() || it->second != when) continue;  // superseded by an earlier add
    waiting_.erase(it);
    add_locked(key);
  }
}

std::optional<std::string> WorkQueue::get_until(std::optional<SteadyClock::time_point> deadline) {
  std::unique_lock lock(mu_);
  for (;;) {
    if (shutting_down_) return std::nullopt;
    auto now = SteadyClock::now();
    promote_due_locked(now);
    if (!queue_.empty()) {
      std::string key = std::move(queue_.front());
      queue_.pop_front();
      processing_.insert(key);
      dirty_.erase(key);
      return key;
    }
    if (deadline && now >= *deadline) return std::nullopt;
    std::optional<SteadyClock::time_point> wake = deadline;
    if (!heap_.empty() && (!wake || heap_.top().first < *wake)) wake = heap_.top().first;
    if (wake)
      cv_.wait_until(lock, *wake);
    else
      cv_.wait(lock);
  }
}

std::optional<std::string> WorkQueue::get() { return get_until(std::nullopt); }

std::optional<std::string> WorkQueue::get_for(std::chrono::milliseconds timeout) {
  return get_until(SteadyClock::now() + timeout);
}

void WorkQueue::done(const std::string& key) {
  std::lock_guard lock(mu_);
  processing_.erase(key);
  if (dirty_.count(key) && !shutting_down_) {
    queue_.push_back(key);
    cv_.notify_one();
  }
}

void WorkQueue::shutdown() {
  {
    std::lock_guard lock(mu_);
    shutting_down_ = true;
  }
  cv_.notify_all();
}

bool WorkQueue::shutting_down() const {
  std::lock_guard lock(mu_);
  return shutting_down_;
}

std::size_t WorkQueue::len() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

std::size_t WorkQueue::waiting() const {
  std::lock_guard lock(mu_);
  return waiting_.size();
}

void WorkerPool::start(WorkQueue& queue, int workers, std::function<SyncResult(const std::string&)> sync,
                       std::string component) {
  auto fn = std::make_shared<std::function<SyncResult(const std::string&)>>(std::move(sync));
  for (int i = 0; i < workers; ++i) {
    threads_.emplace_back([&queue, fn, component] {
      for (;;) {
        auto key = queue.get();
        if (!key) return;
        SyncResult r;
        try {
          r = (*fn)(*key);
        } catch (const std::exception& e) {
          r = SyncResult::error(api::Status(api::Reason::InternalError, std::string("exception: ") + e.what()));
        }
        if (!r.status.is_ok()) {
          int n = queue.num_requeues(*key);
          // Conflicts are the normal price of optimistic concurrency: retry quietly.
          // A deleted object (NotFound) is simply gone by the next sync.
          int v = r.status.reason() == api::Reason::Conflict || r.status.reason() == api::Reason::NotFound ? 2
                  : n > 3                                                                                   ? 2
                                                                                                            : 0;
          log('E', component, *key + ": sync failed (retry " + std::to_string(n + 1) + "): " + r.status.message(), v);
          queue.add_rate_limited(*key);
        } else {
          queue.forget(*key);
          if (r.requeue_after) queue.add_after(*key, *r.requeue_after);
        }
        queue.done(*key);
      }
    });
  }
}

void WorkerPool::join() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

}  // namespace berth::controllers
