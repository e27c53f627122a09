// The client against a real API server started in this process (TLS, RocksDB, the generic
// REST path), and against small HttpsServers for the transport's edge cases.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <stdlib.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "apiserver/server.h"
#include "client/client.h"
#include "net/https_server.h"
#include "net/pki.h"

using namespace berth;
using berth::api::Reason;
using client::Client;
using client::Config;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

const char kToken[] = "s3cr3t-token-for-tests";

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/berth-client-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

void write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// One server for the whole file: starting one costs a store and a PKI.
struct Cluster {
  TempDir dir;
  std::unique_ptr<apiserver::ApiServer> server;
  Config admin;

  Cluster() {
    write(dir.path + "/tokens.csv", std::string(kToken) + ",alice,uid-alice,\"system:masters\"\n");
    apiserver::ServerConfig config;
    config.data_dir = dir.path + "/data";
    config.listen = "127.0.0.1:0";
    config.token_auth_file = dir.path + "/tokens.csv";
    config.worker_threads = 8;
    auto s = apiserver::ApiServer::start(config);
    if (!s) FAIL("server did not start: " << s.status().message());
    server = std::move(*s);
    auto kc = client::load_kubeconfig(server->kubeconfig_path());
    if (!kc) FAIL("kubeconfig: " << kc.status().message());
    admin = *kc;
  }
  ~Cluster() {
    if (!server) return;
    // Every watch the tests open has a timeoutSeconds; wait for the server to have ended them
    // all. Stopping HttpsServer with a watch stream still open crashes in its destructor
    // (abandoned stream coroutines touch members already destroyed: net/https_server.cpp),
    // so if one is left, the process exits without stopping the server.
    auto cl = Client::create(admin);
    auto deadline = Clock::now() + std::chrono::seconds(20);
    bool quiet = false;
    while (cl.ok() && Clock::now() < deadline) {
      auto m = (*cl)->request("GET", "/metrics");
      if (m.ok() && m->body.find("apiserver_longrunning_requests{verb=\"WATCH\"} 0\n") != std::string::npos) {
        quiet = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (quiet) {
      server->stop();
    } else {
      std::fprintf(stderr, "client_test: watch streams still open on the server; not stopping it\n");
      (void)server.release();
    }
  }
};

Cluster& cluster() {
  static Cluster c;
  return c;
}

std::unique_ptr<Client> make_client(Config config) {
  auto c = Client::create(std::move(config));
  if (!c) FAIL("client: " << c.status().message());
  return std::move(*c);
}

void ensure_namespace(Client& c, const std::string& name) {
  auto r = c.create("/api/v1/namespaces", {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}});
  if (!r) REQUIRE(r.status().reason() == Reason::AlreadyExists);
}

json configmap(const std::string& name, json data) {
  return {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", name}}}, {"data", std::move(data)}};
}

// Leaf certificate for 127.0.0.1 (or the given SANs) from a fresh CA, for small test servers.
struct TestPki {
  net::CertKey ca, server;
  explicit TestPki(std::vector<std::string> sans = {"127.0.0.1"}) {
    auto c = net::create_ca("test-ca", 1);
    REQUIRE(c.ok());
    ca = *c;
    auto s = net::issue_cert(ca, "test-server", {}, sans, true, false, 1);
    REQUIRE(s.ok());
    server = *s;
  }
};

std::unique_ptr<net::HttpsServer> small_server(const TestPki& pki, net::ServerOptions options = {}) {
  options.listen = "127.0.0.1:0";
  options.cert_pem = pki.server.cert_pem;
  options.key_pem = pki.server.key_pem;
  options.worker_threads = 4;
  auto s = net::HttpsServer::start(options, [](net::Request& r) {
    if (r.path == "/slow") std::this_thread::sleep_for(std::chrono::seconds(3));
    if (r.path == "/close") {
      auto resp = net::Response::text(200, "bye");
      resp.set_header("Connection", "close");
      return resp;
    }
    return net::Response::text(200, "hello " + r.method + " " + r.target + " " +
                                        std::string(r.header("x-test").value_or("")) + " " +
                                        std::string(r.header("user-agent").value_or("")));
  });
  if (!s) FAIL("test server: " << s.status().message());
  return std::move(*s);
}

std::string burst_name(int i) {
  std::string name = "b";
  name += std::to_string(i);
  return name;
}

}  // namespace

TEST_CASE("the admin kubeconfig in the data directory loads") {
  auto& c = cluster();
  auto kc = client::load_kubeconfig(c.server->kubeconfig_path());
  REQUIRE(kc.ok());
  CHECK(kc->server == c.server->url());
  CHECK(kc->ca_pem.rfind("-----BEGIN CERTIFICATE-----", 0) == 0);
  CHECK(kc->cert_pem.rfind("-----BEGIN CERTIFICATE-----", 0) == 0);
  CHECK(kc->key_pem.find("PRIVATE KEY-----") != std::string::npos);
  CHECK(kc->token.empty());
}

TEST_CASE("kubeconfig with file paths, token files and errors") {
  auto& c = cluster();
  TempDir dir;
  write(dir.path + "/ca.crt", c.admin.ca_pem);
  write(dir.path + "/token", std::string(kToken) + "\n");
  write(dir.path + "/config",
        "apiVersion: v1\nkind: Config\n"
        "clusters:\n- name: other\n  cluster: {server: https://example.invalid}\n"
        "- name: mine\n  cluster:\n    server: " + c.server->url() + "\n    certificate-authority: ca.crt\n"
        "users:\n- name: bob\n  user:\n    tokenFile: token\n"
        "- name: carol\n  user: {token: inline-token}\n"
        "contexts:\n- name: a\n  context: {cluster: other, user: carol}\n"
        "- name: b\n  context: {cluster: mine, user: bob}\n"
        "current-context: b\n");
  auto kc = client::load_kubeconfig(dir.path + "/config");
  REQUIRE_MESSAGE(kc.ok(), kc.status().message());
  CHECK(kc->server == c.server->url());
  CHECK(kc->ca_pem == c.admin.ca_pem);
  CHECK(kc->token == kToken);
  CHECK(kc->cert_pem.empty());

  // The token from the file authenticates against the server.
  auto cl = make_client(*kc);
  auto ns = cl->get("/api/v1/namespaces/default");
  REQUIRE_MESSAGE(ns.ok(), ns.status().message());
  CHECK((*ns)["metadata"]["name"] == "default");

  auto missing = client::load_kubeconfig(dir.path + "/nope");
  CHECK(missing.status().reason() == Reason::NotFound);
  write(dir.path + "/bad", "clusters: [\n");
  CHECK(client::load_kubeconfig(dir.path + "/bad").status().reason() == Reason::Invalid);
  write(dir.path + "/noctx", "apiVersion: v1\ncurrent-context: x\ncontexts: []\n");
  CHECK(client::load_kubeconfig(dir.path + "/noctx").status().message().find("context \"x\" not found") !=
        std::string::npos);
}

TEST_CASE("a watch sees ADDED, MODIFIED and DELETED") {
  auto& c = cluster();
  auto cl = make_client(c.admin);
  ensure_namespace(*cl, "watched");
  const std::string coll = "/api/v1/namespaces/watched/configmaps";
  auto w = cl->watch(coll + "?timeoutSeconds=6");
  REQUIRE_MESSAGE(w.ok(), w.status().message());
  auto& stream = **w;

  auto nothing = stream.next(std::chrono::milliseconds(100));
  REQUIRE(nothing.ok());
  CHECK_FALSE(nothing->has_value());

  REQUIRE(cl->create(coll, configmap("w1", {{"v", "1"}})).ok());
  REQUIRE(cl->patch(coll + "/w1", {{"data", {{"v", "2"}}}}).ok());
  REQUIRE(cl->remove(coll + "/w1").ok());

  std::vector<std::string> types;
  for (int i = 0; i < 3; ++i) {
    auto e = stream.next(std::chrono::seconds(5));
    REQUIRE_MESSAGE(e.ok(), e.status().message());
    REQUIRE(e->has_value());
    const json& event = **e;
    types.push_back(event["type"]);
    CHECK(event["object"]["metadata"]["name"] == "w1");
    if (event["type"] == "MODIFIED") CHECK(event["object"]["data"]["v"] == "2");
  }
  CHECK(types == std::vector<std::string>{"ADDED", "MODIFIED", "DELETED"});

  // Many events in a burst arrive in order, split across reads.
  for (int i = 0; i < 50; ++i)
    REQUIRE(cl->create(coll, configmap(burst_name(i), {{"blob", std::string(3000, 'x')}})).ok());
  for (int i = 0; i < 50; ++i) {
    auto e = stream.next(std::chrono::seconds(5));
    REQUIRE(e.ok());
    REQUIRE(e->has_value());
    CHECK((**e)["object"]["metadata"]["name"] == burst_name(i));
  }
  stream.close();
  auto after = stream.next(std::chrono::seconds(1));
  CHECK_FALSE(after.ok());
  CHECK(after.status().is_ok());
}

TEST_CASE("several watchers, with and without a selector, see the same events") {
  auto& c = cluster();
  auto cl = make_client(c.admin);
  ensure_namespace(*cl, "shared");
  const std::string coll = "/api/v1/namespaces/shared/configmaps";
  std::vector<std::unique_ptr<client::WatchStream>> plain;
  for (int i = 0; i < 4; ++i) {
    auto w = cl->watch(coll + "?timeoutSeconds=6");
    REQUIRE(w.ok());
    plain.push_back(std::move(*w));
  }
  auto selected = cl->watch(coll + "?labelSelector=tier%3Dweb&timeoutSeconds=6");
  REQUIRE(selected.ok());

  json cm = configmap("s1", {{"v", "1"}});
  auto created = cl->create(coll, cm);
  REQUIRE(created.ok());
  auto labelled = cl->patch(coll + "/s1", {{"metadata", {{"labels", {{"tier", "web"}}}}}});
  REQUIRE(labelled.ok());
  auto unlabelled = cl->patch(coll + "/s1", {{"metadata", {{"labels", {{"tier", "db"}}}}}});
  REQUIRE(unlabelled.ok());

  for (auto& w : plain) {
    std::vector<std::string> seen;
    for (int i = 0; i < 3; ++i) {
      auto e = w->next(std::chrono::seconds(5));
      REQUIRE(e.ok());
      REQUIRE(e->has_value());
      seen.push_back((**e)["type"].get<std::string>() + " " +
                     (**e)["object"]["metadata"]["resourceVersion"].get<std::string>());
    }
    CHECK(seen == std::vector<std::string>{
                      "ADDED " + (*created)["metadata"]["resourceVersion"].get<std::string>(),
                      "MODIFIED " + (*labelled)["metadata"]["resourceVersion"].get<std::string>(),
                      "MODIFIED " + (*unlabelled)["metadata"]["resourceVersion"].get<std::string>()});
  }
  // With the selector: the object enters (ADDED) and leaves (DELETED) the selection.
  std::vector<std::string> types;
  for (int i = 0; i < 2; ++i) {
    auto e = (*selected)->next(std::chrono::seconds(5));
    REQUIRE(e.ok());
    REQUIRE(e->has_value());
    types.push_back((**e)["type"]);
  }
  CHECK(types == std::vector<std::string>{"ADDED", "DELETED"});
}

TEST_CASE("close() from another thread unblocks next()") {
  auto& c = cluster();
  auto cl = make_client(c.admin);
  auto w = cl->watch("/api/v1/namespaces/default/configmaps?labelSelector=nothing%3Dhere&timeoutSeconds=6");
  REQUIRE(w.ok());
  auto& stream = **w;
  std::atomic<bool> returned{false};
  api::Status ended(Reason::InternalError, "not set");
  auto start = Clock::now();
  std::thread reader([&] {
    auto e = stream.next(std::chrono::seconds(30));
    if (!e.ok()) ended = e.status();
    returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK_FALSE(returned.load());
  stream.close();
  reader.join();
  CHECK(Clock::now() - start < std::chrono::seconds(5));
  CHECK(ended.is_ok());
}

TEST_CASE("watch ends: the server's timeout, and error answers") {
  auto& c = cluster();
  auto cl = make_client(c.admin);
  auto w = cl->watch("/api/v1/namespaces/default/configmaps?timeoutSeconds=1");
  REQUIRE(w.ok());
  auto start = Clock::now();
  api::Result<std::optional<json>> e = std::optional<json>();
  do {
    e = (*w)->next(std::chrono::seconds(10));
  } while (e.ok());  // the default namespace may hold configmaps: initial ADDED events
  CHECK(e.status().is_ok());
  CHECK(Clock::now() - start < std::chrono::seconds(8));

  auto missing = cl->watch("/api/v1/namespaces/default/nothings");
  CHECK(missing.status().reason() == Reason::NotFound);
  auto bad = cl->watch("/api/v1/namespaces/default/configmaps?labelSelector=%3D%3D%3D");
  CHECK(bad.status().reason() == Reason::BadRequest);
}

TEST_CASE("get, create, update, patch and remove, with Status errors") {
  auto& c = cluster();
  auto cl = make_client(c.admin);
  ensure_namespace(*cl, "crud");
  const std::string coll = "/api/v1/namespaces/crud/configmaps";

  auto absent = cl->get(coll + "/nope");
  REQUIRE_FALSE(absent.ok());
  CHECK(absent.status().reason() == Reason::NotFound);
  CHECK(api::http_code(absent.status().reason()) == 404);
  CHECK(absent.status().details_name() == "nope");
  CHECK(absent.status().details_kind() == "configmaps");
  CHECK(absent.status().message() == "configmaps \"nope\" not found");

  auto created = cl->create(coll, configmap("one", {{"a", "1"}}));
  REQUIRE_MESSAGE(created.ok(), created.status().message());
  std::string rv1 = (*created)["metadata"]["resourceVersion"];
  CHECK(!rv1.empty());
  CHECK((*created)["data"]["a"] == "1");

  auto again = cl->create(coll, configmap("one", {{"a", "2"}}));
  REQUIRE_FALSE(again.ok());
  CHECK(again.status().reason() == Reason::AlreadyExists);
  CHECK(api::http_code(again.status().reason()) == 409);

  json changed = *created;
  changed["data"]["a"] = "changed";
  auto updated = cl->update(coll + "/one", changed);
  REQUIRE_MESSAGE(updated.ok(), updated.status().message());
  CHECK((*updated)["data"]["a"] == "changed");
  CHECK((*updated)["metadata"]["resourceVersion"] != rv1);

  // The same stale resourceVersion again: a Conflict.
  changed["data"]["a"] = "lost";
  auto stale = cl->update(coll + "/one", changed);
  CHECK(stale.status().reason() == Reason::Conflict);

  auto merged = cl->patch(coll + "/one", {{"data", {{"b", "2"}}}});
  REQUIRE_MESSAGE(merged.ok(), merged.status().message());
  CHECK((*merged)["data"] == json({{"a", "changed"}, {"b", "2"}}));
  auto jp = cl->patch(coll + "/one", json::array({{{"op", "remove"}, {"path", "/data/a"}}}),
                      "application/json-patch+json");
  REQUIRE_MESSAGE(jp.ok(), jp.status().message());
  CHECK((*jp)["data"] == json({{"b", "2"}}));

  auto invalid = cl->create(coll, configmap("Not_A_Name", json::object()));
  REQUIRE_FALSE(invalid.ok());
  CHECK(invalid.status().reason() == Reason::Invalid);
  CHECK(!invalid.status().causes().empty());
  CHECK(invalid.status().causes().front().field == "metadata.name");

  auto removed = cl->remove(coll + "/one");
  REQUIRE_MESSAGE(removed.ok(), removed.status().message());
  CHECK(cl->get(coll + "/one").status().reason() == Reason::NotFound);
  auto gone = cl->remove(coll + "/one", {{"kind", "DeleteOptions"}, {"apiVersion", "v1"}});
  CHECK(gone.status().reason() == Reason::NotFound);

  // Raw requests: headers come back lower-cased; extra request headers are sent.
  auto table = cl->request("GET", "/api/v1/namespaces", "", "",
                           {{"Accept", "application/json;as=Table;v=v1;g=meta.k8s.io"}});
  REQUIRE(table.ok());
  CHECK(table->status == 200);
  CHECK(json::parse(table->body)["kind"] == "Table");
  bool content_type = false;
  for (const auto& [k, v] : table->headers) content_type |= k == "content-type";
  CHECK(content_type);
  auto health = cl->request("GET", "/healthz");
  REQUIRE(health.ok());
  CHECK(health->body == "ok");
  auto head = cl->request("HEAD", "/healthz");
  REQUIRE(head.ok());
  CHECK(head->status == 200);
  CHECK(cl->get("/healthz").status().reason() == Reason::InternalError);  // 200 but not JSON
}

TEST_CASE("bearer tokens and the server certificate are checked") {
  auto& c = cluster();
  Config token_only;
  token_only.server = c.admin.server;
  token_only.ca_pem = c.admin.ca_pem;
  token_only.token = kToken;
  auto ok = make_client(token_only)->get("/api/v1/namespaces/default");
  CHECK_MESSAGE(ok.ok(), ok.status().message());

  token_only.token = "wrong";
  auto denied = make_client(token_only)->get("/api/v1/namespaces/default");
  CHECK(denied.status().reason() == Reason::Unauthorized);

  Config anonymous = token_only;
  anonymous.token.clear();
  CHECK(make_client(anonymous)->get("/api/v1/namespaces").status().reason() == Reason::Unauthorized);

  // By name: the serving certificate carries localhost.
  Config by_name = c.admin;
  by_name.server = "https://localhost:" + c.admin.server.substr(c.admin.server.rfind(':') + 1);
  auto named = make_client(by_name)->get("/api/v1/namespaces/default");
  CHECK_MESSAGE(named.ok(), named.status().message());

  // Another CA: the handshake fails.
  TestPki other;
  Config wrong_ca = c.admin;
  wrong_ca.ca_pem = other.ca.cert_pem;
  auto untrusted = make_client(wrong_ca)->get("/api/v1/namespaces/default");
  REQUIRE_FALSE(untrusted.ok());
  CHECK(untrusted.status().reason() == Reason::ServiceUnavailable);
  CHECK(untrusted.status().message().find("TLS handshake failed") != std::string::npos);

  // A certificate from our CA, but for another name: refused.
  TestPki elsewhere({"other.example"});
  auto server = small_server(elsewhere);
  Config mismatch;
  mismatch.server = "https://127.0.0.1:" + std::to_string(server->port());
  mismatch.ca_pem = elsewhere.ca.cert_pem;
  auto wrong_name = make_client(mismatch)->request("GET", "/");
  REQUIRE_FALSE(wrong_name.ok());
  CHECK(wrong_name.status().message().find("mismatch") != std::string::npos);

  Config bad;
  bad.server = "http://127.0.0.1:1";
  CHECK(Client::create(bad).status().reason() == Reason::BadRequest);
  bad.server = "https://127.0.0.1:1";
  CHECK(make_client(bad)->request("GET", "/").status().reason() == Reason::ServiceUnavailable);
}

TEST_CASE("pooled connections: reuse, a closed one replaced, timeouts") {
  TestPki pki;
  net::ServerOptions options;
  options.idle_timeout = std::chrono::seconds(1);
  auto server = small_server(pki, options);
  Config config;
  config.server = "https://127.0.0.1:" + std::to_string(server->port());
  config.ca_pem = pki.ca.cert_pem;
  config.user_agent = "berth-test/1";
  config.max_connections = 2;
  config.timeout = std::chrono::seconds(1);
  auto cl = make_client(config);

  auto r = cl->request("POST", "/x?y=1", "body", "text/plain", {{"X-Test", "yes"}});
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  CHECK(r->body == "hello POST /x?y=1 yes berth-test/1");
  // The server drops the idle connection after a second; the next request still works.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  r = cl->request("GET", "/again");
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  CHECK(r->body.rfind("hello GET /again", 0) == 0);
  // Connection: close answers are not pooled.
  for (int i = 0; i < 3; ++i) {
    r = cl->request("GET", "/close");
    REQUIRE_MESSAGE(r.ok(), r.status().message());
    CHECK(r->body == "bye");
  }

  auto start = Clock::now();
  auto slow = cl->request("GET", "/slow");
  CHECK(slow.status().reason() == Reason::Timeout);
  CHECK(Clock::now() - start < std::chrono::milliseconds(2500));
  r = cl->request("GET", "/after");
  CHECK_MESSAGE(r.ok(), r.status().message());
  server->stop();
}

TEST_CASE("16 threads share one client") {
  auto& c = cluster();
  Config config = c.admin;
  config.max_connections = 6;  // fewer than threads: some wait for a connection
  auto cl = make_client(config);
  ensure_namespace(*cl, "busy");
  const std::string coll = "/api/v1/namespaces/busy/configmaps";
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 12; ++i) {
        std::string name = "cm-" + std::to_string(t) + "-" + std::to_string(i);
        auto created = cl->create(coll, configmap(name, {{"t", std::to_string(t)}}));
        auto got = cl->get(coll + "/" + name);
        auto patched = cl->patch(coll + "/" + name, {{"data", {{"i", std::to_string(i)}}}});
        if (created.ok() && got.ok() && patched.ok() && (*got)["data"]["t"] == std::to_string(t) &&
            (*patched)["data"]["i"] == std::to_string(i))
          ++ok;
        else
          ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ok == 16 * 12);
  CHECK(failed == 0);
  auto list = cl->get(coll);
  REQUIRE(list.ok());
  CHECK((*list)["items"].size() == 16 * 12);
}

TEST_CASE("status_from reads metav1.Status bodies and falls back to the code") {
  client::Response r;
  r.status = 422;
  r.body = R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"bad","reason":"Invalid",
    "details":{"name":"x","kind":"pods","causes":[{"reason":"FieldValueRequired","message":"Required value","field":"spec"}]},"code":422})";
  auto s = client::status_from(r);
  CHECK(s.reason() == Reason::Invalid);
  CHECK(s.message() == "bad");
  REQUIRE(s.causes().size() == 1);
  CHECK(s.causes()[0].field == "spec");
  r.status = 503;
  r.body = "upstream down";
  r.headers = {{"retry-after", "3"}};
  s = client::status_from(r);
  CHECK(s.reason() == Reason::ServiceUnavailable);
  CHECK(s.message().find("upstream down") != std::string::npos);
  CHECK(s.retry_after_seconds == 3);
  r.status = 200;
  r.body = "{}";
  CHECK(client::status_from(r).is_ok());
}
