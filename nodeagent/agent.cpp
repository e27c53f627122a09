// The Agent: connection, node registration, lease and status loops, the pods watch feeding the
// pod workers, re-adoption after a restart, the endpoint, and `berth agent`'s flags.
#include "nodeagent/agent.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "client/client.h"
#include "nodeagent/admission.h"
#include "nodeagent/container_spec.h"
#include "nodeagent/events.h"
#include "nodeagent/exec.h"
#include "nodeagent/images/images.h"
#include "nodeagent/logs.h"
#include "nodeagent/network.h"
#include "nodeagent/node_status.h"
#include "nodeagent/pod_watch.h"
#include "nodeagent/pod_worker.h"
#include "nodeagent/runtime.h"
#include "nodeagent/server.h"
#include "nodeagent/simulated.h"
#include "nodeagent/stats.h"
#include "nodeagent/volumes.h"
#include "net/http.h"

#ifndef BERTH_VERSION
#define BERTH_VERSION "0.0.0"
#endif

namespace berth::nodeagent {

namespace {

api::Result<client::Config> client_config(const AgentOptions& o) {
  client::Config cfg;
  if (!o.kubeconfig.empty()) {
    auto k = client::load_kubeconfig(o.kubeconfig);
    if (!k) return k.take_status();
    cfg = *k;
  }
  if (!o.server.empty()) cfg.server = o.server;
  if (!o.token_file.empty()) {
    auto t = read_file(o.token_file);
    if (!t) return api::Status(t.status().reason(), "reading the token file: " + t.status().message());
    cfg.token = trim(*t);
  }
  if (!o.ca_file.empty()) {
    auto ca = read_file(o.ca_file);
    if (!ca) return api::Status(ca.status().reason(), "reading the CA file: " + ca.status().message());
    cfg.ca_pem = *ca;
  }
  if (cfg.server.empty()) return api::Status(api::Reason::BadRequest, "no API server: give --server or --kubeconfig");
  cfg.user_agent = "kubelet/" + kubelet_version() + " (linux/amd64) berth-agent";
  cfg.max_connections = o.client_connections;
  return cfg;
}

// ConfigMaps, Secrets, Services and tokens from the API server.
class ClientObjects final : public ObjectSource {
 public:
  ClientObjects(client::Client* c, std::string ca) : c_(c), ca_(std::move(ca)) {}
  api::Result<json> configmap(const std::string& ns, const std::string& name) override {
    return c_->get("/api/v1/namespaces/" + ns + "/configmaps/" + name);
  }
  api::Result<json> secret(const std::string& ns, const std::string& name) override {
    return c_->get("/api/v1/namespaces/" + ns + "/secrets/" + name);
  }
  api::Result<std::vector<json>> services(const std::string& ns) override {
    std::vector<json> out;
    auto list = c_->get("/api/v1/namespaces/" + ns + "/services");
    if (!list) return list.take_status();
    for (auto& item : (*list)["items"]) {
      item["metadata"]["namespace"] = ns;
      out.push_back(item);
    }
    if (ns != "default") {
      auto master = c_->get("/api/v1/namespaces/default/services/kubernetes");
      if (master) out.push_back(*master);
    }
    return out;
  }
  api::Result<std::string> service_account_token(const std::string& ns, const std::string& sa,
                                                 const std::string& audience, int64_t expiration,
                                                 const json& pod) override {
    json req = {{"apiVersion", "authentication.k8s.io/v1"},
                {"kind", "TokenRequest"},
                {"spec",
                 {{"expirationSeconds", expiration},
                  {"boundObjectRef",
                   {{"kind", "Pod"}, {"apiVersion", "v1"}, {"name", jstr(pod, {"metadata", "name"})}, {"uid", jstr(pod, {"metadata", "uid"})}}}}}};
    if (!audience.empty()) req["spec"]["audiences"] = json::array({audience});
    auto r = c_->create("/api/v1/namespaces/" + ns + "/serviceaccounts/" + sa + "/token", req);
    if (!r) return r.take_status();
    return jstr(*r, {"status", "token"});
  }
  std::string cluster_ca() override { return ca_; }

 private:
  client::Client* c_;
  std::string ca_;
};

class LogStream final : public net::StreamSource {
 public:
  LogStream(std::string path, LogOptions o, std::function<bool()> finished)
      : follower_(std::move(path), std::move(o), std::move(finished)) {}
  void start(std::function<void()>) override {}
  State poll(std::string& out) override {
    switch (follower_.poll(out)) {
      case LogFollower::State::More: return State::More;
      case LogFollower::State::Wait: return State::Wait;
      default: return State::Done;
    }
  }
  void stop() override {}

 private:
  LogFollower follower_;
};

class AgentImpl final : public Agent, public EndpointBackend {
 public:
  explicit AgentImpl(AgentOptions o) : o_(std::move(o)) {}
  ~AgentImpl() override { stop(); }

  int port() const override { return server_ ? server_->port() : 0; }

  api::Status init() {
    auto cfg = client_config(o_);
    if (!cfg) return cfg.take_status();
    ca_pem_ = cfg->ca_pem;
    auto c = client::Client::create(*cfg);
    if (!c) return c.take_status();
    client_ = std::move(*c);
    if (o_.node_name.empty()) o_.node_name = host_name();
    if (o_.simulate) return init_simulated();
    return init_real();
  }

  api::Status start_endpoint_for(const std::vector<std::string>& sans, const std::string& name) {
    if (o_.listen.empty()) return {};
    auto tls = endpoint_tls(o_, ca_pem_, name, sans);
    if (!tls) return tls.take_status();
    auto srv = start_endpoint(o_.listen, *tls, *this, o_.allowed_clients);
    if (!srv) return api::Status(srv.status().reason(), "agent endpoint on " + o_.listen + ": " + srv.status().message());
    server_ = std::move(*srv);
    BERTH_LOGI("serving logs and stats on %s (port %d)", o_.listen.c_str(), server_->port());
    return {};
  }

  api::Status init_simulated() {
    // One shared listener; the simulated nodes' loopback addresses all reach it.
    std::vector<std::string> sans = {"localhost", "127.0.0.1"};
    for (int i = 0; i < std::min(o_.nodes, 200); ++i) sans.push_back(simulated_node_ip(i));
    if (auto st = start_endpoint_for(sans, o_.node_name_prefix + "fleet"); !st) return st;
    auto fleet = SimulatedFleet::start(o_, client_.get(), port());
    if (!fleet) return fleet.take_status();
    fleet_ = std::move(*fleet);
    return {};
  }

  api::Status init_real();
  void stop() override;

  net::Response container_logs(const std::string& ns, const std::string& pod, const std::string& container,
                               const net::Request& request) override {
    if (fleet_) return fleet_->container_logs(ns, pod, container, request);
    return real_container_logs(ns, pod, container, request);
  }
  net::Response exec(const std::string& ns, const std::string& pod, const std::string& container,
                     const net::Request& request) override {
    if (fleet_ || !runtime_) return EndpointBackend::exec(ns, pod, container, request);
    std::optional<PodSnapshot> found;
    for (auto& s : snapshots())
      if (s.ns == ns && s.name == pod) found = std::move(s);
    return serve_exec(*runtime_, found ? &*found : nullptr, container, request);
  }
  net::Response stats_summary(const net::Request& request) override {
    if (fleet_) return fleet_->stats_summary(request);
    std::vector<PodSnapshot> pods = snapshots();
    json s = stats_.summary(o_.node_name, pods, o_.data_dir, static_cast<uint64_t>(facts_.memory_bytes), started_at_);
    net::Response r = net::Response::text(200, s.dump(), "application/json");
    return r;
  }

 private:
  net::Response real_container_logs(const std::string& ns, const std::string& pod, const std::string& container,
                                    const net::Request& request);
  std::vector<PodSnapshot> snapshots() {
    std::vector<std::shared_ptr<PodWorker>> ws;
    {
      std::lock_guard lock(workers_mu_);
      for (auto& [uid, w] : workers_) ws.push_back(w);
    }
    std::vector<PodSnapshot> out;
    for (auto& w : ws) out.push_back(w->snapshot());
    return out;
  }
  api::Status register_node();
  void lease_loop();
  void status_loop();
  void pods_loop();
  void housekeeping_loop();
  void dispatch(const json& pod);
  std::optional<PodRecord> admit(const json& pod);
  void remember_node(const json& node) {
    std::lock_guard lock(node_mu_);
    node_obj_ = node;
    node_at_ = SteadyClock::now();
  }
  void restore_workers();
  void remove_orphans(const std::set<std::string>& listed_uids);
  NodeHealth health();
  bool sleep_for(std::chrono::milliseconds d) {
    std::unique_lock lock(stop_mu_);
    return !stop_cv_.wait_for(lock, d, [&] { return stopping_.load(); });
  }

  AgentOptions o_;
  std::string ca_pem_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<net::HttpsServer> server_;
  std::unique_ptr<SimulatedFleet> fleet_;

  // real node
  NodeFacts facts_;
  std::string node_uid_;
  std::unique_ptr<Runtime> runtime_;
  std::unique_ptr<images::ImageStore> images_;
  std::unique_ptr<PodNetwork> network_;
  std::unique_ptr<ClientObjects> objects_;
  std::unique_ptr<VolumeManager> volumes_;
  std::unique_ptr<EventRecorder> events_;
  AgentContext ctx_;
  StatsCollector stats_;
  Clock::time_point started_at_ = Clock::now();
  std::mutex workers_mu_;
  std::map<std::string, std::shared_ptr<PodWorker>> workers_;
  std::mutex node_mu_;
  json node_obj_;  // our Node as the API server last returned it (labels, taints) for admission
  SteadyClock::time_point node_at_{};
  std::vector<std::thread> threads_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  std::atomic<bool> stopping_{false};
  std::mutex watch_mu_;
  std::unique_ptr<client::WatchStream> watch_;
  bool stopped_ = false;
};

api::Status AgentImpl::init_real() {
  const std::string& d = o_.data_dir;
  for (const char* sub : {"", "/pods", "/containers", "/cni", "/images"})
    if (auto st = mkdir_p(d + sub, 0700); !st) return st;
  if (o_.pod_log_dir.empty()) o_.pod_log_dir = d + "/pod-logs";
  mkdir_p(o_.pod_log_dir, 0755);
  Reaper::instance().start();

  RuntimeOptions ro;
  ro.name = o_.runtime;
  ro.path = o_.runtime_path;
  ro.state_dir = d + "/runtime-" + o_.runtime;
  ro.bundles_dir = d + "/containers";
  ro.shim_exe = o_.shim_exe;
  auto rt = Runtime::open(ro);
  if (!rt) return rt.take_status();
  runtime_ = std::move(*rt);

  auto store = images::ImageStore::open(d + "/images", o_.insecure_registries);
  if (!store) return api::Status(store.status().reason(), "image store: " + store.status().message());
  images_ = std::move(*store);
  if (o_.builtin_image) {
    // A machine with no registry still has an image to run at once. It is built by a child
    // process: building unpacks a layer, which loads libarchive (with ICU and libxml2), and an
    // agent that pulls nothing should not carry them. The store's index is shared through
    // its file lock.
    auto built = run_command({o_.shim_exe, "agent", "__builtin-image", d}, "", std::chrono::minutes(2));
    if (built.exit_code == 0) {
      BERTH_LOGI("image %s is available locally", images::kBuiltinBusybox);
    } else {
      std::string why = trim(built.err.empty() ? built.out : built.err);
      BERTH_LOGW("no built-in image: %s", why.empty() ? "the builder failed" : why.c_str());
    }
  }

  facts_ = detect_host_facts(o_.node_name, o_.node_ip, d, runtime_->name(), o_.runtime_path);
  facts_.pods = o_.max_pods;
  facts_.labels = o_.node_labels;
  facts_.pod_cidr = o_.pod_cidr;

  // The endpoint first: its port goes into the node's status.
  std::vector<std::string> sans = {o_.node_name, facts_.internal_ip, "localhost", "127.0.0.1"};
  if (auto st = start_endpoint_for(sans, o_.node_name); !st) return st;
  facts_.kubelet_port = port() ? port() : 10250;

  if (auto st = register_node(); !st) return st;

  NetworkOptions no;
  no.cni_bin_dir = o_.cni_bin_dir;
  no.bridge = o_.bridge;
  no.pod_cidr = facts_.pod_cidr.empty() ? o_.pod_cidr : facts_.pod_cidr;
  no.state_dir = d + "/cni";
  auto net = PodNetwork::open(no);
  if (!net) return net.take_status();
  network_ = std::move(*net);

  objects_ = std::make_unique<ClientObjects>(client_.get(), ca_pem_);
  volumes_ = std::make_unique<VolumeManager>(d + "/pods", *objects_);
  events_ = EventRecorder::create(client_.get(), o_.node_name);

  ctx_.client = client_.get();
  ctx_.runtime = runtime_.get();
  ctx_.images = images_.get();
  ctx_.network = network_.get();
  ctx_.volumes = volumes_.get();
  ctx_.objects = objects_.get();
  ctx_.events = events_.get();
  ctx_.node_name = o_.node_name;
  ctx_.host_ip = facts_.internal_ip;
  ctx_.node_allocatable = build_node_status(facts_, NodeHealth{}, json(), Clock::now())["allocatable"];
  ctx_.memory_capacity = facts_.memory_bytes;
  ctx_.cgroup_root = o_.cgroup_root;
  ctx_.cgroup_v2 = stats_.v2();
  ctx_.pods_dir = d + "/pods";
  ctx_.logs_dir = o_.pod_log_dir;
  ctx_.cluster_dns = o_.cluster_dns;
  ctx_.runtime_name = runtime_->name();

  for (const char* reason : {"Starting"}) events_->node_event(o_.node_name, "Normal", reason, "Starting kubelet.");
  for (const char* cond : {"NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID"})
    events_->node_event(o_.node_name, "Normal", cond, "Node " + o_.node_name + " status is now: " + cond);
  events_->node_event(o_.node_name, "Normal", "NodeAllocatableEnforced", "Updated Node Allocatable limit across pods");

  restore_workers();
  threads_.emplace_back([this] { lease_loop(); });
  threads_.emplace_back([this] { status_loop(); });
  threads_.emplace_back([this] { pods_loop(); });
  threads_.emplace_back([this] { housekeeping_loop(); });
  BERTH_LOGI("node %s registered (%s, %s, pod CIDR %s); watching its pods", o_.node_name.c_str(),
             facts_.internal_ip.c_str(), facts_.container_runtime_version.c_str(), no.pod_cidr.c_str());
  return {};
}

NodeHealth AgentImpl::health() {
  NodeHealth h = host_health(facts_, o_.data_dir);
  std::string reason = network_ ? network_->not_ready_reason() : "";
  if (!reason.empty()) {
    h.ready = false;
    h.not_ready_message = reason;
  }
  return h;
}

api::Status AgentImpl::register_node() {
  auto deadline = SteadyClock::now() + std::chrono::seconds(60);
  std::chrono::milliseconds wait(500);
  for (;;) {
    json node = build_node(facts_, NodeHealth{}, Clock::now());
    auto created = client_->create("/api/v1/nodes", node);
    if (created) {
      node_uid_ = jstr(*created, {"metadata", "uid"});
      remember_node(*created);
      BERTH_LOGI("registered node %s", o_.node_name.c_str());
      return {};
    }
    if (created.status().reason() == api::Reason::AlreadyExists || created.status().reason() == api::Reason::Conflict) {
      auto existing = client_->get("/api/v1/nodes/" + o_.node_name);
      if (existing) {
        node_uid_ = jstr(*existing, {"metadata", "uid"});
        remember_node(*existing);
        std::string cidr = jstr(*existing, {"spec", "podCIDR"});
        if (!cidr.empty()) facts_.pod_cidr = cidr;
        // Re-assert our labels, as the kubelet reconciles them on start.
        json labels = node["metadata"]["labels"];
        client_->patch("/api/v1/nodes/" + o_.node_name, {{"metadata", {{"labels", labels}}}});
        BERTH_LOGI("node %s already registered; taking it over", o_.node_name.c_str());
        return {};
      }
    }
    if (SteadyClock::now() > deadline)
      return api::Status(created.status().reason(), "registering node " + o_.node_name + ": " + created.status().message());
    BERTH_LOGW("registering node %s: %s (retrying)", o_.node_name.c_str(), created.status().message().c_str());
    if (!sleep_for(wait)) return api::Status(api::Reason::ServiceUnavailable, "stopped");
    wait = std::min(wait * 2, std::chrono::milliseconds(5000));
  }
}

void AgentImpl::lease_loop() {
  std::string path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/" + o_.node_name;
  json lease;
  do {
    json want = build_lease(o_.node_name, node_uid_, static_cast<int>(o_.lease_duration.count()), Clock::now());
    if (!lease.is_object()) {
      auto got = client_->get(path);
      if (got) lease = *got;
      else if (got.status().reason() == api::Reason::NotFound) {
        auto made = client_->create("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", want);
        if (made) {
          lease = *made;
          continue;
        }
        BERTH_LOGW("creating lease: %s", made.status().message().c_str());
        continue;
      } else {
        BERTH_LOGW("reading lease: %s", got.status().message().c_str());
        continue;
      }
    }
    lease["spec"] = want["spec"];
    if (!node_uid_.empty()) lease["metadata"]["ownerReferences"] = want["metadata"]["ownerReferences"];
    auto r = client_->update(path, lease);
    if (r) lease = *r;
    else {
      BERTH_LOGW("renewing lease: %s", r.status().message().c_str());
      lease = json();  // re-read (a conflict, or it was deleted)
    }
  } while (sleep_for(o_.lease_renew_interval));
}

void AgentImpl::status_loop() {
  json last_sent;
  Clock::time_point last_sent_at{};
  bool was_ready = true;
  do {
    NodeHealth h = health();
    auto now = Clock::now();
    json status = build_node_status(facts_, h, at(last_sent, {"conditions"}), now);
    if (last_sent.is_null() || node_status_changed(status, last_sent) || now - last_sent_at >= o_.status_report_frequency) {
      auto r = client_->patch("/api/v1/nodes/" + o_.node_name + "/status", {{"status", status}},
                              "application/strategic-merge-patch+json");
      if (r) {
        remember_node(*r);
        if (last_sent.is_null() || h.ready != was_ready)
          events_->node_event(o_.node_name, "Normal", h.ready ? "NodeReady" : "NodeNotReady",
                              "Node " + o_.node_name + " status is now: " + (h.ready ? "NodeReady" : "NodeNotReady"));
        was_ready = h.ready;
        last_sent = status;
        last_sent_at = now;
      } else if (r.status().reason() == api::Reason::NotFound) {
        BERTH_LOGW("node %s was deleted; registering it again", o_.node_name.c_str());
        register_node();
        last_sent = json();
      } else {
        BERTH_LOGW("updating node status: %s", r.status().message().c_str());
      }
    }
  } while (sleep_for(o_.status_update_frequency));
}

void AgentImpl::restore_workers() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(ctx_.pods_dir, ec)) {
    auto text = read_file(e.path().string() + "/state.json");
    if (!text) continue;
    json j = json::parse(*text, nullptr, false);
    if (!j.is_object()) continue;
    PodRecord rec = PodRecord::from_json(j);
    if (rec.uid.empty()) continue;
    auto w = std::make_shared<PodWorker>(ctx_, rec.uid, rec);
    w->start();
    std::lock_guard lock(workers_mu_);
    workers_[rec.uid] = w;
    BERTH_LOGI("re-adopting pod %s/%s (%s) from the state directory", rec.ns.c_str(), rec.name.c_str(), rec.uid.c_str());
  }
}

void AgentImpl::remove_orphans(const std::set<std::string>& listed) {
  std::set<std::string> known_ids, known_uids;
  {
    std::lock_guard lock(workers_mu_);
    for (auto& [uid, w] : workers_) {
      known_uids.insert(uid);
      auto s = w->snapshot();
      for (const auto& c : s.containers)
        if (!c.id.empty()) known_ids.insert(c.id);
    }
    // The previous instances are referenced in the state files too.
  }
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(ctx_.pods_dir, ec)) {
    auto text = read_file(e.path().string() + "/state.json");
    if (!text) continue;
    json j = json::parse(*text, nullptr, false);
    for (const char* list : {"initContainers", "containers"})
      if (at(j, {list}).is_array())
        for (const auto& c : j[list])
          for (const char* f : {"id", "prevId"})
            if (!jstr(c, {f}).empty()) known_ids.insert(raw_container_id(jstr(c, {f})));
  }
  for (const auto& id : runtime_->list()) {
    if (known_ids.count(id)) continue;
    BERTH_LOGI("removing container %s: no pod of this node owns it", id.c_str());
    runtime_->remove(id);
  }
  for (const auto& sb : network_->sandboxes()) {
    if (known_uids.count(sb) || listed.count(sb)) continue;
    BERTH_LOGI("removing the network of pod %s: no longer on this node", sb.c_str());
    network_->teardown(sb, "", "", sb);
    network_->remove_ipc_namespace(sb);
  }
}

void AgentImpl::dispatch(const json& pod) {
  std::string uid = jstr(pod, {"metadata", "uid"});
  if (uid.empty()) return;
  std::shared_ptr<PodWorker> w;
  {
    std::lock_guard lock(workers_mu_);
    auto it = workers_.find(uid);
    if (it != workers_.end()) w = it->second;
  }
  if (!w) {
    // Only the pods loop creates workers, so pods are admitted one at a time, each against
    // those admitted before it (the kubelet's HandlePodAdditions). Restored pods were admitted
    // before the restart and are not checked again.
    if (stopping_) return;
    w = std::make_shared<PodWorker>(ctx_, uid, admit(pod));
    {
      std::lock_guard lock(workers_mu_);
      workers_[uid] = w;
    }
    w->start();
  }
  w->update(pod);
}

std::optional<PodRecord> AgentImpl::admit(const json& pod) {
  std::string phase = jstr(pod, {"status", "phase"});
  if (phase == "Succeeded" || phase == "Failed" || at(pod, {"metadata", "deletionTimestamp"}).is_string())
    return std::nullopt;  // nothing will run: no admission, as the kubelet skips terminal pods
  json node;
  bool stale;
  {
    std::lock_guard lock(node_mu_);
    node = node_obj_;
    stale = SteadyClock::now() - node_at_ > std::chrono::seconds(10);
  }
  // Labels and taints others set reach us with the status updates; the kubelet's node informer
  // is quicker, so an older copy is read again, and so is any copy before a rejection.
  auto refresh = [&] {
    auto fresh = client_->get("/api/v1/nodes/" + o_.node_name);
    if (!fresh) return false;
    remember_node(*fresh);
    node = std::move(*fresh);
    return true;
  };
  bool fresh = stale && refresh();
  // Without the API's copy, the node as we register it (the kubelet's initial node).
  if (!node.is_object()) node = build_node(facts_, NodeHealth{}, Clock::now());
  std::vector<std::shared_ptr<const json>> admitted;
  {
    std::lock_guard lock(workers_mu_);
    for (auto& [uid, w] : workers_)
      if (auto p = w->admitted_pod()) admitted.push_back(std::move(p));
  }
  AdmitResult r = admit_pod(pod, node, admitted);
  if (!r.admit && !fresh && refresh()) r = admit_pod(pod, node, admitted);
  if (r.admit) return std::nullopt;
  PodRecord rec;
  rec.uid = jstr(pod, {"metadata", "uid"});
  rec.ns = jstr(pod, {"metadata", "namespace"});
  rec.name = jstr(pod, {"metadata", "name"});
  rec.terminal = true;
  rec.rejected = true;
  rec.reason = r.reason;
  rec.message = rejection_message(r);
  BERTH_LOGW("pod %s/%s: admission denied: %s: %s", rec.ns.c_str(), rec.name.c_str(), r.reason.c_str(), r.message.c_str());
  events_->pod_event(pod, "", "Warning", r.reason, r.message);
  return rec;
}

void AgentImpl::pods_loop() {
  std::string selector = "fieldSelector=" + net::url_encode("spec.nodeName=" + o_.node_name);
  std::string rv;
  bool first = true;
  while (!stopping_) {
    if (rv.empty()) {
      std::vector<json> items;
      std::string cont;
      bool ok = true;
      do {
        std::string path = "/api/v1/pods?" + selector + "&limit=500";
        if (!cont.empty()) path += "&continue=" + net::url_encode(cont);
        auto page = client_->get(path);
        if (!page) {
          BERTH_LOGW("listing pods: %s", page.status().message().c_str());
          ok = false;
          break;
        }
        for (auto& item : (*page)["items"]) items.push_back(std::move(item));
        cont = jstr(*page, {"metadata", "continue"});
        rv = jstr(*page, {"metadata", "resourceVersion"});
      } while (!cont.empty());
      if (!ok) {
        rv.clear();
        if (!sleep_for(std::chrono::seconds(2))) return;
        continue;
      }
      std::set<std::string> listed;
      for (const auto& p : items) listed.insert(jstr(p, {"metadata", "uid"}));
      if (first) {
        remove_orphans(listed);
        first = false;
      }
      // Oldest first, so admission favours the pods that were there first (as the kubelet sorts
      // its additions by creation time). RFC 3339 UTC stamps order as strings.
      std::stable_sort(items.begin(), items.end(), [](const json& a, const json& b) {
        return jstr(a, {"metadata", "creationTimestamp"}) < jstr(b, {"metadata", "creationTimestamp"});
      });
      for (const auto& p : items) dispatch(p);
      std::vector<std::shared_ptr<PodWorker>> gone;
      {
        std::lock_guard lock(workers_mu_);
        for (auto& [uid, w] : workers_)
          if (!listed.count(uid)) gone.push_back(w);
      }
      for (auto& w : gone) w->removed();
    }
    auto w = client_->watch("/api/v1/pods?" + selector + "&resourceVersion=" + rv + "&allowWatchBookmarks=true");
    if (!w) {
      if (w.status().reason() == api::Reason::Gone || w.status().reason() == api::Reason::Expired) rv.clear();
      BERTH_LOGW("watching pods: %s", w.status().message().c_str());
      if (!sleep_for(std::chrono::seconds(1))) return;
      continue;
    }
    {
      std::lock_guard lock(watch_mu_);
      if (stopping_) return;
      watch_ = std::move(*w);
    }
    follow_watch(*watch_, rv, stopping_, [&](const std::string& type, const json& obj) {
      if (type == "ADDED" || type == "MODIFIED") {
        dispatch(obj);
      } else if (type == "DELETED") {
        std::shared_ptr<PodWorker> worker;
        {
          std::lock_guard lock(workers_mu_);
          auto it = workers_.find(jstr(obj, {"metadata", "uid"}));
          if (it != workers_.end()) worker = it->second;
        }
        if (worker) worker->removed();
      }
    }, "pods");
    std::lock_guard lock(watch_mu_);
    watch_.reset();
  }
}

void AgentImpl::housekeeping_loop() {
  uint64_t generation = Reaper::instance().exit_generation();
  auto next_sample = SteadyClock::now();
  bool trim = false;  // pod workers ended since the last release_free_memory()
  while (sleep_for(std::chrono::milliseconds(200))) {
    uint64_t g = Reaper::instance().exit_generation();
    std::vector<std::shared_ptr<PodWorker>> ws;
    {
      std::lock_guard lock(workers_mu_);
      for (auto it = workers_.begin(); it != workers_.end();) {
        if (it->second->finished()) {
          it->second->stop();
          it = workers_.erase(it);
          trim = true;
        } else {
          ws.push_back(it->second);
          ++it;
        }
      }
    }
    if (g != generation) {
      generation = g;
      for (auto& w : ws) w->poke();  // a shim exited: a container may have ended
    }
    if (SteadyClock::now() >= next_sample) {
      next_sample = SteadyClock::now() + std::chrono::seconds(10);
      stats_.sample(snapshots());
      if (trim) release_free_memory();  // what the finished pods' workers held (util.h)
      trim = false;
    }
  }
}

net::Response AgentImpl::real_container_logs(const std::string& ns, const std::string& pod,
                                             const std::string& container, const net::Request& request) {
  std::shared_ptr<PodWorker> worker;
  PodSnapshot snap;
  {
    std::lock_guard lock(workers_mu_);
    for (auto& [uid, w] : workers_) {
      auto s = w->snapshot();
      if (s.ns == ns && s.name == pod) {
        worker = w;
        snap = std::move(s);
      }
    }
  }
  if (!worker) return text_error(404, "pod \"" + pod + "\" does not exist");
  const PodSnapshot::Container* c = nullptr;
  for (const auto& x : snap.containers)
    if (x.name == container) c = &x;
  if (!c) return text_error(404, "container \"" + container + "\" not found in pod \"" + pod + "\"");
  bool previous = false;
  auto options = parse_log_options(
      [&](const std::string& k) -> std::optional<std::string> {
        auto v = request.param(k);
        return v ? std::optional<std::string>(std::string(*v)) : std::nullopt;
      },
      &previous);
  if (!options) return text_error(400, options.status().message());
  if (c->id.empty())
    return text_error(400, "container \"" + container + "\" in pod \"" + pod + "\" is waiting to start: ContainerCreating");
  int attempt = c->restart_count;
  if (previous) {
    if (!c->has_previous || attempt == 0)
      return text_error(400, "previous terminated container \"" + container + "\" in pod \"" + pod + "\" not found");
    attempt -= 1;
  }
  std::string path = container_log_path(o_.pod_log_dir, ns, pod, snap.uid, container, attempt);
  if (!options->follow || previous) {
    auto text = read_log(path, *options);
    if (!text) {
      if (text.status().reason() == api::Reason::NotFound) return net::Response::text(200, "");
      return text_error(500, text.status().message());
    }
    return net::Response::text(200, std::move(*text));
  }
  std::string id = c->id;
  std::weak_ptr<PodWorker> weak = worker;
  auto finished = [weak, id, container] {
    auto w = weak.lock();
    if (!w) return true;
    for (const auto& x : w->snapshot().containers)
      if (x.name == container) return x.id != id || !x.running;
    return true;
  };
  net::Response r = net::Response::text(200, "");
  r.stream = std::make_shared<LogStream>(path, *options, finished);
  return r;
}

void AgentImpl::stop() {
  {
    std::lock_guard lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
  }
  stop_cv_.notify_all();
  {
    std::lock_guard lock(watch_mu_);
    if (watch_) watch_->close();
  }
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  if (fleet_) fleet_->stop();
  std::map<std::string, std::shared_ptr<PodWorker>> ws;
  {
    std::lock_guard lock(workers_mu_);
    ws.swap(workers_);
  }
  for (auto& [uid, w] : ws) w->stop();
  if (server_) server_->stop();
  if (events_) events_->stop();
}

// ---- flags ----

bool parse_duration(const std::string& s, std::chrono::milliseconds& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  std::string unit = end ? end : "";
  double ms;
  if (unit.empty() || unit == "s") ms = v * 1000;
  else if (unit == "ms") ms = v;
  else if (unit == "m") ms = v * 60000;
  else return false;
  if (ms < 0) return false;
  out = std::chrono::milliseconds(static_cast<int64_t>(ms));
  return true;
}

}  // namespace

AgentOptions local_agent_options(const std::string& dir, const std::string& url) {
  AgentOptions o;
  o.server = url;
  o.ca_file = dir + "/pki/ca.crt";
  o.ca_key_file = dir + "/pki/ca.key";
  o.token_file = dir + "/node-token";
  o.data_dir = dir + "/agent";
  o.builtin_image = true;
  return o;
}

api::Result<std::unique_ptr<Agent>> Agent::start(AgentOptions options) {
  signal(SIGPIPE, SIG_IGN);
  auto agent = std::make_unique<AgentImpl>(std::move(options));
  if (auto st = agent->init(); !st) {
    agent->stop();
    return st;
  }
  return std::unique_ptr<Agent>(std::move(agent));
}

const char* agent_usage() {
  return "  agent    run the node agent (registers a Node and runs its pods through runc or crun)\n"
         "    --server URL              API server (default: the kubeconfig's)\n"
         "    --kubeconfig FILE         credentials and server\n"
         "    --token-file FILE         bearer token (the server's <data-dir>/node-token)\n"
         "    --ca-file FILE            CA of the API server (the server's <data-dir>/pki/ca.crt)\n"
         "    --node-name NAME          default: the host name\n"
         "    --node-ip IP              InternalIP (default: the default route's address)\n"
         "    --node-labels k=v,...     extra node labels\n"
         "    --data-dir DIR            state, bundles, images (default /var/lib/berth-agent)\n"
         "    --runtime runc|crun       OCI runtime (default runc); --runtime-path PATH\n"
         "    --pod-cidr CIDR           pod addresses on this node (default 10.88.0.0/16)\n"
         "    --insecure-registry HOST  plain-HTTP registry (repeatable)\n"
         "    --cluster-dns IP          nameserver for ClusterFirst pods\n"
         "    --max-pods N              default 110\n"
         "    --listen HOST:PORT        logs/stats endpoint (default 0.0.0.0:10250; \"\" disables)\n"
         "    --tls-cert F --tls-key F  its serving certificate; --client-ca F: CA of API server clients\n"
         "    --builtin-image           offer berth.local/busybox:1 built from busybox-static\n"
         "    --simulate                hollow nodes (nothing runs): --nodes K --node-name-prefix P\n"
         "                              --pod-start-delay 1s --sim-cpu 32 --sim-memory 256Gi\n"
         "                              --sim-pod-cpu 10m --sim-pod-memory 32Mi --sim-workers 16\n"
         "    -v                        verbose logs\n";
}

// `agent __builtin-image DATA_DIR`: builds berth.local/busybox:1 into DATA_DIR's image store.
int builtin_image_main(const std::string& data_dir) {
  auto store = images::ImageStore::open(data_dir + "/images", {});
  if (!store) {
    std::fprintf(stderr, "image store: %s\n", store.status().message().c_str());
    return 1;
  }
  auto image = images::ensure_builtin_busybox(**store, data_dir);
  if (!image) {
    std::fprintf(stderr, "%s\n", image.status().message().c_str());
    return 1;
  }
  return 0;
}

int agent_main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "__shim") == 0) return shim_main(argc - 2, argv + 2);
  if (argc == 3 && std::strcmp(argv[1], "__builtin-image") == 0) return builtin_image_main(argv[2]);
  AgentOptions o;
  std::vector<std::string> errors;
  auto need = [&](int& i, const std::string& name) -> std::string {
    if (i + 1 >= argc) {
      errors.push_back("flag --" + name + " needs a value");
      return "";
    }
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string name, value;
    bool has_value = false;
    if (a == "-v" || a == "--v") {
      set_log_level(LogLevel::Debug);
      continue;
    }
    if (!starts_with(a, "--")) {
      errors.push_back("unexpected argument \"" + a + "\"");
      continue;
    }
    name = a.substr(2);
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    auto val = [&]() { return has_value ? value : need(i, name); };
    auto integer = [&](int& out) {
      std::string v = val();
      char* end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || n < 0) errors.push_back("--" + name + " wants a non-negative integer");
      else out = static_cast<int>(n);
    };
    if (name == "simulate") { o.simulate = !has_value || value == "true"; continue; }
    if (name == "builtin-image") { o.builtin_image = !has_value || value == "true"; continue; }
    if (name == "help") {
      std::fputs(agent_usage(), stdout);
      return 0;
    }
    if (name == "server") o.server = val();
    else if (name == "kubeconfig") o.kubeconfig = val();
    else if (name == "token-file") o.token_file = val();
    else if (name == "ca-file") o.ca_file = val();
    else if (name == "node-name") o.node_name = val();
    else if (name == "node-ip") o.node_ip = val();
    else if (name == "node-labels") {
      for (const auto& kv : split(val(), ',')) {
        auto eq = kv.find('=');
        if (kv.empty()) continue;
        if (eq == std::string::npos) errors.push_back("--node-labels wants key=value pairs");
        else o.node_labels[kv.substr(0, eq)] = kv.substr(eq + 1);
      }
    } else if (name == "data-dir") o.data_dir = val();
    else if (name == "pod-log-dir") o.pod_log_dir = val();
    else if (name == "max-pods") integer(o.max_pods);
    else if (name == "runtime") o.runtime = val();
    else if (name == "runtime-path") o.runtime_path = val();
    else if (name == "cgroup-root") o.cgroup_root = val();
    else if (name == "insecure-registry") o.insecure_registries.push_back(val());
    else if (name == "pod-cidr") o.pod_cidr = val();
    else if (name == "cni-bin-dir") o.cni_bin_dir = val();
    else if (name == "bridge") o.bridge = val();
    else if (name == "cluster-dns") o.cluster_dns = val();
    else if (name == "listen") o.listen = val();
    else if (name == "tls-cert") o.tls_cert_file = val();
    else if (name == "tls-key") o.tls_key_file = val();
    else if (name == "client-ca") o.client_ca_file = val();
    else if (name == "ca-key-file") o.ca_key_file = val();
    else if (name == "nodes") integer(o.nodes);
    else if (name == "node-name-prefix") o.node_name_prefix = val();
    else if (name == "pod-start-delay") {
      std::chrono::milliseconds d;
      if (!parse_duration(val(), d)) errors.push_back("--pod-start-delay wants a duration such as 1s or 500ms");
      else o.pod_start_delay = d;
    } else if (name == "sim-cpu") o.sim_cpu = val();
    else if (name == "sim-memory") o.sim_memory = val();
    else if (name == "sim-pod-cpu") o.sim_pod_cpu_usage = val();
    else if (name == "sim-pod-memory") o.sim_pod_memory_usage = val();
    else if (name == "sim-node-cpu") o.sim_node_cpu_usage = val();
    else if (name == "sim-node-memory") o.sim_node_memory_usage = val();
    else if (name == "sim-cidr") o.sim_cidr = val();
    else if (name == "sim-workers") {
      int n = 16;
      integer(n);
      o.sim_workers = static_cast<std::size_t>(std::max(1, n));
    } else if (name == "client-connections") {
      int n = 16;
      integer(n);
      o.client_connections = static_cast<std::size_t>(std::max(1, n));
    } else if (name == "lease-duration") {
      int n = 40;
      integer(n);
      o.lease_duration = std::chrono::seconds(n);
      o.lease_renew_interval = std::chrono::milliseconds(std::max(1, n) * 250);
    } else if (name == "status-report-frequency") {
      int n = 60;
      integer(n);
      o.status_report_frequency = std::chrono::seconds(n);
    } else {
      errors.push_back("unknown flag --" + name);
    }
  }
  if (!errors.empty()) {
    for (const auto& e : errors) std::fprintf(stderr, "berth agent: %s\n", e.c_str());
    std::fputs(agent_usage(), stderr);
    return 2;
  }
  if (o.simulate && o.nodes < 1) {
    std::fprintf(stderr, "berth agent: --nodes must be at least 1\n");
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  auto agent = Agent::start(o);
  if (!agent) {
    std::fprintf(stderr, "berth agent: %s\n", agent.status().message().c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&set, &sig);
  BERTH_LOGI("stopping (signal %d); containers keep running", sig);
  (*agent)->stop();
  return 0;
}

}  // namespace berth::nodeagent
