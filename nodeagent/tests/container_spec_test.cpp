#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <map>

#include "nodeagent/container_spec.h"

using namespace berth::nodeagent;
using berth::api::Reason;
using berth::api::Status;

namespace {

class FakeObjects : public ObjectSource {
 public:
  std::map<std::string, json> configmaps, secrets;
  std::vector<json> svc;
  berth::api::Result<json> configmap(const std::string& ns, const std::string& name) override {
    auto it = configmaps.find(ns + "/" + name);
    if (it == configmaps.end()) return Status(Reason::NotFound, "configmaps \"" + name + "\" not found");
    return it->second;
  }
  berth::api::Result<json> secret(const std::string& ns, const std::string& name) override {
    auto it = secrets.find(ns + "/" + name);
    if (it == secrets.end()) return Status(Reason::NotFound, "secrets \"" + name + "\" not found");
    return it->second;
  }
  berth::api::Result<std::vector<json>> services(const std::string&) override { return svc; }
};

json pod_with(const json& container) {
  return {{"metadata", {{"name", "web"}, {"namespace", "shop"}, {"uid", "u-1"}, {"labels", {{"app", "web"}, {"tier", "front"}}}}},
          {"spec", {{"nodeName", "n1"}, {"serviceAccountName", "default"}, {"containers", json::array({container})}}},
          {"status", {{"podIP", "10.88.0.7"}, {"podIPs", {{{"ip", "10.88.0.7"}}}}, {"hostIP", "192.0.2.1"}}}};
}

std::optional<std::string> lookup_in(const std::map<std::string, std::string>& m, const std::string& k) {
  auto it = m.find(k);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

std::string env_value(const EnvList& env, const std::string& k) {
  for (const auto& [name, v] : env)
    if (name == k) return v;
  return "<unset>";
}

}  // namespace

TEST_CASE("expand_vars follows Kubernetes' expansion rules") {
  std::map<std::string, std::string> vars = {{"A", "alpha"}, {"B", "beta"}};
  auto f = [&](const std::string& k) { return lookup_in(vars, k); };
  CHECK(expand_vars("$(A)", f) == "alpha");
  CHECK(expand_vars("x-$(A)-$(B)-y", f) == "x-alpha-beta-y");
  CHECK(expand_vars("$(MISSING)", f) == "$(MISSING)");
  CHECK(expand_vars("$$(A)", f) == "$(A)");
  CHECK(expand_vars("$$$(A)", f) == "$alpha");
  CHECK(expand_vars("$A", f) == "$A");
  CHECK(expand_vars("$(A", f) == "$(A");
  CHECK(expand_vars("tail$", f) == "tail$");
  CHECK(expand_vars("", f) == "");
}

TEST_CASE("command and args merge with the image's entrypoint and cmd") {
  std::vector<std::string> ep = {"/entry"}, cmd = {"--default"};
  EnvList env = {{"NAME", "world"}};
  CHECK(container_process_args(json::object(), ep, cmd, env) == std::vector<std::string>{"/entry", "--default"});
  CHECK(container_process_args({{"args", {"--x"}}}, ep, cmd, env) == std::vector<std::string>{"/entry", "--x"});
  CHECK(container_process_args({{"command", {"sh", "-c"}}}, ep, cmd, env) == std::vector<std::string>{"sh", "-c"});
  CHECK(container_process_args({{"command", {"echo"}}, {"args", {"hello $(NAME)"}}}, ep, cmd, env) ==
        std::vector<std::string>{"echo", "hello world"});
  CHECK(container_process_args(json::object(), {}, {"sh"}, env) == std::vector<std::string>{"sh"});
  CHECK(container_process_args(json::object(), {}, {}, env).empty());
}

TEST_CASE("environment: env in order with expansion, envFrom, valueFrom") {
  FakeObjects objs;
  objs.configmaps["shop/cfg"] = {{"data", {{"MODE", "fast"}, {"bad key", "x"}, {"LEVEL", "3"}}}};
  objs.secrets["shop/creds"] = {{"data", {{"password", "c2VjcmV0"}}}};  // "secret"
  json c = {{"name", "app"},
            {"envFrom", {{{"configMapRef", {{"name", "cfg"}}}, {"prefix", "CFG_"}}}},
            {"env",
             {{{"name", "A"}, {"value", "one"}},
              {{"name", "B"}, {"value", "$(A)-two"}},
              {{"name", "POD"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}},
              {{"name", "IP"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "status.podIP"}}}}}},
              {{"name", "APP"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.labels['app']"}}}}}},
              {{"name", "PW"}, {"valueFrom", {{"secretKeyRef", {{"name", "creds"}, {"key", "password"}}}}}},
              {{"name", "M"}, {"valueFrom", {{"configMapKeyRef", {{"name", "cfg"}, {"key", "MODE"}}}}}},
              {{"name", "CPU"}, {"valueFrom", {{"resourceFieldRef", {{"resource", "limits.cpu"}}}}}},
              {{"name", "MEM_MI"}, {"valueFrom", {{"resourceFieldRef", {{"resource", "requests.memory"}, {"divisor", "1Mi"}}}}}}}},
            {"resources", {{"requests", {{"memory", "64Mi"}}}}}};
  std::vector<std::string> skipped;
  auto env = container_env(pod_with(c), c, objs, {{"cpu", "4"}, {"memory", "8Gi"}}, &skipped);
  REQUIRE(env.ok());
  CHECK(env_value(*env, "CFG_MODE") == "fast");
  CHECK(env_value(*env, "CFG_LEVEL") == "3");
  CHECK(env_value(*env, "A") == "one");
  CHECK(env_value(*env, "B") == "one-two");
  CHECK(env_value(*env, "POD") == "web");
  CHECK(env_value(*env, "IP") == "10.88.0.7");
  CHECK(env_value(*env, "APP") == "web");
  CHECK(env_value(*env, "PW") == "secret");
  CHECK(env_value(*env, "M") == "fast");
  CHECK(env_value(*env, "CPU") == "4");  // no limit: the node's allocatable
  CHECK(env_value(*env, "MEM_MI") == "64");
  REQUIRE(skipped.size() == 1);
  CHECK(skipped[0] == "Keys [CFG_bad key] from the EnvFrom configMap shop/cfg were skipped since they are considered invalid environment variable names.");
}

TEST_CASE("environment errors read as the kubelet's") {
  FakeObjects objs;
  objs.configmaps["shop/cfg"] = {{"data", {{"MODE", "fast"}}}};
  json missing_cm = {{"name", "app"}, {"env", {{{"name", "X"}, {"valueFrom", {{"configMapKeyRef", {{"name", "nope"}, {"key", "k"}}}}}}}}};
  auto r = container_env(pod_with(missing_cm), missing_cm, objs, json::object());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "configmap \"nope\" not found");

  json missing_key = {{"name", "app"}, {"env", {{{"name", "X"}, {"valueFrom", {{"configMapKeyRef", {{"name", "cfg"}, {"key", "k"}}}}}}}}};
  r = container_env(pod_with(missing_key), missing_key, objs, json::object());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "couldn't find key k in ConfigMap shop/cfg");

  json missing_secret = {{"name", "app"}, {"envFrom", {{{"secretRef", {{"name", "s"}}}}}}};
  r = container_env(pod_with(missing_secret), missing_secret, objs, json::object());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "secret \"s\" not found");

  json optional = {{"name", "app"},
                   {"env", {{{"name", "X"}, {"valueFrom", {{"secretKeyRef", {{"name", "s"}, {"key", "k"}, {"optional", true}}}}}}}}};
  r = container_env(pod_with(optional), optional, objs, json::object());
  REQUIRE(r.ok());
  CHECK(env_value(*r, "X") == "<unset>");
}

TEST_CASE("service link variables") {
  json svc = {{"metadata", {{"name", "redis-primary"}, {"namespace", "shop"}}},
              {"spec", {{"clusterIP", "10.96.0.11"}, {"ports", {{{"name", "redis"}, {"port", 6379}, {"protocol", "TCP"}}}}}}};
  auto env = service_env({svc});
  CHECK(env_value(env, "REDIS_PRIMARY_SERVICE_HOST") == "10.96.0.11");
  CHECK(env_value(env, "REDIS_PRIMARY_SERVICE_PORT") == "6379");
  CHECK(env_value(env, "REDIS_PRIMARY_SERVICE_PORT_REDIS") == "6379");
  CHECK(env_value(env, "REDIS_PRIMARY_PORT") == "tcp://10.96.0.11:6379");
  CHECK(env_value(env, "REDIS_PRIMARY_PORT_6379_TCP") == "tcp://10.96.0.11:6379");
  CHECK(env_value(env, "REDIS_PRIMARY_PORT_6379_TCP_PROTO") == "tcp");
  CHECK(env_value(env, "REDIS_PRIMARY_PORT_6379_TCP_PORT") == "6379");
  CHECK(env_value(env, "REDIS_PRIMARY_PORT_6379_TCP_ADDR") == "10.96.0.11");

  FakeObjects objs;
  objs.svc = {svc, {{"metadata", {{"name", "kubernetes"}, {"namespace", "default"}}},
                    {"spec", {{"clusterIP", "10.96.0.1"}, {"ports", {{{"name", "https"}, {"port", 443}}}}}}}};
  json c = {{"name", "app"}, {"env", {{{"name", "REDIS_PRIMARY_SERVICE_HOST"}, {"value", "mine"}}}}};
  auto all = container_env(pod_with(c), c, objs, json::object());
  REQUIRE(all.ok());
  CHECK(env_value(*all, "KUBERNETES_SERVICE_HOST") == "10.96.0.1");
  CHECK(env_value(*all, "REDIS_PRIMARY_SERVICE_HOST") == "mine");  // the pod's own value wins
  json pod = pod_with(c);
  pod["spec"]["enableServiceLinks"] = false;
  all = container_env(pod, c, objs, json::object());
  CHECK(env_value(*all, "KUBERNETES_SERVICE_HOST") == "10.96.0.1");
  CHECK(env_value(*all, "REDIS_PRIMARY_SERVICE_PORT") == "<unset>");
}

TEST_CASE("downward API field values") {
  json pod = pod_with({{"name", "c"}});
  CHECK(*pod_field_value(pod, "metadata.namespace") == "shop");
  CHECK(*pod_field_value(pod, "metadata.labels") == "app=\"web\"\ntier=\"front\"");
  CHECK(*pod_field_value(pod, "metadata.annotations['missing']") == "");
  CHECK(*pod_field_value(pod, "status.podIPs") == "10.88.0.7");
  CHECK(*pod_field_value(pod, "spec.nodeName") == "n1");
  CHECK_FALSE(pod_field_value(pod, "spec.bogus").ok());
}

TEST_CASE("image env is overridden by the container's") {
  auto env = merge_env({"PATH=/bin", "A=1"}, {{"A", "2"}, {"B", "3"}});
  CHECK(env == std::vector<std::string>{"PATH=/bin", "A=2", "B=3"});
}

TEST_CASE("users: image USER, runAsUser/runAsGroup, groups, runAsNonRoot") {
  std::string passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
  std::string group = "root:x:0:\napp:x:1000:\nwheel:x:10:app\n";
  json pod = pod_with({{"name", "c"}});
  json c = {{"name", "c"}};
  auto u = resolve_user(pod, c, "", passwd, group);
  REQUIRE(u.ok());
  CHECK(u->uid == 0);
  u = resolve_user(pod, c, "app", passwd, group);
  REQUIRE(u.ok());
  CHECK(u->uid == 1000);
  CHECK(u->gid == 1000);
  CHECK(u->additional_gids == std::vector<uint32_t>{10});
  u = resolve_user(pod, c, "1000:10", passwd, group);
  CHECK(u->gid == 10);
  json c2 = {{"name", "c"}, {"securityContext", {{"runAsUser", 2000}, {"runAsGroup", 3000}}}};
  pod["spec"]["securityContext"] = {{"fsGroup", 4000}, {"supplementalGroups", {5000}}};
  u = resolve_user(pod, c2, "app", passwd, group);
  REQUIRE(u.ok());
  CHECK(u->uid == 2000);
  CHECK(u->gid == 3000);
  CHECK(u->additional_gids == std::vector<uint32_t>{4000, 5000});

  json nonroot = {{"name", "c"}, {"securityContext", {{"runAsNonRoot", true}}}};
  auto bad = resolve_user(pod, nonroot, "", passwd, group);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() == "container has runAsNonRoot and image will run as root (pod: \"web_shop(u-1)\", container: c)");
  bad = resolve_user(pod, nonroot, "app", passwd, group);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() ==
        "container has runAsNonRoot and image has non-numeric user (app), cannot verify user is non-root (pod: \"web_shop(u-1)\", container: c)");
  CHECK(resolve_user(pod, nonroot, "1000", passwd, group).ok());
  CHECK_FALSE(resolve_user(pod, c, "ghost", passwd, group).ok());
}

TEST_CASE("resources become cgroup settings") {
  json c = {{"resources", {{"requests", {{"cpu", "250m"}, {"memory", "64Mi"}}}, {"limits", {{"cpu", "500m"}, {"memory", "128Mi"}}}}}};
  auto r = container_cgroup_resources(c);
  CHECK(r.cpu_shares == 256);
  CHECK(r.cpu_quota == 50000);
  CHECK(r.cpu_period == 100000);
  CHECK(r.memory_limit == 128 * 1024 * 1024);
  auto none = container_cgroup_resources(json::object());
  CHECK(none.cpu_shares == 2);
  CHECK(none.cpu_quota == 0);
  CHECK(none.memory_limit == 0);
  CHECK(container_cgroup_resources({{"resources", {{"requests", {{"cpu", "1m"}}}}}}).cpu_shares == 2);
}

TEST_CASE("QoS: class, OOM score and cgroup parent") {
  json guaranteed = {{"spec", {{"containers", {{{"resources", {{"limits", {{"cpu", "1"}, {"memory", "1Gi"}}}}}}}}}}};
  json burstable = {{"spec", {{"containers", {{{"resources", {{"requests", {{"cpu", "100m"}}}}}}}}}}};
  json besteffort = {{"spec", {{"containers", {{{"name", "c"}}}}}}};
  CHECK(pod_qos_class(guaranteed) == "Guaranteed");
  CHECK(pod_qos_class(burstable) == "Burstable");
  CHECK(pod_qos_class(besteffort) == "BestEffort");
  CHECK_FALSE(oom_score_adj("Guaranteed", json::object(), 1 << 30).has_value());  // -997 is not allowed here
  CHECK(*oom_score_adj("BestEffort", json::object(), 1 << 30) == 1000);
  json c = {{"resources", {{"requests", {{"memory", "512Mi"}}}}}};
  CHECK(*oom_score_adj("Burstable", c, int64_t(1) << 30) == 500);
  CHECK(*oom_score_adj("Burstable", json::object(), int64_t(1) << 30) == 999);
  CHECK(pod_cgroup_parent("/berth", "Burstable", "abc") == "/berth/kubepods/burstable/podabc");
  CHECK(pod_cgroup_parent("/berth", "Guaranteed", "abc") == "/berth/kubepods/podabc");
}
