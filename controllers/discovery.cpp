#include "controllers/discovery.h"

#include <algorithm>

#include "client/client.h"
#include "controllers/controller.h"

namespace berth::controllers {

bool ApiResource::can(const std::string& verb) const {
  return std::find(verbs.begin(), verbs.end(), verb) != verbs.end();
}

namespace {

api::Status add_group_version(client::Client& client, const std::string& path, const std::string& group,
                              const std::string& version, std::vector<ApiResource>& out) {
  auto list = client.get(path);
  if (!list) return list.take_status();
  const json& resources = at(*list, {"resources"});
  if (!resources.is_array()) return {};
  for (const auto& r : resources) {
    std::string name = str(at(r, {"name"}));
    if (name.empty() || name.find('/') != std::string::npos) continue;  // subresources
    ApiResource ar;
    ar.resource.group = group;
    ar.resource.version = version;
    ar.resource.plural = name;
    ar.resource.kind = str(at(r, {"kind"}));
    ar.resource.namespaced = truthy(at(r, {"namespaced"}));
    ar.verbs = string_list(at(r, {"verbs"}));
    out.push_back(std::move(ar));
  }
  return {};
}

}  // namespace

api::Result<std::vector<ApiResource>> discover_resources(client::Client& client) {
  std::vector<ApiResource> out;
  if (auto s = add_group_version(client, "/api/v1", "", "v1", out); !s) return s;
  auto groups = client.get("/apis");
  if (!groups) return groups.take_status();
  const json& list = at(*groups, {"groups"});
  if (list.is_array()) {
    for (const auto& g : list) {
      std::string name = str(at(g, {"name"}));
      std::string version = str(at(g, {"preferredVersion", "version"}));
      if (version.empty()) {
        const json& versions = at(g, {"versions"});
        if (versions.is_array() && !versions.empty()) version = str(at(versions[0], {"version"}));
      }
      if (name.empty() || version.empty()) continue;
      // One unavailable group does not hide the others (as discovery's partial results).
      auto s = add_group_version(client, "/apis/" + name + "/" + version, name, version, out);
      if (!s) log('W', "discovery", "/apis/" + name + "/" + version + ": " + s.message(), 1);
    }
  }
  return out;
}

void ResourceMap::set(const std::vector<ApiResource>& all) {
  by_kind_.clear();
  for (const auto& r : all) by_kind_[{r.resource.group, r.resource.kind}] = r.resource;
}

const Resource* ResourceMap::find(const std::string& api_version, const std::string& kind) const {
  auto it = by_kind_.find({group_of(api_version), kind});
  return it == by_kind_.end() ? nullptr : &it->second;
}

}  // namespace berth::controllers
