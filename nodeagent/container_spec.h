// From a pod spec to what a container runs with, as the kubelet computes it: $(VAR) expansion,
// the command/args merge with the image's entrypoint/cmd, environment variables (env, envFrom,
// valueFrom fieldRef/resourceFieldRef/configMapKeyRef/secretKeyRef, service links), the user,
// cgroup resources and the QoS cgroup parent. Pure functions plus an ObjectSource for the
// ConfigMaps, Secrets and Services they read, so all of it is unit-tested.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nodeagent/util.h"

namespace berth::nodeagent {

// Where ConfigMaps, Secrets and Services come from (the API server, or a test's map).
class ObjectSource {
 public:
  virtual ~ObjectSource() = default;
  virtual api::Result<json> configmap(const std::string& ns, const std::string& name) = 0;
  virtual api::Result<json> secret(const std::string& ns, const std::string& name) = 0;
  // Services in `ns` and the master service default/kubernetes (items of ServiceLists).
  virtual api::Result<std::vector<json>> services(const std::string& ns) = 0;
  // A projected service account token (TokenRequest); NotFound when the server cannot issue one.
  virtual api::Result<std::string> service_account_token(const std::string& ns, const std::string& service_account,
                                                         const std::string& audience, int64_t expiration_seconds,
                                                         const json& pod) {
    return api::Status(api::Reason::NotFound, "token requests are not supported");
  }
  // The cluster CA bundle, for kube-root-ca.crt when the server does not publish it.
  virtual std::string cluster_ca() { return ""; }
};

using EnvList = std::vector<std::pair<std::string, std::string>>;

// third_party/forked/golang/expansion: $(NAME) from lookup (left as is when undefined), $$ -> $.
std::string expand_vars(const std::string& input,
                        const std::function<std::optional<std::string>(const std::string&)>& lookup);

// ExpandContainerCommandAndArgs then the runtime's merge with the image: command replaces the
// entrypoint (and drops the image cmd); args replace the image cmd.
std::vector<std::string> container_process_args(const json& container, const std::vector<std::string>& image_entrypoint,
                                                const std::vector<std::string>& image_cmd, const EnvList& env);

// "name_namespace(uid)": format.Pod, as kubelet messages print a pod.
std::string format_pod(const json& pod);

// The container's environment (kubelet's makeEnvironmentVariables): envFrom, then env in order,
// then service link variables not already defined. `pod` carries status.podIP(s)/hostIP(s).
// Errors are what CreateContainerConfigError shows: `configmap "x" not found`,
// `couldn't find key k in ConfigMap ns/x`. `skipped` collects the InvalidEnvironmentVariableNames messages.
api::Result<EnvList> container_env(const json& pod, const json& container, ObjectSource& source,
                                   const json& node_allocatable, std::vector<std::string>* skipped = nullptr);

// Docker-link style variables for a list of Services (FromServices).
EnvList service_env(const std::vector<json>& services);

// A downward API field (metadata.name, metadata.labels['k'], status.podIP, ...); error for an
// unsupported path.
api::Result<std::string> pod_field_value(const json& pod, const std::string& field_path);
// A resourceFieldRef value (limits.cpu with its divisor, ...), defaulting limits to the node's allocatable.
api::Result<std::string> resource_field_value(const json& container, const json& ref, const json& node_allocatable);

// Image env (KEY=VALUE) overridden by the container's.
std::vector<std::string> merge_env(const std::vector<std::string>& image_env, const EnvList& env);

// ---- user ----
struct ProcessUser {
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> additional_gids;
};
// The image's USER ("name", "uid", "name:group", "uid:gid") resolved against the image's
// /etc/passwd and /etc/group texts, then runAsUser/runAsGroup/supplementalGroups/fsGroup and
// the runAsNonRoot check (messages as verifyRunAsNonRoot's).
api::Result<ProcessUser> resolve_user(const json& pod, const json& container, const std::string& image_user,
                                      const std::string& passwd, const std::string& group);

// ---- resources ----
struct CgroupResources {
  uint64_t cpu_shares = 2;
  int64_t cpu_quota = 0;
  uint64_t cpu_period = 0;
  int64_t memory_limit = 0;
};
CgroupResources container_cgroup_resources(const json& container);
// oom_score_adj for the container by QoS (nullopt for Guaranteed: its -997 cannot be set here).
std::optional<int> oom_score_adj(const std::string& qos_class, const json& container, int64_t memory_capacity);
// "<root>/kubepods[/burstable|/besteffort]/pod<uid>"
std::string pod_cgroup_parent(const std::string& root, const std::string& qos_class, const std::string& uid);
// status.qosClass when set, else computed from the spec.
std::string pod_qos_class(const json& pod);

// A CPU or memory quantity as an integer (milli-CPU or bytes); 0 when absent or malformed.
int64_t quantity_milli(const json& q);
int64_t quantity_value(const json& q);

// Secret data decoding (standard base64; invalid characters skipped).
std::string base64_decode(const std::string& in);

}  // namespace berth::nodeagent
