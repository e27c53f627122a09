// The image `berth up` offers on a machine with no registry: busybox from Debian's
// busybox-static, written as an OCI layout and imported like any other.
#include <openssl/evp.h>
#include <sys/stat.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "nodeagent/images/archive_api.h"
#include "nodeagent/images/images.h"

namespace berth::nodeagent::images {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string sha256_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) out += {kHex[md[i] >> 4], kHex[md[i] & 15]};
  return out;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The applets this busybox provides, from `busybox --list`.
std::vector<std::string> applets(const std::string& busybox) {
  std::vector<std::string> out;
  FILE* p = popen((busybox + " --list 2>/dev/null").c_str(), "r");
  if (!p) return out;
  char line[256];
  while (std::fgets(line, sizeof(line), p)) {
    std::string name(line);
    while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();
    if (!name.empty() && name.find('/') == std::string::npos && name != "busybox") out.push_back(name);
  }
  pclose(p);
  return out;
}

// One uncompressed tar layer: the directories a container expects, /bin/busybox, a link per
// applet, and minimal /etc/passwd and /etc/group.
api::Result<std::string> layer_tar(const std::string& busybox) {
  std::string binary = read_all(busybox);
  if (binary.empty()) return api::Status(api::Reason::NotFound, "cannot read " + busybox);
  if (api::Status ready = detail::archive_ready(); !ready.is_ok()) return ready;
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open(
      a, &out, nullptr,
      [](archive*, void* buffer, const void* data, size_t size) -> la_ssize_t {
        static_cast<std::string*>(buffer)->append(static_cast<const char*>(data), size);
        return static_cast<la_ssize_t>(size);
      },
      nullptr);
  const time_t when = 0;  // fixed times: the same busybox always gives the same image ID
  auto add = [&](const std::string& path, mode_t type, mode_t mode, const std::string& data,
                 const std::string& link = "") {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, path.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, mode);
    archive_entry_set_mtime(e, when, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    if (type == AE_IFLNK) archive_entry_set_symlink(e, link.c_str());
    archive_entry_set_size(e, type == AE_IFREG ? static_cast<la_int64_t>(data.size()) : 0);
    archive_write_header(a, e);
    if (type == AE_IFREG) archive_write_data(a, data.data(), data.size());
    archive_entry_free(e);
  };
  for (const char* d : {"bin", "dev", "etc", "home", "proc", "root", "sys", "usr", "usr/bin", "usr/sbin", "sbin", "var",
                        "var/www"})
    add(d, AE_IFDIR, 0755, "");
  add("tmp", AE_IFDIR, 01777, "");
  add("bin/busybox", AE_IFREG, 0755, binary);
  for (const auto& name : applets(busybox)) add("bin/" + name, AE_IFLNK, 0777, "", "busybox");
  add("etc/passwd", AE_IFREG, 0644, "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n");
  add("etc/group", AE_IFREG, 0644, "root:x:0:\nnogroup:x:65534:\n");
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

api::Status write_blob(const std::string& dir, const std::string& data, std::string& digest) {
  std::string hex = sha256_hex(data);
  digest = "sha256:" + hex;
  std::ofstream out(dir + "/blobs/sha256/" + hex, std::ios::binary);
  out << data;
  return out ? api::Status() : api::Status(api::Reason::InternalError, "cannot write a blob under " + dir);
}

}  // namespace

api::Result<Image> ensure_builtin_busybox(ImageStore& store, const std::string& work_dir, const std::string& busybox) {
  if (auto found = store.find(kBuiltinBusybox)) return found;
  struct stat st{};
  if (::stat(busybox.c_str(), &st) != 0)
    return api::Status(api::Reason::NotFound, busybox + " is not installed (Debian package busybox-static)");
  auto tar = layer_tar(busybox);
  if (!tar) return tar.take_status();

  std::string dir = work_dir + "/builtin-busybox";
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir + "/blobs/sha256", ec);
  if (ec) return api::Status(api::Reason::InternalError, "cannot create " + dir + ": " + ec.message());

  std::string layer_digest, config_digest, manifest_digest;
  if (auto s = write_blob(dir, *tar, layer_digest); !s) return s;
  json config = {{"architecture", "amd64"},
                 {"os", "linux"},
                 {"config", {{"Cmd", {"sh"}}, {"Env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}}},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", {layer_digest}}}}};
  std::string config_text = config.dump();
  if (auto s = write_blob(dir, config_text, config_digest); !s) return s;
  json manifest = {{"schemaVersion", 2},
                   {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", config_digest},
                               {"size", config_text.size()}}},
                   {"layers", {{{"mediaType", "application/vnd.oci.image.layer.v1.tar"}, {"digest", layer_digest},
                                {"size", tar->size()}}}}};
  std::string manifest_text = manifest.dump();
  if (auto s = write_blob(dir, manifest_text, manifest_digest); !s) return s;
  json index = {{"schemaVersion", 2},
                {"manifests", {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                                {"digest", manifest_digest},
                                {"size", manifest_text.size()},
                                {"annotations", {{"org.opencontainers.image.ref.name", kBuiltinBusybox}}}}}}};
  std::ofstream(dir + "/index.json") << index.dump();
  std::ofstream(dir + "/oci-layout") << R"({"imageLayoutVersion":"1.0.0"})";

  auto imported = import_image(store, dir);
  fs::remove_all(dir, ec);
  if (!imported) return imported.take_status();
  return store.find(kBuiltinBusybox);
}

}  // namespace berth::nodeagent::images
