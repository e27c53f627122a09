// Watch: a chunked stream of {"type","object"} lines fed by a store watch, filtered by
// selectors with Kubernetes' transition rules, with initial events and bookmarks.
#pragma once

#include "apiserver/api.h"
#include "apiserver/request.h"
#include "net/http.h"

namespace berth::apiserver {

net::Response serve_watch(Api& api, store::Store& store, ResourceRequest& rr, const ApiOptions& options);

}  // namespace berth::apiserver
