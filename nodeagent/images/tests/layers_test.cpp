// Layer unpacking on crafted tars: OCI whiteouts become overlayfs whiteouts (checked through
// a real overlay mount when the machine allows it), escapes are refused, and blob digests
// and sizes are verified before anything lands in the store.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <sys/mount.h>
#include <sys/xattr.h>

#include "nodeagent/images/internal.h"
#include "test_util.h"

using namespace berth::nodeagent::images;
using namespace berth::nodeagent::images::detail;
using testutil::TarEntry;
namespace api = berth::api;

namespace {

std::string opaque_attr(const std::string& path) {
  char buf[8] = {0};
  ssize_t n = ::lgetxattr(path.c_str(), "trusted.overlay.opaque", buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

struct Layers {
  testutil::TempDir tmp;
  std::string lower = tmp.path + "/lower", upper = tmp.path + "/upper";
  std::string lower_tar, upper_tar;
  api::Result<std::string> lower_diff = api::Status(), upper_diff = api::Status();

  Layers() {
    ::mkdir(lower.c_str(), 0755);
    ::mkdir(upper.c_str(), 0755);
    lower_tar = testutil::make_tar({
        {"./", 'd', "", 0755},
        {"etc/", 'd', "", 0755},
        {"etc/passwd", 'f', "root:x:0:0\n"},
        {"etc/group", 'f', "root:x:0:\n"},
        {"opt/", 'd', "", 0750, 1000, 1000},
        {"opt/old", 'f', "old"},
        {"opt/sub/", 'd', "", 0755},
        {"opt/sub/deep", 'f', "deep"},
        {"gone", 'f', "bye"},
        {"tmp/", 'd', "", 01777},
        {"bin/", 'd', "", 0755},
        {"bin/tool", 'f', "#!/bin/sh\n", 04755},
        {"bin/tool-link", 'h', "bin/tool"},
    });
    upper_tar = testutil::make_tar({
        {"etc/", 'd', "", 0755},
        {"etc/.wh.passwd", 'f', ""},
        {"etc/hosts", 'f', "127.0.0.1 localhost\n"},
        {"etc/.wh.hosts", 'f', ""},  // same layer: the file stays
        {"opt/", 'd', "", 0750, 1000, 1000},
        {"opt/.wh..wh..opq", 'f', ""},
        {"opt/new", 'f', "new", 0644, 0, 0, {{"trusted.overlay.redirect", "/x"}, {"user.note", "kept"}}},
        {".wh.gone", 'f', ""},
        {"tmp/x", 'f', "in tmp"},  // tmp/ itself is only implied
        {".wh..wh.plnk", 'd', "", 0700},
    });
    std::string lower_blob = tmp.path + "/lower.tar.gz", upper_blob = tmp.path + "/upper.tar";
    testutil::write(lower_blob, testutil::gzip(lower_tar));
    testutil::write(upper_blob, upper_tar);  // an uncompressed layer
    lower_diff = unpack_layer(lower_blob, lower, {});
    upper_diff = unpack_layer(upper_blob, upper, {lower});
  }
};

}  // namespace

TEST_CASE("whiteouts become overlayfs whiteouts and the DiffID is the uncompressed tar's sha256") {
  Layers l;
  REQUIRE_MESSAGE(l.lower_diff, l.lower_diff.status().message());
  REQUIRE_MESSAGE(l.upper_diff, l.upper_diff.status().message());
  CHECK(*l.lower_diff == sha256_digest(l.lower_tar));
  CHECK(*l.upper_diff == sha256_digest(l.upper_tar));

  CHECK(testutil::read(l.lower + "/etc/passwd") == "root:x:0:0\n");
  struct stat st;
  REQUIRE(::stat((l.lower + "/bin/tool").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 04755);
  CHECK(st.st_nlink == 2);
  REQUIRE(::stat((l.lower + "/opt").c_str(), &st) == 0);
  CHECK(st.st_uid == 1000);
  CHECK((st.st_mode & 07777) == 0750);

  CHECK(testutil::is_whiteout(l.upper + "/etc/passwd"));
  CHECK(testutil::is_whiteout(l.upper + "/gone"));
  CHECK(testutil::read(l.upper + "/etc/hosts") == "127.0.0.1 localhost\n");
  CHECK(opaque_attr(l.upper + "/opt") == "y");
  CHECK(opaque_attr(l.upper + "/etc") == "");
  CHECK(!std::filesystem::exists(l.upper + "/.wh..wh.plnk"));
  CHECK(!std::filesystem::exists(l.upper + "/opt/.wh..wh..opq"));
  // overlayfs' own xattrs never come from a layer; others do.
  char buf[16];
  CHECK(::lgetxattr((l.upper + "/opt/new").c_str(), "trusted.overlay.redirect", buf, sizeof buf) < 0);
  CHECK(::lgetxattr((l.upper + "/opt/new").c_str(), "user.note", buf, sizeof buf) == 4);
  // tmp/ was only implied: it takes the lower layer's sticky 1777, not a default 0755.
  REQUIRE(::stat((l.upper + "/tmp").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 01777);
}

TEST_CASE("the layers stack as overlayfs lower directories") {
  Layers l;
  REQUIRE(l.upper_diff);
  std::string mnt = l.tmp.path + "/mnt";
  ::mkdir(mnt.c_str(), 0755);
  std::string opts = "lowerdir=" + l.upper + ":" + l.lower;
  if (::mount("overlay", mnt.c_str(), "overlay", 0, opts.c_str()) != 0) {
    MESSAGE("overlay mount not possible here (" << std::string(std::strerror(errno)) << "); whiteout form checked on disk only");
    return;
  }
  namespace fs = std::filesystem;
  CHECK(!fs::exists(mnt + "/etc/passwd"));
  CHECK(fs::exists(mnt + "/etc/group"));
  CHECK(fs::exists(mnt + "/etc/hosts"));
  CHECK(!fs::exists(mnt + "/gone"));
  CHECK(!fs::exists(mnt + "/opt/old"));
  CHECK(!fs::exists(mnt + "/opt/sub"));
  CHECK(testutil::read(mnt + "/opt/new") == "new");
  CHECK(testutil::read(mnt + "/tmp/x") == "in tmp");
  CHECK(fs::exists(mnt + "/bin/tool"));
  struct stat st;
  REQUIRE(::stat((mnt + "/tmp").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 01777);
  ::umount2(mnt.c_str(), MNT_DETACH);
}

TEST_CASE("entries that would leave the layer are refused") {
  testutil::TempDir tmp;
  std::string outside = tmp.path + "/outside";
  ::mkdir(outside.c_str(), 0755);
  auto attempt = [&](const std::vector<TarEntry>& entries) {
    static int n = 0;
    std::string dest = tmp.path + "/dest" + std::to_string(++n);
    ::mkdir(dest.c_str(), 0755);
    std::string blob = dest + ".tar";
    testutil::write(blob, testutil::make_tar(entries));
    return unpack_layer(blob, dest, {});
  };
  auto dotdot = attempt({{"../escape", 'f', "x"}});
  CHECK_FALSE(dotdot);
  CHECK(dotdot.status().message().find("escapes the layer") != std::string::npos);
  CHECK(!std::filesystem::exists(tmp.path + "/escape"));

  auto through_symlink = attempt({{"link", 'l', outside}, {"link/planted", 'f', "x"}});
  CHECK_FALSE(through_symlink);
  CHECK(!std::filesystem::exists(outside + "/planted"));

  testutil::write(outside + "/secret", "host secret");
  auto hardlink_out = attempt({{"stolen", 'h', "../../outside/secret"}});
  CHECK_FALSE(hardlink_out);
  auto hardlink_via_symlink = attempt({{"l2", 'l', outside}, {"stolen", 'h', "l2/secret"}});
  CHECK_FALSE(hardlink_via_symlink);
  struct stat st;
  REQUIRE(::stat((outside + "/secret").c_str(), &st) == 0);
  CHECK(st.st_nlink == 1);

  auto whiteout_via_symlink = attempt({{"l3", 'l', outside}, {"l3/.wh.secret", 'f', ""}});
  CHECK_FALSE(whiteout_via_symlink);
  CHECK(testutil::read(outside + "/secret") == "host secret");

  auto opaque_via_symlink = attempt({{"l4", 'l', outside}, {"l4/.wh..wh..opq", 'f', ""}});
  CHECK_FALSE(opaque_via_symlink);
  CHECK(opaque_attr(outside).empty());

  // A directory replaced by a symlink: the deferred mode/time fix-up must not follow it outside.
  ::chmod(outside.c_str(), 0755);
  attempt({{"d/", 'd', "", 0700}, {"d", 'l', outside}});
  REQUIRE(::stat(outside.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0755);

  // ".." that stays inside is only a clumsy name.
  auto inside = attempt({{"a/", 'd', "", 0755}, {"a/../b", 'f', "ok"}});
  CHECK_MESSAGE(inside, inside.status().message());
}

TEST_CASE("zstd layers unpack too") {
  testutil::TempDir tmp;
  std::string tar = testutil::make_tar({{"hello", 'f', "zstd"}});
  testutil::write(tmp.path + "/l.tar.zst", testutil::zstd(tar));
  ::mkdir((tmp.path + "/d").c_str(), 0755);
  auto r = unpack_layer(tmp.path + "/l.tar.zst", tmp.path + "/d", {});
  REQUIRE_MESSAGE(r, r.status().message());
  CHECK(*r == sha256_digest(tar));
  CHECK(testutil::read(tmp.path + "/d/hello") == "zstd");
}

TEST_CASE("a corrupt or truncated layer is an error, not a partial success") {
  testutil::TempDir tmp;
  std::string gz = testutil::gzip(testutil::make_tar({{"f", 'f', std::string(100000, 'x')}}));
  testutil::write(tmp.path + "/cut.tar.gz", gz.substr(0, gz.size() / 2));
  ::mkdir((tmp.path + "/d").c_str(), 0755);
  auto r = unpack_layer(tmp.path + "/cut.tar.gz", tmp.path + "/d", {});
  CHECK_FALSE(r);
}

TEST_CASE("blob digest and size verification") {
  testutil::TempDir tmp;
  const std::string dest = tmp.path + "/blob";
  const std::string good = sha256_digest("hello");
  {
    BlobWriter w(tmp.path + "/t1");
    REQUIRE(w.write("hello", 5));
    auto st = w.commit(dest, sha256_digest("other"), 5);
    CHECK(st.reason() == api::Reason::Invalid);
    CHECK(st.message().find("unexpected commit digest " + good + ", expected " + sha256_digest("other")) !=
          std::string::npos);
    CHECK(!std::filesystem::exists(dest));
  }
  CHECK(!std::filesystem::exists(tmp.path + "/t1"));  // the temporary file is gone too
  {
    BlobWriter w(tmp.path + "/t2");
    w.set_limit(4);
    CHECK_FALSE(w.write("hello", 5));
    CHECK(w.status().message().find("failed size validation") != std::string::npos);
    CHECK_FALSE(w.commit(dest, good, 4).is_ok());
    CHECK(!std::filesystem::exists(dest));
  }
  {
    BlobWriter w(tmp.path + "/t3");
    w.write("hell", 4);
    CHECK(w.commit(dest, good, 5).message().find("unexpected commit size 4, expected 5") != std::string::npos);
  }
  {
    BlobWriter w(tmp.path + "/t4");
    w.write("garbage", 7);
    w.reset();  // a retried download starts over
    w.write("hello", 5);
    CHECK(w.commit(dest, good, 5).is_ok());
    CHECK(testutil::read(dest) == "hello");
  }
  CHECK(!std::filesystem::exists(tmp.path + "/t4"));
}

int main(int argc, char** argv) {
  if (::geteuid() != 0) {
    std::cout << "SKIP: layer tests need root (character-device whiteouts, trusted.* xattrs)\n";
    return 77;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
