// Managed fields: who owns which field of an object (metadata.managedFields) and server-side
// apply, as pure functions over JSON. Behaviour follows Kubernetes 1.32: the field manager chain of
// k8s.io/apimachinery/pkg/util/managedfields/internal over sigs.k8s.io/structured-merge-diff/v4
// (v4.4.2), with schema knowledge supplied through a path lookup so this module stays independent
// of the schema module.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/status.h"

namespace berth::api {

// How the value at a dotted object path (list indices omitted, e.g.
// "spec.template.spec.containers.ports") merges.
//   kind, for a list: "map" (associative, keyed by `keys`), "set" (scalars), "atomic" or ""
//        (atomic). Ignored for objects, so a lookup may answer "atomic" for any non-list field.
//   key_defaults: schema defaults of key fields ({"protocol":"TCP"} for container and service
//        ports), used when an item omits one, as structured-merge-diff does.
//   map_type, for an object: "atomic" (x-kubernetes-map-type / structType atomic, e.g. a
//        Deployment's spec.selector: owned as one leaf), "map" (a map with arbitrary keys whose
//        entries are owned one by one, ".":{} on object-valued entries), "" (a struct: default).
struct ListKeys {
  std::string kind;
  std::vector<std::string> keys;
  nlohmann::json key_defaults;  // null or an object
  std::string map_type;
};
// The answer may be shared (a lookup that remembers its answers hands out the same one), and
// is kept alive by the caller for as long as it uses it; null means no list keys.
using ListKeysLookup = std::function<std::shared_ptr<const ListKeys>(const std::string& path)>;

// One metadata.managedFields entry. `time` is RFC 3339 in UTC ("2024-05-01T10:00:00Z"), empty when
// unset; `fields` is the FieldsV1 object.
struct ManagedEntry {
  std::string manager, operation /* Apply | Update */, api_version, time, subresource;
  nlohmann::json fields = nlohmann::json::object();
};

// The FieldsV1 set of every field obj sets, serialized as Kubernetes does ("f:name", "k:{...}",
// "v:...", with ".":{} where a list item or entry is owned and has owned children). The fields
// Kubernetes never tracks (apiVersion, kind, metadata.name/namespace/uid/resourceVersion/
// generation/creationTimestamp/selfLink/managedFields) are left out, and so is everything at or
// under `excluded_paths` (dotted, e.g. {"status"}: a strategy's reset fields).
nlohmann::json field_set(const nlohmann::json& obj, const ListKeysLookup& lookup,
                         const std::vector<std::string>& excluded_paths = {});

// metadata.managedFields of obj, validated as the API server decodes them: an operation other than
// Apply/Update, an empty apiVersion or a fieldsType other than FieldsV1 is an error (BadRequest).
Result<std::vector<ManagedEntry>> read_managed_fields(const nlohmann::json& obj);
// Sets metadata.managedFields to entries in Kubernetes' order (Apply before Update, then by time,
// manager, apiVersion, subresource); removes the field when entries is empty.
void write_managed_fields(nlohmann::json& obj, std::vector<ManagedEntry> entries);

// A non-apply write (create, update, non-apply patch) by `manager` (the fieldManager, or the
// User-Agent prefix the caller derived; "" becomes "unknown"). old_obj is the stored object, or for
// a create null or the kind's zero object (what Go's New() serializes to: e.g. a Deployment's
// {"metadata":{"creationTimestamp":null},"spec":{"selector":null,"strategy":{},"template":{...}},
// "status":{}}) so that ".":{} markers come out as Kubernetes writes them. Returns new_obj with
// metadata.managedFields recomputed: the manager's Update entry gains the fields it added or
// changed (with time = now when it gained any), other entries lose them and the fields it removed,
// empty entries disappear, Update entries are capped at 10 ("ancient-changes"). managedFields
// sent in new_obj are honoured as upstream does (ignored on a subresource; [] or [{}] resets them,
// which on an existing object leaves it untracked). ignored_paths: the strategy's reset fields.
// new_obj is taken by value: pass it with std::move when the caller is done with it.
Result<nlohmann::json> record_update(const nlohmann::json& old_obj, nlohmann::json new_obj,
                                     const std::string& manager, const std::string& api_version,
                                     const std::string& subresource, const std::string& now_rfc3339,
                                     const ListKeysLookup& lookup,
                                     const std::vector<std::string>& ignored_paths = {});

// What server_side_apply needs beyond the request's body.
struct ApplyOptions {
  std::string kind;         // the kind the URL addresses; "" = live's kind (or unchecked on create)
  std::string subresource;  // "" for the main resource
  std::vector<std::string> ignored_paths;     // the strategy's reset fields, e.g. {"status"}
  nlohmann::json zero_object = nullptr;       // the kind's zero object (see record_update); null = {}
  // When url_name is set, the result is checked against the URL as the patch handler does
  // (namespace defaulted or rejected, name compared). Cluster-scoped: url_namespace "".
  std::string url_name, url_namespace;
};

// Server-side apply of `applied` (the request body, already parsed) by `manager` onto `live`
// (null when the object does not exist). Returns the merged object with metadata.managedFields
// updated; when the apply changes nothing the result is live with only managedFields possibly
// changed. Errors: BadRequest for a body of the wrong type ("invalid object type: /, Kind=") or one
// carrying managedFields; Conflict (409) with FieldManagerConflict causes when a field it changes is
// owned by another manager and force is false; InternalError when a body cannot be typed (an
// associative list item without its key, duplicate keys).
Result<nlohmann::json> server_side_apply(const nlohmann::json& live, const nlohmann::json& applied,
                                         const std::string& manager, bool force,
                                         const std::string& api_version,
                                         const std::string& now_rfc3339,
                                         const ListKeysLookup& lookup,
                                         const ApplyOptions& options = {});

}  // namespace berth::api
