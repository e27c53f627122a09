// Events, served twice over one store (/registry/events, objects kept in core/v1 form):
//  - core/v1 Event (pkg/registry/core/event/strategy.go), legacy validation;
//  - events.k8s.io/v1 Event, converted as pkg/apis/events/v1/conversion.go does
//    (regarding <-> involvedObject, note <-> message, reportingController <-> reportingComponent,
//    deprecatedSource/FirstTimestamp/LastTimestamp/Count <-> source/firstTimestamp/lastTimestamp/count),
//    with the strict validation upstream applies to requests in that group.
// Validation follows pkg/apis/core/validation/events.go; the Table is printEvent.
#include <ctime>

#include "api/validation.h"
#include "apiserver/kinds/other_kinds.h"

namespace berth::apiserver {
namespace {

std::string str(const json& j) { return j.is_string() ? j.get<std::string>() : std::string(); }
bool is_set(const json& j) { return j.is_string() && !j.get<std::string>().empty(); }
std::int64_t int_of(const json& j) { return j.is_number_integer() ? j.get<std::int64_t>() : 0; }

// translateTimestampSince / translateMicroTimestampSince.
std::string since(const json& ts) {
  if (!is_set(ts)) return "<unknown>";
  std::int64_t t = parse_rfc3339(ts.get<std::string>());
  if (t == 0) return "<unknown>";
  return human_duration(static_cast<std::int64_t>(std::time(nullptr)) - t);
}

std::string trim_space(const std::string& s) {
  auto b = s.find_first_not_of(" \t\n\r\v\f");
  if (b == std::string::npos) return "";
  auto e = s.find_last_not_of(" \t\n\r\v\f");
  return s.substr(b, e - b + 1);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Which API the request came through: validation differs (ValidateEventCreate's requestVersion).
enum class RequestApi { CoreV1, EventsV1 };

// legacyValidateEvent: what every event must satisfy, whichever API wrote it.
void legacy_validate(const json& ev, RequestApi via, std::vector<api::Cause>& errors) {
  const char* reporting_field = via == RequestApi::CoreV1 ? "reportingComponent" : "reportingController";
  std::string ns = str(at(ev, {"metadata", "namespace"}));
  std::string involved_ns = str(at(ev, {"involvedObject", "namespace"}));
  if (!is_set(at(ev, {"eventTime"}))) {
    // Old-style events: the event's namespace must agree with its object's.
    if (involved_ns.empty()) {
      if (!ns.empty() && ns != "default")
        errors.push_back(api::field_invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"));
    } else if (ns != involved_ns) {
      errors.push_back(api::field_invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"));
    }
  } else {
    if (involved_ns.empty() && ns != "default" && ns != "kube-system")
      errors.push_back(api::field_invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"));
    std::string controller = str(at(ev, {"reportingComponent"}));
    if (controller.empty()) errors.push_back(api::field_required(reporting_field));
    for (const auto& msg : api::is_qualified_name(controller))
      errors.push_back(api::field_invalid(reporting_field, controller, msg));
    std::string instance = str(at(ev, {"reportingInstance"}));
    if (instance.empty()) errors.push_back(api::field_required("reportingInstance"));
    if (instance.size() > 128) errors.push_back(api::field_invalid("reportingInstance", "", "can have at most 128 characters"));
    std::string action = str(at(ev, {"action"}));
    if (action.empty()) errors.push_back(api::field_required("action"));
    if (action.size() > 128) errors.push_back(api::field_invalid("action", "", "can have at most 128 characters"));
    std::string reason = str(at(ev, {"reason"}));
    if (reason.empty()) errors.push_back(api::field_required("reason"));
    if (reason.size() > 128) errors.push_back(api::field_invalid("reason", "", "can have at most 128 characters"));
    if (str(at(ev, {"message"})).size() > 1024)
      errors.push_back(api::field_invalid("message", "", "can have at most 1024 characters"));
  }
  for (const auto& msg : api::is_dns1123_subdomain(ns)) errors.push_back(api::field_invalid("namespace", ns, msg));
}

// validateV1EventSeries.
void validate_series(const json& ev, std::vector<api::Cause>& errors) {
  const json& series = at(ev, {"series"});
  if (!series.is_object()) return;
  if (int_of(at(series, {"count"})) < 2) errors.push_back(api::field_invalid("series.count", "", "should be at least 2"));
  if (!is_set(at(series, {"lastObservedTime"}))) errors.push_back(api::field_required("series.lastObservedTime"));
}

// The extra rules for events written through events.k8s.io/v1 (ValidateEventCreate).
void strict_validate(const json& ev, std::vector<api::Cause>& errors) {
  validate_series(ev, errors);
  if (!is_set(at(ev, {"eventTime"}))) errors.push_back(api::field_required("eventTime"));
  std::string type = str(at(ev, {"type"}));
  if (type != "Normal" && type != "Warning")
    errors.push_back(api::field_invalid("type", "", "has invalid value: " + type));
  if (is_set(at(ev, {"firstTimestamp"})))
    errors.push_back(api::field_invalid("deprecatedFirstTimestamp", "", "needs to be unset"));
  if (is_set(at(ev, {"lastTimestamp"})))
    errors.push_back(api::field_invalid("deprecatedLastTimestamp", "", "needs to be unset"));
  if (int_of(at(ev, {"count"})) != 0) errors.push_back(api::field_invalid("deprecatedCount", "", "needs to be unset"));
  if (is_set(at(ev, {"source", "component"})) || is_set(at(ev, {"source", "host"})))
    errors.push_back(api::field_invalid("deprecatedSource", "", "needs to be unset"));
}

// ValidateEventUpdate for events.k8s.io: what an event said cannot be changed.
void strict_validate_update(const json& ev, const json& old, std::vector<api::Cause>& errors) {
  if (at(ev, {"series"}) != at(old, {"series"})) validate_series(ev, errors);
  auto immutable = [&](const char* field, const char* path) {
    const json& n = at(ev, {field});
    const json& o = at(old, {field});
    // A missing field and its zero value are the same Go value.
    auto zero = [](const json& j) {
      return j.is_null() || (j.is_string() && j.get<std::string>().empty()) || (j.is_number() && j == 0) ||
             (j.is_object() && j.empty());
    };
    if (n != o && !(zero(n) && zero(o))) errors.push_back(api::field_invalid(path, n, "field is immutable"));
  };
  immutable("involvedObject", "involvedObject");
  immutable("reason", "reason");
  immutable("message", "message");
  immutable("source", "source");
  immutable("firstTimestamp", "firstTimestamp");
  immutable("lastTimestamp", "lastTimestamp");
  immutable("count", "count");
  immutable("type", "type");
  immutable("eventTime", "eventTime");
  immutable("action", "action");
  immutable("related", "related");
  immutable("reportingComponent", "reportingController");
  immutable("reportingInstance", "reportingInstance");
}

// The fields an event is selected by (event strategy ToSelectableFields), in core/v1 names.
std::optional<std::string> core_field(const json& ev, const std::string& field) {
  static const char* kInvolved[] = {"kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"};
  for (const char* f : kInvolved)
    if (field == std::string("involvedObject.") + f) return str(at(ev, {"involvedObject", f}));
  if (field == "reason") return str(at(ev, {"reason"}));
  if (field == "reportingComponent") return str(at(ev, {"reportingComponent"}));
  if (field == "type") return str(at(ev, {"type"}));
  if (field == "source") {
    std::string s = str(at(ev, {"source", "component"}));
    return s.empty() ? str(at(ev, {"reportingComponent"})) : s;
  }
  return std::nullopt;
}

std::vector<Column> event_columns(const std::vector<Column>& def) {
  return {{"Last Seen", "string", "", "The time at which the most recent occurrence of this event was recorded.", 0},
          {"Type", "string", "", "Type of this event (Normal, Warning), new types could be added in the future", 0},
          {"Reason", "string", "", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.", 0},
          {"Object", "string", "", "The object that this event is about.", 0},
          {"Subobject", "string", "", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.", 1},
          {"Source", "string", "", "The component reporting this event. Should be a short machine understandable string.", 1},
          {"Message", "string", "", "A human-readable description of the status of this operation.", 0},
          {"First Seen", "string", "", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)", 1},
          {"Count", "string", "", "The number of times this event has occurred.", 1},
          {"Name", "string", "name", def[0].description, 1}};
}

// printEvent (the server always prints wide; kubectl hides priority-1 columns).
json event_cells(const json& ev) {
  std::string first = since(at(ev, {"firstTimestamp"}));
  if (!is_set(at(ev, {"firstTimestamp"}))) first = since(at(ev, {"eventTime"}));
  std::string last = is_set(at(ev, {"lastTimestamp"})) ? since(at(ev, {"lastTimestamp"})) : first;
  std::int64_t count = int_of(at(ev, {"count"}));
  const json& series = at(ev, {"series"});
  if (series.is_object()) {
    last = since(at(series, {"lastObservedTime"}));
    count = int_of(at(series, {"count"}));
  } else if (count == 0) {
    count = 1;  // singleton events have no count in the new API
  }
  std::string kind = lower(str(at(ev, {"involvedObject", "kind"})));
  std::string name = str(at(ev, {"involvedObject", "name"}));
  std::string target = name.empty() ? kind : kind + "/" + name;
  // formatEventSource: component (or reportingController), then ", host" (or reportingInstance).
  std::string component = str(at(ev, {"source", "component"}));
  if (component.empty()) component = str(at(ev, {"reportingComponent"}));
  std::string host = str(at(ev, {"source", "host"}));
  if (host.empty()) host = str(at(ev, {"reportingInstance"}));
  std::string source = host.empty() ? component : component + ", " + host;
  return json::array({last, str(at(ev, {"type"})), str(at(ev, {"reason"})), target,
                      str(at(ev, {"involvedObject", "fieldPath"})), source, trim_space(str(at(ev, {"message"}))), first,
                      count, at(ev, {"metadata", "name"})});
}

KindInfo event_info(const std::string& group) {
  KindInfo i;
  i.group = group;
  i.kind = "Event";
  i.plural = "events";
  i.singular = "event";
  i.namespaced = true;
  i.versions = {"v1"};
  i.storage_version = "v1";
  i.storage_prefix = "/registry/events";
  i.short_names = {"ev"};
  i.has_status = false;
  i.allow_create_on_update = true;
  i.allow_unconditional_update = true;
  i.return_deleted_object = false;
  // core/v1 events only get the generic path-segment name check; events.k8s.io validates
  // ObjectMeta with DNS-1123 subdomain names.
  i.name_rule = group.empty() ? api::NameRule::PathSegment : api::NameRule::DNS1123Subdomain;
  return i;
}

class CoreEventStrategy : public Strategy {
 public:
  CoreEventStrategy() : info_(event_info("")) {}
  const KindInfo& info() const override { return info_; }

  bool serves_stored_form(const std::string&) const override { return false; }
  // Fields Go always writes for a core/v1 Event (no omitempty, or a struct/Time under omitempty).
  json to_version(json stored, const std::string& version) const override {
    stored = Strategy::to_version(std::move(stored), version);
    if (!stored["involvedObject"].is_object()) stored["involvedObject"] = json::object();
    if (!stored["source"].is_object()) stored["source"] = json::object();
    for (const char* t : {"firstTimestamp", "lastTimestamp", "eventTime"})
      if (!stored.contains(t)) stored[t] = nullptr;
    for (const char* s : {"reportingComponent", "reportingInstance"})
      if (!stored[s].is_string()) stored[s] = "";
    return stored;
  }

  void validate(const json& obj, std::vector<api::Cause>& errors) const override {
    legacy_validate(obj, RequestApi::CoreV1, errors);
  }
  void validate_update(const json& obj, const json& old, std::vector<api::Cause>& errors) const override {
    legacy_validate(obj, RequestApi::CoreV1, errors);
  }

  std::optional<std::string> field_value(const json& obj, const std::string& field) const override {
    return core_field(obj, field);
  }

  std::vector<Column> columns() const override { return event_columns(Strategy::columns()); }
  json cells(const json& obj) const override { return event_cells(obj); }

 private:
  KindInfo info_;
};

// Moves `from` of src to `to` of dst when present.
void move_field(json& src, const char* from, json& dst, const char* to) {
  auto it = src.find(from);
  if (it == src.end()) return;
  dst[to] = std::move(*it);
  src.erase(it);
}

class EventsV1Strategy : public Strategy {
 public:
  EventsV1Strategy() : info_(event_info("events.k8s.io")) {}
  const KindInfo& info() const override { return info_; }

  bool serves_stored_form(const std::string&) const override { return false; }
  // core/v1 (stored) -> events.k8s.io/v1 (Convert_core_Event_To_v1_Event).
  json to_version(json stored, const std::string& version) const override {
    json out = json::object();
    out["apiVersion"] = "events.k8s.io/" + version;
    out["kind"] = "Event";
    stored.erase("apiVersion");
    stored.erase("kind");
    move_field(stored, "metadata", out, "metadata");
    out["eventTime"] = stored.contains("eventTime") ? stored["eventTime"] : json(nullptr);
    stored.erase("eventTime");
    move_field(stored, "series", out, "series");
    json controller = stored.contains("reportingComponent") ? stored["reportingComponent"] : json();
    stored.erase("reportingComponent");
    if (is_set(controller)) out["reportingController"] = controller;
    json instance = stored.contains("reportingInstance") ? stored["reportingInstance"] : json();
    stored.erase("reportingInstance");
    if (is_set(instance)) out["reportingInstance"] = instance;
    for (const char* f : {"action", "reason", "type"}) {
      json v = stored.contains(f) ? stored[f] : json();
      stored.erase(f);
      if (is_set(v)) out[f] = v;
    }
    out["regarding"] = stored["involvedObject"].is_object() ? stored["involvedObject"] : json::object();
    stored.erase("involvedObject");
    move_field(stored, "related", out, "related");
    json message = stored.contains("message") ? stored["message"] : json();
    stored.erase("message");
    if (is_set(message)) out["note"] = message;
    out["deprecatedSource"] = stored["source"].is_object() ? stored["source"] : json::object();
    stored.erase("source");
    out["deprecatedFirstTimestamp"] = stored.contains("firstTimestamp") ? stored["firstTimestamp"] : json(nullptr);
    out["deprecatedLastTimestamp"] = stored.contains("lastTimestamp") ? stored["lastTimestamp"] : json(nullptr);
    stored.erase("firstTimestamp");
    stored.erase("lastTimestamp");
    json count = stored.contains("count") ? stored["count"] : json();
    stored.erase("count");
    if (int_of(count) != 0) out["deprecatedCount"] = count;
    for (auto& [k, v] : stored.items()) out[k] = std::move(v);  // fields we do not know survive
    return out;
  }

  // events.k8s.io/v1 -> core/v1 (Convert_v1_Event_To_core_Event).
  api::Result<json> from_version(json external, const std::string& version) const override {
    json out = json::object();
    out["apiVersion"] = "v1";
    out["kind"] = "Event";
    external.erase("apiVersion");
    external.erase("kind");
    move_field(external, "metadata", out, "metadata");
    move_field(external, "regarding", out, "involvedObject");
    move_field(external, "note", out, "message");
    move_field(external, "reportingController", out, "reportingComponent");
    move_field(external, "deprecatedSource", out, "source");
    move_field(external, "deprecatedFirstTimestamp", out, "firstTimestamp");
    move_field(external, "deprecatedLastTimestamp", out, "lastTimestamp");
    move_field(external, "deprecatedCount", out, "count");
    for (auto& [k, v] : external.items()) out[k] = std::move(v);
    for (const char* f : {"firstTimestamp", "lastTimestamp", "eventTime"})
      if (out.contains(f) && out[f].is_null()) out.erase(f);
    if (out.contains("source") && out["source"].is_object() && out["source"].empty()) out.erase("source");
    return out;
  }

  void validate(const json& obj, std::vector<api::Cause>& errors) const override {
    legacy_validate(obj, RequestApi::EventsV1, errors);
    strict_validate(obj, errors);
  }
  void validate_update(const json& obj, const json& old, std::vector<api::Cause>& errors) const override {
    legacy_validate(obj, RequestApi::EventsV1, errors);
    strict_validate_update(obj, old, errors);
  }

  // AddFieldLabelConversionsForEvent: events.k8s.io names mapped onto the core/v1 ones.
  std::optional<std::string> field_value(const json& obj, const std::string& field) const override {
    static const std::string kRegarding = "regarding.";
    if (field.rfind(kRegarding, 0) == 0) {
      std::string sub = field.substr(kRegarding.size());
      if (sub == "kind" || sub == "namespace" || sub == "name" || sub == "uid" || sub == "apiVersion" ||
          sub == "resourceVersion" || sub == "fieldPath")
        return core_field(obj, "involvedObject." + sub);
      return std::nullopt;
    }
    if (field == "reportingController") return core_field(obj, "reportingComponent");
    if (field == "reason" || field == "type") return core_field(obj, field);
    return std::nullopt;
  }

  std::vector<Column> columns() const override { return event_columns(Strategy::columns()); }
  json cells(const json& obj) const override { return event_cells(obj); }

 private:
  KindInfo info_;
};

}  // namespace

std::unique_ptr<Strategy> make_event_strategy() { return std::make_unique<CoreEventStrategy>(); }
std::unique_ptr<Strategy> make_events_v1_event_strategy() { return std::make_unique<EventsV1Strategy>(); }

}  // namespace berth::apiserver
