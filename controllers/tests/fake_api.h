// An in-memory stand-in for the API server, for unit tests of the informer and leader election:
// objects with resourceVersions, list with limit/continue, watch from a revision (410 below the
// compacted revision), create/update with optimistic concurrency, delete. Not a server: only
// what those tests need.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "client/client.h"
#include "controllers/util.h"

namespace berth::controllers::testing {

using nlohmann::json;

struct ParsedPath {
  std::string plural, ns, name, sub;
  std::map<std::string, std::string> query;
};

inline ParsedPath parse_path(const std::string& full) {
  ParsedPath p;
  std::string path = full, q;
  if (auto qm = full.find('?'); qm != std::string::npos) path = full.substr(0, qm), q = full.substr(qm + 1);
  std::vector<std::string> seg;
  std::size_t start = 1;
  while (start <= path.size()) {
    auto slash = path.find('/', start);
    seg.push_back(path.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  std::size_t i = seg.size() > 0 && seg[0] == "api" ? 2 : 3;  // /api/v1 or /apis/g/v
  if (i < seg.size() && seg[i] == "namespaces" && i + 2 < seg.size()) {
    p.ns = seg[i + 1];
    i += 2;
  }
  if (i < seg.size()) p.plural = seg[i];
  if (i + 1 < seg.size()) p.name = seg[i + 1];
  if (i + 2 < seg.size()) p.sub = seg[i + 2];
  std::size_t s = 0;
  while (s < q.size()) {
    auto amp = q.find('&', s);
    std::string kv = q.substr(s, amp == std::string::npos ? std::string::npos : amp - s);
    auto eq = kv.find('=');
    if (eq != std::string::npos) p.query[kv.substr(0, eq)] = kv.substr(eq + 1);
    if (amp == std::string::npos) break;
    s = amp + 1;
  }
  return p;
}

class FakeApi;

class FakeWatch final : public client::WatchStream {
 public:
  FakeWatch(FakeApi* api, std::string plural, std::string ns, std::int64_t from, bool gone, int generation)
      : api_(api), plural_(std::move(plural)), ns_(std::move(ns)), last_(from), gone_(gone), generation_(generation) {}
  api::Result<std::optional<json>> next(std::chrono::milliseconds timeout) override;
  void close() override;

 private:
  FakeApi* api_;
  std::string plural_, ns_;
  std::int64_t last_;
  bool gone_;
  int generation_;
  bool closed_ = false;
};

class FakeApi final : public client::Client {
 public:
  std::mutex mu;
  std::condition_variable cv;
  std::int64_t rv = 100;
  std::int64_t compacted = 0;  // watches from below this get 410
  std::map<std::string, json> objects;  // "plural/ns/name"
  struct Event {
    std::int64_t rv;
    std::string type, plural, ns;
    json object;
  };
  std::vector<Event> events;
  std::vector<std::string> calls;  // "GET /api/v1/pods?limit=2"
  int watches_opened = 0;
  bool paused = false;      // open watches deliver nothing while set
  int watch_generation = 0; // end_watches() ends every watch opened before it
  // Before a request is served; returning a Response answers it instead.
  std::function<std::optional<client::Response>(const std::string& method, const std::string& path)> intercept;

  static std::string key(const std::string& plural, const std::string& ns, const std::string& name) {
    return plural + "/" + ns + "/" + name;
  }

  // Stores obj (creating or replacing) as the server would, recording the watch event.
  json put(const std::string& plural, json obj) {
    std::lock_guard lock(mu);
    return put_locked(plural, std::move(obj));
  }
  void erase(const std::string& plural, const std::string& ns, const std::string& name) {
    std::lock_guard lock(mu);
    auto it = objects.find(key(plural, ns, name));
    if (it == objects.end()) return;
    json obj = it->second;
    objects.erase(it);
    obj["metadata"]["resourceVersion"] = std::to_string(++rv);
    events.push_back({rv, "DELETED", plural, ns, obj});
    cv.notify_all();
  }
  void end_watches() {
    std::lock_guard lock(mu);
    ++watch_generation;
    cv.notify_all();
  }
  // Forgets history: watches from before now get 410 Gone.
  void compact() {
    std::lock_guard lock(mu);
    compacted = rv + 1;
    cv.notify_all();
  }

  api::Result<client::Response> request(const std::string& method, const std::string& path, const std::string& body,
                                        const std::string& content_type,
                                        const std::vector<std::pair<std::string, std::string>>& headers) override {
    (void)content_type;
    (void)headers;
    {
      std::lock_guard lock(mu);
      calls.push_back(method + " " + path);
    }
    if (intercept)
      if (auto r = intercept(method, path)) return *r;
    ParsedPath p = parse_path(path);
    std::lock_guard lock(mu);
    if (method == "GET" && p.name.empty()) return list(p);
    std::string k = key(p.plural, p.ns, p.name);
    if (method == "GET") {
      auto it = objects.find(k);
      if (it == objects.end()) return answer(404, status_body(404, "NotFound", p.plural + " \"" + p.name + "\" not found"));
      return answer(200, it->second);
    }
    json obj = json::parse(body.empty() ? "{}" : body);
    if (method == "POST") {
      std::string name = str(at(obj, {"metadata", "name"}));
      if (objects.count(key(p.plural, p.ns, name)))
        return answer(409, status_body(409, "AlreadyExists", p.plural + " \"" + name + "\" already exists"));
      if (!p.ns.empty()) obj["metadata"]["namespace"] = p.ns;
      obj["metadata"]["uid"] = "uid-" + name;
      return answer(201, put_locked(p.plural, std::move(obj)));
    }
    if (method == "PUT") {
      auto it = objects.find(k);
      if (it == objects.end()) return answer(404, status_body(404, "NotFound", "not found"));
      std::string sent = str(at(obj, {"metadata", "resourceVersion"}));
      if (!sent.empty() && sent != str(at(it->second, {"metadata", "resourceVersion"})))
        return answer(409, status_body(409, "Conflict", "the object has been modified; please apply your changes to the latest version and try again"));
      obj["metadata"]["uid"] = at(it->second, {"metadata", "uid"});
      return answer(200, put_locked(p.plural, std::move(obj)));
    }
    if (method == "DELETE") {
      auto it = objects.find(k);
      if (it == objects.end()) return answer(404, status_body(404, "NotFound", "not found"));
      json gone = it->second;
      objects.erase(it);
      gone["metadata"]["resourceVersion"] = std::to_string(++rv);
      events.push_back({rv, "DELETED", p.plural, p.ns, gone});
      cv.notify_all();
      return answer(200, gone);
    }
    return answer(405, status_body(405, "MethodNotAllowed", "not allowed"));
  }

  // Controllers read no raw streams (that is for followed logs).
  api::Result<std::unique_ptr<client::ByteStream>> stream(const std::string& path) override {
    return api::Status(api::Reason::MethodNotAllowed, "the fake API serves no raw streams: " + path);
  }

  api::Result<std::unique_ptr<client::WatchStream>> watch(const std::string& path) override {
    ParsedPath p = parse_path(path);
    std::lock_guard lock(mu);
    calls.push_back("WATCH " + path);
    ++watches_opened;
    std::int64_t from = p.query.count("resourceVersion") ? std::stoll(p.query["resourceVersion"]) : rv;
    return std::unique_ptr<client::WatchStream>(
        new FakeWatch(this, p.plural, p.ns, from, from < compacted - 1, watch_generation));
  }

 private:
  friend class FakeWatch;

  json put_locked(const std::string& plural, json obj) {
    std::string ns = namespace_of(obj), name = name_of(obj);
    std::string k = key(plural, ns, name);
    bool existed = objects.count(k) > 0;
    obj["metadata"]["resourceVersion"] = std::to_string(++rv);
    if (!obj["metadata"].contains("uid")) obj["metadata"]["uid"] = "uid-" + name;
    objects[k] = obj;
    events.push_back({rv, existed ? "MODIFIED" : "ADDED", plural, ns, obj});
    cv.notify_all();
    return obj;
  }

  static json status_body(int code, const std::string& reason, const std::string& message) {
    return {{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Failure"},
            {"reason", reason},  {"message", message}, {"code", code}};
  }
  static client::Response answer(int code, const json& body) {
    client::Response r;
    r.status = code;
    r.body = body.dump();
    return r;
  }

  client::Response list(const ParsedPath& p) {
    std::vector<json> items;
    for (const auto& [k, obj] : objects) {
      if (k.rfind(p.plural + "/", 0) != 0) continue;
      if (!p.ns.empty() && namespace_of(obj) != p.ns) continue;
      items.push_back(obj);
    }
    std::size_t offset = 0, limit = items.size();
    if (p.query.count("continue")) offset = std::stoul(p.query.at("continue"));
    if (p.query.count("limit")) limit = std::stoul(p.query.at("limit"));
    json out = {{"kind", "List"}, {"apiVersion", "v1"}, {"metadata", {{"resourceVersion", std::to_string(rv)}}}};
    out["items"] = json::array();
    for (std::size_t i = offset; i < items.size() && i < offset + limit; ++i) {
      json item = items[i];
      item.erase("kind");
      item.erase("apiVersion");
      out["items"].push_back(item);
    }
    if (offset + limit < items.size()) out["metadata"]["continue"] = std::to_string(offset + limit);
    return answer(200, out);
  }
};

inline api::Result<std::optional<json>> FakeWatch::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(api_->mu);
  if (gone_) {
    gone_ = false;
    closed_ = true;
    return std::optional<json>(json{{"type", "ERROR"},
                                    {"object", {{"kind", "Status"}, {"code", 410}, {"reason", "Expired"},
                                                {"message", "too old resource version"}}}});
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (closed_ || generation_ != api_->watch_generation) return api::Status();  // ended
    if (!api_->paused)
    for (const auto& e : api_->events) {
      if (e.rv <= last_ || e.plural != plural_ || (!ns_.empty() && e.ns != ns_)) continue;
      last_ = e.rv;
      return std::optional<json>(json{{"type", e.type}, {"object", e.object}});
    }
    if (api_->cv.wait_until(lock, deadline) == std::cv_status::timeout) return std::optional<json>();
  }
}

inline void FakeWatch::close() {
  std::lock_guard lock(api_->mu);
  closed_ = true;
  api_->cv.notify_all();
}

}  // namespace berth::controllers::testing
