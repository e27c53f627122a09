// Reading a kubeconfig the way kubectl does for the parts Berth's clients need: the current
// context's cluster (server, CA) and user (client certificate, token).
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <fstream>
#include <sstream>

#include "client/client.h"

namespace berth::client {

using api::Reason;
using api::Status;

namespace {

api::Result<std::string> read_whole(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(Reason::NotFound, "cannot read " + what + " " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Standard base64 (whitespace ignored), as kubeconfig *-data fields carry.
api::Result<std::string> base64_decode(const std::string& in, const std::string& what) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  out.reserve(in.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  bool padding = false;
  for (char c : in) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      padding = true;
      continue;
    }
    int v = value(c);
    if (v < 0 || padding) return Status(Reason::Invalid, what + " is not valid base64");
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

// The entry of a named list (clusters, users, contexts) with that name, or a null node
// (test with IsMap(): a default YAML::Node is a defined null).
YAML::Node named(const YAML::Node& list, const std::string& name) {
  if (!list || !list.IsSequence()) return YAML::Node();
  for (const auto& item : list) {
    if (item.IsMap() && item["name"] && item["name"].IsScalar() && item["name"].Scalar() == name) return item;
  }
  return YAML::Node();
}

std::string scalar(const YAML::Node& map, const char* key) {
  if (!map || !map.IsMap()) return "";
  YAML::Node n = map[key];
  return n && n.IsScalar() ? n.Scalar() : "";
}

// kubectl resolves relative paths against the kubeconfig's own directory.
std::string resolve(const std::string& kubeconfig, const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  auto slash = kubeconfig.rfind('/');
  return slash == std::string::npos ? path : kubeconfig.substr(0, slash + 1) + path;
}

// Inline data (base64) wins over a file path, as in kubectl.
api::Result<std::string> data_or_file(const std::string& kubeconfig, const YAML::Node& map, const char* data_key,
                                      const char* file_key, const std::string& what) {
  std::string data = scalar(map, data_key);
  if (!data.empty()) return base64_decode(data, kubeconfig + ": " + what + " (" + data_key + ")");
  std::string file = scalar(map, file_key);
  if (!file.empty()) return read_whole(resolve(kubeconfig, file), what);
  return std::string();
}

}  // namespace

api::Result<Config> load_kubeconfig(const std::string& path) {
  auto text = read_whole(path, "kubeconfig");
  if (!text) return text.take_status();
  YAML::Node root;
  try {
    root = YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    return Status(Reason::Invalid, path + ": not valid YAML: " + e.what());
  }
  if (!root.IsMap()) return Status(Reason::Invalid, path + ": not a kubeconfig (want a mapping)");

  std::string context_name = scalar(root, "current-context");
  YAML::Node contexts = root["contexts"];
  YAML::Node context;
  if (context_name.empty()) {
    if (contexts && contexts.IsSequence() && contexts.size() == 1) context = contexts[0];
    else return Status(Reason::Invalid, path + ": no current-context");
  } else {
    context = named(contexts, context_name);
    if (!context.IsMap()) return Status(Reason::Invalid, path + ": context \"" + context_name + "\" not found");
  }
  YAML::Node ctx = context["context"];
  std::string cluster_name = scalar(ctx, "cluster");
  std::string user_name = scalar(ctx, "user");
  YAML::Node cluster_entry = named(root["clusters"], cluster_name);
  if (!cluster_entry.IsMap()) return Status(Reason::Invalid, path + ": cluster \"" + cluster_name + "\" not found");
  YAML::Node cluster = cluster_entry["cluster"];

  Config config;
  config.server = scalar(cluster, "server");
  if (config.server.empty()) return Status(Reason::Invalid, path + ": cluster \"" + cluster_name + "\" has no server");
  auto ca = data_or_file(path, cluster, "certificate-authority-data", "certificate-authority", "CA certificate");
  if (!ca) return ca.take_status();
  config.ca_pem = std::move(*ca);

  if (!user_name.empty()) {
    YAML::Node user_entry = named(root["users"], user_name);
    if (!user_entry.IsMap()) return Status(Reason::Invalid, path + ": user \"" + user_name + "\" not found");
    YAML::Node user = user_entry["user"];
    auto cert = data_or_file(path, user, "client-certificate-data", "client-certificate", "client certificate");
    if (!cert) return cert.take_status();
    auto key = data_or_file(path, user, "client-key-data", "client-key", "client key");
    if (!key) return key.take_status();
    config.cert_pem = std::move(*cert);
    config.key_pem = std::move(*key);
    config.token = scalar(user, "token");
    std::string token_file = scalar(user, "tokenFile");
    if (config.token.empty() && !token_file.empty()) {
      auto token = read_whole(resolve(path, token_file), "token file");
      if (!token) return token.take_status();
      std::string t = std::move(*token);
      while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
      config.token = std::move(t);
    }
  }
  return config;
}

}  // namespace berth::client
