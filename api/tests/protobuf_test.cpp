#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "api/protobuf.h"

using berth::api::decode_protobuf;
using berth::api::GroupVersionKind;
using berth::api::Reason;
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

std::string read_file(const std::string& name) {
  std::ifstream f(data_dir() / name, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), "missing test data " << name);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A minimal protobuf writer for hand-made vectors.
std::string varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
  return out;
}
std::string tag(int field, int wire) { return varint((static_cast<uint64_t>(field) << 3) | wire); }
std::string bytes(int field, std::string_view b) { return tag(field, 2) + varint(b.size()) + std::string(b); }
std::string num(int field, uint64_t v) { return tag(field, 0) + varint(v); }
std::string entry(std::string_view key, std::string_view value) { return bytes(1, key) + bytes(2, value); }

std::string envelope(std::string_view api_version, std::string_view kind, std::string_view raw,
                     std::string_view encoding = "", std::string_view content_type = "") {
  std::string type_meta;
  if (!api_version.empty()) type_meta += bytes(1, api_version);
  if (!kind.empty()) type_meta += bytes(2, kind);
  std::string unknown;
  if (!type_meta.empty()) unknown += bytes(1, type_meta);
  unknown += bytes(2, raw) + bytes(3, encoding) + bytes(4, content_type);
  return std::string("k8s\0", 4) + unknown;
}

}  // namespace

TEST_CASE("bodies captured from kubectl 1.32 decode to what the same command prints as JSON") {
  // Each .pb is the raw request body of `kubectl <command> --dry-run=server` against a logging server;
  // each .json is `kubectl <command> --dry-run=client -o json` (drain's DeleteOptions written by hand).
  const char* names[] = {"deployment",        "deployment_full", "namespace",     "configmap",
                         "secret",            "service_clusterip", "service_nodeport", "hpa_autoscale",
                         "deleteoptions_drain"};
  for (const char* n : names) {
    INFO(n);
    std::string body = read_file(std::string(n) + ".pb");
    CHECK(berth::api::is_kubernetes_protobuf(body));
    auto decoded = decode_protobuf(body);
    REQUIRE_MESSAGE(decoded.ok(), decoded.status().message());
    json expected = json::parse(read_file(std::string(n) + ".json"));
    // Parsed values compare without regard to key order or whitespace; nothing else needs normalising.
    CHECK_MESSAGE(*decoded == expected,
                  json::diff(expected, *decoded).dump() << "\n" << decoded->dump());
  }
}

TEST_CASE("what the captured bodies hold, spelled out") {
  auto d = decode_protobuf(read_file("deployment.pb"));
  REQUIRE(d.ok());
  CHECK((*d)["apiVersion"] == "apps/v1");
  CHECK((*d)["kind"] == "Deployment");
  CHECK((*d)["metadata"]["creationTimestamp"].is_null());  // unset Time: null, not omitted
  CHECK((*d)["spec"]["replicas"] == 1);
  CHECK((*d)["spec"]["strategy"] == json::object());  // non-pointer struct: always present
  CHECK((*d)["status"] == json::object());
  CHECK_FALSE((*d)["spec"].contains("paused"));  // omitempty false

  auto s = decode_protobuf(read_file("secret.pb"));
  REQUIRE(s.ok());
  CHECK((*s)["data"]["password"] == "aHVudGVyMg==");  // map<string,bytes> -> base64

  auto svc = decode_protobuf(read_file("service_nodeport.pb"));
  REQUIRE(svc.ok());
  CHECK((*svc)["spec"]["ports"][0]["targetPort"] == 8443);  // IntOrString int form
  CHECK((*svc)["spec"]["ports"][0]["nodePort"] == 30443);

  auto del = decode_protobuf(read_file("deleteoptions_drain.pb"));
  REQUIRE(del.ok());
  CHECK((*del)["kind"] == "DeleteOptions");
  CHECK((*del)["gracePeriodSeconds"] == 7);
}

TEST_CASE("a hand-made Pod exercises times, quantities, int-or-string, packed and negative numbers") {
  std::string time = num(1, 1700000000);
  std::string meta = bytes(1, "p") + bytes(3, "ns") + bytes(8, time) + bytes(11, entry("app", "web")) +
                     bytes(17, bytes(1, "kubectl") + bytes(2, "Update") + bytes(4, time + num(2, 5)) +
                                   bytes(6, "FieldsV1") + bytes(7, bytes(1, R"({"f:metadata":{}})"))) +
                     num(999, 5);  // a field this version does not know: skipped, as generated code does
  std::string volume = bytes(1, "v") + bytes(2, bytes(2, bytes(1, "Memory") + bytes(2, bytes(1, "64Mi"))));
  std::string container =
      bytes(1, "c") + bytes(2, "img\xff") + bytes(4, "a") + bytes(4, "b") +
      bytes(6, num(3, 80) + bytes(4, "TCP")) + bytes(6, num(2, static_cast<uint64_t>(-1)) + num(3, 81)) +
      bytes(8, bytes(1, entry("cpu", bytes(1, "500m"))) + bytes(2, entry("memory", ""))) +
      bytes(11, bytes(1, bytes(2, bytes(1, "/h") + bytes(2, num(1, 1) + bytes(3, "http")))) + num(2, 5));
  std::string packed = varint(1) + varint(2) + varint(300);
  std::string security = num(2, 1000) + bytes(4, packed) + num(4, 7);
  std::string spec = bytes(1, volume) + bytes(2, container) + num(4, 0) + bytes(14, security);
  std::string status = bytes(1, "Running") + bytes(7, "");
  std::string raw = bytes(1, meta) + bytes(2, spec) + bytes(3, status);

  auto pod = decode_protobuf(envelope("v1", "Pod", raw));
  REQUIRE_MESSAGE(pod.ok(), pod.status().message());
  json expected = json::parse(R"({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "p", "namespace": "ns", "creationTimestamp": "2023-11-14T22:13:20Z", "labels": {"app": "web"},
                 "managedFields": [{"manager": "kubectl", "operation": "Update", "time": "2023-11-14T22:13:20Z",
                                    "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}}}]},
    "spec": {
      "volumes": [{"name": "v", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}],
      "containers": [{"name": "c", "image": "img\ufffd", "args": ["a", "b"],
                      "ports": [{"containerPort": 80, "protocol": "TCP"}, {"hostPort": -1, "containerPort": 81}],
                      "resources": {"limits": {"cpu": "500m"}, "requests": {"memory": "0"}},
                      "readinessProbe": {"httpGet": {"path": "/h", "port": "http"}, "initialDelaySeconds": 5}}],
      "terminationGracePeriodSeconds": 0,
      "securityContext": {"runAsUser": 1000, "supplementalGroups": [1, 2, 300, 7]}
    },
    "status": {"phase": "Running", "startTime": null}
  })");
  CHECK_MESSAGE(*pod == expected, json::diff(expected, *pod).dump());
}

TEST_CASE("MicroTime keeps microseconds; bytes maps are base64; pointers keep explicit zeros") {
  std::string lease_spec = bytes(1, "holder") + num(2, 15) + bytes(4, num(1, 1700000000) + num(2, 123456789)) +
                           num(5, 0);
  auto lease = decode_protobuf(envelope("coordination.k8s.io/v1", "Lease", bytes(1, bytes(1, "l")) + bytes(2, lease_spec)));
  REQUIRE_MESSAGE(lease.ok(), lease.status().message());
  CHECK(*lease == json::parse(R"({"apiVersion":"coordination.k8s.io/v1","kind":"Lease",
      "metadata":{"name":"l","creationTimestamp":null},
      "spec":{"holderIdentity":"holder","leaseDurationSeconds":15,"renewTime":"2023-11-14T22:13:20.123456Z",
              "leaseTransitions":0}})"));

  std::string cm = bytes(1, bytes(1, "c")) + bytes(3, entry("bin", std::string("\x00\x01\xff", 3))) +
                   bytes(2, entry("k", "v")) + num(4, 1);
  auto config = decode_protobuf(envelope("v1", "ConfigMap", cm));
  REQUIRE(config.ok());
  CHECK(*config == json::parse(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","creationTimestamp":null},
      "data":{"k":"v"},"binaryData":{"bin":"AAH/"},"immutable":true})"));

  // An envelope without TypeMeta takes the kind the caller expects from the URL.
  GroupVersionKind ns{"", "v1", "Namespace"};
  auto namespaced = decode_protobuf(envelope("", "", bytes(1, bytes(1, "demo"))), &ns);
  REQUIRE(namespaced.ok());
  CHECK((*namespaced)["kind"] == "Namespace");
  CHECK((*namespaced)["metadata"]["name"] == "demo");
  CHECK((*namespaced)["spec"] == json::object());
}

TEST_CASE("malformed protobuf bodies are 400 BadRequest") {
  auto expect_bad = [](const std::string& body, const std::string& fragment, const GroupVersionKind* fb = nullptr) {
    auto r = decode_protobuf(body, fb);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().reason() == Reason::BadRequest);
    CHECK(berth::api::http_code(r.status().reason()) == 400);
    CHECK_MESSAGE(r.status().message().find(fragment) != std::string::npos, r.status().message());
  };
  expect_bad(R"({"kind":"Pod"})", "expected prefix [107 56 115 0]");
  expect_bad("", "expected prefix");
  expect_bad(std::string("k8s\0", 4) + "\x0a\x05" + "ab", "unexpected EOF");
  expect_bad(std::string("k8s\0", 4) + std::string(11, '\xff'), "overflow");
  expect_bad(std::string("k8s\0", 4) + std::string("\x00\x01", 2), "illegal tag 0");
  // Known field with the wrong wire type: metadata as a varint.
  expect_bad(envelope("v1", "Pod", num(1, 1)),
             R"(Pod in version "v1" cannot be handled as a Pod: proto: wrong wireType = 0 for field metadata)");
  // A nested message cut short.
  expect_bad(envelope("apps/v1", "Deployment", bytes(2, bytes(1, "x")).substr(0, 3)), "unexpected EOF");
  expect_bad(envelope("apps/v1", "Deployment", tag(2, 2) + varint(50) + "abc"), "unexpected EOF");
  expect_bad(envelope("example.com/v1", "Widget", ""), R"(no kind "Widget" is registered for version "example.com/v1")");
  expect_bad(envelope("v1", "Pod", "", "gzip"), "content encoding");
  expect_bad(envelope("v1", "Pod", "", "", "application/json"), "content type");
  expect_bad(envelope("", "", ""), "Kind");
  // Bad values inside custom scalars.
  expect_bad(envelope("v1", "Pod", bytes(2, bytes(2, bytes(11, bytes(1, bytes(2, bytes(2, num(1, 7)))))))),
             "IntOrString");
  expect_bad(envelope("v1", "Pod", bytes(1, bytes(8, num(1, static_cast<uint64_t>(-70000000000LL))))), "year");
}

TEST_CASE("a schema of one's own drives the decoder: durations, raw extensions, doubles") {
  auto schema = berth::api::Schema::parse(R"({
    "packages": {"t/v1": "io.example.t.v1", "meta/v1": "io.k8s.apimachinery.pkg.apis.meta.v1",
                 "runtime": "io.k8s.apimachinery.pkg.runtime"},
    "kinds": [{"g": "t.example.com", "v": "v1", "k": "Thing", "p": "things", "ns": true, "t": "t/v1.Thing",
               "verbs": "get"}],
    "types": {
      "t/v1.Thing": {"f": [["apiVersion", "string", 0, "o"], ["kind", "string", 0, "o"],
                           ["timeout", "meta/v1.Duration", 1, ""], ["short", "meta/v1.Duration", 2, ""],
                           ["obj", "runtime.RawExtension", 3, ""], ["ratio", "double", 4, "o"],
                           ["counts", "[]int32", 5, "o"], ["zero", "meta/v1.Duration", 6, ""],
                           ["tiny", "meta/v1.Duration", 7, ""], ["missing", "runtime.RawExtension", 8, "p"]]},
      "meta/v1.Duration": {"s": "duration"},
      "runtime.RawExtension": {"s": "raw"}
    }
  })");
  double half = 0.5;
  uint64_t bits;
  std::memcpy(&bits, &half, sizeof bits);
  std::string fixed;
  for (int i = 0; i < 8; ++i) fixed += static_cast<char>((bits >> (8 * i)) & 0xff);
  std::string raw = bytes(1, num(1, 5400000000000ULL)) + bytes(2, num(1, 1500000)) +
                    bytes(3, bytes(1, R"({"a":1})")) + tag(4, 1) + fixed +
                    bytes(5, varint(static_cast<uint64_t>(-1)) + varint(5)) + bytes(7, num(1, 999));
  auto thing = decode_protobuf(envelope("t.example.com/v1", "Thing", raw), nullptr, *schema);
  REQUIRE_MESSAGE(thing.ok(), thing.status().message());
  CHECK(*thing == json::parse(R"({"apiVersion":"t.example.com/v1","kind":"Thing","timeout":"1h30m0s",
      "short":"1.5ms","obj":{"a":1},"ratio":0.5,"counts":[-1,5],"zero":"0s","tiny":"999ns","missing":null})"));
  CHECK(schema->find_resource("t.example.com", "v1", "things"));
  CHECK_FALSE(decode_protobuf(envelope("v1", "Pod", ""), nullptr, *schema).ok());
}
