#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>

#include "nodeagent/runtime.h"

using namespace berth::nodeagent;

namespace {

bool has_namespace(const json& config, const std::string& type, const std::string& path = "") {
  for (const auto& ns : config["linux"]["namespaces"])
    if (ns["type"] == type) return path.empty() || ns.value("path", "") == path;
  return false;
}

const json* mount_at(const json& config, const std::string& dest) {
  for (const auto& m : config["mounts"])
    if (m["destination"] == dest) return &m;
  return nullptr;
}

bool has_cap(const json& config, const std::string& cap) {
  const auto& caps = config["process"]["capabilities"]["bounding"];
  return std::find(caps.begin(), caps.end(), cap) != caps.end();
}

}  // namespace

TEST_CASE("a pod container's config.json") {
  OciSpec s;
  s.args = {"sh", "-c", "echo hi"};
  s.env = {"PATH=/bin", "A=1"};
  s.cwd = "/work";
  s.uid = 1000;
  s.gid = 1000;
  s.additional_gids = {10};
  s.hostname = "web-0";
  s.netns_path = "/run/netns/berth-u1";
  s.ipc_path = "/run/berth/ipc/berth-u1";
  s.mounts.push_back({"/etc/hosts", "/var/lib/x/etc-hosts", "bind", {"rbind", "rprivate", "rw"}});
  s.mounts.push_back({"/data", "/var/lib/x/vol", "bind", {"rbind", "rprivate", "ro"}});
  s.cpu_shares = 256;
  s.cpu_quota = 50000;
  s.cpu_period = 100000;
  s.memory_limit = 128 << 20;
  s.cgroups_path = "/berth/kubepods/burstable/podu1/abc";
  s.oom_score_adj = 500;
  s.cap_add = {"NET_ADMIN"};
  s.cap_drop = {"KILL"};
  s.sysctls = {{"net.ipv4.ip_unprivileged_port_start", "0"}};
  json c = build_oci_config(s);
  CHECK(c["ociVersion"] == "1.0.2");
  CHECK(c["process"]["terminal"] == false);
  CHECK(c["process"]["args"] == json({"sh", "-c", "echo hi"}));
  CHECK(c["process"]["cwd"] == "/work");
  CHECK(c["process"]["user"]["uid"] == 1000);
  CHECK(c["process"]["user"]["additionalGids"] == json({10}));
  CHECK(c["process"]["oomScoreAdj"] == 500);
  CHECK(c["root"]["path"] == "rootfs");
  CHECK(c["root"]["readonly"] == false);
  CHECK(c["hostname"] == "web-0");
  CHECK(has_namespace(c, "network", "/run/netns/berth-u1"));
  CHECK(has_namespace(c, "ipc", "/run/berth/ipc/berth-u1"));
  CHECK(has_namespace(c, "pid"));
  CHECK(has_namespace(c, "uts"));
  CHECK(has_namespace(c, "mount"));
  CHECK_FALSE(has_namespace(c, "cgroup"));
  CHECK(c["linux"]["resources"]["cpu"]["shares"] == 256);
  CHECK(c["linux"]["resources"]["cpu"]["quota"] == 50000);
  CHECK(c["linux"]["resources"]["cpu"]["period"] == 100000);
  CHECK(c["linux"]["resources"]["memory"]["limit"] == 128 << 20);
  CHECK(c["linux"]["resources"]["devices"][0]["allow"] == false);
  CHECK(c["linux"]["cgroupsPath"] == "/berth/kubepods/burstable/podu1/abc");
  CHECK(c["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"] == "0");
  CHECK(c["linux"]["maskedPaths"].size() > 0);
  CHECK(has_cap(c, "CAP_NET_ADMIN"));
  CHECK(has_cap(c, "CAP_CHOWN"));
  CHECK_FALSE(has_cap(c, "CAP_KILL"));
  CHECK_FALSE(has_cap(c, "CAP_SYS_ADMIN"));
  REQUIRE(mount_at(c, "/proc"));
  REQUIRE(mount_at(c, "/sys"));
  CHECK((*mount_at(c, "/sys"))["type"] == "sysfs");
  REQUIRE(mount_at(c, "/data"));
  CHECK((*mount_at(c, "/data"))["options"] == json({"rbind", "rprivate", "ro"}));
  // The standard mounts come before the pod's.
  CHECK(c["mounts"][0]["destination"] == "/proc");
}

TEST_CASE("host network, privileged, negative OOM scores") {
  OciSpec s;
  s.args = {"true"};
  s.host_network = true;
  s.host_ipc = true;
  s.host_pid = true;
  s.privileged = true;
  s.readonly_rootfs = true;
  s.oom_score_adj = -997;  // never written: runtimes fail to start here without CAP_SYS_RESOURCE
  s.cgroup_namespace = true;
  json c = build_oci_config(s);
  CHECK_FALSE(has_namespace(c, "network"));
  CHECK_FALSE(has_namespace(c, "ipc"));
  CHECK_FALSE(has_namespace(c, "pid"));
  CHECK_FALSE(has_namespace(c, "uts"));
  CHECK(has_namespace(c, "cgroup"));
  CHECK_FALSE(c.contains("hostname"));
  CHECK_FALSE(c["process"].contains("oomScoreAdj"));
  CHECK(c["root"]["readonly"] == true);
  CHECK(has_cap(c, "CAP_SYS_ADMIN"));
  CHECK_FALSE(c["linux"].contains("maskedPaths"));
  CHECK(c["linux"]["resources"]["devices"][0]["allow"] == true);
  REQUIRE(mount_at(c, "/sys"));
  CHECK((*mount_at(c, "/sys"))["type"] == "bind");
  OciSpec drop_all;
  drop_all.cap_drop = {"ALL"};
  drop_all.cap_add = {"chown"};
  json d = build_oci_config(drop_all);
  CHECK(d["process"]["capabilities"]["bounding"] == json({"CAP_CHOWN"}));
}
