// The API server's own CPU per pod create and per binding, with no network in the way: the
// generic request path (decode, defaults, validation, managedFields, encode, store write, answer)
// called in-process on a real RocksDB store. A write's figure includes the thread's own cost of
// waiting for its commit (futex, context switch); the dry-run figure is the handler alone. api_bench measures the whole server over HTTPS;
// this isolates the handler so changes to it can be compared on a noisy machine.
//   create_path_bench [N]    (N pods, 3000 by default)
#include <stdlib.h>
#include <time.h>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include "apiserver/api.h"
#include "apiserver/kinds/registry.h"
#include "bench/bench_pod.h"
#include "store/rocksdb_store.h"

using namespace berth;

namespace {

double thread_cpu_us() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

net::Request post(std::string path, std::string body) {
  net::Request r;
  r.method = "POST";
  r.path = r.target = std::move(path);
  r.headers = {{"content-type", "application/json"}, {"user-agent", "create-path-bench"}};
  r.body = std::move(body);
  return r;
}

}  // namespace

int run(int n, const std::string& dir) {
  store::RocksDbOptions options;
  options.path = dir + "/db";
  auto db = store::open_rocksdb(options);
  if (!db) {
    std::fprintf(stderr, "create_path_bench: %s\n", db.status().message().c_str());
    return 1;
  }
  apiserver::Api api(**db, {});
  apiserver::register_kinds(api);
  if (auto s = api.bootstrap(); !s) {
    std::fprintf(stderr, "create_path_bench: %s\n", s.message().c_str());
    return 1;
  }
  const apiserver::UserInfo admin{"admin", {"system:masters"}};
  auto ns = post("/api/v1/namespaces", R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bench"}})");
  api.handle(ns, admin);

  // n requests made by make(i), one after another: the handler's thread CPU per request, or
  // nothing when one is not answered 201.
  auto per_request = [&](const char* what, auto make) -> std::optional<double> {
    double total = 0;
    for (int i = 0; i < n; ++i) {
      net::Request request = make(i);
      double t0 = thread_cpu_us();
      auto response = api.handle(request, admin);
      total += thread_cpu_us() - t0;
      if (response.status != 201) {
        std::fprintf(stderr, "create_path_bench: %s answered %d: %s\n", what, response.status, response.body.c_str());
        return std::nullopt;
      }
    }
    return total / n;
  };
  // dryRun=All: everything but the store write, so no wait (and no context switch) is counted.
  auto dry = per_request("dry-run create", [](int i) {
    auto r = post("/api/v1/namespaces/bench/pods", bench::make_pod("dry-" + std::to_string(i)).dump());
    r.target += "?dryRun=All";
    r.query = {{"dryRun", "All"}};
    return r;
  });
  auto create = dry ? per_request("create", [](int i) {
    return post("/api/v1/namespaces/bench/pods", bench::make_pod("pod-" + std::to_string(i)).dump());
  }) : std::nullopt;
  auto binding = create ? per_request("binding", [](int i) {
    std::string name = "pod-" + std::to_string(i);
    return post("/api/v1/namespaces/bench/pods/" + name + "/binding",
                R"({"apiVersion":"v1","kind":"Binding","metadata":{"name":")" + name +
                    R"("},"target":{"apiVersion":"v1","kind":"Node","name":"node-1"}})");
  }) : std::nullopt;
  if (binding) {
    std::printf("handler_cpu_per_pod_create: %.1f us (%d pods, %zu-byte bodies)\n", *create, n,
                bench::make_pod("pod-0").dump().size());
    std::printf("handler_cpu_per_pod_create_dry_run: %.1f us (no store write)\n", *dry);
    std::printf("handler_cpu_per_binding: %.1f us\n", *binding);
    return 0;
  }
  return 1;
}

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 3000;
  char tmpl[] = "/tmp/berth-create-path-XXXXXX";  // mkdtemp's template
  if (!mkdtemp(tmpl)) return 1;
  const std::string dir = tmpl;
  int rc = run(n, dir);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return rc;
}
