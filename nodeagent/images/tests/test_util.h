// Helpers shared by the image tests: temporary directories, shell steps, tar building, and
// a busybox OCI layout made with umoci as /work/shared/reference/node-runtime.md describes.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace testutil {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/berth-images-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    if (std::getenv("BERTH_KEEP_TMP")) return;
    ::system(("umount -l " + path + "/mnt* 2>/dev/null").c_str());
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
};

// Runs a /bin/sh script; its output goes to log (or the test's stderr when empty).
inline int sh(const std::string& script, const std::string& log = "") {
  std::string cmd = "set -e\n" + script;
  std::string full = "/bin/sh -c '";
  for (char c : cmd) full += c == '\'' ? std::string("'\\''") : std::string(1, c);
  full += "'";
  if (!log.empty()) full += " >>" + log + " 2>&1";
  int rc = std::system(full.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

inline bool have(const std::string& bin) { return sh("command -v " + bin + " >/dev/null 2>&1") == 0; }

inline std::string read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void write(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

// One entry of a tar built in memory.
struct TarEntry {
  std::string path;
  char type = 'f';  // f file, d dir, l symlink, h hardlink
  std::string data;  // file content, or link target
  int mode = 0644;
  int uid = 0, gid = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
  TarEntry(std::string p, char t = 'f', std::string d = "", int m = 0644, int u = 0, int g = 0,
           std::vector<std::pair<std::string, std::string>> x = {})
      : path(std::move(p)), type(t), data(std::move(d)), mode(m), uid(u), gid(g), xattrs(std::move(x)) {}
};

// An uncompressed pax tar of entries.
inline std::string make_tar(const std::vector<TarEntry>& entries) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  std::vector<char> buf(16 << 20);
  size_t used = 0;
  archive_write_open_memory(a, buf.data(), buf.size(), &used);
  for (const auto& e : entries) {
    archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, e.path.c_str());
    archive_entry_set_uid(ae, e.uid);
    archive_entry_set_gid(ae, e.gid);
    archive_entry_set_mtime(ae, 1700000000, 0);
    switch (e.type) {
      case 'd': archive_entry_set_filetype(ae, AE_IFDIR); break;
      case 'l':
        archive_entry_set_filetype(ae, AE_IFLNK);
        archive_entry_set_symlink(ae, e.data.c_str());
        break;
      case 'h':
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_hardlink(ae, e.data.c_str());
        break;
      default:
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_size(ae, static_cast<la_int64_t>(e.data.size()));
    }
    archive_entry_set_perm(ae, e.mode);
    for (const auto& [k, v] : e.xattrs) archive_entry_xattr_add_entry(ae, k.c_str(), v.data(), v.size());
    archive_write_header(a, ae);
    if (e.type == 'f' && !e.data.empty()) archive_write_data(a, e.data.data(), e.data.size());
    archive_entry_free(ae);
  }
  archive_write_close(a);
  archive_write_free(a);
  return std::string(buf.data(), used);
}

inline std::string compress(const std::string& data, int (*add_filter)(archive*)) {
  archive* a = archive_write_new();
  archive_write_set_format_raw(a);
  add_filter(a);
  std::vector<char> buf(data.size() + (1 << 20));
  size_t used = 0;
  archive_write_open_memory(a, buf.data(), buf.size(), &used);
  archive_entry* ae = archive_entry_new();
  archive_entry_set_filetype(ae, AE_IFREG);
  archive_entry_set_size(ae, static_cast<la_int64_t>(data.size()));
  archive_write_header(a, ae);
  archive_write_data(a, data.data(), data.size());
  archive_entry_free(ae);
  archive_write_close(a);
  archive_write_free(a);
  return std::string(buf.data(), used);
}
inline std::string gzip(const std::string& data) { return compress(data, archive_write_add_filter_gzip); }
inline std::string zstd(const std::string& data) { return compress(data, archive_write_add_filter_zstd); }

// busybox-static's binary and applet links as a rootfs, packed with umoci into dir/oci as
// tag "1" with cmd ["sh"]. Returns false when a step fails (output in dir/build.log).
inline bool make_busybox_layout(const std::string& dir) {
  return sh("cd " + dir + "\n"
            "mkdir -p rootfs/bin\n"
            "cp /bin/busybox rootfs/bin/busybox\n"
            "for p in $(/bin/busybox --list-full); do\n"
            "  [ \"$p\" = bin/busybox ] && continue\n"
            "  mkdir -p rootfs/$(dirname $p); ln -sf /bin/busybox rootfs/$p\n"
            "done\n"
            "umoci init --layout oci\n"
            "umoci new --image oci:1\n"
            "umoci unpack --image oci:1 b\n"
            "cp -a rootfs/. b/rootfs/\n"
            "umoci repack --image oci:1 b\n"
            "umoci config --image oci:1 --config.cmd sh\n"
            "rm -rf b rootfs\n",
            dir + "/build.log") == 0;
}

// The manifest and config digests of a tag in an OCI layout.
struct LayoutImage {
  std::string manifest, config, layer;
};
inline LayoutImage layout_image(const std::string& layout, const std::string& tag) {
  auto index = nlohmann::json::parse(read(layout + "/index.json"));
  LayoutImage out;
  for (const auto& m : index["manifests"])
    if (m["annotations"].value("org.opencontainers.image.ref.name", "") == tag) out.manifest = m["digest"];
  if (out.manifest.empty()) return out;
  auto manifest = nlohmann::json::parse(read(layout + "/blobs/sha256/" + out.manifest.substr(7)));
  out.config = manifest["config"]["digest"];
  if (!manifest["layers"].empty()) out.layer = manifest["layers"].back()["digest"];
  return out;
}

inline bool is_whiteout(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == 0;
}

}  // namespace testutil
