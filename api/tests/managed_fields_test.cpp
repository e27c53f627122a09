#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "api/managed_fields.h"

using berth::api::ApplyOptions;
using berth::api::ListKeys;
using berth::api::ManagedEntry;
using berth::api::Reason;
using nlohmann::json;
namespace api = berth::api;

namespace {

json J(const char* text) { return json::parse(text); }

// The slice of the apps/v1 and core/v1 schemas these tests touch. Like the server's adapter it
// answers "atomic" for every other field, objects included: only map_type makes an object atomic.
ListKeys list_of(std::string kind, std::vector<std::string> keys = {}, json defaults = json::object()) {
  ListKeys k;
  k.kind = std::move(kind);
  k.keys = std::move(keys);
  k.key_defaults = std::move(defaults);
  return k;
}

ListKeys keys_at(const std::string& p) {
  if (p == "spec.template.spec.containers" || p == "spec.template.spec.containers.env") return list_of("map", {"name"});
  if (p == "spec.template.spec.containers.ports")
    return list_of("map", {"containerPort", "protocol"}, {{"protocol", "TCP"}});
  if (p == "metadata.finalizers") return list_of("set");
  ListKeys k = list_of("atomic");
  if (p == "spec.selector") k.map_type = "atomic";
  return k;
}

std::shared_ptr<const ListKeys> lookup(const std::string& p) { return std::make_shared<const ListKeys>(keys_at(p)); }

const char* kT1 = "2024-05-01T10:00:00Z";
const char* kT2 = "2024-05-01T11:00:00Z";
const char* kT3 = "2024-05-01T12:00:00Z";

ApplyOptions deploy_opts() {
  ApplyOptions o;
  o.kind = "Deployment";
  o.ignored_paths = {"status"};
  return o;
}

json deployment(int replicas, const char* image) {
  json d = J(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default"},
    "spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},
    "spec":{"containers":[{"name":"web"}]}}}})");
  d["spec"]["replicas"] = replicas;
  d["spec"]["template"]["spec"]["containers"][0]["image"] = image;
  return d;
}

// What the store adds on create.
json stored(json obj) {
  obj["metadata"]["uid"] = "6f1c1f3e-0000-4000-8000-000000000001";
  obj["metadata"]["resourceVersion"] = "1";
  obj["metadata"]["creationTimestamp"] = kT1;
  return obj;
}

const json* entry(const json& obj, const std::string& manager, const std::string& op) {
  for (const auto& e : obj["metadata"]["managedFields"])
    if (e["manager"] == manager && e["operation"] == op) return &e;
  return nullptr;
}

json fields_of(const json& obj, const std::string& manager, const std::string& op) {
  const json* e = entry(obj, manager, op);
  REQUIRE_MESSAGE(e != nullptr, manager << "/" << op << " missing in " << obj["metadata"].dump());
  return (*e)["fieldsV1"];
}

json apply_ok(const json& live, const json& cfg, const std::string& manager, bool force, const char* now,
              ApplyOptions opts = deploy_opts()) {
  auto r = api::server_side_apply(live, cfg, manager, force, "apps/v1", now, lookup, opts);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  return *r;
}

}  // namespace

TEST_CASE("docs ConfigMap: apply records the applier, an update moves the changed field") {
  // kubernetes.io/docs/reference/using-api/server-side-apply: #ssa-example-configmap and the
  // "object with multiple managers" example.
  json cm = J(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"test-cm","namespace":"default",
    "labels":{"test-label":"test"}},"data":{"key":"some value"}})");
  ApplyOptions o;
  o.kind = "ConfigMap";
  auto r = api::server_side_apply(nullptr, cm, "kubectl", false, "v1", kT1, lookup, o);
  REQUIRE(r.ok());
  json live = stored(*r);
  REQUIRE(live["metadata"]["managedFields"].size() == 1);
  const json& e = live["metadata"]["managedFields"][0];
  CHECK(e == J(R"({"manager":"kubectl","operation":"Apply","apiVersion":"v1","time":"2024-05-01T10:00:00Z",
    "fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{"f:test-label":{}}},"f:data":{"f:key":{}}}})"));
  CHECK(live["data"]["key"] == "some value");

  json updated = live;
  updated["data"]["key"] = "new value";
  auto u = api::record_update(live, updated, "kube-controller-manager", "v1", "", kT2, lookup);
  REQUIRE(u.ok());
  const json& mf = (*u)["metadata"]["managedFields"];
  REQUIRE(mf.size() == 2);
  CHECK(mf[0] == J(R"({"manager":"kubectl","operation":"Apply","apiVersion":"v1","time":"2024-05-01T10:00:00Z",
    "fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{"f:test-label":{}}}}})"));
  CHECK(mf[1] == J(R"({"manager":"kube-controller-manager","operation":"Update","apiVersion":"v1",
    "time":"2024-05-01T11:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:key":{}}}})"));

  // Applying the old value again is now a conflict with the updater.
  auto again = api::server_side_apply(*u, cm, "kubectl", false, "v1", kT3, lookup, o);
  REQUIRE_FALSE(again.ok());
  CHECK(again.status().message() ==
        "Apply failed with 1 conflict: conflict with \"kube-controller-manager\" using v1: .data.key");
}

TEST_CASE("create via apply records fieldsV1 exactly as Kubernetes serializes it") {
  // content/en/examples/application/ssa/nginx-deployment.yaml from the Server-Side Apply page.
  json cfg = J(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"nginx-deployment",
    "labels":{"app.kubernetes.io/name":"nginx"}},"spec":{"replicas":3,"selector":{"matchLabels":
    {"app.kubernetes.io/name":"nginx"}},"template":{"metadata":{"labels":{"app.kubernetes.io/name":"nginx"}},
    "spec":{"containers":[{"name":"nginx","image":"nginx:1.14.2"}]}}}})");
  json obj = apply_ok(nullptr, cfg, "kubectl", false, kT1);
  const json& e = obj["metadata"]["managedFields"][0];
  CHECK(e["manager"] == "kubectl");
  CHECK(e["operation"] == "Apply");
  CHECK(e["apiVersion"] == "apps/v1");
  CHECK(e["fieldsType"] == "FieldsV1");
  CHECK_FALSE(e.contains("subresource"));
  CHECK(e["fieldsV1"].dump() ==
        R"({"f:metadata":{"f:labels":{"f:app.kubernetes.io/name":{}}},"f:spec":{"f:replicas":{},"f:selector":{},)"
        R"("f:template":{"f:metadata":{"f:labels":{"f:app.kubernetes.io/name":{}}},"f:spec":{"f:containers":)"
        R"({"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:name":{}}}}}}})");
  const json applied_fields = e["fieldsV1"];
  json expect = cfg;
  obj["metadata"].erase("managedFields");
  CHECK(obj == expect);

  // With the kind's zero object as the base, its nulls do not leak into the result and its empty
  // structs are not owned by the applier.
  ApplyOptions o = deploy_opts();
  o.zero_object = J(R"({"metadata":{"creationTimestamp":null},"spec":{"selector":null,"strategy":{},
    "template":{"metadata":{"creationTimestamp":null},"spec":{"containers":null}}},"status":{}})");
  json z = apply_ok(nullptr, cfg, "kubectl", false, kT1, o);
  CHECK(z["spec"]["strategy"] == json::object());
  CHECK_FALSE(z["metadata"].contains("creationTimestamp"));
  CHECK_FALSE(z["spec"]["template"]["metadata"].contains("creationTimestamp"));
  CHECK(z["metadata"]["managedFields"][0]["fieldsV1"] == applied_fields);
}

TEST_CASE("create via update: kubectl-create entry matches a real kube-apiserver response") {
  // The Deployment `kubectl create deployment nginx --image=nginx` stores (defaults applied) and
  // the kubectl-create entry a 1.2x kube-apiserver returned for it.
  json created = J(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"nginx","namespace":"default",
    "uid":"0b3e","resourceVersion":"1","generation":1,"creationTimestamp":"2023-08-23T10:58:46Z",
    "labels":{"app":"nginx"}},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"nginx"}},
    "template":{"metadata":{"creationTimestamp":null,"labels":{"app":"nginx"}},"spec":{"containers":[{"name":"nginx",
    "image":"nginx","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File",
    "imagePullPolicy":"Always"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst",
    "securityContext":{},"schedulerName":"default-scheduler"}},"strategy":{"type":"RollingUpdate",
    "rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,
    "progressDeadlineSeconds":600},"status":{}})");
  // What Go's New() of apps/v1.Deployment converts to.
  json zero = J(R"({"metadata":{"creationTimestamp":null},"spec":{"selector":null,"strategy":{},
    "template":{"metadata":{"creationTimestamp":null},"spec":{"containers":null}}},"status":{}})");
  auto r = api::record_update(zero, created, "kubectl-create", "apps/v1", "", "2023-08-23T10:58:46Z", lookup,
                              {"status"});
  REQUIRE(r.ok());
  const json& e = (*r)["metadata"]["managedFields"][0];
  CHECK(e["manager"] == "kubectl-create");
  CHECK(e["operation"] == "Update");
  CHECK(e["time"] == "2023-08-23T10:58:46Z");
  CHECK(e["fieldsV1"].dump() ==
        R"({"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:progressDeadlineSeconds":{},"f:replicas":{},)"
        R"("f:revisionHistoryLimit":{},"f:selector":{},"f:strategy":{"f:rollingUpdate":{".":{},"f:maxSurge":{},)"
        R"("f:maxUnavailable":{}},"f:type":{}},"f:template":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},)"
        R"("f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},)"
        R"("f:name":{},"f:resources":{},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},)"
        R"("f:dnsPolicy":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},)"
        R"("f:terminationGracePeriodSeconds":{}}}}})");

  // With a null old object (the unstructured/CRD case) everything new is marked, spec included.
  auto bare = api::record_update(nullptr, created, "kubectl-create", "apps/v1", "", kT1, lookup, {"status"});
  REQUIRE(bare.ok());
  CHECK((*bare)["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"].contains("."));
}

TEST_CASE("field_set: ports keyed with a defaulted protocol, set values, exclusions") {
  json pod = J(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x","uid":"u","finalizers":["a/b"]},
    "spec":{"template":{"spec":{"containers":[{"name":"c","ports":[{"containerPort":80}]}]}}},
    "status":{"replicas":1}})");
  json fs = api::field_set(pod, lookup, {"status"});
  CHECK(fs == J(R"({"f:metadata":{"f:finalizers":{"v:\"a/b\"":{}}},"f:spec":{"f:template":{"f:spec":{"f:containers":
    {"k:{\"name\":\"c\"}":{".":{},"f:name":{},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":
    {".":{},"f:containerPort":{}}}}}}}}})"));
  // Without the exclusion status is tracked; without schema knowledge lists are atomic.
  CHECK(api::field_set(pod, lookup).contains("f:status"));
  CHECK(api::field_set(pod, nullptr)["f:spec"]["f:template"]["f:spec"] == J(R"({"f:containers":{}})"));

  // Entries of a map (not a struct) are owned themselves: ".":{} on object-valued ones.
  json cr = J(R"({"spec":{"data":{"a":{"x":1}},"plain":{"a":{"x":1}}}})");
  auto maps = [](const std::string& p) {
    ListKeys k;
    if (p == "spec.data") k.map_type = "map";
    return std::make_shared<const ListKeys>(k);
  };
  CHECK(api::field_set(cr, maps) ==
        J(R"({"f:spec":{"f:data":{"f:a":{".":{},"f:x":{}}},"f:plain":{"f:a":{"f:x":{}}}}})"));
}

TEST_CASE("second apply that drops a container env var removes it") {
  json cfg = deployment(2, "nginx:1");
  cfg["spec"]["template"]["spec"]["containers"][0]["env"] = J(R"([{"name":"A","value":"1"},{"name":"B","value":"2"}])");
  json live = stored(apply_ok(nullptr, cfg, "mgr", false, kT1));
  CHECK(live["spec"]["template"]["spec"]["containers"][0]["env"].size() == 2);

  json cfg2 = cfg;
  cfg2["spec"]["template"]["spec"]["containers"][0]["env"] = J(R"([{"name":"A","value":"1"}])");
  json out = apply_ok(live, cfg2, "mgr", false, kT2);
  CHECK(out["spec"]["template"]["spec"]["containers"][0]["env"] == J(R"([{"name":"A","value":"1"}])"));
  json c = fields_of(out, "mgr", "Apply")["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"];
  CHECK(c["f:env"] == J(R"({"k:{\"name\":\"A\"}":{".":{},"f:name":{},"f:value":{}}})"));
  CHECK(out["metadata"]["uid"] == live["metadata"]["uid"]);  // untracked fields survive pruning
  CHECK(entry(out, "mgr", "Apply")->at("time") == kT2);

  // Dropping the whole env list removes it; a field the applier never set stays.
  json live2 = out;
  live2["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Always";
  json cfg3 = deployment(2, "nginx:1");
  json out3 = apply_ok(live2, cfg3, "mgr", false, kT3);
  CHECK_FALSE(out3["spec"]["template"]["spec"]["containers"][0].contains("env"));
  CHECK(out3["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Always");
}

TEST_CASE("an updater's field conflicts with an applier; force takes it over") {
  json created = stored(deployment(3, "nginx:1"));
  auto c = api::record_update(nullptr, created, "kubectl-client-side-apply", "apps/v1", "", kT1, lookup, {"status"});
  REQUIRE(c.ok());
  json live = *c;

  json cfg = deployment(5, "nginx:1");
  auto r = api::server_side_apply(live, cfg, "m", false, "apps/v1", kT2, lookup, deploy_opts());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().reason() == Reason::Conflict);
  CHECK(berth::api::http_code(r.status().reason()) == 409);
  CHECK(r.status().message() ==
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas");
  REQUIRE(r.status().causes().size() == 1);
  CHECK(r.status().causes()[0].reason == "FieldManagerConflict");
  CHECK(r.status().causes()[0].message == "conflict with \"kubectl-client-side-apply\" using apps/v1");
  CHECK(r.status().causes()[0].field == ".spec.replicas");

  // Two conflicting fields: grouped by manager, one path per line.
  json cfg2 = deployment(5, "nginx:2");
  auto r2 = api::server_side_apply(live, cfg2, "m", false, "apps/v1", kT2, lookup, deploy_opts());
  REQUIRE_FALSE(r2.ok());
  CHECK(r2.status().message() ==
        "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n"
        "- .spec.replicas\n"
        "- .spec.template.spec.containers[name=\"web\"].image");
  REQUIRE(r2.status().causes().size() == 2);
  CHECK(r2.status().causes()[1].field == ".spec.template.spec.containers[name=\"web\"].image");

  // Same values: no conflict, shared ownership.
  json shared = apply_ok(live, deployment(3, "nginx:1"), "m", false, kT2);
  CHECK(fields_of(shared, "m", "Apply")["f:spec"].contains("f:replicas"));
  CHECK(fields_of(shared, "kubectl-client-side-apply", "Update")["f:spec"].contains("f:replicas"));

  // Force: the value changes and ownership moves.
  json forced = apply_ok(live, cfg, "m", true, kT2);
  CHECK(forced["spec"]["replicas"] == 5);
  CHECK(fields_of(forced, "m", "Apply")["f:spec"].contains("f:replicas"));
  CHECK_FALSE(fields_of(forced, "kubectl-client-side-apply", "Update")["f:spec"].contains("f:replicas"));
  CHECK(fields_of(forced, "kubectl-client-side-apply", "Update")["f:spec"].contains("f:selector"));
  // Apply entries sort before Update entries.
  CHECK(forced["metadata"]["managedFields"][0]["operation"] == "Apply");
}

TEST_CASE("conflicts between two appliers name the applier without a version") {
  json live = stored(apply_ok(nullptr, deployment(3, "nginx:1"), "team-a", false, kT1));
  auto r = api::server_side_apply(live, deployment(4, "nginx:1"), "team-b", false, "apps/v1", kT2, lookup,
                                  deploy_opts());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "Apply failed with 1 conflict: conflict with \"team-a\": .spec.replicas");
}

TEST_CASE("an update by another manager steals ownership of what it changes") {
  json live = stored(apply_ok(nullptr, deployment(3, "nginx:1"), "m1", false, kT1));
  json scaled = live;
  scaled["spec"]["replicas"] = 7;
  auto u = api::record_update(live, scaled, "hpa", "apps/v1", "", kT2, lookup, {"status"});
  REQUIRE(u.ok());
  json after = *u;
  CHECK(fields_of(after, "hpa", "Update") == J(R"({"f:spec":{"f:replicas":{}}})"));
  CHECK(entry(after, "hpa", "Update")->at("time") == kT2);
  CHECK_FALSE(fields_of(after, "m1", "Apply")["f:spec"].contains("f:replicas"));
  CHECK(entry(after, "m1", "Apply")->at("time") == kT1);

  // An update that changes nothing adds no entry.
  auto noop = api::record_update(after, after, "someone", "apps/v1", "", kT3, lookup, {"status"});
  REQUIRE(noop.ok());
  CHECK(entry(*noop, "someone", "Update") == nullptr);
  CHECK((*noop)["metadata"]["managedFields"] == after["metadata"]["managedFields"]);

  // m1 dropping replicas from its config leaves the hpa's value alone.
  json cfg = deployment(3, "nginx:1");
  cfg["spec"].erase("replicas");
  json out = apply_ok(after, cfg, "m1", false, kT3);
  CHECK(out["spec"]["replicas"] == 7);

  // A status update through the subresource is recorded with it.
  json st = after;
  st["status"] = J(R"({"replicas":7})");
  auto s = api::record_update(after, st, "kube-controller-manager", "apps/v1", "status", kT3, lookup, {"spec"});
  REQUIRE(s.ok());
  const json* e = entry(*s, "kube-controller-manager", "Update");
  REQUIRE(e != nullptr);
  CHECK((*e)["subresource"] == "status");
  CHECK((*e)["fieldsV1"] == J(R"({"f:status":{".":{},"f:replicas":{}}})"));
}

TEST_CASE("set lists (finalizers) are unioned across appliers and pruned per owner") {
  json a = J(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","finalizers":["x/a"]}})");
  json b = J(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","finalizers":["x/b"]}})");
  json live = stored(apply_ok(nullptr, a, "ma", false, kT1));
  json both = apply_ok(live, b, "mb", false, kT2);
  CHECK(both["metadata"]["finalizers"] == J(R"(["x/a","x/b"])"));
  CHECK(fields_of(both, "ma", "Apply") == J(R"({"f:metadata":{"f:finalizers":{"v:\"x/a\"":{}}}})"));
  CHECK(fields_of(both, "mb", "Apply") == J(R"({"f:metadata":{"f:finalizers":{"v:\"x/b\"":{}}}})"));

  json a2 = J(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"}})");
  json out = apply_ok(both, a2, "ma", false, kT3);
  CHECK(out["metadata"]["finalizers"] == J(R"(["x/b"])"));
  CHECK(entry(out, "ma", "Apply") == nullptr);  // nothing left to own
  CHECK(out["metadata"]["uid"] == live["metadata"]["uid"]);
}

TEST_CASE("keyed lists merge by name and each applier owns its item") {
  json a = deployment(1, "nginx:1");
  json b = J(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
    "spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"envoy:1"}]}}}})");
  json live = stored(apply_ok(nullptr, a, "app", false, kT1));
  json out = apply_ok(live, b, "mesh", false, kT2);
  const json& cs = out["spec"]["template"]["spec"]["containers"];
  REQUIRE(cs.size() == 2);
  CHECK(cs[0]["name"] == "web");
  CHECK(cs[1] == J(R"({"name":"sidecar","image":"envoy:1"})"));
  CHECK(fields_of(out, "mesh", "Apply") == J(R"({"f:spec":{"f:template":{"f:spec":{"f:containers":
    {"k:{\"name\":\"sidecar\"}":{".":{},"f:image":{},"f:name":{}}}}}}})"));

  // Changing the other applier's item is a conflict on that item's field only.
  json b2 = b;
  b2["spec"]["template"]["spec"]["containers"].push_back(J(R"({"name":"web","image":"nginx:2"})"));
  auto r = api::server_side_apply(out, b2, "mesh", false, "apps/v1", kT3, lookup, deploy_opts());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() ==
        "Apply failed with 1 conflict: conflict with \"app\": .spec.template.spec.containers[name=\"web\"].image");

  // Duplicate keys in an applied body are rejected before merging.
  json dup = b;
  dup["spec"]["template"]["spec"]["containers"].push_back(J(R"({"name":"sidecar","image":"x"})"));
  auto d = api::server_side_apply(out, dup, "mesh", false, "apps/v1", kT3, lookup, deploy_opts());
  REQUIRE_FALSE(d.ok());
  CHECK(d.status().message() ==
        "failed to create typed patch object (/web; apps/v1, Kind=Deployment): .spec.template.spec.containers: "
        "duplicate entries for key [name=\"sidecar\"]");
}

TEST_CASE("bad apply bodies are rejected as upstream does") {
  auto r = api::server_side_apply(nullptr, J(R"({"metadata":{"name":"web"}})"), "m", false, "apps/v1", kT1, lookup,
                                  deploy_opts());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().reason() == Reason::BadRequest);
  CHECK(r.status().message() == "invalid object type: /, Kind=");

  json svc = J(R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"web"}})");
  r = api::server_side_apply(nullptr, svc, "m", false, "apps/v1", kT1, lookup, deploy_opts());
  CHECK(r.status().message() == "invalid object type: /v1, Kind=Service");

  json wrong_kind = J(R"({"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"web"}})");
  r = api::server_side_apply(nullptr, wrong_kind, "m", false, "apps/v1", kT1, lookup, deploy_opts());
  CHECK(r.status().message() == "invalid object type: apps/v1, Kind=StatefulSet");

  json with_mf = deployment(1, "a");
  with_mf["metadata"]["managedFields"] = json::array();
  r = api::server_side_apply(nullptr, with_mf, "m", false, "apps/v1", kT1, lookup, deploy_opts());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().reason() == Reason::BadRequest);
  CHECK(r.status().message() == "metadata.managedFields must be nil");

  ApplyOptions url = deploy_opts();
  url.url_name = "web";
  url.url_namespace = "default";
  json no_name = deployment(1, "a");
  no_name["metadata"].erase("name");
  r = api::server_side_apply(nullptr, no_name, "m", false, "apps/v1", kT1, lookup, url);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "the name of the object () does not match the name on the URL (web)");
  json other_ns = deployment(1, "a");
  other_ns["metadata"]["namespace"] = "prod";
  r = api::server_side_apply(nullptr, other_ns, "m", false, "apps/v1", kT1, lookup, url);
  CHECK(r.status().message() == "the namespace of the provided object does not match the namespace sent on the request");
  json ok = deployment(1, "a");
  ok["metadata"].erase("namespace");
  r = api::server_side_apply(nullptr, ok, "m", false, "apps/v1", kT1, lookup, url);
  REQUIRE(r.ok());
  CHECK((*r)["metadata"]["namespace"] == "default");

  // An item of a keyed list without its key.
  json no_key = deployment(1, "a");
  no_key["spec"]["template"]["spec"]["containers"].push_back(J(R"({"image":"b"})"));
  r = api::server_side_apply(nullptr, no_key, "m", false, "apps/v1", kT1, lookup, deploy_opts());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() ==
        "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
        ".spec.template.spec.containers: element 1: associative list with keys has an element that omits key "
        "field \"name\" (and doesn't have default value)");
}

TEST_CASE("status is not tracked on the main resource and explicit nulls unset fields") {
  json cfg = deployment(1, "a");
  cfg["status"] = J(R"({"replicas":4})");
  cfg["spec"]["paused"] = nullptr;
  cfg["spec"]["template"]["metadata"]["creationTimestamp"] = nullptr;
  json out = apply_ok(nullptr, cfg, "m", false, kT1);
  json f = fields_of(out, "m", "Apply");
  CHECK_FALSE(f.contains("f:status"));
  CHECK(f["f:spec"].contains("f:paused"));  // owned as "unset"
  CHECK(f["f:spec"]["f:template"]["f:metadata"].contains("f:creationTimestamp"));
  CHECK_FALSE(out["spec"].contains("paused"));
}

TEST_CASE("a no-op apply keeps the entry's time; managed fields can be reset") {
  json live = stored(apply_ok(nullptr, deployment(2, "a"), "m", false, kT1));
  json same = apply_ok(live, deployment(2, "a"), "m", false, kT2);
  CHECK(entry(same, "m", "Apply")->at("time") == kT1);
  CHECK(same == live);

  // A new applier of identical values gets an entry without a time.
  json shared = apply_ok(live, deployment(2, "a"), "m2", false, kT2);
  CHECK_FALSE(entry(shared, "m2", "Apply")->contains("time"));

  // [{}] (or []) in an update resets managedFields; an untracked object stays untracked.
  json reset = live;
  reset["metadata"]["managedFields"] = J("[{}]");
  reset["spec"]["replicas"] = 9;
  auto u = api::record_update(live, reset, "kubectl-edit", "apps/v1", "", kT2, lookup, {"status"});
  REQUIRE(u.ok());
  CHECK_FALSE((*u)["metadata"].contains("managedFields"));
  CHECK((*u)["spec"]["replicas"] == 9);
  json empty = live;
  empty["metadata"]["managedFields"] = json::array();
  CHECK_FALSE((*api::record_update(live, empty, "x", "apps/v1", "", kT2, lookup))["metadata"].contains("managedFields"));

  // Managed fields sent back unchanged (a GET-modify-PUT) are kept; absent ones come from live.
  json put = live;
  put["spec"]["replicas"] = 4;
  auto p = api::record_update(live, put, "kubectl-edit", "apps/v1", "", kT2, lookup, {"status"});
  REQUIRE(p.ok());
  CHECK(fields_of(*p, "kubectl-edit", "Update") == J(R"({"f:spec":{"f:replicas":{}}})"));
  json put2 = live;
  put2["metadata"].erase("managedFields");
  put2["spec"]["replicas"] = 4;
  CHECK((*api::record_update(live, put2, "kubectl-edit", "apps/v1", "", kT2, lookup))["metadata"]["managedFields"] ==
        (*p)["metadata"]["managedFields"]);

  // Applying to an object nobody tracked makes its fields "before-first-apply"'s.
  json untracked = *u;
  auto r = api::server_side_apply(untracked, deployment(3, "a"), "m", false, "apps/v1", kT3, lookup, deploy_opts());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() ==
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using apps/v1: .spec.replicas");
}

TEST_CASE("kubectl upgrading from client-side apply takes over last-applied fields") {
  json cfg = deployment(3, "nginx:1");
  json created = stored(cfg);
  json la = cfg;
  created["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = la.dump() + "\n";
  auto c = api::record_update(nullptr, created, "kubectl-client-side-apply", "apps/v1", "", kT1, lookup, {"status"});
  REQUIRE(c.ok());

  json cfg2 = deployment(4, "nginx:1");
  // Another manager name gets the conflict ...
  CHECK_FALSE(api::server_side_apply(*c, cfg2, "my-manager", false, "apps/v1", kT2, lookup, deploy_opts()).ok());
  // ... kubectl does not, and the annotation follows what it applied.
  json out = apply_ok(*c, cfg2, "kubectl", false, kT2);
  CHECK(out["spec"]["replicas"] == 4);
  CHECK(fields_of(out, "kubectl", "Apply")["f:spec"].contains("f:replicas"));
  CHECK_FALSE(fields_of(out, "kubectl-client-side-apply", "Update")["f:spec"].contains("f:replicas"));
  std::string ann = out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"];
  CHECK(ann.back() == '\n');
  CHECK(json::parse(ann) == cfg2);

  // A field changed behind the annotation's back (kubectl scale) still conflicts.
  json scaled = *c;
  scaled["spec"]["replicas"] = 6;
  auto s = api::record_update(*c, scaled, "kubectl", "apps/v1", "", kT2, lookup, {"status"});
  REQUIRE(s.ok());
  auto r = api::server_side_apply(*s, cfg2, "kubectl", false, "apps/v1", kT3, lookup, deploy_opts());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1: .spec.replicas");
}

TEST_CASE("update managers are capped at ten, oldest merged into ancient-changes") {
  json obj = stored(J(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"k0":"v"}})"));
  auto first = api::record_update(nullptr, obj, "writer-0", "v1", "", "2024-05-01T10:00:00Z", lookup);
  REQUIRE(first.ok());
  obj = *first;
  for (int i = 1; i <= 10; ++i) {
    json next = obj;
    next["data"]["k" + std::to_string(i)] = "v";
    char t[32];
    std::snprintf(t, sizeof t, "2024-05-01T10:%02d:00Z", i);
    auto r = api::record_update(obj, next, "writer-" + std::to_string(i), "v1", "", t, lookup);
    REQUIRE(r.ok());
    obj = *r;
    CHECK(obj["metadata"]["managedFields"].size() == std::min(i + 1, 10));
  }
  const json& mf = obj["metadata"]["managedFields"];
  CHECK(mf.size() == 10);
  const json* ancient = entry(obj, "ancient-changes", "Update");
  REQUIRE(ancient != nullptr);
  CHECK((*ancient)["fieldsV1"] == J(R"({"f:data":{".":{},"f:k0":{},"f:k1":{}}})"));
  CHECK((*ancient)["time"] == "2024-05-01T10:01:00Z");
  CHECK(entry(obj, "writer-0", "Update") == nullptr);
  CHECK(entry(obj, "writer-1", "Update") == nullptr);
  CHECK(mf[0]["manager"] == "ancient-changes");
}

TEST_CASE("read and write managedFields") {
  json obj = J(R"({"metadata":{"managedFields":[
    {"manager":"b","operation":"Update","apiVersion":"v1","time":"2024-05-01T10:00:00.5+02:00","fieldsType":"FieldsV1",
     "fieldsV1":{"f:data":{"f:x":{}}}},
    {"manager":"a","operation":"Apply","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{"f:data":{}}}]}})");
  auto r = api::read_managed_fields(obj);
  REQUIRE(r.ok());
  REQUIRE(r->size() == 2);
  CHECK((*r)[0].manager == "b");
  CHECK((*r)[0].time == "2024-05-01T08:00:00Z");
  CHECK((*r)[1].operation == "Apply");
  json out = json::object();
  api::write_managed_fields(out, *r);
  CHECK(out["metadata"]["managedFields"][0]["manager"] == "a");  // Apply first
  CHECK_FALSE(out["metadata"]["managedFields"][0].contains("time"));
  api::write_managed_fields(out, {});
  CHECK_FALSE(out["metadata"].contains("managedFields"));

  json bad = J(R"({"metadata":{"managedFields":[{"manager":"a","operation":"Patch","apiVersion":"v1",
    "fieldsType":"FieldsV1"}]}})");
  CHECK(api::read_managed_fields(bad).status().message() == "operation must be `Apply` or `Update`");
  bad["metadata"]["managedFields"][0]["operation"] = "Update";
  bad["metadata"]["managedFields"][0]["fieldsType"] = "FieldsV2";
  CHECK(api::read_managed_fields(bad).status().message() == "invalid fieldsType \"FieldsV2\" in managed fields entry 0");
}

namespace {

// Objects drawn from a small vocabulary, so that two of them share some fields and differ in
// others: struct fields, a granular map, a keyed list (with a defaulted key, duplicates and
// items missing a key), a set, atomic lists and maps, nulls and empty values.
struct ObjectGen {
  uint64_t state;
  unsigned next(unsigned n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<unsigned>((state >> 33) % n);
  }
  bool coin(unsigned in) { return next(in) == 0; }
  json scalar() {
    switch (next(6)) {
      case 0: return nullptr;
      case 1: return static_cast<int>(next(3));
      case 2: return next(2) == 0;
      case 3: return json::object();
      case 4: return json::array();
      default: return std::string(1, static_cast<char>('a' + next(3)));
    }
  }
  json free_tree(int depth) {
    if (depth == 0 || coin(3)) return scalar();
    if (coin(2)) {
      json a = json::array();
      for (unsigned i = next(3); i > 0; --i) a.push_back(free_tree(depth - 1));
      return a;
    }
    json o = json::object();
    for (unsigned i = next(3); i > 0; --i) o[std::string(1, static_cast<char>('p' + next(3)))] = free_tree(depth - 1);
    return o;
  }
  json container() {
    json c = json::object();
    if (!coin(12)) c["name"] = std::string("c") + std::to_string(next(3));
    if (coin(2)) c["image"] = std::string("img") + std::to_string(next(2));
    if (coin(3)) {
      c["env"] = json::array();
      for (unsigned i = next(3); i > 0; --i) c["env"].push_back({{"name", "E" + std::to_string(next(3))}, {"value", next(2)}});
    }
    if (coin(3)) {
      c["ports"] = json::array();
      for (unsigned i = next(3); i > 0; --i) {
        json p = {{"containerPort", 80 + next(2)}};
        if (coin(2)) p["protocol"] = coin(2) ? "TCP" : "UDP";
        c["ports"].push_back(p);
      }
    }
    if (coin(3)) c["args"] = {"a", next(2)};
    if (coin(4)) c["resources"] = json::object();
    return c;
  }
  json object() {
    json o = json::object();
    if (coin(2)) o["apiVersion"] = "apps/v1";
    if (coin(2)) o["kind"] = "Deployment";
    json md = json::object();
    if (coin(2)) md["name"] = "web";
    if (coin(2)) md["generation"] = next(3);
    if (coin(2)) {
      md["labels"] = json::object();
      for (unsigned i = next(3); i > 0; --i) md["labels"]["l" + std::to_string(next(3))] = coin(5) ? json() : json("v");
    }
    if (coin(3)) {
      md["finalizers"] = json::array();
      for (unsigned i = next(3); i > 0; --i) md["finalizers"].push_back(coin(8) ? json(1) : json("f" + std::to_string(next(3))));
    }
    if (coin(3)) md["annotations"] = free_tree(2);
    if (!md.empty() || coin(2)) o["metadata"] = md;
    if (coin(5)) {
      o["spec"] = coin(3) ? json() : free_tree(1);
    } else {
      json spec = json::object();
      if (coin(2)) spec["replicas"] = next(3);
      if (coin(3)) spec["selector"] = {{"matchLabels", {{"app", std::to_string(next(2))}}}};
      if (coin(6)) {
        spec["selector"]["items"] = json::array();
        for (unsigned i = next(3); i > 0; --i)
          spec["selector"]["items"].push_back(coin(6) ? json::object() : json{{"name", std::to_string(next(2))}});
      }
      json pod = json::object();
      if (coin(4)) {
        pod["containers"] = coin(2) ? json() : json::array();
      } else {
        pod["containers"] = json::array();
        for (unsigned i = next(4); i > 0; --i) pod["containers"].push_back(container());
      }
      if (coin(3)) pod["extra"] = free_tree(3);
      spec["template"] = {{"spec", pod}};
      if (coin(4)) spec["template"]["metadata"] = {{"labels", {{"app", "x"}}}};
      o["spec"] = spec;
    }
    if (coin(2)) o["status"] = free_tree(3);
    return o;
  }
};

std::shared_ptr<const ListKeys> gen_lookup(const std::string& p) {
  // Keyed lists also inside an atomic map (spec.selector) and under ignored paths: the new
  // object must convert there too, though no ownership is recorded below them.
  if (p == "spec.selector.items") return std::make_shared<const ListKeys>(list_of("map", {"name"}));
  if (p == "status.q" || p == "metadata.annotations.q") return std::make_shared<const ListKeys>(list_of("map", {"p"}));
  if (p == "metadata.labels") {
    ListKeys k = list_of("atomic");
    k.map_type = "map";
    return std::make_shared<const ListKeys>(k);
  }
  return lookup(p);
}

const json* entry_of(const json& obj, const std::string& manager) {
  if (!obj.contains("metadata") || !obj["metadata"].contains("managedFields")) return nullptr;
  for (const auto& e : obj["metadata"]["managedFields"])
    if (e.value("manager", "") == manager) return &e;
  return nullptr;
}

}  // namespace

TEST_CASE("record_update: a first manager's entry matches the one built through field sets") {
  // With no managers yet, record_update builds the entry straight from the compare walk. With
  // another manager present (owning a field neither object has, so it changes nothing) it takes
  // the general route through field sets. The new manager's entry must be the same either way.
  const json other = J(R"([{"manager":"other","operation":"Update","apiVersion":"apps/v1",
    "time":"2024-05-01T09:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:neverGenerated":{}}}])");
  ObjectGen gen{12345};
  int tracked = 0, untracked = 0;
  for (int i = 0; i < 3000; ++i) {
    json live = i % 3 == 0 ? J(R"({"metadata":{"creationTimestamp":null},"spec":{"template":{"spec":{"containers":null}}},"status":{}})")
                           : gen.object();
    json next = gen.object();
    std::vector<std::string> ignored = i % 2 ? std::vector<std::string>{"status"}
                                             : std::vector<std::string>{"status", "spec.template.spec.extra", "metadata.annotations"};
    auto direct = api::record_update(live, next, "m", "apps/v1", "", kT1, gen_lookup, ignored);
    json with_other = next;
    with_other["metadata"]["managedFields"] = other;
    auto general = api::record_update(live, with_other, "m", "apps/v1", "", kT1, gen_lookup, ignored);
    REQUIRE(direct.ok());
    REQUIRE(general.ok());
    INFO("live: " << live.dump());
    INFO("new: " << next.dump());
    const json* d = entry_of(*direct, "m");
    const json* g = entry_of(*general, "m");
    REQUIRE((d == nullptr) == (g == nullptr));
    if (d) {
      CHECK(d->dump() == g->dump());
      ++tracked;
    } else {
      ++untracked;
    }
    json d_rest = *direct, g_rest = *general;
    for (json* rest : {&d_rest, &g_rest})
      if (rest->contains("metadata")) (*rest)["metadata"].erase("managedFields");
    if (d_rest.contains("metadata") && d_rest["metadata"].empty() && !next.contains("metadata"))
      d_rest.erase("metadata");
    if (g_rest.contains("metadata") && g_rest["metadata"].empty() && !next.contains("metadata"))
      g_rest.erase("metadata");
    CHECK(d_rest == g_rest);
  }
  // The generator reaches both outcomes often.
  CHECK(tracked > 1000);
  CHECK(untracked > 100);
}
