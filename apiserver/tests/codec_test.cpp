// The stored-bytes answers (splice_stored) against what parsing, setting resourceVersion and
// dumping gives: they must agree byte for byte, or splice_stored must decline.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "apiserver/codec.h"

using berth::apiserver::splice_stored;
using nlohmann::json;

namespace {

std::string slow(const std::string& stored, const std::string& rv, bool drop) {
  json obj = json::parse(stored);
  obj["metadata"]["resourceVersion"] = rv;
  if (drop) {
    obj.erase("apiVersion");
    obj.erase("kind");
  }
  return obj.dump();
}

void check_same(const json& obj, const std::string& av = "v1", const std::string& kind = "Pod") {
  const std::string stored = obj.dump();
  for (bool drop : {false, true}) {
    for (const std::string rv : {"1", "123456789"}) {
      std::string out = "prefix";
      REQUIRE(splice_stored(stored, rv, av, kind, drop, out));
      CHECK(out == "prefix" + slow(stored, rv, drop));
    }
  }
}

}  // namespace

TEST_CASE("splice_stored matches parse and dump") {
  check_same({{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", json::object()}});
  check_same({{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", "a"}}}});
  check_same({{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"uid", "u"}}}});
  check_same({{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", "a"}, {"uid", "u"}, {"namespace", "n"}}}});
  check_same({{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata",
               {{"name", "a"},
                {"annotations", {{"x}", "{\"resourceVersion\":\"9\"}"}, {"q\"\\", "]}\\\""}}},
                {"labels", {{"resourceVersionZ", "1"}}},
                {"selfLink", "/x"},
                {"managedFields", json::array({{{"fieldsV1", {{"f:metadata", json::object()}}}}})}}},
              {"spec", {{"a", json::array({1, 2.5, -3, true, false, nullptr, "s", json::object(), json::array()})}}},
              {"status", json::object()},
              {"zzz", "\u00e9\u4e2d\n\t"}});
  check_same({{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"metadata", {{"generation", 3}}}}, "apps/v1",
             "Deployment");
}

TEST_CASE("splice_stored declines what it cannot answer exactly") {
  std::string out;
  auto declines = [&](const std::string& stored, const std::string& av = "v1", const std::string& kind = "Pod") {
    out = "keep";
    bool ok = splice_stored(stored, "5", av, kind, false, out);
    CHECK(out == "keep");
    return !ok;
  };
  CHECK(declines(R"({"apiVersion":"v1","kind":"Pod"})"));                                // no metadata
  CHECK(declines(R"({"apiVersion":"v1","kind":"Pod","metadata":null})"));                // not an object
  CHECK(declines(R"({"apiVersion":"v1","kind":"Pod","metadata":{"resourceVersion":"1"}})"));
  CHECK(declines(R"({"apiVersion":"v2","kind":"Pod","metadata":{}})"));                  // another version
  CHECK(declines(R"({"apiVersion":"v1","kind":"Node","metadata":{}})"));                 // another kind
  CHECK(declines(R"({"kind":"Pod","metadata":{}})"));                                    // no apiVersion
  CHECK(declines(R"({"apiVersion":"v1", "kind":"Pod","metadata":{}})"));                 // not compact
  CHECK(declines(R"({"apiVersion":"v1","kind":"Pod","metadata":{"n\u0061me":"a"}})"));  // escaped key
  CHECK(declines(R"({"apiVersion":"v1","kind":"Pod","metadata":{}}x)"));                 // trailing bytes
  CHECK(declines(R"({"apiVersion":"v1","kind":"Pod","metadata":{"a":"b})"));             // truncated
  CHECK(declines(R"({"apiVersion":"v1","kind":"Pod","metadata":{})"));                   // truncated
  CHECK(declines(R"({"apiVersion":"v1","kind":"Pod","metadata":{"a":1})"));              // truncated
  CHECK(declines(""));
}
