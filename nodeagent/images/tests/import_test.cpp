// `berth image import`: an OCI layout built with umoci from busybox-static, the same layout
// as a tar, a docker archive written by skopeo, and a layout with a corrupted blob.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <sys/wait.h>

#include "nodeagent/images/internal.h"
#include "test_util.h"

using namespace berth::nodeagent::images;
namespace api = berth::api;
namespace fs = std::filesystem;

namespace {

// One busybox layout for the whole run (umoci takes a few seconds).
struct Fixture {
  testutil::TempDir dir;
  bool ok = false;
  std::string layout;
  testutil::LayoutImage img;
  Fixture() {
    ok = testutil::make_busybox_layout(dir.path) &&
         testutil::sh("umoci tag --image " + dir.path + "/oci:1 busybox:imported", dir.path + "/build.log") == 0;
    layout = dir.path + "/oci";
    if (ok) img = testutil::layout_image(layout, "1");
    if (!ok) std::cerr << testutil::read(dir.path + "/build.log");
  }
};
Fixture& fixture() {
  static Fixture f;
  return f;
}

std::unique_ptr<ImageStore> open_store(const std::string& dir) {
  auto s = ImageStore::open(dir, {});
  REQUIRE_MESSAGE(s, s.status().message());
  return std::move(*s);
}

void check_busybox(const Image& img) {
  REQUIRE(img.layer_dirs.size() == 1);
  const std::string& layer = img.layer_dirs[0];
  struct stat st;
  REQUIRE(::lstat((layer + "/bin/busybox").c_str(), &st) == 0);
  CHECK(S_ISREG(st.st_mode));
  CHECK((st.st_mode & 0111) != 0);
  REQUIRE(::lstat((layer + "/bin/sh").c_str(), &st) == 0);
  CHECK(S_ISLNK(st.st_mode));
  CHECK(img.config.cmd == std::vector<std::string>{"sh"});
  CHECK(img.digest == fixture().img.config);
}

}  // namespace

TEST_CASE("import an OCI layout directory made with umoci") {
  auto& f = fixture();
  REQUIRE(f.ok);
  testutil::TempDir store_dir;
  auto store = open_store(store_dir.path + "/store");
  auto imported = import_image(*store, f.layout);
  REQUIRE_MESSAGE(imported, imported.status().message());
  // Two index entries: ref.name "1" (a bare tag: no name) and "busybox:imported".
  REQUIRE(imported->size() == 2);
  for (const auto& img : *imported) check_busybox(img);
  CHECK((*imported)[1].ref == "docker.io/library/busybox:imported");
  CHECK((*imported)[0].layer_dirs == (*imported)[1].layer_dirs);  // one unpacked copy

  auto found = store->find("busybox:imported");
  REQUIRE_MESSAGE(found, found.status().message());
  check_busybox(*found);
  auto by_id = store->find(f.img.config);
  REQUIRE(by_id);
  CHECK(by_id->digest == f.img.config);
  auto by_digest = store->find("busybox@" + f.img.manifest);
  REQUIRE_MESSAGE(by_digest, by_digest.status().message());

  auto id_ensure = store->ensure(f.img.config, "IfNotPresent", {});  // CRI lets a pod name an image ID
  REQUIRE_MESSAGE(id_ensure, id_ensure.status().message());
  CHECK(id_ensure->digest == f.img.config);
  auto absent_id = store->ensure("sha256:" + std::string(64, 'e'), "Never", {});
  REQUIRE_FALSE(absent_id);
  CHECK(waiting_reason(absent_id.status()) == "ErrImageNeverPull");

  auto never = store->ensure("busybox:imported", "Never", {});
  REQUIRE(never);
  check_busybox(*never);
  auto absent = store->ensure("busybox:absent", "Never", {});
  REQUIRE_FALSE(absent);
  CHECK(absent.status().message() == "Container image \"busybox:absent\" is not present with pull policy of Never");
  CHECK(waiting_reason(absent.status()) == "ErrImageNeverPull");

  // The store is an index plus content; a reopened store sees the same image.
  auto again = open_store(store_dir.path + "/store");
  auto refound = again->find("docker.io/library/busybox:imported");
  REQUIRE(refound);
  CHECK(refound->layer_dirs == found->layer_dirs);
  CHECK(fs::is_empty(store_dir.path + "/store/tmp"));
}

TEST_CASE("import an OCI archive (tar of the layout) and a docker archive from skopeo") {
  auto& f = fixture();
  REQUIRE(f.ok);
  testutil::TempDir work;
  REQUIRE(testutil::sh("tar -C " + f.layout + " -cf " + work.path + "/oci.tar .") == 0);
  auto store = open_store(work.path + "/store");
  auto from_tar = import_image(*store, work.path + "/oci.tar");
  REQUIRE_MESSAGE(from_tar, from_tar.status().message());
  REQUIRE(from_tar->size() == 2);
  check_busybox(from_tar->back());
  CHECK(fs::is_empty(work.path + "/store/tmp"));

  if (!testutil::have("skopeo")) {
    MESSAGE("skopeo is not installed: docker archive import not checked");
    return;
  }
  REQUIRE(testutil::sh("skopeo copy --quiet oci:" + f.layout + ":1 docker-archive:" + work.path +
                           "/docker.tar:busybox:fromdocker",
                       work.path + "/skopeo.log") == 0);
  auto from_docker = import_image(*store, work.path + "/docker.tar");
  REQUIRE_MESSAGE(from_docker, from_docker.status().message());
  REQUIRE(from_docker->size() == 1);
  const Image& d = from_docker->front();
  CHECK(d.ref == "docker.io/library/busybox:fromdocker");
  CHECK(d.config.cmd == std::vector<std::string>{"sh"});
  // The uncompressed docker layer has the same DiffID, so it is the same unpacked directory.
  CHECK(d.layer_dirs == from_tar->back().layer_dirs);
  CHECK(store->find("busybox:fromdocker"));
}

TEST_CASE("a layout with a corrupted blob is refused and leaves nothing behind") {
  auto& f = fixture();
  REQUIRE(f.ok);
  testutil::TempDir work;
  REQUIRE(testutil::sh("cp -a " + f.layout + " " + work.path + "/bad") == 0);
  std::string layer = work.path + "/bad/blobs/sha256/" + f.img.layer.substr(7);
  std::string data = testutil::read(layer);
  data[data.size() / 2] ^= 0x5a;  // same size, different content
  testutil::write(layer, data);
  auto store = open_store(work.path + "/store");
  auto r = import_image(*store, work.path + "/bad");
  REQUIRE_FALSE(r);
  CHECK(r.status().message().find("unexpected commit digest") != std::string::npos);
  CHECK(r.status().message().find(f.img.layer) != std::string::npos);
  CHECK(!fs::exists(work.path + "/store/blobs/sha256/" + f.img.layer.substr(7)));
  CHECK_FALSE(store->find("busybox:imported"));
  CHECK(fs::is_empty(work.path + "/store/tmp"));
  CHECK(fs::is_empty(work.path + "/store/layers"));

  auto missing = import_image(*store, work.path + "/nothing-here");
  CHECK_FALSE(missing);
  auto not_image = import_image(*store, work.path);
  CHECK_FALSE(not_image);
  CHECK(not_image.status().message().find("not an OCI image layout or a docker archive") != std::string::npos);
}

TEST_CASE("an interrupted pull's temporary files are swept when the store is opened again") {
  testutil::TempDir t;
  open_store(t.path + "/store");
  pid_t dead = ::fork();  // a pid that is surely gone
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  const std::string stale = t.path + "/store/tmp/" + std::to_string(dead) + "-7-layer";
  const std::string ours = t.path + "/store/tmp/" + std::to_string(::getpid()) + "-999999-blob";
  fs::create_directories(stale + "/usr/bin");
  testutil::write(stale + "/usr/bin/half", "half written");
  testutil::write(ours, "still being written by a live process");
  const std::string stale_index = t.path + "/store/images.json.tmp-" + std::to_string(dead);
  testutil::write(stale_index, "{\"images\": {\"half");
  auto store = open_store(t.path + "/store");
  CHECK(!fs::exists(stale));
  CHECK(!fs::exists(stale_index));
  CHECK(fs::exists(ours));
  CHECK_FALSE(store->find("busybox"));
}

int main(int argc, char** argv) {
  if (::geteuid() != 0) {
    std::cout << "SKIP: import tests need root (layers carry owners and whiteouts)\n";
    return 77;
  }
  if (!testutil::have("umoci") || !fs::exists("/bin/busybox")) {
    std::cout << "SKIP: umoci and busybox-static are needed to build the test image "
                 "(apt-get install umoci busybox-static)\n";
    return 77;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
