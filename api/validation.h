// Validation: Kubernetes' name rules and ObjectMeta checks, worded exactly as the apiserver words them
// (k8s.io/apimachinery util/validation, util/validation/field, api/validation), so kubectl prints the same text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/status.h"

namespace berth::api {

// ---- Go-compatible rendering (what field.Error and encoding/json print) ----

// strconv.Quote: "a\"b\n" with Go's escapes; non-printable runes as \u / \U, invalid UTF-8 bytes as \x.
std::string go_quote(std::string_view s);
// strconv.FormatFloat(f, 'g', -1, bits), which is also fmt's %v: the shortest digits that round-trip at
// that width (bits 32 or 64), in exponent form ("1e+08") when the exponent is < -4 or >= 6.
std::string go_format_float(double f, int bits = 64);
// A JSON value as field.Error renders BadValue: strings %q, numbers/bools %v, null "null", others %#v-like.
std::string go_value(const nlohmann::json& v);
// %#v of a []string: []string{"a", "b"}; nil_if_empty renders an empty list as []string(nil).
std::string go_string_slice(const std::vector<std::string>& v, bool nil_if_empty = false);

// ---- name rules (util/validation/validation.go); each returns the list of problems, empty when valid ----

std::vector<std::string> is_dns1123_subdomain(std::string_view value);  // max 253
std::vector<std::string> is_dns1123_label(std::string_view value);      // max 63
std::vector<std::string> is_dns1035_label(std::string_view value);      // max 63, starts with a letter
std::vector<std::string> is_qualified_name(std::string_view value);     // label/annotation keys: [prefix/]name
std::vector<std::string> is_valid_label_value(std::string_view value);  // "" or qualified-name-like, max 63
// apimachinery/pkg/api/validation/path: names used as URL path segments (generic stores, CRDs).
std::vector<std::string> is_valid_path_segment_name(std::string_view value);
std::vector<std::string> is_valid_path_segment_prefix(std::string_view value);

// Which ValidateNameFunc a kind uses for metadata.name / generateName.
enum class NameRule {
  DNS1123Subdomain,  // most kinds (pods, deployments, configmaps, ...)
  DNS1123Label,      // namespaces
  DNS1035Label,      // services
  PathSegment,       // custom resources and the generic registry check
};
// ValidateNameFunc(name, prefix): prefix=true for generateName, where a trailing '-' is allowed.
std::vector<std::string> validate_name(std::string_view name, NameRule rule, bool prefix);

// ---- field errors (util/validation/field/errors.go) ----
// Cause.reason is the field.ErrorType ("FieldValueInvalid"), Cause.message is ErrorBody() (no field),
// Cause.field is the path string, exactly as metav1.StatusCause carries them.

Cause field_required(std::string field, std::string_view detail = {});
Cause field_invalid(std::string field, const nlohmann::json& value, std::string_view detail);
// Invalid with a value already rendered Go-style (for Go-typed values such as []string{...}).
Cause field_invalid_rendered(std::string field, std::string_view rendered_value, std::string_view detail);
Cause field_forbidden(std::string field, std::string_view detail);
Cause field_too_long(std::string field, int64_t max_length);  // "may not be more than N bytes"
Cause field_not_supported(std::string field, const nlohmann::json& value,
                          const std::vector<std::string>& valid_values);
Cause field_duplicate(std::string field, const nlohmann::json& value);
Cause field_type_invalid(std::string field, const nlohmann::json& value, std::string_view detail);

// "field: message" as field.Error.Error() prints one cause.
std::string cause_string(const Cause& c);
// field.ErrorList.ToAggregate().Error(): duplicates dropped, one error bare, several as "[a, b]". "" if none.
std::string aggregate_message(const std::vector<Cause>& causes);

// The 422 that NewInvalid builds: message `<Kind>[.<group>] "<name>" is invalid: <aggregate>`.
// kubectl rewrites it from details into `The <Kind> "<name>" is invalid: ...`; details.kind/name/causes
// are carried by the HTTP edge (Status keeps the causes; kind/name are the caller's).
std::string invalid_message(std::string_view group, std::string_view kind, std::string_view name,
                            const std::vector<Cause>& causes);
Status invalid_status(std::string_view group, std::string_view kind, std::string_view name,
                      std::vector<Cause> causes);

// ---- ObjectMeta (apimachinery/pkg/api/validation/objectmeta.go) ----

inline constexpr int64_t kTotalAnnotationSizeLimit = 256 * 1024;  // TotalAnnotationSizeLimitB

// Sum of key and value lengths; empty string when within 256 KiB, else upstream's
// "annotations size N is larger than limit 262144".
std::string validate_annotations_size(const nlohmann::json& annotations);

// Each appends causes under `path` (e.g. "metadata.labels"): upstream reports label and annotation
// problems at the map's path, not per key.
void validate_labels(const nlohmann::json& labels, const std::string& path, std::vector<Cause>& out);
void validate_annotations(const nlohmann::json& annotations, const std::string& path, std::vector<Cause>& out);
void validate_owner_references(const nlohmann::json& refs, const std::string& path, std::vector<Cause>& out);
void validate_finalizers(const nlohmann::json& finalizers, const std::string& path, std::vector<Cause>& out);

// ValidateObjectMetaAccessor on create: name or generateName (by `rule`), namespace required when
// `namespaced` (a DNS label) and forbidden otherwise, generation >= 0, labels, annotations,
// ownerReferences, finalizers. Field paths are under "metadata.". managedFields are not checked.
void validate_object_meta(const nlohmann::json& meta, bool namespaced, NameRule rule, std::vector<Cause>& out);

}  // namespace berth::api
