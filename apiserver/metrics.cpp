#include "apiserver/metrics.h"

#include <sstream>

namespace berth::apiserver {

namespace {
const double kBounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 5, 10, 30, 60};
}

void Metrics::observe_request(const std::string& verb, const std::string& resource, const std::string& subresource,
                              int code, std::chrono::steady_clock::duration latency) {
  double seconds = std::chrono::duration<double>(latency).count();
  std::lock_guard lock(mu_);
  ++requests_[{verb, resource, subresource, code}];
  if (verb == "watch") return;  // a watch lasts as long as the client wants; its latency says nothing
  auto& h = latency_[{verb, resource}];
  if (h.buckets.empty()) h.buckets.assign(std::size(kBounds), 0);
  for (std::size_t i = 0; i < std::size(kBounds); ++i)
    if (seconds <= kBounds[i]) ++h.buckets[i];
  h.sum += seconds;
  ++h.count;
}

std::string Metrics::render() const {
  std::ostringstream out;
  std::lock_guard lock(mu_);
  out << "# HELP apiserver_request_total Counter of API requests by verb, resource, subresource and HTTP code.\n"
      << "# TYPE apiserver_request_total counter\n";
  for (const auto& [k, n] : requests_) {
    const auto& [verb, resource, sub, code] = k;
    out << "apiserver_request_total{code=\"" << code << "\",resource=\"" << resource << "\",subresource=\"" << sub
        << "\",verb=\"" << verb << "\"} " << n << "\n";
  }
  out << "# HELP apiserver_request_duration_seconds Response latency by verb and resource.\n"
      << "# TYPE apiserver_request_duration_seconds histogram\n";
  for (const auto& [k, h] : latency_) {
    std::string labels = "resource=\"" + k.second + "\",verb=\"" + k.first + "\"";
    for (std::size_t i = 0; i < std::size(kBounds); ++i)
      out << "apiserver_request_duration_seconds_bucket{" << labels << ",le=\"" << kBounds[i] << "\"} " << h.buckets[i] << "\n";
    out << "apiserver_request_duration_seconds_bucket{" << labels << ",le=\"+Inf\"} " << h.count << "\n";
    out << "apiserver_request_duration_seconds_sum{" << labels << "} " << h.sum << "\n";
    out << "apiserver_request_duration_seconds_count{" << labels << "} " << h.count << "\n";
  }
  out << "# HELP apiserver_longrunning_requests Open watch streams.\n"
      << "# TYPE apiserver_longrunning_requests gauge\n"
      << "apiserver_longrunning_requests{verb=\"WATCH\"} " << watches_.load() << "\n";
  if (revision_) {
    out << "# HELP berth_store_revision The store's current revision.\n"
        << "# TYPE berth_store_revision gauge\n"
        << "berth_store_revision " << revision_() << "\n";
  }
  return out.str();
}

}  // namespace berth::apiserver
