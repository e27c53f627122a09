#include "controllers/leader_election.h"

#include <unistd.h>

#include <random>

#include "client/client.h"

namespace berth::controllers {

namespace {
std::string default_identity() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) std::snprintf(host, sizeof(host), "berth");
  return std::string(host) + "_" + random_hex(8) + "-" + random_hex(4) + "-" + random_hex(4) + "-" + random_hex(4) +
         "-" + random_hex(12);
}
}  // namespace

LeaderElector::LeaderElector(std::shared_ptr<client::Client> client, LeaderElectionConfig config,
                             std::function<void()> on_started_leading, std::function<void()> on_stopped_leading)
    : client_(std::move(client)),
      config_(std::move(config)),
      on_started_(std::move(on_started_leading)),
      on_stopped_(std::move(on_stopped_leading)) {
  if (config_.identity.empty()) config_.identity = default_identity();
}

LeaderElector::~LeaderElector() { stop(); }

void LeaderElector::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void LeaderElector::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool LeaderElector::sleep_for(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [&] { return stop_.load(); });
  return !stop_;
}

bool LeaderElector::try_acquire_or_renew() {
  const Resource& leases = resources::kLeases;
  const std::string path = leases.path(config_.lease_namespace, config_.lease_name);
  auto now_wall = Clock::now();
  auto now = std::chrono::steady_clock::now();
  const std::int64_t duration_s =
      std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(config_.lease_duration).count());

  auto current = client_->get(path);
  if (!current) {
    if (current.status().reason() != api::Reason::NotFound) return false;
    json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata", {{"name", config_.lease_name}, {"namespace", config_.lease_namespace}}},
                  {"spec",
                   {{"holderIdentity", config_.identity},
                    {"leaseDurationSeconds", duration_s},
                    {"acquireTime", format_micro_time(now_wall)},
                    {"renewTime", format_micro_time(now_wall)},
                    {"leaseTransitions", 0}}}};
    auto created = client_->create(leases.path(config_.lease_namespace), lease);
    if (!created) return false;
    observed_holder_ = config_.identity;
    observed_renew_ = str(at(*created, {"spec", "renewTime"}));
    observed_time_ = now;
    observed_duration_s_ = duration_s;
    return true;
  }
  json lease = std::move(*current);
  const json& spec = lease["spec"];
  std::string holder = str(at(spec, {"holderIdentity"}));
  std::string renew = str(at(spec, {"renewTime"}));
  std::int64_t their_duration = num(at(spec, {"leaseDurationSeconds"}), duration_s);
  if (holder != observed_holder_ || renew != observed_renew_ || observed_time_ == std::chrono::steady_clock::time_point{}) {
    observed_holder_ = holder;
    observed_renew_ = renew;
    observed_time_ = now;
    observed_duration_s_ = their_duration;
  }
  bool mine = holder == config_.identity;
  if (!holder.empty() && !mine && observed_time_ + std::chrono::seconds(observed_duration_s_) > now)
    return false;  // held by someone else, not expired

  json& s = lease["spec"];
  if (!mine) {
    s["acquireTime"] = format_micro_time(now_wall);
    s["leaseTransitions"] = num(at(s, {"leaseTransitions"})) + 1;
  }
  s["holderIdentity"] = config_.identity;
  s["leaseDurationSeconds"] = duration_s;
  s["renewTime"] = format_micro_time(now_wall);
  if (!s.contains("acquireTime") || s["acquireTime"].is_null()) s["acquireTime"] = format_micro_time(now_wall);
  auto updated = client_->update(path, lease);  // carries resourceVersion: optimistic concurrency
  if (!updated) return false;
  observed_holder_ = config_.identity;
  observed_renew_ = str(at(*updated, {"spec", "renewTime"}));
  observed_time_ = now;
  observed_duration_s_ = duration_s;
  return true;
}

void LeaderElector::release() {
  const std::string path = resources::kLeases.path(config_.lease_namespace, config_.lease_name);
  auto current = client_->get(path);
  if (!current || str(at(*current, {"spec", "holderIdentity"})) != config_.identity) return;
  json lease = std::move(*current);
  auto now = Clock::now();
  lease["spec"]["holderIdentity"] = "";
  lease["spec"]["leaseDurationSeconds"] = 1;
  lease["spec"]["renewTime"] = format_micro_time(now);
  lease["spec"]["acquireTime"] = format_micro_time(now);
  auto r = client_->update(path, lease);
  if (!r) log('W', "leaderelection", "could not release lease: " + r.status().message());
}

void LeaderElector::run() {
  std::mt19937 rng{std::random_device{}()};
  auto jittered = [&](std::chrono::milliseconds d) {
    std::uniform_real_distribution<double> j(0.0, 1.2);
    return d + std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(d.count()) * j(rng)));
  };
  const std::string lease_key = config_.lease_namespace + "/" + config_.lease_name;
  while (!stop_) {
    // Acquire.
    log('I', "leaderelection", "attempting to acquire leader lease " + lease_key + "...", 1);
    while (!stop_ && !try_acquire_or_renew()) {
      if (!sleep_for(jittered(config_.retry_period))) break;
    }
    if (stop_) break;
    log('I', "leaderelection", "successfully acquired lease " + lease_key + " as " + config_.identity);
    leading_ = true;
    if (on_started_) on_started_();
    // Renew.
    auto last_renew = std::chrono::steady_clock::now();
    while (!stop_) {
      if (!sleep_for(config_.retry_period)) break;
      if (try_acquire_or_renew()) {
        last_renew = std::chrono::steady_clock::now();
        continue;
      }
      if (std::chrono::steady_clock::now() - last_renew > config_.renew_deadline) {
        log('E', "leaderelection", "failed to renew lease " + lease_key + ": timed out; leading stopped");
        break;
      }
    }
    leading_ = false;
    if (on_stopped_) on_stopped_();
    if (stop_) {
      if (config_.release_on_stop) release();
      break;
    }
  }
}

}  // namespace berth::controllers
