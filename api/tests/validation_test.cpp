#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "api/validation.h"

using namespace berth::api;
using nlohmann::json;

namespace {

const std::string kSubdomainMsg =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const std::string kLabelMsg =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end "
    "with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const std::string k1035Msg =
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation "
    "is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const std::string kQualifiedRegex =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
    "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const std::string kLabelValueMsg =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
    "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

using Msgs = std::vector<std::string>;

}  // namespace

TEST_CASE("DNS-1123 subdomain") {
  CHECK(is_dns1123_subdomain("example.com").empty());
  CHECK(is_dns1123_subdomain("a").empty());
  CHECK(is_dns1123_subdomain("0.a-b.c").empty());
  CHECK(is_dns1123_subdomain("Foo_") == Msgs{kSubdomainMsg});
  CHECK(is_dns1123_subdomain("") == Msgs{kSubdomainMsg});
  CHECK(is_dns1123_subdomain("a..b") == Msgs{kSubdomainMsg});
  CHECK(is_dns1123_subdomain("-a") == Msgs{kSubdomainMsg});
  CHECK(is_dns1123_subdomain(std::string(253, 'a')).empty());
  CHECK(is_dns1123_subdomain(std::string(254, 'a')) == Msgs{"must be no more than 253 characters"});
  CHECK(is_dns1123_subdomain(std::string(254, 'A')) == Msgs{"must be no more than 253 characters", kSubdomainMsg});
}

TEST_CASE("DNS-1123 and DNS-1035 labels") {
  CHECK(is_dns1123_label("my-name").empty());
  CHECK(is_dns1123_label("123-abc").empty());
  CHECK(is_dns1123_label("a.b") == Msgs{"must not contain dots"});
  CHECK(is_dns1123_label("a_b") == Msgs{kLabelMsg});
  CHECK(is_dns1123_label(std::string(64, 'a')) == Msgs{"must be no more than 63 characters"});
  CHECK(is_dns1035_label("abc-123").empty());
  CHECK(is_dns1035_label("1abc") == Msgs{k1035Msg});
  CHECK(is_dns1035_label("abc-") == Msgs{k1035Msg});
}

TEST_CASE("qualified names and label values") {
  CHECK(is_qualified_name("app").empty());
  CHECK(is_qualified_name("app.kubernetes.io/name").empty());
  CHECK(is_qualified_name("MyName").empty());
  CHECK(is_qualified_name("/a") == Msgs{"prefix part must be non-empty"});
  CHECK(is_qualified_name("Example.com/a") == Msgs{"prefix part " + kSubdomainMsg});
  CHECK(is_qualified_name("") == Msgs{"name part must be non-empty", "name part " + kQualifiedRegex});
  CHECK(is_qualified_name("a/") == Msgs{"name part must be non-empty", "name part " + kQualifiedRegex});
  CHECK(is_qualified_name("-a") == Msgs{"name part " + kQualifiedRegex});
  CHECK(is_qualified_name(std::string(64, 'a')) == Msgs{"name part must be no more than 63 characters"});
  CHECK(is_qualified_name("a/b/c") ==
        Msgs{"a qualified name " + kQualifiedRegex +
             " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"});

  CHECK(is_valid_label_value("").empty());
  CHECK(is_valid_label_value("my_value").empty());
  CHECK(is_valid_label_value("-x") == Msgs{kLabelValueMsg});
  CHECK(is_valid_label_value(std::string(64, 'a')) == Msgs{"must be no more than 63 characters"});
}

TEST_CASE("name rules by kind, generateName prefixes, path segments") {
  CHECK(validate_name("web-1", NameRule::DNS1123Subdomain, false).empty());
  CHECK(validate_name("web-", NameRule::DNS1123Subdomain, true).empty());  // generateName may end in '-'
  CHECK(validate_name("web-", NameRule::DNS1123Subdomain, false) == Msgs{kSubdomainMsg});
  CHECK(validate_name("Web-", NameRule::DNS1123Subdomain, true) == Msgs{kSubdomainMsg});
  CHECK(validate_name("a.b", NameRule::DNS1123Label, false) == Msgs{"must not contain dots"});
  CHECK(validate_name("1svc", NameRule::DNS1035Label, false) == Msgs{k1035Msg});
  CHECK(validate_name("Any_Thing", NameRule::PathSegment, false).empty());
  CHECK(validate_name("..", NameRule::PathSegment, false) == Msgs{"may not be '..'"});
  CHECK(validate_name("a/b%c", NameRule::PathSegment, false) == Msgs{"may not contain '/'", "may not contain '%'"});
  CHECK(validate_name(".", NameRule::PathSegment, true).empty());
}

TEST_CASE("Go rendering helpers") {
  CHECK(go_quote("plain") == "\"plain\"");
  CHECK(go_quote("a\"b\\c\n\t") == "\"a\\\"b\\\\c\\n\\t\"");
  CHECK(go_quote(std::string("\x01\x7f", 2)) == "\"\\x01\\x7f\"");
  CHECK(go_quote("h\xC3\xA9llo") == "\"h\xC3\xA9llo\"");
  CHECK(go_quote("\xff") == "\"\\xff\"");
  CHECK(go_quote("\xC2\xA0") == "\"\\u00a0\"");
  CHECK(go_format_float(1.5) == "1.5");
  CHECK(go_format_float(100000000.0) == "1e+08");
  CHECK(go_format_float(123456) == "123456");
  CHECK(go_format_float(1234567) == "1.234567e+06");
  CHECK(go_format_float(0.0001) == "0.0001");
  CHECK(go_format_float(0.00001) == "1e-05");
  CHECK(go_format_float(-2.5) == "-2.5");
  CHECK(go_format_float(0.1, 32) == "0.1");
  CHECK(go_format_float(0.1) == "0.1");
  CHECK(go_value(json(-1)) == "-1");
  CHECK(go_value(json("x")) == "\"x\"");
  CHECK(go_value(json(true)) == "true");
  CHECK(go_value(json(nullptr)) == "null");
  CHECK(go_value(json{1, "a"}) == "[]interface {}{1, \"a\"}");
  CHECK(go_string_slice({"a", "b"}) == "[]string{\"a\", \"b\"}");
  CHECK(go_string_slice({}, true) == "[]string(nil)");
  CHECK(go_string_slice({}) == "[]string{}");
}

TEST_CASE("field errors render as the apiserver's causes") {
  auto c = field_invalid("spec.replicas", -1, "must be greater than or equal to 0");
  CHECK(c.reason == "FieldValueInvalid");
  CHECK(c.field == "spec.replicas");
  CHECK(c.message == "Invalid value: -1: must be greater than or equal to 0");
  CHECK(cause_string(c) == "spec.replicas: Invalid value: -1: must be greater than or equal to 0");
  CHECK(field_required("metadata.namespace").message == "Required value");
  CHECK(field_required("spec.containers", "must have at least one").message == "Required value: must have at least one");
  CHECK(field_forbidden("metadata.namespace", "not allowed on this type").message == "Forbidden: not allowed on this type");
  CHECK(field_too_long("metadata.annotations", 262144).message == "Too long: may not be more than 262144 bytes");
  auto ns = field_not_supported("spec.restartPolicy", "Sometimes", {"Always", "OnFailure", "Never"});
  CHECK(ns.reason == "FieldValueNotSupported");
  CHECK(ns.message == "Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"");
  CHECK(field_duplicate("spec.ports[1]", "80/TCP").message == "Duplicate value: \"80/TCP\"");
}

TEST_CASE("422 message: one cause bare, several bracketed, duplicates dropped") {
  std::vector<Cause> one = {field_invalid("spec.replicas", -1, "must be greater than or equal to 0")};
  CHECK(invalid_message("apps", "Deployment", "web3", one) ==
        "Deployment.apps \"web3\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0");
  std::vector<Cause> two = {field_required("metadata.name", "name or generateName is required"),
                            field_required("metadata.namespace"), field_required("metadata.namespace")};
  CHECK(invalid_message("", "ConfigMap", "", two) ==
        "ConfigMap \"\" is invalid: [metadata.name: Required value: name or generateName is required, "
        "metadata.namespace: Required value]");
  CHECK(invalid_message("", "Pod", "p", {}) == "Pod \"p\" is invalid");
  Status st = invalid_status("apps", "Deployment", "web3", one);
  CHECK(st.reason() == Reason::Invalid);
  CHECK(http_code(st.reason()) == 422);
  REQUIRE(st.causes().size() == 1);
  CHECK(st.causes()[0].field == "spec.replicas");
}

TEST_CASE("ObjectMeta: names and namespaces") {
  std::vector<Cause> out;
  validate_object_meta(json{{"name", "Foo_"}, {"namespace", "default"}}, true, NameRule::DNS1123Subdomain, out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].field == "metadata.name");
  CHECK(out[0].reason == "FieldValueInvalid");
  CHECK(out[0].message == "Invalid value: \"Foo_\": " + kSubdomainMsg);
  CHECK(invalid_message("", "ConfigMap", "Foo_", out) ==
        "ConfigMap \"Foo_\" is invalid: metadata.name: Invalid value: \"Foo_\": " + kSubdomainMsg);

  out.clear();
  validate_object_meta(json::object(), true, NameRule::DNS1123Subdomain, out);
  REQUIRE(out.size() == 2);
  CHECK(cause_string(out[0]) == "metadata.name: Required value: name or generateName is required");
  CHECK(cause_string(out[1]) == "metadata.namespace: Required value");

  out.clear();
  validate_object_meta(json{{"name", "n1"}, {"namespace", "default"}}, false, NameRule::DNS1123Subdomain, out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].reason == "FieldValueForbidden");
  CHECK(cause_string(out[0]) == "metadata.namespace: Forbidden: not allowed on this type");

  out.clear();
  validate_object_meta(json{{"name", "ok"}, {"namespace", "Bad.NS"}}, true, NameRule::DNS1123Subdomain, out);
  REQUIRE(out.size() == 1);
  CHECK(cause_string(out[0]) == "metadata.namespace: Invalid value: \"Bad.NS\": " + kLabelMsg);

  out.clear();
  validate_object_meta(json{{"generateName", "web-"}, {"name", "web-x7k2p"}, {"namespace", "default"}}, true,
                       NameRule::DNS1123Subdomain, out);
  CHECK(out.empty());

  out.clear();
  validate_object_meta(json{{"name", "my-svc"}, {"namespace", "default"}, {"generation", -1}}, true,
                       NameRule::DNS1035Label, out);
  REQUIRE(out.size() == 1);
  CHECK(cause_string(out[0]) == "metadata.generation: Invalid value: -1: must be greater than or equal to 0");
}

TEST_CASE("ObjectMeta: labels, annotations, owner references, finalizers") {
  std::vector<Cause> out;
  json meta = {{"name", "x"},
               {"namespace", "default"},
               {"labels", {{"app", "web"}, {"bad key!", "v"}, {"tier", "-front"}}},
               {"annotations", {{"Example.com/Note", "ok"}, {"a/b/c", "x"}}}};
  validate_object_meta(meta, true, NameRule::DNS1123Subdomain, out);
  REQUIRE(out.size() == 3);
  CHECK(cause_string(out[0]) == "metadata.labels: Invalid value: \"bad key!\": name part " + kQualifiedRegex);
  CHECK(cause_string(out[1]) == "metadata.labels: Invalid value: \"-front\": " + kLabelValueMsg);
  CHECK(out[2].field == "metadata.annotations");  // upper case annotation prefixes are fine, a/b/c is not
  CHECK(out[2].message.rfind("Invalid value: \"a/b/c\": a qualified name ", 0) == 0);

  out.clear();
  json big = {{"name", "x"}, {"annotations", {{"k", std::string(256 * 1024, 'v')}}}};
  CHECK(validate_annotations_size(big["annotations"]) == "annotations size 262145 is larger than limit 262144");
  validate_object_meta(big, false, NameRule::DNS1123Subdomain, out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].reason == "FieldValueTooLong");
  CHECK(cause_string(out[0]) == "metadata.annotations: Too long: may not be more than 262144 bytes");

  out.clear();
  json owners = {{"name", "x"},
                 {"ownerReferences",
                  {{{"apiVersion", "apps/v1"}, {"kind", "ReplicaSet"}, {"name", "rs1"}, {"uid", "u1"}, {"controller", true}},
                   {{"apiVersion", "apps/v1"}, {"kind", "ReplicaSet"}, {"name", "rs2"}, {"uid", "u2"}, {"controller", true}},
                   {{"apiVersion", "apps/"}, {"kind", ""}, {"name", "n"}}}}};
  validate_object_meta(owners, false, NameRule::DNS1123Subdomain, out);
  REQUIRE(out.size() == 4);
  CHECK(out[0].field == "metadata.ownerReferences");
  CHECK(out[0].message.find("Only one reference can have Controller set to true. Found \"true\" in references for "
                            "ReplicaSet/rs1 and ReplicaSet/rs2") != std::string::npos);
  CHECK(cause_string(out[1]) == "metadata.ownerReferences.apiVersion: Invalid value: \"apps/\": version must not be empty");
  CHECK(cause_string(out[2]) == "metadata.ownerReferences.kind: Invalid value: \"\": kind must not be empty");
  CHECK(cause_string(out[3]) == "metadata.ownerReferences.uid: Invalid value: \"\": uid must not be empty");

  out.clear();
  json event_owner = {{"name", "x"},
                      {"ownerReferences", {{{"apiVersion", "v1"}, {"kind", "Event"}, {"name", "e"}, {"uid", "u"}}}}};
  validate_object_meta(event_owner, false, NameRule::DNS1123Subdomain, out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].message.find(": /v1, Kind=Event is disallowed from being an owner") != std::string::npos);

  out.clear();
  json fin = {{"name", "x"}, {"finalizers", {"orphan", "foregroundDeletion", "Bad/Final/izer"}}};
  validate_object_meta(fin, false, NameRule::DNS1123Subdomain, out);
  REQUIRE(out.size() == 2);
  CHECK(out[0].field == "metadata.finalizers");
  CHECK(cause_string(out[1]) ==
        "metadata.finalizers: Invalid value: []string{\"orphan\", \"foregroundDeletion\", \"Bad/Final/izer\"}: "
        "finalizer orphan and foregroundDeletion cannot be both set");
}
