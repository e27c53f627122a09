#include "apiserver/discovery.h"

#include <map>
#include <set>

#include "api/schema.h"
#include "api/suspend.h"
#include "apiserver/errors.h"
#include "apiserver/metrics.h"
#include "store/store.h"

namespace berth::apiserver {

using api::Reason;
using nlohmann::json;

namespace {

const char kAggregatedV2[] = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const char kAggregatedV2Beta1[] = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

net::Response json_response(const json& body, const std::string& content_type = "application/json") {
  net::Response r;
  r.body = body.dump();
  r.headers.emplace_back("Content-Type", content_type);
  return r;
}

net::Response not_found_path() {
  return error_response(Reason::NotFound, "the server could not find the requested resource");
}

// Which aggregated discovery form the client accepts, if any ("" for legacy).
std::string aggregated_type(const net::Request& request) {
  std::string accept(request.header("accept").value_or(""));
  std::string compact;
  for (char c : accept)
    if (c != ' ') compact.push_back(c);
  // Clients list their preferences in order; take the first aggregated form named.
  auto v2 = compact.find("g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList");
  auto v2b = compact.find("g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList");
  if (v2 != std::string::npos && (v2b == std::string::npos || v2 < v2b)) return kAggregatedV2;
  if (v2b != std::string::npos) return kAggregatedV2Beta1;
  return "";
}

// Groups in the order Kubernetes lists them, each with its versions (preferred first).
struct GroupVersions {
  std::string name;
  std::vector<std::string> versions;
};

std::vector<GroupVersions> groups_of(const Api& api, bool core) {
  std::vector<GroupVersions> out;
  for (const auto& k : api.kinds()) {
    const auto& i = k->info();
    if (i.group.empty() != core) continue;
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& g) { return g.name == i.group; });
    if (it == out.end()) {
      out.push_back({i.group, {}});
      it = out.end() - 1;
    }
    for (const auto& v : i.versions)
      if (std::find(it->versions.begin(), it->versions.end(), v) == it->versions.end()) it->versions.push_back(v);
  }
  return out;
}

bool serves(const KindInfo& i, const std::string& group, const std::string& version) {
  return i.group == group && std::find(i.versions.begin(), i.versions.end(), version) != i.versions.end();
}

json legacy_resources(const Api& api, const std::string& group, const std::string& version) {
  json resources = json::array();
  for (const auto& k : api.kinds()) {
    const auto& i = k->info();
    if (!serves(i, group, version)) continue;
    json r = {{"name", i.plural}, {"singularName", i.singular}, {"namespaced", i.namespaced},
              {"kind", i.kind}, {"verbs", i.verbs}};
    if (!i.short_names.empty()) r["shortNames"] = i.short_names;
    if (!i.categories.empty()) r["categories"] = i.categories;
    resources.push_back(r);
    for (const auto& s : i.subresources) {
      json sr = {{"name", i.plural + "/" + s.name}, {"singularName", ""}, {"namespaced", i.namespaced},
                 {"kind", s.kind}, {"verbs", s.verbs}};
      if (s.group != i.group || (!s.version.empty() && s.version != version)) {
        sr["group"] = s.group;
        sr["version"] = s.version;
      }
      resources.push_back(sr);
    }
  }
  return {{"kind", "APIResourceList"}, {"apiVersion", "v1"},
          {"groupVersion", group.empty() ? version : group + "/" + version}, {"resources", resources}};
}

json aggregated(const Api& api, bool core, const std::string& content_type) {
  std::string api_version = content_type == kAggregatedV2 ? "apidiscovery.k8s.io/v2" : "apidiscovery.k8s.io/v2beta1";
  json items = json::array();
  for (const auto& g : groups_of(api, core)) {
    json versions = json::array();
    for (const auto& v : g.versions) {
      json resources = json::array();
      for (const auto& k : api.kinds()) {
        const auto& i = k->info();
        if (!serves(i, g.name, v)) continue;
        json r = {{"resource", i.plural},
                  {"responseKind", {{"group", i.group}, {"version", v}, {"kind", i.kind}}},
                  {"scope", i.namespaced ? "Namespaced" : "Cluster"},
                  {"singularResource", i.singular},
                  {"verbs", i.verbs}};
        if (!i.short_names.empty()) r["shortNames"] = i.short_names;
        if (!i.categories.empty()) r["categories"] = i.categories;
        if (!i.subresources.empty()) {
          json subs = json::array();
          for (const auto& s : i.subresources)
            subs.push_back({{"subresource", s.name},
                            {"responseKind", {{"group", s.group}, {"version", s.version.empty() ? v : s.version}, {"kind", s.kind}}},
                            {"verbs", s.verbs}});
          r["subresources"] = subs;
        }
        resources.push_back(r);
      }
      versions.push_back({{"version", v}, {"resources", resources}, {"freshness", "Current"}});
    }
    items.push_back({{"metadata", {{"name", g.name}, {"creationTimestamp", nullptr}}}, {"versions", versions}});
  }
  return {{"kind", "APIGroupDiscoveryList"}, {"apiVersion", api_version}, {"metadata", json::object()}, {"items", items}};
}

json group_json(const GroupVersions& g) {
  json versions = json::array();
  for (const auto& v : g.versions) versions.push_back({{"groupVersion", g.name + "/" + v}, {"version", v}});
  return {{"name", g.name}, {"versions", versions}, {"preferredVersion", versions.at(0)}};
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    std::size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) parts.push_back(path.substr(i, j - i));
    i = j;
  }
  return parts;
}

bool wants_table(const net::Request& request) {
  std::string accept(request.header("accept").value_or(""));
  return accept.find("as=Table") != std::string::npos && accept.find("g=meta.k8s.io") != std::string::npos;
}

}  // namespace

RouteResult route(Api& api, net::Request& request, ResourceRequest& rr, net::Response& response) {
  const std::string& path = request.path;
  // The OpenAPI documents run to megabytes of JSON: not on an io thread.
  if (path.rfind("/openapi/", 0) == 0) api::leave_io_thread();
  if (path == "/metrics") {
    response = net::Response::text(200, api.metrics().render(), "text/plain; version=0.0.4; charset=utf-8");
    return RouteResult::Answered;
  }
  if (path == "/openapi/v2") {
    response = json_response(api::openapi_v2());
    return RouteResult::Answered;
  }
  if (path == "/openapi/v3" || path == "/openapi/v3/") {
    response = json_response(api::openapi_v3_root());
    return RouteResult::Answered;
  }
  if (path.rfind("/openapi/v3/", 0) == 0) {
    // /openapi/v3/api/v1 or /openapi/v3/apis/<group>/<version>
    auto parts = split_path(path.substr(std::string("/openapi/v3/").size()));
    json doc;
    if (parts.size() == 2 && parts[0] == "api") doc = api::openapi_v3_group_version("", parts[1]);
    else if (parts.size() == 3 && parts[0] == "apis") doc = api::openapi_v3_group_version(parts[1], parts[2]);
    response = doc.is_null() ? not_found_path() : json_response(doc);
    if (!doc.is_null()) response.headers.emplace_back("Cache-Control", "public, immutable");
    return RouteResult::Answered;
  }

  auto parts = split_path(path);
  if (parts.empty() || (parts[0] != "api" && parts[0] != "apis")) {
    response = not_found_path();
    return RouteResult::Answered;
  }
  bool core = parts[0] == "api";
  std::size_t base;  // index of the first segment after the group version
  if (core) {
    if (parts.size() == 1) {
      auto agg = aggregated_type(request);
      if (!agg.empty()) {
        response = json_response(aggregated(api, true, agg), agg);
      } else {
        response = json_response({{"kind", "APIVersions"}, {"versions", {"v1"}},
                                  {"serverAddressByClientCIDRs",
                                   {{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", std::string(request.header("host").value_or(""))}}}}});
      }
      return RouteResult::Answered;
    }
    rr.group = "";
    rr.version = parts[1];
    base = 2;
  } else {
    if (parts.size() == 1) {
      auto agg = aggregated_type(request);
      if (!agg.empty()) {
        response = json_response(aggregated(api, false, agg), agg);
      } else {
        json groups = json::array();
        for (const auto& g : groups_of(api, false)) groups.push_back(group_json(g));
        response = json_response({{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}});
      }
      return RouteResult::Answered;
    }
    rr.group = parts[1];
    if (parts.size() == 2) {
      for (const auto& g : groups_of(api, false)) {
        if (g.name != rr.group) continue;
        json body = group_json(g);
        body["kind"] = "APIGroup";
        body["apiVersion"] = "v1";
        response = json_response(body);
        return RouteResult::Answered;
      }
      response = not_found_path();
      return RouteResult::Answered;
    }
    rr.version = parts[2];
    base = 3;
  }

  bool version_known = false;
  for (const auto& k : api.kinds())
    if (serves(k->info(), rr.group, rr.version)) version_known = true;
  if (!version_known) {
    response = not_found_path();
    return RouteResult::Answered;
  }
  if (parts.size() == base) {
    if (request.method != "GET") {
      response = error_response(Reason::MethodNotAllowed, "the server does not allow this method on the requested resource");
      return RouteResult::Answered;
    }
    response = json_response(legacy_resources(api, rr.group, rr.version));
    return RouteResult::Answered;
  }

  // namespaces/<ns>/<plural>[/<name>[/<sub>]] or <plural>[/<name>[/<sub>]]
  std::vector<std::string> rest(parts.begin() + static_cast<long>(base), parts.end());
  const Strategy* strategy = nullptr;
  if (rest.size() >= 3 && rest[0] == "namespaces") {
    const Strategy* s = api.find(rr.group, rest[2]);
    if (s && s->info().namespaced) {
      strategy = s;
      rr.namespace_ = rest[1];
      rest.erase(rest.begin(), rest.begin() + 2);
    }
  }
  if (!strategy) {
    strategy = api.find(rr.group, rest[0]);
    if (!strategy) {
      response = not_found_path();
      return RouteResult::Answered;
    }
    // A namespaced kind without a namespace segment is an all-namespaces list or watch.
    if (strategy->info().namespaced && rest.size() > 1) {
      response = not_found_path();
      return RouteResult::Answered;
    }
  }
  if (!serves(strategy->info(), rr.group, rr.version) || rest.size() > 3) {
    response = not_found_path();
    return RouteResult::Answered;
  }
  rr.strategy = strategy;
  if (rest.size() >= 2) rr.name = rest[1];
  if (rest.size() == 3) {
    rr.subresource = rest[2];
    bool known = false;
    for (const auto& s : strategy->info().subresources) known |= s.name == rr.subresource;
    if (!known) {
      response = not_found_path();
      return RouteResult::Answered;
    }
  }
  rr.table = wants_table(request);
  if (auto io = request.param("includeObject"); io && !io->empty()) rr.include_object = std::string(*io);
  return RouteResult::Resource;
}

}  // namespace berth::apiserver
