// The Pod, Deployment and ReplicaSet strategies against Kubernetes 1.32 behaviour: discovery facts,
// defaults, validation messages, update rules, Table cells, field selectors and grace periods.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <ctime>
#include <string>
#include <vector>

#include "apiserver/kinds/pod_template.h"
#include "apiserver/kinds/workloads.h"

using namespace berth::apiserver;
using berth::api::Cause;
using nlohmann::json;

namespace {

std::string rfc3339(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string ago(int seconds) { return rfc3339(std::time(nullptr) - seconds); }

// What the generic create path does around the strategy hooks.
json created(const Strategy& s, json obj, std::vector<Cause>* causes = nullptr) {
  obj["metadata"]["namespace"] = "default";
  obj["metadata"]["creationTimestamp"] = now_rfc3339();
  s.prepare_for_create(obj);
  s.apply_defaults(obj);
  std::vector<Cause> local;
  s.validate(obj, causes ? *causes : local);
  return obj;
}

// What the generic update path does: status kept from the old object, then the hooks.
json updated(const Strategy& s, json obj, const json& old, std::vector<Cause>& causes) {
  obj.erase("status");
  if (old.contains("status")) obj["status"] = old["status"];
  s.prepare_for_update(obj, old);
  s.apply_defaults(obj);
  s.validate_update(obj, old, causes);
  return obj;
}

std::vector<Cause> create_errors(const Strategy& s, const json& obj) {
  std::vector<Cause> c;
  created(s, obj, &c);
  return c;
}

const Cause* find_cause(const std::vector<Cause>& causes, const std::string& field) {
  for (const auto& c : causes)
    if (c.field == field) return &c;
  return nullptr;
}

json pod(json spec) {
  return {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", "web"}}}, {"spec", std::move(spec)}};
}

json one_container(json extra = json::object()) {
  json c = {{"name", "web"}, {"image", "nginx"}};
  c.update(extra);
  return json{{"containers", json::array({c})}};
}

json deployment(json spec) {
  return {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"metadata", {{"name", "web"}}}, {"spec", std::move(spec)}};
}

json app_spec(const std::string& sel_value = "web", const std::string& label_value = "web") {
  return {{"selector", {{"matchLabels", {{"app", sel_value}}}}},
          {"template",
           {{"metadata", {{"labels", {{"app", label_value}}}}},
            {"spec", {{"containers", json::array({{{"name", "web"}, {"image", "nginx:1.25"}}})}}}}}};
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("kind info matches Kubernetes 1.32 discovery") {
  auto p = make_pod_strategy();
  const auto& pi = p->info();
  CHECK(pi.group == "");
  CHECK(pi.plural == "pods");
  CHECK(pi.singular == "pod");
  CHECK(pi.short_names == std::vector<std::string>{"po"});
  CHECK(pi.categories == std::vector<std::string>{"all"});
  CHECK(pi.storage_prefix == "/registry/pods");
  CHECK(pi.has_status);
  CHECK_FALSE(pi.tracks_generation);
  CHECK(pi.return_deleted_object);
  CHECK(pi.default_propagation == "Background");
  std::vector<std::string> subs;
  for (const auto& s : pi.subresources) subs.push_back(s.name);
  CHECK(subs == std::vector<std::string>{"binding", "eviction", "exec", "log", "status"});
  for (const auto& s : pi.subresources) {
    if (s.name == "eviction") {
      CHECK(s.group == "policy");
      CHECK(s.kind == "Eviction");
      CHECK(s.verbs == std::vector<std::string>{"create"});
    }
    if (s.name == "exec") CHECK(s.kind == "PodExecOptions");
    if (s.name == "binding") CHECK(s.kind == "Binding");
  }

  auto d = make_deployment_strategy();
  CHECK(d->info().group == "apps");
  CHECK(d->info().plural == "deployments");
  CHECK(d->info().short_names == std::vector<std::string>{"deploy"});
  CHECK(d->info().storage_prefix == "/registry/deployments");
  CHECK(d->info().tracks_generation);
  CHECK(d->has_scale());
  bool scale = false;
  for (const auto& s : d->info().subresources)
    if (s.name == "scale") {
      scale = true;
      CHECK(s.group == "autoscaling");
      CHECK(s.version == "v1");
      CHECK(s.kind == "Scale");
      CHECK(s.verbs == std::vector<std::string>{"get", "patch", "update"});
    }
  CHECK(scale);

  auto r = make_replicaset_strategy();
  CHECK(r->info().plural == "replicasets");
  CHECK(r->info().singular == "replicaset");
  CHECK(r->info().short_names == std::vector<std::string>{"rs"});
  CHECK(r->info().categories == std::vector<std::string>{"all"});
  CHECK(r->info().storage_prefix == "/registry/replicasets");
  CHECK(r->has_scale());
}

TEST_CASE("pod defaults, admission and status on create") {
  auto s = make_pod_strategy();
  std::vector<Cause> causes;
  json obj = created(*s, pod(one_container()), &causes);
  CHECK(causes.empty());
  const json& spec = obj["spec"];
  CHECK(spec["restartPolicy"] == "Always");
  CHECK(spec["dnsPolicy"] == "ClusterFirst");
  CHECK(spec["schedulerName"] == "default-scheduler");
  CHECK(spec["terminationGracePeriodSeconds"] == 30);
  CHECK(spec["securityContext"] == json::object());
  CHECK(spec["enableServiceLinks"] == true);
  CHECK(spec["priority"] == 0);
  CHECK(spec["preemptionPolicy"] == "PreemptLowerPriority");
  CHECK(spec["serviceAccountName"] == "default");
  CHECK(spec["serviceAccount"] == "default");
  const json& c = spec["containers"][0];
  CHECK(c["imagePullPolicy"] == "Always");  // untagged means :latest
  CHECK(c["terminationMessagePath"] == "/dev/termination-log");
  CHECK(c["terminationMessagePolicy"] == "File");
  CHECK(c["resources"] == json::object());
  json tolerations = json::array(
      {{{"key", "node.kubernetes.io/not-ready"}, {"operator", "Exists"}, {"effect", "NoExecute"}, {"tolerationSeconds", 300}},
       {{"key", "node.kubernetes.io/unreachable"}, {"operator", "Exists"}, {"effect", "NoExecute"}, {"tolerationSeconds", 300}}});
  CHECK(spec["tolerations"] == tolerations);
  CHECK(obj["status"] == json{{"phase", "Pending"}, {"qosClass", "BestEffort"}});

  // A client-sent status is replaced; an existing not-ready toleration is kept and not duplicated.
  json mine = pod(one_container());
  mine["status"] = {{"phase", "Running"}};
  mine["spec"]["tolerations"] = json::array({{{"key", "node.kubernetes.io/not-ready"}, {"operator", "Exists"}}});
  json obj2 = created(*s, mine);
  CHECK(obj2["status"]["phase"] == "Pending");
  REQUIRE(obj2["spec"]["tolerations"].size() == 2);
  CHECK(obj2["spec"]["tolerations"][0] == json{{"key", "node.kubernetes.io/not-ready"}, {"operator", "Exists"}});
  CHECK(obj2["spec"]["tolerations"][1]["key"] == "node.kubernetes.io/unreachable");

  // Scheduling gates put the SchedulingGated condition on the new pod.
  json gated = pod(one_container());
  gated["spec"]["schedulingGates"] = json::array({{{"name", "example.com/gate"}}});
  json obj3 = created(*s, gated);
  REQUIRE(obj3["status"]["conditions"].size() == 1);
  CHECK(obj3["status"]["conditions"][0]["reason"] == "SchedulingGated");
  CHECK(obj3["status"]["conditions"][0]["status"] == "False");
}

TEST_CASE("container, probe, port, env and volume defaults") {
  auto s = make_pod_strategy();
  auto policy = [&](const std::string& image) {
    json o = created(*s, pod(one_container({{"image", image}})));
    return o["spec"]["containers"][0]["imagePullPolicy"].get<std::string>();
  };
  CHECK(policy("nginx") == "Always");
  CHECK(policy("nginx:latest") == "Always");
  CHECK(policy("nginx:1.25") == "IfNotPresent");
  CHECK(policy("registry.local:5000/team/app") == "Always");
  CHECK(policy("registry.local:5000/team/app:v2") == "IfNotPresent");
  CHECK(policy("nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") == "IfNotPresent");
  CHECK(policy("Nginx") == "IfNotPresent");  // not a valid reference: no tag is known

  json spec = one_container({{"ports", json::array({{{"containerPort", 80}}})},
                             {"livenessProbe", {{"httpGet", {{"port", 80}}}}},
                             {"readinessProbe", {{"grpc", {{"port", 9000}}}}},
                             {"env", json::array({{{"name", "POD"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}},
                                                  {{"name", "CPU"}, {"valueFrom", {{"resourceFieldRef", {{"resource", "limits.cpu"}}}}}}})},
                             {"lifecycle", {{"preStop", {{"httpGet", {{"port", 8080}, {"path", "/quit"}}}}}}},
                             {"volumeMounts", json::array({{{"name", "cfg"}, {"mountPath", "/etc/cfg"}}})}});
  spec["volumes"] = json::array({{{"name", "cfg"}, {"configMap", {{"name", "app"}}}},
                                 {{"name", "scratch"}},
                                 {{"name", "creds"}, {"secret", {{"secretName", "app"}}}},
                                 {{"name", "host"}, {"hostPath", {{"path", "/var/log"}}}},
                                 {{"name", "token"}, {"projected", {{"sources", json::array({{{"serviceAccountToken", {{"path", "token"}}}}})}}}}});
  std::vector<Cause> causes;
  json o = created(*s, pod(spec), &causes);
  CHECK(causes.empty());
  const json& c = o["spec"]["containers"][0];
  CHECK(c["ports"][0]["protocol"] == "TCP");
  CHECK(c["livenessProbe"] == json{{"httpGet", {{"port", 80}, {"path", "/"}, {"scheme", "HTTP"}}},
                                   {"timeoutSeconds", 1}, {"periodSeconds", 10}, {"successThreshold", 1},
                                   {"failureThreshold", 3}});
  CHECK(c["readinessProbe"]["grpc"]["service"] == "");
  CHECK(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1");
  CHECK(c["env"][1]["valueFrom"]["resourceFieldRef"]["divisor"] == "0");
  CHECK(c["lifecycle"]["preStop"]["httpGet"]["scheme"] == "HTTP");
  CHECK(c["lifecycle"]["preStop"]["httpGet"]["path"] == "/quit");
  const json& v = o["spec"]["volumes"];
  CHECK(v[0]["configMap"]["defaultMode"] == 420);
  CHECK(v[1]["emptyDir"] == json::object());
  CHECK(v[2]["secret"]["defaultMode"] == 420);
  CHECK(v[3]["hostPath"]["type"] == "");
  CHECK(v[4]["projected"]["defaultMode"] == 420);
  CHECK(v[4]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"] == 3600);

  // hostNetwork pods get hostPort = containerPort.
  json hn = one_container({{"ports", json::array({{{"containerPort", 8080}}})}});
  hn["hostNetwork"] = true;
  json o2 = created(*s, pod(hn));
  CHECK(o2["spec"]["containers"][0]["ports"][0]["hostPort"] == 8080);
}

TEST_CASE("resource quantities: canonical form, rounding, requests from limits, QoS") {
  // Resource lists are rounded up to milli and serialized as Kubernetes serializes them.
  auto s = make_pod_strategy();
  auto limits_of = [&](json limits) {
    json o = created(*s, pod(one_container({{"resources", {{"limits", limits}}}})));
    return o["spec"]["containers"][0]["resources"]["limits"];
  };
  CHECK(limits_of({{"cpu", "1000m"}}) == json{{"cpu", "1"}});
  CHECK(limits_of({{"cpu", "0.5"}}) == json{{"cpu", "500m"}});
  CHECK(limits_of({{"cpu", "1500m"}}) == json{{"cpu", "1500m"}});
  CHECK(limits_of({{"cpu", "100u"}}) == json{{"cpu", "1m"}});
  CHECK(limits_of({{"cpu", 2}}) == json{{"cpu", "2"}});
  CHECK(limits_of({{"memory", "1024Mi"}}) == json{{"memory", "1Gi"}});
  CHECK(limits_of({{"memory", "1.5Gi"}}) == json{{"memory", "1536Mi"}});
  CHECK(limits_of({{"memory", "100Mi"}}) == json{{"memory", "100Mi"}});
  CHECK(limits_of({{"memory", "1000"}}) == json{{"memory", "1k"}});

  json guaranteed = created(*s, pod(one_container({{"resources", {{"limits", {{"cpu", "1000m"}, {"memory", "131072Ki"}}}}}})));
  const json& res = guaranteed["spec"]["containers"][0]["resources"];
  CHECK(res["limits"] == json{{"cpu", "1"}, {"memory", "128Mi"}});
  CHECK(res["requests"] == json{{"cpu", "1"}, {"memory", "128Mi"}});
  CHECK(guaranteed["status"]["qosClass"] == "Guaranteed");

  json burstable = created(*s, pod(one_container({{"resources", {{"requests", {{"cpu", 0.25}}}}}})));
  CHECK(burstable["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "250m");
  CHECK(burstable["status"]["qosClass"] == "Burstable");

  // A malformed quantity is a decode error (400), not a validation cause.
  json bad = pod(one_container({{"resources", {{"limits", {{"cpu", "lots"}}}}}}));
  auto r = s->from_version(bad, "v1");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().reason() == berth::api::Reason::BadRequest);
  CHECK(r.status().message() ==
        "Pod in version \"v1\" cannot be handled as a Pod: quantities must match the regular expression "
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
  CHECK(s->from_version(pod(one_container()), "v1").ok());
}

TEST_CASE("pod validation messages and field paths") {
  auto s = make_pod_strategy();
  {
    auto c = create_errors(*s, pod(json{{"containers", json::array()}}));
    const Cause* e = find_cause(c, "spec.containers");
    REQUIRE(e);
    CHECK(e->reason == "FieldValueRequired");
    CHECK(e->message == "Required value");
  }
  {
    auto c = create_errors(*s, pod(one_container({{"name", "Web_1"}})));
    const Cause* e = find_cause(c, "spec.containers[0].name");
    REQUIRE(e);
    CHECK(e->reason == "FieldValueInvalid");
    CHECK(e->message.rfind("Invalid value: \"Web_1\": a lowercase RFC 1123 label must consist of", 0) == 0);
  }
  {
    json spec = one_container();
    spec["containers"].push_back({{"name", "web"}, {"image", "redis"}});
    auto c = create_errors(*s, pod(spec));
    const Cause* e = find_cause(c, "spec.containers[1].name");
    REQUIRE(e);
    CHECK(e->reason == "FieldValueDuplicate");
    CHECK(e->message == "Duplicate value: \"web\"");
  }
  {
    json spec = {{"containers", json::array({{{"name", "web"}}})}};
    auto c = create_errors(*s, pod(spec));
    const Cause* e = find_cause(c, "spec.containers[0].image");
    REQUIRE(e);
    CHECK(e->message == "Required value");
  }
  {
    auto c = create_errors(*s, pod(one_container({{"ports", json::array({{{"containerPort", 70000}}})}})));
    const Cause* e = find_cause(c, "spec.containers[0].ports[0].containerPort");
    REQUIRE(e);
    CHECK(e->message == "Invalid value: 70000: must be between 1 and 65535, inclusive");
  }
  {
    auto c = create_errors(*s, pod(one_container({{"ports", json::array({{{"containerPort", 80}, {"protocol", "HTTP"}}})}})));
    const Cause* e = find_cause(c, "spec.containers[0].ports[0].protocol");
    REQUIRE(e);
    CHECK(e->reason == "FieldValueNotSupported");
    CHECK(e->message == "Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"");
  }
  {
    json spec = one_container();
    spec["restartPolicy"] = "Sometimes";
    auto c = create_errors(*s, pod(spec));
    const Cause* e = find_cause(c, "spec.restartPolicy");
    REQUIRE(e);
    CHECK(e->reason == "FieldValueNotSupported");
    CHECK(e->message == "Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"");
  }
  {
    auto c = create_errors(*s, pod(one_container({{"resources", {{"limits", {{"cpu", "1"}}}, {"requests", {{"cpu", "2"}}}}}})));
    const Cause* e = find_cause(c, "spec.containers[0].resources.requests");
    REQUIRE(e);
    CHECK(e->message == "Invalid value: \"2\": must be less than or equal to cpu limit of 1");
  }
  {
    auto c = create_errors(*s, pod(one_container({{"resources", {{"limits", {{"memory", "-1"}}}}}})));
    const Cause* e = find_cause(c, "spec.containers[0].resources.limits[memory]");
    REQUIRE(e);
    CHECK(e->message == "Invalid value: \"-1\": must be greater than or equal to 0");
  }
  {
    auto c = create_errors(*s, pod(one_container({{"resources", {{"limits", {{"gpu", "1"}}}}}})));
    const Cause* e = find_cause(c, "spec.containers[0].resources.limits[gpu]");
    REQUIRE(e);
    CHECK(e->message == "Invalid value: \"gpu\": must be a standard resource type or fully qualified");
  }
  {
    auto c = create_errors(*s, pod(one_container({{"volumeMounts", json::array({{{"name", "data"}, {"mountPath", "/data"}}})}})));
    const Cause* e = find_cause(c, "spec.containers[0].volumeMounts[0].name");
    REQUIRE(e);
    CHECK(e->reason == "FieldValueNotFound");
    CHECK(e->message == "Not found: \"data\"");
  }
  {
    auto c = create_errors(*s, pod(one_container({{"livenessProbe", {{"exec", {{"command", {"true"}}}}, {"successThreshold", 2}}}})));
    const Cause* e = find_cause(c, "spec.containers[0].livenessProbe.successThreshold");
    REQUIRE(e);
    CHECK(e->message == "Invalid value: 2: must be 1");
  }
  {
    json spec = one_container();
    spec["tolerations"] = json::array({{{"operator", "Equal"}, {"value", "x"}}});
    auto c = create_errors(*s, pod(spec));
    const Cause* e = find_cause(c, "spec.tolerations[0].operator");
    REQUIRE(e);
    CHECK(e->message ==
          "Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and "
          "all keys\"");
  }
  {
    auto c = create_errors(*s, pod(one_container({{"image", " nginx"}})));
    const Cause* e = find_cause(c, "spec.containers[0].image");
    REQUIRE(e);
    CHECK(e->message == "Invalid value: \" nginx\": must not have leading or trailing whitespace");
  }
  CHECK(create_errors(*s, pod(one_container())).empty());
}

TEST_CASE("pod updates: only images, deadlines, added tolerations") {
  auto s = make_pod_strategy();
  json old = created(*s, pod(one_container()));
  old["status"]["phase"] = "Running";
  {
    json next = old;
    next["spec"]["containers"][0]["image"] = "nginx:1.27";
    next["metadata"]["labels"] = {{"tier", "web"}};
    next["status"] = {{"phase", "Failed"}};
    std::vector<Cause> c;
    json out = updated(*s, next, old, c);
    CHECK(c.empty());
    CHECK(out["status"]["phase"] == "Running");  // status comes from the stored object
    CHECK(out["spec"]["containers"][0]["imagePullPolicy"] == "Always");
  }
  {
    json next = old;
    next["spec"]["restartPolicy"] = "Never";
    std::vector<Cause> c;
    updated(*s, next, old, c);
    const Cause* e = find_cause(c, "spec");
    REQUIRE(e);
    CHECK(e->reason == "FieldValueForbidden");
    CHECK(e->message.rfind(
              "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
              "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
              "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
              "previously negative)\n",
              0) == 0);
    CHECK(e->message.find("RestartPolicy") != std::string::npos);
  }
  {
    json next = old;
    next["spec"]["containers"].push_back({{"name", "side"}, {"image", "busybox"}});
    std::vector<Cause> c;
    updated(*s, next, old, c);
    const Cause* e = find_cause(c, "spec.containers");
    REQUIRE(e);
    CHECK(e->message == "Forbidden: pod updates may not add or remove containers");
  }
  {
    json next = old;
    next["spec"]["tolerations"].push_back({{"key", "dedicated"}, {"operator", "Equal"}, {"value", "gpu"}, {"effect", "NoSchedule"}});
    next["spec"]["activeDeadlineSeconds"] = 600;
    std::vector<Cause> c;
    updated(*s, next, old, c);
    CHECK(c.empty());
  }
  {
    // (Changing a default toleration only brings the default back: admission runs on updates too.)
    json spec = one_container();
    spec["tolerations"] = json::array({{{"key", "dedicated"}, {"operator", "Equal"}, {"value", "gpu"}, {"effect", "NoSchedule"}}});
    json old2 = created(*s, pod(spec));
    json next = old2;
    next["spec"]["tolerations"][0]["value"] = "cpu";
    std::vector<Cause> c;
    updated(*s, next, old2, c);
    const Cause* e = find_cause(c, "spec.tolerations");
    REQUIRE(e);
    CHECK(e->message == "Forbidden: existing toleration can not be modified except its tolerationSeconds");
  }
  {
    // spec.nodeName is set only through pods/binding; an update may not set or move it.
    json next = old;
    next["spec"]["nodeName"] = "node-1";
    std::vector<Cause> c;
    updated(*s, next, old, c);
    REQUIRE(find_cause(c, "spec"));
    CHECK(find_cause(c, "spec")->message.find("NodeName") != std::string::npos);
  }
  {
    // An object stored before defaults existed is compared in its defaulted form, as when read from storage.
    json raw = pod(one_container({{"resources", {{"limits", {{"cpu", "1000m"}}}}}}));
    raw["metadata"]["namespace"] = "default";
    raw["status"] = {{"phase", "Running"}};
    json next = raw;
    next["status"]["phase"] = "Succeeded";
    std::vector<Cause> c;
    updated(*s, next, raw, c);
    CHECK(c.empty());
  }
  {
    // A replace that leaves out the defaulted tolerations, priority and policies still passes.
    json next = old;
    next["spec"].erase("tolerations");
    next["spec"].erase("priority");
    next["spec"].erase("preemptionPolicy");
    next["spec"].erase("dnsPolicy");
    std::vector<Cause> c;
    updated(*s, next, old, c);
    CHECK(c.empty());
  }
}

TEST_CASE("pod field selectors") {
  auto s = make_pod_strategy();
  json empty = json::object();
  for (const char* f : {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                        "status.phase", "status.podIP", "status.nominatedNodeName"}) {
    auto v = s->field_value(empty, f);
    REQUIRE(v);
    CHECK(*v == "");
  }
  CHECK(s->field_value(empty, "spec.hostNetwork") == std::optional<std::string>("false"));
  CHECK_FALSE(s->field_value(empty, "spec.containers"));
  CHECK_FALSE(s->field_value(empty, "status.hostIP"));
  json p = {{"spec", {{"nodeName", "node-1"}, {"hostNetwork", true}}},
            {"status", {{"phase", "Running"}, {"podIP", "10.0.0.9"}, {"podIPs", json::array({{{"ip", "10.0.0.7"}}})}}}};
  CHECK(*s->field_value(p, "spec.nodeName") == "node-1");
  CHECK(*s->field_value(p, "spec.hostNetwork") == "true");
  CHECK(*s->field_value(p, "status.phase") == "Running");
  CHECK(*s->field_value(p, "status.podIP") == "10.0.0.7");

  auto d = make_deployment_strategy();
  CHECK_FALSE(d->field_value(empty, "status.replicas"));
  auto r = make_replicaset_strategy();
  CHECK(r->field_value(empty, "status.replicas") == std::optional<std::string>("0"));
  CHECK(*r->field_value(json{{"status", {{"replicas", 3}}}}, "status.replicas") == "3");
  CHECK_FALSE(r->field_value(empty, "spec.replicas"));
}

TEST_CASE("pod graceful deletion periods") {
  auto s = make_pod_strategy();
  json scheduled = {{"spec", {{"nodeName", "node-1"}, {"terminationGracePeriodSeconds", 45}}}, {"status", {{"phase", "Running"}}}};
  CHECK(s->grace_period(scheduled, std::nullopt) == std::optional<std::int64_t>(45));
  CHECK(s->grace_period(scheduled, 10) == std::optional<std::int64_t>(10));
  CHECK(s->grace_period(scheduled, 0) == std::optional<std::int64_t>(0));
  CHECK(s->grace_period(scheduled, -3) == std::optional<std::int64_t>(1));
  json defaulted = {{"spec", {{"nodeName", "node-1"}}}};
  CHECK(s->grace_period(defaulted, std::nullopt) == std::optional<std::int64_t>(30));
  json unscheduled = {{"spec", {{"terminationGracePeriodSeconds", 45}}}};
  CHECK(s->grace_period(unscheduled, std::nullopt) == std::optional<std::int64_t>(0));
  CHECK(s->grace_period(unscheduled, -3) == std::optional<std::int64_t>(0));
  json done = scheduled;
  done["status"]["phase"] = "Succeeded";
  CHECK(s->grace_period(done, std::nullopt) == std::optional<std::int64_t>(0));
  done["status"]["phase"] = "Failed";
  CHECK(s->grace_period(done, 20) == std::optional<std::int64_t>(0));
}

TEST_CASE("pod Table columns and cells") {
  auto s = make_pod_strategy();
  auto cols = s->columns();
  REQUIRE(cols.size() == 9);
  std::vector<std::string> names;
  for (const auto& c : cols) names.push_back(c.name);
  CHECK(names == std::vector<std::string>{"Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node",
                                          "Readiness Gates"});
  CHECK(cols[0].format == "name");
  CHECK(cols[4].priority == 0);
  CHECK(cols[5].priority == 1);
  CHECK(cols[8].priority == 1);

  json base = {{"metadata", {{"name", "web"}, {"creationTimestamp", ago(3 * 3600 + 120)}}},
               {"spec", {{"containers", json::array({{{"name", "app"}, {"image", "nginx"}}})}}}};

  // Pending, not scheduled.
  json pending = base;
  pending["status"] = {{"phase", "Pending"}};
  CHECK(s->cells(pending) == json::array({"web", "0/1", "Pending", "0", "3h2m", "<none>", "<none>", "<none>", "<none>"}));

  // Running and ready.
  json running = base;
  running["spec"]["nodeName"] = "node-1";
  running["status"] = {{"phase", "Running"},
                       {"podIP", "10.1.0.5"},
                       {"podIPs", json::array({{{"ip", "10.1.0.5"}}})},
                       {"conditions", json::array({{{"type", "Ready"}, {"status", "True"}}})},
                       {"containerStatuses", json::array({{{"name", "app"}, {"ready", true}, {"restartCount", 0},
                                                           {"state", {{"running", {{"startedAt", ago(600)}}}}}}})}};
  CHECK(s->cells(running) == json::array({"web", "1/1", "Running", "0", "3h2m", "10.1.0.5", "node-1", "<none>", "<none>"}));

  // CrashLoopBackOff with restarts and the time of the last one.
  json crash = base;
  crash["spec"]["nodeName"] = "node-1";
  crash["status"] = {{"phase", "Running"},
                     {"containerStatuses",
                      json::array({{{"name", "app"},
                                    {"ready", false},
                                    {"restartCount", 5},
                                    {"state", {{"waiting", {{"reason", "CrashLoopBackOff"}, {"message", "back-off 2m40s"}}}}},
                                    {"lastState", {{"terminated", {{"exitCode", 1}, {"reason", "Error"}, {"finishedAt", ago(20 * 60 + 5)}}}}}}})}};
  json cc = s->cells(crash);
  CHECK(cc[1] == "0/1");
  CHECK(cc[2] == "CrashLoopBackOff");
  CHECK(cc[3] == "5 (20m ago)");

  // Terminating: deletionTimestamp on a pod that has not finished.
  json terminating = running;
  terminating["metadata"]["deletionTimestamp"] = ago(-30);
  json tc = s->cells(terminating);
  CHECK(tc[1] == "1/1");
  CHECK(tc[2] == "Terminating");
  // ... but a finished pod keeps its phase.
  json finished = terminating;
  finished["status"]["phase"] = "Succeeded";
  finished["status"]["containerStatuses"][0] = {{"name", "app"}, {"ready", false}, {"restartCount", 0},
                                                {"state", {{"terminated", {{"exitCode", 0}, {"reason", "Completed"}}}}}};
  CHECK(s->cells(finished)[2] == "Completed");
  // NodeLost shows Unknown.
  json lost = terminating;
  lost["status"]["reason"] = "NodeLost";
  CHECK(s->cells(lost)[2] == "Unknown");

  // Waiting for its image.
  json creating = base;
  creating["status"] = {{"phase", "Pending"},
                        {"containerStatuses", json::array({{{"name", "app"}, {"ready", false}, {"restartCount", 0},
                                                            {"state", {{"waiting", {{"reason", "ContainerCreating"}}}}}}})}};
  CHECK(s->cells(creating)[2] == "ContainerCreating");

  // Exit code without a reason.
  json exited = base;
  exited["status"] = {{"phase", "Failed"},
                      {"containerStatuses", json::array({{{"name", "app"}, {"restartCount", 0},
                                                          {"state", {{"terminated", {{"exitCode", 3}}}}}}})}};
  CHECK(s->cells(exited)[2] == "ExitCode:3");

  // Init containers.
  json init = base;
  init["spec"]["initContainers"] = json::array({{{"name", "migrate"}, {"image", "app"}}, {{"name", "seed"}, {"image", "app"}}});
  init["status"] = {{"phase", "Pending"},
                    {"initContainerStatuses", json::array({{{"name", "migrate"}, {"restartCount", 0}, {"state", {{"running", json::object()}}}},
                                                           {{"name", "seed"}, {"restartCount", 0}, {"state", {{"waiting", {{"reason", "PodInitializing"}}}}}}})}};
  CHECK(s->cells(init)[2] == "Init:0/2");
  init["status"]["initContainerStatuses"][0]["state"] = {{"terminated", {{"exitCode", 0}, {"reason", "Completed"}}}};
  CHECK(s->cells(init)[2] == "Init:1/2");
  init["status"]["initContainerStatuses"][1]["state"] = {{"waiting", {{"reason", "CrashLoopBackOff"}}}};
  init["status"]["initContainerStatuses"][1]["restartCount"] = 2;
  CHECK(s->cells(init)[2] == "Init:CrashLoopBackOff");
  CHECK(s->cells(init)[3] == "2");

  // One container done, one still running, no Ready condition: NotReady.
  json mixed = base;
  mixed["spec"]["containers"].push_back({{"name", "job"}, {"image", "busybox"}});
  mixed["status"] = {{"phase", "Running"},
                     {"containerStatuses",
                      json::array({{{"name", "app"}, {"ready", true}, {"restartCount", 0}, {"state", {{"running", json::object()}}}},
                                   {{"name", "job"}, {"ready", false}, {"restartCount", 0},
                                    {"state", {{"terminated", {{"exitCode", 0}, {"reason", "Completed"}}}}}}})}};
  CHECK(s->cells(mixed)[1] == "1/2");
  CHECK(s->cells(mixed)[2] == "NotReady");

  // Readiness gates.
  json gated = running;
  gated["spec"]["readinessGates"] = json::array({{{"conditionType", "example.com/lb"}}, {{"conditionType", "example.com/dns"}}});
  gated["status"]["conditions"].push_back({{"type", "example.com/lb"}, {"status", "True"}});
  CHECK(s->cells(gated)[8] == "1/2");
}

TEST_CASE("deployment defaults and create") {
  auto s = make_deployment_strategy();
  std::vector<Cause> causes;
  json d = created(*s, deployment(app_spec()), &causes);
  CHECK(causes.empty());
  const json& spec = d["spec"];
  CHECK(spec["replicas"] == 1);
  CHECK(spec["strategy"] == json{{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxUnavailable", "25%"}, {"maxSurge", "25%"}}}});
  CHECK(spec["revisionHistoryLimit"] == 10);
  CHECK(spec["progressDeadlineSeconds"] == 600);
  CHECK(spec["template"]["metadata"].contains("creationTimestamp"));
  CHECK(spec["template"]["metadata"]["creationTimestamp"].is_null());
  const json& ps = spec["template"]["spec"];
  CHECK(ps["restartPolicy"] == "Always");
  CHECK(ps["dnsPolicy"] == "ClusterFirst");
  CHECK(ps["terminationGracePeriodSeconds"] == 30);
  CHECK(ps["schedulerName"] == "default-scheduler");
  CHECK(ps["securityContext"] == json::object());
  CHECK_FALSE(ps.contains("enableServiceLinks"));  // a Pod default, not a template one
  CHECK_FALSE(ps.contains("tolerations"));         // admission runs on pods only
  CHECK(ps["containers"][0]["imagePullPolicy"] == "IfNotPresent");
  CHECK(ps["containers"][0]["resources"] == json::object());
  CHECK(d["status"] == json::object());

  // Recreate gets no rollingUpdate; limits do not become requests in a template.
  json spec2 = app_spec();
  spec2["strategy"] = {{"type", "Recreate"}};
  spec2["template"]["spec"]["containers"][0]["resources"] = {{"limits", {{"cpu", "500m"}}}};
  json d2 = created(*s, deployment(spec2));
  CHECK(d2["spec"]["strategy"] == json{{"type", "Recreate"}});
  CHECK_FALSE(d2["spec"]["template"]["spec"]["containers"][0]["resources"].contains("requests"));

  json bad = deployment(app_spec());
  bad["spec"]["template"]["spec"]["containers"][0]["resources"] = {{"requests", {{"memory", "12Q"}}}};
  auto r = s->from_version(bad, "v1");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() ==
        "Deployment in version \"v1\" cannot be handled as a Deployment: quantities must match the regular expression "
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
}

TEST_CASE("deployment validation messages") {
  auto s = make_deployment_strategy();
  {
    json spec = app_spec();
    spec["replicas"] = -1;
    auto c = create_errors(*s, deployment(spec));
    REQUIRE(c.size() == 1);
    CHECK(c[0].field == "spec.replicas");
    CHECK(c[0].reason == "FieldValueInvalid");
    CHECK(c[0].message == "Invalid value: -1: must be greater than or equal to 0");
  }
  {
    auto c = create_errors(*s, deployment(app_spec("web", "x")));
    REQUIRE(c.size() == 1);
    CHECK(c[0].field == "spec.template.metadata.labels");
    CHECK(c[0].message == "Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`");
  }
  {
    json spec = app_spec();
    spec.erase("selector");
    auto c = create_errors(*s, deployment(spec));
    REQUIRE(c.size() == 2);
    CHECK(c[0].field == "spec.selector");
    CHECK(c[0].message == "Required value");
    CHECK(c[1].field == "spec.template.metadata.labels");
    CHECK(c[1].message == "Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`");
  }
  {
    json spec = app_spec();
    spec["selector"] = json::object();
    auto c = create_errors(*s, deployment(spec));
    const Cause* e = find_cause(c, "spec.selector");
    REQUIRE(e);
    CHECK(e->message ==
          "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
          "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment");
  }
  {
    json spec = app_spec();
    spec["strategy"] = {{"rollingUpdate", {{"maxSurge", 0}, {"maxUnavailable", 0}}}};
    auto c = create_errors(*s, deployment(spec));
    const Cause* e = find_cause(c, "spec.strategy.rollingUpdate.maxUnavailable");
    REQUIRE(e);
    CHECK(e->message == "Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0");
  }
  {
    json spec = app_spec();
    spec["strategy"] = {{"rollingUpdate", {{"maxSurge", "lots"}}}};
    auto c = create_errors(*s, deployment(spec));
    const Cause* e = find_cause(c, "spec.strategy.rollingUpdate.maxSurge");
    REQUIRE(e);
    CHECK(e->message.rfind("Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"lots\"}: a valid percent string", 0) == 0);
  }
  {
    json spec = app_spec();
    spec["strategy"] = {{"type", "BlueGreen"}};
    auto c = create_errors(*s, deployment(spec));
    const Cause* e = find_cause(c, "spec.strategy");
    REQUIRE(e);
    CHECK(e->reason == "FieldValueNotSupported");
    CHECK(e->message ==
          "Unsupported value: apps.DeploymentStrategy{Type:\"BlueGreen\", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: "
          "supported values: \"Recreate\", \"RollingUpdate\"");
  }
  {
    json spec = app_spec();
    spec["strategy"] = {{"type", "Recreate"}, {"rollingUpdate", {{"maxSurge", 1}}}};
    auto c = create_errors(*s, deployment(spec));
    const Cause* e = find_cause(c, "spec.strategy.rollingUpdate");
    REQUIRE(e);
    CHECK(e->message == "Forbidden: may not be specified when strategy `type` is 'Recreate'");
  }
  {
    json spec = app_spec();
    spec["template"]["spec"]["restartPolicy"] = "Never";
    auto c = create_errors(*s, deployment(spec));
    const Cause* e = find_cause(c, "spec.template.spec.restartPolicy");
    REQUIRE(e);
    CHECK(e->message == "Unsupported value: \"Never\": supported values: \"Always\"");
  }
  {
    json spec = app_spec();
    spec["template"]["spec"]["containers"][0].erase("image");
    spec["template"]["metadata"]["labels"]["bad key!"] = "v";
    auto c = create_errors(*s, deployment(spec));
    CHECK(find_cause(c, "spec.template.spec.containers[0].image"));
    CHECK(find_cause(c, "spec.template.labels"));
  }
  {
    json spec = app_spec();
    spec["minReadySeconds"] = 700;
    auto c = create_errors(*s, deployment(spec));
    const Cause* e = find_cause(c, "spec.progressDeadlineSeconds");
    REQUIRE(e);
    CHECK(e->message == "Invalid value: 600: must be greater than minReadySeconds");
  }
}

TEST_CASE("deployment updates: immutable selector, generation on spec and annotations") {
  auto s = make_deployment_strategy();
  json old = created(*s, deployment(app_spec()));
  {
    json next = deployment(app_spec("api", "api"));
    std::vector<Cause> c;
    updated(*s, next, old, c);
    REQUIRE(c.size() == 1);
    CHECK(c[0].field == "spec.selector");
    CHECK(c[0].message ==
          "Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"api\"}, "
          "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable");
  }
  {
    json next = old;
    next["spec"]["replicas"] = 3;
    std::vector<Cause> c;
    json out = updated(*s, next, old, c);
    CHECK(c.empty());
    CHECK(s->spec_changed(out, old));
  }
  {
    json next = old;
    next["metadata"]["annotations"] = {{"kubernetes.io/change-cause", "bump"}};
    CHECK(s->spec_changed(next, old));
    json labels_only = old;
    labels_only["metadata"]["labels"] = {{"a", "b"}};
    CHECK_FALSE(s->spec_changed(labels_only, old));
  }
}

TEST_CASE("deployment and replicaset Table cells") {
  auto d = make_deployment_strategy();
  std::vector<std::string> names;
  for (const auto& c : d->columns()) names.push_back(c.name);
  CHECK(names == std::vector<std::string>{"Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"});
  CHECK(d->columns()[5].priority == 1);
  json dep = created(*d, deployment(app_spec()));
  dep["metadata"]["creationTimestamp"] = ago(30 * 60 + 5);
  dep["spec"]["replicas"] = 3;
  dep["spec"]["template"]["spec"]["containers"].push_back({{"name", "sidecar"}, {"image", "envoy:1.30"}});
  dep["status"] = {{"replicas", 3}, {"readyReplicas", 2}, {"updatedReplicas", 3}, {"availableReplicas", 2}};
  CHECK(d->cells(dep) == json::array({"web", "2/3", 3, 2, "30m", "web,sidecar", "nginx:1.25,envoy:1.30", "app=web"}));
  json fresh = created(*d, deployment(app_spec()));
  CHECK(d->cells(fresh)[1] == "0/1");
  CHECK(d->cells(fresh)[2] == 0);

  auto r = make_replicaset_strategy();
  names.clear();
  for (const auto& c : r->columns()) names.push_back(c.name);
  CHECK(names == std::vector<std::string>{"Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector"});
  CHECK(r->columns()[1].type == "integer");
  json rs = {{"apiVersion", "apps/v1"}, {"kind", "ReplicaSet"}, {"metadata", {{"name", "web-5d9c"}}},
             {"spec", {{"replicas", 2},
                       {"selector", {{"matchLabels", {{"app", "web"}, {"pod-template-hash", "5d9c"}}},
                                     {"matchExpressions", json::array({{{"key", "tier"}, {"operator", "In"}, {"values", {"web", "api"}}}})}}},
                       {"template", {{"metadata", {{"labels", {{"app", "web"}, {"pod-template-hash", "5d9c"}, {"tier", "web"}}}}},
                                     {"spec", {{"containers", json::array({{{"name", "web"}, {"image", "nginx"}}})}}}}}}}};
  std::vector<Cause> causes;
  json made = created(*r, rs, &causes);
  CHECK(causes.empty());
  CHECK(made["status"] == json{{"replicas", 0}});
  made["metadata"]["creationTimestamp"] = ago(3 * 86400 + 7200);
  made["status"] = {{"replicas", 2}, {"readyReplicas", 1}};
  CHECK(r->cells(made) ==
        json::array({"web-5d9c", 2, 2, 1, "3d2h", "web", "nginx", "app=web,pod-template-hash=5d9c,tier in (api,web)"}));
  json no_selector = made;
  no_selector["spec"].erase("selector");
  CHECK(r->cells(no_selector)[7] == "<none>");
}

TEST_CASE("replicaset defaults and validation") {
  auto r = make_replicaset_strategy();
  json rs = {{"metadata", {{"name", "web"}}}, {"spec", app_spec()}};
  json made = created(*r, rs);
  CHECK(made["spec"]["replicas"] == 1);
  CHECK(made["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst");
  CHECK_FALSE(made["spec"].contains("strategy"));

  json negative = rs;
  negative["spec"]["replicas"] = -1;
  auto c = create_errors(*r, negative);
  REQUIRE(c.size() == 1);
  CHECK(c[0].field == "spec.replicas");
  CHECK(c[0].message == "Invalid value: -1: must be greater than or equal to 0");

  json mismatch = rs;
  mismatch["spec"]["template"]["metadata"]["labels"] = {{"app", "other"}};
  c = create_errors(*r, mismatch);
  REQUIRE(c.size() == 1);
  CHECK(c[0].message == "Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`");

  json bad_op = rs;
  bad_op["spec"]["selector"]["matchExpressions"] = json::array({{{"key", "tier"}, {"operator", "Near"}}});
  c = create_errors(*r, bad_op);
  const Cause* e = find_cause(c, "spec.selector.matchExpressions[0].operator");
  REQUIRE(e);
  CHECK(e->message == "Invalid value: \"Near\": not a valid selector operator");
  CHECK(find_cause(c, "spec.selector"));  // and "invalid label selector"

  std::vector<Cause> uc;
  json moved = made;
  moved["spec"]["selector"]["matchLabels"]["app"] = "api";
  moved["spec"]["template"]["metadata"]["labels"]["app"] = "api";
  updated(*r, moved, made, uc);
  REQUIRE(uc.size() == 1);
  CHECK(uc[0].field == "spec.selector");
  CHECK(uc[0].message.find("field is immutable") != std::string::npos);
}
