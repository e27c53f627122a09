#include "nodeagent/logs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace berth::nodeagent {

std::string format_cri_record(const CriRecord& r) {
  std::string out = format_nano_fixed(r.time);
  out += ' ';
  out += r.stream;
  out += r.partial ? " P " : " F ";
  out += r.content;
  out += '\n';
  return out;
}

bool parse_cri_record(std::string_view line, CriRecord& out) {
  auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return false;
  auto t = parse_time(line.substr(0, sp1));
  if (!t) return false;
  auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return false;
  std::string_view stream = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (stream != "stdout" && stream != "stderr") return false;
  // The tag field may carry several ':'-separated tags; only P/F matters. Older writers had none.
  std::string_view rest = line.substr(sp2 + 1);
  bool partial = false;
  auto sp3 = rest.find(' ');
  std::string_view tag = sp3 == std::string_view::npos ? rest : rest.substr(0, sp3);
  if (tag == "P" || tag == "F" || tag.find(':') != std::string_view::npos) {
    partial = tag.substr(0, 1) == "P";
    rest = sp3 == std::string_view::npos ? std::string_view() : rest.substr(sp3 + 1);
  }
  out.time = *t;
  out.stream = std::string(stream);
  out.partial = partial;
  out.content = std::string(rest);
  return true;
}

void CriLineSplitter::feed(std::string_view data, Clock::time_point now, std::vector<CriRecord>& out) {
  buf_.append(data);
  std::size_t start = 0;
  for (;;) {
    auto nl = buf_.find('\n', start);
    if (nl == std::string::npos) break;
    out.push_back({now, stream_, false, buf_.substr(start, nl - start)});
    start = nl + 1;
  }
  buf_.erase(0, start);
  while (buf_.size() >= max_line_) {
    out.push_back({now, stream_, true, buf_.substr(0, max_line_)});
    buf_.erase(0, max_line_);
  }
}

void CriLineSplitter::finish(Clock::time_point now, std::vector<CriRecord>& out) {
  if (!buf_.empty()) out.push_back({now, stream_, false, buf_});
  buf_.clear();
}

CriLogFile::CriLogFile(std::string path, int64_t max_size, int max_files)
    : path_(std::move(path)), max_size_(max_size), max_files_(std::max(1, max_files)) {
  open();
}

CriLogFile::~CriLogFile() {
  if (fd_ >= 0) ::close(fd_);
}

void CriLogFile::open() {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  struct stat st;
  size_ = (fd_ >= 0 && ::fstat(fd_, &st) == 0) ? st.st_size : 0;
}

void CriLogFile::rotate() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  // Rotated names carry a timestamp without ':' (the kubelet's 20060102-150405).
  auto now = Clock::now();
  std::time_t secs = Clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%d-%H%M%S", &tm);
  std::string rotated = path_ + "." + buf;
  ::rename(path_.c_str(), rotated.c_str());
  // Keep max_files - 1 rotated files.
  std::string dir = path_.substr(0, path_.rfind('/'));
  std::string base = path_.substr(path_.rfind('/') + 1) + ".";
  std::vector<std::string> rotated_files;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n.size() > base.size() && n.compare(0, base.size(), base) == 0) rotated_files.push_back(n);
    }
    ::closedir(d);
  }
  std::sort(rotated_files.begin(), rotated_files.end());
  while (static_cast<int>(rotated_files.size()) > max_files_ - 1) {
    ::unlink((dir + "/" + rotated_files.front()).c_str());
    rotated_files.erase(rotated_files.begin());
  }
  open();
}

void CriLogFile::write(const CriRecord& record) {
  if (fd_ < 0) open();
  if (fd_ < 0) return;
  std::string line = format_cri_record(record);
  if (size_ > 0 && size_ + static_cast<int64_t>(line.size()) > max_size_) rotate();
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  size_ += static_cast<int64_t>(line.size());
}

api::Result<LogOptions> parse_log_options(
    const std::function<std::optional<std::string>(const std::string&)>& param, bool* previous) {
  LogOptions o;
  auto boolean = [&](const char* name, bool& out) -> api::Status {
    auto v = param(name);
    if (!v) return {};
    if (*v == "true" || *v == "1" || v->empty()) out = true;
    else if (*v == "false" || *v == "0") out = false;
    else return api::Status(api::Reason::BadRequest, std::string("invalid ") + name + " value: " + *v);
    return {};
  };
  auto integer = [&](const char* name, std::optional<int64_t>& out, int64_t min) -> api::Status {
    auto v = param(name);
    if (!v) return {};
    char* end = nullptr;
    errno = 0;
    long long n = std::strtoll(v->c_str(), &end, 10);
    if (v->empty() || *end || errno) return api::Status(api::Reason::BadRequest, std::string("invalid ") + name + " value: " + *v);
    if (n < min) return api::Status(api::Reason::BadRequest, std::string(name) + " must be greater than or equal to " + std::to_string(min));
    out = n;
    return {};
  };
  bool prev = false;
  if (auto s = boolean("follow", o.follow); !s) return s;
  if (auto s = boolean("timestamps", o.timestamps); !s) return s;
  if (auto s = boolean("previous", prev); !s) return s;
  if (previous) *previous = prev;
  if (auto s = integer("tailLines", o.tail_lines, 0); !s) return s;
  if (auto s = integer("limitBytes", o.limit_bytes, 1); !s) return s;
  std::optional<int64_t> since_seconds;
  if (auto s = integer("sinceSeconds", since_seconds, 1); !s) return s;
  if (since_seconds) o.since = Clock::now() - std::chrono::seconds(*since_seconds);
  if (auto v = param("sinceTime")) {
    auto t = parse_time(*v);
    if (!t) return api::Status(api::Reason::BadRequest, "invalid sinceTime value: " + *v);
    o.since = *t;
  }
  return o;
}

bool LogRenderer::add_line(std::string_view raw, std::string& out) {
  if (done_) return false;
  CriRecord r;
  if (!parse_cri_record(raw, r)) return true;  // not ours: skipped, as the kubelet does
  if (options_.since && r.time < *options_.since) {
    after_partial_ = r.partial;
    return true;
  }
  std::string text;
  if (options_.timestamps && !after_partial_) text = format_nano_go(r.time) + " ";
  text += r.content;
  if (!r.partial) text += '\n';
  after_partial_ = r.partial;
  if (options_.limit_bytes) {
    int64_t left = *options_.limit_bytes - written_;
    if (static_cast<int64_t>(text.size()) >= left) {
      out.append(text, 0, static_cast<std::size_t>(std::max<int64_t>(0, left)));
      written_ = *options_.limit_bytes;
      done_ = true;
      return false;
    }
  }
  written_ += static_cast<int64_t>(text.size());
  out += text;
  return true;
}

int64_t tail_offset(const std::string& path, int64_t n) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return 0;
  }
  int64_t size = st.st_size;
  if (n == 0) {
    ::close(fd);
    return size;
  }
  // Walk backwards counting newlines; the file normally ends with one.
  int64_t pos = size;
  int64_t lines = 0;
  std::vector<char> buf(64 * 1024);
  bool first = true;
  while (pos > 0) {
    int64_t chunk = std::min<int64_t>(pos, static_cast<int64_t>(buf.size()));
    pos -= chunk;
    if (::pread(fd, buf.data(), static_cast<std::size_t>(chunk), pos) != chunk) break;
    for (int64_t i = chunk - 1; i >= 0; --i) {
      if (buf[static_cast<std::size_t>(i)] != '\n') continue;
      if (first && pos + i == size - 1) {
        first = false;
        continue;  // the newline ending the last line
      }
      if (++lines == n) {
        ::close(fd);
        return pos + i + 1;
      }
    }
    first = false;
  }
  ::close(fd);
  return 0;
}

api::Result<std::string> read_log(const std::string& path, const LogOptions& options) {
  auto text = read_file(path);
  if (!text) return text.take_status();
  std::size_t start = 0;
  if (options.tail_lines) start = static_cast<std::size_t>(tail_offset(path, *options.tail_lines));
  LogRenderer renderer(options);
  std::string out;
  std::string_view all(*text);
  while (start < all.size()) {
    auto nl = all.find('\n', start);
    if (nl == std::string_view::npos) break;  // a line still being written
    if (!renderer.add_line(all.substr(start, nl - start), out)) break;
    start = nl + 1;
  }
  return out;
}

LogFollower::LogFollower(std::string path, LogOptions options, std::function<bool()> finished)
    : path_(std::move(path)), renderer_(options), finished_(std::move(finished)) {
  if (options.tail_lines) start_offset_ = tail_offset(path_, *options.tail_lines);
}

LogFollower::~LogFollower() {
  if (fd_ >= 0) ::close(fd_);
}

LogFollower::State LogFollower::poll(std::string& out) {
  if (renderer_.done()) return State::Done;
  if (fd_ < 0) {
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return finished_() ? State::Done : State::Wait;
    struct stat st;
    if (::fstat(fd_, &st) == 0) inode_ = st.st_ino;
    if (!started_) {
      ::lseek(fd_, start_offset_, SEEK_SET);
      started_ = true;
    }
  }
  // Check `finished` before reading, so nothing written before the exit is missed.
  bool was_finished = finished_();
  char buf[64 * 1024];
  ssize_t n = ::read(fd_, buf, sizeof(buf));
  if (n > 0) {
    pending_.append(buf, static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (;;) {
      auto nl = pending_.find('\n', start);
      if (nl == std::string::npos) break;
      if (!renderer_.add_line(std::string_view(pending_).substr(start, nl - start), out)) return State::Done;
      start = nl + 1;
    }
    pending_.erase(0, start);
    return State::More;
  }
  // At the end: the file may have been rotated away under us.
  struct stat st;
  if (::stat(path_.c_str(), &st) == 0 && st.st_ino != inode_) {
    ::close(fd_);
    fd_ = -1;
    pending_.clear();
    return State::More;
  }
  return was_finished ? State::Done : State::Wait;
}

std::string pod_log_dir(const std::string& root, const std::string& ns, const std::string& name,
                        const std::string& uid) {
  return root + "/" + ns + "_" + name + "_" + uid;
}

std::string container_log_path(const std::string& root, const std::string& ns, const std::string& name,
                               const std::string& uid, const std::string& container, int restart_count) {
  return pod_log_dir(root, ns, name, uid) + "/" + container + "/" + std::to_string(restart_count) + ".log";
}

}  // namespace berth::nodeagent
