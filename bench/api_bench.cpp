// API benchmark: a real `berth server` (durable store, as shipped) in a child process with a
// fresh data directory, driven over HTTPS with keep-alive: creates, gets and bindings by 64
// connections on event loops (bench/load.h), lists and watches through the API client.
//   build/bench/api_bench [path/to/berth] [--creates-only]    (default build/berth)
// --creates-only stops after the create figures: a quicker A/B of the write path.
// Prints one `name: value unit` line per figure; diagnostics go to stderr. Never asserts timings.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_pod.h"
#include "bench/load.h"
#include "client/client.h"

using berth::client::Client;
using berth::client::Config;
using berth::bench::LoadOptions;
using berth::bench::LoadResult;
using berth::bench::make_pod;
using berth::bench::run_load;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

extern char** environ;

namespace {

constexpr int kClients = 64;
constexpr int kListPods = 10000;
constexpr int kWatchers = 1000;
constexpr int kWatchWrites = 20;
const char kTableAccept[] = "application/json;as=Table;v=v1;g=meta.k8s.io";

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return v[i];
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// CPU seconds (user + system) a process has used so far: the server's cost per request,
// which, unlike throughput, hardly depends on who else shares the machine.
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> fields;
  std::size_t pos = close + 2;
  while (pos < text.size()) {
    auto space = text.find(' ', pos);
    if (space == std::string::npos) space = text.size();
    fields.push_back(text.substr(pos, space - pos));
    pos = space + 1;
  }
  if (fields.size() < 13) return 0;
  // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the command.
  return (std::stod(fields[11]) + std::stod(fields[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct CpuMeter {
  pid_t server;
  double server0, self0;
  explicit CpuMeter(pid_t s) : server(s), server0(cpu_seconds(s)), self0(cpu_seconds(getpid())) {}
  void report(const char* what, std::size_t n) {
    if (n == 0) return;
    double s = cpu_seconds(server) - server0, c = cpu_seconds(getpid()) - self0;
    std::fprintf(stderr, "api_bench: %s: server CPU %.0f us each, bench (client) CPU %.0f us each\n", what,
                 s * 1e6 / static_cast<double>(n), c * 1e6 / static_cast<double>(n));
  }
};

// The server child and its data directory; both gone when this goes.
struct Server {
  std::string dir;
  pid_t pid = -1;

  ~Server() { stop(); }

  void stop() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      int status = 0;
      auto start = Clock::now();
      while (waitpid(pid, &status, WNOHANG) == 0) {
        if (seconds_since(start) > 15) {
          std::fprintf(stderr, "api_bench: server did not stop on SIGTERM; killing it\n");
          kill(pid, SIGKILL);
          waitpid(pid, &status, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
        std::fprintf(stderr, "api_bench: the server died of signal %d while stopping\n", WTERMSIG(status));
      else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        std::fprintf(stderr, "api_bench: the server exited with %d while stopping\n", WEXITSTATUS(status));
      pid = -1;
    }
    if (!dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
      dir.clear();
    }
  }

  void print_log_tail() {
    std::ifstream in(dir + "/server.log");
    std::string line;
    std::vector<std::string> lines;
    while (std::getline(in, line)) lines.push_back(line);
    for (std::size_t i = lines.size() > 20 ? lines.size() - 20 : 0; i < lines.size(); ++i)
      std::fprintf(stderr, "  server: %s\n", lines[i].c_str());
  }
};

[[noreturn]] void die(Server& server, const std::string& message) {
  std::fprintf(stderr, "api_bench: %s\n", message.c_str());
  server.print_log_tail();
  server.stop();
  std::exit(1);
}

// Starts `berth server` on a free port and waits for the kubeconfig it writes once it listens.
Config start_server(Server& server, const std::string& berth) {
  char tmpl[] = "/tmp/berth-api-bench-XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::perror("api_bench: mkdtemp");
    std::exit(1);
  }
  server.dir = tmpl;
  const std::string data = server.dir + "/data", log = server.dir + "/server.log";
  // The API alone: with controllers, the scheduler would also write a status and an event
  // for every benchmark pod (there are no nodes), measuring them rather than the API.
  std::vector<std::string> args = {berth, "server", "--data-dir", data, "--listen", "127.0.0.1:0", "--no-controllers"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  int rc = posix_spawn(&server.pid, berth.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    server.pid = -1;
    die(server, "cannot start " + berth + ": " + std::strerror(rc));
  }
  std::fprintf(stderr, "api_bench: server pid %d, data %s\n", static_cast<int>(server.pid), data.c_str());

  auto start = Clock::now();
  const std::string kubeconfig = data + "/kubeconfig";
  for (;;) {
    int status = 0;
    if (waitpid(server.pid, &status, WNOHANG) == server.pid) {
      server.pid = -1;
      die(server, "the server exited during start-up");
    }
    if (std::filesystem::exists(kubeconfig)) break;
    if (seconds_since(start) > 30) die(server, "no kubeconfig after 30 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto config = berth::client::load_kubeconfig(kubeconfig);
  if (!config) die(server, "kubeconfig: " + config.status().message());
  std::fprintf(stderr, "api_bench: server at %s after %.0f ms\n", config->server.c_str(), ms_since(start));
  return *config;
}

// The body of make_pod(name) as text around the name, so the 64 clients spend their (shared)
// CPU on TLS and HTTP rather than on building JSON.
struct PodBody {
  std::string before, after;
  PodBody() {
    const std::string marker = "NAME-MARKER-7f3a";
    std::string text = make_pod(marker).dump();
    auto at = text.find(marker);
    before = text.substr(0, at);
    after = text.substr(at + marker.size());
  }
  void build(const std::string& name, std::string& out) const {
    out.clear();
    out.reserve(before.size() + name.size() + after.size());
    out += before;
    out += name;
    out += after;
  }
};

std::unique_ptr<Client> make_client(Server& server, Config config) {
  auto c = Client::create(std::move(config));
  if (!c) die(server, "client: " + c.status().message());
  return std::move(*c);
}

void ensure_namespace(Server& server, Client& c, const std::string& name) {
  auto r = c.create("/api/v1/namespaces", {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}});
  if (!r && r.status().reason() != berth::api::Reason::AlreadyExists)
    die(server, "creating namespace " + name + ": " + r.status().message());
}

struct Errors {
  std::mutex mu;
  std::size_t count = 0;
  std::string first;
  void add(const berth::api::Status& s) {
    std::lock_guard lock(mu);
    if (count++ == 0) first = s.message();
  }
  void report(const char* phase) {
    if (count) std::fprintf(stderr, "api_bench: %s: %zu errors, first: %s\n", phase, count, first.c_str());
  }
};

// The end of a load phase: its errors and CPU figures on stderr; the answers' latencies. A
// phase whose connections never opened (no CPU meter started) ends the run.
const std::vector<double>& finish_phase(Server& server, const char* phase, const LoadResult& result,
                                        std::optional<CpuMeter>& cpu) {
  if (result.errors)
    std::fprintf(stderr, "api_bench: %s: %zu errors, first: %s\n", phase, result.errors, result.first_error.c_str());
  if (!cpu) die(server, std::string(phase) + ": " + result.first_error);
  cpu->report(phase, result.latencies_ms.size());
  return result.latencies_ms;
}

}  // namespace

int main(int argc, char** argv) {
  std::string berth = argc > 1 ? argv[1] : "build/berth";
  const bool creates_only = argc > 2 && std::string(argv[2]) == "--creates-only";
  // 1,000 watch connections on each side of the loopback.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  signal(SIGPIPE, SIG_IGN);

  const auto bench_start = Clock::now();
  Server server;
  Config config = start_server(server, berth);
  config.max_connections = kClients + 8;
  config.timeout = std::chrono::seconds(30);
  config.user_agent = "berth-api-bench";
  auto client = make_client(server, config);
  for (const char* ns : {"bench", "bench-more", "bench-watch"}) ensure_namespace(server, *client, ns);

  // ---- creates: 64 clients; the first 10,000 pods go to "bench" for the list figures ----
  LoadOptions load;
  load.config = config;
  load.connections = kClients;
  {
    std::atomic<int> next{0};
    Clock::time_point start;
    std::optional<CpuMeter> cpu;
    const PodBody pod_body;
    // At least 10,000 pods and 5 s of load; never more than 60 s.
    auto result = run_load(
        load,
        [&](std::string& method, std::string& path, std::string& body) {
          const double s = seconds_since(start);
          const int i = next.fetch_add(1);
          if (s >= 60 || (i >= kListPods && s >= 5)) return false;
          method = "POST";
          path = i < kListPods ? "/api/v1/namespaces/bench/pods" : "/api/v1/namespaces/bench-more/pods";
          pod_body.build("pod-" + std::to_string(i), body);
          return true;
        },
        201,
        [&] {
          cpu.emplace(server.pid);
          start = Clock::now();
        });
    const auto& all = finish_phase(server, "create", result, cpu);
    std::fprintf(stderr, "api_bench: %zu pods created in %.1f s (%zu bytes each)\n", all.size(), result.seconds,
                 make_pod("pod-0").dump().size());
    std::printf("api_pod_create_64_clients: %.0f creates/s\n", static_cast<double>(all.size()) / result.seconds);
    std::printf("api_pod_create_p50: %.2f ms\n", percentile(all, 0.50));
    std::printf("api_pod_create_p99: %.2f ms\n", percentile(all, 0.99));
    std::fflush(stdout);
  }
  if (creates_only) {
    server.stop();
    return 0;
  }

  // ---- gets: 64 clients, random pods of the listed namespace, 5 s ----
  {
    Clock::time_point start;
    std::optional<CpuMeter> cpu;
    std::atomic<unsigned> seed{1};
    auto result = run_load(
        load,
        [&](std::string& method, std::string& path, std::string&) {
          if (seconds_since(start) >= 5) return false;
          thread_local std::mt19937 rng(seed.fetch_add(1));
          method = "GET";
          path = "/api/v1/namespaces/bench/pods/pod-" + std::to_string(rng() % kListPods);
          return true;
        },
        200,
        [&] {
          cpu.emplace(server.pid);
          start = Clock::now();
        });
    const auto& all = finish_phase(server, "get", result, cpu);
    std::printf("api_pod_get_64_clients: %.0f gets/s\n", static_cast<double>(all.size()) / result.seconds);
    std::printf("api_pod_get_p99: %.2f ms\n", percentile(all, 0.99));
    std::fflush(stdout);
  }


  // ---- lists: the 10,000 pods of one namespace, as JSON and as a Table (median of 3) ----
  for (bool table : {false, true}) {
    std::vector<double> times;
    for (int run = 0; run < 3; ++run) {
      auto t0 = Clock::now();
      std::vector<std::pair<std::string, std::string>> headers;
      if (table) headers.emplace_back("Accept", kTableAccept);
      auto r = client->request("GET", "/api/v1/namespaces/bench/pods", "", "", headers);
      double ms = ms_since(t0);
      if (!r.ok() || r->status != 200) {
        std::fprintf(stderr, "api_bench: list failed: %s\n",
                     (r.ok() ? berth::client::status_from(*r) : r.status()).message().c_str());
        continue;
      }
      times.push_back(ms);
      if (run == 0) {
        json body = json::parse(r->body, nullptr, false);
        std::size_t n = table ? body["rows"].size() : body["items"].size();
        std::fprintf(stderr, "api_bench: list%s: %zu items, %.1f MiB\n", table ? " (Table)" : "", n,
                     static_cast<double>(r->body.size()) / (1024.0 * 1024.0));
        if (n != kListPods) std::fprintf(stderr, "api_bench: warning: expected %d items\n", kListPods);
      }
    }
    std::printf("%s: %.1f ms\n", table ? "api_list_10000_pods_table" : "api_list_10000_pods_json",
                percentile(times, 0.5));
    std::fflush(stdout);
  }

  // ---- bindings: 64 clients bind the listed pods to nodes, as the scheduler does ----
  {
    std::atomic<int> next{0};
    std::optional<CpuMeter> cpu;
    auto result = run_load(
        load,
        [&](std::string& method, std::string& path, std::string& body) {
          const int i = next.fetch_add(1);
          if (i >= kListPods) return false;
          const std::string name = "pod-" + std::to_string(i);
          method = "POST";
          path = "/api/v1/namespaces/bench/pods/" + name + "/binding";
          body = R"({"apiVersion":"v1","kind":"Binding","metadata":{"name":")" + name +
                 R"("},"target":{"apiVersion":"v1","kind":"Node","name":"node-)" + std::to_string(i % 100) + R"("}})";
          return true;
        },
        201, [&] { cpu.emplace(server.pid); });
    const auto& all = finish_phase(server, "binding", result, cpu);
    std::printf("api_pod_binding_64_clients: %.0f bindings/s\n", static_cast<double>(all.size()) / result.seconds);
    std::printf("api_pod_binding_p99: %.2f ms\n", percentile(all, 0.99));
    std::fflush(stdout);
  }

  // ---- watch: 1,000 streams on one namespace, then timed writes into it ----
  {
    std::vector<std::unique_ptr<berth::client::WatchStream>> streams(kWatchers);
    auto open_start = Clock::now();
    {
      std::atomic<int> next{0};
      Errors errors;
      std::vector<std::thread> openers;
      for (int t = 0; t < 8; ++t) {
        openers.emplace_back([&] {
          for (int i; (i = next.fetch_add(1)) < kWatchers;) {
            auto w = client->watch("/api/v1/namespaces/bench-watch/pods");
            if (w.ok())
              streams[i] = std::move(*w);
            else
              errors.add(w.status());
          }
        });
      }
      for (auto& t : openers) t.join();
      errors.report("watch open");
    }
    int open = static_cast<int>(std::count_if(streams.begin(), streams.end(), [](auto& s) { return s != nullptr; }));
    std::fprintf(stderr, "api_bench: %d watches open in %.0f ms\n", open, ms_since(open_start));

    std::atomic<bool> stop{false};
    std::atomic<int> received{0};
    std::vector<std::vector<double>> latencies(kWatchers);
    std::vector<std::thread> readers;
    readers.reserve(kWatchers);
    for (int i = 0; i < kWatchers; ++i) {
      if (!streams[i]) continue;
      readers.emplace_back([&, i] {
        auto& stream = *streams[i];
        while (!stop.load()) {
          auto e = stream.next(std::chrono::seconds(1));
          if (!e.ok()) break;
          if (!e->has_value()) continue;
          auto at = now_ns();
          const json& event = **e;
          const json& sent = event["object"]["metadata"]["annotations"]["bench.berth.dev/sent-ns"];
          if (event["type"] != "ADDED" || !sent.is_string()) continue;
          latencies[i].push_back(static_cast<double>(at - std::stoll(sent.get<std::string>())) / 1e6);
          received.fetch_add(1);
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the readers are waiting

    Errors errors;
    int written = 0;
    for (int w = 0; w < kWatchWrites; ++w) {
      json pod = make_pod("watched-" + std::to_string(w));
      pod["metadata"]["annotations"]["bench.berth.dev/sent-ns"] = std::to_string(now_ns());
      auto r = client->create("/api/v1/namespaces/bench-watch/pods", pod);
      if (r.ok())
        ++written;
      else
        errors.add(r.status());
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    errors.report("watch writes");
    auto wait_start = Clock::now();
    while (received.load() < open * written && seconds_since(wait_start) < 15)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    stop = true;
    for (auto& s : streams)
      if (s) s->close();
    for (auto& t : readers) t.join();
    streams.clear();
    std::vector<double> all;
    for (auto& v : latencies) all.insert(all.end(), v.begin(), v.end());
    std::fprintf(stderr, "api_bench: %zu of %d watch deliveries\n", all.size(), open * written);
    std::printf("api_watch_delivery_p50_1000_watchers: %.2f ms\n", percentile(all, 0.50));
    std::printf("api_watch_delivery_p99_1000_watchers: %.2f ms\n", percentile(all, 0.99));
    std::fflush(stdout);
  }

  client.reset();
  server.stop();
  std::fprintf(stderr, "api_bench: done in %.1f s\n", seconds_since(bench_start));
  return 0;
}
