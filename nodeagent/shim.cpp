// The per-container shim (`berth agent __shim --id ID --bundle DIR --log FILE -- <runtime argv>`).
// It runs in its own session so it outlives the agent, and is the child subreaper of the
// container: `<runtime> create` forks the init, exits, and the init is re-parented here.
//   1. runs `<runtime argv> create --bundle DIR --pid-file DIR/init.pid ID` with stdout/stderr on pipes;
//   2. answers the agent on fd 3: "ok <init pid>" or "error <runtime's message>";
//   3. copies the pipes into the CRI log until the init exits and the pipes drain;
//   4. writes DIR/exit: {"exitCode", "finishedAt"}.
// Single-threaded, and it does not use the agent's Reaper: it waits on its own children.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "nodeagent/logs.h"
#include "nodeagent/runtime.h"

extern char** environ;

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
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
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
  for (const char* a : {"create", "--bundle"}) args.push_back(a);
  args.push_back(bundle);
  args.push_back("--pid-file");
  args.push_back(pid_file);
  args.push_back(id);
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, devnull, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawn_file_actions_addclose(&fa, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int s : {SIGPIPE, SIGHUP, SIGINT, SIGTERM}) sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t create_pid = -1;
  int rc = ::posix_spawnp(&create_pid, cargs[0], &fa, &attr, cargs.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(out[1]);
  ::close(err[1]);
  ::close(devnull);
  if (rc != 0) {
    write_fd(3, "error " + runtime[0] + ": " + std::strerror(rc) + "\n");
    return 1;
  }

  CriLogFile log(log_path);
  CriLineSplitter split_out("stdout"), split_err("stderr");
  std::vector<CriRecord> records;
  std::string create_output;  // what the runtime printed while creating: its error, if any
  bool creating = true;
  pid_t init_pid = -1;
  bool out_open = true, err_open = true;
  bool init_exited = false;
  int init_status = 0;
  Clock::time_point finished_at{};
  SteadyClock::time_point exited_steady{};

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
          std::string msg = create_output;
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
        if (!create_output.empty()) {
          split_out.feed(create_output, Clock::now(), records);
          create_output.clear();
        }
      } else if (p == init_pid) {
        init_exited = true;
        init_status = st;
        finished_at = Clock::now();
        exited_steady = SteadyClock::now();
      }
    }
    if (init_exited) {
      if ((!out_open && !err_open) || SteadyClock::now() - exited_steady > std::chrono::seconds(2)) break;
    }
    pollfd pfds[2];
    int n = 0;
    if (out_open) pfds[n++] = {out[0], POLLIN, 0};
    if (err_open) pfds[n++] = {err[0], POLLIN, 0};
    int r = ::poll(pfds, static_cast<nfds_t>(n), init_exited ? 50 : 200);
    if (r < 0 && errno != EINTR) break;
    for (int i = 0; i < n && r > 0; ++i) {
      if (!pfds[i].revents) continue;
      char buf[32768];
      ssize_t k = ::read(pfds[i].fd, buf, sizeof(buf));
      bool is_out = pfds[i].fd == out[0];
      if (k > 0) {
        if (creating) create_output.append(buf, static_cast<std::size_t>(k));
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
