// Kills a writer process with SIGKILL mid-stream and checks that every write it had
// acknowledged is in the reopened store, and that new writes get higher revisions.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "store/rocksdb_store.h"

using namespace berth::store;

namespace {

struct Ack {
  std::string key;
  Revision revision;
};

// Runs the writer until it has acknowledged at least `min_acks` writes, SIGKILLs it, and
// returns every complete line it printed.
std::vector<Ack> run_and_kill(const std::string& writer, const std::string& path,
                              const std::string& prefix, std::size_t min_acks) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execl(writer.c_str(), writer.c_str(), path.c_str(), "16", prefix.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  std::string buf;
  std::size_t lines = 0;
  bool killed = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  char chunk[65536];
  for (;;) {
    ssize_t n = read(fds[0], chunk, sizeof chunk);
    if (n <= 0) break;  // EOF once the writer is dead
    for (ssize_t i = 0; i < n; ++i) lines += chunk[i] == '\n';
    buf.append(chunk, static_cast<std::size_t>(n));
    if (!killed && (lines >= min_acks || std::chrono::steady_clock::now() > deadline)) {
      kill(pid, SIGKILL);
      killed = true;
    }
  }
  close(fds[0]);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(killed);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);

  std::vector<Ack> acks;
  std::size_t start = 0;
  for (std::size_t nl; (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::istringstream line(buf.substr(start, nl - start));
    Ack a;
    line >> a.key >> a.revision;
    REQUIRE(!line.fail());
    acks.push_back(std::move(a));
  }
  return acks;
}

}  // namespace

TEST_CASE("acknowledged writes survive SIGKILL; revisions continue above them") {
  const char* writer = std::getenv("BERTH_CRASH_WRITER");
  REQUIRE_MESSAGE(writer != nullptr, "set BERTH_CRASH_WRITER to the crash_writer binary");
  char tmpl[] = "/tmp/berth-crash-test-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  const std::string path = dir + "/db";
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{dir};

  Revision floor = 0;
  for (int round = 0; round < 3; ++round) {
    std::vector<Ack> acks = run_and_kill(writer, path, std::string("r") + std::to_string(round), 1500 + round * 500);
    MESSAGE("round " << round << ": " << acks.size() << " acknowledged writes before SIGKILL");
    REQUIRE(acks.size() >= 1000);

    auto opened = open_rocksdb({.path = path});
    INFO(opened.status().message());
    REQUIRE(opened.ok());
    auto store = std::move(opened).value();
    Revision max_acked = 0;
    std::size_t missing = 0, wrong = 0;
    for (const Ack& a : acks) {
      CHECK(a.revision > floor);
      max_acked = std::max(max_acked, a.revision);
      auto g = store->get(a.key);
      if (!g.ok()) {
        ++missing;
      } else if (g->mod_revision != a.revision || g->value.size() != 1024) {
        ++wrong;
      }
    }
    CHECK(missing == 0);
    CHECK(wrong == 0);
    CHECK(store->current_revision() >= max_acked);
    auto w = store->create(std::string("after-crash-") + std::to_string(round), "x");
    REQUIRE(w.ok());
    CHECK(w->revision > max_acked);
    CHECK(w->revision == store->current_revision());
    // History is contiguous through the crash: a watch from 0 sees every revision once.
    auto watch = store->watch("", 0, nullptr);
    REQUIRE(watch.ok());
    Revision expect = 1;
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (expect <= w->revision && std::chrono::steady_clock::now() < until) {
      auto evs = (*watch)->take(100000);
      if (evs.empty()) usleep(1000);
      for (auto& e : evs) {
        if (e.revision != expect) FAIL("history gap at revision " << expect);
        ++expect;
      }
    }
    CHECK(expect == w->revision + 1);
    floor = w->revision;
  }
}
