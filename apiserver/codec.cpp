#include "apiserver/codec.h"

#include <cstring>
#include <unordered_map>

#include "api/managed_fields.h"
#include "api/decode.h"
#include "api/object.h"
#include "api/protobuf.h"
#include "api/schema.h"
#include "api/typed.h"
#include "api/validation.h"
#include "apiserver/errors.h"
#include "store/store.h"

namespace berth::apiserver {

using api::Reason;
using api::Status;
using nlohmann::json;

namespace {

std::string media_type(const net::Request& request) {
  std::string ct(request.header("content-type").value_or(""));
  auto semi = ct.find(';');
  if (semi != std::string::npos) ct.resize(semi);
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  for (auto& c : ct) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ct;
}

api::DecodeLimits limits(std::size_t max_nesting) {
  api::DecodeLimits l;
  l.max_depth = max_nesting;
  return l;
}

// The user agent's program name, as Kubernetes derives a default field manager from it.
std::string manager_from(const ResourceRequest& rr) {
  if (auto m = rr.param("fieldManager"); m && !m->empty()) return std::string(*m);
  std::string ua(rr.http->header("user-agent").value_or(""));
  auto slash = ua.find('/');
  if (slash != std::string::npos) ua.resize(slash);
  if (ua.size() > 128) ua.resize(128);
  return ua;
}

// Associative-list keys for managedFields, from the schema: x-kubernetes-list-type first,
// then the strategic-merge key, as Kubernetes derives them for built-in types.
namespace {

api::ListKeys schema_list_keys(const api::GroupVersionKind& gvk, const std::string& path) {
  api::ListKeys keys;
  const api::FieldDef* f = api::Schema::get().field_at(gvk, path);
  if (!f) return keys;
  keys.map_type = f->map_type;
  if (keys.map_type.empty() && f->shape.kind == api::TypeShape::Kind::Named && f->shape.named)
    keys.map_type = f->shape.named->map_type;  // e.g. LabelSelector is an atomic map
  if (!f->list_type.empty()) {
    keys.kind = f->list_type;
    keys.keys = f->list_map_keys;
  }
  bool merge = f->patch_strategy.find("merge") != std::string::npos;
  if (!keys.kind.empty()) {
  } else if (merge && !f->merge_key.empty()) {
    keys.kind = "map";
    keys.keys = {f->merge_key};
  } else if (merge) {
    keys.kind = "set";
  } else {
    keys.kind = "atomic";
  }
  // Ports are keyed by port and protocol, and a port without protocol means TCP.
  if (std::find(keys.keys.begin(), keys.keys.end(), "protocol") != keys.keys.end())
    keys.key_defaults = {{"protocol", "TCP"}};
  return keys;
}

}  // namespace

api::ListKeysLookup list_keys_lookup(const ResourceRequest& rr) {
  api::GroupVersionKind gvk{rr.group, rr.version, rr.info().kind};
  std::string kind_key = gvk.group + "/" + gvk.version + "/" + gvk.kind;
  return [gvk, kind_key = std::move(kind_key)](const std::string& path) {
    // The schema never changes, and every write of a kind asks about the same paths: remember
    // the answers per thread (no lock), shared with the walks that hold them. Paths can hold
    // map keys from the object, so each kind's memo is bounded.
    thread_local std::unordered_map<std::string, std::unordered_map<std::string, std::shared_ptr<const api::ListKeys>>>
        memo;
    auto& paths = memo[kind_key];
    if (auto it = paths.find(path); it != paths.end()) return it->second;
    if (paths.size() >= 4096) paths.clear();
    return paths.emplace(path, std::make_shared<const api::ListKeys>(schema_list_keys(gvk, path))).first->second;
  };
}

// Fields a write through this endpoint cannot set (so apply does not claim them):
// status on the main resource of a kind with a status subresource, and the rest on /status.
std::vector<std::string> reset_fields(const ResourceRequest& rr) {
  if (!rr.info().has_status) return {};
  if (rr.subresource == "status") return {"spec", "metadata.labels", "metadata.annotations"};
  return {"status"};
}

}  // namespace

api::Result<Decoded> decode_request_body(const net::Request& request, std::size_t max_nesting) {
  std::string type = media_type(request);
  if (type.empty() || type == "application/json" || type == "application/merge-patch+json" ||
      type == "application/strategic-merge-patch+json" || type == "application/json-patch+json")
    return api::parse_json(request.body, limits(max_nesting));
  if (type == "application/yaml" || type == "application/apply-patch+yaml" || type == "text/yaml") {
    if (api::looks_like_json(request.body)) return api::parse_json(request.body, limits(max_nesting));
    if (request.body.empty()) return Status(Reason::BadRequest, "the body of the request was empty");
    auto docs = api::parse_yaml(request.body, limits(max_nesting));
    if (!docs) return docs.take_status();
    if (docs->empty()) return Status(Reason::BadRequest, "the body of the request was empty");
    return std::move(docs->front());
  }
  if (type == "application/vnd.kubernetes.protobuf") {
    auto obj = api::decode_protobuf(request.body);
    if (!obj) return obj.take_status();
    return Decoded{std::move(*obj), {}, {}};
  }
  return Status(Reason::UnsupportedMediaType,
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json, application/yaml, application/vnd.kubernetes.protobuf");
}

api::Result<json> decode_patch_body(const net::Request& request, std::size_t max_nesting) {
  auto decoded = api::parse_json(request.body, limits(max_nesting));
  if (!decoded) return decoded.take_status();
  return std::move(decoded->value);
}

namespace {

// The object's text without metadata.resourceVersion, written member by member (no copy of
// the tree to erase it); with slot, also where that key goes among metadata's sorted keys.
std::string write_stored(const json& obj, RvSlot* slot) {
  if (!at(obj, {"metadata"}).is_object()) return api::to_json_text(obj);
  std::string out;
  out.reserve(4096);
  out.push_back('{');
  bool first = true;
  for (const auto& [key, value] : obj.get_ref<const json::object_t&>()) {
    if (!first) out.push_back(',');
    first = false;
    api::append_json_string(out, key);
    out.push_back(':');
    if (key != "metadata") {
      api::append_json_text(out, value);
      continue;
    }
    out.push_back('{');
    bool first_member = true, placed = false;
    for (const auto& [mkey, mvalue] : value.get_ref<const json::object_t&>()) {
      if (mkey == "resourceVersion") continue;
      if (slot && !placed && mkey > "resourceVersion") {
        *slot = RvSlot{out.size(), !first_member, true};
        placed = true;
      }
      if (!first_member) out.push_back(',');
      first_member = false;
      api::append_json_string(out, mkey);
      out.push_back(':');
      api::append_json_text(out, mvalue);
    }
    if (slot && !placed) *slot = RvSlot{out.size(), !first_member, false};
    out.push_back('}');
  }
  out.push_back('}');
  return out;
}

}  // namespace

std::string encode_stored(const json& obj) { return write_stored(obj, nullptr); }

std::string encode_stored(const json& obj, std::string_view api_version, std::string_view kind, RvSlot& slot) {
  slot = RvSlot{};
  const json& av = at(obj, {"apiVersion"});
  const json& k = at(obj, {"kind"});
  const bool served_as_stored = av.is_string() && av.get_ref<const std::string&>() == api_version && k.is_string() &&
                                k.get_ref<const std::string&>() == kind;
  return write_stored(obj, served_as_stored ? &slot : nullptr);
}

bool splice_at_slot(std::string_view stored, const RvSlot& slot, std::string_view rv, std::string& out) {
  if (slot.at == std::string::npos || slot.at > stored.size()) return false;
  out.reserve(out.size() + stored.size() + rv.size() + 24);
  out.append(stored.substr(0, slot.at));
  if (slot.comma_before) out.push_back(',');
  out += "\"resourceVersion\":\"";
  out.append(rv);
  out.push_back('"');
  if (!slot.comma_before && slot.comma_after) out.push_back(',');
  out.append(stored.substr(slot.at));
  return true;
}

namespace {

constexpr std::size_t kNpos = std::string_view::npos;

// Just past the JSON string that starts at s[i] ('"').
std::size_t skip_string(std::string_view s, std::size_t i) {
  const char* base = s.data();
  const char* end = base + s.size();
  const char* p = base + i + 1;
  while (p < end) {
    const char* quote = static_cast<const char*>(std::memchr(p, '"', static_cast<std::size_t>(end - p)));
    if (!quote) return kNpos;
    const char* escape = static_cast<const char*>(std::memchr(p, '\\', static_cast<std::size_t>(quote - p)));
    if (!escape) return static_cast<std::size_t>(quote - base) + 1;
    p = escape + 2;  // the escaped character, whatever it is, does not end the string
  }
  return kNpos;
}

// Just past the compact JSON value that starts at s[i].
std::size_t skip_value(std::string_view s, std::size_t i) {
  if (i >= s.size()) return kNpos;
  char c = s[i];
  if (c == '"') return skip_string(s, i);
  if (c == '{' || c == '[') {
    int depth = 0;
    while (i < s.size()) {
      c = s[i];
      if (c == '"') {
        i = skip_string(s, i);
        if (i == kNpos) return kNpos;
        continue;
      }
      if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
      ++i;
    }
    return kNpos;
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']') ++i;
  return i < s.size() ? i : kNpos;
}

// One member of a compact object: its key (raw, without escapes) and where it starts and ends.
struct Member {
  std::string_view key;
  std::size_t start, value, end;
};

// The members of the compact object at s[i] ('{'); false on anything else, or on a key with
// an escape (whose order encode_stored's writer would not show raw).
bool members_of(std::string_view s, std::size_t i, std::vector<Member>& out, std::size_t& close) {
  if (i >= s.size() || s[i] != '{') return false;
  ++i;
  if (i < s.size() && s[i] == '}') {
    close = i;
    return true;
  }
  for (;;) {
    if (i >= s.size() || s[i] != '"') return false;
    std::size_t key_end = skip_string(s, i);
    if (key_end == kNpos || key_end >= s.size() || s[key_end] != ':') return false;
    std::string_view key = s.substr(i + 1, key_end - i - 2);
    if (key.find('\\') != std::string_view::npos) return false;
    std::size_t end = skip_value(s, key_end + 1);
    if (end == kNpos || end >= s.size()) return false;
    out.push_back({key, i, key_end + 1, end});
    if (s[end] == '}') {
      close = end;
      return true;
    }
    if (s[end] != ',') return false;
    i = end + 1;
  }
}

}  // namespace

bool splice_stored(std::string_view s, std::string_view rv, std::string_view api_version, std::string_view kind,
                   bool drop_type_meta, std::string& out) {
  // The members up to metadata. In key order only apiVersion and kind can come before it; what
  // follows it (spec, status) is copied as it is, unscanned.
  if (s.size() < 2 || s[0] != '{' || s.back() != '}') return false;
  Member top[4];
  std::size_t n = 0;
  const Member* meta = nullptr;
  for (std::size_t i = 1;;) {
    if (i >= s.size() || s[i] != '"' || n == 4) return false;
    std::size_t key_end = skip_string(s, i);
    if (key_end == kNpos || key_end >= s.size() || s[key_end] != ':') return false;
    std::string_view key = s.substr(i + 1, key_end - i - 2);
    std::size_t end = skip_value(s, key_end + 1);
    if (end == kNpos || end >= s.size() || (s[end] != ',' && s[end] != '}')) return false;
    top[n++] = {key, i, key_end + 1, end};
    if (key == "metadata") {
      meta = &top[n - 1];
      break;
    }
    if (s[end] == '}') return false;  // no metadata
    i = end + 1;
  }
  auto is_string = [&](const Member& m, std::string_view want) {
    std::size_t len = m.end - m.value;
    return len == want.size() + 2 && s[m.value] == '"' && s.substr(m.value + 1, want.size()) == want;
  };
  bool av_ok = false, kind_ok = false;
  for (std::size_t k = 0; k + 1 < n; ++k) {
    if (top[k].key == "apiVersion") av_ok = is_string(top[k], api_version);
    else if (top[k].key == "kind") kind_ok = is_string(top[k], kind);
  }
  if (!av_ok || !kind_ok) return false;
  std::vector<Member> md;
  md.reserve(16);
  std::size_t md_close = 0;
  if (!members_of(s, meta->value, md, md_close) || md_close + 1 != meta->end) return false;
  // Where resourceVersion goes among metadata's sorted keys.
  std::size_t before = md.size();
  for (std::size_t k = 0; k < md.size(); ++k) {
    if (md[k].key == "resourceVersion") return false;
    if (md[k].key > std::string_view("resourceVersion")) {
      before = k;
      break;
    }
  }
  out.reserve(out.size() + s.size() + rv.size() + 24);
  out += '{';
  for (std::size_t k = 0; k + 1 < n; ++k) {
    if (drop_type_meta && (top[k].key == "apiVersion" || top[k].key == "kind")) continue;
    out.append(s.substr(top[k].start, top[k].end + 1 - top[k].start));  // with its comma
  }
  // "metadata":{ ...members before... "resourceVersion":"rv" ...members after... }, then the rest
  const Member& m = *meta;
  out.append(s.substr(m.start, m.value + 1 - m.start));
  std::size_t split = before < md.size() ? md[before].start : md_close;
  out.append(s.substr(m.value + 1, split - (m.value + 1)));
  if (before > 0 && before == md.size()) out += ',';
  out += "\"resourceVersion\":\"";
  out.append(rv);
  out += '"';
  if (before < md.size()) out += ',';
  out.append(s.substr(split));
  return true;
}

api::Result<json> decode_stored(const store::Object& object) {
  json obj = json::parse(object.value, nullptr, false);
  if (obj.is_discarded() || !obj.is_object())
    return Status(Reason::InternalError, "stored object " + object.key + " is not valid JSON");
  obj["metadata"]["resourceVersion"] = std::to_string(object.mod_revision);
  return obj;
}

Status check_type_meta(const ResourceRequest& rr, json& obj) {
  const auto& i = rr.info();
  std::string want_version = rr.api_version();
  if (obj.contains("apiVersion") && !obj["apiVersion"].is_string())
    return bad_request("apiVersion must be a string");
  if (obj.contains("kind") && !obj["kind"].is_string()) return bad_request("kind must be a string");
  std::string av = obj.value("apiVersion", ""), kind = obj.value("kind", "");
  if (!av.empty() && av != want_version)
    return bad_request("the API version in the data (" + av + ") does not match the expected API version (" +
                       want_version + ")");
  if (!kind.empty() && kind != i.kind)
    return bad_request(kind + " in version \"" + rr.version + "\" cannot be handled as a " + i.kind +
                       ": the kind in the data does not match the expected kind " + i.kind);
  obj["apiVersion"] = want_version;
  obj["kind"] = i.kind;
  if (obj.contains("metadata") && !obj["metadata"].is_object() && !obj["metadata"].is_null())
    return bad_request(i.kind + " in version \"" + rr.version + "\" cannot be handled as a " + i.kind +
                       ": json: cannot unmarshal " + std::string(obj["metadata"].type_name()) +
                       " into Go struct field " + i.kind + ".metadata of type v1.ObjectMeta");
  return {};
}

namespace {

// The strict decoding problems fieldValidation=Strict refuses; warnings when it is Warn.
Status strict_problems(const ResourceRequest& rr, const json& obj, const std::vector<std::string>& strict_errors,
                       std::vector<std::string>& warnings, std::vector<std::string>& problems) {
  std::string mode(rr.param("fieldValidation").value_or("Warn"));
  if (mode == "Ignore") return {};
  if (mode != "Strict" && mode != "Warn")
    return bad_request("fieldValidation parameter unsupported: " + mode);
  problems = strict_errors;
  for (const auto& u : api::unknown_fields({rr.group, rr.version, rr.info().kind}, obj))
    problems.push_back("unknown field \"" + u + "\"");
  if (mode == "Warn") {
    warnings.insert(warnings.end(), problems.begin(), problems.end());
    problems.clear();
  }
  return {};
}

Status patch_invalid(const std::string& shown, const std::string& message) {
  return invalid("", "", "", {api::field_invalid("patch", json(shown), message)});
}

}  // namespace

Status validate_fields(const ResourceRequest& rr, const json& obj, const std::vector<std::string>& strict_errors,
                       std::vector<std::string>& warnings) {
  std::vector<std::string> problems;
  if (auto s = strict_problems(rr, obj, strict_errors, warnings, problems); !s) return s;
  if (problems.empty()) return {};
  const auto& kind = rr.info().kind;
  return bad_request(kind + " in version \"" + rr.version + "\" cannot be handled as a " + kind + ": " +
                     api::strict_decoding_message(problems));
}

Status validate_patched_fields(const ResourceRequest& rr, const json& patched, const std::function<std::string()>& shown,
                               std::vector<std::string>& warnings) {
  std::vector<std::string> problems;
  if (auto s = strict_problems(rr, patched, {}, warnings, problems); !s) return s;
  if (problems.empty()) return {};
  return patch_invalid(shown(), api::strict_decoding_message(problems));
}

Status check_types(const ResourceRequest& rr, json& obj) {
  const auto& kind = rr.info().kind;
  auto error = api::typed_decode({rr.group, rr.version, kind}, obj);
  if (error.empty()) return {};
  return bad_request(kind + " in version \"" + rr.version + "\" cannot be handled as a " + kind + ": " + error);
}

Status check_patched_types(const ResourceRequest& rr, json& patched, bool strategic,
                           const std::function<std::string()>& shown) {
  auto error = api::typed_decode({rr.group, rr.version, rr.info().kind}, patched,
                                 strategic ? api::TypedMode::Unstructured : api::TypedMode::Json);
  if (error.empty()) return {};
  return patch_invalid(shown(), error);
}

void add_warnings(net::Response& response, const std::vector<std::string>& warnings) {
  for (const auto& w : warnings) {
    std::string escaped;
    for (char c : w) {
      if (c == '"' || c == '\\') escaped.push_back('\\');
      escaped.push_back(c);
    }
    response.headers.emplace_back("Warning", "299 - \"" + escaped + "\"");
  }
}


std::vector<std::string> finalizers_of(const json& obj) {
  std::vector<std::string> out;
  const json& f = at(obj, {"metadata", "finalizers"});
  if (f.is_array())
    for (const auto& v : f)
      if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

api::PatchMetaLookup patch_meta_lookup(const ResourceRequest& rr) {
  return api::patch_meta_lookup({rr.group, rr.version, rr.info().kind});
}

void record_managed_fields(const ResourceRequest& rr, const json& old, json& obj, const std::string& operation) {
  if (rr.applying) return;  // the apply merge recorded ownership itself
  std::string manager = manager_from(rr);
  if (manager.empty()) manager = "unknown";
  api::GroupVersionKind gvk{rr.group, rr.version, rr.info().kind};
  // record_update always answers with the object (untracked when it cannot type it).
  auto updated = api::record_update(old.is_null() ? api::Schema::get().zero_object(gvk) : old, std::move(obj), manager,
                                    rr.api_version(), rr.subresource, now_rfc3339(), list_keys_lookup(rr),
                                    reset_fields(rr));
  obj = std::move(*updated);
}

api::Result<json> server_side_apply(const ResourceRequest& rr, const json& live, const json& applied,
                                    const std::string& manager, bool force) {
  api::ApplyOptions options;
  options.kind = rr.info().kind;
  options.subresource = rr.subresource;
  options.ignored_paths = reset_fields(rr);
  options.url_name = rr.name;
  options.url_namespace = rr.namespace_;
  options.zero_object = api::Schema::get().zero_object({rr.group, rr.version, rr.info().kind});
  return api::server_side_apply(live, applied, manager, force, rr.api_version(), now_rfc3339(), list_keys_lookup(rr),
                                options);
}

api::Result<DeleteOptions> decode_delete_options(const net::Request& request) {
  DeleteOptions o;
  json body;
  if (!request.body.empty()) {
    auto decoded = decode_request_body(request, 100);
    if (!decoded) return decoded.take_status();
    body = std::move(decoded->value);
    if (!body.is_object()) return Status(Reason::BadRequest, "DeleteOptions must be an object");
  }
  auto field = [&](const char* name) -> json {
    if (body.is_object() && body.contains(name)) return body[name];
    if (auto p = request.param(name)) return json(std::string(*p));
    return json();
  };
  json policy = field("propagationPolicy");
  if (policy.is_string()) o.propagation_policy = policy.get<std::string>();
  json orphan = field("orphanDependents");
  if (o.propagation_policy.empty() && (orphan == true || orphan == "true")) o.propagation_policy = "Orphan";
  if (orphan == false || orphan == "false") {
    if (o.propagation_policy.empty()) o.propagation_policy = "Background";
  }
  if (!o.propagation_policy.empty() && o.propagation_policy != "Orphan" && o.propagation_policy != "Background" &&
      o.propagation_policy != "Foreground") {
    Status s(Reason::Invalid, "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"" +
                                  o.propagation_policy + "\": supported values: \"Foreground\", \"Background\", \"Orphan\"");
    s.with_cause({"FieldValueNotSupported",
                  "Unsupported value: \"" + o.propagation_policy + "\": supported values: \"Foreground\", \"Background\", \"Orphan\"",
                  "propagationPolicy"});
    return s;
  }
  json grace = field("gracePeriodSeconds");
  if (grace.is_number_integer()) o.grace_period_seconds = grace.get<std::int64_t>();
  else if (grace.is_string()) {
    try {
      o.grace_period_seconds = std::stoll(grace.get<std::string>());
    } catch (...) {
      return Status(Reason::BadRequest, "gracePeriodSeconds must be an integer");
    }
  }
  if (body.is_object() && body.contains("preconditions") && body["preconditions"].is_object()) {
    const json& p = body["preconditions"];
    if (p.contains("uid") && p["uid"].is_string()) o.uid = p["uid"].get<std::string>();
    if (p.contains("resourceVersion") && p["resourceVersion"].is_string())
      o.resource_version = p["resourceVersion"].get<std::string>();
  }
  return o;
}

}  // namespace berth::apiserver
