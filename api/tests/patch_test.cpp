#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "api/patch.h"

using berth::api::apply_json_patch;
using berth::api::apply_json_patch_detailed;
using berth::api::apply_merge_patch;
using berth::api::apply_strategic_merge_patch;
using berth::api::apply_strategic_merge_patch_detailed;
using berth::api::http_code;
using berth::api::kPatchRejectedMessage;
using berth::api::PatchMeta;
using berth::api::PatchMetaLookup;
using berth::api::Reason;
using nlohmann::json;

namespace {

json J(const char* s) { return json::parse(s); }

json jp_ok(const char* doc, const char* patch) {
  auto r = apply_json_patch(J(doc), J(patch));
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  return r.value();
}

// A json patch that must fail to apply: 422 Invalid with the generic message; returns the library's text.
std::string jp_rejected(const char* doc, const char* patch) {
  std::string detail;
  auto r = apply_json_patch_detailed(J(doc), J(patch), &detail);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().reason() == Reason::Invalid);
  CHECK(http_code(r.status().reason()) == 422);
  CHECK(r.status().message() == kPatchRejectedMessage);
  CHECK(r.status().causes().empty());
  return detail;
}

json mp_ok(const char* doc, const char* patch) {
  auto r = apply_merge_patch(J(doc), J(patch));
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  return r.value();
}

// The patch metadata of the Kubernetes types these tests use (from their x-kubernetes-patch-* extensions).
PatchMeta k8s_meta(const std::string& path) {
  auto ends = [&](const std::string& suffix) {
    return path.size() >= suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (path == "metadata.finalizers") return {"merge", ""};
  if (path == "metadata.ownerReferences") return {"merge", "uid"};
  if (ends("spec.containers") || ends("spec.initContainers")) return {"merge", "name"};
  if (ends("containers.env")) return {"merge", "name"};
  if (ends("containers.ports")) return {"merge", "containerPort"};
  if (ends("containers.volumeMounts")) return {"merge", "mountPath"};
  if (ends("spec.volumes")) return {"merge,retainKeys", "name"};
  if (path == "spec.strategy") return {"retainKeys", ""};
  if (path == "mergingList") return {"merge", "name"};
  if (path == "mergingIntList") return {"merge", ""};
  return {};
}

json smp_ok(const json& doc, const json& patch, const PatchMetaLookup& meta = k8s_meta) {
  auto r = apply_strategic_merge_patch(doc, patch, meta);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  return r.value();
}

json deployment() {
  return J(R"({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default", "generation": 1,
                 "annotations": {"deployment.kubernetes.io/revision": "1"}},
    "spec": {
      "replicas": 2,
      "selector": {"matchLabels": {"app": "web"}},
      "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
      "template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {
          "containers": [
            {"name": "web", "image": "nginx:1.25", "imagePullPolicy": "IfNotPresent",
             "args": ["-g", "daemon off;"],
             "ports": [{"containerPort": 80, "protocol": "TCP"}],
             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
             "terminationMessagePath": "/dev/termination-log"},
            {"name": "sidecar", "image": "busybox:1.36", "args": ["sleep", "infinity"]}
          ],
          "volumes": [{"name": "data", "emptyDir": {}}],
          "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"
        }
      }
    }
  })");
}

const json& containers(const json& d) { return d["spec"]["template"]["spec"]["containers"]; }

}  // namespace

// ------------------------------------------------------------------------------------------------------------
TEST_SUITE("json patch (RFC 6902, evanphx/json-patch v4 semantics)") {
  TEST_CASE("RFC 6902 A.1 adding an object member") {
    CHECK(jp_ok(R"({"foo":"bar"})", R"([{"op":"add","path":"/baz","value":"qux"}])") ==
          J(R"({"baz":"qux","foo":"bar"})"));
  }
  TEST_CASE("RFC 6902 A.2 adding an array element") {
    CHECK(jp_ok(R"({"foo":["bar","baz"]})", R"([{"op":"add","path":"/foo/1","value":"qux"}])") ==
          J(R"({"foo":["bar","qux","baz"]})"));
  }
  TEST_CASE("RFC 6902 A.3 removing an object member") {
    CHECK(jp_ok(R"({"baz":"qux","foo":"bar"})", R"([{"op":"remove","path":"/baz"}])") == J(R"({"foo":"bar"})"));
  }
  TEST_CASE("RFC 6902 A.4 removing an array element") {
    CHECK(jp_ok(R"({"foo":["bar","qux","baz"]})", R"([{"op":"remove","path":"/foo/1"}])") ==
          J(R"({"foo":["bar","baz"]})"));
  }
  TEST_CASE("RFC 6902 A.5 replacing a value") {
    CHECK(jp_ok(R"({"baz":"qux","foo":"bar"})", R"([{"op":"replace","path":"/baz","value":"boo"}])") ==
          J(R"({"baz":"boo","foo":"bar"})"));
  }
  TEST_CASE("RFC 6902 A.6 moving a value") {
    CHECK(jp_ok(R"({"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}})",
                R"([{"op":"move","from":"/foo/waldo","path":"/qux/thud"}])") ==
          J(R"({"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}})"));
  }
  TEST_CASE("RFC 6902 A.7 moving an array element") {
    CHECK(jp_ok(R"({"foo":["all","grass","cows","eat"]})", R"([{"op":"move","from":"/foo/1","path":"/foo/3"}])") ==
          J(R"({"foo":["all","cows","eat","grass"]})"));
  }
  TEST_CASE("RFC 6902 A.8 testing a value: success") {
    CHECK(jp_ok(R"({"baz":"qux","foo":["a",2,"c"]})",
                R"([{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}])") ==
          J(R"({"baz":"qux","foo":["a",2,"c"]})"));
  }
  TEST_CASE("RFC 6902 A.9 testing a value: error is 422 with the generic message") {
    CHECK(jp_rejected(R"({"baz":"qux"})", R"([{"op":"test","path":"/baz","value":"bar"}])") ==
          "testing value /baz failed: test failed");
  }
  TEST_CASE("a failed test stops the whole patch") {
    std::string detail;
    auto r = apply_json_patch_detailed(
        J(R"({"spec":{"replicas":2}})"),
        J(R"([{"op":"replace","path":"/spec/replicas","value":5},{"op":"test","path":"/spec/replicas","value":2}])"),
        &detail);
    REQUIRE_FALSE(r.ok());
    CHECK(detail == "testing value /spec/replicas failed: test failed");
  }
  TEST_CASE("RFC 6902 A.10 adding a nested member object") {
    CHECK(jp_ok(R"({"foo":"bar"})", R"([{"op":"add","path":"/child","value":{"grandchild":{}}}])") ==
          J(R"({"foo":"bar","child":{"grandchild":{}}})"));
  }
  TEST_CASE("RFC 6902 A.11 ignoring unrecognized elements") {
    CHECK(jp_ok(R"({"foo":"bar"})", R"([{"op":"add","path":"/baz","value":"qux","xyz":123}])") ==
          J(R"({"foo":"bar","baz":"qux"})"));
  }
  TEST_CASE("RFC 6902 A.12 adding to a nonexistent target") {
    CHECK(jp_rejected(R"({"foo":"bar"})", R"([{"op":"add","path":"/baz/bat","value":"qux"}])") ==
          "add operation does not apply: doc is missing path: \"/baz/bat\": missing value");
  }
  TEST_CASE("RFC 6902 A.14 ~ escape ordering") {
    CHECK(jp_ok(R"({"/":9,"~1":10})", R"([{"op":"test","path":"/~01","value":10}])") == J(R"({"/":9,"~1":10})"));
  }
  TEST_CASE("RFC 6902 A.15 comparing strings and numbers") {
    CHECK(jp_rejected(R"({"/":9,"~1":10})", R"([{"op":"test","path":"/~01","value":"10"}])") ==
          "testing value /~01 failed: test failed");
  }
  TEST_CASE("RFC 6902 A.16 adding an array value") {
    CHECK(jp_ok(R"({"foo":["bar"]})", R"([{"op":"add","path":"/foo/-","value":["abc","def"]}])") ==
          J(R"({"foo":["bar",["abc","def"]]})"));
  }
  TEST_CASE("escaped pointers: ~1 is / and ~0 is ~ (label keys with slashes)") {
    auto out = jp_ok(R"({"metadata":{"labels":{"app.kubernetes.io/name":"web","a~b":"x"}}})",
                     R"([{"op":"replace","path":"/metadata/labels/app.kubernetes.io~1name","value":"api"},
                         {"op":"remove","path":"/metadata/labels/a~0b"}])");
    CHECK(out == J(R"({"metadata":{"labels":{"app.kubernetes.io/name":"api"}}})"));
  }
  TEST_CASE("copy, negative index and append") {
    auto out = jp_ok(R"({"a":[1,2,3],"b":{}})", R"([
        {"op":"copy","from":"/a/-1","path":"/b/last"},
        {"op":"add","path":"/a/-","value":4},
        {"op":"remove","path":"/a/-4"}])");
    CHECK(out == J(R"({"a":[2,3,4],"b":{"last":3}})"));
  }
  TEST_CASE("test against null and an absent member") {
    CHECK(jp_ok(R"({"a":null})", R"([{"op":"test","path":"/a","value":null},{"op":"test","path":"/b","value":null}])") ==
          J(R"({"a":null})"));
    CHECK(jp_rejected(R"({"a":1})", R"([{"op":"test","path":"/a","value":null}])") ==
          "testing value /a failed: test failed");
    CHECK(jp_rejected(R"({"a":1})", R"([{"op":"test","path":"/a","value":1.0}])") ==
          "testing value /a failed: test failed");
  }
  TEST_CASE("remove of a missing member and of a missing path") {
    CHECK(jp_rejected(R"({"metadata":{"labels":{}}})", R"([{"op":"remove","path":"/metadata/labels/app"}])") ==
          "error in remove for path: '/metadata/labels/app': Unable to remove nonexistent key: app: missing value");
    CHECK(jp_rejected(R"({"metadata":{}})", R"([{"op":"remove","path":"/metadata/labels/app"}])") ==
          "remove operation does not apply: doc is missing path: \"/metadata/labels/app\": missing value");
    CHECK(jp_rejected(R"({"a":[1]})", R"([{"op":"remove","path":"/a/1"}])") ==
          "error in remove for path: '/a/1': Unable to access invalid index: 1: invalid index referenced");
  }
  TEST_CASE("replace: missing path fails, a missing object key is added (upstream quirk)") {
    CHECK(jp_rejected(R"({"spec":{}})", R"([{"op":"replace","path":"/spec/template/spec","value":{}}])") ==
          "replace operation does not apply: doc is missing path: /spec/template/spec: missing value");
    CHECK(jp_rejected(R"({"a":[1]})", R"([{"op":"replace","path":"/a/3","value":2}])") ==
          "replace operation does not apply: doc is missing key: /a/3: missing value");
    CHECK(jp_ok(R"({"spec":{}})", R"([{"op":"replace","path":"/spec/replicas","value":3}])") ==
          J(R"({"spec":{"replicas":3}})"));
  }
  TEST_CASE("add with a bad array index, move from a missing key") {
    CHECK(jp_rejected(R"({"a":[]})", R"([{"op":"add","path":"/a/x","value":1}])") ==
          "error in add for path: '/a/x': value was not a proper array index: 'x': strconv.Atoi: parsing \"x\": "
          "invalid syntax");
    CHECK(jp_rejected(R"({"a":[]})", R"([{"op":"add","path":"/a/2","value":1}])") ==
          "error in add for path: '/a/2': Unable to access invalid index: 2: invalid index referenced");
    CHECK(jp_rejected(R"({"a":{}})", R"([{"op":"move","from":"/a/x","path":"/b"}])") ==
          "error in move for path: 'x': Unable to remove nonexistent key: x: missing value");
  }
  TEST_CASE("an unknown op is 422 'Unexpected kind'") {
    CHECK(jp_rejected(R"({})", R"([{"op":"frobnicate","path":"/a"}])") == "Unexpected kind: frobnicate");
    CHECK(jp_rejected(R"({})", R"([{"path":"/a"}])") == "Unexpected kind: unknown");
  }
  TEST_CASE("a body that is not a list of operations is 400") {
    auto r = apply_json_patch(J("{}"), J(R"({"op":"add"})"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().reason() == Reason::BadRequest);
    CHECK(r.status().message() ==
          "error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp");
    auto r2 = apply_json_patch(J("{}"), J(R"([{"op":"add","path":5}])"));
    REQUIRE_FALSE(r2.ok());
    CHECK(r2.status().reason() == Reason::BadRequest);
    CHECK(r2.status().message() ==
          "error decoding patch: json: cannot unmarshal number into Go struct field jsonPatchOp.path of type string");
  }
  TEST_CASE("more than 10000 operations is 413") {
    json ops = json::array();
    for (int i = 0; i < 10001; ++i) ops.push_back({{"op", "test"}, {"path", "/a"}, {"value", 1}});
    auto r = apply_json_patch(J(R"({"a":1})"), ops);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().reason() == Reason::RequestEntityTooLarge);
    CHECK(r.status().message() == "The allowed maximum operations in a JSON patch is 10000, got 10001");
  }
  TEST_CASE("kubectl rollout undo replaces /spec/template") {
    auto d = deployment();
    json tmpl = J(R"({"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx:1.24"}]}})");
    json patch = json::array({{{"op", "replace"}, {"path", "/spec/template"}, {"value", tmpl}}});
    auto r = apply_json_patch(d, patch);
    REQUIRE(r.ok());
    CHECK(r.value()["spec"]["template"] == tmpl);
    CHECK(r.value()["spec"]["replicas"] == 2);
  }
  TEST_CASE("a null body changes nothing") { CHECK(jp_ok(R"({"a":1})", "null") == J(R"({"a":1})")); }
}

// ------------------------------------------------------------------------------------------------------------
TEST_SUITE("merge patch (RFC 7386)") {
  TEST_CASE("RFC 7386 appendix A examples") {
    CHECK(mp_ok(R"({"a":"b"})", R"({"a":"c"})") == J(R"({"a":"c"})"));
    CHECK(mp_ok(R"({"a":"b"})", R"({"b":"c"})") == J(R"({"a":"b","b":"c"})"));
    CHECK(mp_ok(R"({"a":"b"})", R"({"a":null})") == J(R"({})"));
    CHECK(mp_ok(R"({"a":"b","b":"c"})", R"({"a":null})") == J(R"({"b":"c"})"));
    CHECK(mp_ok(R"({"a":["b"]})", R"({"a":"c"})") == J(R"({"a":"c"})"));
    CHECK(mp_ok(R"({"a":"c"})", R"({"a":["b"]})") == J(R"({"a":["b"]})"));
    CHECK(mp_ok(R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})") == J(R"({"a":{"b":"d"}})"));
    CHECK(mp_ok(R"({"a":[{"b":"c"}]})", R"({"a":[1]})") == J(R"({"a":[1]})"));
    CHECK(mp_ok(R"({"e":null})", R"({"a":1})") == J(R"({"e":null,"a":1})"));
    CHECK(mp_ok(R"([1,2])", R"({"a":"b","c":null})") == J(R"({"a":"b"})"));
    CHECK(mp_ok(R"({})", R"({"a":{"bb":{"ccc":null}}})") == J(R"({"a":{"bb":{}}})"));
  }
  TEST_CASE("kubectl scale sends a merge patch of spec.replicas") {
    auto out = apply_merge_patch(deployment(), J(R"({"spec":{"replicas":5}})"));
    REQUIRE(out.ok());
    CHECK(out.value()["spec"]["replicas"] == 5);
    CHECK(containers(out.value()).size() == 2);
  }
  TEST_CASE("lists are replaced whole") {
    auto out = apply_merge_patch(deployment(), J(R"({"spec":{"template":{"spec":{"containers":[{"name":"x"}]}}}})"));
    REQUIRE(out.ok());
    CHECK(containers(out.value()) == J(R"([{"name":"x"}])"));
  }
  TEST_CASE("a patch that is not an object is 400") {
    auto arr = apply_merge_patch(J(R"({"a":"b"})"), J(R"(["c"])"));
    REQUIRE_FALSE(arr.ok());
    CHECK(arr.status().reason() == Reason::BadRequest);
    CHECK(arr.status().message() ==
          "error decoding patch: json: cannot unmarshal array into Go value of type map[string]interface {}");
    auto str = apply_merge_patch(J(R"({"a":"b"})"), J(R"("bar")"));
    REQUIRE_FALSE(str.ok());
    CHECK(str.status().message() ==
          "error decoding patch: json: cannot unmarshal string into Go value of type map[string]interface {}");
    auto null = apply_merge_patch(J(R"({"a":"b"})"), J("null"));
    REQUIRE_FALSE(null.ok());
    CHECK(null.status().reason() == Reason::BadRequest);
    CHECK(null.status().message() == "Invalid JSON Patch");
  }
}

// ------------------------------------------------------------------------------------------------------------
TEST_SUITE("strategic merge patch") {
  TEST_CASE("containers merge by name, keeping fields the patch does not mention") {
    auto out = smp_ok(deployment(), J(R"({"spec":{"template":{"spec":{"containers":[
        {"name":"web","image":"nginx:1.27"}]}}}})"));
    auto want = deployment();
    want["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27";
    CHECK(out == want);
  }
  TEST_CASE("image change of the second container keeps the order") {
    auto out = smp_ok(deployment(), J(R"({"spec":{"template":{"spec":{"containers":[
        {"name":"sidecar","image":"busybox:1.37"}]}}}})"));
    REQUIRE(containers(out).size() == 2);
    CHECK(containers(out)[0]["name"] == "web");
    CHECK(containers(out)[0]["image"] == "nginx:1.25");
    CHECK(containers(out)[1]["image"] == "busybox:1.37");
    CHECK(containers(out)[1]["args"] == J(R"(["sleep","infinity"])"));
  }
  TEST_CASE("env merges by name: update one, add one, keep the rest") {
    auto out = smp_ok(deployment(), J(R"({"spec":{"template":{"spec":{"containers":[
        {"name":"web","env":[{"name":"B","value":"20"},{"name":"C","value":"3"}]}]}}}})"));
    CHECK(containers(out)[0]["env"] == J(R"([{"name":"A","value":"1"},{"name":"B","value":"20"},{"name":"C","value":"3"}])"));
  }
  TEST_CASE("an env entry's field set to null is removed") {
    auto out = smp_ok(deployment(), J(R"({"spec":{"template":{"spec":{"containers":[
        {"name":"web","env":[{"name":"A","value":null}]}]}}}})"));
    CHECK(containers(out)[0]["env"] == J(R"([{"name":"A"},{"name":"B","value":"2"}])"));
  }
  TEST_CASE("$patch: delete removes a container") {
    auto out = smp_ok(deployment(), J(R"({"spec":{"template":{"spec":{"containers":[
        {"$patch":"delete","name":"sidecar"}]}}}})"));
    REQUIRE(containers(out).size() == 1);
    CHECK(containers(out)[0]["name"] == "web");
  }
  TEST_CASE("$patch: replace in a list replaces it") {
    auto out = smp_ok(deployment(), J(R"({"spec":{"template":{"spec":{"containers":[
        {"name":"only","image":"x"},{"$patch":"replace"}]}}}})"));
    CHECK(containers(out) == J(R"([{"name":"only","image":"x"}])"));
  }
  TEST_CASE("a new container without $setElementOrder goes first (upstream order)") {
    auto out = smp_ok(deployment(), J(R"({"spec":{"template":{"spec":{"containers":[{"name":"new","image":"x"}]}}}})"));
    REQUIRE(containers(out).size() == 3);
    CHECK(containers(out)[0]["name"] == "new");
    CHECK(containers(out)[1]["name"] == "web");
    CHECK(containers(out)[2]["name"] == "sidecar");
  }
  TEST_CASE("$setElementOrder reorders a merged list") {
    auto out = smp_ok(deployment(), J(R"({"spec":{"template":{"spec":{
        "$setElementOrder/containers":[{"name":"sidecar"},{"name":"web"}]}}}})"));
    REQUIRE(containers(out).size() == 2);
    CHECK(containers(out)[0]["name"] == "sidecar");
    CHECK(containers(out)[1]["name"] == "web");
    CHECK(containers(out)[1]["ports"] == J(R"([{"containerPort":80,"protocol":"TCP"}])"));
    CHECK_FALSE(out["spec"]["template"]["spec"].contains("$setElementOrder/containers"));
  }
  TEST_CASE("$setElementOrder with server-only items (upstream test vectors)") {
    // strategicpatch patch_test.go: "add an item in a list and preserve order"
    CHECK(smp_ok(J(R"({"mergingList":[{"name":1,"other":"a"},{"name":2,"value":2,"other":"b"}]})"),
                 J(R"({"$setElementOrder/mergingList":[{"name":3},{"name":1},{"name":2}],
                       "mergingList":[{"name":3,"value":3}]})")) ==
          J(R"({"mergingList":[{"name":3,"value":3},{"name":1,"other":"a"},{"name":2,"value":2,"other":"b"}]})"));
    // "set elements order in a list with server-only items 3"
    CHECK(smp_ok(J(R"({"mergingList":[{"name":1,"other":"a"},{"name":2,"value":2},{"name":7},{"name":9},
                                       {"name":8},{"name":3,"value":3},{"name":4,"value":4}]})"),
                 J(R"({"$setElementOrder/mergingList":[{"name":2},{"name":1},{"name":4},{"name":3}]})")) ==
          J(R"({"mergingList":[{"name":2,"value":2},{"name":1,"other":"a"},{"name":7},{"name":9},{"name":8},
                               {"name":4,"value":4},{"name":3,"value":3}]})"));
    // "preserve the order from the patch in a merging list 2"
    CHECK(smp_ok(J(R"({"mergingList":[{"name":1},{"name":2,"value":"b"},{"name":3}]})"),
                 J(R"({"mergingList":[{"name":3,"value":"c"},{"name":1,"value":"a"}]})")) ==
          J(R"({"mergingList":[{"name":2,"value":"b"},{"name":3,"value":"c"},{"name":1,"value":"a"}]})"));
    // "preserve the order from the patch in a merging int list"
    CHECK(smp_ok(J(R"({"mergingIntList":[1,2,3]})"), J(R"({"mergingIntList":[3,1]})")) ==
          J(R"({"mergingIntList":[2,3,1]})"));
  }
  TEST_CASE("$setElementOrder on a list longer than one sort block, with server-only items") {
    // 60 items; the order names the even ones, reversed. Evens follow the directive; the odd (server-only)
    // items keep their relative order and go before an even item whenever the live list had them earlier.
    json live = json::array();
    for (int i = 0; i < 60; ++i) live.push_back({{"name", i}});
    json order = json::array();
    for (int i = 58; i >= 0; i -= 2) order.push_back({{"name", i}});
    auto out = smp_ok(json{{"mergingList", live}}, json{{"$setElementOrder/mergingList", order}});
    json want = json::array();
    for (int i = 1; i <= 57; i += 2) want.push_back({{"name", i}});
    for (int i = 58; i >= 0; i -= 2) want.push_back({{"name", i}});
    want.push_back({{"name", 59}});
    CHECK(out["mergingList"] == want);
  }
  TEST_CASE("large merge lists") {
    json live = json::array(), add = json::array();
    for (int i = 0; i < 20000; ++i) live.push_back("f" + std::to_string(i));
    for (int i = 10000; i < 30000; ++i) add.push_back("f" + std::to_string(i));
    auto out = smp_ok(json{{"metadata", {{"finalizers", live}}}}, json{{"metadata", {{"finalizers", add}}}});
    REQUIRE(out["metadata"]["finalizers"].size() == 30000);
    CHECK(out["metadata"]["finalizers"][0] == "f0");  // server-only items that were first stay first
    CHECK(out["metadata"]["finalizers"][29999] == "f29999");
  }
  TEST_CASE("a $setElementOrder that contradicts the patch list is rejected") {
    std::string detail;
    auto r = apply_strategic_merge_patch_detailed(
        J(R"({"mergingList":[{"name":1},{"name":3},{"name":2}]})"),
        J(R"({"$setElementOrder/mergingList":[{"name":1},{"name":2},{"name":3}],
              "mergingList":[{"name":3,"value":3},{"name":1,"value":1}]})"),
        k8s_meta, &detail);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().reason() == Reason::BadRequest);
    CHECK(detail.find("doesn't match $setElementOrder list") != std::string::npos);
  }
  TEST_CASE("finalizers: a primitive list with merge strategy is a union") {
    auto out = smp_ok(J(R"({"metadata":{"name":"x","finalizers":["a","b"]}})"),
                      J(R"({"metadata":{"finalizers":["c","a"]}})"));
    CHECK(out["metadata"]["finalizers"] == J(R"(["c","a","b"])"));
  }
  TEST_CASE("$deleteFromPrimitiveList removes from a primitive list") {
    auto out = smp_ok(J(R"({"metadata":{"finalizers":["a","b","c"]}})"),
                      J(R"({"metadata":{"$deleteFromPrimitiveList/finalizers":["b","zz"]}})"));
    CHECK(out["metadata"] == J(R"({"finalizers":["a","c"]})"));
    auto both = smp_ok(J(R"({"metadata":{"finalizers":["a","b"]}})"),
                       J(R"({"metadata":{"$setElementOrder/finalizers":["a","c"],
                                         "$deleteFromPrimitiveList/finalizers":["b"],"finalizers":["c"]}})"));
    CHECK(both["metadata"] == J(R"({"finalizers":["a","c"]})"));
    auto bad = apply_strategic_merge_patch(J("{}"), J(R"({"$deleteFromPrimitiveList":["b"]})"), k8s_meta);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().reason() == Reason::BadRequest);
    CHECK(bad.status().message() == "invalid patch format of primitive list");
  }
  TEST_CASE("a list without a merge strategy (args) is replaced") {
    auto out = smp_ok(deployment(), J(R"({"spec":{"template":{"spec":{"containers":[
        {"name":"web","args":["--port","8080"]}]}}}})"));
    CHECK(containers(out)[0]["args"] == J(R"(["--port","8080"])"));
    CHECK(containers(out)[0]["env"].size() == 2);
  }
  TEST_CASE("kubectl uncordon: spec.unschedulable null removes the field") {
    json node = J(R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"},
                      "spec":{"podCIDR":"10.244.1.0/24","unschedulable":true,
                              "taints":[{"key":"node.kubernetes.io/unschedulable","effect":"NoSchedule"}]}})");
    auto cordoned = smp_ok(node, J(R"({"spec":{"unschedulable":null}})"));
    CHECK_FALSE(cordoned["spec"].contains("unschedulable"));
    CHECK(cordoned["spec"]["podCIDR"] == "10.244.1.0/24");
    node["spec"].erase("unschedulable");
    CHECK(smp_ok(node, J(R"({"spec":{"unschedulable":true}})"))["spec"]["unschedulable"] == true);
  }
  TEST_CASE("kubectl rollout restart: template annotation restartedAt") {
    json patch = J(R"({"spec":{"template":{"metadata":{"annotations":{
        "kubectl.kubernetes.io/restartedAt":"2026-11-26T10:00:00Z"}}}}})");
    auto out = smp_ok(deployment(), patch);
    CHECK(out["spec"]["template"]["metadata"] ==
          J(R"({"labels":{"app":"web"},"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-11-26T10:00:00Z"}})"));
    // A second restart replaces the value and keeps other template annotations.
    auto again = out;
    again["spec"]["template"]["metadata"]["annotations"]["other"] = "x";
    patch["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = "2026-11-26T11:00:00Z";
    auto out2 = smp_ok(again, patch);
    CHECK(out2["spec"]["template"]["metadata"]["annotations"] ==
          J(R"({"other":"x","kubectl.kubernetes.io/restartedAt":"2026-11-26T11:00:00Z"})"));
    CHECK(containers(out2) == containers(deployment()));
  }
  TEST_CASE("the patch kubectl 1.32 apply sends on a second apply") {
    auto live = deployment();
    live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{\"old\":true}\n";
    const std::string last_applied =
        R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{},"name":"web","namespace":"default"},)"
        R"("spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},)"
        R"("spec":{"containers":[{"args":["-g","daemon off;"],"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],)"
        R"("image":"nginx:1.27","name":"web","ports":[{"containerPort":80}]},)"
        R"({"args":["sleep","infinity"],"image":"busybox:1.36","name":"sidecar"}]}}}})"
        "\n";
    json patch = {
        {"metadata", {{"annotations", {{"kubectl.kubernetes.io/last-applied-configuration", last_applied}}}}},
        {"spec",
         {{"replicas", 3},
          {"template",
           {{"spec",
             {{"$setElementOrder/containers", J(R"([{"name":"web"},{"name":"sidecar"}])")},
              {"containers", J(R"([{"image":"nginx:1.27","name":"web"}])")}}}}}}}};
    auto out = smp_ok(live, patch);
    auto want = deployment();
    want["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = last_applied;
    want["spec"]["replicas"] = 3;
    want["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27";
    CHECK(out == want);
  }
  TEST_CASE("kubectl apply adding a container and an env var (nested $setElementOrder)") {
    json patch = J(R"({"spec":{"template":{"spec":{
        "$setElementOrder/containers":[{"name":"web"},{"name":"log"},{"name":"sidecar"}],
        "containers":[
          {"$setElementOrder/env":[{"name":"A"},{"name":"Z"},{"name":"B"}],"env":[{"name":"Z","value":"26"}],"name":"web"},
          {"image":"fluentbit:3","name":"log","ports":[{"containerPort":2020}]}]}}}})");
    auto out = smp_ok(deployment(), patch);
    REQUIRE(containers(out).size() == 3);
    CHECK(containers(out)[0]["name"] == "web");
    CHECK(containers(out)[1] == J(R"({"image":"fluentbit:3","name":"log","ports":[{"containerPort":2020}]})"));
    CHECK(containers(out)[2]["name"] == "sidecar");
    CHECK(containers(out)[0]["env"] ==
          J(R"([{"name":"A","value":"1"},{"name":"Z","value":"26"},{"name":"B","value":"2"}])"));
    CHECK_FALSE(containers(out)[0].contains("$setElementOrder/env"));
  }
  TEST_CASE("ports merge by containerPort") {
    auto out = smp_ok(deployment(), J(R"({"spec":{"template":{"spec":{"containers":[
        {"name":"web","ports":[{"containerPort":80,"name":"http"},{"containerPort":443}]}]}}}})"));
    CHECK(containers(out)[0]["ports"] ==
          J(R"([{"containerPort":80,"name":"http","protocol":"TCP"},{"containerPort":443}])"));
  }
  TEST_CASE("$retainKeys: switching the deployment strategy to Recreate clears rollingUpdate") {
    auto out = smp_ok(deployment(), J(R"({"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate","rollingUpdate":null}}})"));
    CHECK(out["spec"]["strategy"] == J(R"({"type":"Recreate"})"));
    auto bad = apply_strategic_merge_patch(deployment(), J(R"({"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":{}}}})"),
                                           k8s_meta);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().reason() == Reason::BadRequest);
    CHECK(bad.status().message() == "invalid patch format of retainKeys");
  }
  TEST_CASE("$retainKeys in a merged list element: a volume changes its source") {
    auto out = smp_ok(deployment(), J(R"({"spec":{"template":{"spec":{"volumes":[
        {"$retainKeys":["configMap","name"],"name":"data","configMap":{"name":"cm"}}]}}}})"));
    CHECK(out["spec"]["template"]["spec"]["volumes"] == J(R"([{"name":"data","configMap":{"name":"cm"}}])"));
  }
  TEST_CASE("$patch on maps: replace and delete") {
    auto out = smp_ok(deployment(), J(R"({"spec":{"selector":{"$patch":"replace","matchLabels":{"tier":"x"}}}})"));
    CHECK(out["spec"]["selector"] == J(R"({"matchLabels":{"tier":"x"}})"));
    auto del = smp_ok(deployment(), J(R"({"metadata":{"annotations":{"$patch":"delete"}}})"));
    CHECK(del["metadata"]["annotations"] == json::object());
    auto top = smp_ok(J(R"({"a":1,"b":2})"), J(R"({"$patch":"replace","c":3})"));
    CHECK(top == J(R"({"c":3})"));
  }
  TEST_CASE("maps merge, null deletes, new values are stored without nulls or directives") {
    auto out = smp_ok(deployment(), J(R"({"metadata":{"labels":{"team":"a","gone":null},
        "annotations":{"deployment.kubernetes.io/revision":null}},
        "spec":{"template":{"spec":{"nodeSelector":{"disk":"ssd","x":null}}}}})"));
    CHECK(out["metadata"]["labels"] == J(R"({"team":"a"})"));
    CHECK(out["metadata"]["annotations"] == json::object());
    CHECK(out["spec"]["template"]["spec"]["nodeSelector"] == J(R"({"disk":"ssd"})"));
    CHECK(out["spec"]["replicas"] == 2);
  }
  TEST_CASE("an unknown $patch value is a 400 with upstream's message") {
    auto r = apply_strategic_merge_patch(deployment(), J(R"({"spec":{"template":{"spec":{"containers":[
        {"$patch":"frobnicate","name":"web"}]}}}})"), k8s_meta);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().reason() == Reason::BadRequest);
    CHECK(r.status().message() == "unknown patch type: frobnicate in map: map[$patch:frobnicate name:web]");
    auto m = apply_strategic_merge_patch(deployment(), J(R"({"spec":{"$patch":"nope"}})"), k8s_meta);
    REQUIRE_FALSE(m.ok());
    CHECK(m.status().reason() == Reason::BadRequest);
    CHECK(m.status().message() == "unknown patch type: nope in map: map[$patch:nope]");
  }
  TEST_CASE("malformed directives and elements are 400") {
    auto order = apply_strategic_merge_patch(deployment(), J(R"({"spec":{"template":{"spec":{
        "$setElementOrder":[{"name":"web"}]}}}})"), k8s_meta);
    REQUIRE_FALSE(order.ok());
    CHECK(order.status().reason() == Reason::BadRequest);
    CHECK(order.status().message() == "invalid patch format of setElementOrder list");
    auto nokey = apply_strategic_merge_patch(deployment(), J(R"({"spec":{"template":{"spec":{"containers":[
        {"image":"x"}]}}}})"), k8s_meta);
    REQUIRE_FALSE(nokey.ok());
    CHECK(nokey.status().reason() == Reason::BadRequest);
    CHECK(nokey.status().message() == "map: map[image:x] does not contain declared merge key: name");
    auto notobj = apply_strategic_merge_patch(deployment(), J("[1]"), k8s_meta);
    REQUIRE_FALSE(notobj.ok());
    CHECK(notobj.status().reason() == Reason::BadRequest);
    CHECK(notobj.status().message() == "json: cannot unmarshal array into Go value of type map[string]interface {}");
  }
  TEST_CASE("lists of lists are 422 with the generic message") {
    std::string detail;
    auto r = apply_strategic_merge_patch_detailed(J(R"({"mergingIntList":[["a"]]})"),
                                                  J(R"({"mergingIntList":[["b"]]})"), k8s_meta, &detail);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().reason() == Reason::Invalid);
    CHECK(r.status().message() == kPatchRejectedMessage);
    CHECK(detail == "lists of lists are not supported");
  }
  TEST_CASE("no lookup: everything merges as maps, lists are replaced") {
    auto out = smp_ok(deployment(), J(R"({"spec":{"template":{"spec":{"containers":[{"name":"solo"}]}}}})"),
                      PatchMetaLookup());
    CHECK(containers(out) == J(R"([{"name":"solo"}])"));
  }
  TEST_CASE("the lookup sees paths with list indices omitted") {
    std::vector<std::string> seen;
    auto spy = [&](const std::string& p) {
      seen.push_back(p);
      return k8s_meta(p);
    };
    smp_ok(deployment(), J(R"({"spec":{"template":{"spec":{"containers":[
        {"name":"web","ports":[{"containerPort":80,"name":"http"}]}]}}}})"), spy);
    auto has = [&](const char* p) { return std::find(seen.begin(), seen.end(), p) != seen.end(); };
    CHECK(has("spec.template.spec.containers"));
    CHECK(has("spec.template.spec.containers.ports"));
  }
  TEST_CASE("a null patch changes nothing; the input is never modified") {
    auto d = deployment();
    CHECK(smp_ok(d, json(nullptr)) == d);
    smp_ok(d, J(R"({"spec":{"replicas":9}})"));
    CHECK(d == deployment());
  }
}
