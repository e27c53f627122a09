#include "controllers/manager.h"

#include <atomic>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "client/client.h"
#include "controllers/controller.h"

namespace berth::controllers {

const std::set<std::string>& all_controllers() {
  static const std::set<std::string> k = {"replicaset", "deployment",    "garbagecollector", "namespace",
                                          "nodelifecycle", "podgc", "scheduler", "root-ca-cert-publisher"};
  return k;
}

std::set<std::string> ControllerOptions::default_controllers() { return all_controllers(); }

api::Result<std::set<std::string>> parse_controllers(const std::string& spec) {
  static const std::map<std::string, std::string> kAliases = {
      {"replicaset-controller", "replicaset"},
      {"deployment-controller", "deployment"},
      {"garbage-collector-controller", "garbagecollector"},
      {"namespace-controller", "namespace"},
      {"node-lifecycle-controller", "nodelifecycle"},
      {"taint-eviction-controller", "nodelifecycle"},
      {"pod-garbage-collector-controller", "podgc"},
      {"root-ca-certificate-publisher-controller", "root-ca-cert-publisher"},
      {"kube-scheduler", "scheduler"},
      {"default-scheduler", "scheduler"},
  };
  std::set<std::string> enabled, disabled;
  bool star = false;
  std::stringstream ss(spec);
  std::string item;
  while (std::getline(ss, item, ',')) {
    auto b = item.find_first_not_of(" \t");
    auto e = item.find_last_not_of(" \t");
    if (b == std::string::npos) continue;
    item = item.substr(b, e - b + 1);
    if (item == "*") {
      star = true;
      continue;
    }
    bool off = item[0] == '-';
    std::string name = off ? item.substr(1) : item;
    if (auto a = kAliases.find(name); a != kAliases.end()) name = a->second;
    if (!all_controllers().count(name)) {
      std::string known;
      for (const auto& n : all_controllers()) known += (known.empty() ? "" : ", ") + n;
      return api::Status(api::Reason::BadRequest, "unknown controller \"" + name + "\" (known: " + known + ")");
    }
    (off ? disabled : enabled).insert(name);
  }
  std::set<std::string> out = star ? ControllerOptions::default_controllers() : std::set<std::string>{};
  out.insert(enabled.begin(), enabled.end());
  for (const auto& d : disabled) out.erase(d);
  return out;
}

namespace {

// Everything one leadership term runs; torn down when leading stops.
struct Term {
  std::unique_ptr<InformerFactory> informers;
  std::unique_ptr<EventSink> events;
  std::unique_ptr<Executor> executor;
  std::unique_ptr<Context> ctx;
  std::vector<std::unique_ptr<Controller>> controllers;
  bool started = false;
};

class ManagerImpl final : public Manager {
 public:
  ManagerImpl(std::shared_ptr<client::Client> client, ControllerOptions options)
      : client_(std::move(client)), options_(std::move(options)) {}

  ~ManagerImpl() override { stop(); }

  void begin() {
    if (!options_.leader_elect) {
      run_term();
      return;
    }
    elector_ = std::make_unique<LeaderElector>(
        client_, options_.leader_election, [this] { run_term(); }, [this] { end_term(); });
    elector_->start();
  }

  void stop() override {
    if (stopped_.exchange(true)) return;
    if (elector_) {
      elector_->stop();  // ends the term (on_stopped_leading), then releases the lease
      elector_.reset();
    } else {
      end_term();
    }
  }

  bool leading() const override { return leading_.load(); }
  std::string identity() const override { return elector_ ? elector_->identity() : std::string("standalone"); }

 private:
  // Starts the controllers on a thread of their own, as client-go's OnStartedLeading runs in a
  // goroutine: waiting for caches must not hold up lease renewal.
  void run_term() {
    std::lock_guard lock(mu_);
    cancel_ = false;
    runner_ = std::thread([this] {
      auto term = std::make_unique<Term>();
      term->informers = std::make_unique<InformerFactory>(client_);
      term->events = std::make_unique<EventSink>(client_, 2);
      term->executor = std::make_unique<Executor>(static_cast<std::size_t>(std::max(1, options_.api_parallelism)));
      term->ctx = std::make_unique<Context>(Context{client_, *term->informers, *term->events, *term->executor, options_});
      using Factory = std::unique_ptr<Controller> (*)(Context&);
      static const std::vector<std::pair<const char*, Factory>> kFactories = {
          {"garbagecollector", new_garbage_collector}, {"namespace", new_namespace_controller},
          {"nodelifecycle", new_node_lifecycle_controller}, {"replicaset", new_replicaset_controller},
          {"deployment", new_deployment_controller},   {"scheduler", new_scheduler},
          {"podgc", new_pod_gc}, {"root-ca-cert-publisher", new_root_ca_publisher},
      };
      std::string names;
      for (const auto& [name, make] : kFactories) {
        if (!options_.enabled.count(name)) continue;
        term->controllers.push_back(make(*term->ctx));
        if (!names.empty()) names += ',';
        names += name;
      }
      term->informers->start();
      while (!cancel_ && !term->informers->wait_synced(std::chrono::milliseconds(500))) {
      }
      if (!cancel_) {
        for (auto& c : term->controllers) c->start();
        term->started = true;
        leading_ = true;
        log('I', "controllers", "started " + (names.empty() ? std::string("no controllers") : names));
      }
      std::lock_guard l(term_mu_);
      term_ = std::move(term);
    });
  }

  void end_term() {
    std::thread runner;
    {
      std::lock_guard lock(mu_);
      cancel_ = true;
      runner = std::move(runner_);
    }
    if (runner.joinable()) runner.join();
    std::unique_ptr<Term> term;
    {
      std::lock_guard l(term_mu_);
      term = std::move(term_);
    }
    leading_ = false;
    if (!term) return;
    // Informers first (no handler runs after this), then the workers, then what they used.
    term->informers->stop();
    for (auto& c : term->controllers) c->stop();
    term->executor->stop();
    term->events->stop();
    term->controllers.clear();
    log('I', "controllers", "stopped");
  }

  std::shared_ptr<client::Client> client_;
  ControllerOptions options_;
  std::unique_ptr<LeaderElector> elector_;
  std::mutex mu_, term_mu_;
  std::thread runner_;
  std::atomic<bool> cancel_{false}, leading_{false}, stopped_{false};
  std::unique_ptr<Term> term_;
};

}  // namespace

api::Result<std::unique_ptr<Manager>> Manager::start(std::shared_ptr<client::Client> client, ControllerOptions options) {
  if (!client) return api::Status(api::Reason::BadRequest, "controllers: no API client");
  for (const auto& name : options.enabled)
    if (!all_controllers().count(name))
      return api::Status(api::Reason::BadRequest, "unknown controller \"" + name + "\"");
  auto m = std::make_unique<ManagerImpl>(std::move(client), std::move(options));
  m->begin();
  return std::unique_ptr<Manager>(std::move(m));
}

}  // namespace berth::controllers
