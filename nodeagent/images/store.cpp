// The image store: content-addressed blobs, unpacked layers keyed by ChainID, images.json,
// and pull policy. Layout under the root:
//   blobs/sha256/<hex>     manifests, indexes, configs and layer blobs, each verified
//   layers/<chainID hex>/  one unpacked layer, ready to be an overlayfs lowerdir
//   images.json            {"images": {"<normalised ref or image ID>": record}}
//   tmp/                   work in progress, renamed into place when complete
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "nodeagent/images/internal.h"

namespace berth::nodeagent::images {
namespace fs = std::filesystem;
using api::Reason;
using api::Status;

namespace detail {

// ---------------------------------------------------------------- digests

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) { reset(); }
Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void Sha256::reset() { EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr); }
void Sha256::update(const void* data, size_t n) {
  if (n) EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, n);
}
std::string Sha256::digest() const {
  EVP_MD_CTX* copy = EVP_MD_CTX_new();
  EVP_MD_CTX_copy_ex(copy, static_cast<EVP_MD_CTX*>(ctx_));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(copy, md, &len);
  EVP_MD_CTX_free(copy);
  static const char* hex = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

std::string sha256_digest(std::string_view data) {
  Sha256 h;
  h.update(data.data(), data.size());
  return h.digest();
}

bool valid_digest(std::string_view d) {
  if (d.size() != 71 || d.substr(0, 7) != "sha256:") return false;
  for (char c : d.substr(7))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string digest_hex(std::string_view d) { return std::string(d.substr(d.find(':') + 1)); }

// ---------------------------------------------------------------- manifests and configs

api::Result<Descriptor> parse_descriptor(const json& j) {
  if (!j.is_object()) return Status(Reason::Invalid, "invalid descriptor: not an object");
  Descriptor d;
  if (j.contains("mediaType") && j["mediaType"].is_string()) d.media_type = j["mediaType"];
  if (!j.contains("digest") || !j["digest"].is_string())
    return Status(Reason::Invalid, "invalid descriptor: no digest");
  d.digest = j["digest"];
  if (!valid_digest(d.digest))
    return Status(Reason::Invalid, "unsupported digest \"" + d.digest + "\" (only sha256 is accepted)");
  if (j.contains("size") && j["size"].is_number_integer()) d.size = j["size"];
  if (d.size < 0) return Status(Reason::Invalid, "invalid descriptor " + d.digest + ": no size");
  if (j.contains("platform") && j["platform"].is_object()) {
    const json& p = j["platform"];
    if (p.contains("os") && p["os"].is_string()) d.os = p["os"];
    if (p.contains("architecture") && p["architecture"].is_string()) d.architecture = p["architecture"];
    if (p.contains("variant") && p["variant"].is_string()) d.variant = p["variant"];
  }
  if (j.contains("annotations") && j["annotations"].is_object()) d.annotations = j["annotations"];
  return d;
}

ManifestKind manifest_kind(std::string_view content_type, const json& body) {
  std::string_view ct = content_type.substr(0, content_type.find(';'));
  while (!ct.empty() && ct.back() == ' ') ct.remove_suffix(1);
  if (ct.empty() || ct == "application/json" || ct == "text/plain" || ct == "application/octet-stream") {
    if (body.is_object() && body.contains("mediaType") && body["mediaType"].is_string()) {
      ct = body["mediaType"].get_ref<const std::string&>();
    } else if (body.is_object() && body.contains("manifests")) {
      return ManifestKind::Index;
    } else if (body.is_object() && body.contains("layers") && body.contains("config")) {
      return ManifestKind::Manifest;
    } else {
      return ManifestKind::Unsupported;
    }
  }
  if (ct == kOciManifest || ct == kDockerManifest) return ManifestKind::Manifest;
  if (ct == kOciIndex || ct == kDockerList) return ManifestKind::Index;
  return ManifestKind::Unsupported;
}

api::Result<Manifest> parse_manifest(const json& body) {
  if (!body.is_object() || !body.contains("config") || !body.contains("layers") || !body["layers"].is_array())
    return Status(Reason::Invalid, "invalid image manifest: config and layers are required");
  Manifest m;
  auto cfg = parse_descriptor(body["config"]);
  if (!cfg) return cfg.take_status();
  m.config = std::move(*cfg);
  for (const auto& l : body["layers"]) {
    auto d = parse_descriptor(l);
    if (!d) return d.take_status();
    if (d->media_type.find("+encrypted") != std::string::npos || d->media_type.find("tar") == std::string::npos)
      return Status(Reason::Invalid, "unsupported layer media type \"" + d->media_type + "\"");
    m.layers.push_back(std::move(*d));
  }
  return m;
}

std::string host_architecture() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__arm__)
  return "arm";
#elif defined(__powerpc64__)
  return "ppc64le";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__riscv)
  return "riscv64";
#else
  return "amd64";
#endif
}

api::Result<Descriptor> select_platform(const json& index, std::string_view index_digest) {
  if (!index.is_object() || !index.contains("manifests") || !index["manifests"].is_array())
    return Status(Reason::Invalid, "invalid image index " + std::string(index_digest));
  const std::string arch = host_architecture();
  std::vector<Descriptor> all;
  for (const auto& e : index["manifests"]) {
    auto d = parse_descriptor(e);
    if (!d) return d.take_status();
    all.push_back(std::move(*d));
  }
  const Descriptor* best = nullptr;
  int best_score = -1;
  for (const auto& d : all) {
    if (d.os != "linux" || d.architecture != arch) continue;
    // Prefer the variant this machine runs natively (v8 for arm64; none elsewhere).
    int score = d.variant.empty() || (arch == "arm64" && d.variant == "v8") ? 2 : 1;
    if (score > best_score) best = &d, best_score = score;
  }
  // An index of one entry without a platform is an image with nothing to choose.
  if (!best && all.size() == 1 && all[0].os.empty() && all[0].architecture.empty()) best = &all[0];
  if (!best)
    return Status(Reason::NotFound,
                  "no match for platform linux/" + arch + " in manifest " + std::string(index_digest) + ": not found");
  return *best;
}

api::Result<ConfigInfo> parse_config(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status(Reason::Invalid, "invalid image config: not a JSON object");
  ConfigInfo info;
  auto strings = [](const json& v) {
    std::vector<std::string> out;
    if (v.is_array())
      for (const auto& s : v)
        if (s.is_string()) out.push_back(s);
    return out;
  };
  if (j.contains("config") && j["config"].is_object()) {
    const json& c = j["config"];
    if (c.contains("Entrypoint")) info.config.entrypoint = strings(c["Entrypoint"]);
    if (c.contains("Cmd")) info.config.cmd = strings(c["Cmd"]);
    if (c.contains("Env")) info.config.env = strings(c["Env"]);
    if (c.contains("WorkingDir") && c["WorkingDir"].is_string()) info.config.working_dir = c["WorkingDir"];
    if (c.contains("User") && c["User"].is_string()) info.config.user = c["User"];
  }
  if (!j.contains("rootfs") || !j["rootfs"].is_object() || !j["rootfs"].contains("diff_ids") ||
      !j["rootfs"]["diff_ids"].is_array())
    return Status(Reason::Invalid, "invalid image config: no rootfs.diff_ids");
  for (const auto& d : j["rootfs"]["diff_ids"]) {
    if (!d.is_string() || !valid_digest(d.get_ref<const std::string&>()))
      return Status(Reason::Invalid, "invalid image config: unsupported diff ID " + d.dump());
    info.diff_ids.push_back(d);
  }
  return info;
}

std::vector<std::string> chain_ids(const std::vector<std::string>& diff_ids) {
  std::vector<std::string> out;
  for (const auto& d : diff_ids) out.push_back(out.empty() ? d : sha256_digest(out.back() + " " + d));
  return out;
}

// ---------------------------------------------------------------- blobs

BlobWriter::BlobWriter(std::string tmp_path) : tmp_(std::move(tmp_path)), hash_(std::make_unique<Sha256>()) {
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    status_ = Status(Reason::InternalError, "create " + tmp_ + ": " + std::strerror(errno));
    tmp_.clear();
  }
}

BlobWriter::BlobWriter(BlobWriter&& o) noexcept
    : tmp_(std::move(o.tmp_)), fd_(o.fd_), size_(o.size_), limit_(o.limit_), hash_(std::move(o.hash_)),
      status_(std::move(o.status_)) {
  o.fd_ = -1;
  o.tmp_.clear();
}

BlobWriter::~BlobWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
}

bool BlobWriter::write(const char* data, size_t n) {
  if (!status_.is_ok()) return false;
  if (limit_ >= 0 && size_ + static_cast<int64_t>(n) > limit_) {
    status_ = Status(Reason::Invalid, "failed size validation: more than the expected " + std::to_string(limit_) + " bytes");
    return false;
  }
  hash_->update(data, n);
  size_ += static_cast<int64_t>(n);
  while (n > 0) {
    ssize_t w = ::write(fd_, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      status_ = Status(Reason::InternalError, "write " + tmp_ + ": " + std::strerror(errno));
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

void BlobWriter::reset() {
  if (fd_ < 0) return;
  if (::ftruncate(fd_, 0) != 0 || ::lseek(fd_, 0, SEEK_SET) != 0) {
    status_ = Status(Reason::InternalError, "truncate " + tmp_ + ": " + std::strerror(errno));
    return;
  }
  hash_->reset();
  size_ = 0;
  status_ = Status();
}

Status BlobWriter::commit(const std::string& dest, std::string_view expected_digest, int64_t expected_size) {
  if (!status_.is_ok()) return status_;
  const std::string ref = "failed commit on ref \"" + std::string(expected_digest) + "\": ";
  if (expected_size >= 0 && size_ != expected_size)
    return status_ = Status(Reason::Invalid, ref + "unexpected commit size " + std::to_string(size_) + ", expected " +
                                                 std::to_string(expected_size) + ": failed precondition");
  std::string got = hash_->digest();
  if (got != expected_digest)
    return status_ = Status(Reason::Invalid, ref + "unexpected commit digest " + got + ", expected " +
                                                 std::string(expected_digest) + ": failed precondition");
  if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
    fd_ = -1;
    return status_ = Status(Reason::InternalError, "sync " + tmp_ + ": " + std::strerror(errno));
  }
  fd_ = -1;
  if (::rename(tmp_.c_str(), dest.c_str()) != 0)
    return status_ = Status(Reason::InternalError, "rename to " + dest + ": " + std::strerror(errno));
  tmp_.clear();
  return Status();
}

api::Result<std::string> read_file(const std::string& path, size_t limit) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Status(errno == ENOENT ? Reason::NotFound : Reason::InternalError, "open " + path + ": " + std::strerror(errno));
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return Status(Reason::InternalError, "read " + path + ": " + std::strerror(e));
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > limit) {
      ::close(fd);
      return Status(Reason::RequestEntityTooLarge, path + " is larger than " + std::to_string(limit) + " bytes");
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

namespace {

Status fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status(Reason::InternalError, "open " + dir + ": " + std::strerror(errno));
  ::fsync(fd);
  ::close(fd);
  return Status();
}

bool exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

Status with_cause(Status s, const char* waiting_reason) {
  s.with_cause({waiting_reason, s.message(), "image"});
  return s;
}

// kubelet's ErrImagePull text, as containerd phrases it: failed to pull and unpack image "<ref>": <why>.
Status pull_failed(const Reference& r, const Status& inner, const std::string& stage) {
  std::string msg = "failed to pull and unpack image \"" + r.str() + "\": " + stage + inner.message();
  Reason reason = inner.reason() == Reason::Ok ? Reason::InternalError : inner.reason();
  return with_cause(Status(reason, msg), "ErrImagePull");
}

}  // namespace

std::string index_key(const Reference& r) { return r.digest.empty() ? r.name() + ":" + r.tag : r.name() + "@" + r.digest; }

// ---------------------------------------------------------------- the store

StoreImpl::StoreImpl(std::string root, std::vector<std::string> insecure)
    : root_(std::move(root)), insecure_(std::move(insecure)) {}

Status StoreImpl::init() {
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) return Status(Reason::InternalError, "create image store " + root_ + ": " + ec.message());
  // Canonical, so the symlink checks of layer extraction never trip over the store's own path.
  root_ = fs::canonical(root_, ec).string();
  if (ec) return Status(Reason::InternalError, "image store " + root_ + ": " + ec.message());
  for (const char* sub : {"blobs/sha256", "layers", "tmp"}) {
    fs::create_directories(root_ + "/" + sub, ec);
    if (ec) return Status(Reason::InternalError, "create " + root_ + "/" + sub + ": " + ec.message());
  }
  // Sweep what interrupted pulls of processes no longer running left behind.
  auto dead = [](const std::string& pid_text) {
    char* end = nullptr;
    long pid = std::strtol(pid_text.c_str(), &end, 10);
    return pid > 0 && end != pid_text.c_str() && (*end == '-' || *end == '\0') &&
           ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
  };
  for (const auto& e : fs::directory_iterator(root_ + "/tmp", ec))
    if (dead(e.path().filename().string())) fs::remove_all(e.path(), ec);
  const std::string index_tmp = "images.json.tmp-";
  for (const auto& e : fs::directory_iterator(root_, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(index_tmp, 0) == 0 && dead(name.substr(index_tmp.size()))) fs::remove(e.path(), ec);
  }
  auto idx = read_index();
  if (!idx) return idx.take_status();
  return Status();
}

std::string StoreImpl::blob_path(std::string_view digest) const { return root_ + "/blobs/sha256/" + digest_hex(digest); }
bool StoreImpl::has_blob(std::string_view digest) const { return valid_digest(digest) && exists(blob_path(digest)); }
std::string StoreImpl::layer_dir(std::string_view chain_id) const { return root_ + "/layers/" + digest_hex(chain_id); }

std::string StoreImpl::tmp_path(std::string_view hint) {
  static std::atomic<uint64_t> counter{0};
  return root_ + "/tmp/" + std::to_string(::getpid()) + "-" + std::to_string(++counter) + "-" + std::string(hint);
}

Status StoreImpl::put_blob(std::string_view data, std::string_view digest) {
  if (!valid_digest(digest)) return Status(Reason::Invalid, "unsupported digest \"" + std::string(digest) + "\"");
  if (has_blob(digest)) return Status();
  BlobWriter w = blob_writer();
  w.write(data.data(), data.size());
  return w.commit(blob_path(digest), digest, static_cast<int64_t>(data.size()));
}

Status StoreImpl::put_blob_file(const std::string& src, std::string_view digest, int64_t size, bool move) {
  if (!valid_digest(digest)) return Status(Reason::Invalid, "unsupported digest \"" + std::string(digest) + "\"");
  if (has_blob(digest)) return Status();
  int fd = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status(Reason::NotFound, "blob " + std::string(digest) + ": open " + src + ": " + std::strerror(errno));
  BlobWriter w = blob_writer();
  Sha256 hash;
  int64_t total = 0;
  char buf[1 << 16];
  Status st;
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      st = Status(Reason::InternalError, "read " + src + ": " + std::strerror(errno));
      break;
    }
    if (n == 0) break;
    if (move) {
      hash.update(buf, static_cast<size_t>(n));
      total += n;
    } else if (!w.write(buf, static_cast<size_t>(n))) {
      break;
    }
  }
  ::close(fd);
  if (!st.is_ok()) return st;
  if (!move) return w.commit(blob_path(digest), digest, size);
  const std::string ref = "failed commit on ref \"" + std::string(digest) + "\": ";
  if (size >= 0 && total != size)
    return Status(Reason::Invalid, ref + "unexpected commit size " + std::to_string(total) + ", expected " +
                                       std::to_string(size) + ": failed precondition");
  if (hash.digest() != digest)
    return Status(Reason::Invalid, ref + "unexpected commit digest " + hash.digest() + ", expected " +
                                       std::string(digest) + ": failed precondition");
  if (::rename(src.c_str(), blob_path(digest).c_str()) != 0)
    return Status(Reason::InternalError, "rename " + src + ": " + std::strerror(errno));
  return Status();
}

api::Result<std::string> StoreImpl::read_blob(std::string_view digest, size_t limit) const {
  if (!valid_digest(digest)) return Status(Reason::Invalid, "unsupported digest \"" + std::string(digest) + "\"");
  return read_file(blob_path(digest), limit);
}

api::Result<json> StoreImpl::read_index() const {
  auto text = read_file(root_ + "/images.json", 64 << 20);
  if (!text) {
    if (text.status().reason() == Reason::NotFound) return json{{"images", json::object()}};
    return text.take_status();
  }
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("images") || !j["images"].is_object())
    return Status(Reason::InternalError, root_ + "/images.json is not a valid image index");
  return j;
}

Status StoreImpl::update_index(const std::function<void(json&)>& change) {
  std::lock_guard lock(index_mu_);
  // flock serialises with other processes on the same store (`berth image import` beside an agent).
  int lfd = ::open((root_ + "/images.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lfd < 0) return Status(Reason::InternalError, "open images.lock: " + std::string(std::strerror(errno)));
  while (::flock(lfd, LOCK_EX) != 0 && errno == EINTR) {
  }
  auto finish = [&](Status s) {
    ::close(lfd);  // releases the lock
    return s;
  };
  auto idx = read_index();
  if (!idx) return finish(idx.take_status());
  change(*idx);
  std::string tmp = root_ + "/images.json.tmp-" + std::to_string(::getpid());
  std::string text = idx->dump(1) + "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return finish(Status(Reason::InternalError, "create " + tmp + ": " + std::strerror(errno)));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), (root_ + "/images.json").c_str()) != 0) {
    ::unlink(tmp.c_str());
    return finish(Status(Reason::InternalError, "write " + root_ + "/images.json: " + std::strerror(errno)));
  }
  fsync_dir(root_);
  return finish(Status());
}

api::Result<Image> StoreImpl::load(const json& rec, const std::string& ref) {
  if (!rec.is_object() || !rec.contains("config") || !rec["config"].is_string())
    return Status(Reason::InternalError, "image record for " + ref + " is invalid");
  const std::string config_digest = rec["config"];
  auto cfg_text = read_blob(config_digest, kMaxConfigBytes);
  if (!cfg_text) return Status(Reason::NotFound, "image " + ref + ": config " + config_digest + " is missing");
  auto cfg = parse_config(*cfg_text);
  if (!cfg) return cfg.take_status();
  Image img;
  img.ref = ref;
  img.digest = config_digest;
  img.config = std::move(cfg->config);
  if (rec.contains("repoDigest") && rec["repoDigest"].is_string()) img.repo_digest = rec["repoDigest"];
  for (const auto& chain : chain_ids(cfg->diff_ids)) {
    std::string dir = layer_dir(chain);
    if (!exists(dir)) return Status(Reason::NotFound, "image " + ref + ": layer " + chain + " is not unpacked");
    img.layer_dirs.push_back(std::move(dir));
  }
  return img;
}

api::Result<Image> StoreImpl::find(const std::string& ref) {
  auto idx = read_index();
  if (!idx) return idx.take_status();
  const json& images = (*idx)["images"];
  if (valid_digest(ref)) {  // an image ID
    if (images.contains(ref)) return load(images[ref], ref);
    for (const auto& [key, rec] : images.items())
      if (rec.is_object() && rec.value("config", "") == ref) return load(rec, ref);
    return Status(Reason::NotFound, "image \"" + ref + "\": not found");
  }
  auto r = parse_reference(ref);
  if (!r) return r.take_status();
  std::string key = index_key(*r);
  if (!images.contains(key)) return Status(Reason::NotFound, "image \"" + r->str() + "\": not found");
  return load(images[key], r->str());
}

api::Result<Image> StoreImpl::ensure(const std::string& ref, const std::string& pull_policy,
                                     const std::vector<PullAuth>& auths) {
  if (valid_digest(ref)) {  // an image ID, as CRI allows: only ever found, never pulled
    auto found = find(ref);
    if (found || pull_policy != "Never") {
      if (found) return found;
      return with_cause(Status(Reason::NotFound, "failed to pull and unpack image \"" + ref +
                                                     "\": an image ID cannot be pulled and is not present"),
                        "ErrImagePull");
    }
    return with_cause(Status(Reason::NotFound, "Container image \"" + ref + "\" is not present with pull policy of Never"),
                      "ErrImageNeverPull");
  }
  auto r = parse_reference(ref);
  if (!r)
    return with_cause(Status(Reason::Invalid, "Failed to apply default image tag \"" + ref +
                                                  "\": couldn't parse image name \"" + ref + "\": " + r.status().message()),
                      "InvalidImageName");
  std::string policy = pull_policy;
  if (policy.empty()) policy = r->tag == "latest" ? "Always" : "IfNotPresent";
  if (policy != "Always" && policy != "IfNotPresent" && policy != "Never")
    return with_cause(Status(Reason::Invalid, "unsupported image pull policy \"" + policy + "\""), "ErrImagePull");
  if (policy != "Always") {
    auto found = find(r->str());
    if (found) return found;
    if (policy == "Never")
      return with_cause(Status(Reason::NotFound, "Container image \"" + ref + "\" is not present with pull policy of Never"),
                        "ErrImageNeverPull");
  }
  return pulls_.run(r->str(), [&] {
    try {
      return pull(*r, auths);
    } catch (const std::exception& e) {
      return api::Result<Image>(pull_failed(*r, Status(Reason::InternalError, e.what()), ""));
    }
  });
}

api::Result<Image> StoreImpl::pull(const Reference& r, const std::vector<PullAuth>& auths) {
  RegistryClient client(r, insecure_, auths, &tokens_);
  const std::string resolve = "failed to resolve reference \"" + r.str() + "\": ";
  auto top = client.get_manifest(r.digest.empty() ? r.tag : r.digest);
  if (!top) return pull_failed(r, top.status(), resolve);
  const std::string top_digest = top->digest;

  Fetched current = std::move(*top);
  json body = json::parse(current.body, nullptr, false);
  if (body.is_discarded()) return pull_failed(r, Status(Reason::Invalid, "manifest " + top_digest + " is not JSON"), resolve);
  Status st = put_blob(current.body, current.digest);
  if (!st.is_ok()) return pull_failed(r, st, "");
  ManifestKind kind = manifest_kind(current.media_type, body);
  for (int depth = 0; kind == ManifestKind::Index; ++depth) {
    if (depth == 3) return pull_failed(r, Status(Reason::Invalid, "image indexes nested too deep"), "");
    auto pick = select_platform(body, current.digest);
    if (!pick) return pull_failed(r, pick.status(), "");
    auto next = client.get_manifest(pick->digest);
    if (!next) return pull_failed(r, next.status(), "failed to resolve manifest " + pick->digest + ": ");
    current = std::move(*next);
    body = json::parse(current.body, nullptr, false);
    if (body.is_discarded()) return pull_failed(r, Status(Reason::Invalid, "manifest " + current.digest + " is not JSON"), "");
    st = put_blob(current.body, current.digest);
    if (!st.is_ok()) return pull_failed(r, st, "");
    kind = manifest_kind(current.media_type, body);
  }
  if (kind != ManifestKind::Manifest)
    return pull_failed(r, Status(Reason::Invalid, "unsupported manifest media type \"" + current.media_type + "\""), "");
  auto m = parse_manifest(body);
  if (!m) return pull_failed(r, m.status(), "");

  auto fetch = [&](const Descriptor& d) {
    return fetches_.run(d.digest, [&] {
      if (has_blob(d.digest)) return Status();
      BlobWriter w = blob_writer();
      return client.get_blob(d, w, blob_path(d.digest));
    });
  };
  st = fetch(m->config);
  if (!st.is_ok()) return pull_failed(r, st, "failed to copy: ");
  auto cfg_text = read_blob(m->config.digest, kMaxConfigBytes);
  if (!cfg_text) return pull_failed(r, cfg_text.status(), "");
  auto cfg = parse_config(*cfg_text);
  if (!cfg) return pull_failed(r, cfg.status(), "");
  if (cfg->diff_ids.size() != m->layers.size())
    return pull_failed(r, Status(Reason::Invalid, "mismatched image rootfs and manifest layers"), "");
  auto chains = chain_ids(cfg->diff_ids);
  for (size_t i = 0; i < m->layers.size(); ++i) {
    if (exists(layer_dir(chains[i])) || has_blob(m->layers[i].digest)) continue;
    st = fetch(m->layers[i]);
    if (!st.is_ok()) return pull_failed(r, st, "failed to copy: ");
  }
  std::vector<std::string> keys;
  if (r.digest.empty()) keys.push_back(index_key(r));
  keys.push_back(r.name() + "@" + top_digest);
  if (current.digest != top_digest) keys.push_back(r.name() + "@" + current.digest);  // the platform's manifest
  auto img = commit_image(keys, current.digest, r.name() + "@" + top_digest, r.str());
  if (!img) return pull_failed(r, img.status(), "");
  return img;
}

Status StoreImpl::unpack_chain(const Manifest& m, const std::vector<std::string>& diff_ids,
                               const std::vector<std::string>& chains) {
  for (size_t i = 0; i < chains.size(); ++i) {
    const std::string dir = layer_dir(chains[i]);
    if (exists(dir)) continue;
    Status st = unpacks_.run(chains[i], [&]() -> Status {
      if (exists(dir)) return Status();
      const Descriptor& layer = m.layers[i];
      if (!has_blob(layer.digest)) return Status(Reason::NotFound, "layer blob " + layer.digest + " is missing");
      std::vector<std::string> lowers;
      for (size_t j = i; j-- > 0;) lowers.push_back(layer_dir(chains[j]));
      std::string tmp = tmp_path("layer");
      if (::mkdir(tmp.c_str(), 0755) != 0)
        return Status(Reason::InternalError, "mkdir " + tmp + ": " + std::strerror(errno));
      auto diff = unpack_layer(blob_path(layer.digest), tmp, lowers);
      std::error_code ec;
      if (!diff) {
        fs::remove_all(tmp, ec);
        return Status(diff.status().reason(), "failed to extract layer " + diff_ids[i] + ": " + diff.status().message());
      }
      if (*diff != diff_ids[i]) {
        fs::remove_all(tmp, ec);
        return Status(Reason::Invalid, "failed to extract layer " + diff_ids[i] + ": layer " + layer.digest +
                                           " unpacks to diff ID " + *diff + ", not the config's " + diff_ids[i]);
      }
      if (::rename(tmp.c_str(), dir.c_str()) != 0) {
        int e = errno;
        fs::remove_all(tmp, ec);
        if (e != EEXIST && e != ENOTEMPTY)  // else another process finished the same layer first
          return Status(Reason::InternalError, "rename layer into " + dir + ": " + std::strerror(e));
      }
      fsync_dir(root_ + "/layers");
      return Status();
    });
    if (!st.is_ok()) return st;
  }
  return Status();
}

api::Result<Image> StoreImpl::commit_image(const std::vector<std::string>& keys, const std::string& manifest_digest,
                                           const std::string& repo_digest, const std::string& display_ref) {
  auto mtext = read_blob(manifest_digest, kMaxManifestBytes);
  if (!mtext) return mtext.take_status();
  json mj = json::parse(*mtext, nullptr, false);
  if (mj.is_discarded()) return Status(Reason::Invalid, "manifest " + manifest_digest + " is not JSON");
  auto m = parse_manifest(mj);
  if (!m) return m.take_status();
  if (!m->config.media_type.empty() && m->config.media_type != kOciConfig && m->config.media_type != kDockerConfig)
    return Status(Reason::Invalid, "unsupported config media type \"" + m->config.media_type + "\": not a container image");
  auto cfg_text = read_blob(m->config.digest, kMaxConfigBytes);
  if (!cfg_text) return cfg_text.take_status();
  auto cfg = parse_config(*cfg_text);
  if (!cfg) return cfg.take_status();
  if (cfg->diff_ids.size() != m->layers.size())
    return Status(Reason::Invalid, "mismatched image rootfs and manifest layers");
  auto chains = chain_ids(cfg->diff_ids);
  Status st = unpack_chain(*m, cfg->diff_ids, chains);
  if (!st.is_ok()) return st;

  json rec = {{"manifest", manifest_digest}, {"config", m->config.digest}, {"layers", json::array()}};
  if (!repo_digest.empty()) rec["repoDigest"] = repo_digest;
  for (const auto& c : chains) rec["layers"].push_back(digest_hex(c));
  st = update_index([&](json& idx) {
    if (keys.empty()) idx["images"][m->config.digest] = rec;
    for (const auto& k : keys) idx["images"][k] = rec;
  });
  if (!st.is_ok()) return st;
  return load(rec, display_ref.empty() ? m->config.digest : display_ref);
}

}  // namespace detail

api::Result<std::unique_ptr<ImageStore>> ImageStore::open(const std::string& dir,
                                                          std::vector<std::string> insecure_registries) {
  auto store = std::make_unique<detail::StoreImpl>(dir, std::move(insecure_registries));
  Status st = store->init();
  if (!st.is_ok()) return st;
  return std::unique_ptr<ImageStore>(std::move(store));
}

}  // namespace berth::nodeagent::images
