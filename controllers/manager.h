// The controller manager: runs the enabled controllers against an API server, through the same
// HTTPS client any user has (DESIGN.md, principle 3). With leader election on (the default),
// only the instance holding the Lease kube-system/berth-controller-manager runs them; the others
// wait and take over when the leader stops (it releases the lease) or stops renewing it.
//
//   auto client = std::shared_ptr<client::Client>(std::move(*client::Client::create(config)));
//   auto manager = controllers::Manager::start(client, {});
//   ...
//   (*manager)->stop();
#pragma once

#include <chrono>
#include <memory>
#include <set>
#include <string>

#include "api/status.h"
#include "controllers/leader_election.h"

namespace berth::client {
class Client;
}

namespace berth::controllers {

struct ControllerOptions {
  // Which controllers run: names from all_controllers() (see parse_controllers()).
  std::set<std::string> enabled = default_controllers();

  // Node lifecycle: how long a node may go without renewing its Lease (or posting status)
  // before it is marked Ready=Unknown and tainted unreachable; nodes that never reported get
  // the startup grace instead. The monitor checks every node_monitor_period.
  std::chrono::seconds node_monitor_grace{50};
  std::chrono::seconds node_startup_grace{60};
  std::chrono::milliseconds node_monitor_period{5000};

  // Leader election (kube-controller-manager's defaults: 15 s lease, 10 s deadline, 2 s retry).
  bool leader_elect = true;
  LeaderElectionConfig leader_election;

  // Concurrency (kube-controller-manager's --concurrent-* defaults).
  int replicaset_workers = 5;
  int deployment_workers = 5;
  int gc_workers = 20;
  int namespace_workers = 10;
  int api_parallelism = 32;    // threads for parallel creates/deletes (replica sets, GC)
  int bind_workers = 32;       // scheduler binding calls in flight
  // The scheduler's percentageOfNodesToScore; 0 picks Kubernetes' adaptive value.
  int percentage_of_nodes_to_score = 0;

  // Pod GC: terminated pods kept before the oldest are deleted (0: never), how often it looks,
  // and how long a node missing from the cache waits before its pods count as orphaned
  // (kube-controller-manager's --terminated-pod-gc-threshold, and its fixed 20 s and 40 s).
  int terminated_pod_gc_threshold = 12500;
  std::chrono::milliseconds pod_gc_period{20000};
  std::chrono::milliseconds pod_gc_quarantine{40000};

  // The cluster CA (PEM) the root CA publisher puts in every namespace's kube-root-ca.crt
  // (kube-controller-manager's --root-ca-file); start_with_kubeconfig fills it from the
  // kubeconfig's certificate authority when empty.
  std::string root_ca_pem;

  static std::set<std::string> default_controllers();
};

// Every controller name Berth knows: replicaset, deployment, garbagecollector, namespace,
// nodelifecycle, podgc, scheduler, root-ca-cert-publisher.
const std::set<std::string>& all_controllers();

// --controllers: a comma-separated list as kube-controller-manager reads it: names enable,
// "-name" disables, "*" means every default one ("*,-scheduler"). kube-controller-manager's long
// names (replicaset-controller, garbage-collector-controller, node-lifecycle-controller, ...) are
// accepted too. Unknown names are a BadRequest.
api::Result<std::set<std::string>> parse_controllers(const std::string& spec);

class Manager {
 public:
  static api::Result<std::unique_ptr<Manager>> start(std::shared_ptr<client::Client> client,
                                                      ControllerOptions options);
  virtual ~Manager() = default;
  // Stops the controllers and, when leading, hands the lease over. Idempotent.
  virtual void stop() = 0;
  // True while this instance runs the controllers.
  virtual bool leading() const = 0;
  virtual std::string identity() const = 0;
};

}  // namespace berth::controllers
