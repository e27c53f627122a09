#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "net/pki.h"
#include "nodeagent/network.h"
#include "nodeagent/server.h"

using namespace berth::nodeagent;
using berth::net::Request;
using berth::net::Response;

namespace {

class FakeBackend : public EndpointBackend {
 public:
  std::string last;
  Response container_logs(const std::string& ns, const std::string& pod, const std::string& c, const Request&) override {
    last = ns + "/" + pod + "/" + c;
    return Response::text(200, "log");
  }
  Response stats_summary(const Request&) override {
    last = "summary";
    return Response::text(200, "{}", "application/json");
  }
};

Request request(const std::string& path, const std::string& cn) {
  Request r;
  r.method = "GET";
  r.path = path;
  r.target = path;
  r.peer.client_certificate = !cn.empty();
  r.peer.common_name = cn;
  return r;
}

}  // namespace

TEST_CASE("only the API server's client certificate gets in") {
  FakeBackend b;
  std::vector<std::string> allowed = {"berth-apiserver"};
  auto anon = request("/stats/summary", "");
  CHECK(handle_endpoint_request(anon, b, allowed).status == 401);
  auto admin = request("/stats/summary", "admin");
  Response r = handle_endpoint_request(admin, b, allowed);
  CHECK(r.status == 403);
  CHECK(r.body == "Forbidden (user=admin, verb=get, resource=nodes, subresource=stats)\n");
  auto ok = request("/stats/summary", "berth-apiserver");
  CHECK(handle_endpoint_request(ok, b, allowed).status == 200);
  CHECK(b.last == "summary");
  auto logs = request("/containerLogs/shop/web-0/app", "berth-apiserver");
  CHECK(handle_endpoint_request(logs, b, allowed).status == 200);
  CHECK(b.last == "shop/web-0/app");
  auto bad = request("/containerLogs/shop/web-0", "berth-apiserver");
  CHECK(handle_endpoint_request(bad, b, allowed).status == 400);
  auto unknown = request("/pods", "berth-apiserver");
  CHECK(handle_endpoint_request(unknown, b, allowed).status == 404);
  auto health = request("/healthz", "berth-apiserver");
  CHECK(handle_endpoint_request(health, b, allowed).body == "ok");
}

TEST_CASE("the serving certificate: self-signed, or issued by the cluster CA") {
  AgentOptions o;
  auto self = endpoint_tls(o, "CA-PEM", "node-1", {"node-1", "127.0.0.1"});
  REQUIRE(self.ok());
  CHECK(self->client_ca_pem == "CA-PEM");
  auto subject = berth::net::subject_of(self->cert_pem);
  REQUIRE(subject.ok());
  CHECK(subject->common_name == "system:node:node-1");
  CHECK(subject->organizations == std::vector<std::string>{"system:nodes"});
}

TEST_CASE("hostPorts become CNI port mappings") {
  json pod = {{"spec", {{"containers", {{{"name", "c"}, {"ports", {{{"containerPort", 80}, {"hostPort", 8080}},
                                                                  {{"containerPort", 53}, {"hostPort", 5353}, {"protocol", "UDP"}},
                                                                  {{"containerPort", 9090}}}}}}}}}};
  json m = host_port_mappings(pod);
  REQUIRE(m.size() == 2);
  CHECK(m[0] == json({{"hostPort", 8080}, {"containerPort", 80}, {"protocol", "tcp"}}));
  CHECK(m[1]["protocol"] == "udp");
  CHECK(gateway_of("10.88.0.0/24") == "10.88.0.1");
  json conf = bridge_conf(NetworkOptions{}, true);
  CHECK(conf["type"] == "bridge");
  CHECK(conf["ipam"]["type"] == "host-local");
  CHECK(conf["ipam"]["ranges"][0][0]["subnet"] == "10.88.0.0/16");
}
