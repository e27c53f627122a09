// core/v1 Secret: pkg/registry/core/secret/strategy.go, SetDefaults_Secret, the v1 conversion
// that folds stringData into data, and ValidateSecret / ValidateSecretUpdate.
// Also the map[string][]byte decoding shared with ConfigMap.binaryData.
#include <set>

#include "api/validation.h"
#include "apiserver/kinds/other_kinds.h"

namespace berth::apiserver {

namespace kinds_detail {

namespace {
int decode_char(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

std::string json_type_name(const json& v) {
  if (v.is_number()) return "number";
  if (v.is_boolean()) return "bool";
  if (v.is_array()) return "array";
  if (v.is_object()) return "object";
  return "string";
}
}  // namespace

// encoding/base64 decodeQuantum, looped as Decode does (its fast paths give the same result).
Base64Decoded go_base64_decode(std::string_view src) {
  Base64Decoded out;
  std::size_t si = 0;
  while (si < src.size()) {
    int dbuf[4] = {0, 0, 0, 0};
    int dlen = 4;
    bool trailing_error = false;
    std::size_t trailing_at = 0;
    for (int j = 0; j < 4; ++j) {
      if (src.size() == si) {
        if (j == 0) {
          out.ok = true;
          return out;
        }
        out.error_offset = si - j;  // StdEncoding pads: a short final quantum is corrupt
        return out;
      }
      unsigned char in = static_cast<unsigned char>(src[si]);
      ++si;
      int v = decode_char(in);
      if (v >= 0) {
        dbuf[j] = v;
        continue;
      }
      if (in == '\n' || in == '\r') {
        --j;
        continue;
      }
      if (in != '=') {
        out.error_offset = si - 1;
        return out;
      }
      // Padding: it must close the quantum.
      if (j == 0 || j == 1) {
        out.error_offset = si - 1;
        return out;
      }
      if (j == 2) {
        while (si < src.size() && (src[si] == '\n' || src[si] == '\r')) ++si;
        if (si == src.size()) {
          out.error_offset = src.size();
          return out;
        }
        if (src[si] != '=') {
          out.error_offset = si - 1;
          return out;
        }
        ++si;
      }
      while (si < src.size() && (src[si] == '\n' || src[si] == '\r')) ++si;
      if (si < src.size()) {
        trailing_error = true;
        trailing_at = si;
      }
      dlen = j;
      break;
    }
    unsigned val = (unsigned(dbuf[0]) << 18) | (unsigned(dbuf[1]) << 12) | (unsigned(dbuf[2]) << 6) | unsigned(dbuf[3]);
    char b[3] = {char((val >> 16) & 0xff), char((val >> 8) & 0xff), char(val & 0xff)};
    out.bytes.append(b, static_cast<std::size_t>(dlen - 1));
    if (trailing_error) {
      out.error_offset = trailing_at;
      return out;
    }
    if (dlen < 4) break;
  }
  out.ok = true;
  return out;
}

std::string base64_encode(std::string_view in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (unsigned(static_cast<unsigned char>(in[i])) << 16) |
                 (unsigned(static_cast<unsigned char>(in[i + 1])) << 8) | unsigned(static_cast<unsigned char>(in[i + 2]));
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < in.size()) {
    unsigned v = unsigned(static_cast<unsigned char>(in[i])) << 16;
    if (i + 1 < in.size()) v |= unsigned(static_cast<unsigned char>(in[i + 1])) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

api::Status normalize_bytes_map(json& map, const std::string& kind, const std::string& field) {
  auto bad = [&](const std::string& why) {
    return api::Status(api::Reason::BadRequest,
                       kind + " in version \"v1\" cannot be handled as a " + kind + ": " + why);
  };
  if (map.is_null()) return {};
  if (!map.is_object())
    return bad("json: cannot unmarshal " + json_type_name(map) + " into Go struct field " + kind + "." + field +
               " of type map[string][]uint8");
  for (auto& [k, v] : map.items()) {
    if (v.is_null()) continue;
    if (!v.is_string())
      return bad("json: cannot unmarshal " + json_type_name(v) + " into Go struct field " + kind + "." + field +
                 " of type []uint8");
    auto decoded = go_base64_decode(v.get<std::string>());
    if (!decoded.ok) return bad("illegal base64 data at input byte " + std::to_string(decoded.error_offset));
    v = base64_encode(decoded.bytes);
  }
  return {};
}

std::size_t bytes_map_size(const json& map) {
  std::size_t total = 0;
  if (!map.is_object()) return 0;
  for (const auto& [k, v] : map.items())
    if (v.is_string()) total += go_base64_decode(v.get<std::string>()).bytes.size();
  return total;
}

// validation.IsConfigMapKey: the key rule shared by secrets and config maps.
std::vector<std::string> config_map_key_errors(const std::string& key) {
  std::vector<std::string> errs;
  if (key.size() > 253) errs.push_back("must be no more than 253 characters");
  bool ok = !key.empty();
  for (char c : key)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
      ok = false;
  if (!ok)
    errs.push_back("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
                   "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')");
  if (key == ".") errs.push_back("must not be '.'");
  else if (key == "..") errs.push_back("must not be '..'");
  else if (key.rfind("..", 0) == 0) errs.push_back("must not start with '..'");
  return errs;
}

}  // namespace kinds_detail

namespace {

using kinds_detail::base64_encode;
using kinds_detail::go_base64_decode;
using kinds_detail::config_map_key_errors;

constexpr std::size_t kMaxSecretSize = 1024 * 1024;

std::string str(const json& j) { return j.is_string() ? j.get<std::string>() : std::string(); }

bool has_key(const json& map, const char* key) { return map.is_object() && map.contains(key); }

class SecretStrategy : public Strategy {
 public:
  SecretStrategy() {
    info_.group = "";
    info_.kind = "Secret";
    info_.plural = "secrets";
    info_.singular = "secret";
    info_.namespaced = true;
    info_.versions = {"v1"};
    info_.storage_version = "v1";
    info_.storage_prefix = "/registry/secrets";
    info_.allow_create_on_update = false;
    info_.allow_unconditional_update = true;
  }

  const KindInfo& info() const override { return info_; }

  // Decoding: data values are base64 ([]byte), and stringData is written over data.
  api::Result<json> from_version(json external, const std::string& version) const override {
    if (external.contains("data")) {
      if (auto s = kinds_detail::normalize_bytes_map(external["data"], "Secret", "data"); !s) return s;
      if (external["data"].is_null()) external.erase("data");
    }
    auto it = external.find("stringData");
    if (it != external.end()) {
      json string_data = std::move(*it);
      external.erase(it);
      if (!string_data.is_null() && !string_data.is_object())
        return api::Status(api::Reason::BadRequest,
                           "Secret in version \"v1\" cannot be handled as a Secret: json: cannot unmarshal array into "
                           "Go struct field Secret.stringData of type map[string]string");
      if (string_data.is_object() && !string_data.empty()) {
        json& data = external["data"];
        if (!data.is_object()) data = json::object();
        for (const auto& [k, v] : string_data.items()) {
          if (!v.is_string() && !v.is_null())
            return api::Status(api::Reason::BadRequest,
                               "Secret in version \"v1\" cannot be handled as a Secret: json: cannot unmarshal " +
                                   std::string(v.is_number() ? "number" : v.is_boolean() ? "bool" : "object") +
                                   " into Go struct field Secret.stringData of type string");
          data[k] = base64_encode(str(v));
        }
      }
    }
    return Strategy::from_version(std::move(external), version);
  }

  void apply_defaults(json& obj) const override {
    if (str(at(obj, {"type"})).empty()) obj["type"] = "Opaque";
  }

  void validate(const json& obj, std::vector<api::Cause>& errors) const override {
    const json& data = at(obj, {"data"});
    if (data.is_object()) {
      for (const auto& [key, v] : data.items())
        for (const auto& msg : config_map_key_errors(key)) errors.push_back(api::field_invalid("data[" + key + "]", key, msg));
      if (kinds_detail::bytes_map_size(data) > kMaxSecretSize) errors.push_back(api::field_too_long("data", kMaxSecretSize));
    }
    std::string type = str(at(obj, {"type"}));
    auto decoded = [&](const char* key) { return go_base64_decode(str(at(data, {key}))).bytes; };
    auto check_json = [&](const char* key) {
      // The content must be a JSON object (json.Unmarshal into map[string]interface{}).
      std::string text = decoded(key);
      json parsed = json::parse(text, nullptr, false);
      if (parsed.is_discarded() || (!parsed.is_object() && !parsed.is_null())) {
        std::string why = parsed.is_discarded()
                              ? (text.empty() ? "unexpected end of JSON input" : "invalid character looking for beginning of value")
                              : "json: cannot unmarshal " + std::string(parsed.is_array() ? "array" : parsed.is_string() ? "string" : parsed.is_number() ? "number" : "bool") +
                                    " into Go value of type map[string]interface {}";
        errors.push_back(api::field_invalid(std::string("data[") + key + "]", "<secret contents redacted>", why));
      }
    };
    if (type == "kubernetes.io/service-account-token") {
      if (str(at(obj, {"metadata", "annotations", "kubernetes.io/service-account.name"})).empty())
        errors.push_back(api::field_required("metadata.annotations[kubernetes.io/service-account.name]"));
    } else if (type == "kubernetes.io/dockercfg") {
      if (!has_key(data, ".dockercfg")) errors.push_back(api::field_required("data[.dockercfg]"));
      else check_json(".dockercfg");
    } else if (type == "kubernetes.io/dockerconfigjson") {
      if (!has_key(data, ".dockerconfigjson")) errors.push_back(api::field_required("data[.dockerconfigjson]"));
      else check_json(".dockerconfigjson");
    } else if (type == "kubernetes.io/basic-auth") {
      if (!has_key(data, "username") && !has_key(data, "password")) {
        errors.push_back(api::field_required("data[username]"));
        errors.push_back(api::field_required("data[password]"));
      }
    } else if (type == "kubernetes.io/ssh-auth") {
      if (decoded("ssh-privatekey").empty()) errors.push_back(api::field_required("data[ssh-privatekey]"));
    } else if (type == "kubernetes.io/tls") {
      if (!has_key(data, "tls.crt")) errors.push_back(api::field_required("data[tls.crt]"));
      if (!has_key(data, "tls.key")) errors.push_back(api::field_required("data[tls.key]"));
    }
  }

  // ValidateSecretUpdate: the type is fixed; an immutable secret keeps its data.
  void validate_update(const json& obj, const json& old, std::vector<api::Cause>& errors) const override {
    if (at(obj, {"type"}) != at(old, {"type"}))
      errors.push_back(api::field_invalid("type", at(obj, {"type"}), "field is immutable"));
    const json& was_immutable = at(old, {"immutable"});
    if (was_immutable.is_boolean() && was_immutable.get<bool>()) {
      const json& now = at(obj, {"immutable"});
      if (!now.is_boolean() || !now.get<bool>())
        errors.push_back(api::field_forbidden("immutable", "field is immutable when `immutable` is set"));
      const json& a = at(obj, {"data"});
      const json& b = at(old, {"data"});
      bool a_empty = !a.is_object() || a.empty(), b_empty = !b.is_object() || b.empty();
      if (!(a_empty && b_empty) && a != b)
        errors.push_back(api::field_forbidden("data", "field is immutable when `immutable` is set"));
    }
    validate(obj, errors);
  }

  std::optional<std::string> field_value(const json& obj, const std::string& field) const override {
    if (field == "type") return str(at(obj, {"type"}));
    return std::nullopt;
  }

  std::vector<Column> columns() const override {
    auto def = Strategy::columns();  // Name, Age
    return {def[0],
            {"Type", "string", "", "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types", 0},
            {"Data", "string", "", "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4", 0},
            def[1]};
  }

  json cells(const json& obj) const override {
    const json& data = at(obj, {"data"});
    std::int64_t n = data.is_object() ? static_cast<std::int64_t>(data.size()) : 0;
    return json::array({at(obj, {"metadata", "name"}), str(at(obj, {"type"})), n, age(obj)});
  }

 private:
  KindInfo info_;
};

}  // namespace

std::unique_ptr<Strategy> make_secret_strategy() { return std::make_unique<SecretStrategy>(); }

}  // namespace berth::apiserver
