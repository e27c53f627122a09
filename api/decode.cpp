#include "api/decode.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <istream>
#include <map>
#include <optional>
#include <set>
#include <streambuf>
#include <unordered_map>

#include "api/validation.h"

namespace berth::api {

using nlohmann::json;

namespace {

Status bad_request(std::string msg) { return Status(Reason::BadRequest, std::move(msg)); }

Status too_large(std::size_t limit) {
  return Status(Reason::RequestEntityTooLarge, "Request entity too large: limit is " + std::to_string(limit));
}

// ---------------------------------------------------------------------------------------------
// Go's encoding/json scanner (checkValid), used for its accept/reject decisions and error text.

// strconv.Quote(string(rune(c))) with single quotes, as scanner.quoteChar: the byte is taken as a
// Latin-1 code point.
std::string quote_char(unsigned char c) {
  if (c == '\'') return "'\\''";
  if (c == '"') return "'\"'";
  std::string utf8;
  if (c < 0x80) {
    utf8 += static_cast<char>(c);
  } else {
    utf8 += static_cast<char>(0xC0 | (c >> 6));
    utf8 += static_cast<char>(0x80 | (c & 0x3F));
  }
  std::string q = go_quote(utf8);
  return "'" + q.substr(1, q.size() - 2) + "'";
}

class GoScanner {
 public:
  explicit GoScanner(std::size_t max_depth) : max_depth_(max_depth) {}

  // Returns the SyntaxError text, or nullopt when the document is valid.
  std::optional<std::string> check(std::string_view data) {
    for (char ch : data) {
      if (!step(static_cast<unsigned char>(ch))) return err_;
    }
    // eof()
    if (err_) return err_;
    if (end_top_) return std::nullopt;
    step(' ');
    if (end_top_ && !err_) return std::nullopt;
    if (!err_) err_ = "unexpected end of JSON input";
    return err_;
  }

 private:
  enum class State {
    BeginValue, BeginValueOrEmpty, BeginStringOrEmpty, BeginString, EndValue, EndTop, InString, InStringEsc,
    InStringEscU, InStringEscU1, InStringEscU12, InStringEscU123, Neg, One, Zero, Dot, Dot0, E, ESign, E0,
    T, Tr, Tru, F, Fa, Fal, Fals, N, Nu, Nul, Error,
  };
  enum Parse : uint8_t { ObjectKey, ObjectValue, ArrayValue };

  static bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
  static bool is_hex(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  }

  bool error(unsigned char c, const char* context) {
    state_ = State::Error;
    err_ = "invalid character " + quote_char(c) + " " + context;
    return false;
  }

  bool push(unsigned char c, Parse p) {
    stack_.push_back(p);
    if (stack_.size() <= max_depth_) return true;
    return error(c, "exceeded max depth");
  }

  void pop() {
    stack_.pop_back();
    if (stack_.empty()) {
      state_ = State::EndTop;
      end_top_ = true;
    } else {
      state_ = State::EndValue;
    }
  }

  bool begin_value(unsigned char c) {
    if (is_space(c)) return true;
    switch (c) {
      case '{': state_ = State::BeginStringOrEmpty; return push(c, ObjectKey);
      case '[': state_ = State::BeginValueOrEmpty; return push(c, ArrayValue);
      case '"': state_ = State::InString; return true;
      case '-': state_ = State::Neg; return true;
      case '0': state_ = State::Zero; return true;
      case 't': state_ = State::T; return true;
      case 'f': state_ = State::F; return true;
      case 'n': state_ = State::N; return true;
      default: break;
    }
    if (c >= '1' && c <= '9') {
      state_ = State::One;
      return true;
    }
    return error(c, "looking for beginning of value");
  }

  bool end_value(unsigned char c) {
    if (stack_.empty()) {
      state_ = State::EndTop;
      end_top_ = true;
      return end_top(c);
    }
    if (is_space(c)) {
      state_ = State::EndValue;
      return true;
    }
    switch (stack_.back()) {
      case ObjectKey:
        if (c == ':') {
          stack_.back() = ObjectValue;
          state_ = State::BeginValue;
          return true;
        }
        return error(c, "after object key");
      case ObjectValue:
        if (c == ',') {
          stack_.back() = ObjectKey;
          state_ = State::BeginString;
          return true;
        }
        if (c == '}') {
          pop();
          return true;
        }
        return error(c, "after object key:value pair");
      case ArrayValue:
        if (c == ',') {
          state_ = State::BeginValue;
          return true;
        }
        if (c == ']') {
          pop();
          return true;
        }
        return error(c, "after array element");
    }
    return error(c, "");
  }

  bool end_top(unsigned char c) {
    if (!is_space(c)) error(c, "after top-level value");
    return true;  // scanEnd: the caller stops at the recorded error
  }

  bool literal(unsigned char c, char want, State next, const char* ctx) {
    if (c == static_cast<unsigned char>(want)) {
      state_ = next;
      return true;
    }
    return error(c, ctx);
  }

  bool step(unsigned char c) {
    switch (state_) {
      case State::BeginValue: return begin_value(c);
      case State::BeginValueOrEmpty:
        if (is_space(c)) return true;
        if (c == ']') return end_value(c);
        return begin_value(c);
      case State::BeginStringOrEmpty:
        if (is_space(c)) return true;
        if (c == '}') {
          stack_.back() = ObjectValue;
          return end_value(c);
        }
        [[fallthrough]];
      case State::BeginString:
        if (is_space(c)) return true;
        if (c == '"') {
          state_ = State::InString;
          return true;
        }
        return error(c, "looking for beginning of object key string");
      case State::EndValue: return end_value(c);
      case State::EndTop: return end_top(c);
      case State::InString:
        if (c == '"') {
          state_ = State::EndValue;
          return true;
        }
        if (c == '\\') {
          state_ = State::InStringEsc;
          return true;
        }
        if (c < 0x20) return error(c, "in string literal");
        return true;
      case State::InStringEsc:
        switch (c) {
          case 'b': case 'f': case 'n': case 'r': case 't': case '\\': case '/': case '"':
            state_ = State::InString;
            return true;
          case 'u':
            state_ = State::InStringEscU;
            return true;
          default: return error(c, "in string escape code");
        }
      case State::InStringEscU:
      case State::InStringEscU1:
      case State::InStringEscU12:
      case State::InStringEscU123:
        if (!is_hex(c)) return error(c, "in \\u hexadecimal character escape");
        state_ = state_ == State::InStringEscU     ? State::InStringEscU1
                 : state_ == State::InStringEscU1  ? State::InStringEscU12
                 : state_ == State::InStringEscU12 ? State::InStringEscU123
                                                   : State::InString;
        return true;
      case State::Neg:
        if (c == '0') {
          state_ = State::Zero;
          return true;
        }
        if (c >= '1' && c <= '9') {
          state_ = State::One;
          return true;
        }
        return error(c, "in numeric literal");
      case State::One:
        if (c >= '0' && c <= '9') return true;
        [[fallthrough]];
      case State::Zero:
        if (c == '.') {
          state_ = State::Dot;
          return true;
        }
        if (c == 'e' || c == 'E') {
          state_ = State::E;
          return true;
        }
        return end_value(c);
      case State::Dot:
        if (c >= '0' && c <= '9') {
          state_ = State::Dot0;
          return true;
        }
        return error(c, "after decimal point in numeric literal");
      case State::Dot0:
        if (c >= '0' && c <= '9') return true;
        if (c == 'e' || c == 'E') {
          state_ = State::E;
          return true;
        }
        return end_value(c);
      case State::E:
        if (c == '+' || c == '-') {
          state_ = State::ESign;
          return true;
        }
        [[fallthrough]];
      case State::ESign:
        if (c >= '0' && c <= '9') {
          state_ = State::E0;
          return true;
        }
        return error(c, "in exponent of numeric literal");
      case State::E0:
        if (c >= '0' && c <= '9') return true;
        return end_value(c);
      case State::T: return literal(c, 'r', State::Tr, "in literal true (expecting 'r')");
      case State::Tr: return literal(c, 'u', State::Tru, "in literal true (expecting 'u')");
      case State::Tru: return literal(c, 'e', State::EndValue, "in literal true (expecting 'e')");
      case State::F: return literal(c, 'a', State::Fa, "in literal false (expecting 'a')");
      case State::Fa: return literal(c, 'l', State::Fal, "in literal false (expecting 'l')");
      case State::Fal: return literal(c, 's', State::Fals, "in literal false (expecting 's')");
      case State::Fals: return literal(c, 'e', State::EndValue, "in literal false (expecting 'e')");
      case State::N: return literal(c, 'u', State::Nu, "in literal null (expecting 'u')");
      case State::Nu: return literal(c, 'l', State::Nul, "in literal null (expecting 'l')");
      case State::Nul: return literal(c, 'l', State::EndValue, "in literal null (expecting 'l')");
      case State::Error: return false;
    }
    return false;
  }

  std::size_t max_depth_;
  State state_ = State::BeginValue;
  std::vector<Parse> stack_;
  bool end_top_ = false;
  std::optional<std::string> err_;
};

// Length of the valid UTF-8 sequence starting at s[i] (a non-ASCII lead byte), or 0 when invalid.
std::size_t utf8_seq_len(std::string_view s, std::size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  std::size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
  if (len == 0 || c < 0xC2 || c > 0xF4 || i + len > s.size()) return 0;
  uint32_t cp = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
  for (std::size_t k = 1; k < len; ++k) {
    auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
  if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
  return len;
}

// Go's json.Marshal (and string decoding) replace each invalid UTF-8 byte with U+FFFD.
std::string replace_invalid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      out += s[i++];
      continue;
    }
    std::size_t len = utf8_seq_len(s, i);
    if (len) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

// Rewrites what Go's decoder tolerates but nlohmann rejects: invalid UTF-8 inside strings (each bad byte
// becomes U+FFFD) and unpaired surrogate escapes (become \ufffd). Only called on Go-valid JSON.
std::string sanitize_for_nlohmann(std::string_view in) {
  std::string out;
  out.reserve(in.size() + 16);
  bool in_str = false;
  auto hex4 = [&](size_t i) -> int {
    if (i + 4 > in.size()) return -1;
    int v = 0;
    for (size_t k = i; k < i + 4; ++k) {
      char c = in[k];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else return -1;
    }
    return v;
  };
  for (size_t i = 0; i < in.size();) {
    auto c = static_cast<unsigned char>(in[i]);
    if (!in_str) {
      if (c == '"') in_str = true;
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    if (c == '"') {
      in_str = false;
      out += '"';
      ++i;
      continue;
    }
    if (c == '\\') {
      if (i + 1 < in.size() && in[i + 1] == 'u') {
        int v = hex4(i + 2);
        if (v >= 0xD800 && v <= 0xDBFF) {
          int lo = (i + 7 < in.size() && in[i + 6] == '\\' && in[i + 7] == 'u') ? hex4(i + 8) : -1;
          if (lo >= 0xDC00 && lo <= 0xDFFF) {
            out.append(in.substr(i, 12));
            i += 12;
          } else {
            out += "\\ufffd";
            i += 6;
          }
          continue;
        }
        if (v >= 0xDC00 && v <= 0xDFFF) {
          out += "\\ufffd";
          i += 6;
          continue;
        }
        out.append(in.substr(i, 6));
        i += 6;
        continue;
      }
      out.append(in.substr(i, 2));
      i += 2;
      continue;
    }
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    std::size_t len = utf8_seq_len(in, i);
    if (len) {
      out.append(in.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

// One step of a field path: a key, or an index into a list.
struct PathSeg {
  bool index = false;
  std::string text;  // the key, or the decimal index
};

// Where a duplicate key sits, sigs.k8s.io/json style: keys joined by '.', indexes as [i].
std::string strict_path(const std::vector<PathSeg>& segs, std::string_view field, std::size_t count = SIZE_MAX) {
  std::string p;
  count = std::min(count, segs.size());
  for (std::size_t i = 0; i < count; ++i) {
    if (segs[i].index) {
      p += '[';
      p += segs[i].text;
      p += ']';
    } else {
      if (!p.empty()) p += '.';
      p += segs[i].text;
    }
  }
  if (p.empty()) return std::string(field);
  return p + "." + std::string(field);
}

// A SAX consumer that builds the value, records duplicate keys and refuses non-finite numbers.
class Builder {
 public:
  Builder(Decoded& out, std::size_t max_duplicates) : out_(out), max_dups_(max_duplicates) {}

  bool null() { return place(json(nullptr)); }
  bool boolean(bool v) { return place(json(v)); }
  bool number_integer(json::number_integer_t v) { return place(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) {
    // The apiserver's unstructured decoding keeps ints only when they fit int64.
    if (v > static_cast<json::number_unsigned_t>(INT64_MAX)) return place(json(static_cast<double>(v)));
    return place(json(static_cast<json::number_integer_t>(v)));
  }
  bool number_float(json::number_float_t v, const std::string& text) {
    if (!std::isfinite(v)) {
      error_ = "json: cannot unmarshal number " + text + " into Go value of type float64";
      return false;
    }
    return place(json(v));
  }
  bool string(json::string_t& v) { return place(json(std::move(v))); }
  bool binary(json::binary_t&) { return false; }
  bool start_object(std::size_t) {
    json* slot = place_slot(json::object());
    frames_.push_back(Frame{slot, true, nullptr});
    segs_.push_back(PathSeg{false, {}});
    return true;
  }
  bool key(json::string_t& k) {
    Frame& f = frames_.back();
    auto [it, inserted] = f.node->get_ref<json::object_t&>().try_emplace(k, nullptr);
    if (!inserted) {
      it->second = nullptr;
      record_duplicate(strict_path(segs_, k, segs_.size() - 1));
    }
    f.pending = &it->second;
    segs_.back().text = k;
    return true;
  }
  bool end_object() {
    frames_.pop_back();
    segs_.pop_back();
    return true;
  }
  bool start_array(std::size_t) {
    json* slot = place_slot(json::array());
    frames_.push_back(Frame{slot, false, nullptr});
    segs_.push_back(PathSeg{true, "0"});
    return true;
  }
  bool end_array() {
    frames_.pop_back();
    segs_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string& last_token, const nlohmann::detail::exception& e) {
    if (!error_.empty()) return false;
    if (e.id == 406)  // number overflow: Go fails the same literal when converting it to float64
      error_ = "json: cannot unmarshal number " + last_token + " into Go value of type float64";
    else
      error_ = e.what();
    return false;
  }

  const std::string& error() const { return error_; }

 private:
  struct Frame {
    json* node;
    bool object;
    json* pending;  // the value slot of the last key (objects)
  };

  json* place_slot(json v) {
    if (frames_.empty()) {
      out_.value = std::move(v);
      return &out_.value;
    }
    Frame& f = frames_.back();
    if (f.object) {
      *f.pending = std::move(v);
      return f.pending;
    }
    auto& arr = f.node->get_ref<json::array_t&>();
    segs_.back().text = std::to_string(arr.size());
    arr.push_back(std::move(v));
    return &arr.back();
  }
  bool place(json v) {
    place_slot(std::move(v));
    return true;
  }
  void record_duplicate(std::string path) {
    if (out_.duplicate_fields.size() >= max_dups_) return;
    if (!seen_.insert(path).second) return;
    out_.strict_errors.push_back("duplicate field " + go_quote(path));
    out_.duplicate_fields.push_back(std::move(path));
  }

  Decoded& out_;
  std::size_t max_dups_;
  std::vector<Frame> frames_;
  std::vector<PathSeg> segs_;
  std::set<std::string> seen_;
  std::string error_;
};

// The common body without the GoScanner's pass or nlohmann's lexer (a sixth of the server's CPU
// per pod create went to parsing): valid JSON with ASCII strings and simple escapes, integers
// that fit int64, no duplicate keys, nesting within the limit. Anything else (invalid JSON, \u
// escapes, non-ASCII bytes, fractions and exponents, long integers, duplicates, deep nesting)
// makes it give up, and the body goes through the GoScanner (Go's error messages) and the general
// parser, so every body decodes, or fails, as before.
class FastParser {
 public:
  FastParser(const char* p, const char* end, std::size_t max_depth) : p_(p), end_(end), depth_left_(max_depth) {}

  bool parse(json& out) {
    if (!value(out)) return false;
    skip_ws();
    return p_ == end_;
  }

 private:
  void skip_ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\t' || *p_ == '\r')) ++p_;
  }

  bool literal(const char* word, std::size_t n) {
    if (static_cast<std::size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) return false;
    p_ += n;
    return true;
  }

  // p_ is at the opening quote.
  bool string(std::string& out) {
    ++p_;
    const char* start = p_;
    while (p_ < end_) {
      const unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        out.append(start, p_);
        ++p_;
        return true;
      }
      if (c >= 0x80 || c < 0x20) return false;
      if (c != '\\') {
        ++p_;
        continue;
      }
      out.append(start, p_);
      if (++p_ >= end_) return false;
      switch (*p_) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        default: return false;  // \u: surrogates and UTF-8 are the general path's
      }
      start = ++p_;
    }
    return false;
  }

  bool number(json& out) {
    const char* q = p_;
    bool negative = false;
    if (*q == '-') {
      negative = true;
      ++q;
    }
    const char* digits = q;
    std::int64_t v = 0;
    while (q < end_ && *q >= '0' && *q <= '9') {
      v = v * 10 + (*q - '0');
      ++q;
    }
    const std::size_t n = static_cast<std::size_t>(q - digits);
    if (n == 0 || n > 18) return false;  // 18 digits cannot overflow int64
    if (n > 1 && *digits == '0') return false;  // a leading zero is not JSON
    if (q < end_ && (*q == '.' || *q == 'e' || *q == 'E')) return false;
    out = negative ? -v : v;
    p_ = q;
    return true;
  }

  bool value(json& out) {
    skip_ws();
    if (p_ >= end_) return false;
    switch (*p_) {
      case '{':
      case '[':
        if (depth_left_ == 0) return false;
        --depth_left_;
        if (!container(out)) return false;
        ++depth_left_;
        return true;
      case '"': {
        std::string text;
        if (!string(text)) return false;
        out = std::move(text);
        return true;
      }
      case 't': out = true; return literal("true", 4);
      case 'f': out = false; return literal("false", 5);
      case 'n': out = nullptr; return literal("null", 4);
      default:
        if (*p_ == '-' || (*p_ >= '0' && *p_ <= '9')) return number(out);
        return false;
    }
  }

  // Skips whitespace and then c, if that is what comes.
  bool take(char c) {
    skip_ws();
    if (p_ >= end_ || *p_ != c) return false;
    ++p_;
    return true;
  }

  // p_ is at '{' or '['. The items up to the closing bracket, each read by item(), with a ','
  // between them.
  template <typename Item>
  bool items(char close, Item item) {
    ++p_;
    if (take(close)) return true;
    do {
      if (!item()) return false;
    } while (take(','));
    return take(close);
  }

  bool container(json& out) {
    if (*p_ == '{') {
      out = json::object();
      auto& object = out.get_ref<json::object_t&>();
      return items('}', [&] {
        skip_ws();
        std::string key;
        if (p_ >= end_ || *p_ != '"' || !string(key) || !take(':')) return false;
        auto [it, inserted] = object.try_emplace(std::move(key));
        return inserted && value(it->second);  // duplicates are reported by the general path
      });
    }
    out = json::array();
    auto& array = out.get_ref<json::array_t&>();
    return items(']', [&] { return value(array.emplace_back()); });
  }

  const char* p_;
  const char* const end_;
  std::size_t depth_left_;  // containers that may still open
};

// ---------------------------------------------------------------------------------------------
// YAML

// A streambuf over the body, so yaml-cpp reads it without a copy.
class ViewBuf : public std::streambuf {
 public:
  ViewBuf(const char* b, const char* e) {
    char* p = const_cast<char*>(b);
    setg(p, p, const_cast<char*>(e));
  }
};

struct YNode {
  enum Kind { Scalar, Null, Seq, Map, Alias } kind = Null;
  std::string tag;
  std::string value;
  int line = 0;
  std::vector<YNode*> children;  // Seq items; Map key, value, key, value...
  YNode* target = nullptr;       // Alias
  std::string anchor;            // the anchor name a node defines, or an alias refers to
};

struct YDoc {
  std::deque<YNode> arena;
  YNode* root = nullptr;
};

class TreeBuilder : public YAML::EventHandler {
 public:
  explicit TreeBuilder(YDoc& doc) : doc_(doc) {}

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnAnchor(const YAML::Mark&, const std::string& name) override { pending_anchor_ = name; }
  void OnNull(const YAML::Mark& m, YAML::anchor_t a) override { add(make(YNode::Null, "", "", m, a)); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t a) override {
    YNode* n = make(YNode::Alias, "", "", m, 0);
    auto it = anchors_.find(a);
    if (it != anchors_.end()) {
      n->target = it->second;
      n->anchor = it->second->anchor;
    }
    add(n);
  }
  void OnScalar(const YAML::Mark& m, const std::string& tag, YAML::anchor_t a, const std::string& v) override {
    add(make(YNode::Scalar, tag, v, m, a));
  }
  void OnSequenceStart(const YAML::Mark& m, const std::string& tag, YAML::anchor_t a,
                       YAML::EmitterStyle::value) override {
    YNode* n = make(YNode::Seq, tag, "", m, a);
    add(n);
    stack_.push_back(n);
  }
  void OnSequenceEnd() override { stack_.pop_back(); }
  void OnMapStart(const YAML::Mark& m, const std::string& tag, YAML::anchor_t a, YAML::EmitterStyle::value) override {
    YNode* n = make(YNode::Map, tag, "", m, a);
    add(n);
    stack_.push_back(n);
  }
  void OnMapEnd() override { stack_.pop_back(); }

 private:
  YNode* make(YNode::Kind k, const std::string& tag, const std::string& v, const YAML::Mark& m, YAML::anchor_t a) {
    YNode& n = doc_.arena.emplace_back();
    n.kind = k;
    n.tag = tag;
    n.value = v;
    n.line = m.line;
    if (a != 0) {
      anchors_[a] = &n;
      n.anchor = pending_anchor_;
    }
    pending_anchor_.clear();
    return &n;
  }
  void add(YNode* n) {
    if (stack_.empty()) {
      doc_.root = n;
    } else {
      stack_.back()->children.push_back(n);
    }
  }

  YDoc& doc_;
  std::vector<YNode*> stack_;
  std::unordered_map<YAML::anchor_t, YNode*> anchors_;
  std::string pending_anchor_;
};

constexpr const char* kTagPrefix = "tag:yaml.org,2002:";

std::string short_tag(const std::string& tag) {
  if (tag.rfind(kTagPrefix, 0) == 0) return "!!" + tag.substr(std::char_traits<char>::length(kTagPrefix));
  return tag;
}

// A resolved scalar as goyaml.v2 sees it (its Go type matters for map keys and strict errors).
struct Scalar {
  enum Type { Str, Int, Uint, Float, Bool, Null, Timestamp } type = Str;
  std::string s;
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  bool b = false;
};

struct YamlError {
  std::string msg;
};

bool all_digits(std::string_view s, int base) {
  if (s.empty()) return false;
  for (char c : s) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : 99;
    if (d >= base) return false;
  }
  return true;
}

// strconv.ParseUint(s, base, 64) on an unsigned digit string.
std::optional<uint64_t> parse_u64(std::string_view s, int base) {
  if (!all_digits(s, base)) return std::nullopt;
  unsigned __int128 v = 0;
  for (char c : s) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : c - 'A' + 10;
    v = v * static_cast<unsigned>(base) + static_cast<unsigned>(d);
    if (v > UINT64_MAX) return std::nullopt;
  }
  return static_cast<uint64_t>(v);
}

// Splits Go's base-0 prefix: 0x/0X hex, 0o/0O and leading 0 octal, 0b/0B binary.
std::string_view base0(std::string_view s, int& base) {
  base = 10;
  if (s.size() >= 2 && s[0] == '0') {
    char p = s[1];
    if (p == 'x' || p == 'X') { base = 16; return s.substr(2); }
    if (p == 'o' || p == 'O') { base = 8; return s.substr(2); }
    if (p == 'b' || p == 'B') { base = 2; return s.substr(2); }
    base = 8;
    return s.substr(1);
  }
  return s;
}

// strconv.ParseInt(s, 0, 64)
std::optional<int64_t> go_parse_int0(std::string_view s) {
  bool neg = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  int base;
  auto digits = base0(s, base);
  auto v = parse_u64(digits, base);
  if (!v) return std::nullopt;
  if (!neg && *v > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  if (neg && *v > static_cast<uint64_t>(INT64_MAX) + 1) return std::nullopt;
  return neg ? static_cast<int64_t>(0 - *v) : static_cast<int64_t>(*v);
}

// strconv.ParseUint(s, 0, 64)
std::optional<uint64_t> go_parse_uint0(std::string_view s) {
  int base;
  auto digits = base0(s, base);
  return parse_u64(digits, base);
}

// ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
bool yaml_style_float(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  auto digits = [&]() {
    size_t st = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i - st;
  };
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (digits() == 0) return false;
  } else {
    if (digits() == 0) return false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      digits();
    }
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    if (digits() == 0) return false;
  }
  return i == s.size();
}

// strconv.ParseFloat for the forms reaching it here; nullopt on overflow (Go's ErrRange).
std::optional<double> parse_float(const std::string& s) {
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  if (std::isinf(v)) return std::nullopt;
  return v;
}

// goyaml.v2's parseTimestamp: only the quick shape check and the formats it accepts.
bool looks_like_timestamp(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  if (i != 4 || i == s.size() || s[i] != '-') return false;
  // "2006-1-2" and longer forms; a full time.Parse is not needed since the value stays a string.
  size_t j = i + 1, k = j;
  while (k < s.size() && s[k] >= '0' && s[k] <= '9') ++k;
  if (k == j || k - j > 2 || k >= s.size() || s[k] != '-') return false;
  size_t d = k + 1, e = d;
  while (e < s.size() && s[e] >= '0' && s[e] <= '9') ++e;
  if (e == d || e - d > 2) return false;
  if (e == s.size()) return true;
  return s[e] == 'T' || s[e] == 't' || s[e] == ' ';
}

// Base64 (standard alphabet, padding) for !!binary; whitespace is ignored as goyaml does.
std::optional<std::string> decode_base64(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string clean;
  for (char c : in)
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') clean += c;
  if (clean.size() % 4 != 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < clean.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      char c = clean[i + k];
      if (c == '=' && i + 4 == clean.size() && k >= 2) {
        v[k] = 0;
        ++pad;
      } else {
        if (pad) return std::nullopt;
        v[k] = val(c);
        if (v[k] < 0) return std::nullopt;
      }
    }
    uint32_t n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out += static_cast<char>((n >> 16) & 0xFF);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xFF);
    if (pad < 1) out += static_cast<char>(n & 0xFF);
  }
  return out;
}

class YamlConverter {
 public:
  YamlConverter(const DecodeLimits& limits, Decoded& out) : limits_(limits), out_(out) {}

  json convert_root(YNode* root) {
    std::vector<PathSeg> path;
    return convert(root, path, 0);
  }

  const std::vector<std::string>& strict_lines() const { return strict_lines_; }

 private:
  void count_decode() {
    ++decode_count_;
    if (alias_depth_ > 0) ++alias_count_;
    if (alias_count_ > 100 && decode_count_ > 1000 &&
        static_cast<double>(alias_count_) / static_cast<double>(decode_count_) > allowed_alias_ratio(decode_count_))
      throw YamlError{"yaml: document contains excessive aliasing"};
  }

  static double allowed_alias_ratio(int64_t n) {
    constexpr double lo = 400000, hi = 4000000;
    if (n <= lo) return 0.99;
    if (n >= hi) return 0.10;
    return 0.99 - 0.89 * ((static_cast<double>(n) - lo) / (hi - lo));
  }

  // Follows an alias for reading; guards self-containing anchors.
  template <class Fn>
  auto through_alias(YNode* n, Fn&& fn) {
    if (!n->target) throw YamlError{"yaml: unknown anchor '" + n->anchor + "' referenced"};
    if (in_alias_.count(n)) throw YamlError{"yaml: anchor '" + n->anchor + "' value contains itself"};
    in_alias_.insert(n);
    ++alias_depth_;
    struct Undo {
      YamlConverter* c;
      YNode* n;
      ~Undo() {
        --c->alias_depth_;
        c->in_alias_.erase(n);
      }
    } undo{this, n};
    return fn(n->target);
  }

  Scalar resolve(const YNode* n) {
    Scalar r;
    if (n->kind == YNode::Null) {
      r.type = Scalar::Null;
      return r;
    }
    const std::string& in = n->value;
    const std::string& t = n->tag;
    // "!" is a quoted scalar (or the non-specific tag): always a string. "?" is plain: resolve.
    if (t == "!") {
      r.s = in;
      return r;
    }
    std::string tag;  // "" for implicit resolution, else the long form
    if (t != "?") {
      tag = t;
      bool resolvable = tag == std::string(kTagPrefix) + "str" || tag == std::string(kTagPrefix) + "bool" ||
                        tag == std::string(kTagPrefix) + "int" || tag == std::string(kTagPrefix) + "float" ||
                        tag == std::string(kTagPrefix) + "null" || tag == std::string(kTagPrefix) + "timestamp" ||
                        tag == std::string(kTagPrefix) + "binary" || tag == std::string(kTagPrefix) + "merge";
      if (!resolvable) {  // unknown tags keep the text
        r.s = in;
        return r;
      }
    }
    const std::string str_tag = std::string(kTagPrefix) + "str";
    const std::string bin_tag = std::string(kTagPrefix) + "binary";
    if (tag == bin_tag) {
      auto data = decode_base64(in);
      if (!data) throw YamlError{"yaml: !!binary value contains invalid base64 data"};
      r.s = replace_invalid_utf8(*data);
      return r;
    }
    if (tag == str_tag || tag == std::string(kTagPrefix) + "merge") {
      r.s = in;
      return r;
    }
    Scalar got = limits_.yaml_schema == YamlSchema::Kubernetes ? resolve_v2(in, tag) : resolve_core(in);
    std::string rtag = tag_of(got);
    if (tag.empty() || tag == rtag || (tag == std::string(kTagPrefix) + "timestamp" && got.type == Scalar::Str))
      return got;
    if (tag == std::string(kTagPrefix) + "float" && got.type == Scalar::Int) {
      got.type = Scalar::Float;
      got.f = static_cast<double>(got.i);
      return got;
    }
    if (tag == std::string(kTagPrefix) + "float" && got.type == Scalar::Uint) {
      got.type = Scalar::Float;
      got.f = static_cast<double>(got.u);
      return got;
    }
    throw YamlError{"yaml: cannot decode " + short_tag(rtag) + " `" + in + "` as a " + short_tag(tag)};
  }

  static std::string tag_of(const Scalar& s) {
    switch (s.type) {
      case Scalar::Str: return std::string(kTagPrefix) + "str";
      case Scalar::Int:
      case Scalar::Uint: return std::string(kTagPrefix) + "int";
      case Scalar::Float: return std::string(kTagPrefix) + "float";
      case Scalar::Bool: return std::string(kTagPrefix) + "bool";
      case Scalar::Null: return std::string(kTagPrefix) + "null";
      case Scalar::Timestamp: return std::string(kTagPrefix) + "timestamp";
    }
    return "";
  }

  // goyaml.v2 resolve() for an implicit (or resolvable explicit) tag.
  static Scalar resolve_v2(const std::string& in, const std::string& tag) {
    Scalar r;
    r.s = in;
    char hint = 'N';
    if (!in.empty()) {
      char c = in[0];
      if (c == '+' || c == '-') hint = 'S';
      else if (c >= '0' && c <= '9') hint = 'D';
      else if (std::string_view("yYnNtTfFoO~").find(c) != std::string_view::npos) hint = 'M';
      else if (c == '.') hint = '.';
      else hint = 0;
    }
    if (hint == 0) return r;
    static const std::map<std::string, int> kMap = {
        {"y", 1}, {"Y", 1}, {"yes", 1}, {"Yes", 1}, {"YES", 1}, {"true", 1}, {"True", 1}, {"TRUE", 1},
        {"on", 1}, {"On", 1}, {"ON", 1}, {"n", 0}, {"N", 0}, {"no", 0}, {"No", 0}, {"NO", 0},
        {"false", 0}, {"False", 0}, {"FALSE", 0}, {"off", 0}, {"Off", 0}, {"OFF", 0},
        {"", 2}, {"~", 2}, {"null", 2}, {"Null", 2}, {"NULL", 2},
        {".nan", 3}, {".NaN", 3}, {".NAN", 3}, {".inf", 4}, {".Inf", 4}, {".INF", 4},
        {"+.inf", 4}, {"+.Inf", 4}, {"+.INF", 4}, {"-.inf", 5}, {"-.Inf", 5}, {"-.INF", 5},
    };
    if (auto it = kMap.find(in); it != kMap.end()) {
      switch (it->second) {
        case 0:
        case 1: r.type = Scalar::Bool; r.b = it->second == 1; return r;
        case 2: r.type = Scalar::Null; return r;
        case 3: r.type = Scalar::Float; r.f = std::nan(""); return r;
        case 4: r.type = Scalar::Float; r.f = INFINITY; return r;
        case 5: r.type = Scalar::Float; r.f = -INFINITY; return r;
      }
    }
    if (hint == '.') {
      // strconv.ParseFloat on ".5", ".5e3": the only float shapes starting with '.'.
      if (yaml_style_float(in)) {
        if (auto f = parse_float(in)) {
          r.type = Scalar::Float;
          r.f = *f;
        }
      }
      return r;
    }
    if (hint == 'D' || hint == 'S') {
      if ((tag.empty() || tag == std::string(kTagPrefix) + "timestamp") && looks_like_timestamp(in)) {
        r.type = Scalar::Timestamp;  // kept as the original string when decoding into interface{}
        return r;
      }
      std::string plain;
      for (char c : in)
        if (c != '_') plain += c;
      if (auto i = go_parse_int0(plain)) {
        r.type = Scalar::Int;
        r.i = *i;
        return r;
      }
      if (auto u = go_parse_uint0(plain)) {
        r.type = Scalar::Uint;
        r.u = *u;
        return r;
      }
      if (yaml_style_float(plain)) {
        if (auto f = parse_float(plain)) {
          r.type = Scalar::Float;
          r.f = *f;
          return r;
        }
      }
    }
    return r;
  }

  // The YAML 1.2 core schema.
  static Scalar resolve_core(const std::string& in) {
    Scalar r;
    r.s = in;
    if (in.empty() || in == "~" || in == "null" || in == "Null" || in == "NULL") {
      r.type = Scalar::Null;
      return r;
    }
    if (in == "true" || in == "True" || in == "TRUE" || in == "false" || in == "False" || in == "FALSE") {
      r.type = Scalar::Bool;
      r.b = in[0] == 't' || in[0] == 'T';
      return r;
    }
    std::string_view s = in;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
      if (auto u = parse_u64(s.substr(2), s[1] == 'o' ? 8 : 16)) {
        if (*u <= static_cast<uint64_t>(INT64_MAX)) {
          r.type = Scalar::Int;
          r.i = static_cast<int64_t>(*u);
        } else {
          r.type = Scalar::Uint;
          r.u = *u;
        }
      }
      return r;
    }
    bool neg = !s.empty() && s[0] == '-';
    std::string_view digits = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? s.substr(1) : s;
    if (all_digits(digits, 10)) {
      auto u = parse_u64(digits, 10);
      if (u && (neg ? *u <= static_cast<uint64_t>(INT64_MAX) + 1 : *u <= static_cast<uint64_t>(INT64_MAX))) {
        r.type = Scalar::Int;
        r.i = neg ? static_cast<int64_t>(0 - *u) : static_cast<int64_t>(*u);
        return r;
      }
      if (u && !neg) {
        r.type = Scalar::Uint;
        r.u = *u;
        return r;
      }
    }
    std::string_view mag = digits;
    if (mag == ".inf" || mag == ".Inf" || mag == ".INF") {
      r.type = Scalar::Float;
      r.f = neg ? -INFINITY : INFINITY;
      return r;
    }
    if (s == ".nan" || s == ".NaN" || s == ".NAN") {
      r.type = Scalar::Float;
      r.f = std::nan("");
      return r;
    }
    if (yaml_style_float(in)) {
      if (auto f = parse_float(in)) {
        r.type = Scalar::Float;
        r.f = *f;
      }
    }
    return r;
  }

  // A scalar as JSON after sigs.k8s.io/yaml's json.Marshal and the apiserver's int-preserving decode.
  static json scalar_json(const Scalar& s) {
    switch (s.type) {
      case Scalar::Str:
      case Scalar::Timestamp: return s.s;
      case Scalar::Null: return nullptr;
      case Scalar::Bool: return s.b;
      case Scalar::Int: return s.i;
      case Scalar::Uint: return static_cast<double>(s.u);
      case Scalar::Float: {
        if (std::isnan(s.f)) throw YamlError{"json: unsupported value: NaN"};
        if (std::isinf(s.f)) throw YamlError{std::string("json: unsupported value: ") + (s.f > 0 ? "+Inf" : "-Inf")};
        // Go prints integral floats below 1e21 without a fraction; read back they are ints if they fit.
        if (std::trunc(s.f) == s.f && std::fabs(s.f) < 9223372036854775808.0) return static_cast<int64_t>(s.f);
        return s.f;
      }
    }
    return nullptr;
  }

  // A map key: its Go identity (for duplicate detection) and the JSON key it becomes.
  struct Key {
    std::string identity;
    std::string json_key;
    std::string go_repr;  // %#v, for the strict error
  };

  Key map_key(YNode* n, int depth) {
    count_decode();
    if (n->kind == YNode::Alias) {
      return through_alias(n, [&](YNode* t) { return map_key(t, depth); });
    }
    if (n->kind == YNode::Map || n->kind == YNode::Seq) {
      std::vector<PathSeg> p;
      json v = convert(n, p, depth + 1);
      throw YamlError{"yaml: invalid map key: " + go_value(v)};
    }
    Scalar s = resolve(n);
    Key k;
    switch (s.type) {
      case Scalar::Str:
      case Scalar::Timestamp:
        k.identity = "s" + s.s;
        k.json_key = s.s;
        k.go_repr = go_quote(s.s);
        break;
      case Scalar::Int:
        k.identity = "i" + std::to_string(s.i);
        k.json_key = std::to_string(s.i);
        k.go_repr = k.json_key;
        break;
      case Scalar::Bool:
        k.identity = s.b ? "btrue" : "bfalse";
        k.json_key = s.b ? "true" : "false";
        k.go_repr = k.json_key;
        break;
      case Scalar::Float: {
        char buf[40];
        std::snprintf(buf, sizeof buf, "%.17g", s.f);
        k.identity = std::isnan(s.f) ? "nan" + std::to_string(nan_counter_++) : std::string("f") + buf;
        if (std::isnan(s.f)) k.json_key = ".nan";
        else if (std::isinf(s.f)) k.json_key = s.f > 0 ? ".inf" : "-.inf";
        else k.json_key = go_format_float(s.f, 32);
        k.go_repr = go_format_float(s.f, 64);
        break;
      }
      case Scalar::Uint: {
        char buf[32];
        std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(s.u));
        throw YamlError{"unsupported map key of type: uint64, key: " + std::string(buf) + ", value: <omitted>"};
      }
      case Scalar::Null: throw YamlError{"unsupported map key of type: %!s(<nil>), key: <nil>, value: <omitted>"};
    }
    return k;
  }

  struct MapBuild {
    std::map<std::string, std::size_t> index;  // identity -> entry
    std::vector<std::pair<std::string, json>> entries;  // json key, value
  };

  void set_entry(MapBuild& mb, const Key& k, json v, int value_line, const std::vector<PathSeg>& path) {
    auto it = mb.index.find(k.identity);
    if (it != mb.index.end()) {
      mb.entries[it->second].second = std::move(v);
      strict_lines_.push_back("line " + std::to_string(value_line + 1) + ": key " + k.go_repr + " already set in map");
      std::string p = strict_path(path, k.json_key);
      if (out_.duplicate_fields.size() < limits_.max_duplicates && seen_.insert(p).second)
        out_.duplicate_fields.push_back(std::move(p));
      return;
    }
    mb.index.emplace(k.identity, mb.entries.size());
    mb.entries.emplace_back(k.json_key, std::move(v));
  }

  static bool is_merge(const YNode* n) {
    return n->kind == YNode::Scalar && n->value == "<<" &&
           (n->tag == "?" || n->tag == std::string(kTagPrefix) + "merge");
  }

  [[noreturn]] static void fail_want_map() {
    throw YamlError{"yaml: map merge requires map or sequence of maps as the value"};
  }

  void mapping_into(YNode* n, MapBuild& mb, std::vector<PathSeg>& path, int depth) {
    for (std::size_t i = 0; i + 1 < n->children.size(); i += 2) {
      YNode* kn = n->children[i];
      YNode* vn = n->children[i + 1];
      if (is_merge(kn)) {
        merge(vn, mb, path, depth);
        continue;
      }
      Key k = map_key(kn, depth);
      path.push_back(PathSeg{false, k.json_key});
      json v = convert(vn, path, depth + 1);
      path.pop_back();
      set_entry(mb, k, std::move(v), vn->line, path);
    }
  }

  void merge_one(YNode* n, MapBuild& mb, std::vector<PathSeg>& path, int depth) {
    count_decode();
    if (n->kind == YNode::Alias) {
      if (n->target && n->target->kind != YNode::Map) fail_want_map();
      through_alias(n, [&](YNode* t) {
        count_decode();
        mapping_into(t, mb, path, depth);
        return 0;
      });
      return;
    }
    if (n->kind != YNode::Map) fail_want_map();
    mapping_into(n, mb, path, depth);
  }

  void merge(YNode* n, MapBuild& mb, std::vector<PathSeg>& path, int depth) {
    switch (n->kind) {
      case YNode::Map:
      case YNode::Alias: merge_one(n, mb, path, depth); break;
      case YNode::Seq:
        for (std::size_t i = n->children.size(); i-- > 0;) {
          YNode* c = n->children[i];
          if (c->kind == YNode::Alias) {
            if (c->target && c->target->kind != YNode::Map) fail_want_map();
          } else if (c->kind != YNode::Map) {
            fail_want_map();
          }
          merge_one(c, mb, path, depth);
        }
        break;
      default: fail_want_map();
    }
  }

  json convert(YNode* n, std::vector<PathSeg>& path, int depth) {
    if (static_cast<std::size_t>(depth) > limits_.max_yaml_depth)
      throw YamlError{"yaml: line " + std::to_string(n->line + 1) + ": exceeded max depth of " +
                      std::to_string(limits_.max_yaml_depth)};
    count_decode();
    switch (n->kind) {
      case YNode::Alias: return through_alias(n, [&](YNode* t) { return convert(t, path, depth); });
      case YNode::Null:
      case YNode::Scalar: return scalar_json(resolve(n));
      case YNode::Seq: {
        json arr = json::array();
        for (std::size_t i = 0; i < n->children.size(); ++i) {
          path.push_back(PathSeg{true, std::to_string(i)});
          arr.push_back(convert(n->children[i], path, depth + 1));
          path.pop_back();
        }
        return arr;
      }
      case YNode::Map: {
        MapBuild mb;
        mapping_into(n, mb, path, depth);
        json obj = json::object();
        for (auto& [k, v] : mb.entries) obj[k] = std::move(v);
        return obj;
      }
    }
    return nullptr;
  }

  const DecodeLimits& limits_;
  Decoded& out_;
  int64_t decode_count_ = 0, alias_count_ = 0;
  int alias_depth_ = 0;
  std::set<YNode*> in_alias_;
  std::set<std::string> seen_;
  std::vector<std::string> strict_lines_;
  int nan_counter_ = 0;
};

// yaml-cpp's messages where libyaml (goyaml) words the same problem differently.
std::string libyaml_message(const std::string& msg) {
  static const std::map<std::string, std::string> kMap = {
      {YAML::ErrorMsg::MAP_VALUE, "mapping values are not allowed in this context"},
      {YAML::ErrorMsg::END_OF_MAP, "did not find expected key"},
      {YAML::ErrorMsg::END_OF_SEQ, "did not find expected '-' indicator"},
      {YAML::ErrorMsg::END_OF_MAP_FLOW, "did not find expected ',' or '}'"},
      {YAML::ErrorMsg::END_OF_SEQ_FLOW, "did not find expected ',' or ']'"},
      {YAML::ErrorMsg::TAB_IN_INDENTATION, "found character that cannot start any token"},
      {YAML::ErrorMsg::UNKNOWN_TOKEN, "found character that cannot start any token"},
      {YAML::ErrorMsg::BLOCK_ENTRY, "block sequence entries are not allowed in this context"},
      {YAML::ErrorMsg::EOF_IN_SCALAR, "found unexpected end of stream"},
      {YAML::ErrorMsg::FLOW_END, "did not find expected node content"},
      {YAML::ErrorMsg::MAP_KEY, "mapping keys are not allowed in this context"},
  };
  auto it = kMap.find(msg);
  return it == kMap.end() ? msg : it->second;
}

std::string anchor_name_at(std::string_view body, std::size_t pos) {
  if (pos < body.size() && body[pos] == '*') ++pos;
  std::string name;
  while (pos < body.size()) {
    char c = body[pos];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',' || c == '[' || c == ']' || c == '{' || c == '}')
      break;
    name += c;
    ++pos;
  }
  return name;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

bool looks_like_json(std::string_view body) {
  std::size_t i = 0;
  while (i < body.size()) {
    unsigned char c = static_cast<unsigned char>(body[i]);
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
      ++i;
    } else if (c == 0xC2 && i + 1 < body.size() && (static_cast<unsigned char>(body[i + 1]) == 0x85 ||
                                                     static_cast<unsigned char>(body[i + 1]) == 0xA0)) {
      i += 2;  // U+0085 and U+00A0 are unicode.IsSpace too
    } else {
      break;
    }
  }
  return i < body.size() && body[i] == '{';
}

Result<Decoded> parse_json(std::string_view body, const DecodeLimits& limits) {
  if (body.size() > limits.max_body_bytes) return too_large(limits.max_body_bytes);
  Decoded out;
  if (FastParser(body.data(), body.data() + body.size(), limits.max_depth).parse(out.value)) return out;
  out.value = json();
  GoScanner scanner(limits.max_depth);
  if (auto err = scanner.check(body)) return bad_request(std::move(*err));
  {
    Builder b(out, limits.max_duplicates);
    bool ok = json::sax_parse(body.begin(), body.end(), &b, json::input_format_t::json, true, false);
    if (ok) return out;
    if (b.error().rfind("json: cannot unmarshal", 0) == 0) return bad_request(b.error());
  }
  // Go accepted what nlohmann did not: invalid UTF-8 or unpaired surrogates. Decode as Go would.
  std::string sane = sanitize_for_nlohmann(body);
  Decoded retry;
  Builder b(retry, limits.max_duplicates);
  if (!json::sax_parse(sane.begin(), sane.end(), &b, json::input_format_t::json, true, false))
    return bad_request(b.error().empty() ? "invalid JSON" : b.error());
  return retry;
}

Result<std::vector<Decoded>> parse_yaml(std::string_view body, const DecodeLimits& limits) {
  if (body.size() > limits.max_body_bytes) return too_large(limits.max_body_bytes);
  std::vector<Decoded> docs;
  ViewBuf buf(body.data(), body.data() + body.size());
  std::istream in(&buf);
  std::size_t count = 0;
  try {
    YAML::Parser parser(in);
    while (true) {
      YDoc doc;
      TreeBuilder tb(doc);
      if (!parser.HandleNextDocument(tb)) break;
      if (++count > limits.max_yaml_documents)
        return bad_request("yaml: too many documents (limit " + std::to_string(limits.max_yaml_documents) + ")");
      if (!doc.root) continue;
      Decoded d;
      YamlConverter conv(limits, d);
      d.value = conv.convert_root(doc.root);
      if (!conv.strict_lines().empty()) {
        std::string msg = "yaml: unmarshal errors:";
        for (const auto& l : conv.strict_lines()) msg += "\n  " + l;
        d.strict_errors.push_back(std::move(msg));
      }
      if (d.value.is_null()) continue;
      docs.push_back(std::move(d));
    }
  } catch (const YamlError& e) {
    return bad_request(e.msg);
  } catch (const YAML::DeepRecursion& e) {
    return bad_request("yaml: line " + std::to_string(e.mark.line + 1) + ": exceeded max depth of 2000");
  } catch (const YAML::Exception& e) {
    if (e.msg == YAML::ErrorMsg::UNKNOWN_ANCHOR)
      return bad_request("yaml: unknown anchor '" + anchor_name_at(body, static_cast<std::size_t>(e.mark.pos)) +
                         "' referenced");
    return bad_request("yaml: line " + std::to_string(e.mark.line + 1) + ": " + libyaml_message(e.msg));
  }
  return docs;
}

std::string strict_decoding_message(const std::vector<std::string>& strict_errors) {
  std::string s = "strict decoding error: ";
  for (std::size_t i = 0; i < strict_errors.size(); ++i) {
    if (i) s += ", ";
    s += strict_errors[i];
  }
  return s;
}

Status unrecognized_body_status(std::string_view kind, const Status& decode_error, std::string_view body,
                                bool json_body) {
  std::string err = decode_error.message();
  if (json_body) err = "couldn't get version/kind; json parse error: " + err;
  std::string summary;
  constexpr std::size_t kMax = 30;
  if (body.empty()) {
    summary = "<empty>";
  } else if (body[0] == '{') {
    summary = body.size() > kMax ? std::string(body.substr(0, kMax)) + " ..." : std::string(body);
  } else {
    static const char* kHex = "0123456789abcdef";
    std::size_t n = std::min(body.size(), kMax);
    for (std::size_t i = 0; i < n; ++i) {
      auto c = static_cast<unsigned char>(body[i]);
      summary += kHex[c >> 4];
      summary += kHex[c & 0xF];
    }
    if (body.size() > kMax) summary += " ...";
  }
  return bad_request("the object provided is unrecognized (must be of type " + std::string(kind) + "): " + err + " (" +
                     summary + ")");
}

}  // namespace berth::api
