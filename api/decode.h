// Decode: request bodies (JSON and YAML) into nlohmann::json the way the apiserver reads them — Go's
// encoding/json syntax rules and error text, sigs.k8s.io/yaml's scalar rules — with duplicate fields
// reported (not rejected) so the caller can apply fieldValidation (Strict rejects, Warn warns, Ignore drops).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/status.h"

namespace berth::api {

// How plain YAML scalars resolve.
enum class YamlSchema {
  // What Kubernetes 1.32 does (sigs.k8s.io/yaml v1.4 over goyaml.v2, YAML 1.1 flavoured): y/Y/yes/on/
  // true/True/TRUE are true, n/N/no/off/false/... false; ints in decimal, 0x, 0o, 0-octal, with '_';
  // floats; null/Null/NULL/~/empty null; everything else a string.
  Kubernetes,
  // The YAML 1.2 core schema: only true/false (any case form listed by the spec) are bools, yes/on/NO
  // stay strings; ints decimal/0o/0x; floats incl. .inf/.nan. Not what Kubernetes does; for callers that
  // want it explicitly.
  Core12,
};

struct DecodeLimits {
  std::size_t max_body_bytes = 3 * 1024 * 1024;  // the apiserver's default request body limit -> 413
  std::size_t max_depth = 10000;                 // encoding/json's maxNestingDepth (JSON)
  std::size_t max_yaml_depth = 2000;             // yaml-cpp's own recursion limit; also caps alias expansion depth
  std::size_t max_yaml_documents = 1000;         // documents in one YAML body
  std::size_t max_duplicates = 100;              // sigs.k8s.io/json keeps at most 100 strict errors
  YamlSchema yaml_schema = YamlSchema::Kubernetes;
  // YAML alias expansion is bounded by goyaml.v2's rule ("document contains excessive aliasing").
};

struct Decoded {
  nlohmann::json value;  // for duplicate keys the last occurrence wins, as in a non-strict decode
  // Paths of duplicated fields, sigs.k8s.io/json style: "kind", "metadata.labels.app",
  // "spec.containers[0].name". Each path once, at most max_duplicates.
  std::vector<std::string> duplicate_fields;
  // The strict decoding errors upstream would report for those duplicates, to be joined by
  // strict_decoding_message(): JSON gives one `duplicate field "<path>"` per path; YAML gives a single
  // `yaml: unmarshal errors:\n  line N: key "k" already set in map...` (YAMLToJSONStrict's text).
  std::vector<std::string> strict_errors;
};

// apimachinery's IsJSONBuffer: after leading whitespace the body starts with '{'.
bool looks_like_json(std::string_view body);

// One JSON value. Syntax errors are BadRequest with Go's exact text, e.g. `invalid character '}' looking
// for beginning of object key string`, `unexpected end of JSON input`, `invalid character '[' exceeded max
// depth`; a body over max_body_bytes is RequestEntityTooLarge `Request entity too large: limit is N`.
// Numbers follow the apiserver's unstructured decoding: integers that fit int64 stay integers, larger
// ones become doubles. Invalid UTF-8 and lone surrogate escapes become U+FFFD, as in Go.
Result<Decoded> parse_json(std::string_view body, const DecodeLimits& limits = {});

// Every document of a YAML stream, converted to JSON as sigs.k8s.io/yaml does (keys become strings,
// anchors/aliases and merge keys `<<` resolved), skipping empty and null documents. Errors are BadRequest
// worded like goyaml.v2's where the cause is the same (`yaml: line 3: mapping values are not allowed in
// this context`, `yaml: unknown anchor 'x' referenced`). Note the apiserver itself reads only the first
// document of a YAML request body.
Result<std::vector<Decoded>> parse_yaml(std::string_view body, const DecodeLimits& limits = {});

// "strict decoding error: a, b" — runtime.NewStrictDecodingError's text; with fieldValidation=Strict the
// apiserver answers it as 400 BadRequest. Unknown-field errors from schema checks join the same list.
std::string strict_decoding_message(const std::vector<std::string>& strict_errors);

// transformDecodeError for a body that could not be decoded at all: BadRequest
// `the object provided is unrecognized (must be of type <Kind>): <err> (<summary>)`. For JSON bodies the
// error is prefixed `couldn't get version/kind; json parse error: ` as SimpleMetaFactory.Interpret does.
Status unrecognized_body_status(std::string_view kind, const Status& decode_error, std::string_view body,
                                bool json_body);

}  // namespace berth::api
