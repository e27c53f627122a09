// Container probes and lifecycle handlers as the kubelet runs them: exec (through the runtime),
// httpGet (2xx/3xx is success, from the node to the pod IP, "kube-probe/1.32"), tcpSocket, and
// the sleep handler; failures carry the kubelet's messages ("HTTP probe failed with statuscode: 503").
#pragma once

#include <chrono>
#include <string>

#include "nodeagent/util.h"

namespace berth::nodeagent {

class Runtime;

struct ProbeResult {
  enum class Kind { Success, Failure, Unknown } kind = Kind::Unknown;
  std::string message;
  bool ok() const { return kind == Kind::Success; }
};

struct ProbeTarget {
  std::string pod_ip;
  std::string container_id;  // runtime id (without "runc://")
  Runtime* runtime = nullptr;
  const json* container = nullptr;  // its spec, for named ports
};

// Runs a probe or handler object (exec / httpGet / tcpSocket / grpc / sleep). timeout applies to
// probes (timeoutSeconds); handlers pass their remaining grace period.
ProbeResult run_handler(const json& handler, const ProbeTarget& target, std::chrono::milliseconds timeout);

ProbeResult http_get(const std::string& scheme, const std::string& host, int port, const std::string& path,
                     const json& headers, std::chrono::milliseconds timeout);
ProbeResult tcp_connect(const std::string& host, int port, std::chrono::milliseconds timeout);

// Per-container probe bookkeeping: when each probe runs next and its consecutive results.
struct ProbeState {
  Clock::time_point next{};
  int successes = 0, failures = 0;
  bool result = false;  // the probe's current verdict (after thresholds)
  bool initialized = false;
};

}  // namespace berth::nodeagent
