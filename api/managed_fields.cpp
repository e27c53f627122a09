// Managed fields and server-side apply. The layering mirrors Kubernetes' field manager chain
// (k8s.io/apimachinery/pkg/util/managedfields/internal, v0.32): versionCheck -> lastAppliedUpdater ->
// lastAppliedManager -> skipNonApplied -> capManagers -> buildManagerInfo -> managedFieldsUpdater ->
// stripMeta -> structuredMerge, over structured-merge-diff v4.4.2's Updater, typed walkers and
// fieldpath.Set. Types come from the ListKeysLookup instead of an OpenAPI schema.
#include "api/managed_fields.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>

#include "api/validation.h"

namespace berth::api {
namespace {

using json = nlohmann::json;
using Path = std::vector<std::string>;  // serialized path elements: "f:spec", "k:{\"name\":\"a\"}"

constexpr const char* kLastApplied = "kubectl.kubernetes.io/last-applied-configuration";
constexpr const char* kCurrentOperation = "current-operation";
constexpr const char* kBeforeFirstApply = "before-first-apply";
constexpr const char* kAncientChanges = "ancient-changes";
constexpr size_t kMaxUpdateManagers = 10;
constexpr size_t kTotalAnnotationSizeLimit = 256 * 1024;

// ---------------------------------------------------------------------------------------------
// Go-compatible text: JSON as encoding/json (Std) or jsoniter's standard-compatible config
// (Jsoniter) writes it, strconv.Quote, and float formatting.

enum class GoEsc { Jsoniter, Std };
const char* kHex = "0123456789abcdef";

void append_u4(std::string& out, unsigned cp) {
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(cp >> shift) & 0xF];
}

// Length of the valid UTF-8 sequence at s[i] (0 if invalid) and its code point.
size_t utf8_seq(const std::string& s, size_t i, unsigned& cp) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned c = b(i);
  size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  cp = n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n;
}

void go_json_string(std::string& out, const std::string& s, GoEsc esc) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '<': case '>': case '&': append_u4(out, c); break;
        default:
          if (c < 0x20) {
            if (esc == GoEsc::Std && c == '\b') out += "\\b";
            else if (esc == GoEsc::Std && c == '\f') out += "\\f";
            else append_u4(out, c);
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    unsigned cp = 0;
    size_t n = utf8_seq(s, i, cp);
    if (n == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    if (cp == 0x2028 || cp == 0x2029) append_u4(out, cp);
    else out.append(s, i, n);
    i += n;
  }
  out += '"';
}

// Shortest round-trip digits of |v| and the decimal exponent of the first digit.
void shortest_digits(double v, std::string& digits, int& exp10) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v < 0 ? -v : v, std::chars_format::scientific);
  std::string s(buf, r.ptr);
  size_t e = s.find('e');
  digits.clear();
  for (size_t i = 0; i < e; ++i)
    if (s[i] != '.') digits += s[i];
  exp10 = std::atoi(s.c_str() + e + 1);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
}

std::string float_fixed(const std::string& d, int x) {
  std::string out;
  int int_len = x + 1;
  if (int_len <= 0) {
    out = "0." + std::string(static_cast<size_t>(-int_len), '0') + d;
  } else if (static_cast<size_t>(int_len) >= d.size()) {
    out = d + std::string(static_cast<size_t>(int_len) - d.size(), '0');
  } else {
    out = d.substr(0, static_cast<size_t>(int_len)) + "." + d.substr(static_cast<size_t>(int_len));
  }
  return out;
}

std::string float_exp(const std::string& d, int x) {
  std::string out(1, d[0]);
  if (d.size() > 1) out += "." + d.substr(1);
  out += x < 0 ? "e-" : "e+";
  int ax = x < 0 ? -x : x;
  if (ax < 10) out += '0';
  out += std::to_string(ax);
  return out;
}

// encoding/json and jsoniter: 'f' unless tiny or huge, then 'e' with "e-07" cleaned to "e-7".
std::string go_json_float(double v) {
  if (v == 0) return "0";
  std::string d;
  int x = 0;
  shortest_digits(v, d, x);
  double a = v < 0 ? -v : v;
  std::string body;
  if (a < 1e-6 || a >= 1e21) {
    body = float_exp(d, x);
    size_t n = body.size();
    if (n >= 4 && body[n - 4] == 'e' && body[n - 3] == '-' && body[n - 2] == '0') body.erase(n - 2, 1);
  } else {
    body = float_fixed(d, x);
  }
  return (v < 0 ? "-" : "") + body;
}

// fmt's %v of a float64: shortest digits, %e when the exponent is < -4 or >= 21.
std::string go_v_float(double v) {
  if (v == 0) return "0";
  std::string d;
  int x = 0;
  shortest_digits(v, d, x);
  std::string body = (x < -4 || x >= 21) ? float_exp(d, x) : float_fixed(d, x);
  return (v < 0 ? "-" : "") + body;
}

void go_json(std::string& out, const json& v, GoEsc esc) {
  switch (v.type()) {
    case json::value_t::null: out += "null"; break;
    case json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; break;
    case json::value_t::number_integer: out += std::to_string(v.get<int64_t>()); break;
    case json::value_t::number_unsigned: out += std::to_string(v.get<uint64_t>()); break;
    case json::value_t::number_float: out += go_json_float(v.get<double>()); break;
    case json::value_t::string: go_json_string(out, v.get_ref<const std::string&>(), esc); break;
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v) {
        if (!first) out += ',';
        first = false;
        go_json(out, e, esc);
      }
      out += ']';
      break;
    }
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {  // sorted, as Go sorts map keys
        if (!first) out += ',';
        first = false;
        go_json_string(out, it.key(), esc);
        out += ':';
        go_json(out, it.value(), esc);
      }
      out += '}';
      break;
    }
    default: out += "null"; break;
  }
}

std::string go_json_text(const json& v, GoEsc esc) {
  std::string s;
  go_json(s, v, esc);
  return s;
}

// value.ToString of structured-merge-diff.
std::string smd_to_string(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return v.get<bool>() ? "true" : "false";
    case json::value_t::number_integer: return std::to_string(v.get<int64_t>());
    case json::value_t::number_unsigned: return std::to_string(v.get<uint64_t>());
    case json::value_t::number_float: return go_v_float(v.get<double>());
    case json::value_t::string: return go_quote(v.get_ref<const std::string&>());
    case json::value_t::array: {
      std::string out = "[";
      for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + smd_to_string(v[i]);
      return out + "]";
    }
    case json::value_t::object: {
      std::string out;
      for (auto it = v.begin(); it != v.end(); ++it) out += it.key() + "=" + smd_to_string(it.value());
      return out;
    }
    default: return "{{undefined}}";
  }
}

// ---------------------------------------------------------------------------------------------
// Time: metav1.Time marshals as RFC 3339 in UTC with whole seconds.

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

std::optional<int64_t> parse_rfc3339(const std::string& s) {
  auto num = [&](size_t pos, size_t len, int& out) {
    if (pos + len > s.size()) return false;
    out = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, se;
  if (!num(0, 4, y) || s.size() < 20 || s[4] != '-' || !num(5, 2, mo) || s[7] != '-' ||
      !num(8, 2, d) || (s[10] != 'T' && s[10] != 't') || !num(11, 2, h) || s[13] != ':' ||
      !num(14, 2, mi) || s[16] != ':' || !num(17, 2, se))
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return std::nullopt;
  size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return std::nullopt;
  }
  int64_t offset = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (!num(i + 1, 2, oh) || i + 3 >= s.size() || s[i + 3] != ':' || !num(i + 4, 2, om)) return std::nullopt;
    offset = (s[i] == '-' ? -1 : 1) * (oh * 3600 + om * 60);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  return days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + h * 3600 +
         mi * 60 + se - offset;
}

std::string format_rfc3339(int64_t t) {
  int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
  int64_t secs = t - days * 86400;
  // civil_from_days
  int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
  const unsigned sod = static_cast<unsigned>(secs);  // 0..86399
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02u:%02u:%02uZ", static_cast<long long>(y), m, d, sod / 3600,
                sod / 60 % 60, sod % 60);
  return buf;
}

std::string normalize_time(const std::string& t) {
  auto s = parse_rfc3339(t);
  return s ? format_rfc3339(*s) : t;
}

int64_t time_seconds(const std::string& t) {
  auto s = parse_rfc3339(t);
  return s ? *s : 0;
}

// ---------------------------------------------------------------------------------------------
// fieldpath.Set as a trie keyed by serialized path elements. A node's `member` says the path
// itself is in the set; `ch` holds its children. Invariant: every child is a member or has children.

struct FieldSet {
  bool member = false;
  std::map<std::string, FieldSet> ch;
};

bool fs_empty(const FieldSet& s) { return s.ch.empty(); }

void fs_insert(FieldSet& s, const Path& p) {
  if (p.empty()) return;
  FieldSet* n = &s;
  for (const auto& e : p) n = &n->ch[e];
  n->member = true;
}

bool fs_has(const FieldSet& s, const Path& p) {
  if (p.empty()) return false;
  const FieldSet* n = &s;
  for (const auto& e : p) {
    auto it = n->ch.find(e);
    if (it == n->ch.end()) return false;
    n = &it->second;
  }
  return n->member;
}

bool fs_keep(const FieldSet& n) { return n.member || !n.ch.empty(); }

FieldSet fs_union(const FieldSet& a, const FieldSet& b) {
  FieldSet r;
  r.ch = a.ch;
  for (const auto& [k, v] : b.ch) {
    auto it = r.ch.find(k);
    if (it == r.ch.end()) {
      r.ch.emplace(k, v);
    } else {
      bool m = it->second.member || v.member;
      it->second = fs_union(it->second, v);
      it->second.member = m;
    }
  }
  return r;
}

FieldSet fs_intersect(const FieldSet& a, const FieldSet& b) {
  FieldSet r;
  for (const auto& [k, v] : a.ch) {
    auto it = b.ch.find(k);
    if (it == b.ch.end()) continue;
    FieldSet x = fs_intersect(v, it->second);
    x.member = v.member && it->second.member;
    if (fs_keep(x)) r.ch.emplace(k, std::move(x));
  }
  return r;
}

FieldSet fs_diff(const FieldSet& a, const FieldSet& b) {
  FieldSet r;
  for (const auto& [k, v] : a.ch) {
    auto it = b.ch.find(k);
    if (it == b.ch.end()) {
      r.ch.emplace(k, v);
      continue;
    }
    FieldSet x = fs_diff(v, it->second);
    x.member = v.member && !it->second.member;
    if (fs_keep(x)) r.ch.emplace(k, std::move(x));
  }
  return r;
}

// Removes b's members and everything under them.
FieldSet fs_rdiff(const FieldSet& a, const FieldSet& b) {
  FieldSet r;
  for (const auto& [k, v] : a.ch) {
    auto it = b.ch.find(k);
    if (it == b.ch.end()) {
      r.ch.emplace(k, v);
      continue;
    }
    if (it->second.member) continue;
    FieldSet x = fs_rdiff(v, it->second);
    x.member = v.member;
    if (fs_keep(x)) r.ch.emplace(k, std::move(x));
  }
  return r;
}

// In-place forms of the above for sets the caller owns: a = a - b (fs_diff), a = a - b's
// members and everything under them (fs_rdiff), a = a + b (fs_union).
void fs_diff_in(FieldSet& a, const FieldSet& b) {
  for (auto it = a.ch.begin(); it != a.ch.end();) {
    auto bt = b.ch.find(it->first);
    if (bt != b.ch.end()) {
      fs_diff_in(it->second, bt->second);
      it->second.member = it->second.member && !bt->second.member;
      if (!fs_keep(it->second)) {
        it = a.ch.erase(it);
        continue;
      }
    }
    ++it;
  }
}

void fs_rdiff_in(FieldSet& a, const FieldSet& b) {
  for (auto it = a.ch.begin(); it != a.ch.end();) {
    auto bt = b.ch.find(it->first);
    if (bt != b.ch.end()) {
      if (bt->second.member) {
        it = a.ch.erase(it);
        continue;
      }
      fs_rdiff_in(it->second, bt->second);
      if (!fs_keep(it->second)) {
        it = a.ch.erase(it);
        continue;
      }
    }
    ++it;
  }
}

void fs_union_in(FieldSet& a, FieldSet&& b) {
  for (auto& [k, v] : b.ch) {
    auto it = a.ch.find(k);
    if (it == a.ch.end()) {
      a.ch.emplace(k, std::move(v));
    } else {
      it->second.member = it->second.member || v.member;
      fs_union_in(it->second, std::move(v));
    }
  }
}

// EnsureNamedFieldsAreMembers: a struct field with owned children is owned itself. Without a
// schema every object key is taken as a named field.
FieldSet fs_ensure_named(const FieldSet& a) {
  FieldSet r;
  r.member = a.member;
  for (const auto& [k, v] : a.ch) {
    FieldSet x = fs_ensure_named(v);
    if (k.rfind("f:", 0) == 0 && !x.ch.empty()) x.member = true;
    r.ch.emplace(k, std::move(x));
  }
  r.member = a.member;
  return r;
}

const FieldSet* fs_child(const FieldSet& s, const std::string& pe) {
  auto it = s.ch.find(pe);
  return it == s.ch.end() ? nullptr : &it->second;
}

// Set.Iterate order: this level's members, then each child's subtree.
template <class F>
void fs_iterate(const FieldSet& s, Path& prefix, const F& fn) {
  for (const auto& [k, v] : s.ch) {
    if (!v.member) continue;
    prefix.push_back(k);
    fn(prefix);
    prefix.pop_back();
  }
  for (const auto& [k, v] : s.ch) {
    if (v.ch.empty()) continue;
    prefix.push_back(k);
    fs_iterate(v, prefix, fn);
    prefix.pop_back();
  }
}

// Both maps order keys alike and "." sorts before every path element ("f:", "i:", "k:", "v:"),
// so each insertion goes at the end: no search, no key comparisons.
void fs_to_json_into(const FieldSet& s, json::object_t& out) {
  for (const auto& [k, v] : s.ch) {
    auto& child = out.emplace_hint(out.end(), k, json::object())->second.get_ref<json::object_t&>();
    if (v.member && !v.ch.empty()) child.emplace_hint(child.end(), ".", json::object());
    fs_to_json_into(v, child);
  }
}

json fs_to_json(const FieldSet& s) {
  json out = json::object();
  fs_to_json_into(s, out.get_ref<json::object_t&>());
  return out;
}

// A path element from its serialized form, canonicalized; nullopt + err on a malformed one,
// nullopt without err for an unknown type (dropped, as upstream does).
std::optional<std::string> canonical_pe(const std::string& s, std::string& err) {
  if (s.size() < 2) {
    err = "key must be 2 characters long:";
    return std::nullopt;
  }
  if (s[1] != ':') {
    err = "missing colon: " + s;
    return std::nullopt;
  }
  if (s[0] == 'f') return s;
  std::string body = s.substr(2);
  switch (s[0]) {
    case 'v': {
      json v = json::parse(body, nullptr, false);
      if (v.is_discarded()) {
        err = "invalid value in " + s;
        return std::nullopt;
      }
      return "v:" + go_json_text(v, GoEsc::Jsoniter);
    }
    case 'k': {
      json v = json::parse(body, nullptr, false);
      if (v.is_discarded() || !v.is_object()) {
        err = "invalid key in " + s;
        return std::nullopt;
      }
      return "k:" + go_json_text(v, GoEsc::Jsoniter);
    }
    case 'i': {
      char* end = nullptr;
      long i = std::strtol(body.c_str(), &end, 10);
      if (body.empty() || *end != '\0') {
        err = "invalid index in " + s;
        return std::nullopt;
      }
      return "i:" + std::to_string(i);
    }
    default: return std::nullopt;
  }
}

// Reads FieldsV1; returns whether the node is a member (readIterV1's contract).
bool fs_from_json(const json& j, FieldSet& out, std::string& err) {
  if (!j.is_object()) {
    err = "expected an object in fieldsV1";
    return false;
  }
  bool member = false;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == ".") {
      member = true;
      continue;
    }
    std::string perr;
    auto pe = canonical_pe(it.key(), perr);
    if (!pe) {
      if (!perr.empty()) {
        err = "parsing key as path element: " + perr;
        return false;
      }
      continue;
    }
    FieldSet child;
    bool child_member = fs_from_json(it.value(), child, err);
    if (!err.empty()) return false;
    FieldSet& slot = out.ch[*pe];
    bool m = slot.member || child_member;
    fs_union_in(slot, std::move(child));  // in place: a copy at every level was quadratic
    slot.member = m;
  }
  if (out.ch.empty()) member = true;
  return member;
}

std::string pe_display(const std::string& pe) {
  if (pe.rfind("f:", 0) == 0) return "." + pe.substr(2);
  if (pe.rfind("i:", 0) == 0) return "[" + pe.substr(2) + "]";
  json v = json::parse(pe.substr(2), nullptr, false);
  if (pe.rfind("v:", 0) == 0) return "[=" + smd_to_string(v) + "]";
  std::string out = "[";
  bool first = true;
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!first) out += ",";
      first = false;
      out += it.key() + "=" + smd_to_string(it.value());
    }
  }
  return out + "]";
}

std::string path_display(const Path& p) {
  std::string out;
  for (const auto& e : p) out += pe_display(e);
  return out;
}

FieldSet paths_to_set(const std::vector<std::string>& dotted) {
  FieldSet s;
  for (const auto& d : dotted) {
    Path p;
    size_t start = 0;
    while (true) {
      size_t dot = d.find('.', start);
      p.push_back("f:" + d.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    if (!d.empty()) fs_insert(s, p);
  }
  return s;
}

const FieldSet& strip_set() {
  static const FieldSet s = paths_to_set({"apiVersion", "kind", "metadata", "metadata.name",
                                          "metadata.namespace", "metadata.creationTimestamp",
                                          "metadata.selfLink", "metadata.uid", "metadata.clusterName",
                                          "metadata.generation", "metadata.managedFields",
                                          "metadata.resourceVersion"});
  return s;
}

// ---------------------------------------------------------------------------------------------
// Typed walks. The kind of a value comes from its JSON shape and the lookup of its path.

enum class K { Scalar, Struct, Map, AtomicMap, Keyed, Set, AtomicList };

bool is_granular_list(K k) { return k == K::Keyed || k == K::Set; }
bool is_granular_map(K k) { return k == K::Struct || k == K::Map; }

const json& null_json() {
  static const json n;
  return n;
}

struct Ctx {
  const ListKeysLookup& lookup;
  std::vector<std::shared_ptr<const ListKeys>> held;  // what get() answered, alive for the walk

  const ListKeys& get(const std::string& path) {
    static const ListKeys none;
    if (!lookup) return none;
    auto lk = lookup(path);
    if (!lk) return none;
    held.push_back(std::move(lk));
    return *held.back();
  }

  K kind_of(const json& v, const std::string& sp, bool elem) {
    if (v.is_object()) {
      if (elem || sp.empty()) return K::Struct;
      const ListKeys& lk = get(sp);
      if (lk.map_type == "atomic") return K::AtomicMap;
      if (lk.map_type == "map") return K::Map;
      return K::Struct;
    }
    if (v.is_array()) {
      if (elem) return K::AtomicList;
      const ListKeys& lk = get(sp);
      if (lk.kind == "map" && !lk.keys.empty()) return K::Keyed;
      if (lk.kind == "set") return K::Set;
      return K::AtomicList;
    }
    return K::Scalar;
  }

  // The kind for a pair of values at one path (either may be absent; null is a wildcard).
  K kind_pair(const json* l, const json* r, const std::string& sp, bool elem) {
    const json* a = r && !r->is_null() ? r : nullptr;
    const json* b = l && !l->is_null() ? l : nullptr;
    if (a && b) {
      bool same = (a->is_object() && b->is_object()) || (a->is_array() && b->is_array());
      if (!same) return K::Scalar;
    }
    const json* v = a ? a : b;
    return v ? kind_of(*v, sp, elem) : K::Scalar;
  }
};

std::string child_sp(const std::string& sp, const std::string& key) { return sp.empty() ? key : sp + "." + key; }

// The path element of a list item, or nullopt with err (listItemToPathElement).
std::optional<std::string> item_pe(Ctx& ctx, const json& item, const std::string& sp, K k, std::string& err) {
  if (k == K::Set) {
    if (item.is_object()) err = "associative list without keys has an element that's a map type";
    else if (item.is_array()) err = "not supported: associative list with lists as elements";
    else if (item.is_null()) err = "associative list without keys has an element that's an explicit null";
    else return "v:" + go_json_text(item, GoEsc::Jsoniter);
    return std::nullopt;
  }
  if (item.is_null()) {
    err = "associative list with keys may not have a null element";
    return std::nullopt;
  }
  if (!item.is_object()) {
    err = "associative list with keys may not have non-map elements";
    return std::nullopt;
  }
  const ListKeys& lk = ctx.get(sp);
  // The key object's JSON, written as go_json would write it (names sorted, each once) without
  // building the object.
  std::pair<const std::string*, const json*> fields[8];
  std::vector<std::pair<const std::string*, const json*>> many;
  auto* kv = fields;
  if (lk.keys.size() > std::size(fields)) {
    many.resize(lk.keys.size());
    kv = many.data();
  }
  size_t n = 0;
  for (const auto& name : lk.keys) {
    const json* value = nullptr;
    if (auto it = item.find(name); it != item.end()) {
      value = &*it;
    } else if (lk.key_defaults.is_object()) {
      if (auto d = lk.key_defaults.find(name); d != lk.key_defaults.end() && !d->is_null()) value = &*d;
    }
    if (!value) {
      err = "associative list with keys has an element that omits key field " + go_quote(name) +
            " (and doesn't have default value)";
      return std::nullopt;
    }
    kv[n++] = {&name, value};
  }
  std::sort(kv, kv + n, [](const auto& a, const auto& b) { return *a.first < *b.first; });
  std::string pe = "k:{";
  for (size_t i = 0; i < n; ++i) {
    if (i > 0 && *kv[i].first == *kv[i - 1].first) continue;
    if (pe.size() > 3) pe += ',';
    go_json_string(pe, *kv[i].first, GoEsc::Jsoniter);
    pe += ':';
    go_json(pe, *kv[i].second, GoEsc::Jsoniter);
  }
  pe += '}';
  return pe;
}

struct VErr {
  std::string path, msg;
};

std::string verrs_text(const std::vector<VErr>& errs) {
  auto one = [](const VErr& e) { return e.path.empty() ? e.msg : e.path + ": " + e.msg; };
  if (errs.size() == 1) return one(errs[0]);
  std::string out = "errors:";
  for (const auto& e : errs) out += "\n  " + one(e);
  return out;
}

// What ObjectToTyped checks that a schema-less walk can: associative list items and duplicates.
void validate(Ctx& ctx, const json& v, const std::string& sp, bool elem, bool allow_dups, const std::string& path,
              std::vector<VErr>& errs) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it)
      validate(ctx, it.value(), child_sp(sp, it.key()), false, allow_dups, path + "." + it.key(), errs);
    return;
  }
  if (!v.is_array()) return;
  K k = ctx.kind_of(v, sp, elem);
  if (!is_granular_list(k)) {
    for (size_t i = 0; i < v.size(); ++i)
      validate(ctx, v[i], sp, true, allow_dups, path + "[" + std::to_string(i) + "]", errs);
    return;
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < v.size(); ++i) {
    std::string err;
    auto pe = item_pe(ctx, v[i], sp, k, err);
    if (!pe) {
      errs.push_back({path, "element " + std::to_string(i) + ": " + err});
      return;
    }
    if (!seen.insert(*pe).second && !allow_dups)
      errs.push_back({path, "duplicate entries for key " + pe_display(*pe)});
    validate(ctx, v[i], sp, true, allow_dups, path + pe_display(*pe), errs);
  }
}

bool is_container(const json& v) { return v.is_object() || v.is_array(); }

// validate without the error texts: whether it would find nothing (the common case, which then
// needs no path strings).
// skip_mf: v is the root, and its metadata.managedFields are left out.
bool validates(Ctx& ctx, const json& v, const std::string& sp, bool elem, bool allow_dups, bool skip_mf = false) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (skip_mf && it.key() == "metadata" && it.value().is_object()) {
        for (auto m = it.value().begin(); m != it.value().end(); ++m)
          if (m.key() != "managedFields" && is_container(m.value()) &&
              !validates(ctx, m.value(), "metadata." + m.key(), false, allow_dups))
            return false;
        continue;
      }
      // Scalars have nothing to check: no path string for them.
      if (is_container(it.value()) && !validates(ctx, it.value(), child_sp(sp, it.key()), false, allow_dups))
        return false;
    }
    return true;
  }
  if (!v.is_array()) return true;
  K k = ctx.kind_of(v, sp, elem);
  if (!is_granular_list(k)) {
    for (size_t i = 0; i < v.size(); ++i)
      if (!validates(ctx, v[i], sp, true, allow_dups)) return false;
    return true;
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < v.size(); ++i) {
    std::string err;
    auto pe = item_pe(ctx, v[i], sp, k, err);
    if (!pe) return false;
    if (!seen.insert(*pe).second && !allow_dups) return false;
    if (!validates(ctx, v[i], sp, true, allow_dups)) return false;
  }
  return true;
}

// ToFieldSet: adds v's fields under `node` (the set node at v's path); returns whether v's own
// path is a member.
bool to_field_set(Ctx& ctx, const json& v, const std::string& sp, bool elem, FieldSet& node) {
  K k = ctx.kind_of(v, sp, elem);
  if (is_granular_map(k)) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string pe = "f:" + it.key();
      FieldSet& c = node.ch[pe];
      bool m = to_field_set(ctx, it.value(), child_sp(sp, it.key()), false, c);
      const json& cv = it.value();
      if (cv.is_null() || (cv.is_object() && cv.empty()) || k == K::Map) m = true;
      c.member = c.member || m;
      if (!fs_keep(c)) node.ch.erase(pe);
    }
    return false;
  }
  if (is_granular_list(k)) {
    std::vector<std::optional<std::string>> pes;
    std::map<std::string, int> count;
    for (const auto& item : v) {
      std::string err;
      pes.push_back(item_pe(ctx, item, sp, k, err));
      if (pes.back()) ++count[*pes.back()];
    }
    for (size_t i = 0; i < v.size(); ++i) {
      if (!pes[i]) continue;
      FieldSet& c = node.ch[*pes[i]];
      if (count[*pes[i]] < 2) to_field_set(ctx, v[i], sp, true, c);
      c.member = true;
    }
    return false;
  }
  return true;  // scalars, null, atomic lists and maps
}

FieldSet field_set_of(Ctx& ctx, const json& obj) {
  FieldSet s;
  to_field_set(ctx, obj, "", false, s);
  return s;
}

// Compare: Added/Removed/Modified between lhs and rhs (compareWalker).
struct Comparison {
  FieldSet added, removed, modified;
};

// The walk's current path, with each of the three result sets' nodes along it created only
// when something is inserted at or below it (what fs_insert from the root would create).
struct CompareCursor {
  Path path;
  FieldSet* roots[3];
  std::vector<FieldSet*> nodes[3];  // nodes[t][i]: the node of path[0..i] in set t, once made

  bool skip_mf = false;  // leave out metadata.managedFields of both objects

  explicit CompareCursor(Comparison& c) : roots{&c.added, &c.removed, &c.modified} {}
  void push(std::string pe) { path.push_back(std::move(pe)); }
  void pop() {
    path.pop_back();
    for (auto& n : nodes)
      if (n.size() > path.size()) n.resize(path.size());
  }
  void insert(int t) {
    if (path.empty()) return;
    auto& n = nodes[t];
    FieldSet* cur = n.empty() ? roots[t] : n.back();
    for (size_t i = n.size(); i < path.size(); ++i) {
      cur = &cur->ch[path[i]];
      n.push_back(cur);
    }
    cur->member = true;
  }
  // Whether what is at and below the path is left out of the result (never, here).
  bool dropped() const { return false; }
  // The walk's notes on rhs values it does not walk through (FieldsCursor checks them).
  void unwalked(Ctx&, const json*, const std::string&, bool) {}
  void unkeyed() {}
};
constexpr int kAdded = 0, kRemoved = 1, kModified = 2;

// The FieldsV1 object of what is added or modified, less the ignored paths (with everything
// under them) and less the stripped members: the set Chain::update records for a manager when
// no manager owns anything yet, built by the compare walk itself rather than through the three
// FieldSets, their set algebra and their conversion (which took about a sixth of a create's
// CPU). Kept equal to that route by a test over generated objects.
class FieldsCursor {
 public:
  FieldsCursor(json::object_t& root, const FieldSet& ignore, const FieldSet& strip, bool skip_mf)
      : skip_mf(skip_mf) {
    frames_.push_back(Frame{&root, false, &ignore, &strip, false, {}});
  }

  void push(std::string pe) {
    const Frame& up = frames_.back();
    const FieldSet* ig = up.ignore ? fs_child(*up.ignore, pe) : nullptr;
    const FieldSet* st = up.strip ? fs_child(*up.strip, pe) : nullptr;
    frames_.push_back(Frame{nullptr, false, ig, st, up.dropped || (ig && ig->member), std::move(pe)});
  }
  void pop() {
    Frame& f = frames_.back();
    // A member with children says so with "." (which sorts before every path element).
    if (f.node && f.member && !f.node->empty()) f.node->emplace_hint(f.node->begin(), ".", json::object());
    frames_.pop_back();
  }
  void insert(int t) {
    if (t == kRemoved || frames_.size() < 2) return;
    Frame& f = frames_.back();
    if (f.dropped || (f.strip && f.strip->member)) return;
    make(frames_.size() - 1);
    f.member = true;
  }
  bool dropped() const { return frames_.back().dropped; }

  // The walk also stands in for ObjectToTyped's check of the new object: what it walks through
  // it checks itself (list items get their keys), and what it does not (ignored subtrees,
  // atomic values, duplicated items) is checked here. The new object has no managedFields.
  void unwalked(Ctx& ctx, const json* r, const std::string& sp, bool elem) {
    if (r && is_container(*r) && !validates(ctx, *r, sp, elem, true)) typed = false;
  }
  void unkeyed() { typed = false; }

  bool skip_mf;
  bool typed = true;  // false: the new object would not convert (the caller takes the general route)

 private:
  struct Frame {
    json::object_t* node;  // made when something is inserted at or below it
    bool member;
    const FieldSet* ignore;  // the ignored and stripped sets' nodes at this path, if any
    const FieldSet* strip;
    bool dropped;  // at or below an ignored path
    std::string pe;
  };
  json::object_t* make(size_t i) {
    Frame& f = frames_[i];
    if (!f.node) {
      json::object_t* up = make(i - 1);
      f.node = &up->emplace_hint(up->end(), std::move(f.pe), json::object())->second.get_ref<json::object_t&>();
    }
    return f.node;
  }
  std::vector<Frame> frames_;
};

// skip_mf: the values are the root's metadata, whose managedFields the walk leaves out (as if
// removed from both objects beforehand).
template <class Cursor>
void compare(Ctx& ctx, const json* l, const json* r, const std::string& sp, bool elem, Cursor& cur,
             bool skip_mf = false);

template <class Cursor>
void compare_list_items(Ctx& ctx, const json* l, const json* r, const std::string& sp, K k, Cursor& cur) {
  std::vector<std::string> all;
  std::map<std::string, std::vector<const json*>> lv, rv;
  if (l) {
    for (const auto& item : *l) {
      std::string err;
      auto pe = item_pe(ctx, item, sp, k, err);
      if (!pe) continue;
      auto& list = lv[*pe];
      if (list.empty()) all.push_back(*pe);
      list.push_back(&item);
    }
  }
  if (r) {
    for (const auto& item : *r) {
      std::string err;
      auto pe = item_pe(ctx, item, sp, k, err);
      if (!pe) {
        cur.unkeyed();
        continue;
      }
      auto& list = rv[*pe];
      if (list.empty() && !lv.count(*pe)) all.push_back(*pe);
      list.push_back(&item);
    }
  }
  static const std::vector<const json*> none;
  for (const auto& pe : all) {
    auto li = lv.find(pe);
    auto ri = rv.find(pe);
    const auto& ll = li == lv.end() ? none : li->second;
    const auto& rl = ri == rv.end() ? none : ri->second;
    cur.push(pe);
    if (cur.dropped() || rl.size() >= 2) {
      for (const json* item : rl) cur.unwalked(ctx, item, sp, true);
    }
    if (cur.dropped()) {
    } else if (ll.size() <= 1 && rl.size() <= 1) {
      compare(ctx, ll.empty() ? nullptr : ll[0], rl.empty() ? nullptr : rl[0], sp, true, cur);
    } else if (ll.size() >= 2 && rl.size() >= 2) {
      bool eq = ll.size() == rl.size();
      for (size_t i = 0; eq && i < ll.size(); ++i) eq = *ll[i] == *rl[i];
      if (!eq) cur.insert(kModified);
    } else if (ll.size() >= 2) {
      if (!rl.empty()) compare(ctx, nullptr, rl[0], sp, true, cur);
      cur.insert(kRemoved);
    } else {
      if (!ll.empty()) compare(ctx, ll[0], nullptr, sp, true, cur);
      cur.insert(kAdded);
    }
    cur.pop();
  }
}

template <class Cursor>
void compare(Ctx& ctx, const json* l, const json* r, const std::string& sp, bool elem, Cursor& cur,
             bool skip_mf) {
  K k = ctx.kind_pair(l, r, sp, elem);
  bool leaf = true;
  bool equal_empty = false;  // both empty objects once managedFields are left out
  if (is_granular_map(k)) {
    const json* lo = l && l->is_object() ? l : nullptr;
    const json* ro = r && r->is_object() ? r : nullptr;
    auto empty = [&](const json* o) {
      return !o || o->empty() || (skip_mf && o->size() == 1 && o->contains("managedFields"));
    };
    equal_empty = skip_mf && lo && ro && empty(lo) && empty(ro);
    if (!(empty(lo) && empty(ro))) {
      leaf = false;
      // Both objects keep their keys sorted: walk them together, in key order.
      json::const_iterator li, le, ri, re;
      if (lo) li = lo->cbegin(), le = lo->cend();
      if (ro) ri = ro->cbegin(), re = ro->cend();
      for (;;) {
        bool lhas = lo && li != le, rhas = ro && ri != re;
        if (!lhas && !rhas) break;
        const json* lc = nullptr;
        const json* rc = nullptr;
        const std::string* key;
        if (lhas && rhas && li.key() == ri.key()) {
          key = &li.key();
          lc = &*li;
          rc = &*ri;
        } else if (lhas && (!rhas || li.key() < ri.key())) {
          key = &li.key();
          lc = &*li;
        } else {
          key = &ri.key();
          rc = &*ri;
        }
        if (lc) ++li;
        if (rc) ++ri;
        if (skip_mf && *key == "managedFields") continue;
        cur.push("f:" + *key);
        if (cur.dropped()) {
          if (rc && is_container(*rc)) cur.unwalked(ctx, rc, child_sp(sp, *key), false);
          cur.pop();
          continue;
        }
        // The path only types objects and lists: scalars on both sides need none.
        static const std::string kNoPath;
        const bool typed = (lc && is_container(*lc)) || (rc && is_container(*rc));
        compare(ctx, lc, rc, typed ? child_sp(sp, *key) : kNoPath, false, cur,
                sp.empty() && !elem && *key == "metadata" && cur.skip_mf);
        cur.pop();
      }
    }
  } else if (is_granular_list(k)) {
    const json* la = l && l->is_array() ? l : nullptr;
    const json* ra = r && r->is_array() ? r : nullptr;
    if (!((!la || la->empty()) && (!ra || ra->empty()))) {
      leaf = false;
      compare_list_items(ctx, la, ra, sp, k, cur);
    }
  }
  if (leaf) {
    cur.unwalked(ctx, r, sp, elem);
    if (!l) cur.insert(kAdded);
    else if (!r) cur.insert(kRemoved);
    else if (!equal_empty && *l != *r) cur.insert(kModified);
  } else {
    if (!l) cur.insert(kAdded);
    else if (!r) cur.insert(kRemoved);
  }
}

// skip_managed_fields: compare as if both had no metadata.managedFields.
Comparison compare_objects(Ctx& ctx, const json& l, const json& r, bool skip_managed_fields = false) {
  Comparison c;
  CompareCursor cur(c);
  cur.skip_mf = skip_managed_fields;
  compare(ctx, &l, &r, "", false, cur);
  return c;
}

// Merge with the rhs winning at leaves (TypedValue.Merge).
std::optional<json> merge(Ctx& ctx, const json* l, const json* r, const std::string& sp, bool elem) {
  K k = ctx.kind_pair(l, r, sp, elem);
  auto keep_rhs = [&]() -> std::optional<json> {
    if (r) return *r;
    if (l) return *l;
    return std::nullopt;
  };
  if (is_granular_map(k)) {
    const json* lo = l && l->is_object() ? l : nullptr;
    const json* ro = r && r->is_object() ? r : nullptr;
    if ((!lo || lo->empty()) && (!ro || ro->empty())) return keep_rhs();
    json out = json::object();
    std::set<std::string> keys;
    if (lo) for (auto it = lo->begin(); it != lo->end(); ++it) keys.insert(it.key());
    if (ro) for (auto it = ro->begin(); it != ro->end(); ++it) keys.insert(it.key());
    for (const auto& key : keys) {
      const json* lc = nullptr;
      const json* rc = nullptr;
      if (lo) {
        auto it = lo->find(key);
        if (it != lo->end()) lc = &*it;
      }
      if (ro) {
        auto it = ro->find(key);
        if (it != ro->end()) rc = &*it;
      }
      auto m = merge(ctx, lc, rc, child_sp(sp, key), false);
      if (m) out[key] = std::move(*m);
    }
    if (out.empty()) return std::nullopt;
    return out;
  }
  if (!is_granular_list(k)) return keep_rhs();
  const json* la = l && l->is_array() ? l : nullptr;
  const json* ra = r && r->is_array() ? r : nullptr;
  if ((!la || la->empty()) && (!ra || ra->empty())) return keep_rhs();

  // visitListItems: rhs order wins for shared items, lhs-only items keep their place.
  std::vector<std::string> rpes, lpes;
  std::vector<const json*> litems;
  std::map<std::string, const json*> robs, lobs;
  if (ra) {
    for (const auto& item : *ra) {
      std::string err;
      auto pe = item_pe(ctx, item, sp, k, err);
      if (!pe || robs.count(*pe)) continue;
      robs[*pe] = &item;
      rpes.push_back(*pe);
    }
  }
  if (la) {
    for (const auto& item : *la) {
      std::string err;
      auto pe = item_pe(ctx, item, sp, k, err);
      if (!pe) continue;
      auto it = lobs.find(*pe);
      if (it == lobs.end()) lobs[*pe] = &item;
      else it->second = &null_json();  // duplicated items are not merged with the new value
      lpes.push_back(*pe);
      litems.push_back(&item);
    }
  }
  std::vector<std::string> shared;
  for (const auto& pe : rpes)
    if (lobs.count(pe)) shared.push_back(pe);
  size_t next_shared_i = 0;
  std::optional<std::string> next_shared;
  auto advance_shared = [&]() {
    next_shared.reset();
    if (next_shared_i < shared.size()) next_shared = shared[next_shared_i++];
  };
  advance_shared();

  json out = json::array();
  std::set<std::string> merged_rhs;
  auto lget = [&](const std::string& pe) -> const json* {
    auto it = lobs.find(pe);
    return it == lobs.end() ? nullptr : it->second;
  };
  size_t li = 0, ri = 0;
  const size_t ln = lpes.size(), rn = rpes.size();
  while (li < ln || ri < rn) {
    if (li < ln && ri < rn) {
      const std::string& pe = lpes[li];
      if (pe == rpes[ri]) {
        merged_rhs.insert(pe);
        auto m = merge(ctx, lget(pe), robs[pe], sp, true);
        if (m) out.push_back(std::move(*m));
        ++li;
        ++ri;
        advance_shared();
        continue;
      }
      if (robs.count(pe) && next_shared && *next_shared != pe) {
        ++li;
        continue;
      }
    }
    if (li < ln) {
      const std::string& pe = lpes[li];
      if (!robs.count(pe)) {
        auto m = merge(ctx, litems[li], nullptr, sp, true);
        if (m) out.push_back(std::move(*m));
        ++li;
        continue;
      } else if (merged_rhs.count(pe)) {
        ++li;
      }
    }
    if (ri < rn) {
      const std::string& pe = rpes[ri];
      merged_rhs.insert(pe);
      auto m = merge(ctx, lget(pe), robs[pe], sp, true);
      if (m) out.push_back(std::move(*m));
      ++ri;
      if (next_shared && *next_shared == pe) advance_shared();
    }
  }
  if (out.empty()) return std::nullopt;
  return out;
}

// RemoveItems: drops every item or field of v whose path is a member of `set`.
std::optional<json> remove_items(Ctx& ctx, const json& v, const std::string& sp, bool elem, const FieldSet& set) {
  K k = ctx.kind_of(v, sp, elem);
  if (is_granular_map(k)) {
    if (v.empty()) return std::nullopt;
    json out = json::object();
    for (auto it = v.begin(); it != v.end(); ++it) {
      const FieldSet* sub = fs_child(set, "f:" + it.key());
      if (sub && sub->member) continue;
      if (sub && !sub->ch.empty()) {
        auto r = remove_items(ctx, it.value(), child_sp(sp, it.key()), false, *sub);
        if (r) out[it.key()] = std::move(*r);
      } else {
        out[it.key()] = it.value();
      }
    }
    if (out.empty()) return std::nullopt;
    return out;
  }
  if (is_granular_list(k)) {
    if (v.empty()) return std::nullopt;
    json out = json::array();
    for (const auto& item : v) {
      std::string err;
      auto pe = item_pe(ctx, item, sp, k, err);
      const FieldSet* sub = pe ? fs_child(set, *pe) : nullptr;
      if (sub && sub->member) continue;
      if (sub && !sub->ch.empty()) {
        auto r = remove_items(ctx, item, sp, true, *sub);
        if (r) out.push_back(std::move(*r));
      } else {
        out.push_back(item);
      }
    }
    if (out.empty()) return std::nullopt;
    return out;
  }
  return v;
}

json remove_root(Ctx& ctx, const json& v, const FieldSet& set) {
  auto r = remove_items(ctx, v, "", false, set);
  return r ? std::move(*r) : json::object();
}

// A null the applied configuration sets means "unset" for Kubernetes' typed objects: drop it.
void strip_config_nulls(Ctx& ctx, json& out, const json& cfg, const std::string& sp, bool elem) {
  if (cfg.is_object() && out.is_object()) {
    for (auto it = cfg.begin(); it != cfg.end(); ++it) {
      auto o = out.find(it.key());
      if (o == out.end()) continue;
      if (it.value().is_null()) {
        if (o->is_null()) out.erase(o);
      } else {
        strip_config_nulls(ctx, *o, it.value(), child_sp(sp, it.key()), false);
      }
    }
    return;
  }
  if (!cfg.is_array() || !out.is_array()) return;
  K k = ctx.kind_of(cfg, sp, elem);
  if (k != K::Keyed) return;
  for (const auto& citem : cfg) {
    std::string err;
    auto cpe = item_pe(ctx, citem, sp, k, err);
    if (!cpe) continue;
    for (auto& oitem : out) {
      auto ope = item_pe(ctx, oitem, sp, k, err);
      if (ope && *ope == *cpe) {
        strip_config_nulls(ctx, oitem, citem, sp, true);
        break;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Managers: fieldpath.ManagedFields keyed by Kubernetes' manager identifier.

struct Ident {
  std::string manager, operation, api_version, subresource;
};

// BuildManagerIdentifier: the JSON of the entry without fields and time (and without apiVersion
// for appliers).
std::string ident_string(const Ident& id) {
  std::string s = "{";
  bool first = true;
  auto field = [&](const char* name, const std::string& v) {
    if (v.empty()) return;
    if (!first) s += ',';
    first = false;
    go_json_string(s, name, GoEsc::Std);
    s += ':';
    go_json_string(s, v, GoEsc::Std);
  };
  field("manager", id.manager);
  field("operation", id.operation);
  if (id.operation != "Apply") field("apiVersion", id.api_version);
  field("subresource", id.subresource);
  return s + "}";
}

struct VSet {
  Ident ident;
  FieldSet set;
  std::string api_version;
  bool applied = false;
};

struct Managed {
  std::map<std::string, VSet> fields;
  std::map<std::string, std::string> times;
  std::vector<std::string> order;  // identifiers in the order decoded
};

// DecodeManagedFields. Returns false with err on a malformed entry.
bool decode_managed(const json& obj, Managed& out, std::string& err) {
  out = Managed{};
  if (!obj.is_object()) return true;
  auto md = obj.find("metadata");
  if (md == obj.end() || !md->is_object()) return true;
  auto mf = md->find("managedFields");
  if (mf == md->end() || !mf->is_array()) return true;
  for (size_t i = 0; i < mf->size(); ++i) {
    const json& e = (*mf)[i];
    if (!e.is_object()) {
      err = "managed fields entry " + std::to_string(i) + " is not an object";
      return false;
    }
    auto str = [&](const char* k) {
      auto it = e.find(k);
      return it != e.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    Ident id{str("manager"), str("operation"), str("apiVersion"), str("subresource")};
    if (id.operation != "Apply" && id.operation != "Update") {
      err = "operation must be `Apply` or `Update`";
      return false;
    }
    if (id.api_version.empty()) {
      err = "apiVersion must not be empty";
      return false;
    }
    std::string ft = str("fieldsType");
    if (ft.empty()) {
      err = "missing fieldsType in managed fields entry " + std::to_string(i);
      return false;
    }
    if (ft != "FieldsV1") {
      err = "invalid fieldsType " + go_quote(ft) + " in managed fields entry " + std::to_string(i);
      return false;
    }
    VSet vs;
    vs.ident = id;
    vs.api_version = id.api_version;
    vs.applied = id.operation == "Apply";
    auto fv = e.find("fieldsV1");
    if (fv != e.end() && !fv->is_null()) {
      std::string serr;
      fs_from_json(*fv, vs.set, serr);
      if (!serr.empty()) {
        err = "error decoding versioned set: error decoding set: " + serr;
        return false;
      }
    }
    std::string key = ident_string(id);
    if (!out.fields.count(key)) out.order.push_back(key);
    out.fields[key] = std::move(vs);
    std::string t = str("time");
    if (!t.empty()) out.times[key] = normalize_time(t);
    else out.times.erase(key);
  }
  return true;
}

ManagedEntry entry_of(const std::string& key, const VSet& vs, const Managed& m) {
  ManagedEntry e;
  e.manager = vs.ident.manager;
  e.operation = vs.applied ? "Apply" : vs.ident.operation;
  e.api_version = vs.api_version;
  e.subresource = vs.ident.subresource;
  auto t = m.times.find(key);
  if (t != m.times.end()) e.time = t->second;
  e.fields = fs_to_json(vs.set);
  return e;
}

void encode_managed(json& obj, const Managed& m) {
  std::vector<ManagedEntry> entries;
  for (const auto& [key, vs] : m.fields) entries.push_back(entry_of(key, vs, m));
  write_managed_fields(obj, std::move(entries));
}

void remove_managed_fields(json& obj) {
  if (!obj.is_object()) return;
  auto md = obj.find("metadata");
  if (md != obj.end() && md->is_object()) md->erase("managedFields");
}

std::string meta_string(const json& obj, const char* field) {
  if (!obj.is_object()) return "";
  auto md = obj.find("metadata");
  if (md == obj.end() || !md->is_object()) return "";
  auto it = md->find(field);
  return it != md->end() && it->is_string() ? it->get<std::string>() : "";
}

std::string top_string(const json& obj, const char* field) {
  if (!obj.is_object()) return "";
  auto it = obj.find(field);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

// ---------------------------------------------------------------------------------------------
// structured-merge-diff's Updater.

struct Conflict {
  std::string manager;  // identifier
  Path path;
};

// Updater.update: other managers lose what changed (conflicts when !force) and what was removed.
bool smd_update(Ctx& ctx, const json& oldo, const json& newo, Managed& m, const std::string& workflow, bool force,
                const FieldSet& ignore, Comparison* cmp_out, std::vector<Conflict>* conflicts_out,
                bool skip_managed_fields = false) {
  Comparison c = compare_objects(ctx, oldo, newo, skip_managed_fields);
  fs_rdiff_in(c.added, ignore);
  fs_rdiff_in(c.modified, ignore);
  fs_rdiff_in(c.removed, ignore);
  std::map<std::string, FieldSet> conflicts;
  bool others = false;
  for (const auto& [key, vs] : m.fields) others = others || key != workflow;
  if (others) {  // a create has no other managers: no need for the union
    FieldSet changed = fs_union(c.modified, c.added);
    for (const auto& [key, vs] : m.fields) {
      if (key == workflow) continue;
      FieldSet cs = fs_intersect(vs.set, changed);
      if (!fs_empty(cs)) conflicts[key] = std::move(cs);
    }
  }
  if (!force && !conflicts.empty()) {
    if (conflicts_out) {
      for (const auto& [key, cs] : conflicts) {
        Path p;
        fs_iterate(cs, p, [&](const Path& path) { conflicts_out->push_back({key, path}); });
      }
    }
    return false;
  }
  for (const auto& [key, cs] : conflicts) m.fields[key].set = fs_diff(m.fields[key].set, cs);
  if (!fs_empty(c.removed)) {
    for (auto& [key, vs] : m.fields)
      if (key != workflow) vs.set = fs_diff(vs.set, c.removed);
  }
  for (auto it = m.fields.begin(); it != m.fields.end();) {
    if (fs_empty(it->second.set)) it = m.fields.erase(it);
    else ++it;
  }
  if (cmp_out) *cmp_out = std::move(c);
  return true;
}

// prune: drop what the applier applied last time, omits now, and nobody else owns.
json smd_prune(Ctx& ctx, const json& merged, const Managed& m, const std::optional<VSet>& last) {
  if (!last || fs_empty(last->set)) return merged;
  const FieldSet last_e = fs_ensure_named(last->set);
  json pruned = remove_root(ctx, merged, last_e);
  FieldSet managed;
  for (const auto& [key, vs] : m.fields) managed = fs_union(managed, vs.set);
  const FieldSet merged_e = fs_ensure_named(field_set_of(ctx, merged));
  FieldSet pruned_e = fs_ensure_named(field_set_of(ctx, pruned));
  pruned = remove_root(ctx, merged, fs_diff(merged_e, fs_union(pruned_e, fs_ensure_named(managed))));
  pruned_e = fs_ensure_named(field_set_of(ctx, pruned));
  return remove_root(ctx, merged, fs_intersect(fs_diff(merged_e, pruned_e), last_e));
}

// ---------------------------------------------------------------------------------------------
// The field manager chain.

struct ChainResult {
  bool ok = true;
  Status status;                    // when !ok and conflicts is empty
  std::vector<Conflict> conflicts;  // when !ok: an apply conflict
  json obj;
  Managed managed;
};

std::string gvk_string(const std::string& api_version, const std::string& kind) {
  size_t slash = api_version.find('/');
  std::string group, version;
  if (api_version.empty()) {
  } else if (slash == std::string::npos) {
    version = api_version;
  } else if (api_version.find('/', slash + 1) == std::string::npos) {
    group = api_version.substr(0, slash);
    version = api_version.substr(slash + 1);
  } else {
    return "/, Kind=";  // unparsable group/version: an empty GroupVersionKind
  }
  return group + "/" + version + ", Kind=" + kind;
}

std::string object_gvknn(const json& obj) {
  return meta_string(obj, "namespace") + "/" + meta_string(obj, "name") + "; " +
         gvk_string(top_string(obj, "apiVersion"), top_string(obj, "kind"));
}

struct Chain {
  Ctx& ctx;
  std::string api_version, subresource, now;
  FieldSet ignore;
  json zero;

  // buildManagerInfo -> managedFieldsUpdater -> stripMeta -> structuredMerge (Update), then cap.
  bool update(const json& live, const json& newo, Managed& m, const std::string& manager, std::string& err) {
    if (!typeable(live, newo, err)) return false;
    Ident id{manager.empty() ? "unknown" : manager, "Update", api_version, subresource};
    const std::string key = ident_string(id);
    Comparison c;
    smd_update(ctx, live, newo, m, kCurrentOperation, true, ignore, &c, nullptr, true);
    // smd_update has already taken `ignore` out of both.
    FieldSet set = std::move(c.modified);
    fs_union_in(set, std::move(c.added));
    fs_diff_in(set, strip_set());
    if (!fs_empty(set)) {
      auto prev = m.fields.find(key);
      if (prev != m.fields.end()) {
        prev->second.set = fs_union(set, prev->second.set);
        prev->second.api_version = api_version;
        prev->second.applied = false;
      } else {
        m.fields[key] = VSet{id, std::move(set), api_version, false};
      }
      m.times[key] = now;
    }
    cap_update_managers(m);
    return true;
  }

  // update() when no manager owns anything yet (a create, or the first tracked write): the
  // one entry it records, or none when the write sets nothing tracked.
  bool update_first(const json& live, const json& newo, const std::string& manager, std::string& err,
                    std::vector<ManagedEntry>& entries) {
    ManagedEntry e;
    FieldsCursor cur(e.fields.get_ref<json::object_t&>(), ignore, strip_set(), true);
    const bool live_typed = validates(ctx, live, "", false, true, true);
    if (live_typed) compare(ctx, &live, &newo, "", false, cur);
    if (!live_typed || !cur.typed) {
      if (!typeable(live, newo, err)) return false;  // err says why: the write goes untracked
      // (Not reached while the walk checks exactly what typeable does; if it ever did not, the
      // general route still gives the right entry.)
      Managed m;
      if (!update(live, newo, m, manager, err)) return false;
      for (const auto& [key, vs] : m.fields) entries.push_back(entry_of(key, vs, m));
      return true;
    }
    if (e.fields.empty()) return true;
    e.manager = manager.empty() ? "unknown" : manager;
    e.operation = "Update";
    e.api_version = api_version;
    e.subresource = subresource;
    e.time = now;
    entries.push_back(std::move(e));
    return true;
  }

  // ObjectToTyped of both, as the field manager converts them before comparing.
  bool typeable(const json& live, const json& newo, std::string& err) {
    // Both as if without managedFields: the walks leave them out rather than copy the objects
    // (a copy of a pod was a fifth of a binding's cost). Copies only to word an error.
    auto without_mf = [](const json& o) {
      json c = o;
      remove_managed_fields(c);
      return c;
    };
    std::vector<VErr> errs;
    if (!validates(ctx, newo, "", false, true, true)) {
      json new_c = without_mf(newo);
      validate(ctx, new_c, "", false, true, "", errs);
      err = "failed to convert new object (" + object_gvknn(new_c) + ") to smd typed: " + verrs_text(errs);
      return false;
    }
    if (!validates(ctx, live, "", false, true, true)) {
      json live_c = without_mf(live);
      validate(ctx, live_c, "", false, true, "", errs);
      err = "failed to convert live object (" + object_gvknn(live_c) + ") to smd typed: " + verrs_text(errs);
      return false;
    }
    return true;
  }

  void cap_update_managers(Managed& m) {
    std::vector<std::string> updaters;
    for (const auto& [key, vs] : m.fields)
      if (!vs.applied) updaters.push_back(key);
    if (updaters.size() <= kMaxUpdateManagers) return;
    auto secs = [&](const std::string& key) {
      auto t = m.times.find(key);
      return t == m.times.end() ? int64_t{0} : time_seconds(t->second);
    };
    std::sort(updaters.begin(), updaters.end(), [&](const std::string& a, const std::string& b) {
      int64_t sa = secs(a), sb = secs(b);
      return sa != sb ? sa < sb : a < b;
    });
    std::map<std::string, std::string> first_of_version;
    size_t length = updaters.size();
    for (size_t i = 0; i < updaters.size() && length > kMaxUpdateManagers; ++i) {
      const std::string key = updaters[i];
      auto it = m.fields.find(key);
      if (it == m.fields.end()) continue;
      VSet vs = it->second;
      std::optional<std::string> t;
      if (auto ti = m.times.find(key); ti != m.times.end()) t = ti->second;
      Ident bucket_id{kAncientChanges, "Update", vs.api_version, ""};
      const std::string bucket = ident_string(bucket_id);
      auto first = first_of_version.find(vs.api_version);
      if (first == first_of_version.end()) {
        first_of_version[vs.api_version] = key;
        continue;
      }
      if (!m.fields.count(bucket)) {
        VSet moved = m.fields[first->second];
        m.fields.erase(first->second);
        moved.ident = bucket_id;
        m.fields[bucket] = std::move(moved);
      }
      VSet& b = m.fields[bucket];
      b.set = fs_union(vs.set, b.set);
      b.api_version = vs.api_version;
      b.applied = vs.applied;
      m.fields.erase(key);
      --length;
      if (t) m.times[bucket] = *t;
      else m.times.erase(bucket);
    }
  }

  // skipNonApplied -> buildManagerInfo -> managedFieldsUpdater -> stripMeta -> structuredMerge (Apply).
  ChainResult apply(const json& live, const json& applied, Managed m, const std::string& manager, bool force) {
    ChainResult res;
    json base = live;
    if (m.fields.empty()) {
      std::string err;
      if (!update(zero, base, m, kBeforeFirstApply, err)) {
        res.ok = false;
        res.status = Status(Reason::InternalError, "failed to create manager for existing fields: " + err);
        return res;
      }
    }
    Ident id{manager.empty() ? "unknown" : manager, "Apply", api_version, subresource};
    const std::string key = ident_string(id);

    auto md = applied.find("metadata");
    if (md != applied.end() && md->is_object()) {
      auto mf = md->find("managedFields");
      if (mf != md->end() && mf->is_array()) {
        res.ok = false;
        res.status = Status(Reason::BadRequest, "metadata.managedFields must be nil");
        return res;
      }
    }
    std::vector<VErr> errs;
    validate(ctx, applied, "", false, false, "", errs);
    if (!errs.empty()) {
      res.ok = false;
      res.status = Status(Reason::InternalError, "failed to create typed patch object (" + object_gvknn(applied) +
                                                     "): " + verrs_text(errs));
      return res;
    }
    json live_c = base;
    remove_managed_fields(live_c);
    validate(ctx, live_c, "", false, true, "", errs);
    if (!errs.empty()) {
      res.ok = false;
      res.status = Status(Reason::InternalError, "failed to create typed live object (" + object_gvknn(live_c) +
                                                     "): " + verrs_text(errs));
      return res;
    }

    // Updater.Apply
    auto merged_opt = merge(ctx, &live_c, &applied, "", false);
    json merged = merged_opt ? std::move(*merged_opt) : json::object();
    std::optional<VSet> last;
    if (auto it = m.fields.find(key); it != m.fields.end()) last = it->second;
    FieldSet set = fs_rdiff(field_set_of(ctx, applied), ignore);
    m.fields[key] = VSet{id, std::move(set), api_version, true};
    json newo = smd_prune(ctx, merged, m, last);
    if (!smd_update(ctx, live_c, newo, m, key, force, ignore, nullptr, &res.conflicts)) {
      res.ok = false;
      return res;
    }
    const bool noop = newo == live_c;

    // stripMeta
    if (auto it = m.fields.find(key); it != m.fields.end()) {
      it->second.set = fs_diff(it->second.set, strip_set());
      if (fs_empty(it->second.set)) m.fields.erase(it);
    }
    // managedFieldsUpdater
    if (!noop) {
      strip_config_nulls(ctx, newo, applied, "", false);
      m.times[key] = now;
      res.obj = std::move(newo);
    } else {
      res.obj = live_c;
    }
    res.managed = std::move(m);
    return res;
  }
};

std::string print_manager(const Ident& id) {
  std::string s = go_quote(id.manager);
  if (!id.subresource.empty()) s += " with subresource " + go_quote(id.subresource);
  if (id.operation == "Update") s += " using " + id.api_version;
  return s;
}

Status conflict_status(const std::vector<Conflict>& conflicts, const std::map<std::string, Ident>& idents) {
  auto pm = [&](const std::string& key) {
    auto it = idents.find(key);
    return it == idents.end() ? go_quote(key) : print_manager(it->second);
  };
  std::string msg;
  if (conflicts.size() == 1) {
    msg = "Apply failed with 1 conflict: conflict with " + pm(conflicts[0].manager) + ": " +
          path_display(conflicts[0].path);
  } else {
    std::map<std::string, std::vector<const Path*>> by_manager;  // sorted like sort.Strings
    for (const auto& c : conflicts) by_manager[c.manager].push_back(&c.path);
    std::string lines;
    for (const auto& [key, paths] : by_manager) {
      if (!lines.empty()) lines += "\n";
      lines += "conflicts with " + pm(key) + ":";
      for (const Path* p : paths) lines += "\n- " + path_display(*p);
    }
    msg = "Apply failed with " + std::to_string(conflicts.size()) + " conflicts: " + lines;
  }
  Status st(Reason::Conflict, msg);
  for (const auto& c : conflicts)
    st.with_cause({"FieldManagerConflict", "conflict with " + pm(c.manager), path_display(c.path)});
  return st;
}

// lastAppliedManager: the fields of the last-applied annotation that still match the live object,
// which kubectl's first server-side apply may take from client-side apply without conflict.
std::optional<FieldSet> allowed_from_last_applied(Ctx& ctx, const json& live, const std::string& api_version) {
  if (!live.is_object()) return std::nullopt;
  auto md = live.find("metadata");
  if (md == live.end() || !md->is_object()) return std::nullopt;
  auto ann = md->find("annotations");
  if (ann == md->end() || !ann->is_object()) return std::nullopt;
  auto la = ann->find(kLastApplied);
  if (la == ann->end() || !la->is_string() || la->get_ref<const std::string&>().empty()) return std::nullopt;
  std::vector<VErr> errs;
  validate(ctx, live, "", false, false, "", errs);
  if (!errs.empty()) return std::nullopt;
  json last = json::parse(la->get<std::string>(), nullptr, false);
  if (last.is_discarded() || !last.is_object() || top_string(last, "kind").empty()) return std::nullopt;
  if (top_string(last, "apiVersion") != api_version) return std::nullopt;
  validate(ctx, last, "", false, false, "", errs);
  if (!errs.empty()) return std::nullopt;
  FieldSet set = field_set_of(ctx, last);
  Comparison c = compare_objects(ctx, last, live);
  return fs_diff(fs_diff(fs_diff(set, c.modified), c.added), c.removed);
}

// lastAppliedUpdater: kubectl's server-side apply keeps the annotation in step with what it applied.
void update_last_applied(json& obj, const json& applied) {
  auto md = obj.find("metadata");
  if (md == obj.end() || !md->is_object()) return;
  auto ann = md->find("annotations");
  if (ann == md->end() || !ann->is_object()) return;
  auto cur = ann->find(kLastApplied);
  if (cur == ann->end() || !cur->is_string() || cur->get_ref<const std::string&>().empty()) return;

  json copy = applied;
  if (auto amd = copy.find("metadata"); amd != copy.end() && amd->is_object()) {
    if (auto aann = amd->find("annotations"); aann != amd->end()) {
      bool strings = aann->is_object();
      if (strings)
        for (const auto& v : *aann) strings = strings && v.is_string();
      if (strings) aann->erase(kLastApplied);
      else amd->erase(aann);
    }
  }
  std::string value = go_json_text(copy, GoEsc::Std) + "\n";
  json& annotations = *ann;
  annotations[kLastApplied] = value;
  size_t total = 0;
  for (auto it = annotations.begin(); it != annotations.end(); ++it)
    total += it.key().size() + (it.value().is_string() ? it.value().get_ref<const std::string&>().size() : 0);
  if (total > kTotalAnnotationSizeLimit) annotations.erase(kLastApplied);
}

FieldSet conflicts_to_set(const std::vector<Conflict>& cs) {
  FieldSet s;
  for (const auto& c : cs) fs_insert(s, c.path);
  return s;
}

}  // namespace

// -----------------------------------------------------------------------------------------------

nlohmann::json field_set(const nlohmann::json& obj, const ListKeysLookup& lookup,
                         const std::vector<std::string>& excluded_paths) {
  Ctx ctx{lookup, {}};
  FieldSet s = field_set_of(ctx, obj);
  s = fs_diff(s, strip_set());
  s = fs_rdiff(s, paths_to_set(excluded_paths));
  return fs_to_json(s);
}

Result<std::vector<ManagedEntry>> read_managed_fields(const nlohmann::json& obj) {
  Managed m;
  std::string err;
  if (!decode_managed(obj, m, err)) return Status(Reason::BadRequest, err);
  std::vector<ManagedEntry> out;
  for (const auto& key : m.order) out.push_back(entry_of(key, m.fields.at(key), m));
  return out;
}

void write_managed_fields(nlohmann::json& obj, std::vector<ManagedEntry> entries) {
  if (!obj.is_object()) return;
  if (entries.empty()) {
    remove_managed_fields(obj);
    return;
  }
  std::sort(entries.begin(), entries.end(), [](const ManagedEntry& p, const ManagedEntry& q) {
    if (p.operation != q.operation) return p.operation < q.operation;
    int64_t ps = p.time.empty() ? 0 : time_seconds(p.time);
    int64_t qs = q.time.empty() ? 0 : time_seconds(q.time);
    if (ps != qs) return ps < qs;
    if (p.manager != q.manager) return p.manager < q.manager;
    if (p.api_version != q.api_version) return p.api_version < q.api_version;
    return p.subresource < q.subresource;
  });
  json arr = json::array();
  for (auto& e : entries) {
    json j = json::object();
    if (!e.manager.empty()) j["manager"] = e.manager;
    if (!e.operation.empty()) j["operation"] = e.operation;
    if (!e.api_version.empty()) j["apiVersion"] = e.api_version;
    if (!e.time.empty()) j["time"] = e.time;
    j["fieldsType"] = "FieldsV1";
    j["fieldsV1"] = e.fields.is_object() ? std::move(e.fields) : json::object();
    if (!e.subresource.empty()) j["subresource"] = e.subresource;
    arr.push_back(std::move(j));
  }
  json& md = obj["metadata"];
  if (!md.is_object()) md = json::object();
  md["managedFields"] = std::move(arr);
}

Result<nlohmann::json> record_update(const nlohmann::json& old_obj, nlohmann::json new_obj,
                                     const std::string& manager, const std::string& api_version,
                                     const std::string& subresource, const std::string& now_rfc3339,
                                     const ListKeysLookup& lookup,
                                     const std::vector<std::string>& ignored_paths) {
  if (!new_obj.is_object()) return new_obj;
  Ctx ctx{lookup, {}};
  static const json empty_object = json::object();
  const json& live = old_obj.is_object() ? old_obj : empty_object;

  // decodeLiveOrNew
  Managed m;
  std::string err;
  if (!subresource.empty()) {
    if (!decode_managed(live, m, err)) m = Managed{};
  } else {
    const json* sent = nullptr;
    if (auto md = new_obj.find("metadata"); md != new_obj.end() && md->is_object()) {
      if (auto mf = md->find("managedFields"); mf != md->end() && mf->is_array()) sent = &*mf;
    }
    bool reset = sent && (sent->empty() || (sent->size() == 1 && (*sent)[0].is_object() && (*sent)[0].empty()));
    if (!reset) {
      Managed from_new;
      if (decode_managed(new_obj, from_new, err) && !from_new.fields.empty()) {
        m = std::move(from_new);
      } else {
        err.clear();
        if (!decode_managed(live, m, err)) m = Managed{};
      }
    }
  }
  json out = std::move(new_obj);
  remove_managed_fields(out);

  // skipNonApplied: an existing object without managed fields stays untracked.
  if (m.fields.empty() && !meta_string(live, "uid").empty()) return out;

  Chain chain{ctx, api_version, subresource, normalize_time(now_rfc3339), paths_to_set(ignored_paths), json()};
  if (m.fields.empty()) {
    std::vector<ManagedEntry> entries;
    if (!chain.update_first(live, out, manager, err, entries)) return out;  // UpdateNoErrors: untracked
    write_managed_fields(out, std::move(entries));
    return out;
  }
  if (!chain.update(live, out, m, manager, err)) return out;  // UpdateNoErrors: untracked
  encode_managed(out, m);
  return out;
}

Result<nlohmann::json> server_side_apply(const nlohmann::json& live_in, const nlohmann::json& applied_in,
                                         const std::string& manager, bool force,
                                         const std::string& api_version,
                                         const std::string& now_rfc3339,
                                         const ListKeysLookup& lookup,
                                         const ApplyOptions& options) {
  if (!applied_in.is_null() && !applied_in.is_object()) {
    const char* type = applied_in.is_array() ? "array" : applied_in.is_string() ? "string"
                       : applied_in.is_boolean() ? "bool" : "number";
    return Status(Reason::BadRequest,
                  std::string("error decoding YAML: error unmarshaling JSON: while decoding JSON: json: cannot "
                              "unmarshal ") + type + " into Go value of type map[string]interface {}");
  }
  const json applied = applied_in.is_object() ? applied_in : json::object();
  Ctx ctx{lookup, {}};
  json zero = options.zero_object.is_object() ? options.zero_object : json::object();
  const bool creating = !live_in.is_object();
  const json live = creating ? zero : live_in;

  // FieldManager.Apply decodes the live managed fields first.
  Managed managed;
  std::string err;
  if (!decode_managed(live, managed, err))
    return Status(Reason::InternalError, "failed to decode managed fields: " + err);

  // versionCheck: the body must be of the addressed group, version and kind.
  const std::string applied_av = top_string(applied, "apiVersion");
  const std::string applied_kind = top_string(applied, "kind");
  std::string want_kind = options.kind;
  if (want_kind.empty() && !creating) want_kind = top_string(live_in, "kind");
  const std::string got = gvk_string(applied_av, applied_kind);
  const std::string want = gvk_string(api_version, want_kind.empty() ? applied_kind : want_kind);
  if (got != want || applied_kind.empty()) return Status(Reason::BadRequest, "invalid object type: " + got);

  Chain chain{ctx, api_version, options.subresource, normalize_time(now_rfc3339),
              paths_to_set(options.ignored_paths), zero};
  ChainResult r = chain.apply(live, applied, managed, manager, force);

  // lastAppliedManager: kubectl upgrading from client-side apply takes over the fields its
  // last-applied annotation still describes.
  if (!r.ok && !r.conflicts.empty() && manager == "kubectl") {
    if (auto allowed = allowed_from_last_applied(ctx, live, api_version)) {
      FieldSet rest = fs_diff(conflicts_to_set(r.conflicts), *allowed);
      if (!fs_empty(rest)) {
        std::vector<Conflict> kept;
        for (const auto& c : r.conflicts)
          if (!fs_has(*allowed, c.path)) kept.push_back(c);
        r.conflicts = std::move(kept);
      } else {
        r = chain.apply(live, applied, managed, manager, true);
      }
    }
  }
  if (!r.ok) {
    if (r.conflicts.empty()) return r.status;
    std::map<std::string, Ident> idents;
    for (const auto& c : r.conflicts) {
      json parsed = json::parse(c.manager, nullptr, false);
      if (parsed.is_object())
        idents[c.manager] = Ident{parsed.value("manager", ""), parsed.value("operation", ""),
                                  parsed.value("apiVersion", ""), parsed.value("subresource", "")};
    }
    return conflict_status(r.conflicts, idents);
  }

  json obj = std::move(r.obj);
  // On a create the zero object's nulls (nil pointers in Go) do not survive typed conversion.
  if (creating) strip_config_nulls(ctx, obj, zero, "", false);
  if (manager == "kubectl") update_last_applied(obj, applied);
  encode_managed(obj, r.managed);

  // The patch handler's checks of the result against the URL.
  if (!options.url_name.empty()) {
    json& md = obj["metadata"];
    if (!md.is_object()) md = json::object();
    const std::string ns = meta_string(obj, "namespace");
    if (ns != options.url_namespace) {
      if (ns.empty()) md["namespace"] = options.url_namespace;
      else if (options.url_namespace.empty()) md.erase("namespace");
      else
        return Status(Reason::BadRequest,
                      "the namespace of the provided object does not match the namespace sent on the request");
    }
    const std::string name = meta_string(obj, "name");
    if (name != options.url_name)
      return Status(Reason::BadRequest, "the name of the object (" + name + ") does not match the name on the URL (" +
                                            options.url_name + ")");
  }
  return obj;
}

}  // namespace berth::api
