// Image reference parsing with Docker's normalisation (distribution/reference's
// ParseNormalizedNamed + TagNameOnly), written against its grammar:
//   reference := name [ ":" tag ] [ "@" digest ]
//   name      := [domain "/"] path-component ["/" path-component]*
#include <algorithm>
#include <cctype>

#include "nodeagent/images/images.h"

namespace berth::nodeagent::images {
namespace {

api::Status invalid(std::string msg) { return api::Status(api::Reason::Invalid, std::move(msg)); }

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool is_hex_lower(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | "__" | "-"+
bool valid_path_component(std::string_view s) {
  if (s.empty() || !is_lower_alnum(s.front()) || !is_lower_alnum(s.back())) return false;
  size_t i = 0;
  while (i < s.size()) {
    if (is_lower_alnum(s[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && !is_lower_alnum(s[j])) ++j;
    std::string_view sep = s.substr(i, j - i);
    bool ok = sep == "." || sep == "_" || sep == "__" || sep.find_first_not_of('-') == std::string_view::npos;
    if (!ok) return false;
    i = j;
  }
  return true;
}

// domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool valid_domain_component(std::string_view s) {
  if (s.empty() || !is_alnum(s.front()) || !is_alnum(s.back())) return false;
  for (char c : s)
    if (!is_alnum(c) && c != '-') return false;
  return true;
}

// domain := (domain-component ("." domain-component)* | "[" ipv6 "]") [":" port]
bool valid_domain(std::string_view d) {
  std::string_view host = d;
  if (!d.empty() && d.front() == '[') {
    size_t close = d.find(']');
    if (close == std::string_view::npos || close < 2) return false;
    for (char c : d.substr(1, close - 1))
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':') return false;
    host = {};
    d = d.substr(close + 1);
    if (d.empty()) return true;
    if (d.front() != ':') return false;
  } else {
    size_t colon = d.find(':');
    host = d.substr(0, colon);
    d = colon == std::string_view::npos ? std::string_view() : d.substr(colon);
    size_t start = 0;
    while (true) {
      size_t dot = host.find('.', start);
      if (!valid_domain_component(host.substr(start, dot == std::string_view::npos ? dot : dot - start)))
        return false;
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
    if (d.empty()) return true;
  }
  std::string_view port = d.substr(1);
  if (port.empty()) return false;
  for (char c : port)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// tag := [\w][\w.-]{0,127}
bool valid_tag(std::string_view t) {
  auto word = [](char c) { return is_alnum(c) || c == '_'; };
  if (t.empty() || t.size() > 128 || !word(t.front())) return false;
  for (char c : t)
    if (!word(c) && c != '.' && c != '-') return false;
  return true;
}

}  // namespace

std::string Reference::str() const {
  std::string s = name();
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

api::Result<Reference> parse_reference(std::string_view in) {
  const std::string_view kFormat = "invalid reference format";
  if (in.empty()) return invalid(std::string(kFormat));
  if (in.size() == 64 && std::all_of(in.begin(), in.end(), is_hex_lower))
    return invalid("invalid repository name (" + std::string(in) +
                   "), cannot specify 64-byte hexadecimal strings");

  Reference r;
  std::string_view rest = in;
  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    std::string_view dig = rest.substr(at + 1);
    rest = rest.substr(0, at);
    size_t colon = dig.find(':');
    if (colon == std::string_view::npos) return invalid(std::string(kFormat));
    std::string_view algo = dig.substr(0, colon), hex = dig.substr(colon + 1);
    if (algo != "sha256")
      return invalid(std::string(kFormat) + ": unsupported digest algorithm \"" + std::string(algo) + "\"");
    if (hex.size() != 64 || !std::all_of(hex.begin(), hex.end(), is_hex_lower))
      return invalid("invalid checksum digest format");
    r.digest = std::string(dig);
  }
  // A tag is after the last ':' that follows the last '/' (a ':' before it is a port).
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    // "[::1]" alone has colons inside brackets; only a colon after ']' can start a tag.
    size_t bracket = rest.rfind(']');
    if (bracket == std::string_view::npos || colon > bracket) {
      r.tag = std::string(rest.substr(colon + 1));
      rest = rest.substr(0, colon);
      if (!valid_tag(r.tag)) return invalid(std::string(kFormat));
    }
  }
  if (rest.empty()) return invalid(std::string(kFormat));

  // Docker's domain split: the first component is a domain only if it has a '.' or ':', is
  // "localhost", or has upper-case letters.
  std::string domain, path;
  size_t first = rest.find('/');
  std::string_view head = rest.substr(0, first);
  bool head_lower = std::none_of(head.begin(), head.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
  if (first == std::string_view::npos ||
      (head.find_first_of(".:") == std::string_view::npos && head != "localhost" && head_lower)) {
    domain = "docker.io";
    path = std::string(rest);
  } else {
    domain = std::string(head);
    path = std::string(rest.substr(first + 1));
  }
  if (domain == "index.docker.io") domain = "docker.io";
  if (domain == "docker.io" && path.find('/') == std::string::npos) path = "library/" + path;
  if (std::any_of(path.begin(), path.end(), [](char c) { return c >= 'A' && c <= 'Z'; }))
    return invalid(std::string(kFormat) + ": repository name (" + path + ") must be lowercase");
  if (!valid_domain(domain)) return invalid(std::string(kFormat));
  size_t start = 0;
  while (true) {
    size_t s = path.find('/', start);
    if (!valid_path_component(std::string_view(path).substr(start, s == std::string::npos ? s : s - start)))
      return invalid(std::string(kFormat));
    if (s == std::string::npos) break;
    start = s + 1;
  }
  if (domain.size() + 1 + path.size() > 255) return invalid("repository name must not be more than 255 characters");
  r.domain = std::move(domain);
  r.path = std::move(path);
  if (r.tag.empty() && r.digest.empty()) r.tag = "latest";
  return r;
}

std::string waiting_reason(const api::Status& status) {
  if (status.is_ok()) return "";
  for (const auto& c : status.causes())
    if (c.reason == "ErrImageNeverPull" || c.reason == "InvalidImageName" || c.reason == "ErrImagePull")
      return c.reason;
  return "ErrImagePull";
}

}  // namespace berth::nodeagent::images
