// Private to nodeagent/images: the pieces store.cpp, registry.cpp, layers.cpp and import.cpp
// share, and that the unit tests reach directly. Not part of the pod worker's contract.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "nodeagent/images/images.h"

namespace berth::nodeagent::images::detail {

using json = nlohmann::json;

inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayerTar = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
// Sent on every manifest GET; without the OCI types a registry answers MANIFEST_UNKNOWN for OCI tags.
inline constexpr std::string_view kManifestAccept =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr size_t kMaxManifestBytes = 4 << 20;
inline constexpr size_t kMaxConfigBytes = 16 << 20;

// ---- digests ----
// "sha256:" and 64 lower-case hex digits: the only form accepted anywhere a digest becomes a path.
bool valid_digest(std::string_view digest);
std::string digest_hex(std::string_view digest);  // the part after "sha256:"

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t n);
  std::string digest() const;  // "sha256:<hex>" of everything so far; can be called again
  void reset();

 private:
  void* ctx_;  // EVP_MD_CTX
};
std::string sha256_digest(std::string_view data);

// ---- descriptors and manifests ----
struct Descriptor {
  std::string media_type, digest;
  int64_t size = -1;
  std::string os, architecture, variant;  // platform, for index entries
  json annotations = json::object();
};
api::Result<Descriptor> parse_descriptor(const json& j);

enum class ManifestKind { Manifest, Index, Unsupported };
// From the Content-Type (or the body's mediaType when the type is missing or generic).
ManifestKind manifest_kind(std::string_view content_type, const json& body);

struct Manifest {
  Descriptor config;
  std::vector<Descriptor> layers;
};
api::Result<Manifest> parse_manifest(const json& body);

// The index entry for this machine's platform (linux/amd64 on x86-64).
api::Result<Descriptor> select_platform(const json& index, std::string_view index_digest);
std::string host_architecture();

// Parsed image config: what Image needs plus the layer diff IDs.
struct ConfigInfo {
  ImageConfig config;
  std::vector<std::string> diff_ids;
};
api::Result<ConfigInfo> parse_config(std::string_view body);

// ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
std::vector<std::string> chain_ids(const std::vector<std::string>& diff_ids);

// ---- blobs ----
// Writes one blob to a temporary file while hashing it; commit() checks size and digest and
// renames it into place, so a blob path only ever holds verified content.
class BlobWriter {
 public:
  explicit BlobWriter(std::string tmp_path);
  BlobWriter(BlobWriter&& o) noexcept;
  BlobWriter& operator=(BlobWriter&&) = delete;
  ~BlobWriter();  // removes the temporary file unless committed

  const api::Status& status() const { return status_; }
  void set_limit(int64_t max_bytes) { limit_ = max_bytes; }
  bool write(const char* data, size_t n);  // false on I/O error or past the limit; see status()
  void reset();                            // start over (a retried download)
  int64_t size() const { return size_; }
  std::string digest() const { return hash_->digest(); }
  api::Status commit(const std::string& dest, std::string_view expected_digest, int64_t expected_size);

 private:
  std::string tmp_;
  int fd_ = -1;
  int64_t size_ = 0, limit_ = -1;
  std::unique_ptr<Sha256> hash_;
  api::Status status_;
};

// ---- layers ----
// Unpacks one layer blob (tar, plain/gzip/zstd) into dest, an existing empty directory,
// converting OCI whiteouts to overlayfs form: ".wh.<name>" becomes a 0/0 character device,
// ".wh..wh..opq" sets trusted.overlay.opaque=y on its directory. Directories the tar only
// implies take their owner, mode and times from the same path in lowers (top first), as
// they would in the merged view. Rejects paths that leave dest. Returns the DiffID: sha256
// of the uncompressed tar.
api::Result<std::string> unpack_layer(const std::string& blob_path, const std::string& dest,
                                      const std::vector<std::string>& lowers_top_first);

// Safe extraction of an import archive (regular files, directories, symlinks) into dest.
api::Status extract_archive(const std::string& archive_path, const std::string& dest);

// ---- registry ----
// Bearer/basic Authorization values per registry, repository and credential.
class TokenCache {
 public:
  std::string get(const std::string& key);
  void put(const std::string& key, std::string header, std::chrono::seconds ttl);

 private:
  std::mutex mu_;
  std::map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>> entries_;
};

struct Fetched {
  std::string body, media_type, digest;
};

// A distribution API client for one repository; one per pull (it reuses its connection).
class RegistryClient {
 public:
  RegistryClient(const Reference& ref, const std::vector<std::string>& insecure_registries,
                 std::vector<PullAuth> auths, TokenCache* tokens);
  ~RegistryClient();
  // GET /v2/<name>/manifests/<tag or digest>, digest computed (and checked when asked by digest).
  api::Result<Fetched> get_manifest(const std::string& tag_or_digest);
  // GET /v2/<name>/blobs/<digest> into w and commit it at dest (size and sha256 verified).
  api::Status get_blob(const Descriptor& d, BlobWriter& w, const std::string& dest);
  std::string base_url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Registry host rules: the API host for a reference's domain, loopback detection, insecure match.
std::string api_host(std::string_view domain);
bool is_loopback_host(std::string_view domain);
bool is_insecure(std::string_view domain, const std::vector<std::string>& insecure);

// ---- the store ----
// One function per key at a time; later callers for a running key wait for its result.
template <class T>
class Singleflight {
 public:
  T run(const std::string& key, const std::function<T()>& fn) {
    std::promise<T> promise;
    std::shared_future<T> fut;
    {
      std::lock_guard lock(mu_);
      auto it = running_.find(key);
      if (it != running_.end()) {
        fut = it->second;
      } else {
        running_.emplace(key, promise.get_future().share());
      }
    }
    if (fut.valid()) return fut.get();
    auto done = [&] {
      std::lock_guard lock(mu_);
      running_.erase(key);
    };
    try {
      T value = fn();
      promise.set_value(value);
      done();
      return value;
    } catch (...) {
      promise.set_exception(std::current_exception());
      done();
      throw;
    }
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_future<T>> running_;
};

class StoreImpl final : public ImageStore {
 public:
  StoreImpl(std::string root, std::vector<std::string> insecure);
  api::Status init();

  api::Result<Image> ensure(const std::string& ref, const std::string& pull_policy,
                            const std::vector<PullAuth>& auths) override;
  api::Result<Image> find(const std::string& ref) override;

  const std::string& root() const { return root_; }
  std::string blob_path(std::string_view digest) const;
  bool has_blob(std::string_view digest) const;
  std::string layer_dir(std::string_view chain_id) const;
  // A fresh path under tmp/ (not created), named so a later open() can sweep it once this process is gone.
  std::string tmp_path(std::string_view hint);
  BlobWriter blob_writer() { return BlobWriter(tmp_path("blob")); }
  api::Status put_blob(std::string_view data, std::string_view digest);
  // Copies (or, when move is set, renames) src into the store after checking its digest.
  api::Status put_blob_file(const std::string& src, std::string_view digest, int64_t size, bool move);
  api::Result<std::string> read_blob(std::string_view digest, size_t limit) const;

  // Unpacks the layers of the manifest (its blobs already in the store) and records the
  // image under each key (normalised references; may be empty: found by ID only).
  api::Result<Image> commit_image(const std::vector<std::string>& keys, const std::string& manifest_digest,
                                  const std::string& repo_digest, const std::string& display_ref);

  api::Result<Image> pull(const Reference& ref, const std::vector<PullAuth>& auths);

 private:
  api::Result<Image> load(const json& record, const std::string& ref);
  api::Result<json> read_index() const;
  api::Status update_index(const std::function<void(json&)>& change);
  api::Status unpack_chain(const Manifest& m, const std::vector<std::string>& diff_ids,
                           const std::vector<std::string>& chains);

  std::string root_;
  std::vector<std::string> insecure_;
  std::mutex index_mu_;
  TokenCache tokens_;
  Singleflight<api::Result<Image>> pulls_;
  Singleflight<api::Status> unpacks_;
  Singleflight<api::Status> fetches_;
};

// The images.json key for a reference: name@digest when pinned, else name:tag.
std::string index_key(const Reference& r);

// Reads a whole file (up to limit bytes).
api::Result<std::string> read_file(const std::string& path, size_t limit);

// ---- libraries loaded when first needed ----
// libcurl (registry.cpp) and libarchive (archive_api.h) are opened with dlopen on first use
// instead of being linked: with what they pull in (TLS, LDAP, Kerberos, ... for libcurl; ICU,
// libxml2, nettle and the compressors for libarchive) they would be most of the agent's shared
// libraries, mapped and relocated in every agent process and every container shim (the same
// executable), whether it pulls or unpacks anything or not.
class LazyLibrary {
 public:
  // dlopen(soname); when that fails, error() is "cannot load <name> (install the <package>
  // package): <dlerror's text>".
  LazyLibrary(const char* soname, const char* name, const char* package);
  // fn = the library's function `symbol`; when it is missing, fn is null and error() names the
  // first one missing.
  template <class F>
  void bind(F& fn, const char* symbol) {
    fn = reinterpret_cast<F>(lookup(symbol));
  }
  const std::string& error() const { return error_; }  // empty when everything was found

 private:
  void* lookup(const char* symbol);
  void* handle_ = nullptr;
  std::string name_, error_;
};

}  // namespace berth::nodeagent::images::detail
