// Status: how an error crosses layers as a value. At the HTTP edge it becomes a
// metav1.Status with the same reason and code, so every layer speaks Kubernetes' vocabulary.
#pragma once

#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace berth::api {

// The metav1.StatusReason values Berth produces. Their HTTP codes are fixed by http_code().
enum class Reason {
  Ok,
  BadRequest,             // 400
  Unauthorized,           // 401
  Forbidden,              // 403
  NotFound,               // 404
  MethodNotAllowed,       // 405
  NotAcceptable,          // 406
  AlreadyExists,          // 409
  Conflict,               // 409
  Gone,                   // 410: a watch or list from a revision no longer in history
  Expired,                // 410: a continue token past the compaction window
  RequestEntityTooLarge,  // 413
  UnsupportedMediaType,   // 415
  Invalid,                // 422
  TooManyRequests,        // 429
  InternalError,          // 500
  ServiceUnavailable,     // 503
  Timeout,                // 504
};

// One field-level cause, as in metav1.StatusCause.
struct Cause {
  std::string reason;   // e.g. FieldValueInvalid, FieldValueRequired, FieldValueDuplicate
  std::string message;  // e.g. "Invalid value: -1: must be greater than or equal to 0"
  std::string field;    // e.g. "spec.replicas"
};

class Status {
 public:
  Status() = default;
  Status(Reason reason, std::string message) : reason_(reason), message_(std::move(message)) {}

  static Status ok() { return {}; }
  bool is_ok() const { return reason_ == Reason::Ok; }
  explicit operator bool() const { return is_ok(); }

  Reason reason() const { return reason_; }
  const std::string& message() const { return message_; }
  std::vector<Cause>& causes() { return causes_; }
  const std::vector<Cause>& causes() const { return causes_; }
  Status& with_cause(Cause c) {
    causes_.push_back(std::move(c));
    return *this;
  }
  // metav1.StatusDetails: which object the error is about ("pods", "web", group "apps").
  Status& with_details(std::string kind, std::string name, std::string group = "") {
    details_kind_ = std::move(kind);
    details_name_ = std::move(name);
    details_group_ = std::move(group);
    return *this;
  }
  const std::string& details_kind() const { return details_kind_; }
  const std::string& details_name() const { return details_name_; }
  const std::string& details_group() const { return details_group_; }
  int retry_after_seconds = 0;

 private:
  Reason reason_ = Reason::Ok;
  std::string message_;
  std::vector<Cause> causes_;
  std::string details_kind_, details_name_, details_group_;
};

int http_code(Reason reason);
const char* reason_name(Reason reason);  // "NotFound"; "" for Ok

// Either a value or a non-ok Status.
template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Status status) : v_(std::move(status)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<1>(v_);
  }
  // Moves the error out (an ok Result gives an ok Status).
  Status take_status() { return ok() ? Status() : std::move(std::get<1>(v_)); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace berth::api
