// Pulls from a real docker-registry started here on free loopback ports: a busybox image
// built with umoci and pushed with skopeo, pull policies and kubelet's error texts, pulls by
// digest, concurrent pulls sharing one download, an image index resolved for linux/amd64, a
// corrupted blob refused, basic auth (htpasswd), and bearer tokens from a token server
// started here (the registry's token auth, checked with a certificate made here).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <arpa/inet.h>
#include <crypt.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include "nodeagent/images/internal.h"
#include "test_util.h"

using namespace berth::nodeagent::images;
namespace api = berth::api;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

bool wait_for_port(int port) {
  for (int i = 0; i < 200; ++i) {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(s);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// One docker-registry process, stopped (by its pid) when the test ends.
struct Registry {
  int port = 0;
  pid_t pid = -1;
  std::string log;
  std::string host() const { return "127.0.0.1:" + std::to_string(port); }

  bool start(const std::string& dir, const std::string& name, const std::string& storage, const std::string& auth_yaml) {
    port = free_port();
    std::string config = dir + "/" + name + ".yml";
    log = dir + "/" + name + ".log";
    testutil::write(config, "version: 0.1\n"
                            "log:\n  level: info\n  accesslog:\n    disabled: false\n"
                            "storage:\n  filesystem:\n    rootdirectory: " + storage + "\n"
                            "  delete:\n    enabled: true\n"
                            "http:\n  addr: 127.0.0.1:" + std::to_string(port) + "\n  secret: berth-test\n" + auth_yaml);
    pid = ::fork();
    if (pid == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execlp("docker-registry", "docker-registry", "serve", config.c_str(), nullptr);
      ::_exit(127);
    }
    return wait_for_port(port);
  }
  ~Registry() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1)) ++n;
  return n;
}

long http_put(const std::string& url, const std::string& body, const std::string& content_type) {
  CURL* c = curl_easy_init();
  curl_slist* h = curl_slist_append(nullptr, ("Content-Type: " + content_type).c_str());
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, +[](char*, size_t s, size_t n, void*) { return s * n; });
  long status = 0;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return status;
}

std::string b64url(const unsigned char* p, size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), p, static_cast<int>(n));
  out.resize(static_cast<size_t>(len));
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}
std::string b64url(const std::string& s) { return b64url(reinterpret_cast<const unsigned char*>(s.data()), s.size()); }

// A one-connection-at-a-time HTTP/1.1 server on a free loopback port for the test's own
// endpoints; handler gets the request line, the header block and the body, returns a response.
struct TinyServer {
  using Handler = std::function<std::string(const std::string&, const std::string&, const std::string&)>;
  int port = 0, listen_fd = -1;
  Handler handler;
  std::thread thread;
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::vector<std::string> seen;  // request lines

  bool start(Handler h) {
    handler = std::move(h);
    listen_fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd, 16) != 0) return false;
    socklen_t alen = sizeof a;
    ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&a), &alen);
    port = ntohs(a.sin_port);
    thread = std::thread([this] { serve(); });
    return true;
  }

  void serve() {
    while (!stopping) {
      int c = ::accept(listen_fd, nullptr, nullptr);
      if (c < 0) break;
      std::string req;
      char buf[4096];
      size_t body_len = 0, header_end = std::string::npos;
      while (true) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
        if (header_end == std::string::npos && (header_end = req.find("\r\n\r\n")) != std::string::npos) {
          std::string lower = req.substr(0, header_end);
          for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          size_t cl = lower.find("content-length:");
          if (cl != std::string::npos) body_len = std::stoul(lower.substr(cl + 15));
        }
        if (header_end != std::string::npos && req.size() >= header_end + 4 + body_len) break;
      }
      if (header_end != std::string::npos) {
        std::string line = req.substr(0, req.find("\r\n"));
        {
          std::lock_guard lock(mu);
          seen.push_back(line);
        }
        std::string resp = handler(line, req.substr(0, header_end), req.substr(header_end + 4));
        ::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
      }
      ::close(c);
    }
  }

  size_t count(const std::string& needle) {
    std::lock_guard lock(mu);
    size_t n = 0;
    for (const auto& l : seen) n += l.find(needle) != std::string::npos;
    return n;
  }

  static std::string response(const std::string& status, const std::string& body, const std::string& extra = "") {
    return "HTTP/1.1 " + status + "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n" + extra + "Connection: close\r\n\r\n" + body;
  }

  ~TinyServer() {
    stopping = true;
    if (listen_fd >= 0) ::shutdown(listen_fd, SHUT_RDWR), ::close(listen_fd);
    if (thread.joinable()) thread.join();
  }
};

// A token server for the registry's `auth: token` mode: ES256 JWTs with the signing
// certificate in x5c, for basic credentials alice:s3cret or the refresh token "refresh-me".
struct TokenServer {
  TinyServer http;
  int port = 0;
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  std::string cert_pem_path, x5c;
  std::atomic<int> issued{0};

  bool start(const std::string& dir) {
    key = EVP_EC_gen("P-256");
    cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("berth-test-token"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_sign(cert, key, EVP_sha256());
    cert_pem_path = dir + "/token-ca.pem";
    FILE* f = std::fopen(cert_pem_path.c_str(), "w");
    PEM_write_X509(f, cert);
    std::fclose(f);
    unsigned char* der = nullptr;
    int len = i2d_X509(cert, &der);
    std::string std_b64(4 * ((static_cast<size_t>(len) + 2) / 3) + 1, '\0');
    std_b64.resize(static_cast<size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(std_b64.data()), der, len)));
    OPENSSL_free(der);
    x5c = std_b64;
    bool ok = http.start([this](const std::string& line, const std::string& headers, const std::string& body) {
      return handle(line, headers, body);
    });
    port = http.port;
    return ok;
  }

  std::string jwt(const std::string& subject, const std::string& scope) {
    json header = {{"alg", "ES256"}, {"typ", "JWT"}, {"x5c", {x5c}}};
    long now = static_cast<long>(std::time(nullptr));
    json access = json::array();
    // scope "repository:busybox:pull" -> access to busybox, pull
    size_t a = scope.find(':'), b = scope.rfind(':');
    if (a != std::string::npos && b > a)
      access.push_back({{"type", scope.substr(0, a)}, {"name", scope.substr(a + 1, b - a - 1)}, {"actions", {"pull"}}});
    json claims = {{"iss", "berth-test-issuer"}, {"sub", subject}, {"aud", "berth-test"}, {"exp", now + 300},
                   {"nbf", now - 10},          {"iat", now},      {"jti", std::to_string(++issued)}, {"access", access}};
    std::string input = b64url(header.dump()) + "." + b64url(claims.dump());
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    size_t siglen = 0;
    EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, key);
    EVP_DigestSign(md, nullptr, &siglen, reinterpret_cast<const unsigned char*>(input.data()), input.size());
    std::vector<unsigned char> der(siglen);
    EVP_DigestSign(md, der.data(), &siglen, reinterpret_cast<const unsigned char*>(input.data()), input.size());
    EVP_MD_CTX_free(md);
    const unsigned char* p = der.data();
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(siglen));
    unsigned char raw[64] = {0};
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32);
    ECDSA_SIG_free(sig);
    return input + "." + b64url(raw, 64);
  }

  static std::string url_decode(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '%' && i + 2 < s.size()) {
        out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        out += s[i] == '+' ? ' ' : s[i];
      }
    }
    return out;
  }
  static std::string param(const std::string& q, const std::string& name) {
    size_t p = 0;
    while (p < q.size()) {
      size_t amp = q.find('&', p);
      std::string kv = q.substr(p, amp == std::string::npos ? std::string::npos : amp - p);
      if (kv.rfind(name + "=", 0) == 0) return url_decode(kv.substr(name.size() + 1));
      if (amp == std::string::npos) break;
      p = amp + 1;
    }
    return "";
  }

  std::string handle(const std::string& line, const std::string& headers, const std::string& body) {
    std::string target = line.substr(line.find(' ') + 1);
    target = target.substr(0, target.find(' '));
    std::string query = target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1);
    if (line.rfind("GET ", 0) == 0 && headers.find("Authorization: Basic YWxpY2U6czNjcmV0") != std::string::npos)  // alice:s3cret
      return TinyServer::response("200 OK", json{{"token", jwt("alice", param(query, "scope"))}, {"expires_in", 300}}.dump());
    if (line.rfind("POST ", 0) == 0 && param(body, "grant_type") == "refresh_token" &&
        param(body, "refresh_token") == "refresh-me") {
      std::string scope = param(body, "scope");
      return TinyServer::response(
          "200 OK", json{{"access_token", jwt("robot", scope.substr(0, scope.find(' ')))}, {"expires_in", 300}}.dump());
    }
    return TinyServer::response("401 Unauthorized", R"({"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]})");
  }

  ~TokenServer() {
    X509_free(cert);
    EVP_PKEY_free(key);
  }
};

// The registries and images every test case uses, made once.
struct World {
  testutil::TempDir dir;
  Registry reg, basic_reg, token_reg;
  TokenServer tokens;
  TinyServer front;  // answers every request with a redirect to reg, as registries on blob storage do
  std::string storage, layout;
  testutil::LayoutImage busybox, other, unique;
  std::string error;

  World() {
    storage = dir.path + "/storage";
    layout = dir.path + "/oci";
    const std::string log = dir.path + "/build.log";
    if (!reg.start(dir.path, "registry", storage, "")) {
      error = "docker-registry did not start: " + testutil::read(reg.log);
      return;
    }
    if (!testutil::make_busybox_layout(dir.path)) {
      error = "building the busybox image failed: " + testutil::read(log);
      return;
    }
    // "other": the same layer with another config; "unique": a layer no other image shares.
    std::string script =
        "cd " + dir.path + "\n"
        "umoci config --image oci:1 --tag other --config.cmd echo --config.env GREETING=hi\n"
        "umoci new --image oci:unique\n"
        "umoci unpack --image oci:unique u\n"
        "date +%s%N > u/rootfs/unique\n"
        "umoci repack --image oci:unique u\n"
        "rm -rf u\n";
    for (const char* tag : {"1", "other", "unique"})
      script += "skopeo copy --quiet --dest-tls-verify=false oci:oci:" + std::string(tag) + " docker://" + reg.host() +
                "/busybox:" + tag + "\n";
    if (testutil::sh(script, log) != 0) {
      error = "pushing the test images failed: " + testutil::read(log);
      return;
    }
    busybox = testutil::layout_image(layout, "1");
    other = testutil::layout_image(layout, "other");
    unique = testutil::layout_image(layout, "unique");

    // Basic auth: the same storage behind htpasswd (bcrypt, as the registry requires).
    char salt[64], hash[CRYPT_OUTPUT_SIZE];
    crypt_data data{};
    if (!crypt_gensalt_rn("$2b$", 5, nullptr, 0, salt, sizeof salt)) {
      error = "bcrypt salt failed";
      return;
    }
    std::string h = crypt_r("s3cret", salt, &data) ? crypt_r("s3cret", salt, &data) : "";
    std::snprintf(hash, sizeof hash, "%s", h.c_str());
    testutil::write(dir.path + "/htpasswd", "alice:" + std::string(hash) + "\n");
    if (!basic_reg.start(dir.path, "basic", storage,
                         "auth:\n  htpasswd:\n    realm: basic-realm\n    path: " + dir.path + "/htpasswd\n")) {
      error = "htpasswd registry did not start: " + testutil::read(basic_reg.log);
      return;
    }
    if (!tokens.start(dir.path)) {
      error = "token server did not start";
      return;
    }
    if (!token_reg.start(dir.path, "token", storage,
                         "auth:\n  token:\n    realm: http://127.0.0.1:" + std::to_string(tokens.port) +
                             "/token\n    service: berth-test\n    issuer: berth-test-issuer\n"
                             "    rootcertbundle: " + tokens.cert_pem_path + "\n")) {
      error = "token registry did not start: " + testutil::read(token_reg.log);
      return;
    }
    std::string target = "http://" + reg.host();
    if (!front.start([target](const std::string& line, const std::string&, const std::string&) {
          std::string path = line.substr(line.find(' ') + 1);
          path = path.substr(0, path.find(' '));
          return TinyServer::response("307 Temporary Redirect", "", "Location: " + target + path + "\r\n");
        })) {
      error = "redirect server did not start";
      return;
    }
  }
};

World& world() {
  static World w;
  return w;
}

std::unique_ptr<ImageStore> open_store(const std::string& dir) {
  auto s = ImageStore::open(dir, {});
  REQUIRE_MESSAGE(s, s.status().message());
  return std::move(*s);
}

}  // namespace

TEST_CASE("pull a busybox image from a local registry and honour pull policies") {
  World& w = world();
  REQUIRE_MESSAGE(w.error.empty(), w.error);
  testutil::TempDir t;
  auto store = open_store(t.path + "/store");
  const std::string ref = w.reg.host() + "/busybox:1";

  auto never = store->ensure(ref, "Never", {});
  REQUIRE_FALSE(never);
  CHECK(never.status().message() == "Container image \"" + ref + "\" is not present with pull policy of Never");
  CHECK(waiting_reason(never.status()) == "ErrImageNeverPull");

  auto img = store->ensure(ref, "IfNotPresent", {});
  REQUIRE_MESSAGE(img, img.status().message());
  CHECK(img->ref == ref);
  CHECK(img->digest == w.busybox.config);
  CHECK(img->repo_digest == w.reg.host() + "/busybox@" + w.busybox.manifest);
  CHECK(img->config.cmd == std::vector<std::string>{"sh"});
  REQUIRE(img->layer_dirs.size() == 1);
  CHECK(fs::is_regular_file(img->layer_dirs[0] + "/bin/busybox"));
  CHECK(fs::is_symlink(img->layer_dirs[0] + "/bin/sh"));
  CHECK(fs::exists(t.path + "/store/blobs/sha256/" + w.busybox.layer.substr(7)));
  CHECK(fs::exists(t.path + "/store/blobs/sha256/" + w.busybox.manifest.substr(7)));
  CHECK(fs::is_empty(t.path + "/store/tmp"));
  auto index = json::parse(testutil::read(t.path + "/store/images.json"));
  CHECK(index["images"].contains(ref));
  CHECK(index["images"].contains(w.reg.host() + "/busybox@" + w.busybox.manifest));

  // Present now: Never and IfNotPresent answer from the store; Always asks the registry again.
  std::string log_before = testutil::read(w.reg.log);
  CHECK(store->ensure(ref, "Never", {}));
  CHECK(store->ensure(ref, "IfNotPresent", {}));
  CHECK(count(testutil::read(w.reg.log), "GET /v2/busybox/manifests/1") == count(log_before, "GET /v2/busybox/manifests/1"));
  auto always = store->ensure(ref, "Always", {});
  REQUIRE(always);
  CHECK(always->layer_dirs == img->layer_dirs);
  std::string log_after = testutil::read(w.reg.log);
  CHECK(count(log_after, "GET /v2/busybox/manifests/1") == count(log_before, "GET /v2/busybox/manifests/1") + 1);
  CHECK(count(log_after, "GET /v2/busybox/blobs/" + w.busybox.layer) == count(log_before, "GET /v2/busybox/blobs/" + w.busybox.layer));

  // By digest, and the default policy for a tag other than latest.
  auto pinned = store->ensure(w.reg.host() + "/busybox@" + w.busybox.manifest, "", {});
  REQUIRE_MESSAGE(pinned, pinned.status().message());
  CHECK(pinned->digest == w.busybox.config);

  // The same layer under another config: one unpacked directory serves both images.
  auto other = store->ensure(w.reg.host() + "/busybox:other", "IfNotPresent", {});
  REQUIRE_MESSAGE(other, other.status().message());
  CHECK(other->digest == w.other.config);
  CHECK(other->config.cmd == std::vector<std::string>{"echo"});
  CHECK(std::find(other->config.env.begin(), other->config.env.end(), "GREETING=hi") != other->config.env.end());
  CHECK(other->layer_dirs == img->layer_dirs);
}

TEST_CASE("the unpacked image runs: overlay of its layers, chroot, busybox") {
  World& w = world();
  REQUIRE(w.error.empty());
  testutil::TempDir t;
  auto store = open_store(t.path + "/store");
  auto img = store->ensure(w.reg.host() + "/busybox:1", "IfNotPresent", {});
  REQUIRE(img);
  // As the pod worker mounts a rootfs: the layers (top first) under a writable upper directory.
  std::string lower;
  for (auto it = img->layer_dirs.rbegin(); it != img->layer_dirs.rend(); ++it) lower += (lower.empty() ? "" : ":") + *it;
  std::string mnt = t.path + "/mnt";
  for (const char* d : {"/mnt", "/upper", "/work"}) fs::create_directories(t.path + d);
  std::string opts = "lowerdir=" + lower + ",upperdir=" + t.path + "/upper,workdir=" + t.path + "/work";
  if (::mount("overlay", mnt.c_str(), "overlay", 0, opts.c_str()) != 0) {
    MESSAGE("overlay mount not possible here: " << std::string(std::strerror(errno)));
    return;
  }
  CHECK(testutil::sh("chroot " + mnt + " /bin/sh -c 'echo hello from busybox' > " + t.path + "/out") == 0);
  CHECK(testutil::read(t.path + "/out") == "hello from busybox\n");
  ::umount2(mnt.c_str(), MNT_DETACH);
}

TEST_CASE("kubelet's texts for a missing image, an unreachable registry and a bad name") {
  World& w = world();
  REQUIRE(w.error.empty());
  testutil::TempDir t;
  auto store = open_store(t.path + "/store");
  const std::string ref = w.reg.host() + "/busybox:nosuch";
  auto missing = store->ensure(ref, "IfNotPresent", {});
  REQUIRE_FALSE(missing);
  CHECK(missing.status().message() == "failed to pull and unpack image \"" + ref + "\": failed to resolve reference \"" +
                                          ref + "\": " + ref + ": not found");
  CHECK(missing.status().reason() == api::Reason::NotFound);
  CHECK(waiting_reason(missing.status()) == "ErrImagePull");

  auto no_repo = store->ensure(w.reg.host() + "/nosuch/image", "Always", {});
  REQUIRE_FALSE(no_repo);
  CHECK(no_repo.status().message().find(": not found") != std::string::npos);

  int closed = free_port();
  auto refused = store->ensure("127.0.0.1:" + std::to_string(closed) + "/busybox:1", "IfNotPresent", {});
  REQUIRE_FALSE(refused);
  CHECK(refused.status().message().rfind("failed to pull and unpack image \"127.0.0.1:" + std::to_string(closed) +
                                             "/busybox:1\": failed to resolve reference",
                                         0) == 0);
  CHECK(refused.status().message().find("failed to do request: GET \"http://127.0.0.1:") != std::string::npos);
  CHECK(refused.status().reason() == api::Reason::ServiceUnavailable);

  auto bad = store->ensure("bad//name", "IfNotPresent", {});
  REQUIRE_FALSE(bad);
  CHECK(bad.status().message() ==
        "Failed to apply default image tag \"bad//name\": couldn't parse image name \"bad//name\": invalid reference format");
  CHECK(waiting_reason(bad.status()) == "InvalidImageName");
}

TEST_CASE("concurrent pulls of one image share a single download") {
  World& w = world();
  REQUIRE(w.error.empty());
  testutil::TempDir t;
  auto store = open_store(t.path + "/store");
  const std::string blob_get = "GET /v2/busybox/blobs/" + w.busybox.layer;
  size_t before = count(testutil::read(w.reg.log), blob_get);
  std::vector<std::thread> threads;
  std::vector<std::string> results(6);
  for (size_t i = 0; i < results.size(); ++i)
    threads.emplace_back([&, i] {
      auto r = store->ensure(w.reg.host() + "/busybox:1", "IfNotPresent", {});
      results[i] = r ? r->digest : r.status().message();
    });
  for (auto& th : threads) th.join();
  for (const auto& r : results) CHECK(r == w.busybox.config);
  CHECK(count(testutil::read(w.reg.log), blob_get) == before + 1);
}

TEST_CASE("an image index is resolved for linux/amd64") {
  World& w = world();
  REQUIRE(w.error.empty());
  auto desc = [&](const std::string& digest, const char* arch) {
    std::string body = testutil::read(w.layout + "/blobs/sha256/" + digest.substr(7));
    return json{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                {"digest", digest},
                {"size", body.size()},
                {"platform", {{"os", "linux"}, {"architecture", arch}}}};
  };
  json index = {{"schemaVersion", 2},
                {"mediaType", "application/vnd.oci.image.index.v1+json"},
                {"manifests", {desc(w.other.manifest, "arm64"), desc(w.busybox.manifest, "amd64")}}};
  std::string body = index.dump();
  REQUIRE(http_put("http://" + w.reg.host() + "/v2/busybox/manifests/multi", body,
                   "application/vnd.oci.image.index.v1+json") == 201);
  testutil::TempDir t;
  auto store = open_store(t.path + "/store");
  auto img = store->ensure(w.reg.host() + "/busybox:multi", "IfNotPresent", {});
  REQUIRE_MESSAGE(img, img.status().message());
  CHECK(img->digest == w.busybox.config);
  std::string index_digest = detail::sha256_digest(body);
  CHECK(img->repo_digest == w.reg.host() + "/busybox@" + index_digest);
  CHECK(fs::exists(t.path + "/store/blobs/sha256/" + index_digest.substr(7)));
  CHECK(store->find(w.reg.host() + "/busybox@" + index_digest));
  CHECK(store->find(w.reg.host() + "/busybox@" + w.busybox.manifest));
}

TEST_CASE("a blob whose content does not match its digest is refused") {
  World& w = world();
  REQUIRE(w.error.empty());
  // Corrupt the registry's copy of the layer only the "unique" image has (same size).
  std::string data_path = w.storage + "/docker/registry/v2/blobs/sha256/" + w.unique.layer.substr(7, 2) + "/" +
                          w.unique.layer.substr(7) + "/data";
  std::string data = testutil::read(data_path);
  REQUIRE(!data.empty());
  data[data.size() / 2] ^= 0x5a;
  testutil::write(data_path, data);

  testutil::TempDir t;
  auto store = open_store(t.path + "/store");
  const std::string ref = w.reg.host() + "/busybox:unique";
  auto r = store->ensure(ref, "IfNotPresent", {});
  REQUIRE_FALSE(r);
  const std::string& msg = r.status().message();
  CHECK(msg.rfind("failed to pull and unpack image \"" + ref + "\": failed to copy: ", 0) == 0);
  CHECK(msg.find("unexpected commit digest") != std::string::npos);
  CHECK(msg.find("expected " + w.unique.layer) != std::string::npos);
  CHECK(waiting_reason(r.status()) == "ErrImagePull");
  CHECK(!fs::exists(t.path + "/store/blobs/sha256/" + w.unique.layer.substr(7)));
  CHECK(fs::is_empty(t.path + "/store/tmp"));
  CHECK_FALSE(store->find(ref));
}

TEST_CASE("basic auth: credentials are tried in order, none is an authorization error") {
  World& w = world();
  REQUIRE(w.error.empty());
  testutil::TempDir t;
  auto store = open_store(t.path + "/store");
  const std::string ref = w.basic_reg.host() + "/busybox:1";
  auto anonymous = store->ensure(ref, "IfNotPresent", {});
  REQUIRE_FALSE(anonymous);
  CHECK(anonymous.status().reason() == api::Reason::Unauthorized);
  CHECK(anonymous.status().message().find("pull access denied, repository does not exist or may require authorization") !=
        std::string::npos);
  auto wrong = store->ensure(ref, "IfNotPresent", {{"alice", "wrong", ""}});
  REQUIRE_FALSE(wrong);
  CHECK(wrong.status().reason() == api::Reason::Unauthorized);
  auto right = store->ensure(ref, "IfNotPresent", {{"alice", "wrong", ""}, {"alice", "s3cret", ""}});
  REQUIRE_MESSAGE(right, right.status().message());
  CHECK(right->digest == w.busybox.config);
}

TEST_CASE("bearer tokens: a WWW-Authenticate challenge sends us to the token endpoint") {
  World& w = world();
  REQUIRE(w.error.empty());
  testutil::TempDir t;
  auto store = open_store(t.path + "/store");
  const std::string ref = w.token_reg.host() + "/busybox:1";
  auto anonymous = store->ensure(ref, "IfNotPresent", {});
  REQUIRE_FALSE(anonymous);
  CHECK(anonymous.status().reason() == api::Reason::Unauthorized);
  CHECK(anonymous.status().message().find("failed to fetch anonymous token") != std::string::npos);

  int issued = w.tokens.issued;
  auto img = store->ensure(ref, "IfNotPresent", {{"alice", "s3cret", ""}});
  REQUIRE_MESSAGE(img, img.status().message());
  CHECK(img->digest == w.busybox.config);
  CHECK(w.tokens.issued == issued + 1);  // one token served the manifest and every blob

  // A second pull within the token's lifetime reuses it.
  CHECK(store->ensure(ref, "Always", {{"alice", "s3cret", ""}}));
  CHECK(w.tokens.issued == issued + 1);

  // An identity token is exchanged at the realm (OAuth2 refresh_token grant).
  testutil::TempDir t2;
  auto store2 = open_store(t2.path + "/store");
  auto robot = store2->ensure(w.token_reg.host() + "/busybox:other", "IfNotPresent", {{"", "", "refresh-me"}});
  REQUIRE_MESSAGE(robot, robot.status().message());
  CHECK(robot->digest == w.other.config);
}

TEST_CASE("redirects are followed for manifests and blobs") {
  World& w = world();
  REQUIRE(w.error.empty());
  testutil::TempDir t;
  auto store = open_store(t.path + "/store");
  const std::string ref = "127.0.0.1:" + std::to_string(w.front.port) + "/busybox:other";
  auto img = store->ensure(ref, "IfNotPresent", {});
  REQUIRE_MESSAGE(img, img.status().message());
  CHECK(img->digest == w.other.config);
  CHECK(img->repo_digest == "127.0.0.1:" + std::to_string(w.front.port) + "/busybox@" + w.other.manifest);
  CHECK(w.front.count("GET /v2/busybox/manifests/other") == 1);
  CHECK(w.front.count("GET /v2/busybox/blobs/" + w.other.config) == 1);
  CHECK(w.front.count("GET /v2/busybox/blobs/" + w.other.layer) == 1);
}

int main(int argc, char** argv) {
  for (const char* bin : {"docker-registry", "skopeo", "umoci"}) {
    if (!testutil::have(bin)) {
      std::cout << "SKIP: " << bin << " is not installed (apt-get install docker-registry skopeo umoci busybox-static); "
                << "registry pull tests not run\n";
      return 77;
    }
  }
  if (!fs::exists("/bin/busybox")) {
    std::cout << "SKIP: /bin/busybox (busybox-static) is not installed; registry pull tests not run\n";
    return 77;
  }
  if (::geteuid() != 0) {
    std::cout << "SKIP: pull tests need root (layers carry owners and whiteouts)\n";
    return 77;
  }
  doctest::Context ctx(argc, argv);
  int rc = ctx.run();
  return rc;
}
