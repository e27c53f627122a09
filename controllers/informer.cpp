#include "controllers/informer.h"

#include <random>

#include "client/client.h"

namespace berth::controllers {

namespace indexes {
std::vector<std::string> controller(const json& obj) {
  std::string uid = controller_uid(obj);
  if (uid.empty()) return {};
  return {uid};
}
std::vector<std::string> orphan(const json& obj) {
  if (controller_ref(obj)) return {};
  return {namespace_of(obj)};
}
std::vector<std::string> node_name(const json& obj) {
  std::string n = str(at(obj, {"spec", "nodeName"}));
  if (n.empty()) return {};
  return {n};
}
}  // namespace indexes

Informer::Informer(std::shared_ptr<client::Client> client, Resource resource, InformerOptions options)
    : client_(std::move(client)), resource_(std::move(resource)), options_(std::move(options)) {
  indexes_[indexes::kNamespace].fn = [](const json& obj) -> std::vector<std::string> {
    return {namespace_of(obj)};
  };
}

Informer::~Informer() { stop(); }

void Informer::add_index(const std::string& name, IndexFunc fn) {
  std::unique_lock lock(mu_);
  if (indexes_.count(name)) return;
  Index& idx = indexes_[name];
  idx.fn = std::move(fn);
  for (const auto& [key, obj] : items_)
    for (auto& v : idx.fn(*obj))
      if (!v.empty()) idx.values[v].insert(key);
}

void Informer::add_handler(EventHandler handler) {
  std::lock_guard hl(handlers_mu_);
  if (handler.on_add) {
    for (const auto& obj : list()) handler.on_add(obj);
  }
  handlers_.push_back(std::move(handler));
}

void Informer::start() {
  std::lock_guard lock(state_mu_);
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] { run(); });
}

void Informer::stop() {
  stop_ = true;
  {
    std::lock_guard lock(state_mu_);
    if (stream_) stream_->close();
  }
  state_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Informer::wait_synced(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(state_mu_);
  return state_cv_.wait_for(lock, timeout, [&] { return synced_.load() || stop_.load(); }) && synced_.load();
}

ObjectPtr Informer::get(const std::string& key) const {
  std::shared_lock lock(mu_);
  auto it = items_.find(key);
  return it == items_.end() ? nullptr : it->second;
}

std::vector<ObjectPtr> Informer::list() const {
  std::shared_lock lock(mu_);
  std::vector<ObjectPtr> out;
  out.reserve(items_.size());
  for (const auto& [k, v] : items_) out.push_back(v);
  return out;
}

std::vector<ObjectPtr> Informer::by_index(const std::string& index, const std::string& value) const {
  std::shared_lock lock(mu_);
  std::vector<ObjectPtr> out;
  auto idx = indexes_.find(index);
  if (idx == indexes_.end()) return out;
  auto keys = idx->second.values.find(value);
  if (keys == idx->second.values.end()) return out;
  out.reserve(keys->second.size());
  for (const auto& k : keys->second) {
    auto it = items_.find(k);
    if (it != items_.end()) out.push_back(it->second);
  }
  return out;
}

std::size_t Informer::count_index(const std::string& index, const std::string& value) const {
  std::shared_lock lock(mu_);
  auto idx = indexes_.find(index);
  if (idx == indexes_.end()) return 0;
  auto keys = idx->second.values.find(value);
  return keys == idx->second.values.end() ? 0 : keys->second.size();
}

std::vector<ObjectPtr> Informer::list_namespace(const std::string& ns) const {
  return by_index(indexes::kNamespace, ns);
}

std::size_t Informer::size() const {
  std::shared_lock lock(mu_);
  return items_.size();
}

std::string Informer::last_resource_version() const {
  std::shared_lock lock(mu_);
  return resource_version_;
}

void Informer::index_add_locked(const std::string& key, const json& obj) {
  for (auto& [name, idx] : indexes_)
    for (auto& v : idx.fn(obj))
      if (!v.empty()) idx.values[v].insert(key);
}

void Informer::index_remove_locked(const std::string& key, const json& obj) {
  for (auto& [name, idx] : indexes_) {
    for (auto& v : idx.fn(obj)) {
      auto it = idx.values.find(v);
      if (it == idx.values.end()) continue;
      it->second.erase(key);
      if (it->second.empty()) idx.values.erase(it);
    }
  }
}

void Informer::upsert_locked(const std::string& key, ObjectPtr obj, std::vector<Pending>& out) {
  auto it = items_.find(key);
  if (it == items_.end()) {
    index_add_locked(key, *obj);
    items_.emplace(key, obj);
    out.push_back({Pending::Add, nullptr, std::move(obj)});
    return;
  }
  ObjectPtr old = it->second;
  index_remove_locked(key, *old);
  index_add_locked(key, *obj);
  it->second = obj;
  out.push_back({Pending::Update, std::move(old), std::move(obj)});
}

json Informer::prepare(json obj) const {
  // List items come without apiVersion and kind; writers that send cached objects back need them.
  obj["apiVersion"] = resource_.api_version();
  obj["kind"] = resource_.kind;
  if (options_.transform) options_.transform(obj);
  return obj;
}

void Informer::apply(const std::string& type, json obj) {
  obj = prepare(std::move(obj));
  std::string key = key_of(obj);
  std::vector<Pending> events;
  {
    std::unique_lock lock(mu_);
    std::string rv = rv_of(obj);
    if (!rv.empty()) resource_version_ = rv;
    if (type == "DELETED") {
      auto it = items_.find(key);
      if (it != items_.end()) {
        index_remove_locked(key, *it->second);
        items_.erase(it);
      }
      events.push_back({Pending::Delete, nullptr, std::make_shared<const json>(std::move(obj))});
    } else {
      upsert_locked(key, std::make_shared<const json>(std::move(obj)), events);
    }
  }
  dispatch(events);
}

void Informer::replace(std::vector<json> items, const std::string& resource_version) {
  std::vector<Pending> events;
  {
    std::unique_lock lock(mu_);
    std::unordered_set<std::string> seen;
    seen.reserve(items.size());
    for (auto& raw : items) {
      json obj = prepare(std::move(raw));
      std::string key = key_of(obj);
      seen.insert(key);
      auto it = items_.find(key);
      if (it != items_.end() && rv_of(*it->second) == rv_of(obj) && !rv_of(obj).empty()) continue;  // unchanged
      upsert_locked(key, std::make_shared<const json>(std::move(obj)), events);
    }
    for (auto it = items_.begin(); it != items_.end();) {
      if (seen.count(it->first)) {
        ++it;
        continue;
      }
      index_remove_locked(it->first, *it->second);
      events.push_back({Pending::Delete, nullptr, it->second});
      it = items_.erase(it);
    }
    resource_version_ = resource_version;
  }
  dispatch(events);
  if (!synced_.exchange(true)) {
    std::lock_guard lock(state_mu_);
    state_cv_.notify_all();
  }
}

void Informer::dispatch(std::vector<Pending>& events) {
  if (events.empty()) return;
  std::lock_guard hl(handlers_mu_);
  for (auto& e : events) {
    for (auto& h : handlers_) {
      switch (e.type) {
        case Pending::Add:
          if (h.on_add) h.on_add(e.new_obj);
          break;
        case Pending::Update:
          if (h.on_update) h.on_update(e.old_obj, e.new_obj);
          break;
        case Pending::Delete:
          if (h.on_delete) h.on_delete(e.new_obj);
          break;
      }
    }
  }
}

std::string Informer::query(bool watch) const {
  std::string q;
  auto add = [&](const std::string& k, const std::string& v) {
    q += q.empty() ? "?" : "&";
    q += k + "=" + url_escape(v);
  };
  if (!options_.label_selector.empty()) add("labelSelector", options_.label_selector);
  if (!options_.field_selector.empty()) add("fieldSelector", options_.field_selector);
  if (watch) {
    static thread_local std::mt19937 rng{std::random_device{}()};
    add("allowWatchBookmarks", "true");
    add("timeoutSeconds", std::to_string(300 + rng() % 300));  // as the reflector: 5-10 minutes
  }
  return q;
}

api::Status Informer::list_all() {
  std::string base = resource_.path(options_.namespace_) + query(false);
  std::string sep = base.find('?') == std::string::npos ? "?" : "&";
  std::vector<json> items;
  std::string list_rv, cont;
  for (int page = 0;; ++page) {
    if (stop_) return api::Status(api::Reason::ServiceUnavailable, "stopped");
    std::string path = base + sep + "limit=" + std::to_string(options_.page_size);
    if (!cont.empty()) path += "&continue=" + url_escape(cont);
    auto r = client_->get(path);
    if (!r) {
      if (!cont.empty() && (r.status().reason() == api::Reason::Expired || r.status().reason() == api::Reason::Gone)) {
        // The snapshot left the history while paging: start over.
        items.clear();
        cont.clear();
        list_rv.clear();
        continue;
      }
      return r.take_status();
    }
    json& list = *r;
    if (page == 0 || list_rv.empty()) list_rv = str(at(list, {"metadata", "resourceVersion"}));
    json& page_items = list["items"];
    if (page_items.is_array())
      for (auto& it : page_items) items.push_back(std::move(it));
    cont = str(at(list, {"metadata", "continue"}));
    if (cont.empty()) break;
  }
  replace(std::move(items), list_rv);
  return {};
}

api::Status Informer::watch_once() {
  std::string rv = last_resource_version();
  std::string q = query(true);
  std::string path = resource_.path(options_.namespace_) + q + "&resourceVersion=" + url_escape(rv);
  auto opened = client_->watch(path);
  if (!opened) return opened.take_status();
  std::shared_ptr<client::WatchStream> stream(std::move(*opened));
  {
    std::lock_guard lock(state_mu_);
    if (stop_) {
      stream->close();
      return {};
    }
    stream_ = stream;
  }
  api::Status result;
  while (!stop_) {
    auto next = stream->next(std::chrono::milliseconds(1000));
    if (!next) {
      result = next.take_status();
      break;
    }
    if (!next->has_value()) continue;
    json ev = std::move(**next);
    std::string type = str(at(ev, {"type"}));
    json& obj = ev["object"];
    if (type == "ERROR") {
      std::int64_t code = num(at(obj, {"code"}));
      std::string reason = str(at(obj, {"reason"}));
      if (code == 410 || reason == "Expired" || reason == "Gone")
        result = api::Status(api::Reason::Gone, str(at(obj, {"message"})));
      else
        result = api::Status(api::Reason::InternalError, "watch error: " + str(at(obj, {"message"})));
      break;
    }
    if (type == "BOOKMARK") {
      std::string brv = rv_of(obj);
      if (!brv.empty()) {
        std::unique_lock lock(mu_);
        resource_version_ = brv;
      }
      continue;
    }
    if (type == "ADDED" || type == "MODIFIED" || type == "DELETED") apply(type, std::move(obj));
  }
  {
    std::lock_guard lock(state_mu_);
    stream_.reset();
  }
  stream->close();
  return result;
}

void Informer::run() {
  bool need_list = true;
  auto backoff = std::chrono::milliseconds(500);
  const auto max_backoff = std::chrono::milliseconds(30000);
  auto sleep = [&](std::chrono::milliseconds d) {
    std::unique_lock lock(state_mu_);
    state_cv_.wait_for(lock, d, [&] { return stop_.load(); });
  };
  while (!stop_) {
    if (need_list) {
      auto s = list_all();
      if (stop_) break;
      if (!s.is_ok()) {
        log('W', "informer", resource_.group_resource() + ": list failed: " + s.message(), 1);
        sleep(backoff);
        backoff = std::min(backoff * 2, max_backoff);
        continue;
      }
      need_list = false;
      backoff = std::chrono::milliseconds(500);
    }
    auto s = watch_once();
    if (stop_) break;
    if (s.is_ok()) continue;  // the server ended the watch: resume from the last revision
    if (s.reason() == api::Reason::Gone || s.reason() == api::Reason::Expired) {
      log('I', "informer", resource_.group_resource() + ": watch expired, listing again", 1);
      need_list = true;
      continue;
    }
    log('W', "informer", resource_.group_resource() + ": watch failed: " + s.message(), 1);
    sleep(backoff);
    backoff = std::min(backoff * 2, max_backoff);
  }
}

std::shared_ptr<Informer> InformerFactory::get(const Resource& resource, const std::string& ns) {
  std::lock_guard lock(mu_);
  std::string id = resource.path(ns);
  auto it = informers_.find(id);
  if (it != informers_.end()) return it->second;
  InformerOptions options;
  options.namespace_ = ns;
  auto inf = std::make_shared<Informer>(client_, resource, options);
  informers_[id] = inf;
  if (started_) inf->start();
  return inf;
}

void InformerFactory::start() {
  std::lock_guard lock(mu_);
  started_ = true;
  for (auto& [id, inf] : informers_) inf->start();
}

void InformerFactory::stop() {
  std::map<std::string, std::shared_ptr<Informer>> all;
  {
    std::lock_guard lock(mu_);
    all = informers_;
    started_ = false;
  }
  for (auto& [id, inf] : all) inf->stop();
}

bool InformerFactory::wait_synced(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::shared_ptr<Informer>> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, inf] : informers_) all.push_back(inf);
  }
  for (auto& inf : all) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !inf->wait_synced(left)) return false;
  }
  return true;
}

}  // namespace berth::controllers
