// Turning api::Status values into metav1.Status answers at the HTTP edge.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "api/status.h"
#include "net/http.h"

namespace berth::apiserver {

nlohmann::json status_json(const api::Status& status);
net::Response status_response(const api::Status& status);
// The body kubectl prints as "Error from server (<reason>): <message>".
net::Response error_response(api::Reason reason, const std::string& message);
// A reason chosen from an HTTP code, for errors raised below the API layer (the listener).
api::Reason reason_for_code(int code);

// Kubernetes' messages for the common cases, with details filled as its registry does.
// resource is the plural ("pods"), group "" for core.
api::Status not_found(const std::string& group, const std::string& resource, const std::string& name);
api::Status already_exists(const std::string& group, const std::string& resource, const std::string& name);
api::Status conflict(const std::string& group, const std::string& resource, const std::string& name,
                     const std::string& why);
// 422 with causes; message "<Kind> \"<name>\" is invalid: <causes>".
api::Status invalid(const std::string& group, const std::string& kind, const std::string& name,
                    std::vector<api::Cause> causes);
api::Status bad_request(const std::string& message);

}  // namespace berth::apiserver
