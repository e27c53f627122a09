// Patch application. Behaviour and error texts follow, as of Kubernetes 1.32:
//   JSON patch:      gopkg.in/evanphx/json-patch.v4 v4.12.0 patch.go (what k8s.io/apiserver v0.32 links)
//   merge patch:     the same library's merge.go
//   strategic merge: k8s.io/apimachinery v0.32 pkg/util/strategicpatch/patch.go (StrategicMergeMapPatch)
//   status codes:    k8s.io/apiserver v0.32 pkg/endpoints/handlers/patch.go (applyJSPatch, strategicPatchObject,
//                    interpretStrategicMergePatchError), with the default fieldValidation=Warn, which decodes
//                    the body strictly first.
// The upstream code works on Go values (map[string]interface{}, []interface{}, int64, float64, ...); where
// its result depends on Go's notion of equality or type identity (int64 1 != float64 1.0) we reproduce that.
#include "api/patch.h"

#include <charconv>
#include <initializer_list>
#include <cstdint>
#include <limits>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "api/validation.h"

namespace berth::api {
namespace {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------------------
// Go value semantics and formatting, for equality decisions and for error messages that match upstream's.

enum class GoKind { Nil, Map, Slice, String, Bool, Int, Float };

GoKind go_kind(const json& v) {
  switch (v.type()) {
    case json::value_t::object: return GoKind::Map;
    case json::value_t::array: return GoKind::Slice;
    case json::value_t::string: return GoKind::String;
    case json::value_t::boolean: return GoKind::Bool;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return GoKind::Int;
    case json::value_t::number_float: return GoKind::Float;
    default: return GoKind::Nil;
  }
}

bool int_equal(const json& a, const json& b) {
  bool au = a.is_number_unsigned(), bu = b.is_number_unsigned();
  if (au && bu) return a.get<std::uint64_t>() == b.get<std::uint64_t>();
  if (!au && !bu) return a.get<std::int64_t>() == b.get<std::int64_t>();
  const json& u = au ? a : b;
  const json& s = au ? b : a;
  auto sv = s.get<std::int64_t>();
  return sv >= 0 && static_cast<std::uint64_t>(sv) == u.get<std::uint64_t>();
}

// Go's == on decoded JSON values: an integer never equals a float (the apiserver decodes integers as int64 and
// everything else as float64). Go panics comparing maps or slices; we compare them deeply instead.
bool go_equal(const json& a, const json& b) {
  GoKind ka = go_kind(a), kb = go_kind(b);
  if (ka != kb) return false;
  switch (ka) {
    case GoKind::Nil: return true;
    case GoKind::Bool: return a.get<bool>() == b.get<bool>();
    case GoKind::String: return a.get_ref<const std::string&>() == b.get_ref<const std::string&>();
    case GoKind::Int: return int_equal(a, b);
    case GoKind::Float: return a.get<double>() == b.get<double>();
    case GoKind::Map: {
      if (a.size() != b.size()) return false;
      for (auto it = a.begin(); it != a.end(); ++it) {
        auto jt = b.find(it.key());
        if (jt == b.end() || !go_equal(it.value(), *jt)) return false;
      }
      return true;
    }
    case GoKind::Slice: {
      if (a.size() != b.size()) return false;
      for (std::size_t i = 0; i < a.size(); ++i)
        if (!go_equal(a[i], b[i])) return false;
      return true;
    }
  }
  return false;
}

// A string that is equal for two values exactly when go_equal says they are, for hashing.
std::string go_key(const json& v) {
  switch (go_kind(v)) {
    case GoKind::Nil: return "n";
    case GoKind::Bool: return v.get<bool>() ? "t" : "f";
    case GoKind::Int: return "i" + v.dump();
    case GoKind::Float: return v.get<double>() == 0 ? "d0" : "d" + v.dump();
    case GoKind::String: return "s" + v.get<std::string>();
    case GoKind::Map:
    case GoKind::Slice: return "c" + v.dump();
  }
  return "";
}

// strconv.FormatFloat(f, 'g', -1, 64), which is what %v prints for a float64.
std::string go_float(double f) {
  char buf[64];
  auto sci = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
  std::string s(buf, sci.ptr);
  auto e = s.find('e');
  int exp = std::stoi(s.substr(e + 1));
  if (exp < -4 || exp >= 6) return s;  // shortest %g switches to %e from exponent 6 (eprec = 6)
  auto fixed = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::fixed);
  return std::string(buf, fixed.ptr);
}

// fmt's %v of a decoded JSON value: map[k:v ...] with sorted keys, [a b], <nil>.
std::string go_v(const json& v) {
  switch (go_kind(v)) {
    case GoKind::Nil: return "<nil>";
    case GoKind::Bool: return v.get<bool>() ? "true" : "false";
    case GoKind::String: return v.get<std::string>();
    case GoKind::Int: return v.dump();
    case GoKind::Float: return go_float(v.get<double>());
    case GoKind::Map: {
      std::string out = "map[";
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += ' ';
        first = false;
        out += it.key() + ":" + go_v(it.value());
      }
      return out + "]";
    }
    case GoKind::Slice: {
      std::string out = "[";
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) out += ' ';
        out += go_v(v[i]);
      }
      return out + "]";
    }
  }
  return "";
}

// reflect.TypeOf(v).String() for a decoded JSON value (as printed by %s; a nil type prints as %!s(<nil>)).
std::string go_type_name(const json& v) {
  switch (go_kind(v)) {
    case GoKind::Nil: return "%!s(<nil>)";
    case GoKind::Map: return "map[string]interface {}";
    case GoKind::Slice: return "[]interface {}";
    case GoKind::String: return "string";
    case GoKind::Bool: return "bool";
    case GoKind::Int: return "int64";
    case GoKind::Float: return "float64";
  }
  return "";
}

// fmt's %s of a decoded JSON value.
std::string go_s(const json& v) {
  switch (go_kind(v)) {
    case GoKind::String: return v.get<std::string>();
    case GoKind::Nil: return "%!s(<nil>)";
    case GoKind::Bool:
    case GoKind::Int:
    case GoKind::Float: return "%!s(" + go_type_name(v) + "=" + go_v(v) + ")";
    default: return go_v(v);
  }
}

// The word encoding/json uses for a JSON value in an UnmarshalTypeError.
const char* json_value_word(const json& v) {
  switch (go_kind(v)) {
    case GoKind::Map: return "object";
    case GoKind::Slice: return "array";
    case GoKind::String: return "string";
    case GoKind::Bool: return "bool";
    case GoKind::Int:
    case GoKind::Float: return "number";
    case GoKind::Nil: return "null";
  }
  return "";
}

// strconv.Atoi: optional sign, decimal digits, int64 range.
std::optional<std::int64_t> go_atoi(const std::string& s, std::string* err) {
  std::size_t i = 0;
  bool neg = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    neg = s[0] == '-';
    i = 1;
  }
  if (i >= s.size()) {
    *err = "strconv.Atoi: parsing " + go_quote(s) + ": invalid syntax";
    return std::nullopt;
  }
  std::uint64_t mag = 0;
  bool overflow = false;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') {
      *err = "strconv.Atoi: parsing " + go_quote(s) + ": invalid syntax";
      return std::nullopt;
    }
    if (mag > (std::numeric_limits<std::uint64_t>::max() - 9) / 10) overflow = true;
    if (!overflow) mag = mag * 10 + static_cast<std::uint64_t>(s[i] - '0');
  }
  const std::uint64_t limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + (neg ? 1 : 0);
  if (overflow || mag > limit) {
    *err = "strconv.Atoi: parsing " + go_quote(s) + ": value out of range";
    return std::nullopt;
  }
  if (neg) return mag == limit ? std::numeric_limits<std::int64_t>::min() : -static_cast<std::int64_t>(mag);
  return static_cast<std::int64_t>(mag);
}

// strings.Split: n separators give n+1 parts, "" gives [""].
std::vector<std::string> go_split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    auto pos = s.find(sep, start);
    if (pos == std::string::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// ---------------------------------------------------------------------------------------------------------
// JSON patch (RFC 6902) as evanphx/json-patch v4.12.0 applies it. An error is its message (pkg/errors style
// "context: cause"); nullopt is success. A JSON null and an absent value are the same thing there (nil).

using OpError = std::optional<std::string>;

std::string invalid_index(std::int64_t idx) {
  return "Unable to access invalid index: " + std::to_string(idx) + ": invalid index referenced";
}

// RFC 6901 unescaping in one left-to-right pass, so "~01" is "~1".
std::string decode_pointer_token(const std::string& k) {
  std::string out;
  for (std::size_t i = 0; i < k.size(); ++i) {
    if (k[i] == '~' && i + 1 < k.size() && (k[i + 1] == '0' || k[i + 1] == '1')) {
      out += k[i + 1] == '0' ? '~' : '/';
      ++i;
    } else {
      out += k[i];
    }
  }
  return out;
}

// container.get: nullptr for an absent or null member.
OpError container_get(json& c, const std::string& key, json** out) {
  *out = nullptr;
  if (c.is_object()) {
    auto it = c.find(key);
    if (it != c.end() && !it->is_null()) *out = &*it;
    return std::nullopt;
  }
  std::string err;
  auto idx = go_atoi(key, &err);
  if (!idx) return err;
  auto n = static_cast<std::int64_t>(c.size());
  std::int64_t i = *idx;
  if (i < 0) {
    if (i < -n) return invalid_index(*idx);
    i += n;
  }
  if (i >= n) return invalid_index(i);
  if (!c[static_cast<std::size_t>(i)].is_null()) *out = &c[static_cast<std::size_t>(i)];
  return std::nullopt;
}

// container.set: only used by replace, after get has validated an array index.
OpError container_set(json& c, const std::string& key, json val) {
  if (c.is_object()) {
    c[key] = std::move(val);
    return std::nullopt;
  }
  std::string err;
  auto idx = go_atoi(key, &err);
  if (!idx) return err;
  auto n = static_cast<std::int64_t>(c.size());
  std::int64_t i = *idx;
  if (i < 0) {
    if (i < -n) return invalid_index(*idx);
    i += n;
  }
  if (i >= n) return invalid_index(i);
  c[static_cast<std::size_t>(i)] = std::move(val);
  return std::nullopt;
}

OpError container_add(json& c, const std::string& key, json val) {
  if (c.is_object()) {
    c[key] = std::move(val);
    return std::nullopt;
  }
  if (key == "-") {
    c.push_back(std::move(val));
    return std::nullopt;
  }
  std::string err;
  auto idx = go_atoi(key, &err);
  if (!idx) return "value was not a proper array index: '" + key + "': " + err;
  auto size = static_cast<std::int64_t>(c.size()) + 1;
  std::int64_t i = *idx;
  if (i >= size) return invalid_index(*idx);
  if (i < 0) {
    if (i < -size) return invalid_index(*idx);
    i += size;
  }
  c.insert(c.begin() + i, std::move(val));
  return std::nullopt;
}

OpError container_remove(json& c, const std::string& key) {
  if (c.is_object()) {
    auto it = c.find(key);
    if (it == c.end()) return "Unable to remove nonexistent key: " + key + ": missing value";
    c.erase(it);
    return std::nullopt;
  }
  std::string err;
  auto idx = go_atoi(key, &err);
  if (!idx) return err;
  auto n = static_cast<std::int64_t>(c.size());
  std::int64_t i = *idx;
  if (i >= n) return invalid_index(*idx);
  if (i < 0) {
    if (i < -n) return invalid_index(*idx);
    i += n;
  }
  c.erase(c.begin() + i);
  return std::nullopt;
}

struct Location {
  json* container;
  std::string key;
};

// findObject: walks every token but the last. The first token (before the first '/') is ignored, as
// upstream does; a path without '/' (including "") has no location.
std::optional<Location> find_object(json& root, const std::string& path) {
  auto parts = go_split(path, '/');
  if (parts.size() < 2) return std::nullopt;
  json* doc = &root;
  for (std::size_t i = 1; i + 1 < parts.size(); ++i) {
    json* next = nullptr;
    if (container_get(*doc, decode_pointer_token(parts[i]), &next) || next == nullptr) return std::nullopt;
    if (!next->is_object() && !next->is_array()) return std::nullopt;
    doc = next;
  }
  return Location{doc, decode_pointer_token(parts.back())};
}

// lazyNode.equal: structural for objects and arrays; scalars compare as their JSON text did upstream, which
// we approximate by kind and value (so 1 and 1.0 differ, as "1" and "1.0" do).
bool patch_value_equal(const json& a, const json& b) {
  if (a.is_object()) {
    if (!b.is_object() || a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      auto jt = b.find(it.key());
      if (jt == b.end()) return false;
      if (it->is_null() != jt->is_null()) return false;
      if (!it->is_null() && !patch_value_equal(*it, *jt)) return false;
    }
    return true;
  }
  if (a.is_array()) {
    if (!b.is_array() || a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!patch_value_equal(a[i], b[i])) return false;
    return true;
  }
  if (b.is_object() || b.is_array()) return false;
  return go_equal(a, b);
}

const json* member(const json& op, const char* name) {
  auto it = op.find(name);
  return it == op.end() || it->is_null() ? nullptr : &*it;
}

std::string op_kind(const json& op) {
  const json* v = op.is_object() ? member(op, "op") : nullptr;
  return v && v->is_string() ? v->get<std::string>() : "unknown";
}

// Operation.Path / Operation.From: nullopt when absent (the strict decode already rejected non-strings).
std::optional<std::string> op_string(const json& op, const char* name) {
  const json* v = member(op, name);
  if (!v || !v->is_string()) return std::nullopt;
  return v->get<std::string>();
}

json op_value(const json& op) {
  auto it = op.find("value");
  return it == op.end() ? json(nullptr) : *it;
}

bool op_has_value(const json& op) { return op.find("value") != op.end(); }

const char* kMissingPath = "operation missing path field: missing value";
const char* kMissingFrom = "operation, missing from field: missing value";

OpError op_add(json& doc, const json& op) {
  auto path = op_string(op, "path");
  if (!path) return std::string("add operation failed to decode path: missing value");
  auto loc = find_object(doc, *path);
  if (!loc) return "add operation does not apply: doc is missing path: \"" + *path + "\": missing value";
  if (auto err = container_add(*loc->container, loc->key, op_value(op)))
    return "error in add for path: '" + *path + "': " + *err;
  return std::nullopt;
}

OpError op_remove(json& doc, const json& op) {
  auto path = op_string(op, "path");
  if (!path) return std::string("remove operation failed to decode path: missing value");
  auto loc = find_object(doc, *path);
  if (!loc) return "remove operation does not apply: doc is missing path: \"" + *path + "\": missing value";
  if (auto err = container_remove(*loc->container, loc->key))
    return "error in remove for path: '" + *path + "': " + *err;
  return std::nullopt;
}

OpError op_replace(json& doc, const json& op) {
  auto path = op_string(op, "path");
  if (!path) return std::string("replace operation failed to decode path: ") + kMissingPath;
  if (path->empty()) {
    // Upstream wraps a nil error when the value is neither object nor array, which yields no error at all:
    // such a replace of the whole document is silently ignored.
    json v = op_value(op);
    if (v.is_object() || v.is_array()) doc = std::move(v);
    return std::nullopt;
  }
  auto loc = find_object(doc, *path);
  if (!loc) return "replace operation does not apply: doc is missing path: " + *path + ": missing value";
  json* existing = nullptr;
  // An absent object key is not an error here (partialDoc.get never fails), so replace then adds the key.
  if (container_get(*loc->container, loc->key, &existing))
    return "replace operation does not apply: doc is missing key: " + *path + ": missing value";
  if (auto err = container_set(*loc->container, loc->key, op_value(op)))
    return "error in remove for path: '" + *path + "': " + *err;
  return std::nullopt;
}

OpError op_move(json& doc, const json& op) {
  auto from = op_string(op, "from");
  if (!from) return std::string("move operation failed to decode from: ") + kMissingFrom;
  auto floc = find_object(doc, *from);
  if (!floc) return "move operation does not apply: doc is missing from path: " + *from + ": missing value";
  json* found = nullptr;
  if (auto err = container_get(*floc->container, floc->key, &found))
    return "error in move for path: '" + floc->key + "': " + *err;
  json val = found ? *found : json(nullptr);
  if (auto err = container_remove(*floc->container, floc->key))
    return "error in move for path: '" + floc->key + "': " + *err;
  auto path = op_string(op, "path");
  if (!path) return std::string("move operation failed to decode path: ") + kMissingPath;
  auto loc = find_object(doc, *path);
  if (!loc) return "move operation does not apply: doc is missing destination path: " + *path + ": missing value";
  if (auto err = container_add(*loc->container, loc->key, std::move(val)))
    return "error in move for path: '" + *path + "': " + *err;
  return std::nullopt;
}

OpError op_test(json& doc, const json& op) {
  auto path = op_string(op, "path");
  if (!path) return std::string("test operation failed to decode path: ") + kMissingPath;
  if (path->empty()) {
    if (op_has_value(op) && patch_value_equal(doc, op_value(op))) return std::nullopt;
    return "testing value " + *path + " failed: test failed";
  }
  auto loc = find_object(doc, *path);
  if (!loc) return "test operation does not apply: is missing path: " + *path + ": missing value";
  json* val = nullptr;
  if (auto err = container_get(*loc->container, loc->key, &val))
    return "error in test for path: '" + *path + "': " + *err;
  json want = op_value(op);
  if (val == nullptr) {
    // An absent or null target passes only against an explicit null.
    if (op_has_value(op) && want.is_null()) return std::nullopt;
    return "testing value " + *path + " failed: test failed";
  }
  if (!op_has_value(op) || want.is_null() || !patch_value_equal(*val, want))
    return "testing value " + *path + " failed: test failed";
  return std::nullopt;
}

OpError op_copy(json& doc, const json& op) {
  auto from = op_string(op, "from");
  if (!from) return std::string("copy operation failed to decode from: ") + kMissingFrom;
  auto floc = find_object(doc, *from);
  if (!floc) return "copy operation does not apply: doc is missing from path: " + *from + ": missing value";
  json* found = nullptr;
  if (auto err = container_get(*floc->container, floc->key, &found))
    return "error in copy for from: '" + *from + "': " + *err;
  // Copying an absent object key copies nil, i.e. writes null at the destination (upstream behaviour).
  json val = found ? *found : json(nullptr);
  auto path = op_string(op, "path");
  if (!path) return std::string("copy operation failed to decode path: missing value");
  auto loc = find_object(doc, *path);
  if (!loc) return "copy operation does not apply: doc is missing destination path: " + *path + ": missing value";
  if (auto err = container_add(*loc->container, loc->key, std::move(val)))
    return "error while adding value during copy: " + *err;
  return std::nullopt;
}

// The apiserver first decodes the body strictly into []handlers.jsonPatchOp{Op, Path, From string; Value any};
// a body of the wrong shape is a 400 with that decoder's message.
std::optional<std::string> json_patch_decode_error(const json& patch) {
  const std::string prefix = "error decoding patch: json: cannot unmarshal ";
  if (!patch.is_array()) return prefix + json_value_word(patch) + " into Go value of type []handlers.jsonPatchOp";
  for (const auto& op : patch) {
    if (op.is_null()) continue;
    if (!op.is_object()) return prefix + json_value_word(op) + " into Go value of type handlers.jsonPatchOp";
    for (const char* field : {"op", "path", "from"}) {
      auto it = op.find(field);
      if (it != op.end() && !it->is_null() && !it->is_string())
        return prefix + json_value_word(*it) + " into Go struct field jsonPatchOp." + field + " of type string";
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------------------
// JSON merge patch (RFC 7386) as evanphx/json-patch v4.12.0 MergePatch applies it.

void prune_nulls(json& v) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end();) {
      if (it->is_null()) {
        it = v.erase(it);
      } else {
        prune_nulls(*it);
        ++it;
      }
    }
  } else if (v.is_array()) {
    for (auto& e : v)
      if (!e.is_null()) prune_nulls(e);  // null elements of arrays stay
  }
}

void merge_docs(json& doc, const json& patch);

void merge_value(json& cur, const json& patch) {
  if (!cur.is_object()) {
    cur = patch;
    prune_nulls(cur);
  } else if (!patch.is_object()) {
    cur = patch;  // upstream does not prune here
  } else {
    merge_docs(cur, patch);
  }
}

void merge_docs(json& doc, const json& patch) {
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (it->is_null()) {
      doc.erase(it.key());
      continue;
    }
    auto cur = doc.find(it.key());
    if (cur == doc.end() || cur->is_null()) {
      json v = *it;
      prune_nulls(v);
      doc[it.key()] = std::move(v);
    } else {
      merge_value(*cur, *it);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Strategic merge patch, mirroring strategicpatch.mergeMap with MergeParallelList and IgnoreUnmatchedNulls set
// (the server-side options). Functions return Status; `detail` keeps the underlying text of the first error.

constexpr const char* kDirectiveMarker = "$patch";
constexpr const char* kRetainKeysDirective = "$retainKeys";
constexpr const char* kSetElementOrderPrefix = "$setElementOrder";
constexpr const char* kDeleteFromPrimitiveListPrefix = "$deleteFromPrimitiveList";

// mergepatch sentinel errors that interpretStrategicMergePatchError turns into 400 BadRequest.
constexpr const char* kErrBadJSONDoc = "invalid JSON document";
constexpr const char* kErrBadPatchFormatForPrimitiveList = "invalid patch format of primitive list";
constexpr const char* kErrBadPatchFormatForRetainKeys = "invalid patch format of retainKeys";
constexpr const char* kErrBadPatchFormatForSetElementOrderList = "invalid patch format of setElementOrder list";
// ... and the one it turns into a 422 with the generic message.
constexpr const char* kErrNoListOfLists = "lists of lists are not supported";

#define SMP_TRY(expr)                 \
  do {                                \
    ::berth::api::Status s_ = (expr); \
    if (!s_.is_ok()) return s_;       \
  } while (0)

bool is_directive_key(const std::string& k) {
  return k == kDirectiveMarker || k == kRetainKeysDirective || starts_with(k, kSetElementOrderPrefix) ||
         starts_with(k, kDeleteFromPrimitiveListPrefix);
}

// discardNullValuesFromPatch: drops null members of maps, recursively (null list elements stay).
void discard_nulls(json& v) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end();) {
      if (it->is_null()) {
        it = v.erase(it);
      } else {
        discard_nulls(*it);
        ++it;
      }
    }
  } else if (v.is_array()) {
    for (auto& e : v) discard_nulls(e);
  }
}

// removeDirectives: a map carrying $patch is dropped (returns false), recursively.
bool remove_directives(json& v) {
  if (v.is_object()) {
    if (v.contains(kDirectiveMarker)) return false;
    for (auto it = v.begin(); it != v.end();) {
      if (!remove_directives(*it)) {
        it = v.erase(it);
      } else {
        ++it;
      }
    }
  } else if (v.is_array()) {
    json kept = json::array();
    for (auto& e : v)
      if (remove_directives(e)) kept.push_back(std::move(e));
    v = std::move(kept);
  }
  return true;
}

// Directive keys left inside values copied from the patch. Upstream leaves them (and nulls) in the map and the
// typed decode that follows drops them as unknown fields; we store JSON, so we drop them here.
void strip_directive_keys(json& v) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end();) {
      if (is_directive_key(it.key())) {
        it = v.erase(it);
      } else {
        strip_directive_keys(*it);
        ++it;
      }
    }
  } else if (v.is_array()) {
    for (auto& e : v) strip_directive_keys(e);
  }
}

// A patch value stored as is (upstream: no removeDirectives): clean as the typed decode would.
json from_patch_as_is(json v) {
  discard_nulls(v);
  strip_directive_keys(v);
  return v;
}

// A patch value for a key the original lacks (upstream: discardNullValuesFromPatch + removeDirectives).
// nullopt means the key is not stored at all.
std::optional<json> from_patch_new(json v) {
  discard_nulls(v);
  if (!remove_directives(v)) return std::nullopt;
  strip_directive_keys(v);
  return v;
}

std::string join_path(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

std::string err_no_merge_key(const json& m, const std::string& key) {
  return "map: " + go_v(m) + " does not contain declared merge key: " + key;
}

std::string err_bad_arg_type(const char* expected, const json& actual) {
  return std::string("expected a ") + expected + ", but received a " + go_type_name(actual);
}
constexpr const char* kMapType = "map[string]interface {}";
constexpr const char* kSliceType = "[]interface {}";

std::string err_bad_patch_type(const json& t, const json& m) {
  return "unknown patch type: " + go_s(t) + " in map: " + go_v(m);
}

class StrategicMerger {
 public:
  explicit StrategicMerger(const PatchMetaLookup& lookup) : lookup_(lookup) {}

  const std::string& detail() const { return detail_; }

  // mergeMap: merges `patch` into `original` in place.
  Status merge_map(json& original, json& patch, const std::string& path) {
    if (auto it = patch.find(kDirectiveMarker); it != patch.end()) {
      const json directive = *it;
      if (directive == "replace") {
        // Only this map's $patch is removed; the rest of the patch becomes the value.
        patch.erase(kDirectiveMarker);
        original = from_patch_as_is(patch);
        return Status::ok();
      }
      if (directive == "delete") {
        original = json::object();
        return Status::ok();
      }
      return bad_request_untyped(err_bad_patch_type(directive, patch));
    }
    if (original.is_null()) original = json::object();

    SMP_TRY(apply_retain_keys(original, patch));
    SMP_TRY(merge_set_element_order(original, patch, path));

    // Go iterates the patch map in random order; keys are independent except a list and its
    // $deleteFromPrimitiveList, where we settle on merging first and deleting after.
    std::vector<std::string> plain, delete_lists;
    for (auto it = patch.begin(); it != patch.end(); ++it)
      (starts_with(it.key(), kDeleteFromPrimitiveListPrefix) ? delete_lists : plain).push_back(it.key());
    for (const auto* keys : {&plain, &delete_lists})
      for (const auto& k : *keys) SMP_TRY(merge_key(original, k, patch[k], path));
    return Status::ok();
  }

  Status fail(Reason reason, std::string message) {
    detail_ = message;
    if (reason == Reason::Invalid) return Status(Reason::Invalid, kPatchRejectedMessage);
    return Status(reason, std::move(message));
  }

 private:
  // Upstream returns these as plain Go errors, which the apiserver answers with 500 and an empty reason. They
  // are all faults of the patch, not the server, and Status has no "Unknown" reason: we answer 400 with the
  // same message.
  Status bad_request_untyped(std::string message) { return fail(Reason::BadRequest, std::move(message)); }
  Status bad_request(std::string message) { return fail(Reason::BadRequest, std::move(message)); }

  // The field's strategy without "retainKeys" (extractRetainKeysPatchStrategy).
  Status strategy_of(const PatchMeta& meta, std::string* strategy) {
    std::vector<std::string> parts;
    if (!meta.strategy.empty()) parts = go_split(meta.strategy, ',');
    strategy->clear();
    if (parts.empty()) return Status::ok();
    if (parts.size() == 1) {
      if (parts[0] != "retainKeys") *strategy = parts[0];
      return Status::ok();
    }
    if (parts.size() == 2 && (parts[0] == "retainKeys" || parts[1] == "retainKeys")) {
      *strategy = parts[0] == "retainKeys" ? parts[1] : parts[0];
      return Status::ok();
    }
    // A schema fault, not the client's.
    std::string list = "[";
    for (std::size_t i = 0; i < parts.size(); ++i) list += (i ? " " : "") + parts[i];
    return fail(Reason::InternalError, "unexpected patch strategy: " + list + "]");
  }

  PatchMeta meta_for(const std::string& path) const { return lookup_ ? lookup_(path) : PatchMeta{}; }

  Status extract_key(const std::string& s, const char* prefix, std::string* out) {
    auto slash = s.find('/');
    if (slash == std::string::npos || s.compare(0, slash, prefix) != 0) {
      if (std::string(prefix) == kDeleteFromPrimitiveListPrefix)
        return bad_request(kErrBadPatchFormatForPrimitiveList);
      return bad_request(kErrBadPatchFormatForSetElementOrderList);
    }
    *out = s.substr(slash + 1);
    return Status::ok();
  }

  // applyRetainKeysDirective: every key the patch sets must be listed; original keys not listed are cleared.
  Status apply_retain_keys(json& original, json& patch) {
    auto it = patch.find(kRetainKeysDirective);
    if (it == patch.end()) return Status::ok();
    json retain = *it;
    patch.erase(it);
    if (!retain.is_array()) return bad_request(kErrBadPatchFormatForRetainKeys);
    auto listed = [&](const std::string& k) {
      for (const auto& v : retain)
        if (v.is_string() && v.get_ref<const std::string&>() == k) return true;
      return false;
    };
    for (auto pit = patch.begin(); pit != patch.end(); ++pit) {
      if (pit->is_null() || starts_with(pit.key(), kDeleteFromPrimitiveListPrefix) ||
          starts_with(pit.key(), kSetElementOrderPrefix))
        continue;
      if (!listed(pit.key())) return bad_request(kErrBadPatchFormatForRetainKeys);
    }
    for (auto oit = original.begin(); oit != original.end();) {
      if (!listed(oit.key())) {
        oit = original.erase(oit);
      } else {
        ++oit;
      }
    }
    return Status::ok();
  }

  // One patch key of mergeMap's main loop.
  Status merge_key(json& original, const std::string& patch_key, json& patch_value, const std::string& path) {
    std::string key = patch_key;
    bool is_delete_list = false;
    if (starts_with(patch_key, kDeleteFromPrimitiveListPrefix)) {
      SMP_TRY(extract_key(patch_key, kDeleteFromPrimitiveListPrefix, &key));
      is_delete_list = true;
    }
    if (patch_value.is_null()) {
      original.erase(key);
      return Status::ok();
    }
    auto it = original.find(key);
    if (it == original.end() || go_kind(*it) != go_kind(patch_value)) {
      // Absent from the original, or a different type there: the patch value replaces it.
      if (!is_delete_list) {
        auto v = from_patch_new(patch_value);
        if (v) {
          original[key] = std::move(*v);
        } else {
          original.erase(key);
        }
      }
      return Status::ok();
    }
    const std::string child = join_path(path, key);
    switch (go_kind(*it)) {
      case GoKind::Map: {
        std::string strategy;
        SMP_TRY(strategy_of(meta_for(child), &strategy));
        if (strategy == "replace") {
          *it = from_patch_as_is(patch_value);
          return Status::ok();
        }
        return merge_map(*it, patch_value, child);
      }
      case GoKind::Slice: {
        PatchMeta meta = meta_for(child);
        std::string strategy;
        SMP_TRY(strategy_of(meta, &strategy));
        json merged;
        SMP_TRY(merge_slice_handler(*it, patch_value, child, strategy, meta.merge_key, is_delete_list, &merged));
        *it = std::move(merged);
        return Status::ok();
      }
      default:
        *it = patch_value;
        return Status::ok();
    }
  }

  // mergeSliceHandler: strategy "merge" (or a deletion list) merges, anything else replaces.
  Status merge_slice_handler(const json& original, const json& patch, const std::string& path,
                             const std::string& strategy, const std::string& merge_key, bool is_delete_list,
                             json* out) {
    if (!original.is_array()) return bad_request_untyped(err_bad_arg_type(kSliceType, original));
    if (!patch.is_array()) return bad_request_untyped(err_bad_arg_type(kSliceType, patch));
    if (strategy == "merge" || is_delete_list)
      return merge_slice(original, patch, path, merge_key, is_delete_list, out);
    *out = from_patch_as_is(patch);
    return Status::ok();
  }

  // sliceElementType: all elements of all lists share one type, and it is not a list.
  Status slice_element_type(std::initializer_list<const json*> lists, GoKind* kind) {
    bool have = false;
    for (const json* l : lists) {
      for (const auto& v : *l) {
        GoKind k = go_kind(v);
        if (!have) {
          have = true;
          *kind = k;
          if (k == GoKind::Slice) return fail(Reason::Invalid, kErrNoListOfLists);
        } else if (k != *kind) {
          std::string all = "[";
          bool first = true;
          for (const json* m : lists) {
            if (!first) all += ' ';
            all += go_v(*m);
            first = false;
          }
          return bad_request_untyped("list element types are not identical: " + all + "]");
        }
      }
    }
    if (!have) return bad_request_untyped("no elements in any of the given slices");
    return Status::ok();
  }

  // mergeSlice.
  Status merge_slice(json original, json patch, const std::string& path, const std::string& merge_key,
                     bool is_delete_list, json* out) {
    if (original.empty() && patch.empty()) {
      *out = std::move(original);
      return Status::ok();
    }
    GoKind kind;
    SMP_TRY(slice_element_type({&original, &patch}, &kind));
    json merged;
    if (kind != GoKind::Map) {
      if (is_delete_list) {
        std::unordered_set<std::string> doomed;
        for (const auto& d : patch) doomed.insert(go_key(d));
        *out = json::array();
        for (const auto& v : original)
          if (!doomed.count(go_key(v))) out->push_back(v);
        return Status::ok();
      }
      merged = original;
      for (const auto& v : patch) merged.push_back(v);
      dedup_scalars(merged);
    } else {
      // Upstream names the element schema here, which for the built-in types is always "struct".
      if (merge_key.empty()) return bad_request_untyped("cannot merge lists without merge key for struct");
      SMP_TRY(merge_special_elements(original, patch, merge_key));
      merged = original;
      SMP_TRY(merge_plain_elements(merged, patch, merge_key, path));
    }
    json patch_items, server_only;
    if (merge_key.empty()) {
      partition_primitives(merged, patch, &patch_items, &server_only);
    } else {
      SMP_TRY(partition_maps(merged, patch, merge_key, &patch_items, &server_only));
    }
    return normalize_element_order(std::move(patch_items), std::move(server_only), patch, original, merge_key,
                                   kind, out);
  }

  // mergeSliceWithSpecialElements: applies {"$patch": "delete", key: v} and {"$patch": "replace"} elements and
  // leaves `patch` holding the ordinary elements.
  Status merge_special_elements(json& original, json& patch, const std::string& merge_key) {
    json plain = json::array();
    bool replace = false;
    // Upstream removes every original element matching a delete directive as it meets it; collecting the keys
    // and filtering once gives the same list in linear time.
    std::unordered_set<std::string> doomed;
    for (auto& v : patch) {
      auto it = v.find(kDirectiveMarker);
      if (it == v.end()) {
        plain.push_back(v);
        continue;
      }
      if (*it == "delete") {
        auto kv = v.find(merge_key);
        if (kv == v.end()) return bad_request_untyped(err_no_merge_key(v, merge_key));
        doomed.insert(go_key(*kv));
      } else if (*it == "replace") {
        replace = true;  // keep going: the other $patch elements must still be valid
      } else if (*it == "merge") {
        return bad_request_untyped("merging lists cannot yet be specified in the patch");
      } else {
        return bad_request_untyped(err_bad_patch_type(*it, v));
      }
    }
    if (!doomed.empty()) {
      json kept = json::array();
      for (std::size_t i = 0; i < original.size(); ++i) {
        if (!original[i].is_object()) return bad_request_untyped("value for key " + std::to_string(i) + " is not a map");
        auto ok = original[i].find(merge_key);
        if (ok == original[i].end() || !doomed.count(go_key(*ok))) kept.push_back(std::move(original[i]));
      }
      original = std::move(kept);
    }
    if (replace) {
      original = from_patch_as_is(std::move(plain));
      patch = json::array();
    } else {
      patch = std::move(plain);
    }
    return Status::ok();
  }

  // findMapInSliceBasedOnKeyValue, for many look-ups in one list: the first element whose merge key equals the
  // value. Upstream scans and fails on the first element that is not a map before a match; `bad_` records
  // where that happens so a miss reports the same error.
  class KeyIndex {
   public:
    KeyIndex(const json& list, const std::string& key) : key_(key) {
      for (std::size_t i = 0; i < list.size() && !bad_; ++i) add(list[i], i);
    }
    // Index a map appended at position i.
    void add(const json& m, std::size_t i) {
      if (!m.is_object()) {
        bad_ = i;
        return;
      }
      if (auto it = m.find(key_); it != m.end()) first_.emplace(go_key(*it), i);
    }
    // nullopt when absent; an error message when upstream's scan would hit a non-map first.
    std::optional<std::size_t> find(const json& value, std::string* err) const {
      if (auto it = first_.find(go_key(value)); it != first_.end()) return it->second;
      if (bad_) *err = "value for key " + std::to_string(*bad_) + " is not a map";
      return std::nullopt;
    }

   private:
    std::string key_;
    std::unordered_map<std::string, std::size_t> first_;
    std::optional<std::size_t> bad_;
  };

  // mergeSliceWithoutSpecialElements: elements matching by merge key merge, others are appended.
  Status merge_plain_elements(json& merged, json& patch, const std::string& merge_key, const std::string& path) {
    KeyIndex index(merged, merge_key);
    for (auto& v : patch) {
      auto kv = v.find(merge_key);
      if (kv == v.end()) return bad_request_untyped(err_no_merge_key(v, merge_key));
      std::string err;
      auto at = index.find(*kv, &err);
      if (!err.empty()) return bad_request_untyped(err);
      if (at) {
        json element_patch = v;
        SMP_TRY(merge_map(merged[*at], element_patch, path));
      } else {
        merged.push_back(from_patch_as_is(v));
        index.add(merged.back(), merged.size() - 1);
      }
    }
    return Status::ok();
  }

  // deduplicateScalars keeps one of each value. Its (quadratic) algorithm also shuffles the survivors, but
  // the order is normalized right after by a comparator under which all of them are distinct and known, so
  // only the set matters: we keep first occurrences, in linear time.
  static void dedup_scalars(json& s) {
    std::unordered_set<std::string> seen;
    json out = json::array();
    for (auto& v : s)
      if (seen.insert(go_key(v)).second) out.push_back(std::move(v));
    s = std::move(out);
  }

  static void partition_primitives(const json& merged, const json& by, json* in, json* out) {
    std::unordered_set<std::string> present;
    for (const auto& b : by) present.insert(go_key(b));
    *in = json::array();
    *out = json::array();
    for (const auto& v : merged) (present.count(go_key(v)) ? in : out)->push_back(v);
  }

  Status partition_maps(const json& merged, const json& by, const std::string& merge_key, json* in, json* out) {
    *in = json::array();
    *out = json::array();
    KeyIndex index(by, merge_key);
    for (const auto& v : merged) {
      if (!v.is_object()) return bad_request_untyped(err_bad_arg_type(kMapType, v));
      auto kv = v.find(merge_key);
      if (kv == v.end()) return bad_request_untyped(err_no_merge_key(v, merge_key));
      std::string err;
      auto at = index.find(*kv, &err);
      if (!err.empty()) return bad_request_untyped(err);
      (at ? in : out)->push_back(v);
    }
    return Status::ok();
  }

  // index(): position of an element in `order`, by merge key for maps and by value otherwise; -1 if absent.
  // Built once per list, since the sorts below ask for it O(n log n) times.
  class OrderIndex {
   public:
    OrderIndex(const json& order, const std::string& merge_key, GoKind kind) : merge_key_(merge_key), kind_(kind) {
      for (std::size_t i = 0; i < order.size(); ++i) first_.emplace(key_of(order[i]), static_cast<std::ptrdiff_t>(i));
    }
    std::ptrdiff_t operator()(const json& item) const {
      auto it = first_.find(key_of(item));
      return it == first_.end() ? -1 : it->second;
    }

   private:
    std::string key_of(const json& e) const {
      if (kind_ != GoKind::Map) return go_key(e);
      if (!e.is_object()) return go_key(json());
      auto it = e.find(merge_key_);
      return it == e.end() ? go_key(json()) : go_key(*it);
    }
    std::string merge_key_;
    GoKind kind_;
    std::unordered_map<std::string, std::ptrdiff_t> first_;
  };

  // normalizeSliceOrder: a stable sort by position in `order`, where an element missing from `order` compares
  // "less" than anything (upstream's comparator). That comparator is not a strict weak order, so the result
  // depends on the algorithm: we run the one sort.SliceStable runs (insertion sort on blocks of 20, then
  // SymMerge), which gives the same answers on every input.
  Status normalize_slice_order(json& to_sort, const json& order, const std::string& merge_key, GoKind kind) {
    json to_delete = json::array();
    if (kind == GoKind::Map) {
      for (const json* list : std::initializer_list<const json*>{&to_sort, &order}) {
        for (const auto& item : *list) {
          if (!item.is_object()) return bad_request_untyped(err_bad_arg_type(kMapType, item));
          if (!item.contains(merge_key)) return bad_request_untyped(err_no_merge_key(item, merge_key));
        }
      }
      json keep = json::array();
      for (auto& v : to_sort) {
        auto it = v.find(kDirectiveMarker);
        (it != v.end() && *it == "delete" ? to_delete : keep).push_back(std::move(v));
      }
      to_sort = std::move(keep);
    }
    std::vector<json> items(to_sort.begin(), to_sort.end());
    const OrderIndex index(order, merge_key, kind);
    std::vector<std::ptrdiff_t> pos;
    for (const auto& v : items) pos.push_back(index(v));
    auto less = [&](std::size_t i, std::size_t j) { return pos[i] >= 0 && pos[j] >= 0 ? pos[i] < pos[j] : true; };
    go_stable_sort(items.size(), less, [&](std::size_t i, std::size_t j) {
      std::swap(items[i], items[j]);
      std::swap(pos[i], pos[j]);
    });
    to_sort = json::array();
    for (auto& v : items) to_sort.push_back(std::move(v));
    for (auto& v : to_delete) to_sort.push_back(std::move(v));
    return Status::ok();
  }

  template <class Less, class Swap>
  static void go_stable_sort(std::size_t n, Less less, Swap swap) {
    auto insertion_sort = [&](std::size_t a, std::size_t b) {
      for (std::size_t i = a + 1; i < b; ++i)
        for (std::size_t j = i; j > a && less(j, j - 1); --j) swap(j, j - 1);
    };
    std::size_t block = 20;
    std::size_t a = 0, b = block;
    while (b <= n) {
      insertion_sort(a, b);
      a = b;
      b += block;
    }
    insertion_sort(a, n);
    while (block < n) {
      a = 0;
      b = 2 * block;
      while (b <= n) {
        sym_merge(a, a + block, b, less, swap);
        a = b;
        b += 2 * block;
      }
      if (a + block < n) sym_merge(a, a + block, n, less, swap);
      block *= 2;
    }
  }

  // SymMerge (Kim & Kutzner) of the sorted runs [a, m) and [m, b), in place.
  template <class Less, class Swap>
  static void sym_merge(std::size_t a, std::size_t m, std::size_t b, Less& less, Swap& swap) {
    if (m - a == 1) {
      // Binary search for the first element of [m, b) not less than data[a], then rotate data[a] there.
      std::size_t i = m, j = b;
      while (i < j) {
        std::size_t h = (i + j) / 2;
        if (less(h, a)) {
          i = h + 1;
        } else {
          j = h;
        }
      }
      for (std::size_t k = a; k + 1 < i; ++k) swap(k, k + 1);
      return;
    }
    if (b - m == 1) {
      std::size_t i = a, j = m;
      while (i < j) {
        std::size_t h = (i + j) / 2;
        if (!less(m, h)) {
          i = h + 1;
        } else {
          j = h;
        }
      }
      for (std::size_t k = m; k > i; --k) swap(k, k - 1);
      return;
    }
    std::size_t mid = (a + b) / 2;
    std::size_t n = mid + m;
    std::size_t start, r;
    if (m > mid) {
      start = n - b;
      r = mid;
    } else {
      start = a;
      r = m;
    }
    std::size_t p = n - 1;
    while (start < r) {
      std::size_t c = (start + r) / 2;
      if (!less(p - c, c)) {
        start = c + 1;
      } else {
        r = c;
      }
    }
    std::size_t end = n - start;
    if (start < m && m < end) rotate(start, m, end, swap);
    if (a < start && start < mid) sym_merge(a, start, mid, less, swap);
    if (mid < end && end < b) sym_merge(mid, end, b, less, swap);
  }

  // Swaps [a, m) and [m, b) by block swaps.
  template <class Swap>
  static void rotate(std::size_t a, std::size_t m, std::size_t b, Swap& swap) {
    auto swap_range = [&](std::size_t x, std::size_t y, std::size_t len) {
      for (std::size_t i = 0; i < len; ++i) swap(x + i, y + i);
    };
    std::size_t i = m - a, j = b - m;
    while (i != j) {
      if (i > j) {
        swap_range(m - i, m, j);
        i -= j;
      } else {
        swap_range(m - i, m + j - i, i);
        j -= i;
      }
    }
    swap_range(m - i, m, i);
  }

  // normalizeElementOrder + mergeSortedSlice: patch items in patch order, server-only items in server order,
  // interleaved by server order where both are known. A patch item the server lacks is placed as soon as it is
  // reached, so without $setElementOrder new elements come before the remaining server-only ones.
  Status normalize_element_order(json patch_items, json server_only, const json& patch_order,
                                 const json& server_order, const std::string& merge_key, GoKind kind, json* out) {
    SMP_TRY(normalize_slice_order(patch_items, patch_order, merge_key, kind));
    SMP_TRY(normalize_slice_order(server_only, server_order, merge_key, kind));
    *out = json::array();
    const OrderIndex server_index(server_order, merge_key, kind);
    std::size_t i = 0, j = 0;
    const std::size_t nl = server_only.size(), nr = patch_items.size();
    while (i < nl || j < nr) {
      if (i >= nl) {
        out->push_back(std::move(patch_items[j++]));
      } else if (j >= nr) {
        out->push_back(std::move(server_only[i++]));
      } else {
        auto li = server_index(server_only[i]);
        auto ri = server_index(patch_items[j]);
        if (li >= 0 && ri >= 0 && li < ri) {
          out->push_back(std::move(server_only[i++]));
        } else {
          out->push_back(std::move(patch_items[j++]));
        }
      }
    }
    return Status::ok();
  }

  // validatePatchWithSetOrderList: the patch list (deletions aside) must be a subsequence of the order list.
  Status validate_set_order(const json& patch_list, const json& order, const std::string& merge_key) {
    if (order.empty() || patch_list.empty()) return Status::ok();
    json non_delete = json::array();
    if (!merge_key.empty()) {
      for (const auto& v : patch_list) {
        if (!v.is_object()) return bad_request_untyped(err_bad_arg_type(kMapType, v));
        auto it = v.find(kDirectiveMarker);
        if (!(it != v.end() && *it == "delete")) non_delete.push_back(v);
      }
    } else {
      non_delete = patch_list;
    }
    std::size_t pi = 0, si = 0;
    while (pi < non_delete.size() && si < order.size()) {
      const json& pv = non_delete[pi];
      if (pv.is_object() && pv.contains(kDirectiveMarker)) {
        ++pi;
        continue;
      }
      bool equal;
      if (merge_key.empty()) {
        equal = go_equal(pv, order[si]);
      } else {
        if (!pv.is_object()) return bad_request_untyped(err_bad_arg_type(kMapType, pv));
        if (!order[si].is_object()) return bad_request_untyped(err_bad_arg_type(kMapType, order[si]));
        auto l = pv.find(merge_key);
        if (l == pv.end()) return bad_request_untyped(err_no_merge_key(pv, merge_key));
        auto r = order[si].find(merge_key);
        if (r == order[si].end()) return bad_request_untyped(err_no_merge_key(order[si], merge_key));
        equal = go_equal(*l, *r);
      }
      if (equal) ++pi;
      ++si;
    }
    if (pi < non_delete.size() && si >= order.size())
      return bad_request_untyped("The order in patch list:\n" + go_v(patch_list) + "\n doesn't match " +
                                 kSetElementOrderPrefix + " list:\n" + go_v(order) + "\n");
    return Status::ok();
  }

  // mergePatchIntoOriginal: each $setElementOrder/<f> merges list <f> now and orders the result by the
  // directive, then the patch list is removed so the main loop does not merge it again.
  Status merge_set_element_order(json& original, json& patch, const std::string& path) {
    std::vector<std::string> keys;
    for (auto it = patch.begin(); it != patch.end(); ++it)
      if (starts_with(it.key(), kSetElementOrderPrefix)) keys.push_back(it.key());
    for (const auto& key : keys) {
      json order = patch[key];
      patch.erase(key);
      if (!order.is_array()) return bad_request_untyped(err_bad_arg_type(kSliceType, order));
      std::string field;
      SMP_TRY(extract_key(key, kSetElementOrderPrefix, &field));
      auto oit = original.find(field);
      auto pit = patch.find(field);
      const bool found_original = oit != original.end();
      const bool found_patch = pit != patch.end();
      json original_list = json::array(), patch_list = json::array();
      if (found_original) {
        if (!oit->is_array()) return bad_request_untyped(err_bad_arg_type(kSliceType, *oit));
        original_list = *oit;
      }
      if (found_patch) {
        if (!pit->is_array()) return bad_request_untyped(err_bad_arg_type(kSliceType, *pit));
        patch_list = *pit;
      }
      const std::string child = join_path(path, field);
      PatchMeta meta = meta_for(child);
      std::string strategy;
      SMP_TRY(strategy_of(meta, &strategy));
      SMP_TRY(validate_set_order(patch_list, order, meta.merge_key));

      json merged;
      if (found_original && !found_patch) {
        merged = original_list;
      } else if (!found_original && found_patch) {
        merged = patch_list;
        remove_directives(merged);
        discard_nulls(merged);
        strip_directive_keys(merged);
      } else if (found_original && found_patch) {
        SMP_TRY(merge_slice_handler(original_list, patch_list, child, strategy, meta.merge_key, false, &merged));
      } else {
        continue;
      }

      json patch_items, server_only;
      if (meta.merge_key.empty()) {
        partition_primitives(merged, order, &patch_items, &server_only);
      } else {
        SMP_TRY(partition_maps(merged, order, meta.merge_key, &patch_items, &server_only));
      }
      GoKind kind;
      SMP_TRY(slice_element_type({&original_list, &patch_list}, &kind));
      json both;
      SMP_TRY(normalize_element_order(std::move(patch_items), std::move(server_only), order, original_list,
                                      meta.merge_key, kind, &both));
      original[field] = std::move(both);
      patch.erase(field);
    }
    return Status::ok();
  }

  const PatchMetaLookup& lookup_;
  std::string detail_;
};

#undef SMP_TRY

}  // namespace

// ---------------------------------------------------------------------------------------------------------

Result<json> apply_json_patch_detailed(const json& doc, const json& patch, std::string* detail) {
  // A null body decodes to an empty patch upstream.
  if (patch.is_null()) return doc;
  if (auto err = json_patch_decode_error(patch)) {
    if (detail) *detail = *err;
    return Status(Reason::BadRequest, *err);
  }
  if (patch.size() > kMaxJsonPatchOperations) {
    std::string msg = "The allowed maximum operations in a JSON patch is " +
                      std::to_string(kMaxJsonPatchOperations) + ", got " + std::to_string(patch.size());
    if (detail) *detail = msg;
    return Status(Reason::RequestEntityTooLarge, msg);
  }
  // Any failure while applying is answered with NewGenericServerResponse(422, ...): reason Invalid, the
  // generic message, and the library's error text dropped (handlers/patch.go applyJSPatch).
  auto rejected = [&](std::string why) -> Result<json> {
    if (detail) *detail = std::move(why);
    return Status(Reason::Invalid, kPatchRejectedMessage);
  };
  if (!doc.is_object() && !doc.is_array())
    return rejected(std::string("json: cannot unmarshal ") + json_value_word(doc) +
                    " into Go value of type jsonpatch.partialDoc");
  json result = doc;
  for (const auto& op : patch) {
    const std::string kind = op_kind(op);
    OpError err;
    if (kind == "add") {
      err = op_add(result, op);
    } else if (kind == "remove") {
      err = op_remove(result, op);
    } else if (kind == "replace") {
      err = op_replace(result, op);
    } else if (kind == "move") {
      err = op_move(result, op);
    } else if (kind == "test") {
      err = op_test(result, op);
    } else if (kind == "copy") {
      err = op_copy(result, op);
    } else {
      err = "Unexpected kind: " + kind;
    }
    if (err) return rejected(std::move(*err));
  }
  return result;
}

Result<json> apply_json_patch(const json& doc, const json& patch) {
  return apply_json_patch_detailed(doc, patch, nullptr);
}

Result<json> apply_merge_patch(const json& doc, const json& patch) {
  // The apiserver decodes the body strictly into map[string]interface{} first (400 on anything but an object
  // or null); the library then rejects a null patch as ErrBadJSONPatch, which applyJSPatch maps to 400.
  if (patch.is_null()) return Status(Reason::BadRequest, "Invalid JSON Patch");
  if (!patch.is_object())
    return Status(Reason::BadRequest, std::string("error decoding patch: json: cannot unmarshal ") +
                                          json_value_word(patch) +
                                          " into Go value of type map[string]interface {}");
  if (!doc.is_object()) {
    // RFC 7386: a non-object target is replaced by the patch (never the case for a stored object).
    json result = patch;
    prune_nulls(result);
    return result;
  }
  json result = doc;
  merge_docs(result, patch);
  return result;
}

Result<json> apply_strategic_merge_patch_detailed(const json& doc, const json& patch, const PatchMetaLookup& meta,
                                                  std::string* detail) {
  StrategicMerger merger(meta);
  auto finish = [&](Status s) -> Result<json> {
    if (detail) *detail = merger.detail();
    return s;
  };
  // strategicPatchObject decodes the body into map[string]interface{}: anything else is a 400 with the
  // decoder's message, and null decodes to a nil map, which changes nothing.
  if (patch.is_null()) return doc;
  if (!patch.is_object())
    return finish(merger.fail(Reason::BadRequest, std::string("json: cannot unmarshal ") + json_value_word(patch) +
                                                      " into Go value of type map[string]interface {}"));
  if (!doc.is_object() && !doc.is_null()) return finish(merger.fail(Reason::BadRequest, kErrBadJSONDoc));
  json result = doc.is_null() ? json::object() : doc;
  json p = patch;
  Status s = merger.merge_map(result, p, "");
  if (!s.is_ok()) return finish(std::move(s));
  return result;
}

Result<json> apply_strategic_merge_patch(const json& doc, const json& patch, const PatchMetaLookup& meta) {
  return apply_strategic_merge_patch_detailed(doc, patch, meta, nullptr);
}

}  // namespace berth::api
