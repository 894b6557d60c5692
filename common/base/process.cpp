// Running a program tidemark waits for and reads.
#include "common/base/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace tidemark {

namespace {

// Whether the file a name was found as may be a script without "#!" (the shell runs those
// itself): a file whose start holds a NUL byte is a program the kernel refused (another
// architecture, cut short), never given to the shell to read.
bool maybeScript(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char start[256];
  const ssize_t n = ::read(fd, start, sizeof start);
  ::close(fd);
  return n > 0 && std::memchr(start, '\0', std::size_t(n)) == nullptr;
}

// The number past the highest descriptor this process may have open (computed before a fork).
int descriptorLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 1 << 20;
  return int(std::min<rlim_t>(limit.rlim_cur, rlim_t(1) << 20));
}

// Whether process group `group` holds a process that still runs (a zombie does not: it waits to
// be reaped); nullopt when /proc cannot tell. A shell that ran a command without exec (dash forks
// even a single one) is gone before the command it started: the group says when both are.
std::optional<bool> groupRuns(pid_t group) {
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return std::nullopt;
  bool runs = false;
  while (const dirent* entry = ::readdir(proc)) {
    if (entry->d_name[0] < '1' || entry->d_name[0] > '9') continue;
    const std::string path = std::string("/proc/") + entry->d_name + "/stat";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;  // gone meanwhile
    char buffer[512];
    const ssize_t n = ::read(fd, buffer, sizeof buffer - 1);
    ::close(fd);
    if (n <= 0) continue;
    buffer[n] = '\0';
    // "pid (comm) state ppid pgrp ...": comm may hold anything, so from its last ')'.
    const char* close = std::strrchr(buffer, ')');
    char state = 0;
    long parent = 0, pgrp = 0;
    if (close == nullptr || std::sscanf(close + 1, " %c %ld %ld", &state, &parent, &pgrp) != 3)
      continue;
    if (pgrp == group && state != 'Z' && state != 'X') {
      runs = true;
      break;
    }
  }
  ::closedir(proc);
  return runs;
}

// In the child, between fork and exec (async-signal-safe calls only): every descriptor above 2
// closed (one by one up to `limit` where close_range is missing or refused).
void closeFrom3(int limit) {
  if (::close_range(3, ~0U, 0) == 0) return;
  for (int fd = 3; fd < limit; ++fd)
    ::close(fd);
}

}  // namespace

bool isRunnable(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::optional<std::string> findInPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const auto colon = dirs.find(':');
    const std::string_view dir = dirs.substr(0, colon);
    if (!dir.empty() && dir.front() == '/') {
      std::string candidate = std::string(dir) + "/" + name;
      if (isRunnable(candidate)) return candidate;
    }
    if (colon == std::string_view::npos) return std::nullopt;
    dirs.remove_prefix(colon + 1);
  }
}

namespace {
// Lock-free, so that a signal handler may set it.
std::atomic<int> caughtStopSignal{0};
static_assert(std::atomic<int>::is_always_lock_free);
}  // namespace

void noteStopSignal(int signal) noexcept {
  caughtStopSignal.store(signal, std::memory_order_relaxed);
}

int stopSignalCaught() noexcept {
  return caughtStopSignal.load(std::memory_order_relaxed);
}

ChildEnd runChild(std::vector<std::string> args, const ChildOptions& options,
                  const std::function<bool(std::string_view)>& onOutput) {
  const std::string shown = options.name.empty() ? "'" + args.front() + "'" : options.name;
  // `when`: "before" or "while" running it.
  const auto stopOnSignal = [&](std::string_view when) {
    if (const int signal = stopSignalCaught())
      throw Error(ErrorCode::Interrupted,
                  fmt::format("stopped by {} {} running {}",
                              signal == SIGINT    ? std::string("SIGINT")
                              : signal == SIGTERM ? std::string("SIGTERM")
                                                  : fmt::format("signal {}", signal),
                              when, shown));
  };
  stopOnSignal("before");
  const std::optional<std::string> found =
      args.front().find('/') != std::string::npos ? args.front() : findInPath(args.front());
  if (!found) return ChildEnd{.status = W_EXITCODE(127, 0)};
  // A command name found in PATH that is a script without "#!" (ENOEXEC) runs as the shell would
  // run it: through /bin/sh. A path given is run as it is, or not at all.
  const bool shellFallback = *found != args.front() && maybeScript(*found);
  args.front() = *found;
  // Prepared before the fork: between fork and exec only async-signal-safe calls.
  std::vector<char*> argv;
  for (auto& arg : args)
    argv.push_back(arg.data());
  argv.push_back(nullptr);
  const int limit = descriptorLimit();
  std::string shell = "/bin/sh";
  std::vector<char*> shellArgv = {shell.data()};
  shellArgv.insert(shellArgv.end(), argv.begin(), argv.end());
  std::vector<std::string> environment = options.environment.value_or(std::vector<std::string>{});
  std::vector<char*> envv;
  for (auto& entry : environment)
    envv.push_back(entry.data());
  envv.push_back(nullptr);
  char* const* envp = options.environment ? envv.data() : environ;
  const auto errors = options.errors;
  int out[2];
  constexpr const char* kStartHint =
      "check the limits on processes and open files of the user running tidemark (ulimit -u, -n) "
      "and the machine's free memory";
  if (::pipe2(out, O_CLOEXEC) != 0)
    throw systemError(options.failure, errno, "cannot run {}", shown).setHint(kStartHint);
  const pid_t parent = ::getpid();
  // Every signal blocked across the fork: until the child has reset them, a signal for it (the
  // group's SIGTERM at a stop) would run tidemark's own handler there and be lost; blocked, it
  // waits and comes with the default disposition.
  sigset_t all, before;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &before);
  const pid_t pid = ::fork();
  if (pid != 0) ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
  if (pid < 0) {
    const int saved = errno;
    ::close(out[0]);
    ::close(out[1]);
    throw systemError(options.failure, saved, "cannot run {}", shown).setHint(kStartHint);
  }
  if (pid == 0) {
    // Its own process group: a timeout stops whatever it started too.
    ::setpgid(0, 0);
    // Killed when tidemark dies (kill -9, or a signal it does not catch: Ctrl-C at `tidemark
    // info` reaches tidemark only). The thread that forked waits here until it has ended, so the
    // signal cannot come early; a parent already gone before the prctl is checked for after it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    // What tidemark ignores (SIGPIPE) or blocks in a thread, and what its own parent may have set
    // to be ignored, is the program's default again.
    for (int sig = 1; sig < NSIG; ++sig)
      if (sig != SIGKILL && sig != SIGSTOP) ::signal(sig, SIG_DFL);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // dup2 onto 0 to 2 clears close-on-exec there; everything else is closed.
    const int devNull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devNull >= 0) ::dup2(devNull, STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    if (errors == ChildOptions::Errors::Merge)
      ::dup2(out[1], STDERR_FILENO);
    else if (errors == ChildOptions::Errors::Discard && devNull >= 0)
      ::dup2(devNull, STDERR_FILENO);
    closeFrom3(limit);
    ::execve(argv[0], argv.data(), envp);
    if (errno == ENOEXEC && shellFallback) ::execve(shellArgv[0], shellArgv.data(), envp);
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // as the child does: whichever runs first
  ::close(out[1]);
  // Whatever happens (a timeout, the caller stopping, an exception from onOutput), the program and
  // what it started are killed and it is reaped; its group is signalled only while it is unreaped
  // (until then its number cannot be another's: its end is watched with WNOWAIT).
  struct Child {
    pid_t pid;
    int fd;
    std::chrono::milliseconds grace;
    bool reaped = false;
    int status = 0;
    void close() {
      if (fd >= 0) ::close(fd), fd = -1;
    }
    // Whether the leader has ended (learned without reaping it: WNOWAIT keeps its number, and so
    // its group's, from being reused); nullopt when it is no child of ours any more (SIGCHLD
    // ignored: reaped by the kernel), when its number may already be another's.
    std::optional<bool> leaderEnded() const {
      siginfo_t info{};
      while (::waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0)
        if (errno != EINTR) return std::nullopt;
      return info.si_pid == pid;
    }
    // SIGTERM (with SIGCONT: a stopped program runs its handler only once continued), a chance to
    // clean up; SIGKILL once nothing in the group runs any more (the leader and what it started:
    // a key command's shell dies at once, the script it forked may still be cleaning up) or after
    // the grace, for what ignores SIGTERM or outlives the leader.
    void kill() {
      if (reaped || !leaderEnded().has_value()) return;
      ::kill(-pid, SIGTERM);
      ::kill(-pid, SIGCONT);
      const auto until = std::chrono::steady_clock::now() + grace;
      for (auto pause = std::chrono::milliseconds(1); std::chrono::steady_clock::now() < until;
           pause = std::min(pause * 2, std::chrono::milliseconds(50))) {
        const std::optional<bool> ended = leaderEnded();
        if (!ended) return;  // reap() learns the same
        if (*ended && !groupRuns(pid).value_or(false)) break;
        std::this_thread::sleep_for(pause);
      }
      ::kill(-pid, SIGKILL);
    }
    void reap() {
      while (!reaped) {
        if (::waitpid(pid, &status, 0) == pid || errno != EINTR) reaped = true;
      }
    }
    ~Child() {
      close();
      kill();
      reap();
    }
  } child{pid, out[0], options.termGrace};
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  const auto left = [&] {
    return std::chrono::ceil<std::chrono::milliseconds>(deadline -
                                                        std::chrono::steady_clock::now());
  };
  ChildEnd end;
  std::array<char, 65536> buffer;
  while (true) {
    stopOnSignal("while");
    const auto wait = left();
    if (wait.count() <= 0) {
      end.timedOut = true;
      break;
    }
    // A slice: the signal may be handled by another thread, leaving this poll uninterrupted.
    pollfd ready{child.fd, POLLIN, 0};
    const int polled = ::poll(&ready, 1, int(std::min<std::int64_t>(wait.count(), 100)));
    if (polled < 0 && errno != EINTR)
      throw systemError(options.failure, errno, "cannot read what {} prints", shown);
    if (polled <= 0) continue;
    const ssize_t n = ::read(child.fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // its output closed (or failed: it is not read further either way)
    bool more = false;
    try {
      more = onOutput(std::string_view(buffer.data(), std::size_t(n)));
    } catch (...) {
      ::explicit_bzero(buffer.data(), std::size_t(n));
      throw;
    }
    ::explicit_bzero(buffer.data(), std::size_t(n));
    if (!more) {
      end.stopped = true;
      break;
    }
  }
  child.close();
  // Its output closed: it may still run (a program that closed its output and waits). The
  // timeout holds until it has ended.
  for (auto pause = std::chrono::milliseconds(1); !end.timedOut && !end.stopped;) {
    stopOnSignal("while");
    const pid_t done = ::waitpid(pid, &child.status, WNOHANG);
    if (done == pid) {
      child.reaped = true;
      break;
    }
    if (done < 0 && errno != EINTR) {
      // Reaped by someone else (SIGCHLD ignored): its number may be another's now.
      child.reaped = true;
      throw systemError(options.failure, errno, "cannot learn how {} ended", shown)
          .setHint(
              "start tidemark with SIGCHLD at its default: its parent ignores it, and the "
              "exit statuses of the programs it runs are lost");
    }
    const auto wait = left();
    if (wait.count() <= 0) {
      end.timedOut = true;
      break;
    }
    std::this_thread::sleep_for(std::min(pause, wait));
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  child.kill();
  child.reap();
  end.status = child.status;
  return end;
}

bool LineSplitter::feed(std::string_view piece) {
  while (!piece.empty()) {
    const auto newline = piece.find('\n');
    const std::string_view part = piece.substr(0, newline);
    if (pending_.size() < maxLine_) pending_.append(part.substr(0, maxLine_ - pending_.size()));
    if (newline == std::string_view::npos) return true;
    const bool more = onLine_(pending_);
    pending_.clear();
    if (!more) return false;
    piece.remove_prefix(newline + 1);
  }
  return true;
}

bool LineSplitter::finish() {
  if (pending_.empty()) return true;
  const bool more = onLine_(pending_);
  pending_.clear();
  return more;
}

}  // namespace tidemark
