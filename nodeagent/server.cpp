#include "nodeagent/server.h"

#include <algorithm>

#include "net/pki.h"

namespace berth::nodeagent {

net::Response text_error(int code, const std::string& message) {
  return net::Response::text(code, message.empty() || message.back() == '\n' ? message : message + "\n");
}

api::Result<EndpointTls> endpoint_tls(const AgentOptions& o, const std::string& cluster_ca_pem,
                                      const std::string& node_name, const std::vector<std::string>& sans) {
  EndpointTls tls;
  if (!o.client_ca_file.empty()) {
    auto ca = net::read_file(o.client_ca_file);
    if (!ca) return ca.take_status();
    tls.client_ca_pem = *ca;
  } else {
    tls.client_ca_pem = cluster_ca_pem;
  }
  if (!o.tls_cert_file.empty() || !o.tls_key_file.empty()) {
    auto cert = net::read_file(o.tls_cert_file);
    if (!cert) return cert.take_status();
    auto key = net::read_file(o.tls_key_file);
    if (!key) return key.take_status();
    tls.cert_pem = *cert;
    tls.key_pem = *key;
    return tls;
  }
  net::CertKey ca;
  if (!o.ca_key_file.empty() && !o.ca_file.empty()) {
    auto cert = net::read_file(o.ca_file);
    if (!cert) return cert.take_status();
    auto key = net::read_file(o.ca_key_file);
    if (!key) return key.take_status();
    ca = {*cert, *key};
  } else {
    auto self = net::create_ca("berth-agent-" + node_name, 3650);
    if (!self) return self.take_status();
    ca = *self;
  }
  auto leaf = net::issue_cert(ca, "system:node:" + node_name, {"system:nodes"}, sans, true, false,
                              net::kLeafValidityDays);
  if (!leaf) return leaf.take_status();
  tls.cert_pem = leaf->cert_pem + ca.cert_pem;
  tls.key_pem = leaf->key_pem;
  return tls;
}

net::Response EndpointBackend::exec(const std::string&, const std::string& pod, const std::string&,
                                    const net::Request&) {
  return text_error(501, "exec is not available on simulated nodes (pod \"" + pod + "\")");
}

net::Response handle_endpoint_request(net::Request& req, EndpointBackend& backend,
                                      const std::vector<std::string>& allowed) {
  if (!req.peer.client_certificate) return text_error(401, "Unauthorized");
  if (std::find(allowed.begin(), allowed.end(), req.peer.common_name) == allowed.end()) {
    std::string sub = starts_with(req.path, "/stats") ? "stats" : starts_with(req.path, "/containerLogs") ? "log" : "proxy";
    return text_error(403, "Forbidden (user=" + req.peer.common_name + ", verb=get, resource=nodes, subresource=" + sub + ")");
  }
  if (starts_with(req.path, "/exec/") && (req.method == "GET" || req.method == "POST")) {
    auto parts = split(req.path.substr(std::string("/exec/").size()), '/');
    if (parts.size() != 3 || parts[0].empty() || parts[1].empty() || parts[2].empty())
      return text_error(400, "Bad Request: expected /exec/<namespace>/<pod>/<container>");
    return backend.exec(parts[0], parts[1], parts[2], req);
  }
  if (req.method != "GET" && req.method != "HEAD") return text_error(405, "Method Not Allowed");
  if (req.path == "/healthz") return net::Response::text(200, "ok");
  if (req.path == "/stats/summary" || req.path == "/stats/summary/") return backend.stats_summary(req);
  if (starts_with(req.path, "/containerLogs/")) {
    auto parts = split(req.path.substr(std::string("/containerLogs/").size()), '/');
    if (parts.size() != 3 || parts[0].empty() || parts[1].empty() || parts[2].empty())
      return text_error(400, "Bad Request: expected /containerLogs/<namespace>/<pod>/<container>");
    return backend.container_logs(parts[0], parts[1], parts[2], req);
  }
  return text_error(404, "404 page not found");
}

api::Result<std::unique_ptr<net::HttpsServer>> start_endpoint(const std::string& listen, const EndpointTls& tls,
                                                              EndpointBackend& backend,
                                                              std::vector<std::string> allowed) {
  net::ServerOptions so;
  so.listen = listen;
  so.cert_pem = tls.cert_pem;
  so.key_pem = tls.key_pem;
  so.client_ca_pem = tls.client_ca_pem;
  so.io_threads = 1;
  so.worker_threads = 8;
  so.request_timeout = std::chrono::seconds(4 * 3600);  // followed logs stay open
  so.stream_poll = std::chrono::milliseconds(250);
  so.error_response = [](int code, const std::string& message) { return text_error(code, message); };
  return net::HttpsServer::start(so, [&backend, allowed = std::move(allowed)](net::Request& req) {
    return handle_endpoint_request(req, backend, allowed);
  });
}

}  // namespace berth::nodeagent
