// Reference normalisation as Docker and Kubernetes do it, and the registry host rules.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "nodeagent/images/images.h"
#include "nodeagent/images/internal.h"

using namespace berth::nodeagent::images;

static std::string norm(const std::string& s) {
  auto r = parse_reference(s);
  return r ? r->str() : "ERROR: " + r.status().message();
}

static const std::string kDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

TEST_CASE("short names get docker.io, library/ and :latest") {
  CHECK(norm("busybox") == "docker.io/library/busybox:latest");
  CHECK(norm("busybox:1.36") == "docker.io/library/busybox:1.36");
  CHECK(norm("library/busybox") == "docker.io/library/busybox:latest");
  CHECK(norm("bitnami/redis:7") == "docker.io/bitnami/redis:7");
  CHECK(norm("docker.io/busybox") == "docker.io/library/busybox:latest");
  CHECK(norm("index.docker.io/library/busybox:1") == "docker.io/library/busybox:1");
  CHECK(norm("a/b/c/d") == "docker.io/a/b/c/d:latest");
}

TEST_CASE("registries with a dot, a port or localhost keep their domain") {
  CHECK(norm("127.0.0.1:5000/busybox:1") == "127.0.0.1:5000/busybox:1");
  CHECK(norm("localhost/busybox") == "localhost/busybox:latest");
  CHECK(norm("localhost:5000/a/b") == "localhost:5000/a/b:latest");
  CHECK(norm("registry.k8s.io/pause:3.9") == "registry.k8s.io/pause:3.9");
  CHECK(norm("[::1]:5000/busybox") == "[::1]:5000/busybox:latest");
  CHECK(norm("quay.io/coreos/etcd") == "quay.io/coreos/etcd:latest");
  auto r = parse_reference("127.0.0.1:5000/team/app:v2");
  REQUIRE(r);
  CHECK(r->domain == "127.0.0.1:5000");
  CHECK(r->path == "team/app");
  CHECK(r->tag == "v2");
}

TEST_CASE("digests: no :latest is added, a tag beside a digest is kept") {
  CHECK(norm("busybox@" + kDigest) == "docker.io/library/busybox@" + kDigest);
  CHECK(norm("busybox:1@" + kDigest) == "docker.io/library/busybox:1@" + kDigest);
  CHECK(norm("127.0.0.1:5000/busybox@" + kDigest) == "127.0.0.1:5000/busybox@" + kDigest);
  auto r = parse_reference("busybox@" + kDigest);
  REQUIRE(r);
  CHECK(r->tag.empty());
  CHECK(r->digest == kDigest);
}

TEST_CASE("invalid references are refused with Docker's words") {
  for (const char* bad : {"", "Busybox", "busybox:", ":tag", "busybox@sha256:abc", "bad//name", "-x/y", "a/b:t@x",
                          "busybox:" /* empty tag */, "a b", "UPPER/case/Repo"}) {
    auto r = parse_reference(bad);
    CHECK_MESSAGE(!r, bad);
    if (!r) CHECK(r.status().reason() == berth::api::Reason::Invalid);
  }
  CHECK(norm("Busybox").find("invalid reference format") != std::string::npos);
  CHECK(norm("library/Busybox") == "ERROR: invalid reference format: repository name (library/Busybox) must be lowercase");
  CHECK(norm(std::string(64, 'a')).find("cannot specify 64-byte hexadecimal strings") != std::string::npos);
  CHECK(norm("busybox:" + std::string(129, 't')).rfind("ERROR", 0) == 0);
}

TEST_CASE("loopback registries are plain HTTP; insecure lists match host, host:port and CIDR") {
  using namespace berth::nodeagent::images::detail;
  CHECK(is_loopback_host("127.0.0.1:5000"));
  CHECK(is_loopback_host("127.3.4.5"));
  CHECK(is_loopback_host("localhost:5000"));
  CHECK(is_loopback_host("[::1]:5000"));
  CHECK_FALSE(is_loopback_host("10.0.0.1:5000"));
  CHECK_FALSE(is_loopback_host("docker.io"));
  CHECK(api_host("docker.io") == "registry-1.docker.io");
  CHECK(api_host("quay.io") == "quay.io");
  std::vector<std::string> insecure = {"reg.local:5000", "plain.example", "10.1.0.0/16"};
  CHECK(is_insecure("reg.local:5000", insecure));
  CHECK_FALSE(is_insecure("reg.local:6000", insecure));
  CHECK(is_insecure("plain.example:8443", insecure));
  CHECK(is_insecure("10.1.2.3:5000", insecure));
  CHECK_FALSE(is_insecure("10.2.0.1", insecure));
}

TEST_CASE("ChainIDs follow the OCI definition") {
  using namespace berth::nodeagent::images::detail;
  std::string a = sha256_digest("a"), b = sha256_digest("b");
  auto c = chain_ids({a, b});
  REQUIRE(c.size() == 2);
  CHECK(c[0] == a);
  CHECK(c[1] == sha256_digest(a + " " + b));
  CHECK(sha256_digest("") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("platform selection picks linux/amd64 from an index") {
  using namespace berth::nodeagent::images::detail;
  auto d = [](const char* arch, char c, const char* variant = nullptr) {
    nlohmann::json j = {{"mediaType", kOciManifest}, {"digest", "sha256:" + std::string(64, c)}, {"size", 10},
                        {"platform", {{"os", "linux"}, {"architecture", arch}}}};
    if (variant) j["platform"]["variant"] = variant;
    return j;
  };
  nlohmann::json index = {{"schemaVersion", 2}, {"manifests", {d("arm64", 'a', "v8"), d("amd64", 'b'), d("s390x", 'c')}}};
  auto pick = select_platform(index, "sha256:idx");
  REQUIRE(pick);
  CHECK(pick->digest == "sha256:" + std::string(64, 'b'));
  nlohmann::json none = {{"manifests", {d("arm64", 'a')}}};
  auto miss = select_platform(none, "sha256:idx");
  REQUIRE_FALSE(miss);
  CHECK(miss.status().message() == "no match for platform linux/amd64 in manifest sha256:idx: not found");
}
