// The strategies of apiserver/kinds/other_kinds.h driven directly, in the order the generic path
// calls them (from_version, prepare_for_create, apply_defaults, validate, to_version, cells).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <arpa/inet.h>
#include <ctime>

#include "api/typed.h"
#include "api/validation.h"
#include "apiserver/kinds/other_kinds.h"

using namespace berth::apiserver;
using berth::api::Cause;
using berth::api::Reason;
using nlohmann::json;

namespace {

std::string ago(std::int64_t seconds) {
  std::time_t t = std::time(nullptr) - seconds;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// What the generic create path does with a client's object.
json create(const Strategy& s, json obj, const std::string& version = "") {
  auto v = version.empty() ? s.info().versions.front() : version;
  auto internal = s.from_version(std::move(obj), v);
  REQUIRE(internal.ok());
  json out = std::move(*internal);
  if (!out["metadata"].contains("creationTimestamp")) out["metadata"]["creationTimestamp"] = ago(300);
  s.prepare_for_create(out);
  s.apply_defaults(out);
  return out;
}

// The generic update path for the main resource (status kept from the old object).
json update(const Strategy& s, json obj, const json& old) {
  auto internal = s.from_version(std::move(obj), s.info().versions.front());
  REQUIRE(internal.ok());
  json out = std::move(*internal);
  if (s.info().has_status) {
    out.erase("status");
    if (old.contains("status")) out["status"] = old["status"];
  }
  s.prepare_for_update(out, old);
  s.apply_defaults(out);
  return out;
}

std::vector<Cause> errors_of(const Strategy& s, const json& obj) {
  std::vector<Cause> out;
  s.validate(obj, out);
  return out;
}
std::vector<Cause> update_errors_of(const Strategy& s, const json& obj, const json& old) {
  std::vector<Cause> out;
  s.validate_update(obj, old, out);
  return out;
}

// "field: message" of every cause.
std::vector<std::string> texts(const std::vector<Cause>& causes) {
  std::vector<std::string> out;
  for (const auto& c : causes) out.push_back(c.field + ": " + c.message);
  return out;
}
bool has(const std::vector<Cause>& causes, const std::string& text) {
  auto t = texts(causes);
  return std::find(t.begin(), t.end(), text) != t.end();
}
const Cause* find_cause(const std::vector<Cause>& causes, const std::string& field) {
  for (const auto& c : causes)
    if (c.field == field) return &c;
  return nullptr;
}

std::vector<std::string> column_names(const Strategy& s) {
  std::vector<std::string> out;
  for (const auto& c : s.columns()) out.push_back(c.name + (c.priority ? "*" : ""));
  return out;
}

bool in_service_range(const std::string& ip) {
  in_addr a{};
  if (inet_pton(AF_INET, ip.c_str(), &a) != 1) return false;
  std::uint32_t v = ntohl(a.s_addr);
  return (v & 0xFFF00000u) == 0x0A600000u && (v & 0x000FFFFFu) > 1 && (v & 0x000FFFFFu) < 0x000FFFFFu;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
TEST_CASE("namespace: discovery facts") {
  auto s = make_namespace_strategy();
  const auto& i = s->info();
  CHECK(i.plural == "namespaces");
  CHECK(i.singular == "namespace");
  CHECK_FALSE(i.namespaced);
  CHECK(i.short_names == std::vector<std::string>{"ns"});
  CHECK(i.storage_prefix == "/registry/namespaces");
  CHECK(i.verbs == std::vector<std::string>{"create", "delete", "get", "list", "patch", "update", "watch"});
  REQUIRE(i.subresources.size() == 2);
  CHECK(i.subresources[0].name == "finalize");
  CHECK(i.subresources[0].verbs == std::vector<std::string>{"update"});
  CHECK(i.subresources[1].name == "status");
  CHECK(i.has_status);
  CHECK(i.return_deleted_object);
  CHECK(i.name_rule == berth::api::NameRule::DNS1123Label);
}

TEST_CASE("namespace: create sets the kubernetes finalizer, Active and the name label") {
  auto s = make_namespace_strategy();
  json ns = create(*s, {{"metadata", {{"name", "shop"}}}, {"status", {{"phase", "Terminating"}}}});
  CHECK(ns["spec"]["finalizers"] == json::array({"kubernetes"}));
  CHECK(ns["status"]["phase"] == "Active");
  CHECK(ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == "shop");

  json other = create(*s, {{"metadata", {{"name", "x"}, {"labels", {{"kubernetes.io/metadata.name", "lie"}}}}},
                           {"spec", {{"finalizers", {"example.com/cleanup"}}}}});
  CHECK(other["spec"]["finalizers"] == json::array({"example.com/cleanup", "kubernetes"}));
  CHECK(other["metadata"]["labels"]["kubernetes.io/metadata.name"] == "x");
  CHECK(errors_of(*s, other).empty());
}

TEST_CASE("namespace: finalizer names are checked") {
  auto s = make_namespace_strategy();
  json ns = create(*s, {{"metadata", {{"name", "a"}}}, {"spec", {{"finalizers", {"cleanup", "kubernetes"}}}}});
  auto errs = errors_of(*s, ns);
  REQUIRE(errs.size() == 1);
  CHECK(errs[0].field == "spec.finalizers");
  CHECK(errs[0].reason == "FieldValueInvalid");
  CHECK(errs[0].message == "Invalid value: \"cleanup\": name is neither a standard finalizer name nor is it fully qualified");
}

TEST_CASE("namespace: the immortal ones refuse deletion; spec.finalizers hold a deleted one") {
  auto s = make_namespace_strategy();
  for (const char* name : {"default", "kube-system", "kube-public"}) {
    auto st = s->admit_delete(create(*s, {{"metadata", {{"name", name}}}}));
    CHECK(st.reason() == Reason::Forbidden);
    CHECK(st.message() == std::string("namespaces \"") + name + "\" is forbidden: this namespace may not be deleted");
    CHECK(st.details_kind() == "namespaces");
    CHECK(st.details_name() == name);
  }
  // kube-node-lease is not among them in Kubernetes 1.32 either.
  CHECK(s->admit_delete(create(*s, {{"metadata", {{"name", "kube-node-lease"}}}})).is_ok());
  CHECK(s->admit_delete(create(*s, {{"metadata", {{"name", "shop"}}}})).is_ok());

  json ns = create(*s, {{"metadata", {{"name", "shop"}}}});
  CHECK(s->held_by_spec(ns));  // the kubernetes finalizer
  ns["spec"]["finalizers"] = json::array();
  CHECK_FALSE(s->held_by_spec(ns));
  CHECK_FALSE(make_configmap_strategy()->held_by_spec(json{{"metadata", {{"name", "c"}}}}));
}

TEST_CASE("namespace: field selector and table") {
  auto s = make_namespace_strategy();
  CHECK(s->field_value(json::object(), "status.phase") == std::string());
  CHECK_FALSE(s->field_value(json::object(), "spec.finalizers").has_value());
  json ns = create(*s, {{"metadata", {{"name", "shop"}}}});
  CHECK(s->field_value(ns, "status.phase") == std::string("Active"));
  CHECK(column_names(*s) == std::vector<std::string>{"Name", "Status", "Age"});
  CHECK(s->cells(ns) == json::array({"shop", "Active", "5m"}));
}

// ---------------------------------------------------------------------------------------------
TEST_CASE("node: discovery facts") {
  auto s = make_node_strategy();
  const auto& i = s->info();
  CHECK(i.plural == "nodes");
  CHECK(i.short_names == std::vector<std::string>{"no"});
  CHECK_FALSE(i.namespaced);
  CHECK(i.storage_prefix == "/registry/minions");
  CHECK(i.has_status);
  REQUIRE(i.subresources.size() == 1);
  CHECK(i.subresources[0].name == "status");
  CHECK_FALSE(i.allow_create_on_update);
  CHECK_FALSE(i.return_deleted_object);
}

TEST_CASE("node: the kubelet's status survives create, with upstream's defaults") {
  auto s = make_node_strategy();
  json node = create(*s, {{"metadata", {{"name", "n1"}}},
                          {"spec", {{"podCIDR", "10.244.1.0/24"}}},
                          {"status", {{"capacity", {{"cpu", "2"}, {"memory", "4Gi"}}},
                                      {"nodeInfo", {{"kubeletVersion", "v1.32.0-berth"}}}}}});
  CHECK(node["status"]["capacity"]["cpu"] == "2");
  CHECK(node["status"]["allocatable"] == node["status"]["capacity"]);
  CHECK(node["status"]["nodeInfo"]["kubeletVersion"] == "v1.32.0-berth");
  CHECK(node["status"]["nodeInfo"]["osImage"] == "");
  CHECK(node["status"]["nodeInfo"]["kubeProxyVersion"] == "");
  CHECK(node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 0);
  CHECK(node["spec"]["podCIDRs"] == json::array({"10.244.1.0/24"}));
  CHECK(errors_of(*s, node).empty());
}

TEST_CASE("node: validation") {
  auto s = make_node_strategy();
  json node = create(*s, {{"metadata", {{"name", "n1"}}},
                          {"spec", {{"taints", {{{"key", "dedicated"}, {"effect", "Sometimes"}},
                                                {{"key", "gpu"}}}},
                                    {"podCIDRs", {"10.244.0.0/33"}}}}});
  auto errs = errors_of(*s, node);
  CHECK(has(errs, "metadata.taints[0].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""));
  CHECK(has(errs, "metadata.taints[1].effect: Required value"));
  CHECK(has(errs, "spec.podCIDRs[0]: Invalid value: \"10.244.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"));

  json old = create(*s, {{"metadata", {{"name", "n1"}}}, {"spec", {{"podCIDRs", {"10.244.0.0/24"}}, {"providerID", "berth://a"}}}});
  json changed = old;
  changed["spec"]["podCIDRs"] = {"10.244.9.0/24"};
  changed["spec"]["providerID"] = "berth://b";
  auto uerrs = update_errors_of(*s, changed, old);
  CHECK(has(uerrs, "spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid"));
  CHECK(has(uerrs, "spec.providerID: Forbidden: node updates may not change providerID except from \"\" to valid"));
  json same = old;
  same["spec"]["unschedulable"] = true;
  CHECK(update_errors_of(*s, same, old).empty());
}

TEST_CASE("node: field selector and table") {
  auto s = make_node_strategy();
  CHECK(s->field_value(json::object(), "spec.unschedulable") == std::string("false"));
  CHECK_FALSE(s->field_value(json::object(), "spec.providerID").has_value());
  CHECK(column_names(*s) == std::vector<std::string>{"Name", "Status", "Roles", "Age", "Version", "Internal-IP*",
                                                     "External-IP*", "OS-Image*", "Kernel-Version*", "Container-Runtime*"});
  json node = create(*s, {{"metadata", {{"name", "n1"},
                                        {"labels", {{"node-role.kubernetes.io/worker", ""},
                                                    {"node-role.kubernetes.io/control-plane", ""},
                                                    {"kubernetes.io/hostname", "n1"}}}}},
                          {"spec", {{"unschedulable", true}}},
                          {"status", {{"conditions", {{{"type", "MemoryPressure"}, {"status", "False"}},
                                                      {{"type", "Ready"}, {"status", "True"}}}},
                                      {"addresses", {{{"type", "Hostname"}, {"address", "n1"}},
                                                     {{"type", "InternalIP"}, {"address", "192.168.1.5"}}}},
                                      {"nodeInfo", {{"kubeletVersion", "v1.32.0"}, {"osImage", "Debian GNU/Linux 12 (bookworm)"},
                                                    {"kernelVersion", "6.1.0"}, {"containerRuntimeVersion", "runc://1.1.5"}}}}}});
  CHECK(s->field_value(node, "spec.unschedulable") == std::string("true"));
  CHECK(s->cells(node) == json::array({"n1", "Ready,SchedulingDisabled", "control-plane,worker", "5m", "v1.32.0",
                                       "192.168.1.5", "<none>", "Debian GNU/Linux 12 (bookworm)", "6.1.0", "runc://1.1.5"}));

  json bare = create(*s, {{"metadata", {{"name", "n2"}}}});
  CHECK(s->cells(bare) == json::array({"n2", "Unknown", "<none>", "5m", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"}));
  json not_ready = create(*s, {{"metadata", {{"name", "n3"}, {"labels", {{"kubernetes.io/role", "edge"}}}}},
                               {"status", {{"conditions", {{{"type", "Ready"}, {"status", "Unknown"}}}}}}});
  CHECK(s->cells(not_ready)[1] == "NotReady");
  CHECK(s->cells(not_ready)[2] == "edge");
}

// ---------------------------------------------------------------------------------------------
TEST_CASE("events: discovery facts, both APIs over one store") {
  auto core = make_event_strategy();
  auto v1 = make_events_v1_event_strategy();
  CHECK(core->info().group == "");
  CHECK(v1->info().group == "events.k8s.io");
  CHECK(core->info().storage_prefix == "/registry/events");
  CHECK(v1->info().storage_prefix == "/registry/events");
  CHECK(core->info().short_names == std::vector<std::string>{"ev"});
  CHECK(v1->info().short_names == std::vector<std::string>{"ev"});
  CHECK(core->info().allow_create_on_update);
  CHECK(v1->info().allow_create_on_update);
  CHECK_FALSE(core->info().has_status);
}

TEST_CASE("events: core/v1 output carries the fields Go always writes") {
  auto core = make_event_strategy();
  json ev = create(*core, {{"metadata", {{"name", "web.1"}, {"namespace", "default"}}},
                           {"involvedObject", {{"kind", "Pod"}, {"name", "web"}, {"namespace", "default"}}},
                           {"reason", "Started"},
                           {"message", "Started container web"}});
  CHECK(errors_of(*core, ev).empty());
  json out = core->to_version(ev, "v1");
  CHECK(out["apiVersion"] == "v1");
  CHECK(out["kind"] == "Event");
  CHECK(out["source"] == json::object());
  CHECK(out["firstTimestamp"].is_null());
  CHECK(out.contains("firstTimestamp"));
  CHECK(out["eventTime"].is_null());
  CHECK(out["reportingComponent"] == "");
  CHECK(out["reportingInstance"] == "");
}

TEST_CASE("events: events.k8s.io/v1 converts both ways") {
  auto v1 = make_events_v1_event_strategy();
  json external = {{"apiVersion", "events.k8s.io/v1"},
                   {"kind", "Event"},
                   {"metadata", {{"name", "web.2"}, {"namespace", "default"}}},
                   {"eventTime", "2026-11-26T10:00:00.000000Z"},
                   {"reportingController", "berth.io/scheduler"},
                   {"reportingInstance", "berth-server-1"},
                   {"action", "Binding"},
                   {"reason", "Scheduled"},
                   {"type", "Normal"},
                   {"regarding", {{"kind", "Pod"}, {"name", "web"}, {"namespace", "default"}, {"uid", "u-1"}}},
                   {"note", "Successfully assigned default/web to n1"},
                   {"series", {{"count", 2}, {"lastObservedTime", "2026-11-26T10:01:00.000000Z"}}}};
  auto stored = v1->from_version(external, "v1");
  REQUIRE(stored.ok());
  CHECK((*stored)["apiVersion"] == "v1");
  CHECK((*stored)["involvedObject"]["uid"] == "u-1");
  CHECK((*stored)["message"] == "Successfully assigned default/web to n1");
  CHECK((*stored)["reportingComponent"] == "berth.io/scheduler");
  CHECK((*stored)["reportingInstance"] == "berth-server-1");
  CHECK_FALSE(stored->contains("regarding"));
  CHECK_FALSE(stored->contains("note"));
  CHECK(errors_of(*v1, *stored).empty());

  // The core API sees the same object under core names.
  auto core = make_event_strategy();
  CHECK(core->field_value(*stored, "involvedObject.name") == std::string("web"));
  CHECK(core->field_value(*stored, "source") == std::string("berth.io/scheduler"));  // falls back to reportingComponent
  CHECK(core->field_value(*stored, "reportingComponent") == std::string("berth.io/scheduler"));
  CHECK(v1->field_value(*stored, "regarding.uid") == std::string("u-1"));
  CHECK(v1->field_value(*stored, "reportingController") == std::string("berth.io/scheduler"));
  CHECK_FALSE(v1->field_value(*stored, "involvedObject.name").has_value());
  CHECK_FALSE(core->field_value(*stored, "note").has_value());

  json back = v1->to_version(*stored, "v1");
  CHECK(back["apiVersion"] == "events.k8s.io/v1");
  CHECK(back["regarding"] == external["regarding"]);
  CHECK(back["note"] == external["note"]);
  CHECK(back["reportingController"] == "berth.io/scheduler");
  CHECK(back["series"] == external["series"]);
  CHECK(back["deprecatedSource"] == json::object());
  CHECK(back["deprecatedFirstTimestamp"].is_null());
  CHECK_FALSE(back.contains("deprecatedCount"));
  CHECK_FALSE(back.contains("involvedObject"));

  // A core event read through events.k8s.io: the deprecated fields carry the old ones.
  json old_style = {{"apiVersion", "v1"}, {"kind", "Event"},
                    {"metadata", {{"name", "x"}, {"namespace", "default"}}},
                    {"involvedObject", {{"kind", "Pod"}, {"name", "web"}, {"namespace", "default"}}},
                    {"source", {{"component", "kubelet"}, {"host", "n1"}}},
                    {"firstTimestamp", "2026-11-26T10:00:00Z"}, {"count", 3}, {"message", "m"}};
  json seen = v1->to_version(old_style, "v1");
  CHECK(seen["deprecatedSource"] == json({{"component", "kubelet"}, {"host", "n1"}}));
  CHECK(seen["deprecatedFirstTimestamp"] == "2026-11-26T10:00:00Z");
  CHECK(seen["deprecatedCount"] == 3);
  CHECK(seen["eventTime"].is_null());
  auto again = v1->from_version(seen, "v1");
  REQUIRE(again.ok());
  CHECK((*again)["source"] == old_style["source"]);
  CHECK((*again)["count"] == 3);
  CHECK((*again)["firstTimestamp"] == "2026-11-26T10:00:00Z");
}

TEST_CASE("events: validation") {
  auto core = make_event_strategy();
  json mismatch = {{"metadata", {{"name", "e"}, {"namespace", "shop"}}},
                   {"involvedObject", {{"kind", "Pod"}, {"name", "web"}, {"namespace", "default"}}}};
  CHECK(texts(errors_of(*core, mismatch)) ==
        std::vector<std::string>{"involvedObject.namespace: Invalid value: \"default\": does not match event.namespace"});

  json new_style_core = {{"metadata", {{"name", "e"}, {"namespace", "default"}}},
                         {"eventTime", "2026-11-26T10:00:00.000000Z"}};
  auto errs = errors_of(*core, new_style_core);
  CHECK(has(errs, "reportingComponent: Required value"));
  CHECK(has(errs, "reportingInstance: Required value"));
  CHECK(has(errs, "action: Required value"));
  CHECK(has(errs, "reason: Required value"));

  auto v1 = make_events_v1_event_strategy();
  auto stored = v1->from_version({{"metadata", {{"name", "e"}, {"namespace", "default"}}},
                                  {"regarding", {{"kind", "Pod"}, {"name", "web"}, {"namespace", "default"}}},
                                  {"deprecatedCount", 4}, {"type", "Loud"}},
                                 "v1");
  REQUIRE(stored.ok());
  auto strict = errors_of(*v1, *stored);
  CHECK(has(strict, "eventTime: Required value"));
  CHECK(has(strict, "type: Invalid value: \"\": has invalid value: Loud"));
  CHECK(has(strict, "deprecatedCount: Invalid value: \"\": needs to be unset"));

  json series = *stored;
  series["eventTime"] = "2026-11-26T10:00:00.000000Z";
  series["series"] = {{"count", 1}};
  auto serrs = errors_of(*v1, series);
  CHECK(has(serrs, "series.count: Invalid value: \"\": should be at least 2"));
  CHECK(has(serrs, "series.lastObservedTime: Required value"));
  CHECK(has(serrs, "reportingController: Required value"));

  // Updates through events.k8s.io may not rewrite what happened.
  json old = *stored;
  json changed = old;
  changed["reason"] = "Other";
  CHECK(has(update_errors_of(*v1, changed, old), "reason: Invalid value: \"Other\": field is immutable"));
}

TEST_CASE("events: table") {
  auto core = make_event_strategy();
  CHECK(column_names(*core) == std::vector<std::string>{"Last Seen", "Type", "Reason", "Object", "Subobject*", "Source*",
                                                        "Message", "First Seen*", "Count*", "Name*"});
  CHECK(core->columns().back().format == "name");
  json ev = {{"metadata", {{"name", "web.1"}, {"namespace", "default"}}},
             {"involvedObject", {{"kind", "Pod"}, {"name", "web"}, {"fieldPath", "spec.containers{web}"}}},
             {"reason", "Pulled"}, {"type", "Normal"}, {"message", "  Pulled image \"nginx\"\n"},
             {"source", {{"component", "kubelet"}, {"host", "n1"}}},
             {"firstTimestamp", ago(600)}, {"lastTimestamp", ago(120)}, {"count", 3}};
  CHECK(core->cells(ev) == json::array({"2m", "Normal", "Pulled", "pod/web", "spec.containers{web}", "kubelet, n1",
                                        "Pulled image \"nginx\"", "10m", 3, "web.1"}));
  // New-style: times from eventTime/series, count from the series, source from reporting*.
  json fresh = {{"metadata", {{"name", "s.1"}}},
                {"involvedObject", {{"kind", "Node"}}},
                {"eventTime", ago(90)}, {"reportingComponent", "scheduler"},
                {"series", {{"count", 7}, {"lastObservedTime", ago(30)}}}};
  CHECK(core->cells(fresh) == json::array({"30s", "", "", "node", "", "scheduler", "", "90s", 7, "s.1"}));
  json single = {{"metadata", {{"name", "s.2"}}}, {"eventTime", ago(5)}};
  CHECK(core->cells(single)[0] == "5s");
  CHECK(core->cells(single)[8] == 1);
  CHECK(make_events_v1_event_strategy()->cells(ev) == core->cells(ev));
}

// ---------------------------------------------------------------------------------------------
TEST_CASE("configmap: keys, sizes, binaryData and immutability") {
  auto s = make_configmap_strategy();
  CHECK(s->info().short_names == std::vector<std::string>{"cm"});
  CHECK(s->info().storage_prefix == "/registry/configmaps");

  json cm = create(*s, {{"metadata", {{"name", "cfg"}}}, {"data", {{"bad key", "v"}, {"..x", "y"}, {"ok.key", "z"}}}});
  auto errs = errors_of(*s, cm);
  CHECK(has(errs, "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, "
                  "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
                  "'[-._a-zA-Z0-9]+')"));
  CHECK(has(errs, "data[..x]: Invalid value: \"..x\": must not start with '..'"));
  CHECK(errs.size() == 2);

  json big = create(*s, {{"metadata", {{"name", "big"}}}, {"data", {{"a", std::string(1024 * 1024 + 1, 'x')}}}});
  auto big_errs = errors_of(*s, big);
  REQUIRE(big_errs.size() == 1);
  CHECK(big_errs[0].reason == "FieldValueTooLong");
  CHECK(big_errs[0].message == "Too long: may not be more than 1048576 bytes");

  json dup = create(*s, {{"metadata", {{"name", "d"}}}, {"data", {{"k", "v"}}}, {"binaryData", {{"k", "AAE="}}}});
  CHECK(has(errors_of(*s, dup), "data[k]: Invalid value: \"k\": duplicate of key present in binaryData"));

  auto bad64 = s->from_version({{"metadata", {{"name", "b"}}}, {"binaryData", {{"k", "YWJj!"}}}}, "v1");
  REQUIRE_FALSE(bad64.ok());
  CHECK(bad64.status().reason() == Reason::BadRequest);
  CHECK(bad64.status().message() == "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: illegal base64 data at input byte 4");
  // Value types are typed decoding's (api/typed.h), which runs before from_version.
  json not_string = {{"metadata", {{"name", "b"}}}, {"data", {{"k", 5}}}};
  CHECK(berth::api::typed_decode({"", "v1", "ConfigMap"}, not_string) ==
        "json: cannot unmarshal number into Go struct field ConfigMap.data of type string");

  json frozen = create(*s, {{"metadata", {{"name", "f"}}}, {"immutable", true}, {"data", {{"k", "v"}}}});
  json thawed = frozen;
  thawed["immutable"] = false;
  thawed["data"]["k"] = "w";
  auto uerrs = update_errors_of(*s, thawed, frozen);
  CHECK(has(uerrs, "immutable: Forbidden: field is immutable when `immutable` is set"));
  CHECK(has(uerrs, "data: Forbidden: field is immutable when `immutable` is set"));
  json relabelled = frozen;
  relabelled["metadata"]["labels"] = {{"a", "b"}};
  CHECK(update_errors_of(*s, relabelled, frozen).empty());
}

TEST_CASE("configmap: table") {
  auto s = make_configmap_strategy();
  CHECK(column_names(*s) == std::vector<std::string>{"Name", "Data", "Age"});
  json cm = create(*s, {{"metadata", {{"name", "cfg"}}}, {"data", {{"a", "1"}, {"b", "2"}}}, {"binaryData", {{"c", "AAE="}}}});
  CHECK(s->cells(cm) == json::array({"cfg", 3, "5m"}));
}

// ---------------------------------------------------------------------------------------------
TEST_CASE("secret: Go's base64 decoder") {
  using kinds_detail::go_base64_decode;
  CHECK(go_base64_decode("YWJj").ok);
  CHECK(go_base64_decode("YWJj").bytes == "abc");
  CHECK(go_base64_decode("YQ==").bytes == "a");
  CHECK(go_base64_decode("YW\nJj").bytes == "abc");  // newlines are skipped
  CHECK(go_base64_decode("").ok);
  auto corrupt = [](const char* s) {
    auto r = go_base64_decode(s);
    CHECK_FALSE(r.ok);
    return r.error_offset;
  };
  CHECK(corrupt("abc$") == 3);
  CHECK(corrupt("YWJj!") == 4);
  CHECK(corrupt("YWI") == 0);   // no padding: the quantum is short
  CHECK(corrupt("YQ=") == 3);   // half the padding
  CHECK(corrupt("YQ==YQ") == 4);  // data after padding
  CHECK(kinds_detail::base64_encode("abcd") == "YWJjZA==");
}

TEST_CASE("secret: defaults, stringData and data decoding") {
  auto s = make_secret_strategy();
  CHECK(s->info().short_names.empty());
  CHECK(s->info().storage_prefix == "/registry/secrets");
  json sec = create(*s, {{"metadata", {{"name", "db"}}},
                         {"data", {{"user", "YWRt\naW4="}}},
                         {"stringData", {{"password", "s3cret"}, {"user", "root"}}}});
  CHECK(sec["type"] == "Opaque");
  CHECK_FALSE(sec.contains("stringData"));
  CHECK(sec["data"]["password"] == "czNjcmV0");
  CHECK(sec["data"]["user"] == "cm9vdA==");  // stringData wins over data
  CHECK(errors_of(*s, sec).empty());

  json canon = create(*s, {{"metadata", {{"name", "c"}}}, {"data", {{"k", "YWRt\naW4="}}}});
  CHECK(canon["data"]["k"] == "YWRtaW4=");  // re-encoded as Go writes []byte

  auto bad = s->from_version({{"metadata", {{"name", "db"}}}, {"data", {{"password", "not base64"}}}}, "v1");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().reason() == Reason::BadRequest);
  CHECK(bad.status().message() == "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 3");
}

TEST_CASE("secret: validation") {
  auto s = make_secret_strategy();
  json tls = create(*s, {{"metadata", {{"name", "cert"}}}, {"type", "kubernetes.io/tls"}, {"data", {{"tls.crt", "YQ=="}}}});
  auto tls_errs = errors_of(*s, tls);
  CHECK(texts(tls_errs) == std::vector<std::string>{"data[tls.key]: Required value"});
  REQUIRE(find_cause(tls_errs, "data[tls.key]") != nullptr);
  CHECK(find_cause(tls_errs, "data[tls.key]")->reason == "FieldValueRequired");

  json sa = create(*s, {{"metadata", {{"name", "tok"}}}, {"type", "kubernetes.io/service-account-token"}});
  CHECK(texts(errors_of(*s, sa)) ==
        std::vector<std::string>{"metadata.annotations[kubernetes.io/service-account.name]: Required value"});

  json docker = create(*s, {{"metadata", {{"name", "pull"}}}, {"type", "kubernetes.io/dockerconfigjson"},
                            {"data", {{".dockerconfigjson", kinds_detail::base64_encode("{not json")}}}});
  auto derrs = errors_of(*s, docker);
  REQUIRE(derrs.size() == 1);
  CHECK(derrs[0].field == "data[.dockerconfigjson]");
  CHECK(derrs[0].message.rfind("Invalid value: \"<secret contents redacted>\": ", 0) == 0);

  json bad_key = create(*s, {{"metadata", {{"name", "k"}}}, {"data", {{"a/b", "YQ=="}}}});
  REQUIRE(errors_of(*s, bad_key).size() == 1);
  CHECK(errors_of(*s, bad_key)[0].field == "data[a/b]");

  json big = create(*s, {{"metadata", {{"name", "big"}}},
                         {"data", {{"a", kinds_detail::base64_encode(std::string(1024 * 1024 + 1, 'x'))}}}});
  CHECK(texts(errors_of(*s, big)) == std::vector<std::string>{"data: Too long: may not be more than 1048576 bytes"});

  json old = create(*s, {{"metadata", {{"name", "db"}}}, {"immutable", true}, {"data", {{"a", "YQ=="}}}});
  json changed = old;
  changed["type"] = "kubernetes.io/basic-auth";
  changed["data"]["a"] = "Yg==";
  auto uerrs = update_errors_of(*s, changed, old);
  CHECK(has(uerrs, "type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable"));
  CHECK(has(uerrs, "data: Forbidden: field is immutable when `immutable` is set"));
}

TEST_CASE("secret: field selector and table") {
  auto s = make_secret_strategy();
  CHECK(s->field_value(json::object(), "type") == std::string());
  CHECK_FALSE(s->field_value(json::object(), "data").has_value());
  json sec = create(*s, {{"metadata", {{"name", "db"}}}, {"stringData", {{"a", "1"}, {"b", "2"}}}});
  CHECK(s->field_value(sec, "type") == std::string("Opaque"));
  CHECK(column_names(*s) == std::vector<std::string>{"Name", "Type", "Data", "Age"});
  CHECK(s->cells(sec) == json::array({"db", "Opaque", 2, "5m"}));
}

// ---------------------------------------------------------------------------------------------
TEST_CASE("service: discovery facts") {
  auto s = make_service_strategy();
  const auto& i = s->info();
  CHECK(i.short_names == std::vector<std::string>{"svc"});
  CHECK(i.categories == std::vector<std::string>{"all"});
  CHECK(i.storage_prefix == "/registry/services/specs");
  CHECK(i.has_status);
  CHECK(i.allow_create_on_update);
  CHECK(i.return_deleted_object);
  CHECK(i.name_rule == berth::api::NameRule::DNS1035Label);
}

TEST_CASE("service: defaults and allocation for a ClusterIP service") {
  auto s = make_service_strategy();
  json svc = create(*s, {{"metadata", {{"name", "web"}}},
                         {"spec", {{"selector", {{"app", "web"}}}, {"ports", {{{"port", 80}}, {{"name", "x"}, {"port", 81}, {"targetPort", "http"}}}}}},
                         {"status", {{"loadBalancer", {{"ingress", {{{"ip", "1.2.3.4"}}}}}}}}});
  const json& spec = svc["spec"];
  CHECK(spec["type"] == "ClusterIP");
  CHECK(spec["sessionAffinity"] == "None");
  CHECK(spec["ports"][0]["protocol"] == "TCP");
  CHECK(spec["ports"][0]["targetPort"] == 80);
  CHECK(spec["ports"][1]["targetPort"] == "http");
  CHECK_FALSE(spec["ports"][0].contains("nodePort"));
  CHECK(spec["ipFamilies"] == json::array({"IPv4"}));
  CHECK(spec["ipFamilyPolicy"] == "SingleStack");
  CHECK(spec["internalTrafficPolicy"] == "Cluster");
  CHECK_FALSE(spec.contains("externalTrafficPolicy"));
  REQUIRE(spec["clusterIP"].is_string());
  CHECK(in_service_range(spec["clusterIP"].get<std::string>()));
  CHECK(spec["clusterIP"] != "10.96.0.1");
  CHECK(spec["clusterIPs"] == json::array({spec["clusterIP"]}));
  CHECK(svc["status"] == json({{"loadBalancer", json::object()}}));  // client status dropped
  auto errs = errors_of(*s, svc);
  // Two ports need names.
  CHECK(texts(errs) == std::vector<std::string>{"spec.ports[0].name: Required value"});
}

TEST_CASE("service: headless, NodePort and LoadBalancer") {
  auto s = make_service_strategy();
  json headless = create(*s, {{"metadata", {{"name", "db"}}}, {"spec", {{"clusterIP", "None"}}}});
  CHECK(headless["spec"]["clusterIP"] == "None");
  CHECK(headless["spec"]["clusterIPs"] == json::array({"None"}));
  CHECK(headless["spec"]["ipFamilyPolicy"] == "RequireDualStack");  // headless without a selector
  CHECK(errors_of(*s, headless).empty());                              // no ports needed
  json headless_sel = create(*s, {{"metadata", {{"name", "db"}}},
                                  {"spec", {{"clusterIP", "None"}, {"selector", {{"app", "db"}}}, {"ports", {{{"port", 5432}}}}}}});
  CHECK(headless_sel["spec"]["ipFamilyPolicy"] == "SingleStack");

  json np = create(*s, {{"metadata", {{"name", "web"}}},
                        {"spec", {{"type", "NodePort"}, {"ports", {{{"name", "a"}, {"port", 80}}, {{"name", "b"}, {"port", 443}, {"nodePort", 30443}}}}}}});
  auto p0 = np["spec"]["ports"][0]["nodePort"].get<int>();
  CHECK(p0 >= 30000);
  CHECK(p0 <= 32767);
  CHECK(p0 != 30443);
  CHECK(np["spec"]["ports"][1]["nodePort"] == 30443);
  CHECK(np["spec"]["externalTrafficPolicy"] == "Cluster");
  CHECK(errors_of(*s, np).empty());

  json lb = create(*s, {{"metadata", {{"name", "front"}}}, {"spec", {{"type", "LoadBalancer"}, {"ports", {{{"port", 80}}}}}}});
  CHECK(lb["spec"]["allocateLoadBalancerNodePorts"] == true);
  CHECK(lb["spec"]["ports"][0]["nodePort"].is_number_integer());
  CHECK(errors_of(*s, lb).empty());
  json local = create(*s, {{"metadata", {{"name", "front"}}},
                           {"spec", {{"type", "LoadBalancer"}, {"externalTrafficPolicy", "Local"}, {"ports", {{{"port", 80}}}}}}});
  CHECK(local["spec"]["healthCheckNodePort"].is_number_integer());
  CHECK(errors_of(*s, local).empty());

  json ext = create(*s, {{"metadata", {{"name", "mail"}}}, {"spec", {{"type", "ExternalName"}, {"externalName", "mail.example.com."}}}});
  CHECK_FALSE(ext["spec"].contains("clusterIP"));
  CHECK_FALSE(ext["spec"].contains("ipFamilies"));
  CHECK_FALSE(ext["spec"].contains("internalTrafficPolicy"));
  CHECK(errors_of(*s, ext).empty());
}

TEST_CASE("service: validation") {
  auto s = make_service_strategy();
  json noports = create(*s, {{"metadata", {{"name", "web"}}}, {"spec", {{"selector", {{"app", "web"}}}}}});
  CHECK(texts(errors_of(*s, noports)) == std::vector<std::string>{"spec.ports: Required value"});

  json bad = create(*s, {{"metadata", {{"name", "web"}}},
                         {"spec", {{"type", "Weird"}, {"sessionAffinity", "Sticky"},
                                   {"ports", {{{"name", "a"}, {"port", 70000}, {"protocol", "HTTP"}}, {{"name", "a"}, {"port", 80}, {"targetPort", "Bad_Name"}}}}}}});
  auto errs = errors_of(*s, bad);
  CHECK(has(errs, "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive"));
  CHECK(has(errs, "spec.ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\""));
  CHECK(has(errs, "spec.ports[1].name: Duplicate value: \"a\""));
  CHECK(has(errs, "spec.ports[1].targetPort: Invalid value: \"Bad_Name\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"));
  CHECK(has(errs, "spec.type: Unsupported value: \"Weird\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""));
  CHECK(has(errs, "spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\""));

  json dup = create(*s, {{"metadata", {{"name", "web"}}},
                         {"spec", {{"ports", {{{"name", "a"}, {"port", 80}}, {{"name", "b"}, {"port", 80}}}}}}});
  CHECK(has(errors_of(*s, dup),
            "spec.ports[1]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), "
            "Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}"));

  json range = create(*s, {{"metadata", {{"name", "web"}}},
                           {"spec", {{"clusterIP", "192.168.0.10"}, {"type", "NodePort"}, {"ports", {{{"port", 80}, {"nodePort", 8080}}}}}}});
  auto rerrs = errors_of(*s, range);
  CHECK(has(rerrs, "spec.clusterIPs: Invalid value: []string{\"192.168.0.10\"}: failed to allocate IP 192.168.0.10: the "
                   "provided IP (192.168.0.10) is not in the valid range. The range of valid IPs is 10.96.0.0/12"));
  CHECK(has(rerrs, "spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of "
                   "valid ports is 30000-32767"));

  json cluster_np = create(*s, {{"metadata", {{"name", "web"}}}, {"spec", {{"ports", {{{"port", 80}, {"nodePort", 30001}}}}}}});
  CHECK(has(errors_of(*s, cluster_np), "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"));

  json badip = create(*s, {{"metadata", {{"name", "web"}}}, {"spec", {{"clusterIP", "10.96.0.300"}, {"ports", {{{"port", 80}}}}}}});
  CHECK(has(errors_of(*s, badip),
            "spec.clusterIPs[0]: Invalid value: \"10.96.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"));

  json ext_ips = create(*s, {{"metadata", {{"name", "web"}}}, {"spec", {{"externalIPs", {"127.0.0.1"}}, {"ports", {{{"port", 80}}}}}}});
  CHECK(has(errors_of(*s, ext_ips), "spec.externalIPs[0]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)"));
  CHECK(ext_ips["spec"]["externalTrafficPolicy"] == "Cluster");  // externally accessible through its external IP
}

TEST_CASE("service: updates keep allocations and refuse a new cluster IP") {
  auto s = make_service_strategy();
  json old = create(*s, {{"metadata", {{"name", "web"}}},
                         {"spec", {{"type", "NodePort"}, {"clusterIP", "10.96.5.5"}, {"ports", {{{"name", "http"}, {"port", 80}}}}}}});
  old["metadata"]["uid"] = "u";
  std::int64_t node_port = old["spec"]["ports"][0]["nodePort"];

  // A client that sends back only what it wrote (kubectl replace of the original manifest).
  json again = update(*s, {{"metadata", {{"name", "web"}}},
                           {"spec", {{"type", "NodePort"}, {"ports", {{{"name", "http"}, {"port", 80}}}}}}}, old);
  CHECK(again["spec"]["clusterIP"] == "10.96.5.5");
  CHECK(again["spec"]["clusterIPs"] == json::array({"10.96.5.5"}));
  CHECK(again["spec"]["ports"][0]["nodePort"] == node_port);
  CHECK(update_errors_of(*s, again, old).empty());

  json moved = again;
  moved["spec"]["clusterIP"] = "10.96.6.6";
  moved["spec"]["clusterIPs"] = {"10.96.6.6"};
  CHECK(texts(update_errors_of(*s, moved, old)) ==
        std::vector<std::string>{"spec.clusterIPs[0]: Invalid value: []string{\"10.96.6.6\"}: may not change once set"});

  // NodePort -> ClusterIP drops the node ports the server allocated.
  json to_cluster = old;
  to_cluster["spec"]["type"] = "ClusterIP";
  json changed = update(*s, to_cluster, old);
  CHECK_FALSE(changed["spec"]["ports"][0].contains("nodePort"));
  CHECK_FALSE(changed["spec"].contains("externalTrafficPolicy"));
  CHECK(update_errors_of(*s, changed, old).empty());

  // ClusterIP -> ExternalName drops the cluster IP and families.
  json to_ext = old;
  to_ext["spec"]["type"] = "ExternalName";
  to_ext["spec"]["externalName"] = "example.com";
  json ext = update(*s, to_ext, old);
  CHECK_FALSE(ext["spec"].contains("clusterIP"));
  CHECK_FALSE(ext["spec"].contains("clusterIPs"));
  CHECK_FALSE(ext["spec"].contains("ipFamilies"));
  CHECK(update_errors_of(*s, ext, old).empty());
}

TEST_CASE("service: field selector and table") {
  auto s = make_service_strategy();
  CHECK(s->field_value(json::object(), "spec.clusterIP") == std::string());
  CHECK(s->field_value(json::object(), "spec.type") == std::string());
  CHECK_FALSE(s->field_value(json::object(), "spec.ports").has_value());
  CHECK(column_names(*s) == std::vector<std::string>{"Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector*"});

  json web = create(*s, {{"metadata", {{"name", "web"}}},
                         {"spec", {{"clusterIP", "10.96.0.10"}, {"selector", {{"tier", "front"}, {"app", "web"}}},
                                   {"ports", {{{"name", "http"}, {"port", 80}}, {{"name", "dns"}, {"port", 53}, {"protocol", "UDP"}}}}}}});
  CHECK(s->field_value(web, "spec.clusterIP") == std::string("10.96.0.10"));
  CHECK(s->field_value(web, "spec.type") == std::string("ClusterIP"));
  CHECK(s->cells(web) == json::array({"web", "ClusterIP", "10.96.0.10", "<none>", "80/TCP,53/UDP", "5m", "app=web,tier=front"}));

  json np = create(*s, {{"metadata", {{"name", "np"}}}, {"spec", {{"type", "NodePort"}, {"clusterIP", "10.96.0.11"}, {"ports", {{{"port", 80}, {"nodePort", 30080}}}}}}});
  CHECK(s->cells(np) == json::array({"np", "NodePort", "10.96.0.11", "<none>", "80:30080/TCP", "5m", "<none>"}));

  json lb = create(*s, {{"metadata", {{"name", "lb"}}}, {"spec", {{"type", "LoadBalancer"}, {"clusterIP", "10.96.0.12"}, {"ports", {{{"port", 443}, {"nodePort", 31443}}}}}}});
  CHECK(s->cells(lb)[3] == "<pending>");
  lb["status"]["loadBalancer"]["ingress"] = {{{"ip", "203.0.113.9"}}, {{"hostname", "lb.example.com"}}};
  CHECK(s->cells(lb)[3] == "203.0.113.9,lb.example.com");

  json ext = create(*s, {{"metadata", {{"name", "mail"}}}, {"spec", {{"type", "ExternalName"}, {"externalName", "mail.example.com"}}}});
  CHECK(s->cells(ext) == json::array({"mail", "ExternalName", "<none>", "mail.example.com", "<none>", "5m", "<none>"}));
}

// ---------------------------------------------------------------------------------------------
TEST_CASE("lease: facts, defaults, validation, table") {
  auto s = make_lease_strategy();
  const auto& i = s->info();
  CHECK(i.group == "coordination.k8s.io");
  CHECK(i.storage_prefix == "/registry/leases");
  CHECK(i.allow_create_on_update);
  CHECK_FALSE(i.allow_unconditional_update);
  CHECK(i.short_names.empty());

  json empty = create(*s, {{"metadata", {{"name", "n1"}}}});
  CHECK(empty["spec"] == json::object());
  CHECK(s->cells(empty) == json::array({"n1", "", "5m"}));

  json lease = create(*s, {{"metadata", {{"name", "n1"}}},
                           {"spec", {{"holderIdentity", "n1"}, {"leaseDurationSeconds", 0}, {"leaseTransitions", -1},
                                     {"strategy", "OldestEmulationVersion"}, {"preferredHolder", "n2"}}}});
  CHECK_FALSE(lease["spec"].contains("strategy"));  // CoordinatedLeaderElection is off in 1.32
  CHECK_FALSE(lease["spec"].contains("preferredHolder"));
  CHECK(texts(errors_of(*s, lease)) ==
        std::vector<std::string>{"spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
                                 "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"});
  CHECK(s->cells(lease) == json::array({"n1", "n1", "5m"}));

  const berth::api::GroupVersionKind lease_gvk{"coordination.k8s.io", "v1", "Lease"};
  json typed = {{"metadata", {{"name", "n1"}}}, {"spec", {{"leaseDurationSeconds", "40"}}}};
  CHECK(berth::api::typed_decode(lease_gvk, typed) ==
        "json: cannot unmarshal string into Go struct field LeaseSpec.spec.leaseDurationSeconds of type int32");
  json frac = {{"metadata", {{"name", "n1"}}}, {"spec", {{"leaseDurationSeconds", 1.5}}}};
  CHECK(berth::api::typed_decode(lease_gvk, frac) ==
        "json: cannot unmarshal number 1.5 into Go struct field LeaseSpec.spec.leaseDurationSeconds of type int32");
  json holder = {{"spec", {{"holderIdentity", 7}}}};
  CHECK(berth::api::typed_decode(lease_gvk, holder) ==
        "json: cannot unmarshal number into Go struct field LeaseSpec.spec.holderIdentity of type string");
}

// ---------------------------------------------------------------------------------------------
TEST_CASE("hpa: discovery facts") {
  auto s = make_hpa_strategy();
  const auto& i = s->info();
  CHECK(i.group == "autoscaling");
  CHECK(i.versions == std::vector<std::string>{"v2", "v1"});
  CHECK(i.storage_version == "v2");
  CHECK(i.short_names == std::vector<std::string>{"hpa"});
  CHECK(i.categories == std::vector<std::string>{"all"});
  CHECK(i.storage_prefix == "/registry/horizontalpodautoscalers");
  CHECK(i.has_status);
  REQUIRE(i.subresources.size() == 1);
  CHECK(i.subresources[0].name == "status");
}

TEST_CASE("hpa: kubectl autoscale's v1 object becomes a cpu Resource metric") {
  auto s = make_hpa_strategy();
  json v1 = {{"apiVersion", "autoscaling/v1"}, {"kind", "HorizontalPodAutoscaler"},
             {"metadata", {{"name", "web"}, {"namespace", "default"}}},
             {"spec", {{"scaleTargetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "web"}}},
                       {"maxReplicas", 5}, {"targetCPUUtilizationPercentage", 50}}}};
  json hpa = create(*s, v1, "v1");
  CHECK(hpa["apiVersion"] == "autoscaling/v2");
  CHECK(hpa["spec"]["minReplicas"] == 1);
  CHECK(hpa["spec"]["metrics"] ==
        json::array({{{"type", "Resource"},
                      {"resource", {{"name", "cpu"}, {"target", {{"type", "Utilization"}, {"averageUtilization", 50}}}}}}}));
  CHECK(hpa["status"] == json({{"currentMetrics", nullptr}, {"desiredReplicas", 0}}));
  CHECK(errors_of(*s, hpa).empty());
  CHECK(s->cells(hpa) == json::array({"web", "Deployment/web", "cpu: <unknown>/50%", "1", 5, 0, "5m"}));

  // Read back as v1.
  json out = s->to_version(hpa, "v1");
  CHECK(out["apiVersion"] == "autoscaling/v1");
  CHECK(out["spec"]["targetCPUUtilizationPercentage"] == 50);
  CHECK(out["spec"]["minReplicas"] == 1);
  CHECK_FALSE(out["spec"].contains("metrics"));
  CHECK(out["status"] == json({{"currentReplicas", 0}, {"desiredReplicas", 0}}));
  CHECK_FALSE(out["metadata"].contains("annotations"));

  // Without a target, v2's default is cpu at 80%.
  json bare = v1;
  bare["spec"].erase("targetCPUUtilizationPercentage");
  json defaulted = create(*s, bare, "v1");
  CHECK(s->cells(defaulted)[2] == "cpu: <unknown>/80%");
  CHECK(s->to_version(defaulted, "v1")["spec"]["targetCPUUtilizationPercentage"] == 80);
}

TEST_CASE("hpa: v2 metrics v1 cannot express ride in annotations") {
  auto s = make_hpa_strategy();
  json v2 = {{"metadata", {{"name", "web"}, {"namespace", "default"}, {"annotations", {{"team", "shop"}}}}},
             {"spec", {{"scaleTargetRef", {{"kind", "Deployment"}, {"name", "web"}}},
                       {"minReplicas", 2}, {"maxReplicas", 10},
                       {"metrics", {{{"type", "Resource"}, {"resource", {{"name", "cpu"}, {"target", {{"type", "Utilization"}, {"averageUtilization", 60}}}}}},
                                    {{"type", "Resource"}, {"resource", {{"name", "memory"}, {"target", {{"type", "AverageValue"}, {"averageValue", "500Mi"}}}}}},
                                    {{"type", "Pods"}, {"pods", {{"metric", {{"name", "rps"}}}, {"target", {{"type", "AverageValue"}, {"averageValue", "100"}}}}}}}},
                       {"behavior", {{"scaleDown", {{"stabilizationWindowSeconds", 60}}}}}}}};
  json hpa = create(*s, v2);
  // Behavior defaults fill what was left out.
  CHECK(hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 60);
  CHECK(hpa["spec"]["behavior"]["scaleDown"]["selectPolicy"] == "Max");
  CHECK(hpa["spec"]["behavior"]["scaleDown"]["policies"] == json::array({{{"type", "Percent"}, {"value", 100}, {"periodSeconds", 15}}}));
  CHECK(hpa["spec"]["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 0);
  CHECK(hpa["spec"]["behavior"]["scaleUp"]["policies"].size() == 2);
  CHECK(errors_of(*s, hpa).empty());

  hpa["status"] = {{"currentReplicas", 3}, {"desiredReplicas", 4},
                   {"currentMetrics", {{{"type", "Resource"}, {"resource", {{"name", "cpu"}, {"current", {{"averageUtilization", 72}, {"averageValue", "180m"}}}}}},
                                       {{"type", "Resource"}, {"resource", {{"name", "memory"}, {"current", {{"averageValue", "300Mi"}}}}}}}},
                   {"conditions", {{{"type", "AbleToScale"}, {"status", "True"}, {"lastTransitionTime", "2026-11-26T10:00:00Z"}, {"reason", "ReadyForNewScale"}}}}};
  CHECK(s->cells(hpa) == json::array({"web", "Deployment/web", "cpu: 72%/60%, memory: 300Mi/500Mi + 1 more...", "2", 10, 3, "5m"}));

  json v1 = s->to_version(hpa, "v1");
  CHECK(v1["spec"]["targetCPUUtilizationPercentage"] == 60);
  CHECK(v1["status"]["currentCPUUtilizationPercentage"] == 72);
  CHECK(v1["status"]["currentReplicas"] == 3);
  const json& ann = v1["metadata"]["annotations"];
  CHECK(ann["team"] == "shop");
  CHECK(ann["autoscaling.alpha.kubernetes.io/metrics"] ==
        R"([{"type":"Resource","resource":{"name":"memory","targetAverageValue":"500Mi"}},{"type":"Pods","pods":{"metricName":"rps","targetAverageValue":"100"}}])");
  CHECK(ann["autoscaling.alpha.kubernetes.io/behavior"] ==
        R"({"ScaleUp":{"StabilizationWindowSeconds":0,"SelectPolicy":"Max","Policies":[{"Type":"Pods","Value":4,"PeriodSeconds":15},{"Type":"Percent","Value":100,"PeriodSeconds":15}]},"ScaleDown":{"StabilizationWindowSeconds":60,"SelectPolicy":"Max","Policies":[{"Type":"Percent","Value":100,"PeriodSeconds":15}]}})");
  CHECK(ann["autoscaling.alpha.kubernetes.io/conditions"] ==
        R"([{"type":"AbleToScale","status":"True","lastTransitionTime":"2026-11-26T10:00:00Z","reason":"ReadyForNewScale"}])");
  CHECK(ann.contains("autoscaling.alpha.kubernetes.io/current-metrics"));

  // And back: the annotations are consumed, cpu goes last as upstream's conversion puts it.
  auto back = s->from_version(v1, "v1");
  REQUIRE(back.ok());
  CHECK((*back)["metadata"]["annotations"] == json({{"team", "shop"}}));
  const json& metrics = (*back)["spec"]["metrics"];
  REQUIRE(metrics.size() == 3);
  CHECK(metrics[0] == hpa["spec"]["metrics"][1]);
  CHECK(metrics[1] == hpa["spec"]["metrics"][2]);
  CHECK(metrics[2] == hpa["spec"]["metrics"][0]);
  CHECK((*back)["spec"]["behavior"] == hpa["spec"]["behavior"]);
  CHECK((*back)["status"]["conditions"] == hpa["status"]["conditions"]);
  CHECK((*back)["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"] == 72);
  CHECK((*back)["status"]["currentMetrics"][1]["resource"]["current"]["averageValue"] == "300Mi");
}

TEST_CASE("hpa: validation") {
  auto s = make_hpa_strategy();
  json hpa = create(*s, {{"metadata", {{"name", "web"}}},
                         {"spec", {{"scaleTargetRef", {{"kind", "Deployment"}, {"name", "web"}}},
                                   {"minReplicas", 5}, {"maxReplicas", 2}}}});
  CHECK(texts(errors_of(*s, hpa)) ==
        std::vector<std::string>{"spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"});

  json noref = create(*s, {{"metadata", {{"name", "web"}}}, {"spec", {{"maxReplicas", 0}}}});
  auto errs = errors_of(*s, noref);
  CHECK(has(errs, "spec.maxReplicas: Invalid value: 0: must be greater than 0"));
  CHECK(has(errs, "spec.scaleTargetRef.kind: Required value"));
  CHECK(has(errs, "spec.scaleTargetRef.name: Required value"));

  json zero = create(*s, {{"metadata", {{"name", "web"}}},
                          {"spec", {{"scaleTargetRef", {{"kind", "Deployment"}, {"name", "web"}}}, {"maxReplicas", 3},
                                    {"targetCPUUtilizationPercentage", 0}}}},
                     "v1");
  CHECK(texts(errors_of(*s, zero)) ==
        std::vector<std::string>{"spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0"});

  json mixed = create(*s, {{"metadata", {{"name", "web"}}},
                           {"spec", {{"scaleTargetRef", {{"kind", "Deployment"}, {"name", "web"}}}, {"maxReplicas", 3},
                                     {"metrics", {{{"type", "Pods"}, {"resource", {{"name", "cpu"}, {"target", {{"type", "Utilization"}, {"averageUtilization", 50}}}}}}}},
                                     {"behavior", {{"scaleUp", {{"selectPolicy", "Most"}, {"policies", {{{"type", "Pods"}, {"value", 0}, {"periodSeconds", 4000}}}}}}}}}}});
  auto merrs = errors_of(*s, mixed);
  CHECK(has(merrs, "spec.metrics[0].pods: Required value: must populate information for the given metric source"));
  // Behavior is only checked once the metrics pass.
  CHECK(std::none_of(merrs.begin(), merrs.end(), [](const Cause& c) { return c.field.rfind("spec.behavior", 0) == 0; }));
  mixed["spec"]["metrics"] = {{{"type", "Resource"}, {"resource", {{"name", "cpu"}, {"target", {{"type", "Utilization"}, {"averageUtilization", 50}}}}}}};
  auto berrs = errors_of(*s, mixed);
  CHECK(has(berrs, "spec.behavior.scaleUp.selectPolicy: Unsupported value: \"Most\": supported values: \"Disabled\", \"Max\", \"Min\""));
  CHECK(has(berrs, "spec.behavior.scaleUp.policies[0].value: Invalid value: 0: must be greater than zero"));
  CHECK(has(berrs, "spec.behavior.scaleUp.policies[0].periodSeconds: Invalid value: 4000: must be less than or equal to 1800"));

  auto badq = s->from_version({{"metadata", {{"name", "web"}}},
                               {"spec", {{"metrics", {{{"type", "Pods"}, {"pods", {{"metric", {{"name", "rps"}}}, {"target", {{"type", "AverageValue"}, {"averageValue", "lots"}}}}}}}}}}},
                              "v2");
  REQUIRE_FALSE(badq.ok());
  CHECK(badq.status().reason() == Reason::BadRequest);
  CHECK(badq.status().message().rfind("HorizontalPodAutoscaler in version \"v2\" cannot be handled as a HorizontalPodAutoscaler: ", 0) == 0);
}

TEST_CASE("hpa: v2 output and table columns") {
  auto s = make_hpa_strategy();
  CHECK(column_names(*s) == std::vector<std::string>{"Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age"});
  json hpa = create(*s, {{"metadata", {{"name", "q"}}},
                         {"spec", {{"scaleTargetRef", {{"kind", "Deployment"}, {"name", "worker"}}}, {"maxReplicas", 4},
                                   {"metrics", {{{"type", "External"}, {"external", {{"metric", {{"name", "queue"}}}, {"target", {{"type", "AverageValue"}, {"averageValue", "30"}}}}}},
                                                {{"type", "Object"}, {"object", {{"describedObject", {{"kind", "Service"}, {"name", "web"}}}, {"metric", {{"name", "rps"}}}, {"target", {{"type", "Value"}, {"value", "2k"}}}}}}}}}}});
  CHECK(errors_of(*s, hpa).empty());
  CHECK(s->cells(hpa)[2] == "<unknown>/30 (avg), <unknown>/2k");
  json out = s->to_version(hpa, "v2");
  CHECK(out["apiVersion"] == "autoscaling/v2");
  CHECK(out["status"]["desiredReplicas"] == 0);
  CHECK(out["status"].contains("currentMetrics"));
}
