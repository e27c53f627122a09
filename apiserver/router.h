// The request pipeline: authentication, then the public endpoints, discovery, OpenAPI,
// metrics, and the resource paths served by the generic registry.
#pragma once

#include <memory>
#include <string>

#include "apiserver/auth.h"
#include "net/http.h"

namespace berth::apiserver {

class Api;  // the resource side: discovery, OpenAPI and every kind's REST paths

class Router {
 public:
  Router(Authenticator authenticator, std::shared_ptr<Api> api);
  net::Response handle(net::Request& request);

 private:
  Authenticator authenticator_;
  std::shared_ptr<Api> api_;
};

// The /version document: Kubernetes 1.32, so kubectl's version dispatcher picks v1.32.
std::string version_json();

}  // namespace berth::apiserver
