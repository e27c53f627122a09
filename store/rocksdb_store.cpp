// RocksDB backend of the store.
//
// Layout (three column families):
//   default  "berth/meta"          -> version(1) current_rev(8) compacted_rev(8)
//   current  key                   -> create_rev(8) mod_rev(8) value
//   history  big-endian rev(8)     -> one event (see StoredEvent)
// Every write batch carries its data, its history events and the new meta record, so the
// revision is atomic with the data it names.
//
// Threads: a committer (group commit: one WriteBatch and one WAL sync for everything
// queued), a completer (wakes the writers of a committed batch), a dispatcher (watch
// fan-out) -- so neither delays the next commit -- and a compactor (drops history older
// than the compaction window).
#include "store/rocksdb_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#if defined(__linux__)
#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "api/suspend.h"
#include "store/crc32c.h"

namespace berth::store {
namespace {

using api::Reason;

constexpr char kMetaKey[] = "berth/meta";
constexpr std::uint8_t kMetaVersion = 1;
constexpr std::size_t kMetaSize = 17;
constexpr std::size_t kCurrentHeader = 16;
constexpr std::size_t kEventFixed = 1 + 8 + 8 + 8 + 4;  // flags wall create prev_mod key_len
constexpr std::uint8_t kEventDelete = 1;
constexpr std::uint8_t kEventHasPrev = 2;

void put_u64(char* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}
std::uint64_t get_u64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
void put_u32(char* p, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) {
    p[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}
std::uint32_t get_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// History keys sort by revision under the default bytewise comparator.
std::string rev_key(Revision r) {
  std::string s(8, '\0');
  put_u64(s.data(), static_cast<std::uint64_t>(r));
  return s;
}

struct Meta {
  Revision current = 0;
  Revision compacted = 0;
};

std::string encode_meta(const Meta& m) {
  std::string s(kMetaSize, '\0');
  s[0] = static_cast<char>(kMetaVersion);
  put_u64(&s[1], static_cast<std::uint64_t>(m.current));
  put_u64(&s[9], static_cast<std::uint64_t>(m.compacted));
  return s;
}

bool decode_meta(const rocksdb::Slice& s, Meta* m) {
  if (s.size() != kMetaSize || static_cast<std::uint8_t>(s[0]) != kMetaVersion) return false;
  m->current = static_cast<Revision>(get_u64(s.data() + 1));
  m->compacted = static_cast<Revision>(get_u64(s.data() + 9));
  return m->current >= 0 && m->compacted >= 0 && m->compacted <= m->current;
}

bool decode_current(const rocksdb::Slice& s, Revision* create, Revision* mod, rocksdb::Slice* value) {
  if (s.size() < kCurrentHeader) return false;
  *create = static_cast<Revision>(get_u64(s.data()));
  *mod = static_cast<Revision>(get_u64(s.data() + 8));
  *value = rocksdb::Slice(s.data() + kCurrentHeader, s.size() - kCurrentHeader);
  return true;
}

// A history event as stored: flags wall_ms create_rev prev_mod_rev key_len key
// [value_len value] (puts only) [prev_len prev] (when the key existed before).
// A delete's value is its prev value, stored once.
struct StoredEvent {
  bool is_delete = false;
  std::uint64_t wall_ms = 0;
  Revision create = 0;
  Revision prev_mod = 0;
  rocksdb::Slice key;
  rocksdb::Slice value;
  bool has_prev = false;
  rocksdb::Slice prev;
};

bool decode_event(const rocksdb::Slice& s, StoredEvent* e) {
  if (s.size() < kEventFixed) return false;
  const char* p = s.data();
  const char* end = p + s.size();
  std::uint8_t flags = static_cast<std::uint8_t>(p[0]);
  if (flags & ~(kEventDelete | kEventHasPrev)) return false;
  e->is_delete = flags & kEventDelete;
  e->has_prev = flags & kEventHasPrev;
  if (e->is_delete && !e->has_prev) return false;
  e->wall_ms = get_u64(p + 1);
  e->create = static_cast<Revision>(get_u64(p + 9));
  e->prev_mod = static_cast<Revision>(get_u64(p + 17));
  std::uint32_t klen = get_u32(p + 25);
  p += kEventFixed;
  if (static_cast<std::size_t>(end - p) < klen) return false;
  e->key = rocksdb::Slice(p, klen);
  p += klen;
  if (!e->is_delete) {
    if (end - p < 4) return false;
    std::uint32_t vlen = get_u32(p);
    p += 4;
    if (static_cast<std::size_t>(end - p) < vlen) return false;
    e->value = rocksdb::Slice(p, vlen);
    p += vlen;
  }
  if (e->has_prev) {
    if (end - p < 4) return false;
    std::uint32_t plen = get_u32(p);
    p += 4;
    if (static_cast<std::size_t>(end - p) < plen) return false;
    e->prev = rocksdb::Slice(p, plen);
    p += plen;
  }
  if (e->is_delete) e->value = e->prev;
  return p == end;
}

std::uint64_t wall_now_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

// Smallest string greater than every string with this prefix; empty when there is none.
std::string prefix_successor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty() && static_cast<unsigned char>(s.back()) == 0xff) s.pop_back();
  if (!s.empty()) s.back() = static_cast<char>(static_cast<unsigned char>(s.back()) + 1);
  return s;
}

bool starts_with(const rocksdb::Slice& s, std::string_view prefix) {
  return s.size() >= prefix.size() && std::memcmp(s.data(), prefix.data(), prefix.size()) == 0;
}

std::string_view view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

void name_thread(const char* name) {
#if defined(__linux__)
  pthread_setname_np(pthread_self(), name);
#else
  (void)name;
#endif
}

// A one-shot completion flag a writer waits on. A fiber (api::Suspender) gives its thread back
// and is resumed by set(); a thread sleeps on a bare futex: std::atomic::wait spins with
// sched_yield first, and 64 spinning writers starve the committer on 2 cores.
class Completion {
 public:
  void wait() {
    if (api::Suspender* fiber = api::current_suspender()) {
      fiber->suspend([this](std::function<void()> resume) {
        resume_ = std::move(resume);
        int expected = kPending;
        if (!word_.compare_exchange_strong(expected, kArmed, std::memory_order_acq_rel)) take_resume()();  // set already
      });
      return;
    }
    while (word_.load(std::memory_order_acquire) == kPending) {
#if defined(__linux__)
      syscall(SYS_futex, reinterpret_cast<int*>(&word_), FUTEX_WAIT_PRIVATE, kPending, nullptr, nullptr, 0);
#else
      word_.wait(kPending, std::memory_order_acquire);
#endif
    }
  }
  // The caller must keep the object alive through this call (the completer holds a reference).
  void set() {
    if (word_.exchange(kDone, std::memory_order_acq_rel) == kArmed) {
      take_resume()();
      return;
    }
#if defined(__linux__)
    syscall(SYS_futex, reinterpret_cast<int*>(&word_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
#else
    word_.notify_one();
#endif
  }

 private:
  // Called once; not kept, since it holds the fiber, whose stack holds this.
  std::function<void()> take_resume() { return std::exchange(resume_, nullptr); }

  static constexpr int kPending = 0, kDone = 1, kArmed = 2;  // kArmed: a fiber waits on resume_
  std::atomic<int> word_{kPending};
  std::function<void()> resume_;
  static_assert(sizeof(std::atomic<int>) == sizeof(int));
};

// ---------------------------------------------------------------------------------------
// Watches

using EventBatch = std::shared_ptr<const std::vector<Event>>;

class Hub;

class WatchImpl final : public Watch {
 public:
  WatchImpl(std::string prefix, Revision after, WatchNotify notify, std::size_t limit,
            std::weak_ptr<Hub> hub)
      : prefix_(std::move(prefix)), after_(after), notify_(std::move(notify)), limit_(limit),
        hub_(std::move(hub)) {}

  std::vector<Event> take(std::size_t max) override {
    std::vector<Event> out;
    std::lock_guard lock(mu_);
    if (!ready_) return out;
    out.reserve(std::min(max, pending_));
    while (out.size() < max && !chunks_.empty()) {
      Chunk& c = chunks_.front();
      while (c.pos < c.events->size() && out.size() < max) {
        out.push_back((*c.events)[c.pos++]);
        --pending_;
        if (backfill_left_ > 0) --backfill_left_;
      }
      if (c.pos == c.events->size()) chunks_.pop_front();
    }
    return out;
  }

  std::optional<Status> ended() override {
    std::lock_guard lock(mu_);
    return end_;
  }

  void cancel() override;

  const std::string& prefix() const { return prefix_; }
  void notify() const {
    if (notify_) notify_();
  }

  struct DeliverOutcome {
    bool notify = false;
    bool drop = false;  // the watch has ended; remove it from the hub
  };

  // Appends the events of a batch past after_. Called by the dispatcher under the hub lock.
  DeliverOutcome deliver(const EventBatch& events) {
    std::lock_guard lock(mu_);
    if (end_) return {false, true};
    std::size_t pos = 0;
    if (events->front().revision <= after_) {
      pos = std::partition_point(events->begin(), events->end(),
                                 [&](const Event& e) { return e.revision <= after_; }) -
            events->begin();
      if (pos == events->size()) return {};
    }
    bool was_empty = pending_ == 0;
    chunks_.push_back({events, pos});
    pending_ += events->size() - pos;
    if (pending_ - backfill_left_ > limit_) {
      end_ = Status(Reason::Gone, "watcher fell too far behind (more than " +
                                      std::to_string(limit_) + " events waiting)");
      chunks_.clear();
      pending_ = backfill_left_ = 0;
      return {true, true};
    }
    return {was_empty && ready_, false};
  }

  // Puts the history read at registration in front of whatever the dispatcher queued
  // meanwhile, and opens the watch for take(). Returns the end status if it was cut off,
  // else whether events are waiting (the caller then has a store thread notify).
  Result<bool> finish_backfill(std::vector<Event> backfill) {
    std::lock_guard lock(mu_);
    if (end_) return *end_;
    if (!backfill.empty()) {
      std::size_t n = backfill.size();
      chunks_.push_front({std::make_shared<const std::vector<Event>>(std::move(backfill)), 0});
      pending_ += n;
      backfill_left_ = n;
    }
    ready_ = true;
    return pending_ > 0;
  }

  // Announces history that was waiting at registration (even if taken since: a notify with
  // nothing to take is harmless, a missed one is not).
  void notify_unless_ended() {
    bool ended;
    {
      std::lock_guard lock(mu_);
      ended = end_.has_value();
    }
    if (!ended) notify();
  }

  // Ends the watch (store closing); returns whether it was still open.
  bool end_with(Status status) {
    std::lock_guard lock(mu_);
    if (end_) return false;
    end_ = std::move(status);
    return true;
  }

 private:
  struct Chunk {
    EventBatch events;
    std::size_t pos = 0;
  };

  const std::string prefix_;
  const Revision after_;
  const WatchNotify notify_;
  const std::size_t limit_;
  const std::weak_ptr<Hub> hub_;

  std::mutex mu_;
  std::deque<Chunk> chunks_;
  std::size_t pending_ = 0;        // events waiting in chunks_
  std::size_t backfill_left_ = 0;  // of which from history read at registration (not limited)
  bool ready_ = false;
  std::optional<Status> end_;
};

// The registry of live watches, grouped by prefix so a batch is filtered once per prefix.
class Hub {
 public:
  explicit Hub(Revision last_dispatched) : last_dispatched_(last_dispatched) {}

  // Registers a watch and returns the last revision dispatched before it (events after it
  // will reach the watch through dispatch()). Error when the store is closing.
  Result<Revision> add(const std::shared_ptr<WatchImpl>& w) {
    std::lock_guard lock(mu_);
    if (closed_) return Status(Reason::ServiceUnavailable, "store is closing");
    groups_[w->prefix()].push_back(w);
    return last_dispatched_;
  }

  void remove(const WatchImpl* w) {
    std::lock_guard lock(mu_);
    auto it = groups_.find(w->prefix());
    if (it == groups_.end()) return;
    auto& v = it->second;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (v[i].get() == w) {
        v[i] = std::move(v.back());
        v.pop_back();
        break;
      }
    }
    if (v.empty()) groups_.erase(it);
  }

  void dispatch(const EventBatch& events) {
    std::vector<std::shared_ptr<WatchImpl>> to_notify;
    {
      std::lock_guard lock(mu_);
      for (auto it = groups_.begin(); it != groups_.end();) {
        const std::string& prefix = it->first;
        EventBatch matched = filter(events, prefix);
        auto& group = it->second;
        if (matched) {
          for (std::size_t i = 0; i < group.size();) {
            auto outcome = group[i]->deliver(matched);
            if (outcome.notify) to_notify.push_back(group[i]);
            if (outcome.drop) {
              group[i] = std::move(group.back());
              group.pop_back();
            } else {
              ++i;
            }
          }
        }
        if (group.empty()) {
          it = groups_.erase(it);
        } else {
          ++it;
        }
      }
      last_dispatched_ = events->back().revision;
    }
    for (auto& w : to_notify) w->notify();
  }

  void close() {
    std::vector<std::shared_ptr<WatchImpl>> all;
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      for (auto& [prefix, group] : groups_)
        for (auto& w : group) all.push_back(std::move(w));
      groups_.clear();
    }
    for (auto& w : all)
      if (w->end_with(Status(Reason::ServiceUnavailable, "store is closing"))) w->notify();
  }

 private:
  static EventBatch filter(const EventBatch& events, const std::string& prefix) {
    if (prefix.empty()) return events;
    std::size_t n = 0;
    for (const Event& e : *events) n += e.key.starts_with(prefix);
    if (n == events->size()) return events;
    if (n == 0) return nullptr;
    auto out = std::make_shared<std::vector<Event>>();
    out->reserve(n);
    for (const Event& e : *events)
      if (e.key.starts_with(prefix)) out->push_back(e);
    return out;
  }

  std::mutex mu_;
  std::unordered_map<std::string, std::vector<std::shared_ptr<WatchImpl>>> groups_;
  Revision last_dispatched_;
  bool closed_ = false;
};

void WatchImpl::cancel() {
  {
    std::lock_guard lock(mu_);
    if (!end_) end_ = Status::ok();
  }
  if (auto hub = hub_.lock()) hub->remove(this);
}

// ---------------------------------------------------------------------------------------
// The store

class RocksDbStore final : public Store {
 public:
  RocksDbStore(RocksDbOptions options, rocksdb::DB* db,
               std::vector<rocksdb::ColumnFamilyHandle*> handles, Meta meta)
      : options_(std::move(options)), db_(db), handles_(std::move(handles)),
        meta_cf_(handles_[0]), current_cf_(handles_[1]), history_cf_(handles_[2]),
        current_(meta.current), compacted_(meta.compacted),
        hub_(std::make_shared<Hub>(meta.current)) {
    write_options_.sync = options_.sync;
    committer_ = std::thread([this] {
      name_thread("store-commit");
      committer_loop();
    });
    completer_ = std::thread([this] {
      name_thread("store-complete");
      completer_loop();
    });
    dispatcher_ = std::thread([this] {
      name_thread("store-watch");
      dispatcher_loop();
    });
    compactor_ = std::thread([this] {
      name_thread("store-compact");
      compactor_loop();
    });
  }

  ~RocksDbStore() override {
    {
      std::lock_guard lock(compact_mu_);
      compact_stop_ = true;
    }
    compact_cv_.notify_all();
    compactor_.join();
    {
      std::lock_guard lock(queue_mu_);
      queue_stop_ = true;  // the committer finishes what is queued, then exits
    }
    queue_cv_.notify_all();
    committer_.join();
    {
      std::lock_guard lock(complete_mu_);
      complete_stop_ = true;
    }
    complete_cv_.notify_all();
    completer_.join();
    {
      std::lock_guard lock(dispatch_mu_);
      dispatch_stop_ = true;
    }
    dispatch_cv_.notify_all();
    dispatcher_.join();
    hub_->close();
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    db_->Close();
    delete db_;
  }

  Result<Object> get(std::string_view key) override {
    rocksdb::PinnableSlice raw;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), current_cf_, to_slice(key), &raw);
    if (s.IsNotFound()) return Status(Reason::NotFound, "key \"" + std::string(key) + "\" not found");
    if (!s.ok()) return read_error(s);
    Object o;
    rocksdb::Slice value;
    if (!decode_current(raw, &o.create_revision, &o.mod_revision, &value))
      return corrupt_record(key);
    o.key = std::string(key);
    o.value = value.ToString();
    return o;
  }

  Result<ListResult> list(const ListOptions& opts) override;

  Result<std::size_t> count(std::string_view prefix) override {
    std::string upper = prefix_successor(prefix);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    if (!upper.empty()) ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, current_cf_));
    std::size_t n = 0;
    for (it->Seek(to_slice(prefix)); it->Valid(); it->Next()) ++n;
    if (!it->status().ok()) return read_error(it->status());
    return n;
  }

  Result<WriteResult> create(std::string_view key, std::string value) override {
    if (Status s = check_size(key, value); !s.is_ok()) return s;
    auto r = std::make_shared<Request>(Request::Kind::Create, key, std::move(value), 0);
    if (Status s = submit(r); !s.is_ok()) return s;
    return WriteResult{r->revision};
  }

  Result<WriteResult> update(std::string_view key, std::string value,
                             Revision expected_revision) override {
    if (Status s = check_size(key, value); !s.is_ok()) return s;
    auto r = std::make_shared<Request>(Request::Kind::Update, key, std::move(value),
                                       expected_revision);
    if (Status s = submit(r); !s.is_ok()) return s;
    return WriteResult{r->revision};
  }

  Result<RemoveResult> remove(std::string_view key, Revision expected_revision) override {
    auto r = std::make_shared<Request>(Request::Kind::Remove, key, std::string(), expected_revision);
    if (Status s = submit(r); !s.is_ok()) return s;
    return RemoveResult{r->revision, std::move(r->previous)};
  }

  Result<std::shared_ptr<Watch>> watch(std::string_view prefix, Revision after,
                                       WatchNotify notify) override;

  Revision current_revision() override { return current_.load(std::memory_order_acquire); }
  Revision compacted_revision() override { return compacted_.load(std::memory_order_acquire); }

  void track_prefix(std::string_view prefix) override {
    std::lock_guard lock(tracked_mu_);
    const std::size_t n = tracked_count_.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < n; ++i)
      if (tracked_[i].prefix == prefix) return;
    if (n == tracked_.size()) return;  // answered with current_revision(), still exact
    tracked_[n].prefix = std::string(prefix);
    // Writes before now are not known: take them all as under the prefix.
    tracked_[n].revision.store(current_.load(std::memory_order_acquire), std::memory_order_release);
    tracked_count_.store(n + 1, std::memory_order_release);
  }

  Revision prefix_revision(std::string_view prefix) override {
    const std::size_t n = tracked_count_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < n; ++i)
      if (tracked_[i].prefix == prefix) return tracked_[i].revision.load(std::memory_order_acquire);
    return current_revision();
  }

 private:
  struct Request {
    enum class Kind { Create, Update, Remove, Compact };
    Request(Kind k, std::string_view key_in, std::string value_in, Revision expected_in)
        : kind(k), key(key_in), value(std::move(value_in)), expected(expected_in) {}
    Kind kind;
    std::string key;
    std::string value;
    Revision expected = 0;  // CAS for update/remove; the target revision for Compact
    // Filled by the committer before done is set.
    Status status;
    Revision revision = 0;
    Object previous;
    Completion done;
  };
  using RequestPtr = std::shared_ptr<Request>;

  // What the committer knows of a key while building a batch.
  struct KeyState {
    bool exists = false;
    Revision create = 0;
    Revision mod = 0;
    std::shared_ptr<const std::string> value;
  };

  // Lengths are stored in 32 bits; real limits are far lower and enforced by the API server.
  static Status check_size(std::string_view key, const std::string& value) {
    constexpr std::size_t kMax = std::size_t{1} << 30;
    if (key.size() > kMax || value.size() > kMax)
      return Status(Reason::RequestEntityTooLarge, "store keys and values are limited to 1 GiB");
    return Status::ok();
  }

  static rocksdb::Slice to_slice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

  Status read_error(const rocksdb::Status& s) const {
    return Status(Reason::InternalError, "store read failed at " + options_.path + ": " + s.ToString());
  }
  Status corrupt_record(std::string_view key) const {
    return Status(Reason::InternalError, "store at " + options_.path + " is corrupt: malformed record for key \"" +
                                             std::string(key) + "\"");
  }

  Status submit(const RequestPtr& r) {
    {
      std::lock_guard lock(queue_mu_);
      if (queue_stop_) return Status(Reason::ServiceUnavailable, "store is closing");
      queue_.push_back(r);
      if (queue_.size() == 1 || (gathering_ && queue_.size() == kGatherTarget)) queue_cv_.notify_one();
    }
    r->done.wait();
    return r->status;
  }

  // Group commit. A batch costs one WAL write, one fdatasync and one wake of the completer and
  // the dispatcher, whatever its size; those were ~15% of the server's CPU per pod create when
  // 64 writers made batches of 5. When the last batch shows a steady stream of writers, the
  // committer waits a little (the window, or until kGatherTarget are queued) so that fewer,
  // larger batches carry the same writes. A lone writer never waits.
  static constexpr std::size_t kStreamBatch = 4;
  static constexpr std::size_t kGatherTarget = 64;
  static constexpr std::chrono::microseconds kGatherGap{120};

  void committer_loop() {
    std::vector<RequestPtr> batch;
    std::size_t last_batch = 0;
    const bool gather = options_.sync && options_.group_commit_window.count() > 0;
    for (;;) {
      {
        std::unique_lock lock(queue_mu_);
        queue_cv_.wait(lock, [&] { return !queue_.empty() || queue_stop_; });
        if (queue_.empty()) return;
        if (gather && last_batch >= kStreamBatch) {
          // Waits while writers keep coming: a gap in which more arrived extends the wait, up
          // to the window (checked once per gap, not woken per arrival). A quiet gap means the
          // other writers are still being prepared, or are not there: the batch goes then
          // rather than leave the CPU idle.
          gathering_ = true;
          const auto until = std::chrono::steady_clock::now() + options_.group_commit_window;
          while (queue_.size() < kGatherTarget && !queue_stop_) {
            const std::size_t before = queue_.size();
            const auto deadline = std::min(until, std::chrono::steady_clock::now() + kGatherGap);
            queue_cv_.wait_until(lock, deadline, [&] { return queue_.size() >= kGatherTarget || queue_stop_; });
            if (queue_.size() == before || std::chrono::steady_clock::now() >= until) break;
          }
          gathering_ = false;
        }
        batch.swap(queue_);
      }
      last_batch = batch.size();
      commit(std::move(batch));  // hands the batch on to the completer
      batch = {};
    }
  }

  // Loads a key's state as of the last commit (only the committer writes, so this is exact).
  Status load_state(const std::string& key, KeyState* st) {
    rocksdb::PinnableSlice raw;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), current_cf_, key, &raw);
    if (s.IsNotFound()) {
      *st = KeyState{};
      return Status::ok();
    }
    if (!s.ok()) return read_error(s);
    rocksdb::Slice value;
    if (!decode_current(raw, &st->create, &st->mod, &value)) return corrupt_record(key);
    st->exists = true;
    st->value = std::make_shared<const std::string>(value.data(), value.size());
    return Status::ok();
  }

  void commit(std::vector<RequestPtr>&& batch) {
    // Each write puts its value twice (current and history) plus keys and headers; sized up
    // front, the batch's buffer is not copied again and again as it grows.
    std::size_t bytes = 64;
    for (const RequestPtr& rp : batch) bytes += 2 * (rp->key.size() + rp->value.size()) + 64;
    rocksdb::WriteBatch wb(bytes);
    Revision rev = current_.load(std::memory_order_relaxed);
    const Revision first_rev = rev;
    Revision compacted = compacted_.load(std::memory_order_relaxed);
    const Revision old_compacted = compacted;
    const std::uint64_t wall = wall_now_ms();
    std::unordered_map<std::string_view, KeyState> overlay;
    auto events = std::make_shared<std::vector<Event>>();
    events->reserve(batch.size());
    std::vector<Request*> applied;
    applied.reserve(batch.size());

    for (const RequestPtr& rp : batch) {
      Request& r = *rp;
      if (r.kind == Request::Kind::Compact) {
        Revision target = std::min(r.expected, rev);
        if (target > compacted) {
          wb.DeleteRange(history_cf_, rev_key(compacted + 1), rev_key(target + 1));
          compacted = target;
        }
        applied.push_back(&r);
        continue;
      }
      KeyState* st;
      auto it = overlay.find(r.key);
      if (it != overlay.end()) {
        st = &it->second;
      } else {
        KeyState loaded;
        if (Status s = load_state(r.key, &loaded); !s.is_ok()) {
          r.status = std::move(s);
          continue;
        }
        st = &overlay.emplace(std::string_view(r.key), std::move(loaded)).first->second;
      }
      if (r.kind == Request::Kind::Create) {
        if (st->exists) {
          r.status = Status(Reason::AlreadyExists, "key \"" + r.key + "\" already exists");
          continue;
        }
      } else {
        if (!st->exists) {
          r.status = Status(Reason::NotFound, "key \"" + r.key + "\" not found");
          continue;
        }
        if (r.expected != 0 && r.expected != st->mod) {
          r.status = Status(Reason::Conflict, "key \"" + r.key + "\" is at revision " +
                                                  std::to_string(st->mod) + ", not " +
                                                  std::to_string(r.expected));
          continue;
        }
      }

      const Revision nr = ++rev;
      char rev_buf[8];
      put_u64(rev_buf, static_cast<std::uint64_t>(nr));
      char ev_head[kEventFixed];
      const bool is_delete = r.kind == Request::Kind::Remove;
      const bool has_prev = st->exists;
      const Revision create = st->exists ? st->create : nr;
      ev_head[0] = static_cast<char>((is_delete ? kEventDelete : 0) | (has_prev ? kEventHasPrev : 0));
      put_u64(ev_head + 1, wall);
      put_u64(ev_head + 9, static_cast<std::uint64_t>(create));
      put_u64(ev_head + 17, static_cast<std::uint64_t>(has_prev ? st->mod : 0));
      put_u32(ev_head + 25, static_cast<std::uint32_t>(r.key.size()));
      char vlen_buf[4], plen_buf[4];
      rocksdb::Slice parts[6];
      int n = 0;
      parts[n++] = rocksdb::Slice(ev_head, kEventFixed);
      parts[n++] = rocksdb::Slice(r.key);

      Event ev;
      ev.revision = nr;
      ev.key = r.key;
      ev.create_revision = create;
      if (has_prev) {
        ev.prev_value = st->value;
        ev.prev_revision = st->mod;
      }

      if (!is_delete) {
        auto value = std::make_shared<const std::string>(std::move(r.value));
        char head[kCurrentHeader];
        put_u64(head, static_cast<std::uint64_t>(create));
        put_u64(head + 8, static_cast<std::uint64_t>(nr));
        rocksdb::Slice key_part(r.key);
        rocksdb::Slice cur_parts[2] = {rocksdb::Slice(head, kCurrentHeader), rocksdb::Slice(*value)};
        wb.Put(current_cf_, rocksdb::SliceParts(&key_part, 1), rocksdb::SliceParts(cur_parts, 2));
        put_u32(vlen_buf, static_cast<std::uint32_t>(value->size()));
        parts[n++] = rocksdb::Slice(vlen_buf, 4);
        parts[n++] = rocksdb::Slice(*value);
        ev.type = EventType::Put;
        ev.value = value;
        *st = KeyState{true, create, nr, std::move(value)};
      } else {
        wb.Delete(current_cf_, r.key);
        ev.type = EventType::Delete;
        ev.value = st->value;
        r.previous = Object{r.key, *st->value, st->create, st->mod};
        *st = KeyState{};
      }
      if (has_prev) {
        put_u32(plen_buf, static_cast<std::uint32_t>(ev.prev_value->size()));
        parts[n++] = rocksdb::Slice(plen_buf, 4);
        parts[n++] = rocksdb::Slice(*ev.prev_value);
      }
      rocksdb::Slice hist_key(rev_buf, 8);
      wb.Put(history_cf_, rocksdb::SliceParts(&hist_key, 1), rocksdb::SliceParts(parts, n));
      r.revision = nr;
      events->push_back(std::move(ev));
      applied.push_back(&r);
    }

    if (rev != first_rev || compacted != old_compacted) {
      wb.Put(meta_cf_, kMetaKey, encode_meta(Meta{rev, compacted}));
      rocksdb::Status s = db_->Write(write_options_, &wb);
      if (!s.ok()) {
        Status err(Reason::InternalError, "store write failed at " + options_.path + ": " + s.ToString());
        std::fprintf(stderr, "store: %s\n", err.message().c_str());
        for (Request* r : applied) {
          r->status = err;
          r->revision = 0;
          r->previous = Object{};
        }
        events->clear();
      } else {
        current_.store(rev, std::memory_order_release);
        compacted_.store(compacted, std::memory_order_release);
      }
    }

    if (const std::size_t tracked = tracked_count_.load(std::memory_order_acquire); tracked > 0) {
      for (const Event& ev : *events)
        for (std::size_t i = 0; i < tracked; ++i)
          if (ev.key.starts_with(tracked_[i].prefix)) tracked_[i].revision.store(ev.revision, std::memory_order_release);
    }
    if (!events->empty()) {
      {
        std::lock_guard lock(dispatch_mu_);
        dispatch_queue_.push_back(DispatchItem{std::move(events), nullptr});
      }
      dispatch_cv_.notify_one();
    }
    {
      std::lock_guard lock(complete_mu_);
      complete_queue_.push_back(std::move(batch));
    }
    complete_cv_.notify_one();
  }

  // Waking 64 writers costs the kernel tens of microseconds; done here, it stays off the
  // committer's path to the next batch.
  void completer_loop() {
    std::deque<std::vector<RequestPtr>> work;
    for (;;) {
      {
        std::unique_lock lock(complete_mu_);
        complete_cv_.wait(lock, [&] { return !complete_queue_.empty() || complete_stop_; });
        if (complete_queue_.empty()) return;
        work.swap(complete_queue_);
      }
      for (auto& batch : work)
        for (const RequestPtr& r : batch) r->done.set();
      work.clear();
    }
  }

  void dispatcher_loop() {
    std::deque<DispatchItem> work;
    for (;;) {
      {
        std::unique_lock lock(dispatch_mu_);
        dispatch_cv_.wait(lock, [&] { return !dispatch_queue_.empty() || dispatch_stop_; });
        if (dispatch_queue_.empty()) return;
        work.swap(dispatch_queue_);
      }
      for (const DispatchItem& item : work) {
        if (item.events) hub_->dispatch(item.events);
        if (item.kick) item.kick->notify_unless_ended();
      }
      work.clear();
    }
  }

  void compactor_loop() {
    std::unique_lock lock(compact_mu_);
    for (;;) {
      compact_cv_.wait_for(lock, options_.compaction_interval, [&] { return compact_stop_; });
      if (compact_stop_) return;
      lock.unlock();
      compact_once();
      lock.lock();
    }
  }

  // Finds the newest event older than the window, asks the committer to drop history up to
  // it (atomically with the meta record), then lets RocksDB drop whole files in that range.
  void compact_once() {
    const std::uint64_t now = wall_now_ms();
    const std::uint64_t window = static_cast<std::uint64_t>(options_.compaction_window.count());
    if (now < window) return;
    const std::uint64_t cutoff = now - window;
    const Revision from = compacted_.load(std::memory_order_acquire) + 1;
    const Revision to = current_.load(std::memory_order_acquire);
    if (from > to) return;
    std::string lower = rev_key(from), upper = rev_key(to + 1);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, history_cf_));
    Revision target = 0;
    for (it->Seek(lower); it->Valid(); it->Next()) {
      rocksdb::Slice v = it->value();
      if (v.size() < kEventFixed || it->key().size() != 8) break;
      if (get_u64(v.data() + 1) >= cutoff) break;
      target = static_cast<Revision>(get_u64(it->key().data()));
    }
    if (!it->status().ok()) {
      std::fprintf(stderr, "store: compaction scan failed at %s: %s\n", options_.path.c_str(),
                   it->status().ToString().c_str());
      return;
    }
    it.reset();
    if (target < from) return;
    auto r = std::make_shared<Request>(Request::Kind::Compact, std::string_view(), std::string(), target);
    if (Status s = submit(r); !s.is_ok()) return;
    // Readers that took a snapshot before the compaction check compacted_ after reading, so
    // files vanishing under them are reported as Gone rather than as missing history.
    std::string begin_key = rev_key(0), end_key = rev_key(target);
    rocksdb::Slice b(begin_key), e(end_key);
    rocksdb::Status s = rocksdb::DeleteFilesInRange(db_, history_cf_, &b, &e, true);
    if (!s.ok())
      std::fprintf(stderr, "store: dropping compacted history files at %s failed: %s\n",
                   options_.path.c_str(), s.ToString().c_str());
  }

  const RocksDbOptions options_;
  rocksdb::DB* const db_;
  const std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* const meta_cf_;
  rocksdb::ColumnFamilyHandle* const current_cf_;
  rocksdb::ColumnFamilyHandle* const history_cf_;
  rocksdb::WriteOptions write_options_;

  std::atomic<Revision> current_;
  std::atomic<Revision> compacted_;
  // track_prefix: a few prefixes, each with the revision of its newest write (set by the
  // committer before the write is acknowledged).
  struct Tracked {
    std::string prefix;
    std::atomic<Revision> revision{0};
  };
  std::mutex tracked_mu_;  // registration only
  std::array<Tracked, 4> tracked_;
  std::atomic<std::size_t> tracked_count_{0};

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::vector<RequestPtr> queue_;
  bool queue_stop_ = false;
  bool gathering_ = false;  // the committer waits for kGatherTarget writes (guarded by queue_mu_)

  std::mutex complete_mu_;
  std::condition_variable complete_cv_;
  std::deque<std::vector<RequestPtr>> complete_queue_;
  bool complete_stop_ = false;

  std::mutex dispatch_mu_;
  std::condition_variable dispatch_cv_;
  struct DispatchItem {
    EventBatch events;                 // a committed batch to fan out
    std::shared_ptr<WatchImpl> kick;   // or a new watch with history waiting
  };
  std::deque<DispatchItem> dispatch_queue_;
  bool dispatch_stop_ = false;

  std::mutex compact_mu_;
  std::condition_variable compact_cv_;
  bool compact_stop_ = false;

  std::shared_ptr<Hub> hub_;
  std::thread committer_;
  std::thread completer_;
  std::thread dispatcher_;
  std::thread compactor_;
};

Event to_event(Revision rev, const StoredEvent& se) {
  Event e;
  e.type = se.is_delete ? EventType::Delete : EventType::Put;
  e.revision = rev;
  e.key = se.key.ToString();
  e.create_revision = se.create;
  if (se.has_prev) {
    e.prev_value = std::make_shared<const std::string>(se.prev.data(), se.prev.size());
    e.prev_revision = se.prev_mod;
  }
  e.value = se.is_delete ? e.prev_value
                         : std::make_shared<const std::string>(se.value.data(), se.value.size());
  return e;
}

class SnapshotGuard {
 public:
  explicit SnapshotGuard(rocksdb::DB* db) : db_(db), snap_(db->GetSnapshot()) {}
  ~SnapshotGuard() { db_->ReleaseSnapshot(snap_); }
  const rocksdb::Snapshot* get() const { return snap_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_;
};

Result<ListResult> RocksDbStore::list(const ListOptions& opts) {
  SnapshotGuard snap(db_);
  rocksdb::ReadOptions ro;
  ro.snapshot = snap.get();

  Meta meta;
  {
    std::string raw;
    rocksdb::Status s = db_->Get(ro, meta_cf_, kMetaKey, &raw);
    if (!s.ok() && !s.IsNotFound()) return read_error(s);
    if (s.ok() && !decode_meta(raw, &meta))
      return Status(Reason::InternalError, "store at " + options_.path + " is corrupt: malformed meta record");
  }
  const Revision at = opts.revision == 0 ? meta.current : opts.revision;
  if (at > meta.current)
    return Status(Reason::Timeout, "Too large resource version: " + std::to_string(at) +
                                       ", current: " + std::to_string(meta.current));
  if (at < meta.compacted)
    return Status(Reason::Gone, "too old resource version: " + std::to_string(at) + " (history compacted up to " +
                                    std::to_string(meta.compacted) + ")");

  const std::string& prefix = opts.prefix;
  auto in_range = [&](std::string_view key) {
    return key.starts_with(prefix) && (opts.start_after.empty() || key > opts.start_after);
  };

  // For a past revision: the state at `at` of every key written since, from the first event
  // after `at` (its prev value is what the key held at `at`; nullopt = absent then).
  std::map<std::string, std::optional<Object>, std::less<>> past;
  if (at < meta.current) {
    std::string lower = rev_key(at + 1), upper = rev_key(meta.current + 1);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions hro = ro;
    hro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(hro, history_cf_));
    for (it->Seek(lower); it->Valid(); it->Next()) {
      StoredEvent se;
      if (!decode_event(it->value(), &se))
        return Status(Reason::InternalError, "store at " + options_.path + " is corrupt: malformed history event");
      std::string_view key = view(se.key);
      if (!in_range(key)) continue;
      auto [pos, inserted] = past.try_emplace(std::string(key));
      if (!inserted) continue;
      if (se.has_prev) pos->second = Object{std::string(key), se.prev.ToString(), se.create, se.prev_mod};
    }
    if (!it->status().ok()) return read_error(it->status());
  }

  ListResult out;
  out.revision = at;
  const std::size_t want = opts.limit == 0 ? SIZE_MAX : opts.limit + 1;

  std::string lower = prefix;
  if (!opts.start_after.empty() && opts.start_after > lower) lower = opts.start_after;
  std::string upper = prefix_successor(prefix);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions cro = ro;
  if (!upper.empty()) cro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(cro, current_cf_));
  it->Seek(lower);
  auto pit = past.begin();
  while (out.items.size() < want) {
    while (it->Valid() && !in_range(view(it->key()))) it->Next();
    const bool have_cur = it->Valid();
    const bool have_past = pit != past.end();
    if (!have_cur && !have_past) break;
    int cmp = 1;  // > 0: the next key comes from past
    if (!have_past) {
      cmp = -1;
    } else if (have_cur) {
      cmp = view(it->key()).compare(pit->first);
    }
    if (cmp < 0) {
      Object o;
      rocksdb::Slice value;
      if (!decode_current(it->value(), &o.create_revision, &o.mod_revision, &value))
        return corrupt_record(view(it->key()));
      o.key = it->key().ToString();
      o.value = value.ToString();
      out.items.push_back(std::move(o));
      it->Next();
    } else {
      // Written since `at`: its state then is the one recorded in history.
      if (pit->second) out.items.push_back(std::move(*pit->second));
      if (cmp == 0) it->Next();
      ++pit;
    }
  }
  if (!it->status().ok()) return read_error(it->status());
  if (out.items.size() > opts.limit && opts.limit != 0) {
    out.items.pop_back();
    out.more = true;
  }
  if (at < meta.current && compacted_.load(std::memory_order_acquire) > at)
    return Status(Reason::Gone, "too old resource version: " + std::to_string(at) + " (compacted during the list)");
  return out;
}

Result<std::shared_ptr<Watch>> RocksDbStore::watch(std::string_view prefix, Revision after,
                                                   WatchNotify notify) {
  if (after < 0) return Status(Reason::BadRequest, "watch revision must not be negative");
  auto w = std::make_shared<WatchImpl>(std::string(prefix), after, std::move(notify),
                                       options_.watch_queue_limit, hub_);
  Result<Revision> added = hub_->add(w);
  if (!added) return added.status();
  const Revision dispatched = *added;
  if (after >= dispatched) {
    // Everything it wants is still to come through dispatch.
    if (auto ready = w->finish_backfill({}); !ready) return ready.status();
    return std::shared_ptr<Watch>(w);
  }

  // Events in (after, dispatched] come from history; the dispatcher queues later ones behind.
  auto fail = [&](Status s) -> Result<std::shared_ptr<Watch>> {
    hub_->remove(w.get());
    return s;
  };
  SnapshotGuard snap(db_);
  rocksdb::ReadOptions ro;
  ro.snapshot = snap.get();
  Meta meta;
  {
    std::string raw;
    rocksdb::Status s = db_->Get(ro, meta_cf_, kMetaKey, &raw);
    if (!s.ok() && !s.IsNotFound()) return fail(read_error(s));
    if (s.ok() && !decode_meta(raw, &meta))
      return fail(Status(Reason::InternalError, "store at " + options_.path + " is corrupt: malformed meta record"));
  }
  auto gone = [&](Revision compacted) {
    return Status(Reason::Gone, "too old resource version: " + std::to_string(after) +
                                    " (history compacted up to " + std::to_string(compacted) + ")");
  };
  if (after < meta.compacted) return fail(gone(meta.compacted));

  std::vector<Event> backfill;
  std::string lower = rev_key(after + 1), upper = rev_key(dispatched + 1);
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, history_cf_));
  Revision expect = after + 1;
  for (it->Seek(lower); it->Valid(); it->Next()) {
    StoredEvent se;
    if (it->key().size() != 8 || !decode_event(it->value(), &se))
      return fail(Status(Reason::InternalError, "store at " + options_.path + " is corrupt: malformed history event"));
    Revision rev = static_cast<Revision>(get_u64(it->key().data()));
    if (rev != expect) break;  // a gap: compacted under us, or corrupt (told apart below)
    ++expect;
    if (!starts_with(se.key, prefix)) continue;
    backfill.push_back(to_event(rev, se));
  }
  if (!it->status().ok()) return fail(read_error(it->status()));
  it.reset();
  // Compaction may drop whole files even under a snapshot; it publishes compacted_ first.
  if (Revision c = compacted_.load(std::memory_order_acquire); c > after) return fail(gone(c));
  if (expect != dispatched + 1)
    return fail(Status(Reason::InternalError, "store at " + options_.path +
                                                  " is corrupt: history is missing revision " +
                                                  std::to_string(expect)));
  Result<bool> waiting = w->finish_backfill(std::move(backfill));
  if (!waiting) return fail(waiting.status());
  if (*waiting) {
    // Notify from the dispatcher, as for any other event, not from inside watch().
    {
      std::lock_guard lock(dispatch_mu_);
      dispatch_queue_.push_back(DispatchItem{nullptr, w});
    }
    dispatch_cv_.notify_one();
  }
  return std::shared_ptr<Watch>(w);
}

// ---------------------------------------------------------------------------------------
// Opening

rocksdb::CompressionType pick_compression() {
  auto supported = rocksdb::GetSupportedCompressions();
  auto has = [&](rocksdb::CompressionType t) {
    return std::find(supported.begin(), supported.end(), t) != supported.end();
  };
  if (has(rocksdb::kLZ4Compression)) return rocksdb::kLZ4Compression;
  if (has(rocksdb::kZSTD)) return rocksdb::kZSTD;
  if (has(rocksdb::kSnappyCompression)) return rocksdb::kSnappyCompression;
  return rocksdb::kNoCompression;
}

Status open_error(const std::string& path, const rocksdb::Status& s) {
  const std::string detail = s.ToString();
  if (s.IsCorruption())
    return Status(Reason::InternalError, "store at " + path + " is corrupt: " + detail);
  if (s.IsIOError() && detail.find("lock") != std::string::npos)
    return Status(Reason::InternalError, "store at " + path +
                                             " is locked by another process (is another berth server "
                                             "using it?): " + detail);
  return Status(Reason::InternalError, "cannot open store at " + path + ": " + detail);
}

// Checks that the meta record is well formed and agrees with history; returns it.
Result<Meta> verify(rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>& h,
                    const std::string& path) {
  auto corrupt = [&](const std::string& why) {
    return Status(Reason::InternalError, "store at " + path + " is corrupt: " + why);
  };
  rocksdb::ReadOptions ro;
  Meta meta;
  std::string raw;
  rocksdb::Status s = db->Get(ro, h[0], kMetaKey, &raw);
  if (!s.ok() && !s.IsNotFound()) return open_error(path, s);
  const bool has_meta = s.ok();
  if (has_meta && !decode_meta(raw, &meta))
    return corrupt("meta record is malformed (" + std::to_string(raw.size()) + " bytes)");

  std::unique_ptr<rocksdb::Iterator> hist(db->NewIterator(ro, h[2]));
  hist->SeekToLast();
  if (hist->Valid()) {
    if (!has_meta) return corrupt("history present but the meta record is missing");
    if (hist->key().size() != 8) return corrupt("history key of " + std::to_string(hist->key().size()) + " bytes");
    Revision newest = static_cast<Revision>(get_u64(hist->key().data()));
    StoredEvent se;
    if (!decode_event(hist->value(), &se))
      return corrupt("newest history event (revision " + std::to_string(newest) + ") is malformed");
    if (newest != meta.current)
      return corrupt("meta says revision " + std::to_string(meta.current) +
                     " but the newest history event is revision " + std::to_string(newest));
    hist->SeekToFirst();
    if (hist->Valid()) {
      Revision oldest = hist->key().size() == 8 ? static_cast<Revision>(get_u64(hist->key().data())) : 0;
      if (oldest <= meta.compacted)
        return corrupt("history holds revision " + std::to_string(oldest) + " at or below the compacted revision " +
                       std::to_string(meta.compacted));
    }
  } else if (hist->status().ok() && meta.current != meta.compacted) {
    return corrupt("meta says revision " + std::to_string(meta.current) + " (compacted " +
                   std::to_string(meta.compacted) + ") but history is empty");
  }
  if (!hist->status().ok()) return open_error(path, hist->status());
  if (!has_meta) {
    std::unique_ptr<rocksdb::Iterator> cur(db->NewIterator(ro, h[1]));
    cur->SeekToFirst();
    if (cur->Valid()) return corrupt("objects present but the meta record is missing");
    if (!cur->status().ok()) return open_error(path, cur->status());
  }
  return meta;
}

}  // namespace

Result<std::unique_ptr<Store>> open_rocksdb(const RocksDbOptions& options) {
  if (options.path.empty()) return Status(Reason::InternalError, "store path is empty");
  // RocksDB checksums with our CRC32C (crc32c.cpp): it must be the library's, bit for bit.
  static const std::string crc_problem = [] {
    std::string problem;
    return check_crc32c(problem) ? std::string() : problem;
  }();
  if (!crc_problem.empty()) return Status(Reason::InternalError, "store: " + crc_problem);

  rocksdb::DBOptions db_opts;
  db_opts.create_if_missing = true;
  db_opts.create_missing_column_families = true;
  db_opts.paranoid_checks = true;
  // A torn last record (crash mid-write, never acknowledged) is dropped; corruption anywhere
  // else refuses to open rather than silently rewinding acknowledged writes.
  db_opts.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  db_opts.max_background_jobs = 2;
  db_opts.bytes_per_sync = 1 << 20;
  db_opts.keep_log_file_num = 3;
  db_opts.max_log_file_size = 8 << 20;
  db_opts.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  db_opts.max_total_wal_size = 128 << 20;

  auto cache = rocksdb::NewLRUCache(32 << 20);
  const rocksdb::CompressionType compression = pick_compression();
  // Flushes and the first compaction write uncompressed: compressing every flushed memtable
  // took ~4% of the server's CPU under a create load, and the young levels are rewritten soon
  // anyway. The deeper levels, which hold most of the bytes, are compressed.
  std::vector<rocksdb::CompressionType> per_level(7, compression);
  per_level[0] = per_level[1] = rocksdb::kNoCompression;

  rocksdb::BlockBasedTableOptions current_table;
  current_table.block_cache = cache;
  current_table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // Index and filter blocks stay in table-reader memory (a few bytes per object): competing
  // with data blocks in a small cache, they were evicted and re-read on every point read.
  current_table.cache_index_and_filter_blocks = false;
  rocksdb::ColumnFamilyOptions current_opts;
  current_opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(current_table));
  current_opts.write_buffer_size = 32 << 20;
  current_opts.max_write_buffer_number = 3;
  current_opts.arena_block_size = 1 << 20;
  current_opts.compression = compression;
  current_opts.compression_per_level = per_level;

  rocksdb::BlockBasedTableOptions history_table;
  history_table.block_cache = cache;
  history_table.block_size = 16 << 10;
  history_table.cache_index_and_filter_blocks = true;
  rocksdb::ColumnFamilyOptions history_opts;
  history_opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(history_table));
  history_opts.write_buffer_size = 32 << 20;
  history_opts.max_write_buffer_number = 3;
  history_opts.arena_block_size = 1 << 20;
  history_opts.compression = compression;
  history_opts.compression_per_level = per_level;

  rocksdb::ColumnFamilyOptions meta_opts;
  meta_opts.write_buffer_size = 1 << 20;
  rocksdb::BlockBasedTableOptions meta_table;
  meta_table.block_cache = cache;
  meta_opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(meta_table));

  // Compactions yield CPU and disk to the committer's WAL syncs; flushes keep normal priority
  // so memtables never fill up behind them. (Process-wide; best effort.)
  static std::once_flag lower_priority;
  std::call_once(lower_priority, [] {
    rocksdb::Env::Default()->LowerThreadPoolIOPriority(rocksdb::Env::Priority::LOW);
    rocksdb::Env::Default()->LowerThreadPoolCPUPriority(rocksdb::Env::Priority::LOW);
  });

  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, meta_opts},
      {"current", current_opts},
      {"history", history_opts},
  };
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_opts, options.path, cfs, &handles, &db);
  if (!s.ok()) return open_error(options.path, s);

  Result<Meta> meta = verify(db, handles, options.path);
  if (!meta) {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    db->Close();
    delete db;
    return meta.status();
  }
  return std::unique_ptr<Store>(new RocksDbStore(options, db, std::move(handles), *meta));
}

}  // namespace berth::store
