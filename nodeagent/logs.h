// Container logs in the CRI format the kubelet reads ("<RFC3339Nano> <stdout|stderr> <F|P> <text>"),
// written by the shim and read back for `kubectl logs` (follow, tailLines, timestamps,
// sinceSeconds/sinceTime, limitBytes), as pkg/kubelet/kuberuntime/logs does.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodeagent/util.h"

namespace berth::nodeagent {

// One CRI log record.
struct CriRecord {
  Clock::time_point time{};
  std::string stream;  // "stdout" | "stderr"
  bool partial = false;
  std::string content;  // without the trailing newline
};

std::string format_cri_record(const CriRecord& r);  // with the trailing "\n"
// Parses one line (without its "\n"); false when it is not a CRI record.
bool parse_cri_record(std::string_view line, CriRecord& out);

// Turns a stream's bytes into records: full lines become F records, a line longer than
// max_line is cut into P records, and what remains at end of stream becomes an F record.
class CriLineSplitter {
 public:
  explicit CriLineSplitter(std::string stream, std::size_t max_line = 16 * 1024)
      : stream_(std::move(stream)), max_line_(max_line) {}
  void feed(std::string_view data, Clock::time_point now, std::vector<CriRecord>& out);
  void finish(Clock::time_point now, std::vector<CriRecord>& out);

 private:
  std::string stream_, buf_;
  std::size_t max_line_;
};

// Appends records to a log file, rotating it (to <path>.<timestamp>) past max_size and keeping
// at most max_files files in all, as the kubelet's container log manager does (10Mi, 5).
class CriLogFile {
 public:
  CriLogFile(std::string path, int64_t max_size = 10 * 1024 * 1024, int max_files = 5);
  ~CriLogFile();
  void write(const CriRecord& record);

 private:
  void open();
  void rotate();
  std::string path_;
  int64_t max_size_;
  int max_files_;
  int fd_ = -1;
  int64_t size_ = 0;
};

struct LogOptions {
  bool follow = false;
  bool timestamps = false;
  std::optional<int64_t> tail_lines;
  std::optional<int64_t> limit_bytes;
  std::optional<Clock::time_point> since;
};

// Parses kubelet's query parameters (follow, tailLines, timestamps, sinceSeconds, sinceTime,
// limitBytes, previous); a malformed value is an error message for a 400.
api::Result<LogOptions> parse_log_options(const std::function<std::optional<std::string>(const std::string&)>& param,
                                          bool* previous);

// Renders records as kubectl shows them: the content, with "<time> " before each line when
// timestamps are asked for (not before the continuation of a partial line).
class LogRenderer {
 public:
  explicit LogRenderer(LogOptions options) : options_(std::move(options)) {}
  // Appends the rendering of one raw file line to out; false once limitBytes is reached.
  bool add_line(std::string_view raw_line, std::string& out);
  bool done() const { return done_; }

 private:
  LogOptions options_;
  bool after_partial_ = false;
  int64_t written_ = 0;
  bool done_ = false;
};

// The byte offset where the last n lines of `path` begin (0 when the file has fewer).
int64_t tail_offset(const std::string& path, int64_t n);

// Reads and renders a whole log (no follow).
api::Result<std::string> read_log(const std::string& path, const LogOptions& options);

// Follows a log file: everything from the tail offset, then new lines as they are written,
// across rotations, until `finished()` says the container has exited and the file is drained.
class LogFollower {
 public:
  LogFollower(std::string path, LogOptions options, std::function<bool()> finished);
  ~LogFollower();
  enum class State { More, Wait, Done };
  State poll(std::string& out);

 private:
  std::string path_;
  LogRenderer renderer_;
  std::function<bool()> finished_;
  int fd_ = -1;
  uint64_t inode_ = 0;
  std::string pending_;
  bool started_ = false;
  int64_t start_offset_ = 0;
};

// kubelet's log directory layout: <root>/<ns>_<name>_<uid>/<container>/<restartCount>.log
std::string pod_log_dir(const std::string& root, const std::string& ns, const std::string& name,
                        const std::string& uid);
std::string container_log_path(const std::string& root, const std::string& ns, const std::string& name,
                               const std::string& uid, const std::string& container, int restart_count);

}  // namespace berth::nodeagent
