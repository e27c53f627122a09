#include "api/object.h"

#include <array>
#include <charconv>
#include <random>

namespace berth::api {

const nlohmann::json& at(const nlohmann::json& obj, std::initializer_list<const char*> path) {
  static const nlohmann::json kNull;
  const nlohmann::json* cur = &obj;
  for (const char* p : path) {
    if (!cur->is_object()) return kNull;
    auto it = cur->find(p);
    if (it == cur->end()) return kNull;
    cur = &*it;
  }
  return *cur;
}

namespace {

// For each byte: 0 when written as it is, 'x' beyond ASCII, else the character after the
// backslash ('u' for \u00XX), as nlohmann's serializer escapes without ensure_ascii.
constexpr auto kEscape = [] {
  std::array<char, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = 'u';
  for (int c = 0x80; c < 0x100; ++c) t[c] = 'x';
  t['\b'] = 'b';
  t['\t'] = 't';
  t['\n'] = 'n';
  t['\f'] = 'f';
  t['\r'] = 'r';
  t['"'] = '"';
  t['\\'] = '\\';
  return t;
}();

}  // namespace

// UTF-8 is checked and written by nlohmann, as dump() would.
void append_json_string(std::string& out, const std::string& s) {
  const std::size_t mark = out.size();
  out.push_back('"');
  const char* run = s.data();
  const char* end = s.data() + s.size();
  for (const char* p = run; p < end; ++p) {
    const char e = kEscape[static_cast<unsigned char>(*p)];
    if (!e) continue;
    if (e == 'x') {
      out.resize(mark);
      out += nlohmann::json(s).dump();
      return;
    }
    out.append(run, p);
    if (e == 'u') {
      static const char kHex[] = "0123456789abcdef";
      const auto c = static_cast<unsigned char>(*p);
      const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
      out.append(u, 6);
    } else {
      const char esc[2] = {'\\', e};
      out.append(esc, 2);
    }
    run = p + 1;
  }
  out.append(run, end);
  out.push_back('"');
}

namespace {

template <typename Int>
void append_int(std::string& out, Int v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

}  // namespace

void append_json_text(std::string& out, const nlohmann::json& v) {
  using nlohmann::json;
  switch (v.type()) {
    case json::value_t::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& [key, value] : v.get_ref<const json::object_t&>()) {
        if (!first) out.push_back(',');
        first = false;
        append_json_string(out, key);
        out.push_back(':');
        append_json_text(out, value);
      }
      out.push_back('}');
      return;
    }
    case json::value_t::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& item : v.get_ref<const json::array_t&>()) {
        if (!first) out.push_back(',');
        first = false;
        append_json_text(out, item);
      }
      out.push_back(']');
      return;
    }
    case json::value_t::string: append_json_string(out, v.get_ref<const std::string&>()); return;
    case json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; return;
    case json::value_t::null: out += "null"; return;
    case json::value_t::number_integer: append_int(out, v.get<json::number_integer_t>()); return;
    case json::value_t::number_unsigned: append_int(out, v.get<json::number_unsigned_t>()); return;
    default: out += v.dump(); return;  // floats, binary, discarded: nlohmann's own text
  }
}

std::string to_json_text(const nlohmann::json& v) {
  std::string out;
  out.reserve(256);
  append_json_text(out, v);
  return out;
}

std::string random_suffix(std::size_t n) {
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s.push_back(kAlphabet[rng() % (sizeof(kAlphabet) - 1)]);
  return s;
}

}  // namespace berth::api
