// Listing: label and field selection, limit/continue paging at one revision, the
// resourceVersion rules, and Table rendering (shared by get, list and watch).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "api/selector.h"
#include "api/status.h"
#include "apiserver/request.h"

#include "store/store.h"

namespace berth::apiserver {

struct Filter {
  api::LabelSelector labels;
  api::FieldSelector fields;
  bool everything = true;  // no selector at all
};

api::Result<Filter> make_filter(const ResourceRequest& rr);
bool matches(const Filter& filter, const Strategy& strategy, const nlohmann::json& obj);

struct Page {
  std::vector<nlohmann::json> items;  // stored form, resourceVersion filled
  // With list_objects(..., raw = true) and no selector: the stored objects unparsed (`items`
  // stays empty), for answers built from the stored bytes.
  std::vector<store::Object> raw_items;
  std::string resource_version;       // of the list
  std::string continue_token;         // empty on the last page
  std::int64_t remaining = 0;
};

api::Result<Page> list_objects(store::Store& store, const ResourceRequest& rr, const Filter& filter,
                               bool raw = false);

// A meta.k8s.io/v1 Table of the given stored objects.
nlohmann::json make_table(const ResourceRequest& rr, const std::vector<nlohmann::json>& items,
                          const std::string& resource_version, const std::string& continue_token,
                          bool with_columns = true);

// The same Table as text for a page, made row by row: no tree of the whole Table and no copies
// (a list of 10,000 pods spent most of its time copying and freeing them). Raw items are parsed
// one at a time as their row is made, so only one object's tree is alive at once (holding
// 10,000 decoded pods took the server past a gigabyte).
std::string table_text(const ResourceRequest& rr, Page page);

// Parses a resourceVersion parameter; 0 when empty. BadRequest when not a number.
api::Result<std::int64_t> parse_resource_version(std::string_view text);

}  // namespace berth::apiserver
