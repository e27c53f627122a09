// `berth image import FILE`: OCI image layouts (a directory, or a tar of one as `skopeo copy
// ... oci-archive:` and `docker save` of Docker 25+ write) and docker archives (`docker save`'s
// manifest.json + layer tars). Every blob is verified against its digest on the way in.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "nodeagent/images/internal.h"

namespace berth::nodeagent::images {
namespace fs = std::filesystem;
using api::Reason;
using api::Status;
using detail::json;

namespace {

// src/rel, refused when a symlink (or "..") takes it out of src.
api::Result<std::string> inside(const std::string& src, const std::string& rel) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::path(src) / rel, ec);
  std::string s = p.string();
  if (ec || s.rfind(src + "/", 0) != 0) return Status(Reason::Invalid, "\"" + rel + "\" is outside the image archive");
  return s;
}

api::Result<std::string> file_digest(const std::string& path, int64_t& size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status(Reason::NotFound, "open " + path + ": " + std::strerror(errno));
  detail::Sha256 h;
  char buf[1 << 16];
  size = 0;
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) {
    h.update(buf, static_cast<size_t>(n));
    size += n;
  }
  ::close(fd);
  if (n < 0) return Status(Reason::InternalError, "read " + path + ": " + std::strerror(errno));
  return h.digest();
}

std::string layer_media_type(const std::string& path) {
  unsigned char magic[4] = {0};
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (::read(fd, magic, sizeof magic) < 0) magic[0] = 0;
    ::close(fd);
  }
  std::string tar(detail::kOciLayerTar);
  if (magic[0] == 0x1f && magic[1] == 0x8b) return tar + "+gzip";
  if (magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd) return tar + "+zstd";
  return tar;
}

struct Importer {
  detail::StoreImpl& store;
  std::string src;  // canonical directory holding the layout or the unpacked archive
  bool move;        // src is our own temporary copy: blobs may be renamed into the store

  Status put_layout_blob(const detail::Descriptor& d) {
    if (store.has_blob(d.digest)) return Status();
    auto p = inside(src, "blobs/sha256/" + detail::digest_hex(d.digest));
    if (!p) return p.take_status();
    Status st = store.put_blob_file(*p, d.digest, d.size, move);
    if (!st.is_ok()) return Status(st.reason(), "blob " + d.digest + ": " + st.message());
    return st;
  }

  // The names an index entry carries: containerd's image name, or a ref.name that is a whole reference.
  static std::vector<Reference> names_of(const detail::Descriptor& d) {
    std::string name;
    const json& a = d.annotations;
    if (a.contains("io.containerd.image.name") && a["io.containerd.image.name"].is_string()) {
      name = a["io.containerd.image.name"];
    } else if (a.contains("org.opencontainers.image.ref.name") && a["org.opencontainers.image.ref.name"].is_string()) {
      std::string ref_name = a["org.opencontainers.image.ref.name"];
      if (ref_name.find_first_of("/:@") != std::string::npos) name = ref_name;  // a bare tag names nothing
    }
    std::vector<Reference> out;
    if (auto r = parse_reference(name); !name.empty() && r) out.push_back(*r);
    return out;
  }

  api::Result<std::vector<Image>> oci() {
    auto layout = detail::read_file(src + "/oci-layout", 1 << 16);
    if (!layout) return layout.take_status();
    json lj = json::parse(*layout, nullptr, false);
    if (lj.is_discarded() || !lj.is_object() || !lj.contains("imageLayoutVersion"))
      return Status(Reason::Invalid, "oci-layout is not a valid OCI layout marker");
    auto index_text = detail::read_file(src + "/index.json", detail::kMaxManifestBytes);
    if (!index_text) return index_text.take_status();
    json index = json::parse(*index_text, nullptr, false);
    if (index.is_discarded() || !index.is_object() || !index.contains("manifests") || !index["manifests"].is_array())
      return Status(Reason::Invalid, "index.json is not an OCI image index");
    std::vector<Image> out;
    for (const auto& entry : index["manifests"]) {
      auto top = detail::parse_descriptor(entry);
      if (!top) return top.take_status();
      detail::Descriptor cur = *top;
      json body;
      for (int depth = 0;; ++depth) {
        Status st = put_layout_blob(cur);
        if (!st.is_ok()) return st;
        auto text = store.read_blob(cur.digest, detail::kMaxManifestBytes);
        if (!text) return text.take_status();
        body = json::parse(*text, nullptr, false);
        if (body.is_discarded()) return Status(Reason::Invalid, "manifest " + cur.digest + " is not JSON");
        auto kind = detail::manifest_kind(cur.media_type, body);
        if (kind == detail::ManifestKind::Manifest) break;
        if (kind != detail::ManifestKind::Index || depth == 3)
          return Status(Reason::Invalid, "unsupported manifest " + cur.digest + " (" + cur.media_type + ")");
        auto pick = detail::select_platform(body, cur.digest);
        if (!pick) return pick.take_status();
        cur = *pick;
      }
      auto m = detail::parse_manifest(body);
      if (!m) return m.take_status();
      Status st = put_layout_blob(m->config);
      for (size_t i = 0; st.is_ok() && i < m->layers.size(); ++i) st = put_layout_blob(m->layers[i]);
      if (!st.is_ok()) return st;
      std::vector<std::string> keys;
      auto names = names_of(*top);
      for (const auto& r : names) {
        keys.push_back(detail::index_key(r));
        keys.push_back(r.name() + "@" + top->digest);
      }
      auto img = store.commit_image(keys, cur.digest, names.empty() ? "" : names[0].name() + "@" + top->digest,
                                    names.empty() ? "" : names[0].str());
      if (!img) return img.take_status();
      out.push_back(std::move(*img));
    }
    return out;
  }

  api::Result<std::vector<Image>> docker() {
    auto text = detail::read_file(src + "/manifest.json", detail::kMaxManifestBytes);
    if (!text) return text.take_status();
    json list = json::parse(*text, nullptr, false);
    if (list.is_discarded() || !list.is_array()) return Status(Reason::Invalid, "manifest.json is not a docker archive manifest");
    std::vector<Image> out;
    for (const auto& e : list) {
      if (!e.is_object() || !e.contains("Config") || !e["Config"].is_string() || !e.contains("Layers") ||
          !e["Layers"].is_array())
        return Status(Reason::Invalid, "manifest.json entry without Config and Layers");
      // Each file becomes a blob under the digest of its bytes; the layers' DiffIDs are checked at unpack.
      auto add = [&](const std::string& rel, int64_t& size) -> api::Result<std::string> {
        auto p = inside(src, rel);
        if (!p) return p.take_status();
        auto d = file_digest(*p, size);
        if (!d) return d;
        Status st = store.put_blob_file(*p, *d, size, move);
        if (!st.is_ok()) return st;
        return d;
      };
      int64_t size = 0;
      auto cfg = add(e["Config"], size);
      if (!cfg) return cfg.take_status();
      json manifest = {{"schemaVersion", 2},
                       {"mediaType", detail::kOciManifest},
                       {"config", {{"mediaType", detail::kOciConfig}, {"digest", *cfg}, {"size", size}}},
                       {"layers", json::array()}};
      for (const auto& l : e["Layers"]) {
        if (!l.is_string()) return Status(Reason::Invalid, "manifest.json: a layer is not a path");
        auto p = inside(src, l.get<std::string>());
        if (!p) return p.take_status();
        std::string media = layer_media_type(*p);
        auto d = add(l, size);
        if (!d) return d.take_status();
        manifest["layers"].push_back({{"mediaType", media}, {"digest", *d}, {"size", size}});
      }
      std::string mtext = manifest.dump();
      std::string mdigest = detail::sha256_digest(mtext);
      Status st = store.put_blob(mtext, mdigest);
      if (!st.is_ok()) return st;
      std::vector<std::string> keys;
      std::string display;
      if (e.contains("RepoTags") && e["RepoTags"].is_array()) {
        for (const auto& t : e["RepoTags"]) {
          if (!t.is_string()) continue;
          auto r = parse_reference(t.get<std::string>());
          if (!r) return Status(Reason::Invalid, "manifest.json: RepoTag \"" + t.get<std::string>() + "\": " + r.status().message());
          keys.push_back(detail::index_key(*r));
          if (display.empty()) display = r->str();
        }
      }
      auto img = store.commit_image(keys, mdigest, "", display);
      if (!img) return img.take_status();
      out.push_back(std::move(*img));
    }
    return out;
  }
};

}  // namespace

api::Result<std::vector<Image>> import_image(ImageStore& store, const std::string& path) {
  auto* impl = dynamic_cast<detail::StoreImpl*>(&store);
  if (!impl) return Status(Reason::InternalError, "import_image needs a store made by ImageStore::open");
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return Status(Reason::NotFound, "import " + path + ": " + std::strerror(errno));
  std::string src, tmp;
  std::error_code ec;
  if (S_ISDIR(st.st_mode)) {
    src = fs::canonical(path, ec).string();
  } else {
    tmp = impl->tmp_path("import");
    if (::mkdir(tmp.c_str(), 0700) != 0) return Status(Reason::InternalError, "mkdir " + tmp + ": " + std::strerror(errno));
    Status x = detail::extract_archive(path, tmp);
    if (!x.is_ok()) {
      fs::remove_all(tmp, ec);
      return Status(x.reason(), "import " + path + ": " + x.message());
    }
    src = tmp;
  }
  Importer imp{*impl, src, !tmp.empty()};
  api::Result<std::vector<Image>> out = Status(Reason::Invalid, "import " + path +
                                                                    ": not an OCI image layout or a docker archive "
                                                                    "(no oci-layout and index.json, nor manifest.json)");
  struct stat probe;
  if (::stat((src + "/oci-layout").c_str(), &probe) == 0 && ::stat((src + "/index.json").c_str(), &probe) == 0)
    out = imp.oci();
  else if (::stat((src + "/manifest.json").c_str(), &probe) == 0)
    out = imp.docker();
  if (!tmp.empty()) fs::remove_all(tmp, ec);
  if (!out.ok() && out.status().message().rfind("import ", 0) != 0)
    return Status(out.status().reason(), "import " + path + ": " + out.status().message());
  return out;
}

}  // namespace berth::nodeagent::images
