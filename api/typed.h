// Typed decoding: what Kubernetes' JSON decoding into Go structs refuses and rewrites, applied to
// our JSON objects so the store never holds a value a Go client could not read back.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "api/schema.h"

namespace berth::api {

// Checks obj against the kind's schema as encoding/json does when it decodes into the Go type:
// a value of the wrong JSON type is an error worded as Go words it ("json: cannot unmarshal
// string into Go struct field DeploymentSpec.spec.replicas of type int32"), and so is a
// timestamp that does not parse. Timestamps are rewritten in place in the form Go marshals them
// (UTC; whole seconds for Time, microseconds for MicroTime). Fields the schema does not know are
// left alone (strict field validation reports them). Returns the error, or "" when obj decodes.
enum class TypedMode {
  Json,          // a request body or a JSON/merge-patched object (encoding/json's words)
  Unstructured,  // a strategic-merge-patched object (the unstructured converter's words)
};
std::string typed_decode(const GroupVersionKind& gvk, nlohmann::json& obj, TypedMode mode = TypedMode::Json);

// A JSON value as Go's fmt prints a map[string]interface{} with %+v: map[a:1 b:[x y]].
std::string go_print(const nlohmann::json& v);

// RFC 3339 timestamps as metav1.Time and metav1.MicroTime parse and print them.
// On success returns true and sets out to the canonical form; otherwise sets error to Go's
// time.Parse message ("parsing time \"x\" as \"2006-01-02T15:04:05Z07:00\": cannot parse ...").
bool canonical_time(const std::string& value, bool micro, std::string& out, std::string& error);

}  // namespace berth::api
