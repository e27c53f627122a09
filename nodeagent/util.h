// Small helpers the node agent's parts share: Kubernetes time formats, Go-style durations,
// files, leveled one-line logs, and child processes (spawned and reaped through one Reaper,
// because the agent is a child subreaper and must not lose an exit status to a stray waitpid).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/object.h"
#include "api/status.h"

namespace berth::nodeagent {

using json = nlohmann::json;
using Clock = std::chrono::system_clock;
using SteadyClock = std::chrono::steady_clock;

// ---- logging: "I 2026-11-26T07:05:07.123Z nodeagent: message" on stderr ----
enum class LogLevel { Debug, Info, Warning, Error };
void set_log_level(LogLevel level);
void logf(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
#define BERTH_LOGI(...) ::berth::nodeagent::logf(::berth::nodeagent::LogLevel::Info, __VA_ARGS__)
#define BERTH_LOGW(...) ::berth::nodeagent::logf(::berth::nodeagent::LogLevel::Warning, __VA_ARGS__)
#define BERTH_LOGE(...) ::berth::nodeagent::logf(::berth::nodeagent::LogLevel::Error, __VA_ARGS__)
#define BERTH_LOGD(...) ::berth::nodeagent::logf(::berth::nodeagent::LogLevel::Debug, __VA_ARGS__)

// ---- time ----
// metav1.Time: "2006-01-02T15:04:05Z" (seconds, UTC).
std::string format_time(Clock::time_point t);
// metav1.MicroTime: "2006-01-02T15:04:05.000000Z".
std::string format_micro_time(Clock::time_point t);
// CRI log timestamps: RFC 3339 with nine fractional digits, always.
std::string format_nano_fixed(Clock::time_point t);
// Go's time.RFC3339Nano: trailing zeros of the fraction (and a bare ".") dropped.
std::string format_nano_go(Clock::time_point t);
// Parses RFC 3339 with an optional fraction and Z or +hh:mm; nullopt when malformed.
std::optional<Clock::time_point> parse_time(std::string_view s);
// Go's time.Duration.String(): "10s", "1m20s", "5m0s", "1.5s", "300ms".
std::string go_duration(std::chrono::nanoseconds d);

// ---- JSON access that never throws ----
using api::at;  // null json when a step is absent
std::string jstr(const json& obj, std::initializer_list<const char*> path, const std::string& fallback = "");
int64_t jint(const json& obj, std::initializer_list<const char*> path, int64_t fallback = 0);
bool jbool(const json& obj, std::initializer_list<const char*> path, bool fallback = false);

// ---- files ----
api::Result<std::string> read_file(const std::string& path);
std::string read_file_or(const std::string& path, const std::string& fallback = "");
api::Status write_file(const std::string& path, std::string_view data, mode_t mode = 0644);
// durable=false skips the fsync: for files that are of no use after the machine goes down
// (container bundles, runtime state), where a crash may leave an empty file that readers treat as
// missing. fsync is most of the cost of a write and serialises on the journal under load.
api::Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode = 0644,
                              bool durable = true);
api::Status mkdir_p(const std::string& path, mode_t mode = 0755);
void remove_all(const std::string& path);  // best effort; never crosses a mount point it cannot remove
bool exists(const std::string& path);
// Whether path is a mount point in our mount namespace (statx's STATX_ATTR_MOUNT_ROOT; on kernels
// before 5.8, /proc/self/mountinfo, whose size grows with every pod's mounts).
bool is_mounted(const std::string& path);
// Unmounts path (lazily if busy) until nothing is mounted there.
void unmount_all(const std::string& path);
std::string trim(std::string_view s);
std::vector<std::string> split(std::string_view s, char sep);
bool starts_with(std::string_view s, std::string_view prefix);
std::string random_hex(std::size_t bytes);
std::string sha256_hex(std::string_view data);

// ---- bounded concurrency ----
// A counting semaphore that admits waiters in the order they arrived. Pod start-up stages (the
// network, the container's creation) go through one each: with a burst of pods on a small
// machine, running everything at once only makes every pod finish late; in order, the first pods
// are up after their own work and the last after everyone's.
class FifoGate {
 public:
  explicit FifoGate(int limit) : limit_(limit < 1 ? 1 : limit) {}
  class Slot {
   public:
    explicit Slot(FifoGate* g) : g_(g) {}
    Slot(Slot&& o) noexcept : g_(o.g_) { o.g_ = nullptr; }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() {
      if (g_) g_->leave();
    }

   private:
    FifoGate* g_;
  };
  Slot enter();

 private:
  void leave();
  std::mutex mu_;
  std::condition_variable cv_;
  int limit_, active_ = 0;
  uint64_t next_ticket_ = 0, serving_ = 0;
};

// How many pods may be in one start-up stage at once: the CPU count, at least two (the stages
// mostly wait on the runtime and CNI processes they spawn).
int startup_concurrency();

// ---- memory ----
// For a process that is only a node agent (`berth agent`, berth-agent; not `berth up`): at most
// two malloc arenas (glibc makes up to eight per core, one per busy thread, and a pod worker is a
// thread), and fixed trim/mmap thresholds so freed memory goes back to the system (glibc raises
// both after the first large free, e.g. an image layer, and then keeps megabytes of free heap).
// Call before any thread starts.
void tune_agent_memory();
// Returns free heap pages to the system (malloc_trim): after pods go, their workers' memory is
// free but scattered through the heap, below the top that M_TRIM_THRESHOLD trims (measured: 13 MB
// of anonymous memory kept after 100 pods, 5.5 MB after a trim).
// Both tune glibc's malloc, which berth-agent uses. The berth binary allocates through jemalloc
// (cmd/berth.cpp), so there, as in `berth up` or an agent run in-process, they change nothing and
// jemalloc's decay returns freed pages instead.
void release_free_memory();

// ---- child processes ----
// Every child of the agent is reaped here: a thread peeks at exited children (waitid WNOWAIT)
// and reaps them under a lock that spawn() holds while it registers the pid, so a status is
// never taken by the wrong waiter. Orphans re-parented to us (we are a child subreaper) are
// reaped too; their statuses are kept briefly so a runtime can still ask about an init pid.
class Reaper {
 public:
  static Reaper& instance();
  // Marks the process as a child subreaper and starts the reaping thread (idempotent).
  void start();
  // posix_spawn with the signal mask cleared and default dispositions; fds maps child fd ->
  // parent fd (dup2'ed in the child, in order); the pid is owned: wait() or try_wait() it.
  // notify: its exit bumps exit_generation() (container shims; not every short command).
  api::Result<pid_t> spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                           const std::vector<std::pair<int, int>>& fds, bool new_session = false,
                           bool notify = false);
  // Blocks until pid exits (or timeout); returns its wait status.
  std::optional<int> wait(pid_t pid, std::chrono::milliseconds timeout = std::chrono::hours(24));
  std::optional<int> try_wait(pid_t pid);
  // The exit status of a non-owned pid reaped recently (an orphaned container init).
  std::optional<int> orphan_status(pid_t pid);
  // Counts exits of notify children and of orphans (pod workers use it to notice container exits).
  uint64_t exit_generation();

 private:
  Reaper() = default;
  void loop();
  struct Impl;
  Impl* impl();
};

struct RunResult {
  int exit_code = -1;  // 128+signal for a signalled child; -1 when it could not run or timed out
  std::string out, err;
  bool timed_out = false;
};
// Runs argv to completion with stdin from `input`, capturing stdout/stderr.
RunResult run_command(const std::vector<std::string>& argv, const std::string& input = "",
                      std::chrono::milliseconds timeout = std::chrono::seconds(60),
                      const std::vector<std::string>& extra_env = {});
// The exit code a wait status means: the code, or 128+signal.
int exit_code_of(int wait_status);

}  // namespace berth::nodeagent
