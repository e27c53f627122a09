#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>

#include "api/selector.h"

using berth::api::FieldSelector;
using berth::api::LabelOp;
using berth::api::LabelRequirement;
using berth::api::LabelSelector;
using berth::api::Reason;
using nlohmann::json;

namespace {

LabelSelector must_parse(const std::string& s) {
  auto r = LabelSelector::parse(s);
  REQUIRE_MESSAGE(r.ok(), s << ": " << r.status().message());
  return std::move(r).value();
}

std::string parse_error(const std::string& s) {
  auto r = LabelSelector::parse(s);
  REQUIRE_MESSAGE(!r.ok(), s << " parsed unexpectedly");
  CHECK(r.status().reason() == Reason::BadRequest);
  return r.status().message();
}

const std::string kQualifiedNameMsg =
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const std::string kLabelValueMsg =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
    "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

}  // namespace

TEST_CASE("label selector: upstream good strings round-trip through to_string") {
  // labels/selector_test.go TestSelectorParse: String() equals the input without spaces.
  for (std::string s : {"x=a,y=b,z=c", "", "x!=a,y=b", "x=", "x= ", "x=,z= ", "x= ,z= ", "!x", "x>1", "x>1,z<5"}) {
    auto sel = must_parse(s);
    std::string want = s;
    want.erase(std::remove(want.begin(), want.end(), ' '), want.end());
    CHECK_MESSAGE(sel.to_string() == want, s);
  }
}

TEST_CASE("label selector: upstream bad strings fail") {
  for (std::string s : {"x=a||y=b", "x==a==b", "!x=a", "x<a"}) {
    auto r = LabelSelector::parse(s);
    CHECK_MESSAGE(!r.ok(), s);
  }
}

TEST_CASE("label selector: canonical form sorts by key and normalizes sets") {
  CHECK(must_parse("b==c,a!=d").to_string() == "a!=d,b==c");
  CHECK(must_parse("x in (foo,,baz),y,z notin ()").to_string() == "x in (,baz,foo),y,z notin ()");
  CHECK(must_parse("x in (abc,)").to_string() == "x in (,abc)");
  CHECK(must_parse("x  notin\t\t(abc,def)").to_string() == "x notin (abc,def)");
  CHECK(must_parse("x notin\n (abc)").to_string() == "x notin (abc)");
  CHECK(must_parse("x in (b,a,b)").requirements()[0].values == std::vector<std::string>{"a", "b"});
  // "in" and "notin" are identifiers where a key or value is expected.
  auto s = must_parse("notin=in");
  CHECK(s.matches(json{{"notin", "in"}}));
  CHECK(must_parse("in in (in)").to_string() == "in in (in)");
}

TEST_CASE("label selector: matching") {
  json labels = {{"app", "web"}, {"tier", "frontend"}, {"replicas", "3"}};
  CHECK(must_parse("").matches(labels));
  CHECK(must_parse("").empty());
  CHECK(must_parse("app=web").matches(labels));
  CHECK(must_parse("app==web,tier=frontend").matches(labels));
  CHECK_FALSE(must_parse("app=db").matches(labels));
  CHECK(must_parse("app!=db").matches(labels));
  CHECK(must_parse("missing!=x").matches(labels));  // != matches when the label is absent
  CHECK(must_parse("app in (db,web)").matches(labels));
  CHECK_FALSE(must_parse("app notin (db,web)").matches(labels));
  CHECK(must_parse("missing notin (x)").matches(labels));
  CHECK(must_parse("app").matches(labels));
  CHECK_FALSE(must_parse("!app").matches(labels));
  CHECK(must_parse("!missing").matches(labels));
  CHECK(must_parse("replicas>2").matches(labels));
  CHECK_FALSE(must_parse("replicas>3").matches(labels));
  CHECK(must_parse("replicas<4").matches(labels));
  CHECK_FALSE(must_parse("app>1").matches(labels));      // non-integer label value never matches gt/lt
  CHECK_FALSE(must_parse("missing<4").matches(labels));  // absent label never matches gt/lt
  CHECK(must_parse("x=").matches(json{{"x", ""}}));
  CHECK_FALSE(must_parse("x=").matches(json::object()));
  CHECK(must_parse("x in ()").matches(json{{"x", ""}}));
  CHECK(must_parse("a=b").matches(json{{"a", "b"}}));
  CHECK_FALSE(must_parse("a=b").matches(nullptr));
  CHECK(must_parse("!a").matches(nullptr));
}

TEST_CASE("label selector: parse errors carry upstream's text") {
  CHECK(parse_error("a b") == "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt");
  CHECK(parse_error("a=b c") == "found 'c', expected: ',' or 'end of string'");
  CHECK(parse_error("a,") == "found '', expected: identifier after ','");
  CHECK(parse_error(",") == "found ',', expected: !, identifier, or 'end of string'");
  CHECK(parse_error("a in b") == "unable to parse requirement: found 'b' expected: '('");
  CHECK(parse_error("a in (b") == "unable to parse requirement: found '', expected: ',' or ')'");
  CHECK(parse_error("a in (b c)") == "unable to parse requirement: found 'c', expected: ',' or ')'");
  CHECK(parse_error("a in (=)") == "unable to parse requirement: found '=', expected: ',', ')' or identifier");
  CHECK(parse_error("x in (abc,def),") == "found '', expected: identifier after ','");
  CHECK(parse_error("!") == "unable to parse requirement: found '', expected: identifier");
  // '|' is not an operator character, so "a||y" is one (invalid) value.
  CHECK(parse_error("x=a||y=b") == "unable to parse requirement: values[0][x]: Invalid value: \"a||y\": " + kLabelValueMsg);
  CHECK(parse_error("x==a==b") == "found '==', expected: ',' or 'end of string'");
  CHECK(parse_error("!x=a") == "found '=', expected: ',' or 'end of string'");
  CHECK(parse_error("a$b=c") == "unable to parse requirement: <nil>: Invalid value: \"a$b\": " + kQualifiedNameMsg);
  CHECK(parse_error("a=b$") == "unable to parse requirement: values[0][a]: Invalid value: \"b$\": " + kLabelValueMsg);
  CHECK(parse_error("x<a") ==
        "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an "
        "integer");
  // Two bad values: the aggregate prints them bracketed.
  CHECK(parse_error("k in (a$,b$)") == "unable to parse requirement: [values[0][k]: Invalid value: \"a$\": " +
                                           kLabelValueMsg + ", values[1][k]: Invalid value: \"b$\": " +
                                           kLabelValueMsg + "]");
  std::string long_value(64, 'a');
  CHECK(parse_error("k=" + long_value) == "unable to parse requirement: values[0][k]: Invalid value: \"" +
                                              long_value + "\": must be no more than 63 characters");
  CHECK(parse_error("a/b/c") ==
        "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist of "
        "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
        "'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
        "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. "
        "'example.com/MyName')");
}

TEST_CASE("label selector: metav1.LabelSelector conversion") {
  // LabelSelectorAsSelector: nil matches nothing, empty matches everything.
  auto nothing = LabelSelector::from_json(nullptr);
  REQUIRE(nothing.ok());
  CHECK(nothing->is_nothing());
  CHECK_FALSE(nothing->empty());
  CHECK_FALSE(nothing->matches(json::object()));
  CHECK(nothing->to_string().empty());

  auto all = LabelSelector::from_json(json::object());
  REQUIRE(all.ok());
  CHECK(all->empty());
  CHECK(all->matches(json{{"a", "b"}}));
  auto all2 = LabelSelector::from_json(json{{"matchLabels", json::object()}, {"matchExpressions", json::array()}});
  REQUIRE(all2.ok());
  CHECK(all2->empty());

  json ls = {{"matchLabels", {{"app", "web"}}},
             {"matchExpressions",
              {{{"key", "tier"}, {"operator", "In"}, {"values", {"frontend", "backend"}}},
               {{"key", "canary"}, {"operator", "DoesNotExist"}},
               {{"key", "env"}, {"operator", "NotIn"}, {"values", {"dev"}}},
               {{"key", "team"}, {"operator", "Exists"}}}}};
  auto sel = LabelSelector::from_json(ls);
  REQUIRE(sel.ok());
  CHECK(sel->to_string() == "app=web,!canary,env notin (dev),team,tier in (backend,frontend)");
  CHECK(sel->matches(json{{"app", "web"}, {"tier", "backend"}, {"team", "x"}}));
  CHECK_FALSE(sel->matches(json{{"app", "web"}, {"tier", "backend"}, {"team", "x"}, {"canary", "1"}}));
  CHECK_FALSE(sel->matches(json{{"app", "web"}, {"tier", "backend"}, {"team", "x"}, {"env", "dev"}}));
  CHECK(sel->requires_exact_match("app") == std::optional<std::string>("web"));
  CHECK_FALSE(sel->requires_exact_match("tier").has_value());

  auto bad_op = LabelSelector::from_json(json{{"matchExpressions", {{{"key", "a"}, {"operator", "Gt"}}}}});
  REQUIRE_FALSE(bad_op.ok());
  CHECK(bad_op.status().message() == "\"Gt\" is not a valid label selector operator");

  auto no_values = LabelSelector::from_json(json{{"matchExpressions", {{{"key", "a"}, {"operator", "In"}}}}});
  REQUIRE_FALSE(no_values.ok());
  CHECK(no_values.status().message() ==
        "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty");

  auto exists_values = LabelSelector::from_json(
      json{{"matchExpressions", {{{"key", "a"}, {"operator", "Exists"}, {"values", {"x"}}}}}});
  REQUIRE_FALSE(exists_values.ok());
  CHECK(exists_values.status().message() ==
        "values: Invalid value: []string{\"x\"}: values set must be empty for exists and does not exist");

  auto bad_key = LabelSelector::from_json(json{{"matchLabels", {{"-a", "b"}}}});
  REQUIRE_FALSE(bad_key.ok());
  CHECK(bad_key.status().message() == "key: Invalid value: \"-a\": " + kQualifiedNameMsg);
}

TEST_CASE("label selector: requirement constructor and set selectors") {
  auto r = LabelRequirement::make("a", LabelOp::Equals, {"x", "y"});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() ==
        "values: Invalid value: []string{\"x\", \"y\"}: exact-match compatibility requires one single value");
  auto gt = LabelRequirement::make("a", LabelOp::GreaterThan, {"1", "2"});
  REQUIRE_FALSE(gt.ok());
  CHECK(gt.status().message() ==
        "values: Invalid value: []string{\"1\", \"2\"}: for 'Gt', 'Lt' operators, exactly one value is required");

  auto set = LabelSelector::from_set(json{{"b", "2"}, {"a", "1"}});
  CHECK(set.to_string() == "a=1,b=2");
  CHECK(set.matches(json{{"a", "1"}, {"b", "2"}, {"c", "3"}}));
  CHECK(LabelSelector::from_set(json::object()).empty());

  auto s = must_parse("b=1");
  s.add(LabelRequirement{"a", LabelOp::Exists, {}});
  CHECK(s.to_string() == "a,b=1");
  auto n = LabelSelector::nothing();
  n.add(LabelRequirement{"a", LabelOp::Exists, {}});
  CHECK(n.is_nothing());
}

TEST_CASE("label selector: validation causes for spec.selector") {
  std::vector<berth::api::Cause> causes;
  json ls = {{"matchLabels", {{"app", "Bad Value"}}},
             {"matchExpressions",
              {{{"key", "tier"}, {"operator", "In"}},
               {{"key", "x"}, {"operator", "Exists"}, {"values", {"a"}}},
               {{"key", "y"}, {"operator", "Gt"}, {"values", {"1"}}}}}};
  berth::api::validate_label_selector(ls, "spec.selector", causes);
  REQUIRE(causes.size() == 4);
  CHECK(causes[0].field == "spec.selector.matchLabels");
  CHECK(causes[0].reason == "FieldValueInvalid");
  CHECK(causes[0].message == "Invalid value: \"Bad Value\": " + kLabelValueMsg);
  CHECK(causes[1].field == "spec.selector.matchExpressions[0].values");
  CHECK(causes[1].reason == "FieldValueRequired");
  CHECK(causes[1].message == "Required value: must be specified when `operator` is 'In' or 'NotIn'");
  CHECK(causes[2].field == "spec.selector.matchExpressions[1].values");
  CHECK(causes[2].reason == "FieldValueForbidden");
  CHECK(causes[2].message == "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
  CHECK(causes[3].field == "spec.selector.matchExpressions[2].operator");
  CHECK(causes[3].message == "Invalid value: \"Gt\": not a valid selector operator");
}

TEST_CASE("field selector: parse, match, print") {
  auto fs = FieldSelector::parse("status.phase!=Succeeded,status.phase!=Failed");
  REQUIRE(fs.ok());
  // Terms are sorted as strings before parsing.
  CHECK(fs->to_string() == "status.phase!=Failed,status.phase!=Succeeded");
  auto getter = [](std::string phase) {
    return [phase](const std::string& f) -> std::optional<std::string> {
      if (f == "status.phase") return phase;
      return std::nullopt;
    };
  };
  CHECK(fs->matches(getter("Running")));
  CHECK_FALSE(fs->matches(getter("Failed")));

  auto node = FieldSelector::parse("spec.nodeName=");
  REQUIRE(node.ok());
  CHECK(node->matches([](const std::string&) { return std::nullopt; }));  // absent reads as ""
  CHECK(node->to_string() == "spec.nodeName=");

  auto dbl = FieldSelector::parse("metadata.name==web");
  REQUIRE(dbl.ok());
  CHECK(dbl->to_string() == "metadata.name=web");
  CHECK(dbl->requires_exact_match("metadata.name") == std::optional<std::string>("web"));

  auto esc = FieldSelector::parse("metadata.name=a\\,b\\=c\\\\d");
  REQUIRE(esc.ok());
  CHECK(esc->requirements()[0].value == "a,b=c\\d");
  CHECK(esc->to_string() == "metadata.name=a\\,b\\=c\\\\d");

  auto empty = FieldSelector::parse("");
  REQUIRE(empty.ok());
  CHECK(empty->empty());
  CHECK(empty->matches([](const std::string&) { return std::nullopt; }));
  auto commas = FieldSelector::parse(",,");
  REQUIRE(commas.ok());
  CHECK(commas->empty());

  auto multi = FieldSelector::parse("b=1,a=2,b=1");
  REQUIRE(multi.ok());
  CHECK(multi->fields() == std::vector<std::string>{"a", "b"});
}

TEST_CASE("field selector: errors carry upstream's text") {
  auto e1 = FieldSelector::parse("a");
  REQUIRE_FALSE(e1.ok());
  CHECK(e1.status().reason() == Reason::BadRequest);
  CHECK(e1.status().message() == "invalid selector: 'a'; can't understand 'a'");
  auto e2 = FieldSelector::parse("x=1,b");
  REQUIRE_FALSE(e2.ok());
  CHECK(e2.status().message() == "invalid selector: 'x=1,b'; can't understand 'b'");
  auto e3 = FieldSelector::parse("a=b=c");
  REQUIRE_FALSE(e3.ok());
  CHECK(e3.status().message() == "invalid field selector: unescaped character in value: 61");
  auto e4 = FieldSelector::parse("a=b\\");
  REQUIRE_FALSE(e4.ok());
  CHECK(e4.status().message() == "invalid field selector: invalid escape sequence: \\");
  auto e5 = FieldSelector::parse("a=b\\n");
  REQUIRE_FALSE(e5.ok());
  CHECK(e5.status().message() == "invalid field selector: invalid escape sequence: \\n");

  auto fs = FieldSelector::parse("spec.nodeName=n1,spec.foo=bar");
  REQUIRE(fs.ok());
  auto st = fs->check_supported({"metadata.name", "metadata.namespace", "spec.nodeName"});
  CHECK(st.reason() == Reason::BadRequest);
  CHECK(st.message() == "field label not supported: spec.foo");
  auto st2 = fs->check_supported({"metadata.name", "metadata.namespace"},
                                 FieldSelector::UnsupportedStyle::DefaultMetaOnly);
  CHECK(st2.message() == "\"spec.foo\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"");
  CHECK(fs->check_supported({"spec.nodeName", "spec.foo"}).is_ok());
}

TEST_CASE("field selector: transform renames and drops terms") {
  auto fs = FieldSelector::parse("spec.host=n1,metadata.name=x");
  REQUIRE(fs.ok());
  using Pair = std::pair<std::string, std::string>;
  auto t = fs->transform([](const std::string& f, const std::string& v) -> berth::api::Result<Pair> {
    if (f == "spec.host") return Pair{"spec.nodeName", v};
    if (f == "metadata.name") return Pair{"", ""};
    return berth::api::Status(Reason::BadRequest, "field label not supported: " + f);
  });
  REQUIRE(t.ok());
  CHECK(t->to_string() == "spec.nodeName=n1");
}
