// The per-container shim (`berth agent __shim --id ID --bundle DIR --log FILE [--start]
// [--private-cgroup2] -- <runtime argv>`).
// It runs in its own session so it outlives the agent, and is the child subreaper of the
// container: `<runtime> create` forks the init, exits, and the init is re-parented here.
//   1. runs `<runtime argv> create --bundle DIR --pid-file DIR/init.pid ID` with stdout/stderr on pipes
//      (`run --detach` instead with --start: one runtime process per container rather than two,
//      which is most of a container's start time with runc; the init starts at once);
//   2. answers the agent on fd 3: "ok <init pid>" or "error <runtime's message>";
//   3. copies the pipes into the CRI log until the init exits and the pipes drain;
//   4. writes DIR/exit: {"exitCode", "finishedAt"}.
// Single-threaded, and it does not use the agent's Reaper: it waits on its own children.
// --private-cgroup2 is crun's hybrid-cgroup workaround (crun refuses a host with cgroup v1
// controllers plus a cgroup2 hierarchy at /sys/fs/cgroup/unified): the runtime process alone gets
// a private mount namespace without that hierarchy. Done here between fork and exec instead of
// through `unshare -m ... sh -c 'umount ...; exec crun'`, which costs three more execs per call.
// The shim itself stays in the host's mount namespace, so it pins none of the host's mounts.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "nodeagent/logs.h"
#include "nodeagent/runtime.h"

namespace berth::nodeagent {

namespace {

void write_fd(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

}  // namespace

int shim_main(int argc, char** argv) {
  std::string id, bundle, log_path;
  std::vector<std::string> runtime;
  bool start = false, private_cgroup2 = false;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--start") {
      start = true;
      continue;
    }
    if (a == "--private-cgroup2") {
      private_cgroup2 = true;
      continue;
    }
    if (a == "--") {
      for (int j = i + 1; j < argc; ++j) runtime.push_back(argv[j]);
      break;
    }
    if (i + 1 >= argc) break;
    if (a == "--id") id = argv[++i];
    else if (a == "--bundle") bundle = argv[++i];
    else if (a == "--log") log_path = argv[++i];
  }
  if (id.empty() || bundle.empty() || log_path.empty() || runtime.empty()) {
    write_fd(3, "error shim: missing --id, --bundle, --log or the runtime command\n");
    return 2;
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  ::prctl(PR_SET_NAME, "berth-shim", 0, 0, 0);
  // SIGCHLD is blocked except inside ppoll(), with a handler that does nothing: a child's exit
  // (the runtime's create, the init) then ends the wait at once instead of at the next timeout,
  // without the race of checking waitpid() just before a signal arrives. The agent waits for
  // our "ok" after the runtime exits, so that timeout was on every container's start-up path.
  struct sigaction chld {};
  chld.sa_handler = [](int) {};
  sigemptyset(&chld.sa_mask);
  ::sigaction(SIGCHLD, &chld, nullptr);
  sigset_t with_chld, wait_mask;
  sigemptyset(&with_chld);
  sigaddset(&with_chld, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &with_chld, &wait_mask);
  sigdelset(&wait_mask, SIGCHLD);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);

  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    write_fd(3, std::string("error shim: pipe: ") + std::strerror(errno) + "\n");
    return 1;
  }
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::string pid_file = bundle + "/init.pid";
  ::unlink(pid_file.c_str());
  std::vector<std::string> args = runtime;
  if (start) {
    for (const char* a : {"run", "--detach"}) args.push_back(a);
  } else {
    args.push_back("create");
  }
  args.push_back("--bundle");
  args.push_back(bundle);
  args.push_back("--pid-file");
  args.push_back(pid_file);
  args.push_back(id);
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  // fork rather than posix_spawn: the child may have to change its mount namespace before exec.
  // The shim is single-threaded, so everything is safe to call in the child.
  int report[2];  // the child's errno when it fails before exec (close-on-exec: EOF means exec'd)
  if (::pipe2(report, O_CLOEXEC) != 0) {
    write_fd(3, std::string("error shim: pipe: ") + std::strerror(errno) + "\n");
    return 1;
  }
  pid_t create_pid = ::fork();
  if (create_pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    for (int s : {SIGPIPE, SIGHUP, SIGINT, SIGTERM, SIGCHLD}) signal(s, SIG_DFL);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(devnull, 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::close(3);
    int e = 0;
    if (private_cgroup2) {
      if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
          ::umount2("/sys/fs/cgroup/unified", MNT_DETACH) != 0)
        e = errno;
    }
    if (e == 0) {
      ::execvp(cargs[0], cargs.data());
      e = errno;
    }
    ssize_t ignored = ::write(report[1], &e, sizeof(e));
    (void)ignored;
    ::_exit(127);
  }
  ::close(report[1]);
  int rc = create_pid < 0 ? errno : 0;
  if (create_pid > 0) {
    int e = 0;
    ssize_t n;
    while ((n = ::read(report[0], &e, sizeof(e))) < 0 && errno == EINTR) {
    }
    if (n == static_cast<ssize_t>(sizeof(e))) {
      rc = e;
      ::waitpid(create_pid, nullptr, 0);
    }
  }
  ::close(report[0]);
  ::close(out[1]);
  ::close(err[1]);
  ::close(devnull);
  if (rc != 0) {
    write_fd(3, "error " + runtime[0] + (private_cgroup2 ? " (private mount namespace)" : "") + ": " +
                    std::strerror(rc) + "\n");
    return 1;
  }

  CriLogFile log(log_path);
  CriLineSplitter split_out("stdout"), split_err("stderr");
  std::vector<CriRecord> records;
  // What came on stdout/stderr while the runtime ran: its error, if any, or (with `run --detach`)
  // the container's first output, kept apart so stderr lines stay stderr in the log.
  std::string create_output, create_errors;
  bool creating = true;
  pid_t init_pid = -1;
  bool out_open = true, err_open = true;
  bool init_exited = false;
  int init_status = 0;
  Clock::time_point finished_at{};
  SteadyClock::time_point exited_steady{};
  // With `run --detach` the init can exit (and be reaped here) before the runtime process does,
  // that is before we know its pid: keep such exits until then, or the shim waits forever.
  std::map<pid_t, std::pair<int, Clock::time_point>> early_exits;  // pid -> status, when

  for (;;) {
    // Reap every child: the runtime's create process, the init, and any orphan of the container.
    for (;;) {
      int st = 0;
      pid_t p = ::waitpid(-1, &st, WNOHANG);
      if (p <= 0) break;
      if (p == create_pid) {
        creating = false;
        int code = exit_code_of(st);
        if (code != 0) {
          // Drain what it said, then report it.
          for (int fd : {out[0], err[0]}) {
            ::fcntl(fd, F_SETFL, O_NONBLOCK);
            char buf[8192];
            ssize_t n;
            while ((n = ::read(fd, buf, sizeof(buf))) > 0) create_output.append(buf, static_cast<std::size_t>(n));
          }
          std::string msg = create_errors + create_output;
          for (char& c : msg)
            if (c == '\n') c = ' ';
          if (trim(msg).empty()) msg = runtime[0] + " create exited with code " + std::to_string(code);
          write_fd(3, "error " + trim(msg) + "\n");
          return 1;
        }
        auto pid_text = read_file(pid_file);
        init_pid = pid_text ? static_cast<pid_t>(std::strtol(pid_text->c_str(), nullptr, 10)) : -1;
        if (init_pid <= 0) {
          write_fd(3, "error the runtime wrote no init pid\n");
          return 1;
        }
        write_fd(3, "ok " + std::to_string(init_pid) + "\n");
        ::close(3);
        if (auto early = early_exits.find(init_pid); early != early_exits.end()) {
          init_exited = true;
          init_status = early->second.first;
          finished_at = early->second.second;
          exited_steady = SteadyClock::now();
        }
        if (!create_output.empty()) split_out.feed(create_output, Clock::now(), records);
        if (!create_errors.empty()) split_err.feed(create_errors, Clock::now(), records);
        create_output.clear();
        create_errors.clear();
      } else if (p == init_pid) {
        init_exited = true;
        init_status = st;
        finished_at = Clock::now();
        exited_steady = SteadyClock::now();
      } else if (init_pid <= 0) {
        early_exits[p] = {st, Clock::now()};
      }
    }
    if (init_exited) {
      if ((!out_open && !err_open) || SteadyClock::now() - exited_steady > std::chrono::seconds(2)) break;
    }
    pollfd pfds[2];
    int n = 0;
    if (out_open) pfds[n++] = {out[0], POLLIN, 0};
    if (err_open) pfds[n++] = {err[0], POLLIN, 0};
    timespec timeout{0, (init_exited ? 50 : 200) * 1000 * 1000};
    int r = ::ppoll(pfds, static_cast<nfds_t>(n), &timeout, &wait_mask);
    if (r < 0 && errno != EINTR) break;
    for (int i = 0; i < n && r > 0; ++i) {
      if (!pfds[i].revents) continue;
      char buf[32768];
      ssize_t k = ::read(pfds[i].fd, buf, sizeof(buf));
      bool is_out = pfds[i].fd == out[0];
      if (k > 0) {
        if (creating) (is_out ? create_output : create_errors).append(buf, static_cast<std::size_t>(k));
        else (is_out ? split_out : split_err).feed(std::string_view(buf, static_cast<std::size_t>(k)), Clock::now(), records);
      } else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
        (is_out ? out_open : err_open) = false;
      }
    }
    for (const auto& rec : records) log.write(rec);
    records.clear();
  }
  split_out.finish(Clock::now(), records);
  split_err.finish(Clock::now(), records);
  for (const auto& rec : records) log.write(rec);
  json exit_doc = {{"exitCode", exit_code_of(init_status)}, {"finishedAt", format_nano_fixed(finished_at)}};
  if (WIFSIGNALED(init_status)) exit_doc["signal"] = WTERMSIG(init_status);
  write_file_atomic(bundle + "/exit", exit_doc.dump(), 0600);
  return 0;
}

}  // namespace berth::nodeagent
