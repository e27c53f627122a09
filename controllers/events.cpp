#include "controllers/events.h"

#include <functional>
#include <sstream>

#include "client/client.h"

namespace berth::controllers {

namespace {

std::string join_fields(std::initializer_list<std::string> parts) {
  std::string out;
  for (const auto& p : parts) out += p;  // client-go joins with "" too
  return out;
}

std::string hex_nanos(TimePoint t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  std::ostringstream os;
  os << std::hex << ns;
  return os.str();
}

}  // namespace

CorrelatedEvent EventCorrelator::correlate(json event, TimePoint now) {
  const json& io = event["involvedObject"];
  std::string component = str(at(event, {"source", "component"}));
  std::string host = str(at(event, {"source", "host"}));
  std::string object_id = str(at(io, {"kind"})) + str(at(io, {"namespace"})) + str(at(io, {"name"}));
  std::string type = str(at(event, {"type"})), reason = str(at(event, {"reason"}));
  std::string message = str(at(event, {"message"}));
  std::string event_key = join_fields({component, host, object_id, str(at(io, {"fieldPath"})), str(at(io, {"uid"})),
                                       str(at(io, {"apiVersion"})), type, reason, message});
  std::string aggregate_key = join_fields({component, host, object_id, str(at(io, {"uid"})),
                                           str(at(io, {"apiVersion"})), type, reason,
                                           str(at(event, {"reportingComponent"})),
                                           str(at(event, {"reportingInstance"}))});
  std::string spam_key =
      join_fields({component, host, object_id, str(at(io, {"uid"})), str(at(io, {"apiVersion"})), type});

  std::lock_guard lock(mu_);
  CorrelatedEvent out;

  // Aggregation of similar events.
  Aggregate record;
  if (Aggregate* found = aggregates_.find(aggregate_key)) record = *found;
  if (now - record.last > options_.max_interval) record = Aggregate{};
  record.local_keys[message] = true;
  record.last = now;
  std::string key = event_key;
  bool aggregated = false;
  if (static_cast<int>(record.local_keys.size()) >= options_.max_events) {
    record.local_keys.erase(record.local_keys.begin());
    json agg = {{"metadata", {{"name", str(at(io, {"name"})) + "." + hex_nanos(now)},
                              {"namespace", str(at(event, {"metadata", "namespace"}))}}},
                {"involvedObject", io},
                {"reason", reason},
                {"message", "(combined from similar events): " + message},
                {"source", event["source"]},
                {"firstTimestamp", format_time(now)},
                {"lastTimestamp", format_time(now)},
                {"count", 1},
                {"type", type},
                {"eventTime", nullptr},
                {"reportingComponent", event.value("reportingComponent", "")},
                {"reportingInstance", event.value("reportingInstance", "")}};
    event = std::move(agg);
    key = aggregate_key;
    aggregated = true;
  }
  aggregates_.put(aggregate_key, std::move(record), options_.lru_size);
  (void)aggregated;

  // Deduplication: a repeat patches the event already written.
  if (Logged* last = logged_.find(key); last && last->count > 0) {
    event["metadata"]["name"] = last->name;
    if (!last->resource_version.empty()) event["metadata"]["resourceVersion"] = last->resource_version;
    event["firstTimestamp"] = last->first_timestamp;
    event["count"] = last->count + 1;
    out.patch = true;
  }
  Logged logged;
  logged.count = num(event["count"], 1);
  logged.first_timestamp = str(event["firstTimestamp"]);
  logged.name = str(at(event, {"metadata", "name"}));
  logged.resource_version = str(at(event, {"metadata", "resourceVersion"}));
  logged_.put(key, std::move(logged), options_.lru_size);

  // The spam filter: a token bucket per source and object.
  Bucket* bucket = spam_.find(spam_key);
  if (!bucket) bucket = &spam_.put(spam_key, Bucket{static_cast<double>(options_.spam_burst), now}, options_.lru_size);
  double elapsed = std::chrono::duration<double>(now - bucket->last).count();
  if (elapsed > 0) {
    bucket->tokens = std::min<double>(options_.spam_burst, bucket->tokens + elapsed * options_.spam_qps);
    bucket->last = now;
  }
  if (bucket->tokens < 1) {
    out.skip = true;
    return out;
  }
  bucket->tokens -= 1;
  out.event = std::move(event);
  out.key = std::move(key);
  return out;
}

void EventCorrelator::update_state(const std::string& key, const json& written) {
  std::lock_guard lock(mu_);
  Logged logged;
  logged.count = num(at(written, {"count"}), 1);
  logged.first_timestamp = str(at(written, {"firstTimestamp"}));
  logged.name = name_of(written);
  logged.resource_version = rv_of(written);
  logged_.put(key, std::move(logged), options_.lru_size);
}

// ---- EventSink ----------------------------------------------------------------------------

EventSink::EventSink(std::shared_ptr<client::Client> client, std::size_t threads, std::size_t max_queue)
    : client_(std::move(client)), max_queue_(max_queue) {
  if (threads == 0) threads = 1;
  for (std::size_t i = 0; i < threads; ++i) shards_.push_back(std::make_unique<Shard>());
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this, i] { run(i); });
}

EventSink::~EventSink() { stop(); }

std::shared_ptr<EventRecorder> EventSink::recorder(const std::string& component, const std::string& host) {
  return std::shared_ptr<EventRecorder>(new EventRecorder(this, component, host));
}

void EventSink::stop() {
  if (stopping_.exchange(true)) return;
  for (auto& s : shards_) {
    std::lock_guard lock(s->mu);
    s->cv.notify_all();
  }
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

void EventSink::enqueue(json event) {
  if (stopping_) return;
  const json& io = event["involvedObject"];
  std::size_t h = std::hash<std::string>{}(str(at(io, {"uid"})) + str(at(io, {"name"})));
  Shard& s = *shards_[h % shards_.size()];
  {
    std::lock_guard lock(s.mu);
    if (s.queue.size() >= max_queue_ / shards_.size() + 1) {
      log('W', "events", "dropping event " + str(at(event, {"reason"})) + " for " + str(at(io, {"name"})) +
                             ": too many queued", 2);
      return;
    }
    s.queue.push_back(std::move(event));
  }
  s.cv.notify_one();
}

void EventSink::run(std::size_t shard) {
  Shard& s = *shards_[shard];
  for (;;) {
    json event;
    {
      std::unique_lock lock(s.mu);
      s.cv.wait(lock, [&] { return stopping_.load() || !s.queue.empty(); });
      if (s.queue.empty()) return;
      event = std::move(s.queue.front());
      s.queue.pop_front();
    }
    auto c = correlator_.correlate(std::move(event), Clock::now());
    if (c.skip) continue;
    const std::string ns = str(at(c.event, {"metadata", "namespace"}));
    const std::string name = str(at(c.event, {"metadata", "name"}));
    api::Result<json> written = api::Status(api::Reason::NotFound, "");
    if (c.patch) {
      json patch = {{"count", c.event["count"]}, {"lastTimestamp", c.event["lastTimestamp"]},
                    {"message", c.event["message"]}};
      written = client_->patch(resources::kEvents.path(ns, name), patch, "application/merge-patch+json");
    }
    if (!c.patch || (!written && written.status().reason() == api::Reason::NotFound)) {
      json body = c.event;
      body["metadata"].erase("resourceVersion");
      if (!c.patch) body["count"] = c.event["count"];
      for (int attempt = 0; attempt < 3; ++attempt) {
        written = client_->create(resources::kEvents.path(ns), body);
        if (written || written.status().reason() == api::Reason::AlreadyExists ||
            written.status().reason() == api::Reason::Invalid || written.status().reason() == api::Reason::Forbidden ||
            written.status().reason() == api::Reason::NotFound || stopping_)
          break;
        std::this_thread::sleep_for(std::chrono::milliseconds(200 * (attempt + 1)));
      }
    }
    if (written) {
      correlator_.update_state(c.key, *written);
    } else {
      log('W', "events", "could not write event " + str(c.event["reason"]) + " on " + ns + "/" + name + ": " +
                             written.status().message(), 1);
    }
  }
}

// ---- EventRecorder ------------------------------------------------------------------------

json EventRecorder::make_event(const json& object, const std::string& api_version, const std::string& kind,
                               const std::string& type, const std::string& reason, const std::string& message,
                               const std::string& component, const std::string& host, TimePoint now) {
  std::string ns = namespace_of(object);
  json ref = {{"kind", kind}, {"name", name_of(object)}, {"uid", uid_of(object)}, {"apiVersion", api_version}};
  if (!ns.empty()) ref["namespace"] = ns;
  std::string rv = rv_of(object);
  if (!rv.empty()) ref["resourceVersion"] = rv;
  json source = {{"component", component}};
  if (!host.empty()) source["host"] = host;
  std::string ts = format_time(now);
  return {{"apiVersion", "v1"},
          {"kind", "Event"},
          {"metadata", {{"name", name_of(object) + "." + hex_nanos(now)}, {"namespace", ns.empty() ? "default" : ns}}},
          {"involvedObject", std::move(ref)},
          {"reason", reason},
          {"message", message.size() > 1024 ? message.substr(0, 1021) + "..." : message},
          {"source", std::move(source)},
          {"firstTimestamp", ts},
          {"lastTimestamp", ts},
          {"count", 1},
          {"type", type},
          {"eventTime", nullptr},
          {"reportingComponent", component},
          {"reportingInstance", host}};
}

void EventRecorder::event(const json& object, const std::string& type, const std::string& reason,
                          const std::string& message) {
  event(object, str(at(object, {"apiVersion"})), str(at(object, {"kind"})), type, reason, message);
}

void EventRecorder::event(const json& object, const std::string& api_version, const std::string& kind,
                          const std::string& type, const std::string& reason, const std::string& message) {
  if (!sink_) return;
  sink_->enqueue(make_event(object, api_version, kind, type, reason, message, component_, host_, Clock::now()));
}

}  // namespace berth::controllers
