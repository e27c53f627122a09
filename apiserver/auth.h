// Authentication: who sent a request. Client certificates signed by the cluster CA (CN is
// the user, O the groups, as Kubernetes' x509 authenticator) and bearer tokens.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "api/status.h"
#include "net/http.h"

namespace berth::apiserver {

struct UserInfo {
  std::string name;
  std::vector<std::string> groups;
};

class Authenticator {
 public:
  // Adds a bearer token. Tokens are compared in constant time.
  void add_token(std::string token, UserInfo user);
  // Reads a Kubernetes static token file: token,user,uid,"group1,group2" per line.
  api::Status load_token_file(const std::string& path);

  // The user behind a request, or nullopt for an anonymous one.
  std::optional<UserInfo> authenticate(const net::Request& request) const;

 private:
  std::vector<std::pair<std::string, UserInfo>> tokens_;
};

// Paths Kubernetes serves to anonymous clients (system:public-info-viewer).
bool is_public_path(const std::string& path);

}  // namespace berth::apiserver
