// Events: what controllers record about the objects they act on (core/v1 Events), correlated
// as client-go's tools/record does so a busy loop does not flood the store:
//  - a spam filter: a token bucket per source and object (burst 25, one more every 5 minutes);
//  - aggregation: more than 10 events within 10 minutes that differ only in their message
//    become one "(combined from similar events): <message>" event;
//  - deduplication: a repeat of an identical event patches count and lastTimestamp of the
//    event already written instead of writing a new one.
// Writes happen on background threads; when they fall behind, new events are dropped.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "controllers/util.h"

namespace berth::client {
class Client;
}

namespace berth::controllers {

// The decision of the correlator for one event.
struct CorrelatedEvent {
  json event;          // what to write (count, timestamps, message set)
  bool patch = false;  // an update of an event already written (name in event.metadata.name)
  bool skip = false;   // dropped by the spam filter
  std::string key;     // the dedup key the result is recorded under
};

// client-go's EventCorrelator: spam filter, aggregator and logger. Pure logic; thread-safe.
class EventCorrelator {
 public:
  struct Options {
    std::size_t lru_size = 4096;
    int max_events = 10;                                // similar events before aggregating
    std::chrono::seconds max_interval{600};             // window for similar events
    double spam_qps = 1.0 / 300.0;                      // refill of the spam bucket
    int spam_burst = 25;
  };
  EventCorrelator() : EventCorrelator(Options{}) {}
  explicit EventCorrelator(Options options) : options_(options) {}

  CorrelatedEvent correlate(json event, TimePoint now);
  // What the server answered for a written event (its name and count) for later patches.
  void update_state(const std::string& key, const json& written);

 private:
  template <class V>
  struct Lru {
    std::list<std::pair<std::string, V>> order;
    std::unordered_map<std::string, typename std::list<std::pair<std::string, V>>::iterator> map;
    V* find(const std::string& k) {
      auto it = map.find(k);
      if (it == map.end()) return nullptr;
      order.splice(order.begin(), order, it->second);
      return &it->second->second;
    }
    V& put(const std::string& k, V v, std::size_t cap) {
      if (V* existing = find(k)) return *existing = std::move(v);
      order.emplace_front(k, std::move(v));
      map[k] = order.begin();
      if (order.size() > cap) {
        map.erase(order.back().first);
        order.pop_back();
      }
      return order.front().second;
    }
  };
  struct Aggregate {
    std::unordered_map<std::string, bool> local_keys;  // distinct messages seen
    TimePoint last;
  };
  struct Logged {
    std::int64_t count = 0;
    std::string first_timestamp, name, resource_version;
  };
  struct Bucket {
    double tokens;
    TimePoint last;
  };

  std::mutex mu_;
  Options options_;
  Lru<Aggregate> aggregates_;
  Lru<Logged> logged_;
  Lru<Bucket> spam_;
};

class EventRecorder;

// Writes correlated events through the API on a few background threads (events of one object
// always on the same thread, so a patch never overtakes its create).
class EventSink {
 public:
  explicit EventSink(std::shared_ptr<client::Client> client, std::size_t threads = 2, std::size_t max_queue = 1000);
  ~EventSink();
  // A recorder for one component (source.component and reportingComponent).
  std::shared_ptr<EventRecorder> recorder(const std::string& component, const std::string& host = "");
  void stop();  // writes what is queued, then joins

 private:
  friend class EventRecorder;
  void enqueue(json event);
  void run(std::size_t shard);

  std::shared_ptr<client::Client> client_;
  EventCorrelator correlator_;
  struct Shard {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<json> queue;
  };
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::thread> threads_;
  std::size_t max_queue_;
  std::atomic<bool> stopping_{false};
};

class EventRecorder {
 public:
  // type is Normal or Warning. object is the involved object (kind and apiVersion filled in
  // from the object, or from the ones given).
  void event(const json& object, const std::string& type, const std::string& reason, const std::string& message);
  void event(const json& object, const std::string& api_version, const std::string& kind, const std::string& type,
             const std::string& reason, const std::string& message);
  const std::string& component() const { return component_; }

  // The Event object the recorder would send (before correlation); exposed for tests.
  static json make_event(const json& object, const std::string& api_version, const std::string& kind,
                         const std::string& type, const std::string& reason, const std::string& message,
                         const std::string& component, const std::string& host, TimePoint now);

 private:
  friend class EventSink;
  EventRecorder(EventSink* sink, std::string component, std::string host)
      : sink_(sink), component_(std::move(component)), host_(std::move(host)) {}
  EventSink* sink_;
  std::string component_, host_;
};

}  // namespace berth::controllers
