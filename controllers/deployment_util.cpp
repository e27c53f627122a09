// The arithmetic and bookkeeping of Deployments: pkg/controller/deployment/util/deployment_util.go
// and the status parts of sync.go and progress.go.
#include <algorithm>
#include <climits>
#include <cmath>

#include "controllers/deployment.h"

namespace berth::controllers::deployment {

namespace {

std::optional<std::int64_t> int_annotation(const json& obj, const char* name) {
  const json& v = at(obj, {"metadata", "annotations", name});
  std::int64_t out = 0;
  if (!v.is_string() || !parse_int64(v.get<std::string>(), out)) return std::nullopt;
  return out;
}

std::string creation(const json& obj) { return str(at(obj, {"metadata", "creationTimestamp"})); }

// creationTimestamps are RFC 3339 in UTC with the same width: they compare as strings.
bool created_before(const json& a, const json& b) {
  std::string ca = creation(a), cb = creation(b);
  if (ca != cb) return ca < cb;
  return name_of(a) < name_of(b);
}

// What Go's semantic equality ignores: unset (null), empty strings, empty lists and maps.
json normalized(const json& v) {
  if (v.is_object()) {
    json out = json::object();
    for (const auto& [k, e] : v.items()) {
      json n = normalized(e);
      if (n.is_null() || (n.is_string() && n.get<std::string>().empty()) || (n.is_array() && n.empty()) ||
          (n.is_object() && n.empty()))
        continue;
      out[k] = std::move(n);
    }
    return out;
  }
  if (v.is_array()) {
    json out = json::array();
    for (const auto& e : v) out.push_back(normalized(e));
    return out;
  }
  return v;
}

std::int64_t status_int(const json& rs, const char* f) { return num(at(rs, {"status", f})); }

}  // namespace

std::optional<std::int64_t> scaled_value(const json& v, std::int64_t total, bool round_up) {
  if (v.is_null()) return 0;
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (!v.is_string()) return std::nullopt;
  std::string s = v.get<std::string>();
  if (s.empty() || s.back() != '%') {
    // A plain number in a string is not allowed by intstr for scaling.
    return std::nullopt;
  }
  std::int64_t pct = 0;
  if (!parse_int64(s.substr(0, s.size() - 1), pct)) return std::nullopt;
  if (round_up) return static_cast<std::int64_t>(std::ceil(static_cast<double>(pct) * static_cast<double>(total) / 100.0));
  return static_cast<std::int64_t>(std::floor(static_cast<double>(pct) * static_cast<double>(total) / 100.0));
}

std::pair<std::int64_t, std::int64_t> resolve_fenceposts(const json& max_surge, const json& max_unavailable,
                                                         std::int64_t desired) {
  std::int64_t surge = scaled_value(max_surge, desired, true).value_or(0);
  std::int64_t unavailable = scaled_value(max_unavailable, desired, false).value_or(0);
  if (surge == 0 && unavailable == 0) unavailable = 1;  // surge might not work due to quota
  return {surge, unavailable};
}

std::int64_t replicas(const json& d) { return num(at(d, {"spec", "replicas"}), 1); }

bool is_rolling_update(const json& d) {
  std::string t = str(at(d, {"spec", "strategy", "type"}));
  return t == "RollingUpdate" || t.empty();
}

std::int64_t max_surge(const json& d) {
  if (!is_rolling_update(d)) return 0;
  const json& ru = at(d, {"spec", "strategy", "rollingUpdate"});
  return resolve_fenceposts(at(ru, {"maxSurge"}), at(ru, {"maxUnavailable"}), replicas(d)).first;
}

std::int64_t max_unavailable(const json& d) {
  if (!is_rolling_update(d) || replicas(d) == 0) return 0;
  const json& ru = at(d, {"spec", "strategy", "rollingUpdate"});
  std::int64_t mu = resolve_fenceposts(at(ru, {"maxSurge"}), at(ru, {"maxUnavailable"}), replicas(d)).second;
  return std::min(mu, replicas(d));
}

std::int64_t rs_replicas(const json& rs) { return num(at(rs, {"spec", "replicas"}), 1); }

std::int64_t replica_count(const std::vector<json>& rss) {
  std::int64_t n = 0;
  for (const auto& rs : rss) n += rs_replicas(rs);
  return n;
}
std::int64_t actual_replica_count(const std::vector<json>& rss) {
  std::int64_t n = 0;
  for (const auto& rs : rss) n += status_int(rs, "replicas");
  return n;
}
std::int64_t ready_replica_count(const std::vector<json>& rss) {
  std::int64_t n = 0;
  for (const auto& rs : rss) n += status_int(rs, "readyReplicas");
  return n;
}
std::int64_t available_replica_count(const std::vector<json>& rss) {
  std::int64_t n = 0;
  for (const auto& rs : rss) n += status_int(rs, "availableReplicas");
  return n;
}

std::vector<json> filter_active(const std::vector<json>& rss) {
  std::vector<json> out;
  for (const auto& rs : rss)
    if (rs_replicas(rs) > 0) out.push_back(rs);
  return out;
}

std::int64_t new_rs_new_replicas(const json& d, const std::vector<json>& all_rss, const json& new_rs) {
  if (is_rolling_update(d)) {
    const json& ru = at(d, {"spec", "strategy", "rollingUpdate"});
    std::int64_t surge = scaled_value(at(ru, {"maxSurge"}), replicas(d), true).value_or(0);
    std::int64_t current = replica_count(all_rss);
    std::int64_t max_total = replicas(d) + surge;
    if (current >= max_total) return rs_replicas(new_rs);  // cannot scale up
    std::int64_t up = std::min(max_total - current, replicas(d) - rs_replicas(new_rs));
    return rs_replicas(new_rs) + up;
  }
  return replicas(d);  // Recreate
}

bool is_saturated(const json& d, const json* rs) {
  if (!rs) return false;
  auto desired = int_annotation(*rs, kDesiredReplicasAnnotation);
  if (!desired) return false;
  return rs_replicas(*rs) == replicas(d) && *desired == replicas(d) && status_int(*rs, "availableReplicas") == replicas(d);
}

std::int64_t get_proportion(const json& rs, const json& d, std::int64_t to_add, std::int64_t added) {
  if (rs_replicas(rs) == 0 || to_add == 0 || to_add == added) return 0;
  // getReplicaSetFraction.
  std::int64_t fraction;
  if (replicas(d) == 0) {
    fraction = -rs_replicas(rs);
  } else {
    std::int64_t deployment_replicas = replicas(d) + max_surge(d);
    std::int64_t annotated = int_annotation(rs, kMaxReplicasAnnotation).value_or(num(at(d, {"status", "replicas"})));
    if (annotated == 0) {
      fraction = 0;
    } else {
      double size = static_cast<double>(rs_replicas(rs) * deployment_replicas) / static_cast<double>(annotated);
      std::int64_t rounded = size < 0 ? static_cast<std::int64_t>(size - 0.5) : static_cast<std::int64_t>(size + 0.5);
      fraction = rounded - rs_replicas(rs);
    }
  }
  std::int64_t allowed = to_add - added;
  return to_add > 0 ? std::min(fraction, allowed) : std::max(fraction, allowed);
}

std::string compute_hash(const json& pod_template, std::optional<std::int64_t> collision_count) {
  std::string data = pod_template.dump();
  std::uint32_t h = 2166136261u;
  auto feed = [&](unsigned char c) {
    h ^= c;
    h *= 16777619u;
  };
  for (unsigned char c : data) feed(c);
  if (collision_count) {
    std::uint32_t cc = static_cast<std::uint32_t>(*collision_count);
    for (int i = 0; i < 8; ++i) feed(i < 4 ? static_cast<unsigned char>((cc >> (8 * i)) & 0xff) : 0);
  }
  static const char kAlphanums[] = "bcdfghjklmnpqrstvwxz2456789";
  std::string digits = std::to_string(h);
  std::string out;
  for (char c : digits) out.push_back(kAlphanums[static_cast<unsigned char>(c) % (sizeof(kAlphanums) - 1)]);
  return out;
}

bool equal_ignore_hash(const json& a, const json& b) {
  json x = a, y = b;
  for (json* t : {&x, &y}) {
    if (t->is_object() && (*t)["metadata"].is_object() && (*t)["metadata"]["labels"].is_object())
      (*t)["metadata"]["labels"].erase(kPodTemplateHashLabel);
  }
  return normalized(x) == normalized(y);
}

void sort_by_creation(std::vector<json>& rss) { std::stable_sort(rss.begin(), rss.end(), created_before); }

void sort_by_size_newer(std::vector<json>& rss) {
  std::stable_sort(rss.begin(), rss.end(), [](const json& a, const json& b) {
    if (rs_replicas(a) == rs_replicas(b)) return created_before(b, a);
    return rs_replicas(a) > rs_replicas(b);
  });
}

void sort_by_size_older(std::vector<json>& rss) {
  std::stable_sort(rss.begin(), rss.end(), [](const json& a, const json& b) {
    if (rs_replicas(a) == rs_replicas(b)) return created_before(a, b);
    return rs_replicas(a) > rs_replicas(b);
  });
}

void sort_by_revision(std::vector<json>& rss) {
  std::stable_sort(rss.begin(), rss.end(), [](const json& a, const json& b) {
    std::int64_t ra = revision(a), rb = revision(b);
    if (ra == rb) return created_before(a, b);
    return ra < rb;
  });
}

std::optional<std::size_t> find_new_rs(const json& d, std::vector<json>& rss) {
  sort_by_creation(rss);
  const json& tmpl = at(d, {"spec", "template"});
  for (std::size_t i = 0; i < rss.size(); ++i)
    if (equal_ignore_hash(at(rss[i], {"spec", "template"}), tmpl)) return i;  // the oldest, if several
  return std::nullopt;
}

const json* find_active_or_latest(const json* new_rs, std::vector<json>& old_rss) {
  if (!new_rs && old_rss.empty()) return nullptr;
  std::stable_sort(old_rss.begin(), old_rss.end(), [](const json& a, const json& b) { return created_before(b, a); });
  std::vector<const json*> active;
  for (const auto& rs : old_rss)
    if (rs_replicas(rs) > 0) active.push_back(&rs);
  if (new_rs && rs_replicas(*new_rs) > 0) active.push_back(new_rs);
  if (active.empty()) return new_rs ? new_rs : &old_rss[0];
  if (active.size() == 1) return active[0];
  return nullptr;
}

std::int64_t revision(const json& obj) { return int_annotation(obj, kRevisionAnnotation).value_or(0); }

std::int64_t max_revision(const std::vector<json>& rss) {
  std::int64_t m = 0;
  for (const auto& rs : rss) m = std::max(m, revision(rs));
  return m;
}

namespace {
bool skip_copy_annotation(const std::string& k) {
  return k == "kubectl.kubernetes.io/last-applied-configuration" || k == kRevisionAnnotation ||
         k == kRevisionHistoryAnnotation || k == kDesiredReplicasAnnotation || k == kMaxReplicasAnnotation ||
         k == "deprecated.deployment.rollback.to";
}
}  // namespace

bool set_new_rs_annotations(const json& d, json& rs, const std::string& new_revision, bool exists) {
  json& annotations = rs["metadata"]["annotations"];
  if (!annotations.is_object()) annotations = json::object();
  bool changed = false;
  // Copy the deployment's annotations (except the bookkeeping ones).
  const json& da = at(d, {"metadata", "annotations"});
  if (da.is_object())
    for (const auto& [k, v] : da.items()) {
      if (skip_copy_annotation(k) || (annotations.contains(k) && annotations[k] == v)) continue;
      annotations[k] = v;
      changed = true;
    }
  // Raise the revision when it is below the new one; a ReplicaSet that already had a revision
  // (a rollback to it) keeps the old numbers in revision-history.
  bool had = annotations.contains(kRevisionAnnotation) && annotations[kRevisionAnnotation].is_string();
  std::string old_revision = had ? annotations[kRevisionAnnotation].get<std::string>() : "";
  std::int64_t old_int = 0, new_int = 0;
  if (!old_revision.empty() && !parse_int64(old_revision, old_int)) return false;
  if (!parse_int64(new_revision, new_int)) return false;
  if (old_int < new_int) {
    annotations[kRevisionAnnotation] = new_revision;
    changed = true;
  }
  if (had && changed) {
    std::string history = annotations.contains(kRevisionHistoryAnnotation) ? str(annotations[kRevisionHistoryAnnotation]) : "";
    if (history.empty()) {
      annotations[kRevisionHistoryAnnotation] = old_revision;
    } else {
      std::vector<std::string> olds;
      std::size_t start = 0;
      for (;;) {
        auto comma = history.find(',', start);
        olds.push_back(history.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
      std::size_t total = history.size() + old_revision.size() + 1;
      std::size_t first = 0;
      while (total > kMaxRevHistoryLengthInChars && first < olds.size()) {
        total -= olds[first].size() + 1;
        ++first;
      }
      if (total <= kMaxRevHistoryLengthInChars) {
        std::string joined;
        for (std::size_t i = first; i < olds.size(); ++i) joined += olds[i] + ",";
        joined += old_revision;
        annotations[kRevisionHistoryAnnotation] = joined;
      }
    }
  }
  if (!exists && set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d))) changed = true;
  return changed;
}

bool replicas_annotations_need_update(const json& rs, std::int64_t desired, std::int64_t max) {
  const json& a = at(rs, {"metadata", "annotations"});
  return str(at(a, {kDesiredReplicasAnnotation})) != std::to_string(desired) ||
         str(at(a, {kMaxReplicasAnnotation})) != std::to_string(max);
}

bool set_replicas_annotations(json& rs, std::int64_t desired, std::int64_t max) {
  json& a = rs["metadata"]["annotations"];
  if (!a.is_object()) a = json::object();
  bool changed = false;
  for (auto [k, v] : {std::pair<const char*, std::int64_t>{kDesiredReplicasAnnotation, desired},
                      std::pair<const char*, std::int64_t>{kMaxReplicasAnnotation, max}}) {
    std::string s = std::to_string(v);
    if (!a.contains(k) || a[k] != s) {
      a[k] = s;
      changed = true;
    }
  }
  return changed;
}

bool set_deployment_revision(json& d, const std::string& revision_value) {
  json& a = d["metadata"]["annotations"];
  if (!a.is_object()) a = json::object();
  if (a.contains(kRevisionAnnotation) && a[kRevisionAnnotation] == revision_value) return false;
  a[kRevisionAnnotation] = revision_value;
  return true;
}

json new_condition(const std::string& type, const std::string& status, const std::string& reason,
                   const std::string& message, TimePoint now) {
  std::string t = format_time(now);
  return {{"type", type},          {"status", status},  {"lastUpdateTime", t},
          {"lastTransitionTime", t}, {"reason", reason}, {"message", message}};
}

const json* get_condition(const json& status, const std::string& type) {
  const json& conds = at(status, {"conditions"});
  if (!conds.is_array()) return nullptr;
  for (const auto& c : conds)
    if (str(at(c, {"type"})) == type) return &c;
  return nullptr;
}

void set_condition(json& status, json condition) {
  std::string type = str(condition["type"]);
  const json* cur = get_condition(status, type);
  if (cur && str(at(*cur, {"status"})) == str(condition["status"]) && str(at(*cur, {"reason"})) == str(condition["reason"]))
    return;
  if (cur && str(at(*cur, {"status"})) == str(condition["status"]))
    condition["lastTransitionTime"] = at(*cur, {"lastTransitionTime"});
  remove_condition(status, type);
  if (!status["conditions"].is_array()) status["conditions"] = json::array();
  status["conditions"].push_back(std::move(condition));
}

void remove_condition(json& status, const std::string& type) {
  if (!status.is_object() || !status.contains("conditions") || !status["conditions"].is_array()) return;
  json kept = json::array();
  for (auto& c : status["conditions"])
    if (str(at(c, {"type"})) != type) kept.push_back(c);
  if (kept.empty()) status.erase("conditions");
  else status["conditions"] = std::move(kept);
}

bool has_progress_deadline(const json& d) {
  const json& p = at(d, {"spec", "progressDeadlineSeconds"});
  return p.is_number_integer() && p.get<std::int64_t>() != INT32_MAX;
}

bool deployment_complete(const json& d, const json& status) {
  std::int64_t want = replicas(d);
  return num(at(status, {"updatedReplicas"})) == want && num(at(status, {"replicas"})) == want &&
         num(at(status, {"availableReplicas"})) == want &&
         num(at(status, {"observedGeneration"})) >= num(at(d, {"metadata", "generation"}));
}

bool deployment_progressing(const json& d, const json& new_status) {
  const json& old = at(d, {"status"});
  std::int64_t old_old = num(at(old, {"replicas"})) - num(at(old, {"updatedReplicas"}));
  std::int64_t new_old = num(at(new_status, {"replicas"})) - num(at(new_status, {"updatedReplicas"}));
  return num(at(new_status, {"updatedReplicas"})) > num(at(old, {"updatedReplicas"})) || new_old < old_old ||
         num(at(new_status, {"readyReplicas"})) > num(at(old, {"readyReplicas"})) ||
         num(at(new_status, {"availableReplicas"})) > num(at(old, {"availableReplicas"}));
}

bool deployment_timed_out(const json& d, const json& status, TimePoint now) {
  if (!has_progress_deadline(d)) return false;
  const json* c = get_condition(status, "Progressing");
  if (!c) return false;
  std::string reason = str(at(*c, {"reason"}));
  if (reason == kNewRSAvailableReason) return false;
  if (reason == kTimedOutReason) return true;
  auto from = parse_time(at(*c, {"lastUpdateTime"}));
  if (!from) return false;
  return *from + std::chrono::seconds(num(at(d, {"spec", "progressDeadlineSeconds"}))) < now;
}

json calculate_status(const std::vector<json>& all_rss, const json* new_rs, const json& d, TimePoint now) {
  std::int64_t available = available_replica_count(all_rss);
  std::int64_t total = replica_count(all_rss);
  std::int64_t unavailable = std::max<std::int64_t>(0, total - available);
  json status = json::object();
  auto set = [&](const char* k, std::int64_t v) {
    if (v) status[k] = v;
  };
  set("observedGeneration", num(at(d, {"metadata", "generation"})));
  set("replicas", actual_replica_count(all_rss));
  set("updatedReplicas", new_rs ? num(at(*new_rs, {"status", "replicas"})) : 0);
  set("readyReplicas", ready_replica_count(all_rss));
  set("availableReplicas", available);
  set("unavailableReplicas", unavailable);
  const json& collision = at(d, {"status", "collisionCount"});
  if (collision.is_number_integer()) status["collisionCount"] = collision;
  const json& conds = at(d, {"status", "conditions"});
  if (conds.is_array() && !conds.empty()) status["conditions"] = conds;
  if (available >= replicas(d) - max_unavailable(d))
    set_condition(status, new_condition("Available", "True", kMinimumReplicasAvailable,
                                        "Deployment has minimum availability.", now));
  else
    set_condition(status, new_condition("Available", "False", kMinimumReplicasUnavailable,
                                        "Deployment does not have minimum availability.", now));
  return status;
}

json rollout_status(const std::vector<json>& all_rss, const json* new_rs, const json& d, TimePoint now) {
  json status = calculate_status(all_rss, new_rs, d, now);
  if (!has_progress_deadline(d)) remove_condition(status, "Progressing");
  const json* current = get_condition(at(d, {"status"}), "Progressing");
  bool complete_already = num(at(status, {"replicas"})) == num(at(status, {"updatedReplicas"})) && current &&
                          str(at(*current, {"reason"})) == kNewRSAvailableReason;
  if (has_progress_deadline(d) && !complete_already) {
    std::string dname = name_of(d);
    if (deployment_complete(d, status)) {
      std::string msg = new_rs ? "ReplicaSet \"" + name_of(*new_rs) + "\" has successfully progressed."
                               : "Deployment \"" + dname + "\" has successfully progressed.";
      set_condition(status, new_condition("Progressing", "True", kNewRSAvailableReason, msg, now));
    } else if (deployment_progressing(d, status)) {
      std::string msg = new_rs ? "ReplicaSet \"" + name_of(*new_rs) + "\" is progressing."
                               : "Deployment \"" + dname + "\" is progressing.";
      json cond = new_condition("Progressing", "True", kReplicaSetUpdatedReason, msg, now);
      // Progress refreshes lastUpdateTime even when the reason stays the same.
      if (current) {
        if (str(at(*current, {"status"})) == "True") cond["lastTransitionTime"] = at(*current, {"lastTransitionTime"});
        remove_condition(status, "Progressing");
      }
      set_condition(status, std::move(cond));
    } else if (deployment_timed_out(d, status, now)) {
      std::string msg = new_rs ? "ReplicaSet \"" + name_of(*new_rs) + "\" has timed out progressing."
                               : "Deployment \"" + dname + "\" has timed out progressing.";
      set_condition(status, new_condition("Progressing", "False", kTimedOutReason, msg, now));
    }
  }
  // ReplicaFailure: the new ReplicaSet's failure first, else any other's.
  std::vector<json> failures;
  auto collect = [&](const json& rs) {
    const json& conds = at(rs, {"status", "conditions"});
    if (!conds.is_array()) return;
    for (const auto& c : conds) {
      if (str(at(c, {"type"})) != "ReplicaFailure") continue;
      failures.push_back({{"type", "ReplicaFailure"},
                          {"status", at(c, {"status"})},
                          {"lastUpdateTime", at(c, {"lastTransitionTime"})},
                          {"lastTransitionTime", at(c, {"lastTransitionTime"})},
                          {"reason", at(c, {"reason"})},
                          {"message", at(c, {"message"})}});
    }
  };
  if (new_rs) collect(*new_rs);
  if (failures.empty())
    for (const auto& rs : all_rss) collect(rs);
  if (!failures.empty()) set_condition(status, failures[0]);
  else remove_condition(status, "ReplicaFailure");
  return status;
}

std::optional<std::chrono::milliseconds> stuck_requeue(const json& d, const json& new_status, TimePoint now) {
  const json* current = get_condition(at(d, {"status"}), "Progressing");
  if (!has_progress_deadline(d) || !current) return std::nullopt;
  if (deployment_complete(d, new_status) || str(at(*current, {"reason"})) == kTimedOutReason) return std::nullopt;
  auto updated = parse_time(at(*current, {"lastUpdateTime"}));
  if (!updated) return std::nullopt;
  auto after = std::chrono::duration_cast<std::chrono::milliseconds>(
      *updated + std::chrono::seconds(num(at(d, {"spec", "progressDeadlineSeconds"}))) - now);
  if (after < std::chrono::seconds(1)) return std::chrono::milliseconds(0);
  return after + std::chrono::seconds(1);
}

bool status_equal(const json& a, const json& b) {
  static const char* kInts[] = {"observedGeneration", "replicas", "updatedReplicas", "readyReplicas",
                                "availableReplicas", "unavailableReplicas", "terminatingReplicas"};
  for (const char* k : kInts)
    if (num(at(a, {k})) != num(at(b, {k}))) return false;
  if (at(a, {"collisionCount"}) != at(b, {"collisionCount"})) return false;
  json ca = at(a, {"conditions"}), cb = at(b, {"conditions"});
  if (ca.is_array() && ca.empty()) ca = nullptr;
  if (cb.is_array() && cb.empty()) cb = nullptr;
  return ca == cb;
}

std::pair<std::string, bool> rollout_status_message(const json& d) {
  std::string name = name_of(d);
  const json& s = at(d, {"status"});
  if (num(at(d, {"metadata", "generation"})) <= num(at(s, {"observedGeneration"}))) {
    const json* c = get_condition(s, "Progressing");
    if (c && str(at(*c, {"reason"})) == kTimedOutReason)
      return {"error: deployment \"" + name + "\" exceeded its progress deadline", false};
    std::int64_t want = replicas(d), updated = num(at(s, {"updatedReplicas"})), total = num(at(s, {"replicas"}));
    std::int64_t available = num(at(s, {"availableReplicas"}));
    if (updated < want)
      return {"Waiting for deployment \"" + name + "\" rollout to finish: " + std::to_string(updated) + " out of " +
                  std::to_string(want) + " new replicas have been updated...",
              false};
    if (total > updated)
      return {"Waiting for deployment \"" + name + "\" rollout to finish: " + std::to_string(total - updated) +
                  " old replicas are pending termination...",
              false};
    if (available < updated)
      return {"Waiting for deployment \"" + name + "\" rollout to finish: " + std::to_string(available) + " of " +
                  std::to_string(updated) + " updated replicas are available...",
              false};
    return {"deployment \"" + name + "\" successfully rolled out", true};
  }
  return {"Waiting for deployment spec update to be observed...", false};
}

}  // namespace berth::controllers::deployment
