// Store benchmark: durable (sync=true) RocksDB store in a temporary directory under /tmp.
// Prints one `name: value unit` line per figure; diagnostics go to stderr. Never asserts timings.
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "store/rocksdb_store.h"

using namespace berth::store;
using Clock = std::chrono::steady_clock;

namespace {

// About 1 KiB of JSON-like text: compressible the way Kubernetes objects are, not trivially.
std::string make_value(std::mt19937_64& rng) {
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789-";
  std::string v = R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")";
  while (v.size() < 1024) {
    for (int i = 0; i < 12; ++i) v += kChars[rng() % (sizeof kChars - 1)];
    v += R"(","labels":{"app":")";
  }
  v.resize(1024);
  return v;
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return v[i];
}

std::unique_ptr<Store> open_or_die(const std::string& path) {
  RocksDbOptions o;
  o.path = path;
  o.sync = true;
  auto r = open_rocksdb(o);
  if (!r.ok()) {
    std::fprintf(stderr, "store_bench: %s\n", r.status().message().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

struct PutRun {
  std::size_t puts = 0;
  double seconds = 0;
  std::vector<double> latencies_ms;
  std::vector<std::string> keys;
};

// `threads` writers create fresh keys for `duration`.
PutRun run_puts(Store& s, int threads, std::chrono::milliseconds duration, const std::string& prefix) {
  std::vector<PutRun> per(threads);
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  auto start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      std::mt19937_64 rng(t + 1);
      const std::string value = make_value(rng);
      PutRun& me = per[t];
      for (int i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        std::string key = prefix + std::to_string(t) + "/" + std::to_string(i);
        auto t0 = Clock::now();
        auto r = s.create(key, value);
        auto t1 = Clock::now();
        if (!r.ok()) {
          std::fprintf(stderr, "store_bench: create failed: %s\n", r.status().message().c_str());
          std::exit(1);
        }
        me.latencies_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        me.keys.push_back(std::move(key));
      }
    });
  }
  std::this_thread::sleep_for(duration);
  stop = true;
  for (auto& t : ts) t.join();
  PutRun all;
  all.seconds = seconds_since(start);
  for (auto& p : per) {
    all.puts += p.latencies_ms.size();
    all.latencies_ms.insert(all.latencies_ms.end(), p.latencies_ms.begin(), p.latencies_ms.end());
    for (auto& k : p.keys) all.keys.push_back(std::move(k));
  }
  return all;
}

void bench_puts_and_reads(const std::string& dir) {
  auto s = open_or_die(dir + "/puts");

  PutRun one = run_puts(*s, 1, std::chrono::milliseconds(2000), "one/");
  std::printf("store_put_1_writer: %.0f puts/s\n", static_cast<double>(one.puts) / one.seconds);
  std::fflush(stdout);

  PutRun many = run_puts(*s, 64, std::chrono::milliseconds(4000), "many/");
  std::printf("store_put_64_writers: %.0f puts/s\n", static_cast<double>(many.puts) / many.seconds);
  std::printf("store_put_p99_64_writers: %.2f ms\n", percentile(many.latencies_ms, 0.99));
  std::fprintf(stderr, "  (64 writers: %zu puts, p50 %.2f ms, max %.2f ms)\n", many.puts,
               percentile(many.latencies_ms, 0.50), percentile(many.latencies_ms, 1.0));
  std::fflush(stdout);

  // Random point reads of the keys just written, one reader per core.
  const std::vector<std::string>& keys = many.keys;
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> gets{0};
  std::vector<std::thread> readers;
  const unsigned n_readers = std::max(1u, std::thread::hardware_concurrency());
  auto start = Clock::now();
  for (unsigned t = 0; t < n_readers; ++t) {
    readers.emplace_back([&, t] {
      std::mt19937_64 rng(100 + t);
      std::size_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        auto r = s->get(keys[rng() % keys.size()]);
        if (!r.ok() || r->value.size() != 1024) {
          std::fprintf(stderr, "store_bench: get failed: %s\n", r.status().message().c_str());
          std::exit(1);
        }
        ++n;
      }
      gets += n;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  stop = true;
  for (auto& t : readers) t.join();
  std::printf("store_get: %.0f gets/s\n", static_cast<double>(gets.load()) / seconds_since(start));
  std::fflush(stdout);

  // One full list of 10,000 keys under a prefix, among the other keys above.
  {
    std::vector<std::thread> ts;
    for (int t = 0; t < 64; ++t) {
      ts.emplace_back([&, t] {
        std::mt19937_64 rng(200 + t);
        const std::string value = make_value(rng);
        for (int i = t; i < 10000; i += 64) {
          char key[32];
          std::snprintf(key, sizeof key, "list/%05d", i);
          if (!s->create(key, value).ok()) std::exit(1);
        }
      });
    }
    for (auto& t : ts) t.join();
  }
  std::vector<double> list_ms;
  for (int i = 0; i < 7; ++i) {
    auto t0 = Clock::now();
    ListOptions all;
    all.prefix = "list/";
    auto r = s->list(all);
    list_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    if (!r.ok() || r->items.size() != 10000) {
      std::fprintf(stderr, "store_bench: list failed: %s\n", r.status().message().c_str());
      std::exit(1);
    }
  }
  std::printf("store_list_10000_keys: %.2f ms\n", percentile(list_ms, 0.5));
  std::fflush(stdout);
}

// 1,000 watchers on one prefix, fed by a paced writer; a small pool of consumer threads drains
// them the way an API server's watch handlers would (notify posts, a thread takes).
void bench_watch(const std::string& dir) {
  constexpr int kWatchers = 1000;
  constexpr int kWritesPerSecond = 500;
  constexpr auto kDuration = std::chrono::milliseconds(3000);
  auto s = open_or_die(dir + "/watch");

  std::mutex mu;
  std::condition_variable cv;
  std::deque<int> ready;
  bool done = false;
  std::vector<std::atomic<bool>> queued(kWatchers);
  std::vector<std::shared_ptr<Watch>> watches(kWatchers);
  for (int i = 0; i < kWatchers; ++i) {
    auto w = s->watch("watch/", s->current_revision(), [&, i] {
      if (queued[i].exchange(true)) return;
      {
        std::lock_guard l(mu);
        ready.push_back(i);
      }
      cv.notify_one();
    });
    if (!w.ok()) {
      std::fprintf(stderr, "store_bench: watch failed: %s\n", w.status().message().c_str());
      std::exit(1);
    }
    watches[i] = *w;
  }

  const Clock::time_point epoch = Clock::now();
  std::atomic<std::size_t> delivered{0};
  std::vector<std::vector<double>> samples(2);
  std::vector<std::thread> consumers;
  for (int c = 0; c < 2; ++c) {
    consumers.emplace_back([&, c] {
      auto& mine = samples[c];
      for (;;) {
        int i;
        {
          std::unique_lock l(mu);
          cv.wait(l, [&] { return !ready.empty() || done; });
          if (ready.empty()) return;
          i = ready.front();
          ready.pop_front();
        }
        queued[i] = false;
        for (;;) {
          auto evs = watches[i]->take(1024);
          if (evs.empty()) break;
          const double now_us = std::chrono::duration<double, std::micro>(Clock::now() - epoch).count();
          for (const Event& e : evs) {
            double sent_us = std::strtod(e.value->c_str(), nullptr);
            mine.push_back((now_us - sent_us) / 1000.0);
          }
          delivered += evs.size();
        }
      }
    });
  }

  std::mt19937_64 rng(7);
  std::string body = make_value(rng);
  std::size_t writes = 0;
  auto start = Clock::now();
  const auto interval = std::chrono::nanoseconds(1000000000 / kWritesPerSecond);
  auto next = start;
  while (Clock::now() - start < kDuration) {
    std::this_thread::sleep_until(next);
    next += interval;
    char stamp[32];
    std::snprintf(stamp, sizeof stamp, "%.1f ",
                  std::chrono::duration<double, std::micro>(Clock::now() - epoch).count());
    std::string value = stamp + body.substr(0, 1024 - std::strlen(stamp));
    if (!s->create("watch/" + std::to_string(writes), std::move(value)).ok()) std::exit(1);
    ++writes;
  }
  const std::size_t expected = writes * kWatchers;
  auto wait_start = Clock::now();
  while (delivered.load() < expected && seconds_since(wait_start) < 10) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  {
    std::lock_guard l(mu);
    done = true;
  }
  cv.notify_all();
  for (auto& t : consumers) t.join();
  std::vector<double> all;
  for (auto& v : samples) all.insert(all.end(), v.begin(), v.end());
  std::fprintf(stderr, "  (watch: %zu writes at %d/s, %zu of %zu deliveries, %zu ended early)\n", writes,
               kWritesPerSecond, all.size(), expected,
               static_cast<std::size_t>(std::count_if(watches.begin(), watches.end(),
                                                      [](auto& w) { return w->ended().has_value(); })));
  std::printf("store_watch_delivery_p50_1000_watchers: %.2f ms\n", percentile(all, 0.50));
  std::printf("store_watch_delivery_p99_1000_watchers: %.2f ms\n", percentile(all, 0.99));
  std::fflush(stdout);
  for (auto& w : watches) w->cancel();
}

}  // namespace

int main() {
  char tmpl[] = "/tmp/berth-store-bench-XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::perror("store_bench: mkdtemp");
    return 1;
  }
  const std::string dir = tmpl;
  auto start = Clock::now();
  bench_puts_and_reads(dir);
  bench_watch(dir);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::fprintf(stderr, "  (total %.1f s)\n", seconds_since(start));
  return 0;
}
