// /metrics in the Prometheus text format: requests by verb, resource and code, latency
// histograms, open watches, the store revision.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace berth::apiserver {

class Metrics {
 public:
  void observe_request(const std::string& verb, const std::string& resource, const std::string& subresource,
                       int code, std::chrono::steady_clock::duration latency);
  void watch_opened() { ++watches_; }
  void watch_closed() { --watches_; }
  void set_revision_source(std::function<std::int64_t()> f) { revision_ = std::move(f); }
  std::string render() const;

 private:
  struct Histogram {
    std::vector<std::uint64_t> buckets;  // cumulative counts per bound
    double sum = 0;
    std::uint64_t count = 0;
  };
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, std::string, int>, std::uint64_t> requests_;
  std::map<std::pair<std::string, std::string>, Histogram> latency_;
  std::atomic<std::int64_t> watches_{0};
  std::function<std::int64_t()> revision_;
};

}  // namespace berth::apiserver
