#include "apiserver/auth.h"

#include <fstream>
#include <sstream>

#include "net/pki.h"

namespace berth::apiserver {

void Authenticator::add_token(std::string token, UserInfo user) {
  if (std::find(user.groups.begin(), user.groups.end(), "system:authenticated") == user.groups.end())
    user.groups.push_back("system:authenticated");
  tokens_.emplace_back(std::move(token), std::move(user));
}

// Splits one CSV line, honouring double quotes (the groups column is quoted).
static std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (char c : line) {
    if (c == '"') quoted = !quoted;
    else if (c == ',' && !quoted) out.push_back(std::move(cur)), cur.clear();
    else cur.push_back(c);
  }
  out.push_back(std::move(cur));
  return out;
}

api::Status Authenticator::load_token_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return {api::Reason::InternalError, "cannot read token file " + path};
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line[0] == '#') continue;
    auto cols = split_csv(line);
    if (cols.size() < 3 || cols[0].empty() || cols[1].empty())
      return {api::Reason::InternalError, path + ":" + std::to_string(n) + ": want token,user,uid[,\"groups\"]"};
    UserInfo user{cols[1], {}};
    if (cols.size() > 3) {
      std::stringstream groups(cols[3]);
      std::string g;
      while (std::getline(groups, g, ','))
        if (!g.empty()) user.groups.push_back(g);
    }
    add_token(cols[0], std::move(user));
  }
  return {};
}

std::optional<UserInfo> Authenticator::authenticate(const net::Request& request) const {
  if (request.peer.client_certificate && !request.peer.common_name.empty()) {
    UserInfo user{request.peer.common_name, request.peer.organizations};
    user.groups.push_back("system:authenticated");
    return user;
  }
  if (auto auth = request.header("authorization")) {
    std::string_view v = *auth;
    if (v.size() > 7 && (v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer ")) {
      std::string_view token = v.substr(7);
      while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
      // Every token is compared so the time taken does not reveal which one matched.
      std::optional<UserInfo> found;
      for (const auto& [t, user] : tokens_)
        if (net::constant_time_equal(t, token) && !found) found = user;
      return found;
    }
  }
  return std::nullopt;
}

bool is_public_path(const std::string& path) {
  for (const char* p : {"/version", "/livez", "/readyz", "/healthz"}) {
    std::string_view prefix(p);
    if (path == prefix || (path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
                           path[prefix.size()] == '/'))
      return true;
  }
  return false;
}

}  // namespace berth::apiserver
