#include "nodeagent/events.h"

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "client/client.h"

namespace berth::nodeagent {

std::string container_field_path(const json& pod, const std::string& container) {
  const json& inits = at(pod, {"spec", "initContainers"});
  if (inits.is_array())
    for (const auto& c : inits)
      if (jstr(c, {"name"}) == container) return "spec.initContainers{" + container + "}";
  return "spec.containers{" + container + "}";
}

namespace {

struct Pending {
  json involved;
  std::string type, reason, message, ns;
  Clock::time_point when;
};

class Recorder final : public EventRecorder {
 public:
  Recorder(client::Client* c, std::string node) : client_(c), node_(std::move(node)) {
    thread_ = std::thread([this] { loop(); });
  }
  ~Recorder() override { stop(); }

  void pod_event(const json& pod, const std::string& field_path, const std::string& type, const std::string& reason,
                 const std::string& message) override {
    json involved = {{"kind", "Pod"},
                     {"namespace", jstr(pod, {"metadata", "namespace"})},
                     {"name", jstr(pod, {"metadata", "name"})},
                     {"uid", jstr(pod, {"metadata", "uid"})},
                     {"apiVersion", "v1"},
                     {"resourceVersion", jstr(pod, {"metadata", "resourceVersion"})}};
    if (!field_path.empty()) involved["fieldPath"] = field_path;
    push({involved, type, reason, message, jstr(pod, {"metadata", "namespace"}), Clock::now()});
  }

  void node_event(const std::string& node, const std::string& type, const std::string& reason,
                  const std::string& message) override {
    // The kubelet refers to its node with the node name as the UID.
    json involved = {{"kind", "Node"}, {"name", node}, {"uid", node}, {"apiVersion", "v1"}};
    push({involved, type, reason, message, "default", Clock::now()});
  }

  void stop() override {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void push(Pending p) {
    if (!client_) return;
    std::lock_guard lock(mu_);
    if (queue_.size() > 1000) return;  // the API is not keeping up; events are best effort
    queue_.push_back(std::move(p));
    cv_.notify_one();
  }

  void loop() {
    for (;;) {
      Pending p;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping with nothing left
        p = std::move(queue_.front());
        queue_.pop_front();
      }
      send(p);
    }
  }

  void send(const Pending& p) {
    // client-go's aggregation key: the object (not its resourceVersion), type, reason, message.
    json who = p.involved;
    who.erase("resourceVersion");
    std::string key = who.dump() + "|" + p.type + "|" + p.reason + "|" + p.message;
    std::string when = format_time(p.when);
    auto it = seen_.find(key);
    if (it != seen_.end() && p.when - it->second.last < std::chrono::minutes(10)) {
      it->second.count++;
      it->second.last = p.when;
      json patch = {{"count", it->second.count}, {"lastTimestamp", when}};
      auto r = client_->patch("/api/v1/namespaces/" + p.ns + "/events/" + it->second.name, patch);
      if (r) return;
    }
    std::string base = jstr(p.involved, {"name"});
    char suffix[32];
    std::snprintf(suffix, sizeof(suffix), ".%llx",
                  static_cast<unsigned long long>(
                      std::chrono::duration_cast<std::chrono::nanoseconds>(p.when.time_since_epoch()).count()));
    std::string name = base + suffix;
    json event = {{"apiVersion", "v1"},
                  {"kind", "Event"},
                  {"metadata", {{"name", name}, {"namespace", p.ns}}},
                  {"involvedObject", p.involved},
                  {"reason", p.reason},
                  {"message", p.message},
                  {"source", {{"component", "kubelet"}, {"host", node_}}},
                  {"firstTimestamp", when},
                  {"lastTimestamp", when},
                  {"count", 1},
                  {"type", p.type},
                  {"eventTime", nullptr},
                  {"reportingComponent", "kubelet"},
                  {"reportingInstance", node_}};
    auto r = client_->create("/api/v1/namespaces/" + p.ns + "/events", event);
    if (!r) {
      BERTH_LOGD("event %s/%s not recorded: %s", p.ns.c_str(), name.c_str(), r.status().message().c_str());
      return;
    }
    seen_[key] = {name, 1, p.when};
    if (seen_.size() > 4096) {
      for (auto s = seen_.begin(); s != seen_.end();) {
        if (p.when - s->second.last > std::chrono::minutes(10)) s = seen_.erase(s);
        else ++s;
      }
    }
  }

  struct Seen {
    std::string name;
    int64_t count;
    Clock::time_point last;
  };

  client::Client* client_;
  std::string node_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  std::map<std::string, Seen> seen_;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<EventRecorder> EventRecorder::create(client::Client* client, std::string node_name) {
  return std::make_unique<Recorder>(client, std::move(node_name));
}

}  // namespace berth::nodeagent
