// The storage contract every backend meets (RocksDB embedded today, etcd later).
// Keys are strings, values opaque bytes. Every successful write takes the next global
// revision atomically with its data; that number is the object's resourceVersion and the
// position watches resume from. Callers never see how a backend keeps history.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/status.h"

namespace berth::store {

using api::Result;
using api::Status;
using Revision = std::int64_t;

struct Object {
  std::string key;
  std::string value;
  Revision create_revision = 0;  // revision of the write that created this key (etcd's CreateRevision)
  Revision mod_revision = 0;     // revision of the last write to this key; the resourceVersion
};

struct ListOptions {
  std::string prefix;       // keys that start with this
  std::string start_after;  // continue after this key (exclusive); empty = from the start
  std::size_t limit = 0;    // 0 = no limit
  Revision revision = 0;    // read the state as of this revision; 0 = the latest
};

struct ListResult {
  std::vector<Object> items;
  Revision revision = 0;  // the revision the whole list was read at
  bool more = false;      // true when keys past the last item remain (continue from its key)
};

// A write's outcome: the revision it took.
struct WriteResult {
  Revision revision = 0;
};

// A removal's outcome: the revision of the deletion and the object as it was.
struct RemoveResult {
  Revision revision = 0;
  Object previous;
};

enum class EventType { Put, Delete };

struct Event {
  EventType type = EventType::Put;
  Revision revision = 0;  // the write's revision (for a Put, the new mod_revision)
  std::string key;
  Revision create_revision = 0;
  // For Put the new value; for Delete the value that was deleted. Shared by every watcher.
  std::shared_ptr<const std::string> value;
  // The value before this write (null when the key did not exist), and its mod_revision.
  std::shared_ptr<const std::string> prev_value;
  Revision prev_revision = 0;
};

// A live subscription to the writes under a prefix. Events arrive in revision order,
// without gaps. A consumer that falls too far behind is cut off (ended() says why)
// rather than ever slowing writers.
class Watch {
 public:
  virtual ~Watch() = default;
  // Removes and returns up to max waiting events, oldest first; empty when none wait.
  virtual std::vector<Event> take(std::size_t max) = 0;
  // Once set, no further events will arrive beyond those still waiting: Ok after
  // cancel(), Gone when cut off for being too slow, ServiceUnavailable when the store closes.
  virtual std::optional<Status> ended() = 0;
  // Stops delivery; idempotent, safe from any thread.
  virtual void cancel() = 0;
};

// Called from a store thread whenever events or an end arrive for a watch. It must not block
// and must not call back into the watch; post the work elsewhere.
using WatchNotify = std::function<void()>;

class Store {
 public:
  virtual ~Store() = default;

  // NotFound if absent.
  virtual Result<Object> get(std::string_view key) = 0;

  // Keys under a prefix in key order, all read at one revision. A continued list passes the
  // revision of its first page and the last key it saw. Gone if that revision was compacted.
  virtual Result<ListResult> list(const ListOptions& options) = 0;

  // Counts the keys under a prefix at the latest revision.
  virtual Result<std::size_t> count(std::string_view prefix) = 0;

  // AlreadyExists if the key is present.
  virtual Result<WriteResult> create(std::string_view key, std::string value) = 0;

  // Replaces the value of an existing key. With expected_revision != 0, Conflict unless the
  // key's mod_revision is exactly that (compare-and-swap). NotFound if absent.
  virtual Result<WriteResult> update(std::string_view key, std::string value,
                                     Revision expected_revision = 0) = 0;

  // Deletes a key, conditioned like update. NotFound if absent.
  virtual Result<RemoveResult> remove(std::string_view key, Revision expected_revision = 0) = 0;

  // Delivers every write under prefix with revision > after. Gone if history no longer
  // reaches back to after (it was compacted). after may be ahead of the store: events wait.
  virtual Result<std::shared_ptr<Watch>> watch(std::string_view prefix, Revision after,
                                               WatchNotify notify) = 0;

  // The revision of the last acknowledged write (0 for an empty store).
  virtual Revision current_revision() = 0;

  // Keeps, for a prefix, the revision of the newest write to a key under it, so that a cache
  // of something read from under it can tell it is still exact without reading again: it is
  // if prefix_revision is what it was before the read. Register before relying on it. A store
  // that does not keep one answers current_revision(): the cache then holds only while
  // nothing at all is written.
  virtual void track_prefix(std::string_view prefix) { (void)prefix; }
  virtual Revision prefix_revision(std::string_view prefix) {
    (void)prefix;
    return current_revision();
  }
  // Writes at or below this revision are no longer in history.
  virtual Revision compacted_revision() = 0;
};

}  // namespace berth::store
