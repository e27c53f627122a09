// Tests for net/pki: the certificates are checked with the openssl CLI, not with the code that made them.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include "net/pki.h"

namespace fs = std::filesystem;
using berth::api::Reason;
using namespace berth::net;

namespace {

// A fresh directory under the system temp dir, removed with the fixture.
struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "berth-pki-test-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

struct CmdResult {
  int status;
  std::string output;
};

// Runs a shell command, capturing stdout and stderr.
CmdResult run(const std::string& cmd) {
  CmdResult r{-1, ""};
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string quote(const std::string& s) { return "'" + s + "'"; }

std::string slurp(const std::string& path) {
  auto r = read_file(path);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  return *r;
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

ino_t inode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_ino;
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

std::string sans_text(const std::string& cert_path) {
  auto r = run("openssl x509 -noout -ext subjectAltName -in " + quote(cert_path));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  return r.output;
}

std::string hostname() {
  char host[256] = {};
  REQUIRE(::gethostname(host, sizeof host - 1) == 0);
  return host;
}

std::string unbase64(const std::string& in) {
  std::string out(in.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  REQUIRE(n >= 0);
  out.resize(static_cast<size_t>(n));
  // EVP_DecodeBlock keeps the zero bytes that padding stands for.
  size_t pad = in.size() >= 2 && in.substr(in.size() - 2) == "==" ? 2 : (!in.empty() && in.back() == '=' ? 1 : 0);
  out.resize(out.size() - pad);
  return out;
}

const std::vector<std::string> kExtra = {"berth.example.com", "10.1.2.3", "[fd00::1]"};

}  // namespace

TEST_CASE("first start creates a CA, certificates and a token that openssl verifies") {
  TempDir tmp;
  auto r = ensure_server_pki(tmp.path, kExtra);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  const ServerPki& pki = *r;

  for (const char* name : {"ca", "server", "admin", "apiserver-client", "node-token"}) CHECK(has(pki.issued, name));
  CHECK(pki.ca_cert_path == tmp.path + "/pki/ca.crt");
  CHECK(slurp(pki.ca_cert_path) == pki.ca.cert_pem);
  CHECK(slurp(pki.server_key_path) == pki.server.key_pem);
  CHECK(contains(pki.server.key_pem, "-----BEGIN PRIVATE KEY-----"));

  SUBCASE("file modes: keys, token and the pki directory are private") {
    CHECK(mode_of(pki.pki_dir) == 0700);
    for (const auto& p : {pki.ca_key_path, pki.server_key_path, pki.admin_key_path, pki.apiserver_client_key_path,
                          pki.node_token_path})
      CHECK_MESSAGE(mode_of(p) == 0600, p);
    for (const auto& p : {pki.ca_cert_path, pki.server_cert_path, pki.admin_cert_path, pki.apiserver_client_cert_path})
      CHECK_MESSAGE(mode_of(p) == 0644, p);
  }

  SUBCASE("openssl verify accepts every leaf for its purpose") {
    std::string ca = quote(pki.ca_cert_path);
    auto s = run("openssl verify -CAfile " + ca + " " + quote(pki.server_cert_path));
    CHECK_MESSAGE(s.status == 0, s.output);
    CHECK(contains(s.output, ": OK"));
    s = run("openssl verify -purpose sslserver -CAfile " + ca + " " + quote(pki.server_cert_path));
    CHECK_MESSAGE(s.status == 0, s.output);
    for (const auto& p : {pki.admin_cert_path, pki.apiserver_client_cert_path}) {
      s = run("openssl verify -purpose sslclient -CAfile " + ca + " " + quote(p));
      CHECK_MESSAGE(s.status == 0, s.output);
    }
    // A client certificate is not a serving certificate.
    s = run("openssl verify -purpose sslserver -CAfile " + ca + " " + quote(pki.admin_cert_path));
    CHECK(s.status != 0);
    // Each key belongs to its certificate.
    auto a = run("openssl x509 -noout -pubkey -in " + quote(pki.server_cert_path));
    auto b = run("openssl pkey -pubout -in " + quote(pki.server_key_path));
    CHECK(a.status == 0);
    CHECK(a.output == b.output);
  }

  SUBCASE("serving certificate names and extensions") {
    std::string sans = sans_text(pki.server_cert_path);
    CHECK(contains(sans, "DNS:localhost"));
    CHECK(contains(sans, "IP Address:127.0.0.1"));
    CHECK(contains(sans, "IP Address:0:0:0:0:0:0:0:1"));
    CHECK(contains(sans, "DNS:berth.example.com"));
    CHECK(contains(sans, "IP Address:10.1.2.3"));
    CHECK(contains(sans, "IP Address:FD00:0:0:0:0:0:0:1"));
    std::string host = hostname();
    std::transform(host.begin(), host.end(), host.begin(), ::tolower);
    CHECK_MESSAGE(contains(sans, "DNS:" + host), sans);

    auto text = run("openssl x509 -noout -text -in " + quote(pki.server_cert_path));
    CHECK(contains(text.output, "TLS Web Server Authentication"));
    CHECK(!contains(text.output, "TLS Web Client Authentication"));
    CHECK(contains(text.output, "CA:FALSE"));
    CHECK(contains(text.output, "Digital Signature, Key Encipherment"));
    CHECK(contains(text.output, "X509v3 Subject Key Identifier"));
    CHECK(contains(text.output, "X509v3 Authority Key Identifier"));
    CHECK(contains(text.output, "ASN1 OID: prime256v1"));
    CHECK(contains(text.output, "ecdsa-with-SHA256"));
  }

  SUBCASE("CA extensions, validity and serial") {
    auto text = run("openssl x509 -noout -text -in " + quote(pki.ca_cert_path));
    CHECK(contains(text.output, "Subject: CN = berth-ca"));
    CHECK(contains(text.output, "CA:TRUE"));
    CHECK(contains(text.output, "Digital Signature, Certificate Sign, CRL Sign"));
    // Valid now, still valid in 9 years, not in 11; a leaf is valid in 300 days, not in 400.
    std::string ca = quote(pki.ca_cert_path), leaf = quote(pki.admin_cert_path);
    CHECK(run("openssl x509 -noout -checkend 0 -in " + ca).status == 0);
    CHECK(run("openssl x509 -noout -checkend " + std::to_string(9 * 365 * 86400) + " -in " + ca).status == 0);
    CHECK(run("openssl x509 -noout -checkend " + std::to_string(11 * 365 * 86400) + " -in " + ca).status != 0);
    CHECK(run("openssl x509 -noout -checkend " + std::to_string(300 * 86400) + " -in " + leaf).status == 0);
    CHECK(run("openssl x509 -noout -checkend " + std::to_string(400 * 86400) + " -in " + leaf).status != 0);
    // Serial: 128 bits, positive, different per certificate.
    auto s1 = run("openssl x509 -noout -serial -in " + ca), s2 = run("openssl x509 -noout -serial -in " + leaf);
    CHECK(s1.output.size() == std::string("serial=").size() + 32 + 1);
    CHECK(s1.output != s2.output);
  }

  SUBCASE("node token is 32 random bytes as hex") {
    CHECK(pki.node_token.size() == 64);
    CHECK(pki.node_token.find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK(slurp(pki.node_token_path) == pki.node_token + "\n");
  }
}

TEST_CASE("a second start reuses every file unchanged") {
  TempDir tmp;
  auto first = ensure_server_pki(tmp.path, kExtra);
  REQUIRE(first.ok());
  std::vector<std::pair<std::string, ino_t>> files;
  for (const auto& p : {first->ca_cert_path, first->ca_key_path, first->server_cert_path, first->server_key_path,
                        first->admin_cert_path, first->admin_key_path, first->apiserver_client_cert_path,
                        first->apiserver_client_key_path, first->node_token_path})
    files.emplace_back(p, inode_of(p));

  // The same SANs in another spelling are the same names.
  auto second = ensure_server_pki(tmp.path, {"BERTH.example.com", "10.1.2.3", "fd00:0::1"});
  REQUIRE_MESSAGE(second.ok(), second.status().message());
  CHECK(second->issued.empty());
  CHECK(second->ca.cert_pem == first->ca.cert_pem);
  CHECK(second->ca.key_pem == first->ca.key_pem);
  CHECK(second->server.cert_pem == first->server.cert_pem);
  CHECK(second->admin.key_pem == first->admin.key_pem);
  CHECK(second->apiserver_client.cert_pem == first->apiserver_client.cert_pem);
  CHECK(second->node_token == first->node_token);
  for (const auto& [p, ino] : files) CHECK_MESSAGE(inode_of(p) == ino, p << " was rewritten");
}

TEST_CASE("an added SAN re-issues only the serving certificate, under the same CA") {
  TempDir tmp;
  auto first = ensure_server_pki(tmp.path, kExtra);
  REQUIRE(first.ok());
  auto extra = kExtra;
  extra.push_back("api.berth.test");
  extra.push_back("192.0.2.7");
  auto second = ensure_server_pki(tmp.path, extra);
  REQUIRE_MESSAGE(second.ok(), second.status().message());
  CHECK(second->issued == std::vector<std::string>{"server"});
  CHECK(second->ca.cert_pem == first->ca.cert_pem);
  CHECK(slurp(second->ca_cert_path) == first->ca.cert_pem);
  CHECK(second->admin.cert_pem == first->admin.cert_pem);
  CHECK(second->server.cert_pem != first->server.cert_pem);
  CHECK(slurp(second->server_cert_path) == second->server.cert_pem);
  std::string sans = sans_text(second->server_cert_path);
  CHECK(contains(sans, "DNS:api.berth.test"));
  CHECK(contains(sans, "IP Address:192.0.2.7"));
  CHECK(contains(sans, "DNS:berth.example.com"));
  auto v = run("openssl verify -purpose sslserver -CAfile " + quote(second->ca_cert_path) + " " +
               quote(second->server_cert_path));
  CHECK_MESSAGE(v.status == 0, v.output);

  // Fewer SANs than the certificate has: reused as is.
  auto third = ensure_server_pki(tmp.path, {});
  REQUIRE(third.ok());
  CHECK(third->issued.empty());
}

TEST_CASE("a leaf close to expiry is renewed on start") {
  TempDir tmp;
  auto first = ensure_server_pki(tmp.path, {});
  REQUIRE(first.ok());
  auto short_lived = issue_cert(first->ca, "admin", {"system:masters"}, {}, false, true, 10);
  REQUIRE(short_lived.ok());
  REQUIRE(write_file_atomic(first->admin_cert_path, short_lived->cert_pem, 0644).is_ok());
  REQUIRE(write_file_atomic(first->admin_key_path, short_lived->key_pem, 0600).is_ok());
  auto second = ensure_server_pki(tmp.path, {});
  REQUIRE_MESSAGE(second.ok(), second.status().message());
  CHECK(second->issued == std::vector<std::string>{"admin"});
  CHECK(second->admin.cert_pem != short_lived->cert_pem);
  CHECK(run("openssl x509 -noout -checkend " + std::to_string(300 * 86400) + " -in " +
            quote(second->admin_cert_path))
            .status == 0);
}

TEST_CASE("a missing leaf is issued again; a removed CA re-issues every leaf") {
  TempDir tmp;
  auto first = ensure_server_pki(tmp.path, {});
  REQUIRE(first.ok());
  fs::remove(first->apiserver_client_key_path);
  auto second = ensure_server_pki(tmp.path, {});
  REQUIRE_MESSAGE(second.ok(), second.status().message());
  CHECK(second->issued == std::vector<std::string>{"apiserver-client"});

  fs::remove(first->ca_cert_path);
  fs::remove(first->ca_key_path);
  auto third = ensure_server_pki(tmp.path, {});
  REQUIRE_MESSAGE(third.ok(), third.status().message());
  CHECK(third->issued == std::vector<std::string>{"ca", "server", "admin", "apiserver-client"});
  CHECK(third->ca.cert_pem != first->ca.cert_pem);
  CHECK(third->node_token == first->node_token);
  auto v = run("openssl verify -CAfile " + quote(third->ca_cert_path) + " " + quote(third->server_cert_path));
  CHECK_MESSAGE(v.status == 0, v.output);
}

TEST_CASE("broken files are clear errors, not crashes or silent replacement") {
  TempDir tmp;
  auto first = ensure_server_pki(tmp.path, {});
  REQUIRE(first.ok());

  SUBCASE("corrupted CA key") {
    REQUIRE(write_file_atomic(first->ca_key_path, "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n",
                              0600)
                .is_ok());
    auto r = ensure_server_pki(tmp.path, {});
    REQUIRE(!r.ok());
    CHECK(r.status().reason() == Reason::InternalError);
    CHECK_MESSAGE(contains(r.status().message(), first->ca_key_path), r.status().message());
    CHECK(contains(r.status().message(), "not a valid"));
    CHECK(slurp(first->ca_cert_path) == first->ca.cert_pem);  // nothing replaced
  }
  SUBCASE("corrupted serving key") {
    REQUIRE(write_file_atomic(first->server_key_path, "not a key at all", 0600).is_ok());
    auto r = ensure_server_pki(tmp.path, {});
    REQUIRE(!r.ok());
    CHECK_MESSAGE(contains(r.status().message(), first->server_key_path), r.status().message());
    CHECK(contains(r.status().message(), "remove it"));
  }
  SUBCASE("corrupted certificate") {
    REQUIRE(write_file_atomic(first->admin_cert_path, first->admin.cert_pem.substr(0, 100), 0644).is_ok());
    auto r = ensure_server_pki(tmp.path, {});
    REQUIRE(!r.ok());
    CHECK_MESSAGE(contains(r.status().message(), first->admin_cert_path), r.status().message());
  }
  SUBCASE("key of another certificate") {
    REQUIRE(write_file_atomic(first->server_key_path, first->admin.key_pem, 0600).is_ok());
    auto r = ensure_server_pki(tmp.path, {});
    REQUIRE(!r.ok());
    CHECK_MESSAGE(contains(r.status().message(), "does not match"), r.status().message());
  }
  SUBCASE("CA certificate without its key") {
    fs::remove(first->ca_key_path);
    auto r = ensure_server_pki(tmp.path, {});
    REQUIRE(!r.ok());
    CHECK_MESSAGE(contains(r.status().message(), "ca.key is missing"), r.status().message());
  }
  SUBCASE("empty token file") {
    REQUIRE(write_file_atomic(first->node_token_path, "\n", 0600).is_ok());
    auto r = ensure_server_pki(tmp.path, {});
    REQUIRE(!r.ok());
    CHECK(contains(r.status().message(), "node-token"));
  }
  SUBCASE("an invalid SAN is rejected before anything is written") {
    auto r = ensure_server_pki(tmp.path, {"bad name!"});
    REQUIRE(!r.ok());
    CHECK(r.status().reason() == Reason::Invalid);
    CHECK(contains(r.status().message(), "bad name!"));
    CHECK(slurp(first->server_cert_path) == first->server.cert_pem);
  }
}

TEST_CASE("subject_of reports CN and O, as Kubernetes' x509 authenticator reads them") {
  TempDir tmp;
  auto pki = ensure_server_pki(tmp.path, {});
  REQUIRE(pki.ok());
  auto admin = subject_of(pki->admin.cert_pem);
  REQUIRE_MESSAGE(admin.ok(), admin.status().message());
  CHECK(admin->common_name == "admin");
  CHECK(admin->organizations == std::vector<std::string>{"system:masters"});
  auto api = subject_of(pki->apiserver_client.cert_pem);
  REQUIRE(api.ok());
  CHECK(api->common_name == "berth-apiserver");
  CHECK(api->organizations == std::vector<std::string>{"system:masters"});

  auto multi = issue_cert(pki->ca, "jane", {"dev", "ops"}, {}, false, true, 1);
  REQUIRE(multi.ok());
  auto s = subject_of(multi->cert_pem);
  REQUIRE(s.ok());
  CHECK(s->common_name == "jane");
  CHECK(s->organizations == std::vector<std::string>{"dev", "ops"});
  auto subj = run("openssl x509 -noout -subject -in /dev/stdin <<'EOF'\n" + multi->cert_pem + "EOF");
  CHECK_MESSAGE(contains(subj.output, "O = dev, O = ops, CN = jane"), subj.output);

  CHECK(!subject_of(std::string("garbage")).ok());
  CHECK(!subject_of(static_cast<const x509_st*>(nullptr)).ok());
}

TEST_CASE("issue_cert rejects bad arguments with Invalid") {
  TempDir tmp;
  auto pki = ensure_server_pki(tmp.path, {});
  REQUIRE(pki.ok());
  CHECK(issue_cert(pki->ca, "x", {}, {"has space"}, true, false, 1).status().reason() == Reason::Invalid);
  CHECK(issue_cert(pki->ca, "x", {}, {}, false, false, 1).status().reason() == Reason::Invalid);
  CHECK(issue_cert(pki->ca, "", {}, {}, false, true, 1).status().reason() == Reason::Invalid);
  CHECK(issue_cert(pki->ca, "x", {}, {}, false, true, 0).status().reason() == Reason::Invalid);
  CertKey wrong{pki->ca.cert_pem, pki->admin.key_pem};
  auto r = issue_cert(wrong, "x", {}, {}, false, true, 1);
  REQUIRE(!r.ok());
  CHECK(contains(r.status().message(), "does not match"));
}

TEST_CASE("kubeconfig carries the cluster, user and context kubectl needs") {
  TempDir tmp;
  auto pki = ensure_server_pki(tmp.path, {});
  REQUIRE(pki.ok());
  std::string path = tmp.path + "/admin.kubeconfig";
  auto st = write_kubeconfig(path, "https://127.0.0.1:6443", pki->ca.cert_pem, pki->admin, "admin");
  REQUIRE_MESSAGE(st.is_ok(), st.message());
  CHECK(mode_of(path) == 0600);

  YAML::Node kc = YAML::LoadFile(path);
  CHECK(kc["apiVersion"].as<std::string>() == "v1");
  CHECK(kc["kind"].as<std::string>() == "Config");
  CHECK(kc["current-context"].as<std::string>() == "berth");
  REQUIRE(kc["clusters"].size() == 1);
  CHECK(kc["clusters"][0]["name"].as<std::string>() == "berth");
  CHECK(kc["clusters"][0]["cluster"]["server"].as<std::string>() == "https://127.0.0.1:6443");
  CHECK(unbase64(kc["clusters"][0]["cluster"]["certificate-authority-data"].as<std::string>()) == pki->ca.cert_pem);
  REQUIRE(kc["users"].size() == 1);
  CHECK(kc["users"][0]["name"].as<std::string>() == "admin");
  CHECK(unbase64(kc["users"][0]["user"]["client-certificate-data"].as<std::string>()) == pki->admin.cert_pem);
  CHECK(unbase64(kc["users"][0]["user"]["client-key-data"].as<std::string>()) == pki->admin.key_pem);
  REQUIRE(kc["contexts"].size() == 1);
  CHECK(kc["contexts"][0]["name"].as<std::string>() == "berth");
  CHECK(kc["contexts"][0]["context"]["cluster"].as<std::string>() == "berth");
  CHECK(kc["contexts"][0]["context"]["user"].as<std::string>() == "admin");

  // Odd characters in the URL or user name stay data, not YAML structure.
  st = write_kubeconfig(path, "https://h:1/p?a=\"b\"#x", pki->ca.cert_pem, pki->admin, "a: b\n- c");
  REQUIRE(st.is_ok());
  kc = YAML::LoadFile(path);
  CHECK(kc["clusters"][0]["cluster"]["server"].as<std::string>() == "https://h:1/p?a=\"b\"#x");
  CHECK(kc["users"][0]["name"].as<std::string>() == "a: b\n- c");

  CHECK(write_kubeconfig(path, "", pki->ca.cert_pem, pki->admin, "admin").reason() == Reason::Invalid);
  CHECK(!write_kubeconfig(path, "https://x", "nope", pki->admin, "admin").is_ok());
  CHECK(write_kubeconfig(path, "https://x", pki->ca.cert_pem, {pki->admin.cert_pem, pki->server.key_pem}, "admin")
            .reason() == Reason::Invalid);
}

TEST_CASE("file helpers and token comparison") {
  TempDir tmp;
  std::string p = tmp.path + "/f";
  CHECK(read_file(p).status().reason() == Reason::NotFound);
  REQUIRE(write_file_atomic(p, "one", 0640).is_ok());
  CHECK(mode_of(p) == 0640);
  REQUIRE(write_file_atomic(p, std::string("two\0three", 9), 0600).is_ok());
  CHECK(slurp(p) == std::string("two\0three", 9));
  CHECK(mode_of(p) == 0600);
  size_t entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(tmp.path)) ++entries;
  CHECK(entries == 1);  // no temporary files left behind
  CHECK(!write_file_atomic(tmp.path + "/no/such/dir/f", "x", 0600).is_ok());

  auto a = random_hex(16), b = random_hex(16);
  REQUIRE(a.ok());
  CHECK(a->size() == 32);
  CHECK(*a != *b);

  CHECK(constant_time_equal("secret", "secret"));
  CHECK(!constant_time_equal("secret", "secreT"));
  CHECK(!constant_time_equal("secret", "secret2"));
  CHECK(!constant_time_equal("", "x"));
  CHECK(constant_time_equal("", ""));
}
