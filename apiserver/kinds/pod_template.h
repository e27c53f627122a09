// Pod spec defaulting and validation shared by Pods, Deployments and ReplicaSets, as Kubernetes 1.32
// does it (pkg/apis/core/v1/defaults.go, pkg/apis/core/validation/validation.go), over JSON objects.
// Also the small pieces the three kinds share: Go-style value rendering for field errors and the
// container columns of the Table printers. Quantities and selectors are api::Quantity / api::LabelSelector.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/quantity.h"
#include "api/selector.h"
#include "api/status.h"

namespace berth::apiserver::podspec {

using nlohmann::json;

// The decode-time check: every quantity in the pod spec must parse, else the request fails with
// `<Kind> in version "v1" cannot be handled as a <Kind>: <error>` (400), before any validation.
api::Status check_pod_spec_quantities(const json& spec, const std::string& kind);

// ---- defaulting ----

// SetObjectDefaults_Pod's spec part (is_pod) or the PodTemplate part (!is_pod): PodSpec, containers,
// probes, ports, env, volumes, resources (rounded to milli and canonicalized).
void default_pod_spec(json& spec, bool is_pod);
// A PodTemplateSpec inside a Deployment or ReplicaSet: metadata (creationTimestamp: null) and spec.
void default_pod_template(json& tmpl);

// podutil.DropDisabledPodFields / DropDisabledTemplateFields for the feature gates that are off by
// default in 1.32 (PodLevelResources, InPlacePodVerticalScaling, UserNamespacesSupport,
// DynamicResourceAllocation, SupplementalGroupsPolicy, SELinuxChangePolicy, ImageVolume): a field is
// dropped unless the old spec (null on create) already used it.
void drop_disabled_fields(json& spec, const json& old_spec);

// Pod QoS class (qos.ComputePodQOS) from the defaulted spec: "BestEffort", "Burstable", "Guaranteed".
std::string compute_qos_class(const json& spec);

// ---- validation ----

struct PodValidationOptions {
  bool resource_is_pod = false;
};

// ValidatePodSpec under `path` ("spec" or "spec.template.spec").
void validate_pod_spec(const json& spec, const std::string& path, const PodValidationOptions& opts,
                       std::vector<api::Cause>& out);
// ValidatePodTemplateSpec under `path` ("spec.template"): labels, annotations, spec.
void validate_pod_template_spec(const json& tmpl, const std::string& path, std::vector<api::Cause>& out);
// ValidatePodTemplateSpecForReplicaSet: selector vs labels, template, restartPolicy Always,
// no activeDeadlineSeconds. `selector` is the spec.selector JSON (null when absent).
void validate_pod_template_for_replicaset(const json& tmpl, const json& selector, std::int64_t replicas,
                                          const std::string& path, std::vector<api::Cause>& out);
// ValidateTolerations.
void validate_tolerations(const json& tolerations, const std::string& path, std::vector<api::Cause>& out);

// ValidateNonnegativeField.
void validate_nonnegative(const json& v, const std::string& path, std::vector<api::Cause>& out);

// ---- label selectors (api::LabelSelector) ----

// metav1.FormatLabelSelector: "<none>" for an empty selector, "<error>" for an invalid one.
std::string format_label_selector(const json& label_selector);

// ---- Go %#v rendering of the values field errors show ----

std::string go_string_map(const json& m);            // map[string]string{"a":"b"} / map[string]string(nil)
std::string go_label_selector(const json& sel);      // v1.LabelSelector{MatchLabels:..., MatchExpressions:...}
std::string go_int_or_string(const json& v);         // intstr.IntOrString{Type:1, IntVal:0, StrVal:"25%"}

// ---- printing ----

// layoutContainerCells: names and images joined by ",".
std::pair<std::string, std::string> container_cells(const json& containers);

// Swagger descriptions the Table column definitions carry.
inline constexpr const char* kNameDescription =
    "Name must be unique within a namespace. Is required when creating resources, although some resources may "
    "allow a client to request the generation of an appropriate name automatically. Name is primarily intended "
    "for creation idempotence and configuration definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
inline constexpr const char* kAgeDescription =
    "CreationTimestamp is a timestamp representing the server time when this object was created. It is not "
    "guaranteed to be set in happens-before order across separate operations. Clients may not set this value. "
    "It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More "
    "info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

// Small JSON accessors.
std::string str(const json& v);                // the string, or "" when not a string
std::int64_t num(const json& v, std::int64_t fallback = 0);  // the integer, or fallback
bool present(const json& obj, const char* key);  // key there and not null

}  // namespace berth::apiserver::podspec
