#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "api/typed.h"

using berth::api::canonical_time;
using berth::api::go_print;
using berth::api::GroupVersionKind;
using berth::api::typed_decode;
using berth::api::TypedMode;
using nlohmann::json;

namespace {
const GroupVersionKind kPod{"", "v1", "Pod"};
const GroupVersionKind kDeployment{"apps", "v1", "Deployment"};
const GroupVersionKind kEvent{"", "v1", "Event"};
const GroupVersionKind kEventsV1{"events.k8s.io", "v1", "Event"};
}  // namespace

TEST_CASE("well-typed objects decode unchanged") {
  json pod = json::parse(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"a":"b"}},
    "spec":{"containers":[{"name":"c","image":"i","tty":true,"ports":[{"containerPort":80}],
    "resources":{"requests":{"cpu":"1"}}}],"terminationGracePeriodSeconds":30,"unknownField":{"x":1}}})");
  json before = pod;
  CHECK(typed_decode(kPod, pod) == "");
  CHECK(pod == before);
}

TEST_CASE("a value of the wrong JSON type is refused in encoding/json's words") {
  json pod = json::parse(R"({"spec":{"containers":[{"name":"c","ports":[{"containerPort":"80"}]}]}})");
  CHECK(typed_decode(kPod, pod) ==
        "json: cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32");
  json tty = json::parse(R"({"spec":{"containers":[{"name":"c","tty":"yes"}]}})");
  CHECK(typed_decode(kPod, tty) == "json: cannot unmarshal string into Go struct field Container.spec.containers.tty of type bool");
  json labels = json::parse(R"({"metadata":{"labels":{"a":1}}})");
  CHECK(typed_decode(kPod, labels) == "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string");
  json spec = json::parse(R"({"spec":"x"})");
  CHECK(typed_decode(kDeployment, spec) == "json: cannot unmarshal string into Go struct field Deployment.spec of type v1.DeploymentSpec");
  json port = json::parse(R"({"spec":{"ports":[{"port":"80"}]}})");
  CHECK(typed_decode({"", "v1", "Service"}, port) ==
        "json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port of type int32");
  json list = json::parse(R"({"spec":{"containers":{}}})");
  CHECK(typed_decode(kPod, list) == "json: cannot unmarshal object into Go struct field PodSpec.spec.containers of type []v1.Container");
}

TEST_CASE("integers must be whole and in range") {
  json fraction = json::parse(R"({"spec":{"replicas":1.5}})");
  CHECK(typed_decode(kDeployment, fraction) ==
        "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32");
  json big = json::parse(R"({"spec":{"replicas":3000000000}})");
  CHECK(typed_decode(kDeployment, big) ==
        "json: cannot unmarshal number 3000000000 into Go struct field DeploymentSpec.spec.replicas of type int32");
  json grace = json::parse(R"({"spec":{"terminationGracePeriodSeconds":3000000000}})");
  CHECK(typed_decode(kPod, grace) == "");
}

TEST_CASE("null leaves a field at its zero value") {
  json pod = json::parse(R"({"metadata":{"labels":null},"spec":{"containers":null,"terminationGracePeriodSeconds":null}})");
  CHECK(typed_decode(kPod, pod) == "");
}

TEST_CASE("int-or-string takes an integer or a string") {
  json ok = json::parse(R"({"spec":{"strategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":"25%"}}}})");
  CHECK(typed_decode(kDeployment, ok) == "");
  json bad = json::parse(R"({"spec":{"strategy":{"rollingUpdate":{"maxSurge":true}}}})");
  CHECK(typed_decode(kDeployment, bad) == "json: cannot unmarshal bool into Go value of type int32");
}

TEST_CASE("timestamps take the form Go marshals them in") {
  json ev = json::parse(R"({"lastTimestamp":"2026-01-01T10:00:00+02:00","firstTimestamp":"2026-01-01T10:00:00.5Z"})");
  CHECK(typed_decode(kEvent, ev) == "");
  CHECK(ev["lastTimestamp"] == "2026-01-01T08:00:00Z");
  CHECK(ev["firstTimestamp"] == "2026-01-01T10:00:00Z");
  json micro = json::parse(R"({"eventTime":"2026-01-01T00:30:00.123456-01:00"})");
  CHECK(typed_decode(kEventsV1, micro) == "");
  CHECK(micro["eventTime"] == "2026-01-01T01:30:00.123456Z");
}

TEST_CASE("timestamps that do not parse are refused with time.Parse's message") {
  json garbage = json::parse(R"({"lastTimestamp":"garbage"})");
  CHECK(typed_decode(kEvent, garbage) ==
        R"(parsing time "garbage" as "2006-01-02T15:04:05Z07:00": cannot parse "garbage" as "2006")");
  json no_micros = json::parse(R"({"eventTime":"2026-01-01T00:00:00+00:00"})");
  CHECK(typed_decode(kEventsV1, no_micros) ==
        R"(parsing time "2026-01-01T00:00:00+00:00" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "+00:00" as ".000000")");
  json number = json::parse(R"({"lastTimestamp":5})");
  CHECK(typed_decode(kEvent, number) == "json: cannot unmarshal number into Go value of type string");
  std::string out, error;
  CHECK_FALSE(canonical_time("2026-02-30T00:00:00Z", false, out, error));
  CHECK(error == R"(parsing time "2026-02-30T00:00:00Z": day out of range)");
  CHECK_FALSE(canonical_time("2026-13-01T00:00:00Z", false, out, error));
  CHECK(error == R"(parsing time "2026-13-01T00:00:00Z": month out of range)");
  CHECK_FALSE(canonical_time("2026-01-01T00:00:00Zx", false, out, error));
  CHECK(error == R"(parsing time "2026-01-01T00:00:00Zx": extra text: "x")");
  CHECK(canonical_time("2024-02-29T23:59:59-00:30", false, out, error));
  CHECK(out == "2024-03-01T00:29:59Z");
}

TEST_CASE("the unstructured converter's words for strategic merge patches") {
  json replicas = json::parse(R"({"spec":{"replicas":"3"}})");
  CHECK(typed_decode(kDeployment, replicas, TypedMode::Unstructured) == "unrecognized type: int32");
  json image = json::parse(R"({"spec":{"template":{"spec":{"containers":[{"name":"c","image":5}]}}}})");
  CHECK(typed_decode(kDeployment, image, TypedMode::Unstructured) == "cannot convert int64 to string");
  json whole = json::parse(R"({"spec":{"replicas":2.0}})");
  CHECK(typed_decode(kDeployment, whole, TypedMode::Unstructured) == "");
  json spec = json::parse(R"({"spec":[]})");
  CHECK(typed_decode(kDeployment, spec, TypedMode::Unstructured) == "cannot restore struct from: slice");
  CHECK(go_print(json::parse(R"({"spec":{"replicas":"3","b":[1,"x",null]}})")) == "map[spec:map[b:[1 x <nil>] replicas:3]]");
}
