// Unit tests of the RocksDB store backend against the contract in store/store.h.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <rocksdb/db.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <dlfcn.h>

#include "api/suspend.h"
#include "store/crc32c.h"
#include "store/rocksdb_store.h"

using namespace berth;
using namespace berth::store;
using namespace std::chrono_literals;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/berth-store-test-XXXXXX";
    char* p = mkdtemp(tmpl);
    REQUIRE(p != nullptr);
    path = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string db() const { return path + "/db"; }
};

std::unique_ptr<Store> open_store(const RocksDbOptions& o) {
  auto r = open_rocksdb(o);
  INFO(r.status().message());
  REQUIRE(r.ok());
  return std::move(r).value();
}

std::unique_ptr<Store> open_store(const std::string& path) {
  RocksDbOptions o;
  o.path = path;
  return open_store(o);
}

// Counts notifications so tests can wait for them.
struct Notifier {
  std::mutex mu;
  std::condition_variable cv;
  int count = 0;
  WatchNotify fn() {
    return [this] {
      std::lock_guard l(mu);
      ++count;
      cv.notify_all();
    };
  }
};

// Takes events until n arrived or the timeout passed.
std::vector<Event> take_n(Watch& w, std::size_t n, std::chrono::milliseconds timeout = 5s) {
  std::vector<Event> out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
    auto got = w.take(n - out.size());
    if (got.empty()) {
      std::this_thread::sleep_for(1ms);
      continue;
    }
    for (auto& e : got) out.push_back(std::move(e));
  }
  return out;
}

template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout = 5s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

ListOptions lo(std::string prefix, std::string start_after = "", std::size_t limit = 0, Revision revision = 0) {
  ListOptions o;
  o.prefix = std::move(prefix);
  o.start_after = std::move(start_after);
  o.limit = limit;
  o.revision = revision;
  return o;
}

std::string value_of(const std::shared_ptr<const std::string>& p) { return p ? *p : "<null>"; }

}  // namespace

TEST_CASE("create, get, update, remove") {
  TempDir dir;
  auto s = open_store(dir.db());
  CHECK(s->current_revision() == 0);

  auto c = s->create("a/x", "one");
  REQUIRE(c.ok());
  CHECK(c->revision == 1);
  auto g = s->get("a/x");
  REQUIRE(g.ok());
  CHECK(g->key == "a/x");
  CHECK(g->value == "one");
  CHECK(g->create_revision == 1);
  CHECK(g->mod_revision == 1);

  auto u = s->update("a/x", "two");
  REQUIRE(u.ok());
  CHECK(u->revision == 2);
  g = s->get("a/x");
  REQUIRE(g.ok());
  CHECK(g->value == "two");
  CHECK(g->create_revision == 1);
  CHECK(g->mod_revision == 2);

  auto r = s->remove("a/x");
  REQUIRE(r.ok());
  CHECK(r->revision == 3);
  CHECK(r->previous.key == "a/x");
  CHECK(r->previous.value == "two");
  CHECK(r->previous.create_revision == 1);
  CHECK(r->previous.mod_revision == 2);
  CHECK(s->get("a/x").status().reason() == api::Reason::NotFound);
  CHECK(s->current_revision() == 3);

  // A re-created key starts a new life.
  auto c2 = s->create("a/x", "three");
  REQUIRE(c2.ok());
  g = s->get("a/x");
  REQUIRE(g.ok());
  CHECK(g->create_revision == 4);
  CHECK(g->mod_revision == 4);

  // Binary keys and values survive.
  std::string bin("k\0\xff", 3), val("\0\x01\xfe", 3);
  REQUIRE(s->create(bin, val).ok());
  g = s->get(bin);
  REQUIRE(g.ok());
  CHECK(g->value == val);
}

TEST_CASE("errors: AlreadyExists, NotFound, CAS conflicts; failed writes take no revision") {
  TempDir dir;
  auto s = open_store(dir.db());
  auto c = s->create("k", "v1");
  REQUIRE(c.ok());

  CHECK(s->create("k", "again").status().reason() == api::Reason::AlreadyExists);
  CHECK(s->update("missing", "x").status().reason() == api::Reason::NotFound);
  CHECK(s->remove("missing").status().reason() == api::Reason::NotFound);
  CHECK(s->get("missing").status().reason() == api::Reason::NotFound);

  auto bad = s->update("k", "v2", c->revision + 100);
  CHECK(bad.status().reason() == api::Reason::Conflict);
  CHECK(s->get("k")->value == "v1");
  CHECK(s->current_revision() == c->revision);

  auto good = s->update("k", "v2", c->revision);
  REQUIRE(good.ok());
  CHECK(s->get("k")->value == "v2");
  // The old revision no longer matches.
  CHECK(s->update("k", "v3", c->revision).status().reason() == api::Reason::Conflict);
  CHECK(s->remove("k", c->revision).status().reason() == api::Reason::Conflict);
  CHECK(s->get("k").ok());
  auto rm = s->remove("k", good->revision);
  REQUIRE(rm.ok());
  CHECK(rm->previous.value == "v2");
  CHECK(s->current_revision() == good->revision + 1);
}

TEST_CASE("revisions strictly increase and equal mod_revision") {
  TempDir dir;
  auto s = open_store(dir.db());
  Revision last = 0;
  for (int i = 0; i < 60; ++i) {
    std::string key = std::string("r/") + std::to_string(i % 7);
    Result<WriteResult> w = s->get(key).ok() ? s->update(key, std::to_string(i)) : s->create(key, std::to_string(i));
    REQUIRE(w.ok());
    CHECK(w->revision == last + 1);
    last = w->revision;
    auto g = s->get(key);
    REQUIRE(g.ok());
    CHECK(g->mod_revision == w->revision);
    CHECK(s->current_revision() == w->revision);
  }
}

TEST_CASE("prefix_revision: the newest write under a tracked prefix, moved before it is acknowledged") {
  TempDir dir;
  auto s = open_store(dir.db());
  REQUIRE(s->create("/ns/a", "1").ok());
  // Untracked: the store's revision. Tracked from now: what was written before counts.
  CHECK(s->prefix_revision("/ns/") == s->current_revision());
  s->track_prefix("/ns/");
  s->track_prefix("/ns/");  // once is enough
  CHECK(s->prefix_revision("/ns/") == 1);
  auto other = s->create("/pods/x", "1");
  REQUIRE(other.ok());
  CHECK(s->prefix_revision("/ns/") == 1);  // writes elsewhere do not move it
  CHECK(s->prefix_revision("/pods/") == other->revision);
  auto w = s->update("/ns/a", "2");
  REQUIRE(w.ok());
  CHECK(s->prefix_revision("/ns/") == w->revision);
  REQUIRE(s->create("/nsx", "1").ok());  // not under "/ns/"
  CHECK(s->prefix_revision("/ns/") == w->revision);
  auto gone = s->remove("/ns/a");
  REQUIRE(gone.ok());
  CHECK(s->prefix_revision("/ns/") == gone->revision);
  CHECK_FALSE(s->remove("/ns/a").ok());  // a failed write moves nothing
  CHECK(s->prefix_revision("/ns/") == gone->revision);
}

TEST_CASE("list: prefix, limit, start_after, more, count") {
  TempDir dir;
  auto s = open_store(dir.db());
  for (int i = 0; i < 10; ++i) REQUIRE(s->create(std::string("pods/ns/p") + std::to_string(i), std::string("v") + std::to_string(i)).ok());
  REQUIRE(s->create("pods0", "not under pods/").ok());
  REQUIRE(s->create("pod", "not under pods/").ok());
  REQUIRE(s->create("services/ns/s", "x").ok());

  auto all = s->list(lo("pods/"));
  REQUIRE(all.ok());
  REQUIRE(all->items.size() == 10);
  CHECK(all->revision == s->current_revision());
  CHECK_FALSE(all->more);
  for (int i = 0; i < 10; ++i) {
    CHECK(all->items[i].key == std::string("pods/ns/p") + std::to_string(i));
    CHECK(all->items[i].value == std::string("v") + std::to_string(i));
    CHECK(all->items[i].mod_revision == i + 1);
  }
  CHECK(*s->count("pods/") == 10);
  CHECK(*s->count("") == 13);
  CHECK(*s->count("nothing/") == 0);

  auto p1 = s->list(lo("pods/", "", 4));
  REQUIRE(p1.ok());
  REQUIRE(p1->items.size() == 4);
  CHECK(p1->more);
  auto p2 = s->list(lo("pods/", p1->items.back().key, 4, p1->revision));
  REQUIRE(p2.ok());
  REQUIRE(p2->items.size() == 4);
  CHECK(p2->items.front().key == "pods/ns/p4");
  CHECK(p2->more);
  auto p3 = s->list(lo("pods/", p2->items.back().key, 4, p1->revision));
  REQUIRE(p3.ok());
  CHECK(p3->items.size() == 2);
  CHECK_FALSE(p3->more);
  // Exactly `limit` remaining: no more.
  auto p4 = s->list(lo("pods/", "pods/ns/p5", 4));
  REQUIRE(p4.ok());
  CHECK(p4->items.size() == 4);
  CHECK_FALSE(p4->more);

  auto too_new = s->list(lo("pods/", "", 0, s->current_revision() + 5));
  CHECK(too_new.status().reason() == api::Reason::Timeout);
  CHECK(too_new.status().message().find("Too large resource version") != std::string::npos);
}

TEST_CASE("list at a past revision reconstructs that state") {
  TempDir dir;
  auto s = open_store(dir.db());
  REQUIRE(s->create("x/a", "a1").ok());
  REQUIRE(s->create("x/b", "b1").ok());
  REQUIRE(s->create("x/c", "c1").ok());
  Revision at = s->current_revision();
  REQUIRE(s->update("x/a", "a2").ok());  // changed later
  REQUIRE(s->remove("x/b").ok());        // deleted later
  REQUIRE(s->create("x/d", "d1").ok());  // created later
  REQUIRE(s->create("x/0", "z").ok());   // created later, sorts first
  REQUIRE(s->update("x/a", "a3").ok());  // changed twice

  auto past = s->list(lo("x/", "", 0, at));
  REQUIRE(past.ok());
  CHECK(past->revision == at);
  REQUIRE(past->items.size() == 3);
  CHECK(past->items[0].key == "x/a");
  CHECK(past->items[0].value == "a1");
  CHECK(past->items[0].mod_revision == 1);
  CHECK(past->items[1].key == "x/b");
  CHECK(past->items[1].value == "b1");
  CHECK(past->items[1].create_revision == 2);
  CHECK(past->items[2].key == "x/c");

  auto page = s->list(lo("x/", "x/a", 1, at));
  REQUIRE(page.ok());
  REQUIRE(page->items.size() == 1);
  CHECK(page->items[0].key == "x/b");
  CHECK(page->more);

  auto now = s->list(lo("x/"));
  REQUIRE(now.ok());
  REQUIRE(now->items.size() == 4);
  CHECK(now->items[0].key == "x/0");
  CHECK(now->items[1].value == "a3");
  CHECK(now->items[3].key == "x/d");
}

TEST_CASE("watch from a revision resumes with ordered PUT/DELETE events and prev values") {
  TempDir dir;
  auto s = open_store(dir.db());
  REQUIRE(s->create("w/before", "old").ok());
  Revision from = s->current_revision();
  auto r1 = s->create("w/a", "a1");
  auto r2 = s->update("w/a", "a2");
  auto r3 = s->remove("w/a");
  REQUIRE((r1.ok() && r2.ok() && r3.ok()));

  Notifier n;
  auto wr = s->watch("w/", from, n.fn());
  REQUIRE(wr.ok());
  auto w = *wr;
  auto evs = take_n(*w, 3);
  REQUIRE(evs.size() == 3);
  CHECK(evs[0].type == EventType::Put);
  CHECK(evs[0].revision == r1->revision);
  CHECK(evs[0].key == "w/a");
  CHECK(value_of(evs[0].value) == "a1");
  CHECK(evs[0].prev_value == nullptr);
  CHECK(evs[0].create_revision == r1->revision);

  CHECK(evs[1].type == EventType::Put);
  CHECK(evs[1].revision == r2->revision);
  CHECK(value_of(evs[1].value) == "a2");
  CHECK(value_of(evs[1].prev_value) == "a1");
  CHECK(evs[1].prev_revision == r1->revision);
  CHECK(evs[1].create_revision == r1->revision);

  CHECK(evs[2].type == EventType::Delete);
  CHECK(evs[2].revision == r3->revision);
  CHECK(value_of(evs[2].value) == "a2");
  CHECK(value_of(evs[2].prev_value) == "a2");
  CHECK(evs[2].prev_revision == r2->revision);
  {
    // History waiting at registration is announced too (from a store thread, so maybe later).
    std::unique_lock l(n.mu);
    CHECK(n.cv.wait_for(l, 5s, [&] { return n.count >= 1; }));
  }

  // Live events follow history without gaps or duplicates.
  int before;
  {
    std::lock_guard l(n.mu);
    before = n.count;
  }
  CHECK(w->take(10).empty());
  auto r4 = s->create("w/b", "b1");
  REQUIRE(r4.ok());
  {
    std::unique_lock l(n.mu);
    CHECK(n.cv.wait_for(l, 5s, [&] { return n.count > before; }));
  }
  auto live = take_n(*w, 1);
  REQUIRE(live.size() == 1);
  CHECK(live[0].revision == r4->revision);
  CHECK(live[0].key == "w/b");
  CHECK_FALSE(w->ended().has_value());

  w->cancel();
  REQUIRE(w->ended().has_value());
  CHECK(w->ended()->is_ok());
  REQUIRE(s->create("w/c", "c1").ok());
  std::this_thread::sleep_for(50ms);
  CHECK(w->take(10).empty());
}

TEST_CASE("watch interleaves history and live writes without gaps") {
  TempDir dir;
  RocksDbOptions o;
  o.path = dir.db();
  o.sync = false;
  auto s = open_store(o);
  constexpr int kWrites = 3000;  // below the default queue limit: nobody takes until the end
  std::thread writer([&] {
    for (int i = 0; i < kWrites; ++i) {
      if (!s->create(std::string("g/") + std::to_string(i), "v").ok()) break;
    }
  });
  // Register watches while writes are in flight, each resuming from half-way back.
  std::vector<std::shared_ptr<Watch>> watches;
  std::vector<Revision> starts;
  for (int i = 0; i < 5; ++i) {
    REQUIRE(wait_until([&] { return s->current_revision() > 200 + 400 * i; }));
    Revision from = s->current_revision() / 2;
    auto w = s->watch("g/", from, nullptr);
    REQUIRE(w.ok());
    watches.push_back(*w);
    starts.push_back(from);
  }
  writer.join();
  REQUIRE(s->current_revision() == kWrites);
  Revision end = s->current_revision();
  for (std::size_t i = 0; i < watches.size(); ++i) {
    auto evs = take_n(*watches[i], static_cast<std::size_t>(end - starts[i]));
    REQUIRE(evs.size() == static_cast<std::size_t>(end - starts[i]));
    for (std::size_t j = 0; j < evs.size(); ++j) CHECK(evs[j].revision == starts[i] + 1 + static_cast<Revision>(j));
  }
}

TEST_CASE("watch of a prefix ignores other prefixes; a watch ahead of the store waits") {
  TempDir dir;
  auto s = open_store(dir.db());
  auto w = s->watch("pods/", 0, nullptr);
  REQUIRE(w.ok());
  auto ahead = s->watch("", 3, nullptr);
  REQUIRE(ahead.ok());
  REQUIRE(s->create("services/a", "s").ok());     // 1
  REQUIRE(s->create("pods/a", "p").ok());         // 2
  REQUIRE(s->create("podsX/a", "not mine").ok()); // 3
  REQUIRE(s->create("pods/b", "p").ok());         // 4
  REQUIRE(s->remove("services/a").ok());          // 5
  auto evs = take_n(**w, 2);
  REQUIRE(evs.size() == 2);
  CHECK(evs[0].key == "pods/a");
  CHECK(evs[1].key == "pods/b");
  std::this_thread::sleep_for(50ms);
  CHECK((*w)->take(10).empty());

  auto later = take_n(**ahead, 2);
  REQUIRE(later.size() == 2);
  CHECK(later[0].revision == 4);
  CHECK(later[1].revision == 5);
  CHECK(later[1].type == EventType::Delete);
}

TEST_CASE("compaction: watch and list at a compacted revision are Gone") {
  TempDir dir;
  RocksDbOptions o;
  o.path = dir.db();
  o.compaction_window = 1s;
  o.compaction_interval = 20ms;
  auto s = open_store(o);
  REQUIRE(s->create("c/a", "1").ok());
  REQUIRE(s->update("c/a", "2").ok());
  REQUIRE(s->create("c/b", "1").ok());
  Revision last = s->current_revision();
  // Fresh history is kept.
  CHECK(s->compacted_revision() == 0);
  REQUIRE(s->watch("c/", 0, nullptr).ok());
  REQUIRE(wait_until([&] { return s->compacted_revision() == last; }, 10s));

  auto w = s->watch("c/", 1, nullptr);
  CHECK(w.status().reason() == api::Reason::Gone);
  auto l = s->list(lo("c/", "", 0, 1));
  CHECK(l.status().reason() == api::Reason::Gone);
  // The latest state is still there, and a watch from the compacted revision works.
  auto now = s->list(lo("c/"));
  REQUIRE(now.ok());
  CHECK(now->items.size() == 2);
  auto w2 = s->watch("c/", last, nullptr);
  REQUIRE(w2.ok());
  REQUIRE(s->update("c/b", "2").ok());
  auto evs = take_n(**w2, 1);
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].revision == last + 1);

  // The compaction point persists.
  s.reset();
  RocksDbOptions keep = o;
  keep.compaction_window = std::chrono::hours(1);
  auto s2 = open_store(keep);
  CHECK(s2->compacted_revision() >= last);
  CHECK(s2->watch("c/", 1, nullptr).status().reason() == api::Reason::Gone);
  CHECK(s2->current_revision() == last + 1);
}

TEST_CASE("paginated list at a fixed revision stays consistent while another thread writes") {
  TempDir dir;
  auto s = open_store(dir.db());
  std::map<std::string, std::pair<std::string, Revision>> state;  // key -> value, mod_revision
  for (int i = 0; i < 200; ++i) {
    char key[32];
    std::snprintf(key, sizeof key, "p/%03d", i);
    auto r = s->create(key, "v0");
    REQUIRE(r.ok());
    state[key] = {"v0", r->revision};
  }
  struct Op {
    Revision rev;
    std::string key;
    bool del;
    std::string value;
  };
  std::vector<Op> log;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      char key[32];
      std::snprintf(key, sizeof key, "p/%03d", (i * 37) % 260);
      std::string value = std::string("w") + std::to_string(i);
      if (i % 5 == 4) {
        auto r = s->remove(key);
        if (r.ok()) log.push_back({r->revision, key, true, ""});
      } else {
        auto r = s->update(key, value);
        if (r.ok()) {
          log.push_back({r->revision, key, false, value});
        } else {
          auto c = s->create(key, value);
          if (c.ok()) log.push_back({c->revision, key, false, value});
        }
      }
    }
  });
  REQUIRE(wait_until([&] { return s->current_revision() > 300; }));

  std::vector<Object> pages;
  auto first = s->list(lo("p/", "", 17));
  REQUIRE(first.ok());
  const Revision at = first->revision;
  pages = first->items;
  bool more = first->more;
  int n_pages = 1;
  while (more) {
    std::this_thread::sleep_for(2ms);  // let the writer move on
    auto next = s->list(lo("p/", pages.back().key, 17, at));
    REQUIRE(next.ok());
    CHECK(next->revision == at);
    for (auto& o : next->items) pages.push_back(o);
    more = next->more;
    ++n_pages;
  }
  stop = true;
  writer.join();
  CHECK(s->current_revision() > at);  // writes really happened during paging
  CHECK(n_pages > 5);

  for (const Op& op : log) {
    if (op.rev > at) break;
    if (op.del) {
      state.erase(op.key);
    } else {
      state[op.key] = {op.value, op.rev};
    }
  }
  REQUIRE(pages.size() == state.size());
  std::size_t i = 0;
  for (const auto& [key, vr] : state) {
    CHECK(pages[i].key == key);
    CHECK(pages[i].value == vr.first);
    CHECK(pages[i].mod_revision == vr.second);
    ++i;
  }
}

TEST_CASE("many threads writing concurrently: all acknowledged writes present, revisions unique") {
  TempDir dir;
  auto s = open_store(dir.db());
  constexpr int kThreads = 16, kPer = 150;
  std::vector<std::vector<std::pair<std::string, Revision>>> acked(kThreads);
  std::atomic<int> shared_writes{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < kPer; ++i) {
        std::string key = std::string("m/") + std::to_string(t) + std::string("/") + std::to_string(i);
        auto r = s->create(key, std::string(200, 'a' + t));
        if (r.ok()) acked[t].push_back({key, r->revision});
        // Contended CAS on one shared key: of updates racing from the same read, one wins.
        if (i % 10 == 0) {
          auto g = s->get("m/shared");
          if (!g.ok()) {
            if (s->create("m/shared", "0").ok()) ++shared_writes;
          } else {
            auto u = s->update("m/shared", std::to_string(t), g->mod_revision);
            if (u.ok()) {
              ++shared_writes;
            } else {
              CHECK(u.status().reason() == api::Reason::Conflict);
            }
          }
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  std::set<Revision> revs;
  std::size_t total = 0;
  for (auto& v : acked) {
    CHECK(v.size() == kPer);
    for (auto& [key, rev] : v) {
      ++total;
      CHECK(revs.insert(rev).second);
      auto g = s->get(key);
      REQUIRE(g.ok());
      CHECK(g->mod_revision == rev);
      CHECK(g->value.size() == 200);
    }
  }
  CHECK(total == kThreads * kPer);
  CHECK(*s->count("m/") == total + 1);
  CHECK(s->current_revision() >= static_cast<Revision>(total));
  // Every revision in history is accounted for exactly once in order.
  auto w = s->watch("", 0, nullptr);
  REQUIRE(w.ok());
  auto evs = take_n(**w, static_cast<std::size_t>(s->current_revision()));
  REQUIRE(evs.size() == static_cast<std::size_t>(s->current_revision()));
  for (std::size_t i = 0; i < evs.size(); ++i) CHECK(evs[i].revision == static_cast<Revision>(i + 1));
  // The shared key's writes form one chain: each update replaced exactly the previous one.
  Revision prev = 0;
  int chain = 0;
  for (const Event& e : evs) {
    if (e.key != "m/shared") continue;
    CHECK(e.prev_revision == prev);
    prev = e.revision;
    ++chain;
  }
  CHECK(chain == shared_writes.load());
  CHECK(chain > 1);
  CHECK(s->get("m/shared")->mod_revision == prev);
}

TEST_CASE("a slow watcher is cut off with Gone without blocking writers") {
  TempDir dir;
  RocksDbOptions o;
  o.path = dir.db();
  o.watch_queue_limit = 100;
  auto s = open_store(o);
  Notifier slow_n;
  auto slow = s->watch("s/", 0, slow_n.fn());
  REQUIRE(slow.ok());
  auto fast = s->watch("s/", 0, nullptr);
  REQUIRE(fast.ok());

  // The fast consumer keeps up: it takes each event before the next write, so at most one
  // ever waits for it. The slow one never takes; writes must go on regardless.
  std::vector<Event> fast_events;
  for (int i = 0; i < 300; ++i) {
    auto w = s->create(std::string("s/") + std::to_string(i), std::string(100, 'x'));
    REQUIRE(w.ok());
    auto got = take_n(**fast, 1);
    REQUIRE(got.size() == 1);
    CHECK(got[0].revision == w->revision);
    fast_events.push_back(std::move(got[0]));
  }
  REQUIRE(wait_until([&] { return (*slow)->ended().has_value(); }));
  CHECK((*slow)->ended()->reason() == api::Reason::Gone);
  CHECK((*slow)->ended()->message().find("too far behind") != std::string::npos);
  CHECK((*slow)->take(1000).empty());
  {
    std::lock_guard l(slow_n.mu);
    CHECK(slow_n.count >= 2);  // first event, then the end
  }
  REQUIRE(fast_events.size() == 300);
  CHECK_FALSE((*fast)->ended().has_value());
  for (int i = 0; i < 300; ++i) CHECK(fast_events[i].revision == i + 1);
}

TEST_CASE("closing the store ends watches with ServiceUnavailable") {
  TempDir dir;
  auto s = open_store(dir.db());
  Notifier n;
  auto w = s->watch("", 0, n.fn());
  REQUIRE(w.ok());
  s.reset();
  REQUIRE((*w)->ended().has_value());
  CHECK((*w)->ended()->reason() == api::Reason::ServiceUnavailable);
  std::lock_guard l(n.mu);
  CHECK(n.count == 1);
}

TEST_CASE("reopen keeps data and continues revisions") {
  TempDir dir;
  Revision last;
  {
    auto s = open_store(dir.db());
    REQUIRE(s->create("a", "1").ok());
    REQUIRE(s->create("b", "2").ok());
    REQUIRE(s->update("a", "3").ok());
    REQUIRE(s->remove("b").ok());
    last = s->current_revision();
    CHECK(last == 4);
  }
  auto s = open_store(dir.db());
  CHECK(s->current_revision() == last);
  auto g = s->get("a");
  REQUIRE(g.ok());
  CHECK(g->value == "3");
  CHECK(g->create_revision == 1);
  CHECK(g->mod_revision == 3);
  CHECK(s->get("b").status().reason() == api::Reason::NotFound);
  auto w = s->create("c", "4");
  REQUIRE(w.ok());
  CHECK(w->revision == last + 1);
  // History survived too.
  auto watch = s->watch("", 0, nullptr);
  REQUIRE(watch.ok());
  auto evs = take_n(**watch, 5);
  REQUIRE(evs.size() == 5);
  CHECK(evs[3].type == EventType::Delete);
  CHECK(evs[3].key == "b");
}

namespace {

void write_some(const std::string& path) {
  auto s = open_store(path);
  for (int i = 0; i < 20; ++i) REQUIRE(s->create(std::string("k/") + std::to_string(i), "v").ok());
}

// Opens the directory as plain RocksDB, to damage it the way a bug or a bad disk would.
template <class Fn>
void with_raw_db(const std::string& path, Fn fn) {
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, {}}, {"current", {}}, {"history", {}}};
  std::vector<rocksdb::ColumnFamilyHandle*> h;
  rocksdb::DB* db = nullptr;
  REQUIRE(rocksdb::DB::Open(rocksdb::DBOptions(), path, cfs, &h, &db).ok());
  fn(db, h);
  for (auto* x : h) db->DestroyColumnFamilyHandle(x);
  delete db;
}

void expect_refused(const std::string& path, const std::string& what) {
  auto r = open_rocksdb({.path = path});
  REQUIRE_FALSE(r.ok());
  MESSAGE(r.status().message());
  CHECK(r.status().reason() == api::Reason::InternalError);
  CHECK(r.status().message().find(path) != std::string::npos);
  CHECK(r.status().message().find(what) != std::string::npos);
}

}  // namespace

TEST_CASE("a corrupted data directory refuses to open with a clear error") {
  SUBCASE("garbage CURRENT file") {
    TempDir dir;
    write_some(dir.db());
    std::ofstream(dir.db() + "/CURRENT", std::ios::trunc) << "garbage";
    expect_refused(dir.db(), "corrupt");
  }
  SUBCASE("meta record does not agree with history") {
    TempDir dir;
    write_some(dir.db());
    with_raw_db(dir.db(), [](rocksdb::DB* db, auto& h) {
      std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}, h[2]));
      it->SeekToLast();
      REQUIRE(it->Valid());
      REQUIRE(db->Delete({}, h[2], it->key()).ok());
    });
    expect_refused(dir.db(), "is corrupt: meta says revision 20 but the newest history event is revision 19");
  }
  SUBCASE("malformed meta record") {
    TempDir dir;
    write_some(dir.db());
    with_raw_db(dir.db(), [](rocksdb::DB* db, auto& h) {
      std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}, h[0]));
      it->SeekToFirst();
      REQUIRE(it->Valid());
      REQUIRE(db->Put({}, h[0], it->key(), "xx").ok());
    });
    expect_refused(dir.db(), "is corrupt: meta record is malformed");
  }
  SUBCASE("data without a meta record") {
    TempDir dir;
    write_some(dir.db());
    with_raw_db(dir.db(), [](rocksdb::DB* db, auto& h) {
      std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}, h[0]));
      it->SeekToFirst();
      REQUIRE(it->Valid());
      REQUIRE(db->Delete({}, h[0], it->key()).ok());
    });
    expect_refused(dir.db(), "meta record is missing");
  }
  SUBCASE("missing table file") {
    TempDir dir;
    write_some(dir.db());
    with_raw_db(dir.db(), [](rocksdb::DB* db, auto& h) {
      REQUIRE(db->Flush({}, h).ok());
    });
    bool removed = false;
    for (auto& e : std::filesystem::directory_iterator(dir.db()))
      if (e.path().extension() == ".sst") removed = std::filesystem::remove(e.path()) || removed;
    REQUIRE(removed);
    expect_refused(dir.db(), dir.db());
  }
  SUBCASE("held by another opener") {
    TempDir dir;
    auto s = open_store(dir.db());
    expect_refused(dir.db(), "lock");
    REQUIRE(s->create("still", "works").ok());
  }
  SUBCASE("not a directory") {
    TempDir dir;
    std::ofstream(dir.db()) << "a file";
    expect_refused(dir.db(), "cannot open store");
  }
}

// Stands in for an API server fiber: it records that the store asked to suspend, and "suspends"
// by blocking until the resume function it handed out is called.
struct RecordingSuspender final : api::Suspender {
  std::atomic<int> suspends{0}, resumes{0};
  void suspend(Arm arm) override {
    ++suspends;
    std::mutex mu;
    std::condition_variable cv;
    bool resumed = false;
    arm([&] {
      ++resumes;
      std::lock_guard l(mu);
      resumed = true;
      cv.notify_all();
    });
    std::unique_lock l(mu);
    cv.wait(l, [&] { return resumed; });
  }
  void offload() override {}
};

TEST_CASE("a write from a fiber suspends it until the commit, and resumes it exactly once") {
  TempDir dir;
  auto s = open_store(dir.db());
  RecordingSuspender fiber;
  api::set_current_suspender(&fiber);
  auto created = s->create("/k/a", "1");
  auto updated = s->update("/k/a", "2", created.ok() ? created->revision : 0);
  auto stale = s->update("/k/a", "3", created.ok() ? created->revision : 0);
  auto removed = s->remove("/k/a");
  api::set_current_suspender(nullptr);
  REQUIRE(created.ok());
  REQUIRE(updated.ok());
  CHECK(updated->revision > created->revision);
  CHECK(stale.status().reason() == api::Reason::Conflict);  // an error outcome is delivered the same way
  CHECK(removed.ok());
  CHECK(fiber.suspends == 4);
  CHECK(fiber.resumes == 4);
  CHECK(s->get("/k/a").status().reason() == api::Reason::NotFound);
}

// RocksDB's CRC32C is ours (store/crc32c.cpp): the library's own calls must reach it, and it
// must be the Castagnoli CRC the library computes, or every checksum RocksDB wrote before
// would fail to verify.
namespace rocksdb::crc32c {
std::uint32_t Extend(std::uint32_t init_crc, const char* data, std::size_t n);
}

TEST_CASE("RocksDB checksums through the hardware CRC32C, which equals the library's") {
  // The standard check value of CRC-32C, whole and in pieces.
  CHECK(crc32c_extend(0, "123456789", 9) == 0xE3069283u);
  CHECK(crc32c_extend(crc32c_extend(0, "1234", 4), "56789", 5) == 0xE3069283u);
  CHECK(crc32c_extend(0, "", 0) == 0u);
  std::string problem;
  CHECK_MESSAGE(check_crc32c(problem), problem);
  // The symbol the library's PLT resolves to is the executable's definition.
  void* resolved = dlsym(RTLD_DEFAULT, "_ZN7rocksdb6crc32c6ExtendEjPKcm");
  CHECK(resolved == reinterpret_cast<void*>(&rocksdb::crc32c::Extend));
  CHECK(rocksdb::crc32c::Extend(0, "123456789", 9) == 0xE3069283u);
}
