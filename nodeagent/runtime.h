// The container runtime: OCI bundles run by runc or crun. One bundle per container, with an
// overlayfs rootfs over the image's unpacked layers and a config.json we generate. Each
// container gets a small shim process (`berth agent __shim`, like conmon) that runs
// `<runtime> create`, is the child subreaper that waits on the container's init, writes its
// stdout/stderr as CRI log lines and records the exit status in the bundle; so containers,
// their logs and their exit codes survive an agent restart.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nodeagent/util.h"

namespace berth::nodeagent {

// ---- config.json generation (pure) ----

struct OciMount {
  std::string destination, source, type = "bind";
  std::vector<std::string> options;
};

// Everything config.json says about one container, already resolved from the pod spec.
struct OciSpec {
  std::vector<std::string> args, env;
  std::string cwd = "/";
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> additional_gids;
  std::string hostname;        // set with a private UTS namespace; empty when sharing the host's
  bool host_network = false;   // no network namespace of our own
  std::string netns_path;      // the pod's network namespace (unless host_network)
  bool host_ipc = false;
  std::string ipc_path;        // the pod's IPC namespace (shared by its containers)
  bool host_pid = false;
  bool cgroup_namespace = false;  // on pure cgroup v2 hosts
  std::vector<OciMount> mounts;   // after the standard /proc, /dev, /sys ones
  bool readonly_rootfs = false;
  bool privileged = false;
  std::vector<std::string> cap_add, cap_drop;  // "NET_ADMIN" or "CAP_NET_ADMIN"; "ALL" allowed
  bool no_new_privileges = false;
  // resources (0 = unset)
  uint64_t cpu_shares = 0;
  int64_t cpu_quota = 0;
  uint64_t cpu_period = 0;
  int64_t memory_limit = 0;
  int64_t pids_limit = 0;
  std::string cgroups_path;
  std::optional<int> oom_score_adj;  // never negative on these hosts (root lacks CAP_SYS_RESOURCE)
  std::map<std::string, std::string> sysctls, annotations;
};

// config.json for the bundle (root.path "rootfs"; process.terminal false).
json build_oci_config(const OciSpec& spec);

// The runtime's default capability set for containers (containerd's), as "CAP_..." names.
const std::vector<std::string>& default_capabilities();

// ---- the runtime ----

struct RuntimeOptions {
  std::string name = "runc";   // runc | crun
  std::string path;            // binary; default found on PATH by name
  std::string state_dir;       // the runtime's --root
  std::string bundles_dir;     // <bundles_dir>/<id>/ holds config.json, rootfs, upper, work, exit
  std::string shim_exe = "/proc/self/exe";
};

struct CreateRequest {
  std::string id;                       // [A-Za-z0-9_.-]
  json config;                          // build_oci_config()
  std::vector<std::string> layer_dirs;  // image layers, lowest first
  std::string log_path;                 // CRI-format log the shim writes
  std::string rootfs;                   // instead of layers: an existing directory used as is
};

struct ContainerExit {
  int exit_code = 0;
  Clock::time_point finished_at{};
  bool oom_killed = false;
  bool known = true;  // false when the agent lost track of the container (exit code guessed)
};

struct ContainerInfo {
  enum class State { Created, Running, Stopped, NotFound } state = State::NotFound;
  pid_t pid = 0;
  Clock::time_point created_at{};
  std::optional<ContainerExit> exit;  // when Stopped
};

struct ExecResult {
  int exit_code = -1;
  std::string output;  // stdout then stderr
  bool timed_out = false;
};

class Runtime {
 public:
  static api::Result<std::unique_ptr<Runtime>> open(RuntimeOptions options);
  virtual ~Runtime() = default;
  virtual std::string name() const = 0;     // "runc"
  virtual std::string version() const = 0;  // "1.1.5"
  // Prepares the bundle and rootfs, starts the shim and waits for `<runtime> create`.
  virtual api::Status create(const CreateRequest& request) = 0;
  virtual api::Status start(const std::string& id) = 0;
  virtual ContainerInfo inspect(const std::string& id) = 0;
  virtual api::Status kill(const std::string& id, int signal) = 0;
  // Force-deletes the container, unmounts its rootfs and removes its bundle. Idempotent.
  virtual api::Status remove(const std::string& id) = 0;
  // Containers with a bundle or runtime state under our directories.
  virtual std::vector<std::string> list() = 0;
  virtual ExecResult exec(const std::string& id, const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout) = 0;
  // The command line that runs argv in the running container with the caller's stdio
  // (`<runtime> exec`); with tty the runtime gives the command a terminal of the container's
  // and copies between it and the caller's stdio, which must then be a terminal.
  virtual std::vector<std::string> exec_command(const std::string& id, const std::vector<std::string>& argv,
                                                bool tty) const = 0;
  // The host path of the container's bundle directory.
  virtual std::string bundle_dir(const std::string& id) const = 0;
};

// `berth agent __shim ...`: the per-container shim's main (argv after "__shim").
int shim_main(int argc, char** argv);

}  // namespace berth::nodeagent
