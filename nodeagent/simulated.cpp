#include "nodeagent/simulated.h"

#include <arpa/inet.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <queue>
#include <set>
#include <thread>
#include <unordered_map>

#include "api/quantity.h"
#include "client/client.h"
#include "nodeagent/container_spec.h"
#include "nodeagent/node_status.h"
#include "nodeagent/pod_watch.h"
#include "nodeagent/stats.h"
#include "net/http.h"

namespace berth::nodeagent {

std::string simulated_node_ip(int index) {
  // 127.1.0.1, 127.1.0.2, ... skipping .0 and .255 in the last octet.
  int host = index % 254 + 1;
  int mid = (index / 254) % 256;
  int high = 1 + index / (254 * 256);
  return "127." + std::to_string(high) + "." + std::to_string(mid) + "." + std::to_string(host);
}

namespace {

bool parse_cidr(const std::string& cidr, uint32_t& base, int& bits) {
  auto slash = cidr.find('/');
  if (slash == std::string::npos) return false;
  in_addr a{};
  if (inet_pton(AF_INET, cidr.substr(0, slash).c_str(), &a) != 1) return false;
  bits = std::atoi(cidr.c_str() + slash + 1);
  if (bits < 0 || bits > 32) return false;
  uint32_t mask = bits == 0 ? 0 : ~uint32_t(0) << (32 - bits);
  base = ntohl(a.s_addr) & mask;
  return true;
}

std::string ip_string(uint32_t host_order) {
  in_addr a{};
  a.s_addr = htonl(host_order);
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}

uint32_t ip_value(const std::string& ip) {
  in_addr a{};
  if (inet_pton(AF_INET, ip.c_str(), &a) != 1) return 0;
  return ntohl(a.s_addr);
}

}  // namespace

std::string simulated_pod_cidr(const std::string& base_cidr, int index) {
  uint32_t base;
  int bits;
  if (!parse_cidr(base_cidr, base, bits) || bits > 24) return "";
  uint64_t count = uint64_t(1) << (24 - bits);
  if (static_cast<uint64_t>(index) >= count) return "";
  return ip_string(base + (static_cast<uint32_t>(index) << 8)) + "/24";
}

json simulated_pod_status(const json& pod, const std::string& node_ip, const std::string& pod_ip, Clock::time_point now) {
  std::string t = format_time(now);
  std::string uid = jstr(pod, {"metadata", "uid"});
  json conditions = json::array();
  for (const char* type : {"PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"})
    conditions.push_back({{"type", type}, {"status", "True"}, {"lastProbeTime", nullptr}, {"lastTransitionTime", t}});
  auto container_id = [&](const std::string& name) { return "simulated://" + sha256_hex(uid + "/" + name).substr(0, 32); };
  json statuses = json::array();
  const json& containers = at(pod, {"spec", "containers"});
  if (containers.is_array()) {
    for (const auto& c : containers) {
      std::string name = jstr(c, {"name"});
      statuses.push_back({{"name", name},
                          {"image", jstr(c, {"image"})},
                          {"imageID", ""},
                          {"containerID", container_id(name)},
                          {"ready", true},
                          {"started", true},
                          {"restartCount", 0},
                          {"state", {{"running", {{"startedAt", t}}}}},
                          {"lastState", json::object()}});
    }
  }
  std::string ip = jbool(pod, {"spec", "hostNetwork"}) ? node_ip : pod_ip;
  json status = {{"phase", "Running"},
                 {"conditions", conditions},
                 {"hostIP", node_ip},
                 {"hostIPs", json::array({{{"ip", node_ip}}})},
                 {"podIP", ip},
                 {"podIPs", json::array({{{"ip", ip}}})},
                 {"startTime", t},
                 {"containerStatuses", statuses}};
  const json& inits = at(pod, {"spec", "initContainers"});
  if (inits.is_array() && !inits.empty()) {
    json init_statuses = json::array();
    for (const auto& c : inits) {
      std::string name = jstr(c, {"name"});
      bool sidecar = jstr(c, {"restartPolicy"}) == "Always";
      json state = sidecar ? json{{"running", {{"startedAt", t}}}}
                           : json{{"terminated",
                                   {{"exitCode", 0}, {"reason", "Completed"}, {"startedAt", t}, {"finishedAt", t},
                                    {"containerID", container_id(name)}}}};
      init_statuses.push_back({{"name", name},
                               {"image", jstr(c, {"image"})},
                               {"imageID", ""},
                               {"containerID", container_id(name)},
                               {"ready", sidecar},
                               {"started", sidecar},
                               {"restartCount", 0},
                               {"state", state},
                               {"lastState", json::object()}});
    }
    status["initContainerStatuses"] = init_statuses;
  }
  return status;
}

namespace {

int64_t quantity_or(const std::string& text, bool milli, int64_t fallback) {
  auto q = api::Quantity::parse(text);
  if (!q) return fallback;
  return milli ? q->milli_value() : q->value();
}

class Fleet final : public SimulatedFleet {
 public:
  Fleet(const AgentOptions& o, client::Client* c, int port) : o_(o), client_(c), port_(port) {}
  ~Fleet() override { stop(); }

  api::Status init() {
    pod_cpu_milli_ = quantity_or(o_.sim_pod_cpu_usage, true, 10);
    pod_memory_ = quantity_or(o_.sim_pod_memory_usage, false, 32 << 20);
    node_cpu_milli_ = quantity_or(o_.sim_node_cpu_usage, true, 250);
    node_memory_ = quantity_or(o_.sim_node_memory_usage, false, int64_t(1) << 30);
    memory_capacity_ = quantity_or(o_.sim_memory, false, int64_t(256) << 30);
    nodes_.resize(static_cast<std::size_t>(o_.nodes));
    for (int i = 0; i < o_.nodes; ++i) {
      Node& n = nodes_[static_cast<std::size_t>(i)];
      n.name = o_.node_name_prefix + std::to_string(i);
      n.ip = simulated_node_ip(i);
      n.cidr = simulated_pod_cidr(o_.sim_cidr, i);
      if (n.cidr.empty())
        return api::Status(api::Reason::BadRequest, "--sim-cidr " + o_.sim_cidr + " has no /24 left for node " + std::to_string(i));
      n.cidr_base = ip_value(n.cidr.substr(0, n.cidr.find('/')));
      n.used.assign(256, false);
      n.used[0] = n.used[1] = n.used[255] = true;  // network, gateway, broadcast
      node_index_[n.name] = i;
      ip_index_[n.ip] = i;
    }
    started_at_ = Clock::now();
    for (std::size_t w = 0; w < std::max<std::size_t>(1, o_.sim_workers); ++w)
      workers_.emplace_back([this] { work_loop(); });
    timer_ = std::thread([this] { timer_loop(); });

    // Register every node, in parallel on the workers, before anything else.
    auto t0 = SteadyClock::now();
    remaining_registrations_ = o_.nodes;
    for (int i = 0; i < o_.nodes; ++i) enqueue({Task::Register, i});
    {
      std::unique_lock lock(mu_);
      registered_cv_.wait(lock, [&] { return remaining_registrations_ == 0 || stopping_; });
    }
    if (registration_failures_ > 0)
      return api::Status(api::Reason::ServiceUnavailable,
                         std::to_string(registration_failures_.load()) + " simulated nodes could not register: " + first_error_);
    BERTH_LOGI("registered %d simulated nodes in %.1fs", o_.nodes,
               std::chrono::duration<double>(SteadyClock::now() - t0).count());
    // Leases and status reports, spread over their intervals.
    auto now = Clock::now();
    auto lease_every = std::chrono::duration_cast<Clock::duration>(o_.lease_renew_interval);
    auto status_every = std::chrono::duration_cast<Clock::duration>(o_.status_report_frequency);
    for (int i = 0; i < o_.nodes; ++i) {
      schedule(now + lease_every * i / o_.nodes, {Task::Lease, i});
      schedule(now + status_every * i / o_.nodes + status_every, {Task::Status, i});
    }
    watch_thread_ = std::thread([this] { pods_loop(); });
    return {};
  }

  void stop() override {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    registered_cv_.notify_all();
    {
      std::lock_guard lock(q_mu_);  // so no worker misses the wake-up
      cv_.notify_all();
      timer_cv_.notify_all();
    }
    {
      std::lock_guard lock(watch_mu_);
      if (watch_) watch_->close();
    }
    if (watch_thread_.joinable()) watch_thread_.join();
    if (timer_.joinable()) timer_.join();
    for (auto& w : workers_)
      if (w.joinable()) w.join();
  }

  net::Response container_logs(const std::string& ns, const std::string& pod, const std::string& container,
                               const net::Request&) override {
    std::lock_guard lock(mu_);
    for (const auto& [uid, p] : pods_)
      if (p.ns == ns && p.name == pod) return net::Response::text(200, "");
    return net::Response::text(404, "pod \"" + pod + "\" does not exist\n");
  }

  net::Response stats_summary(const net::Request& request) override {
    int index = -1;
    if (auto node = request.param("node")) {
      auto it = node_index_.find(std::string(*node));
      if (it != node_index_.end()) index = it->second;
    }
    if (index < 0) {
      if (auto host = request.header("host")) {
        std::string h(*host);
        if (auto colon = h.rfind(':'); colon != std::string::npos && h.find(']') == std::string::npos) h = h.substr(0, colon);
        auto it = ip_index_.find(h);
        if (it != ip_index_.end()) index = it->second;
      }
    }
    if (index < 0 && o_.nodes == 1) index = 0;
    if (index < 0)
      return net::Response::text(404, "no simulated node answers to this address; ask with ?node=<name>\n");
    const Node& n = nodes_[static_cast<std::size_t>(index)];
    auto now = Clock::now();
    double uptime = std::chrono::duration<double>(now - started_at_).count();
    json pods = json::array();
    int64_t cpu_total = node_cpu_milli_, mem_total = node_memory_;
    {
      std::lock_guard lock(mu_);
      for (const auto& [uid, p] : pods_) {
        if (p.node != index || !p.running) continue;
        int64_t cpu = p.cpu_milli >= 0 ? p.cpu_milli : pod_cpu_milli_;
        int64_t mem = p.memory >= 0 ? p.memory : pod_memory_;
        cpu_total += cpu;
        mem_total += mem;
        double ran = std::max(0.0, std::chrono::duration<double>(now - p.started).count());
        uint64_t nano = static_cast<uint64_t>(cpu) * 1000000ULL;
        MemoryUsage m{static_cast<uint64_t>(mem), static_cast<uint64_t>(mem), static_cast<uint64_t>(mem), 0, 0, true};
        json containers = json::array();
        std::size_t k = std::max<std::size_t>(1, p.containers.size());
        for (const auto& c : p.containers) {
          MemoryUsage cm{m.usage / k, m.working_set / k, m.rss / k, 0, 0, true};
          containers.push_back({{"name", c},
                                {"startTime", format_time(p.started)},
                                {"cpu", summary_cpu(now, nano / k, static_cast<uint64_t>(double(nano / k) * ran))},
                                {"memory", summary_memory(now, cm, std::nullopt)}});
        }
        pods.push_back({{"podRef", {{"name", p.name}, {"namespace", p.ns}, {"uid", uid}}},
                        {"startTime", format_time(p.started)},
                        {"containers", containers},
                        {"cpu", summary_cpu(now, nano, static_cast<uint64_t>(double(nano) * ran))},
                        {"memory", summary_memory(now, m, std::nullopt)}});
      }
    }
    uint64_t node_nano = static_cast<uint64_t>(cpu_total) * 1000000ULL;
    MemoryUsage nm{static_cast<uint64_t>(mem_total), static_cast<uint64_t>(mem_total), static_cast<uint64_t>(mem_total), 0, 0, true};
    json node = {{"nodeName", n.name},
                 {"startTime", format_time(started_at_)},
                 {"cpu", summary_cpu(now, node_nano, static_cast<uint64_t>(double(node_nano) * uptime))},
                 {"memory", summary_memory(now, nm, static_cast<uint64_t>(std::max<int64_t>(0, memory_capacity_ - mem_total)))}};
    return net::Response::text(200, json({{"node", node}, {"pods", pods}}).dump(), "application/json");
  }

 private:
  struct Node {
    std::string name, uid, ip, cidr;
    uint32_t cidr_base = 0;
    std::vector<bool> used;
    std::size_t next_ip = 0;
    std::string lease_rv;
    json last_conditions;
  };
  struct Pod {
    int node = -1;
    std::string ns, name;
    uint32_t ip = 0;
    bool running = false, scheduled = false, deleting = false;
    Clock::time_point started{};
    int64_t cpu_milli = -1, memory = -1;
    std::vector<std::string> containers;
  };
  struct Task {
    enum Kind { Register, Lease, Status, StartPod, DeletePod } kind = Register;
    int node = 0;
    std::string uid, path, body;
    int attempts = 0;
    Task() = default;
    Task(Kind k, int n, std::string u = "", std::string p = "", std::string b = "", int a = 0)
        : kind(k), node(n), uid(std::move(u)), path(std::move(p)), body(std::move(b)), attempts(a) {}
  };
  struct Timed {
    Clock::time_point at;
    uint64_t seq;
    Task task;
    bool operator>(const Timed& o) const { return at > o.at || (at == o.at && seq > o.seq); }
  };

  NodeFacts facts_for(const Node& n) const {
    NodeFacts f;
    f.name = n.name;
    f.hostname = n.name;
    f.internal_ip = n.ip;
    f.kubelet_port = port_ ? port_ : 10250;
    f.pod_cidr = n.cidr;
    f.labels = o_.node_labels;
    f.labels["node.berth.dev/simulated"] = "true";
    f.cpu = o_.sim_cpu;
    f.memory_bytes = memory_capacity_;
    f.ephemeral_storage_bytes = quantity_or(o_.sim_ephemeral_storage, false, int64_t(1) << 40);
    f.pods = o_.max_pods;
    f.hugepages = false;
    f.memory_reserved_bytes = 0;
    f.ephemeral_reserved_percent = 0;
    f.kernel_version = "simulated";
    f.os_image = "Berth simulated node";
    f.container_runtime_version = "simulated://berth";
    f.kubelet_version = kubelet_version();
    return f;
  }

  void enqueue(Task t) {
    std::lock_guard lock(q_mu_);
    ready_.push_back(std::move(t));
    cv_.notify_one();
  }

  void schedule(Clock::time_point at, Task t) {
    std::lock_guard lock(q_mu_);
    timed_.push({at, seq_++, std::move(t)});
    timer_cv_.notify_one();
  }

  void timer_loop() {
    std::unique_lock lock(q_mu_);
    while (!stopping_) {
      auto now = Clock::now();
      while (!timed_.empty() && timed_.top().at <= now) {
        ready_.push_back(timed_.top().task);
        timed_.pop();
        cv_.notify_one();
      }
      if (timed_.empty()) timer_cv_.wait_for(lock, std::chrono::milliseconds(200));
      else {
        // A copy: the queue may reallocate while we wait.
        Clock::time_point until = std::min(timed_.top().at, now + std::chrono::milliseconds(200));
        timer_cv_.wait_until(lock, until);
      }
    }
  }

  void work_loop() {
    for (;;) {
      Task t;
      {
        std::unique_lock lock(q_mu_);
        cv_.wait(lock, [&] { return stopping_ || !ready_.empty(); });
        if (stopping_) return;
        t = std::move(ready_.front());
        ready_.pop_front();
      }
      run(t);
    }
  }

  void retry(Task t, const api::Status& st) {
    ++t.attempts;
    auto delay = std::chrono::milliseconds(std::min(10000, 250 << std::min(t.attempts, 6)));
    if (t.attempts % 5 == 0) BERTH_LOGW("simulated node task failing (%d tries): %s", t.attempts, st.message().c_str());
    schedule(Clock::now() + delay, std::move(t));
  }

  void run(Task& t) {
    Node& n = nodes_[static_cast<std::size_t>(t.node)];
    switch (t.kind) {
      case Task::Register: {
        NodeFacts f = facts_for(n);
        json node = build_node(f, NodeHealth{}, Clock::now());
        node["metadata"]["annotations"]["node.berth.dev/simulated-by"] = host_name();
        auto r = client_->create("/api/v1/nodes", node);
        api::Status err;
        if (r) {
          n.uid = jstr(*r, {"metadata", "uid"});
          n.last_conditions = at(*r, {"status", "conditions"});
        } else if (r.status().reason() == api::Reason::AlreadyExists) {
          auto got = client_->get("/api/v1/nodes/" + n.name);
          if (got) {
            n.uid = jstr(*got, {"metadata", "uid"});
            json status = build_node_status(f, NodeHealth{}, at(*got, {"status", "conditions"}), Clock::now());
            auto p = client_->patch("/api/v1/nodes/" + n.name + "/status", {{"status", status}},
                                    "application/strategic-merge-patch+json");
            if (p) n.last_conditions = status["conditions"];
            else err = p.status();
          } else {
            err = got.status();
          }
        } else {
          err = r.status();
        }
        if (!err.is_ok() && t.attempts < 8 && !stopping_) {
          retry(t, err);
          return;
        }
        std::lock_guard lock(mu_);
        if (!err.is_ok()) {
          if (registration_failures_++ == 0) first_error_ = n.name + ": " + err.message();
        }
        if (--remaining_registrations_ == 0) registered_cv_.notify_all();
        return;
      }
      case Task::Lease: {
        std::string path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/" + n.name;
        json lease = build_lease(n.name, n.uid, static_cast<int>(o_.lease_duration.count()), Clock::now());
        api::Status err;
        if (n.lease_rv.empty()) {
          auto got = client_->get(path);
          if (got) n.lease_rv = jstr(*got, {"metadata", "resourceVersion"});
          else if (got.status().reason() == api::Reason::NotFound) {
            auto made = client_->create("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease);
            if (made) n.lease_rv = jstr(*made, {"metadata", "resourceVersion"});
            else err = made.status();
            reschedule_lease(t, err);
            return;
          } else {
            err = got.status();
          }
        }
        if (err.is_ok()) {
          lease["metadata"]["resourceVersion"] = n.lease_rv;
          auto r = client_->update(path, lease);
          if (r) n.lease_rv = jstr(*r, {"metadata", "resourceVersion"});
          else {
            n.lease_rv.clear();  // conflict or gone: re-read next time (soon)
            err = r.status();
          }
        }
        reschedule_lease(t, err);
        return;
      }
      case Task::Status: {
        json status = build_node_status(facts_for(n), NodeHealth{}, n.last_conditions, Clock::now());
        auto r = client_->patch("/api/v1/nodes/" + n.name + "/status", {{"status", status}},
                                "application/strategic-merge-patch+json");
        if (r) n.last_conditions = status["conditions"];
        else if (r.status().reason() == api::Reason::NotFound) {
          enqueue({Task::Register, t.node, "", "", "", 100});  // deleted: register again (no wait on it)
        }
        schedule(Clock::now() + (r ? std::chrono::duration_cast<Clock::duration>(o_.status_report_frequency)
                                   : std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(5))),
                 {Task::Status, t.node});
        return;
      }
      case Task::StartPod: {
        auto r = client_->patch(t.path, json::parse(t.body), "application/strategic-merge-patch+json");
        if (r) {
          std::lock_guard lock(mu_);
          auto it = pods_.find(t.uid);
          if (it != pods_.end()) {
            it->second.running = true;
            it->second.started = Clock::now();
          }
          ++started_pods_;
          return;
        }
        auto reason = r.status().reason();
        if (reason == api::Reason::NotFound || reason == api::Reason::Conflict || reason == api::Reason::Invalid) return;
        retry(t, r.status());
        return;
      }
      case Task::DeletePod: {
        json options = {{"apiVersion", "v1"}, {"kind", "DeleteOptions"}, {"gracePeriodSeconds", 0},
                        {"preconditions", {{"uid", t.uid}}}};
        auto r = client_->remove(t.path, options);
        if (r || r.status().reason() == api::Reason::NotFound || r.status().reason() == api::Reason::Conflict) return;
        retry(t, r.status());
        return;
      }
    }
  }

  void reschedule_lease(const Task& t, const api::Status& err) {
    if (stopping_) return;
    auto every = std::chrono::duration_cast<Clock::duration>(o_.lease_renew_interval);
    if (!err.is_ok()) {
      BERTH_LOGD("lease of %s: %s", nodes_[static_cast<std::size_t>(t.node)].name.c_str(), err.message().c_str());
      every = std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(1));
    }
    schedule(Clock::now() + every, {Task::Lease, t.node});
  }

  // The pod's IP from its node's range (the caller holds mu_).
  uint32_t allocate_ip(Node& n) {
    // .0 network, .1 gateway, .255 broadcast; round-robin over .2-.254 so addresses are not reused at once.
    for (std::size_t i = 0; i < 253; ++i) {
      std::size_t k = 2 + (n.next_ip + i) % 253;
      if (!n.used[k]) {
        n.used[k] = true;
        n.next_ip = k - 1;
        return n.cidr_base + static_cast<uint32_t>(k);
      }
    }
    return 0;
  }

  void release_ip(const Pod& p) {
    if (p.node < 0 || p.ip == 0) return;
    Node& n = nodes_[static_cast<std::size_t>(p.node)];
    uint32_t off = p.ip - n.cidr_base;
    if (off < 256) n.used[off] = false;
  }

  void handle(const std::string& type, const json& pod) {
    std::string uid = jstr(pod, {"metadata", "uid"});
    if (uid.empty()) return;
    auto node_it = node_index_.find(jstr(pod, {"spec", "nodeName"}));
    std::lock_guard lock(mu_);
    if (type == "DELETED" || node_it == node_index_.end()) {
      auto it = pods_.find(uid);
      if (it != pods_.end()) {
        release_ip(it->second);
        pods_.erase(it);
      }
      return;
    }
    int index = node_it->second;
    Node& n = nodes_[static_cast<std::size_t>(index)];
    std::string ns = jstr(pod, {"metadata", "namespace"}), name = jstr(pod, {"metadata", "name"});
    std::string path = "/api/v1/namespaces/" + ns + "/pods/" + name;
    auto [it, fresh] = pods_.try_emplace(uid);
    Pod& p = it->second;
    if (fresh) {
      p.node = index;
      p.ns = ns;
      p.name = name;
      const json& cs = at(pod, {"spec", "containers"});
      if (cs.is_array())
        for (const auto& c : cs) p.containers.push_back(jstr(c, {"name"}));
    }
    const json& ann = at(pod, {"metadata", "annotations"});
    std::string cpu = jstr(ann, {"sim.berth.dev/cpu-usage"}), mem = jstr(ann, {"sim.berth.dev/memory-usage"});
    p.cpu_milli = cpu.empty() ? -1 : quantity_or(cpu, true, -1);
    p.memory = mem.empty() ? -1 : quantity_or(mem, false, -1);
    if (at(pod, {"metadata", "deletionTimestamp"}).is_string()) {
      if (!p.deleting) {
        p.deleting = true;
        ready_push({Task::DeletePod, index, uid, path, ""});
      }
      return;
    }
    std::string phase = jstr(pod, {"status", "phase"});
    std::string pod_ip = jstr(pod, {"status", "podIP"});
    if (!p.scheduled && phase == "Running" && !pod_ip.empty()) {
      // Already running (an earlier agent started it): adopt its address.
      p.scheduled = p.running = true;
      p.started = parse_time(jstr(pod, {"status", "startTime"})).value_or(Clock::now());
      uint32_t ip = ip_value(pod_ip);
      if (ip >= n.cidr_base && ip - n.cidr_base < 256) {
        n.used[ip - n.cidr_base] = true;
        p.ip = ip;
      }
      return;
    }
    if (p.scheduled || phase == "Succeeded" || phase == "Failed") return;
    p.scheduled = true;
    std::string ip;
    if (jbool(pod, {"spec", "hostNetwork"})) {
      ip = n.ip;
    } else {
      p.ip = allocate_ip(n);
      ip = p.ip ? ip_string(p.ip) : n.ip;
    }
    auto when = Clock::now() + std::chrono::duration_cast<Clock::duration>(o_.pod_start_delay);
    json patch = {{"metadata", {{"uid", uid}}}, {"status", simulated_pod_status(pod, n.ip, ip, when)}};
    Task t{Task::StartPod, index, uid, path + "/status", patch.dump()};
    if (o_.pod_start_delay.count() <= 0) ready_push(std::move(t));
    else schedule(when, std::move(t));
  }

  void ready_push(Task t) { enqueue(std::move(t)); }

  void pods_loop() {
    std::string selector = "fieldSelector=" + net::url_encode("spec.nodeName!=");
    std::string rv;
    while (!stopping_) {
      if (rv.empty()) {
        std::string cont;
        std::set<std::string> listed;
        bool ok = true;
        auto t0 = SteadyClock::now();
        std::size_t count = 0;
        do {
          std::string path = "/api/v1/pods?" + selector + "&limit=500";
          if (!cont.empty()) path += "&continue=" + net::url_encode(cont);
          auto page = client_->get(path);
          if (!page && page.status().reason() == api::Reason::BadRequest && !selector.empty()) {
            selector.clear();  // no field selector support: filter everything here
            path = "/api/v1/pods?limit=500";
            page = client_->get(path);
          }
          if (!page) {
            BERTH_LOGW("simulated nodes: listing pods: %s", page.status().message().c_str());
            ok = false;
            break;
          }
          for (const auto& item : (*page)["items"]) {
            listed.insert(jstr(item, {"metadata", "uid"}));
            handle("ADDED", item);
            ++count;
          }
          cont = jstr(*page, {"metadata", "continue"});
          rv = jstr(*page, {"metadata", "resourceVersion"});
        } while (!cont.empty() && !stopping_);
        if (!ok) {
          rv.clear();
          std::this_thread::sleep_for(std::chrono::seconds(1));
          continue;
        }
        {
          std::lock_guard lock(mu_);
          for (auto it = pods_.begin(); it != pods_.end();) {
            if (!listed.count(it->first)) {
              release_ip(it->second);
              it = pods_.erase(it);
            } else {
              ++it;
            }
          }
        }
        BERTH_LOGI("simulated nodes: listed %zu bound pods in %.1fs", count,
                   std::chrono::duration<double>(SteadyClock::now() - t0).count());
      }
      std::string path = "/api/v1/pods?";
      if (!selector.empty()) path += selector + "&";
      path += "resourceVersion=" + rv + "&allowWatchBookmarks=true";
      auto w = client_->watch(path);
      if (!w) {
        if (w.status().reason() == api::Reason::Gone || w.status().reason() == api::Reason::Expired) rv.clear();
        BERTH_LOGW("simulated nodes: watching pods: %s", w.status().message().c_str());
        std::this_thread::sleep_for(std::chrono::seconds(1));
        continue;
      }
      {
        std::lock_guard lock(watch_mu_);
        if (stopping_) return;
        watch_ = std::move(*w);
      }
      follow_watch(*watch_, rv, stopping_, [&](const std::string& type, const json& obj) { handle(type, obj); },
                   "simulated nodes: pods");
      std::lock_guard lock(watch_mu_);
      watch_.reset();
    }
  }

  AgentOptions o_;
  client::Client* client_;
  int port_;
  int64_t pod_cpu_milli_ = 10, pod_memory_ = 32 << 20, node_cpu_milli_ = 250, node_memory_ = 1 << 30;
  int64_t memory_capacity_ = 0;
  Clock::time_point started_at_;
  std::vector<Node> nodes_;
  std::unordered_map<std::string, int> node_index_, ip_index_;

  std::mutex mu_;  // pods_, IP allocation, registration counters
  std::unordered_map<std::string, Pod> pods_;
  std::condition_variable registered_cv_;
  int remaining_registrations_ = 0;
  std::atomic<int> registration_failures_{0};
  std::string first_error_;
  std::atomic<uint64_t> started_pods_{0};

  std::mutex q_mu_;
  std::condition_variable cv_, timer_cv_;
  std::deque<Task> ready_;
  std::priority_queue<Timed, std::vector<Timed>, std::greater<Timed>> timed_;
  uint64_t seq_ = 0;
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> workers_;
  std::thread timer_, watch_thread_;
  std::mutex watch_mu_;
  std::unique_ptr<client::WatchStream> watch_;
};

}  // namespace

api::Result<std::unique_ptr<SimulatedFleet>> SimulatedFleet::start(const AgentOptions& options, client::Client* client,
                                                                   int endpoint_port) {
  auto fleet = std::make_unique<Fleet>(options, client, endpoint_port);
  if (auto st = fleet->init(); !st) {
    fleet->stop();
    return st;
  }
  return std::unique_ptr<SimulatedFleet>(std::move(fleet));
}

}  // namespace berth::nodeagent
