#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <climits>

#include "api/quantity.h"

using berth::api::Quantity;
using berth::api::Reason;
using F = Quantity::Format;
using nlohmann::json;

namespace {

Quantity q(const std::string& s) {
  auto r = Quantity::parse(s);
  REQUIRE_MESSAGE(r.ok(), s << ": " << r.status().message());
  return std::move(r).value();
}

std::string error_of(const std::string& s) {
  auto r = Quantity::parse(s);
  REQUIRE_MESSAGE(!r.ok(), s << " parsed unexpectedly");
  CHECK(r.status().reason() == Reason::BadRequest);
  return r.status().message();
}

Quantity scaled(int64_t v, int scale, F f) {
  Quantity x = Quantity::from_scaled(v, scale);
  if (f == F::DecimalSI) return x;
  // from_int/from_milli carry a format; other scales only occur with DecimalSI in these tables.
  return scale == 0 ? Quantity::from_int(v, f) : Quantity::from_milli(v, f);
}

const std::string kFormatWrong =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

}  // namespace

TEST_CASE("parse: upstream's table of values and formats") {
  struct Row {
    const char* in;
    int64_t value;
    int scale;
    F format;
  };
  // resource/quantity_test.go TestQuantityParse (rows expressible as value * 10^scale).
  const Row rows[] = {
      {"0", 0, 0, F::DecimalSI},          {"0n", 0, 0, F::DecimalSI},         {"0Ki", 0, 0, F::BinarySI},
      {"0M", 0, 0, F::DecimalSI},         {"1", 1, 0, F::DecimalSI},          {"1Ki", 1024, 0, F::BinarySI},
      {"8Ki", 8 * 1024, 0, F::BinarySI},  {"7Mi", 7 * 1024 * 1024, 0, F::BinarySI},
      {"6Gi", 6LL << 30, 0, F::BinarySI}, {"5Ti", 5LL << 40, 0, F::BinarySI}, {"4Pi", 4LL << 50, 0, F::BinarySI},
      {"3Ei", 3LL << 60, 0, F::BinarySI}, {"10Ti", 10LL << 40, 0, F::BinarySI}, {"5n", 5, -9, F::DecimalSI},
      {"4u", 4, -6, F::DecimalSI},        {"3m", 3, -3, F::DecimalSI},        {"8k", 8, 3, F::DecimalSI},
      {"50k", 5, 4, F::DecimalSI},        {"7M", 7, 6, F::DecimalSI},         {"6G", 6, 9, F::DecimalSI},
      {"5T", 5, 12, F::DecimalSI},        {"2P", 2, 15, F::DecimalSI},        {"1E", 1, 18, F::DecimalSI},
      {"12E", 12, 18, F::DecimalSI},      {"1E-3", 1, -3, F::DecimalExponent}, {"1e3", 1, 3, F::DecimalExponent},
      {"1E6", 1, 6, F::DecimalExponent},  {"1e14", 1, 14, F::DecimalExponent}, {"100.035k", 100035, 0, F::DecimalSI},
      {"0.001", 1, -3, F::DecimalSI},     {"0.0005k", 5, -1, F::DecimalSI},   {"0.5", 5, -1, F::DecimalSI},
      {"0.50000", 5, -1, F::DecimalSI},   {"0.5e0", 5, -1, F::DecimalExponent}, {"0.5e-2", 5, -3, F::DecimalExponent},
      {"10.035M", 10035, 3, F::DecimalSI}, {"1.2e3", 12, 2, F::DecimalExponent}, {"1.3E+6", 13, 5, F::DecimalExponent},
      {"1.7E18", 17, 17, F::DecimalExponent}, {"9.01", 901, -2, F::DecimalSI}, {"6.987654321G", 6987654321, 0, F::DecimalSI},
      {"1.01E", 101, 16, F::DecimalSI},
      // things that round up to 1n
      {"3.001n", 4, -9, F::DecimalSI},    {"1.1E-9", 2, -9, F::DecimalExponent}, {"0.0000000001", 1, -9, F::DecimalSI},
      {"0.00000000050", 1, -9, F::DecimalSI}, {"0.9n", 1, -9, F::DecimalSI}, {"0.00000012345", 124, -9, F::DecimalSI},
      // saturation of binary values
      {"9Ei", INT64_MAX, 0, F::BinarySI}, {"9223372036854775807Ki", INT64_MAX, 0, F::BinarySI},
      // fractional binary values
      {"100.035Ki", 10243584, -2, F::BinarySI}, {"0.5Mi", 524288, 0, F::BinarySI},
      {"0.05Gi", 536870912, -1, F::BinarySI},
      // written by trolls
      {"0.000000000001Ki", 2, -9, F::DecimalSI}, {".001", 1, -3, F::DecimalSI}, {".0001k", 100, -3, F::DecimalSI},
      {"1.", 1, 0, F::DecimalSI},         {"1.G", 1, 9, F::DecimalSI},
  };
  for (const auto& row : rows) {
    Quantity want = Quantity::from_scaled(row.value, row.scale);
    for (const std::string prefix : {"", "+", "-"}) {
      const std::string in = prefix + row.in;
      Quantity got = q(in);
      Quantity w = want;
      if (prefix == "-") w.negate();
      CHECK_MESSAGE(got.compare(w) == 0, in << " -> " << got.to_string() << ", want " << w.canonical());
      CHECK_MESSAGE(got.format() == row.format, in);
    }
  }
}

TEST_CASE("parse: invalid inputs and their messages") {
  for (std::string s : {"1.1.M", "1+1.0M", "0.1am", "aoeu", " 1", "1 ", "", "1e3e3"})
    CHECK_MESSAGE(error_of(s) == kFormatWrong, s);
  for (std::string s : {"0.1mi", ".5i", "1i", "-3.01i", "-3.01e-", "1e", "1ki"})
    CHECK_MESSAGE(error_of(s) == "unable to parse quantity's suffix", s);
  // No digits at all and too small for the int64 path: the decimal parse fails.
  CHECK(error_of(".e-10") == "unable to parse numeric part of quantity");
}

TEST_CASE("serialization: canonical forms and kept spellings (TestQuantityString)") {
  struct Row {
    const char* expect;
    const char* alternate;
  };
  const Row rows[] = {
      {"1Gi", "1024Mi"},   {"300Mi", "307200Ki"}, {"6Ki", ""},          {"1001Gi", "1025024Mi"}, {"1Ti", "1024Gi"},
      {"5", "5000m"},      {"500m", "0.5"},       {"1G", "1000M"},      {"1G", "0.001T"},        {"1m", "1000u"},
      {"80m", ""},         {"1080m", "1.08"},     {"1080m", "1080000000n"}, {"300M", ""},        {"1T", ""},
      {"1234567M", ""},    {"1234567m", ""},      {"3k", ""},           {"1025", ""},            {"0", "00"},
      {"1e9", ".001e12"},  {"1e-3", "0.001e0"},   {"1e-9", "1000e-12"}, {"80e-3", ""},           {"300e6", ""},
      {"1e12", ""},        {"1e3", ""},           {"3e3", ""},          {"1n", ""},              {"80n", ""},
      {"1080n", ""},       {"1u", ""},            {"80u", ""},          {"1080u", ""},
  };
  for (const auto& row : rows) {
    CHECK_MESSAGE(q(row.expect).to_string() == row.expect, row.expect);
    CHECK_MESSAGE(q(row.expect).canonical() == row.expect, row.expect);
    if (*row.alternate) CHECK_MESSAGE(q(row.alternate).to_string() == row.expect, row.alternate);
    if (std::string(row.expect) != "0") {
      CHECK_MESSAGE(q(std::string("-") + row.expect).to_string() == std::string("-") + row.expect, row.expect);
    }
  }
  // TestQuantityParseEmit
  const Row emit[] = {{"1Ki", "1Ki"},           {"1Mi", "1Mi"},          {"1Gi", "1Gi"},
                      {"1024Mi", "1Gi"},        {"1000M", "1G"},         {".001Ki", "1024m"},
                      {".000001Ki", "1024u"},   {".000000001Ki", "1024n"}, {".000000000001Ki", "2n"}};
  for (const auto& row : emit) {
    CHECK_MESSAGE(q(row.expect).to_string() == row.alternate, row.expect);
    CHECK_MESSAGE(q(std::string("-") + row.expect).to_string() == std::string("-") + row.alternate, row.expect);
  }
}

TEST_CASE("serialization: the brief's examples and upstream quirks") {
  CHECK(q("1000m").to_string() == "1");
  CHECK(q("0.5").to_string() == "500m");
  CHECK(q("1024Mi").to_string() == "1Gi");
  CHECK(q("100m").to_string() == "100m");
  CHECK(q("1.5").to_string() == "1500m");
  CHECK(q("2Gi").to_string() == "2Gi");
  CHECK(q("500Mi").to_string() == "500Mi");
  CHECK(q("1k").to_string() == "1k");
  CHECK(q("1e3").to_string() == "1e3");
  CHECK(q("1.5Gi").to_string() == "1536Mi");
  CHECK(q("1.5e3").to_string() == "1500");
  CHECK(q("8Gi").to_string() == "8Gi");
  CHECK(q("1536Ki").to_string() == "1536Ki");
  CHECK(q("0.1").to_string() == "100m");
  CHECK(q("-0").to_string() == "0");
  CHECK(q("9Ei").to_string() == "9223372036854775807");
  CHECK(q("512").to_string() == "512");
  // Kept as written when upstream's fast path caches the input (leading zeros and '+' included).
  CHECK(q("0100m").to_string() == "0100m");
  CHECK(q("0100m").canonical() == "100m");
  CHECK(q("+1Gi").to_string() == "+1Gi");
  // Upstream has no suffix beyond E, so 10^21 prints its mantissa alone.
  CHECK(q("1000E").to_string() == "1");
  // Odd inputs upstream accepts as zero.
  CHECK(q("m").is_zero());
  CHECK(q(".").is_zero());
  // Arbitrary precision.
  CHECK(q("123456789012345678901234567890").to_string() == "123456789012345678901234567890");
  CHECK(q("1e1000").to_string() == "10e999");  // exponent not a multiple of 3: rewritten
  CHECK(q("10e999").to_string() == "10e999");
}

TEST_CASE("value, milli-value, scaled value: rounded away from zero") {
  CHECK(q("1.5").value() == 2);
  CHECK(q("1.5").milli_value() == 1500);
  CHECK(q("100m").value() == 1);
  CHECK(q("100m").milli_value() == 100);
  CHECK(q("1n").milli_value() == 1);
  CHECK(q("1n").scaled_value(-9) == 1);
  CHECK(q("-1.5").value() == -2);
  CHECK(q("1Gi").value() == 1073741824);
  CHECK(q("1Gi").milli_value() == 1073741824000);
  CHECK(q("2k").scaled_value(3) == 2);
  CHECK(q("2500").scaled_value(3) == 3);
  CHECK(q("9Ei").value() == INT64_MAX);
  CHECK(q("1e30").value() == INT64_MAX);
  CHECK(q("-1e30").value() == INT64_MIN);
  CHECK(q("9223372036854775807").value() == INT64_MAX);
  CHECK(q("9223372036854775807").milli_value() == INT64_MAX);
  CHECK(q("0").value() == 0);
  // NewScaledQuantity(1, from).ScaledValue(to) from TestScaledValue
  CHECK(Quantity::from_scaled(1, -9).scaled_value(0) == 1);
  CHECK(Quantity::from_scaled(1, -6).scaled_value(-9) == 1000);
  CHECK(Quantity::from_scaled(1, 0).scaled_value(-9) == 1000000000);
  CHECK(Quantity::from_scaled(1, 2).scaled_value(-2) == 10000);
  CHECK(q("250m").approximate_double() == doctest::Approx(0.25));
}

TEST_CASE("compare") {
  CHECK(q("1000m") == q("1"));
  CHECK(q("0.5") == q("500m"));
  CHECK(q("1e3") == q("1k"));
  CHECK(q("1Gi") > q("1G"));
  CHECK(q("1Ki") == q("1024"));
  CHECK(q("-1") < q("0"));
  CHECK(q("-2") < q("-1"));
  CHECK(q("100m") < q("0.2"));
  CHECK(q("1e1000") > q("1e999"));
  CHECK(q("1e2147483647") > q("1"));
  CHECK(q("1n") > q("0"));
  CHECK(q("999999999999999999999n") < q("1T"));
  CHECK(q("1000000000000000000000n") == q("1T"));
}

TEST_CASE("from_json and to_json") {
  auto a = Quantity::from_json(json("100m"));
  REQUIRE(a.ok());
  CHECK(a->to_json() == json("100m"));
  auto b = Quantity::from_json(json(1));
  REQUIRE(b.ok());
  CHECK(b->to_string() == "1");
  auto c = Quantity::from_json(json(0.5));
  REQUIRE(c.ok());
  CHECK(c->to_string() == "500m");
  auto d = Quantity::from_json(json("  2Gi "));
  REQUIRE(d.ok());
  CHECK(d->to_string() == "2Gi");
  auto e = Quantity::from_json(nullptr);
  REQUIRE(e.ok());
  CHECK(e->to_string() == "0");
  auto f = Quantity::from_json(json("abc"));
  REQUIRE_FALSE(f.ok());
  CHECK(f.status().message() == kFormatWrong);
  CHECK_FALSE(Quantity::from_json(json(true)).ok());
}

TEST_CASE("arithmetic") {
  Quantity a = q("1");
  a.add(q("500m"));
  CHECK(a.to_string() == "1500m");
  Quantity z;
  z.add(q("1Gi"));
  CHECK(z.format() == F::BinarySI);
  CHECK(z.to_string() == "1Gi");
  Quantity m = q("1Gi");
  m.sub(q("512Mi"));
  CHECK(m.to_string() == "512Mi");
  Quantity n = q("1");
  n.sub(q("3"));
  CHECK(n.to_string() == "-2");
  Quantity k = q("100m");  // the kept spelling is dropped once the value changes
  k.add(q("0"));
  CHECK(k.to_string() == "100m");
  k.add(q("1m"));
  CHECK(k.to_string() == "101m");
  Quantity big = q("1e5000");
  big.add(q("1n"));  // too far apart to align: the smaller operand is dropped
  CHECK(big.canonical() == "100e4998");
  CHECK(Quantity::from_milli(1500, F::DecimalSI).to_string() == "1500m");
  CHECK(Quantity::from_int(2048, F::BinarySI).to_string() == "2Ki");
  CHECK(scaled(5, 0, F::BinarySI).to_string() == "5");
}
