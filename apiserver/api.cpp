// The generic REST path: create, get, list, update, patch, delete, deletecollection (and
// watch, in watch.cpp) for every kind, with the kind's Strategy supplying what differs.
#include "apiserver/api.h"

#include <mutex>
#include <random>
#include <unordered_map>

#include "api/decode.h"
#include "api/object.h"
#include "api/patch.h"
#include "api/selector.h"
#include "api/suspend.h"
#include "api/typed.h"
#include "api/validation.h"
#include "apiserver/codec.h"
#include "apiserver/discovery.h"
#include "apiserver/errors.h"
#include "apiserver/list.h"
#include "apiserver/metrics.h"
#include "apiserver/node_proxy.h"
#include "apiserver/request.h"
#include "apiserver/watch.h"
#include "store/store.h"

namespace berth::apiserver {

using api::Reason;
using api::Status;

std::string object_key(const KindInfo& info, const std::string& ns, const std::string& name) {
  return info.namespaced ? info.storage_prefix + "/" + ns + "/" + name : info.storage_prefix + "/" + name;
}

std::string list_prefix(const KindInfo& info, const std::string& ns) {
  return ns.empty() ? info.storage_prefix + "/" : info.storage_prefix + "/" + ns + "/";
}

namespace {

constexpr int kMaxConflictRetries = 16;

json object_response_body(const ResourceRequest& rr, const json& stored) {
  return rr.strategy->to_version(stored, rr.version);
}

net::Response json_response(int code, const json& body) {
  net::Response r;
  r.status = code;
  r.body = api::to_json_text(body);
  r.headers.emplace_back("Content-Type", "application/json");
  return r;
}

std::string new_uid() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uint64_t a = rng(), b = rng();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xffff),
                static_cast<unsigned>(b >> 48), static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

bool is_true(std::optional<std::string_view> v) {
  if (!v) return false;
  std::string s(*v);
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s == "true" || s == "1";
}

// Whether obj's apiVersion and kind are these (what to_version would set).
bool has_type_meta(const json& obj, const std::string& api_version, const std::string& kind) {
  auto av = obj.find("apiVersion");
  auto k = obj.find("kind");
  return av != obj.end() && k != obj.end() && av->is_string() && k->is_string() &&
         av->get_ref<const std::string&>() == api_version && k->get_ref<const std::string&>() == kind;
}

// obj == old once old's metadata.resourceVersion is left out (obj has none), without a copy.
bool equal_but_resource_version(const json& obj, const json& old) {
  if (!obj.is_object() || !old.is_object()) return false;
  auto old_meta = old.find("metadata");
  if (old_meta == old.end() || !old_meta->is_object() || !old_meta->contains("resourceVersion")) return obj == old;
  if (obj.size() != old.size()) return false;
  for (auto a = obj.begin(), b = old.begin(); a != obj.end(); ++a, ++b) {
    if (a.key() != b.key()) return false;
    if (a.key() != "metadata") {
      if (*a != *b) return false;
      continue;
    }
    if (!a->is_object() || a->size() + 1 != b->size()) return false;
    auto x = a->begin();
    for (auto y = b->begin(); y != b->end(); ++y) {
      if (y.key() == "resourceVersion") continue;
      if (x == a->end() || x.key() != y.key() || *x != *y) return false;
      ++x;
    }
    if (x != a->end()) return false;
  }
  return true;
}

bool dry_run(const ResourceRequest& rr) {
  for (const auto& [k, v] : rr.http->query)
    if (k == "dryRun" && v == "All") return true;
  return false;
}

enum class NamespaceState { Absent, Active, Terminating };

}  // namespace

// ---------------------------------------------------------------------------------------
// What NamespaceLifecycle needs of each namespace, remembered while nothing under the
// namespaces' prefix is written (Store::prefix_revision), as kube-apiserver's admission reads
// an informer's cache. Unlike that cache it is never behind: a namespace write moves the
// prefix's revision before the write is acknowledged, and the states go. Every namespaced
// create asks; a store read for each was ~2.5% of a pod create's CPU.

constexpr char kNamespacesPrefix[] = "/registry/namespaces/";

struct Api::NamespaceStates {
  api::Result<NamespaceState> get(store::Store& store, const std::string& ns) {
    const store::Revision seen = store.prefix_revision(kNamespacesPrefix);
    {
      std::lock_guard lock(mu_);
      if (seen > revision_) {
        states_.clear();
        revision_ = seen;
      }
      if (seen == revision_) {  // (a lookup that raced behind a newer one reads the store)
        if (auto it = states_.find(ns); it != states_.end()) return it->second;
      }
    }
    auto obj = store.get(kNamespacesPrefix + ns);
    NamespaceState state = NamespaceState::Active;
    if (!obj) {
      if (obj.status().reason() != Reason::NotFound) return obj.take_status();
      state = NamespaceState::Absent;
    } else if (obj->value.find("\"deletionTimestamp\"") != std::string::npos) {
      // (Most namespaces are not terminating, and then the stored JSON does not even hold the
      // key: no need to parse it.)
      auto decoded = decode_stored(*obj);
      if (decoded && at(*decoded, {"metadata", "deletionTimestamp"}).is_string())
        state = NamespaceState::Terminating;
    }
    std::lock_guard lock(mu_);
    // Kept only if no namespace was written since `seen` (the read may be newer than that: the
    // next lookup then sees the prefix moved on and reads again). Bounded by the namespaces
    // there are, and by names asked for that do not exist.
    if (revision_ == seen && states_.size() < 4096) states_.emplace(ns, state);
    return state;
  }

 private:
  std::mutex mu_;
  store::Revision revision_ = -1;
  std::unordered_map<std::string, NamespaceState> states_;
};

// ---------------------------------------------------------------------------------------
// The request handlers. One instance per request; reads the Api's state.

struct Api::Impl {
  Api& api;
  ResourceRequest& rr;

  store::Store& store() { return api.store_; }
  const KindInfo& info() { return rr.info(); }

  Status not_found_status() { return not_found(info().group, info().plural, rr.name); }

  // Reads and decodes one stored object, resourceVersion filled from the store.
  api::Result<json> read(const std::string& key, store::Revision* mod_revision = nullptr) {
    auto obj = store().get(key);
    if (!obj) return obj.take_status();
    if (mod_revision) *mod_revision = obj->mod_revision;
    return decode_stored(*obj);
  }

  // NamespaceLifecycle for a create: the namespace exists and is not being deleted. `name` is
  // the name the client sent (empty with generateName: admission runs before one is made).
  Status namespace_usable(const std::string& ns, const std::string& name) {
    auto state = api.namespace_states_->get(store(), ns);
    if (!state) return state.status();
    if (*state == NamespaceState::Absent) return not_found("", "namespaces", ns);
    if (*state == NamespaceState::Terminating) {
      std::string resource = info().group.empty() ? info().plural : info().plural + "." + info().group;
      return Status(Reason::Forbidden, resource + (name.empty() ? "" : " \"" + name + "\"") +
                                           " is forbidden: unable to create new content in namespace " + ns +
                                           " because it is being terminated")
          .with_details(info().plural, name, info().group)
          .with_cause({"NamespaceTerminating", "namespace " + ns + " is being terminated", "metadata.namespace"});
    }
    return {};
  }

  // Decodes the body into the stored form, checking apiVersion/kind and field validation.
  api::Result<json> decode_for_write(std::vector<std::string>& warnings) {
    auto body = decode_request_body(*rr.http, api.options_.max_nesting);
    if (!body) return body.take_status();
    json& obj = body->value;
    if (!obj.is_object()) return bad_request("the body of the request was in an unknown format");
    auto s = check_type_meta(rr, obj);
    if (!s) return s;
    s = check_types(rr, obj);
    if (!s) return s;
    s = validate_fields(rr, obj, body->strict_errors, warnings);
    if (!s) return s;
    return rr.strategy->from_version(std::move(obj), rr.version);
  }

  Status validate_object(const json& obj, const json* old) {
    std::vector<api::Cause> causes;
    static const json kNoMeta = json::object();
    const json& meta = at(obj, {"metadata"});
    // (Both branches references: a conditional with json::object() in it copied all of metadata.)
    api::validate_object_meta(meta.is_object() ? meta : kNoMeta, info().namespaced, info().name_rule, causes);
    if (old)
      rr.strategy->validate_update(obj, *old, causes);
    else
      rr.strategy->validate(obj, causes);
    if (causes.empty()) return {};
    std::string name = at(obj, {"metadata", "name"}).is_string() ? at(obj, {"metadata", "name"}).get<std::string>() : "";
    return invalid(info().group, info().kind, name, std::move(causes));
  }

  // Cluster-wide pools (a Service's cluster IPs and node ports), checked against the other
  // objects of the kind after validation, as upstream allocates after validating.
  Status claim_pools(json& obj, const json& sent, const json* old) {
    if (!rr.strategy->uses_pools()) return {};
    store::ListOptions options;
    options.prefix = list_prefix(info(), "");
    auto all = store().list(options);
    if (!all) return all.status();
    const std::string self = object_key(info(), rr.namespace_, rr.name);
    std::vector<json> others;
    for (const auto& item : all->items) {
      if (item.key == self) continue;
      if (auto decoded = decode_stored(item)) others.push_back(std::move(*decoded));
    }
    return rr.strategy->claim_pools(obj, sent, old, others);
  }

  net::Response respond_object(int code, const json& stored, const std::vector<std::string>& warnings = {}) {
    auto r = json_response(code, object_response_body(rr, stored));
    add_warnings(r, warnings);
    return r;
  }
  // For an object the handler is done with: to_version takes it without a deep copy (a copy
  // of a pod's tree was ~9% of the server's CPU per create).
  net::Response respond_object(int code, json&& stored, const std::vector<std::string>& warnings = {}) {
    auto r = json_response(code, rr.strategy->to_version(std::move(stored), rr.version));
    add_warnings(r, warnings);
    return r;
  }

  // ---- create -------------------------------------------------------------------------
  net::Response create() {
    std::vector<std::string> warnings;
    auto decoded = decode_for_write(warnings);
    if (!decoded) return status_response(decoded.status());
    json obj = std::move(*decoded);
    json& meta = obj["metadata"];
    if (!meta.is_object()) meta = json::object();

    if (info().namespaced) {
      if (meta.contains("namespace") && meta["namespace"].is_string() && !meta["namespace"].get<std::string>().empty() &&
          meta["namespace"] != rr.namespace_)
        return status_response(bad_request("the namespace of the provided object does not match the namespace sent on the request"));
      meta["namespace"] = rr.namespace_;
    } else {
      meta.erase("namespace");
    }
    std::string name = meta.value("name", "");
    const std::string sent_name = name;
    if (name.empty() && meta.contains("generateName") && meta["generateName"].is_string() &&
        !meta["generateName"].get<std::string>().empty()) {
      name = meta["generateName"].get<std::string>();
      if (name.size() > 58) name.resize(58);
      name += api::random_suffix(5);
      meta["name"] = name;
    }
    rr.name = name;
    if (info().namespaced) {
      if (auto s = namespace_usable(rr.namespace_, sent_name); !s) return status_response(s);
    }
    meta.erase("resourceVersion");
    meta.erase("deletionTimestamp");
    meta.erase("deletionGracePeriodSeconds");
    meta.erase("selfLink");
    meta["uid"] = new_uid();
    meta["creationTimestamp"] = now_rfc3339();
    if (info().tracks_generation) meta["generation"] = 1;
    else meta.erase("generation");

    json sent;  // what the client asked for, before defaults and allocation
    if (rr.strategy->uses_pools()) sent = obj;
    rr.strategy->prepare_for_create(obj);
    if (!rr.strategy->defaults_in_prepare_for_create()) rr.strategy->apply_defaults(obj);
    if (auto s = validate_object(obj, nullptr); !s) return status_response(s);
    if (auto s = claim_pools(obj, sent, nullptr); !s) return status_response(s);
    record_managed_fields(rr, json(), obj, "Update");

    if (dry_run(rr)) return respond_object(201, std::move(obj), warnings);
    auto key = object_key(info(), rr.namespace_, name);
    RvSlot slot;
    std::string stored = encode_stored(obj, rr.api_version(), info().kind, slot);
    // The answer is the stored bytes with the new resourceVersion: no second serialization.
    const bool as_stored = rr.strategy->serves_stored_form(rr.version);
    // The answer will be the stored bytes: the tree goes now, while its nodes are still in
    // this core's cache, not after the wait for the commit, when other requests have evicted
    // them (freeing it then cost ~12% of the server's CPU per create).
    if (as_stored) obj = json();
    auto w = store().create(key, as_stored ? std::string(stored) : std::move(stored));
    if (!w) {
      if (w.status().reason() == Reason::AlreadyExists)
        return status_response(already_exists(info().group, info().plural, name));
      return status_response(w.status());
    }
    return respond_written(201, stored, slot, as_stored, w->revision, std::move(obj), warnings);
  }

  // The answer to a write: the stored bytes with the new resourceVersion put in at the slot
  // encode_stored found when they are what this version serves, else the object serialized.
  // With as_stored the caller may have dropped obj (null); it is then read back from the
  // stored bytes if there is no slot.
  net::Response respond_written(int code, const std::string& stored, const RvSlot& slot, bool as_stored,
                                store::Revision revision, json obj, const std::vector<std::string>& warnings) {
    std::string rv = std::to_string(revision);
    if (as_stored) {
      net::Response r;
      if (splice_at_slot(stored, slot, rv, r.body)) {
        r.status = code;
        r.headers.emplace_back("Content-Type", "application/json");
        add_warnings(r, warnings);
        return r;
      }
      if (obj.is_null()) {
        auto decoded = decode_stored(store::Object{"", stored, 0, revision});
        if (!decoded) return status_response(decoded.status());
        obj = std::move(*decoded);
      }
    }
    obj["metadata"]["resourceVersion"] = std::move(rv);
    return respond_object(code, std::move(obj), warnings);
  }

  // ---- get ----------------------------------------------------------------------------
  net::Response get() {
    const auto key = object_key(info(), rr.namespace_, rr.name);
    if (!rr.table && rr.strategy->serves_stored_form(rr.version)) {
      // The stored bytes with the resourceVersion put in: no parse, no serialization.
      auto stored = store().get(key);
      if (!stored) {
        if (stored.status().reason() == Reason::NotFound) return status_response(not_found_status());
        return status_response(stored.status());
      }
      net::Response r;
      if (splice_stored(stored->value, std::to_string(stored->mod_revision), rr.api_version(), info().kind, false,
                        r.body)) {
        r.status = 200;
        r.headers.emplace_back("Content-Type", "application/json");
        return r;
      }
      auto obj = decode_stored(*stored);
      if (!obj) return status_response(obj.status());
      return respond_object(200, std::move(*obj));
    }
    auto obj = read(key);
    if (!obj) {
      if (obj.status().reason() == Reason::NotFound) return status_response(not_found_status());
      return status_response(obj.status());
    }
    if (rr.table) return json_response(200, make_table(rr, {*obj}, "", ""));
    return respond_object(200, std::move(*obj));
  }

  // ---- list ---------------------------------------------------------------------------
  net::Response list() {
    auto filter = make_filter(rr);
    if (!filter) return status_response(filter.status());
    // Unfiltered lists keep the stored bytes: spliced into a JSON answer, or parsed one row at a
    // time into a Table.
    const bool as_stored = rr.table || rr.strategy->serves_stored_form(rr.version);
    auto page = list_objects(store(), rr, *filter, as_stored);
    if (!page) return status_response(page.status());
    if (rr.table) {
      net::Response r;
      r.status = 200;
      r.body = table_text(rr, std::move(*page));
      r.headers.emplace_back("Content-Type", "application/json");
      return r;
    }
    json list = {{"kind", info().kind + "List"}, {"apiVersion", rr.api_version()}};
    list["metadata"] = json{{"resourceVersion", page->resource_version}};
    if (!page->continue_token.empty()) list["metadata"]["continue"] = page->continue_token;
    if (page->remaining > 0) list["metadata"]["remainingItemCount"] = page->remaining;
    if (!page->raw_items.empty()) {
      // The list as its dump would read ({"apiVersion","items","kind","metadata"} in key order),
      // each item from its stored bytes.
      std::size_t size = 64;
      for (const auto& item : page->raw_items) size += item.value.size() + 32;
      net::Response r;
      std::string& body = r.body;
      body.reserve(size);
      body += "{\"apiVersion\":";
      body += list["apiVersion"].dump();
      body += ",\"items\":[";
      const std::string api_version = rr.api_version();
      bool first = true;
      for (auto& item : page->raw_items) {
        if (!first) body += ',';
        first = false;
        if (splice_stored(item.value, std::to_string(item.mod_revision), api_version, info().kind, true, body))
          continue;
        auto obj = decode_stored(item);
        if (!obj) return status_response(obj.status());
        json v = rr.strategy->to_version(std::move(*obj), rr.version);
        v.erase("kind");
        v.erase("apiVersion");
        body += v.dump();
      }
      body += "],\"kind\":";
      body += list["kind"].dump();
      body += ",\"metadata\":";
      body += list["metadata"].dump();
      body += '}';
      r.status = 200;
      r.headers.emplace_back("Content-Type", "application/json");
      return r;
    }
    json items = json::array();
    for (auto& item : page->items) {
      json v = rr.strategy->to_version(std::move(item), rr.version);
      v.erase("kind");
      v.erase("apiVersion");
      items.push_back(std::move(v));
    }
    list["items"] = std::move(items);
    return json_response(200, list);
  }

  // ---- update, patch and the status/scale subresources -------------------------------
  // The shared read-modify-write loop: mutate() turns the current object (as the client
  // sees it, in the request's version) into the desired one. A lost race is retried from the
  // new object, where a resourceVersion the client pinned no longer matches (409).
  using Mutation = std::function<api::Result<json>(const json& current_external, bool exists)>;
  // Main: a write to the resource (status kept); Status: to /status (only status taken).
  // (pods/binding has its own loop: it writes past validation and the field manager.)
  enum class Mode { Main, Status };

  net::Response read_modify_write(const Mutation& mutate, Mode mode, const std::string& operation,
                                  std::vector<std::string> warnings = {}) {
    const bool status_only = mode == Mode::Status;
    auto key = object_key(info(), rr.namespace_, rr.name);
    for (int attempt = 0; attempt < kMaxConflictRetries; ++attempt) {
      store::Revision current_rev = 0;
      auto current = read(key, &current_rev);
      bool exists = current.ok();
      if (!exists && current.status().reason() != Reason::NotFound) return status_response(current.status());
      if (!exists && !(info().allow_create_on_update && rr.subresource.empty() && operation != "Patch"))
        return status_response(not_found_status());

      // The object as the client sees it; at the storage version that is the stored object
      // itself, which needs no copy.
      json converted;
      const json* external = &converted;
      if (exists) {
        if (rr.strategy->serves_stored_form(rr.version) && has_type_meta(*current, rr.api_version(), info().kind))
          external = &*current;
        else
          converted = rr.strategy->to_version(*current, rr.version);
      }
      auto desired_external = mutate(*external, exists);
      if (!desired_external) return status_response(desired_external.status());
      json& d = *desired_external;
      if (!d.is_object()) return status_response(bad_request("the body of the request was in an unknown format"));
      auto internal = rr.strategy->from_version(std::move(d), rr.version);
      if (!internal) return status_response(internal.status());
      json obj = std::move(*internal);
      json& meta = obj["metadata"];
      if (!meta.is_object()) meta = json::object();

      if (meta.contains("name") && meta["name"].is_string() && meta["name"] != rr.name)
        return status_response(bad_request("the name of the object (" + meta["name"].get<std::string>() +
                                           ") does not match the name on the URL (" + rr.name + ")"));
      meta["name"] = rr.name;
      if (info().namespaced) {
        if (meta.contains("namespace") && meta["namespace"].is_string() && !meta["namespace"].get<std::string>().empty() &&
            meta["namespace"] != rr.namespace_)
          return status_response(bad_request("the namespace of the provided object does not match the namespace sent on the request"));
        meta["namespace"] = rr.namespace_;
      }

      if (!exists) {  // create on update (PUT to a kind that allows it)
        return create_from(obj, warnings);
      }

      // Optimistic concurrency: a resourceVersion in the body must be the current one.
      std::string sent_rv = meta.value("resourceVersion", "");
      bool pinned = !sent_rv.empty();
      if (pinned && sent_rv != std::to_string(current_rev))
        return status_response(conflict(info().group, info().plural, rr.name,
                                        "the object has been modified; please apply your changes to the latest version and try again"));
      if (!pinned && operation == "Update" && !info().allow_unconditional_update) {
        std::vector<api::Cause> c{{"FieldValueInvalid", "Invalid value: 0x0: must be specified for an update", "metadata.resourceVersion"}};
        return status_response(invalid(info().group, info().kind, rr.name, c));
      }
      const json& old = *current;
      const json& old_meta = old["metadata"];
      if (meta.contains("uid") && meta["uid"].is_string() && !meta["uid"].get<std::string>().empty() &&
          meta["uid"] != old_meta.value("uid", ""))
        return status_response(conflict(info().group, info().plural, rr.name,
                                        "Precondition failed: UID in precondition: " + meta["uid"].get<std::string>() +
                                            ", UID in object meta: " + old_meta.value("uid", "")));

      // Fields the client cannot change through an update.
      for (const char* f : {"uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"}) {
        if (old_meta.contains(f)) meta[f] = old_meta[f];
        else meta.erase(f);
      }
      meta.erase("resourceVersion");
      meta.erase("selfLink");

      json sent;  // what the client asked for, before defaults and allocation
      if (rr.strategy->uses_pools()) sent = obj;
      if (status_only) {
        // /status: everything but status (and the metadata Kubernetes lets status writers
        // touch) comes from the stored object.
        json merged = old;
        merged.erase("status");
        if (obj.contains("status")) merged["status"] = obj["status"];
        for (const char* f : {"labels", "annotations", "ownerReferences", "finalizers"}) {
          if (meta.contains(f)) merged["metadata"][f] = meta[f];
        }
        obj = std::move(merged);
        obj["metadata"].erase("resourceVersion");
      } else if (mode == Mode::Main) {
        if (info().has_status) {
          obj.erase("status");
          if (old.contains("status")) obj["status"] = old["status"];
        }
        rr.strategy->prepare_for_update(obj, old);
      }
      rr.strategy->apply_defaults(obj);
      // Only writes to the resource itself move the generation; /status writers (controllers
      // recording revisions in annotations) do not.
      if (mode == Mode::Main && old_meta.contains("generation") && rr.strategy->spec_changed(obj, old))
        obj["metadata"]["generation"] = old_meta["generation"].get<std::int64_t>() + 1;
      if (auto s = validate_object(obj, &old); !s) return status_response(s);
      if (auto s = claim_pools(obj, sent, &old); !s) return status_response(s);
      record_managed_fields(rr, old, obj, operation);

      if (equal_but_resource_version(obj, old)) return respond_object(200, old, warnings);  // nothing changed: no write
      if (dry_run(rr)) {
        obj["metadata"]["resourceVersion"] = std::to_string(current_rev);
        return respond_object(200, std::move(obj), warnings);
      }

      // The last finalizer removed from an object being deleted: it goes now.
      if (obj["metadata"].contains("deletionTimestamp") && finalizers_of(obj).empty() &&
          !rr.strategy->held_by_spec(obj)) {
        auto removed = store().remove(key, current_rev);
        if (!removed) {
          if (removed.status().reason() == Reason::Conflict) continue;  // see the update below
          return status_response(removed.status());
        }
        obj["metadata"]["resourceVersion"] = std::to_string(removed->revision);
        return respond_object(200, std::move(obj), warnings);
      }

      RvSlot slot;
      std::string stored = encode_stored(obj, rr.api_version(), info().kind, slot);
      const bool as_stored = rr.strategy->serves_stored_form(rr.version);
      if (as_stored) {  // as in create(): both trees go before the wait for the commit
        obj = json();
        *current = json();
      }
      auto w = store().update(key, as_stored ? std::string(stored) : std::move(stored), current_rev);
      if (!w) {
        // Another write came between the read and this one: go again from the new object, as
        // Kubernetes' GuaranteedUpdate does. A resourceVersion the client sent is then checked
        // against it (409); a patch, which carries the version it was applied to, is applied
        // again (a controller's status write must not fail a client's label patch).
        if (w.status().reason() == Reason::Conflict) continue;
        if (w.status().reason() == Reason::NotFound) return status_response(not_found_status());
        return status_response(w.status());
      }
      return respond_written(200, stored, slot, as_stored, w->revision, std::move(obj), warnings);
    }
    return status_response(conflict(info().group, info().plural, rr.name,
                                    "the object has been modified; please apply your changes to the latest version and try again"));
  }

  net::Response create_from(json obj, const std::vector<std::string>& warnings) {
    // Reuses create() by handing it the already-decoded object.
    rr.http->body = obj.dump();
    rr.http->headers.erase(std::remove_if(rr.http->headers.begin(), rr.http->headers.end(),
                                          [](const auto& h) { return h.first == "content-type"; }),
                           rr.http->headers.end());
    auto r = create();
    add_warnings(r, warnings);
    return r;
  }

  net::Response update() {
    std::vector<std::string> warnings;
    auto decoded = decode_for_write(warnings);
    if (!decoded) return status_response(decoded.status());
    json desired = rr.strategy->to_version(std::move(*decoded), rr.version);
    Mode mode = rr.subresource == "status" ? Mode::Status : Mode::Main;
    return read_modify_write([&](const json&, bool) -> api::Result<json> { return desired; }, mode, "Update",
                             warnings);
  }

  net::Response patch() {
    auto content_type = std::string(rr.http->header("content-type").value_or(""));
    auto semi = content_type.find(';');
    if (semi != std::string::npos) content_type.resize(semi);
    Mode mode = rr.subresource == "status" ? Mode::Status : Mode::Main;
    if (content_type == "application/apply-patch+yaml" || content_type == "application/apply-patch+cbor")
      return apply_patch(mode);

    auto patch_doc = decode_patch_body(*rr.http, api.options_.max_nesting);
    if (!patch_doc) return status_response(patch_doc.status());
    json patch = std::move(*patch_doc);
    std::function<api::Result<json>(const json&)> apply;
    if (content_type == "application/json-patch+json") {
      if (!patch.is_array()) return status_response(bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch"));
      apply = [&](const json& cur) { return api::apply_json_patch(cur, patch); };
    } else if (content_type == "application/merge-patch+json") {
      if (!patch.is_object()) return status_response(bad_request("the body of the request was in an unknown format"));
      apply = [&](const json& cur) { return api::apply_merge_patch(cur, patch); };
    } else if (content_type == "application/strategic-merge-patch+json") {
      if (!patch.is_object()) return status_response(bad_request("the body of the request was in an unknown format"));
      auto lookup = patch_meta_lookup(rr);
      apply = [&, lookup](const json& cur) { return api::apply_strategic_merge_patch(cur, patch, lookup); };
    } else {
      return status_response(Status(Reason::UnsupportedMediaType,
                                    "the body of the request was in an unknown format - accepted media types include: "
                                    "application/json-patch+json, application/merge-patch+json, "
                                    "application/apply-patch+yaml, application/strategic-merge-patch+json"));
    }
    std::vector<std::string> warnings;
    return read_modify_write(
        [&](const json& current, bool) -> api::Result<json> {
          auto patched = apply(current);
          if (!patched) return patched;
          // What the patched object shows in an error: the object, or for a strategic merge
          // the patch itself, as Kubernetes prints each.
          const bool strategic = content_type == "application/strategic-merge-patch+json";
          auto shown = [&] { return strategic ? api::go_print(patch) : patched->dump(); };
          if (auto s = check_patched_types(rr, *patched, strategic, shown); !s) return s;
          auto s = validate_patched_fields(rr, *patched, shown, warnings);
          if (!s) return s;
          return patched;
        },
        mode, "Patch", warnings);
  }

  net::Response apply_patch(Mode mode);

  // What DELETE answers: the object, or (for most kinds, once it is gone) a Success Status.
  net::Response respond_deleted(const json& obj, int code, bool still_present) {
    if (still_present || info().return_deleted_object) return respond_object(code, obj);
    Status ok;
    json body = status_json(ok);
    body["details"] = {{"name", rr.name}, {"kind", info().plural}, {"uid", at(obj, {"metadata", "uid"})}};
    if (!info().group.empty()) body["details"]["group"] = info().group;
    return json_response(code, body);
  }

  // ---- delete -------------------------------------------------------------------------
  net::Response remove();
  net::Response delete_collection();

  // ---- scale --------------------------------------------------------------------------
  net::Response scale();

  // ---- pods/binding, pods/eviction, namespaces/finalize ------------------------------
  net::Response binding();
  net::Response eviction();
  net::Response logs();
  net::Response exec();
  struct AgentTarget {
    json pod;
    std::string container;
    json node;
  };
  // node is null for a pod not yet scheduled when allow_unscheduled is set (logs); else 400.
  api::Result<AgentTarget> agent_target(bool allow_unscheduled = false);
  api::Result<std::string> pod_container(const json& pod);
  api::Result<json> pod_node(const json& pod);
};

// The container a pods/log or pods/exec request means (LogLocation, ExecLocation): as named,
// or the pod's only one; Kubernetes' messages otherwise.
api::Result<std::string> Api::Impl::pod_container(const json& pod) {
  auto names_of = [&](const char* list) {
    std::vector<std::string> names;
    const json& cs = at(pod, {"spec", list});
    if (cs.is_array())
      for (const auto& c : cs)
        if (c.contains("name") && c["name"].is_string()) names.push_back(c["name"].get<std::string>());
    return names;
  };
  auto joined = [](const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : " ") + n;
    return out;
  };
  std::vector<std::string> main = names_of("containers"), init = names_of("initContainers"),
                           ephemeral = names_of("ephemeralContainers");
  std::string container(rr.param("container").value_or(""));
  if (container.empty()) {
    if (main.size() == 1) return main[0];
    if (main.empty()) return bad_request("a container name must be specified for pod " + rr.name);
    std::string message = "a container name must be specified for pod " + rr.name + ", choose one of: [" + joined(main) + "]";
    if (!init.empty()) message += " or one of the init containers: [" + joined(init) + "]";
    return bad_request(message);
  }
  for (const auto* names : {&main, &init, &ephemeral})
    if (std::find(names->begin(), names->end(), container) != names->end()) return container;
  return bad_request("container " + container + " is not valid for pod " + rr.name);
}

// The pod, container and node a pods/log or pods/exec request goes to.
api::Result<Api::Impl::AgentTarget> Api::Impl::agent_target(bool allow_unscheduled) {
  auto pod = read(object_key(info(), rr.namespace_, rr.name));
  if (!pod) return pod.status().reason() == Reason::NotFound ? not_found_status() : pod.status();
  auto container = pod_container(*pod);
  if (!container) return container.status();
  const json& node_name = at(*pod, {"spec", "nodeName"});
  if (allow_unscheduled && (!node_name.is_string() || node_name.get<std::string>().empty()))
    return AgentTarget{std::move(*pod), std::move(*container), json()};
  auto node = pod_node(*pod);
  if (!node) return node.status();
  return AgentTarget{std::move(*pod), std::move(*container), std::move(*node)};
}

// The node a pod is bound to, for requests its agent answers.
api::Result<json> Api::Impl::pod_node(const json& pod) {
  const json& node_name = at(pod, {"spec", "nodeName"});
  if (!node_name.is_string() || node_name.get<std::string>().empty())
    return bad_request("pod " + rr.name + " does not have a host assigned");
  const Strategy* nodes = api.find("", "nodes");
  auto node = nodes ? read(object_key(nodes->info(), "", node_name.get<std::string>()))
                    : api::Result<json>(Status(Reason::NotFound, ""));
  if (!node) return not_found("", "nodes", node_name.get<std::string>());
  return node;
}

// pods/exec (GET or POST with an Upgrade): the checks Kubernetes' ExecLocation makes, then the
// upgraded connection is relayed to the pod's node agent, which runs the command.
net::Response Api::Impl::exec() {
  auto target = agent_target();
  if (!target) return status_response(target.status());
  // Kubernetes' proxy for exec requires an upgrade once the location is known.
  if (!net::is_upgrade(*rr.http)) return status_response(bad_request("Upgrade request required"));
  if (!api.node_proxy_)
    return status_response(Status(Reason::ServiceUnavailable, "this server has no connection to node agents"));
  // PodExecOptions from the query, as the kubelet's parameters.
  auto flag = [&](const char* name) {
    auto v = rr.param(name);
    if (!v) return false;
    std::string s(*v);
    return s == "1" || s == "t" || s == "T" || s == "true" || s == "TRUE" || s == "True";
  };
  NodeProxy::ExecOptions options;
  options.input = flag("stdin");
  options.output = flag("stdout");
  options.error = flag("stderr");
  options.tty = flag("tty");
  for (const auto& [k, v] : rr.http->query)
    if (k == "command") options.command.push_back(v);
  return api.node_proxy_->exec(target->pod, target->node, target->container, options, *rr.http);
}

net::Response Api::Impl::logs() {
  auto target = agent_target(true);
  if (!target) return status_response(target.status());
  // LogLocation gives a pod with no node no location, and the streamer answers that with 204
  // and no body: kubectl logs prints nothing and succeeds (exec's location is a 400 instead).
  if (target->node.is_null()) {
    net::Response r;
    r.status = 204;
    return r;
  }
  if (!api.node_proxy_)
    return status_response(Status(Reason::ServiceUnavailable, "this server has no connection to node agents"));
  return api.node_proxy_->logs(target->pod, target->node, target->container, *rr.http);
}

net::Response Api::Impl::binding() {
  auto body = decode_request_body(*rr.http, api.options_.max_nesting);
  if (!body) return status_response(body.status());
  if (auto err = api::typed_decode({"", "v1", "Binding"}, body->value); !err.empty())
    return status_response(bad_request("Binding in version \"v1\" cannot be handled as a Binding: " + err));
  auto text = [](const json& j) { return j.is_string() ? j.get<std::string>() : std::string(); };
  const json& meta = at(body->value, {"metadata"});
  if (text(at(meta, {"name"})) != rr.name)
    return status_response(bad_request("name in URL does not match name in Binding object"));
  const json& target = at(body->value, {"target"});
  std::string node = text(at(target, {"name"}));
  std::vector<api::Cause> causes;
  if (std::string kind = text(at(target, {"kind"})); !kind.empty() && kind != "Node")
    causes.push_back(api::field_not_supported("target.kind", kind, {"Node", "<empty>"}));
  if (node.empty()) causes.push_back(api::field_required("target.name"));
  if (!causes.empty()) return status_response(invalid("", "Binding", rr.name, causes));
  // The binding's uid and resourceVersion are preconditions on the pod; its annotations are
  // copied onto the pod (setPodNodeAndMetadata).
  const std::string want_uid = text(at(meta, {"uid"})), want_rv = text(at(meta, {"resourceVersion"}));
  const json& annotations = at(meta, {"annotations"});
  // BindingREST writes the pod straight to storage: no defaulting, validation or field manager,
  // and pods have no generation to move. So the binding is its own GuaranteedUpdate loop, which
  // changes the stored pod in place: the scheduler's busiest call costs one parse and one encode.
  const std::string key = object_key(info(), rr.namespace_, rr.name);
  for (int attempt = 0; attempt < kMaxConflictRetries; ++attempt) {
    auto stored = store().get(key);
    if (!stored) {
      if (stored.status().reason() == Reason::NotFound) return status_response(not_found("", "pods", rr.name));
      return status_response(stored.status());
    }
    auto decoded = decode_stored(*stored);
    if (!decoded) return status_response(decoded.status());
    json& pod = *decoded;
    json& pod_meta = pod["metadata"];
    if (at(pod_meta, {"deletionTimestamp"}).is_string())
      return status_response(
          conflict("", "pods", rr.name, "pod " + rr.name + " is being deleted, cannot be assigned to a host"));
    const std::string uid = text(at(pod_meta, {"uid"})), rv = std::to_string(stored->mod_revision);
    if (!want_uid.empty() && want_uid != uid)
      return status_response(conflict(
          "", "pods", rr.name, "Precondition failed: UID in precondition: " + want_uid + ", UID in object meta: " + uid));
    if (!want_rv.empty() && want_rv != rv)
      return status_response(conflict("", "pods", rr.name,
                                      "Precondition failed: ResourceVersion in precondition: " + want_rv +
                                          ", ResourceVersion in object meta: " + rv));
    const json& current = at(pod, {"spec", "nodeName"});
    if (current.is_string() && !current.get<std::string>().empty())
      return status_response(conflict(
          "", "pods", rr.name, "pod " + rr.name + " is already assigned to node \"" + current.get<std::string>() + "\""));
    pod["spec"]["nodeName"] = node;
    if (annotations.is_object())
      for (const auto& [k, v] : annotations.items()) pod_meta["annotations"][k] = v;
    json& conditions = pod["status"]["conditions"];
    if (!conditions.is_array()) conditions = json::array();
    json cond = {{"type", "PodScheduled"}, {"status", "True"}, {"lastProbeTime", nullptr},
                 {"lastTransitionTime", now_rfc3339()}};
    bool replaced = false;
    for (auto& c : conditions)
      if (c.value("type", "") == "PodScheduled") c = cond, replaced = true;
    if (!replaced) conditions.push_back(std::move(cond));
    pod_meta.erase("resourceVersion");
    if (!dry_run(rr)) {
      auto w = store().update(key, encode_stored(pod), stored->mod_revision);
      if (!w) {
        if (w.status().reason() == Reason::Conflict) continue;  // someone else wrote the pod: read it again
        if (w.status().reason() == Reason::NotFound) return status_response(not_found("", "pods", rr.name));
        return status_response(w.status());
      }
    }
    json ok = status_json(Status());
    ok["code"] = 201;
    return json_response(201, ok);
  }
  return status_response(conflict("", "pods", rr.name,
                                  "the object has been modified; please apply your changes to the latest version and try again"));
}

net::Response Api::Impl::eviction() {
  auto body = decode_request_body(*rr.http, api.options_.max_nesting);
  if (!body) return status_response(body.status());
  ResourceRequest pod_rr = rr;
  pod_rr.subresource.clear();
  // The eviction's deleteOptions become the delete's body.
  net::Request del = *rr.http;
  del.method = "DELETE";
  del.body = at(body->value, {"deleteOptions"}).is_object() ? at(body->value, {"deleteOptions"}).dump() : "";
  del.headers.clear();
  del.headers.emplace_back("content-type", "application/json");
  pod_rr.http = &del;
  Impl impl{api, pod_rr};
  auto r = impl.remove();
  if (r.status >= 300) return r;
  json ok = status_json(Status());
  ok["code"] = 201;
  return json_response(201, ok);
}

net::Response handle_subresource(Api& api, ResourceRequest& rr) {
  Api::Impl impl{api, rr};
  const std::string& sub = rr.subresource;
  const std::string& m = rr.http->method;
  if (rr.info().kind == "Pod" && sub == "binding" && m == "POST") return impl.binding();
  if (rr.info().kind == "Pod" && sub == "eviction" && m == "POST") return impl.eviction();
  if (rr.info().kind == "Namespace" && sub == "finalize" && m == "PUT") {
    // Only spec.finalizers changes through /finalize; the namespace controller uses it to
    // say a Terminating namespace is empty.
    std::vector<std::string> warnings;
    auto body = impl.decode_for_write(warnings);
    if (!body) return status_response(body.status());
    json finalizers = at(*body, {"spec", "finalizers"});
    ResourceRequest main = rr;
    Api::Impl ns{api, main};
    return ns.read_modify_write(
        [&](const json& current, bool) -> api::Result<json> {
          json out = current;
          if (finalizers.is_null()) out["spec"].erase("finalizers");
          else out["spec"]["finalizers"] = finalizers;
          return out;
        },
        Api::Impl::Mode::Main, "Update", warnings);
  }
  if (rr.info().kind == "Pod" && sub == "log" && m == "GET") return impl.logs();
  if (rr.info().kind == "Pod" && sub == "exec" && (m == "GET" || m == "POST")) return impl.exec();
  return error_response(Reason::MethodNotAllowed, "the server does not allow this method on the requested resource");
}

// Server-side apply: merge the applied configuration with ownership tracking; create when absent.
net::Response Api::Impl::apply_patch(Mode mode) {
  auto body = decode_request_body(*rr.http, api.options_.max_nesting);
  if (!body) return status_response(body.status());
  auto manager = rr.param("fieldManager");
  if (!manager || manager->empty())
    return status_response(bad_request("PATCH, application/apply-patch+yaml requests must include a fieldManager query parameter"));
  json applied = std::move(body->value);
  if (!applied.is_object()) return status_response(bad_request("the body of the request was in an unknown format"));
  if (auto s = check_type_meta(rr, applied); !s) return status_response(s);
  // Kubernetes refuses these while building the typed patch object (a 500 worded by
  // structured-merge-diff); the Go decoding error says the same and stores nothing either.
  if (auto s = check_types(rr, applied); !s) return status_response(s);
  std::vector<std::string> warnings;
  if (auto s = validate_fields(rr, applied, body->strict_errors, warnings); !s) return status_response(s);
  bool force = is_true(rr.param("force"));

  auto key = object_key(info(), rr.namespace_, rr.name);
  auto current = read(key);
  if (!current && current.status().reason() == Reason::NotFound) {
    // Apply to an absent object creates it.
    auto merged = server_side_apply(rr, json(), applied, std::string(*manager), force);
    if (!merged) return status_response(merged.status());
    json created = std::move(*merged);
    created["metadata"]["name"] = rr.name;
    rr.http->body = created.dump();
    rr.http->headers.erase(std::remove_if(rr.http->headers.begin(), rr.http->headers.end(),
                                          [](const auto& h) { return h.first == "content-type"; }),
                           rr.http->headers.end());
    rr.applying = true;
    auto r = create();
    add_warnings(r, warnings);
    return r;
  }
  rr.applying = true;
  return read_modify_write(
      [&](const json& live, bool) -> api::Result<json> {
        return server_side_apply(rr, live, applied, std::string(*manager), force);
      },
      mode, "Apply", warnings);
}

net::Response Api::Impl::remove() {
  auto options = decode_delete_options(*rr.http);
  if (!options) return status_response(options.status());
  auto key = object_key(info(), rr.namespace_, rr.name);
  for (int attempt = 0; attempt < kMaxConflictRetries; ++attempt) {
    store::Revision rev = 0;
    auto current = read(key, &rev);
    if (!current) {
      if (current.status().reason() == Reason::NotFound) return status_response(not_found_status());
      return status_response(current.status());
    }
    json obj = std::move(*current);
    json& meta = obj["metadata"];
    if (!options->uid.empty() && options->uid != meta.value("uid", ""))
      return status_response(conflict(info().group, info().plural, rr.name,
                                      "Precondition failed: UID in precondition: " + options->uid +
                                          ", UID in object meta: " + meta.value("uid", "")));
    if (!options->resource_version.empty() && options->resource_version != std::to_string(rev))
      return status_response(conflict(info().group, info().plural, rr.name,
                                      "Precondition failed: ResourceVersion in precondition: " +
                                          options->resource_version + ", ResourceVersion in object meta: " +
                                          std::to_string(rev)));

    if (auto admitted = rr.strategy->admit_delete(obj); !admitted) return status_response(admitted);

    // Propagation: orphan and foreground are finalizers the garbage collector honours.
    std::string policy = options->propagation_policy;
    if (policy.empty()) policy = info().default_propagation;
    json before = obj;
    auto finalizers = finalizers_of(obj);
    auto add_finalizer = [&](const std::string& f) {
      if (std::find(finalizers.begin(), finalizers.end(), f) == finalizers.end()) finalizers.push_back(f);
    };
    auto drop_finalizer = [&](const std::string& f) {
      finalizers.erase(std::remove(finalizers.begin(), finalizers.end(), f), finalizers.end());
    };
    if (policy == "Orphan") add_finalizer("orphan"), drop_finalizer("foregroundDeletion");
    else if (policy == "Foreground") add_finalizer("foregroundDeletion"), drop_finalizer("orphan");
    bool already_deleting = meta.contains("deletionTimestamp");

    bool keep = rr.strategy->prepare_for_delete(obj);
    auto grace = rr.strategy->grace_period(obj, options->grace_period_seconds);
    bool graceful = grace && *grace > 0;
    if (!finalizers.empty() || graceful || keep) {
      // The object stays, marked for deletion, until its finalizers are gone, its node has
      // stopped it, or its controller has finished with it.
      if (!finalizers.empty()) meta["finalizers"] = finalizers;
      std::int64_t seconds = graceful ? *grace : 0;
      if (!already_deleting) {
        std::time_t when = std::time(nullptr) + seconds;
        std::tm tm{};
        gmtime_r(&when, &tm);
        char buf[32];
        std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
        meta["deletionTimestamp"] = buf;
        meta["deletionGracePeriodSeconds"] = seconds;
      } else if (graceful && meta.contains("deletionGracePeriodSeconds") &&
                 seconds < meta["deletionGracePeriodSeconds"].get<std::int64_t>()) {
        meta["deletionGracePeriodSeconds"] = seconds;  // a shorter grace period may replace a longer one
      }
      if (obj == before || dry_run(rr)) return respond_deleted(obj, 200, true);
      meta.erase("resourceVersion");
      auto w = store().update(key, encode_stored(obj), rev);
      if (!w) {
        if (w.status().reason() == Reason::Conflict) continue;
        return status_response(w.status());
      }
      obj["metadata"]["resourceVersion"] = std::to_string(w->revision);
      return respond_deleted(obj, 200, true);
    }
    if (dry_run(rr)) return respond_deleted(obj, 200, false);
    auto removed = store().remove(key, rev);
    if (!removed) {
      if (removed.status().reason() == Reason::Conflict) continue;
      if (removed.status().reason() == Reason::NotFound) return status_response(not_found_status());
      return status_response(removed.status());
    }
    return respond_deleted(obj, 200, false);
  }
  return status_response(conflict(info().group, info().plural, rr.name,
                                  "the object has been modified; please apply your changes to the latest version and try again"));
}

net::Response Api::Impl::delete_collection() {
  auto filter = make_filter(rr);
  if (!filter) return status_response(filter.status());
  ResourceRequest list_rr = rr;
  auto page = list_objects(store(), list_rr, *filter);
  if (!page) return status_response(page.status());
  json items = json::array();
  for (auto& item : page->items) {
    ResourceRequest one = rr;
    one.namespace_ = item["metadata"].value("namespace", "");
    one.name = item["metadata"].value("name", "");
    Impl impl{api, one};
    auto r = impl.remove();
    if (r.status >= 300 && r.status != 404) return r;
    if (r.status < 300) {
      json v = rr.strategy->to_version(std::move(item), rr.version);
      v.erase("kind");
      v.erase("apiVersion");
      items.push_back(std::move(v));
    }
  }
  json list = {{"kind", info().kind + "List"}, {"apiVersion", rr.api_version()},
               {"metadata", {{"resourceVersion", std::to_string(store().current_revision())}}},
               {"items", std::move(items)}};
  return json_response(200, list);
}

net::Response Api::Impl::scale() {
  if (!rr.strategy->has_scale()) return status_response(not_found_status());
  auto to_scale = [&](const json& obj) {
    const json& meta = obj["metadata"];
    json scale = {{"kind", "Scale"}, {"apiVersion", "autoscaling/v1"}};
    scale["metadata"] = json::object();
    for (const char* f : {"name", "namespace", "uid", "resourceVersion", "creationTimestamp"})
      if (meta.contains(f)) scale["metadata"][f] = meta[f];
    scale["spec"] = {{"replicas", at(obj, {"spec", "replicas"}).is_number() ? at(obj, {"spec", "replicas"}) : json(0)}};
    scale["status"] = {{"replicas", at(obj, {"status", "replicas"}).is_number() ? at(obj, {"status", "replicas"}) : json(0)}};
    auto sel = api::LabelSelector::from_json(at(obj, {"spec", "selector"}));
    if (sel) scale["status"]["selector"] = sel->to_string();
    return scale;
  };
  auto key = object_key(info(), rr.namespace_, rr.name);
  if (rr.http->method == "GET") {
    auto obj = read(key);
    if (!obj) return status_response(obj.status().reason() == Reason::NotFound ? not_found_status() : obj.status());
    return json_response(200, to_scale(*obj));
  }
  // PUT or PATCH of a Scale: computed against the current Scale, applied to spec.replicas.
  std::string content_type(rr.http->header("content-type").value_or("application/json"));
  auto semi = content_type.find(';');
  if (semi != std::string::npos) content_type.resize(semi);
  auto body = rr.http->method == "PUT" ? decode_request_body(*rr.http, api.options_.max_nesting)
                                       : api::Result<Decoded>(Decoded{});
  json patch;
  if (rr.http->method == "PATCH") {
    auto p = decode_patch_body(*rr.http, api.options_.max_nesting);
    if (!p) return status_response(p.status());
    patch = std::move(*p);
  } else if (!body) {
    return status_response(body.status());
  }
  ResourceRequest main = rr;
  main.subresource.clear();
  Impl impl{api, main};
  json scale_result;
  auto response = impl.read_modify_write(
      [&](const json& current, bool) -> api::Result<json> {
        json scale = to_scale(rr.strategy->from_version(current, rr.version).value());
        json desired;
        if (rr.http->method == "PUT") {
          desired = body->value;
          const json& rv = at(desired, {"metadata", "resourceVersion"});
          if (rv.is_string() && !rv.get<std::string>().empty() && rv != scale["metadata"]["resourceVersion"])
            return conflict(info().group, info().plural, rr.name,
                            "the object has been modified; please apply your changes to the latest version and try again");
        } else if (content_type == "application/json-patch+json") {
          auto r = api::apply_json_patch(scale, patch);
          if (!r) return r;
          desired = std::move(*r);
        } else {
          auto r = api::apply_merge_patch(scale, patch);  // strategic merge on Scale is a merge: no lists
          if (!r) return r;
          desired = std::move(*r);
        }
        const json& replicas = at(desired, {"spec", "replicas"});
        if (!replicas.is_null() && !replicas.is_number_integer())
          return bad_request("spec.replicas must be an integer");
        std::int64_t n = replicas.is_number_integer() ? replicas.get<std::int64_t>() : 0;
        if (n < 0) {
          std::vector<api::Cause> c{{"FieldValueInvalid", "Invalid value: " + std::to_string(n) + ": must be greater than or equal to 0", "spec.replicas"}};
          return invalid("autoscaling", "Scale", rr.name, c);
        }
        json out = current;
        out["spec"]["replicas"] = n;
        out["metadata"].erase("resourceVersion");
        return out;
      },
      Mode::Main, "Update");
  if (response.status != 200) return response;
  auto obj = json::parse(response.body);
  auto stored = rr.strategy->from_version(obj, rr.version);
  return json_response(200, to_scale(stored ? *stored : obj));
}

// ---------------------------------------------------------------------------------------

Api::Api(store::Store& store, ApiOptions options)
    : store_(store),
      options_(options),
      metrics_(std::make_unique<Metrics>()),
      namespace_states_(std::make_unique<NamespaceStates>()) {
  store_.track_prefix(kNamespacesPrefix);
}
Api::~Api() = default;

void Api::add(std::unique_ptr<Strategy> strategy) { kinds_.push_back(std::move(strategy)); }

const Strategy* Api::find(const std::string& group, const std::string& plural) const {
  for (const auto& k : kinds_)
    if (k->info().group == group && k->info().plural == plural) return k.get();
  return nullptr;
}

api::Status Api::bootstrap() {
  for (const char* ns : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
    std::string key = std::string("/registry/namespaces/") + ns;
    if (store_.get(key)) continue;
    json obj = {{"apiVersion", "v1"}, {"kind", "Namespace"},
                {"metadata", {{"name", ns}, {"uid", new_uid()}, {"creationTimestamp", now_rfc3339()},
                              {"labels", {{"kubernetes.io/metadata.name", ns}}}}},
                {"spec", {{"finalizers", {"kubernetes"}}}},
                {"status", {{"phase", "Active"}}}};
    auto w = store_.create(key, encode_stored(obj));
    if (!w && w.status().reason() != Reason::AlreadyExists) return w.status();
  }
  return {};
}

api::Status Api::ensure_kubernetes_service(int port) {
  const std::string key = "/registry/services/specs/default/kubernetes";
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto current = store_.get(key);
    if (current) {
      auto obj = decode_stored(*current);
      if (!obj) return obj.status();
      json& ports = (*obj)["spec"]["ports"];
      if (ports.is_array() && ports.size() == 1 && at(ports[0], {"targetPort"}) == port) return {};
      ports = json::array({{{"name", "https"}, {"port", 443}, {"protocol", "TCP"}, {"targetPort", port}}});
      auto w = store_.update(key, encode_stored(*obj), current->mod_revision);
      if (w || w.status().reason() != Reason::Conflict) return w ? Status() : w.status();
      continue;
    }
    if (current.status().reason() != Reason::NotFound) return current.status();
    const std::string now = now_rfc3339();
    json svc = {
        {"apiVersion", "v1"},
        {"kind", "Service"},
        {"metadata",
         {{"name", "kubernetes"},
          {"namespace", "default"},
          {"uid", new_uid()},
          {"creationTimestamp", now},
          {"labels", {{"component", "apiserver"}, {"provider", "kubernetes"}}},
          {"managedFields",
           json::array({{{"apiVersion", "v1"},
                         {"fieldsType", "FieldsV1"},
                         {"fieldsV1",
                          {{"f:metadata", {{"f:labels", {{".", json::object()}, {"f:component", json::object()},
                                                         {"f:provider", json::object()}}}}},
                           {"f:spec",
                            {{"f:clusterIP", json::object()},
                             {"f:internalTrafficPolicy", json::object()},
                             {"f:ipFamilyPolicy", json::object()},
                             {"f:ports", {{".", json::object()},
                                          {"k:{\"port\":443,\"protocol\":\"TCP\"}",
                                           {{".", json::object()}, {"f:name", json::object()}, {"f:port", json::object()},
                                            {"f:protocol", json::object()}, {"f:targetPort", json::object()}}}}},
                             {"f:sessionAffinity", json::object()},
                             {"f:type", json::object()}}}}},
                         {"manager", "kube-apiserver"},
                         {"operation", "Update"},
                         {"time", now}}})}}},
        {"spec",
         {{"clusterIP", "10.96.0.1"},
          {"clusterIPs", {"10.96.0.1"}},
          {"internalTrafficPolicy", "Cluster"},
          {"ipFamilies", {"IPv4"}},
          {"ipFamilyPolicy", "SingleStack"},
          {"ports", json::array({{{"name", "https"}, {"port", 443}, {"protocol", "TCP"}, {"targetPort", port}}})},
          {"sessionAffinity", "None"},
          {"type", "ClusterIP"}}},
        {"status", {{"loadBalancer", json::object()}}}};
    auto w = store_.create(key, encode_stored(svc));
    if (w || w.status().reason() != Reason::AlreadyExists) return w ? Status() : w.status();
  }
  return Status(Reason::Conflict, "could not record the kubernetes service: too many concurrent changes");
}

net::Response Api::handle(net::Request& request, const UserInfo& user) {
  auto start = std::chrono::steady_clock::now();
  ResourceRequest rr;
  rr.http = &request;
  rr.user = &user;
  net::Response response;
  std::string verb;
  auto routed = route(*this, request, rr, response);
  if (routed == RouteResult::Answered) {
    verb = "GET";
  } else if (routed == RouteResult::Resource) {
    Impl impl{*this, rr};
    const std::string& m = request.method;
    bool collection = rr.name.empty();
    // Reads of many objects and connections to other servers (logs, exec) would stall an io
    // thread; single-object reads and writes stay there, suspending only on the store.
    const bool long_running = (m == "GET" && collection) || (m == "DELETE" && collection) ||
                              (!rr.subresource.empty() && rr.subresource != "status" && rr.subresource != "scale" &&
                               rr.subresource != "binding" && rr.subresource != "eviction");
    if (long_running) api::leave_io_thread();
    if (rr.subresource == "scale") {
      verb = m == "GET" ? "get" : m == "PUT" ? "update" : "patch";
      response = (m == "GET" || m == "PUT" || m == "PATCH")
                     ? impl.scale()
                     : error_response(Reason::MethodNotAllowed, "the server does not allow this method on the requested resource");
    } else if (!rr.subresource.empty() && rr.subresource != "status") {
      verb = "connect";
      response = handle_subresource(*this, rr);
    } else if (m == "GET" && collection && is_true(request.param("watch"))) {
      verb = "watch";
      response = serve_watch(*this, store_, rr, options_);
    } else if (m == "GET" && collection) {
      verb = "list";
      response = impl.list();
    } else if (m == "GET") {
      verb = "get";
      response = impl.get();
    } else if (m == "POST" && collection && rr.subresource.empty()) {
      verb = "create";
      response = impl.create();
    } else if (m == "PUT" && !collection) {
      verb = "update";
      response = impl.update();
    } else if (m == "PATCH" && !collection) {
      verb = "patch";
      response = impl.patch();
    } else if (m == "DELETE" && !collection && rr.subresource.empty()) {
      verb = "delete";
      response = impl.remove();
    } else if (m == "DELETE" && collection) {
      verb = "deletecollection";
      response = impl.delete_collection();
    } else {
      verb = "unknown";
      response = error_response(Reason::MethodNotAllowed, "the server does not allow this method on the requested resource");
    }
  }
  if (routed == RouteResult::Resource)
    metrics_->observe_request(verb, rr.strategy ? rr.info().plural : "", rr.subresource, response.status,
                              std::chrono::steady_clock::now() - start);
  return response;
}

}  // namespace berth::apiserver
