// core/v1 ConfigMap: pkg/registry/core/configmap/strategy.go, ValidateConfigMap and
// ValidateConfigMapUpdate, printConfigMap.
#include "api/validation.h"
#include "apiserver/kinds/other_kinds.h"

namespace berth::apiserver {
namespace {

constexpr std::size_t kMaxConfigMapSize = 1024 * 1024;  // core.MaxSecretSize

class ConfigMapStrategy : public Strategy {
 public:
  ConfigMapStrategy() {
    info_.group = "";
    info_.kind = "ConfigMap";
    info_.plural = "configmaps";
    info_.singular = "configmap";
    info_.namespaced = true;
    info_.versions = {"v1"};
    info_.storage_version = "v1";
    info_.storage_prefix = "/registry/configmaps";
    info_.short_names = {"cm"};
    info_.allow_create_on_update = false;
    info_.allow_unconditional_update = true;
  }

  const KindInfo& info() const override { return info_; }

  // Decoding: binaryData is map[string][]byte, base64 as Go writes it (the types of data and
  // the rest are checked by typed decoding before).
  api::Result<json> from_version(json external, const std::string& version) const override {
    if (external.contains("binaryData")) {
      if (auto s = kinds_detail::normalize_bytes_map(external["binaryData"], "ConfigMap", "binaryData"); !s) return s;
      if (external["binaryData"].is_null()) external.erase("binaryData");
    }
    return Strategy::from_version(std::move(external), version);
  }

  void validate(const json& obj, std::vector<api::Cause>& errors) const override {
    std::size_t total = 0;
    const json& data = at(obj, {"data"});
    const json& binary = at(obj, {"binaryData"});
    if (data.is_object()) {
      for (const auto& [key, v] : data.items()) {
        for (const auto& msg : kinds_detail::config_map_key_errors(key))
          errors.push_back(api::field_invalid("data[" + key + "]", key, msg));
        if (binary.is_object() && binary.contains(key))
          errors.push_back(api::field_invalid("data[" + key + "]", key, "duplicate of key present in binaryData"));
        if (v.is_string()) total += v.get<std::string>().size();
      }
    }
    if (binary.is_object()) {
      for (const auto& [key, v] : binary.items())
        for (const auto& msg : kinds_detail::config_map_key_errors(key))
          errors.push_back(api::field_invalid("binaryData[" + key + "]", key, msg));
      total += kinds_detail::bytes_map_size(binary);
    }
    // Upstream reports the size at the empty path: the whole object.
    if (total > kMaxConfigMapSize) errors.push_back(api::field_too_long("", kMaxConfigMapSize));
  }

  // ValidateConfigMapUpdate: an immutable config map keeps its data.
  void validate_update(const json& obj, const json& old, std::vector<api::Cause>& errors) const override {
    const json& was_immutable = at(old, {"immutable"});
    if (was_immutable.is_boolean() && was_immutable.get<bool>()) {
      const json& now = at(obj, {"immutable"});
      if (!now.is_boolean() || !now.get<bool>())
        errors.push_back(api::field_forbidden("immutable", "field is immutable when `immutable` is set"));
      for (const char* f : {"data", "binaryData"}) {
        const json& a = at(obj, {f});
        const json& b = at(old, {f});
        bool a_empty = !a.is_object() || a.empty(), b_empty = !b.is_object() || b.empty();
        if (!(a_empty && b_empty) && a != b)
          errors.push_back(api::field_forbidden(f, "field is immutable when `immutable` is set"));
      }
    }
    validate(obj, errors);
  }

  std::vector<Column> columns() const override {
    auto def = Strategy::columns();  // Name, Age
    return {def[0],
            {"Data", "string", "", "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.", 0},
            def[1]};
  }

  json cells(const json& obj) const override {
    const json& data = at(obj, {"data"});
    const json& binary = at(obj, {"binaryData"});
    std::int64_t n = (data.is_object() ? static_cast<std::int64_t>(data.size()) : 0) +
                     (binary.is_object() ? static_cast<std::int64_t>(binary.size()) : 0);
    return json::array({at(obj, {"metadata", "name"}), n, age(obj)});
  }

 private:
  KindInfo info_;
};

}  // namespace

std::unique_ptr<Strategy> make_configmap_strategy() { return std::make_unique<ConfigMapStrategy>(); }

}  // namespace berth::apiserver
