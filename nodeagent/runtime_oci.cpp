// runc / crun through their command lines: config.json generation, overlay rootfs, the shim
// handshake, and status from the shim's exit file (falling back to `<runtime> state`).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "nodeagent/runtime.h"

namespace berth::nodeagent {

namespace {

const std::vector<std::string>& all_capabilities() {
  static const std::vector<std::string> caps = {
      "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
      "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
      "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
      "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
      "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
      "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
      "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"};
  return caps;
}

std::string cap_name(std::string c) {
  std::transform(c.begin(), c.end(), c.begin(), [](unsigned char ch) { return std::toupper(ch); });
  if (c != "ALL" && !starts_with(c, "CAP_")) c = "CAP_" + c;
  return c;
}

}  // namespace

const std::vector<std::string>& default_capabilities() {
  static const std::vector<std::string> caps = {
      "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
      "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
      "CAP_AUDIT_WRITE"};
  return caps;
}

json build_oci_config(const OciSpec& s) {
  // Capabilities: the default set, or all when privileged; then drop, then add (as containerd).
  std::vector<std::string> caps = s.privileged ? all_capabilities() : default_capabilities();
  if (!s.privileged) {
    for (const auto& d : s.cap_drop) {
      std::string c = cap_name(d);
      if (c == "ALL") caps.clear();
      else caps.erase(std::remove(caps.begin(), caps.end(), c), caps.end());
    }
    for (const auto& a : s.cap_add) {
      std::string c = cap_name(a);
      if (c == "ALL") {
        caps = all_capabilities();
        break;
      }
      if (std::find(caps.begin(), caps.end(), c) == caps.end()) caps.push_back(c);
    }
  }
  json process = {{"terminal", false},
                  {"user", {{"uid", s.uid}, {"gid", s.gid}}},
                  {"args", s.args},
                  {"env", s.env},
                  {"cwd", s.cwd.empty() ? "/" : s.cwd},
                  {"capabilities",
                   {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
                  {"noNewPrivileges", s.no_new_privileges}};
  if (!s.additional_gids.empty()) process["user"]["additionalGids"] = s.additional_gids;
  if (s.oom_score_adj && *s.oom_score_adj >= 0) process["oomScoreAdj"] = *s.oom_score_adj;

  json mounts = json::array();
  mounts.push_back({{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"},
                    {"options", {"nosuid", "noexec", "nodev"}}});
  mounts.push_back({{"destination", "/dev"}, {"type", "tmpfs"}, {"source", "tmpfs"},
                    {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}});
  mounts.push_back({{"destination", "/dev/pts"}, {"type", "devpts"}, {"source", "devpts"},
                    {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}}});
  mounts.push_back({{"destination", "/dev/mqueue"}, {"type", "mqueue"}, {"source", "mqueue"},
                    {"options", {"nosuid", "noexec", "nodev"}}});
  if (s.host_network) {
    // sysfs cannot be mounted fresh without owning the network namespace: bind the host's.
    mounts.push_back({{"destination", "/sys"}, {"type", "bind"}, {"source", "/sys"},
                      {"options", {"rbind", "nosuid", "noexec", "nodev", s.privileged ? "rw" : "ro"}}});
  } else {
    mounts.push_back({{"destination", "/sys"}, {"type", "sysfs"}, {"source", "sysfs"},
                      {"options", {"nosuid", "noexec", "nodev", s.privileged ? "rw" : "ro"}}});
    mounts.push_back({{"destination", "/sys/fs/cgroup"}, {"type", "cgroup"}, {"source", "cgroup"},
                      {"options", {"nosuid", "noexec", "nodev", "relatime", s.privileged ? "rw" : "ro"}}});
  }
  for (const auto& m : s.mounts) {
    json opts = m.options;
    mounts.push_back({{"destination", m.destination}, {"type", m.type}, {"source", m.source}, {"options", opts}});
  }

  json namespaces = json::array();
  if (!s.host_pid) namespaces.push_back({{"type", "pid"}});
  if (s.host_network) {
    // the host's network namespace: no entry
  } else if (!s.netns_path.empty()) {
    namespaces.push_back({{"type", "network"}, {"path", s.netns_path}});
  } else {
    namespaces.push_back({{"type", "network"}});
  }
  if (!s.host_ipc) {
    if (!s.ipc_path.empty()) namespaces.push_back({{"type", "ipc"}, {"path", s.ipc_path}});
    else namespaces.push_back({{"type", "ipc"}});
  }
  if (!s.hostname.empty()) namespaces.push_back({{"type", "uts"}});
  namespaces.push_back({{"type", "mount"}});
  if (s.cgroup_namespace) namespaces.push_back({{"type", "cgroup"}});

  json resources = {{"devices", json::array({{{"allow", s.privileged}, {"access", "rwm"}}})}};
  json cpu = json::object();
  if (s.cpu_shares) cpu["shares"] = s.cpu_shares;
  if (s.cpu_quota) cpu["quota"] = s.cpu_quota;
  if (s.cpu_period) cpu["period"] = s.cpu_period;
  if (!cpu.empty()) resources["cpu"] = cpu;
  if (s.memory_limit > 0) resources["memory"] = {{"limit", s.memory_limit}};
  if (s.pids_limit > 0) resources["pids"] = {{"limit", s.pids_limit}};

  json linux = {{"namespaces", namespaces}, {"resources", resources}};
  if (!s.cgroups_path.empty()) linux["cgroupsPath"] = s.cgroups_path;
  if (!s.sysctls.empty()) linux["sysctl"] = s.sysctls;
  if (!s.privileged) {
    linux["maskedPaths"] = {"/proc/acpi",          "/proc/asound",   "/proc/kcore",       "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                            "/sys/firmware",       "/proc/scsi"};
    linux["readonlyPaths"] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};
  }

  json config = {{"ociVersion", "1.0.2"},
                 {"process", process},
                 {"root", {{"path", "rootfs"}, {"readonly", s.readonly_rootfs}}},
                 {"mounts", mounts},
                 {"linux", linux}};
  if (!s.hostname.empty()) config["hostname"] = s.hostname;
  if (!s.annotations.empty()) config["annotations"] = s.annotations;
  return config;
}

namespace {

// True when /sys/fs/cgroup is cgroup v1 (or hybrid) and a cgroup2 hierarchy sits at .../unified.
bool hybrid_cgroups() {
  struct statfs root, unified;
  if (::statfs("/sys/fs/cgroup", &root) != 0) return false;
  if (root.f_type == 0x63677270) return false;  // pure v2
  return ::statfs("/sys/fs/cgroup/unified", &unified) == 0 && unified.f_type == 0x63677270;
}

std::string find_on_path(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto& dir : split(p + ":/usr/sbin:/sbin", ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// runc prints `time="..." level=error msg="runc create failed: ..."`; keep the message.
std::string runtime_error_text(const std::string& raw) {
  std::string last;
  for (const auto& line : split(raw, '\n')) {
    auto pos = line.find("msg=\"");
    if (pos != std::string::npos) {
      std::string msg;
      for (std::size_t i = pos + 5; i < line.size(); ++i) {
        if (line[i] == '\\' && i + 1 < line.size()) {
          msg.push_back(line[++i]);
          continue;
        }
        if (line[i] == '"') break;
        msg.push_back(line[i]);
      }
      last = msg;
    } else if (!trim(line).empty()) {
      last = trim(line);
    }
  }
  return last.empty() ? trim(raw) : last;
}

uint64_t process_start_time(pid_t pid) {
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return 0;
  auto close = stat->rfind(')');
  if (close == std::string::npos) return 0;
  auto fields = split(stat->substr(close + 2), ' ');
  // fields[0] is state (field 3); starttime is field 22 -> index 19.
  if (fields.size() < 20) return 0;
  return std::strtoull(fields[19].c_str(), nullptr, 10);
}

bool process_alive(pid_t pid, uint64_t start_time) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  uint64_t st = process_start_time(pid);
  if (st == 0) return false;
  // A zombie is gone for our purposes.
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (stat) {
    auto close = stat->rfind(')');
    if (close != std::string::npos && close + 2 < stat->size() && (*stat)[close + 2] == 'Z') return false;
  }
  return start_time == 0 || st == start_time;
}

// The container cgroup's OOM-kill count (v1 memory.oom_control, v2 memory.events).
int64_t oom_kills(const std::string& cgroups_path) {
  if (cgroups_path.empty()) return 0;
  for (const std::string& file : {"/sys/fs/cgroup/memory" + cgroups_path + "/memory.oom_control",
                                  "/sys/fs/cgroup" + cgroups_path + "/memory.events"}) {
    auto text = read_file(file);
    if (!text) continue;
    for (const auto& line : split(*text, '\n')) {
      if (starts_with(line, "oom_kill ")) return std::strtoll(line.c_str() + 9, nullptr, 10);
    }
  }
  return 0;
}

class OciRuntime final : public Runtime {
 public:
  OciRuntime(RuntimeOptions o, std::string path, std::string version, bool unshare_wrap)
      : o_(std::move(o)), path_(std::move(path)), version_(std::move(version)), wrap_(unshare_wrap) {}

  std::string name() const override { return o_.name; }
  std::string version() const override { return version_; }
  std::string bundle_dir(const std::string& id) const override { return o_.bundles_dir + "/" + id; }

  // The runtime command line, through `unshare` for crun on hybrid cgroup hosts.
  std::vector<std::string> cmd(std::initializer_list<std::string> args) const {
    std::vector<std::string> out;
    if (wrap_) out = {"unshare", "-m", "--propagation", "private", "sh", "-c",
                      "umount -l /sys/fs/cgroup/unified && exec \"$0\" \"$@\""};
    out.push_back(path_);
    out.push_back("--root");
    out.push_back(o_.state_dir);
    for (const auto& a : args) out.push_back(a);
    return out;
  }

  api::Status create(const CreateRequest& req) override {
    // A few containers at a time, in arrival order (see FifoGate).
    auto slot = gate_.enter();
    std::string dir = bundle_dir(req.id);
    if (auto st = mkdir_p(dir, 0700); !st) return st;
    json config = req.config;
    std::string rootfs = dir + "/rootfs";
    if (!req.rootfs.empty()) {
      config["root"]["path"] = req.rootfs;
    } else {
      if (req.layer_dirs.empty()) return api::Status(api::Reason::InternalError, "image has no layers");
      for (const char* sub : {"/rootfs", "/upper", "/work"})
        if (auto st = mkdir_p(dir + sub, 0755); !st) return st;
      std::string lower;
      for (auto it = req.layer_dirs.rbegin(); it != req.layer_dirs.rend(); ++it) {
        if (!lower.empty()) lower += ':';
        lower += *it;
      }
      std::string opts = "lowerdir=" + lower + ",upperdir=" + dir + "/upper,workdir=" + dir + "/work";
      if (!is_mounted(rootfs) && ::mount("overlay", rootfs.c_str(), "overlay", 0, opts.c_str()) != 0) {
        std::string err = std::strerror(errno);
        remove_all(dir);
        return api::Status(api::Reason::InternalError, "mount overlay rootfs: " + err);
      }
    }
    // Not fsynced: the bundle is only of use while the machine stays up.
    if (auto st = write_file_atomic(dir + "/config.json", config.dump(), 0600, /*durable=*/false); !st) return st;
    std::string log_dir = req.log_path.substr(0, req.log_path.rfind('/'));
    mkdir_p(log_dir, 0755);

    int sync[2];
    if (::pipe2(sync, O_CLOEXEC) != 0) return api::Status(api::Reason::InternalError, "pipe: " + std::string(std::strerror(errno)));
    int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    int shim_log = ::open((dir + "/shim.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    // The shim creates and starts the container in one runtime call (`run --detach`) and, for
    // crun on hybrid cgroups, applies the mount-namespace workaround itself; start() then only
    // records the start.
    std::vector<std::string> argv = {o_.shim_exe, "agent", "__shim", "--id", req.id, "--bundle", dir, "--log",
                                     req.log_path, "--start"};
    if (wrap_) argv.push_back("--private-cgroup2");
    for (const auto& a : {std::string("--"), path_, std::string("--root"), o_.state_dir}) argv.push_back(a);
    auto pid = Reaper::instance().spawn(argv, {}, {{0, devnull}, {1, devnull}, {2, shim_log >= 0 ? shim_log : devnull}, {3, sync[1]}},
                                        /*new_session=*/true, /*notify=*/true);
    ::close(sync[1]);
    ::close(devnull);
    if (shim_log >= 0) ::close(shim_log);
    if (!pid) {
      ::close(sync[0]);
      cleanup_rootfs(dir);
      remove_all(dir);
      return pid.take_status();
    }
    std::string answer;
    auto deadline = SteadyClock::now() + std::chrono::seconds(120);
    while (SteadyClock::now() < deadline) {
      pollfd p{sync[0], POLLIN, 0};
      int r = ::poll(&p, 1, 500);
      if (r < 0 && errno != EINTR) break;
      if (r <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(sync[0], buf, sizeof(buf));
      if (n <= 0) break;
      answer.append(buf, static_cast<std::size_t>(n));
    }
    ::close(sync[0]);
    if (starts_with(answer, "ok ")) {
      pid_t init = static_cast<pid_t>(std::strtol(answer.c_str() + 3, nullptr, 10));
      std::string now = format_nano_fixed(Clock::now());
      json meta = {{"shimPid", *pid},
                   {"shimStart", process_start_time(*pid)},
                   {"initPid", init},
                   {"createdAt", now},
                   {"startedAt", now},
                   {"cgroupsPath", jstr(config, {"linux", "cgroupsPath"})},
                   {"logPath", req.log_path}};
      // Not fsynced: after a crash of the machine the container is gone with it, and a torn
      // meta.json reads as an empty one (inspect() then asks the runtime).
      write_file_atomic(dir + "/meta.json", meta.dump(), 0600, /*durable=*/false);
      std::lock_guard lock(mu_);
      shim_pids_[req.id] = *pid;
      return {};
    }
    std::string message = starts_with(answer, "error ") ? answer.substr(6) : answer;
    if (message.empty()) message = trim(read_file_or(dir + "/shim.log"));
    if (message.empty()) message = "the container shim exited without creating the container";
    Reaper::instance().wait(*pid, std::chrono::seconds(5));
    run_command(cmd({"delete", "--force", req.id}), "", std::chrono::seconds(30));
    cleanup_rootfs(dir);
    remove_all(dir);
    return api::Status(api::Reason::InternalError, runtime_error_text(message));
  }

  api::Status start(const std::string& id) override {
    // Containers this agent creates are already running (the shim used `run --detach`); only
    // those created by an earlier agent with `create` are still waiting for `start`.
    if (read_meta(id).contains("startedAt")) return {};
    auto r = run_command(cmd({"start", id}), "", std::chrono::seconds(60));
    if (r.exit_code != 0)
      return api::Status(api::Reason::InternalError, runtime_error_text(r.err.empty() ? r.out : r.err));
    json meta = read_meta(id);
    meta["startedAt"] = format_nano_fixed(Clock::now());
    write_file_atomic(bundle_dir(id) + "/meta.json", meta.dump(), 0600);
    return {};
  }

  json read_meta(const std::string& id) const {
    auto text = read_file(bundle_dir(id) + "/meta.json");
    if (!text) return json::object();
    json j = json::parse(*text, nullptr, false);
    return j.is_object() ? j : json::object();
  }

  std::optional<ContainerExit> read_exit(const std::string& id, const json& meta) {
    auto text = read_file(bundle_dir(id) + "/exit");
    if (!text) return std::nullopt;
    json j = json::parse(*text, nullptr, false);
    if (!j.is_object()) return std::nullopt;
    ContainerExit e;
    e.exit_code = static_cast<int>(jint(j, {"exitCode"}, 255));
    e.finished_at = parse_time(jstr(j, {"finishedAt"})).value_or(Clock::now());
    e.oom_killed = oom_kills(jstr(meta, {"cgroupsPath"})) > 0 && e.exit_code == 137;
    return e;
  }

  ContainerInfo inspect(const std::string& id) override {
    ContainerInfo info;
    std::string dir = bundle_dir(id);
    if (!exists(dir)) return info;  // NotFound
    json meta = read_meta(id);
    info.pid = static_cast<pid_t>(jint(meta, {"initPid"}));
    info.created_at = parse_time(jstr(meta, {"createdAt"})).value_or(Clock::time_point{});
    // Reap our own shim if it has exited (it is our child until an agent restart).
    pid_t shim = static_cast<pid_t>(jint(meta, {"shimPid"}));
    if (shim > 0) Reaper::instance().try_wait(shim);
    if (auto e = read_exit(id, meta)) {
      info.state = ContainerInfo::State::Stopped;
      info.exit = e;
      return info;
    }
    if (process_alive(shim, static_cast<uint64_t>(jint(meta, {"shimStart"})))) {
      info.state = meta.contains("startedAt") ? ContainerInfo::State::Running : ContainerInfo::State::Created;
      return info;
    }
    // The shim may have written its exit file and exited between the two looks above.
    if (auto e = read_exit(id, meta)) {
      info.state = ContainerInfo::State::Stopped;
      info.exit = e;
      return info;
    }
    // The shim is gone without an exit file (killed, or the machine rebooted): ask the runtime.
    auto r = run_command(cmd({"state", id}), "", std::chrono::seconds(30));
    json st = json::parse(r.out, nullptr, false);
    std::string status = r.exit_code == 0 && st.is_object() ? jstr(st, {"status"}) : "";
    if (status == "running" || status == "created") {
      info.state = status == "running" ? ContainerInfo::State::Running : ContainerInfo::State::Created;
      info.pid = static_cast<pid_t>(jint(st, {"pid"}, info.pid));
      return info;
    }
    info.state = ContainerInfo::State::Stopped;
    ContainerExit e;
    if (auto ws = Reaper::instance().orphan_status(info.pid)) {
      e.exit_code = exit_code_of(*ws);
    } else {
      e.exit_code = 137;
      e.known = false;
    }
    e.finished_at = Clock::now();
    info.exit = e;
    json exit_doc = {{"exitCode", e.exit_code}, {"finishedAt", format_nano_fixed(e.finished_at)}, {"known", e.known}};
    write_file_atomic(dir + "/exit", exit_doc.dump(), 0600);
    return info;
  }

  api::Status kill(const std::string& id, int signal) override {
    auto r = run_command(cmd({"kill", id, std::to_string(signal)}), "", std::chrono::seconds(30));
    if (r.exit_code != 0) {
      std::string msg = runtime_error_text(r.err);
      // Already stopped or gone: nothing to signal.
      if (msg.find("not running") != std::string::npos || msg.find("does not exist") != std::string::npos ||
          msg.find("not exist") != std::string::npos || msg.find("process already finished") != std::string::npos)
        return {};
      return api::Status(api::Reason::InternalError, msg);
    }
    return {};
  }

  api::Status remove(const std::string& id) override {
    std::string dir = bundle_dir(id);
    json meta = read_meta(id);
    run_command(cmd({"delete", "--force", id}), "", std::chrono::seconds(60));
    // Give the shim a moment to record the exit and drain the log.
    pid_t shim = static_cast<pid_t>(jint(meta, {"shimPid"}));
    uint64_t shim_start = static_cast<uint64_t>(jint(meta, {"shimStart"}));
    for (int i = 0; i < 50 && process_alive(shim, shim_start); ++i) {
      Reaper::instance().try_wait(shim);
      ::usleep(100 * 1000);
    }
    if (shim > 0) Reaper::instance().try_wait(shim);
    cleanup_rootfs(dir);
    remove_all(dir);
    {
      std::lock_guard lock(mu_);
      shim_pids_.erase(id);
    }
    if (exists(dir)) return api::Status(api::Reason::InternalError, "could not remove " + dir);
    return {};
  }

  std::vector<std::string> list() override {
    std::vector<std::string> ids;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(o_.bundles_dir, ec))
      if (e.is_directory()) ids.push_back(e.path().filename().string());
    for (const auto& e : std::filesystem::directory_iterator(o_.state_dir, ec)) {
      std::string id = e.path().filename().string();
      if (e.is_directory() && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
    }
    return ids;
  }

  ExecResult exec(const std::string& id, const std::vector<std::string>& argv,
                  std::chrono::milliseconds timeout) override {
    auto full = cmd({"exec", id});
    full.insert(full.end(), argv.begin(), argv.end());
    auto r = run_command(full, "", timeout);
    ExecResult out;
    out.exit_code = r.exit_code;
    out.output = r.out + r.err;
    out.timed_out = r.timed_out;
    return out;
  }

  std::vector<std::string> exec_command(const std::string& id, const std::vector<std::string>& argv,
                                        bool tty) const override {
    auto full = tty ? cmd({"exec", "--tty", id}) : cmd({"exec", id});
    full.insert(full.end(), argv.begin(), argv.end());
    return full;
  }

 private:
  static void cleanup_rootfs(const std::string& dir) {
    unmount_all(dir + "/rootfs");
  }

  RuntimeOptions o_;
  std::string path_, version_;
  bool wrap_;
  std::mutex mu_;
  std::map<std::string, pid_t> shim_pids_;
  FifoGate gate_{startup_concurrency()};
};

}  // namespace

api::Result<std::unique_ptr<Runtime>> Runtime::open(RuntimeOptions o) {
  if (o.name != "runc" && o.name != "crun")
    return api::Status(api::Reason::BadRequest, "unknown runtime \"" + o.name + "\" (want runc or crun)");
  std::string path = find_on_path(o.path.empty() ? o.name : o.path);
  if (path.empty() || ::access(path.c_str(), X_OK) != 0)
    return api::Status(api::Reason::NotFound, o.name + " not found on PATH (install the " + o.name + " package)");
  for (const auto& d : {o.state_dir, o.bundles_dir})
    if (auto st = mkdir_p(d, 0700); !st) return st;
  auto r = run_command({path, "--version"}, "", std::chrono::seconds(10));
  std::string version = "unknown";
  if (r.exit_code == 0) {
    auto words = split(split(r.out, '\n')[0], ' ');
    if (words.size() >= 3) version = words[2].substr(0, words[2].find('+'));
  }
  if (o.shim_exe == "/proc/self/exe") {
    // The real path reads better in `ps`; exec'ing it after an upgrade runs the new shim, which is fine.
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    std::string self = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
    if (!self.empty() && self.find(" (deleted)") == std::string::npos) o.shim_exe = self;
  }
  bool wrap = o.name == "crun" && hybrid_cgroups();
  if (wrap) BERTH_LOGI("crun on hybrid cgroups: each crun call runs in a private mount namespace without the v2 hierarchy");
  Reaper::instance().start();
  return std::unique_ptr<Runtime>(new OciRuntime(std::move(o), path, version, wrap));
}

}  // namespace berth::nodeagent
