// berth: one binary for the control plane and the node agent.
//   berth server  [--data-dir D] [--listen HOST:PORT] [--tls-san NAME]... [--token-auth-file F]
//                 [--compaction-window SECONDS]
#include <limits.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <map>
#include <string>
#include <vector>

#include "apiserver/server.h"
#include "controllers/run.h"
#include "nodeagent/agent.h"
#include "nodeagent/util.h"
#include "nodeagent/images/images.h"

// berth allocates through jemalloc (linked in, see meson.build). Under glibc's malloc the API
// server spent ~20% of its CPU per pod create in malloc and free: io threads, fibers and store
// threads contend for arenas and free each other's objects. Freed pages go back to the system
// after a few seconds from jemalloc's background thread, so a server that answered a 50 MB list
// shrinks again when idle.
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "background_thread:true,max_background_threads:1,dirty_decay_ms:5000,muzzy_decay_ms:0";
}

namespace {

struct Args {
  std::string command;
  std::multimap<std::string, std::string> flags;
  std::vector<std::string> positional;
  std::string error;

  std::string get(const std::string& name, const std::string& fallback = "") const {
    auto it = flags.find(name);
    return it == flags.end() ? fallback : it->second;
  }
  std::vector<std::string> all(const std::string& name) const {
    std::vector<std::string> out;
    auto [a, b] = flags.equal_range(name);
    for (auto it = a; it != b; ++it) out.push_back(it->second);
    return out;
  }
  bool has(const std::string& name) const { return flags.count(name) > 0; }
};

// --name value, --name=value; names listed in bool_flags take no value.
Args parse(int argc, char** argv, const std::vector<std::string>& bool_flags) {
  Args a;
  if (argc < 2) return a;
  a.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string s = argv[i];
    if (s.rfind("--", 0) != 0) {
      a.positional.push_back(s);
      continue;
    }
    std::string name = s.substr(2), value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (std::find(bool_flags.begin(), bool_flags.end(), name) != bool_flags.end()) {
      value = "true";
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      a.error = "flag --" + name + " needs a value";
    }
    a.flags.emplace(name, value);
  }
  return a;
}

void usage() {
  std::fputs(
      "usage: berth <command> [flags]\n"
      "\n"
      "commands:\n"
      "  server   run the API server (and its controllers)\n"
      "    --data-dir DIR          state, certificates and kubeconfig (default /var/lib/berth)\n"
      "    --listen HOST:PORT      HTTPS address (default 127.0.0.1:6443)\n"
      "    --tls-san NAME          extra DNS name or IP for the serving certificate (repeatable)\n"
      "    --token-auth-file F     static bearer tokens: token,user,uid,\"group1,group2\"\n"
      "    --compaction-window S   seconds of history kept for watches (default 300)\n"
      "    --default-not-ready-toleration-seconds S, --default-unreachable-toleration-seconds S\n"
      "                            tolerationSeconds of the NoExecute tolerations pods get (300)\n"
      "    --no-controllers        do not run the controllers in this process\n"
      "  controllers  run only the controllers against --kubeconfig F (leader-elected)\n"
      "  image import FILE [--data-dir D]  load an OCI layout or archive into an agent's image store\n"
      "           (berth up's agent keeps its data in <data-dir>/agent)\n"
      "  up       the server and a local node agent in one process (server flags, plus\n"
      "           --node-name, --node-ip, --runtime, --insecure-registry, --pod-cidr, --agent-listen)\n"
      "  version  print the version\n",
      stderr);
  std::fputs(berth::controllers::kControllerFlagsHelp, stderr);
  std::fputs(berth::nodeagent::agent_usage(), stderr);
}

// Blocks the stop signals in every thread; the main thread waits for them with sigwait.
sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

bool parse_seconds(const std::string& s, long& out) {
  char* end = nullptr;
  out = std::strtol(s.c_str(), &end, 10);
  return !s.empty() && end && *end == '\0' && out > 0;
}

std::function<std::optional<std::string>(const std::string&)> flag_reader(const Args& args) {
  return [&args](const std::string& name) -> std::optional<std::string> {
    if (!args.has(name)) return std::nullopt;
    return args.get(name);
  };
}

// `berth controllers`: the controllers alone, against any API server.
int run_controllers(const Args& args) {
  std::string kubeconfig = args.get("kubeconfig");
  if (kubeconfig.empty()) {
    std::fprintf(stderr, "berth controllers: --kubeconfig is required\n");
    return 2;
  }
  auto options = berth::controllers::options_from_flags(flag_reader(args));
  if (!options) {
    std::fprintf(stderr, "berth controllers: %s\n", options.status().message().c_str());
    return 2;
  }
  sigset_t signals = block_stop_signals();
  auto manager = berth::controllers::start_with_kubeconfig(kubeconfig, std::move(*options));
  if (!manager) {
    std::fprintf(stderr, "berth controllers: %s\n", manager.status().message().c_str());
    return 1;
  }
  std::fprintf(stderr, "I berth controllers running as %s\n", (*manager)->identity().c_str());
  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "I berth controllers stopping (signal %d)\n", sig);
  (*manager)->stop();
  return 0;
}

// `berth image import FILE`: loads an OCI layout or archive into a node agent's image store,
// for machines without a registry (pods then run with imagePullPolicy: Never or IfNotPresent).
int run_image(const Args& args) {
  if (args.positional.size() != 2 || args.positional[0] != "import") {
    std::fprintf(stderr, "usage: berth image import FILE [--data-dir AGENT-DATA-DIR]\n");
    return 2;
  }
  std::string dir = args.get("data-dir", "/var/lib/berth-agent");
  auto store = berth::nodeagent::images::ImageStore::open(dir + "/images", {});
  if (!store) {
    std::fprintf(stderr, "berth image import: %s\n", store.status().message().c_str());
    return 1;
  }
  auto imported = berth::nodeagent::images::import_image(**store, args.positional[1]);
  if (!imported) {
    std::fprintf(stderr, "berth image import: %s\n", imported.status().message().c_str());
    return 1;
  }
  for (const auto& image : *imported)
    std::printf("%s %s\n", image.ref.empty() ? "<unnamed>" : image.ref.c_str(), image.digest.c_str());
  return 0;
}

int run_server(const Args& args, bool with_agent = false) {
  berth::apiserver::ServerConfig config;
  config.data_dir = args.get("data-dir", config.data_dir);
  config.listen = args.get("listen", config.listen);
  config.tls_sans = args.all("tls-san");
  config.token_auth_file = args.get("token-auth-file");
  if (args.has("compaction-window")) {
    long s = 0;
    if (!parse_seconds(args.get("compaction-window"), s)) {
      std::fprintf(stderr, "berth server: --compaction-window wants a positive number of seconds\n");
      return 2;
    }
    config.compaction_window = std::chrono::seconds(s);
  }
  for (auto [flag, target] : {std::pair{"default-not-ready-toleration-seconds", &config.default_not_ready_toleration_seconds},
                              std::pair{"default-unreachable-toleration-seconds",
                                        &config.default_unreachable_toleration_seconds}}) {
    if (!args.has(flag)) continue;
    char* end = nullptr;
    std::string value = args.get(flag);
    long long n = std::strtoll(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || n < 0) {
      std::fprintf(stderr, "berth server: --%s wants a number of seconds (0 or more)\n", flag);
      return 2;
    }
    *target = n;
  }
  bool with_controllers = !args.has("no-controllers");
  berth::controllers::ControllerOptions controller_options;
  if (with_controllers) {
    auto options = berth::controllers::options_from_flags(flag_reader(args));
    if (!options) {
      std::fprintf(stderr, "berth server: %s\n", options.status().message().c_str());
      return 2;
    }
    controller_options = std::move(*options);
  }
  sigset_t signals = block_stop_signals();
  auto server = berth::apiserver::ApiServer::start(config);
  if (!server) {
    std::fprintf(stderr, "berth server: %s\n", server.status().message().c_str());
    return 1;
  }
  std::fprintf(stderr, "I berth server listening on %s; kubeconfig %s\n", (*server)->url().c_str(),
               (*server)->kubeconfig_path().c_str());
  std::unique_ptr<berth::nodeagent::Agent> agent;
  if (with_agent) {
    // `berth up`: a node agent beside the server, joined with the server's CA, token and CA key.
    auto o = berth::nodeagent::local_agent_options(config.data_dir, (*server)->url());
    o.node_name = args.get("node-name", o.node_name);
    o.runtime = args.get("runtime", o.runtime);
    o.pod_cidr = args.get("pod-cidr", o.pod_cidr);
    o.listen = args.get("agent-listen", o.listen);
    o.node_ip = args.get("node-ip", o.node_ip);
    if (o.node_ip.empty()) {
      // An agent endpoint on one address is where the server must reach it (logs, exec).
      std::string host = o.listen.substr(0, o.listen.rfind(':'));
      if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
      if (!host.empty() && host != "0.0.0.0" && host != "::" && host.find_first_not_of("0123456789.:abcdefABCDEF") == std::string::npos)
        o.node_ip = host;
    }
    for (const auto& r : args.all("insecure-registry")) o.insecure_registries.push_back(r);
    auto started = berth::nodeagent::Agent::start(o);
    if (!started) {
      std::fprintf(stderr, "berth up: node agent: %s\n", started.status().message().c_str());
      (*server)->stop();
      return 1;
    }
    agent = std::move(*started);
  }
  // Controllers are a client of the API like any other, here in the same process.
  std::unique_ptr<berth::controllers::Manager> controllers;
  if (with_controllers) {
    auto manager = berth::controllers::start_with_kubeconfig((*server)->kubeconfig_path(), controller_options);
    if (!manager) {
      std::fprintf(stderr, "berth server: controllers: %s\n", manager.status().message().c_str());
      if (agent) agent->stop();
      (*server)->stop();
      return 1;
    }
    controllers = std::move(*manager);
  }
  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "I berth server stopping (signal %d)\n", sig);
  if (agent) agent->stop();  // containers keep running; the next start adopts them
  if (controllers) controllers->stop();  // hands the lease over while the API still answers
  (*server)->stop();
  std::fprintf(stderr, "I berth server stopped\n");
  return 0;
}

}  // namespace

// `berth agent` runs build/berth-agent when it sits beside berth: the same agent without the
// server's libraries mapped (less memory, faster shims). The build links berth after
// berth-agent (meson.build), so a berth-agent beside a freshly built berth is never older.
// BERTH_AGENT_IN_PROCESS=1 keeps the agent in this binary.
void run_agent_binary_beside(char** argv) {
  if (const char* v = std::getenv("BERTH_AGENT_IN_PROCESS"); v && *v && std::strcmp(v, "0") != 0) return;
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return;
  std::string path(self, static_cast<std::size_t>(n));
  path = path.substr(0, path.rfind('/') + 1) + "berth-agent";
  if (::access(path.c_str(), X_OK) != 0) return;
  argv[0] = path.data();
  ::execv(path.c_str(), argv);  // returns only on failure: then the agent runs here
}

int main(int argc, char** argv) {
  // The agent parses its own flags (boolean ones like --simulate), and runs its container shims.
  if (argc > 1 && std::strcmp(argv[1], "agent") == 0) {
    run_agent_binary_beside(argv);
    berth::nodeagent::tune_agent_memory();  // a node agent alone: small heap (see util.h)
    return berth::nodeagent::agent_main(argc - 1, argv + 1);
  }
  Args args = parse(argc, argv, {"help", "no-controllers"});
  if (!args.error.empty()) {
    std::fprintf(stderr, "berth: %s\n", args.error.c_str());
    return 2;
  }
  if (args.has("help")) {  // `berth server --help` prints the usage; it must not start a server
    usage();
    return 0;
  }
  if (args.command == "server") return run_server(args);
  if (args.command == "up") return run_server(args, /*with_agent=*/true);
  if (args.command == "controllers") return run_controllers(args);
  if (args.command == "image") return run_image(args);
  if (args.command == "version" || args.command == "--version") {
    std::printf("berth %s (Kubernetes v1.32 API)\n", BERTH_VERSION);
    return 0;
  }
  usage();
  return args.command.empty() || args.command == "help" || args.command == "--help" ? 0 : 2;
}
