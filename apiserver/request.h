// A resource request after its path is understood: which kind, version, namespace, name
// and subresource, and how the client wants the answer.
#pragma once

#include <optional>
#include <string>

#include "apiserver/auth.h"
#include "apiserver/strategy.h"
#include "net/http.h"

namespace berth::apiserver {

struct ResourceRequest {
  net::Request* http = nullptr;
  const UserInfo* user = nullptr;
  const Strategy* strategy = nullptr;
  std::string group, version;
  std::string namespace_;  // empty for cluster-scoped kinds and all-namespace lists
  std::string name;
  std::string subresource;
  bool table = false;                 // Accept asked for meta.k8s.io Table
  std::string include_object = "Metadata";  // Table rows: None, Metadata or Object
  bool applying = false;  // server-side apply: managedFields come from the apply merge

  const KindInfo& info() const { return strategy->info(); }
  std::string api_version() const { return group.empty() ? version : group + "/" + version; }
  std::optional<std::string_view> param(std::string_view name) const { return http->param(name); }
};

// Key of one object in the store, and the prefix of a namespace's (or all) objects.
std::string object_key(const KindInfo& info, const std::string& ns, const std::string& name);
std::string list_prefix(const KindInfo& info, const std::string& ns);

}  // namespace berth::apiserver
