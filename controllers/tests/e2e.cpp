// End-to-end check of the controllers against a real `berth server` over HTTPS.
//
//   controllers_e2e [path/to/berth] [--bench N]
//
// Starts the server on a free port in a temporary data directory, stands in for three nodes
// (Node objects with status Ready, Leases renewed every second, and a small "kubelet" that marks
// bound pods Running/Ready and finishes graceful deletions), runs the controller Manager against
// it and checks: a Deployment rolls out (scheduler binds, ReplicaSet creates, status as `kubectl
// rollout status` reads it), a rolling update, a rollback by template (`kubectl rollout undo`),
// scaling, pause/resume, Recreate, FailedScheduling and retry when a node appears, garbage
// collection (foreground, background, orphan), namespace deletion, node lifecycle (unreachable
// taints, eviction after tolerationSeconds, recovery) and leader election handover.
// Prints one "PASS name" / "FAIL name: why" line per check and "N passed, M failed" at the end.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "client/client.h"
#include "controllers/deployment.h"
#include "controllers/informer.h"
#include "controllers/manager.h"
#include "controllers/util.h"
#include "controllers/workqueue.h"

using namespace berth;
using namespace berth::controllers;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

int passed = 0, failed = 0;

void report(const std::string& name, bool ok, const std::string& why = "") {
  if (ok) {
    ++passed;
    std::printf("PASS %s\n", name.c_str());
  } else {
    ++failed;
    std::printf("FAIL %s: %s\n", name.c_str(), why.c_str());
  }
  std::fflush(stdout);
}

template <class F>
bool wait_for(F f, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return f();
}

// ---- the server -------------------------------------------------------------------------------

struct Server {
  pid_t pid = -1;
  std::string dir, url, kubeconfig;

  bool start(const std::string& berth) {
    char tmpl[] = "/tmp/berth-e2e-XXXXXX";
    if (!mkdtemp(tmpl)) return false;
    dir = tmpl;
    std::string log = dir + "/server.log";
    pid = fork();
    if (pid == 0) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 2);
      dup2(fd, 1);
      // The test runs its own Manager: the server's in-process controllers stay off.
      execl(berth.c_str(), berth.c_str(), "server", "--data-dir", (dir + "/data").c_str(), "--listen",
            "127.0.0.1:0", "--no-controllers=true", static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 300; ++i) {
      std::ifstream in(log);
      std::string line;
      while (std::getline(in, line)) {
        auto at_url = line.find("listening on ");
        auto at_kc = line.find("; kubeconfig ");
        if (at_url != std::string::npos && at_kc != std::string::npos) {
          url = line.substr(at_url + 13, at_kc - at_url - 13);
          kubeconfig = line.substr(at_kc + 13);
          return true;
        }
      }
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) return false;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  void stop() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      int status = 0;
      waitpid(pid, &status, 0);
      pid = -1;
    }
    if (!dir.empty() && !std::getenv("KEEP_E2E_DIR")) std::filesystem::remove_all(dir);
  }
};

// ---- stand-ins for nodes and their kubelets -----------------------------------------------------

json node_object(const std::string& name, const std::string& cpu, const std::string& memory) {
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata", {{"name", name}, {"labels", {{"kubernetes.io/hostname", name}, {"kubernetes.io/os", "linux"}}}}},
          {"spec", json::object()}};
}

json node_status(const std::string& cpu, const std::string& memory, const std::string& ready) {
  std::string now = format_time(Clock::now());
  auto cond = [&](const char* type, const char* status, const char* reason, const char* message) {
    return json{{"type", type}, {"status", status}, {"lastHeartbeatTime", now}, {"lastTransitionTime", now},
                {"reason", reason}, {"message", message}};
  };
  return {{"capacity", {{"cpu", cpu}, {"memory", memory}, {"pods", "110"}}},
          {"allocatable", {{"cpu", cpu}, {"memory", memory}, {"pods", "110"}}},
          {"conditions",
           json::array({cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                        cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                        cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                        cond("Ready", ready.c_str(), ready == "True" ? "KubeletReady" : "KubeletNotReady",
                             ready == "True" ? "kubelet is posting ready status" : "not ready")})}};
}

class FakeNodes {
 public:
  explicit FakeNodes(std::shared_ptr<client::Client> c) : client_(std::move(c)) {}
  ~FakeNodes() { stop(); }

  bool add(const std::string& name, const std::string& cpu = "4", const std::string& memory = "8Gi",
           const std::string& pods = "110", bool with_kubelet = true) {
    auto r = client_->create("/api/v1/nodes", node_object(name, cpu, memory));
    if (!r) {
      std::fprintf(stderr, "create node %s: %s\n", name.c_str(), r.status().message().c_str());
      return false;
    }
    {
      std::lock_guard lock(mu_);
      max_pods_[name] = pods;
    }
    if (!set_ready(name, "True", cpu, memory)) return false;
    json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata", {{"name", name}, {"namespace", "kube-node-lease"}}},
                  {"spec", {{"holderIdentity", name}, {"leaseDurationSeconds", 40},
                            {"renewTime", format_micro_time(Clock::now())}}}};
    auto l = client_->create("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease);
    if (!l) return false;
    std::lock_guard lock(mu_);
    alive_.insert(name);
    if (!with_kubelet) no_kubelet_.insert(name);
    sizes_[name] = {cpu, memory};
    return true;
  }

  bool set_ready(const std::string& name, const std::string& ready, std::string cpu = "", std::string memory = "") {
    if (cpu.empty()) {
      std::lock_guard lock(mu_);
      cpu = sizes_[name].first;
      memory = sizes_[name].second;
    }
    for (int i = 0; i < 5; ++i) {
      auto cur = client_->get("/api/v1/nodes/" + name);
      if (!cur) return false;
      json n = *cur;
      n["status"] = node_status(cpu, memory, ready);
      {
        std::lock_guard lock(mu_);
        if (max_pods_.count(name)) n["status"]["capacity"]["pods"] = n["status"]["allocatable"]["pods"] = max_pods_[name];
      }
      auto r = client_->update("/api/v1/nodes/" + name + "/status", n);
      if (r) return true;
    }
    return false;
  }

  void set_alive(const std::string& name, bool alive) {
    std::lock_guard lock(mu_);
    if (alive) alive_.insert(name);
    else alive_.erase(name);
  }
  bool alive(const std::string& name) {
    std::lock_guard lock(mu_);
    return alive_.count(name) > 0;
  }

  // Lease heartbeats, and the kubelet's part for pods on live nodes.
  void start() {
    heartbeat_ = std::thread([this] {
      while (!stop_) {
        std::set<std::string> names;
        {
          std::lock_guard lock(mu_);
          names = alive_;
        }
        for (const auto& n : names) {
          auto lease = client_->get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/" + n);
          if (!lease) continue;
          (*lease)["spec"]["renewTime"] = format_micro_time(Clock::now());
          client_->update("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/" + n, *lease);
        }
        for (int i = 0; i < 10 && !stop_; ++i) std::this_thread::sleep_for(100ms);
      }
    });
    pods_ = std::make_unique<Informer>(client_, resources::kPods);
    pods_->add_handler({[this](const ObjectPtr& p) { queue_.add(key_of(*p)); },
                        [this](const ObjectPtr&, const ObjectPtr& p) { queue_.add(key_of(*p)); }, nullptr});
    pods_->start();
    workers_.start(queue_, 8, [this](const std::string& key) { return kubelet(key); }, "fake-kubelet");
  }

  void stop() {
    if (stop_.exchange(true)) return;
    if (heartbeat_.joinable()) heartbeat_.join();
    if (pods_) pods_->stop();
    queue_.shutdown();
    workers_.join();
  }

  std::atomic<int> started{0};

 private:
  SyncResult kubelet(const std::string& key) {
    auto pod = pods_->get(key);
    if (!pod) return SyncResult::ok();
    std::string node = str(at(*pod, {"spec", "nodeName"}));
    if (node.empty() || !alive(node)) return SyncResult::ok();
    {
      std::lock_guard lock(mu_);
      if (no_kubelet_.count(node)) return SyncResult::ok();
    }
    const std::string path = "/api/v1/namespaces/" + namespace_of(*pod) + "/pods/" + name_of(*pod);
    if (being_deleted(*pod)) {
      // The containers stopped: the kubelet finishes the deletion.
      auto r = client_->remove(path, json{{"kind", "DeleteOptions"}, {"apiVersion", "v1"}, {"gracePeriodSeconds", 0}});
      if (!r && r.status().reason() != api::Reason::NotFound) return SyncResult::error(r.take_status());
      return SyncResult::ok();
    }
    if (pod_phase(*pod) == "Running" && pod_ready(*pod)) return SyncResult::ok();
    // Images named never-ready stand for containers that never pass their readiness probe.
    const json& containers = at(*pod, {"spec", "containers"});
    if (containers.is_array() && !containers.empty() && str(containers[0]["image"]).rfind("never-ready", 0) == 0)
      return SyncResult::ok();
    std::string now = format_time(Clock::now());
    auto cond = [&](const char* type) {
      return json{{"type", type}, {"status", "True"}, {"lastProbeTime", nullptr}, {"lastTransitionTime", now}};
    };
    json statuses = json::array();
    for (const auto& c : at(*pod, {"spec", "containers"}))
      statuses.push_back({{"name", c["name"]}, {"image", c["image"]}, {"imageID", ""}, {"ready", true},
                          {"started", true}, {"restartCount", 0}, {"state", {{"running", {{"startedAt", now}}}}}});
    json patch = {{"status",
                   {{"phase", "Running"},
                    {"conditions", json::array({cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"),
                                                cond("ContainersReady"), cond("PodScheduled")})},
                    {"hostIP", "10.0.0.1"},
                    {"podIP", "10.244.0." + std::to_string(1 + started % 250)},
                    {"startTime", now},
                    {"containerStatuses", statuses}}}};
    auto r = client_->patch(path + "/status", patch, "application/merge-patch+json");
    if (!r && r.status().reason() != api::Reason::NotFound) return SyncResult::error(r.take_status());
    ++started;
    return SyncResult::ok();
  }

  std::shared_ptr<client::Client> client_;
  std::mutex mu_;
  std::set<std::string> alive_, no_kubelet_;
  std::map<std::string, std::pair<std::string, std::string>> sizes_;
  std::map<std::string, std::string> max_pods_;
  std::atomic<bool> stop_{false};
  std::thread heartbeat_;
  std::unique_ptr<Informer> pods_;
  WorkQueue queue_{"fake-kubelet"};
  WorkerPool workers_;
};

// ---- helpers ------------------------------------------------------------------------------------

json make_deployment(const std::string& name, int replicas, const std::string& image, const std::string& strategy = "RollingUpdate") {
  json d = {{"apiVersion", "apps/v1"},
            {"kind", "Deployment"},
            {"metadata", {{"name", name}}},
            {"spec",
             {{"replicas", replicas},
              {"selector", {{"matchLabels", {{"app", name}}}}},
              {"template",
               {{"metadata", {{"labels", {{"app", name}}}}},
                {"spec", {{"containers", json::array({{{"name", "main"}, {"image", image},
                                                       {"resources", {{"requests", {{"cpu", "100m"}, {"memory", "64Mi"}}}}}}})}}}}}}}};
  if (strategy == "Recreate") d["spec"]["strategy"] = {{"type", "Recreate"}};
  return d;
}

std::string deploy_path(const std::string& ns, const std::string& name = "", const std::string& sub = "") {
  return resources::kDeployments.path(ns, name, sub);
}

json get_or_null(client::Client& c, const std::string& path) {
  auto r = c.get(path);
  return r ? *r : json();
}

std::vector<json> list(client::Client& c, const std::string& path) {
  std::vector<json> out;
  auto r = c.get(path);
  if (r && (*r)["items"].is_array())
    for (auto& i : (*r)["items"]) out.push_back(i);
  return out;
}

std::vector<json> owned_by(const std::vector<json>& items, const std::string& uid) {
  std::vector<json> out;
  for (const auto& i : items)
    if (controller_uid(i) == uid) out.push_back(i);
  return out;
}

bool rolled_out(client::Client& c, const std::string& ns, const std::string& name, std::string* last = nullptr) {
  json d = get_or_null(c, deploy_path(ns, name));
  if (d.is_null()) return false;
  auto [msg, done] = deployment::rollout_status_message(d);
  if (last) *last = msg;
  return done;
}

std::vector<json> events_for(client::Client& c, const std::string& ns, const std::string& name) {
  return list(c, "/api/v1/namespaces/" + ns + "/events?fieldSelector=" + url_escape("involvedObject.name=" + name));
}

bool has_event(client::Client& c, const std::string& ns, const std::string& name, const std::string& reason,
               const std::string& message_prefix) {
  for (const auto& e : events_for(c, ns, name))
    if (str(e["reason"]) == reason && str(e["message"]).rfind(message_prefix, 0) == 0) return true;
  return false;
}

std::string describe_events(client::Client& c, const std::string& ns, const std::string& name) {
  std::string out;
  for (const auto& e : events_for(c, ns, name))
    out.append("[").append(str(e["reason"])).append(": ").append(str(e["message"])).append(" x")
        .append(std::to_string(num(e["count"]))).append("] ");
  return out;
}

int g_bind_workers = 0;  // --sched-bench-bind-workers; 0 keeps the default

std::unique_ptr<controllers::Manager> start_manager(std::shared_ptr<client::Client> c, const std::string& id,
                                                    const std::string& enabled = "") {
  ControllerOptions o;
  o.node_monitor_grace = std::chrono::seconds(4);
  o.node_startup_grace = std::chrono::seconds(8);
  o.node_monitor_period = 500ms;
  if (!enabled.empty()) o.enabled = *controllers::parse_controllers(enabled);
  if (g_bind_workers > 0) o.bind_workers = g_bind_workers;
  o.leader_election.identity = id;
  o.leader_election.lease_duration = 4000ms;
  o.leader_election.renew_deadline = 3000ms;
  o.leader_election.retry_period = 500ms;
  auto m = controllers::Manager::start(std::move(c), o);
  if (!m) {
    std::fprintf(stderr, "manager: %s\n", m.status().message().c_str());
    return nullptr;
  }
  return std::move(*m);
}

// CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat.
double process_cpu_seconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(f, line);
  auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; rest >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
    if (i == 15) break;
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

int main(int argc, char** argv) {
  std::string berth = "build/berth";
  int bench = 0, sched_nodes = 0, sched_pods = 0;
  bool checks = true;
  std::string sched_controllers = "scheduler";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--bench" && i + 1 < argc) bench = std::atoi(argv[++i]);
    else if (a == "--sched-bench" && i + 2 < argc) sched_nodes = std::atoi(argv[++i]), sched_pods = std::atoi(argv[++i]);
    else if (a == "--skip-checks") checks = false;
    else if (a == "--sched-bench-controllers" && i + 1 < argc) sched_controllers = argv[++i];
    else if (a == "--sched-bench-bind-workers" && i + 1 < argc) g_bind_workers = std::atoi(argv[++i]);
    else berth = a;
  }
  signal(SIGPIPE, SIG_IGN);
  Server server;
  if (!server.start(berth)) {
    std::fprintf(stderr, "could not start %s server\n", berth.c_str());
    server.stop();
    return 2;
  }
  std::printf("server %s (data %s)\n", server.url.c_str(), server.dir.c_str());
  auto config = client::load_kubeconfig(server.kubeconfig);
  if (!config) {
    std::fprintf(stderr, "kubeconfig: %s\n", config.status().message().c_str());
    server.stop();
    return 2;
  }
  config->max_connections = 64;
  config->user_agent = "controllers-e2e";
  auto made = client::Client::create(*config);
  if (!made) {
    std::fprintf(stderr, "client: %s\n", made.status().message().c_str());
    server.stop();
    return 2;
  }
  std::shared_ptr<client::Client> c(std::move(*made));
  client::Client& api = *c;

  FakeNodes nodes(c);
  for (const char* n : {"node-1", "node-2", "node-3"}) report(std::string("node ") + n + " registered", nodes.add(n));
  nodes.start();

  auto manager = start_manager(c, "manager-a");
  report("manager starts and leads",
         manager && wait_for([&] { return manager->leading(); }, 15s), "did not acquire the lease");

  if (checks) {
  // ---- Deployment rollout ----------------------------------------------------------------------
  api.create(deploy_path("default"), make_deployment("web", 3, "nginx:1"));
  std::string last;
  bool ok = wait_for([&] { return rolled_out(api, "default", "web", &last); }, 30s);
  report("deployment rolls out", ok, last);
  json d = get_or_null(api, deploy_path("default", "web"));
  auto rss = owned_by(list(api, "/apis/apps/v1/namespaces/default/replicasets"), uid_of(d));
  auto pods = list(api, "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb");
  {
    bool shape = rss.size() == 1 && pods.size() == 3;
    std::string why = std::to_string(rss.size()) + " replica sets, " + std::to_string(pods.size()) + " pods";
    if (shape) {
      const json& rs = rss[0];
      std::string hash = str(at(rs, {"metadata", "labels", "pod-template-hash"}));
      shape = !hash.empty() && name_of(rs) == "web-" + hash &&
              str(at(rs, {"metadata", "annotations", "deployment.kubernetes.io/revision"})) == "1" &&
              str(at(rs, {"metadata", "annotations", "deployment.kubernetes.io/desired-replicas"})) == "3" &&
              str(at(rs, {"metadata", "annotations", "deployment.kubernetes.io/max-replicas"})) == "4" &&
              at(rs, {"spec", "selector", "matchLabels", "pod-template-hash"}) == hash;
      for (const auto& p : pods) {
        std::string n = name_of(p);
        bool named = n.size() == name_of(rs).size() + 6 && n.rfind(name_of(rs) + "-", 0) == 0;
        bool bound = !str(at(p, {"spec", "nodeName"})).empty();
        bool owned = controller_uid(p) == uid_of(rs) && truthy(at(*controller_ref(p), {"blockOwnerDeletion"}));
        if (!named || !bound || !owned || str(at(p, {"metadata", "labels", "pod-template-hash"})) != hash) {
          shape = false;
          why = "pod " + n + " named/bound/owned: " + std::to_string(named) + std::to_string(bound) + std::to_string(owned);
        }
      }
      why += "; rs " + rs.dump().substr(0, 400);
    }
    report("replica set and pods named and labelled as Kubernetes does", shape, why);
  }
  {
    json s = d["status"];
    bool status = num(s["replicas"]) == 3 && num(s["updatedReplicas"]) == 3 && num(s["readyReplicas"]) == 3 &&
                  num(s["availableReplicas"]) == 3 && num(s["observedGeneration"]) == num(at(d, {"metadata", "generation"})) &&
                  str(at(d, {"metadata", "annotations", "deployment.kubernetes.io/revision"})) == "1";
    const json* prog = deployment::get_condition(s, "Progressing");
    const json* avail = deployment::get_condition(s, "Available");
    status = status && prog && str((*prog)["reason"]) == "NewReplicaSetAvailable" && avail &&
             str((*avail)["status"]) == "True";
    report("deployment status and conditions", status, s.dump());
  }
  if (!rss.empty()) {
    std::string rs_name = name_of(rss[0]);
    bool ev = wait_for([&] {
      return has_event(api, "default", "web", "ScalingReplicaSet", "Scaled up replica set " + rs_name + " to 3") &&
             has_event(api, "default", rs_name, "SuccessfulCreate", "Created pod: " + rs_name + "-");
    }, 10s);
    report("events ScalingReplicaSet and SuccessfulCreate", ev,
           describe_events(api, "default", "web") + describe_events(api, "default", rs_name));
    if (!pods.empty()) {
      std::string p = name_of(pods[0]);
      bool sched = wait_for([&] {
        return has_event(api, "default", p, "Scheduled", "Successfully assigned default/" + p + " to node-");
      }, 10s);
      report("event Scheduled", sched, describe_events(api, "default", p));
    }
  }
  {
    std::set<std::string> used;
    for (const auto& p : pods) used.insert(str(at(p, {"spec", "nodeName"})));
    report("replicas spread over the nodes", used.size() == 3, std::to_string(used.size()) + " nodes used");
  }
  if (std::system("command -v kubectl >/dev/null 2>&1") == 0) {
    std::string home = server.dir + "/home";
    std::filesystem::create_directories(home);
    std::string cmd = "HOME=" + home + " kubectl --kubeconfig " + server.kubeconfig +
                      " rollout status deployment/web --timeout=20s 2>&1";
    FILE* f = popen(cmd.c_str(), "r");
    std::string out;
    char buf[512];
    while (f && fgets(buf, sizeof(buf), f)) out += buf;
    int rc = f ? pclose(f) : -1;
    report("kubectl rollout status", rc == 0 && out.find("deployment \"web\" successfully rolled out") != std::string::npos, out);
  }

  // ---- rolling update -------------------------------------------------------------------------------
  std::string old_rs_name = rss.empty() ? "" : name_of(rss[0]);
  api.patch(deploy_path("default", "web"),
            json{{"spec", {{"template", {{"spec", {{"containers", json::array({{{"name", "main"}, {"image", "nginx:2"},
                                                                               {"resources", {{"requests", {{"cpu", "100m"}, {"memory", "64Mi"}}}}}}})}}}}}}}},
            "application/strategic-merge-patch+json");
  ok = wait_for([&] {
    json cur = get_or_null(api, deploy_path("default", "web"));
    return rolled_out(api, "default", "web", &last) &&
           str(at(cur, {"metadata", "annotations", "deployment.kubernetes.io/revision"})) == "2";
  }, 40s);
  report("rolling update to a new template", ok, last);
  {
    auto all = owned_by(list(api, "/apis/apps/v1/namespaces/default/replicasets"), uid_of(d));
    int zero = 0, three = 0;
    for (const auto& rs : all) {
      if (num(at(rs, {"spec", "replicas"})) == 0) ++zero;
      if (num(at(rs, {"spec", "replicas"})) == 3 &&
          str(at(rs, {"metadata", "annotations", "deployment.kubernetes.io/revision"})) == "2")
        ++three;
    }
    bool scaled = all.size() == 2 && zero == 1 && three == 1;
    bool events = wait_for([&] {
      return has_event(api, "default", "web", "ScalingReplicaSet", "Scaled down replica set " + old_rs_name + " to 0 from");
    }, 10s);
    report("old replica set scaled to 0, kept for history", scaled && events,
           std::to_string(all.size()) + " rs; " + describe_events(api, "default", "web"));
    auto pods2 = list(api, "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb");
    int running_new = 0;
    for (const auto& p : pods2)
      if (!being_deleted(p) && str(at(p, {"spec", "containers"})[0]["image"]) == "nginx:2") ++running_new;
    report("pods replaced by the new template", running_new == 3, std::to_string(pods2.size()) + " pods");
  }

  // ---- rollback through the template (kubectl rollout undo) -----------------------------------------
  {
    json rev1;
    for (const auto& rs : owned_by(list(api, "/apis/apps/v1/namespaces/default/replicasets"), uid_of(d)))
      if (str(at(rs, {"metadata", "annotations", "deployment.kubernetes.io/revision"})) == "1") rev1 = rs;
    bool found = !rev1.is_null();
    if (found) {
      json tmpl = rev1["spec"]["template"];
      tmpl["metadata"]["labels"].erase("pod-template-hash");
      json cur = get_or_null(api, deploy_path("default", "web"));
      json annotations = at(cur, {"metadata", "annotations"});
      json patch = json::array({{{"op", "replace"}, {"path", "/spec/template"}, {"value", tmpl}},
                                {{"op", "replace"}, {"path", "/metadata/annotations"}, {"value", annotations}}});
      auto r = api.patch(deploy_path("default", "web"), patch, "application/json-patch+json");
      found = r.ok();
    }
    ok = found && wait_for([&] {
      json cur = get_or_null(api, deploy_path("default", "web"));
      return rolled_out(api, "default", "web", &last) &&
             str(at(cur, {"metadata", "annotations", "deployment.kubernetes.io/revision"})) == "3";
    }, 40s);
    json back = get_or_null(api, resources::kReplicaSets.path("default", name_of(rev1)));
    bool reused = str(at(back, {"metadata", "annotations", "deployment.kubernetes.io/revision"})) == "3" &&
                  str(at(back, {"metadata", "annotations", "deployment.kubernetes.io/revision-history"})) == "1" &&
                  num(at(back, {"spec", "replicas"})) == 3;
    auto all = owned_by(list(api, "/apis/apps/v1/namespaces/default/replicasets"), uid_of(d));
    report("rollback reuses the old replica set as revision 3", ok && reused && all.size() == 2,
           last + " " + back.dump().substr(0, 300));
  }

  // ---- scaling ---------------------------------------------------------------------------------------
  api.patch(deploy_path("default", "web", "scale"), json{{"spec", {{"replicas", 6}}}});
  ok = wait_for([&] {
    json cur = get_or_null(api, deploy_path("default", "web"));
    return rolled_out(api, "default", "web", &last) && num(at(cur, {"status", "availableReplicas"})) == 6;
  }, 30s);
  report("scale up to 6", ok, last);
  api.patch(deploy_path("default", "web", "scale"), json{{"spec", {{"replicas", 2}}}});
  ok = wait_for([&] {
    json cur = get_or_null(api, deploy_path("default", "web"));
    int live = 0;
    for (const auto& p : list(api, "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb"))
      if (!being_deleted(p)) ++live;
    return rolled_out(api, "default", "web", &last) && num(at(cur, {"status", "replicas"})) == 2 && live == 2;
  }, 30s);
  report("scale down to 2", ok, last);

  // ---- proportional scaling in the middle of a stuck rollout ------------------------------------
  {
    api.create(deploy_path("default"), make_deployment("prop", 10, "nginx:1"));
    ok = wait_for([&] { return rolled_out(api, "default", "prop", &last); }, 40s);
    json pd = get_or_null(api, deploy_path("default", "prop"));
    api.patch(deploy_path("default", "prop"),
              json{{"spec", {{"template", {{"spec", {{"containers", json::array({{{"name", "main"}, {"image", "never-ready:2"},
                                                                                 {"resources", {{"requests", {{"cpu", "100m"}, {"memory", "64Mi"}}}}}}})}}}}}}}},
              "application/strategic-merge-patch+json");
    // maxSurge 3, maxUnavailable 2: the old set goes to 8, the new one to 5, and it stops there.
    auto sizes = [&](std::int64_t& old_size, std::int64_t& new_size) {
      old_size = new_size = -1;
      for (const auto& rs : owned_by(list(api, "/apis/apps/v1/namespaces/default/replicasets"), uid_of(pd))) {
        if (str(at(rs, {"spec", "template", "spec", "containers"})[0]["image"]) == "nginx:1") old_size = num(at(rs, {"spec", "replicas"}));
        else new_size = num(at(rs, {"spec", "replicas"}));
      }
    };
    std::int64_t o = 0, n = 0;
    bool stuck = ok && wait_for([&] {
      sizes(o, n);
      return o == 8 && n == 5;
    }, 30s);
    report("rolling update blocked by unready pods stops at maxSurge/maxUnavailable", stuck,
           "old " + std::to_string(o) + ", new " + std::to_string(n));
    api.patch(deploy_path("default", "prop", "scale"), json{{"spec", {{"replicas", 20}}}});
    // 20 + 5 surge = 25 allowed, 12 more spread by size: old 8 -> 15, new 5 -> 10.
    bool proportional = wait_for([&] {
      sizes(o, n);
      return o == 15 && n == 10;
    }, 30s);
    std::this_thread::sleep_for(1s);
    sizes(o, n);
    report("scaling during the rollout is proportional (old 8->15, new 5->10)", proportional && o == 15 && n == 10,
           "old " + std::to_string(o) + ", new " + std::to_string(n) + "; " + describe_events(api, "default", "prop"));
    api.remove(deploy_path("default", "prop"), json{{"propagationPolicy", "Background"}});
  }

  // ---- pause and resume ------------------------------------------------------------------------------
  api.patch(deploy_path("default", "web"), json{{"spec", {{"paused", true}}}});
  wait_for([&] {
    json cur = get_or_null(api, deploy_path("default", "web"));
    const json* c2 = deployment::get_condition(cur["status"], "Progressing");
    return c2 && str((*c2)["reason"]) == "DeploymentPaused";
  }, 10s);
  api.patch(deploy_path("default", "web"),
            json{{"spec", {{"template", {{"metadata", {{"annotations", {{"kubectl.kubernetes.io/restartedAt", "now"}}}}}}}}}});
  std::this_thread::sleep_for(2s);
  auto while_paused = owned_by(list(api, "/apis/apps/v1/namespaces/default/replicasets"), uid_of(d));
  json paused_d = get_or_null(api, deploy_path("default", "web"));
  const json* paused_cond = deployment::get_condition(paused_d["status"], "Progressing");
  report("paused: no new replica set, Progressing Unknown DeploymentPaused",
         while_paused.size() == 2 && paused_cond && str((*paused_cond)["status"]) == "Unknown" &&
             str((*paused_cond)["message"]) == "Deployment is paused",
         std::to_string(while_paused.size()) + " rs");
  api.patch(deploy_path("default", "web"), json{{"spec", {{"paused", false}}}});
  ok = wait_for([&] {
    json cur = get_or_null(api, deploy_path("default", "web"));
    return rolled_out(api, "default", "web", &last) &&
           str(at(cur, {"metadata", "annotations", "deployment.kubernetes.io/revision"})) == "4";
  }, 40s);
  report("resumed: the change rolls out as revision 4", ok, last);

  // ---- Recreate --------------------------------------------------------------------------------------
  api.create(deploy_path("default"), make_deployment("batch", 2, "busybox:1", "Recreate"));
  ok = wait_for([&] { return rolled_out(api, "default", "batch", &last); }, 30s);
  report("Recreate deployment rolls out", ok, last);
  {
    json bd = get_or_null(api, deploy_path("default", "batch"));
    std::atomic<bool> overlap{false}, watching{true};
    std::thread watcher([&] {
      while (watching) {
        int old_live = 0, new_live = 0;
        for (const auto& p : list(api, "/api/v1/namespaces/default/pods?labelSelector=app%3Dbatch")) {
          if (being_deleted(p)) continue;
          if (str(at(p, {"spec", "containers"})[0]["image"]) == "busybox:1") ++old_live;
          else ++new_live;
        }
        if (old_live > 0 && new_live > 0) overlap = true;
        std::this_thread::sleep_for(50ms);
      }
    });
    api.patch(deploy_path("default", "batch"),
              json{{"spec", {{"template", {{"spec", {{"containers", json::array({{{"name", "main"}, {"image", "busybox:2"}}})}}}}}}}},
              "application/strategic-merge-patch+json");
    ok = wait_for([&] {
      json cur = get_or_null(api, deploy_path("default", "batch"));
      return rolled_out(api, "default", "batch", &last) &&
             str(at(cur, {"metadata", "annotations", "deployment.kubernetes.io/revision"})) == "2";
    }, 40s);
    watching = false;
    watcher.join();
    report("Recreate: old pods gone before new ones start", ok && !overlap, last);
    // History beyond revisionHistoryLimit is cleaned up.
    api.patch(deploy_path("default", "batch"), json{{"spec", {{"revisionHistoryLimit", 0}}}});
    ok = wait_for([&] { return owned_by(list(api, "/apis/apps/v1/namespaces/default/replicasets"), uid_of(bd)).size() == 1; },
                  20s);
    report("revisionHistoryLimit 0 deletes the old replica set", ok);
  }

  // ---- scheduling failures ---------------------------------------------------------------------------
  {
    json big = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", "big"}}},
                {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "nginx"},
                                                       {"resources", {{"requests", {{"cpu", "6"}}}}}}})}}}};
    api.create("/api/v1/namespaces/default/pods", big);
    std::string want =
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not "
        "helpful for scheduling.";
    std::string got;
    ok = wait_for([&] {
      json p = get_or_null(api, "/api/v1/namespaces/default/pods/big");
      for (const auto& cnd : at(p, {"status", "conditions"}))
        if (str(cnd["type"]) == "PodScheduled") {
          got = cnd.dump();
          return str(cnd["status"]) == "False" && str(cnd["reason"]) == "Unschedulable" && str(cnd["message"]) == want;
        }
      return false;
    }, 15s);
    report("unschedulable pod: PodScheduled=False Unschedulable with the FitError message", ok, got);
    ok = wait_for([&] { return has_event(api, "default", "big", "FailedScheduling", want); }, 10s);
    report("FailedScheduling event", ok, describe_events(api, "default", "big"));
    // A node that fits appears: the pod is retried and bound.
    nodes.add("node-4", "8", "16Gi");
    ok = wait_for([&] {
      json p = get_or_null(api, "/api/v1/namespaces/default/pods/big");
      return str(at(p, {"spec", "nodeName"})) == "node-4";
    }, 20s);
    report("retried and bound when a node fits", ok, describe_events(api, "default", "big"));
    api.remove("/api/v1/namespaces/default/pods/big", json{{"gracePeriodSeconds", 0}});

    // Cordon and taints.
    json pinned = {{"apiVersion", "v1"},
                   {"kind", "Pod"},
                   {"metadata", {{"name", "pinned"}}},
                   {"spec", {{"nodeSelector", {{"kubernetes.io/hostname", "node-4"}}},
                             {"containers", json::array({{{"name", "c"}, {"image", "nginx"}}})}}}};
    api.patch("/api/v1/nodes/node-4", json{{"spec", {{"unschedulable", true}}}}, "application/strategic-merge-patch+json");
    std::this_thread::sleep_for(1500ms);
    api.create("/api/v1/namespaces/default/pods", pinned);
    std::string cordon_want =
        "0/4 nodes are available: 1 node(s) were unschedulable, 3 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling.";
    ok = wait_for([&] { return has_event(api, "default", "pinned", "FailedScheduling", cordon_want); }, 15s);
    report("cordoned node and nodeSelector reasons", ok, describe_events(api, "default", "pinned"));
    json taint_node = get_or_null(api, "/api/v1/nodes/node-4");
    report("cordon gives the unschedulable NoSchedule taint",
           taint_node["spec"].dump().find("node.kubernetes.io/unschedulable") != std::string::npos, taint_node["spec"].dump());
    api.patch("/api/v1/nodes/node-4", json{{"spec", {{"unschedulable", nullptr}}}}, "application/strategic-merge-patch+json");
    ok = wait_for([&] {
      return str(at(get_or_null(api, "/api/v1/namespaces/default/pods/pinned"), {"spec", "nodeName"})) == "node-4";
    }, 20s);
    report("uncordon: retried and bound", ok, describe_events(api, "default", "pinned"));
    api.remove("/api/v1/namespaces/default/pods/pinned", json{{"gracePeriodSeconds", 0}});
  }

  // ---- garbage collection ------------------------------------------------------------------------------
  {
    // Foreground: dependents first, the owner last.
    json web = get_or_null(api, deploy_path("default", "web"));
    api.remove(deploy_path("default", "web"), json{{"propagationPolicy", "Foreground"}});
    json during = get_or_null(api, deploy_path("default", "web"));
    bool marked = !during.is_null() && has_string(at(during, {"metadata", "finalizers"}), "foregroundDeletion");
    ok = wait_for([&] {
      auto rs_left = owned_by(list(api, "/apis/apps/v1/namespaces/default/replicasets"), uid_of(web));
      auto pods_left = list(api, "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb");
      return get_or_null(api, deploy_path("default", "web")).is_null() && rs_left.empty() && pods_left.empty();
    }, 40s);
    std::string why = "finalizer seen: " + std::to_string(marked);
    if (!ok) {
      why += "; deployment " + get_or_null(api, deploy_path("default", "web"))["metadata"].dump();
      for (const auto& rs : owned_by(list(api, "/apis/apps/v1/namespaces/default/replicasets"), uid_of(web)))
        why += "; rs " + rs["metadata"].dump() + " " + rs["status"].dump();
      for (const auto& p : list(api, "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb"))
        why += "; pod " + p["metadata"].dump() + " node " + str(at(p, {"spec", "nodeName"}));
    }
    report("foreground deletion removes pods and replica sets, then the deployment", marked && ok, why);

    // Background: the owner goes at once, dependents follow.
    json batch = get_or_null(api, deploy_path("default", "batch"));
    api.remove(deploy_path("default", "batch"), json{{"propagationPolicy", "Background"}});
    ok = wait_for([&] {
      auto rs_left = owned_by(list(api, "/apis/apps/v1/namespaces/default/replicasets"), uid_of(batch));
      auto pods_left = list(api, "/api/v1/namespaces/default/pods?labelSelector=app%3Dbatch");
      return rs_left.empty() && pods_left.empty();
    }, 40s);
    report("background deletion collects replica sets and pods", ok);

    // Orphan: pods stay, without the owner reference.
    json rs = {{"apiVersion", "apps/v1"},
               {"kind", "ReplicaSet"},
               {"metadata", {{"name", "lonely"}}},
               {"spec", {{"replicas", 2},
                         {"selector", {{"matchLabels", {{"app", "lonely"}}}}},
                         {"template", {{"metadata", {{"labels", {{"app", "lonely"}}}}},
                                       {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "nginx"}}})}}}}}}}};
    api.create("/apis/apps/v1/namespaces/default/replicasets", rs);
    ok = wait_for([&] {
      json cur = get_or_null(api, "/apis/apps/v1/namespaces/default/replicasets/lonely");
      return num(at(cur, {"status", "readyReplicas"})) == 2;
    }, 30s);
    report("a bare replica set creates its pods", ok);
    api.remove("/apis/apps/v1/namespaces/default/replicasets/lonely", json{{"propagationPolicy", "Orphan"}});
    ok = wait_for([&] {
      if (!get_or_null(api, "/apis/apps/v1/namespaces/default/replicasets/lonely").is_null()) return false;
      auto left = list(api, "/api/v1/namespaces/default/pods?labelSelector=app%3Dlonely");
      if (left.size() != 2) return false;
      for (const auto& p : left)
        if (at(p, {"metadata", "ownerReferences"}).is_array() && !at(p, {"metadata", "ownerReferences"}).empty())
          return false;
      return true;
    }, 30s);
    report("orphan deletion keeps the pods and drops their owner reference", ok);

    // A new replica set adopts the orphans.
    api.create("/apis/apps/v1/namespaces/default/replicasets", rs);
    ok = wait_for([&] {
      json cur = get_or_null(api, "/apis/apps/v1/namespaces/default/replicasets/lonely");
      auto left = list(api, "/api/v1/namespaces/default/pods?labelSelector=app%3Dlonely");
      if (left.size() != 2 || cur.is_null()) return false;
      for (const auto& p : left)
        if (controller_uid(p) != uid_of(cur)) return false;
      return num(at(cur, {"status", "replicas"})) == 2;
    }, 30s);
    report("matching orphans are adopted instead of creating new pods", ok);
    // A pod that stops matching is released, and replaced.
    auto left = list(api, "/api/v1/namespaces/default/pods?labelSelector=app%3Dlonely");
    if (!left.empty()) {
      std::string p = name_of(left[0]);
      api.patch("/api/v1/namespaces/default/pods/" + p, json{{"metadata", {{"labels", {{"app", "elsewhere"}}}}}});
      ok = wait_for([&] {
        json released = get_or_null(api, "/api/v1/namespaces/default/pods/" + p);
        auto again = list(api, "/api/v1/namespaces/default/pods?labelSelector=app%3Dlonely");
        return controller_uid(released).empty() && again.size() == 2;
      }, 30s);
      report("a pod that stops matching is released and replaced", ok);
      api.remove("/api/v1/namespaces/default/pods/" + p, json{{"gracePeriodSeconds", 0}});
    }
    api.remove("/apis/apps/v1/namespaces/default/replicasets/lonely");
  }

  // ---- namespace deletion -------------------------------------------------------------------------------
  {
    api.create("/api/v1/namespaces", json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "shop"}}}});
    api.create("/api/v1/namespaces/shop/configmaps",
               json{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "settings"}}}, {"data", {{"a", "b"}}}});
    api.create(deploy_path("shop"), make_deployment("cart", 2, "cart:1"));
    wait_for([&] { return rolled_out(api, "shop", "cart"); }, 30s);
    api.remove("/api/v1/namespaces/shop");
    json terminating = get_or_null(api, "/api/v1/namespaces/shop");
    bool phase = str(at(terminating, {"status", "phase"})) == "Terminating";
    ok = wait_for([&] { return get_or_null(api, "/api/v1/namespaces/shop").is_null(); }, 40s);
    json leftover = get_or_null(api, "/api/v1/namespaces/shop");
    report("namespace deletion: Terminating, emptied, removed", phase && ok,
           "phase " + str(at(terminating, {"status", "phase"})) + " " + leftover.dump().substr(0, 600));
  }

  // ---- node lifecycle -------------------------------------------------------------------------------------
  {
    // A pod on node-3 that tolerates unreachability for 2 s only.
    json p = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "short-lived"}}},
              {"spec", {{"nodeSelector", {{"kubernetes.io/hostname", "node-3"}}},
                        {"tolerations", json::array({{{"key", "node.kubernetes.io/unreachable"}, {"operator", "Exists"},
                                                      {"effect", "NoExecute"}, {"tolerationSeconds", 2}}})},
                        {"containers", json::array({{{"name", "c"}, {"image", "nginx"}}})}}}};
    api.create("/api/v1/namespaces/default/pods", p);
    wait_for([&] { return pod_ready(get_or_null(api, "/api/v1/namespaces/default/pods/short-lived")); }, 20s);
    nodes.set_alive("node-3", false);  // its kubelet and lease stop
    auto stopped = std::chrono::steady_clock::now();
    ok = wait_for([&] {
      json n = get_or_null(api, "/api/v1/nodes/node-3");
      std::string taints = at(n, {"spec", "taints"}).dump();
      const json* ready = nullptr;
      for (const auto& cnd : at(n, {"status", "conditions"}))
        if (str(cnd["type"]) == "Ready") ready = &cnd;
      return ready && str((*ready)["status"]) == "Unknown" && str((*ready)["reason"]) == "NodeStatusUnknown" &&
             taints.find("\"node.kubernetes.io/unreachable\"") != std::string::npos &&
             taints.find("NoExecute") != std::string::npos && taints.find("NoSchedule") != std::string::npos;
    }, 20s);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - stopped);
    report("silent node: Ready=Unknown and unreachable taints after the grace period", ok,
           get_or_null(api, "/api/v1/nodes/node-3").dump().substr(0, 800));
    // The last renewal may have come up to a second before the kubelet stopped.
    report("... not before the grace period (4 s)", took >= 2500ms, std::to_string(took.count()) + " ms");
    ok = wait_for([&] {
      json pod = get_or_null(api, "/api/v1/namespaces/default/pods/short-lived");
      return pod.is_null() || being_deleted(pod);
    }, 20s);
    json evicted = get_or_null(api, "/api/v1/namespaces/default/pods/short-lived");
    bool condition = evicted.is_null() || evicted["status"].dump().find("DeletionByTaintManager") != std::string::npos;
    report("pod evicted when its toleration runs out", ok && condition,
           describe_events(api, "default", "short-lived"));
    report("event TaintManagerEviction",
           has_event(api, "default", "short-lived", "TaintManagerEviction", "Marking for deletion Pod default/short-lived"),
           describe_events(api, "default", "short-lived"));
    // The node comes back.
    nodes.set_alive("node-3", true);
    nodes.set_ready("node-3", "True");
    ok = wait_for([&] {
      json n = get_or_null(api, "/api/v1/nodes/node-3");
      return at(n, {"spec", "taints"}).dump().find("node.kubernetes.io/") == std::string::npos;
    }, 15s);
    report("recovered node loses its taints", ok, get_or_null(api, "/api/v1/nodes/node-3")["spec"].dump());
    api.remove("/api/v1/namespaces/default/pods/short-lived", json{{"gracePeriodSeconds", 0}});
  }

  // ---- leader election -------------------------------------------------------------------------------------
  {
    auto second = start_manager(c, "manager-b");
    std::this_thread::sleep_for(3s);
    bool standby = second && !second->leading() && manager->leading();
    json lease = get_or_null(api, "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/berth-controller-manager");
    report("second manager waits while the first leads",
           standby && str(at(lease, {"spec", "holderIdentity"})) == "manager-a", lease.dump());
    auto stop_at = std::chrono::steady_clock::now();
    manager->stop();
    ok = second && wait_for([&] { return second->leading(); }, 10s);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - stop_at);
    lease = get_or_null(api, "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/berth-controller-manager");
    report("leadership handed over on stop", ok && str(at(lease, {"spec", "holderIdentity"})) == "manager-b",
           std::to_string(took.count()) + " ms; " + lease.dump());
    // The new leader works.
    api.create(deploy_path("default"), make_deployment("after", 2, "nginx:1"));
    ok = wait_for([&] { return rolled_out(api, "default", "after", &last); }, 30s);
    report("the new leader runs the controllers", ok, last);
    manager = std::move(second);
  }

  }

  if (bench > 0) {
    // Room for them: nodes of 250 pods each.
    for (int i = 0; i <= bench / 200; ++i) nodes.add("bench-" + std::to_string(i), "1000", "4Ti", "250");
    auto start = std::chrono::steady_clock::now();
    api.create(deploy_path("default"), make_deployment("bench", bench, "nginx:1"));
    int last_created = -1, last_bound = -1, last_ready = -1;
    bool done = wait_for([&] {
      json cur = get_or_null(api, deploy_path("default", "bench"));
      int created = 0, bound = 0, ready = 0;
      for (const auto& p : list(api, "/api/v1/namespaces/default/pods?labelSelector=app%3Dbench")) {
        ++created;
        if (!str(at(p, {"spec", "nodeName"})).empty()) ++bound;
        if (pod_ready(p)) ++ready;
      }
      double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (created != last_created || bound != last_bound || ready != last_ready)
        std::printf("  %.2f s: %d created, %d bound, %d ready, %lld available\n", t, created, bound, ready,
                    static_cast<long long>(num(at(cur, {"status", "availableReplicas"}))));
      last_created = created, last_bound = bound, last_ready = ready;
      return num(at(cur, {"status", "availableReplicas"})) == bench;
    }, 300s);
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("replicas_available_%d: %.2f s%s\n", bench, secs, done ? "" : " (not reached)");
  }

  if (sched_nodes > 0) {
    // The scheduler through the API: bare pods that tolerate everything, nodes without kubelets.
    Executor pool(32);
    pool.parallel(static_cast<std::size_t>(sched_nodes), [&](std::size_t i) {
      nodes.add("sched-" + std::to_string(i), "64", "256Gi", "250", false);
    });
    Informer watch(c, resources::kPods);
    std::atomic<int> bound{0};
    std::mutex seen_mu;
    std::set<std::string> seen;
    std::chrono::steady_clock::time_point first_bound{}, last_bound{};
    auto count = [&](const ObjectPtr& p) {
      if (str(at(*p, {"metadata", "labels", "bench"})) != "sched" || str(at(*p, {"spec", "nodeName"})).empty()) return;
      std::lock_guard l(seen_mu);
      if (!seen.insert(key_of(*p)).second) return;
      last_bound = std::chrono::steady_clock::now();
      if (bound++ == 0) first_bound = last_bound;
    };
    watch.add_handler({count, [&](const ObjectPtr&, const ObjectPtr& p) { count(p); }, nullptr});
    watch.start();
    watch.wait_synced(10s);
    // Pending pods first, with the controllers stopped; then a manager starts and binds them all.
    if (manager) manager->stop();
    manager.reset();
    // With the scheduler alone nothing reads node heartbeats, and the stand-in kubelet would only
    // decode every pod event once more in this process: as in kube-scheduler's scheduler_perf,
    // the nodes just sit there.
    if (sched_controllers == "scheduler" || sched_controllers == "none") nodes.stop();
    auto start = std::chrono::steady_clock::now();
    pool.parallel(static_cast<std::size_t>(sched_pods), [&](std::size_t i) {
      json p = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", "sched-" + std::to_string(i)}, {"labels", {{"bench", "sched"}}}}},
                {"spec", {{"tolerations", json::array({{{"operator", "Exists"}}})},
                          {"containers", json::array({{{"name", "c"}, {"image", "nginx"},
                                                       {"resources", {{"requests", {{"cpu", "10m"}, {"memory", "16Mi"}}}}}}})}}}};
      api.create("/api/v1/namespaces/default/pods", p);
    });
    double created = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    start = std::chrono::steady_clock::now();
    // Only the scheduler by default, as kube-scheduler runs on its own (--sched-bench-controllers
    // "*" runs every controller in the same manager; "none" posts the bindings without one).
    double server_cpu0 = process_cpu_seconds(server.pid), client_cpu0 = process_cpu_seconds(getpid());
    std::printf("sched_bench: %d pods pending, starting the manager\n", sched_pods);
    std::fflush(stdout);
    if (sched_controllers == "none") {
      // No scheduler: the same bindings posted straight from 32 threads (pod i to node i mod N),
      // the ceiling the API sets for any scheduler.
      pool.parallel(static_cast<std::size_t>(sched_pods), [&](std::size_t i) {
        std::string name = "sched-" + std::to_string(i);
        json binding = {{"apiVersion", "v1"}, {"kind", "Binding"}, {"metadata", {{"name", name}}},
                        {"target", {{"apiVersion", "v1"}, {"kind", "Node"},
                                    {"name", "sched-" + std::to_string(i % static_cast<std::size_t>(sched_nodes))}}}};
        api.create("/api/v1/namespaces/default/pods/" + name + "/binding", binding);
      });
    } else {
      manager = start_manager(c, "manager-bench", sched_controllers);
    }
    wait_for([&] { return !manager || manager->leading(); }, 30s);
    double lead = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    bool all = wait_for([&] { return bound.load() >= sched_pods; }, 300s);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double server_cpu = process_cpu_seconds(server.pid) - server_cpu0;
    double client_cpu = process_cpu_seconds(getpid()) - client_cpu0;
    double binding = 0, to_first = 0;
    {
      std::lock_guard l(seen_mu);
      binding = std::chrono::duration<double>(last_bound - first_bound).count();
      to_first = std::chrono::duration<double>(first_bound - start).count();
    }
    std::printf("sched_bench_nodes: %d nodes\n", sched_nodes);
    std::printf("sched_bench_pods_created_in: %.2f s\n", created);
    std::printf("sched_bench_pods_bound: %d pods%s\n", bound.load(), all ? "" : " (not all)");
    std::printf("sched_bench_bound_in: %.2f s (from the manager's start: lease, cache sync, scheduling)\n", secs);
    std::printf("sched_bench_throughput: %.0f pods/s\n", bound.load() / secs);
    std::printf("sched_bench_controllers: %s\n", sched_controllers.c_str());
    // CPU per pod holds still on a busy machine where the rates do not.
    std::printf("sched_bench_server_cpu_per_pod: %.0f us (%.2f s in all)\n", server_cpu * 1e6 / sched_pods, server_cpu);
    std::printf("sched_bench_client_cpu_per_pod: %.0f us (%.2f s in all, this process: scheduler and the bench's watch)\n",
                client_cpu * 1e6 / sched_pods, client_cpu);
    if (manager) {
      std::this_thread::sleep_for(1s);  // the event sink's queue drains
      std::printf("sched_bench_scheduled_events: %zu (the rest dropped by the recorder under load)\n",
                  list(api, "/api/v1/namespaces/default/events?fieldSelector=reason%3DScheduled").size());
    }
    std::printf("sched_bench_leading_after: %.2f s\n", lead);
    std::printf("sched_bench_first_bound_after: %.2f s\n", to_first);
    std::printf("sched_bench_binding_throughput: %.0f pods/s (first to last binding seen)\n",
                binding > 0 ? (bound.load() - 1) / binding : 0.0);
    watch.stop();
  }

  if (manager) manager->stop();
  nodes.stop();
  server.stop();
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
