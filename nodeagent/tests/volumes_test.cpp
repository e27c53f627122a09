#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include "nodeagent/volumes.h"

using namespace berth::nodeagent;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/berth-vol-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { remove_all(path); }
};

std::string link_target(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf));
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
}

}  // namespace

TEST_CASE("configMap and secret payloads") {
  json cm = {{"data", {{"a.conf", "A"}, {"b.conf", "B"}}}, {"binaryData", {{"bin", "AAE="}}}};
  auto all = configmap_payload({{"name", "cfg"}}, cm);
  REQUIRE(all.ok());
  CHECK(all->size() == 3);
  CHECK(all->at("a.conf").content == "A");
  CHECK(all->at("a.conf").mode == 0644);
  CHECK(all->at("bin").content == std::string("\0\1", 2));
  json source = json::parse(R"({"defaultMode": 256, "items": [{"key": "b.conf", "path": "conf/b", "mode": 384}, {"key": "a.conf", "path": "a"}]})");
  auto items = configmap_payload(source, cm);
  REQUIRE(items.ok());
  CHECK(items->size() == 2);
  CHECK(items->at("conf/b").mode == 0600);
  CHECK(items->at("a").mode == 0400);
  auto missing = configmap_payload(json::parse(R"({"items": [{"key": "nope", "path": "x"}]})"), cm);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message() == "configmap references non-existent config key: nope");
  auto secret = secret_payload({{"secretName", "s"}}, {{"data", {{"token", "c2VjcmV0"}}}});
  REQUIRE(secret.ok());
  CHECK(secret->at("token").content == "secret");
  auto sm = secret_payload(json::parse(R"({"items": [{"key": "x", "path": "x"}]})"), json::parse(R"({"data": {}})"));
  CHECK(sm.status().message() == "references non-existent secret key: x");
}

TEST_CASE("downward API payload") {
  json pod = {{"metadata", {{"name", "p"}, {"namespace", "n"}, {"labels", {{"a", "1"}}}}},
              {"spec", {{"containers", {{{"name", "c"}, {"resources", {{"limits", {{"memory", "64Mi"}}}}}}}}}}};
  json src = {{"items", {{{"path", "labels"}, {"fieldRef", {{"fieldPath", "metadata.labels"}}}},
                         {{"path", "mem"}, {"resourceFieldRef", {{"containerName", "c"}, {"resource", "limits.memory"}, {"divisor", "1Mi"}}}}}}};
  auto p = downward_api_payload(src, pod, json::object());
  REQUIRE(p.ok());
  CHECK(p->at("labels").content == "a=\"1\"");
  CHECK(p->at("mem").content == "64");
}

TEST_CASE("atomic writer layout and updates") {
  TempDir dir;
  std::string vol = dir.path + "/vol";
  VolumePayload p = {{"a", {"one", 0644}}, {"sub/b", {"two", 0600}}};
  REQUIRE(write_atomic_payload(vol, p).is_ok());
  CHECK(read_file_or(vol + "/a") == "one");
  CHECK(read_file_or(vol + "/sub/b") == "two");
  CHECK(link_target(vol + "/a") == "..data/a");
  CHECK(link_target(vol + "/sub") == "..data/sub");
  std::string first = link_target(vol + "/..data");
  CHECK(starts_with(first, "..20"));
  // unchanged: nothing rewritten
  REQUIRE(write_atomic_payload(vol, p).is_ok());
  CHECK(link_target(vol + "/..data") == first);
  // changed: a new timestamped directory, the old one gone, removed keys gone
  VolumePayload p2 = {{"a", {"uno", 0644}}};
  REQUIRE(write_atomic_payload(vol, p2).is_ok());
  CHECK(read_file_or(vol + "/a") == "uno");
  CHECK_FALSE(exists(vol + "/sub"));
  CHECK(link_target(vol + "/..data") != first);
  CHECK_FALSE(exists(vol + "/" + first));
}

TEST_CASE("managed /etc/hosts and resolv.conf") {
  json pod = {{"metadata", {{"name", "web-0"}, {"namespace", "shop"}}},
              {"spec", {{"hostAliases", {{{"ip", "10.1.2.3"}, {"hostnames", {"foo.local", "bar.local"}}}}}}}};
  std::string hosts = managed_hosts_file(pod, "10.88.0.5", false, "");
  CHECK(hosts.find("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n") == 0);
  CHECK(hosts.find("10.88.0.5\tweb-0\n") != std::string::npos);
  CHECK(hosts.find("# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n") != std::string::npos);
  pod["spec"]["hostname"] = "db";
  pod["spec"]["subdomain"] = "svc";
  CHECK(managed_hosts_file(pod, "10.88.0.5", false, "").find("10.88.0.5\tdb.svc.shop.svc.cluster.local\tdb\n") !=
        std::string::npos);
  CHECK(pod_hostname({{"metadata", {{"name", std::string(70, 'a')}}}}).size() == 63);

  std::string host = "nameserver 192.0.2.53\nsearch example.com\noptions edns0\n";
  json p = {{"metadata", {{"namespace", "shop"}}}, {"spec", json::object()}};
  CHECK(pod_resolv_conf(p, host, "10.96.0.10") ==
        "search shop.svc.cluster.local svc.cluster.local cluster.local example.com\nnameserver 10.96.0.10\noptions ndots:5\n");
  CHECK(pod_resolv_conf(p, host, "") == "search example.com\nnameserver 192.0.2.53\noptions edns0\n");
  json none = {{"metadata", {{"namespace", "shop"}}},
               {"spec", {{"dnsPolicy", "None"}, {"dnsConfig", {{"nameservers", {"1.1.1.1"}}, {"options", {{{"name", "ndots"}, {"value", "2"}}}}}}}}};
  CHECK(pod_resolv_conf(none, host, "10.96.0.10") == "nameserver 1.1.1.1\noptions ndots:2\n");
}
