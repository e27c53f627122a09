#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <functional>

#include "api/decode.h"
#include "api/object.h"

using namespace berth::api;
using nlohmann::json;

namespace {

Decoded j(const std::string& body, const DecodeLimits& limits = {}) {
  auto r = parse_json(body, limits);
  REQUIRE_MESSAGE(r.ok(), body << ": " << r.status().message());
  return std::move(r).value();
}

std::string jerr(const std::string& body, const DecodeLimits& limits = {}) {
  auto r = parse_json(body, limits);
  REQUIRE_MESSAGE(!r.ok(), body << " parsed unexpectedly");
  CHECK(r.status().reason() == Reason::BadRequest);
  return r.status().message();
}

std::vector<Decoded> y(const std::string& body, const DecodeLimits& limits = {}) {
  auto r = parse_yaml(body, limits);
  REQUIRE_MESSAGE(r.ok(), body << ": " << r.status().message());
  return std::move(r).value();
}

json y1(const std::string& body, const DecodeLimits& limits = {}) {
  auto docs = y(body, limits);
  REQUIRE(docs.size() == 1);
  return docs[0].value;
}

std::string yerr(const std::string& body, const DecodeLimits& limits = {}) {
  auto r = parse_yaml(body, limits);
  REQUIRE_MESSAGE(!r.ok(), body << " parsed unexpectedly");
  CHECK(r.status().reason() == Reason::BadRequest);
  return r.status().message();
}

}  // namespace

TEST_CASE("json: values decode, numbers as the apiserver keeps them") {
  auto d = j(R"({"a":1,"b":[1,2,{"c":"d"}],"e":null,"f":true,"g":1.5})");
  CHECK(d.value == json::parse(R"({"a":1,"b":[1,2,{"c":"d"}],"e":null,"f":true,"g":1.5})"));
  CHECK(d.duplicate_fields.empty());
  CHECK(d.strict_errors.empty());
  CHECK(j("9223372036854775807").value.is_number_integer());
  CHECK(j("-9223372036854775808").value.get<int64_t>() == INT64_MIN);
  CHECK(j("18446744073709551615").value.is_number_float());  // beyond int64: a float, as Go's unstructured decode
  CHECK(j("1.0").value.is_number_float());
  CHECK(j("  \"x\"  ").value == "x");
  CHECK(j("[]").value == json::array());
}

// Same tree, with integers in int64 range as integers (nlohmann keeps positive ones unsigned).
bool same_tree(const json& a, const json& b) {
  if (a.is_number_integer() || a.is_number_unsigned())
    return b.is_number_integer() && !b.is_number_unsigned() && a == b;
  if (a.type() != b.type()) return false;
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it)
      if (!b.contains(it.key()) || !same_tree(it.value(), b[it.key()])) return false;
    return true;
  }
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!same_tree(a[i], b[i])) return false;
    return true;
  }
  return a == b;
}

TEST_CASE("json: every body decodes to the tree a full JSON parser builds") {
  // Bodies mixing what the quick path takes (ASCII strings, simple escapes, small integers)
  // with what it hands to the general parser (\u escapes, UTF-8, fractions, exponents, long
  // integers), at every nesting: each must decode to the same tree.
  std::uint64_t seed = 12345;
  auto next = [&](std::uint64_t n) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return (seed >> 33) % n;
  };
  const char* strings[] = {"", "plain", "with \\\"quotes\\\" and \\\\", "tab\\tnew\\nline\\r\\b\\f\\/",
                           "\\u00e9t\\u00e9", "caf\xc3\xa9", "\\ud83d\\ude00", "<>&'"};
  const char* numbers[] = {"0",   "-0",  "7",   "-42", "123456789012345678", "1234567890123456789",
                           "9223372036854775807", "-9223372036854775808", "1.5", "-2e3", "1E-2", "0.0"};
  std::function<std::string(int)> gen = [&](int depth) -> std::string {
    switch (depth > 4 ? next(4) : next(7)) {
      case 0: return std::string("\"") + strings[next(8)] + "\"";
      case 1: return numbers[next(12)];
      case 2: return next(2) ? "true" : (next(2) ? "false" : "null");
      case 3: return std::to_string(next(1000));
      case 4: {
        std::string out = "[";
        for (std::uint64_t i = 0, n = next(4); i < n; ++i) out += (i ? " , " : "") + gen(depth + 1);
        return out + "]";
      }
      default: {
        std::string out = "{ ";
        for (std::uint64_t i = 0, n = next(5); i < n; ++i)
          out += (i ? ",\n" : "") + std::string("\"k") + std::to_string(i) + (next(3) ? "" : "\\u0041") + "\": " +
                 gen(depth + 1);
        return out + " }";
      }
    }
  };
  for (int i = 0; i < 2000; ++i) {
    std::string body = gen(0);
    auto d = j(body);
    CHECK_MESSAGE(same_tree(json::parse(body), d.value), body);
    CHECK_MESSAGE(to_json_text(d.value) == d.value.dump(), body);
  }
}

TEST_CASE("json: to_json_text writes what dump() writes") {
  std::string controls;
  for (int c = 1; c < 0x20; ++c) controls.push_back(static_cast<char>(c));
  controls += "\x7f\"\\/";
  const json values[] = {
      json(), true, false, 0, -1, INT64_MIN, INT64_MAX, UINT64_MAX, 1.5, -0.0, 1e300, 0.1, 100.0,
      controls, "caf\xc3\xa9 \xf0\x9f\x98\x80", "", json::array(), json::object(),
      json::parse(R"({"b":[1,{"x":null}],"a":{"":"","k\n":"v\t"},"c":"\u00e9"})"),
      json::binary({1, 2, 3}),
  };
  for (const auto& v : values) CHECK(to_json_text(v) == v.dump());
  json nested = json::object();
  nested[controls] = json::array({controls, json::object({{"caf\xc3\xa9", 2.25}})});
  CHECK(to_json_text(nested) == nested.dump());
  // Not UTF-8: the same exception dump() throws.
  CHECK_THROWS_AS(to_json_text(json("x\xff")), json::type_error);
  CHECK_THROWS_AS(to_json_text(json::object({{"x\xff", 1}})), json::type_error);
}

TEST_CASE("json: duplicate fields are reported with sigs.k8s.io/json paths, last value wins") {
  auto d = j(R"({"a":1,"a":2})");
  CHECK(d.value["a"] == 2);
  CHECK(d.duplicate_fields == std::vector<std::string>{"a"});
  CHECK(d.strict_errors == std::vector<std::string>{"duplicate field \"a\""});

  auto n = j(R"({"metadata":{"name":"x","labels":{"k":"1","k":"2","k":"3"}},)"
             R"("spec":{"containers":[{"name":"a"},{"name":"b","name":"c"}]},"kind":"Pod","kind":"Pod"})");
  CHECK(n.value["metadata"]["labels"]["k"] == "3");
  CHECK(n.value["spec"]["containers"][1]["name"] == "c");
  CHECK(n.duplicate_fields == std::vector<std::string>{"metadata.labels.k", "spec.containers[1].name", "kind"});
  CHECK(strict_decoding_message(n.strict_errors) ==
        "strict decoding error: duplicate field \"metadata.labels.k\", duplicate field \"spec.containers[1].name\", "
        "duplicate field \"kind\"");

  auto arr = j(R"([{"a":1,"a":2}])");
  CHECK(arr.duplicate_fields == std::vector<std::string>{"[0].a"});
  auto nested_arr = j(R"({"x":[[{"y":1,"y":1}]]})");
  CHECK(nested_arr.duplicate_fields == std::vector<std::string>{"x[0][0].y"});
  auto odd_key = j(R"({"[k":{"a":1,"a":2},"l":[0,{"b":1,"b":1}]})");
  CHECK(odd_key.duplicate_fields == std::vector<std::string>{"[k.a", "l[1].b"});

  DecodeLimits few;
  few.max_duplicates = 2;
  auto many = j(R"({"a":1,"a":1,"b":1,"b":1,"c":1,"c":1})", few);
  CHECK(many.duplicate_fields.size() == 2);
}

TEST_CASE("json: syntax errors worded as Go's encoding/json") {
  CHECK(jerr("") == "unexpected end of JSON input");
  CHECK(jerr("   ") == "unexpected end of JSON input");
  CHECK(jerr("{") == "unexpected end of JSON input");
  CHECK(jerr(R"({"a":)") == "unexpected end of JSON input");
  CHECK(jerr("{]") == "invalid character ']' looking for beginning of object key string");
  CHECK(jerr("{'a':1}") == "invalid character '\\'' looking for beginning of object key string");
  CHECK(jerr(R"({"a" 1})") == "invalid character '1' after object key");
  CHECK(jerr(R"({"a":1 "b":2})") == "invalid character '\"' after object key:value pair");
  CHECK(jerr("[1 2]") == "invalid character '2' after array element");
  CHECK(jerr(R"({"a":1}x)") == "invalid character 'x' after top-level value");
  CHECK(jerr(R"({"a":1}})") == "invalid character '}' after top-level value");
  CHECK(jerr("x") == "invalid character 'x' looking for beginning of value");
  CHECK(jerr("tru") == "invalid character ' ' in literal true (expecting 'e')");
  CHECK(jerr("nul") == "invalid character ' ' in literal null (expecting 'l')");
  CHECK(jerr(R"({"a":tx})") == "invalid character 'x' in literal true (expecting 'r')");
  CHECK(jerr("fals3") == "invalid character '3' in literal false (expecting 'e')");
  CHECK(jerr("01") == "invalid character '1' after top-level value");
  CHECK(jerr("1.") == "invalid character ' ' after decimal point in numeric literal");
  CHECK(jerr("1e") == "invalid character ' ' in exponent of numeric literal");
  CHECK(jerr("-") == "invalid character ' ' in numeric literal");
  CHECK(jerr("-a") == "invalid character 'a' in numeric literal");
  CHECK(jerr(R"("a\qb")") == "invalid character 'q' in string escape code");
  CHECK(jerr(R"("\u12G4")") == "invalid character 'G' in \\u hexadecimal character escape");
  CHECK(jerr(std::string("\"a\x01\"")) == "invalid character '\\x01' in string literal");
  CHECK(jerr("\"a\nb\"") == "invalid character '\\n' in string literal");
  CHECK(jerr("\xEF\xBB\xBF{}") == "invalid character '\xC3\xAF' looking for beginning of value");  // a BOM: 'ï'
  CHECK(jerr("[1,]") == "invalid character ']' looking for beginning of value");
  CHECK(jerr("{\"a\":1,}") == "invalid character '}' looking for beginning of object key string");
  CHECK(jerr("[1e400]") == "json: cannot unmarshal number 1e400 into Go value of type float64");
}

TEST_CASE("json: what only looks like a number is refused as Go refuses it") {
  CHECK(jerr("01") == "invalid character '1' after top-level value");
  CHECK(jerr(R"({"a":01})") == "invalid character '1' after object key:value pair");
  CHECK(jerr(R"([-])") == "invalid character ']' in numeric literal");
  CHECK(jerr(R"([1,])") == "invalid character ']' looking for beginning of value");
}

TEST_CASE("json: nesting depth and body size limits") {
  std::string ok = std::string(10000, '[') + std::string(10000, ']');
  CHECK(j(ok).value.is_array());
  std::string deep = std::string(10001, '[') + std::string(10001, ']');
  CHECK(jerr(deep) == "invalid character '[' exceeded max depth");
  DecodeLimits small;
  small.max_depth = 3;
  CHECK(jerr(R"({"a":{"b":{"c":{}}}})", small) == "invalid character '{' exceeded max depth");
  CHECK(j(R"({"a":{"b":{}}})", small).value.is_object());

  DecodeLimits tiny;
  tiny.max_body_bytes = 10;
  auto r = parse_json(R"({"a":"0123456789"})", tiny);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().reason() == Reason::RequestEntityTooLarge);
  CHECK(http_code(r.status().reason()) == 413);
  CHECK(r.status().message() == "Request entity too large: limit is 10");
}

TEST_CASE("json: invalid UTF-8 and lone surrogates decode to U+FFFD as in Go") {
  CHECK(j("{\"a\":\"x\xffy\"}").value["a"] == "x\xEF\xBF\xBDy");
  CHECK(j(R"({"a":"\ud800"})").value["a"] == "\xEF\xBF\xBD");
  CHECK(j(R"({"a":"\ud83d\ude00"})").value["a"] == "\xF0\x9F\x98\x80");
  CHECK(j(R"({"a":"\udc00x"})").value["a"] == "\xEF\xBF\xBDx");
}

TEST_CASE("json: helpers") {
  CHECK(looks_like_json("  \n{\"a\":1}"));
  CHECK_FALSE(looks_like_json("[1]"));
  CHECK_FALSE(looks_like_json("a: b"));
  CHECK_FALSE(looks_like_json(""));
  Status syntax(Reason::BadRequest, "invalid character 'x' looking for beginning of value");
  CHECK(unrecognized_body_status("Pod", syntax, "x", true).message() ==
        "the object provided is unrecognized (must be of type Pod): couldn't get version/kind; json parse error: "
        "invalid character 'x' looking for beginning of value (78)");
  CHECK(unrecognized_body_status("Pod", syntax, R"({"apiVersion":"v1","kind":"Pod","metadata":{}})", true).message() ==
        "the object provided is unrecognized (must be of type Pod): couldn't get version/kind; json parse error: "
        "invalid character 'x' looking for beginning of value ({\"apiVersion\":\"v1\",\"kind\":\"Pod ...)");
  CHECK(unrecognized_body_status("Pod", Status(Reason::BadRequest, "yaml: line 1: x"), "", false).message() ==
        "the object provided is unrecognized (must be of type Pod): yaml: line 1: x (<empty>)");
}

TEST_CASE("yaml: a manifest") {
  auto v = y1("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels:\n    app: web\nspec:\n  containers:\n"
              "  - name: c\n    image: nginx:1.25\n    ports:\n    - containerPort: 80\n");
  CHECK(v == json::parse(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"app":"web"}},
    "spec":{"containers":[{"name":"c","image":"nginx:1.25","ports":[{"containerPort":80}]}]}})"));
}

TEST_CASE("yaml: scalars resolve as Kubernetes' YAML reader (goyaml.v2) does") {
  auto v = y1(
      "a: yes\nb: no\nc: on\nd: off\ne: y\nf: true\ng: True\nh: ~\ni: null\nj:\nk: 1\nl: 1.5\nm: 0x1F\nnn: 0777\n"
      "o: 1_000\np: 1e3\nq: '1'\nr: \"true\"\ns: !!str 1\nt: 2024-01-01\nu: .5\nv: +12\nw: 0o17\nx: 1.0\n"
      "yy: 12:30\nz: 08\nA: NO\nB: Off\nC: .inf_not\nD: -.5\nE: '08'\nF: 1e400\nG: ' padded '\nH: -0\n");
  CHECK(v["a"] == true);
  CHECK(v["b"] == false);
  CHECK(v["c"] == true);
  CHECK(v["d"] == false);
  CHECK(v["e"] == true);
  CHECK(v["f"] == true);
  CHECK(v["g"] == true);
  CHECK(v["h"].is_null());
  CHECK(v["i"].is_null());
  CHECK(v["j"].is_null());
  CHECK(v["k"] == 1);
  CHECK(v["l"] == 1.5);
  CHECK(v["m"] == 31);
  CHECK(v["nn"] == 511);
  CHECK(v["o"] == 1000);
  CHECK(v["p"] == 1000);
  CHECK(v["p"].is_number_integer());  // 1e3 is a float in YAML, printed "1000" in JSON, read back as an int
  CHECK(v["q"] == "1");
  CHECK(v["r"] == "true");
  CHECK(v["s"] == "1");
  CHECK(v["t"] == "2024-01-01");
  CHECK(v["u"] == 0.5);
  CHECK(v["v"] == 12);
  CHECK(v["w"] == 15);
  CHECK(v["x"] == 1);
  CHECK(v["x"].is_number_integer());
  CHECK(v["yy"] == "12:30");
  CHECK(v["z"] == 8);  // not octal: falls through to a float 8
  CHECK(v["A"] == false);
  CHECK(v["B"] == false);
  CHECK(v["C"] == ".inf_not");
  CHECK(v["D"] == -0.5);
  CHECK(v["E"] == "08");
  CHECK(v["F"] == "1e400");  // out of float range: stays a string
  CHECK(v["G"] == " padded ");
  CHECK(v["H"] == 0);
  auto big = y1("a: 18446744073709551615\nb: 9223372036854775807\nc: -9223372036854775808\n");
  CHECK(big["a"].is_number_float());
  CHECK(big["b"].get<int64_t>() == INT64_MAX);
  CHECK(big["c"].get<int64_t>() == INT64_MIN);
}

TEST_CASE("yaml: the YAML 1.2 core schema on request") {
  DecodeLimits core;
  core.yaml_schema = YamlSchema::Core12;
  auto v = y1("a: yes\nb: True\nc: 0777\nd: 0o17\ne: on\nf: 1_000\ng: 0x1F\nh: ~\ni: -.inf_x\nj: 1.5\nk: NO\n", core);
  CHECK(v["a"] == "yes");
  CHECK(v["b"] == true);
  CHECK(v["c"] == 777);
  CHECK(v["d"] == 15);
  CHECK(v["e"] == "on");
  CHECK(v["f"] == "1_000");
  CHECK(v["g"] == 31);
  CHECK(v["h"].is_null());
  CHECK(v["i"] == "-.inf_x");
  CHECK(v["j"] == 1.5);
  CHECK(v["k"] == "NO");
}

TEST_CASE("yaml: explicit tags") {
  CHECK(y1("a: !!int \"12\"")["a"] == 12);
  CHECK(y1("a: !!float 1")["a"] == 1);
  CHECK(y1("a: !!bool \"yes\"")["a"] == true);
  CHECK(y1("a: !!null \"\"")["a"].is_null());
  CHECK(y1("a: !!binary aGVsbG8=")["a"] == "hello");
  CHECK(y1("a: !custom 12")["a"] == "12");
  CHECK(y1("a: ! 12")["a"] == "12");
  CHECK(yerr("a: !!int abc") == "yaml: cannot decode !!str `abc` as a !!int");
  CHECK(yerr("a: !!binary '!!'") == "yaml: !!binary value contains invalid base64 data");
}

TEST_CASE("yaml: map keys become strings as sigs.k8s.io/yaml converts them") {
  auto v = y1("1: a\ntrue: b\n1.5: c\n0x10: d\n");
  CHECK(v == json({{"1", "a"}, {"true", "b"}, {"1.5", "c"}, {"16", "d"}}));
  CHECK(y1("yes: x\n") == json({{"true", "x"}}));
  CHECK(y1("y: 1\nn: 2\non: 3\n") == json({{"true", 3}, {"false", 2}}));  // y, n, on are bool keys to goyaml.v2
  CHECK(yerr("? [1, 2]\n: x\n").rfind("yaml: invalid map key: ", 0) == 0);
  CHECK(yerr("~: x\n").rfind("unsupported map key of type: %!s(<nil>), key: <nil>", 0) == 0);
}

TEST_CASE("yaml: duplicate keys are reported like YAMLToJSONStrict, last value wins") {
  auto docs = y("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n");
  REQUIRE(docs.size() == 1);
  CHECK(docs[0].value == json::parse(R"({"a":3,"b":{"c":2}})"));
  CHECK(docs[0].duplicate_fields == std::vector<std::string>{"b.c", "a"});
  REQUIRE(docs[0].strict_errors.size() == 1);
  CHECK(docs[0].strict_errors[0] ==
        "yaml: unmarshal errors:\n  line 4: key \"c\" already set in map\n  line 5: key \"a\" already set in map");
  CHECK(strict_decoding_message(docs[0].strict_errors) ==
        "strict decoding error: yaml: unmarshal errors:\n  line 4: key \"c\" already set in map\n"
        "  line 5: key \"a\" already set in map");
  // 1 and "1" are different keys to goyaml (no duplicate), though both become "1".
  auto mixed = y("1: a\n'1': b\n");
  CHECK(mixed[0].duplicate_fields.empty());
  auto in_list = y("items:\n- name: a\n  name: b\n");
  CHECK(in_list[0].duplicate_fields == std::vector<std::string>{"items[0].name"});
  CHECK(y("a: 1\nb: 2\n")[0].strict_errors.empty());
}

TEST_CASE("yaml: anchors, aliases and merge keys") {
  auto v = y1("base: &b {x: 1, y: 2}\nother: *b\n");
  CHECK(v["other"] == v["base"]);

  auto m = y("base: &b {p: 1, q: 2}\nderived:\n  <<: *b\n  q: 3\n  r: 4\n");
  CHECK(m[0].value["derived"] == json::parse(R"({"p":1,"q":3,"r":4})"));
  // goyaml.v2 in strict mode counts an override of a merged key as a duplicate.
  CHECK(m[0].duplicate_fields == std::vector<std::string>{"derived.q"});
  REQUIRE(m[0].strict_errors.size() == 1);
  CHECK(m[0].strict_errors[0] == "yaml: unmarshal errors:\n  line 4: key \"q\" already set in map");

  auto list = y1("a: &a {p: 1}\nb: &b {p: 2, q: 2}\nc:\n  <<: [*a, *b]\n");
  CHECK(list["c"] == json::parse(R"({"p":1,"q":2})"));  // earlier maps take precedence

  auto inline_merge = y1("c:\n  <<: {p: 1}\n  q: 2\n");
  CHECK(inline_merge["c"] == json::parse(R"({"p":1,"q":2})"));
  CHECK(y1("b:\n  '<<': 1\n")["b"] == json::parse(R"({"<<":1})"));  // a quoted << is an ordinary key

  CHECK(yerr("a: &a 1\nb:\n  <<: *a\n") == "yaml: map merge requires map or sequence of maps as the value");
  CHECK(yerr("a: *nope\n") == "yaml: unknown anchor 'nope' referenced");
  CHECK(yerr("a: &x [1, *x]\n") == "yaml: anchor 'x' value contains itself");
}

TEST_CASE("yaml: excessive aliasing is refused") {
  std::string bomb = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  std::string prev = "a";
  for (char c = 'b'; c <= 'i'; ++c) {
    std::string cur(1, c);
    bomb += cur + ": &" + cur + " [";
    for (int k = 0; k < 9; ++k) bomb += (k ? ",*" : "*") + prev;
    bomb += "]\n";
    prev = cur;
  }
  CHECK(yerr(bomb) == "yaml: document contains excessive aliasing");
}

TEST_CASE("yaml: documents") {
  auto docs = y("---\na: 1\n---\n---\nb: 2\n...\n");
  REQUIRE(docs.size() == 2);
  CHECK(docs[0].value == json({{"a", 1}}));
  CHECK(docs[1].value == json({{"b", 2}}));
  CHECK(y("").empty());
  CHECK(y("null\n").empty());
  CHECK(y("~\n---\n").empty());
  CHECK(y1("hello") == "hello");
  CHECK(y1("[1, two]") == json({1, "two"}));
  DecodeLimits two;
  two.max_yaml_documents = 2;
  CHECK(yerr("a: 1\n---\nb: 1\n---\nc: 1\n", two) == "yaml: too many documents (limit 2)");
}

TEST_CASE("yaml: errors") {
  CHECK(yerr("a: b: c") == "yaml: line 1: mapping values are not allowed in this context");
  CHECK(yerr("a:\n  - b\n c: d\n") == "yaml: line 3: did not find expected key");
  CHECK(yerr("a: .nan\n") == "json: unsupported value: NaN");
  CHECK(yerr("a: -.inf\n") == "json: unsupported value: -Inf");
  std::string deep = std::string(3000, '[') + std::string(3000, ']');
  CHECK(yerr(deep).find("exceeded max depth") != std::string::npos);
  DecodeLimits shallow;
  shallow.max_yaml_depth = 3;
  CHECK(yerr("a:\n  b:\n    c:\n      d: 1\n", shallow) == "yaml: line 4: exceeded max depth of 3");
  DecodeLimits tiny;
  tiny.max_body_bytes = 4;
  auto r = parse_yaml("a: 12345", tiny);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().reason() == Reason::RequestEntityTooLarge);
}
