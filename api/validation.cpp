#include "api/validation.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

namespace berth::api {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Go-compatible rendering

namespace {

// Decodes one UTF-8 sequence at s[i] the way Go's utf8.DecodeRuneInString does: returns the rune
// and its width, or -1 with width 1 for an invalid byte (overlong forms, surrogates, > U+10FFFF).
int32_t decode_rune(std::string_view s, size_t i, size_t& width) {
  auto b0 = static_cast<unsigned char>(s[i]);
  width = 1;
  if (b0 < 0x80) return b0;
  auto cont = [&](size_t k) -> int {
    if (i + k >= s.size()) return -1;
    auto b = static_cast<unsigned char>(s[i + k]);
    return (b & 0xC0) == 0x80 ? (b & 0x3F) : -1;
  };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    int c1 = cont(1);
    if (c1 < 0) return -1;
    width = 2;
    return ((b0 & 0x1F) << 6) | c1;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    int c1 = cont(1), c2 = cont(2);
    if (c1 < 0 || c2 < 0) return -1;
    int32_t r = ((b0 & 0x0F) << 12) | (c1 << 6) | c2;
    if (r < 0x800 || (r >= 0xD800 && r <= 0xDFFF)) return -1;
    width = 3;
    return r;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    int c1 = cont(1), c2 = cont(2), c3 = cont(3);
    if (c1 < 0 || c2 < 0 || c3 < 0) return -1;
    int32_t r = ((b0 & 0x07) << 18) | (c1 << 12) | (c2 << 6) | c3;
    if (r < 0x10000 || r > 0x10FFFF) return -1;
    width = 4;
    return r;
  }
  return -1;
}

// An approximation of unicode.IsPrint for non-ASCII runes: everything is printable except the
// control, format, separator and private-use ranges Go rejects (unassigned code points are not known).
bool go_is_print(int32_t r) {
  if (r < 0x20 || r == 0x7F) return false;
  if (r < 0x7F) return true;
  if (r >= 0x80 && r <= 0xA0) return false;  // C1 controls and NBSP
  if (r == 0xAD) return false;
  if (r >= 0x600 && r <= 0x605) return false;
  if (r == 0x61C || r == 0x6DD || r == 0x70F || r == 0x1680 || r == 0x180E) return false;
  if (r >= 0x2000 && r <= 0x200F) return false;
  if (r >= 0x2028 && r <= 0x202F) return false;
  if (r >= 0x205F && r <= 0x206F) return false;
  if (r == 0x3000 || r == 0xFEFF) return false;
  if (r >= 0xD800 && r <= 0xF8FF) return false;  // surrogates, private use
  if (r >= 0xFFF9 && r <= 0xFFFB) return false;
  if (r == 0xFFFE || r == 0xFFFF) return false;
  if (r >= 0xE0000 && r <= 0xE007F) return false;
  if (r >= 0xF0000) return false;
  return true;
}

void append_hex(std::string& out, uint32_t v, int digits) {
  static const char* kHex = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) out += kHex[(v >> (4 * i)) & 0xF];
}

// Shortest decimal digits of f that round-trip at the given width; returns digits (no dot) and the
// decimal exponent of the first digit (f = 0.d1d2... * 10^(dp)), i.e. "dp" as strconv names it.
void shortest_digits(double f, int bits, std::string& digits, int& dp) {
  char buf[64];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec - 1, f);
    bool same = bits == 32 ? static_cast<float>(std::strtod(buf, nullptr)) == static_cast<float>(f)
                           : std::strtod(buf, nullptr) == f;
    if (same || prec == 17) break;
  }
  // buf is d.ddddde[+-]XX
  std::string s(buf);
  if (!s.empty() && s[0] == '-') s.erase(0, 1);
  auto e = s.find('e');
  std::string mant = s.substr(0, e);
  int exp10 = std::atoi(s.c_str() + e + 1);
  digits.clear();
  for (char c : mant)
    if (c != '.') digits += c;
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  dp = exp10 + 1;
}

}  // namespace

std::string go_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (size_t i = 0; i < s.size();) {
    size_t w = 1;
    int32_t r = decode_rune(s, i, w);
    if (r < 0) {
      out += "\\x";
      append_hex(out, static_cast<unsigned char>(s[i]), 2);
      i += 1;
      continue;
    }
    if (r == '"' || r == '\\') {
      out += '\\';
      out += static_cast<char>(r);
    } else if (go_is_print(r)) {
      out.append(s.substr(i, w));
    } else {
      switch (r) {
        case '\a': out += "\\a"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\v': out += "\\v"; break;
        default:
          if (r < ' ' || r == 0x7F) {
            out += "\\x";
            append_hex(out, static_cast<uint32_t>(r), 2);
          } else if (r < 0x10000) {
            out += "\\u";
            append_hex(out, static_cast<uint32_t>(r), 4);
          } else {
            out += "\\U";
            append_hex(out, static_cast<uint32_t>(r), 8);
          }
      }
    }
    i += w;
  }
  out += '"';
  return out;
}

std::string go_format_float(double f, int bits) {
  if (std::isnan(f)) return "NaN";
  if (std::isinf(f)) return f > 0 ? "+Inf" : "-Inf";
  std::string sign = std::signbit(f) ? "-" : "";
  if (f == 0) return sign + "0";
  std::string d;
  int dp = 0;
  shortest_digits(f, bits, d, dp);
  int exp = dp - 1;
  std::string out = sign;
  if (exp < -4 || exp >= 6) {  // %e with the shortest mantissa
    out += d[0];
    if (d.size() > 1) {
      out += '.';
      out += d.substr(1);
    }
    out += 'e';
    out += exp < 0 ? '-' : '+';
    int a = exp < 0 ? -exp : exp;
    if (a < 10) out += '0';
    out += std::to_string(a);
    return out;
  }
  if (dp <= 0) {  // 0.000ddd
    out += "0.";
    out.append(static_cast<size_t>(-dp), '0');
    out += d;
  } else if (static_cast<size_t>(dp) >= d.size()) {
    out += d;
    out.append(static_cast<size_t>(dp) - d.size(), '0');
  } else {
    out += d.substr(0, static_cast<size_t>(dp));
    out += '.';
    out += d.substr(static_cast<size_t>(dp));
  }
  return out;
}

namespace {

// %#v of an interface{} holding decoded JSON.
std::string go_sharp_v(const json& v, bool in_interface) {
  switch (v.type()) {
    case json::value_t::null: return in_interface ? "interface {}(nil)" : "<nil>";
    case json::value_t::string: return go_quote(v.get_ref<const std::string&>());
    case json::value_t::boolean: return v.get<bool>() ? "true" : "false";
    case json::value_t::number_integer: return std::to_string(v.get<int64_t>());
    case json::value_t::number_unsigned: return std::to_string(v.get<uint64_t>());
    case json::value_t::number_float: return go_format_float(v.get<double>());
    case json::value_t::array: {
      std::string out = "[]interface {}{";
      bool first = true;
      for (const auto& e : v) {
        if (!first) out += ", ";
        first = false;
        out += go_sharp_v(e, true);
      }
      return out + "}";
    }
    case json::value_t::object: {
      std::string out = "map[string]interface {}{";
      bool first = true;
      for (const auto& [k, e] : v.items()) {
        if (!first) out += ", ";
        first = false;
        out += go_quote(k) + ":" + go_sharp_v(e, true);
      }
      return out + "}";
    }
    default: return "<unknown>";
  }
}

}  // namespace

std::string go_value(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::string: return go_quote(v.get_ref<const std::string&>());
    case json::value_t::boolean: return v.get<bool>() ? "true" : "false";
    case json::value_t::number_integer: return std::to_string(v.get<int64_t>());
    case json::value_t::number_unsigned: return std::to_string(v.get<uint64_t>());
    case json::value_t::number_float: return go_format_float(v.get<double>());
    default: return go_sharp_v(v, false);
  }
}

std::string go_string_slice(const std::vector<std::string>& v, bool nil_if_empty) {
  if (v.empty() && nil_if_empty) return "[]string(nil)";
  std::string out = "[]string{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ", ";
    out += go_quote(v[i]);
  }
  return out + "}";
}

// ---------------------------------------------------------------------------------------------
// Name rules

namespace {

constexpr const char* kQualifiedNameFmt = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
constexpr const char* kQualifiedNameErrMsg =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
    "character";
constexpr const char* kLabelValueFmt = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
constexpr const char* kLabelValueErrMsg =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character";
constexpr const char* kDNS1123LabelFmt = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
constexpr const char* kDNS1123LabelErrMsg =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character";
constexpr const char* kDNS1123SubdomainFmt = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
constexpr const char* kDNS1123SubdomainErrMsg =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character";
constexpr const char* kDNS1035LabelFmt = "[a-z]([-a-z0-9]*[a-z0-9])?";
constexpr const char* kDNS1035LabelErrMsg =
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character";

std::string max_len_error(int n) { return "must be no more than " + std::to_string(n) + " characters"; }
std::string empty_error() { return "must be non-empty"; }

std::string regex_error(std::string msg, const char* fmt, std::initializer_list<const char*> examples) {
  if (examples.size() == 0) return msg + " (regex used for validation is '" + fmt + "')";
  msg += " (e.g. ";
  bool first = true;
  for (const char* e : examples) {
    if (!first) msg += " or ";
    first = false;
    msg += "'";
    msg += e;
    msg += "', ";
  }
  msg += "regex used for validation is '";
  msg += fmt;
  msg += "')";
  return msg;
}

bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]
bool match_qualified_name(std::string_view s) {
  if (s.empty() || !is_alnum(s.front()) || !is_alnum(s.back())) return false;
  for (char c : s)
    if (!is_alnum(c) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

// [a-z0-9]([-a-z0-9]*[a-z0-9])?
bool match_dns1123_label(std::string_view s) {
  if (s.empty() || !is_lower_alnum(s.front()) || !is_lower_alnum(s.back())) return false;
  for (char c : s)
    if (!is_lower_alnum(c) && c != '-') return false;
  return true;
}

bool match_dns1123_subdomain(std::string_view s) {
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    std::string_view part = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (!match_dns1123_label(part)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// [a-z]([-a-z0-9]*[a-z0-9])?
bool match_dns1035_label(std::string_view s) {
  return match_dns1123_label(s) && s.front() >= 'a' && s.front() <= 'z';
}

}  // namespace

std::vector<std::string> is_dns1123_subdomain(std::string_view value) {
  std::vector<std::string> errs;
  if (value.size() > 253) errs.push_back(max_len_error(253));
  if (!match_dns1123_subdomain(value))
    errs.push_back(regex_error(kDNS1123SubdomainErrMsg, kDNS1123SubdomainFmt, {"example.com"}));
  return errs;
}

std::vector<std::string> is_dns1123_label(std::string_view value) {
  std::vector<std::string> errs;
  if (value.size() > 63) errs.push_back(max_len_error(63));
  if (!match_dns1123_label(value)) {
    if (match_dns1123_subdomain(value))
      errs.push_back("must not contain dots");
    else
      errs.push_back(regex_error(kDNS1123LabelErrMsg, kDNS1123LabelFmt, {"my-name", "123-abc"}));
  }
  return errs;
}

std::vector<std::string> is_dns1035_label(std::string_view value) {
  std::vector<std::string> errs;
  if (value.size() > 63) errs.push_back(max_len_error(63));
  if (!match_dns1035_label(value))
    errs.push_back(regex_error(kDNS1035LabelErrMsg, kDNS1035LabelFmt, {"my-name", "abc-123"}));
  return errs;
}

std::vector<std::string> is_qualified_name(std::string_view value) {
  std::vector<std::string> errs;
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t slash = value.find('/', start);
    if (slash == std::string_view::npos) {
      parts.push_back(value.substr(start));
      break;
    }
    parts.push_back(value.substr(start, slash - start));
    start = slash + 1;
  }
  std::string_view name;
  if (parts.size() == 1) {
    name = parts[0];
  } else if (parts.size() == 2) {
    std::string_view prefix = parts[0];
    name = parts[1];
    if (prefix.empty()) {
      errs.push_back("prefix part " + empty_error());
    } else {
      for (auto& m : is_dns1123_subdomain(prefix)) errs.push_back("prefix part " + m);
    }
  } else {
    errs.push_back("a qualified name " +
                   regex_error(kQualifiedNameErrMsg, kQualifiedNameFmt, {"MyName", "my.name", "123-abc"}) +
                   " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')");
    return errs;
  }
  if (name.empty())
    errs.push_back("name part " + empty_error());
  else if (name.size() > 63)
    errs.push_back("name part " + max_len_error(63));
  if (!match_qualified_name(name))
    errs.push_back("name part " +
                   regex_error(kQualifiedNameErrMsg, kQualifiedNameFmt, {"MyName", "my.name", "123-abc"}));
  return errs;
}

std::vector<std::string> is_valid_label_value(std::string_view value) {
  std::vector<std::string> errs;
  if (value.size() > 63) errs.push_back(max_len_error(63));
  if (!value.empty() && !match_qualified_name(value))
    errs.push_back(regex_error(kLabelValueErrMsg, kLabelValueFmt, {"MyValue", "my_value", "12345"}));
  return errs;
}

std::vector<std::string> is_valid_path_segment_name(std::string_view value) {
  if (value == ".") return {"may not be '.'"};
  if (value == "..") return {"may not be '..'"};
  return is_valid_path_segment_prefix(value);
}

std::vector<std::string> is_valid_path_segment_prefix(std::string_view value) {
  std::vector<std::string> errs;
  if (value.find('/') != std::string_view::npos) errs.push_back("may not contain '/'");
  if (value.find('%') != std::string_view::npos) errs.push_back("may not contain '%'");
  return errs;
}

std::vector<std::string> validate_name(std::string_view name, NameRule rule, bool prefix) {
  std::string masked;
  if (prefix && rule != NameRule::PathSegment && name.size() > 1 && name.back() == '-') {
    // maskTrailingDash: upstream drops the last two characters and appends "a".
    masked = std::string(name.substr(0, name.size() - 2)) + "a";
    name = masked;
  }
  switch (rule) {
    case NameRule::DNS1123Subdomain: return is_dns1123_subdomain(name);
    case NameRule::DNS1123Label: return is_dns1123_label(name);
    case NameRule::DNS1035Label: return is_dns1035_label(name);
    case NameRule::PathSegment:
      return prefix ? is_valid_path_segment_prefix(name) : is_valid_path_segment_name(name);
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Field errors

namespace {

Cause make_cause(const char* type, std::string field, std::string body) {
  return Cause{type, std::move(body), std::move(field)};
}

std::string with_detail(std::string s, std::string_view detail) {
  if (!detail.empty()) {
    s += ": ";
    s += detail;
  }
  return s;
}

}  // namespace

Cause field_required(std::string field, std::string_view detail) {
  return make_cause("FieldValueRequired", std::move(field), with_detail("Required value", detail));
}

Cause field_invalid(std::string field, const json& value, std::string_view detail) {
  return make_cause("FieldValueInvalid", std::move(field), with_detail("Invalid value: " + go_value(value), detail));
}

Cause field_invalid_rendered(std::string field, std::string_view rendered_value, std::string_view detail) {
  return make_cause("FieldValueInvalid", std::move(field),
                    with_detail("Invalid value: " + std::string(rendered_value), detail));
}

Cause field_forbidden(std::string field, std::string_view detail) {
  return make_cause("FieldValueForbidden", std::move(field), with_detail("Forbidden", detail));
}

Cause field_too_long(std::string field, int64_t max_length) {
  std::string msg = max_length >= 0 ? "may not be more than " + std::to_string(max_length) + " bytes"
                                    : std::string("value is too long");
  return make_cause("FieldValueTooLong", std::move(field), with_detail("Too long", msg));
}

Cause field_not_supported(std::string field, const json& value, const std::vector<std::string>& valid_values) {
  std::string detail;
  if (!valid_values.empty()) {
    detail = "supported values: ";
    for (size_t i = 0; i < valid_values.size(); ++i) {
      if (i) detail += ", ";
      detail += go_quote(valid_values[i]);
    }
  }
  return make_cause("FieldValueNotSupported", std::move(field),
                    with_detail("Unsupported value: " + go_value(value), detail));
}

Cause field_duplicate(std::string field, const json& value) {
  return make_cause("FieldValueDuplicate", std::move(field), "Duplicate value: " + go_value(value));
}

Cause field_type_invalid(std::string field, const json& value, std::string_view detail) {
  return make_cause("FieldValueTypeInvalid", std::move(field),
                    with_detail("Invalid value: " + go_value(value), detail));
}

std::string cause_string(const Cause& c) { return c.field + ": " + c.message; }

std::string aggregate_message(const std::vector<Cause>& causes) {
  std::vector<std::string> msgs;
  std::set<std::string> seen;
  for (const auto& c : causes) {
    std::string m = cause_string(c);
    if (seen.insert(m).second) msgs.push_back(std::move(m));
  }
  if (msgs.empty()) return "";
  if (msgs.size() == 1) return msgs[0];
  std::string out = "[";
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (i) out += ", ";
    out += msgs[i];
  }
  return out + "]";
}

std::string invalid_message(std::string_view group, std::string_view kind, std::string_view name,
                            const std::vector<Cause>& causes) {
  std::string gk(kind);
  if (!group.empty()) {
    gk += ".";
    gk += group;
  }
  std::string msg = gk + " " + go_quote(name) + " is invalid";
  std::string agg = aggregate_message(causes);
  if (!agg.empty()) msg += ": " + agg;
  return msg;
}

Status invalid_status(std::string_view group, std::string_view kind, std::string_view name,
                      std::vector<Cause> causes) {
  Status st(Reason::Invalid, invalid_message(group, kind, name, causes));
  for (auto& c : causes) st.with_cause(std::move(c));
  return st;
}

// ---------------------------------------------------------------------------------------------
// ObjectMeta

std::string validate_annotations_size(const json& annotations) {
  if (!annotations.is_object()) return "";
  int64_t total = 0;
  for (const auto& [k, v] : annotations.items()) {
    total += static_cast<int64_t>(k.size());
    if (v.is_string()) total += static_cast<int64_t>(v.get_ref<const std::string&>().size());
  }
  if (total > kTotalAnnotationSizeLimit)
    return "annotations size " + std::to_string(total) + " is larger than limit " +
           std::to_string(kTotalAnnotationSizeLimit);
  return "";
}

namespace {

bool check_string_map(const json& m, const std::string& path, std::vector<Cause>& out) {
  if (m.is_null()) return false;
  if (!m.is_object()) {
    out.push_back(field_type_invalid(path, m, "must be an object of strings"));
    return false;
  }
  return true;
}

}  // namespace

void validate_labels(const json& labels, const std::string& path, std::vector<Cause>& out) {
  if (!check_string_map(labels, path, out)) return;
  for (const auto& [k, v] : labels.items()) {
    for (auto& msg : is_qualified_name(k)) out.push_back(field_invalid(path, k, msg));
    if (!v.is_string()) {
      out.push_back(field_type_invalid(path, v, "must be a string"));
      continue;
    }
    for (auto& msg : is_valid_label_value(v.get_ref<const std::string&>())) out.push_back(field_invalid(path, v, msg));
  }
}

void validate_annotations(const json& annotations, const std::string& path, std::vector<Cause>& out) {
  if (!check_string_map(annotations, path, out)) return;
  for (const auto& [k, v] : annotations.items()) {
    std::string lower = k;
    for (auto& c : lower)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    for (auto& msg : is_qualified_name(lower)) out.push_back(field_invalid(path, k, msg));
    if (!v.is_string()) out.push_back(field_type_invalid(path, v, "must be a string"));
  }
  if (!validate_annotations_size(annotations).empty()) out.push_back(field_too_long(path, kTotalAnnotationSizeLimit));
}

namespace {

std::string str_field(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

// %#v of a v1.OwnerReference, close to what Go prints (pointers shown by value rather than address).
std::string go_owner_reference(const json& ref) {
  auto ptr_bool = [&](const char* key) -> std::string {
    auto it = ref.find(key);
    if (it == ref.end() || !it->is_boolean()) return "(*bool)(nil)";
    return it->get<bool>() ? "&true" : "&false";
  };
  return "v1.OwnerReference{APIVersion:" + go_quote(str_field(ref, "apiVersion")) +
         ", Kind:" + go_quote(str_field(ref, "kind")) + ", Name:" + go_quote(str_field(ref, "name")) +
         ", UID:" + go_quote(str_field(ref, "uid")) + ", Controller:" + ptr_bool("controller") +
         ", BlockOwnerDeletion:" + ptr_bool("blockOwnerDeletion") + "}";
}

}  // namespace

void validate_owner_references(const json& refs, const std::string& path, std::vector<Cause>& out) {
  if (refs.is_null()) return;
  if (!refs.is_array()) {
    out.push_back(field_type_invalid(path, refs, "must be a list of owner references"));
    return;
  }
  std::string first_controller;
  for (const auto& ref : refs) {
    if (!ref.is_object()) {
      out.push_back(field_type_invalid(path, ref, "must be an owner reference object"));
      continue;
    }
    std::string api_version = str_field(ref, "apiVersion");
    std::string kind = str_field(ref, "kind");
    // schema.FromAPIVersionAndKind: an unparsable apiVersion (more than one '/') yields an empty version.
    std::string group, version;
    size_t slashes = static_cast<size_t>(std::count(api_version.begin(), api_version.end(), '/'));
    if (slashes == 0) {
      version = api_version;
    } else if (slashes == 1) {
      auto pos = api_version.find('/');
      group = api_version.substr(0, pos);
      version = api_version.substr(pos + 1);
    }
    if (version.empty())
      out.push_back(field_invalid(path + ".apiVersion", api_version, "version must not be empty"));
    if (kind.empty()) out.push_back(field_invalid(path + ".kind", kind, "kind must not be empty"));
    std::string name = str_field(ref, "name");
    if (name.empty()) out.push_back(field_invalid(path + ".name", name, "name must not be empty"));
    std::string uid = str_field(ref, "uid");
    if (uid.empty()) out.push_back(field_invalid(path + ".uid", uid, "uid must not be empty"));
    if (group.empty() && version == "v1" && kind == "Event")
      out.push_back(field_invalid_rendered(path, go_owner_reference(ref),
                                           group + "/" + version + ", Kind=" + kind + " is disallowed from being an owner"));
    auto ctl = ref.find("controller");
    if (ctl != ref.end() && ctl->is_boolean() && ctl->get<bool>()) {
      std::string cur = kind + "/" + name;
      if (!first_controller.empty()) {
        std::string rendered = "[]v1.OwnerReference{";
        bool first = true;
        for (const auto& r : refs) {
          if (!first) rendered += ", ";
          first = false;
          rendered += r.is_object() ? go_owner_reference(r) : go_value(r);
        }
        rendered += "}";
        out.push_back(field_invalid_rendered(
            path, rendered,
            "Only one reference can have Controller set to true. Found \"true\" in references for " + first_controller +
                " and " + cur));
      } else {
        first_controller = cur;
      }
    }
  }
}

void validate_finalizers(const json& finalizers, const std::string& path, std::vector<Cause>& out) {
  if (finalizers.is_null()) return;
  if (!finalizers.is_array()) {
    out.push_back(field_type_invalid(path, finalizers, "must be a list of strings"));
    return;
  }
  bool orphan = false, foreground = false;
  std::vector<std::string> all;
  for (const auto& f : finalizers) {
    if (!f.is_string()) {
      out.push_back(field_type_invalid(path, f, "must be a string"));
      continue;
    }
    const auto& s = f.get_ref<const std::string&>();
    all.push_back(s);
    for (auto& msg : is_qualified_name(s)) out.push_back(field_invalid(path, s, msg));
    if (s == "orphan") orphan = true;
    if (s == "foregroundDeletion") foreground = true;
  }
  if (orphan && foreground)
    out.push_back(field_invalid_rendered(path, go_string_slice(all),
                                         "finalizer orphan and foregroundDeletion cannot be both set"));
}

void validate_object_meta(const json& meta, bool namespaced, NameRule rule, std::vector<Cause>& out) {
  static const json kNull;
  auto get = [&](const char* key) -> const json& {
    if (!meta.is_object()) return kNull;
    auto it = meta.find(key);
    return it == meta.end() ? kNull : *it;
  };
  auto get_string = [&](const char* key, const std::string& path) -> std::string {
    const json& v = get(key);
    if (v.is_null()) return "";
    if (!v.is_string()) {
      out.push_back(field_type_invalid(path, v, "must be a string"));
      return "";
    }
    return v.get<std::string>();
  };

  std::string generate_name = get_string("generateName", "metadata.generateName");
  if (!generate_name.empty())
    for (auto& msg : validate_name(generate_name, rule, true))
      out.push_back(field_invalid("metadata.generateName", generate_name, msg));

  std::string name = get_string("name", "metadata.name");
  if (name.empty()) {
    out.push_back(field_required("metadata.name", "name or generateName is required"));
  } else {
    for (auto& msg : validate_name(name, rule, false)) out.push_back(field_invalid("metadata.name", name, msg));
  }

  std::string ns = get_string("namespace", "metadata.namespace");
  if (namespaced) {
    if (ns.empty()) {
      out.push_back(field_required("metadata.namespace"));
    } else {
      for (auto& msg : validate_name(ns, NameRule::DNS1123Label, false))
        out.push_back(field_invalid("metadata.namespace", ns, msg));
    }
  } else if (!ns.empty()) {
    out.push_back(field_forbidden("metadata.namespace", "not allowed on this type"));
  }

  const json& generation = get("generation");
  if (generation.is_number_integer() && !generation.is_number_unsigned() && generation.get<int64_t>() < 0)
    out.push_back(field_invalid("metadata.generation", generation, "must be greater than or equal to 0"));

  validate_labels(get("labels"), "metadata.labels", out);
  validate_annotations(get("annotations"), "metadata.annotations", out);
  validate_owner_references(get("ownerReferences"), "metadata.ownerReferences", out);
  validate_finalizers(get("finalizers"), "metadata.finalizers", out);
}

}  // namespace berth::api
