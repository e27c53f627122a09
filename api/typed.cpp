#include "api/typed.h"

#include <cstdint>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

#include "api/validation.h"

namespace berth::api {

using nlohmann::json;

namespace {

const char kRfc3339[] = "2006-01-02T15:04:05Z07:00";
const char kRfc3339Micro[] = "2006-01-02T15:04:05.000000Z07:00";

bool digits(const std::string& v, std::size_t at, std::size_t n, int& out) {
  if (at + n > v.size()) return false;
  out = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (v[i] < '0' || v[i] > '9') return false;
    out = out * 10 + (v[i] - '0');
  }
  return true;
}

int days_in(int month, int year) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

// Days since 1970-01-01 of a proleptic Gregorian date, and back (Howard Hinnant's algorithms).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

// Go type names as encoding/json prints them in its errors.
std::string go_type(const TypeShape& shape);

std::string go_named(const TypeDef& t) {
  if (t.scalar == "time") return "v1.Time";
  if (t.scalar == "microtime") return "v1.MicroTime";
  if (t.scalar == "quantity") return "resource.Quantity";
  if (t.scalar == "intstr") return "intstr.IntOrString";
  if (t.scalar == "fieldsv1") return "v1.FieldsV1";
  // "core/v1.Container" -> "v1.Container"; "runtime.RawExtension" stays.
  auto dot = t.id.rfind('.');
  std::string package = t.id.substr(0, dot);
  auto slash = package.rfind('/');
  if (slash != std::string::npos) package = package.substr(slash + 1);
  return package + "." + t.id.substr(dot + 1);
}

std::string go_type(const TypeShape& shape) {
  switch (shape.kind) {
    case TypeShape::Kind::Primitive:
      if (shape.primitive == "double") return "float64";
      if (shape.primitive == "float") return "float32";
      if (shape.primitive == "bytes") return "[]uint8";
      return shape.primitive;
    case TypeShape::Kind::Named:
      return go_named(*shape.named);
    case TypeShape::Kind::List:
      return "[]" + go_type(*shape.element);
    case TypeShape::Kind::Map:
      return "map[string]" + go_type(*shape.element);
  }
  return "";
}

std::string json_word(const json& v) {
  if (v.is_string()) return "string";
  if (v.is_boolean()) return "bool";
  if (v.is_number()) return "number";
  if (v.is_array()) return "array";
  return "object";
}

bool fits_integer(const json& v, const std::string& primitive) {
  if (!v.is_number_integer()) return false;  // floats (1.5, 1.0, 1e3) do not parse as Go integers
  if (v.is_number_unsigned()) {
    auto u = v.get<std::uint64_t>();
    if (primitive == "int32") return u <= static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max());
    if (primitive == "uint32") return u <= std::numeric_limits<std::uint32_t>::max();
    if (primitive == "int64") return u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    return true;
  }
  auto i = v.get<std::int64_t>();
  if (primitive == "int32") return i >= std::numeric_limits<std::int32_t>::min() && i <= std::numeric_limits<std::int32_t>::max();
  if (primitive == "uint32" || primitive == "uint64") return i >= 0 && (primitive == "uint64" || i <= std::numeric_limits<std::uint32_t>::max());
  return true;
}

// Go's reflect kind names, as the unstructured converter prints them.
std::string go_kind(const json& v) {
  if (v.is_string()) return "string";
  if (v.is_boolean()) return "bool";
  if (v.is_number_float()) return "float64";
  if (v.is_number()) return "int64";
  if (v.is_array()) return "slice";
  return "map";
}

std::string primitive_kind(const std::string& p) {
  if (p == "double") return "float64";
  if (p == "float") return "float32";
  return p;
}

// One decode. Json mode is encoding/json's: the first type error is kept and decoding goes on.
// Unstructured mode is the converter strategic merge patches go through: the first mismatch
// ends it, worded its own way. In both, an error from a type's own decoder (a timestamp, an
// int-or-string) ends it at once.
class Decoder {
 public:
  explicit Decoder(TypedMode mode) : mode_(mode) {}
  std::string type_error;
  std::string fatal;

  void walk(const TypeShape& shape, json& v, std::string_view owner, std::string& path) {
    if (!fatal.empty() || v.is_null()) return;  // null leaves any Go value at its zero
    switch (shape.kind) {
      case TypeShape::Kind::Primitive:
        primitive(shape, v, owner, path);
        return;
      case TypeShape::Kind::Named:
        named(*shape.named, shape, v, owner, path);
        return;
      case TypeShape::Kind::List:
        if (!v.is_array()) return mismatch(v, shape, owner, path, "cannot restore slice from " + go_kind(v));
        for (auto& e : v) walk(*shape.element, e, owner, path);
        return;
      case TypeShape::Kind::Map:
        if (!v.is_object()) return mismatch(v, shape, owner, path, "cannot restore map from " + go_kind(v));
        for (auto& [k, e] : v.items()) walk(*shape.element, e, owner, path);
        return;
    }
  }

  void walk_struct(const TypeDef& t, json& v, std::string& path) {
    const std::string_view owner = std::string_view(t.id).substr(t.id.rfind('.') + 1);
    for (auto it = v.begin(); it != v.end() && fatal.empty(); ++it) {
      const FieldDef* f = t.json_field(it.key());
      if (!f) continue;  // unknown fields are strict validation's business
      std::size_t len = path.size();
      if (!path.empty()) path += '.';
      path += it.key();
      walk(f->shape, it.value(), owner, path);
      path.resize(len);
    }
  }

 private:
  // json_word: what encoding/json calls the value ("string", "number 1.5"); converter: the
  // unstructured converter's whole message.
  void mismatch(const json& v, const TypeShape& shape, std::string_view owner, const std::string& path,
                const std::string& converter, const std::string& json_word_override = "") {
    if (mode_ == TypedMode::Unstructured) {
      if (fatal.empty()) fatal = converter;
      return;
    }
    if (type_error.empty())
      type_error = "json: cannot unmarshal " + (json_word_override.empty() ? json_word(v) : json_word_override) +
                   " into Go struct field " + std::string(owner) + "." + path + " of type " + go_type(shape);
  }

  void primitive(const TypeShape& shape, json& v, std::string_view owner, const std::string& path) {
    const std::string& p = shape.primitive;
    // Worded only for a mismatch: most leaves are fine, and this runs for every one.
    auto unrecognized = [&p] { return "unrecognized type: " + primitive_kind(p); };
    if (p == "string" || p == "bytes") {
      if (v.is_string()) return;
      if (p == "bytes") return mismatch(v, shape, owner, path, "cannot restore slice from " + go_kind(v));
      // Integers convert to strings in Go's reflection, so the converter names that case.
      mismatch(v, shape, owner, path, v.is_number_integer() ? "cannot convert int64 to string" : unrecognized());
    } else if (p == "bool") {
      if (!v.is_boolean()) mismatch(v, shape, owner, path, unrecognized());
    } else if (p == "double" || p == "float") {
      if (!v.is_number()) mismatch(v, shape, owner, path, unrecognized());
    } else if (!v.is_number()) {
      mismatch(v, shape, owner, path, unrecognized());
    } else if (mode_ == TypedMode::Unstructured) {
      // The converter takes whole floats and converts integers without a range check.
      if (v.is_number_float() && v.get<double>() != static_cast<double>(static_cast<long long>(v.get<double>())))
        mismatch(v, shape, owner, path, "cannot convert float64 to " + primitive_kind(p));
    } else if (!fits_integer(v, p)) {
      mismatch(v, shape, owner, path, "", "number " + v.dump());
    }
  }

  void named(const TypeDef& t, const TypeShape& shape, json& v, std::string_view owner, std::string& path) {
    if (t.scalar.empty()) {
      if (!v.is_object()) return mismatch(v, shape, owner, path, "cannot restore struct from: " + go_kind(v));
      return walk_struct(t, v, path);
    }
    if (t.scalar == "time" || t.scalar == "microtime") {
      if (!v.is_string()) {
        fatal = "json: cannot unmarshal " + json_word(v) + " into Go value of type string";
        return;
      }
      std::string canonical, error;
      if (!canonical_time(v.get<std::string>(), t.scalar == "microtime", canonical, error)) {
        fatal = error;
        return;
      }
      v = canonical;
    } else if (t.scalar == "intstr") {
      if (v.is_string()) return;
      if (!v.is_number()) {
        fatal = "json: cannot unmarshal " + json_word(v) + " into Go value of type int32";
      } else if (!fits_integer(v, "int32")) {
        fatal = "json: cannot unmarshal number " + v.dump() + " into Go value of type int32";
      }
    }
    // Quantities are parsed and canonicalized by the kinds that hold them; FieldsV1 and raw
    // extensions take any JSON.
  }

  TypedMode mode_;
};

}  // namespace

bool canonical_time(const std::string& value, bool micro, std::string& out, std::string& error) {
  const std::string layout = micro ? kRfc3339Micro : kRfc3339;
  auto cannot = [&](std::size_t at, const std::string& element) {
    error = "parsing time " + go_quote(value) + " as " + go_quote(layout) + ": cannot parse " +
            go_quote(value.substr(std::min(at, value.size()))) + " as " + go_quote(element);
    return false;
  };
  auto out_of_range = [&](const char* what) {
    error = "parsing time " + go_quote(value) + ": " + what + " out of range";
    return false;
  };
  auto literal = [&](std::size_t& at, char c) {
    if (at >= value.size() || value[at] != c) return false;
    ++at;
    return true;
  };
  std::size_t at = 0;
  int year, month, day, hour, minute, second;
  if (!digits(value, at, 4, year)) return cannot(at, "2006");
  at += 4;
  if (!literal(at, '-')) return cannot(at, "-");
  if (!digits(value, at, 2, month)) return cannot(at, "01");
  if (month < 1 || month > 12) return out_of_range("month");
  at += 2;
  if (!literal(at, '-')) return cannot(at, "-");
  if (!digits(value, at, 2, day)) return cannot(at, "02");
  at += 2;
  if (!literal(at, 'T')) return cannot(at, "T");
  // The hour takes one or two digits when parsing.
  if (!digits(value, at, 1, hour)) return cannot(at, "15");
  int second_digit;
  if (digits(value, at + 1, 1, second_digit)) {
    hour = hour * 10 + second_digit;
    ++at;
  }
  ++at;
  if (hour >= 24) return out_of_range("hour");
  if (!literal(at, ':')) return cannot(at, ":");
  if (!digits(value, at, 2, minute)) return cannot(at, "04");
  if (minute >= 60) return out_of_range("minute");
  at += 2;
  if (!literal(at, ':')) return cannot(at, ":");
  if (!digits(value, at, 2, second)) return cannot(at, "05");
  if (second >= 60) return out_of_range("second");
  at += 2;
  long micros = 0;
  auto is_digit = [&](std::size_t i) { return i < value.size() && value[i] >= '0' && value[i] <= '9'; };
  if (micro) {
    // ".000000": exactly six digits after the separator.
    int frac;
    if (at + 7 > value.size() || (value[at] != '.' && value[at] != ',') || !digits(value, at + 1, 6, frac))
      return cannot(at, ".000000");
    micros = frac;
    at += 7;
  } else if (at + 1 < value.size() && (value[at] == '.' || value[at] == ',') && is_digit(at + 1)) {
    // A fraction the layout does not name is accepted and dropped (Time has whole seconds).
    ++at;
    while (is_digit(at)) ++at;
  }
  long offset = 0;
  if (at < value.size() && value[at] == 'Z') {
    ++at;
  } else {
    int oh, om;
    if (at + 6 > value.size() || value[at + 3] != ':' || (value[at] != '+' && value[at] != '-') ||
        !digits(value, at + 1, 2, oh) || !digits(value, at + 4, 2, om))
      return cannot(at, "Z07:00");
    if (oh > 24) return out_of_range("time zone offset hour");
    if (om > 60) return out_of_range("time zone offset minute");
    offset = (oh * 3600L + om * 60L) * (value[at] == '-' ? -1 : 1);
    at += 6;
  }
  if (at != value.size()) {
    error = "parsing time " + go_quote(value) + ": extra text: " + go_quote(value.substr(at));
    return false;
  }
  if (day < 1 || day > days_in(month, year)) {
    error = "parsing time " + go_quote(value) + ": day out of range";
    return false;
  }
  std::int64_t seconds = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
                         hour * 3600 + minute * 60 + second - offset;
  std::int64_t days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400;
  std::int64_t rest = seconds - days * 86400;
  std::int64_t y;
  unsigned m, d;
  civil_from_days(days, y, m, d);
  char buf[64];
  if (micro)
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%06ldZ", static_cast<long long>(y), m, d,
                  static_cast<long long>(rest / 3600), static_cast<long long>(rest / 60 % 60),
                  static_cast<long long>(rest % 60), micros);
  else
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lldZ", static_cast<long long>(y), m, d,
                  static_cast<long long>(rest / 3600), static_cast<long long>(rest / 60 % 60),
                  static_cast<long long>(rest % 60));
  out = buf;
  return true;
}

std::string typed_decode(const GroupVersionKind& gvk, json& obj, TypedMode mode) {
  const KindInfo* kind = Schema::get().find_kind(gvk);
  if (!kind || !kind->type || !obj.is_object()) return "";
  Decoder decoder(mode);
  std::string path;
  decoder.walk_struct(*kind->type, obj, path);
  return decoder.fatal.empty() ? decoder.type_error : decoder.fatal;
}

std::string go_print(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "<nil>";
    case json::value_t::string:
      return v.get<std::string>();
    case json::value_t::object: {
      std::string out = "map[";
      bool first = true;
      for (const auto& [k, e] : v.items()) {  // nlohmann keeps keys sorted, as fmt prints maps
        if (!first) out += ' ';
        first = false;
        out += k + ":" + go_print(e);
      }
      return out + "]";
    }
    case json::value_t::array: {
      std::string out = "[";
      for (std::size_t i = 0; i < v.size(); ++i) out += (i ? " " : "") + go_print(v[i]);
      return out + "]";
    }
    default:
      return v.dump();
  }
}

}  // namespace berth::api
