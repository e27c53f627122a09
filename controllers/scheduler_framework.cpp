// The scheduler's filters, scores and failure message; see scheduler.h.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "api/quantity.h"
#include "controllers/scheduler.h"

namespace berth::controllers::scheduling {

namespace {

std::int64_t quantity(const json& v, bool milli) {
  auto q = api::Quantity::from_json(v);
  if (!q) return 0;
  return milli ? q->milli_value() : q->value();
}

// Requests of one container (or overhead) as Resources.
Resources resource_list(const json& list) {
  Resources r;
  if (!list.is_object()) return r;
  for (const auto& [k, v] : list.items()) {
    if (k == "cpu") r.milli_cpu = quantity(v, true);
    else if (k == "memory") r.memory = quantity(v, false);
    else if (k == "ephemeral-storage") r.ephemeral_storage = quantity(v, false);
    else if (k == "pods") continue;
    else r.scalar[k] = quantity(v, false);
  }
  return r;
}

void max_into(Resources& into, const Resources& r) {
  into.milli_cpu = std::max(into.milli_cpu, r.milli_cpu);
  into.memory = std::max(into.memory, r.memory);
  into.ephemeral_storage = std::max(into.ephemeral_storage, r.ephemeral_storage);
  for (const auto& [k, v] : r.scalar) into.scalar[k] = std::max(into.scalar[k], v);
}

std::vector<HostPort> container_host_ports(const json& spec) {
  std::vector<HostPort> out;
  for (const char* list : {"initContainers", "containers"}) {
    const json& cs = at(spec, {list});
    if (!cs.is_array()) continue;
    for (const auto& c : cs) {
      const json& ports = at(c, {"ports"});
      if (!ports.is_array()) continue;
      for (const auto& p : ports) {
        std::int64_t hp = num(at(p, {"hostPort"}));
        if (hp <= 0) continue;
        HostPort h;
        h.port = hp;
        h.protocol = str(at(p, {"protocol"}));
        if (h.protocol.empty()) h.protocol = "TCP";
        h.ip = str(at(p, {"hostIP"}));
        if (h.ip.empty()) h.ip = "0.0.0.0";
        out.push_back(std::move(h));
      }
    }
  }
  return out;
}

bool ports_conflict(const HostPort& a, const HostPort& b) {
  if (a.port != b.port || a.protocol != b.protocol) return false;
  return a.ip == b.ip || a.ip == "0.0.0.0" || b.ip == "0.0.0.0";
}

const json& node_labels(const NodeInfo& node) {
  static const json kEmpty = json::object();
  if (!node.node) return kEmpty;
  const json& l = at(*node.node, {"metadata", "labels"});
  return l.is_object() ? l : kEmpty;
}

bool requirement_matches(const json& req, const std::string* value) {
  std::string op = str(at(req, {"operator"}));
  std::vector<std::string> values = string_list(at(req, {"values"}));
  if (op == "In") return value && std::find(values.begin(), values.end(), *value) != values.end();
  if (op == "NotIn") return !value || std::find(values.begin(), values.end(), *value) == values.end();
  if (op == "Exists") return value != nullptr;
  if (op == "DoesNotExist") return value == nullptr;
  if (op == "Gt" || op == "Lt") {
    if (!value || values.size() != 1) return false;
    std::int64_t have = 0, want = 0;
    if (!parse_int64(*value, have) || !parse_int64(values[0], want)) return false;
    return op == "Gt" ? have > want : have < want;
  }
  return false;
}

Status fail(Code code, std::string reason) {
  Status s;
  s.code = code;
  s.reasons.push_back(std::move(reason));
  return s;
}

}  // namespace

bool Toleration::tolerates(const Taint& t) const {
  if (!effect.empty() && effect != t.effect) return false;
  if (!key.empty() && key != t.key) return false;
  if (op.empty() || op == "Equal") return value == t.value;
  if (op == "Exists") return true;
  return false;
}

void Resources::add(const Resources& o) {
  milli_cpu += o.milli_cpu;
  memory += o.memory;
  ephemeral_storage += o.ephemeral_storage;
  for (const auto& [k, v] : o.scalar) scalar[k] += v;
}

void Resources::sub(const Resources& o) {
  milli_cpu -= o.milli_cpu;
  memory -= o.memory;
  ephemeral_storage -= o.ephemeral_storage;
  for (const auto& [k, v] : o.scalar) scalar[k] -= v;
}

bool Resources::zero() const {
  if (milli_cpu || memory || ephemeral_storage) return false;
  for (const auto& [k, v] : scalar)
    if (v) return false;
  return true;
}

PodInfo PodInfo::from(ObjectPtr pod) {
  PodInfo p;
  const json& obj = *pod;
  p.ns = namespace_of(obj);
  p.name = name_of(obj);
  p.uid = uid_of(obj);
  p.key = make_key(p.ns, p.name);
  const json& spec = at(obj, {"spec"});

  // resource.PodRequests: containers and sidecars add up; each regular init container needs its
  // own request plus the sidecars started before it; the pod needs the larger of the two.
  Resources sum, nonzero_sum, init_max, nonzero_init_max, sidecars, nonzero_sidecars;
  auto nonzero = [](Resources r) {
    if (r.milli_cpu == 0) r.milli_cpu = kDefaultMilliCPURequest;
    if (r.memory == 0) r.memory = kDefaultMemoryRequest;
    return r;
  };
  const json& containers = at(spec, {"containers"});
  if (containers.is_array())
    for (const auto& c : containers) {
      Resources r = resource_list(at(c, {"resources", "requests"}));
      sum.add(r);
      nonzero_sum.add(nonzero(r));
    }
  const json& inits = at(spec, {"initContainers"});
  if (inits.is_array())
    for (const auto& c : inits) {
      Resources r = resource_list(at(c, {"resources", "requests"}));
      if (str(at(c, {"restartPolicy"})) == "Always") {
        sum.add(r);
        nonzero_sum.add(nonzero(r));
        sidecars.add(r);
        nonzero_sidecars.add(nonzero(r));
      } else {
        Resources need = r, nz = nonzero(r);
        need.add(sidecars);
        nz.add(nonzero_sidecars);
        max_into(init_max, need);
        max_into(nonzero_init_max, nz);
      }
    }
  max_into(sum, init_max);
  max_into(nonzero_sum, nonzero_init_max);
  Resources overhead = resource_list(at(spec, {"overhead"}));
  sum.add(overhead);
  nonzero_sum.add(overhead);
  p.requests = sum;
  p.nonzero_milli_cpu = nonzero_sum.milli_cpu;
  p.nonzero_memory = nonzero_sum.memory;

  const json& tols = at(spec, {"tolerations"});
  if (tols.is_array())
    for (const auto& t : tols)
      p.tolerations.push_back({str(at(t, {"key"})), str(at(t, {"operator"})), str(at(t, {"value"})), str(at(t, {"effect"}))});
  const json& sel = at(spec, {"nodeSelector"});
  if (sel.is_object() && !sel.empty()) p.node_selector = sel;
  const json& req = at(spec, {"affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"});
  if (!req.is_null()) p.required_terms = req.is_array() ? req : json::array();
  const json& pref = at(spec, {"affinity", "nodeAffinity", "preferredDuringSchedulingIgnoredDuringExecution"});
  if (pref.is_array() && !pref.empty()) p.preferred_terms = pref;
  p.host_ports = container_host_ports(spec);
  p.owner_uid = controller_uid(obj);
  p.priority = num(at(spec, {"priority"}));
  p.preemption_policy = str(at(spec, {"preemptionPolicy"}));
  p.pod = std::move(pod);
  return p;
}

void NodeInfo::set_node(ObjectPtr n) {
  node = std::move(n);
  const json& obj = *node;
  name = name_of(obj);
  const json& alloc_json = at(obj, {"status", "allocatable"}).is_object() ? at(obj, {"status", "allocatable"})
                                                                          : at(obj, {"status", "capacity"});
  allocatable = resource_list(alloc_json);
  allowed_pods = alloc_json.is_object() && alloc_json.contains("pods") ? quantity(alloc_json["pods"], false) : 0;
  unschedulable = truthy(at(obj, {"spec", "unschedulable"}));
  ready.clear();
  const json& conds = at(obj, {"status", "conditions"});
  if (conds.is_array())
    for (const auto& c : conds)
      if (str(at(c, {"type"})) == "Ready") ready = str(at(c, {"status"}));
  taints.clear();
  const json& ts = at(obj, {"spec", "taints"});
  bool has_not_ready = false, has_unreachable = false;
  if (ts.is_array())
    for (const auto& t : ts) {
      Taint taint{str(at(t, {"key"})), str(at(t, {"value"})), str(at(t, {"effect"}))};
      if (taint.effect == "NoSchedule" || taint.effect == "NoExecute") {
        if (taint.key == "node.kubernetes.io/not-ready") has_not_ready = true;
        if (taint.key == "node.kubernetes.io/unreachable") has_unreachable = true;
      }
      taints.push_back(std::move(taint));
    }
  // A node that is not Ready is not schedulable: the node lifecycle controller taints it so,
  // and until it has, the scheduler treats it as tainted (and says so in the same words).
  if (ready != "True" && !has_not_ready && !has_unreachable) {
    if (ready == "Unknown") taints.push_back({"node.kubernetes.io/unreachable", "", "NoSchedule"});
    else taints.push_back({"node.kubernetes.io/not-ready", "", "NoSchedule"});
  }
}

void NodeInfo::add_pod(const PodInfo& pod) {
  if (pods.count(pod.uid)) return;
  Usage u{pod.requests, pod.nonzero_milli_cpu, pod.nonzero_memory, pod.owner_uid, pod.priority, pod.host_ports};
  requested.add(u.requests);
  nonzero_milli_cpu += u.nonzero_milli_cpu;
  nonzero_memory += u.nonzero_memory;
  ++pod_count;
  if (!u.owner_uid.empty()) ++owner_pods[u.owner_uid];
  ++priorities[u.priority];
  used_ports.insert(used_ports.end(), u.ports.begin(), u.ports.end());
  pods.emplace(pod.uid, std::move(u));
}

bool NodeInfo::remove_pod(const std::string& uid) {
  auto it = pods.find(uid);
  if (it == pods.end()) return false;
  const Usage& u = it->second;
  requested.sub(u.requests);
  nonzero_milli_cpu -= u.nonzero_milli_cpu;
  nonzero_memory -= u.nonzero_memory;
  --pod_count;
  if (!u.owner_uid.empty()) {
    auto o = owner_pods.find(u.owner_uid);
    if (o != owner_pods.end() && --o->second <= 0) owner_pods.erase(o);
  }
  auto pr = priorities.find(u.priority);
  if (pr != priorities.end() && --pr->second <= 0) priorities.erase(pr);
  for (const auto& p : u.ports) {
    auto f = std::find_if(used_ports.begin(), used_ports.end(), [&](const HostPort& h) {
      return h.port == p.port && h.protocol == p.protocol && h.ip == p.ip;
    });
    if (f != used_ports.end()) used_ports.erase(f);
  }
  pods.erase(it);
  return true;
}

// ---- filters ------------------------------------------------------------------------------

Status filter_node_unschedulable(const PodInfo& pod, const NodeInfo& node) {
  if (!node.unschedulable) return {};
  Taint t{"node.kubernetes.io/unschedulable", "", "NoSchedule"};
  for (const auto& tol : pod.tolerations)
    if (tol.tolerates(t)) return {};
  return fail(Code::UnschedulableAndUnresolvable, "node(s) were unschedulable");
}

Status filter_taint_toleration(const PodInfo& pod, const NodeInfo& node) {
  for (const auto& t : node.taints) {
    if (t.effect != "NoSchedule" && t.effect != "NoExecute") continue;
    bool tolerated = false;
    for (const auto& tol : pod.tolerations)
      if (tol.tolerates(t)) {
        tolerated = true;
        break;
      }
    if (!tolerated)
      return fail(Code::UnschedulableAndUnresolvable, "node(s) had untolerated taint {" + t.key + ": " + t.value + "}");
  }
  return {};
}

bool node_matches_term(const json& term, const NodeInfo& node) {
  const json& exprs = at(term, {"matchExpressions"});
  const json& fields = at(term, {"matchFields"});
  bool has_exprs = exprs.is_array() && !exprs.empty();
  bool has_fields = fields.is_array() && !fields.empty();
  if (!has_exprs && !has_fields) return false;  // an empty term matches nothing
  const json& labels = node_labels(node);
  if (has_exprs)
    for (const auto& e : exprs) {
      std::string key = str(at(e, {"key"}));
      auto it = labels.find(key);
      std::string value;
      const std::string* vp = nullptr;
      if (it != labels.end() && it->is_string()) {
        value = it->get<std::string>();
        vp = &value;
      }
      if (!requirement_matches(e, vp)) return false;
    }
  if (has_fields)
    for (const auto& f : fields) {
      if (str(at(f, {"key"})) != "metadata.name") return false;
      if (!requirement_matches(f, &node.name)) return false;
    }
  return true;
}

bool node_matches_selector_terms(const json& terms, const NodeInfo& node) {
  if (!terms.is_array()) return false;
  for (const auto& t : terms)
    if (node_matches_term(t, node)) return true;
  return false;
}

Status filter_node_affinity(const PodInfo& pod, const NodeInfo& node) {
  bool ok = true;
  if (pod.node_selector.is_object()) {
    const json& labels = node_labels(node);
    for (const auto& [k, v] : pod.node_selector.items()) {
      auto it = labels.find(k);
      if (it == labels.end() || *it != v) {
        ok = false;
        break;
      }
    }
  }
  if (ok && !pod.required_terms.is_null()) ok = node_matches_selector_terms(pod.required_terms, node);
  if (ok) return {};
  return fail(Code::UnschedulableAndUnresolvable, "node(s) didn't match Pod's node affinity/selector");
}

Status filter_node_ports(const PodInfo& pod, const NodeInfo& node) {
  for (const auto& want : pod.host_ports)
    for (const auto& used : node.used_ports)
      if (ports_conflict(want, used))
        return fail(Code::Unschedulable, "node(s) didn't have free ports for the requested pod ports");
  return {};
}

Status filter_resources_fit(const PodInfo& pod, const NodeInfo& node) {
  Status s;
  bool unresolvable = false;
  if (node.pod_count + 1 > node.allowed_pods) s.reasons.push_back("Too many pods");
  const Resources& r = pod.requests;
  if (!r.zero()) {
    const Resources& a = node.allocatable;
    const Resources& u = node.requested;
    if (r.milli_cpu > 0 && r.milli_cpu > a.milli_cpu - u.milli_cpu) {
      s.reasons.push_back("Insufficient cpu");
      unresolvable |= r.milli_cpu > a.milli_cpu;
    }
    if (r.memory > 0 && r.memory > a.memory - u.memory) {
      s.reasons.push_back("Insufficient memory");
      unresolvable |= r.memory > a.memory;
    }
    if (r.ephemeral_storage > 0 && r.ephemeral_storage > a.ephemeral_storage - u.ephemeral_storage) {
      s.reasons.push_back("Insufficient ephemeral-storage");
      unresolvable |= r.ephemeral_storage > a.ephemeral_storage;
    }
    for (const auto& [name, want] : r.scalar) {
      if (want == 0) continue;
      auto ai = a.scalar.find(name);
      std::int64_t have = ai == a.scalar.end() ? 0 : ai->second;
      auto ui = u.scalar.find(name);
      std::int64_t used = ui == u.scalar.end() ? 0 : ui->second;
      if (want > have - used) {
        s.reasons.push_back("Insufficient " + name);
        unresolvable |= want > have;
      }
    }
  }
  if (s.reasons.empty()) return {};
  // A request larger than the whole node cannot be helped by preempting anything there.
  s.code = unresolvable ? Code::UnschedulableAndUnresolvable : Code::Unschedulable;
  return s;
}

Status filter(const PodInfo& pod, const NodeInfo& node) {
  Status s = filter_node_unschedulable(pod, node);
  if (!s.ok()) return s;
  s = filter_taint_toleration(pod, node);
  if (!s.ok()) return s;
  s = filter_node_affinity(pod, node);
  if (!s.ok()) return s;
  s = filter_node_ports(pod, node);
  if (!s.ok()) return s;
  return filter_resources_fit(pod, node);
}

// ---- scores -------------------------------------------------------------------------------

std::int64_t least_allocated_score(const PodInfo& pod, const NodeInfo& node) {
  auto one = [](std::int64_t requested, std::int64_t capacity) -> std::int64_t {
    if (capacity == 0 || requested > capacity) return 0;
    return (capacity - requested) * kMaxNodeScore / capacity;
  };
  std::int64_t cpu = one(node.nonzero_milli_cpu + pod.nonzero_milli_cpu, node.allocatable.milli_cpu);
  std::int64_t mem = one(node.nonzero_memory + pod.nonzero_memory, node.allocatable.memory);
  return (cpu + mem) / 2;
}

std::int64_t balanced_allocation_score(const PodInfo& pod, const NodeInfo& node) {
  auto fraction = [](std::int64_t requested, std::int64_t capacity) {
    if (capacity == 0) return 1.0;
    double f = static_cast<double>(requested) / static_cast<double>(capacity);
    return f > 1 ? 1.0 : f;
  };
  double cpu = fraction(node.requested.milli_cpu + pod.requests.milli_cpu, node.allocatable.milli_cpu);
  double mem = fraction(node.requested.memory + pod.requests.memory, node.allocatable.memory);
  double mean = (cpu + mem) / 2;
  double std_dev = std::sqrt(((cpu - mean) * (cpu - mean) + (mem - mean) * (mem - mean)) / 2);
  return static_cast<std::int64_t>((1 - std_dev) * kMaxNodeScore);
}

namespace {

// DefaultNormalizeScore: scale to [0, 100] by the maximum; reversed for "fewer is better".
void normalize(std::vector<std::int64_t>& scores, bool reverse) {
  std::int64_t max = 0;
  for (auto s : scores) max = std::max(max, s);
  if (max == 0) {
    if (reverse)
      for (auto& s : scores) s = kMaxNodeScore;
    return;
  }
  for (auto& s : scores) {
    s = kMaxNodeScore * s / max;
    if (reverse) s = kMaxNodeScore - s;
  }
}

}  // namespace

std::vector<std::int64_t> score(const PodInfo& pod, const std::vector<const NodeInfo*>& nodes) {
  std::size_t n = nodes.size();
  std::vector<std::int64_t> total(n, 0);
  // NodeResourcesFit (LeastAllocated), weight 1; NodeResourcesBalancedAllocation, weight 1.
  for (std::size_t i = 0; i < n; ++i)
    total[i] += least_allocated_score(pod, *nodes[i]) + balanced_allocation_score(pod, *nodes[i]);
  // TaintToleration: intolerable PreferNoSchedule taints, fewer is better; weight 3.
  {
    std::vector<std::int64_t> s(n, 0);
    bool any = false;
    for (std::size_t i = 0; i < n; ++i)
      for (const auto& t : nodes[i]->taints) {
        if (t.effect != "PreferNoSchedule") continue;
        bool tolerated = false;
        for (const auto& tol : pod.tolerations)
          if ((tol.effect.empty() || tol.effect == "PreferNoSchedule") && tol.tolerates(t)) tolerated = true;
        if (!tolerated) ++s[i], any = true;
      }
    normalize(s, true);
    for (std::size_t i = 0; i < n; ++i) total[i] += 3 * s[i];
    (void)any;
  }
  // NodeAffinity preferred terms, weight 2.
  if (pod.preferred_terms.is_array()) {
    std::vector<std::int64_t> s(n, 0);
    for (std::size_t i = 0; i < n; ++i)
      for (const auto& term : pod.preferred_terms) {
        std::int64_t w = num(at(term, {"weight"}));
        if (w != 0 && node_matches_term(at(term, {"preference"}), *nodes[i])) s[i] += w;
      }
    normalize(s, false);
    for (std::size_t i = 0; i < n; ++i) total[i] += 2 * s[i];
  } else {
    // Every node scores the same when there is no preference: keep totals comparable.
  }
  // PodTopologySpread's system default over hostnames (maxSkew 3): spread an owner's pods; weight 2.
  if (!pod.owner_uid.empty()) {
    double weight = std::log(static_cast<double>(n) + 2);
    std::vector<double> raw(n);
    double max = 0, min = 1e300;
    for (std::size_t i = 0; i < n; ++i) {
      auto it = nodes[i]->owner_pods.find(pod.owner_uid);
      double count = it == nodes[i]->owner_pods.end() ? 0 : it->second;
      raw[i] = count * weight + 2;  // + maxSkew - 1
      max = std::max(max, raw[i]);
      min = std::min(min, raw[i]);
    }
    for (std::size_t i = 0; i < n; ++i) {
      std::int64_t s = max == 0 ? kMaxNodeScore
                                : static_cast<std::int64_t>(kMaxNodeScore * (max + min - raw[i]) / max);
      total[i] += 2 * s;
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) total[i] += 2 * kMaxNodeScore;
  }
  return total;
}

int num_feasible_nodes_to_find(int num_all_nodes, int percentage) {
  constexpr int kMinFeasible = 100, kMinPercentage = 5;
  if (num_all_nodes < kMinFeasible) return num_all_nodes;
  if (percentage <= 0) {
    percentage = 50 - num_all_nodes / 125;
    if (percentage < kMinPercentage) percentage = kMinPercentage;
  }
  if (percentage >= 100) return num_all_nodes;
  int n = static_cast<int>(static_cast<std::int64_t>(num_all_nodes) * percentage / 100);
  return n < kMinFeasible ? kMinFeasible : n;
}

namespace {

std::string histogram(const std::map<std::string, int>& reasons) {
  std::vector<std::string> parts;
  for (const auto& [reason, count] : reasons) parts.push_back(std::to_string(count) + " " + reason);
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "") + parts[i];
  return out;
}

}  // namespace

std::string fit_error_message(const PodInfo& pod, const std::vector<const NodeInfo*>& nodes,
                              const std::vector<Status>& statuses) {
  std::size_t total = nodes.size();
  std::map<std::string, int> reasons;
  for (const auto& s : statuses)
    for (const auto& r : s.reasons) ++reasons[r];
  std::string msg = "0/" + std::to_string(total) + " nodes are available:";
  std::string h = histogram(reasons);
  if (!h.empty()) msg += " " + h + ".";

  // DefaultPreemption's PostFilter.
  if (pod.preemption_policy == "Never") return msg + " preemption: not eligible due to preemptionPolicy=Never.";
  std::map<std::string, int> preemption;
  for (std::size_t i = 0; i < statuses.size() && i < nodes.size(); ++i) {
    const Status& s = statuses[i];
    if (s.code != Code::Unschedulable) {
      ++preemption["Preemption is not helpful for scheduling"];
      continue;
    }
    // Would removing every lower-priority pod there make room?
    const NodeInfo& node = *nodes[i];
    auto lower = node.priorities.lower_bound(pod.priority);
    bool any_lower = node.priorities.begin() != lower;
    if (!any_lower) {
      ++preemption["No preemption victims found for incoming pod"];
      continue;
    }
    NodeInfo without = node;
    std::vector<std::string> victims;
    for (const auto& [uid, usage] : node.pods)
      if (usage.priority < pod.priority) victims.push_back(uid);
    for (const auto& v : victims) without.remove_pod(v);
    Status after = filter(pod, without);
    if (after.ok()) {
      // Preempting lower-priority pods would fit the pod here; Berth does not evict them.
      ++preemption["No preemption victims found for incoming pod"];
    } else {
      for (const auto& r : after.reasons) ++preemption[r];
    }
  }
  for (std::size_t i = statuses.size(); i < nodes.size(); ++i) ++preemption["Preemption is not helpful for scheduling"];
  msg += " preemption: 0/" + std::to_string(total) + " nodes are available: " + histogram(preemption) + ".";
  return msg;
}

int schedule_cycle(const PodInfo& pod, const std::vector<NodeInfo*>& nodes, int& next_start, int percentage,
                   std::uint64_t random, std::string& failure) {
  int all = static_cast<int>(nodes.size());
  if (all == 0) {
    failure = "no nodes available to schedule pods";
    return -1;
  }
  int want = num_feasible_nodes_to_find(all, percentage);
  std::vector<const NodeInfo*> feasible;
  std::vector<int> feasible_index;
  feasible.reserve(static_cast<std::size_t>(want));
  std::vector<Status> statuses;
  std::vector<const NodeInfo*> failed;
  int processed = 0;
  if (next_start >= all) next_start = 0;
  for (; processed < all && static_cast<int>(feasible.size()) < want; ++processed) {
    int i = (next_start + processed) % all;
    const NodeInfo* n = nodes[static_cast<std::size_t>(i)];
    Status s = filter(pod, *n);
    if (s.ok()) {
      feasible.push_back(n);
      feasible_index.push_back(i);
    } else {
      statuses.push_back(std::move(s));
      failed.push_back(n);
    }
  }
  next_start = (next_start + processed) % all;
  if (feasible.empty()) {
    failure = fit_error_message(pod, failed, statuses);
    return -1;
  }
  if (feasible.size() == 1) return feasible_index[0];
  auto scores = score(pod, feasible);
  std::size_t best = 0;
  std::uint64_t ties = 1;
  for (std::size_t i = 1; i < feasible.size(); ++i) {
    if (scores[i] > scores[best]) {
      best = i;
      ties = 1;
    } else if (scores[i] == scores[best]) {
      // Reservoir sampling among equals (a cheap generator stepped from the seed).
      random = random * 6364136223846793005ULL + 1442695040888963407ULL;
      if ((random >> 33) % ++ties == 0) best = i;
    }
  }
  return feasible_index[best];
}

}  // namespace berth::controllers::scheduling
