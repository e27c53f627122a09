// Pod volumes on the host, as the kubelet's volume plugins lay them out under the pod directory:
// emptyDir (a directory, tmpfs for medium Memory), hostPath (with its type checks), configMap,
// secret (tmpfs), downwardAPI and projected, written with the atomic-writer layout (..data
// symlink) so updates appear at once. Also the pod's managed /etc/hosts, /etc/hostname and
// /etc/resolv.conf.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "nodeagent/container_spec.h"
#include "nodeagent/util.h"

namespace berth::nodeagent {

struct VolumeFile {
  std::string content;
  int mode = 0644;
};
using VolumePayload = std::map<std::string, VolumeFile>;  // relative path -> file

// Payloads (pure; errors are the messages FailedMount shows after `MountVolume.SetUp failed for volume "x" : `).
api::Result<VolumePayload> configmap_payload(const json& source, const json& configmap);
api::Result<VolumePayload> secret_payload(const json& source, const json& secret);
api::Result<VolumePayload> downward_api_payload(const json& source, const json& pod, const json& node_allocatable);

// Writes payload into dir with the atomic-writer layout; a no-op when nothing changed.
api::Status write_atomic_payload(const std::string& dir, const VolumePayload& payload);

class VolumeManager {
 public:
  VolumeManager(std::string pods_dir, ObjectSource& source) : pods_dir_(std::move(pods_dir)), source_(source) {}
  // Sets up every volume of the pod; volume name -> host path. An error names the volume as
  // the kubelet's FailedMount event does.
  api::Result<std::map<std::string, std::string>> setup(const json& pod, const json& node_allocatable);
  // Unmounts the pod's tmpfs volumes and removes its volume directories.
  void teardown(const std::string& uid);
  std::string pod_dir(const std::string& uid) const { return pods_dir_ + "/" + uid; }

 private:
  std::string pods_dir_;
  ObjectSource& source_;
};

// /etc/hosts for a pod: the kubelet's managed file with the pod's IP and host name (and
// hostAliases); for hostNetwork pods the host's file plus the aliases.
std::string managed_hosts_file(const json& pod, const std::string& pod_ip, bool host_network,
                               const std::string& host_hosts);
// The pod's host name (spec.hostname or the name, truncated to 63 characters).
std::string pod_hostname(const json& pod);
// /etc/resolv.conf for the pod's dnsPolicy and dnsConfig; cluster_dns empty falls back to the
// host's file (the kubelet's "Default" fallback for ClusterFirst).
std::string pod_resolv_conf(const json& pod, const std::string& host_resolv, const std::string& cluster_dns,
                            const std::string& cluster_domain = "cluster.local");

}  // namespace berth::nodeagent
