#include "nodeagent/util.h"

#include <fcntl.h>
#include <malloc.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

extern char** environ;

namespace berth::nodeagent {

namespace {
std::atomic<int> g_log_level{static_cast<int>(LogLevel::Info)};

void split_time(Clock::time_point t, std::tm& tm, long& nanos) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  nanos = static_cast<long>(ns % 1000000000);
  if (nanos < 0) {
    nanos += 1000000000;
    --secs;
  }
  gmtime_r(&secs, &tm);
}
}  // namespace

void set_log_level(LogLevel level) { g_log_level = static_cast<int>(level); }

void logf(LogLevel level, const char* fmt, ...) {
  if (static_cast<int>(level) < g_log_level.load()) return;
  char msg[4096];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  std::tm tm{};
  long nanos = 0;
  split_time(Clock::now(), tm, nanos);
  const char letters[] = {'D', 'I', 'W', 'E'};
  std::fprintf(stderr, "%c%02d%02d %02d:%02d:%02d.%06ld nodeagent: %s\n", letters[static_cast<int>(level)],
               tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, nanos / 1000, msg);
}

std::string format_time(Clock::time_point t) {
  std::tm tm{};
  long nanos = 0;
  split_time(t, tm, nanos);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace {

// RFC 3339 with a fraction of exactly `digits` digits (6 or 9).
std::string format_fraction_time(Clock::time_point t, int digits) {
  std::tm tm{};
  long nanos = 0;
  split_time(t, tm, nanos);
  char buf[48];
  std::size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%0*ldZ", digits, digits == 6 ? nanos / 1000 : nanos);
  return buf;
}

}  // namespace

std::string format_micro_time(Clock::time_point t) { return format_fraction_time(t, 6); }

std::string format_nano_fixed(Clock::time_point t) { return format_fraction_time(t, 9); }

std::string format_nano_go(Clock::time_point t) {
  std::tm tm{};
  long nanos = 0;
  split_time(t, tm, nanos);
  char buf[48];
  std::size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  if (nanos) {
    char frac[16];
    std::snprintf(frac, sizeof(frac), "%09ld", nanos);
    std::string f = frac;
    while (!f.empty() && f.back() == '0') f.pop_back();
    out += "." + f;
  }
  return out + "Z";
}

std::optional<Clock::time_point> parse_time(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|±hh:mm)
  if (s.size() < 20) return std::nullopt;
  auto num = [&](std::size_t pos, std::size_t len, int& out) {
    out = 0;
    for (std::size_t i = pos; i < pos + len; ++i) {
      if (i >= s.size() || s[i] < '0' || s[i] > '9') return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  int Y, M, D, h, m, sec;
  if (!num(0, 4, Y) || s[4] != '-' || !num(5, 2, M) || s[7] != '-' || !num(8, 2, D) ||
      (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !num(11, 2, h) || s[13] != ':' || !num(14, 2, m) ||
      s[16] != ':' || !num(17, 2, sec))
    return std::nullopt;
  std::size_t i = 19;
  int64_t nanos = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (digits < 9) nanos = nanos * 10 + (s[i] - '0'), ++digits;
      ++i;
    }
    if (digits == 0) return std::nullopt;
    while (digits++ < 9) nanos *= 10;
  }
  int offset = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i + 6 <= s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (!num(i + 1, 2, oh) || s[i + 3] != ':' || !num(i + 4, 2, om)) return std::nullopt;
    offset = (oh * 60 + om) * 60 * (s[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  std::tm tm{};
  tm.tm_year = Y - 1900;
  tm.tm_mon = M - 1;
  tm.tm_mday = D;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = sec;
  std::time_t secs = timegm(&tm) - offset;
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(secs) +
                                                                       std::chrono::nanoseconds(nanos)));
}

std::string go_duration(std::chrono::nanoseconds d) {
  int64_t ns = d.count();
  if (ns == 0) return "0s";
  std::string sign;
  uint64_t u = ns < 0 ? static_cast<uint64_t>(-ns) : static_cast<uint64_t>(ns);
  if (ns < 0) sign = "-";
  auto frac = [](uint64_t v, int prec) {
    // v has `prec` fractional digits; trailing zeros dropped.
    std::string digits = std::to_string(v);
    while (static_cast<int>(digits.size()) <= prec) digits = "0" + digits;
    std::string ip = digits.substr(0, digits.size() - prec), fp = digits.substr(digits.size() - prec);
    while (!fp.empty() && fp.back() == '0') fp.pop_back();
    return fp.empty() ? ip : ip + "." + fp;
  };
  if (u < 1000000000ULL) {
    if (u < 1000ULL) return sign + std::to_string(u) + "ns";
    if (u < 1000000ULL) return sign + frac(u, 3) + "µs";
    return sign + frac(u, 6) + "ms";
  }
  uint64_t secs_total = u / 1000000000ULL;
  uint64_t sub = u % 1000000000ULL;
  uint64_t hours = secs_total / 3600, mins = (secs_total / 60) % 60, secs = secs_total % 60;
  std::string out = sign;
  if (hours) out += std::to_string(hours) + "h";
  if (hours || mins) out += std::to_string(mins) + "m";
  out += frac(secs * 1000000000ULL + sub, 9) + "s";
  return out;
}

std::string jstr(const json& obj, std::initializer_list<const char*> path, const std::string& fallback) {
  const json& v = at(obj, path);
  return v.is_string() ? v.get<std::string>() : fallback;
}

int64_t jint(const json& obj, std::initializer_list<const char*> path, int64_t fallback) {
  const json& v = at(obj, path);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) return static_cast<int64_t>(v.get<double>());
  return fallback;
}

bool jbool(const json& obj, std::initializer_list<const char*> path, bool fallback) {
  const json& v = at(obj, path);
  return v.is_boolean() ? v.get<bool>() : fallback;
}

api::Result<std::string> read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return api::Status(errno == ENOENT ? api::Reason::NotFound : api::Reason::InternalError,
                       "open " + path + ": " + std::strerror(errno));
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return api::Status(api::Reason::InternalError, "read " + path + ": " + std::strerror(e));
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

std::string read_file_or(const std::string& path, const std::string& fallback) {
  auto r = read_file(path);
  return r ? std::move(*r) : fallback;
}

static api::Status write_all(int fd, std::string_view data, const std::string& path) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return api::Status(api::Reason::InternalError, "write " + path + ": " + std::strerror(errno));
    }
    off += static_cast<std::size_t>(n);
  }
  return {};
}

api::Status write_file(const std::string& path, std::string_view data, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return api::Status(api::Reason::InternalError, "open " + path + ": " + std::strerror(errno));
  auto st = write_all(fd, data, path);
  ::fchmod(fd, mode);
  ::close(fd);
  return st;
}

api::Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode, bool durable) {
  std::string tmp = path + ".tmp" + random_hex(4);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return api::Status(api::Reason::InternalError, "open " + tmp + ": " + std::strerror(errno));
  auto st = write_all(fd, data, tmp);
  ::fchmod(fd, mode);
  if (st && durable) ::fsync(fd);
  ::close(fd);
  if (!st) {
    ::unlink(tmp.c_str());
    return st;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return api::Status(api::Reason::InternalError, "rename " + path + ": " + std::strerror(e));
  }
  return {};
}

api::Status mkdir_p(const std::string& path, mode_t mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return api::Status(api::Reason::InternalError, "mkdir " + path + ": " + ec.message());
  ::chmod(path.c_str(), mode);
  return {};
}

void remove_all(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool is_mounted(const std::string& path) {
#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x00002000
#endif
  struct statx stx {};
  if (::statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) != 0) return false;
  if (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) return (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  auto mounts = read_file("/proc/self/mountinfo");
  if (!mounts) return false;
  for (const auto& line : split(*mounts, '\n')) {
    auto f = split(line, ' ');
    if (f.size() > 4 && f[4] == path) return true;
  }
  return false;
}

void unmount_all(const std::string& path) {
  for (int i = 0; i < 8 && is_mounted(path); ++i)
    if (::umount2(path.c_str(), 0) != 0) ::umount2(path.c_str(), MNT_DETACH);
}

std::string trim(std::string_view s) {
  std::size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return std::string(s.substr(a, b - a));
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    auto pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.emplace_back(s.substr(start));
      return out;
    }
    out.emplace_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  if (RAND_bytes(buf.data(), static_cast<int>(bytes)) != 1) {
    for (auto& b : buf) b = static_cast<unsigned char>(std::rand());
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (auto b : buf) {
    out.push_back(hex[b >> 4]);
    out.push_back(hex[b & 15]);
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

// ---- memory ----

void tune_agent_memory() {
  ::mallopt(M_ARENA_MAX, 2);
  ::mallopt(M_TRIM_THRESHOLD, 256 * 1024);
  ::mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}

void release_free_memory() { ::malloc_trim(0); }

// ---- FifoGate ----

FifoGate::Slot FifoGate::enter() {
  std::unique_lock lock(mu_);
  uint64_t ticket = next_ticket_++;
  cv_.wait(lock, [&] { return ticket == serving_ && active_ < limit_; });
  ++serving_;
  ++active_;
  cv_.notify_all();  // the next ticket may fit too
  return Slot(this);
}

void FifoGate::leave() {
  std::lock_guard lock(mu_);
  --active_;
  cv_.notify_all();
}

int startup_concurrency() {
  unsigned n = std::thread::hardware_concurrency();
  return static_cast<int>(std::max(2u, n));
}

// ---- Reaper ----

struct Reaper::Impl {
  std::mutex mu;
  std::condition_variable exited_cv;  // an owned child was reaped
  std::condition_variable spawned_cv;  // there may be children now
  std::set<pid_t> owned, notify;
  std::map<pid_t, int> exited;
  std::deque<std::pair<pid_t, int>> orphans;
  std::atomic<uint64_t> generation{0};
  bool started = false;
};

Reaper& Reaper::instance() {
  static Reaper r;
  return r;
}

Reaper::Impl* Reaper::impl() {
  static Impl i;
  return &i;
}

void Reaper::start() {
  Impl* d = impl();
  std::lock_guard lock(d->mu);
  if (d->started) return;
  d->started = true;
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  std::thread([this] { loop(); }).detach();
}

void Reaper::loop() {
  Impl* d = impl();
  for (;;) {
    siginfo_t info{};
    int r = ::waitid(P_ALL, 0, &info, WEXITED | WNOWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      std::unique_lock lock(d->mu);
      d->spawned_cv.wait_for(lock, std::chrono::milliseconds(200));
      continue;
    }
    if (info.si_pid <= 0) continue;
    std::lock_guard lock(d->mu);
    int status = 0;
    pid_t p = ::waitpid(info.si_pid, &status, WNOHANG);
    if (p != info.si_pid) continue;
    if (d->owned.erase(p)) {
      d->exited[p] = status;
      if (d->notify.erase(p)) d->generation.fetch_add(1);
    } else {
      d->orphans.emplace_back(p, status);
      while (d->orphans.size() > 512) d->orphans.pop_front();
      d->generation.fetch_add(1);
    }
    d->exited_cv.notify_all();
  }
}

uint64_t Reaper::exit_generation() { return impl()->generation.load(); }

api::Result<pid_t> Reaper::spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                                 const std::vector<std::pair<int, int>>& fds, bool new_session, bool notify) {
  start();
  Impl* d = impl();
  if (argv.empty()) return api::Status(api::Reason::BadRequest, "empty command");
  // Move every source fd out of the way first, so a target number that is also a source is safe.
  std::vector<int> temps;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  int max_target = 2;
  for (const auto& [target, source] : fds) {
    int t = ::fcntl(source, F_DUPFD_CLOEXEC, 100);
    if (t < 0) {
      for (int x : temps) ::close(x);
      posix_spawn_file_actions_destroy(&actions);
      return api::Status(api::Reason::InternalError, std::string("dup: ") + std::strerror(errno));
    }
    temps.push_back(t);
    max_target = std::max(max_target, target);
  }
  for (std::size_t i = 0; i < fds.size(); ++i) posix_spawn_file_actions_adddup2(&actions, temps[i], fds[i].first);
  posix_spawn_file_actions_addclosefrom_np(&actions, max_target + 1);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (new_session) flags |= POSIX_SPAWN_SETSID;
  posix_spawnattr_setflags(&attr, flags);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  std::vector<std::string> env_copy;
  char** env_ptr = environ;
  if (!env.empty()) {
    env_copy = env;
    for (auto& e : env_copy) envp.push_back(e.data());
    envp.push_back(nullptr);
    env_ptr = envp.data();
  }
  pid_t pid = -1;
  int rc;
  {
    std::lock_guard lock(d->mu);
    rc = ::posix_spawnp(&pid, argv[0].c_str(), &actions, &attr, args.data(), env_ptr);
    if (rc == 0) {
      d->owned.insert(pid);
      if (notify) d->notify.insert(pid);
    }
  }
  d->spawned_cv.notify_all();
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  for (int x : temps) ::close(x);
  if (rc != 0) return api::Status(api::Reason::InternalError, argv[0] + ": " + std::strerror(rc));
  return pid;
}

std::optional<int> Reaper::wait(pid_t pid, std::chrono::milliseconds timeout) {
  Impl* d = impl();
  std::unique_lock lock(d->mu);
  if (!d->exited_cv.wait_for(lock, timeout, [&] { return d->exited.count(pid) > 0; })) return std::nullopt;
  int st = d->exited[pid];
  d->exited.erase(pid);
  return st;
}

std::optional<int> Reaper::try_wait(pid_t pid) {
  Impl* d = impl();
  std::lock_guard lock(d->mu);
  auto it = d->exited.find(pid);
  if (it == d->exited.end()) return std::nullopt;
  int st = it->second;
  d->exited.erase(it);
  return st;
}

std::optional<int> Reaper::orphan_status(pid_t pid) {
  Impl* d = impl();
  std::lock_guard lock(d->mu);
  for (auto it = d->orphans.rbegin(); it != d->orphans.rend(); ++it)
    if (it->first == pid) return it->second;
  return std::nullopt;
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

RunResult run_command(const std::vector<std::string>& argv, const std::string& input,
                      std::chrono::milliseconds timeout, const std::vector<std::string>& extra_env) {
  RunResult res;
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0) {
    res.err = std::strerror(errno);
    return res;
  }
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]), ::close(in[1]);
    res.err = std::strerror(errno);
    return res;
  }
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(in[0]), ::close(in[1]), ::close(out[0]), ::close(out[1]);
    res.err = std::strerror(errno);
    return res;
  }
  std::vector<std::string> env;
  if (!extra_env.empty()) {
    for (char** e = environ; *e; ++e) env.emplace_back(*e);
    for (const auto& e : extra_env) env.push_back(e);
  }
  auto pid = Reaper::instance().spawn(argv, env, {{0, in[0]}, {1, out[1]}, {2, err[1]}});
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (!pid) {
    ::close(in[1]), ::close(out[0]), ::close(err[0]);
    res.err = pid.status().message();
    return res;
  }
  // Feed stdin from this thread in small pieces while reading, so neither side blocks.
  std::size_t in_off = 0;
  int in_fd = in[1];
  ::fcntl(in_fd, F_SETFL, O_NONBLOCK);
  if (input.empty()) {
    ::close(in_fd);
    in_fd = -1;
  }
  auto deadline = SteadyClock::now() + timeout;
  bool out_open = true, err_open = true;
  std::optional<int> status;
  SteadyClock::time_point exited_at{};
  while (out_open || err_open || in_fd >= 0) {
    if (!status) {
      status = Reaper::instance().try_wait(*pid);
      if (status) exited_at = SteadyClock::now();
    }
    // A child may leave a daemon holding our pipes; stop reading shortly after it exits.
    if (status && SteadyClock::now() - exited_at > std::chrono::milliseconds(200)) break;
    if (SteadyClock::now() > deadline) {
      res.timed_out = true;
      ::kill(*pid, SIGKILL);
      break;
    }
    pollfd pfds[3];
    int n = 0;
    if (out_open) pfds[n++] = {out[0], POLLIN, 0};
    if (err_open) pfds[n++] = {err[0], POLLIN, 0};
    if (in_fd >= 0) pfds[n++] = {in_fd, POLLOUT, 0};
    int r = ::poll(pfds, n, 50);
    if (r <= 0) continue;
    for (int i = 0; i < n; ++i) {
      if (!pfds[i].revents) continue;
      if (pfds[i].fd == in_fd) {
        ssize_t w = ::write(in_fd, input.data() + in_off, input.size() - in_off);
        if (w > 0) in_off += static_cast<std::size_t>(w);
        if (w < 0 && errno != EAGAIN && errno != EINTR) in_off = input.size();
        if (in_off >= input.size()) {
          ::close(in_fd);
          in_fd = -1;
        }
        continue;
      }
      char buf[8192];
      ssize_t k = ::read(pfds[i].fd, buf, sizeof(buf));
      bool is_out = pfds[i].fd == out[0];
      if (k > 0) {
        (is_out ? res.out : res.err).append(buf, static_cast<std::size_t>(k));
      } else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
        (is_out ? out_open : err_open) = false;
      }
    }
  }
  if (in_fd >= 0) ::close(in_fd);
  ::close(out[0]);
  ::close(err[0]);
  if (!status) status = Reaper::instance().wait(*pid, res.timed_out ? std::chrono::seconds(10) : timeout);
  if (status && !res.timed_out) res.exit_code = exit_code_of(*status);
  return res;
}

}  // namespace berth::nodeagent
