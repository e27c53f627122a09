#include "nodeagent/pod_status.h"

#include <algorithm>

namespace berth::nodeagent {

namespace {

json time_or_null(Clock::time_point t) { return t == Clock::time_point{} ? json(nullptr) : json(format_time(t)); }

Clock::time_point time_of(const json& j) { return parse_time(j.is_string() ? j.get<std::string>() : "").value_or(Clock::time_point{}); }

json termination_to_json(const Termination& t) {
  return {{"exitCode", t.exit_code},         {"reason", t.reason},       {"message", t.message},
          {"startedAt", format_nano_fixed(t.started_at)}, {"finishedAt", format_nano_fixed(t.finished_at)},
          {"containerID", t.container_id},   {"signal", t.signal}};
}

Termination termination_from_json(const json& j) {
  Termination t;
  t.exit_code = static_cast<int>(jint(j, {"exitCode"}));
  t.reason = jstr(j, {"reason"});
  t.message = jstr(j, {"message"});
  t.started_at = time_of(at(j, {"startedAt"}));
  t.finished_at = time_of(at(j, {"finishedAt"}));
  t.container_id = jstr(j, {"containerID"});
  t.signal = static_cast<int>(jint(j, {"signal"}));
  return t;
}

const char* state_name(ContainerRecord::State s) {
  switch (s) {
    case ContainerRecord::State::Running: return "running";
    case ContainerRecord::State::Terminated: return "terminated";
    default: return "waiting";
  }
}

std::string go_list(const std::vector<std::string>& names) {
  std::string out = "[";
  for (std::size_t i = 0; i < names.size(); ++i) out += (i ? " " : "") + names[i];
  return out + "]";
}

}  // namespace

json ContainerRecord::to_json() const {
  json j = {{"name", name},
            {"init", init},
            {"sidecar", sidecar},
            {"restartCount", restart_count},
            {"everCreated", ever_created},
            {"id", id},
            {"prevId", prev_id},
            {"state", state_name(state)},
            {"waitingReason", waiting_reason},
            {"waitingMessage", waiting_message},
            {"startedAt", format_nano_fixed(started_at)},
            {"image", image},
            {"imageID", image_id},
            {"ready", ready},
            {"started", started},
            {"terminationLog", termination_log},
            {"specHash", spec_hash}};
  if (terminated) j["terminated"] = termination_to_json(*terminated);
  if (last) j["last"] = termination_to_json(*last);
  return j;
}

ContainerRecord ContainerRecord::from_json(const json& j) {
  ContainerRecord r;
  r.name = jstr(j, {"name"});
  r.init = jbool(j, {"init"});
  r.sidecar = jbool(j, {"sidecar"});
  r.restart_count = static_cast<int>(jint(j, {"restartCount"}));
  r.ever_created = jbool(j, {"everCreated"});
  r.id = jstr(j, {"id"});
  r.prev_id = jstr(j, {"prevId"});
  std::string st = jstr(j, {"state"});
  r.state = st == "running" ? State::Running : st == "terminated" ? State::Terminated : State::Waiting;
  r.waiting_reason = jstr(j, {"waitingReason"});
  r.waiting_message = jstr(j, {"waitingMessage"});
  r.started_at = time_of(at(j, {"startedAt"}));
  r.image = jstr(j, {"image"});
  r.image_id = jstr(j, {"imageID"});
  r.ready = jbool(j, {"ready"});
  r.started = jbool(j, {"started"});
  r.termination_log = jstr(j, {"terminationLog"});
  r.spec_hash = jstr(j, {"specHash"});
  if (at(j, {"terminated"}).is_object()) r.terminated = termination_from_json(j["terminated"]);
  if (at(j, {"last"}).is_object()) r.last = termination_from_json(j["last"]);
  return r;
}

json PodRecord::to_json() const {
  json inits = json::array(), cs = json::array();
  for (const auto& c : init_containers) inits.push_back(c.to_json());
  for (const auto& c : containers) cs.push_back(c.to_json());
  return {{"uid", uid},
          {"namespace", ns},
          {"name", name},
          {"sandboxReady", sandbox_ready},
          {"podIPs", pod_ips},
          {"startTime", format_nano_fixed(start_time)},
          {"initContainers", inits},
          {"containers", cs},
          {"terminal", terminal},
          {"deleting", deleting},
          {"reason", reason},
          {"message", message},
          {"rejected", rejected}};
}

PodRecord PodRecord::from_json(const json& j) {
  PodRecord r;
  r.uid = jstr(j, {"uid"});
  r.ns = jstr(j, {"namespace"});
  r.name = jstr(j, {"name"});
  r.sandbox_ready = jbool(j, {"sandboxReady"});
  if (at(j, {"podIPs"}).is_array())
    for (const auto& ip : j["podIPs"]) r.pod_ips.push_back(ip.get<std::string>());
  r.start_time = time_of(at(j, {"startTime"}));
  if (at(j, {"initContainers"}).is_array())
    for (const auto& c : j["initContainers"]) r.init_containers.push_back(ContainerRecord::from_json(c));
  if (at(j, {"containers"}).is_array())
    for (const auto& c : j["containers"]) r.containers.push_back(ContainerRecord::from_json(c));
  r.terminal = jbool(j, {"terminal"});
  r.deleting = jbool(j, {"deleting"});
  r.reason = jstr(j, {"reason"});
  r.message = jstr(j, {"message"});
  r.rejected = jbool(j, {"rejected"});
  return r;
}

ContainerRecord* PodRecord::find(const std::string& n, bool init) {
  auto& list = init ? init_containers : containers;
  for (auto& c : list)
    if (c.name == n) return &c;
  return nullptr;
}

void PodRecord::sync_with_spec(const json& pod) {
  uid = jstr(pod, {"metadata", "uid"});
  ns = jstr(pod, {"metadata", "namespace"});
  name = jstr(pod, {"metadata", "name"});
  bool has_init = at(pod, {"spec", "initContainers"}).is_array() && !pod["spec"]["initContainers"].empty();
  for (bool init : {true, false}) {
    const json& list = at(pod, {"spec", init ? "initContainers" : "containers"});
    if (!list.is_array()) continue;
    std::vector<ContainerRecord> ordered;
    auto& existing = init ? init_containers : containers;
    for (const auto& c : list) {
      std::string cname = jstr(c, {"name"});
      ContainerRecord* found = find(cname, init);
      if (found) {
        ordered.push_back(*found);
      } else {
        ContainerRecord r;
        r.name = cname;
        r.init = init;
        r.sidecar = init && jstr(c, {"restartPolicy"}) == "Always";
        r.image = jstr(c, {"image"});
        r.waiting_reason = (init || has_init) ? "PodInitializing" : "ContainerCreating";
        ordered.push_back(r);
      }
    }
    existing = std::move(ordered);
  }
}

// ---- Backoff ----

void Backoff::next(const std::string& key, Clock::time_point event_time, Clock::time_point now) {
  auto it = entries_.find(key);
  if (it == entries_.end() || event_time - it->second.last_update > 2 * max_) {
    entries_[key] = {initial_, now};
    return;
  }
  it->second.backoff = std::min(it->second.backoff * 2, max_);
  it->second.last_update = now;
}

bool Backoff::in_backoff_since(const std::string& key, Clock::time_point event_time, Clock::time_point now) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) return false;
  if (event_time - it->second.last_update > 2 * max_) return false;
  return now - event_time < it->second.backoff;
}

bool Backoff::in_backoff_since_update(const std::string& key, Clock::time_point now) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) return false;
  if (now - it->second.last_update > 2 * max_) return false;
  return now - it->second.last_update < it->second.backoff;
}

std::chrono::nanoseconds Backoff::get(const std::string& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? std::chrono::nanoseconds(0) : it->second.backoff;
}

Clock::time_point Backoff::ready_after_update(const std::string& key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) return Clock::time_point{};
  return it->second.last_update + std::chrono::duration_cast<Clock::duration>(it->second.backoff);
}

Clock::time_point Backoff::ready_at(const std::string& key, Clock::time_point event_time) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) return event_time;
  return event_time + std::chrono::duration_cast<Clock::duration>(it->second.backoff);
}

// ---- status ----

std::optional<Clock::time_point> active_deadline(const json& pod, Clock::time_point start_time) {
  const json& ads = at(pod, {"spec", "activeDeadlineSeconds"});
  // Validation keeps it a positive integer; anything else means no deadline, as a nil pointer does.
  if (!ads.is_number_integer() || ads.get<int64_t>() <= 0 || start_time == Clock::time_point{}) return std::nullopt;
  return start_time + std::chrono::seconds(ads.get<int64_t>());
}

std::string compute_phase(const json& pod, const PodRecord& rec, bool pod_is_terminal) {
  std::string policy = jstr(pod, {"spec", "restartPolicy"}, "Always");
  int pending_init = 0, failed_init = 0;
  bool regular_started = std::any_of(rec.containers.begin(), rec.containers.end(),
                                     [](const ContainerRecord& c) { return c.ever_created; });
  for (const auto& c : rec.init_containers) {
    if (c.sidecar) {
      if ((c.state == ContainerRecord::State::Running && c.started) || regular_started) continue;
      ++pending_init;
      continue;
    }
    switch (c.state) {
      case ContainerRecord::State::Terminated:
        if (c.terminated && c.terminated->exit_code == 0) break;
        ++failed_init;
        break;
      case ContainerRecord::State::Running: ++pending_init; break;
      case ContainerRecord::State::Waiting:
        if (c.terminated && c.terminated->exit_code != 0) ++failed_init;
        else if (!(c.terminated && c.terminated->exit_code == 0)) ++pending_init;
        break;
    }
  }
  int running = 0, waiting = 0, stopped = 0, succeeded = 0;
  for (const auto& c : rec.containers) {
    switch (c.state) {
      case ContainerRecord::State::Running: ++running; break;
      case ContainerRecord::State::Terminated:
        ++stopped;
        if (c.terminated && c.terminated->exit_code == 0) ++succeeded;
        break;
      case ContainerRecord::State::Waiting:
        if (c.terminated || c.last) ++stopped;
        else ++waiting;
        break;
    }
  }
  if (failed_init > 0 && policy == "Never") return "Failed";
  if (pending_init > 0 && !(pod_is_terminal && running == 0)) return "Pending";
  if (failed_init > 0 && !regular_started && !pod_is_terminal) return "Pending";  // init restarting
  if (waiting > 0 && !pod_is_terminal) return "Pending";
  if (running > 0) return "Running";
  if (stopped > 0 || pod_is_terminal) {
    if (pod_is_terminal) return (stopped > 0 && succeeded == stopped && failed_init == 0) ? "Succeeded" : "Failed";
    if (policy == "Always") return "Running";
    if (stopped == succeeded) return "Succeeded";
    if (policy == "Never") return "Failed";
    return "Running";
  }
  return "Pending";
}

json container_status_json(const ContainerRecord& r, const json& spec) {
  json state = json::object(), last_state = json::object();
  auto terminated_json = [](const Termination& t) {
    json j = {{"exitCode", t.exit_code},
              {"reason", t.reason},
              {"startedAt", time_or_null(t.started_at)},
              {"finishedAt", time_or_null(t.finished_at)}};
    if (!t.message.empty()) j["message"] = t.message;
    if (!t.container_id.empty()) j["containerID"] = t.container_id;
    if (t.signal) j["signal"] = t.signal;
    return j;
  };
  switch (r.state) {
    case ContainerRecord::State::Running:
      state["running"] = {{"startedAt", time_or_null(r.started_at)}};
      if (r.last) last_state["terminated"] = terminated_json(*r.last);
      break;
    case ContainerRecord::State::Terminated:
      if (r.terminated) state["terminated"] = terminated_json(*r.terminated);
      if (r.last) last_state["terminated"] = terminated_json(*r.last);
      break;
    case ContainerRecord::State::Waiting: {
      json w = {{"reason", r.waiting_reason}};
      if (!r.waiting_message.empty()) w["message"] = r.waiting_message;
      state["waiting"] = w;
      if (r.terminated) last_state["terminated"] = terminated_json(*r.terminated);
      else if (r.last) last_state["terminated"] = terminated_json(*r.last);
      break;
    }
  }
  json j = {{"name", r.name},
            {"state", state},
            {"lastState", last_state},
            {"ready", r.ready},
            {"restartCount", r.restart_count},
            {"image", r.image.empty() ? jstr(spec, {"image"}) : r.image},
            {"imageID", r.image_id},
            {"started", r.state == ContainerRecord::State::Running && r.started}};
  // containerID: the most recent instance's ("runc://<id>"), also while waiting to restart it.
  if (r.ever_created && !r.id.empty()) j["containerID"] = r.id;
  if (r.ever_created && r.state != ContainerRecord::State::Waiting) {
    const json& mounts = at(spec, {"volumeMounts"});
    if (mounts.is_array() && !mounts.empty()) {
      json vm = json::array();
      for (const auto& m : mounts) {
        json e = {{"name", jstr(m, {"name"})}, {"mountPath", jstr(m, {"mountPath"})}};
        if (jbool(m, {"readOnly"})) {
          e["readOnly"] = true;
          e["recursiveReadOnly"] = "Disabled";
        }
        vm.push_back(e);
      }
      j["volumeMounts"] = vm;
    }
  }
  return j;
}

json compute_pod_status(const json& pod, const PodRecord& rec, const StatusInputs& in, Clock::time_point now_tp) {
  std::string now = format_time(now_tp);
  if (rec.rejected) {
    // The kubelet's rejectPod: phase, reason and message only (the status manager adds the start
    // time); no conditions or container statuses, since nothing of the pod was set up here.
    json status = {{"phase", "Failed"}, {"reason", rec.reason}, {"message", rec.message}};
    std::string qos = jstr(pod, {"status", "qosClass"});
    if (!qos.empty()) status["qosClass"] = qos;
    if (rec.start_time != Clock::time_point{}) status["startTime"] = format_time(rec.start_time);
    return status;
  }
  bool all_stopped = std::none_of(rec.containers.begin(), rec.containers.end(),
                                  [](const ContainerRecord& c) { return c.state == ContainerRecord::State::Running; }) &&
                     std::none_of(rec.init_containers.begin(), rec.init_containers.end(),
                                  [](const ContainerRecord& c) { return c.state == ContainerRecord::State::Running; });
  bool pod_is_terminal = in.deleting && all_stopped;
  std::string phase = compute_phase(pod, rec, pod_is_terminal);
  // An eviction by the agent itself (activeDeadlineSeconds) fails the pod at once, while its
  // containers are still being stopped, as the kubelet's pod sync handlers do.
  if (rec.terminal && !rec.reason.empty()) phase = "Failed";
  // A phase never leaves Succeeded or Failed: the kubelet keeps a terminal phase it finds in the API.
  std::string api_phase = jstr(pod, {"status", "phase"});
  if (phase != "Succeeded" && phase != "Failed" && (api_phase == "Succeeded" || api_phase == "Failed")) phase = api_phase;

  const json& previous = at(pod, {"status", "conditions"});
  auto condition = [&](const char* type, bool ok, const std::string& reason, const std::string& message) {
    std::string status = ok ? "True" : "False";
    std::string transition = now;
    if (previous.is_array())
      for (const auto& c : previous)
        if (jstr(c, {"type"}) == type && jstr(c, {"status"}) == status && !jstr(c, {"lastTransitionTime"}).empty())
          transition = jstr(c, {"lastTransitionTime"});
    json c = {{"type", type}, {"status", status}, {"lastProbeTime", nullptr}, {"lastTransitionTime", transition}};
    if (!reason.empty()) c["reason"] = reason;
    if (!message.empty()) c["message"] = message;
    return c;
  };

  // Initialized
  bool regular_started = std::any_of(rec.containers.begin(), rec.containers.end(),
                                     [](const ContainerRecord& c) { return c.ever_created; });
  std::vector<std::string> incomplete;
  for (const auto& c : rec.init_containers) {
    bool ok = c.sidecar ? ((c.state == ContainerRecord::State::Running && c.started) || regular_started)
                        : (c.state == ContainerRecord::State::Terminated && c.terminated && c.terminated->exit_code == 0);
    if (!ok) incomplete.push_back(c.name);
  }
  bool initialized = incomplete.empty() || regular_started;

  // ContainersReady / Ready
  std::vector<std::string> unready;
  for (const auto& c : rec.init_containers)
    if (c.sidecar && !c.ready) unready.push_back(c.name);
  for (const auto& c : rec.containers)
    if (!c.ready) unready.push_back(c.name);
  bool containers_ready = unready.empty();
  std::string cr_reason, cr_message;
  if (!containers_ready) {
    if (phase == "Succeeded") cr_reason = "PodCompleted";
    else {
      cr_reason = "ContainersNotReady";
      cr_message = "containers with unready status: " + go_list(unready);
    }
  }
  bool ready = containers_ready;
  std::string r_reason = cr_reason, r_message = cr_message;
  if (ready) {
    const json& gates = at(pod, {"spec", "readinessGates"});
    if (gates.is_array()) {
      std::vector<std::string> msgs;
      for (const auto& g : gates) {
        std::string type = jstr(g, {"conditionType"});
        const json* found = nullptr;
        if (previous.is_array())
          for (const auto& c : previous)
            if (jstr(c, {"type"}) == type) found = &c;
        if (!found) msgs.push_back("corresponding condition of pod readiness gate \"" + type + "\" does not exist.");
        else if (jstr(*found, {"status"}) != "True")
          msgs.push_back("the status of pod readiness gate \"" + type + "\" is not \"True\", but " + jstr(*found, {"status"}));
      }
      if (!msgs.empty()) {
        ready = false;
        r_reason = "ReadinessGatesNotReady";
        r_message.clear();
        for (std::size_t i = 0; i < msgs.size(); ++i) r_message += (i ? ", " : "") + msgs[i];
      }
    }
  }

  json conditions = json::array();
  conditions.push_back(condition("PodReadyToStartContainers", rec.sandbox_ready, "", ""));
  conditions.push_back(condition("Initialized", initialized, initialized ? "" : "ContainersNotInitialized",
                                 initialized ? "" : "containers with incomplete status: " + go_list(incomplete)));
  conditions.push_back(condition("Ready", ready, r_reason, r_message));
  conditions.push_back(condition("ContainersReady", containers_ready, cr_reason, cr_message));
  conditions.push_back(condition("PodScheduled", true, "", ""));

  json status = {{"phase", phase}, {"conditions", conditions}};
  if (rec.terminal && !rec.reason.empty()) {
    status["reason"] = rec.reason;
    status["message"] = rec.message;
  }
  if (!in.host_ip.empty()) {
    status["hostIP"] = in.host_ip;
    status["hostIPs"] = json::array({{{"ip", in.host_ip}}});
  }
  std::vector<std::string> ips = rec.pod_ips;
  if (jbool(pod, {"spec", "hostNetwork"}) && !in.host_ip.empty()) ips = {in.host_ip};
  if (!ips.empty()) {
    status["podIP"] = ips[0];
    json arr = json::array();
    for (const auto& ip : ips) arr.push_back({{"ip", ip}});
    status["podIPs"] = arr;
  }
  if (rec.start_time != Clock::time_point{}) status["startTime"] = format_time(rec.start_time);
  auto statuses = [&](const char* list, const std::vector<ContainerRecord>& recs) {
    json arr = json::array();
    const json& specs = at(pod, {"spec", list});
    if (!specs.is_array()) return arr;
    for (const auto& spec : specs) {
      std::string cname = jstr(spec, {"name"});
      for (const auto& r : recs)
        if (r.name == cname) arr.push_back(container_status_json(r, spec));
    }
    return arr;
  };
  status["containerStatuses"] = statuses("containers", rec.containers);
  if (!rec.init_containers.empty()) status["initContainerStatuses"] = statuses("initContainers", rec.init_containers);
  std::string qos = jstr(pod, {"status", "qosClass"});
  if (!qos.empty()) status["qosClass"] = qos;
  return status;
}

}  // namespace berth::nodeagent
