// API discovery for controllers that handle every kind (garbage collector, namespace deletion):
// the preferred version of every group from /api/v1 and /apis, without subresources.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "controllers/util.h"

namespace berth::client {
class Client;
}

namespace berth::controllers {

struct ApiResource {
  Resource resource;
  std::vector<std::string> verbs;
  bool can(const std::string& verb) const;
};

api::Result<std::vector<ApiResource>> discover_resources(client::Client& client);

// Kind lookup: (group, kind) -> resource, as a RESTMapper would answer for ownerReferences.
class ResourceMap {
 public:
  void set(const std::vector<ApiResource>& all);
  // apiVersion "apps/v1", kind "ReplicaSet"; nullptr when unknown.
  const Resource* find(const std::string& api_version, const std::string& kind) const;

 private:
  std::map<std::pair<std::string, std::string>, Resource> by_kind_;
};

}  // namespace berth::controllers
