// `kubectl exec` on the agent: the kubelet's /exec/<ns>/<pod>/<container> endpoint as a
// WebSocket speaking Kubernetes' channel protocol (v5.channel.k8s.io, v4.channel.k8s.io,
// channel.k8s.io), running the command through the OCI runtime's own exec.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "net/http.h"
#include "nodeagent/pod_worker.h"
#include "nodeagent/runtime.h"

namespace berth::nodeagent {

// What the request asks for, from the kubelet's query parameters
// (command=..&command=..&input=1&output=1&error=1&tty=1).
struct ExecRequest {
  std::vector<std::string> command;
  bool input = false, output = false, error = false, tty = false;
};
ExecRequest parse_exec_request(const net::Request& request);

// The first of the client's WebSocket subprotocols we speak, "" when it offered none; nullopt
// when it offered only others.
std::optional<std::string> choose_exec_protocol(const std::vector<std::string>& offered);

// The metav1.Status the error channel carries at the end (v4 and v5): Success, or Failure with
// reason NonZeroExitCode and the exit code as a cause. version: 4 or 5.
std::string exec_exit_status(const std::vector<std::string>& command, int exit_code, int version);

// Serves one exec request. pod: the pod's snapshot on this node, or null when it is not here.
net::Response serve_exec(Runtime& runtime, const PodSnapshot* pod, const std::string& container,
                         const net::Request& request);

}  // namespace berth::nodeagent
