// Exclusive ownership of a data directory, so two servers never share one store.
#pragma once

#include <memory>
#include <string>

#include "api/status.h"

namespace berth::apiserver {

class DataDirLock {
 public:
  // Creates the directory (0700) if needed and takes an exclusive lock on DIR/berth.lock.
  // Fails with a message naming the holder's pid when another process has it.
  static api::Result<std::unique_ptr<DataDirLock>> acquire(const std::string& dir);
  ~DataDirLock();
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace berth::apiserver
