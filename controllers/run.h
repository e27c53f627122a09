// Running the controllers from a command: the flags `berth server` and `berth controllers` share,
// read as kube-controller-manager names them, and a Manager started on a kubeconfig.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "api/status.h"
#include "controllers/manager.h"

namespace berth::controllers {

// Reads the controller flags through flag(name): the flag's value, or nullopt when it is absent
// (a boolean flag given bare reads "true"). Flags:
//   --controllers LIST                 which controllers run (default "*"); see parse_controllers()
//   --node-monitor-grace-period D      node lease/status silence before Ready=Unknown (default 50s)
//   --node-startup-grace-period D      the same for nodes that never reported (default 60s)
//   --node-monitor-period D            how often nodes are checked (default 5s)
//   --leader-elect BOOL                run only while holding the lease (default true)
//   --leader-elect-lease-duration D    (15s)   --leader-elect-renew-deadline D (10s)
//   --leader-elect-retry-period D      (2s)    --leader-elect-resource-name N (berth-controller-manager)
//   --leader-elect-resource-namespace N (kube-system)
//   --terminated-pod-gc-threshold N (12500; 0 turns that part of pod GC off)
//   --pod-gc-period D (20s)  --pod-gc-quarantine D (40s)   Berth's own, for tests: kube-controller-
//       manager has them fixed (how often pod GC runs; how long a node missing from the cache
//       waits before its pods are orphans)
//   --concurrent-replicaset-syncs N (5)  --concurrent-deployment-syncs N (5)
//   --concurrent-gc-syncs N (20)         --concurrent-namespace-syncs N (10)
// Durations are Go durations ("50s", "1m30s", "500ms") or plain seconds ("50"). Errors are
// BadRequest naming the flag.
api::Result<ControllerOptions> options_from_flags(
    const std::function<std::optional<std::string>(const std::string& name)>& flag);

// Go's time.ParseDuration for the units controllers use (h, m, s, ms); a bare number is seconds.
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text);

// A client for the kubeconfig's current context (64 pooled connections, user agent
// "berth-controller-manager") and a Manager started on it.
api::Result<std::unique_ptr<Manager>> start_with_kubeconfig(const std::string& kubeconfig, ControllerOptions options);

// Usage lines for the flags above, for `berth --help`.
extern const char* const kControllerFlagsHelp;

}  // namespace berth::controllers
