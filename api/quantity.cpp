#include "api/quantity.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <optional>

namespace berth::api {

namespace {

// ---- a small unsigned bignum: little-endian base-1e9 limbs, no leading (high) zero limbs ----

using Big = std::vector<uint32_t>;
constexpr uint32_t kBase = 1000000000u;
constexpr uint32_t kPow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000};

void trim(Big& a) {
  while (!a.empty() && a.back() == 0) a.pop_back();
}

Big from_u64(uint64_t v) {
  Big a;
  while (v) {
    a.push_back(static_cast<uint32_t>(v % kBase));
    v /= kBase;
  }
  return a;
}

Big from_digits(std::string_view d) {
  Big a;
  size_t end = d.size();
  while (end > 0) {
    size_t start = end >= 9 ? end - 9 : 0;
    uint32_t limb = 0;
    for (size_t i = start; i < end; ++i) limb = limb * 10 + static_cast<uint32_t>(d[i] - '0');
    a.push_back(limb);
    end = start;
  }
  trim(a);
  return a;
}

std::string to_digits(const Big& a) {
  if (a.empty()) return "0";
  std::string out = std::to_string(a.back());
  for (size_t i = a.size() - 1; i-- > 0;) {
    std::string limb = std::to_string(a[i]);
    out.append(9 - limb.size(), '0');
    out += limb;
  }
  return out;
}

int64_t num_digits(const Big& a) {
  if (a.empty()) return 0;
  return static_cast<int64_t>(std::to_string(a.back()).size() + 9 * (a.size() - 1));
}

void mul_small(Big& a, uint32_t m) {
  uint64_t carry = 0;
  for (auto& limb : a) {
    uint64_t cur = static_cast<uint64_t>(limb) * m + carry;
    limb = static_cast<uint32_t>(cur % kBase);
    carry = cur / kBase;
  }
  while (carry) {
    a.push_back(static_cast<uint32_t>(carry % kBase));
    carry /= kBase;
  }
  trim(a);
}

uint32_t divmod_small(Big& a, uint32_t d) {
  uint64_t rem = 0;
  for (size_t i = a.size(); i-- > 0;) {
    uint64_t cur = a[i] + rem * kBase;
    a[i] = static_cast<uint32_t>(cur / d);
    rem = cur % d;
  }
  trim(a);
  return static_cast<uint32_t>(rem);
}

void add_small(Big& a, uint32_t v) {
  uint64_t carry = v;
  for (size_t i = 0; carry && i < a.size(); ++i) {
    uint64_t cur = a[i] + carry;
    a[i] = static_cast<uint32_t>(cur % kBase);
    carry = cur / kBase;
  }
  if (carry) a.push_back(static_cast<uint32_t>(carry));
}

int cmp(const Big& a, const Big& b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  for (size_t i = a.size(); i-- > 0;)
    if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

Big big_add(const Big& a, const Big& b) {
  Big r(std::max(a.size(), b.size()) + 1, 0);
  uint64_t carry = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    uint64_t cur = carry;
    if (i < a.size()) cur += a[i];
    if (i < b.size()) cur += b[i];
    r[i] = static_cast<uint32_t>(cur % kBase);
    carry = cur / kBase;
  }
  trim(r);
  return r;
}

// a - b, requires a >= b.
Big big_sub(const Big& a, const Big& b) {
  Big r = a;
  int64_t borrow = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    int64_t cur = static_cast<int64_t>(r[i]) - borrow - (i < b.size() ? static_cast<int64_t>(b[i]) : 0);
    borrow = cur < 0;
    if (cur < 0) cur += kBase;
    r[i] = static_cast<uint32_t>(cur);
  }
  trim(r);
  return r;
}

void mul_pow10(Big& a, int64_t k) {
  if (a.empty() || k <= 0) return;
  a.insert(a.begin(), static_cast<size_t>(k / 9), 0u);
  if (k % 9) mul_small(a, kPow10[k % 9]);
}

// Divides by 10^k; returns true when the division was exact.
bool div_pow10(Big& a, int64_t k) {
  if (k <= 0) return true;
  bool exact = true;
  size_t limbs = static_cast<size_t>(std::min<int64_t>(k / 9, static_cast<int64_t>(a.size())));
  for (size_t i = 0; i < limbs; ++i)
    if (a[i]) exact = false;
  a.erase(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(limbs));
  if (k / 9 > static_cast<int64_t>(limbs)) {  // more limbs than the number has
    if (!a.empty()) exact = false;
    a.clear();
    return exact;
  }
  if (k % 9 && divmod_small(a, kPow10[k % 9]) != 0) exact = false;
  return exact;
}

// Divides by 10^k rounding the magnitude up (inf.RoundUp on a non-negative value).
void div_pow10_round_up(Big& a, int64_t k) {
  if (a.empty() || k <= 0) return;
  if (k > num_digits(a)) {
    a = Big{1};
    return;
  }
  if (!div_pow10(a, k)) add_small(a, 1);
}

bool divisible_by_pow10(const Big& a, int64_t k) {
  Big t = a;
  return div_pow10(t, k);
}

std::optional<uint64_t> to_u64(const Big& a) {
  if (a.size() > 3) return std::nullopt;
  unsigned __int128 v = 0;
  for (size_t i = a.size(); i-- > 0;) v = v * kBase + a[i];
  if (v > UINT64_MAX) return std::nullopt;
  return static_cast<uint64_t>(v);
}

// ---- upstream's parsing pieces ----

constexpr const char* kErrFormatWrong =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
constexpr const char* kErrNumeric = "unable to parse numeric part of quantity";
constexpr const char* kErrSuffix = "unable to parse quantity's suffix";

struct Split {
  bool positive = true;
  std::string_view value, num, denom, suffix;
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// parseQuantityString, step for step (including its early returns).
bool split_quantity(std::string_view str, Split& out) {
  out = Split{};
  size_t pos = 0, end = str.size();
  if (pos < end) {
    if (str[0] == '-') {
      out.positive = false;
      ++pos;
    } else if (str[0] == '+') {
      ++pos;
    }
  }
  for (size_t i = pos;; ++i) {  // Zeroes
    if (i >= end) {
      out.num = "0";
      out.value = out.num;
      return true;
    }
    if (str[i] == '0') ++pos;
    else break;
  }
  for (size_t i = pos;; ++i) {  // Num
    if (i >= end) {
      out.num = str.substr(pos);
      out.value = str;
      return true;
    }
    if (!is_digit(str[i])) {
      out.num = str.substr(pos, i - pos);
      pos = i;
      break;
    }
  }
  if (out.num.empty()) out.num = "0";
  if (pos < end && str[pos] == '.') {
    ++pos;
    for (size_t i = pos;; ++i) {  // Denom
      if (i >= end) {
        out.denom = str.substr(pos);
        out.value = str;
        return true;
      }
      if (!is_digit(str[i])) {
        out.denom = str.substr(pos, i - pos);
        pos = i;
        break;
      }
    }
  }
  out.value = str.substr(0, pos);
  size_t suffix_start = pos;
  for (size_t i = pos;; ++i) {
    if (i >= end) {
      out.suffix = str.substr(suffix_start);
      return true;
    }
    if (std::string_view("eEinumkKMGTP").find(str[i]) == std::string_view::npos) {
      pos = i;
      break;
    }
  }
  if (pos < end && (str[pos] == '-' || str[pos] == '+')) ++pos;
  for (size_t i = pos;; ++i) {
    if (i >= end) {
      out.suffix = str.substr(suffix_start);
      return true;
    }
    if (!is_digit(str[i])) break;
  }
  return false;
}

// strconv.ParseInt(s, 10, 64)
std::optional<int64_t> parse_int64(std::string_view s) {
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  if (i == s.size()) return std::nullopt;
  unsigned __int128 v = 0;
  for (; i < s.size(); ++i) {
    if (!is_digit(s[i])) return std::nullopt;
    v = v * 10 + static_cast<unsigned>(s[i] - '0');
    if (v > static_cast<unsigned __int128>(INT64_MAX) + 1) return std::nullopt;
  }
  if (!neg && v > static_cast<unsigned __int128>(INT64_MAX)) return std::nullopt;
  return neg ? static_cast<int64_t>(-static_cast<__int128>(v)) : static_cast<int64_t>(v);
}

struct Interpreted {
  int base = 10;
  int32_t exponent = 0;
  Quantity::Format format = Quantity::Format::DecimalSI;
};

bool interpret_suffix(std::string_view s, Interpreted& out) {
  using F = Quantity::Format;
  struct Entry {
    const char* s;
    int base;
    int32_t exp;
    F fmt;
  };
  static const Entry kTable[] = {
      {"", 10, 0, F::DecimalSI},   {"n", 10, -9, F::DecimalSI}, {"u", 10, -6, F::DecimalSI},
      {"m", 10, -3, F::DecimalSI}, {"k", 10, 3, F::DecimalSI},  {"M", 10, 6, F::DecimalSI},
      {"G", 10, 9, F::DecimalSI},  {"T", 10, 12, F::DecimalSI}, {"P", 10, 15, F::DecimalSI},
      {"E", 10, 18, F::DecimalSI}, {"Ki", 2, 10, F::BinarySI},  {"Mi", 2, 20, F::BinarySI},
      {"Gi", 2, 30, F::BinarySI},  {"Ti", 2, 40, F::BinarySI},  {"Pi", 2, 50, F::BinarySI},
      {"Ei", 2, 60, F::BinarySI},
  };
  for (const auto& e : kTable) {
    if (s == e.s) {
      out = Interpreted{e.base, e.exp, e.fmt};
      return true;
    }
  }
  if (s.size() > 1 && (s[0] == 'e' || s[0] == 'E')) {
    auto v = parse_int64(s.substr(1));
    if (!v) return false;
    out = Interpreted{10, static_cast<int32_t>(*v), F::DecimalExponent};  // Go's int32() truncation
    return true;
  }
  return false;
}

const char* decimal_suffix(int64_t exp) {
  switch (exp) {
    case -9: return "n";
    case -6: return "u";
    case -3: return "m";
    case 0: return "";
    case 3: return "k";
    case 6: return "M";
    case 9: return "G";
    case 12: return "T";
    case 15: return "P";
    case 18: return "E";
    default: return nullptr;
  }
}

const char* binary_suffix(int64_t exp2) {
  switch (exp2) {
    case 0: return "";
    case 10: return "Ki";
    case 20: return "Mi";
    case 30: return "Gi";
    case 40: return "Ti";
    case 50: return "Pi";
    case 60: return "Ei";
    default: return nullptr;
  }
}

Status err(const char* msg) { return Status(Reason::BadRequest, msg); }

}  // namespace

Quantity Quantity::from_int(int64_t value, Format format) {
  Quantity q = from_scaled(value, 0);
  q.format_ = format;
  return q;
}

Quantity Quantity::from_milli(int64_t milli, Format format) {
  Quantity q = from_scaled(milli, -3);
  q.format_ = format;
  return q;
}

Quantity Quantity::from_scaled(int64_t value, int scale) {
  Quantity q;
  uint64_t mag = value < 0 ? static_cast<uint64_t>(-(value + 1)) + 1 : static_cast<uint64_t>(value);
  q.mag_ = from_u64(mag);
  q.neg_ = value < 0;
  q.exp_ = scale;
  q.format_ = Format::DecimalSI;
  return q;
}

Result<Quantity> Quantity::parse(std::string_view str) {
  if (str.empty()) return err(kErrFormatWrong);
  if (str == "0") {
    Quantity q;
    q.s_ = "0";
    return q;
  }
  Split sp;
  if (!split_quantity(str, sp)) return err(kErrFormatWrong);
  Interpreted in;
  if (!interpret_suffix(sp.suffix, in)) return err(kErrSuffix);

  // The int64 fast path: it decides whether the input spelling is kept.
  int64_t precision = 0, scale = 0;
  uint64_t mantissa = 1;
  switch (in.format) {
    case Format::DecimalExponent:
    case Format::DecimalSI:
      scale = in.exponent;
      precision = 18 - static_cast<int64_t>(sp.num.size() + sp.denom.size());
      break;
    case Format::BinarySI:
      if (in.exponent >= 0 && sp.denom.empty()) {
        mantissa = uint64_t{1} << in.exponent;
        precision = 15 - static_cast<int64_t>(sp.num.size()) - static_cast<int64_t>(in.exponent) * 3 / 10 - 1;
      } else {
        precision = -1;
      }
      break;
  }
  if (precision >= 0) {
    scale -= static_cast<int64_t>(sp.denom.size());
    if (scale >= -9) {
      std::string shifted = std::string(sp.num) + std::string(sp.denom);
      auto value = parse_int64(shifted);
      if (!value) return err(kErrNumeric);
      unsigned __int128 product = static_cast<unsigned __int128>(*value) * mantissa;
      if (product <= static_cast<unsigned __int128>(INT64_MAX)) {
        Quantity q;
        q.mag_ = from_u64(static_cast<uint64_t>(product));
        q.neg_ = !sp.positive && !q.mag_.empty();
        q.exp_ = scale;
        q.format_ = in.format;
        bool keep = false;
        if (in.format == Format::BinarySI) {
          keep = in.exponent % 10 == 0 && (*value & 0x07) != 0;
        } else {
          keep = scale % 3 == 0 && !(shifted.size() >= 3 && shifted.compare(shifted.size() - 3, 3, "000") == 0) &&
                 shifted[0] != '0';
        }
        if (keep) q.s_ = std::string(str);
        return q;
      }
    }
  }

  // The inf.Dec path: exact decimal, then rounded up to nano.
  std::string digits;
  int64_t frac = 0;
  bool seen_dot = false, any_digit = false;
  for (char c : sp.value) {
    if (c == '+' || c == '-') continue;
    if (c == '.') {
      seen_dot = true;
      continue;
    }
    any_digit = true;
    digits += c;
    if (seen_dot) ++frac;
  }
  if (!any_digit) return err(kErrNumeric);
  Quantity q;
  q.mag_ = from_digits(digits);
  q.exp_ = -frac;
  q.format_ = in.format;
  if (in.base == 10) {
    q.exp_ += in.exponent;
  } else {
    for (int32_t left = in.exponent; left > 0; left -= 30) mul_small(q.mag_, uint32_t{1} << std::min(left, 30));
  }
  if (!q.mag_.empty() && q.exp_ < -9) {
    div_pow10_round_up(q.mag_, -9 - q.exp_);
    q.exp_ = -9;
  }
  if (q.format_ == Format::BinarySI) {
    Quantity max = from_scaled(INT64_MAX, 0);
    Quantity abs = q;
    if (abs.compare(max) > 0) {
      q.mag_ = max.mag_;
      q.exp_ = 0;
    } else if (!q.mag_.empty() && abs.compare(from_scaled(1, 0)) < 0) {
      q.format_ = Format::DecimalSI;
    }
  }
  q.neg_ = !sp.positive && !q.mag_.empty();
  return q;
}

Result<Quantity> Quantity::from_json(const nlohmann::json& v) {
  using nlohmann::json;
  switch (v.type()) {
    case json::value_t::null: return Quantity();
    case json::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      size_t b = 0, e = s.size();
      auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
      while (b < e && space(s[b])) ++b;
      while (e > b && space(s[e - 1])) --e;
      return parse(std::string_view(s).substr(b, e - b));
    }
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return parse(v.dump());
    default: return Status(Reason::BadRequest, "quantity must be a string or a number");
  }
}

std::string Quantity::canonical() const {
  if (mag_.empty()) return "0";
  Format format = format_;
  if (format == Format::BinarySI) {
    Quantity lo = from_scaled(-1024, 0), hi = from_scaled(1024, 0);
    if (compare(lo) > 0 && compare(hi) < 0) {
      format = Format::DecimalSI;
    } else if (exp_ < 0 && !divisible_by_pow10(mag_, -exp_)) {
      format = Format::DecimalSI;
    }
  }
  std::string sign = neg_ ? "-" : "";
  if (format == Format::BinarySI) {
    Big v = mag_;
    if (exp_ > 0) mul_pow10(v, exp_);
    if (exp_ < 0) div_pow10(v, -exp_);
    int64_t times = 0;
    while (!v.empty()) {
      Big t = v;
      if (divmod_small(t, 1024) != 0) break;
      v = std::move(t);
      ++times;
    }
    const char* suffix = binary_suffix(times * 10);
    return sign + to_digits(v) + (suffix ? suffix : "");
  }
  Big m = mag_;
  int64_t e = exp_;
  while (true) {
    Big t = m;
    if (divmod_small(t, 10) != 0) break;
    m = std::move(t);
    ++e;
  }
  while (e % 3 != 0) {
    mul_small(m, 10);
    --e;
  }
  std::string number = sign + to_digits(m);
  if (format == Format::DecimalExponent) return e == 0 ? number : number + "e" + std::to_string(e);
  const char* suffix = decimal_suffix(e);  // no suffix beyond 'E' or below 'n', as upstream
  return number + (suffix ? suffix : "");
}

std::string Quantity::to_string() const { return s_.empty() ? canonical() : s_; }

int64_t Quantity::scaled_value(int scale) const {
  if (mag_.empty()) return 0;
  Big m = mag_;
  int64_t shift = exp_ - scale;
  if (shift >= 0) {
    if (num_digits(m) + shift > 19) return neg_ ? INT64_MIN : INT64_MAX;
    mul_pow10(m, shift);
  } else {
    div_pow10_round_up(m, -shift);
  }
  auto v = to_u64(m);
  if (!v || *v > static_cast<uint64_t>(INT64_MAX) + (neg_ ? 1 : 0)) return neg_ ? INT64_MIN : INT64_MAX;
  return neg_ ? static_cast<int64_t>(0 - *v) : static_cast<int64_t>(*v);
}

double Quantity::approximate_double() const {
  if (mag_.empty()) return 0;
  std::string s;
  if (neg_) s += '-';
  s += to_digits(mag_);
  s += 'e';
  s += std::to_string(exp_);
  return std::strtod(s.c_str(), nullptr);
}

namespace {

// Compares |a| * 10^ea with |b| * 10^eb.
int cmp_magnitude(const Big& a, int64_t ea, const Big& b, int64_t eb) {
  if (a.empty() || b.empty()) return a.empty() ? (b.empty() ? 0 : -1) : 1;
  int64_t oa = num_digits(a) + ea, ob = num_digits(b) + eb;  // decimal order of magnitude
  if (oa != ob) return oa < ob ? -1 : 1;
  // Same order: the exponent gap is bounded by the digit counts, so aligning is cheap.
  Big x = a, y = b;
  if (ea > eb) mul_pow10(x, ea - eb);
  if (eb > ea) mul_pow10(y, eb - ea);
  return cmp(x, y);
}

}  // namespace

int Quantity::compare(const Quantity& o) const {
  int sa = sign(), sb = o.sign();
  if (sa != sb) return sa < sb ? -1 : 1;
  if (sa == 0) return 0;
  int c = cmp_magnitude(mag_, exp_, o.mag_, o.exp_);
  return sa < 0 ? -c : c;
}

void Quantity::add(const Quantity& y) {
  s_.clear();
  if (mag_.empty()) {
    Format f = y.format_;
    *this = y;
    s_.clear();
    format_ = f;
    return;
  }
  if (y.mag_.empty()) return;
  int64_t oa = num_digits(mag_) + exp_, ob = num_digits(y.mag_) + y.exp_;
  int64_t lowest = std::min(exp_, y.exp_);
  if (std::max(oa, ob) - lowest > kMaxAlignDigits) {
    if (ob > oa) {  // keep the larger operand
      Format f = format_;
      *this = y;
      s_.clear();
      format_ = f;
    }
    return;
  }
  Big a = mag_, b = y.mag_;
  mul_pow10(a, exp_ - lowest);
  mul_pow10(b, y.exp_ - lowest);
  if (neg_ == y.neg_) {
    mag_ = big_add(a, b);
  } else if (cmp(a, b) >= 0) {
    mag_ = big_sub(a, b);
  } else {
    mag_ = big_sub(b, a);
    neg_ = y.neg_;
  }
  exp_ = lowest;
  if (mag_.empty()) neg_ = false;
}

void Quantity::sub(const Quantity& y) {
  Quantity n = y;
  n.negate();
  if (mag_.empty()) {
    s_.clear();
    Format f = y.format_;
    *this = n;
    format_ = f;
    return;
  }
  add(n);
}

void Quantity::negate() {
  s_.clear();
  if (!mag_.empty()) neg_ = !neg_;
}

}  // namespace berth::api
