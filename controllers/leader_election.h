// Leader election over a coordination.k8s.io/v1 Lease, as client-go's tools/leaderelection:
// the holder renews spec.renewTime every retry period; others take the lease once they have
// seen no renewal for leaseDurationSeconds (measured on their own clock, from when they last
// saw the record change); a leader that cannot renew within the renew deadline stops leading;
// a leader that stops releases the lease so another instance takes over at once.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "controllers/util.h"

namespace berth::client {
class Client;
}

namespace berth::controllers {

struct LeaderElectionConfig {
  std::string lease_namespace = "kube-system";
  std::string lease_name = "berth-controller-manager";
  std::string identity;  // default: <hostname>_<random>
  std::chrono::milliseconds lease_duration{15000};
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
  bool release_on_stop = true;
};

class LeaderElector {
 public:
  LeaderElector(std::shared_ptr<client::Client> client, LeaderElectionConfig config,
                std::function<void()> on_started_leading, std::function<void()> on_stopped_leading);
  ~LeaderElector();

  // Starts the election loop on its own thread.
  void start();
  // Stops; a leader calls on_stopped_leading and releases the lease.
  void stop();
  bool is_leader() const { return leading_.load(); }
  const std::string& identity() const { return config_.identity; }

  // One acquire-or-renew attempt (exposed for tests): true when this instance holds the lease.
  bool try_acquire_or_renew();

 private:
  void run();
  void release();
  bool sleep_for(std::chrono::milliseconds d);  // false when stopping

  std::shared_ptr<client::Client> client_;
  LeaderElectionConfig config_;
  std::function<void()> on_started_, on_stopped_;
  std::atomic<bool> leading_{false};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
  // The record last observed and when (local steady clock) it was seen to change.
  std::string observed_holder_, observed_renew_;
  std::chrono::steady_clock::time_point observed_time_{};
  std::int64_t observed_duration_s_ = 0;
};

}  // namespace berth::controllers
