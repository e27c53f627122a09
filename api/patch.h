// The three PATCH body types Kubernetes accepts, as pure functions from (object, patch) to the patched object.
// They reproduce what a Kubernetes 1.32 API server does with the same bytes, error codes included, so the
// generic patch handler only has to pick the function by Content-Type and then decode/validate the result.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "api/status.h"

namespace berth::api {

// The message Kubernetes puts on a 422 built by errors.NewGenericServerResponse: the apiserver answers a JSON
// patch that fails to apply (and a few strategic merge failures) with this text, dropping the underlying error.
inline constexpr const char* kPatchRejectedMessage =
    "the server rejected our request due to an error in our request";

// handlers.maxJSONPatchOperations: more operations than this get 413 RequestEntityTooLarge.
inline constexpr std::size_t kMaxJsonPatchOperations = 10000;

// application/json-patch+json (RFC 6902) with the quirks of gopkg.in/evanphx/json-patch.v4 v4.12.0, which the
// 1.32 apiserver uses: negative array indices count from the end, "replace" of a missing object key adds it,
// "add" to the root path "" fails. A body that is not a list of operations -> 400 BadRequest; more than
// kMaxJsonPatchOperations -> 413; an operation that does not apply -> 422 Invalid kPatchRejectedMessage.
Result<nlohmann::json> apply_json_patch(const nlohmann::json& doc, const nlohmann::json& patch);
// As above; on failure *detail (if given) receives the json-patch library's error text, e.g.
// `testing value /spec/replicas failed: test failed`, which Kubernetes logs nowhere and never returns.
Result<nlohmann::json> apply_json_patch_detailed(const nlohmann::json& doc, const nlohmann::json& patch,
                                                 std::string* detail);

// application/merge-patch+json (RFC 7386): null deletes, objects merge recursively, everything else replaces.
// A patch that is not an object -> 400 BadRequest with the apiserver's decoding message.
Result<nlohmann::json> apply_merge_patch(const nlohmann::json& doc, const nlohmann::json& patch);

// A field's x-kubernetes-patch-strategy and x-kubernetes-patch-merge-key.
struct PatchMeta {
  std::string strategy;   // "", "merge", "replace", "retainKeys", "merge,retainKeys"
  std::string merge_key;  // e.g. "name" for containers, "containerPort" for ports
};
// Given a field path of the object with list indices omitted, e.g. "spec.template.spec.containers" or
// "spec.template.spec.containers.ports", returns its patch metadata. Unknown paths return {}.
using PatchMetaLookup = std::function<PatchMeta(const std::string& path)>;

// application/strategic-merge-patch+json, as k8s.io/apimachinery/pkg/util/strategicpatch applies it on the
// server (StrategicMergeMapPatch): maps merge, null deletes, lists merge by merge key or union (strategy
// "merge") or are replaced, with the directives $patch, $retainKeys, $setElementOrder/<f> and
// $deleteFromPrimitiveList/<f>. Values taken from the patch are stored without nulls and directive keys, as
// the apiserver's decode into a typed object would leave them. Errors: lists of lists -> 422 Invalid
// kPatchRejectedMessage (as upstream); a strategy the lookup returns that upstream cannot parse -> 500; every
// other fault of the patch -> 400 BadRequest with upstream's message (upstream answers some of these, e.g. an
// unknown "$patch" value or a missing merge key, with a reason-less 500 because they are untyped Go errors).
Result<nlohmann::json> apply_strategic_merge_patch(const nlohmann::json& doc, const nlohmann::json& patch,
                                                   const PatchMetaLookup& meta);
// As above; on failure *detail (if given) receives the underlying error text even when the Status carries
// only kPatchRejectedMessage.
Result<nlohmann::json> apply_strategic_merge_patch_detailed(const nlohmann::json& doc,
                                                            const nlohmann::json& patch,
                                                            const PatchMetaLookup& meta, std::string* detail);

}  // namespace berth::api
