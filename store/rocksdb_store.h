// The embedded store backend: one RocksDB directory on local disk, with group commit so
// concurrent writers share one WAL fsync, and in-process watch fan-out.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "store/store.h"

namespace berth::store {

struct RocksDbOptions {
  std::string path;  // the data directory; created when missing
  // History older than this (by the wall-clock time of each write) is compacted away;
  // watches and continued lists from before it get Gone.
  std::chrono::milliseconds compaction_window{std::chrono::minutes(5)};
  std::chrono::milliseconds compaction_interval{std::chrono::seconds(10)};
  // Events a watcher may have waiting before it is cut off with Gone.
  std::size_t watch_queue_limit = 10000;
  // fsync the WAL before acknowledging a write. Only tests and benchmarks turn this off.
  bool sync = true;
  // How long the committer may hold a synced batch open for more writers once writes arrive
  // as a steady stream (see committer_loop); zero commits each batch at once.
  std::chrono::microseconds group_commit_window{1000};
};

// Opens (or creates) the store at options.path. InternalError naming the path when the
// directory is corrupt, unreadable, or locked by another process.
api::Result<std::unique_ptr<Store>> open_rocksdb(const RocksDbOptions& options);

}  // namespace berth::store
