// The throwaway PostgreSQL server of a drill.
#include "ctl/drill_server.h"

#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/files/file.h"
#include "common/pg/waldump.h"
#include "common/restore/settings.h"

namespace tidemark::ctl {

namespace {

// A mount point to make read-only, with the flags it keeps.
struct ReadOnlyMount {
  std::string path;
  unsigned long flags = 0;
};

// mountinfo escapes blanks, tabs, newlines and backslashes as octal.
std::string unescapeMountPath(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 3 < text.size()) {
      out += char((text[i + 1] - '0') * 64 + (text[i + 2] - '0') * 8 + (text[i + 3] - '0'));
      i += 3;
    } else {
      out += text[i];
    }
  }
  return out;
}

// Every mount point to remount read-only: all but the pseudo filesystems (/proc, /sys, /dev: a
// device node stays writable on a read-only mount) and what lies within a writable path.
std::vector<ReadOnlyMount> readOnlyMounts(const std::vector<std::string>& writable) {
  std::vector<ReadOnlyMount> out;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, device, root, point;
    if (!(fields >> id >> parent >> device >> root >> point)) continue;
    point = unescapeMountPath(point);
    if (files::within(point, "/proc") || files::within(point, "/sys") ||
        files::within(point, "/dev"))
      continue;
    if (std::any_of(writable.begin(), writable.end(),
                    [&](const std::string& path) { return files::within(point, path); }))
      continue;
    struct statvfs st {};
    if (::statvfs(point.c_str(), &st) != 0) continue;
    unsigned long flags = 0;
    if (st.f_flag & ST_NOSUID) flags |= MS_NOSUID;
    if (st.f_flag & ST_NODEV) flags |= MS_NODEV;
    if (st.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
    out.push_back({point, flags});
  }
  return out;
}

// In the child, between fork and exec (async-signal-safe calls only): a mount namespace of its
// own, every mount read-only but the writable paths. Returns false when it cannot be made.
bool isolate(const std::vector<std::string>& writable, const std::vector<ReadOnlyMount>& mounts) {
  if (::unshare(CLONE_NEWNS) != 0) return false;
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  for (const auto& path : writable)
    if (::mount(path.c_str(), path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0 &&
        errno != ENOENT)
      return false;
  for (const auto& m : mounts)
    if (::mount(nullptr, m.path.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | m.flags,
                nullptr) != 0 &&
        errno != ENOENT && errno != EINVAL)
      return false;
  return true;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> drillSettings(const ServerOptions& options,
                                                               const std::string& hbaFile,
                                                               const std::string& identFile) {
  std::vector<std::pair<std::string, std::string>> settings = {
      // The restored directory, whatever its postgresql.conf says (data_directory there would
      // start the cluster it names: production's).
      {"data_directory", options.dataDirectory},
      {"port", std::to_string(options.port)},
      {"listen_addresses", "127.0.0.1"},
      {"unix_socket_directories", options.socketDirectory},
      {"unix_socket_permissions", "0700"},
      {"hba_file", hbaFile},
      {"ident_file", identFile},
      // Nothing the copy does may reach production (restore::isolatedCopySettings, below), nor
      // does it replicate from the primary.
      {"primary_conninfo", ""},
      {"primary_slot_name", ""},
      {"hot_standby", "on"},
      {"ssl", "off"},
      {"cluster_name", "tidemark-drill"},
      // PostgreSQL's defaults, not the production server's sizes: small enough for any machine
      // the drill runs on, and no larger pool than a plain restore's (a larger one lengthens the
      // end-of-recovery checkpoint and the RTO the drill reports: docs/benchmarks.md).
      {"shared_buffers", "128MB"},
      {"huge_pages", "try"},
      {"maintenance_work_mem", "64MB"},
      {"work_mem", "4MB"},
      {"logging_collector", "off"},
      {"log_destination", "stderr"},
      {"lc_messages", "C"},  // the drill explains a failure from the log's words
      // A promoted copy runs no scheduled jobs (pg_cron, when installed) against other systems.
      {"cron.launch_active_jobs", "off"},
  };
  for (auto& setting : restore::isolatedCopySettings())
    settings.push_back(std::move(setting));
  return settings;
}

std::string findServerBinaries(const std::string& configured, int pgVersion) {
  const std::string giveIt = fmt::format(
      "give the directory of the PostgreSQL {} server binaries, e.g. /usr/lib/postgresql/{}/bin",
      pgVersion, pgVersion);
  const std::optional<std::string> postgres = pg::findPgProgram("postgres", pgVersion, configured);
  if (!postgres && !configured.empty())
    throw Error(ErrorCode::Config,
                fmt::format("drill.pg-bin '{}' holds no executable 'postgres'", configured),
                giveIt);
  if (postgres) {
    // One of another version would fail to start on the restored files, saying less.
    const std::optional<int> version =
        configured.empty() ? std::nullopt : pg::programVersion(*postgres);
    if (version && *version != pgVersion)
      throw Error(ErrorCode::Config,
                  fmt::format("drill.pg-bin '{}' holds the server of PostgreSQL {}, and the backup "
                              "is of PostgreSQL {}",
                              configured, *version, pgVersion),
                  giveIt);
    return files::dirName(*postgres);
  }
  throw Error(ErrorCode::Config,
              fmt::format("cannot find the PostgreSQL {} server binaries (not in "
                          "/usr/lib/postgresql/{}/bin or /usr/pgsql-{}/bin, and pg_config "
                          "--bindir names none of that version)",
                          pgVersion, pgVersion, pgVersion),
              fmt::format("install postgresql-{} or set drill.pg-bin (--drill-pg-bin) to the "
                          "directory holding 'postgres'",
                          pgVersion));
}

int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw systemError(ErrorCode::LocalIo, errno, "cannot open a socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    int saved = errno;
    ::close(fd);
    throw systemError(ErrorCode::LocalIo, saved, "cannot find a free port on 127.0.0.1");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

DrillServer::DrillServer(const ServerOptions& options)
    : socketDirectory_(options.socketDirectory), port_(options.port) {
  // Everything the child needs is prepared here: between fork and exec, in a process that has
  // threads, only async-signal-safe calls are allowed.
  std::string program = options.binDirectory + "/postgres";
  std::vector<std::string> args = {program, "-D", options.dataDirectory};
  for (const auto& [name, value] : options.settings) {
    args.push_back("-c");
    args.push_back(name + "=" + value);
  }
  std::vector<char*> argv;
  for (auto& arg : args)
    argv.push_back(arg.data());
  argv.push_back(nullptr);
  int log = ::open(options.logFile.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log < 0) throw systemError(ErrorCode::LocalIo, errno, "cannot open '{}'", options.logFile);
  if (options.owner && ::fchown(log, options.owner->uid, options.owner->gid) != 0) {
    int saved = errno;
    ::close(log);
    throw systemError(ErrorCode::LocalIo, saved, "cannot give '{}' to the server's user",
                      options.logFile);
  }
  int devNull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::vector<ReadOnlyMount> mounts;
  if (options.writablePaths) mounts = readOnlyMounts(*options.writablePaths);
  // The child says through this pipe whether it made its namespace ('I') or not ('N').
  int report[2] = {-1, -1};
  if (::pipe2(report, O_CLOEXEC) != 0) {
    int saved = errno;
    ::close(log);
    if (devNull >= 0) ::close(devNull);
    throw systemError(ErrorCode::LocalIo, saved, "cannot start '{}'", program);
  }
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int saved = errno;
    ::close(log);
    if (devNull >= 0) ::close(devNull);
    ::close(report[0]);
    ::close(report[1]);
    throw systemError(ErrorCode::LocalIo, saved, "cannot start '{}'", program);
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    char made = options.writablePaths && isolate(*options.writablePaths, mounts) ? 'I' : 'N';
    (void)!::write(report[1], &made, 1);
    if (options.owner) {
      gid_t gid = options.owner->gid;
      if (::setgroups(1, &gid) != 0 || ::setgid(gid) != 0 || ::setuid(options.owner->uid) != 0)
        ::_exit(126);
    }
    // After the change of user, which clears it: the server dies with the drill.
    ::prctl(PR_SET_PDEATHSIG, SIGQUIT);
    if (::getppid() != parent) ::_exit(126);
    if (devNull >= 0) ::dup2(devNull, STDIN_FILENO);
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    // Nothing else of tidemark's (sockets to the repository, files) reaches the server.
    ::close_range(3, ~0U, 0);
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(log);
  if (devNull >= 0) ::close(devNull);
  pid_ = pid;
  ::close(report[1]);
  char made = 'N';
  while (::read(report[0], &made, 1) < 0 && errno == EINTR) {
  }
  ::close(report[0]);
  isolated_ = made == 'I';
  spdlog::debug("started {} (pid {})", program, pid);
}

DrillServer::~DrillServer() {
  try {
    stop();
  } catch (const std::exception& e) {
    spdlog::error("could not stop the drill's server (pid {}): {}", pid_, e.what());
  }
}

void DrillServer::reaped(int status) {
  if (WIFEXITED(status))
    ended_ = fmt::format("exited with status {}", WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    ended_ = fmt::format("killed by signal {}", WTERMSIG(status));
  else
    ended_ = "ended";
  pid_ = -1;
}

bool DrillServer::running() {
  if (pid_ < 0) return false;
  int status = 0;
  pid_t done = ::waitpid(pid_, &status, WNOHANG);
  if (done == pid_ || (done < 0 && errno == ECHILD)) {
    reaped(status);
    return false;
  }
  return true;
}

void DrillServer::stop(std::chrono::seconds grace) {
  if (!running()) return;
  const std::pair<int, std::chrono::milliseconds> steps[] = {
      {SIGINT, grace}, {SIGQUIT, std::chrono::seconds(10)}, {SIGKILL, std::chrono::seconds(30)}};
  for (const auto& [signal, wait] : steps) {
    // SIGKILL goes to the whole process group: backends and restore_command too.
    ::kill(signal == SIGKILL ? -pid_ : pid_, signal);
    auto deadline = std::chrono::steady_clock::now() + wait;
    while (running() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (!running()) return;
  }
  throw Error(ErrorCode::LocalIo, fmt::format("the server (pid {}) did not stop", pid_),
              fmt::format("kill -9 {}", pid_));
}

std::string DrillServer::conninfo(const std::string& user, const std::string& database) const {
  auto quote = [](const std::string& value) {
    std::string out = "'";
    for (char c : value) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    return out + "'";
  };
  return fmt::format("host={} port={} user={} dbname={} connect_timeout=5", quote(socketDirectory_),
                     port_, quote(user), quote(database));
}

}  // namespace tidemark::ctl
