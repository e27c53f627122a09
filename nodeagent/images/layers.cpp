// Layer unpacking with libarchive. Each layer lands in its own directory and is used as an
// overlayfs lowerdir, so OCI whiteouts are written in overlayfs' form instead of applied:
// ".wh.<name>" -> character device 0/0 named <name>; ".wh..wh..opq" -> the directory gets
// trusted.overlay.opaque=y (both need root, as the agent is).
//
// Two libarchive readers are chained so the DiffID (sha256 of the uncompressed tar) is known
// without a second pass: `raw` undoes the compression (gzip, zstd, ... or none) and `tar`
// reads entries from what `raw` produces, hashing it on the way.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <set>
#include <tuple>

#include "nodeagent/images/archive_api.h"

namespace berth::nodeagent::images::detail {
using api::Reason;
using api::Status;

namespace {

// "./a//b/../c/" -> "a/c"; nullopt when the path climbs out of the root.
std::optional<std::string> clean_path(std::string_view p) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view c = p.substr(i, j - i);
    if (c == "..") {
      if (parts.empty()) return std::nullopt;
      parts.pop_back();
    } else if (!c.empty() && c != ".") {
      parts.push_back(c);
    }
    i = j + 1;
  }
  std::string out;
  for (auto c : parts) {
    if (!out.empty()) out += '/';
    out += c;
  }
  return out;
}

std::string parent_of(const std::string& p) {
  size_t s = p.rfind('/');
  return s == std::string::npos ? "" : p.substr(0, s);
}

std::string base_of(const std::string& p) {
  size_t s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

std::string join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + "/" + b;
}

// Opens root/rel as a directory without following any symlink on the way; with create,
// missing components are made (0755). -1 and errno on failure.
int open_dir_beneath(const std::string& root, const std::string& rel, bool create) {
  int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  size_t i = 0;
  while (fd >= 0 && i < rel.size()) {
    size_t j = rel.find('/', i);
    if (j == std::string::npos) j = rel.size();
    std::string comp = rel.substr(i, j - i);
    i = j + 1;
    int next = ::openat(fd, comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && create) {
      if (::mkdirat(fd, comp.c_str(), 0755) == 0 || errno == EEXIST)
        next = ::openat(fd, comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    int e = errno;
    ::close(fd);
    errno = e;
    fd = next;
  }
  return fd;
}

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct WriterDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
using Reader = std::unique_ptr<archive, ArchiveDeleter>;
using Writer = std::unique_ptr<archive, WriterDeleter>;

struct RawSource {
  archive* raw;
  Sha256* hash;
  std::string error;
  char buf[1 << 16];
};

la_ssize_t read_raw(archive*, void* ud, const void** out) {
  auto* s = static_cast<RawSource*>(ud);
  la_ssize_t n = archive_read_data(s->raw, s->buf, sizeof s->buf);
  if (n < 0) {
    s->error = archive_error_string(s->raw) ? archive_error_string(s->raw) : "decompression failed";
    return -1;
  }
  s->hash->update(s->buf, static_cast<size_t>(n));
  *out = s->buf;
  return n;
}

std::string err(archive* a, const char* fallback) {
  const char* e = archive_error_string(a);
  return e ? e : fallback;
}

// Drops overlayfs' own xattrs from an entry: a layer must not plant redirects or opaque marks.
void filter_xattrs(archive_entry* e) {
  if (archive_entry_xattr_count(e) == 0) return;
  std::vector<std::tuple<std::string, std::string>> keep;
  bool dropped = false;
  const char* name;
  const void* value;
  size_t size;
  archive_entry_xattr_reset(e);
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    if (std::string_view(name).rfind("trusted.overlay.", 0) == 0) {
      dropped = true;
      continue;
    }
    keep.emplace_back(name, std::string(static_cast<const char*>(value), size));
  }
  if (!dropped) return;
  archive_entry_xattr_clear(e);
  for (const auto& [n, v] : keep) archive_entry_xattr_add_entry(e, n.c_str(), v.data(), v.size());
}

// A hard link's target must already be in this layer and reachable without symlinks; link(2)
// would otherwise follow a planted symlink and link a host file into the image.
Status check_hardlink_target(const std::string& dest, const std::string& target) {
  int dir = open_dir_beneath(dest, parent_of(target), false);
  if (dir < 0) return Status(Reason::Invalid, "hard link target \"" + target + "\" is not in the layer");
  struct stat st;
  int r = ::fstatat(dir, base_of(target).c_str(), &st, AT_SYMLINK_NOFOLLOW);
  ::close(dir);
  if (r != 0 || S_ISDIR(st.st_mode))
    return Status(Reason::Invalid, "hard link target \"" + target + "\" is not a file in the layer");
  return Status();
}

// The compressions images use (OCI: gzip, zstd; docker load also took bzip2 and xz). Not
// filter_all: some of its filters run external programs.
void support_filters(archive* a) {
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_zstd(a);
  archive_read_support_filter_xz(a);
  archive_read_support_filter_bzip2(a);
}

constexpr int kLayerFlags = ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                            ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                            ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SPARSE;

Status copy_data(archive* in, archive* out, const std::string& name) {
  const void* buf;
  size_t size;
  la_int64_t offset;
  while (true) {
    int r = archive_read_data_block(in, &buf, &size, &offset);
    if (r == ARCHIVE_EOF) return Status();
    if (r < ARCHIVE_WARN) return Status(Reason::Invalid, name + ": " + err(in, "read failed"));
    if (archive_write_data_block(out, buf, size, offset) < ARCHIVE_WARN)
      return Status(Reason::InternalError, name + ": " + err(out, "write failed"));
  }
}

}  // namespace

api::Result<std::string> unpack_layer(const std::string& blob_path, const std::string& dest,
                                      const std::vector<std::string>& lowers) {
  if (Status ready = archive_ready(); !ready.is_ok()) return ready;
  Reader raw(archive_read_new());
  support_filters(raw.get());
  archive_read_support_format_raw(raw.get());
  if (archive_read_open_filename(raw.get(), blob_path.c_str(), 1 << 16) != ARCHIVE_OK)
    return Status(Reason::InternalError, "open layer " + blob_path + ": " + err(raw.get(), "failed"));
  archive_entry* re = nullptr;
  if (archive_read_next_header(raw.get(), &re) != ARCHIVE_OK)
    return Status(Reason::Invalid, "layer " + blob_path + ": " + err(raw.get(), "empty or unreadable"));

  Sha256 hash;
  auto src = std::make_unique<RawSource>();
  src->raw = raw.get();
  src->hash = &hash;
  Reader tar(archive_read_new());
  archive_read_support_format_tar(tar.get());
  if (archive_read_open(tar.get(), src.get(), nullptr, read_raw, nullptr) != ARCHIVE_OK)
    return Status(Reason::Invalid, "layer is not a tar archive: " + err(tar.get(), src->error.c_str()));

  // Numeric uid/gid from the tar are kept (no name lookup: the image's names are not the host's).
  // archive_write_disk_new() reads the umask by setting it briefly; with EXTRACT_PERM it is not used.
  Writer disk(archive_write_disk_new());
  archive_write_disk_set_options(disk.get(), kLayerFlags);

  std::set<std::string> written, explicit_dirs, implied_dirs, opaque;
  implied_dirs.insert("");
  auto fail = [&](Reason reason, const std::string& what) -> api::Result<std::string> {
    std::string extra = src->error.empty() ? "" : " (" + src->error + ")";
    return Status(reason, what + extra);
  };

  while (true) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(tar.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return fail(Reason::Invalid, "read layer: " + err(tar.get(), "bad tar header"));
    const char* raw_name = archive_entry_pathname(e);
    auto path = clean_path(raw_name ? raw_name : "");
    if (!path) return fail(Reason::Invalid, "layer entry \"" + std::string(raw_name ? raw_name : "") + "\" escapes the layer");
    for (std::string p = parent_of(*path); !p.empty(); p = parent_of(p)) implied_dirs.insert(p);
    const std::string base = base_of(*path);
    const std::string dir = parent_of(*path);

    if (base.rfind(".wh.", 0) == 0) {
      if (base == ".wh..wh..opq") {
        opaque.insert(dir);
      } else if (base.rfind(".wh..wh.", 0) != 0) {  // other .wh..wh. names are AUFS metadata
        std::string target = join(dir, base.substr(4));
        // A whiteout hides lower layers only; what this layer itself put there stays.
        if (!written.count(target)) {
          archive_entry* w = archive_entry_new();
          archive_entry_set_pathname(w, (dest + "/" + target).c_str());
          archive_entry_set_filetype(w, AE_IFCHR);
          archive_entry_set_perm(w, 0);
          archive_entry_set_rdev(w, 0);
          archive_entry_set_uid(w, 0);
          archive_entry_set_gid(w, 0);
          archive_entry_set_mtime(w, archive_entry_mtime(e), 0);
          int wr = archive_write_header(disk.get(), w);
          archive_entry_free(w);
          if (wr < ARCHIVE_WARN) return fail(Reason::InternalError, "whiteout " + target + ": " + err(disk.get(), "failed"));
          archive_write_finish_entry(disk.get());
          written.insert(target);
        }
      }
      continue;
    }

    const bool is_dir = archive_entry_filetype(e) == AE_IFDIR;
    if (path->empty() && !is_dir) continue;  // a non-directory named "." or "/"
    if (const char* hl = archive_entry_hardlink(e)) {
      auto target = clean_path(hl);
      if (!target || target->empty()) return fail(Reason::Invalid, "hard link \"" + *path + "\" escapes the layer");
      Status st = check_hardlink_target(dest, *target);
      if (!st.is_ok()) return fail(st.reason(), st.message());
      archive_entry_set_hardlink(e, (dest + "/" + *target).c_str());
    }
    filter_xattrs(e);
    archive_entry_set_pathname(e, path->empty() ? dest.c_str() : (dest + "/" + *path).c_str());
    r = archive_write_header(disk.get(), e);
    if (r < ARCHIVE_WARN) return fail(Reason::Invalid, "extract \"" + *path + "\": " + err(disk.get(), "failed"));
    if (archive_entry_size(e) > 0) {
      Status st = copy_data(tar.get(), disk.get(), *path);
      if (!st.is_ok()) return fail(st.reason(), st.message());
    }
    if (archive_write_finish_entry(disk.get()) < ARCHIVE_WARN)
      return fail(Reason::InternalError, "extract \"" + *path + "\": " + err(disk.get(), "failed"));
    written.insert(*path);
    if (is_dir) explicit_dirs.insert(*path);
  }
  // The tar reader stops at the end-of-archive blocks; the DiffID covers every byte after them too.
  while (true) {
    la_ssize_t n = archive_read_data(raw.get(), src->buf, sizeof src->buf);
    if (n < 0) return fail(Reason::Invalid, "read layer: " + err(raw.get(), "decompression failed"));
    if (n == 0) break;
    hash.update(src->buf, static_cast<size_t>(n));
  }
  if (archive_write_close(disk.get()) < ARCHIVE_WARN)  // applies directory modes and times
    return fail(Reason::InternalError, "finish layer: " + err(disk.get(), "failed"));

  for (const auto& d : opaque) {
    int fd = open_dir_beneath(dest, d, true);
    if (fd < 0) return Status(Reason::Invalid, "opaque directory \"" + d + "\": " + std::strerror(errno));
    int r = ::fsetxattr(fd, "trusted.overlay.opaque", "y", 1, 0);
    int e = errno;
    ::close(fd);
    if (r != 0)
      return Status(Reason::InternalError, "set trusted.overlay.opaque on \"" + d + "\": " + std::strerror(e) +
                                               " (needs root and a filesystem with trusted xattrs)");
  }

  // Directories only implied by deeper paths: take owner, mode and times from the lower layer
  // that shows that directory, as the merged view would (overlayfs shows the upper one's).
  for (const auto& d : implied_dirs) {
    if (explicit_dirs.count(d)) continue;
    int fd = open_dir_beneath(dest, d, false);
    if (fd < 0) continue;
    struct stat st{};
    bool found = false;
    for (const auto& lower : lowers) {
      int lfd = open_dir_beneath(lower, d, false);
      if (lfd >= 0) {
        found = ::fstat(lfd, &st) == 0;
        ::close(lfd);
        break;
      }
      if (errno != ENOENT) break;  // a file, whiteout or symlink there: nothing to inherit
    }
    if (found) {
      if (::fchown(fd, st.st_uid, st.st_gid) != 0 || ::fchmod(fd, st.st_mode & 07777) != 0) {
        int e = errno;
        ::close(fd);
        return Status(Reason::InternalError, "directory \"" + d + "\": " + std::strerror(e));
      }
      timespec times[2] = {st.st_atim, st.st_mtim};
      ::futimens(fd, times);
    } else if (d.empty()) {
      ::fchmod(fd, 0755);  // a base layer without a "./" entry: the usual root
    }
    ::close(fd);
  }
  return hash.digest();
}

api::Status extract_archive(const std::string& archive_path, const std::string& dest) {
  if (Status ready = archive_ready(); !ready.is_ok()) return ready;
  Reader in(archive_read_new());
  support_filters(in.get());
  archive_read_support_format_tar(in.get());
  if (archive_read_open_filename(in.get(), archive_path.c_str(), 1 << 16) != ARCHIVE_OK)
    return Status(Reason::Invalid, "open " + archive_path + ": " + err(in.get(), "failed"));
  Writer disk(archive_write_disk_new());
  archive_write_disk_set_options(disk.get(), ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                                 ARCHIVE_EXTRACT_SECURE_NODOTDOT);
  while (true) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(in.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return Status(Reason::Invalid, archive_path + ": " + err(in.get(), "not a tar archive"));
    auto path = clean_path(archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
    if (!path) return Status(Reason::Invalid, archive_path + ": entry escapes the archive");
    if (path->empty()) continue;
    auto type = archive_entry_filetype(e);
    const char* hl = archive_entry_hardlink(e);
    if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK && !hl) continue;
    if (hl) {
      auto target = clean_path(hl);
      if (!target || target->empty()) return Status(Reason::Invalid, archive_path + ": hard link escapes the archive");
      Status st = check_hardlink_target(dest, *target);
      if (!st.is_ok()) return st;
      archive_entry_set_hardlink(e, (dest + "/" + *target).c_str());
    }
    archive_entry_xattr_clear(e);
    archive_entry_set_pathname(e, (dest + "/" + *path).c_str());
    archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
    if (archive_write_header(disk.get(), e) < ARCHIVE_WARN)
      return Status(Reason::Invalid, archive_path + ": extract \"" + *path + "\": " + err(disk.get(), "failed"));
    if (archive_entry_size(e) > 0) {
      Status st = copy_data(in.get(), disk.get(), *path);
      if (!st.is_ok()) return st;
    }
    archive_write_finish_entry(disk.get());
  }
  if (archive_write_close(disk.get()) < ARCHIVE_WARN)
    return Status(Reason::InternalError, archive_path + ": " + err(disk.get(), "extract failed"));
  return Status();
}

}  // namespace berth::nodeagent::images::detail
