#include "apiserver/watch.h"

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <string_view>
#include <unordered_map>

#include "apiserver/codec.h"
#include "apiserver/errors.h"
#include "apiserver/list.h"
#include "apiserver/metrics.h"
#include "store/store.h"

namespace berth::apiserver {

using api::Reason;
using api::Status;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// Carries the server's wake function to the store's notifications, which may fire before
// the server has started the stream.
class Waker {
 public:
  void wake() {
    std::function<void()> f;
    {
      std::lock_guard lock(mu_);
      if (!fn_) {
        early_ = true;
        return;
      }
      f = fn_;
    }
    f();
  }
  void set(std::function<void()> fn) {
    bool early;
    {
      std::lock_guard lock(mu_);
      fn_ = std::move(fn);
      early = early_;
    }
    if (early) fn_();
  }
  void clear() {
    std::lock_guard lock(mu_);
    fn_ = nullptr;
  }

 private:
  std::mutex mu_;
  std::function<void()> fn_;
  bool early_ = false;
};

// The encoded lines of recent events, shared by the watches that send an event the same way
// (no selector, no Table, same version): with 1,000 watchers of one namespace, each write was
// 1,000 parses and serializations of the same object, and delivery took tens of milliseconds.
// An entry keeps its event's value alive, so the value's address cannot be reused while the
// entry is there.
class EventLineCache {
 public:
  struct Key {
    const std::string* value = nullptr;
    std::int64_t revision = 0;
    const Strategy* strategy = nullptr;
    std::string version;
    std::string_view type;
    bool operator==(const Key&) const = default;
  };

  std::shared_ptr<const std::string> find(const Key& key) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : it->second.line;
  }

  void add(const Key& key, std::shared_ptr<const std::string> value, std::shared_ptr<const std::string> line) {
    std::lock_guard lock(mu_);
    if (!entries_.emplace(key, Entry{std::move(value), std::move(line)}).second) return;
    order_.push_back(key);
    if (order_.size() > kMaxEntries) {
      entries_.erase(order_.front());
      order_.pop_front();
    }
  }

 private:
  // Enough for every watcher to find a burst of writes still there after taking its 256.
  static constexpr std::size_t kMaxEntries = 1024;
  struct Entry {
    std::shared_ptr<const std::string> value;
    std::shared_ptr<const std::string> line;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const {
      std::size_t h = std::hash<const void*>()(k.value);
      h = h * 31 + std::hash<std::int64_t>()(k.revision);
      h = h * 31 + std::hash<const void*>()(k.strategy);
      h = h * 31 + std::hash<std::string>()(k.version);
      return h * 31 + std::hash<std::string_view>()(k.type);
    }
  };
  std::mutex mu_;
  std::unordered_map<Key, Entry, KeyHash> entries_;
  std::deque<Key> order_;
};

// Never destroyed: stream threads may still poll while the process exits.
EventLineCache& event_line_cache() {
  static auto* cache = new EventLineCache;
  return *cache;
}

class WatchSource final : public net::StreamSource {
 public:
  WatchSource(const ResourceRequest& rr, Filter filter, std::shared_ptr<Waker> waker, Metrics& metrics)
      : strategy_(rr.strategy),
        group_(rr.group),
        version_(rr.version),
        table_(rr.table),
        include_object_(rr.include_object),
        filter_(std::move(filter)),
        waker_(std::move(waker)),
        metrics_(metrics) {
    rr_.strategy = strategy_;
    rr_.group = group_;
    rr_.version = version_;
    rr_.include_object = include_object_;
    metrics_.watch_opened();
  }
  ~WatchSource() override { metrics_.watch_closed(); }

  std::shared_ptr<store::Watch> watch;
  std::deque<std::string> initial;  // lines sent before live events
  Clock::time_point deadline;
  bool bookmarks = false;
  std::chrono::seconds bookmark_interval{60};
  std::int64_t last_revision = 0;

  void start(std::function<void()> wake) override {
    next_bookmark_ = Clock::now() + bookmark_interval;
    waker_->set(std::move(wake));
  }

  State poll(std::string& out) override {
    if (stopped_) return State::Done;
    std::size_t budget = 256;
    while (!initial.empty() && budget--) {
      out += initial.front();
      initial.pop_front();
    }
    if (!initial.empty()) return State::More;
    if (!watch) return State::Done;  // an error event was the whole stream

    auto events = watch->take(256);
    for (auto& e : events) {
      append_event(e, out);
      last_revision = e.revision;
    }
    if (events.size() == 256) return State::More;
    if (auto ended = watch->ended()) return State::Done;
    auto now = Clock::now();
    if (now >= deadline) return State::Done;
    if (bookmarks && now >= next_bookmark_) {
      out += line("BOOKMARK", bookmark_object(last_revision));
      next_bookmark_ = now + bookmark_interval;
    }
    return State::Wait;
  }

  void stop() override {
    stopped_ = true;
    waker_->clear();
    if (watch) watch->cancel();
  }

  json bookmark_object(std::int64_t revision) const {
    const auto& i = strategy_->info();
    return {{"kind", i.kind},
            {"apiVersion", i.group.empty() ? version_ : i.group + "/" + version_},
            {"metadata", {{"resourceVersion", std::to_string(revision)}, {"creationTimestamp", nullptr}}}};
  }

  std::string object_line(const char* type, json stored) {
    if (table_) {
      std::vector<json> one{std::move(stored)};
      json t = make_table(rr_, one, "", "", !sent_columns_);
      sent_columns_ = true;
      return line(type, t);
    }
    return line(type, strategy_->to_version(std::move(stored), version_));
  }

  // {"type":...,"object":...} and a newline; built as text so the object is not copied
  // into a wrapper first. type is one of Kubernetes' event types (no escaping needed).
  static std::string line(const char* type, const json& object) {
    std::string out = "{\"type\":\"";
    out += type;
    out += "\",\"object\":";
    out += object.dump();
    out += "}\n";
    return out;
  }

 private:
  // The line of an event every watcher without a selector sends alike, made once.
  std::shared_ptr<const std::string> shared_line(const store::Event& e, const char* type) {
    static const auto kNothing = std::make_shared<const std::string>();
    if (!e.value) return kNothing;
    EventLineCache::Key key{e.value.get(), e.revision, strategy_, version_, type};
    auto& cache = event_line_cache();
    if (auto hit = cache.find(key)) return hit;
    std::string text;
    const std::string rv = std::to_string(e.revision);
    bool spliced = false;
    if (strategy_->serves_stored_form(version_)) {
      // The stored bytes with the resourceVersion put in, as the parse and dump below would give.
      const auto& i = strategy_->info();
      text = "{\"type\":\"";
      text += type;
      text += "\",\"object\":";
      spliced = splice_stored(*e.value, rv, i.group.empty() ? version_ : i.group + "/" + version_, i.kind, false, text);
      if (spliced) text += "}\n";
      else text.clear();
    }
    json obj = spliced ? json() : json::parse(*e.value, nullptr, false);
    if (!spliced && !obj.is_discarded() && obj.is_object()) {
      obj["metadata"]["resourceVersion"] = rv;
      text = object_line(type, std::move(obj));
    }
    auto made = std::make_shared<const std::string>(std::move(text));
    cache.add(key, e.value, made);
    return made;
  }

  void append_event(const store::Event& e, std::string& out) {
    if (filter_.everything && !table_) {
      // Without a selector every event is sent: as it happened (a put of a new key is ADDED).
      out += *shared_line(e, e.type == store::EventType::Delete ? "DELETED" : e.prev_value ? "MODIFIED" : "ADDED");
      return;
    }
    auto decode = [&](const std::shared_ptr<const std::string>& v) -> json {
      if (!v) return json();
      json obj = json::parse(*v, nullptr, false);
      if (obj.is_discarded() || !obj.is_object()) return json();
      obj["metadata"]["resourceVersion"] = std::to_string(e.revision);
      return obj;
    };
    if (e.type == store::EventType::Delete) {
      json obj = decode(e.value);
      if (!obj.is_null() && matches(filter_, *strategy_, obj)) out += object_line("DELETED", std::move(obj));
      return;
    }
    json cur = decode(e.value);
    if (cur.is_null()) return;
    bool cur_passes = matches(filter_, *strategy_, cur);
    json old = filter_.everything ? json() : decode(e.prev_value);
    bool old_passes = e.prev_value && (filter_.everything || (!old.is_null() && matches(filter_, *strategy_, old)));
    if (cur_passes && old_passes) out += object_line("MODIFIED", std::move(cur));
    else if (cur_passes) out += object_line("ADDED", std::move(cur));
    else if (old_passes) out += object_line("DELETED", std::move(old));
  }

  const Strategy* strategy_;
  std::string group_, version_;
  bool table_;
  std::string include_object_;
  ResourceRequest rr_;
  Filter filter_;
  std::shared_ptr<Waker> waker_;
  Metrics& metrics_;
  Clock::time_point next_bookmark_;
  std::atomic<bool> stopped_{false};
  bool sent_columns_ = false;
};

net::Response stream_response(std::shared_ptr<WatchSource> source) {
  net::Response r;
  r.status = 200;
  r.headers.emplace_back("Content-Type", "application/json");
  r.stream = std::move(source);
  return r;
}

}  // namespace

net::Response serve_watch(Api& api, store::Store& store, ResourceRequest& rr, const ApiOptions& options) {
  auto filter = make_filter(rr);
  if (!filter) return status_response(filter.status());
  std::string rv_text(rr.param("resourceVersion").value_or(""));
  auto rv = parse_resource_version(rv_text);
  if (!rv) return status_response(rv.status());
  std::string send_initial(rr.param("sendInitialEvents").value_or(""));
  bool initial_events = rv_text.empty() || rv_text == "0" || send_initial == "true";
  std::string bookmarks_param(rr.param("allowWatchBookmarks").value_or(""));
  bool bookmarks = bookmarks_param == "true" || bookmarks_param == "True" || bookmarks_param == "1";
  if (send_initial == "true" && (std::string(rr.param("resourceVersionMatch").value_or("")) != "NotOlderThan" || !bookmarks))
    return status_response(Status(Reason::Invalid,
                                  "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents "
                                  "is forbidden for watch unless the WatchList feature gate is enabled and "
                                  "resourceVersionMatch is NotOlderThan and allowWatchBookmarks is true"));

  auto waker = std::make_shared<Waker>();
  auto source = std::make_shared<WatchSource>(rr, *filter, waker, api.metrics());
  source->bookmarks = bookmarks;
  source->bookmark_interval = options.bookmark_interval;
  std::chrono::seconds timeout = options.default_watch_timeout;
  if (auto t = rr.param("timeoutSeconds"); t && !t->empty()) {
    auto v = parse_resource_version(*t);
    if (!v) return status_response(Status(Reason::BadRequest, "timeoutSeconds must be a non-negative integer"));
    timeout = std::chrono::seconds(*v);
  }
  source->deadline = Clock::now() + timeout;

  std::int64_t from = *rv;
  if (initial_events) {
    // Current state first, as ADDED events, then changes after the revision it was read at.
    ResourceRequest list_rr = rr;
    net::Request list_http = *rr.http;
    list_http.query.clear();
    list_rr.http = &list_http;
    if (send_initial == "true" && *rv > 0) list_http.query.emplace_back("resourceVersion", rv_text);
    auto page = list_objects(store, list_rr, *filter);
    if (!page) return status_response(page.status());
    for (auto& obj : page->items) source->initial.push_back(source->object_line("ADDED", std::move(obj)));
    from = std::stoll(page->resource_version);
    if (send_initial == "true") {
      json b = source->bookmark_object(from);
      b["metadata"]["annotations"] = {{"k8s.io/initial-events-end", "true"}};
      source->initial.push_back(WatchSource::line("BOOKMARK", b));
    }
  }
  source->last_revision = from;
  auto w = store.watch(list_prefix(rr.info(), rr.namespace_), from, [waker] { waker->wake(); });
  if (!w) {
    if (w.status().reason() == Reason::Gone) {
      // As Kubernetes: the stream opens, carries one ERROR event, and ends.
      Status s(Reason::Expired, "too old resource version: " + std::to_string(from) + " (" +
                                    std::to_string(store.compacted_revision() + 1) + ")");
      source->initial.push_back(WatchSource::line("ERROR", status_json(s)));
      return stream_response(source);
    }
    return status_response(w.status());
  }
  source->watch = std::move(*w);
  return stream_response(source);
}

}  // namespace berth::apiserver
