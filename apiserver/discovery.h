// Paths outside the resource tree: discovery (aggregated v2 and legacy), OpenAPI, metrics;
// and the parsing of resource paths into a ResourceRequest.
#pragma once

#include "apiserver/api.h"
#include "apiserver/request.h"
#include "net/http.h"

namespace berth::apiserver {

enum class RouteResult {
  Answered,  // response is filled in (discovery, OpenAPI, metrics, or an error)
  Resource,  // rr names a kind; the generic handlers take over
};

RouteResult route(Api& api, net::Request& request, ResourceRequest& rr, net::Response& response);

// Kind-specific subresources (pods/binding, pods/eviction, pods/log, pods/exec, namespaces/finalize).
net::Response handle_subresource(Api& api, ResourceRequest& rr);

}  // namespace berth::apiserver
