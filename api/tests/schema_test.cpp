#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <vector>

#include "api/schema.h"

using berth::api::GroupVersionKind;
using berth::api::Schema;
using nlohmann::json;

namespace {

// Finds api/tests/data from the build directory (meson test), the source tree, or beside the executable.
std::filesystem::path data_dir() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("BERTH_API_TEST_DATA")) return env;
  const fs::path from_source = fs::path(__FILE__).parent_path() / "data";
  std::error_code ec;
  std::vector<fs::path> bases = {fs::current_path(ec), fs::read_symlink("/proc/self/exe", ec).parent_path()};
  for (fs::path dir : bases) {
    for (; !dir.empty(); dir = dir.parent_path()) {
      for (const fs::path& rel : {from_source, fs::path("api/tests/data")})
        if (fs::exists(dir / rel / "deployment.pb")) return dir / rel;
      if (dir == dir.parent_path()) break;
    }
  }
  return from_source;
}

json load_json(const std::string& name) {
  std::ifstream f(data_dir() / name);
  REQUIRE_MESSAGE(f.good(), "missing test data " << name);
  return json::parse(f);
}

const GroupVersionKind kDeployment{"apps", "v1", "Deployment"};
const GroupVersionKind kPod{"", "v1", "Pod"};

const json kDeploymentManifest = json::parse(R"({
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "web", "labels": {"app": "web", "any/label": "x"}, "label": {"typo": "1"}},
  "spec": {
    "replicas": 2, "replica": 3,
    "selector": {"matchLabels": {"app": "web"}},
    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
    "template": {
      "metadata": {"labels": {"app": "web"}},
      "spec": {
        "containers": [
          {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}],
           "resources": {"limits": {"cpu": "1", "example.com/gpu": 1}}},
          {"name": "b", "image": "busybox", "foo": true,
           "ports": [{"containerPort": 81, "protocl": "TCP"}],
           "env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name", "extra": 1}}}]}
        ],
        "volumes": [{"name": "v", "emptyDir": {}, "emptydir": {}}]
      }
    }
  }
})");

// Walks a JSON document and calls f on every "$ref" value.
void for_each_ref(const json& j, const std::function<void(const std::string&)>& f) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "$ref" && it.value().is_string()) f(it.value().get<std::string>());
      for_each_ref(it.value(), f);
    }
  } else if (j.is_array()) {
    for (const auto& e : j) for_each_ref(e, f);
  }
}

}  // namespace

TEST_CASE("kinds are found by group/version/kind and by plural") {
  const Schema& s = Schema::get();
  const auto* pod = s.find_kind("", "v1", "Pod");
  REQUIRE(pod);
  CHECK(pod->plural == "pods");
  CHECK(pod->namespaced);
  CHECK(pod->type->id == "core/v1.Pod");
  CHECK(pod->type->definition == "io.k8s.api.core.v1.Pod");
  CHECK(pod->list_kind == "PodList");
  CHECK(pod->subresources.count("eviction"));
  CHECK(pod->subresources.at("eviction")->id == "policy/v1.Eviction");

  const auto* ns = s.find_resource("", "v1", "namespaces");
  REQUIRE(ns);
  CHECK(ns->kind == "Namespace");
  CHECK_FALSE(ns->namespaced);

  const auto* hpa2 = s.find_resource("autoscaling", "v2", "horizontalpodautoscalers");
  REQUIRE(hpa2);
  CHECK(hpa2->type->id == "autoscaling/v2.HorizontalPodAutoscaler");
  const auto* hpa1 = s.find_kind("autoscaling", "v1", "HorizontalPodAutoscaler");
  REQUIRE(hpa1);
  CHECK(hpa1->type->json_field("spec")->shape.named->json_field("targetCPUUtilizationPercentage"));

  const auto* list = s.find_kind("apps", "v1", "DeploymentList");
  REQUIRE(list);
  CHECK(list->plural.empty());
  CHECK(list->type->json_field("items"));

  for (auto [g, v] : {std::pair{"", "v1"}, {"apps", "v1"}, {"policy", "v1"}}) {
    const auto* del = s.find_kind(g, v, "DeleteOptions");
    REQUIRE(del);
    CHECK(del->type->id == "meta/v1.DeleteOptions");
  }
  CHECK(s.find_kind("", "v1", "Status")->type->id == "meta/v1.Status");
  CHECK(s.find_kind("autoscaling", "v1", "Scale")->type->id == "autoscaling/v1.Scale");
  CHECK(s.find_kind("policy", "v1", "Eviction"));
  CHECK(s.find_kind("coordination.k8s.io", "v1", "Lease"));
  CHECK(s.find_kind("events.k8s.io", "v1", "Event")->type->id == "events/v1.Event");
  CHECK(s.find_kind("", "v1", "Event")->type->id == "core/v1.Event");
  CHECK_FALSE(s.find_kind("apps", "v1", "Pod"));
  CHECK_FALSE(s.find_resource("apps", "v1", "pods"));

  auto gvs = s.group_versions();
  CHECK(gvs == std::vector<std::string>{"v1", "apps/v1", "autoscaling/v1", "autoscaling/v2", "coordination.k8s.io/v1",
                                        "events.k8s.io/v1"});
}

TEST_CASE("the schema is internally consistent") {
  const Schema& s = Schema::get();
  for (const auto& k : s.kinds()) {
    INFO(k.api_version() << " " << k.kind);
    REQUIRE(k.type);
    if (!k.plural.empty()) {
      CHECK(k.type->json_field("metadata"));
      CHECK(k.type->json_field("apiVersion"));
      CHECK(k.type->json_field("kind"));
    }
  }
  // Protobuf numbers are unique within a message and only apiVersion/kind lack one.
  std::function<void(const berth::api::TypeDef&, std::set<const berth::api::TypeDef*>&)> visit =
      [&](const berth::api::TypeDef& t, std::set<const berth::api::TypeDef*>& seen) {
        if (!seen.insert(&t).second || !t.scalar.empty()) return;
        std::set<int> numbers;
        for (const auto& f : t.fields) {
          INFO(t.id << "." << f.name);
          if (f.proto == 0) {
            CHECK((f.name == "apiVersion" || f.name == "kind"));
          } else {
            CHECK(numbers.insert(f.proto).second);
            CHECK(t.proto_field(f.proto) == &f);
          }
          const auto* shape = &f.shape;
          while (shape->element) shape = shape->element.get();
          if (shape->named) visit(*shape->named, seen);
        }
      };
  std::set<const berth::api::TypeDef*> seen;
  for (const auto& k : s.kinds()) visit(*k.type, seen);
  CHECK(seen.size() > 200);
}

TEST_CASE("unknown fields are reported with Kubernetes' strict decoding paths") {
  auto unknown = berth::api::unknown_fields(kDeployment, kDeploymentManifest);
  CHECK(unknown == std::vector<std::string>{
                       "metadata.label",
                       "spec.replica",
                       "spec.template.spec.containers[1].env[0].valueFrom.fieldRef.extra",
                       "spec.template.spec.containers[1].foo",
                       "spec.template.spec.containers[1].ports[0].protocl",
                       "spec.template.spec.volumes[0].emptydir",
                   });

  json clean = kDeploymentManifest;
  clean["metadata"].erase("label");
  clean["spec"].erase("replica");
  auto& c1 = clean["spec"]["template"]["spec"]["containers"][1];
  c1.erase("foo");
  c1["ports"][0].erase("protocl");
  c1["env"][0]["valueFrom"]["fieldRef"].erase("extra");
  clean["spec"]["template"]["spec"]["volumes"][0].erase("emptydir");
  CHECK(berth::api::unknown_fields(kDeployment, clean).empty());

  // Unknown top-level fields have no leading dot; unknown kinds check nothing.
  CHECK(berth::api::unknown_fields(kPod, json{{"kind", "Pod"}, {"extra", 1}}) == std::vector<std::string>{"extra"});
  CHECK(berth::api::unknown_fields({"example.com", "v1", "Widget"}, json{{"x", 1}}).empty());
}

TEST_CASE("a realistic full Pod using every area of the 1.32 pod spec is accepted") {
  json pod = load_json("pod_full.json");
  auto unknown = berth::api::unknown_fields(kPod, pod);
  CHECK_MESSAGE(unknown.empty(), json(unknown).dump());
  // The same pod as a Deployment template and in a PodList.
  json deploy = {{"apiVersion", "apps/v1"},
                 {"kind", "Deployment"},
                 {"metadata", {{"name", "d"}}},
                 {"spec", {{"selector", {{"matchLabels", {{"app", "full"}}}}},
                           {"template", {{"metadata", pod["metadata"]}, {"spec", pod["spec"]}}}}}};
  CHECK(berth::api::unknown_fields(kDeployment, deploy).empty());
  json list = {{"apiVersion", "v1"}, {"kind", "PodList"}, {"metadata", {{"resourceVersion", "1"}}}, {"items", {pod}}};
  CHECK(berth::api::unknown_fields({"", "v1", "PodList"}, list).empty());
  // A field from a later Kubernetes (1.33's lifecycle.stopSignal) is not in 1.32.
  pod["spec"]["containers"][0]["lifecycle"]["stopSignal"] = "SIGTERM";
  CHECK(berth::api::unknown_fields(kPod, pod) ==
        std::vector<std::string>{"spec.containers[0].lifecycle.stopSignal"});
}

TEST_CASE("the other kinds accept their realistic objects") {
  struct Case {
    GroupVersionKind gvk;
    const char* text;
  };
  const Case cases[] = {
      {{"", "v1", "Service"}, R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{
          "type":"LoadBalancer","selector":{"app":"a"},"clusterIP":"10.0.0.1","clusterIPs":["10.0.0.1"],
          "ports":[{"name":"http","protocol":"TCP","appProtocol":"http","port":80,"targetPort":"http","nodePort":30080}],
          "externalIPs":["1.2.3.4"],"sessionAffinity":"ClientIP","sessionAffinityConfig":{"clientIP":{"timeoutSeconds":60}},
          "loadBalancerIP":"","loadBalancerSourceRanges":["0.0.0.0/0"],"externalName":"","externalTrafficPolicy":"Local",
          "healthCheckNodePort":31000,"publishNotReadyAddresses":false,"ipFamilies":["IPv4"],"ipFamilyPolicy":"SingleStack",
          "allocateLoadBalancerNodePorts":true,"loadBalancerClass":"x","internalTrafficPolicy":"Cluster",
          "trafficDistribution":"PreferClose"},
          "status":{"loadBalancer":{"ingress":[{"ip":"5.6.7.8","hostname":"lb","ipMode":"VIP",
          "ports":[{"port":80,"protocol":"TCP","error":""}]}]},"conditions":[{"type":"Ready","status":"True",
          "observedGeneration":1,"lastTransitionTime":"2026-01-01T00:00:00Z","reason":"R","message":""}]}})"},
      {{"", "v1", "Node"}, R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"n"},"spec":{"podCIDR":"10.1.0.0/24",
          "podCIDRs":["10.1.0.0/24"],"providerID":"p","unschedulable":true,"taints":[{"key":"k","value":"v",
          "effect":"NoSchedule","timeAdded":null}],"externalID":"e"},"status":{"capacity":{"cpu":"2","memory":"4Gi",
          "pods":"110"},"allocatable":{"cpu":"2"},"phase":"Running","conditions":[{"type":"Ready","status":"True",
          "lastHeartbeatTime":"2026-01-01T00:00:00Z","lastTransitionTime":"2026-01-01T00:00:00Z","reason":"KubeletReady",
          "message":"ok"}],"addresses":[{"type":"InternalIP","address":"10.0.0.5"}],"daemonEndpoints":{"kubeletEndpoint":
          {"Port":10250}},"nodeInfo":{"machineID":"m","systemUUID":"s","bootID":"b","kernelVersion":"6","osImage":"d",
          "containerRuntimeVersion":"runc","kubeletVersion":"v1.32.0","kubeProxyVersion":"","operatingSystem":"linux",
          "architecture":"amd64"},"images":[{"names":["nginx"],"sizeBytes":1}],"volumesInUse":["v"],
          "volumesAttached":[{"name":"v","devicePath":"/dev/x"}],"config":{},"runtimeHandlers":[{"name":"runc",
          "features":{"recursiveReadOnlyMounts":true,"userNamespaces":false}}],"features":{"supplementalGroupsPolicy":true}}})"},
      {{"", "v1", "Event"}, R"({"apiVersion":"v1","kind":"Event","metadata":{"name":"e","namespace":"d"},
          "involvedObject":{"kind":"Pod","namespace":"d","name":"p","uid":"u","apiVersion":"v1","resourceVersion":"1",
          "fieldPath":"spec.containers{a}"},"reason":"Pulled","message":"m","source":{"component":"kubelet","host":"n"},
          "firstTimestamp":"2026-01-01T00:00:00Z","lastTimestamp":"2026-01-01T00:00:00Z","count":2,"type":"Normal",
          "eventTime":null,"series":{"count":2,"lastObservedTime":"2026-01-01T00:00:00.000000Z"},"action":"Pull",
          "related":null,"reportingComponent":"kubelet","reportingInstance":"n"})"},
      {{"events.k8s.io", "v1", "Event"}, R"({"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"e"},
          "eventTime":"2026-01-01T00:00:00.000000Z","series":{"count":1,"lastObservedTime":"2026-01-01T00:00:00.000000Z"},
          "reportingController":"c","reportingInstance":"i","action":"A","reason":"R","regarding":{"kind":"Pod","name":"p"},
          "note":"n","type":"Normal","deprecatedSource":{"component":"x"},"deprecatedFirstTimestamp":null,
          "deprecatedLastTimestamp":null,"deprecatedCount":0})"},
      {{"", "v1", "Secret"}, R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"type":"Opaque",
          "data":{"a":"YQ=="},"stringData":{"b":"c"},"immutable":true})"},
      {{"", "v1", "ConfigMap"}, R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"b"},
          "binaryData":{"b":"YQ=="},"immutable":false})"},
      {{"", "v1", "Namespace"}, R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"n"},"spec":{"finalizers":
          ["kubernetes"]},"status":{"phase":"Active","conditions":[{"type":"NamespaceDeletionContentFailure",
          "status":"False","lastTransitionTime":null,"reason":"","message":""}]}})"},
      {{"", "v1", "Binding"}, R"({"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"kind":"Node",
          "name":"n"}})"},
      {{"policy", "v1", "Eviction"}, R"({"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"p",
          "namespace":"d"},"deleteOptions":{"gracePeriodSeconds":0,"propagationPolicy":"Background","dryRun":["All"],
          "preconditions":{"uid":"u","resourceVersion":"1"},"orphanDependents":false,
          "ignoreStoreReadErrorWithClusterBreakingPotential":false}})"},
      {{"apps", "v1", "ReplicaSet"}, R"({"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"r"},
          "spec":{"replicas":1,"minReadySeconds":0,"selector":{"matchExpressions":[{"key":"a","operator":"In",
          "values":["b"]}]},"template":{"metadata":{},"spec":{"containers":[{"name":"c","image":"i"}]}}},
          "status":{"replicas":1,"fullyLabeledReplicas":1,"readyReplicas":1,"availableReplicas":1,
          "observedGeneration":1,"conditions":[{"type":"ReplicaFailure","status":"False","lastTransitionTime":null,
          "reason":"","message":""}]}})"},
      {{"apps", "v1", "Deployment"}, R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},
          "spec":{"replicas":1,"selector":{"matchLabels":{"a":"b"}},"template":{"spec":{"containers":[]}},
          "strategy":{"type":"Recreate"},"minReadySeconds":1,"revisionHistoryLimit":10,"paused":false,
          "progressDeadlineSeconds":600},"status":{"observedGeneration":1,"replicas":1,"updatedReplicas":1,
          "readyReplicas":1,"availableReplicas":1,"unavailableReplicas":0,"collisionCount":0,
          "conditions":[{"type":"Available","status":"True","lastUpdateTime":null,"lastTransitionTime":null,
          "reason":"MinimumReplicasAvailable","message":""}]}})"},
      {{"autoscaling", "v1", "Scale"}, R"({"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"d"},
          "spec":{"replicas":3},"status":{"replicas":2,"selector":"app=web"}})"},
      {{"autoscaling", "v1", "HorizontalPodAutoscaler"}, R"({"apiVersion":"autoscaling/v1",
          "kind":"HorizontalPodAutoscaler","metadata":{"name":"h"},"spec":{"scaleTargetRef":{"kind":"Deployment",
          "name":"web","apiVersion":"apps/v1"},"minReplicas":1,"maxReplicas":5,"targetCPUUtilizationPercentage":80},
          "status":{"observedGeneration":1,"lastScaleTime":null,"currentReplicas":1,"desiredReplicas":2,
          "currentCPUUtilizationPercentage":90}})"},
      {{"autoscaling", "v2", "HorizontalPodAutoscaler"}, R"({"apiVersion":"autoscaling/v2",
          "kind":"HorizontalPodAutoscaler","metadata":{"name":"h"},"spec":{"scaleTargetRef":{"kind":"Deployment",
          "name":"web","apiVersion":"apps/v1"},"minReplicas":1,"maxReplicas":5,"metrics":[
          {"type":"Resource","resource":{"name":"cpu","target":{"type":"Utilization","averageUtilization":80}}},
          {"type":"Pods","pods":{"metric":{"name":"qps","selector":{"matchLabels":{"a":"b"}}},
            "target":{"type":"AverageValue","averageValue":"1k"}}},
          {"type":"Object","object":{"describedObject":{"kind":"Service","name":"s","apiVersion":"v1"},
            "metric":{"name":"m"},"target":{"type":"Value","value":"10"}}},
          {"type":"External","external":{"metric":{"name":"queue"},"target":{"type":"Value","value":"5"}}},
          {"type":"ContainerResource","containerResource":{"name":"memory","container":"app",
            "target":{"type":"AverageValue","averageValue":"100Mi"}}}],
          "behavior":{"scaleUp":{"stabilizationWindowSeconds":0,"selectPolicy":"Max","policies":[{"type":"Percent",
          "value":100,"periodSeconds":15}]},"scaleDown":{"policies":[{"type":"Pods","value":1,"periodSeconds":60}]}}},
          "status":{"observedGeneration":1,"lastScaleTime":null,"currentReplicas":1,"desiredReplicas":1,
          "currentMetrics":[{"type":"Resource","resource":{"name":"cpu","current":{"averageUtilization":50,
          "averageValue":"100m"}}}],"conditions":[{"type":"AbleToScale","status":"True","lastTransitionTime":null,
          "reason":"R","message":"m"}]}})"},
      {{"coordination.k8s.io", "v1", "Lease"}, R"({"apiVersion":"coordination.k8s.io/v1","kind":"Lease",
          "metadata":{"name":"n","namespace":"kube-node-lease"},"spec":{"holderIdentity":"n","leaseDurationSeconds":40,
          "acquireTime":"2026-01-01T00:00:00.000000Z","renewTime":"2026-01-01T00:00:10.000000Z","leaseTransitions":0,
          "strategy":"OldestEmulationVersion","preferredHolder":"m"}})"},
      {{"", "v1", "Status"}, R"({"apiVersion":"v1","kind":"Status","metadata":{},"status":"Failure","message":"m",
          "reason":"Invalid","details":{"name":"x","group":"apps","kind":"deployments","uid":"u","causes":[
          {"reason":"FieldValueInvalid","message":"m","field":"spec.replicas"}],"retryAfterSeconds":1},"code":422})"},
  };
  for (const auto& c : cases) {
    INFO(c.gvk.group << "/" << c.gvk.version << " " << c.gvk.kind);
    auto unknown = berth::api::unknown_fields(c.gvk, json::parse(c.text));
    CHECK_MESSAGE(unknown.empty(), json(unknown).dump());
  }
}

TEST_CASE("strict field errors keep document order and report duplicates") {
  const Schema& s = Schema::get();
  std::string body = R"({"apiVersion":"apps/v1","kind":"Deployment",
    "metadata":{"name":"a","name":"b","zzz":1,"labels":{"x":"1","x":"2"}},
    "spec":{"template":{"spec":{"containers":[{"name":"c","image":"i","image":"j","bogus":{"deep":[1,{"a":1,"a":2}]}}]}},
            "replicas":1,"aaa":true,"aaa":false}})";
  auto errors = s.strict_field_errors(kDeployment, body);
  CHECK(errors == std::vector<std::string>{
                      R"(duplicate field "metadata.name")",
                      R"(unknown field "metadata.zzz")",
                      R"(duplicate field "metadata.labels.x")",
                      R"(duplicate field "spec.template.spec.containers[0].image")",
                      R"(unknown field "spec.template.spec.containers[0].bogus")",
                      R"(unknown field "spec.aaa")",
                  });
  // The parsed-object form agrees on the unknown ones (in key order).
  CHECK(s.unknown_fields(kDeployment, json::parse(body)) ==
        std::vector<std::string>{"metadata.zzz", "spec.aaa", "spec.template.spec.containers[0].bogus"});
  // Clean bodies, opaque values (fieldsV1, quantities, int-or-string) and invalid JSON give nothing.
  std::string clean = R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","managedFields":[{"manager":"m",
    "fieldsV1":{"f:a":{},"f:a":{}}}]},"spec":{"containers":[{"name":"c","resources":{"limits":{"cpu":"1"}},
    "ports":[{"containerPort":1}],"livenessProbe":{"httpGet":{"port":"http"}}}]}})";
  CHECK(s.strict_field_errors(kPod, clean).empty());
  CHECK(s.strict_field_errors(kPod, R"({"spec":)").empty());
  // Deduplicated, capped at 100.
  std::string many = "{";
  for (int i = 0; i < 150; ++i) many += "\"f" + std::to_string(i) + "\":1,";
  many += "\"f0\":2}";
  auto capped = s.strict_field_errors(kPod, many);
  CHECK(capped.size() == 100);
  CHECK(capped.front() == R"(unknown field "f0")");
}

TEST_CASE("strategic merge metadata follows the 1.32 struct tags") {
  struct Case {
    GroupVersionKind gvk;
    const char* path;
    const char* strategy;
    const char* key;
  };
  const Case cases[] = {
      {kDeployment, "spec.template.spec.containers", "merge", "name"},
      {kDeployment, "spec.template.spec.initContainers", "merge", "name"},
      {kDeployment, "spec.template.spec.volumes", "merge,retainKeys", "name"},
      {kDeployment, "spec.template.spec.containers.ports", "merge", "containerPort"},
      {kDeployment, "spec.template.spec.containers.env", "merge", "name"},
      {kDeployment, "spec.template.spec.containers.volumeMounts", "merge", "mountPath"},
      {kDeployment, "spec.template.spec.imagePullSecrets", "merge", "name"},
      {kDeployment, "spec.template.spec.hostAliases", "merge", "ip"},
      {kDeployment, "spec.template.spec.tolerations", "", ""},
      {kDeployment, "spec.template.spec.containers.command", "", ""},
      {kDeployment, "spec.strategy", "retainKeys", ""},
      {kDeployment, "status.conditions", "merge", "type"},
      {kDeployment, "metadata.finalizers", "merge", ""},
      {kDeployment, "metadata.ownerReferences", "merge", "uid"},
      {kDeployment, "spec.template.metadata.finalizers", "merge", ""},
      {kDeployment, "metadata.labels", "", ""},
      {kDeployment, "metadata.labels.app", "", ""},
      {kDeployment, "spec.template.spec.containers.resources.limits", "", ""},
      {kDeployment, "spec.template.spec.containers.resources.limits.cpu", "", ""},
      {kDeployment, "spec.nosuchfield.containers", "", ""},
      {kPod, "spec.containers", "merge", "name"},
      {kPod, "spec.ephemeralContainers", "merge", "name"},
      {kPod, "status.conditions", "merge", "type"},
      {kPod, "status.podIPs", "merge", "ip"},
      {kPod, "spec.resourceClaims", "merge,retainKeys", "name"},
      {{"", "v1", "Service"}, "spec.ports", "merge", "port"},
      {{"", "v1", "Node"}, "spec.taints", "", ""},
      {{"", "v1", "Node"}, "status.conditions", "merge", "type"},
      {{"", "v1", "Node"}, "status.addresses", "merge", "type"},
      {{"autoscaling", "v2", "HorizontalPodAutoscaler"}, "status.conditions", "merge", "type"},
      {{"example.com", "v1", "Widget"}, "spec.items", "", ""},
  };
  for (const auto& c : cases) {
    INFO(c.gvk.kind << " " << c.path);
    auto m = berth::api::patch_meta(c.gvk, c.path);
    CHECK(m.strategy == c.strategy);
    CHECK(m.merge_key == c.key);
  }
  auto lookup = berth::api::patch_meta_lookup(kDeployment);
  CHECK(lookup("spec.template.spec.containers").merge_key == "name");
}

TEST_CASE("OpenAPI v3 root lists every group-version with a content hash") {
  json root = berth::api::openapi_v3_root();
  REQUIRE(root["paths"].is_object());
  CHECK(root["paths"].size() == 6);
  for (const char* p : {"api/v1", "apis/apps/v1", "apis/autoscaling/v1", "apis/autoscaling/v2",
                        "apis/coordination.k8s.io/v1", "apis/events.k8s.io/v1"}) {
    INFO(p);
    std::string url = root["paths"][p]["serverRelativeURL"];
    CHECK(url.rfind(std::string("/openapi/v3/") + p + "?hash=", 0) == 0);
    CHECK(url.size() > std::string("/openapi/v3/").size() + std::string(p).size() + 6 + 16);
  }
  // Stable across calls, and a provider replaces the hash.
  CHECK(berth::api::openapi_v3_root() == root);
  json custom = berth::api::openapi_v3_root([](const std::string& path) { return "H-" + path; });
  CHECK(custom["paths"]["apis/apps/v1"]["serverRelativeURL"] == "/openapi/v3/apis/apps/v1?hash=H-apis/apps/v1");
}

TEST_CASE("OpenAPI v3 group-version documents carry what kubectl needs") {
  json apps = berth::api::openapi_v3_group_version("apps", "v1");
  REQUIRE(apps.is_object());
  CHECK(apps["openapi"] == "3.0.0");
  const json& schemas = apps["components"]["schemas"];

  // kubectl explain finds the kind by x-kubernetes-group-version-kind.
  const json& dep = schemas["io.k8s.api.apps.v1.Deployment"];
  CHECK(dep["x-kubernetes-group-version-kind"] ==
        json::parse(R"([{"group":"apps","kind":"Deployment","version":"v1"}])"));
  CHECK(dep["properties"]["spec"]["allOf"][0]["$ref"] == "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec");
  CHECK_FALSE(dep["description"].get<std::string>().empty());
  CHECK(schemas["io.k8s.api.apps.v1.DeploymentList"]["x-kubernetes-group-version-kind"][0]["kind"] == "DeploymentList");
  CHECK(schemas["io.k8s.api.apps.v1.DeploymentSpec"]["required"] == json::parse(R"(["selector","template"])"));

  // Strategic merge metadata on the properties, as kubectl apply reads it.
  const json& containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
  CHECK(containers["x-kubernetes-patch-merge-key"] == "name");
  CHECK(containers["x-kubernetes-patch-strategy"] == "merge");
  CHECK(containers["type"] == "array");
  CHECK(containers["items"]["$ref"] == "#/components/schemas/io.k8s.api.core.v1.Container");
  const json& volumes = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"];
  CHECK(volumes["x-kubernetes-patch-strategy"] == "merge,retainKeys");
  const json& ports = schemas["io.k8s.api.core.v1.Container"]["properties"]["ports"];
  CHECK(ports["x-kubernetes-list-type"] == "map");
  CHECK(ports["x-kubernetes-list-map-keys"] == json::parse(R"(["containerPort","protocol"])"));
  // Inlined VolumeSource fields are properties of Volume.
  CHECK(schemas["io.k8s.api.core.v1.Volume"]["properties"].contains("emptyDir"));
  CHECK(schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string");
  CHECK(schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["format"] == "date-time");
  CHECK(schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"].contains("oneOf"));

  // Every reference resolves inside the document.
  int refs = 0;
  for_each_ref(apps, [&](const std::string& ref) {
    ++refs;
    const std::string prefix = "#/components/schemas/";
    REQUIRE(ref.rfind(prefix, 0) == 0);
    CHECK_MESSAGE(schemas.contains(ref.substr(prefix.size())), ref);
  });
  CHECK(refs > 100);

  // Every PATCH operation names its GVK and takes fieldValidation in the query (kubectl's verifier).
  const json& paths = apps["paths"];
  const json& patch = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
  CHECK(patch["x-kubernetes-group-version-kind"] == json::parse(R"({"group":"apps","kind":"Deployment","version":"v1"})"));
  CHECK(patch["requestBody"]["content"].contains("application/strategic-merge-patch+json"));
  const json& scale = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"];
  CHECK(scale["x-kubernetes-group-version-kind"] ==
        json::parse(R"({"group":"autoscaling","kind":"Scale","version":"v1"})"));
  CHECK(schemas["io.k8s.api.autoscaling.v1.Scale"]["x-kubernetes-group-version-kind"][0]["group"] == "autoscaling");
  int patches = 0;
  for (auto it = paths.begin(); it != paths.end(); ++it) {
    if (!it.value().contains("patch")) continue;
    ++patches;
    bool found = false;
    for (const auto& p : it.value()["patch"]["parameters"])
      found = found || (p["name"] == "fieldValidation" && p["in"] == "query");
    CHECK_MESSAGE(found, it.key());
  }
  CHECK(patches == 6);  // deployments, replicasets and their status and scale
  CHECK(paths.contains("/apis/apps/v1/deployments"));
  CHECK(paths["/apis/apps/v1/namespaces/{namespace}/deployments"]["post"]["x-kubernetes-action"] == "post");

  // The core group: group "" in the extensions, pods/eviction with policy/v1 Eviction.
  json core = berth::api::openapi_v3_group_version("", "v1");
  REQUIRE(core.is_object());
  CHECK(core["components"]["schemas"]["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"] ==
        json::parse(R"([{"group":"","kind":"Pod","version":"v1"}])"));
  CHECK(core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"]
            ["x-kubernetes-group-version-kind"]["group"] == "policy");
  CHECK(core["paths"]["/api/v1/nodes/{name}"]["patch"]["x-kubernetes-group-version-kind"]["kind"] == "Node");
  const json& del = core["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"];
  bool core_delete = false;
  for (const auto& g : del["x-kubernetes-group-version-kind"])
    core_delete = core_delete || (g["group"] == "" && g["version"] == "v1");
  CHECK(core_delete);

  json hpa2 = berth::api::openapi_v3_group_version("autoscaling", "v2");
  CHECK(hpa2["components"]["schemas"]["io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler"]
            ["x-kubernetes-group-version-kind"][0]["version"] == "v2");
  CHECK(berth::api::openapi_v3_group_version("nope", "v1").is_null());
}

TEST_CASE("OpenAPI v2 has definitions and resolvable references") {
  json v2 = berth::api::openapi_v2();
  CHECK(v2["swagger"] == "2.0");
  const json& defs = v2["definitions"];
  CHECK(defs["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"][0]["kind"] == "Deployment");
  CHECK(defs["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]["x-kubernetes-patch-merge-key"] == "name");
  for_each_ref(v2, [&](const std::string& ref) {
    REQUIRE(ref.rfind("#/definitions/", 0) == 0);
    CHECK_MESSAGE(defs.contains(ref.substr(14)), ref);
  });
  const json& patch = v2["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
  CHECK(patch["parameters"][0]["in"] == "body");
}
