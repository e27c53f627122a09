// The stored-bytes answers (splice_stored, and splice_at_slot with the slot encode_stored found)
// against what parsing, setting resourceVersion and dumping gives: they must agree byte for
// byte, or decline.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "apiserver/codec.h"

using berth::apiserver::encode_stored;
using berth::apiserver::RvSlot;
using berth::apiserver::splice_at_slot;
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
  // encode_stored writes what dump() writes without resourceVersion, and the slot it finds
  // gives the same answer as parsing, setting resourceVersion and dumping.
  json without_rv = obj;
  without_rv["metadata"].erase("resourceVersion");
  RvSlot slot;
  const std::string encoded = encode_stored(obj, av, kind, slot);
  CHECK(encoded == without_rv.dump());
  CHECK(encode_stored(obj) == without_rv.dump());
  for (const std::string rv : {"1", "123456789"}) {
    std::string out = "prefix";
    REQUIRE(splice_at_slot(encoded, slot, rv, out));
    CHECK(out == "prefix" + slow(without_rv.dump(), rv, false));
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

TEST_CASE("encode_stored gives no slot where the answer would not be the stored form") {
  RvSlot slot;
  std::string out = "keep";
  auto no_slot = [&](const json& obj, const std::string& av = "v1", const std::string& kind = "Pod") {
    const std::string text = encode_stored(obj, av, kind, slot);
    CHECK(text == obj.dump());
    return !splice_at_slot(text, slot, "5", out) && out == "keep";
  };
  CHECK(no_slot({{"apiVersion", "v1"}, {"kind", "Pod"}}));                          // no metadata
  CHECK(no_slot({{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", nullptr}}));   // not an object
  CHECK(no_slot({{"apiVersion", "v2"}, {"kind", "Pod"}, {"metadata", json::object()}}));
  CHECK(no_slot({{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", json::object()}}));
  CHECK(no_slot({{"kind", "Pod"}, {"metadata", json::object()}}));

  // A resourceVersion in the object is not stored, and the slot's replaces it.
  json obj = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", "a"}, {"resourceVersion", "9"}}}};
  const std::string text = encode_stored(obj, "v1", "Pod", slot);
  CHECK(text == R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}})");
  std::string answer;
  REQUIRE(splice_at_slot(text, slot, "10", answer));
  CHECK(answer == R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","resourceVersion":"10"}})");
}
