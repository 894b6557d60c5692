// tidemark drill: restore, start, replay, query, report.
#include "ctl/drill.h"

#include <fcntl.h>
#include <fmt/ranges.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/base/version.h"
#include "common/files/file.h"
#include "common/pg/connection.h"
#include "common/pg/control.h"
#include "common/pg/lsn.h"
#include "common/recovery/plan.h"
#include "common/recovery/target.h"
#include "common/repo/stanza.h"
#include "common/repo/state.h"
#include "common/restore/lease.h"
#include "common/restore/restore.h"
#include "common/restore/server_config.h"
#include "common/restore/settings.h"
#include "common/spool/spool.h"
#include "ctl/drill_server.h"
#include "ctl/info.h"

namespace fs = std::filesystem;

namespace tidemark::ctl {

namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

// The records of drills to the end of the archive (the scheduled kind: info and metrics show the
// newest), and of drills to a --target-time (recorded apart: their RPO is not the archive's).
constexpr const char* kRecordSubject = "result";
constexpr const char* kTargetedSubject = "targeted";
// The server's log kept in a failed drill's report: its last lines.
constexpr std::size_t kLogLines = 40;
// Where a fresh scratch directory goes, without --scratch or drill.scratch.
constexpr const char* kScratchParent = "/var/tmp";

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string isoNow() {
  return formatUtc(utcNow());
}

double epochNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A failure of one step of the drill.
struct StepFailure {
  std::string step, message;
};

// The scratch directory: made (or checked to be empty) before anything, removed at the end.
class Scratch {
 public:
  explicit Scratch(const std::string& given) {
    if (given.empty()) {
      std::string pattern = std::string(kScratchParent) + "/tidemark-drill-XXXXXX";
      if (!::mkdtemp(pattern.data()))
        throw systemError(ErrorCode::LocalIo, errno, "cannot make a scratch directory in '{}'",
                          kScratchParent);
      path_ = pattern;
      created_ = true;
    } else {
      if (given.front() != '/')
        throw Error(ErrorCode::Usage, fmt::format("--scratch '{}' is not an absolute path", given));
      path_ = fs::path(given).lexically_normal().string();
      while (path_.size() > 1 && path_.back() == '/')
        path_.pop_back();
      std::error_code ec;
      if (fs::exists(path_, ec)) {
        if (!fs::is_directory(path_, ec) || !fs::is_empty(path_, ec))
          throw Error(ErrorCode::InvalidInput,
                      fmt::format("scratch directory '{}' is not empty", path_),
                      "give an empty or absent directory with --scratch or drill.scratch (a "
                      "drill never removes what it did not make)");
      } else {
        if (::mkdir(path_.c_str(), 0700) != 0)
          throw systemError(ErrorCode::LocalIo, errno, "cannot make scratch directory '{}'", path_);
        created_ = true;
      }
    }
    // PostgreSQL's socket path must fit in sockaddr_un (107 bytes).
    if (path_.size() + std::string_view("/.s.PGSQL.65535").size() > 107) {
      remove();
      throw Error(
          ErrorCode::Usage,
          fmt::format("scratch directory '{}' is too long a path for the server's socket", path_),
          "give a path of at most 90 characters with --scratch or drill.scratch");
    }
    ::chmod(path_.c_str(), 0700);
  }
  const std::string& path() const { return path_; }
  // Removes what the drill wrote (and the directory, when the drill made it).
  void remove() {
    std::error_code ec;
    // The restored server's prefetcher (archive.get-ahead) and pusher (archive.push-ahead) end
    // with the server: let them go first.
    for (const auto& stanza :
         fs::directory_iterator(spool::dataDirectorySpool(path_ + "/data"), ec))
      if (!spool::waitForWorkers(stanza.path().string(), std::chrono::seconds(30)))
        spdlog::warn("a prefetcher or pusher still runs in '{}'", stanza.path().string());
    ec.clear();
    if (created_) {
      fs::remove_all(path_, ec);
    } else {
      for (const auto& entry : fs::directory_iterator(path_, ec))
        fs::remove_all(entry.path(), ec);
    }
    if (ec) spdlog::warn("could not remove everything in '{}': {}", path_, ec.message());
  }

 private:
  std::string path_;
  bool created_ = false;
};

// The user the server runs as: tidemark's own, or `postgres` when tidemark runs as root
// (PostgreSQL refuses to run as root).
struct ServerUser {
  std::optional<files::Owner> owner;  // when it differs from tidemark's
  std::string name;
};

ServerUser serverUser() {
  if (::geteuid() != 0) {
    struct passwd* pw = ::getpwuid(::geteuid());
    return {std::nullopt, pw ? pw->pw_name : "postgres"};
  }
  struct passwd* pw = ::getpwnam("postgres");
  if (!pw)
    throw Error(ErrorCode::Config,
                "tidemark drill runs as root and there is no 'postgres' user to run the server as",
                "run the drill as the database's OS user (e.g. sudo -u postgres tidemark drill)");
  return {files::Owner{pw->pw_uid, pw->pw_gid}, pw->pw_name};
}

void writeFile(const std::string& path, const std::string& content,
               const std::optional<files::Owner>& owner) {
  files::AtomicFile file(path, {.mode = 0600, .owner = owner});
  file.write(io::asBytes(content));
  file.commit();
}

// The server's log, read without following a symbolic link: the scratch directory belongs to the
// server's user, and a drill run as root must not read a file that user pointed the log at.
std::string readLog(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return "";
  std::string text;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    char buffer[65536];
    for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;)
      text.append(buffer, std::size_t(n));
  }
  ::close(fd);
  return text;
}

// The last `count` lines of the server's log.
std::string logTail(const std::string& path, std::size_t count) {
  std::string log = readLog(path);
  std::size_t start = log.size() - (log.ends_with('\n') ? 1 : 0);
  for (std::size_t lines = 0; lines < count && start > 0; ++lines) {
    std::size_t newline = log.rfind('\n', start - 1);
    start = newline == std::string::npos ? 0 : newline;
  }
  return log.substr(start == 0 ? 0 : start + 1);
}

// Whether a line of the server's log holds one of `needles` (lc_messages is C).
bool logHas(const std::string& logFile, std::initializer_list<const char*> needles) {
  const std::string log = readLog(logFile);
  return std::any_of(needles.begin(), needles.end(),
                     [&](const char* needle) { return log.find(needle) != std::string::npos; });
}

// Whether the server's log shows that recovery had begun (so a stop is the replay's failure).
bool replayBegan(const std::string& logFile) {
  return logHas(logFile, {"starting point-in-time recovery", "starting archive recovery",
                          "restored log file", "redo starts at"});
}

// What the log says about why the server stopped: the last FATAL or PANIC line (not one of the
// refusals of the drill's own connection attempts while the server starts), and the error line
// before it (tidemark-archive-get's, naming the object and the fault).
std::string whyStopped(const std::string& logFile) {
  static const char* const kNoise[] = {"the database system is starting up",
                                       "not yet accepting connections",
                                       "the database system is shutting down"};
  std::istringstream in(readLog(logFile));
  std::string lastError, why;
  for (std::string line; std::getline(in, line);) {
    bool noise = false;
    for (const char* text : kNoise)
      noise = noise || line.find(text) != std::string::npos;
    if (noise) continue;
    if (line.find("FATAL:") != std::string::npos || line.find("PANIC:") != std::string::npos)
      why = lastError.empty() ? line : lastError + " / " + line;
    else if (line.find("ERROR") != std::string::npos)
      lastError = line;
  }
  return why.empty() ? lastError : why;
}

// ": " and the last line of the log holding one of `needles` (the first found wins), or "".
std::string logLine(const std::string& logFile, std::initializer_list<const char*> needles) {
  for (const char* needle : needles) {
    std::string found;
    std::istringstream in(readLog(logFile));
    for (std::string line; std::getline(in, line);)
      if (line.find(needle) != std::string::npos) found = line;
    if (!found.empty()) return ": " + found;
  }
  return "";
}

// Connects to the server once it accepts connections and waits until the replay has reached the
// target: paused at it (a time target) or out of recovery (the end of the archive, promoted).
// Read from the server; the log only tells a pause at the target from another pause. Throws
// StepFailure (start or replay) when the server stops, refuses the drill's connection for a reason
// that waiting does not cure, or `timeoutSeconds` (0: none) pass after `begin`.
pg::Connection waitForTarget(DrillServer& server, const std::string& user, bool pausesAtTarget,
                             const std::string& logFile, const std::function<bool()>& stop,
                             Clock::time_point begin, std::int64_t timeoutSeconds) {
  pg::Connection conn;
  bool connected = false;
  std::string database = "postgres";
  auto step = [&] { return replayBegan(logFile) ? "replay" : "start"; };
  for (;;) {
    if (stop && stop()) throw Error(ErrorCode::Interrupted, "the drill was interrupted");
    if (!server.running()) {
      std::string why = whyStopped(logFile);
      throw StepFailure{step(), fmt::format("the server stopped ({}){}", server.ended(),
                                            why.empty() ? "" : ": " + why)};
    }
    if (timeoutSeconds > 0 && Clock::now() > begin + std::chrono::seconds(timeoutSeconds))
      throw StepFailure{step(), fmt::format("the target was not reached within --timeout {} (the "
                                            "server's log below shows how far the replay got)",
                                            formatDuration(timeoutSeconds))};
    if (!connected) {
      try {
        conn = pg::Connection::open(server.conninfo(user, database), false, "tidemark drill");
        connected = true;
      } catch (const Error& e) {
        std::string message = e.what();
        if (message.find("database \"postgres\" does not exist") != std::string::npos) {
          database = "template1";
          continue;
        }
        if (message.find("role \"") != std::string::npos &&
            message.find("does not exist") != std::string::npos)
          throw StepFailure{"start", fmt::format("the restored cluster has no role '{}': {} (the "
                                                 "drill connects as the server's OS user, the "
                                                 "name initdb gives the superuser)",
                                                 user, message)};
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
    }
    try {
      bool inRecovery =
          conn.query("SELECT pg_is_in_recovery()", "the recovery state").value(0, 0) == "t";
      if (!inRecovery) return conn;
      if (pausesAtTarget) {
        std::string paused =
            conn.serverVersion() >= 140000
                ? conn.query("SELECT pg_get_wal_replay_pause_state()", "the replay state")
                      .value(0, 0)
                : (conn.query("SELECT pg_is_wal_replay_paused()", "the replay state").value(0, 0) ==
                           "t"
                       ? "paused"
                       : "not paused");
        if (paused == "paused") {
          // A pause for another reason (insufficient hot standby settings) is no target.
          if (logHas(logFile, {"recovery stopping"})) return conn;
          throw StepFailure{"replay", "the recovery paused before its target" +
                                          logLine(logFile, {"lower setting", "has paused"})};
        }
      }
    } catch (const Error&) {
      connected = false;  // the server went away, or is promoting: ask again
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

DrillCheck runCheck(pg::Connection& conn, std::string name, const std::string& statement) {
  DrillCheck check{.name = std::move(name), .statement = statement};
  auto start = Clock::now();
  try {
    pg::Result result = conn.query(statement, check.name);
    check.rows = result.rows();
    if (result.rows() > 0)
      for (int column = 0; column < result.columns(); ++column)
        check.firstRow.push_back(result.value(0, column));
    check.ok = true;
  } catch (const Error& e) {
    check.error = e.what();
  }
  check.seconds = secondsSince(start);
  return check;
}

Json reportJson(const DrillReport& r, bool forRecord) {
  Json checks = Json::array();
  for (const auto& c : r.checks)
    checks.push_back({{"name", c.name},
                      {"statement", c.statement},
                      {"ok", c.ok},
                      {"seconds", c.seconds},
                      {"rows", c.rows},
                      {"first-row", c.firstRow},
                      {"error", c.error.empty() ? Json(nullptr) : Json(c.error)}});
  auto optionalNumber = [](const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); };
  auto optionalText = [](const std::optional<std::string>& v) {
    return v ? Json(*v) : Json(nullptr);
  };
  // A record is not encrypted (state records are MAC'd only): it holds no query result and no
  // server log, which may hold data.
  if (forRecord)
    for (auto& check : checks)
      check.erase("first-row");
  const std::string log = forRecord ? std::string() : r.serverLog;
  return Json{{"format", 1},
              {"stanza", r.stanza},
              {"repository", r.repository},
              {"result", r.ok ? "ok" : "failed"},
              {"failed-step", r.failedStep.empty() ? Json(nullptr) : Json(r.failedStep)},
              {"error", r.error.empty() ? Json(nullptr) : Json(r.error)},
              {"started", r.started},
              {"finished", r.finished},
              {"backup", r.backup.empty() ? Json(nullptr) : Json(r.backup)},
              {"generation", r.generation},
              {"target", r.target},
              {"target-timeline", r.targetTimeline},
              {"timeline", r.timeline ? Json(*r.timeline) : Json(nullptr)},
              {"timeline-path", r.timelinePath.empty() ? Json(nullptr) : Json(r.timelinePath)},
              {"restore-seconds", r.restoreSeconds},
              {"restored-bytes", r.restoredBytes},
              {"replay-seconds", r.replaySeconds},
              {"query-seconds", r.querySeconds},
              {"rto-seconds", r.ok ? Json(r.rtoSeconds) : Json(nullptr)},
              {"rpo-seconds", optionalNumber(r.rpoSeconds)},
              {"rpo-basis", r.rpoBasis.empty() ? Json(nullptr) : Json(r.rpoBasis)},
              {"last-replayed-commit", optionalText(r.lastReplayedCommit)},
              {"replay-lsn", optionalText(r.replayLsn)},
              {"segments-replayed", r.segmentsReplayed},
              {"checks", checks},
              {"warnings", r.warnings},
              {"pg-bin", r.pgBin},
              {"server-pid", r.serverPid ? Json(r.serverPid) : Json(nullptr)},
              {"scratch", r.scratch},
              {"kept", r.kept},
              {"server-log", log.empty() ? Json(nullptr) : Json(log)},
              {"record", optionalText(r.record)}};
}

// postgresql.conf lines for the settings a hot standby needs at least as high as the primary had
// them, from the restored pg_control: PostgreSQL's defaults may be lower, and recovery then stops.
std::string hotStandbyMinimums(const std::string& data) {
  const auto s = pg::readControlData(data).hotStandby;
  return fmt::format(
      "max_connections = {}\nmax_worker_processes = {}\nmax_wal_senders = {}\n"
      "max_prepared_transactions = {}\nmax_locks_per_transaction = {}\n",
      s.maxConnections, s.maxWorkerProcesses, s.maxWalSenders, s.maxPreparedTransactions,
      s.maxLocksPerTransaction);
}

// Restores, starts, waits and checks; fills `report` as it goes. Throws StepFailure for a failed
// step and Error(Interrupted) on a signal; the caller cleans up.
void drillSteps(const repo::Repository& repository, const std::string& stanzaId,
                const DrillOptions& options, const std::string& scratch, const ServerUser& user,
                Clock::time_point begin, double beginEpoch,
                std::optional<restore::RecoveryLease>& lease, std::optional<DrillServer>& server,
                DrillReport& report) {
  // Runs `body` as part of `step`: its error is that step's failure; a signal, and a
  // StepFailure it throws itself, pass through.
  auto inStep = [](const char* step, auto&& body) {
    try {
      return body();
    } catch (const StepFailure&) {
      throw;
    } catch (const Error& e) {
      if (e.code() == ErrorCode::Interrupted) throw;
      throw StepFailure{step, e.hint().empty() ? std::string(e.what())
                                               : fmt::format("{} ({})", e.what(), e.hint())};
    } catch (const std::exception& e) {
      throw StepFailure{step, e.what()};
    }
  };

  recovery::Target target;
  if (options.targetTime) {
    target.kind = recovery::TargetKind::Time;
    target.text = *options.targetTime;
    target.time = parseTimestamp(*options.targetTime, "--target-time");
    target.action = recovery::TargetAction::Pause;
  }
  target.timeline = options.targetTimeline;
  report.target = target.kind == recovery::TargetKind::Latest ? "latest" : target.describe();
  report.targetTimeline = target.timeline.text();
  // pg_waldump (where the archive ends in commit time) from drill.pg-bin too, when it holds one.
  const recovery::RecoveryPlan plan = inStep("plan", [&] {
    return recovery::planRecovery(repository, target, options.backup, false, options.pgBin);
  });
  report.timeline = plan.history.timeline;
  report.timelinePath = plan.timelinePath;
  report.backup = plan.backup.label;
  report.generation = plan.generation;
  report.warnings = plan.warnings;
  // No server binaries: the drill cannot run here, which says nothing about the backup (thrown
  // on, not recorded).
  const std::string binDirectory = findServerBinaries(options.pgBin, plan.backup.pgVersion);
  report.pgBin = binDirectory;
  inStep("plan", [&] {
    lease.emplace(
        repository, stanzaId, plan,
        fmt::format("tidemark drill into '{}' on {} (pid {})", scratch, hostName(), ::getpid()),
        options.leaseTimeout);
    lease->startRenewal();
  });

  const std::string data = scratch + "/data";
  const std::string logFile = scratch + "/postgresql.log";
  auto restoreStart = Clock::now();
  inStep("restore", [&] {
    std::map<std::uint32_t, std::string> tablespaces;
    for (const auto& object : plan.backup.objects)
      if (object.tablespaceOid)
        tablespaces[object.tablespaceOid] =
            fmt::format("{}/tablespaces/{}", scratch, object.tablespaceOid);
    if (!tablespaces.empty() && ::mkdir((scratch + "/tablespaces").c_str(), 0700) != 0)
      throw systemError(ErrorCode::LocalIo, errno, "cannot make '{}/tablespaces'", scratch);
    restore::RestoreStats stats = restore::restoreBackup(repository, plan.backup, data,
                                                         {.tablespaceMap = tablespaces,
                                                          .sync = false,
                                                          .terminal = 0,
                                                          .stopRequested = options.stopRequested});
    report.restoredBytes = stats.bytes;
    // The configuration the backup stored (the server kept it outside its data directory), with
    // data_directory and the files it names pointed at the scratch copy; the drill's own settings
    // (drillSettings) still win on the server's command line.
    restore::ConfigRestoreResult config =
        restore::restoreConfiguration(restore::readStoredConfiguration(repository, plan.backup),
                                      plan.backup, data, data, std::nullopt, false);
    if (!config.written.empty())
      spdlog::info("restored the server's configuration: {}",
                   plural(config.written.size(), "file", "files"));
    // The server's configuration: the backup's postgresql.conf when it has one (Debian keeps it
    // in /etc/postgresql: then one with the hot standby minimums, and PostgreSQL's defaults with
    // the drill's settings), and an hba_file that admits only local connections of the server's
    // user (the socket directory is the drill's, mode 0700).
    std::error_code ec;
    if (!fs::exists(data + "/postgresql.conf", ec)) {
      writeFile(data + "/postgresql.conf",
                "# written by tidemark drill: the backup had none\n" + hotStandbyMinimums(data),
                std::nullopt);
      report.warnings.push_back(
          "the backup has no postgresql.conf (the server kept its configuration outside the data "
          "directory, and this backup could not store it: tidemark info says why): the drill's "
          "server runs with PostgreSQL's defaults and the primary's hot standby settings from "
          "pg_control");
    }
    writeFile(scratch + "/pg_hba.conf", "local all all trust\n", std::nullopt);
    writeFile(scratch + "/pg_ident.conf", "", std::nullopt);
    if (lease) writeFile(data + "/" + repo::kLeaseMarkerFile, lease->marker(), std::nullopt);
    if (user.owner) restore::chownTree(scratch, true, user.owner->uid, user.owner->gid);
    files::syncTree(scratch);
    restore::writeRecoverySettings(
        data,
        restore::recoverySettings(recovery::settingsTarget(target, plan, false),
                                  options.restoreCommand),
        false, fmt::format("(tidemark drill, backup {}, {})", plan.backup.label, isoNow()),
        user.owner);
  });
  report.restoreSeconds = secondsSince(restoreStart);

  auto serverStart = Clock::now();
  inStep("start", [&] {
    ServerOptions serverOptions{.binDirectory = binDirectory,
                                .dataDirectory = data,
                                .socketDirectory = scratch,
                                .logFile = logFile,
                                .port = freePort(),
                                .owner = user.owner};
    serverOptions.settings =
        drillSettings(serverOptions, scratch + "/pg_hba.conf", scratch + "/pg_ident.conf");
    if (user.owner) {
      std::vector<std::string> writable = {scratch, "/dev/shm"};
      writable.insert(writable.end(), options.writablePaths.begin(), options.writablePaths.end());
      serverOptions.writablePaths = writable;
    }
    server.emplace(serverOptions);
    report.serverPid = server->pid();
    // Not isolated by the drill, and not by a sandbox either (tidemark-drill.service's
    // ProtectSystem=strict leaves "/" read-only).
    struct statvfs root {};
    bool rootReadOnly = ::statvfs("/", &root) == 0 && (root.f_flag & ST_RDONLY);
    if (!server->isolated() && !rootReadOnly)
      report.warnings.push_back(fmt::format(
          "the server runs as '{}' with the filesystem as it is{}: WAL replayed after the backup "
          "(a CREATE TABLESPACE at a path production uses) could write into production's files; "
          "run the drill as root (its server then sees every filesystem read-only but the "
          "scratch directory), in tidemark-drill.service, or on another host",
          user.name, user.owner ? " (a mount namespace could not be made)" : ""));
  });
  pg::Connection conn = inStep("replay", [&] {
    pg::Connection connected =
        waitForTarget(*server, user.name, target.kind != recovery::TargetKind::Latest, logFile,
                      options.stopRequested, begin, options.timeoutSeconds);
    // The server is the restored copy, not a cluster a data_directory setting pointed it to.
    std::string dataDirectory = connected.show("data_directory");
    if (fs::path(dataDirectory).lexically_normal() != fs::path(data).lexically_normal())
      throw StepFailure{"start", fmt::format("the server runs on '{}', not on the restored '{}'",
                                             dataDirectory, data)};
    return connected;
  });
  report.replaySeconds = secondsSince(serverStart);

  auto queryStart = Clock::now();
  DrillCheck connect = runCheck(conn, "connect", "SELECT 1");
  if (connect.ok && (connect.rows != 1 || connect.firstRow != std::vector<std::string>{"1"})) {
    connect.ok = false;
    connect.error = "SELECT 1 did not answer 1";
  }
  report.checks.push_back(connect);
  if (!connect.ok) throw StepFailure{"query", "the server does not answer: " + connect.error};
  report.rtoSeconds = secondsSince(begin);
  auto stopped = [&] {
    if (options.stopRequested && options.stopRequested())
      throw Error(ErrorCode::Interrupted, "the drill was interrupted");
  };
  int number = 0;
  for (const auto& statement : options.queries) {
    stopped();
    report.checks.push_back(runCheck(conn, fmt::format("query {}", ++number), statement));
  }
  stopped();
  DrillCheck replayed =
      runCheck(conn, "last replayed commit",
               "SELECT pg_last_wal_replay_lsn()::text, "
               "extract(epoch FROM pg_last_xact_replay_timestamp())::float8::text");
  report.checks.push_back(replayed);
  report.querySeconds = secondsSince(queryStart);
  // The last segment the replay read: its end is the end of its last record, so at a segment
  // boundary the segment after it was not read.
  std::optional<std::uint64_t> lastReplayed;
  const std::uint32_t segmentSize = plan.backup.walSegmentSize;
  if (replayed.ok && replayed.firstRow.size() == 2) {
    if (!replayed.firstRow[0].empty()) {
      report.replayLsn = replayed.firstRow[0];
      if (auto lsn = pg::parseLsn(replayed.firstRow[0]); lsn && *lsn && segmentSize) {
        lastReplayed = (*lsn - 1) / segmentSize;
        report.segmentsReplayed = *lastReplayed - plan.backup.startLsn / segmentSize + 1;
      }
    }
    // RPO: what a disaster at the drill's start would have lost: from the newest commit the
    // replay reached, or, when the replay reached none, from the end of the backup.
    if (!replayed.firstRow[1].empty()) {
      double commit = std::stod(replayed.firstRow[1]);
      report.lastReplayedCommit = formatTimestamp(
          UtcMicros(std::chrono::microseconds(std::int64_t(std::llround(commit * 1e6)))));
      report.rpoSeconds = std::max(0.0, beginEpoch - commit);
      report.rpoBasis = "last-replayed-commit";
    } else {
      report.rpoSeconds =
          std::max(0.0, beginEpoch - double(plan.backup.stopTime.time_since_epoch().count()));
      report.rpoBasis = "backup-end";
    }
  }
  for (const auto& check : report.checks)
    if (!check.ok)
      throw StepFailure{"query", fmt::format("{} failed: {}", check.name, check.error)};
  // To the end of the archive: the replay must have reached the last segment the plan checked. A
  // segment the listing showed that could not be fetched (gone since, or a store that answers
  // "not found" for it) ends PostgreSQL's recovery early, as if the archive ended there.
  if (target.kind == recovery::TargetKind::Latest &&
      (!lastReplayed || *lastReplayed < plan.lastSegment))
    throw StepFailure{"replay",
                      fmt::format("the replay ended at {}, before {}, the last segment of the "
                                  "archive the plan checked: the segments after it could not "
                                  "be restored",
                                  report.replayLsn.value_or("an unknown location"), plan.lastWal)};
}

}  // namespace

DrillReport runDrill(const repo::Repository& repository, const DrillOptions& options) {
  const auto begin = Clock::now();
  const double beginEpoch = epochNow();
  DrillReport report;
  report.stanza = repository.stanza();
  report.repository = repository.describe();
  report.started = isoNow();
  const std::string stanzaId = repo::requireStanza(repository).identity();
  // Its record is signed with the current key: one the stanza's readers do not hold would hide
  // the drills before it from info and metrics.
  repo::requireStanzaKey(repository);
  ServerUser user = serverUser();
  Scratch scratch(options.scratch);
  report.scratch = scratch.path();
  if (user.owner && ::chown(scratch.path().c_str(), user.owner->uid, user.owner->gid) != 0) {
    int saved = errno;
    scratch.remove();
    throw systemError(ErrorCode::LocalIo, saved, "cannot give '{}' to the server's user",
                      scratch.path());
  }

  std::optional<restore::RecoveryLease> lease;
  std::optional<DrillServer> server;
  // A signal (Error(Interrupted)) or anything unexpected: cleaned up like a failure, then thrown
  // on, without a record (it says nothing about the backup).
  std::exception_ptr aborted;
  try {
    drillSteps(repository, stanzaId, options, scratch.path(), user, begin, beginEpoch, lease,
               server, report);
    report.ok = true;
  } catch (const StepFailure& failure) {
    report.failedStep = failure.step;
    report.error = failure.message;
  } catch (...) {
    aborted = std::current_exception();
  }
  // Everything the drill started is stopped, on every path.
  bool serverLeft = false;
  if (server) {
    try {
      server->stop();
    } catch (const Error& e) {
      serverLeft = true;
      if (report.ok) {
        report.ok = false;
        report.failedStep = "stop";
        report.error = e.what();
      }
    }
  }
  if (!report.ok && !report.failedStep.empty())
    report.serverLog = logTail(scratch.path() + "/postgresql.log", kLogLines);
  // A server that would not stop keeps its directory and its lease on the WAL it reads.
  report.kept = serverLeft || (options.keep && !aborted);
  if (!report.kept) scratch.remove();
  if (lease && !serverLeft) lease->release();
  if (aborted) std::rethrow_exception(aborted);

  report.finished = isoNow();

  // The record: what `tidemark info` and `tidemark metrics` show as the last drill.
  try {
    auto record = repo::writeStateRecord(repository, stanzaId, repo::state_kind::kDrill,
                                         options.targetTime ? kTargetedSubject : kRecordSubject,
                                         reportJson(report, true).dump(2) + "\n");
    report.record = record.path;
  } catch (const Error& e) {
    spdlog::error("could not record the drill in the repository: {}", e.what());
  }
  return report;
}

std::string drillJson(const DrillReport& report) {
  return reportJson(report, false).dump(2) + "\n";
}

std::string drillText(const DrillReport& r) {
  std::string out;
  auto line = [&](const std::string& text) { out += text + "\n"; };
  line(fmt::format("drill of stanza '{}' ({}): {}", r.stanza, r.repository,
                   r.ok ? "PASSED" : "FAILED in the " + r.failedStep + " step"));
  if (!r.ok) line("  error:    " + r.error);
  if (!r.backup.empty())
    line(fmt::format("  backup:   {} (generation {})", r.backup, r.generation));
  line("  target:   " + r.target);
  line(r.timelinePath.empty()
           ? "  timeline: target timeline " + r.targetTimeline
           : fmt::format("  timeline: {} (target timeline {})", r.timelinePath, r.targetTimeline));
  line(fmt::format("  restore:  {:.1f} s ({})", r.restoreSeconds, humanBytes(r.restoredBytes)));
  line(fmt::format("  replay:   {:.1f} s, {} segment{}{}", r.replaySeconds, r.segmentsReplayed,
                   r.segmentsReplayed == 1 ? "" : "s",
                   r.replayLsn ? " to " + *r.replayLsn : std::string()));
  if (r.ok)
    line(fmt::format("  RTO:      {:.1f} s (start to target reached and answering)", r.rtoSeconds));
  if (r.rpoSeconds)
    line(fmt::format("  RPO:      {:.1f} s ({})", *r.rpoSeconds,
                     r.lastReplayedCommit
                         ? "last replayed commit " + *r.lastReplayedCommit
                         : std::string("no commit replayed: from the backup's end")));
  for (const auto& c : r.checks)
    line(fmt::format("  check {}: {}{}", c.name, c.ok ? "ok" : "FAILED: " + c.error,
                     c.ok && !c.firstRow.empty() && c.name != "last replayed commit"
                         ? fmt::format(" ({} row{}; first: {})", c.rows, c.rows == 1 ? "" : "s",
                                       fmt::join(c.firstRow, ", "))
                         : std::string()));
  for (const auto& w : r.warnings)
    line("  warning:  " + w);
  line(r.kept ? "  scratch:  " + r.scratch + " (kept: --keep)" : "  scratch:  removed");
  if (r.record) line("  recorded: " + *r.record);
  if (!r.serverLog.empty()) {
    line("  the server's log (last lines):");
    std::istringstream in(r.serverLog);
    for (std::string l; std::getline(in, l);)
      line("    " + l);
  }
  return out;
}

std::optional<DrillRecord> lastDrill(const repo::Repository& repository,
                                     const std::string& stanzaId) {
  // A record signed with a key this host lacks (a drill run with a wrong key-file) only informs:
  // the one before it holds.
  auto record = repo::newestStateRecord(repository, stanzaId, repo::state_kind::kDrill,
                                        kRecordSubject, nullptr, true);
  if (!record) return std::nullopt;
  try {
    Json doc = Json::parse(record->content);
    DrillRecord out;
    out.finished = doc.at("finished").get<std::string>();
    out.ok = doc.at("result").get<std::string>() == "ok";
    if (doc.at("failed-step").is_string()) out.failedStep = doc["failed-step"].get<std::string>();
    if (doc.at("backup").is_string()) out.backup = doc["backup"].get<std::string>();
    if (doc.at("rto-seconds").is_number()) out.rtoSeconds = doc["rto-seconds"].get<double>();
    if (doc.at("rpo-seconds").is_number()) out.rpoSeconds = doc["rpo-seconds"].get<double>();
    out.path = record->path;
    return out;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::Corrupt,
                fmt::format("drill record '{}' cannot be read: {}", record->path, e.what()),
                "run tidemark drill again: a new record replaces it");
  }
}

std::vector<OptionSpec> drillOptionSpecs() {
  return {
      {"backup", "LABEL", "restore this backup (default: the newest one)"},
      {"target-time", "TIMESTAMP",
       "replay to this moment instead of to the end of the archive ('2026-11-22 10:42:07+01')"},
      {"target-timeline", "TLI",
       "latest (default: the one branch the backup leads to) | current | a timeline number; "
       "replaces drill.target-timeline"},
      {"scratch", "DIR",
       "restore here: an empty or absent directory (default: drill.scratch, else a fresh folder "
       "under /var/tmp)"},
      {"query", "SQL",
       "a statement to run on the restored copy; each must succeed (repeatable; "
       "replaces drill.queries)",
       true},
      {"keep", "", "keep the scratch directory (the server is stopped all the same)"},
      {"timeout", "DURATION",
       "fail the drill when the target is not reached this long after its start (5h, 90m; "
       "default: no limit)"},
      {"output", "FORMAT", "text (default) or json (fields: " + docPath("drill.md") + ")"},
  };
}

namespace {

// What to look at for a failed step (docs/operations.md, "Reading a drill report").
std::string failureHint(const std::string& step) {
  if (step == "plan") return "tidemark info shows the backups and how far the WAL reaches";
  if (step == "restore")
    return "tidemark verify names damaged objects; a new backup restores without them";
  if (step == "query") return "the report shows each check's error";
  return "the report ends with the server's log; " + docPath("drill.md") +
         " says what each step checks";
}

}  // namespace

int drill(const Config& config, const CommandLine& commandLine,
          const std::function<bool()>& stopRequested) {
  OutputFormat format = parseOutputFormat(commandLine);
  DrillOptions options;
  options.backup = commandLine.value("backup");
  options.targetTime = commandLine.value("target-time");
  if (options.backup && options.targetTime)
    throw Error(ErrorCode::Usage, "give --backup or --target-time, not both",
                "--backup replays the backup to the end of the archive; --target-time chooses "
                "the backup that reaches the target");
  if (options.targetTime) parseTimestamp(*options.targetTime, "--target-time");
  if (auto v = commandLine.value("target-timeline"))
    options.targetTimeline = recovery::parseTimelineChoice(*v, "--target-timeline");
  else
    options.targetTimeline = recovery::parseTimelineChoice(
        config.drill.targetTimeline, "drill.target-timeline", ErrorCode::Config);
  options.scratch = commandLine.value("scratch").value_or(config.drill.scratch);
  auto queries = commandLine.options.find("query");
  options.queries = queries != commandLine.options.end() ? queries->second : config.drill.queries;
  options.pgBin = config.drill.pgBin;
  options.keep = commandLine.has("keep");
  options.stopRequested = stopRequested;
  options.leaseTimeout = config.retention.leaseTimeout;
  options.restoreCommand = restore::restoreCommand(config);
  if (auto timeout = commandLine.value("timeout")) {
    auto seconds = parseDurationSeconds(*timeout);
    if (!seconds || *seconds <= 0)
      throw Error(ErrorCode::Usage, fmt::format("--timeout '{}' is not a duration", *timeout),
                  "for example 5h or 90m");
    options.timeoutSeconds = *seconds;
  }
  if (config.repo.type == "posix") options.writablePaths.push_back(config.repo.path);
  if (!config.log.file.empty())
    options.writablePaths.push_back(fs::path(config.log.file).parent_path().string());
  repo::Repository repository = repo::openRepository(config);
  DrillReport report = runDrill(repository, options);
  std::string text = format == OutputFormat::Json ? drillJson(report) : drillText(report);
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0)
    throw systemError(ErrorCode::LocalIo, errno, "cannot write the report to standard output");
  if (!report.ok)
    throw Error(ErrorCode::Unhealthy,
                fmt::format("the drill failed in the {} step: {}", report.failedStep, report.error),
                failureHint(report.failedStep));
  return 0;
}

}  // namespace tidemark::ctl
