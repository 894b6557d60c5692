// tidemark-recover: the command.
#include "recover/recover.h"

#include <dirent.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/pg/connection.h"
#include "common/repo/stanza.h"
#include "common/text.h"
#include "recover/restore.h"
#include "recover/settings.h"

extern char** environ;

namespace fs = std::filesystem;

namespace tidemark::recover {

namespace {

[[noreturn]] void usage(const std::string& message, const std::string& hint = "run 'tidemark-recover --help'") {
  throw Error(ErrorCode::Usage, message, hint);
}

bool isAbsoluteDirectoryPath(const std::string& path) { return !path.empty() && path.front() == '/'; }

// A PostgreSQL server running in `dir`: its postmaster.pid names a live process.
std::optional<long> runningServer(const std::string& dir) {
  std::ifstream in(dir + "/postmaster.pid");
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return std::nullopt;
  if (::kill(pid_t(pid), 0) == 0 || errno == EPERM) return pid;
  return std::nullopt;
}

bool isEmpty(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return true;
  return fs::is_directory(dir, ec) && fs::is_empty(dir, ec);
}

// Makes room in `dir` (the data directory or a tablespace location): it must be absent or empty,
// unless --force, which removes what is there (never while a server runs in it).
void clearPlace(const std::string& dir, const std::string& what, bool force) {
  if (isEmpty(dir)) return;
  if (!force)
    throw Error(ErrorCode::InvalidInput, fmt::format("{} '{}' is not empty", what, dir),
                "choose an empty directory, or add --force to replace everything in it");
  if (auto pid = runningServer(dir))
    throw Error(ErrorCode::InvalidInput,
                fmt::format("a PostgreSQL server (pid {}) is running in {} '{}'", *pid, what, dir),
                "stop it before recovering into its directory");
  spdlog::warn("--force: removing everything in {} '{}'", what, dir);
  for (const auto& entry : fs::directory_iterator(dir)) fs::remove_all(entry.path());
}

// The owner root should give what it restored: the data directory's, or its parent's.
std::optional<std::pair<uid_t, gid_t>> restoredOwner(const std::string& dataDirectory) {
  if (::geteuid() != 0) return std::nullopt;
  for (const std::string& candidate : {dataDirectory, fs::path(dataDirectory).parent_path().string()}) {
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && st.st_uid != 0) return std::make_pair(st.st_uid, st.st_gid);
  }
  return std::nullopt;
}

void chownTree(const std::string& root, uid_t uid, gid_t gid) {
  if (::lchown(root.c_str(), uid, gid) != 0) throw systemError(ErrorCode::LocalIo, errno, "cannot chown '{}'", root);
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (::lchown(entry.path().c_str(), uid, gid) != 0)
      throw systemError(ErrorCode::LocalIo, errno, "cannot chown '{}'", entry.path().string());
  }
}

std::string selfDirectory() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : self.parent_path().string();
}

std::string findProgram(const std::string& name) {
  std::string beside = selfDirectory() + "/" + name;
  if (::access(beside.c_str(), X_OK) == 0) return beside;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  for (std::size_t start = 0; start <= dirs.size();) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (end > start && candidate.front() == '/' && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  throw Error(ErrorCode::Config, fmt::format("cannot find {} next to tidemark-recover or on PATH", name),
              "install tidemark's binaries together (cmake --install)");
}

}  // namespace

std::vector<OptionSpec> recoverOptionSpecs() {
  return {
      {"pgdata", "DIR", "the data directory to restore into (absolute; empty unless --force)"},
      {"target-time", "TIMESTAMP", "stop at this moment; the zone is required ('2026-11-22 10:42:07+01')"},
      {"target-lsn", "LSN", "stop at this WAL location (0/5000100)"},
      {"target-xid", "XID", "stop at this transaction"},
      {"target-name", "NAME", "stop at this restore point (pg_create_restore_point)"},
      {"target", "immediate", "stop as soon as the backup is consistent"},
      {"target-action", "ACTION", "pause (default) | promote | shutdown, once the target is reached"},
      {"target-exclusive", "", "stop just before the target instead of just after it"},
      {"target-timeline", "TLI", "latest (default) | current | a timeline number"},
      {"backup", "LABEL", "restore this backup instead of the one tidemark chooses"},
      {"tablespace-map", "OID=DIR", "restore tablespace OID into DIR (repeatable)", true},
      {"standby", "", "write standby.signal instead of recovery.signal"},
      {"dry-run", "", "show the plan and check the WAL; write nothing"},
      {"force", "", "replace everything in a non-empty data directory or tablespace location"},
  };
}

RecoverOptions parseRecoverOptions(const CommandLine& cl) {
  RecoverOptions options;
  auto pgdata = cl.value("pgdata");
  if (!pgdata) usage("--pgdata is required", "give the data directory to restore into: --pgdata=/var/lib/postgresql/15/main");
  if (!isAbsoluteDirectoryPath(*pgdata)) usage(fmt::format("--pgdata '{}' is not an absolute path", *pgdata));
  options.dataDirectory = fs::path(*pgdata).lexically_normal().string();
  while (options.dataDirectory.size() > 1 && options.dataDirectory.back() == '/') options.dataDirectory.pop_back();

  int targets = 0;
  Target& t = options.target;
  if (auto v = cl.value("target-time")) {
    ++targets;
    t.kind = TargetKind::Time;
    t.text = *v;
    t.time = parseTimestamp(*v);
  }
  if (auto v = cl.value("target-lsn")) {
    ++targets;
    t.kind = TargetKind::Lsn;
    t.text = *v;
    try {
      t.lsn = pg::parseLsn(*v);
    } catch (const Error&) {
      usage(fmt::format("--target-lsn '{}' is not a WAL location", *v), "write it as PostgreSQL does: 0/5000100");
    }
  }
  if (auto v = cl.value("target-xid")) {
    ++targets;
    t.kind = TargetKind::Xid;
    t.text = *v;
    if (v->empty() || v->find_first_not_of("0123456789") != std::string::npos)
      usage(fmt::format("--target-xid '{}' is not a transaction id", *v), "give the number, e.g. --target-xid=7421");
  }
  if (auto v = cl.value("target-name")) {
    ++targets;
    t.kind = TargetKind::Name;
    t.text = *v;
    if (v->empty()) usage("--target-name is empty");
  }
  if (auto v = cl.value("target")) {
    ++targets;
    if (*v != "immediate") usage(fmt::format("--target '{}' is not 'immediate'", *v));
    t.kind = TargetKind::Immediate;
    t.text = *v;
  }
  if (targets > 1) usage("give at most one of --target-time, --target-lsn, --target-xid, --target-name, --target");
  if (auto v = cl.value("target-action")) {
    if (*v != "pause" && *v != "promote" && *v != "shutdown")
      usage(fmt::format("--target-action '{}' is not pause, promote or shutdown", *v));
    if (t.kind == TargetKind::Latest) usage("--target-action needs a target (without one, recovery promotes at the end)");
    t.action = *v;
  }
  if (cl.has("target-exclusive")) {
    if (t.kind == TargetKind::Latest || t.kind == TargetKind::Immediate)
      usage("--target-exclusive applies to --target-time, --target-lsn, --target-xid or --target-name");
    t.exclusive = true;
  }
  if (auto v = cl.value("target-timeline")) t.timeline = *v;
  options.backup = cl.value("backup");
  if (auto it = cl.options.find("tablespace-map"); it != cl.options.end()) {
    for (const auto& mapping : it->second) {
      auto eq = mapping.find('=');
      std::uint32_t oid = 0;
      try {
        oid = eq == std::string::npos ? 0 : std::uint32_t(std::stoul(mapping.substr(0, eq)));
      } catch (const std::logic_error&) {
      }
      std::string dir = eq == std::string::npos ? "" : mapping.substr(eq + 1);
      if (oid == 0 || !isAbsoluteDirectoryPath(dir))
        usage(fmt::format("--tablespace-map '{}' is not OID=/absolute/dir", mapping),
              "tidemark info shows each backup's tablespaces and their OIDs");
      options.tablespaceMap[oid] = fs::path(dir).lexically_normal().string();
    }
  }
  options.standby = cl.has("standby");
  options.dryRun = cl.has("dry-run");
  options.force = cl.has("force");
  return options;
}

std::string restoreCommand(const Config& config, const CommandLine& commandLine) {
  std::string command = shellQuote(findProgram("tidemark-archive-get"));
  if (!config.file.empty()) command += " --config " + shellQuote(config.file);
  for (const auto& [flag, value] : commandLine.overrides) command += " " + shellQuote("--" + flag + "=" + value);
  return command + " %f %p";
}

RecoveryPlan recover(const Config& config, const CommandLine& commandLine, const RecoverOptions& options,
                     const std::function<bool()>& stopRequested) {
  auto storage = storage::openStorage(config);
  repo::Keyring keys = repo::loadKeyring(config);
  RecoveryPlan plan = planRecovery(*storage, config.stanza, options.target, options.backup, keys);
  std::fputs(describePlan(plan, options.target).c_str(), stdout);
  std::fflush(stdout);
  for (const auto& object : plan.backup.objects)
    if (object.tablespaceOid && !options.tablespaceMap.count(object.tablespaceOid))
      std::printf("tablespace %u: restored to %s (its original location; --tablespace-map %u=DIR to move it)\n",
                  object.tablespaceOid, object.tablespaceLocation.c_str(), object.tablespaceOid);
  for (const auto& [oid, dir] : options.tablespaceMap) {
    bool known = false;
    for (const auto& object : plan.backup.objects) known = known || object.tablespaceOid == oid;
    if (!known) usage(fmt::format("--tablespace-map names tablespace {}, which backup {} does not have", oid, plan.backup.label));
  }
  if (options.dryRun) {
    std::puts("dry run: nothing was written");
    return plan;
  }
  // Environment settings do not reach PostgreSQL's restore_command.
  for (char** e = environ; e && *e; ++e) {
    std::string entry = *e;
    if (entry.rfind("TIDEMARK_", 0) == 0 && entry.rfind("TIDEMARK_CONFIG=", 0) != 0)
      spdlog::warn("{} is set here, but PostgreSQL's restore_command will not see it: put the setting in the "
                   "configuration file",
                   entry.substr(0, entry.find('=')));
  }
  std::string command = restoreCommand(config, commandLine);

  // Room for the restore.
  bool existed = fs::exists(options.dataDirectory);
  auto owner = restoredOwner(options.dataDirectory);
  clearPlace(options.dataDirectory, "data directory", options.force);
  std::vector<std::string> tablespaceDirs;
  for (const auto& object : plan.backup.objects) {
    if (!object.tablespaceOid) continue;
    auto mapped = options.tablespaceMap.find(object.tablespaceOid);
    std::string dir = mapped != options.tablespaceMap.end() ? mapped->second : object.tablespaceLocation;
    clearPlace(dir, fmt::format("the location of tablespace {}", object.tablespaceOid), options.force);
    tablespaceDirs.push_back(dir);
  }

  try {
    RestoreStats stats = restoreBackup(
        *storage, config.stanza, plan.backup, options.dataDirectory,
        RestoreOptions{.tablespaceMap = options.tablespaceMap, .stopRequested = stopRequested,
                       .openStorage = [&config] { return storage::openStorage(config); },
                       .keys = &keys});
    std::string note = fmt::format("(backup {}, {})", plan.backup.label, repo::utcNow());
    writeRecoverySettings(options.dataDirectory, recoverySettings(options.target, command), options.standby, note);
    if (owner) {
      chownTree(options.dataDirectory, owner->first, owner->second);
      for (const auto& dir : tablespaceDirs) chownTree(dir, owner->first, owner->second);
    }
    spdlog::info("restored backup {}: {} in {} files, {:.1f} s ({}/s)", plan.backup.label, humanBytes(stats.bytes),
                 stats.files, stats.seconds, humanBytes(std::uint64_t(double(stats.bytes) / std::max(stats.seconds, 1e-3))));
  } catch (...) {
    // Never leave a half-restored directory that someone could start.
    spdlog::error("the restore failed: removing what was written in '{}'", options.dataDirectory);
    std::error_code ec;
    if (existed) {
      for (const auto& entry : fs::directory_iterator(options.dataDirectory, ec)) fs::remove_all(entry.path(), ec);
    } else {
      fs::remove_all(options.dataDirectory, ec);
    }
    for (const auto& dir : tablespaceDirs)
      for (const auto& entry : fs::directory_iterator(dir, ec)) fs::remove_all(entry.path(), ec);
    throw;
  }

  std::string binDir = fmt::format("/usr/lib/postgresql/{}/bin", plan.backup.pgVersion);
  std::string pgCtl = ::access((binDir + "/pg_ctl").c_str(), X_OK) == 0 ? binDir + "/pg_ctl" : "pg_ctl";
  std::printf("\nthe data directory is ready; recovery settings are in %s/postgresql.auto.conf\n",
              options.dataDirectory.c_str());
  if (!owner && ::geteuid() == 0)
    std::printf("  it belongs to root: give it to the server's user first: chown -R postgres:postgres %s\n",
                options.dataDirectory.c_str());
  std::printf("start PostgreSQL (as its user):\n  %s -D %s -l %s/recovery.log start\n", pgCtl.c_str(),
              options.dataDirectory.c_str(), options.dataDirectory.c_str());
  std::printf("then check:\n");
  std::printf("  - the log: 'restored log file ... from archive' lines, then 'recovery stopping' at the target\n");
  if (options.target.kind == TargetKind::Latest)
    std::printf("  - after the last archived WAL the server promotes to a new timeline and accepts writes\n");
  else if (options.target.action == "pause")
    std::printf("  - at the target the server pauses, read-only: check the data, then\n"
                "    SELECT pg_wal_replay_resume(); to promote (or restore again with another target)\n");
  else if (options.target.action == "promote")
    std::printf("  - at the target the server promotes to a new timeline and accepts writes\n");
  else
    std::printf("  - at the target the server shuts down; remove recovery.signal to start it normally\n");
  std::printf("  - archiving: the recovered server archives its new timeline into the same stanza\n"
              "    (archive_command is whatever its postgresql.conf says)\n");
  return plan;
}

}  // namespace tidemark::recover
