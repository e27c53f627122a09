// Images for the node agent: pulls OCI/Docker images from registries (OCI distribution API),
// imports OCI layouts and docker/OCI archives, and keeps them unpacked as overlayfs lower
// directories in a content-addressed store. The pod worker codes against this header only.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/status.h"

namespace berth::nodeagent::images {

// The parts of an image's config the runtime needs (OCI image config `config` section).
struct ImageConfig {
  std::vector<std::string> entrypoint, cmd, env;
  std::string working_dir, user;
};

struct Image {
  std::string ref;     // normalised reference it was asked for: "docker.io/library/busybox:latest"
  std::string digest;  // image ID: the config digest, "sha256:..."
  std::vector<std::string> layer_dirs;  // absolute, lowest first, unpacked with overlayfs whiteouts
  ImageConfig config;
  // name@digest of the manifest (or index) the image was resolved from, as kubelet reports
  // imageID ("docker.io/library/busybox@sha256:..."); "" for imported images without a name.
  std::string repo_digest;
};

// Credentials for one registry, tried in order. username/password: basic credentials (sent
// to the registry for a Basic challenge, to the token endpoint for a Bearer one). token: an
// identity token (docker config "identitytoken"), exchanged at the token endpoint as an
// OAuth2 refresh token; if the endpoint refuses the exchange it is sent as a bearer token.
struct PullAuth {
  std::string username, password, token;
};

class ImageStore {
 public:
  // dir: the store's root (created if missing): blobs/sha256/, layers/<chainID>/, images.json, tmp/.
  // insecure_registries: "host", "host:port" or an IPv4 CIDR; reached over HTTPS without
  // certificate checks, falling back to plain HTTP. Loopback registries always use plain HTTP.
  static api::Result<std::unique_ptr<ImageStore>> open(const std::string& dir,
                                                       std::vector<std::string> insecure_registries);

  // Makes ref present according to pull_policy ("Always", "IfNotPresent", "Never"; "" means
  // Kubernetes' default: Always for :latest or no tag, else IfNotPresent). Concurrent calls for
  // the same reference share one pull. Errors carry kubelet's texts and, as their first cause,
  // the container waiting reason (see waiting_reason).
  virtual api::Result<Image> ensure(const std::string& ref, const std::string& pull_policy,
                                    const std::vector<PullAuth>& auths) = 0;

  // The image already in the store for ref (a reference, or an image ID "sha256:..."); NotFound if absent.
  virtual api::Result<Image> find(const std::string& ref) = 0;

  virtual ~ImageStore() = default;
};

// Loads an OCI image layout directory or an OCI/docker archive (tar, optionally compressed)
// into the store: `berth image import FILE`. Images are named by their
// io.containerd.image.name annotation, a full reference in org.opencontainers.image.ref.name,
// or docker's RepoTags; an image with no such name is still imported and found by its ID.
api::Result<std::vector<Image>> import_image(ImageStore& store, const std::string& path);

// The image `berth up` provides on a machine without a registry: busybox (Debian's
// busybox-static at `busybox`) as berth.local/busybox:1, built once and imported.
inline constexpr const char* kBuiltinBusybox = "berth.local/busybox:1";
api::Result<Image> ensure_builtin_busybox(ImageStore& store, const std::string& work_dir,
                                          const std::string& busybox = "/bin/busybox");

// A parsed, normalised image reference, as Docker and Kubernetes normalise them:
// "busybox" -> docker.io/library/busybox:latest; "127.0.0.1:5000/busybox:1";
// "busybox@sha256:..." (digest only: no tag is added).
struct Reference {
  std::string domain;  // "docker.io", "127.0.0.1:5000", "[::1]:5000"
  std::string path;    // "library/busybox"
  std::string tag;     // "" only when a digest is given without a tag
  std::string digest;  // "sha256:<64 hex>" or ""
  std::string name() const { return domain + "/" + path; }
  std::string str() const;  // name[:tag][@digest]
};
// Invalid (with Docker's message, e.g. "invalid reference format") for a malformed reference.
api::Result<Reference> parse_reference(std::string_view ref);

// The container waiting reason for an ensure() failure: "ErrImageNeverPull",
// "InvalidImageName" or "ErrImagePull".
std::string waiting_reason(const api::Status& status);

}  // namespace berth::nodeagent::images
