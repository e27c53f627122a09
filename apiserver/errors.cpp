#include "apiserver/errors.h"

#include <nlohmann/json.hpp>

namespace berth::apiserver {

using nlohmann::json;

static std::string qualified(const std::string& group, const std::string& resource) {
  return group.empty() ? resource : resource + "." + group;
}

json status_json(const api::Status& status) {
  json j = {{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", json::object()}};
  if (status.is_ok()) {
    j["status"] = "Success";
    return j;
  }
  j["status"] = "Failure";
  j["message"] = status.message();
  j["reason"] = api::reason_name(status.reason());
  json details = json::object();
  if (!status.details_name().empty()) details["name"] = status.details_name();
  if (!status.details_group().empty()) details["group"] = status.details_group();
  if (!status.details_kind().empty()) details["kind"] = status.details_kind();
  if (!status.causes().empty()) {
    json causes = json::array();
    for (const auto& c : status.causes()) {
      json cause = json::object();
      if (!c.reason.empty()) cause["reason"] = c.reason;
      if (!c.message.empty()) cause["message"] = c.message;
      if (!c.field.empty()) cause["field"] = c.field;
      causes.push_back(std::move(cause));
    }
    details["causes"] = std::move(causes);
  }
  if (status.retry_after_seconds > 0) details["retryAfterSeconds"] = status.retry_after_seconds;
  if (!details.empty()) j["details"] = std::move(details);
  j["code"] = api::http_code(status.reason());
  return j;
}

net::Response status_response(const api::Status& status) {
  net::Response r;
  r.status = status.is_ok() ? 200 : api::http_code(status.reason());
  r.body = status_json(status).dump();
  r.headers.emplace_back("Content-Type", "application/json");
  if (status.retry_after_seconds > 0) r.headers.emplace_back("Retry-After", std::to_string(status.retry_after_seconds));
  return r;
}

net::Response error_response(api::Reason reason, const std::string& message) {
  return status_response(api::Status(reason, message));
}

api::Reason reason_for_code(int code) {
  switch (code) {
    case 400: return api::Reason::BadRequest;
    case 401: return api::Reason::Unauthorized;
    case 403: return api::Reason::Forbidden;
    case 404: return api::Reason::NotFound;
    case 405: return api::Reason::MethodNotAllowed;
    case 406: return api::Reason::NotAcceptable;
    case 409: return api::Reason::Conflict;
    case 410: return api::Reason::Gone;
    case 413: return api::Reason::RequestEntityTooLarge;
    case 415: return api::Reason::UnsupportedMediaType;
    case 422: return api::Reason::Invalid;
    case 429: return api::Reason::TooManyRequests;
    case 503: return api::Reason::ServiceUnavailable;
    case 504: return api::Reason::Timeout;
    default: return code >= 500 ? api::Reason::InternalError : api::Reason::BadRequest;
  }
}

api::Status not_found(const std::string& group, const std::string& resource, const std::string& name) {
  return api::Status(api::Reason::NotFound, qualified(group, resource) + " \"" + name + "\" not found")
      .with_details(resource, name, group);
}

api::Status already_exists(const std::string& group, const std::string& resource, const std::string& name) {
  return api::Status(api::Reason::AlreadyExists, qualified(group, resource) + " \"" + name + "\" already exists")
      .with_details(resource, name, group);
}

api::Status conflict(const std::string& group, const std::string& resource, const std::string& name,
                     const std::string& why) {
  return api::Status(api::Reason::Conflict,
                     "Operation cannot be fulfilled on " + qualified(group, resource) + " \"" + name + "\": " + why)
      .with_details(resource, name, group);
}

api::Status invalid(const std::string& group, const std::string& kind, const std::string& name,
                    std::vector<api::Cause> causes) {
  std::string list;
  for (std::size_t i = 0; i < causes.size(); ++i) {
    if (i) list += ", ";
    list += causes[i].field.empty() ? causes[i].message : causes[i].field + ": " + causes[i].message;
  }
  if (causes.size() > 1) list = "[" + list + "]";
  std::string qualified_kind = group.empty() ? kind : kind + "." + group;
  api::Status s(api::Reason::Invalid, qualified_kind + " \"" + name + "\" is invalid: " + list);
  s.with_details(kind, name, group);
  for (auto& c : causes) s.with_cause(std::move(c));
  return s;
}

api::Status bad_request(const std::string& message) { return api::Status(api::Reason::BadRequest, message); }

}  // namespace berth::apiserver
