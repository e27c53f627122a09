#include "api/protobuf.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace berth::api {

using nlohmann::json;

namespace {

constexpr std::string_view kMagic("k8s\0", 4);
constexpr int kMaxDepth = 64;

enum Wire { Varint = 0, Fixed64 = 1, Bytes = 2, StartGroup = 3, EndGroup = 4, Fixed32 = 5 };

// A failed decode; the message is what Go's generated unmarshalers would say.
struct DecodeError {
  std::string message;
};

class Reader {
 public:
  explicit Reader(std::string_view data)
      : p_(reinterpret_cast<const uint8_t*>(data.data())), end_(p_ + data.size()) {}

  bool done() const { return p_ >= end_; }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (p_ >= end_) throw DecodeError{"unexpected EOF"};
      uint8_t b = *p_++;
      if (shift == 63 && b > 1) throw DecodeError{"proto: integer overflow"};
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw DecodeError{"proto: integer overflow"};
  }

  uint64_t fixed64() {
    if (end_ - p_ < 8) throw DecodeError{"unexpected EOF"};
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p_[i]) << (8 * i);
    p_ += 8;
    return v;
  }

  uint32_t fixed32() {
    if (end_ - p_ < 4) throw DecodeError{"unexpected EOF"};
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p_[i]) << (8 * i);
    p_ += 4;
    return v;
  }

  std::string_view bytes() {
    uint64_t n = varint();
    if (static_cast<int64_t>(n) < 0) throw DecodeError{"proto: negative length found during unmarshaling"};
    if (n > static_cast<uint64_t>(end_ - p_)) throw DecodeError{"unexpected EOF"};
    std::string_view out(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return out;
  }

  // Reads a tag; false at the end of the message.
  bool tag(int& field, int& wire, std::string_view message) {
    if (done()) return false;
    uint64_t t = varint();
    field = static_cast<int>(t >> 3);
    wire = static_cast<int>(t & 7);
    if (wire == EndGroup) throw DecodeError{"proto: " + std::string(message) + ": wiretype end group for non-group"};
    if (t >> 3 == 0 || (t >> 3) > 0x1fffffff)
      throw DecodeError{"proto: " + std::string(message) + ": illegal tag " + std::to_string(t >> 3) +
                        " (wire type " + std::to_string(wire) + ")"};
    return true;
  }

  void skip(int wire) {
    switch (wire) {
      case Varint:
        varint();
        return;
      case Fixed64:
        fixed64();
        return;
      case Bytes:
        bytes();
        return;
      case Fixed32:
        fixed32();
        return;
      case StartGroup: {
        // Groups are never produced by Kubernetes; skip them properly anyway.
        int depth = 1;
        while (depth > 0) {
          if (done()) throw DecodeError{"unexpected EOF"};
          uint64_t t = varint();
          int w = static_cast<int>(t & 7);
          if (w == StartGroup)
            ++depth;
          else if (w == EndGroup)
            --depth;
          else
            skip(w);
        }
        return;
      }
      default:
        throw DecodeError{"proto: illegal wireType " + std::to_string(wire)};
    }
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

// Go's JSON encoder writes invalid UTF-8 as U+FFFD, one per bad byte; nlohmann would throw on it.
std::string valid_utf8(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  size_t n = in.size(), i = 0;
  while (i < n) {
    unsigned char c = s[i];
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    }
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      if ((s[i + k] & 0xc0) != 0x80)
        ok = false;
      else
        cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if (ok) {
      static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMin[len] && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
    }
    if (ok) {
      out.append(in.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::string base64(std::string_view in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (s[i] << 16) | (s[i + 1] << 8) | s[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = s[i] << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (s[i] << 16) | (s[i + 1] << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// Days since 1970-01-01 to civil date (Howard Hinnant's algorithm), valid for the whole int64 range we accept.
void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += (m <= 2);
}

// RFC 3339 in UTC as metav1.Time (seconds) or metav1.MicroTime (microseconds) marshal it.
std::string rfc3339(int64_t seconds, int32_t nanos, bool micro) {
  int64_t days = seconds / 86400;
  int64_t rem = seconds % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  int64_t y;
  unsigned m, d;
  civil_from_days(days, y, m, d);
  if (y < 0 || y > 9999) throw DecodeError{"Time.MarshalJSON: year outside of range [0,9999]"};
  char buf[64];
  if (micro)
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%06dZ", static_cast<int>(y), m, d,
                  static_cast<int>(rem / 3600), static_cast<int>(rem / 60 % 60), static_cast<int>(rem % 60),
                  static_cast<int>(nanos / 1000));
  else
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(y), m, d,
                  static_cast<int>(rem / 3600), static_cast<int>(rem / 60 % 60), static_cast<int>(rem % 60));
  return buf;
}

// Go's time.Duration.String().
std::string go_duration(int64_t d) {
  if (d == 0) return "0s";
  bool neg = d < 0;
  uint64_t u = neg ? static_cast<uint64_t>(-(d + 1)) + 1 : static_cast<uint64_t>(d);
  auto frac = [](uint64_t v, int prec, std::string& digits) {
    // Writes v's last prec digits as a fraction without trailing zeros; returns v / 10^prec.
    bool print = false;
    std::string f;
    for (int i = 0; i < prec; ++i) {
      unsigned digit = v % 10;
      print = print || digit != 0;
      if (print) f.insert(f.begin(), static_cast<char>('0' + digit));
      v /= 10;
    }
    if (print) digits = "." + f;
    return v;
  };
  std::string out;
  if (u < 1000000000ULL) {
    // Under a second: ns, µs or ms.
    std::string unit;
    int prec = 0;
    if (u < 1000) {
      return (neg ? "-" : "") + std::to_string(u) + "ns";
    } else if (u < 1000000) {
      prec = 3;
      unit = "\xC2\xB5s";
    } else {
      prec = 6;
      unit = "ms";
    }
    std::string f;
    uint64_t whole = frac(u, prec, f);
    return (neg ? "-" : "") + std::to_string(whole) + f + unit;
  }
  std::string f;
  uint64_t secs = frac(u, 9, f);
  out = std::to_string(secs % 60) + f + "s";
  uint64_t mins = secs / 60;
  if (mins > 0) {
    out = std::to_string(mins % 60) + "m" + out;
    uint64_t hours = mins / 60;
    if (hours > 0) out = std::to_string(hours) + "h" + out;
  }
  return (neg ? "-" : "") + out;
}

int expected_wire(const TypeShape& s) {
  switch (s.kind) {
    case TypeShape::Kind::Named:
    case TypeShape::Kind::Map:
      return Bytes;
    case TypeShape::Kind::List:
      return expected_wire(*s.element);
    case TypeShape::Kind::Primitive:
      if (s.primitive == "string" || s.primitive == "bytes") return Bytes;
      if (s.primitive == "double") return Fixed64;
      if (s.primitive == "float") return Fixed32;
      return Varint;
  }
  return Bytes;
}

// The raw occurrences of one field within a message.
struct Slot {
  bool present = false;
  uint64_t number = 0;               // last varint / fixed value of a singular scalar
  std::string_view data;             // last bytes value of a singular string/bytes
  std::string message;               // concatenated occurrences of a singular message (protobuf merges them)
  std::vector<std::string_view> items;  // repeated elements and map entries (length-delimited)
  std::vector<uint64_t> numbers;        // repeated scalar elements
};

class Decoder {
 public:
  explicit Decoder(const Schema& schema) : schema_(schema) {}

  json message(const TypeDef& t, std::string_view bytes) {
    if (++depth_ > kMaxDepth) throw DecodeError{"proto: exceeded maximum nesting depth"};
    json out = t.scalar.empty() ? struct_message(t, bytes) : scalar_message(t, bytes);
    --depth_;
    return out;
  }

 private:
  static std::string short_name(const TypeDef& t) { return t.id.substr(t.id.rfind('.') + 1); }

  json struct_message(const TypeDef& t, std::string_view bytes) {
    std::vector<Slot> slots(t.fields.size());
    Reader r(bytes);
    int field, wire;
    std::string name = short_name(t);
    while (r.tag(field, wire, name)) {
      const FieldDef* f = t.proto_field(field);
      if (!f) {
        r.skip(wire);
        continue;
      }
      Slot& slot = slots[f - t.fields.data()];
      int want = expected_wire(f->shape);
      bool repeated = f->shape.kind == TypeShape::Kind::List || f->shape.kind == TypeShape::Kind::Map;
      if (repeated && f->shape.kind == TypeShape::Kind::List && want != Bytes && wire == Bytes) {
        // packed repeated scalars
        Reader packed(r.bytes());
        while (!packed.done())
          slot.numbers.push_back(want == Varint ? packed.varint() : want == Fixed64 ? packed.fixed64() : packed.fixed32());
        slot.present = true;
        continue;
      }
      if (wire != want)
        throw DecodeError{"proto: wrong wireType = " + std::to_string(wire) + " for field " + f->name};
      slot.present = true;
      switch (wire) {
        case Varint:
        case Fixed64:
        case Fixed32: {
          uint64_t v = wire == Varint ? r.varint() : wire == Fixed64 ? r.fixed64() : r.fixed32();
          if (repeated)
            slot.numbers.push_back(v);
          else
            slot.number = v;
          break;
        }
        case Bytes: {
          std::string_view b = r.bytes();
          if (repeated)
            slot.items.push_back(b);
          else if (f->shape.kind == TypeShape::Kind::Named)
            slot.message.append(b);
          else
            slot.data = b;
          break;
        }
      }
    }

    json out = json::object();
    for (size_t i = 0; i < t.fields.size(); ++i) {
      const FieldDef& f = t.fields[i];
      if (f.proto == 0) continue;  // apiVersion and kind come from the envelope
      Slot& slot = slots[i];
      if (f.name.empty()) {
        json inner = message(*f.shape.named, slot.message);
        for (auto it = inner.begin(); it != inner.end(); ++it) out[it.key()] = std::move(it.value());
        continue;
      }
      json v;
      if (field_value(f, slot, v)) out[f.name] = std::move(v);
    }
    return out;
  }

  // Go's encoding of the decoded field; false when omitempty leaves it out.
  bool field_value(const FieldDef& f, Slot& slot, json& out) {
    const TypeShape& s = f.shape;
    switch (s.kind) {
      case TypeShape::Kind::List: {
        if (!slot.present || (slot.items.empty() && slot.numbers.empty())) {
          if (f.omitempty) return false;
          out = nullptr;
          return true;
        }
        out = json::array();
        if (expected_wire(*s.element) == Bytes) {
          for (std::string_view item : slot.items) out.push_back(element_value(*s.element, item));
        } else {
          for (uint64_t n : slot.numbers) out.push_back(number_value(s.element->primitive, n));
        }
        return true;
      }
      case TypeShape::Kind::Map: {
        if (slot.items.empty()) {
          if (f.omitempty) return false;
          out = nullptr;
          return true;
        }
        out = json::object();
        for (std::string_view entry : slot.items) {
          auto [key, value] = map_entry(*s.element, entry);
          out[key] = std::move(value);
        }
        return true;
      }
      case TypeShape::Kind::Named: {
        if (f.pointer && !slot.present) {
          if (f.omitempty) return false;
          out = nullptr;
          return true;
        }
        // Non-pointer structs are never empty to Go's encoder, whatever omitempty says.
        out = message(*s.named, slot.message);
        return true;
      }
      case TypeShape::Kind::Primitive: {
        if (f.pointer && !slot.present) {
          if (f.omitempty) return false;
          out = nullptr;
          return true;
        }
        const std::string& p = s.primitive;
        if (p == "bytes") {
          if (!slot.present) {
            if (f.omitempty) return false;
            out = nullptr;
            return true;
          }
          if (slot.data.empty() && f.omitempty) return false;
          out = base64(slot.data);
          return true;
        }
        if (p == "string") {
          if (slot.data.empty() && f.omitempty && !f.pointer) return false;
          out = valid_utf8(slot.data);
          return true;
        }
        out = number_value(p, slot.number);
        if (f.omitempty && !f.pointer && slot.number == 0) return false;
        return true;
      }
    }
    return false;
  }

  static json number_value(const std::string& p, uint64_t n) {
    if (p == "bool") return n != 0;
    if (p == "int32") return static_cast<int64_t>(static_cast<int32_t>(static_cast<uint32_t>(n)));
    if (p == "int64") return static_cast<int64_t>(n);
    if (p == "uint32") return static_cast<uint64_t>(static_cast<uint32_t>(n));
    if (p == "uint64") return n;
    if (p == "double") {
      double d;
      std::memcpy(&d, &n, sizeof d);
      return d;
    }
    if (p == "float") {
      float fl;
      uint32_t bits = static_cast<uint32_t>(n);
      std::memcpy(&fl, &bits, sizeof fl);
      return static_cast<double>(fl);
    }
    return static_cast<int64_t>(n);
  }

  // One length-delimited element of a list or map value.
  json element_value(const TypeShape& s, std::string_view bytes) {
    switch (s.kind) {
      case TypeShape::Kind::Named:
        return message(*s.named, bytes);
      case TypeShape::Kind::Primitive:
        if (s.primitive == "bytes") return base64(bytes);
        return valid_utf8(bytes);
      default:
        // Nested lists and maps do not occur in Kubernetes' protobuf messages.
        throw DecodeError{"proto: unsupported nested collection"};
    }
  }

  std::pair<std::string, json> map_entry(const TypeShape& value_shape, std::string_view entry) {
    Reader r(entry);
    int field, wire;
    std::string key;
    std::string_view value;
    bool has_value = false;
    while (r.tag(field, wire, "MapEntry")) {
      if (field == 1 && wire == Bytes) {
        key = valid_utf8(r.bytes());
      } else if (field == 2 && wire == Bytes) {
        value = r.bytes();
        has_value = true;
      } else {
        r.skip(wire);
      }
    }
    if (!has_value && value_shape.kind == TypeShape::Kind::Primitive && value_shape.primitive == "bytes")
      return {key, ""};
    return {key, element_value(value_shape, value)};
  }

  json scalar_message(const TypeDef& t, std::string_view bytes) {
    const std::string& sc = t.scalar;
    Reader r(bytes);
    int field, wire;
    std::string name = short_name(t);
    auto expect = [&](int w) {
      if (wire != w) throw DecodeError{"proto: wrong wireType = " + std::to_string(wire) + " for field " +
                                       std::to_string(field) + " of " + name};
    };
    if (sc == "time" || sc == "microtime") {
      if (bytes.empty()) return nullptr;  // the zero time marshals as null
      int64_t seconds = 0;
      int32_t nanos = 0;
      while (r.tag(field, wire, name)) {
        if (field == 1) {
          expect(Varint);
          seconds = static_cast<int64_t>(r.varint());
        } else if (field == 2) {
          expect(Varint);
          nanos = static_cast<int32_t>(r.varint());
        } else {
          r.skip(wire);
        }
      }
      // metav1.Time drops nanoseconds on decode; MicroTime keeps them to the microsecond.
      if (sc == "time") return rfc3339(seconds, 0, false);
      if (nanos < 0 || nanos > 999999999) throw DecodeError{"proto: MicroTime: nanos out of range"};
      return rfc3339(seconds, nanos, true);
    }
    if (sc == "quantity") {
      std::string s;
      bool set = false;
      while (r.tag(field, wire, name)) {
        if (field == 1) {
          expect(Bytes);
          s = std::string(r.bytes());
          set = true;
        } else {
          r.skip(wire);
        }
      }
      if (!set) return "0";
      if (s.empty()) throw DecodeError{"quantities must match the regular expression "
                                       "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"};
      return valid_utf8(s);
    }
    if (sc == "intstr") {
      int64_t type = 0;
      int32_t int_val = 0;
      std::string str_val;
      while (r.tag(field, wire, name)) {
        if (field == 1) {
          expect(Varint);
          type = static_cast<int64_t>(r.varint());
        } else if (field == 2) {
          expect(Varint);
          int_val = static_cast<int32_t>(r.varint());
        } else if (field == 3) {
          expect(Bytes);
          str_val = std::string(r.bytes());
        } else {
          r.skip(wire);
        }
      }
      if (type == 1) return valid_utf8(str_val);
      if (type != 0) throw DecodeError{"impossible IntOrString.Type"};
      return int_val;
    }
    if (sc == "duration") {
      int64_t d = 0;
      while (r.tag(field, wire, name)) {
        if (field == 1) {
          expect(Varint);
          d = static_cast<int64_t>(r.varint());
        } else {
          r.skip(wire);
        }
      }
      return go_duration(d);
    }
    if (sc == "fieldsv1" || sc == "raw") {
      std::string_view raw;
      bool set = false;
      while (r.tag(field, wire, name)) {
        if (field == 1) {
          expect(Bytes);
          raw = r.bytes();
          set = true;
        } else {
          r.skip(wire);
        }
      }
      if (!set || raw.empty()) return nullptr;
      if (raw.substr(0, kMagic.size()) == kMagic) {
        auto inner = decode_protobuf(raw, nullptr, schema_);
        if (!inner.ok()) throw DecodeError{inner.status().message()};
        return std::move(inner).value();
      }
      json parsed = json::parse(raw.begin(), raw.end(), nullptr, false);
      if (parsed.is_discarded()) throw DecodeError{"invalid JSON in embedded " + name};
      return parsed;
    }
    throw DecodeError{"proto: no decoder for " + name};
  }

  const Schema& schema_;
  int depth_ = 0;
};

Status bad_request(const std::string& message) { return Status(Reason::BadRequest, message); }

}  // namespace

bool is_kubernetes_protobuf(std::string_view body) { return body.substr(0, kMagic.size()) == kMagic; }

Result<json> decode_protobuf_message(const TypeDef& type, std::string_view bytes, const Schema& schema) {
  try {
    Decoder d(schema);
    return d.message(type, bytes);
  } catch (const DecodeError& e) {
    return bad_request(e.message);
  }
}

Result<json> decode_protobuf(std::string_view body, const GroupVersionKind* fallback, const Schema& schema) {
  if (!is_kubernetes_protobuf(body))
    return bad_request("provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]");
  std::string api_version, kind, content_encoding, content_type;
  std::string_view raw;
  try {
    Reader r(body.substr(kMagic.size()));
    int field, wire;
    while (r.tag(field, wire, "Unknown")) {
      if (wire != Bytes) {
        if (field >= 1 && field <= 4)
          throw DecodeError{"proto: wrong wireType = " + std::to_string(wire) + " for field " + std::to_string(field)};
        r.skip(wire);
        continue;
      }
      std::string_view b = r.bytes();
      switch (field) {
        case 1: {
          Reader tm(b);
          int f2, w2;
          while (tm.tag(f2, w2, "TypeMeta")) {
            if (w2 != Bytes) {
              tm.skip(w2);
              continue;
            }
            std::string_view v = tm.bytes();
            if (f2 == 1) api_version = std::string(v);
            if (f2 == 2) kind = std::string(v);
          }
          break;
        }
        case 2:
          raw = b;
          break;
        case 3:
          content_encoding = std::string(b);
          break;
        case 4:
          content_type = std::string(b);
          break;
        default:
          break;
      }
    }
  } catch (const DecodeError& e) {
    return bad_request(e.message);
  }
  if (!content_encoding.empty())
    return bad_request("unsupported protobuf content encoding \"" + content_encoding + "\"");
  if (!content_type.empty() && content_type != kProtobufContentType)
    return bad_request("unsupported protobuf content type \"" + content_type + "\"");

  GroupVersionKind gvk;
  if (kind.empty() && api_version.empty() && fallback) {
    gvk = *fallback;
  } else {
    auto slash = api_version.find('/');
    gvk.group = slash == std::string::npos ? "" : api_version.substr(0, slash);
    gvk.version = slash == std::string::npos ? api_version : api_version.substr(slash + 1);
    gvk.kind = kind;
  }
  if (gvk.kind.empty()) return bad_request("Object 'Kind' is missing in protobuf envelope");
  const KindInfo* k = schema.find_kind(gvk);
  if (!k) return bad_request("no kind \"" + gvk.kind + "\" is registered for version \"" +
                             (gvk.group.empty() ? gvk.version : gvk.group + "/" + gvk.version) + "\"");
  auto decoded = decode_protobuf_message(*k->type, raw, schema);
  if (!decoded.ok()) {
    std::string version = gvk.group.empty() ? gvk.version : gvk.group + "/" + gvk.version;
    return bad_request(gvk.kind + " in version \"" + version + "\" cannot be handled as a " + gvk.kind + ": " +
                       decoded.status().message());
  }
  json out = std::move(decoded).value();
  std::string av = gvk.group.empty() ? gvk.version : gvk.group + "/" + gvk.version;
  if (!av.empty()) out["apiVersion"] = av;
  out["kind"] = gvk.kind;
  return out;
}

}  // namespace berth::api
