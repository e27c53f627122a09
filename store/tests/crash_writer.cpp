// Writes keys from several threads until killed, printing "key revision" for every
// acknowledged write. The crash test SIGKILLs it and checks the acknowledged writes survived.
// Usage: crash_writer <path> <threads> <key prefix>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "store/rocksdb_store.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s <path> <threads> <key prefix>\n", argv[0]);
    return 2;
  }
  berth::store::RocksDbOptions options;
  options.path = argv[1];
  const int threads = std::atoi(argv[2]);
  const std::string prefix = argv[3];
  auto opened = berth::store::open_rocksdb(options);
  if (!opened.ok()) {
    std::fprintf(stderr, "crash_writer: %s\n", opened.status().message().c_str());
    return 1;
  }
  auto store = std::move(opened).value();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      const std::string value(1024, static_cast<char>('a' + t % 26));
      // Bounded so a test that forgets to kill us does not leave a writer behind forever.
      for (int i = 0; i < 200000; ++i) {
        std::string key = prefix + "/" + std::to_string(t) + "/" + std::to_string(i);
        auto r = store->create(key, value);
        if (!r.ok()) {
          std::fprintf(stderr, "crash_writer: %s\n", r.status().message().c_str());
          std::_Exit(1);
        }
        // One write(2) per line: whole lines reach the pipe even when killed between them.
        std::string line = key + " " + std::to_string(r->revision) + "\n";
        if (::write(STDOUT_FILENO, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
          std::_Exit(1);
      }
    });
  }
  for (auto& w : workers) w.join();
  return 0;
}
