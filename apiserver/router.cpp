#include "apiserver/router.h"

#include <nlohmann/json.hpp>

#include "apiserver/api.h"
#include "apiserver/errors.h"

#ifndef BERTH_VERSION
#define BERTH_VERSION "0.0.0"
#endif

namespace berth::apiserver {

Router::Router(Authenticator authenticator, std::shared_ptr<Api> api)
    : authenticator_(std::move(authenticator)), api_(std::move(api)) {}

std::string version_json() {
  nlohmann::json v = {{"major", "1"},
                      {"minor", "32"},
                      {"gitVersion", std::string("v1.32.0-berth.") + BERTH_VERSION},
                      {"gitCommit", ""},
                      {"gitTreeState", "clean"},
                      {"buildDate", __DATE__ " " __TIME__},
                      {"goVersion", ""},
                      {"compiler", "g++"},
                      {"platform", "linux/amd64"}};
  return v.dump(2);
}

net::Response Router::handle(net::Request& request) {
  auto user = authenticator_.authenticate(request);
  // A credential that does not check out is refused even where anonymous access is allowed,
  // as Kubernetes does: the client meant to be someone, and is not.
  if (!user && (request.header("authorization") || !is_public_path(request.path)))
    return error_response(api::Reason::Unauthorized, "Unauthorized");

  const std::string& path = request.path;
  if (path == "/livez" || path == "/readyz" || path == "/healthz" || path.rfind("/livez/", 0) == 0 ||
      path.rfind("/readyz/", 0) == 0 || path.rfind("/healthz/", 0) == 0) {
    if (request.method != "GET" && request.method != "HEAD")
      return error_response(api::Reason::MethodNotAllowed, "the server does not allow this method on the requested resource");
    return net::Response::text(200, "ok");
  }
  if (path == "/version" || path == "/version/") {
    auto r = net::Response::text(200, version_json(), "application/json");
    return r;
  }
  if (api_ && user) return api_->handle(request, *user);
  return error_response(api::Reason::NotFound, "the server could not find the requested resource");
}

}  // namespace berth::apiserver
