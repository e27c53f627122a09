#include "controllers/util.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <tuple>

namespace berth::controllers {

bool parse_int64(const std::string& s, std::int64_t& out) {
  if (s.empty()) return false;
  try {
    std::size_t used = 0;
    long long v = std::stoll(s, &used);
    if (used != s.size()) return false;
    out = v;
    return true;
  } catch (...) {
    return false;
  }
}

std::string str(const json& v) { return v.is_string() ? v.get<std::string>() : std::string(); }

std::int64_t num(const json& v, std::int64_t fallback) {
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d)) return static_cast<std::int64_t>(d);
  }
  return fallback;
}

bool truthy(const json& v) { return v.is_boolean() && v.get<bool>(); }

std::string name_of(const json& obj) { return str(at(obj, {"metadata", "name"})); }
std::string namespace_of(const json& obj) { return str(at(obj, {"metadata", "namespace"})); }
std::string uid_of(const json& obj) { return str(at(obj, {"metadata", "uid"})); }
std::string rv_of(const json& obj) { return str(at(obj, {"metadata", "resourceVersion"})); }
bool being_deleted(const json& obj) {
  const json& t = at(obj, {"metadata", "deletionTimestamp"});
  return t.is_string() && !t.get<std::string>().empty();
}

std::string make_key(const std::string& ns, const std::string& name) { return ns.empty() ? name : ns + "/" + name; }
std::string key_of(const json& obj) { return make_key(namespace_of(obj), name_of(obj)); }

std::pair<std::string, std::string> split_key(const std::string& key) {
  auto slash = key.find('/');
  if (slash == std::string::npos) return {"", key};
  return {key.substr(0, slash), key.substr(slash + 1)};
}

std::vector<std::string> string_list(const json& v) {
  std::vector<std::string> out;
  if (v.is_array())
    for (const auto& e : v)
      if (e.is_string()) out.push_back(e.get<std::string>());
  return out;
}

bool has_string(const json& list, const std::string& s) {
  if (!list.is_array()) return false;
  for (const auto& e : list)
    if (e.is_string() && e.get<std::string>() == s) return true;
  return false;
}

const json* controller_ref(const json& obj) {
  const json& refs = at(obj, {"metadata", "ownerReferences"});
  if (!refs.is_array()) return nullptr;
  for (const auto& r : refs)
    if (truthy(at(r, {"controller"}))) return &r;
  return nullptr;
}

std::string controller_uid(const json& obj) {
  const json* r = controller_ref(obj);
  return r ? str(at(*r, {"uid"})) : std::string();
}

json new_controller_ref(const json& owner, const std::string& api_version, const std::string& kind) {
  return {{"apiVersion", api_version}, {"kind", kind},           {"name", name_of(owner)},
          {"uid", uid_of(owner)},      {"controller", true},     {"blockOwnerDeletion", true}};
}

bool pod_ready(const json& pod) {
  const json& conds = at(pod, {"status", "conditions"});
  if (!conds.is_array()) return false;
  for (const auto& c : conds)
    if (str(at(c, {"type"})) == "Ready") return str(at(c, {"status"})) == "True";
  return false;
}

std::optional<TimePoint> pod_ready_since(const json& pod) {
  const json& conds = at(pod, {"status", "conditions"});
  if (!conds.is_array()) return std::nullopt;
  for (const auto& c : conds)
    if (str(at(c, {"type"})) == "Ready" && str(at(c, {"status"})) == "True")
      return parse_time(at(c, {"lastTransitionTime"}));
  return std::nullopt;
}

bool pod_available(const json& pod, std::int64_t min_ready_seconds, TimePoint now) {
  if (!pod_ready(pod)) return false;
  if (min_ready_seconds <= 0) return true;
  auto since = pod_ready_since(pod);
  if (!since) return false;
  return *since + std::chrono::seconds(min_ready_seconds) < now;
}

std::string pod_phase(const json& pod) { return str(at(pod, {"status", "phase"})); }

bool pod_active(const json& pod) {
  std::string phase = pod_phase(pod);
  return phase != "Succeeded" && phase != "Failed" && !being_deleted(pod);
}

std::string format_time(TimePoint t) {
  std::time_t tt = Clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string format_micro_time(TimePoint t) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1000000);
  long frac = static_cast<long>(us % 1000000);
  if (frac < 0) frac += 1000000, --secs;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%06ldZ", frac);
  return buf;
}

std::optional<TimePoint> parse_time(const std::string& s) {
  if (s.size() < 19) return std::nullopt;
  std::tm tm{};
  const char* p = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!p) return std::nullopt;
  std::int64_t secs = static_cast<std::int64_t>(timegm(&tm));
  std::int64_t nanos = 0;
  if (*p == '.') {
    ++p;
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
      if (digits < 9) nanos = nanos * 10 + (*p - '0'), ++digits;
      ++p;
    }
    while (digits < 9) nanos *= 10, ++digits;
  }
  if (*p == 'Z' || *p == 'z') {
    ++p;
  } else if (*p == '+' || *p == '-') {
    int sign = *p == '-' ? -1 : 1;
    int hh = 0, mm = 0;
    if (std::sscanf(p + 1, "%2d:%2d", &hh, &mm) >= 1) secs -= sign * (hh * 3600 + mm * 60);
  }
  return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(secs) + std::chrono::nanoseconds(nanos)));
}

std::optional<TimePoint> parse_time(const json& v) {
  if (!v.is_string()) return std::nullopt;
  return parse_time(v.get<std::string>());
}

std::string Resource::path(const std::string& ns, const std::string& name, const std::string& sub) const {
  std::string p = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  if (namespaced && !ns.empty()) p += "/namespaces/" + ns;
  p += "/" + plural;
  if (!name.empty()) p += "/" + name;
  if (!sub.empty()) p += "/" + sub;
  return p;
}

namespace resources {
const Resource kPods{"", "v1", "pods", "Pod", true};
const Resource kNodes{"", "v1", "nodes", "Node", false};
const Resource kNamespaces{"", "v1", "namespaces", "Namespace", false};
const Resource kEvents{"", "v1", "events", "Event", true};
const Resource kReplicaSets{"apps", "v1", "replicasets", "ReplicaSet", true};
const Resource kDeployments{"apps", "v1", "deployments", "Deployment", true};
const Resource kLeases{"coordination.k8s.io", "v1", "leases", "Lease", true};
}  // namespace resources

std::string url_escape(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

namespace {
int verbosity_level() {
  static int v = [] {
    const char* e = std::getenv("BERTH_V");
    return e ? std::atoi(e) : 0;
  }();
  return v;
}
std::mutex& log_mutex() {
  static std::mutex m;
  return m;
}
}  // namespace

bool log_enabled(int verbosity) { return verbosity <= verbosity_level(); }

void log(char level, const std::string& component, const std::string& message, int verbosity) {
  if (!log_enabled(verbosity)) return;
  std::string line;
  line.reserve(component.size() + message.size() + 4);
  line.push_back(level);
  line.push_back(' ');
  line += component;
  line += ' ';
  line += message;
  line.push_back('\n');
  std::lock_guard lock(log_mutex());
  std::fwrite(line.data(), 1, line.size(), stderr);
}

// ---- Executor -----------------------------------------------------------------------------

Executor::Executor(std::size_t threads) {
  if (threads == 0) threads = 1;
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

Executor::~Executor() { stop(); }

void Executor::submit(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void Executor::parallel(std::size_t n, const std::function<void(std::size_t)>& fn) {
  if (n == 0) return;
  if (n == 1) {
    fn(0);
    return;
  }
  struct Join {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t left;
  };
  auto join = std::make_shared<Join>();
  join->left = n;
  // The caller runs one share itself; the pool runs the rest.
  for (std::size_t i = 1; i < n; ++i) {
    bool queued = false;
    {
      std::lock_guard lock(mu_);
      if (!stopping_) {
        tasks_.push_back([join, &fn, i] {
          fn(i);
          std::lock_guard l(join->mu);
          if (--join->left == 0) join->cv.notify_all();
        });
        queued = true;
      }
    }
    if (queued) {
      cv_.notify_one();
    } else {
      fn(i);
      std::lock_guard l(join->mu);
      --join->left;
    }
  }
  fn(0);
  std::unique_lock l(join->mu);
  --join->left;
  join->cv.wait(l, [&] { return join->left == 0; });
}

void Executor::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

void Executor::run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // stopping and drained
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

std::pair<int, api::Status> slow_start_batch(Executor* executor, int count, int initial_batch,
                                             const std::function<api::Status()>& fn) {
  int remaining = count;
  int successes = 0;
  for (int batch = std::min(remaining, initial_batch); batch > 0; batch = std::min(2 * batch, remaining)) {
    std::vector<api::Status> results(static_cast<std::size_t>(batch));
    if (executor) {
      executor->parallel(static_cast<std::size_t>(batch), [&](std::size_t i) { results[i] = fn(); });
    } else {
      for (auto& r : results) r = fn();
    }
    api::Status first;
    int failed = 0;
    for (auto& r : results) {
      if (!r.is_ok()) {
        if (failed++ == 0) first = r;
      }
    }
    successes += batch - failed;
    if (failed > 0) return {successes, first};
    remaining -= batch;
  }
  return {successes, api::Status()};
}

// ---- Expectations -------------------------------------------------------------------------

bool Expectations::satisfied(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return true;  // never set, or deleted: sync
  const Entry& e = it->second;
  if (e.adds <= 0 && e.deletes.empty()) return true;
  return std::chrono::steady_clock::now() - e.timestamp > ttl_;
}

void Expectations::expect_creations(const std::string& key, int adds) {
  std::lock_guard lock(mu_);
  Entry& e = entries_[key];
  e.adds = adds;
  e.deletes.clear();
  e.timestamp = std::chrono::steady_clock::now();
}

void Expectations::expect_deletions(const std::string& key, const std::vector<std::string>& pod_keys) {
  std::lock_guard lock(mu_);
  Entry& e = entries_[key];
  e.adds = 0;
  e.deletes = std::set<std::string>(pod_keys.begin(), pod_keys.end());
  e.timestamp = std::chrono::steady_clock::now();
}

void Expectations::creation_observed(const std::string& key) { lower_creations(key, 1); }

void Expectations::lower_creations(const std::string& key, int n) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) it->second.adds -= n;
}

void Expectations::deletion_observed(const std::string& key, const std::string& pod_key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) it->second.deletes.erase(pod_key);
}

void Expectations::remove(const std::string& key) {
  std::lock_guard lock(mu_);
  entries_.erase(key);
}

std::string random_hex(std::size_t n) {
  static const char kHex[] = "0123456789abcdef";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s.push_back(kHex[rng() % 16]);
  return s;
}

}  // namespace berth::controllers
