// `berth agent`: the node agent. It registers a Node, keeps its Lease and status fresh, runs the
// pods bound to it through runc or crun (or, with simulate, stands in for thousands of hollow
// nodes as kwok does), and serves the kubelet's logs and stats endpoints to the API server.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "api/status.h"

namespace berth::nodeagent {

struct AgentOptions {
  // ---- the API server and our credentials ----
  std::string server;       // https://127.0.0.1:6443; overrides the kubeconfig's server
  std::string kubeconfig;   // server, CA and credentials from its current context
  std::string token_file;   // bearer token (a server's <data-dir>/node-token)
  std::string ca_file;      // CA for the API server's certificate (a server's <data-dir>/pki/ca.crt)
  std::size_t client_connections = 16;

  // ---- this node ----
  std::string node_name;                    // default: the host name (lower-cased)
  std::string node_ip;                      // InternalIP; default: the default route's address, else 127.0.0.1
  std::map<std::string, std::string> node_labels;  // extra labels set at registration
  std::string data_dir = "/var/lib/berth-agent";   // state/, containers/, pods/, images/, cni/
  std::string pod_log_dir;                  // CRI logs; default <data_dir>/pod-logs
  int max_pods = 110;
  std::chrono::seconds lease_duration{40};
  // A quarter of the lease duration, as the kubelet renews (nodeLeaseRenewIntervalFraction).
  std::chrono::milliseconds lease_renew_interval{10000};
  std::chrono::seconds status_update_frequency{10};  // how often status is computed (sent on change)
  std::chrono::seconds status_report_frequency{60};  // sent at least this often

  // ---- containers ----
  std::string runtime = "runc";               // runc | crun
  std::string runtime_path;                   // default: found on PATH
  std::string cgroup_root = "/berth";         // pod cgroups go under <root>/kubepods/...
  std::vector<std::string> insecure_registries;  // plain-HTTP or unverified registries (127.0.0.1:5000)
  bool builtin_image = false;  // offer berth.local/busybox:1 from busybox-static (berth up)
  std::string shim_exe = "/proc/self/exe";    // runs `<shim_exe> agent __shim ...`

  // ---- pod network ----
  std::string pod_cidr = "10.88.0.0/16";  // this node's pod range (host-local IPAM)
  std::string cni_bin_dir = "/usr/lib/cni";
  std::string bridge = "berth0";
  std::string cluster_dns;  // nameserver for dnsPolicy ClusterFirst; empty: the host's resolv.conf

  // ---- the agent's HTTPS endpoint (logs, stats) ----
  std::string listen = "0.0.0.0:10250";  // empty disables it
  std::string tls_cert_file, tls_key_file;  // serving certificate; default: issued or self-signed
  std::string client_ca_file;  // CA of the API server's client certificate; default ca_file
  std::string ca_key_file;     // with ca_file: issue our serving certificate from the cluster CA (berth up)
  std::vector<std::string> allowed_clients = {"berth-apiserver"};  // client certificate CNs

  // ---- simulated nodes (kwok-like hollow nodes, nothing runs) ----
  bool simulate = false;
  int nodes = 1;
  std::string node_name_prefix = "sim-node-";
  std::chrono::milliseconds pod_start_delay{1000};  // bound -> Running/Ready after this long
  std::string sim_cpu = "32", sim_memory = "256Gi", sim_ephemeral_storage = "1Ti";
  std::string sim_pod_cpu_usage = "10m", sim_pod_memory_usage = "32Mi";  // per pod, unless annotated
  std::string sim_node_cpu_usage = "250m", sim_node_memory_usage = "1Gi";  // the node itself
  std::string sim_cidr = "10.128.0.0/9";  // split into one /24 per simulated node
  std::size_t sim_workers = 16;           // concurrent API requests
};

class Agent {
 public:
  // Connects, registers the node(s) and starts every loop; returns once registration is done
  // (or failed with a clear message).
  static api::Result<std::unique_ptr<Agent>> start(AgentOptions options);
  virtual ~Agent() = default;
  // The agent endpoint's port (0 when disabled).
  virtual int port() const = 0;
  // Stops the loops and the endpoint. Running containers keep running; a restarted agent
  // adopts them from its state directory.
  virtual void stop() = 0;
};

// Fills the connection fields for an agent beside a local `berth server` (`berth up`): the
// server's CA, its node token, and its CA key so the agent's serving certificate is issued by
// the cluster CA.
AgentOptions local_agent_options(const std::string& server_data_dir, const std::string& server_url);

// `berth agent [flags]`: argv[0] is "agent". Parses flags, runs until SIGTERM/SIGINT, returns the
// process exit code. Also runs the per-container shim (`berth agent __shim ...`).
int agent_main(int argc, char** argv);

// The flag summary for `berth help`.
const char* agent_usage();

}  // namespace berth::nodeagent
