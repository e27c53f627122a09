// Quantity: resource.Quantity (k8s.io/apimachinery/pkg/api/resource) — "100m", "1.5", "2Gi", "1e3" —
// parsed, compared and serialized exactly as the apiserver does, including which inputs keep their
// original spelling ("100m", "500Mi") and which are rewritten canonically ("1000m" -> "1", "0.5" -> "500m",
// "1024Mi" -> "1Gi"). Values are exact decimals of any size (upstream's inf.Dec), rounded up to 1n on parse.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/status.h"

namespace berth::api {

class Quantity {
 public:
  enum class Format { DecimalExponent, BinarySI, DecimalSI };

  // The zero quantity ("0", DecimalSI).
  Quantity() = default;
  static Quantity from_int(int64_t value, Format format = Format::DecimalSI);     // NewQuantity
  static Quantity from_milli(int64_t milli, Format format = Format::DecimalSI);   // NewMilliQuantity
  static Quantity from_scaled(int64_t value, int scale);                           // NewScaledQuantity, DecimalSI

  // ParseQuantity. Errors (BadRequest) carry upstream's text: "quantities must match the regular
  // expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'", "unable to parse quantity's suffix",
  // "unable to parse numeric part of quantity".
  static Result<Quantity> parse(std::string_view text);
  // Quantity.UnmarshalJSON: a string (surrounding spaces trimmed), a JSON number (by its text), or null (zero).
  static Result<Quantity> from_json(const nlohmann::json& v);

  // What Kubernetes serializes: the input spelling when upstream keeps it, otherwise canonical().
  std::string to_string() const;
  // The canonical form (CanonicalizeBytes), ignoring the input spelling.
  std::string canonical() const;
  nlohmann::json to_json() const { return to_string(); }

  // Value(), MilliValue(), ScaledValue(scale): value * 10^-scale rounded away from zero (so 1n has
  // milli-value 1, -1.5 has value -2). Out-of-range results saturate at INT64_MAX / INT64_MIN
  // (upstream wraps or returns 0 there).
  int64_t value() const { return scaled_value(0); }
  int64_t milli_value() const { return scaled_value(-3); }
  int64_t scaled_value(int scale) const;
  double approximate_double() const;  // AsApproximateFloat64

  int compare(const Quantity& other) const;  // -1, 0, 1 (exact)
  bool operator==(const Quantity& o) const { return compare(o) == 0; }
  bool operator!=(const Quantity& o) const { return compare(o) != 0; }
  bool operator<(const Quantity& o) const { return compare(o) < 0; }
  bool operator<=(const Quantity& o) const { return compare(o) <= 0; }
  bool operator>(const Quantity& o) const { return compare(o) > 0; }
  bool operator>=(const Quantity& o) const { return compare(o) >= 0; }

  bool is_zero() const { return mag_.empty(); }
  int sign() const { return is_zero() ? 0 : (neg_ ? -1 : 1); }
  Format format() const { return format_; }

  // Add / Sub (a zero receiver takes the other's format, as upstream). The result is exact unless the
  // operands are more than kMaxAlignDigits decimal orders apart, when the smaller one is dropped.
  void add(const Quantity& y);
  void sub(const Quantity& y);
  void negate();
  static constexpr int64_t kMaxAlignDigits = 1000;

 private:
  // value = (neg_ ? -1 : 1) * mag_ * 10^exp_; mag_ is little-endian base 1e9 limbs, empty for zero.
  bool neg_ = false;
  std::vector<uint32_t> mag_;
  int64_t exp_ = 0;
  Format format_ = Format::DecimalSI;
  std::string s_;  // the input spelling when upstream keeps it
};

}  // namespace berth::api
