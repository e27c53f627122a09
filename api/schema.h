// Schema: the field structure of the built-in kinds (Kubernetes 1.32), loaded once from the
// embedded api/schema/types.json. Strict field validation, strategic-merge keys, OpenAPI
// documents, `kubectl explain` and protobuf decoding all read this one source.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/patch.h"

namespace berth::api {

struct GroupVersionKind {
  std::string group;  // "" for the core group
  std::string version;
  std::string kind;
  bool operator==(const GroupVersionKind&) const = default;
};

// How a strategic merge patch treats one field: the patch module's PatchMeta.
using SchemaPatchMeta = PatchMeta;

struct TypeDef;

// The shape of one field value: a primitive, a list of, a string-keyed map of, or a named type.
struct TypeShape {
  enum class Kind { Primitive, Named, List, Map };
  Kind kind = Kind::Primitive;
  std::string primitive;               // "string", "bool", "int32", "int64", "double", "bytes"
  const TypeDef* named = nullptr;      // Kind::Named
  std::shared_ptr<TypeShape> element;  // List and Map
};

struct FieldDef {
  std::string name;  // JSON name; empty when the type is inlined into its parent
  TypeShape shape;
  int proto = 0;     // protobuf field number; 0 when not in protobuf (apiVersion, kind)
  bool omitempty = false;
  bool pointer = false;
  bool required = false;
  std::string patch_strategy, merge_key;
  std::string list_type, map_type;
  std::vector<std::string> list_map_keys;
  std::string description;
};

// A named type: a struct with fields, or one of the custom scalars
// (time, microtime, duration, quantity, intstr, raw, fieldsv1).
struct TypeDef {
  std::string id;          // "core/v1.Container"
  std::string definition;  // "io.k8s.api.core.v1.Container", the OpenAPI schema name
  std::string scalar;      // non-empty for custom scalars
  std::string map_type;    // x-kubernetes-map-type ("atomic") when set
  std::string description;
  std::vector<FieldDef> fields;  // declared fields, inlined types as one field with an empty name

  // A JSON member of this type, looking through inlined types; nullptr when unknown.
  const FieldDef* json_field(std::string_view name) const;
  // The declared field with this protobuf number; nullptr when unknown.
  const FieldDef* proto_field(int number) const;
  // Every JSON member, inlined ones included, in declaration order.
  const std::vector<const FieldDef*>& json_fields() const { return flat_; }

  // Filled by the loader.
  std::vector<const FieldDef*> flat_;
  std::map<std::string, const FieldDef*, std::less<>> by_json_;
  std::vector<const FieldDef*> by_proto_;
};

struct KindInfo {
  std::string group, version, kind;
  std::string plural;  // empty for kinds that are not resources of their own (Scale, Status, lists)
  bool namespaced = false;
  const TypeDef* type = nullptr;
  std::string list_kind;                                  // "DeploymentList", for resources
  std::map<std::string, const TypeDef*> subresources;     // "status", "scale" -> body type
  std::vector<std::string> verbs, short_names, categories;

  std::string api_version() const { return group.empty() ? version : group + "/" + version; }
  GroupVersionKind gvk() const { return {group, version, kind}; }
};

class Schema {
 public:
  // The schema compiled into the binary; parsed on first use, thread-safe.
  static const Schema& get();
  // A schema from other text (tests). Throws on malformed text.
  static std::unique_ptr<Schema> parse(std::string_view text);

  const std::vector<KindInfo>& kinds() const { return kinds_; }
  // By group/version/kind. Kinds of meta/v1 (Status, DeleteOptions) are found in every group-version.
  const KindInfo* find_kind(std::string_view group, std::string_view version, std::string_view kind) const;
  const KindInfo* find_kind(const GroupVersionKind& gvk) const {
    return find_kind(gvk.group, gvk.version, gvk.kind);
  }
  // By group/version/plural resource name ("deployments").
  const KindInfo* find_resource(std::string_view group, std::string_view version, std::string_view plural) const;
  const TypeDef* find_type(std::string_view id) const;
  // Group-versions that serve resources, as "v1", "apps/v1", ... in a stable order.
  std::vector<std::string> group_versions() const;

  // Strategic merge metadata of the field at a dotted path with list indices omitted
  // ("spec.template.spec.containers.ports"). Unknown paths give empty metadata.
  SchemaPatchMeta patch_meta(const GroupVersionKind& gvk, std::string_view path) const;
  // What Go serializes a zero object of the kind to: {"metadata":{"creationTimestamp":null},...}.
  // managedFields of a create are computed against it, as Kubernetes does.
  const nlohmann::json& zero_object(const GroupVersionKind& gvk) const;
  // The field at such a path; nullptr when the path leaves the schema (or ends in a map key).
  const FieldDef* field_at(const GroupVersionKind& gvk, std::string_view path) const;

  // Fields the kind's schema does not declare, as Kubernetes' strict decoding names them:
  // "spec.template.spec.containers[0].foo". Order follows the (sorted) JSON object.
  std::vector<std::string> unknown_fields(const GroupVersionKind& gvk, const nlohmann::json& obj) const;

  // Strict decoding errors of a JSON document in document order, each as Kubernetes words it:
  // `unknown field "spec.foo"`, `duplicate field "metadata.name"`. At most 100, deduplicated.
  // A body that is not valid JSON gives no strict errors (the JSON parser reports those).
  std::vector<std::string> strict_field_errors(const GroupVersionKind& gvk, std::string_view json_text) const;

  // OpenAPI v3 discovery root: {"paths":{"apis/apps/v1":{"serverRelativeURL":"/openapi/v3/apis/apps/v1?hash=..."}}}.
  // `hash` maps "apis/apps/v1" to the content hash; by default a hash of the generated document.
  nlohmann::json openapi_v3_root(const std::function<std::string(const std::string& path)>& hash = {}) const;
  // The OpenAPI v3 document of one group-version ("" and "v1" for the core group); null if unknown.
  nlohmann::json openapi_v3_group_version(std::string_view group, std::string_view version) const;
  // Swagger 2.0 for every group-version.
  nlohmann::json openapi_v2() const;
  // The hash openapi_v3_root uses by default for a group-version document.
  static std::string document_hash(const nlohmann::json& doc);

  Schema(const Schema&) = delete;
  Schema& operator=(const Schema&) = delete;
  ~Schema();

 private:
  Schema() = default;
  void load(std::string_view text);
  nlohmann::json build_v3(std::string_view group, std::string_view version) const;

  std::map<std::string, std::unique_ptr<TypeDef>, std::less<>> types_;
  std::vector<KindInfo> kinds_;
  std::map<std::string, std::string> packages_;
  mutable std::mutex cache_mu_;
  mutable std::map<std::string, nlohmann::json> v3_cache_;  // generated documents by "group/version"
  mutable std::map<std::string, nlohmann::json> zero_cache_;  // zero objects by "group/version/kind"
};

// Conveniences over Schema::get().
SchemaPatchMeta patch_meta(const GroupVersionKind& gvk, const std::string& path);
// The lookup apply_strategic_merge_patch takes, for objects of this kind.
PatchMetaLookup patch_meta_lookup(const GroupVersionKind& gvk);
std::vector<std::string> unknown_fields(const GroupVersionKind& gvk, const nlohmann::json& obj);
nlohmann::json openapi_v3_root(const std::function<std::string(const std::string& path)>& hash = {});
nlohmann::json openapi_v3_group_version(const std::string& group, const std::string& version);
nlohmann::json openapi_v2();

}  // namespace berth::api
