#include "nodeagent/pod_worker.h"

#include <dirent.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <future>

#include "client/client.h"
#include "nodeagent/container_spec.h"
#include "nodeagent/events.h"
#include "nodeagent/images/images.h"
#include "nodeagent/logs.h"
#include "nodeagent/network.h"
#include "nodeagent/runtime.h"
#include "nodeagent/volumes.h"

namespace berth::nodeagent {

std::string raw_container_id(const std::string& id) {
  auto pos = id.find("://");
  return pos == std::string::npos ? id : id.substr(pos + 3);
}

namespace {

constexpr auto kPollRunning = std::chrono::seconds(2);
constexpr auto kPollIdle = std::chrono::seconds(30);
constexpr auto kRetryErrors = std::chrono::seconds(10);

std::string millis_duration(std::chrono::nanoseconds d) {
  return go_duration(std::chrono::duration_cast<std::chrono::milliseconds>(d));
}

int64_t dir_size(const std::string& path) {
  int64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(path, std::filesystem::directory_options::skip_permission_denied, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code e2;
    if (it->is_regular_file(e2) && !it->is_symlink(e2)) total += static_cast<int64_t>(it->file_size(e2));
  }
  return total;
}

// The registry host an image reference names ("docker.io" for "busybox").
std::string registry_of(const std::string& image) {
  auto ref = images::parse_reference(image);
  return ref ? ref->domain : "";
}

std::string normalize_registry_key(std::string key) {
  for (const char* scheme : {"https://", "http://"})
    if (starts_with(key, scheme)) key = key.substr(std::strlen(scheme));
  key = key.substr(0, key.find('/'));
  if (key == "index.docker.io" || key == "registry-1.docker.io") key = "docker.io";
  return key;
}

// The kubelet restarts a container whose definition changed (kubectl set image on a pod); resources
// are left out, as with in-place resize.
std::string container_spec_hash(const json& spec) {
  json c = spec;
  c.erase("resources");
  c.erase("resizePolicy");
  return sha256_hex(c.dump()).substr(0, 16);
}

}  // namespace

PodWorker::PodWorker(AgentContext& ctx, std::string uid, std::optional<PodRecord> restored)
    : ctx_(ctx), uid_(std::move(uid)) {
  if (restored) {
    rec_ = std::move(*restored);
    have_record_ = true;
  }
  rec_.uid = uid_;
  snapshot_rec_ = rec_;
  inactive_ = rec_.terminal && !any_running();
}

std::shared_ptr<const json> PodWorker::admitted_pod() {
  if (finished_ || inactive_) return nullptr;
  std::lock_guard lock(mu_);
  return first_pod_;
}

PodWorker::~PodWorker() { stop(); }

void PodWorker::start() { thread_ = std::thread([this] { run(); }); }

void PodWorker::update(const json& pod) {
  std::lock_guard lock(mu_);
  pod_ = pod;
  if (!first_pod_) first_pod_ = std::make_shared<const json>(pod);
  dirty_ = true;
  cv_.notify_all();
}

void PodWorker::removed() {
  std::lock_guard lock(mu_);
  removed_ = true;
  dirty_ = true;
  cv_.notify_all();
}

void PodWorker::poke() {
  std::lock_guard lock(mu_);
  dirty_ = true;
  cv_.notify_all();
}

void PodWorker::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable() && std::this_thread::get_id() != thread_.get_id()) thread_.join();
}

void PodWorker::wake_at(Clock::time_point t) {
  if (next_wake_ == Clock::time_point{} || t < next_wake_) next_wake_ = t;
}

std::string PodWorker::pod_dir() const { return ctx_.pods_dir + "/" + uid_; }

std::string PodWorker::log_path(const ContainerRecord& rec, int restart_count) const {
  return container_log_path(ctx_.logs_dir, rec_.ns, rec_.name, uid_, rec.name, restart_count);
}

const json* PodWorker::spec_of(const json& pod, const std::string& name, bool init) const {
  const json& list = at(pod, {"spec", init ? "initContainers" : "containers"});
  if (list.is_array())
    for (const auto& c : list)
      if (jstr(c, {"name"}) == name) return &c;
  return nullptr;
}

void PodWorker::persist() {
  // Written (and fsynced) only when something changed: workers re-check running pods every 2 s.
  std::string text = rec_.to_json().dump();
  if (text != persisted_ || !exists(pod_dir() + "/state.json")) {
    mkdir_p(pod_dir(), 0750);
    if (write_file_atomic(pod_dir() + "/state.json", text, 0600)) persisted_ = std::move(text);
  }
  std::lock_guard lock(snapshot_mu_);
  snapshot_rec_ = rec_;
}

void PodWorker::run() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      auto ready = [&] { return stopping_ || dirty_; };
      if (next_wake_ == Clock::time_point{}) cv_.wait(lock, ready);
      else if (!cv_.wait_until(lock, next_wake_, ready)) dirty_ = true;  // the timed wake
      if (stopping_) return;
      if (!pod_ && !removed_) {
        // Restored from the state directory: wait for the agent's first list to say what it is.
        next_wake_ = Clock::time_point{};
        dirty_ = false;
        continue;
      }
      dirty_ = false;
    }
    next_wake_ = Clock::time_point{};
    try {
      sync();
    } catch (const std::exception& e) {
      BERTH_LOGE("pod %s/%s: sync failed: %s", rec_.ns.c_str(), rec_.name.c_str(), e.what());
      wake_at(Clock::now() + kRetryErrors);
    }
    {
      std::lock_guard lock(snapshot_mu_);
      snapshot_rec_ = rec_;
    }
    inactive_ = rec_.terminal && !any_running();
    if (finished_) return;
    if (next_wake_ == Clock::time_point{}) next_wake_ = Clock::now() + kPollIdle;
  }
}

void PodWorker::sync() {
  json pod;
  bool removed;
  {
    std::lock_guard lock(mu_);
    removed = removed_;
    if (pod_) pod = *pod_;
  }
  if (!have_record_) have_record_ = true;
  if (!pod.is_null()) rec_.sync_with_spec(pod);
  if (pod.is_null()) {
    // Known only from our state directory: enough of a pod to tear it down.
    pod = {{"metadata", {{"uid", uid_}, {"namespace", rec_.ns}, {"name", rec_.name}}}, {"spec", json::object()}};
  }
  if (removed || at(pod, {"metadata", "deletionTimestamp"}).is_string() || rec_.deleting) {
    terminate(pod, removed);
    return;
  }
  sync_running(pod);
}

void PodWorker::refresh_containers(const json& pod) {
  for (auto* list : {&rec_.init_containers, &rec_.containers}) {
    for (auto& r : *list) {
      if (r.id.empty() || r.state == ContainerRecord::State::Terminated) continue;
      if (r.state == ContainerRecord::State::Waiting && (r.terminated || !r.ever_created)) continue;
      std::string raw = raw_container_id(r.id);
      ContainerInfo info = ctx_.runtime->inspect(raw);
      const json* spec = spec_of(pod, r.name, r.init);
      switch (info.state) {
        case ContainerInfo::State::Running:
          if (r.state != ContainerRecord::State::Running) {
            r.state = ContainerRecord::State::Running;
            if (r.started_at == Clock::time_point{}) r.started_at = Clock::now();
          }
          break;
        case ContainerInfo::State::Created: {
          // Created but never started (the agent stopped in between): start it now.
          auto st = ctx_.runtime->start(raw);
          if (st) {
            r.state = ContainerRecord::State::Running;
            r.started_at = Clock::now();
            bool has_readiness = spec && at(*spec, {"readinessProbe"}).is_object();
            bool has_startup = spec && at(*spec, {"startupProbe"}).is_object();
            r.ready = !has_readiness;
            r.started = !has_startup;
          } else {
            Termination t{128, "StartError", st.message(), Clock::now(), Clock::now(), r.id, 0};
            r.terminated = t;
            r.state = ContainerRecord::State::Terminated;
          }
          break;
        }
        case ContainerInfo::State::Stopped:
        case ContainerInfo::State::NotFound: {
          Termination t;
          t.container_id = r.id;
          t.started_at = r.started_at;
          if (info.state == ContainerInfo::State::NotFound) {
            t.exit_code = 137;
            t.reason = "ContainerStatusUnknown";
            t.message = "The container could not be located when the pod was terminated";
            t.finished_at = Clock::now();
          } else {
            const ContainerExit& e = *info.exit;
            t.exit_code = e.exit_code;
            t.finished_at = e.finished_at;
            t.reason = e.oom_killed ? "OOMKilled" : e.exit_code == 0 ? "Completed" : "Error";
            if (!e.known) {
              t.reason = "ContainerStatusUnknown";
              t.message = "The container exited while the node agent was not running; its exit code is unknown";
            }
            if (t.exit_code > 128 && t.exit_code < 160) t.signal = 0;  // kubelet reports no signal from CRI
          }
          // terminationMessagePath, then FallbackToLogsOnError.
          if (!r.termination_log.empty()) {
            auto msg = read_file(r.termination_log);
            if (msg && !msg->empty()) t.message = msg->substr(0, 4096);
          }
          if (t.message.empty() && t.exit_code != 0 && spec &&
              jstr(*spec, {"terminationMessagePolicy"}) == "FallbackToLogsOnError") {
            LogOptions o;
            o.tail_lines = 80;
            o.limit_bytes = 12 * 1024;
            auto text = read_log(log_path(r, r.restart_count), o);
            if (text) t.message = *text;
          }
          r.terminated = t;
          r.state = ContainerRecord::State::Terminated;
          r.ready = false;
          r.started = false;
          probes_.erase(r.name);
          BERTH_LOGI("pod %s/%s: container %s exited with code %d (%s)", rec_.ns.c_str(), rec_.name.c_str(),
                     r.name.c_str(), t.exit_code, t.reason.c_str());
          break;
        }
      }
    }
  }
}

api::Status PodWorker::setup_sandbox(const json& pod) {
  std::string dir = pod_dir();
  if (auto st = mkdir_p(dir, 0750); !st) return st;
  bool host_network = jbool(pod, {"spec", "hostNetwork"});
  if (!host_network) {
    auto res = ctx_.network->setup(uid_, rec_.ns, rec_.name, uid_, host_port_mappings(pod));
    if (!res) return res.take_status();
    rec_.pod_ips = res->ips;
  } else {
    rec_.pod_ips = {ctx_.host_ip};
  }
  if (!jbool(pod, {"spec", "hostIPC"})) {
    auto ipc = ctx_.network->ensure_ipc_namespace(uid_);
    if (!ipc) return ipc.take_status();
    std::string shm = dir + "/shm";
    mkdir_p(shm, 01777);
    if (!is_mounted(shm) && ::mount("shm", shm.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k") != 0)
      return api::Status(api::Reason::InternalError, "mount shm: " + std::string(std::strerror(errno)));
  }
  std::string hosts = managed_hosts_file(pod, rec_.pod_ips.empty() ? "" : rec_.pod_ips[0], host_network,
                                         read_file_or("/etc/hosts"));
  write_file_atomic(dir + "/etc-hosts", hosts, 0644);
  std::string hostname = host_network ? trim(read_file_or("/etc/hostname", "localhost")) : pod_hostname(pod);
  write_file_atomic(dir + "/etc-hostname", hostname + "\n", 0644);
  write_file_atomic(dir + "/resolv.conf", pod_resolv_conf(pod, read_file_or("/etc/resolv.conf"), ctx_.cluster_dns), 0644);
  rec_.sandbox_ready = true;
  persist();
  return {};
}

void PodWorker::teardown_sandbox() {
  auto st = ctx_.network->teardown(uid_, rec_.ns, rec_.name, uid_);
  if (!st) BERTH_LOGW("pod %s/%s: network teardown: %s", rec_.ns.c_str(), rec_.name.c_str(), st.message().c_str());
  ctx_.network->remove_ipc_namespace(uid_);
  unmount_all(pod_dir() + "/shm");
  rec_.sandbox_ready = false;
}

void PodWorker::maybe_start(const json& pod, ContainerRecord& r, const json& spec) {
  auto now = Clock::now();
  std::string key = r.name;
  if (auto it = event_throttle_.find("retry:" + key); it != event_throttle_.end() && it->second > now) {
    wake_at(it->second);
    return;
  }
  if (r.terminated) {
    Clock::time_point finished = r.terminated->finished_at;
    if (container_backoff_.in_backoff_since(key, finished, now)) {
      std::string backoff = go_duration(container_backoff_.get(key));
      r.state = ContainerRecord::State::Waiting;
      r.waiting_reason = "CrashLoopBackOff";
      r.waiting_message = "back-off " + backoff + " restarting failed container=" + r.name + " pod=" + format_pod(pod);
      r.ready = false;
      auto& last_event = backoff_event_at_[key];
      if (last_event < finished) {
        last_event = now;
        ctx_.events->pod_event(pod, container_field_path(pod, r.name), "Warning", "BackOff",
                               "Back-off restarting failed container " + r.name + " in pod " + format_pod(pod));
      }
      wake_at(container_backoff_.ready_at(key, finished));
      return;
    }
    container_backoff_.next(key, finished, now);
  }
  if (!start_container(pod, r, spec)) {
    auto retry = Clock::now() + kRetryErrors;
    // Pulls follow the image back-off instead (start_container wakes us when it ends), so the
    // next sync shows ImagePullBackOff at once, as the kubelet's does after its status update.
    bool pull_backoff = r.waiting_reason == "ErrImagePull" || r.waiting_reason == "ImagePullBackOff";
    if (r.state == ContainerRecord::State::Waiting && !pull_backoff) {
      event_throttle_["retry:" + key] = retry;
      wake_at(retry);
    }
  } else {
    event_throttle_.erase("retry:" + key);
  }
}

bool PodWorker::start_container(const json& pod_in, ContainerRecord& r, const json& spec) {
  auto now = Clock::now();
  // The pod as the container sees it: with the addresses we know even before the API does.
  json pod = pod_in;
  if (!rec_.pod_ips.empty()) {
    pod["status"]["podIP"] = rec_.pod_ips[0];
    json ips = json::array();
    for (const auto& ip : rec_.pod_ips) ips.push_back({{"ip", ip}});
    pod["status"]["podIPs"] = ips;
  }
  pod["status"]["hostIP"] = ctx_.host_ip;
  pod["status"]["hostIPs"] = json::array({{{"ip", ctx_.host_ip}}});
  std::string field = container_field_path(pod, r.name);
  std::string image_ref = jstr(spec, {"image"});
  auto fail = [&](const std::string& reason, const std::string& message) {
    r.state = ContainerRecord::State::Waiting;
    r.waiting_reason = reason;
    r.waiting_message = message;
    r.ready = false;
    return false;
  };
  auto event = [&](const std::string& type, const std::string& reason, const std::string& message) {
    ctx_.events->pod_event(pod, field, type, reason, message);
  };

  // ---- image ----
  if (!ctx_.images) return fail("ErrImagePull", "this node has no image store");
  std::string policy = jstr(spec, {"imagePullPolicy"});
  std::string image_key = uid_ + "_" + image_ref;
  images::Image image;
  bool have = false;
  if (policy != "Always") {
    auto found = ctx_.images->find(image_ref);
    if (found) {
      image = std::move(*found);
      have = true;
      event("Normal", "Pulled", "Container image \"" + image_ref + "\" already present on machine");
    }
  }
  if (!have) {
    if (policy != "Never") {
      if (image_backoff_.in_backoff_since_update(image_key, now)) {
        std::string msg = "Back-off pulling image \"" + image_ref + "\"";
        event("Normal", "BackOff", msg);
        wake_at(image_backoff_.ready_after_update(image_key));
        // The waiting message carries the last pull's error, as the kubelet's image manager does.
        auto prev = prev_pull_error_.find(image_key);
        return fail("ImagePullBackOff", prev == prev_pull_error_.end() ? msg : msg + ": " + prev->second);
      }
      prev_pull_error_.erase(image_key);
      event("Normal", "Pulling", "Pulling image \"" + image_ref + "\"");
    }
    // Pull credentials from imagePullSecrets for the image's registry.
    std::vector<images::PullAuth> auths;
    const json& secrets = at(pod, {"spec", "imagePullSecrets"});
    std::string registry = registry_of(image_ref);
    if (secrets.is_array()) {
      for (const auto& s : secrets) {
        auto secret = ctx_.objects->secret(rec_.ns, jstr(s, {"name"}));
        if (!secret) continue;
        json config;
        std::string type = jstr(*secret, {"type"});
        if (at(*secret, {"data", ".dockerconfigjson"}).is_string()) {
          config = json::parse(base64_decode(jstr(*secret, {"data", ".dockerconfigjson"})), nullptr, false);
          config = at(config, {"auths"});
        } else if (at(*secret, {"data", ".dockercfg"}).is_string()) {
          config = json::parse(base64_decode(jstr(*secret, {"data", ".dockercfg"})), nullptr, false);
        }
        if (!config.is_object()) continue;
        for (const auto& [k, v] : config.items()) {
          if (normalize_registry_key(k) != registry) continue;
          images::PullAuth a;
          a.username = jstr(v, {"username"});
          a.password = jstr(v, {"password"});
          a.token = jstr(v, {"identitytoken"});
          if (a.username.empty() && !jstr(v, {"auth"}).empty()) {
            std::string up = base64_decode(jstr(v, {"auth"}));
            auto colon = up.find(':');
            a.username = up.substr(0, colon);
            if (colon != std::string::npos) a.password = up.substr(colon + 1);
          }
          auths.push_back(a);
        }
      }
    }
    auto t0 = SteadyClock::now();
    auto pulled = ctx_.images->ensure(image_ref, policy, auths);
    if (!pulled) {
      std::string reason = images::waiting_reason(pulled.status());
      std::string msg = pulled.status().message();
      if (reason == "ErrImageNeverPull") {
        event("Warning", "ErrImageNeverPull", msg);
        return fail(reason, msg);
      }
      if (reason == "InvalidImageName") {
        event("Warning", "InspectFailed", msg);
        event("Warning", "Failed", "Error: InvalidImageName");
        return fail(reason, msg);
      }
      // The kubelet sees pull errors through CRI's gRPC, so its messages carry the status code.
      msg = std::string("rpc error: code = ") +
            (pulled.status().reason() == api::Reason::NotFound ? "NotFound" : "Unknown") + " desc = " + msg;
      event("Warning", "Failed", "Failed to pull image \"" + image_ref + "\": " + msg);
      event("Warning", "Failed", "Error: ErrImagePull");
      image_backoff_.next(image_key, now, now);
      prev_pull_error_[image_key] = "ErrImagePull: " + msg;
      wake_at(image_backoff_.ready_after_update(image_key));
      return fail("ErrImagePull", msg);
    }
    image = std::move(*pulled);
    if (policy != "Never") {
      auto took = SteadyClock::now() - t0;
      int64_t size = 0;
      for (const auto& d : image.layer_dirs) size += dir_size(d);
      event("Normal", "Pulled",
            "Successfully pulled image \"" + image_ref + "\" in " + millis_duration(took) + " (" + millis_duration(took) +
                " including waiting). Image size: " + std::to_string(size) + " bytes.");
    }
  }

  // ---- configuration ----
  std::vector<std::string> skipped;
  auto env = container_env(pod, spec, *ctx_.objects, ctx_.node_allocatable, &skipped);
  for (const auto& s : skipped) event("Warning", "InvalidEnvironmentVariableNames", s);
  if (!env) {
    event("Warning", "Failed", "Error: " + env.status().message());
    return fail("CreateContainerConfigError", env.status().message());
  }
  std::string passwd, group;
  for (auto it = image.layer_dirs.rbegin(); it != image.layer_dirs.rend(); ++it) {
    if (passwd.empty() && exists(*it + "/etc/passwd")) passwd = read_file_or(*it + "/etc/passwd");
    if (group.empty() && exists(*it + "/etc/group")) group = read_file_or(*it + "/etc/group");
  }
  auto user = resolve_user(pod, spec, image.config.user, passwd, group);
  if (!user) {
    event("Warning", "Failed", "Error: " + user.status().message());
    return fail("CreateContainerConfigError", user.status().message());
  }
  auto args = container_process_args(spec, image.config.entrypoint, image.config.cmd, *env);
  if (args.empty()) {
    std::string msg = "failed to generate container spec: no command specified";
    event("Warning", "Failed", "Error: " + msg);
    return fail("CreateContainerError", msg);
  }

  int new_restart = r.ever_created ? r.restart_count + 1 : 0;
  std::string rid = random_hex(32);
  std::string log = log_path(r, new_restart);
  mkdir_p(log.substr(0, log.rfind('/')), 0755);
  std::string term_dir = pod_dir() + "/containers/" + r.name;
  mkdir_p(term_dir, 0755);
  std::string term_log = term_dir + "/" + random_hex(4);
  write_file(term_log, "", 0666);

  bool host_network = jbool(pod, {"spec", "hostNetwork"});
  bool host_ipc = jbool(pod, {"spec", "hostIPC"});
  OciSpec oci;
  oci.args = args;
  oci.env = merge_env(image.config.env, *env);
  bool has_path = std::any_of(oci.env.begin(), oci.env.end(), [](const std::string& e) { return starts_with(e, "PATH="); });
  if (!has_path) oci.env.insert(oci.env.begin(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  oci.env.push_back("HOSTNAME=" + (host_network ? trim(read_file_or("/etc/hostname", "localhost")) : pod_hostname(pod)));
  oci.cwd = jstr(spec, {"workingDir"}, image.config.working_dir.empty() ? "/" : image.config.working_dir);
  oci.uid = user->uid;
  oci.gid = user->gid;
  oci.additional_gids = user->additional_gids;
  oci.hostname = host_network ? "" : pod_hostname(pod);
  oci.host_network = host_network;
  if (!host_network) oci.netns_path = ctx_.network->netns_path(uid_);
  oci.host_ipc = host_ipc;
  if (!host_ipc) {
    auto ipc = ctx_.network->ensure_ipc_namespace(uid_);
    if (ipc) oci.ipc_path = *ipc;
  }
  oci.host_pid = jbool(pod, {"spec", "hostPID"});
  oci.cgroup_namespace = ctx_.cgroup_v2;
  std::set<std::string> targets;
  const json& mounts = at(spec, {"volumeMounts"});
  if (mounts.is_array())
    for (const auto& m : mounts) targets.insert(jstr(m, {"mountPath"}));
  auto add_bind = [&](const std::string& dest, const std::string& src, bool ro) {
    if (targets.count(dest)) return;
    oci.mounts.push_back({dest, src, "bind", {"rbind", "rprivate", ro ? "ro" : "rw"}});
  };
  add_bind("/etc/hosts", pod_dir() + "/etc-hosts", false);
  add_bind("/etc/hostname", pod_dir() + "/etc-hostname", false);
  add_bind("/etc/resolv.conf", pod_dir() + "/resolv.conf", false);
  if (!host_ipc) oci.mounts.push_back({"/dev/shm", pod_dir() + "/shm", "bind", {"rbind", "rprivate", "rw"}});
  else oci.mounts.push_back({"/dev/shm", "/dev/shm", "bind", {"rbind", "rprivate", "rw"}});
  std::string term_path = jstr(spec, {"terminationMessagePath"}, "/dev/termination-log");
  if (!term_path.empty()) add_bind(term_path, term_log, false);
  if (mounts.is_array()) {
    for (const auto& m : mounts) {
      std::string vname = jstr(m, {"name"});
      auto it = volumes_.find(vname);
      if (it == volumes_.end()) {
        std::string msg = "cannot find volume \"" + vname + "\" to mount into container \"" + r.name + "\"";
        event("Warning", "Failed", "Error: " + msg);
        return fail("CreateContainerConfigError", msg);
      }
      std::string src = it->second;
      std::string sub = jstr(m, {"subPath"});
      std::string sub_expr = jstr(m, {"subPathExpr"});
      if (!sub_expr.empty()) {
        sub = expand_vars(sub_expr, [&](const std::string& k) -> std::optional<std::string> {
          for (auto e = env->rbegin(); e != env->rend(); ++e)
            if (e->first == k) return e->second;
          return std::nullopt;
        });
      }
      if (!sub.empty()) {
        if (sub.find("..") != std::string::npos || sub[0] == '/') {
          std::string msg = "failed to prepare subPath for volumeMount \"" + vname + "\" of container \"" + r.name + "\"";
          event("Warning", "Failed", "Error: " + msg);
          return fail("CreateContainerConfigError", msg);
        }
        src += "/" + sub;
        if (!exists(src)) mkdir_p(src, 0755);
      }
      std::string prop = jstr(m, {"mountPropagation"}, "None");
      std::string prop_opt = prop == "HostToContainer" ? "rslave" : prop == "Bidirectional" ? "rshared" : "rprivate";
      oci.mounts.push_back({jstr(m, {"mountPath"}), src, "bind", {"rbind", prop_opt, jbool(m, {"readOnly"}) ? "ro" : "rw"}});
    }
  }
  const json& sc = at(spec, {"securityContext"});
  oci.readonly_rootfs = jbool(sc, {"readOnlyRootFilesystem"});
  oci.privileged = jbool(sc, {"privileged"});
  for (const char* which : {"add", "drop"}) {
    const json& caps = at(sc, {"capabilities", which});
    if (caps.is_array())
      for (const auto& c : caps)
        (std::string(which) == "add" ? oci.cap_add : oci.cap_drop).push_back(c.is_string() ? c.get<std::string>() : "");
  }
  if (at(sc, {"allowPrivilegeEscalation"}).is_boolean() && !sc["allowPrivilegeEscalation"].get<bool>())
    oci.no_new_privileges = true;
  CgroupResources res = container_cgroup_resources(spec);
  oci.cpu_shares = res.cpu_shares;
  oci.cpu_quota = res.cpu_quota;
  oci.cpu_period = res.cpu_period;
  oci.memory_limit = res.memory_limit;
  std::string qos = pod_qos_class(pod);
  oci.cgroups_path = pod_cgroup_parent(ctx_.cgroup_root, qos, uid_) + "/" + rid;
  oci.oom_score_adj = oom_score_adj(qos, spec, ctx_.memory_capacity);
  const json& sysctls = at(pod, {"spec", "securityContext", "sysctls"});
  if (sysctls.is_array())
    for (const auto& s : sysctls) oci.sysctls[jstr(s, {"name"})] = jstr(s, {"value"});
  oci.annotations = {{"io.kubernetes.pod.name", rec_.name},
                     {"io.kubernetes.pod.namespace", rec_.ns},
                     {"io.kubernetes.pod.uid", uid_},
                     {"io.kubernetes.container.name", r.name},
                     {"io.kubernetes.container.restartCount", std::to_string(new_restart)}};

  CreateRequest req;
  req.id = rid;
  req.config = build_oci_config(oci);
  req.layer_dirs = image.layer_dirs;
  req.log_path = log;
  auto created = ctx_.runtime->create(req);
  if (!created) {
    event("Warning", "Failed", "Error: " + created.message());
    return fail("CreateContainerError", created.message());
  }

  // The new instance: the previous one becomes lastState; the one before that goes.
  if (!r.prev_id.empty()) ctx_.runtime->remove(raw_container_id(r.prev_id));
  if (r.ever_created) {
    // Keep the logs of this instance and the previous one only.
    for (int n = 0; n <= new_restart - 2; ++n) ::unlink(log_path(r, n).c_str());
  }
  if (r.terminated) r.last = r.terminated;
  r.terminated.reset();
  r.prev_id = r.ever_created ? r.id : "";
  if (!r.termination_log.empty() && r.termination_log != term_log) ::unlink(r.termination_log.c_str());
  r.id = ctx_.runtime_name + "://" + rid;
  r.restart_count = new_restart;
  r.ever_created = true;
  r.image = image_ref;
  r.image_id = image.repo_digest.empty() ? image.digest : image.repo_digest;
  r.termination_log = term_log;
  r.spec_hash = container_spec_hash(spec);
  r.state = ContainerRecord::State::Waiting;
  r.waiting_reason = "ContainerCreating";
  r.waiting_message.clear();
  persist();
  event("Normal", "Created", "Created container: " + r.name);

  auto started = ctx_.runtime->start(rid);
  if (!started) {
    r.state = ContainerRecord::State::Terminated;
    r.terminated = Termination{128, "StartError", started.message(), Clock::now(), Clock::now(), r.id, 0};
    persist();
    event("Warning", "Failed", "Error: " + started.message());
    return true;  // an instance ran (and failed): restartPolicy and back-off decide what follows
  }
  r.state = ContainerRecord::State::Running;
  r.started_at = Clock::now();
  r.ready = !at(spec, {"readinessProbe"}).is_object();
  r.started = !at(spec, {"startupProbe"}).is_object();
  probes_.erase(r.name);
  persist();
  event("Normal", "Started", "Started container " + r.name);
  BERTH_LOGI("pod %s/%s: started container %s (%s, restartCount %d)", rec_.ns.c_str(), rec_.name.c_str(),
             r.name.c_str(), r.id.c_str(), r.restart_count);

  const json& post_start = at(spec, {"lifecycle", "postStart"});
  if (post_start.is_object()) {
    ProbeTarget target{rec_.pod_ips.empty() ? ctx_.host_ip : rec_.pod_ips[0], rid, ctx_.runtime, &spec};
    auto result = run_handler(post_start, target, std::chrono::seconds(jint(pod, {"spec", "terminationGracePeriodSeconds"}, 30)));
    if (!result.ok() && result.kind != ProbeResult::Kind::Unknown) {
      event("Warning", "FailedPostStartHook", "PostStartHook failed");
      kill_container(pod, r, &spec, 2, "FailedPostStartHook");
      refresh_containers(pod);
    }
  }
  return true;
}

void PodWorker::kill_container(const json& pod, ContainerRecord& r, const json* spec, int grace_seconds,
                               const std::string& message) {
  if (r.id.empty() || r.state != ContainerRecord::State::Running) return;
  std::string raw = raw_container_id(r.id);
  if (grace_seconds < 2) grace_seconds = 2;
  auto deadline = SteadyClock::now() + std::chrono::seconds(grace_seconds);
  ctx_.events->pod_event(pod, container_field_path(pod, r.name), "Normal", "Killing", message);
  if (spec) {
    const json& pre_stop = at(*spec, {"lifecycle", "preStop"});
    if (pre_stop.is_object()) {
      ProbeTarget target{rec_.pod_ips.empty() ? ctx_.host_ip : rec_.pod_ips[0], raw, ctx_.runtime, spec};
      auto result = run_handler(pre_stop, target, std::chrono::seconds(grace_seconds));
      if (!result.ok() && result.kind != ProbeResult::Kind::Unknown)
        ctx_.events->pod_event(pod, container_field_path(pod, r.name), "Warning", "FailedPreStopHook",
                               "PreStopHook failed");
    }
  }
  auto stopped = [&] {
    auto s = ctx_.runtime->inspect(raw).state;
    return s == ContainerInfo::State::Stopped || s == ContainerInfo::State::NotFound;
  };
  if (!stopped()) {
    ctx_.runtime->kill(raw, SIGTERM);
    while (SteadyClock::now() < deadline && !stopped()) ::usleep(100 * 1000);
  }
  if (!stopped()) {
    ctx_.runtime->kill(raw, SIGKILL);
    for (int i = 0; i < 100 && !stopped(); ++i) ::usleep(100 * 1000);
  }
}

void PodWorker::run_probes(const json& pod) {
  auto now = Clock::now();
  std::string ip = rec_.pod_ips.empty() ? ctx_.host_ip : rec_.pod_ips[0];
  for (auto* list : {&rec_.init_containers, &rec_.containers}) {
    for (auto& r : *list) {
      if (r.state != ContainerRecord::State::Running || (r.init && !r.sidecar)) continue;
      const json* spec = spec_of(pod, r.name, r.init);
      if (!spec) continue;
      for (const char* kind : {"startupProbe", "livenessProbe", "readinessProbe"}) {
        const json& probe = at(*spec, {kind});
        if (!probe.is_object()) continue;
        std::string k = kind;
        if (k != "startupProbe" && at(*spec, {"startupProbe"}).is_object() && !r.started) continue;
        if (k == "startupProbe" && r.started) continue;
        ProbeState& st = probes_[r.name][k];
        if (!st.initialized) {
          st.initialized = true;
          st.next = r.started_at + std::chrono::seconds(jint(probe, {"initialDelaySeconds"}, 0));
        }
        if (now < st.next) {
          wake_at(st.next);
          continue;
        }
        st.next = now + std::chrono::seconds(std::max<int64_t>(1, jint(probe, {"periodSeconds"}, 10)));
        wake_at(st.next);
        ProbeTarget target{ip, raw_container_id(r.id), ctx_.runtime, spec};
        auto result = run_handler(probe, target, std::chrono::seconds(std::max<int64_t>(1, jint(probe, {"timeoutSeconds"}, 1))));
        std::string title = k == "startupProbe" ? "Startup" : k == "livenessProbe" ? "Liveness" : "Readiness";
        if (result.ok()) {
          st.failures = 0;
          if (++st.successes >= std::max<int64_t>(1, jint(probe, {"successThreshold"}, 1))) st.result = true;
        } else {
          st.successes = 0;
          ++st.failures;
          std::string msg = trim(result.message);
          ctx_.events->pod_event(pod, container_field_path(pod, r.name), "Warning", "Unhealthy",
                                 title + " probe failed: " + msg);
          if (st.failures >= std::max<int64_t>(1, jint(probe, {"failureThreshold"}, 3))) st.result = false;
        }
        if (k == "readinessProbe") {
          r.ready = st.result;
        } else if (k == "startupProbe") {
          if (st.result) r.started = true;
          else if (st.failures >= std::max<int64_t>(1, jint(probe, {"failureThreshold"}, 3))) {
            int grace = static_cast<int>(jint(probe, {"terminationGracePeriodSeconds"},
                                              jint(pod, {"spec", "terminationGracePeriodSeconds"}, 30)));
            kill_container(pod, r, spec, grace, "Container " + r.name + " failed startup probe, will be restarted");
            probes_.erase(r.name);
            break;
          }
        } else if (st.failures >= std::max<int64_t>(1, jint(probe, {"failureThreshold"}, 3))) {
          int grace = static_cast<int>(jint(probe, {"terminationGracePeriodSeconds"},
                                            jint(pod, {"spec", "terminationGracePeriodSeconds"}, 30)));
          kill_container(pod, r, spec, grace, "Container " + r.name + " failed liveness probe, will be restarted");
          probes_.erase(r.name);
          break;
        }
      }
    }
  }
}

void PodWorker::sync_running(json& pod) {
  auto now = Clock::now();
  if (rec_.start_time == Clock::time_point{}) {
    rec_.start_time = now;
    persist();
  }
  std::string api_phase = jstr(pod, {"status", "phase"});
  bool any_created = std::any_of(rec_.containers.begin(), rec_.containers.end(), [](auto& c) { return c.ever_created; }) ||
                     std::any_of(rec_.init_containers.begin(), rec_.init_containers.end(), [](auto& c) { return c.ever_created; });
  if ((api_phase == "Succeeded" || api_phase == "Failed") && !any_created && !rec_.terminal) {
    // Finished before we knew it (an earlier agent, state lost): never run it again.
    rec_.terminal = true;
    persist();
    return;
  }
  refresh_containers(pod);
  if (rec_.terminal) {
    if (rec_.sandbox_ready || any_running()) stop_terminal_pod(pod);  // an agent restart mid-stop
    publish_status(pod);
    return;
  }

  // activeDeadlineSeconds, counted from the start time we reported (the kubelet's
  // activeDeadlineHandler): the pod fails and everything in it is stopped.
  if (auto deadline = active_deadline(pod, rec_.start_time)) {
    if (now >= *deadline) {
      BERTH_LOGI("pod %s/%s: active deadline exceeded", rec_.ns.c_str(), rec_.name.c_str());
      ctx_.events->pod_event(pod, "", "Normal", kDeadlineExceededReason, kDeadlineExceededMessage);
      rec_.terminal = true;
      rec_.reason = kDeadlineExceededReason;
      rec_.message = kDeadlineExceededMessage;
      persist();
      publish_status(pod);  // Failed at once; the containers' ends follow
      stop_terminal_pod(pod);
      persist();
      publish_status(pod);
      return;
    }
    wake_at(*deadline);
  }

  // Volumes: set up once, then refreshed (ConfigMap/Secret/downward API contents) every minute,
  // as the kubelet's periodic resync does, rather than on every container poll.
  if (!volumes_ready_ || now >= volumes_refresh_at_) {
    auto vols = ctx_.volumes->setup(pod, ctx_.node_allocatable);
    if (!vols) {
      auto& at = event_throttle_["FailedMount"];
      if (now - at > std::chrono::minutes(1)) {
        at = now;
        ctx_.events->pod_event(pod, "", "Warning", "FailedMount", vols.status().message());
      }
      if (!volumes_ready_) {
        publish_status(pod);
        wake_at(now + kRetryErrors);
        return;
      }
      volumes_refresh_at_ = now + kRetryErrors;  // running containers keep what they have
    } else {
      volumes_ = *vols;
      volumes_ready_ = true;
      volumes_refresh_at_ = now + std::chrono::seconds(60);
    }
  }

  if (!rec_.sandbox_ready) {
    auto st = setup_sandbox(pod);
    if (!st) {
      auto& at = event_throttle_["FailedCreatePodSandBox"];
      if (now - at > std::chrono::seconds(30)) {
        at = now;
        ctx_.events->pod_event(pod, "", "Warning", "FailedCreatePodSandBox",
                               "Failed to create pod sandbox: " + st.message());
      }
      BERTH_LOGW("pod %s/%s: sandbox: %s", rec_.ns.c_str(), rec_.name.c_str(), st.message().c_str());
      publish_status(pod);
      wake_at(now + kRetryErrors);
      return;
    }
  }

  std::string policy = jstr(pod, {"spec", "restartPolicy"}, "Always");
  bool init_done = true;
  const json& inits = at(pod, {"spec", "initContainers"});
  if (inits.is_array()) {
    for (const auto& spec : inits) {
      ContainerRecord* r = rec_.find(jstr(spec, {"name"}), true);
      if (!r) continue;
      if (r->sidecar) {
        if (r->state != ContainerRecord::State::Running) maybe_start(pod, *r, spec);
        if (r->state == ContainerRecord::State::Running && r->started) continue;
        if (std::any_of(rec_.containers.begin(), rec_.containers.end(), [](auto& c) { return c.ever_created; })) continue;
        init_done = false;
        break;
      }
      if (r->state == ContainerRecord::State::Terminated && r->terminated && r->terminated->exit_code == 0) continue;
      init_done = false;
      if (r->state == ContainerRecord::State::Running) break;
      bool failed = r->terminated && r->terminated->exit_code != 0;
      if (failed && policy == "Never") {
        r->state = ContainerRecord::State::Terminated;
        rec_.terminal = true;
        break;
      }
      maybe_start(pod, *r, spec);
      break;
    }
  }
  if (init_done && !rec_.terminal) {
    const json& containers = at(pod, {"spec", "containers"});
    if (containers.is_array()) {
      for (const auto& spec : containers) {
        ContainerRecord* r = rec_.find(jstr(spec, {"name"}), false);
        if (!r) continue;
        if (r->state == ContainerRecord::State::Running && !r->spec_hash.empty() &&
            r->spec_hash != container_spec_hash(spec)) {
          kill_container(pod, *r, &spec, static_cast<int>(jint(pod, {"spec", "terminationGracePeriodSeconds"}, 30)),
                         "Container " + r->name + " definition changed, will be restarted");
          refresh_containers(pod);
          if (r->terminated) container_backoff_.reset(r->name);  // a changed definition restarts at once
          if (r->state != ContainerRecord::State::Running) maybe_start(pod, *r, spec);
          continue;
        }
        if (r->state == ContainerRecord::State::Running) continue;
        if (!r->terminated) {
          maybe_start(pod, *r, spec);  // never ran, or could not be created yet
          continue;
        }
        int code = r->terminated->exit_code;
        bool restart = policy == "Always" || (policy == "OnFailure" && code != 0);
        if (restart) maybe_start(pod, *r, spec);
        else r->state = ContainerRecord::State::Terminated;
      }
    }
  }
  if (!rec_.terminal) {
    std::string phase = compute_phase(pod, rec_, false);
    if (phase == "Succeeded" || phase == "Failed") rec_.terminal = true;
  }
  if (rec_.terminal) {
    stop_terminal_pod(pod);
    BERTH_LOGI("pod %s/%s: %s", rec_.ns.c_str(), rec_.name.c_str(), compute_phase(pod, rec_, false).c_str());
  } else {
    run_probes(pod);
    refresh_containers(pod);  // a liveness kill ends a container
  }
  persist();
  publish_status(pod);
  bool running = false;
  for (auto* list : {&rec_.init_containers, &rec_.containers})
    for (auto& r : *list)
      if (r.state == ContainerRecord::State::Running) running = true;
  if (running) wake_at(Clock::now() + kPollRunning);
}

bool PodWorker::any_running() const {
  for (const auto* list : {&rec_.init_containers, &rec_.containers})
    for (const auto& r : *list)
      if (r.state == ContainerRecord::State::Running) return true;
  return false;
}

void PodWorker::stop_terminal_pod(const json& pod) {
  // Sidecars and anything else still running stop with the pod (in parallel, as the kubelet
  // kills a pod's containers); the sandbox goes too.
  stop_running_containers(pod, jint(pod, {"spec", "terminationGracePeriodSeconds"}, 30));
  if (rec_.sandbox_ready) teardown_sandbox();
}

void PodWorker::stop_running_containers(const json& pod, int64_t grace) {
  std::vector<std::future<void>> kills;
  for (auto* list : {&rec_.init_containers, &rec_.containers})
    for (auto& r : *list)
      if (r.state == ContainerRecord::State::Running) {
        const json* spec = spec_of(pod, r.name, r.init);
        kills.push_back(std::async(std::launch::async, [this, &pod, &r, spec, grace] {
          kill_container(pod, r, spec, static_cast<int>(grace), "Stopping container " + r.name);
        }));
      }
  for (auto& k : kills) k.wait();
  refresh_containers(pod);
  for (auto* list : {&rec_.init_containers, &rec_.containers})
    for (auto& r : *list)
      if (r.state == ContainerRecord::State::Waiting && r.terminated) r.state = ContainerRecord::State::Terminated;
}

void PodWorker::cleanup_all() {
  for (auto* list : {&rec_.init_containers, &rec_.containers}) {
    for (auto& r : *list) {
      for (const auto& id : {r.id, r.prev_id})
        if (!id.empty()) {
          auto st = ctx_.runtime->remove(raw_container_id(id));
          if (!st) BERTH_LOGW("pod %s/%s: remove container %s: %s", rec_.ns.c_str(), rec_.name.c_str(), id.c_str(), st.message().c_str());
        }
    }
  }
  teardown_sandbox();
  ctx_.volumes->teardown(uid_);
  // The pod's cgroup directories (runc removes the containers' own).
  std::string qos_parent;
  for (const char* qos : {"Guaranteed", "Burstable", "BestEffort"}) {
    std::string parent = pod_cgroup_parent(ctx_.cgroup_root, qos, uid_);
    if (ctx_.cgroup_v2) {
      ::rmdir(("/sys/fs/cgroup" + parent).c_str());
      continue;
    }
    if (DIR* d = ::opendir("/sys/fs/cgroup")) {
      while (dirent* e = ::readdir(d)) {
        std::string ctl = e->d_name;
        if (ctl == "." || ctl == "..") continue;
        ::rmdir(("/sys/fs/cgroup/" + ctl + parent).c_str());
      }
      ::closedir(d);
    }
  }
  remove_all(pod_log_dir(ctx_.logs_dir, rec_.ns, rec_.name, uid_));
  unmount_all(pod_dir() + "/shm");
  remove_all(pod_dir());
}

void PodWorker::terminate(const json& pod, bool deleted_from_api) {
  if (!rec_.deleting) {
    rec_.deleting = true;
    persist();
  }
  refresh_containers(pod);
  int64_t grace = jint(pod, {"metadata", "deletionGracePeriodSeconds"}, -1);
  if (grace < 0) grace = jint(pod, {"spec", "terminationGracePeriodSeconds"}, 30);
  stop_running_containers(pod, grace);
  rec_.terminal = true;
  persist();
  if (!deleted_from_api) publish_status(pod);
  cleanup_all();
  if (!deleted_from_api && at(pod, {"metadata", "deletionTimestamp"}).is_string()) {
    json options = {{"apiVersion", "v1"},
                    {"kind", "DeleteOptions"},
                    {"gracePeriodSeconds", 0},
                    {"preconditions", {{"uid", uid_}}}};
    auto r = ctx_.client->remove("/api/v1/namespaces/" + rec_.ns + "/pods/" + rec_.name, options);
    if (!r && r.status().reason() != api::Reason::NotFound && r.status().reason() != api::Reason::Conflict) {
      BERTH_LOGW("pod %s/%s: final delete failed (will retry): %s", rec_.ns.c_str(), rec_.name.c_str(),
                 r.status().message().c_str());
      mkdir_p(pod_dir(), 0750);
      persist();
      wake_at(Clock::now() + std::chrono::seconds(2));
      return;
    }
  }
  BERTH_LOGI("pod %s/%s: terminated and cleaned up", rec_.ns.c_str(), rec_.name.c_str());
  finished_ = true;
}

void PodWorker::publish_status(const json& pod) {
  StatusInputs in;
  in.host_ip = ctx_.host_ip;
  in.deleting = rec_.deleting;
  json status = compute_pod_status(pod, rec_, in, Clock::now());
  if (status == last_sent_status_) return;
  if (last_sent_status_.is_null()) {
    // After a restart: nothing to send when the API already shows exactly this.
    json current = at(pod, {"status"});
    if (current.is_object()) {
      json cmp = current;
      bool same = true;
      for (const auto& [k, v] : status.items())
        if (cmp[k] != v) same = false;
      if (same) {
        last_sent_status_ = status;
        return;
      }
    }
  }
  json patch = {{"metadata", {{"uid", uid_}}}, {"status", status}};
  auto r = ctx_.client->patch("/api/v1/namespaces/" + rec_.ns + "/pods/" + rec_.name + "/status", patch,
                              "application/strategic-merge-patch+json");
  if (r) {
    last_sent_status_ = status;
    status_failures_ = 0;
    return;
  }
  if (r.status().reason() == api::Reason::NotFound) {
    std::lock_guard lock(mu_);
    removed_ = true;
    dirty_ = true;
    return;
  }
  ++status_failures_;
  BERTH_LOGW("pod %s/%s: status update failed: %s", rec_.ns.c_str(), rec_.name.c_str(), r.status().message().c_str());
  wake_at(Clock::now() + std::chrono::seconds(std::min(10, 1 << std::min(status_failures_, 3))));
}

PodSnapshot PodWorker::snapshot() {
  PodRecord rec;
  {
    std::lock_guard lock(snapshot_mu_);
    rec = snapshot_rec_;
  }
  PodSnapshot s;
  s.uid = rec.uid;
  s.ns = rec.ns;
  s.name = rec.name;
  s.start_time = rec.start_time;
  for (const char* qos : {"Burstable", "BestEffort", "Guaranteed"}) {
    std::string parent = pod_cgroup_parent(ctx_.cgroup_root, qos, uid_);
    std::string probe = ctx_.cgroup_v2 ? "/sys/fs/cgroup" + parent : "/sys/fs/cgroup/cpuacct" + parent;
    if (exists(probe)) s.cgroup_parent = parent;
  }
  for (auto* list : {&rec.init_containers, &rec.containers}) {
    for (const auto& r : *list) {
      PodSnapshot::Container c;
      c.name = r.name;
      c.id = r.ever_created ? raw_container_id(r.id) : "";
      c.running = r.state == ContainerRecord::State::Running;
      c.started_at = r.started_at;
      c.restart_count = r.restart_count;
      c.has_previous = !r.prev_id.empty() || (r.ever_created && r.restart_count > 0);
      c.init = r.init;
      if (!s.cgroup_parent.empty() && !c.id.empty()) c.cgroup = s.cgroup_parent + "/" + c.id;
      s.containers.push_back(c);
    }
  }
  return s;
}

}  // namespace berth::nodeagent
