// What differs per kind, as the narrow hooks of Kubernetes' per-kind strategy.go files.
// Create, update, patch, delete, list and watch are written once (apiserver/api.cpp);
// a kind is one Strategy subclass and one line in kinds/registry.cpp.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "api/object.h"
#include "api/status.h"
#include "api/validation.h"

namespace berth::apiserver {

using nlohmann::json;

// A Table column (meta.k8s.io/v1 TableColumnDefinition). priority 1 columns show with -o wide.
struct Column {
  std::string name;
  std::string type = "string";
  std::string format;
  std::string description;
  int priority = 0;
};

// A subresource as discovery describes it: what it answers and which verbs it takes.
struct Subresource {
  std::string name;  // "status", "scale", "log", "exec", "binding", "eviction"
  std::string group, version, kind;  // the response kind, e.g. autoscaling/v1 Scale
  std::vector<std::string> verbs;
};

struct KindInfo {
  std::string group;  // "" for the core group
  std::string kind;   // "Deployment"
  std::string plural;
  std::string singular;
  bool namespaced = true;
  std::vector<std::string> versions;  // served versions, preferred first
  std::string storage_version;        // the version objects are kept in
  std::string storage_prefix;         // "/registry/pods"; two kinds may share one (events)
  std::vector<std::string> short_names;
  std::vector<std::string> categories;
  std::vector<Subresource> subresources;
  bool has_status = false;                // the main resource ignores status, /status ignores the rest
  bool allow_create_on_update = false;
  bool allow_unconditional_update = true;
  bool return_deleted_object = false;  // DELETE answers the object rather than a Success Status
  bool tracks_generation = false;      // metadata.generation counts spec changes
  std::string default_propagation = "Background";  // when DeleteOptions name none
  // metadata.name rules: DNS-1123 subdomain for most kinds; labels for namespaces, services.
  api::NameRule name_rule = api::NameRule::DNS1123Subdomain;
  // Verbs advertised in discovery.
  std::vector<std::string> verbs = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"};
};

class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual const KindInfo& info() const = 0;

  // Conversion between the stored object and a served version. The default only rewrites
  // apiVersion; multi-version kinds (autoscaling v1/v2, events) convert fields.
  virtual json to_version(json stored, const std::string& version) const;
  virtual api::Result<json> from_version(json external, const std::string& version) const;
  // Whether to_version(stored, version) only sets apiVersion and kind, as the default does at
  // the storage version: then the stored bytes can be served without parsing them. A kind that
  // overrides to_version overrides this too.
  virtual bool serves_stored_form(const std::string& version) const { return version == info().storage_version; }

  // Kubernetes' defaulting, applied to every object written.
  virtual void apply_defaults(json& obj) const {}
  // PrepareForCreate: e.g. drop a client-sent status.
  virtual void prepare_for_create(json& obj) const;
  // Whether prepare_for_create applies the defaults itself (a pod's does, after its admission
  // steps and before computing its QoS class), so the create path need not apply them again.
  virtual bool defaults_in_prepare_for_create() const { return false; }
  // PrepareForUpdate: e.g. keep the old status on the main resource.
  virtual void prepare_for_update(json& obj, const json& old) const {}
  virtual void validate(const json& obj, std::vector<api::Cause>& errors) const {}
  virtual void validate_update(const json& obj, const json& old, std::vector<api::Cause>& errors) const {
    validate(obj, errors);
  }
  // Fields spec changes are judged by (metadata.generation moves only when they change).
  // The default is everything but metadata and status.
  virtual bool spec_changed(const json& obj, const json& old) const;

  // Field selector values; nullopt when the field is not selectable for this kind.
  // metadata.name and metadata.namespace are always selectable.
  virtual std::optional<std::string> field_value(const json& obj, const std::string& field) const {
    return std::nullopt;
  }

  // Table printing. The default prints NAME and AGE.
  virtual std::vector<Column> columns() const;
  virtual json cells(const json& obj) const;

  // Graceful deletion: a grace period to wait before the object is removed, or nullopt to
  // delete at once. Only pods have one.
  virtual std::optional<std::int64_t> grace_period(const json& obj, std::optional<std::int64_t> requested) const {
    return std::nullopt;
  }

  // Called on DELETE before anything else: true when the object must stay, marked with a
  // deletionTimestamp, until a controller finishes with it (a namespace with spec.finalizers
  // turns Terminating). May change obj.
  virtual bool prepare_for_delete(json& obj) const { return false; }

  // Admission's verdict on a DELETE of an existing object, checked after its preconditions:
  // NamespaceLifecycle refuses to delete the namespaces the cluster cannot run without.
  virtual api::Status admit_delete(const json& obj) const { return {}; }

  // An update that leaves an object being deleted without metadata.finalizers removes it,
  // unless this says something else still holds it (upstream's ShouldDeleteDuringUpdate): a
  // namespace waits for its spec.finalizers, or the namespace controller's status writes would
  // remove it while its content is still being deleted.
  virtual bool held_by_spec(const json& obj) const { return false; }

  // Values a write takes from cluster-wide pools (a Service's cluster IPs and node ports).
  // claim_pools sees the object after validation, what the client sent (before defaults and
  // allocation), the stored object on an update (null on a create) and the other objects of the
  // kind; it refuses a requested value another object holds, as upstream's allocators do, and
  // picks again one the server chose.
  virtual bool uses_pools() const { return false; }
  virtual api::Status claim_pools(json& obj, const json& sent, const json* old, const std::vector<json>& others) const {
    return {};
  }

  // /scale (autoscaling/v1 Scale) support: the spec.replicas path and the selector text.
  virtual bool has_scale() const { return false; }
};

// Shared pieces for strategies.
std::string age(const json& obj);                 // "5m", "3d2h": the AGE cell
std::string human_duration(std::int64_t seconds);  // Kubernetes' HumanDuration
std::string now_rfc3339();
std::int64_t parse_rfc3339(const std::string& s);  // seconds since epoch, 0 when unparsable
using api::at;  // null json when absent

}  // namespace berth::apiserver
