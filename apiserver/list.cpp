#include "apiserver/list.h"

#include "apiserver/codec.h"
#include "apiserver/errors.h"
#include "store/store.h"

namespace berth::apiserver {

using api::Reason;
using api::Status;
using nlohmann::json;

namespace {

const char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(const std::string& in) {
  std::string out;
  int val = 0, bits = -6;
  for (unsigned char c : in) {
    val = (val << 8) + c;
    bits += 8;
    while (bits >= 0) {
      out.push_back(kBase64[(val >> bits) & 0x3F]);
      bits -= 6;
    }
  }
  if (bits > -6) out.push_back(kBase64[((val << 8) >> (bits + 8)) & 0x3F]);
  while (out.size() % 4) out.push_back('=');
  return out;
}

bool base64_decode(const std::string& in, std::string& out) {
  int val = 0, bits = -8;
  for (char ch : in) {
    if (ch == '=') break;
    const char* p = std::strchr(kBase64, ch);
    if (!p || ch == '\0') return false;
    val = (val << 6) + static_cast<int>(p - kBase64);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return true;
}

const char kExpired[] =
    "The provided continue parameter is too old to display a consistent list result. You can start a new list "
    "without the continue parameter, or use the continue token in this response to retrieve the remainder of the "
    "results. Continuing with the provided token results in an inconsistent list - objects that were created, "
    "modified, or deleted between the time the first chunk was returned and now may show up in the list.";

}  // namespace

api::Result<std::int64_t> parse_resource_version(std::string_view text) {
  if (text.empty()) return std::int64_t{0};
  std::int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9' || v > (INT64_MAX - 9) / 10)
      return Status(Reason::BadRequest, "invalid resource version \"" + std::string(text) + "\"");
    v = v * 10 + (c - '0');
  }
  return v;
}

api::Result<Filter> make_filter(const ResourceRequest& rr) {
  Filter f;
  if (auto l = rr.param("labelSelector"); l && !l->empty()) {
    auto sel = api::LabelSelector::parse(*l);
    if (!sel) return sel.take_status();
    f.labels = std::move(*sel);
    f.everything = false;
  }
  if (auto fs = rr.param("fieldSelector"); fs && !fs->empty()) {
    auto sel = api::FieldSelector::parse(*fs);
    if (!sel) return sel.take_status();
    // A kind supports the fields its strategy answers for on an empty object.
    static const json kEmpty = json::object();
    std::vector<std::string> supported = {"metadata.name", "metadata.namespace"};
    bool own_fields = false;
    for (const auto& field : sel->fields()) {
      if (rr.strategy->field_value(kEmpty, field)) supported.push_back(field);
    }
    for (const char* probe : {"status.phase", "spec.nodeName", "type", "spec.unschedulable", "status.replicas",
                              "involvedObject.name", "spec.clusterIP"})
      own_fields |= rr.strategy->field_value(kEmpty, probe).has_value();
    auto s = sel->check_supported(supported, own_fields ? api::FieldSelector::UnsupportedStyle::FieldLabelNotSupported
                                                        : api::FieldSelector::UnsupportedStyle::DefaultMetaOnly);
    if (!s) return s;
    f.fields = std::move(*sel);
    f.everything = false;
  }
  return f;
}

bool matches(const Filter& filter, const Strategy& strategy, const json& obj) {
  if (filter.everything) return true;
  const json& labels = at(obj, {"metadata", "labels"});
  static const json kNoLabels = json::object();
  if (!filter.labels.matches(labels.is_object() ? labels : kNoLabels)) return false;
  return filter.fields.matches([&](const std::string& field) -> std::optional<std::string> {
    if (field == "metadata.name" || field == "metadata.namespace") {
      const json& v = at(obj, {"metadata", field == "metadata.name" ? "name" : "namespace"});
      return v.is_string() ? v.get<std::string>() : std::string();
    }
    return strategy.field_value(obj, field);
  });
}

api::Result<Page> list_objects(store::Store& store, const ResourceRequest& rr, const Filter& filter, bool raw) {
  raw = raw && filter.everything;
  const auto& info = rr.info();
  std::string prefix = list_prefix(info, rr.namespace_);
  std::size_t limit = 0;
  if (auto l = rr.param("limit"); l && !l->empty()) {
    auto v = parse_resource_version(*l);
    if (!v) return Status(Reason::BadRequest, "limit must be a non-negative integer");
    limit = static_cast<std::size_t>(*v);
  }
  std::string rv_text(rr.param("resourceVersion").value_or(""));
  std::string match(rr.param("resourceVersionMatch").value_or(""));
  std::string cont(rr.param("continue").value_or(""));

  store::ListOptions opts;
  opts.prefix = prefix;
  if (!cont.empty()) {
    if (!rv_text.empty() && rv_text != "0")
      return Status(Reason::BadRequest, "specifying resource version is not allowed when using continue");
    std::string raw;
    json token;
    if (base64_decode(cont, raw)) token = json::parse(raw, nullptr, false);
    if (!token.is_object() || token.value("v", "") != "meta.k8s.io/v1" || !token["rv"].is_number_integer() ||
        !token["start"].is_string())
      return Status(Reason::BadRequest, "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)");
    opts.revision = token["rv"].get<std::int64_t>();
    opts.start_after = prefix + token["start"].get<std::string>();
  } else {
    auto rv = parse_resource_version(rv_text);
    if (!rv) return rv.take_status();
    if (!match.empty() && match != "Exact" && match != "NotOlderThan")
      return Status(Reason::BadRequest, "resourceVersionMatch: Unsupported value: \"" + match +
                                            "\": supported values: \"Exact\", \"NotOlderThan\"");
    if (!match.empty() && rv_text.empty())
      return Status(Reason::BadRequest, "resourceVersionMatch is forbidden unless resourceVersion is provided");
    if (match == "Exact") {
      if (*rv == 0) return Status(Reason::BadRequest, "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"");
      opts.revision = *rv;
    } else if (*rv > 0 && *rv > store.current_revision()) {
      Status s(Reason::Timeout, "Too large resource version: " + std::to_string(*rv) + ", current: " +
                                    std::to_string(store.current_revision()));
      s.retry_after_seconds = 1;
      return s;
    }
  }

  Page page;
  std::size_t batch = limit ? std::max<std::size_t>(limit, 100) : 0;
  for (;;) {
    opts.limit = filter.everything ? limit : batch;
    if (limit) opts.limit = filter.everything ? limit - page.items.size() - page.raw_items.size() : batch;
    auto result = store.list(opts);
    if (!result) {
      if (result.status().reason() == Reason::Gone)
        return Status(!cont.empty() ? Reason::Expired : Reason::Gone,
                      !cont.empty() ? kExpired : "The resourceVersion for the provided list is too old.");
      return result.take_status();
    }
    opts.revision = result->revision;
    std::string last_key;
    const std::string store_last = result->items.empty() ? "" : result->items.back().key;  // items may be moved
    bool full = false;
    for (auto& item : result->items) {
      last_key = item.key;
      if (raw) {
        page.raw_items.push_back(std::move(item));
        if (limit && page.raw_items.size() >= limit) {
          full = true;
          break;
        }
        continue;
      }
      auto obj = decode_stored(item);
      if (!obj) return obj.take_status();
      if (!matches(filter, *rr.strategy, *obj)) continue;
      page.items.push_back(std::move(*obj));
      if (limit && page.items.size() >= limit) {
        full = true;
        break;
      }
    }
    bool more_in_store = result->more || (full && last_key != store_last);
    if (full || !result->more) {
      if (limit && more_in_store && !last_key.empty()) {
        json token = {{"v", "meta.k8s.io/v1"}, {"rv", result->revision}, {"start", last_key.substr(prefix.size())}};
        page.continue_token = base64_encode(token.dump());
      }
      break;
    }
    opts.start_after = last_key;
  }
  page.resource_version = std::to_string(opts.revision);
  return page;
}

json make_table(const ResourceRequest& rr, const std::vector<json>& items, const std::string& resource_version,
                const std::string& continue_token, bool with_columns) {
  json table = {{"kind", "Table"}, {"apiVersion", "meta.k8s.io/v1"}};
  table["metadata"] = json::object();
  if (!resource_version.empty()) table["metadata"]["resourceVersion"] = resource_version;
  if (!continue_token.empty()) table["metadata"]["continue"] = continue_token;
  json columns = json::array();
  if (with_columns) {
    for (const auto& c : rr.strategy->columns())
      columns.push_back({{"name", c.name}, {"type", c.type}, {"format", c.format}, {"description", c.description},
                         {"priority", c.priority}});
  }
  table["columnDefinitions"] = std::move(columns);
  json rows = json::array();
  for (const auto& obj : items) {
    json row = {{"cells", rr.strategy->cells(obj)}};
    if (rr.include_object == "Object") {
      row["object"] = rr.strategy->to_version(obj, rr.version);
    } else if (rr.include_object != "None") {
      row["object"] = {{"kind", "PartialObjectMetadata"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", obj["metadata"]}};
    }
    rows.push_back(std::move(row));
  }
  table["rows"] = std::move(rows);
  return table;
}

std::string table_text(const ResourceRequest& rr, Page page) {
  std::string text = make_table(rr, {}, page.resource_version, page.continue_token).dump();
  // "rows" is a Table's last key: its dump ends with "rows":[]} and the rows go in between.
  constexpr std::string_view kTail = "\"rows\":[]}";
  if (text.size() < kTail.size() || std::string_view(text).substr(text.size() - kTail.size()) != kTail) {
    for (const auto& item : page.raw_items)
      if (auto obj = decode_stored(item)) page.items.push_back(std::move(*obj));
    return make_table(rr, page.items, page.resource_version, page.continue_token).dump();
  }
  text.resize(text.size() - 2);
  bool first = true;
  auto add_row = [&](json& obj) {
    if (!first) text += ',';
    first = false;
    // As make_table builds a row, taking the object's parts instead of copying them.
    json row = {{"cells", rr.strategy->cells(obj)}};
    if (rr.include_object == "Object") {
      row["object"] = rr.strategy->to_version(std::move(obj), rr.version);
    } else if (rr.include_object != "None") {
      row["object"] = {{"kind", "PartialObjectMetadata"}, {"apiVersion", "meta.k8s.io/v1"},
                       {"metadata", std::move(obj["metadata"])}};
    }
    text += row.dump();
    obj = json();
  };
  for (auto& obj : page.items) add_row(obj);
  for (auto& item : page.raw_items) {
    auto obj = decode_stored(item);
    if (!obj) continue;  // as list_objects would have failed on it; stored bytes are ours
    add_row(*obj);
    item.value = std::string();  // the text is in the answer now
  }
  text += "]}";
  return text;
}

}  // namespace berth::apiserver
