// The OCI distribution client: manifests and blobs over libcurl, with Docker's transport rules
// (loopback over plain HTTP, insecure registries over unverified HTTPS then HTTP), bearer
// token and basic auth challenges, and redirects (blob storage on another host) followed
// without carrying our Authorization header along.
#include <arpa/inet.h>
#define CURL_DISABLE_TYPECHECK  // curl_easy_setopt is called through a pointer (see CurlApi)
#include <curl/curl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <thread>

#include "nodeagent/images/internal.h"

namespace berth::nodeagent::images::detail {
using api::Reason;
using api::Status;

// ---------------------------------------------------------------- host rules

std::string api_host(std::string_view domain) {
  if (domain == "docker.io") return "registry-1.docker.io";
  return std::string(domain);
}

namespace {

// "host:port" / "[v6]:port" / "host" -> host without brackets.
std::string host_only(std::string_view domain) {
  if (!domain.empty() && domain.front() == '[') {
    size_t close = domain.find(']');
    return std::string(domain.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1));
  }
  return std::string(domain.substr(0, domain.find(':')));
}

bool parse_ipv4(const std::string& s, uint32_t& out) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return false;
  out = ntohl(a.s_addr);
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

bool is_loopback_host(std::string_view domain) {
  std::string host = lower(host_only(domain));
  if (host == "localhost") return true;
  uint32_t v4;
  if (parse_ipv4(host, v4)) return (v4 >> 24) == 127;
  in6_addr a6{};
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&a6)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&a6)) return a6.s6_addr[12] == 127;
  }
  return false;
}

bool is_insecure(std::string_view domain, const std::vector<std::string>& insecure) {
  const std::string host = host_only(domain);
  for (std::string e : insecure) {
    for (const char* scheme : {"http://", "https://"})
      if (e.rfind(scheme, 0) == 0) e = e.substr(std::strlen(scheme));
    while (!e.empty() && e.back() == '/') e.pop_back();
    if (e.empty()) continue;
    if (e == domain) return true;
    size_t slash = e.find('/');
    if (slash != std::string::npos) {  // IPv4 CIDR
      uint32_t net, ip;
      int bits = std::atoi(e.c_str() + slash + 1);
      if (!parse_ipv4(e.substr(0, slash), net) || !parse_ipv4(host, ip) || bits < 0 || bits > 32) continue;
      uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
      if ((net & mask) == (ip & mask)) return true;
      continue;
    }
    // An entry without a port covers every port of that host.
    bool has_port = e.front() == '[' ? e.find("]:") != std::string::npos : e.find(':') != std::string::npos;
    if (!has_port && host_only(e) == host) return true;
  }
  return false;
}

// ---------------------------------------------------------------- token cache

std::string TokenCache::get(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return "";
  if (std::chrono::steady_clock::now() >= it->second.second) {
    entries_.erase(it);
    return "";
  }
  return it->second.first;
}

void TokenCache::put(const std::string& key, std::string header, std::chrono::seconds ttl) {
  std::lock_guard lock(mu_);
  entries_[key] = {std::move(header), std::chrono::steady_clock::now() + ttl};
}

// ---------------------------------------------------------------- HTTP over libcurl

namespace {

// libcurl is loaded on the first pull instead of being linked (see LazyLibrary).
struct CurlApi {
  std::string error;  // empty when loaded
  CURLcode (*global_init)(long) = nullptr;
  CURL* (*easy_init)() = nullptr;
  void (*easy_cleanup)(CURL*) = nullptr;
  void (*easy_reset)(CURL*) = nullptr;
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...) = nullptr;
  CURLcode (*easy_perform)(CURL*) = nullptr;
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...) = nullptr;
  const char* (*easy_strerror)(CURLcode) = nullptr;
  char* (*easy_escape)(CURL*, const char*, int) = nullptr;
  void (*free)(void*) = nullptr;
  curl_slist* (*slist_append)(curl_slist*, const char*) = nullptr;
  void (*slist_free_all)(curl_slist*) = nullptr;
};

CurlApi load_curl() {
  CurlApi a;
  LazyLibrary lib("libcurl.so.4", "libcurl", "libcurl4");
  lib.bind(a.global_init, "curl_global_init");
  lib.bind(a.easy_init, "curl_easy_init");
  lib.bind(a.easy_cleanup, "curl_easy_cleanup");
  lib.bind(a.easy_reset, "curl_easy_reset");
  lib.bind(a.easy_setopt, "curl_easy_setopt");
  lib.bind(a.easy_perform, "curl_easy_perform");
  lib.bind(a.easy_getinfo, "curl_easy_getinfo");
  lib.bind(a.easy_strerror, "curl_easy_strerror");
  lib.bind(a.easy_escape, "curl_easy_escape");
  lib.bind(a.free, "curl_free");
  lib.bind(a.slist_append, "curl_slist_append");
  lib.bind(a.slist_free_all, "curl_slist_free_all");
  a.error = lib.error();
  if (!a.error.empty()) a.global_init = nullptr;
  return a;
}

const CurlApi& curl_api() {
  static const CurlApi api = load_curl();
  return api;
}

// The rest of this file calls libcurl by its usual names.
#undef curl_easy_setopt  // curl.h's own macros (they only check the argument count)
#undef curl_easy_getinfo
#define curl_global_init (curl_api().global_init)
#define curl_easy_init (curl_api().easy_init)
#define curl_easy_cleanup (curl_api().easy_cleanup)
#define curl_easy_reset (curl_api().easy_reset)
#define curl_easy_setopt (curl_api().easy_setopt)
#define curl_easy_perform (curl_api().easy_perform)
#define curl_easy_getinfo (curl_api().easy_getinfo)
#define curl_easy_strerror (curl_api().easy_strerror)
#define curl_easy_escape (curl_api().easy_escape)
#define curl_free (curl_api().free)
#define curl_slist_append (curl_api().slist_append)
#define curl_slist_free_all (curl_api().slist_free_all)

// Why there is no handle: libcurl could not be loaded, or curl_easy_init failed.
std::string no_curl_reason() {
  return curl_api().error.empty() ? "curl_easy_init failed" : curl_api().error;
}

std::once_flag curl_once;

struct Challenge {
  std::string scheme;  // lower-case: "bearer", "basic"
  std::map<std::string, std::string> params;
};

// WWW-Authenticate: Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="..."
std::vector<Challenge> parse_challenges(std::string_view h) {
  std::vector<Challenge> out;
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t' || h[i] == ',')) ++i;
  };
  while (true) {
    skip_ws();
    if (i >= h.size()) break;
    size_t start = i;
    while (i < h.size() && h[i] != ' ' && h[i] != ',') ++i;
    Challenge c;
    c.scheme = lower(h.substr(start, i - start));
    while (true) {
      skip_ws();
      size_t key_start = i;
      while (i < h.size() && h[i] != '=' && h[i] != ' ' && h[i] != ',') ++i;
      if (i >= h.size() || h[i] != '=') {
        i = key_start;  // a new challenge's scheme
        break;
      }
      std::string key = lower(h.substr(key_start, i - key_start));
      ++i;
      std::string value;
      if (i < h.size() && h[i] == '"') {
        ++i;
        while (i < h.size() && h[i] != '"') {
          if (h[i] == '\\' && i + 1 < h.size()) ++i;
          value += h[i++];
        }
        ++i;
      } else {
        while (i < h.size() && h[i] != ',' && h[i] != ' ') value += h[i++];
      }
      c.params[key] = value;
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

using Sink = std::function<bool(const char*, size_t)>;

struct HttpResult {
  CURLcode code = CURLE_OK;
  std::string error;  // transport error text
  bool sink_failed = false;
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names, final response only
  std::string body;                                          // non-2xx bodies and sink-less requests
  bool too_large = false;
  std::string url;

  std::string header(std::string_view name) const {
    for (const auto& [k, v] : headers)
      if (k == name) return v;
    return "";
  }
};

struct Transfer {
  CURL* curl;
  HttpResult* res;
  const Sink* sink;
  size_t limit;
};

size_t on_header(char* p, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  std::string_view line(p, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    t->res->headers.clear();  // a new response (after a redirect or 100-continue)
  } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    t->res->headers.emplace_back(lower(trim(line.substr(0, colon))), trim(line.substr(colon + 1)));
  }
  return size * n;
}

size_t on_body(char* p, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  size_t len = size * n;
  long code = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
  if (code == 200 && t->sink) {
    if (!(*t->sink)(p, len)) {
      t->res->sink_failed = true;
      return 0;
    }
    return len;
  }
  size_t limit = code == 200 ? t->limit : 64 * 1024;  // error bodies: enough for the message
  if (t->res->body.size() + len > limit) {
    if (code == 200) {
      t->res->too_large = true;
      return 0;
    }
    return len;
  }
  t->res->body.append(p, len);
  return len;
}

std::string reason_phrase(long status) {
  switch (status) {
    case 400: return "400 Bad Request";
    case 401: return "401 Unauthorized";
    case 403: return "403 Forbidden";
    case 404: return "404 Not Found";
    case 405: return "405 Method Not Allowed";
    case 429: return "429 Too Many Requests";
    case 500: return "500 Internal Server Error";
    case 502: return "502 Bad Gateway";
    case 503: return "503 Service Unavailable";
    default: return std::to_string(status);
  }
}

// The registry's own words from an error body: {"errors":[{"code":"DENIED","message":"..."}]}.
std::string server_message(const HttpResult& r) {
  json j = json::parse(r.body, nullptr, false);
  std::string out;
  if (j.is_object() && j.contains("errors") && j["errors"].is_array()) {
    for (const auto& e : j["errors"]) {
      if (!e.is_object()) continue;
      if (!out.empty()) out += "; ";
      out += lower(e.value("code", "")) + ": " + e.value("message", "");
    }
  }
  if (out.empty()) out = reason_phrase(r.status);
  return out;
}

}  // namespace

struct RegistryClient::Impl {
  Reference ref;
  std::string host;
  bool plain_http = false, skip_verify = false, may_fall_back = false;
  std::vector<PullAuth> auths;
  size_t candidate = 0;   // which of auths is in use (or anonymous when there are none)
  bool settled = false;   // a request succeeded with it: no more switching
  TokenCache* tokens = nullptr;
  CURL* curl = nullptr;
  std::string noproxy;

  std::string base() const { return std::string(plain_http ? "http://" : "https://") + host; }

  std::string cache_key() const {
    std::string who = "anonymous";
    if (candidate < auths.size()) {
      const auto& a = auths[candidate];
      who = a.username + ":" + sha256_digest(a.password + "\n" + a.token);
    }
    return base() + "|" + ref.path + "|" + who;
  }

  HttpResult perform(const std::string& url, const std::vector<std::string>& headers, const Sink* sink, size_t limit,
                     const std::string* post_form = nullptr) {
    HttpResult res;
    res.url = url;
    Transfer t{curl, &res, sink, limit};
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_reset(curl);  // keeps the connection cache
    curl_slist* list = nullptr;
    for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "berth-agent");
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);  // custom Authorization is not sent to another host
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 120L);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, noproxy.c_str());
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, skip_verify ? 0L : 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, skip_verify ? 0L : 2L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    if (post_form) {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post_form->c_str());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(post_form->size()));
    }
    res.code = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res.status);
    curl_slist_free_all(list);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
    if (res.code != CURLE_OK) res.error = errbuf[0] ? errbuf : curl_easy_strerror(res.code);
    return res;
  }

  std::string escape(const std::string& s) {
    char* e = curl_easy_escape(curl, s.c_str(), static_cast<int>(s.size()));
    std::string out = e ? e : "";
    curl_free(e);
    return out;
  }

  // Answers a 401's challenge: stores the Authorization value to use for this repository.
  Status authorize(const std::string& www_authenticate) {
    auto challenges = parse_challenges(www_authenticate);
    const PullAuth* a = candidate < auths.size() ? &auths[candidate] : nullptr;
    const Challenge* bearer = nullptr;
    const Challenge* basic = nullptr;
    for (const auto& c : challenges) {
      if (c.scheme == "bearer" && !bearer) bearer = &c;
      if (c.scheme == "basic" && !basic) basic = &c;
    }
    if (bearer) {
      auto realm = bearer->params.find("realm");
      if (realm == bearer->params.end() || realm->second.empty())
        return Status(Reason::Unauthorized, "failed to authorize: bearer challenge without a realm");
      std::string service = bearer->params.count("service") ? bearer->params.at("service") : "";
      std::vector<std::string> scopes = {"repository:" + ref.path + ":pull"};
      if (auto s = bearer->params.find("scope"); s != bearer->params.end() && s->second != scopes[0])
        scopes.push_back(s->second);
      if (a && !a->token.empty()) {
        // An identity token: OAuth2 refresh-token grant at the realm.
        std::string form = "grant_type=refresh_token&client_id=berth&refresh_token=" + escape(a->token);
        if (!service.empty()) form += "&service=" + escape(service);
        std::string scope_joined;
        for (const auto& s : scopes) scope_joined += (scope_joined.empty() ? "" : " ") + s;
        form += "&scope=" + escape(scope_joined);
        HttpResult r = perform(realm->second, {"Content-Type: application/x-www-form-urlencoded"}, nullptr, 1 << 20, &form);
        if (r.code == CURLE_OK && r.status == 200) {
          json j = json::parse(r.body, nullptr, false);
          if (j.is_object() && j.contains("access_token") && j["access_token"].is_string()) {
            tokens->put(cache_key(), "Bearer " + j["access_token"].get<std::string>(), ttl(j));
            return Status();
          }
        }
        if (r.code == CURLE_OK && r.status != 401 && r.status != 403) {
          tokens->put(cache_key(), "Bearer " + a->token, std::chrono::seconds(300));  // a registry token as is
          return Status();
        }
        return Status(Reason::Unauthorized, "failed to authorize: failed to fetch oauth token: unexpected status from POST request to " +
                                                realm->second + ": " + reason_phrase(r.status));
      }
      std::string url = realm->second + (realm->second.find('?') == std::string::npos ? "?" : "&");
      bool first = true;
      if (!service.empty()) url += "service=" + escape(service), first = false;
      for (const auto& s : scopes) url += std::string(first ? "" : "&") + "scope=" + escape(s), first = false;
      std::vector<std::string> headers;
      bool with_creds = a && !a->username.empty();
      if (with_creds) headers.push_back("Authorization: Basic " + base64(a->username + ":" + a->password));
      HttpResult r = perform(url, headers, nullptr, 1 << 20);
      if (r.code != CURLE_OK)
        return Status(Reason::ServiceUnavailable, "failed to authorize: failed to do request: GET \"" + url + "\": " + r.error);
      if (r.status != 200)
        return Status(r.status == 401 || r.status == 403 ? Reason::Unauthorized : Reason::ServiceUnavailable,
                      std::string("failed to authorize: failed to fetch ") + (with_creds ? "oauth" : "anonymous") +
                          " token: unexpected status from GET request to " + realm->second + ": " + reason_phrase(r.status));
      json j = json::parse(r.body, nullptr, false);
      std::string token;
      if (j.is_object() && j.contains("token") && j["token"].is_string()) token = j["token"];
      else if (j.is_object() && j.contains("access_token") && j["access_token"].is_string()) token = j["access_token"];
      if (token.empty()) return Status(Reason::Unauthorized, "failed to authorize: token endpoint " + realm->second + " returned no token");
      tokens->put(cache_key(), "Bearer " + token, ttl(j));
      return Status();
    }
    if (basic) {
      if (!a || a->username.empty())
        return Status(Reason::Unauthorized, "pull access denied, repository does not exist or may require authorization: "
                                            "server message: unauthorized: authentication required");
      tokens->put(cache_key(), "Basic " + base64(a->username + ":" + a->password), std::chrono::hours(1));
      return Status();
    }
    return Status(Reason::Unauthorized, "failed to authorize: unsupported authentication challenge \"" + www_authenticate + "\"");
  }

  static std::chrono::seconds ttl(const json& j) {
    long long s = 60;
    if (j.is_object() && j.contains("expires_in") && j["expires_in"].is_number_integer()) s = j["expires_in"];
    return std::chrono::seconds(std::max(10LL, s - 10));  // renew a little early
  }

  // One registry request with the transport fallback and auth dance; the caller reads the status.
  api::Result<HttpResult> request(const std::string& path, std::string_view accept, const Sink* sink, size_t limit,
                                  const std::function<void()>& before_attempt) {
    bool challenged = false;
    while (true) {
      std::vector<std::string> headers;
      if (!accept.empty()) headers.push_back("Accept: " + std::string(accept));
      std::string authz = tokens->get(cache_key());
      if (!authz.empty()) headers.push_back("Authorization: " + authz);
      if (before_attempt) before_attempt();
      HttpResult res = perform(base() + path, headers, sink, limit);
      if (res.code != CURLE_OK) {
        if (may_fall_back && !res.sink_failed) {  // Docker's insecure registries: HTTPS first, then HTTP
          may_fall_back = false;
          plain_http = true;
          continue;
        }
        return res;  // the caller words transport errors
      }
      may_fall_back = false;
      if (res.status == 401 && !challenged) {
        challenged = true;
        std::string www = res.header("www-authenticate");
        if (!www.empty()) {
          Status st = authorize(www);
          if (st.is_ok()) continue;
          if (st.reason() == Reason::Unauthorized && !settled && candidate + 1 < auths.size()) {
            ++candidate, challenged = false;
            continue;
          }
          return st;
        }
      }
      if ((res.status == 401 || res.status == 403) && !settled && candidate + 1 < auths.size()) {
        ++candidate, challenged = false;
        continue;
      }
      if (res.status >= 200 && res.status < 300) settled = true;
      return res;
    }
  }

  Status transport_error(const HttpResult& r) {
    return Status(Reason::ServiceUnavailable, "failed to do request: GET \"" + r.url + "\": " + r.error);
  }

  Status status_error(const HttpResult& r, const std::string& not_found_what) {
    switch (r.status) {
      case 404: return Status(Reason::NotFound, not_found_what + ": not found");
      case 401:
      case 403:
        return Status(Reason::Unauthorized, "pull access denied, repository does not exist or may require authorization: "
                                            "server message: " + server_message(r));
      case 429: return Status(Reason::TooManyRequests, "unexpected status from GET request to " + r.url + ": " +
                                                           reason_phrase(r.status) + ": " + server_message(r));
      default:
        return Status(r.status >= 500 ? Reason::ServiceUnavailable : Reason::InternalError,
                      "unexpected status from GET request to " + r.url + ": " + reason_phrase(r.status));
    }
  }
};

RegistryClient::RegistryClient(const Reference& ref, const std::vector<std::string>& insecure,
                               std::vector<PullAuth> auths, TokenCache* tokens)
    : impl_(std::make_unique<Impl>()) {
  std::call_once(curl_once, [] {
    if (curl_api().error.empty()) curl_global_init(CURL_GLOBAL_DEFAULT);
  });
  Impl& i = *impl_;
  i.ref = ref;
  i.host = api_host(ref.domain);
  i.auths = std::move(auths);
  i.tokens = tokens;
  if (is_loopback_host(ref.domain)) {
    i.plain_http = true;
  } else if (is_insecure(ref.domain, insecure)) {
    i.skip_verify = true;
    i.may_fall_back = true;
  }
  // Loopback never goes through a proxy from the environment.
  const char* env = std::getenv("no_proxy");
  if (!env) env = std::getenv("NO_PROXY");
  i.noproxy = std::string(env && *env ? std::string(env) + "," : "") + "localhost,127.0.0.0/8,::1";
  if (curl_api().error.empty()) i.curl = curl_easy_init();
}

RegistryClient::~RegistryClient() {
  if (impl_->curl) curl_easy_cleanup(impl_->curl);
}

std::string RegistryClient::base_url() const { return impl_->base(); }

api::Result<Fetched> RegistryClient::get_manifest(const std::string& what) {
  Impl& i = *impl_;
  if (!i.curl) return Status(Reason::InternalError, no_curl_reason());
  const bool by_digest = valid_digest(what);
  auto res = i.request("/v2/" + i.ref.path + "/manifests/" + what, kManifestAccept, nullptr, kMaxManifestBytes, nullptr);
  if (!res) return res.take_status();
  if (res->code != CURLE_OK) {
    if (res->too_large) return Status(Reason::RequestEntityTooLarge, "manifest " + what + " is larger than 4 MiB");
    return i.transport_error(*res);
  }
  if (res->status != 200)
    return i.status_error(*res, by_digest ? i.ref.name() + "@" + what : i.ref.name() + ":" + what);
  Fetched f;
  f.digest = sha256_digest(res->body);
  f.media_type = res->header("content-type");
  f.body = std::move(res->body);
  if (by_digest && f.digest != what)
    return Status(Reason::Invalid, "manifest " + what + " from " + i.base() + " has digest " + f.digest);
  std::string claimed = res->header("docker-content-digest");
  if (valid_digest(claimed) && claimed != f.digest)
    return Status(Reason::Invalid, "manifest for " + what + ": registry says " + claimed + " but the content is " + f.digest);
  return f;
}

Status RegistryClient::get_blob(const Descriptor& d, BlobWriter& w, const std::string& dest) {
  Impl& i = *impl_;
  if (!i.curl) return Status(Reason::InternalError, no_curl_reason());
  if (!valid_digest(d.digest)) return Status(Reason::Invalid, "unsupported digest \"" + d.digest + "\"");
  w.set_limit(d.size);
  Sink sink = [&w](const char* p, size_t n) { return w.write(p, n); };
  const std::string path = "/v2/" + i.ref.path + "/blobs/" + d.digest;
  for (int attempt = 0;; ++attempt) {
    auto res = i.request(path, "", &sink, 0, [&w] { w.reset(); });
    if (!res) return res.take_status();
    if (res->sink_failed) return w.status();
    bool retry = false;
    if (res->code != CURLE_OK) {
      retry = true;
    } else if (res->status == 200) {
      return w.commit(dest, d.digest, d.size);
    } else if (res->status >= 500 || res->status == 429) {
      retry = true;
    }
    if (!retry || attempt == 2)
      return res->code != CURLE_OK ? i.transport_error(*res) : i.status_error(*res, "blob " + d.digest + " at " + res->url);
    std::this_thread::sleep_for(std::chrono::seconds(attempt + 1));
  }
}

}  // namespace berth::nodeagent::images::detail
