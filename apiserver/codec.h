// Request and storage encodings: body decoding by media type, field validation modes,
// the stored form of objects, DeleteOptions, managedFields bookkeeping.
#pragma once

#include <functional>

#include <optional>
#include <string>
#include <vector>

#include "api/decode.h"
#include "api/patch.h"
#include "api/status.h"
#include "api/validation.h"
#include "apiserver/request.h"
#include "net/http.h"

namespace berth::store {
struct Object;
}

namespace berth::apiserver {

using api::Decoded;

// The body as JSON, whatever the media type (JSON, YAML, Kubernetes protobuf).
api::Result<Decoded> decode_request_body(const net::Request& request, std::size_t max_nesting);
// A patch document (JSON; YAML accepted as Kubernetes does for apply patches).
api::Result<nlohmann::json> decode_patch_body(const net::Request& request, std::size_t max_nesting);

// Objects are stored as compact JSON without resourceVersion, which the store's revision supplies.
std::string encode_stored(const nlohmann::json& obj);
// Where the text encode_stored writes takes metadata.resourceVersion, among metadata's sorted
// keys: at `at`, after a comma when members come before it, followed by one when members come
// only after it. Found while writing, so that a write's answer needs no scan of the text.
struct RvSlot {
  std::size_t at = std::string::npos;  // npos: no slot (see encode_stored below)
  bool comma_before = false, comma_after = false;
};
// As above, and the slot when the object's apiVersion and kind are `api_version` and `kind`
// and its metadata is an object.
std::string encode_stored(const nlohmann::json& obj, std::string_view api_version, std::string_view kind,
                          RvSlot& slot);
// Appends the stored text with resourceVersion rv at its slot; false (out unchanged) without one.
bool splice_at_slot(std::string_view stored, const RvSlot& slot, std::string_view rv, std::string& out);
api::Result<nlohmann::json> decode_stored(const store::Object& object);
// Appends to `out` the stored bytes with metadata.resourceVersion = rv, and without apiVersion
// and kind when drop_type_meta (list items): byte for byte what parsing them, setting those
// and dumping would give, without the parse. The stored apiVersion and kind must be
// `api_version` and `kind` (what to_version would set). False, with `out` unchanged, when the
// members up to metadata are not in the form encode_stored writes or do not match; the caller
// then parses. What follows metadata (spec, status) is copied unscanned: the bytes must be
// ones encode_stored wrote, as everything in the store is.
bool splice_stored(std::string_view stored, std::string_view rv, std::string_view api_version, std::string_view kind,
                   bool drop_type_meta, std::string& out);

// apiVersion/kind in a body must name the URL's kind; absent ones are filled in.
api::Status check_type_meta(const ResourceRequest& rr, nlohmann::json& obj);
// fieldValidation=Strict|Warn|Ignore over unknown fields of obj and the decoder's strict errors
// (duplicate fields).
api::Status validate_fields(const ResourceRequest& rr, const nlohmann::json& obj,
                            const std::vector<std::string>& strict_errors, std::vector<std::string>& warnings);
// The patched object of a JSON, merge or strategic merge patch: its strict field errors are a 422
// on the field "patch" showing shown() (the object, or the strategic patch), as Kubernetes words it.
api::Status validate_patched_fields(const ResourceRequest& rr, const nlohmann::json& patched,
                                    const std::function<std::string()>& shown, std::vector<std::string>& warnings);
// Go's typed decoding of a body (api/typed.h): a value of the wrong type is a 400, timestamps
// take their canonical form.
api::Status check_types(const ResourceRequest& rr, nlohmann::json& obj);
// The same over a patched object: a 422 on the field "patch", as Kubernetes answers.
api::Status check_patched_types(const ResourceRequest& rr, nlohmann::json& patched, bool strategic,
                                const std::function<std::string()>& shown);
void add_warnings(net::Response& response, const std::vector<std::string>& warnings);

std::vector<std::string> finalizers_of(const nlohmann::json& obj);
api::PatchMetaLookup patch_meta_lookup(const ResourceRequest& rr);

// managedFields: who last set which fields.
void record_managed_fields(const ResourceRequest& rr, const nlohmann::json& old, nlohmann::json& obj,
                          const std::string& operation);
api::Result<nlohmann::json> server_side_apply(const ResourceRequest& rr, const nlohmann::json& live,
                                              const nlohmann::json& applied, const std::string& manager, bool force);

struct DeleteOptions {
  std::string propagation_policy;  // Orphan, Background, Foreground; empty = the kind's default
  std::string uid;                 // preconditions
  std::string resource_version;
  std::optional<std::int64_t> grace_period_seconds;
};
// From the body (JSON or protobuf DeleteOptions) and the query parameters.
api::Result<DeleteOptions> decode_delete_options(const net::Request& request);

}  // namespace berth::apiserver
