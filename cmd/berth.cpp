// berth: one binary for the control plane and the node agent.
//   berth server  [--data-dir D] [--listen HOST:PORT] [--tls-san NAME]... [--token-auth-file F]
//                 [--compaction-window SECONDS]
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "apiserver/server.h"

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
      "  version  print the version\n",
      stderr);
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

int run_server(const Args& args) {
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
  sigset_t signals = block_stop_signals();
  auto server = berth::apiserver::ApiServer::start(config);
  if (!server) {
    std::fprintf(stderr, "berth server: %s\n", server.status().message().c_str());
    return 1;
  }
  std::fprintf(stderr, "I berth server listening on %s; kubeconfig %s\n", (*server)->url().c_str(),
               (*server)->kubeconfig_path().c_str());
  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "I berth server stopping (signal %d)\n", sig);
  (*server)->stop();
  std::fprintf(stderr, "I berth server stopped\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parse(argc, argv, {"help"});
  if (!args.error.empty()) {
    std::fprintf(stderr, "berth: %s\n", args.error.c_str());
    return 2;
  }
  if (args.command == "server") return run_server(args);
  if (args.command == "version" || args.command == "--version") {
    std::printf("berth %s (Kubernetes v1.32 API)\n", BERTH_VERSION);
    return 0;
  }
  usage();
  return args.command.empty() || args.command == "help" || args.command == "--help" ? 0 : 2;
}
