// Selectors: label selectors (the `labelSelector` query string and metav1.LabelSelector objects) and
// field selectors (`fieldSelector`), parsed, matched and printed as k8s.io/apimachinery's labels and
// fields packages do, with the same error text (the apiserver returns it as a 400 BadRequest).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/status.h"

namespace berth::api {

// ---- label selectors ----

enum class LabelOp {
  In,            // key in (a,b)
  NotIn,         // key notin (a,b)
  Equals,        // key=a
  DoubleEquals,  // key==a
  NotEquals,     // key!=a
  Exists,        // key
  DoesNotExist,  // !key
  GreaterThan,   // key>1 (integer compare; not expressible in metav1.LabelSelector)
  LessThan,      // key<1
};

struct LabelRequirement {
  std::string key;
  LabelOp op = LabelOp::Exists;
  std::vector<std::string> values;  // as given (In/NotIn from the parser: sorted, deduplicated)

  // NewRequirement: validates key, values and their count for the operator. Errors are the aggregate
  // field errors upstream prints, e.g. `key: Invalid value: "a/b/c": ...` (BadRequest).
  static Result<LabelRequirement> make(std::string key, LabelOp op, std::vector<std::string> values);

  // `labels` is a metadata.labels object; null or absent means no labels.
  bool matches(const nlohmann::json& labels) const;
  std::string to_string() const;  // "!k", "k", "k=v", "k in (a,b)" (values sorted)
};

class LabelSelector {
 public:
  // Matches everything (an empty selector string, or a LabelSelector with no requirements).
  LabelSelector() = default;
  static LabelSelector everything() { return {}; }
  // Matches nothing: what a null metav1.LabelSelector converts to (LabelSelectorAsSelector).
  static LabelSelector nothing();

  // labels.Parse: the `labelSelector` query parameter. Errors are BadRequest with upstream's message, e.g.
  // `unable to parse requirement: <nil>: Invalid value: "a b": ...` or `found '(', expected: ...`.
  static Result<LabelSelector> parse(std::string_view selector);
  // metav1.LabelSelectorAsSelector over the JSON object: null -> nothing(), {} -> everything().
  // matchExpressions operators: In, NotIn, Exists, DoesNotExist. Errors are BadRequest.
  static Result<LabelSelector> from_json(const nlohmann::json& label_selector);
  // labels.SelectorFromSet over a {"k":"v"} object (no validation; non-string values are skipped).
  static LabelSelector from_set(const nlohmann::json& set);

  bool matches(const nlohmann::json& labels) const;
  bool empty() const { return !nothing_ && reqs_.empty(); }  // no restriction at all
  bool is_nothing() const { return nothing_; }
  // Canonical form: requirements sorted by key, joined by ","; "" for everything() and nothing().
  std::string to_string() const;
  const std::vector<LabelRequirement>& requirements() const { return reqs_; }
  // RequiresExactMatch: the value a selector pins `key` to (=, ==, or in with one value), if any.
  std::optional<std::string> requires_exact_match(std::string_view key) const;

  // Adds requirements, keeping them sorted by key (labels.Selector.Add). No effect on nothing().
  void add(LabelRequirement r);

 private:
  std::vector<LabelRequirement> reqs_;
  bool nothing_ = false;
};

// ValidateLabelSelector (apimachinery/pkg/apis/meta/v1/validation) for objects that carry one, e.g.
// spec.selector: appends causes under `path` (e.g. "spec.selector.matchExpressions[0].values").
void validate_label_selector(const nlohmann::json& label_selector, const std::string& path,
                             std::vector<Cause>& out);

// ---- field selectors ----

struct FieldRequirement {
  std::string field;
  bool equals = true;  // "=" or "==" when true, "!=" when false
  std::string value;   // unescaped
};

class FieldSelector {
 public:
  FieldSelector() = default;  // everything
  static FieldSelector everything() { return {}; }

  // fields.ParseSelector: `k=v`, `k==v`, `k!=v`, comma-separated; values escape `\\`, `\,`, `\=`.
  // Errors are BadRequest, e.g. `invalid selector: 'a'; can't understand 'a'`.
  static Result<FieldSelector> parse(std::string_view selector);

  // `getter` returns a field's value or nullopt when the object lacks it; a missing field reads as ""
  // (fields.Set.Get), so `spec.nodeName=` matches unscheduled pods.
  using Getter = std::function<std::optional<std::string>(const std::string& field)>;
  bool matches(const Getter& getter) const;
  bool empty() const { return reqs_.empty(); }
  std::string to_string() const;  // terms in parse order (sorted), values escaped
  const std::vector<FieldRequirement>& requirements() const { return reqs_; }
  std::vector<std::string> fields() const;  // field names used, in term order, without repeats
  std::optional<std::string> requires_exact_match(std::string_view field) const;

  // The apiserver's field label conversion: the first field (in term order) not in `supported` gives a
  // BadRequest. Kinds that register their own conversion (pods, nodes, events, ... and CRDs) answer
  // `field label not supported: <name>`; kinds on the default conversion (deployments, ingresses, ...)
  // answer `"<name>" is not a known field selector: only "metadata.name", "metadata.namespace"`.
  enum class UnsupportedStyle { FieldLabelNotSupported, DefaultMetaOnly };
  Status check_supported(const std::vector<std::string>& supported,
                         UnsupportedStyle style = UnsupportedStyle::FieldLabelNotSupported) const;
  // Rewrites fields through `fn` (e.g. spec.host -> spec.nodeName); a term mapped to ("", "") is dropped.
  // An error from fn is returned as is.
  Result<FieldSelector> transform(
      const std::function<Result<std::pair<std::string, std::string>>(const std::string& field,
                                                                      const std::string& value)>& fn) const;

 private:
  std::vector<FieldRequirement> reqs_;
};

// fields.EscapeValue / UnescapeValue.
std::string escape_field_value(std::string_view v);
Result<std::string> unescape_field_value(std::string_view v);

}  // namespace berth::api
