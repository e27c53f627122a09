// The non-workload kinds: core/v1 Namespace, Node, Event, ConfigMap, Secret and Service,
// events.k8s.io/v1 Event (the same stored objects as core/v1 events, converted on the way in and
// out), coordination.k8s.io/v1 Lease, and autoscaling HorizontalPodAutoscaler (stored as v2,
// served as v2 and v1). One Strategy per kind, one file per kind (event.cpp holds both events).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/status.h"
#include "apiserver/strategy.h"

namespace berth::apiserver {

std::unique_ptr<Strategy> make_namespace_strategy();
std::unique_ptr<Strategy> make_node_strategy();
std::unique_ptr<Strategy> make_event_strategy();            // core/v1 events
std::unique_ptr<Strategy> make_events_v1_event_strategy();  // events.k8s.io/v1 events
std::unique_ptr<Strategy> make_configmap_strategy();
std::unique_ptr<Strategy> make_secret_strategy();
std::unique_ptr<Strategy> make_service_strategy();
std::unique_ptr<Strategy> make_lease_strategy();
std::unique_ptr<Strategy> make_hpa_strategy();

// Shared by secret.cpp and configmap.cpp (defined in secret.cpp).
namespace kinds_detail {

// Go's base64.StdEncoding as encoding/json applies it to []byte fields: the decoded bytes, or the
// byte offset its CorruptInputError names ("illegal base64 data at input byte N").
struct Base64Decoded {
  bool ok = false;
  std::string bytes;
  std::size_t error_offset = 0;
};
Base64Decoded go_base64_decode(std::string_view in);
std::string base64_encode(std::string_view in);

// A map[string][]byte field (Secret.data, ConfigMap.binaryData) as the JSON decoder reads it:
// values re-encoded canonically; an undecodable value is the 400 upstream's decoder answers,
// `<Kind> in version "v1" cannot be handled as a <Kind>: illegal base64 data at input byte N`.
api::Status normalize_bytes_map(nlohmann::json& map, const std::string& kind, const std::string& field);
// The decoded size of such a map (for the 1 MiB limit).
std::size_t bytes_map_size(const nlohmann::json& map);
// validation.IsConfigMapKey: the rule for Secret and ConfigMap keys, upstream's messages.
std::vector<std::string> config_map_key_errors(const std::string& key);

}  // namespace kinds_detail

}  // namespace berth::apiserver
