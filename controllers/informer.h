// Informers: a thread-safe cache of one resource kept current by list + watch over the API
// (client-go's reflector and indexer). The watch resumes from the last resourceVersion it saw
// (bookmarks keep that fresh); a 410 Gone or an expired continue token makes it list again, and
// the relist is diffed against the cache so handlers see adds, updates and deletes as usual.
// Handlers run on the informer's thread after the cache has changed: keep them short (enqueue).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "controllers/util.h"

namespace berth::client {
class Client;
class WatchStream;
}  // namespace berth::client

namespace berth::controllers {

struct EventHandler {
  std::function<void(const ObjectPtr&)> on_add;
  std::function<void(const ObjectPtr& old_obj, const ObjectPtr& new_obj)> on_update;
  std::function<void(const ObjectPtr&)> on_delete;  // the last state seen
};

// Index values of one object ("" values are skipped).
using IndexFunc = std::function<std::vector<std::string>(const json& obj)>;

struct InformerOptions {
  std::string namespace_;       // one namespace, or "" for all
  std::string label_selector;   // as the labelSelector query parameter
  std::string field_selector;
  std::size_t page_size = 1000;
  // Trims each object before it is cached (e.g. metadata only), to save memory.
  std::function<void(json&)> transform;
};

class Informer {
 public:
  Informer(std::shared_ptr<client::Client> client, Resource resource, InformerOptions options = {});
  ~Informer();
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  const Resource& resource() const { return resource_; }

  // Indexes are best added before start(); adding one later indexes what is cached. A name
  // already present is kept (several controllers may ask for the same index).
  void add_index(const std::string& name, IndexFunc fn);
  // A handler added after start() first gets on_add for everything cached, as in client-go.
  void add_handler(EventHandler handler);

  void start();
  void stop();
  bool synced() const { return synced_.load(); }
  // Waits for the first complete list; false on timeout or stop.
  bool wait_synced(std::chrono::milliseconds timeout) const;

  ObjectPtr get(const std::string& key) const;  // "ns/name" or "name"
  ObjectPtr get(const std::string& ns, const std::string& name) const { return get(make_key(ns, name)); }
  std::vector<ObjectPtr> list() const;
  std::vector<ObjectPtr> list_namespace(const std::string& ns) const;  // the built-in "namespace" index
  std::vector<ObjectPtr> by_index(const std::string& index, const std::string& value) const;
  std::size_t count_index(const std::string& index, const std::string& value) const;
  std::size_t size() const;
  std::string last_resource_version() const;

  // Applies one watch event as if it came from the server (tests, and a writer that wants
  // its own write visible at once). type is ADDED, MODIFIED or DELETED.
  void apply(const std::string& type, json obj);
  // Replaces the whole cache as a relist does.
  void replace(std::vector<json> items, const std::string& resource_version);

 private:
  struct Index {
    IndexFunc fn;
    std::unordered_map<std::string, std::unordered_set<std::string>> values;
  };
  struct Pending {  // one handler call, made after the lock is released
    enum Type { Add, Update, Delete } type;
    ObjectPtr old_obj, new_obj;
  };

  void run();
  api::Status list_all();
  // Returns Gone when a relist is needed; Ok when the stream ended normally.
  api::Status watch_once();
  std::string query(bool watch) const;
  void index_add_locked(const std::string& key, const json& obj);
  void index_remove_locked(const std::string& key, const json& obj);
  void upsert_locked(const std::string& key, ObjectPtr obj, std::vector<Pending>& out);
  void dispatch(std::vector<Pending>& events);
  json prepare(json obj) const;

  std::shared_ptr<client::Client> client_;
  Resource resource_;
  InformerOptions options_;

  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, ObjectPtr> items_;
  std::map<std::string, Index> indexes_;
  std::string resource_version_;

  std::mutex handlers_mu_;  // held while handlers run, so handlers see events in order
  std::vector<EventHandler> handlers_;

  std::atomic<bool> synced_{false};
  std::atomic<bool> stop_{false};
  mutable std::mutex state_mu_;
  mutable std::condition_variable state_cv_;
  std::shared_ptr<client::WatchStream> stream_;  // the open watch, closed by stop()
  std::thread thread_;
  bool started_ = false;
};

// One informer per resource, shared by every controller that reads it.
class InformerFactory {
 public:
  explicit InformerFactory(std::shared_ptr<client::Client> client) : client_(std::move(client)) {}
  ~InformerFactory() { stop(); }

  // The informer for resource (in one namespace when ns is set); created on first use and
  // started by start() or, when the factory already runs, at once.
  std::shared_ptr<Informer> get(const Resource& resource, const std::string& ns = "");
  void start();
  void stop();
  // Waits until every informer made so far has listed once.
  bool wait_synced(std::chrono::milliseconds timeout);
  std::shared_ptr<client::Client> client() const { return client_; }

 private:
  std::shared_ptr<client::Client> client_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Informer>> informers_;
  bool started_ = false;
};

// Common index functions.
namespace indexes {
inline constexpr const char* kNamespace = "namespace";
inline constexpr const char* kController = "controller";    // controller ownerReference uid
inline constexpr const char* kOrphan = "orphan";            // namespace of objects without a controller
inline constexpr const char* kNodeName = "nodeName";        // spec.nodeName of pods
std::vector<std::string> controller(const json& obj);
std::vector<std::string> orphan(const json& obj);
std::vector<std::string> node_name(const json& obj);
}  // namespace indexes

}  // namespace berth::controllers
