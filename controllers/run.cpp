#include "controllers/run.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "client/client.h"

namespace berth::controllers {

const char* const kControllerFlagsHelp =
    "    --controllers LIST      controllers to run: *, names, -name to disable (default *):\n"
    "                            replicaset, deployment, garbagecollector, namespace, nodelifecycle, podgc,\n"
    "                            scheduler, root-ca-cert-publisher\n"
    "    --node-monitor-grace-period D   silence before a node is Ready=Unknown (default 50s)\n"
    "    --terminated-pod-gc-threshold N terminated pods kept before pod GC deletes the oldest\n"
    "                            (default 12500; 0 keeps them all)\n"
    "    --leader-elect BOOL     run the controllers only while holding the lease\n"
    "                            kube-system/berth-controller-manager (default true)\n";

std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
  if (text.empty()) return std::nullopt;
  if (std::all_of(text.begin(), text.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return std::chrono::milliseconds(std::stoll(text) * 1000);
  double total_ms = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (start == i) return std::nullopt;
    double value = 0;
    try {
      value = std::stod(text.substr(start, i - start));
    } catch (...) {
      return std::nullopt;
    }
    std::size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string unit = text.substr(unit_start, i - unit_start);
    if (unit == "h") total_ms += value * 3600000;
    else if (unit == "m") total_ms += value * 60000;
    else if (unit == "s") total_ms += value * 1000;
    else if (unit == "ms") total_ms += value;
    else return std::nullopt;
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(total_ms));
}

api::Result<ControllerOptions> options_from_flags(
    const std::function<std::optional<std::string>(const std::string& name)>& flag) {
  ControllerOptions o;
  auto bad = [](const std::string& name, const std::string& why) {
    return api::Status(api::Reason::BadRequest, "--" + name + ": " + why);
  };
  if (auto v = flag("controllers")) {
    auto set = parse_controllers(*v);
    if (!set) return bad("controllers", set.status().message());
    o.enabled = std::move(*set);
  }
  struct DurationFlag {
    const char* name;
    std::function<void(std::chrono::milliseconds)> set;
  };
  const DurationFlag durations[] = {
      {"node-monitor-grace-period",
       [&](auto d) { o.node_monitor_grace = std::chrono::duration_cast<std::chrono::seconds>(d); }},
      {"node-startup-grace-period",
       [&](auto d) { o.node_startup_grace = std::chrono::duration_cast<std::chrono::seconds>(d); }},
      {"node-monitor-period", [&](auto d) { o.node_monitor_period = d; }},
      {"leader-elect-lease-duration", [&](auto d) { o.leader_election.lease_duration = d; }},
      {"leader-elect-renew-deadline", [&](auto d) { o.leader_election.renew_deadline = d; }},
      {"leader-elect-retry-period", [&](auto d) { o.leader_election.retry_period = d; }},
      {"pod-gc-period", [&](auto d) { o.pod_gc_period = d; }},
      {"pod-gc-quarantine", [&](auto d) { o.pod_gc_quarantine = d; }},
  };
  for (const auto& f : durations) {
    auto v = flag(f.name);
    if (!v) continue;
    auto d = parse_duration(*v);
    if (!d || d->count() <= 0) return bad(f.name, "invalid duration \"" + *v + "\"");
    f.set(*d);
  }
  if (o.leader_election.renew_deadline >= o.leader_election.lease_duration)
    return bad("leader-elect-renew-deadline", "must be less than --leader-elect-lease-duration");
  if (auto v = flag("leader-elect")) {
    if (*v == "true" || *v == "1") o.leader_elect = true;
    else if (*v == "false" || *v == "0") o.leader_elect = false;
    else return bad("leader-elect", "wants true or false, got \"" + *v + "\"");
  }
  if (auto v = flag("leader-elect-resource-name")) o.leader_election.lease_name = *v;
  if (auto v = flag("leader-elect-resource-namespace")) o.leader_election.lease_namespace = *v;
  struct IntFlag {
    const char* name;
    int* target;
  };
  const IntFlag ints[] = {{"concurrent-replicaset-syncs", &o.replicaset_workers},
                          {"concurrent-deployment-syncs", &o.deployment_workers},
                          {"concurrent-gc-syncs", &o.gc_workers},
                          {"concurrent-namespace-syncs", &o.namespace_workers}};
  if (auto v = flag("terminated-pod-gc-threshold")) {
    char* end = nullptr;
    long n = std::strtol(v->c_str(), &end, 10);
    if (v->empty() || !end || *end != '\0' || n < 0 || n > 1000000000)
      return bad("terminated-pod-gc-threshold", "wants a number, 0 or more");
    o.terminated_pod_gc_threshold = static_cast<int>(n);
  }
  for (const auto& f : ints) {
    auto v = flag(f.name);
    if (!v) continue;
    char* end = nullptr;
    long n = std::strtol(v->c_str(), &end, 10);
    if (v->empty() || !end || *end != '\0' || n <= 0 || n > 1000) return bad(f.name, "wants a positive number");
    *f.target = static_cast<int>(n);
  }
  return o;
}

api::Result<std::unique_ptr<Manager>> start_with_kubeconfig(const std::string& kubeconfig, ControllerOptions options) {
  auto config = client::load_kubeconfig(kubeconfig);
  if (!config) return config.take_status();
  config->max_connections = 64;
  config->user_agent = "berth-controller-manager";
  if (options.root_ca_pem.empty()) options.root_ca_pem = config->ca_pem;
  auto made = client::Client::create(std::move(*config));
  if (!made) return made.take_status();
  std::shared_ptr<client::Client> c(std::move(*made));
  return Manager::start(std::move(c), std::move(options));
}

}  // namespace berth::controllers
