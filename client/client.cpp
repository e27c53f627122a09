// The transport-independent half of the client: the JSON conveniences and how a failed answer
// becomes a Status. The HTTPS transport is in https_client.cpp.
#include "client/client.h"

#include <string_view>

namespace berth::client {

using api::Reason;
using api::Status;
using nlohmann::json;

namespace {

Reason reason_for_code(int code) {
  switch (code) {
    case 400: return Reason::BadRequest;
    case 401: return Reason::Unauthorized;
    case 403: return Reason::Forbidden;
    case 404: return Reason::NotFound;
    case 405: return Reason::MethodNotAllowed;
    case 406: return Reason::NotAcceptable;
    case 409: return Reason::Conflict;
    case 410: return Reason::Gone;
    case 413: return Reason::RequestEntityTooLarge;
    case 415: return Reason::UnsupportedMediaType;
    case 422: return Reason::Invalid;
    case 429: return Reason::TooManyRequests;
    case 500: return Reason::InternalError;
    case 503: return Reason::ServiceUnavailable;
    case 504: return Reason::Timeout;
    default: return code >= 500 ? Reason::InternalError : Reason::BadRequest;
  }
}

// The reason a metav1.Status names, when it is one we know and it agrees with the code's class.
bool reason_from_name(std::string_view name, Reason& out) {
  static constexpr Reason kAll[] = {
      Reason::BadRequest,    Reason::Unauthorized,          Reason::Forbidden,
      Reason::NotFound,      Reason::MethodNotAllowed,      Reason::NotAcceptable,
      Reason::AlreadyExists, Reason::Conflict,              Reason::Gone,
      Reason::Expired,       Reason::RequestEntityTooLarge, Reason::UnsupportedMediaType,
      Reason::Invalid,       Reason::TooManyRequests,       Reason::InternalError,
      Reason::ServiceUnavailable, Reason::Timeout};
  for (Reason r : kAll) {
    if (name == api::reason_name(r)) {
      out = r;
      return true;
    }
  }
  return false;
}

std::string string_field(const json& obj, const char* name) {
  auto it = obj.find(name);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Serializes a request body; invalid UTF-8 in a string is the caller's error, not an exception.
api::Result<std::string> dump(const json& obj) {
  try {
    return obj.dump();
  } catch (const json::exception& e) {
    return Status(Reason::BadRequest, std::string("cannot serialize request body: ") + e.what());
  }
}

// A 2xx answer's JSON body (null for an empty one); any other answer's Status.
api::Result<json> json_answer(api::Result<Response> r) {
  if (!r) return r.take_status();
  if (r->status < 200 || r->status >= 300) return status_from(*r);
  if (r->body.empty()) return json(nullptr);
  json parsed = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded())
    return Status(Reason::InternalError, "the server answered " + std::to_string(r->status) + " with a body that is not JSON");
  return parsed;
}

// Retry-After in seconds (the HTTP-date form is not used by API servers); 0 when absent.
int retry_after(const Response& response) {
  for (const auto& [name, value] : response.headers) {
    if (name != "retry-after") continue;
    int n = 0;
    for (char c : value) {
      if (c < '0' || c > '9' || n > 86400) return 0;
      n = n * 10 + (c - '0');
    }
    return n;
  }
  return 0;
}

}  // namespace

Status status_from(const Response& response) {
  const int code = response.status;
  Reason reason = code >= 200 && code < 300 ? Reason::Ok : reason_for_code(code);
  json body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object() || (body.contains("kind") && body["kind"] != "Status")) {
    if (reason == Reason::Ok) return {};
    std::string message = "the server responded with status " + std::to_string(code);
    // A short text body (a proxy's or our server's own plain answer) says more than the code.
    if (!response.body.empty() && response.body.size() < 512 && !body.is_object())
      message += ": " + response.body;
    Status status(reason, message);
    status.retry_after_seconds = retry_after(response);
    return status;
  }
  std::string status_field = string_field(body, "status");
  if (status_field == "Success" || (reason == Reason::Ok && status_field != "Failure")) return {};

  Reason named;
  if (reason_from_name(string_field(body, "reason"), named) &&
      (reason == Reason::Ok || api::http_code(named) / 100 == code / 100))
    reason = named;
  if (reason == Reason::Ok) reason = Reason::InternalError;  // a 2xx "Failure": trust the body
  std::string message = string_field(body, "message");
  if (message.empty()) message = "the server responded with status " + std::to_string(code);
  Status status(reason, std::move(message));

  auto details = body.find("details");
  if (details != body.end() && details->is_object()) {
    status.with_details(string_field(*details, "kind"), string_field(*details, "name"),
                        string_field(*details, "group"));
    auto causes = details->find("causes");
    if (causes != details->end() && causes->is_array()) {
      for (const auto& c : *causes) {
        if (!c.is_object()) continue;
        status.with_cause({string_field(c, "reason"), string_field(c, "message"), string_field(c, "field")});
      }
    }
    auto retry = details->find("retryAfterSeconds");
    if (retry != details->end() && retry->is_number_integer()) status.retry_after_seconds = retry->get<int>();
  }
  if (status.retry_after_seconds == 0) status.retry_after_seconds = retry_after(response);
  return status;
}

api::Result<json> Client::get(const std::string& path) { return json_answer(request("GET", path)); }

api::Result<json> Client::create(const std::string& path, const json& obj) {
  auto body = dump(obj);
  if (!body) return body.take_status();
  return json_answer(request("POST", path, *body));
}

api::Result<json> Client::update(const std::string& path, const json& obj) {
  auto body = dump(obj);
  if (!body) return body.take_status();
  return json_answer(request("PUT", path, *body));
}

api::Result<json> Client::patch(const std::string& path, const json& patch, const std::string& content_type) {
  auto body = dump(patch);
  if (!body) return body.take_status();
  return json_answer(request("PATCH", path, *body, content_type));
}

api::Result<json> Client::remove(const std::string& path, const json& options) {
  if (options.is_null()) return json_answer(request("DELETE", path));
  auto body = dump(options);
  if (!body) return body.take_status();
  return json_answer(request("DELETE", path, *body));
}

api::Result<Upgraded> Client::upgrade(const std::string& method, const std::string& path,
                                      const std::vector<std::pair<std::string, std::string>>&) {
  return api::Status(api::Reason::MethodNotAllowed, method + " " + path + ": this client cannot upgrade connections");
}

}  // namespace berth::client
