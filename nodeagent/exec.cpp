#include "nodeagent/exec.h"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace berth::nodeagent {

namespace {

// Channel numbers of the remote command protocol: the first three are the stdio descriptors.
constexpr char kStdin = 0, kStdout = 1, kStderr = 2, kError = 3, kResize = 4;
constexpr unsigned char kCloseStream = 255;  // v5: [255, channel] closes a stream

constexpr const char* kV5 = "v5.channel.k8s.io";
constexpr const char* kV4 = "v4.channel.k8s.io";
constexpr const char* kV1 = "channel.k8s.io";

bool flag(const net::Request& request, std::string_view name) {
  auto v = request.param(name);
  if (!v) return false;
  return *v == "1" || *v == "t" || *v == "T" || *v == "true" || *v == "TRUE" || *v == "True";
}

std::string message(char channel, std::string_view data) {
  std::string m;
  m.reserve(data.size() + 1);
  m.push_back(channel);
  m.append(data);
  return m;
}

// Go's %v of a []string: "[sh -c exit 3]".
std::string go_list(const std::vector<std::string>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? " " : "") + v[i];
  return out + "]";
}

json internal_error_status(const std::string& error) {
  return {{"metadata", json::object()},
          {"status", "Failure"},
          {"message", "Internal error occurred: " + error},
          {"reason", "InternalError"},
          {"details", {{"causes", json::array({{{"message", error}}})}}},
          {"code", 500}};
}

// What the session and its threads share; the threads keep it alive after the session goes.
struct Shared {
  std::mutex mu;
  std::vector<std::string> out;  // messages for the client
  bool done = false;
  std::function<void()> wake;

  std::condition_variable stdin_cv;
  std::deque<std::string> stdin_queue;
  bool stdin_closed = false;

  std::atomic<int> pty{-1};  // the terminal's master (tty); the reader thread closes it
  pid_t pid = -1;
  std::atomic<bool> exited{false};
  std::atomic<bool> client_gone{false};

  void push(std::string m) {
    std::function<void()> w;
    {
      std::lock_guard lock(mu);
      out.push_back(std::move(m));
      w = wake;
    }
    if (w) w();
  }
  void finish() {
    std::function<void()> w;
    {
      std::lock_guard lock(mu);
      done = true;
      w = wake;
    }
    if (w) w();
  }
  void close_stdin() {
    {
      std::lock_guard lock(mu);
      stdin_closed = true;
    }
    stdin_cv.notify_all();
  }
};

class ExecSession final : public net::Tunnel {
 public:
  ExecSession(ExecRequest request, int version, std::vector<std::string> argv, std::string failure)
      : req_(std::move(request)), version_(version), argv_(std::move(argv)), failure_(std::move(failure)),
        s_(std::make_shared<Shared>()) {}
  ~ExecSession() override { stop(); }

  void start(std::function<void()> wake) override {
    {
      std::lock_guard lock(s_->mu);
      s_->wake = std::move(wake);
    }
    // An empty message on the lowest channel the client reads tells it the streams are up,
    // as the kubelet does.
    s_->push(std::string(1, req_.output ? kStdout : req_.error ? kStderr : kError));
    if (!failure_.empty()) {
      s_->push(message(kError, internal_error_status(failure_).dump()));
      s_->finish();
      return;
    }
    if (auto st = spawn(); !st) {
      s_->push(message(kError, internal_error_status("error executing command in container: " + st.message()).dump()));
      s_->finish();
    }
  }

  void receive(std::string data) override {
    if (data.empty()) return;
    const unsigned char channel = static_cast<unsigned char>(data[0]);
    if (channel == kStdin) {
      if (!req_.input || data.size() == 1) return;
      {
        std::lock_guard lock(s_->mu);
        if (s_->stdin_closed) return;
        s_->stdin_queue.push_back(data.substr(1));
      }
      s_->stdin_cv.notify_all();
    } else if (channel == kResize) {
      resize(std::string_view(data).substr(1));
    } else if (channel == kCloseStream && version_ >= 5 && data.size() >= 2 && data[1] == kStdin) {
      s_->close_stdin();
    }
  }

  State poll(std::vector<std::string>& out) override {
    std::lock_guard lock(s_->mu);
    for (auto& m : s_->out) out.push_back(std::move(m));
    s_->out.clear();
    return s_->done ? State::Done : State::Wait;
  }

  void client_closed() override { end(); }
  void stop() override { end(); }

 private:
  // The client is gone: stdin ends, and the command is asked to end (the runtime passes the
  // signal on); the reader thread kills the runtime if that does not do.
  void end() {
    if (s_->client_gone.exchange(true)) return;
    s_->close_stdin();
    if (s_->pid > 0 && !s_->exited) ::kill(s_->pid, SIGTERM);
  }

  void resize(std::string_view body) {
    if (!req_.tty || s_->pty < 0) return;
    json size = json::parse(body, nullptr, false);
    if (!size.is_object()) return;
    struct winsize ws {};
    ws.ws_col = static_cast<unsigned short>(size.value("Width", 0));
    ws.ws_row = static_cast<unsigned short>(size.value("Height", 0));
    if (ws.ws_col == 0 || ws.ws_row == 0) return;
    ::ioctl(s_->pty, TIOCSWINSZ, &ws);
    // The runtime copies the size to the container's terminal when told the window changed.
    if (s_->pid > 0 && !s_->exited) ::kill(s_->pid, SIGWINCH);
  }

  api::Status spawn() {
    // The command's stdio: a terminal of ours (the runtime makes the container's own from it
    // and copies between them), or pipes; /dev/null for what the client did not ask for.
    std::vector<int> close_after;
    auto fail = [&](const std::string& what) {
      int e = errno;
      for (int fd : close_after) ::close(fd);
      return api::Status(api::Reason::InternalError, what + ": " + std::strerror(e));
    };
    int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd < 0) return fail("/dev/null");
    close_after.push_back(null_fd);
    int child[3] = {null_fd, null_fd, null_fd};
    int stdin_fd = -1, out_fd = -1, err_fd = -1;
    if (req_.tty) {
      int master = -1, slave = -1;
      if (::openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) return fail("openpty");
      ::fcntl(master, F_SETFD, FD_CLOEXEC);
      ::fcntl(slave, F_SETFD, FD_CLOEXEC);
      // Raw on our side: line editing and echo happen on the container's terminal.
      struct termios t {};
      if (::tcgetattr(slave, &t) == 0) {
        ::cfmakeraw(&t);
        ::tcsetattr(slave, TCSANOW, &t);
      }
      close_after.push_back(slave);
      child[0] = child[1] = child[2] = slave;
      s_->pty = master;
      out_fd = master;
      if (req_.input) stdin_fd = ::dup(master);
    } else {
      int p[2];
      if (req_.input) {
        if (::pipe2(p, O_CLOEXEC) != 0) return fail("pipe");
        child[0] = p[0];
        close_after.push_back(p[0]);
        stdin_fd = p[1];
      }
      if (req_.output) {
        if (::pipe2(p, O_CLOEXEC) != 0) return fail("pipe");
        child[1] = p[1];
        close_after.push_back(p[1]);
        out_fd = p[0];
      }
      if (req_.error) {
        if (::pipe2(p, O_CLOEXEC) != 0) return fail("pipe");
        child[2] = p[1];
        close_after.push_back(p[1]);
        err_fd = p[0];
      }
    }
    auto pid = Reaper::instance().spawn(argv_, {}, {{0, child[0]}, {1, child[1]}, {2, child[2]}}, true);
    for (int fd : close_after) ::close(fd);
    if (!pid) {
      for (int fd : {stdin_fd, out_fd, err_fd})
        if (fd >= 0) ::close(fd);
      s_->pty = -1;
      return pid.status();
    }
    s_->pid = *pid;
    BERTH_LOGI("exec %s (pid %d, tty %d)", go_list(req_.command).c_str(), static_cast<int>(*pid), req_.tty ? 1 : 0);
    if (stdin_fd >= 0) std::thread(stdin_loop, s_, stdin_fd, req_.tty).detach();
    std::thread(output_loop, s_, out_fd, err_fd, req_.tty ? kStdout : kStderr, version_, req_.command).detach();
    return {};
  }

  // Writes what the client sends to the command's stdin until it closes it (v5), goes away,
  // or the command stops reading.
  static void stdin_loop(std::shared_ptr<Shared> s, int fd, bool tty) {
    for (;;) {
      std::string chunk;
      {
        std::unique_lock lock(s->mu);
        s->stdin_cv.wait(lock, [&] { return !s->stdin_queue.empty() || s->stdin_closed || s->exited; });
        if (s->stdin_queue.empty()) break;
        chunk = std::move(s->stdin_queue.front());
        s->stdin_queue.pop_front();
      }
      std::string_view rest = chunk;
      while (!rest.empty()) {
        ssize_t n = ::write(fd, rest.data(), rest.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          ::close(fd);
          return;
        }
        rest.remove_prefix(static_cast<std::size_t>(n));
      }
    }
    // A terminal has no end of input but the EOF character.
    if (tty && !s->exited && !s->client_gone) {
      char eof = 4;
      (void)!::write(fd, &eof, 1);
    }
    ::close(fd);
  }

  // Relays the command's output until it ends, then waits for its exit and sends the status.
  static void output_loop(std::shared_ptr<Shared> s, int out_fd, int err_fd, char err_channel, int version,
                          std::vector<std::string> command) {
    std::optional<int> status;
    auto killed_at = std::chrono::steady_clock::time_point::max();
    std::optional<std::chrono::steady_clock::time_point> drained_since;
    std::vector<char> buf(32 * 1024);
    for (;;) {
      pollfd fds[2];
      int n = 0;
      if (out_fd >= 0) fds[n++] = {out_fd, POLLIN, 0};
      if (err_fd >= 0) fds[n++] = {err_fd, POLLIN, 0};
      if (n == 0 && status) break;
      int ready = n ? ::poll(fds, static_cast<nfds_t>(n), 100) : (std::this_thread::sleep_for(std::chrono::milliseconds(100)), 0);
      bool got = false;
      for (int i = 0; i < n && ready > 0; ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t r = ::read(fds[i].fd, buf.data(), buf.size());
        if (r < 0 && errno == EINTR) continue;
        if (r > 0) {
          got = true;
          s->push(message(fds[i].fd == out_fd ? kStdout : err_channel, std::string_view(buf.data(), static_cast<std::size_t>(r))));
          continue;
        }
        // End of output (EIO from a terminal whose other side is closed).
        if (fds[i].fd == s->pty) s->pty = -1;
        ::close(fds[i].fd);
        if (fds[i].fd == out_fd) out_fd = -1;
        else err_fd = -1;
      }
      if (!status) {
        status = Reaper::instance().try_wait(s->pid);
        if (status) s->exited = true, s->stdin_cv.notify_all();
      }
      if (status) {
        // A background process of the command may hold its output open: once the command
        // has exited, what is left is read until it stops coming.
        if (got) drained_since.reset();
        else if (!drained_since) drained_since = std::chrono::steady_clock::now();
        else if (std::chrono::steady_clock::now() - *drained_since > std::chrono::milliseconds(200)) break;
        continue;
      }
      if (s->client_gone) {
        auto now = std::chrono::steady_clock::now();
        if (killed_at == std::chrono::steady_clock::time_point::max()) killed_at = now;
        if (now - killed_at > std::chrono::seconds(5)) ::kill(s->pid, SIGKILL);
      }
    }
    for (int fd : {out_fd, err_fd})
      if (fd >= 0) ::close(fd);
    s->pty = -1;
    int code = exit_code_of(*status);
    BERTH_LOGI("exec %s exited with %d", go_list(command).c_str(), code);
    if (version >= 4) {
      s->push(message(kError, exec_exit_status(command, code, version)));
    } else if (code != 0) {
      s->push(message(kError, "command terminated with non-zero exit code: error executing command " + go_list(command) +
                                  ", exit code " + std::to_string(code)));
    }
    s->finish();
  }

  ExecRequest req_;
  int version_;
  std::vector<std::string> argv_;
  std::string failure_;
  std::shared_ptr<Shared> s_;
};

}  // namespace

ExecRequest parse_exec_request(const net::Request& request) {
  ExecRequest r;
  for (const auto& [k, v] : request.query)
    if (k == "command") r.command.push_back(v);
  r.input = flag(request, "input");
  r.output = flag(request, "output");
  r.error = flag(request, "error");
  r.tty = flag(request, "tty");
  return r;
}

std::optional<std::string> choose_exec_protocol(const std::vector<std::string>& offered) {
  if (offered.empty()) return std::string();
  for (const auto& p : offered)
    if (p == kV5 || p == kV4 || p == kV1) return p;
  return std::nullopt;
}

std::string exec_exit_status(const std::vector<std::string>& command, int exit_code, int version) {
  json status = {{"metadata", json::object()}, {"status", "Success"}};
  if (exit_code != 0) {
    status["status"] = "Failure";
    status["reason"] = "NonZeroExitCode";
    // The kubelet's words for the runtime's error; v5 clients get them as Kubernetes' stream
    // translator in the API server rewords what its v4 client made of them.
    status["message"] = version >= 5 ? "command terminated with non-zero exit code: command terminated with exit code " +
                                           std::to_string(exit_code)
                                     : "command terminated with non-zero exit code: error executing command " +
                                           go_list(command) + ", exit code " + std::to_string(exit_code);
    status["details"] = {{"causes", json::array({{{"reason", "ExitCode"}, {"message", std::to_string(exit_code)}}})}};
  }
  return status.dump();
}

net::Response serve_exec(Runtime& runtime, const PodSnapshot* pod, const std::string& container,
                         const net::Request& request) {
  ExecRequest req = parse_exec_request(request);
  if (req.tty) req.error = false;  // a terminal has one output stream
  // The kubelet's answers before a command runs.
  int code = 0;
  std::string failure;
  const PodSnapshot::Container* c = nullptr;
  if (!req.input && !req.output && !req.error) {
    code = 400, failure = "you must specify at least 1 of stdin, stdout, stderr";
  } else if (!pod) {
    code = 404, failure = "pod does not exist";
  } else {
    // The pod worker may not have seen the container exit yet: the runtime has the last word.
    for (const auto& x : pod->containers)
      if (x.name == container && !x.id.empty() && x.running &&
          runtime.inspect(x.id).state == ContainerInfo::State::Running)
        c = &x;
    if (!c) code = 500, failure = "container not found (\"" + container + "\")";
    else if (req.command.empty()) code = 400, failure = "missing command";
  }
  auto text = [](int status, std::string body) { return net::Response::text(status, std::move(body) + "\n"); };
  if (!net::is_websocket_upgrade(request)) {
    if (failure.empty()) {
      code = 400;
      failure = net::is_upgrade(request) ? "unable to upgrade: only WebSocket (v5.channel.k8s.io, v4.channel.k8s.io) is served"
                                         : "Upgrade request required";
    }
    return text(code, failure);
  }
  auto protocol = choose_exec_protocol(net::websocket_protocols(request));
  if (!protocol) {
    std::string offered;
    for (const auto& p : net::websocket_protocols(request)) offered += (offered.empty() ? "" : " ") + p;
    return text(403, "requested protocol(s) are not supported: [" + offered + "]; supports [" + kV5 + " " + kV4 + " " +
                         kV1 + "]");
  }
  const int version = *protocol == kV5 ? 5 : *protocol == kV4 ? 4 : 1;
  std::shared_ptr<ExecSession> session;
  if (!failure.empty()) {
    // A v5 client meets these after the upgrade, on the error channel, as Kubernetes' stream
    // translator in the API server reports a kubelet that refused: older clients get the
    // kubelet's own answer.
    if (version < 5) return text(code, failure);
    session = std::make_shared<ExecSession>(req, version, std::vector<std::string>{},
                                            "unable to upgrade connection: " + failure);
  } else {
    session = std::make_shared<ExecSession>(req, version, runtime.exec_command(c->id, req.command, req.tty), "");
  }
  net::Response r;
  r.status = 101;
  r.upgrade = net::Response::Upgrade::WebSocket;
  r.tunnel = std::move(session);
  if (!protocol->empty()) r.headers.emplace_back("Sec-WebSocket-Protocol", *protocol);
  return r;
}

}  // namespace berth::nodeagent
