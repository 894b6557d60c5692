// tidemark-recover: the command.
#include "recover/recover.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/base/time.h"
#include "common/base/version.h"
#include "common/files/file.h"
#include "common/pg/config_file.h"
#include "common/pg/lsn.h"
#include "common/pg/wal.h"
#include "common/pg/waldump.h"
#include "common/recovery/catalog.h"
#include "common/repo/marks.h"
#include "common/repo/repository.h"
#include "common/repo/stanza.h"
#include "common/restore/lease.h"
#include "common/restore/preflight.h"
#include "common/restore/restore.h"
#include "common/restore/server_config.h"
#include "common/restore/settings.h"
#include "common/spool/gap_record.h"
#include "common/spool/spool.h"

namespace fs = std::filesystem;

namespace tidemark::recover {

using restore::checkDataDirectoryMode;
using restore::checkTablespaceLocation;
using restore::chownTree;
using restore::restoreBackup;
using restore::RestoreOptions;
using restore::RestoreStats;

namespace {

[[noreturn]] void usage(const std::string& message,
                        const std::string& hint = "run 'tidemark-recover --help'") {
  throw Error(ErrorCode::Usage, message, hint);
}

bool isAbsoluteDirectoryPath(const std::string& path) {
  return !path.empty() && path.front() == '/';
}

// A directory given as `flag` is absolute and on one line: postgresql.conf (data_directory) and
// tablespace_map, which may name it, end a value at a line break, and what follows it would be
// read as a line of its own.
void checkDirectoryArgument(const std::string& flag, const std::string& argument) {
  if (argument.find_first_of("\r\n") != std::string::npos)
    usage(fmt::format("{} '{}' holds a line break", flag, printable(argument)),
          "give a directory whose path is one line: postgresql.conf and tablespace_map name it");
}

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

// Whether `dir` may be restored into: absent or empty; or, with --force, replaceable: the data
// directory (never while a server runs in it), or a tablespace location that the data directory
// being replaced links to from pg_tblspc (a non-empty directory nobody pointed us at may be the
// tablespace of a live server: tidemark never empties it). Throws Error(InvalidInput) otherwise.
// Writes nothing.
void checkPlace(const std::string& dir, const std::string& what, bool force, bool replaceable,
                const std::string& refusalHint) {
  if (isEmpty(dir)) return;
  if (!force || !replaceable)
    throw Error(ErrorCode::InvalidInput, fmt::format("{} '{}' is not empty", what, dir),
                refusalHint);
  if (auto pid = runningServer(dir))
    throw Error(ErrorCode::InvalidInput,
                fmt::format("a PostgreSQL server (pid {}) is running in {} '{}'", *pid, what, dir),
                "stop it before recovering into its directory");
}

// What makes a data directory startable, removed (and the removal made durable) before anything
// else when --force empties one: a kill or a crash in the middle of the emptying then leaves a
// directory PostgreSQL refuses to start (no pg_control), never a half-removed one that still
// carries recovery.signal and restore_command.
constexpr const char* kStartGuards[] = {"recovery.signal", "standby.signal", "global/pg_control"};

// Empties `dir` once checkPlace accepted it.
void clearPlace(const std::string& dir, const std::string& what, bool dataDirectory) {
  if (isEmpty(dir)) return;
  spdlog::warn("--force: removing everything in {} '{}'", what, dir);
  std::error_code ec;
  if (dataDirectory) {
    for (const char* name : kStartGuards) {
      std::string path = dir + "/" + name;
      if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        throw systemError(ErrorCode::LocalIo, errno, "cannot remove '{}'", path);
    }
    if (fs::is_directory(dir + "/global", ec)) files::syncDirectory(dir + "/global");
    files::syncDirectory(dir);
  }
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    fs::remove_all(entry.path(), ec);
    if (ec)
      throw systemError(ErrorCode::LocalIo, ec.value(), "cannot remove '{}'",
                        entry.path().string());
  }
  if (ec) throw systemError(ErrorCode::LocalIo, ec.value(), "cannot list '{}'", dir);
}

// The directories the data directory's pg_tblspc links point to (normalised): the tablespace
// locations of the cluster that --force replaces.
std::set<std::string> linkedTablespaces(const std::string& dataDirectory) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dataDirectory + "/pg_tblspc", ec)) {
    std::error_code linkError;
    fs::path target = fs::read_symlink(entry.path(), linkError);
    if (!linkError && target.is_absolute()) out.insert(target.lexically_normal().string());
  }
  return out;
}

// The owner root should give what it restored, unless that is root: the data directory's, or, for
// one tidemark creates, its parent's.
std::optional<files::Owner> restoredOwner(const std::string& dataDirectory) {
  if (::geteuid() != 0) return std::nullopt;
  struct stat st {};
  if (::stat(dataDirectory.c_str(), &st) != 0 &&
      ::stat(fs::path(dataDirectory).parent_path().c_str(), &st) != 0)
    return std::nullopt;
  if (st.st_uid == 0) return std::nullopt;
  return files::Owner{st.st_uid, st.st_gid};
}

}  // namespace

std::vector<OptionSpec> recoverOptionSpecs() {
  return {
      {"pgdata", "DIR", "the data directory to restore into (absolute; empty unless --force)"},
      {"target-time", "TIMESTAMP",
       "stop at this moment; the zone is required ('2026-11-22 10:42:07+01')"},
      {"target-lsn", "LSN", "stop at this WAL location (0/5000100)"},
      {"target-xid", "XID", "stop at this transaction"},
      {"target-name", "NAME", "stop at this restore point (pg_create_restore_point)"},
      {"target", "immediate", "stop as soon as the backup is consistent"},
      {"target-action", "ACTION",
       "pause (default) | promote | shutdown, once the target is reached"},
      {"target-exclusive", "", "stop just before the target instead of just after it"},
      {"target-timeline", "TLI", "latest (default) | current | a timeline number"},
      {"backup", "LABEL", "restore this backup instead of the one tidemark chooses"},
      {"tablespace-map", "OID=DIR", "restore tablespace OID into DIR (repeatable)", true},
      {"archiving", "on|off|preserve",
       "after recovery: on (it becomes the primary and archives into the stanza), off (a copy: no "
       "archiving, archive cleanup, pid file, synchronous standbys or logical replication "
       "workers), preserve (its own settings); required when it promotes, else off"},
      {"port", "PORT", "the port the recovered server listens on (a copy beside the original)"},
      {"config-dir", "DIR",
       "where the server's configuration files go when the backup holds them (the server kept "
       "them outside its data directory, as Debian does in /etc/postgresql): default the data "
       "directory"},
      {"standby", "", "write standby.signal instead of recovery.signal"},
      {"dry-run", "", "show the plan and check the WAL; write nothing"},
      {"verify", "",
       "before restoring (or with --dry-run), read and verify every object the plan needs: the "
       "backup's archives and each WAL file"},
      {"force", "", "replace everything in a non-empty data directory or tablespace location"},
  };
}

namespace {

// The target options: at most one target, with its action, inclusiveness and timeline.
recovery::Target parseTarget(const CommandLine& cl) {
  recovery::Target t;
  int targets = 0;
  if (auto v = cl.value("target-time")) {
    ++targets;
    t.kind = recovery::TargetKind::Time;
    t.text = *v;
    t.time = parseTimestamp(*v, "--target-time");
  }
  if (auto v = cl.value("target-lsn")) {
    ++targets;
    t.kind = recovery::TargetKind::Lsn;
    t.text = *v;
    auto lsn = pg::parseLsn(*v);
    if (!lsn)
      usage(fmt::format("--target-lsn '{}' is not a WAL location", *v),
            "write it as PostgreSQL does: 0/5000100");
    t.lsn = *lsn;
  }
  if (auto v = cl.value("target-xid")) {
    ++targets;
    t.kind = recovery::TargetKind::Xid;
    std::optional<std::uint64_t> xid = parseDecimal(*v);
    if (!xid || *xid == 0)
      usage(fmt::format("--target-xid '{}' is not a transaction id", *v),
            "give the number, e.g. --target-xid=7421");
    t.xid = *xid;
    t.text = std::to_string(*xid);  // PostgreSQL would read a leading 0 as octal
  }
  if (auto v = cl.value("target-name")) {
    ++targets;
    t.kind = recovery::TargetKind::Name;
    t.text = *v;
    if (v->empty()) usage("--target-name is empty");
    // PostgreSQL's restore point names are at most 63 bytes (MAXFNAMELEN - 1); a line break
    // would end the setting early in postgresql.auto.conf.
    if (v->size() > 63)
      usage(fmt::format("--target-name is {} bytes long; restore point names are at most 63",
                        v->size()),
            "give the name exactly as pg_create_restore_point() was given it");
    if (v->find_first_of("\n\r") != std::string::npos)
      usage("--target-name holds a line break; restore point names are one line",
            "give the name exactly as pg_create_restore_point() was given it");
  }
  if (auto v = cl.value("target")) {
    ++targets;
    if (*v != "immediate") usage(fmt::format("--target '{}' is not 'immediate'", *v));
    t.kind = recovery::TargetKind::Immediate;
    t.text = *v;
  }
  if (targets > 1)
    usage("give at most one of --target-time, --target-lsn, --target-xid, --target-name, --target");
  if (auto v = cl.value("target-action")) {
    auto action = recovery::parseAction(*v);
    if (!action) usage(fmt::format("--target-action '{}' is not pause, promote or shutdown", *v));
    if (t.kind == recovery::TargetKind::Latest)
      usage("--target-action needs a target (without one, recovery promotes at the end)");
    t.action = *action;
  }
  if (cl.has("target-exclusive")) {
    if (t.kind == recovery::TargetKind::Latest || t.kind == recovery::TargetKind::Immediate)
      usage(
          "--target-exclusive applies to --target-time, --target-lsn, --target-xid or "
          "--target-name");
    t.exclusive = true;
  }
  if (auto v = cl.value("target-timeline"))
    t.timeline = recovery::parseTimelineChoice(*v, "--target-timeline");
  return t;
}

// --tablespace-map OID=DIR, repeatable: normalised absolute directories, one per OID.
std::map<std::uint32_t, std::string> parseTablespaceMap(const CommandLine& cl) {
  std::map<std::uint32_t, std::string> map;
  auto it = cl.options.find("tablespace-map");
  if (it == cl.options.end()) return map;
  for (const auto& mapping : it->second) {
    auto eq = mapping.find('=');
    std::optional<std::uint64_t> oid = parseDecimal(mapping.substr(0, eq));
    std::string dir = eq == std::string::npos ? "" : mapping.substr(eq + 1);
    if (eq == std::string::npos || !oid || *oid == 0 || *oid > 0xFFFFFFFFu ||
        !isAbsoluteDirectoryPath(dir))
      usage(fmt::format("--tablespace-map '{}' is not OID=/absolute/dir", mapping),
            "tidemark info shows each backup's tablespaces and their OIDs");
    checkDirectoryArgument("--tablespace-map", mapping);
    dir = files::normalPath(dir);
    auto [existing, added] = map.emplace(std::uint32_t(*oid), dir);
    if (!added && existing->second != dir)
      usage(fmt::format("--tablespace-map gives tablespace {} two places: '{}' and '{}'", *oid,
                        existing->second, dir));
  }
  return map;
}

}  // namespace

RecoverOptions parseRecoverOptions(const CommandLine& cl) {
  RecoverOptions options;
  auto pgdata = cl.value("pgdata");
  if (!pgdata)
    usage("--pgdata is required",
          "give the data directory to restore into: --pgdata=/var/lib/postgresql/15/main");
  if (!isAbsoluteDirectoryPath(*pgdata))
    usage(fmt::format("--pgdata '{}' is not an absolute path", *pgdata));
  checkDirectoryArgument("--pgdata", *pgdata);
  options.dataDirectory = files::normalPath(*pgdata);
  options.configDirectory = options.dataDirectory;
  if (auto dir = cl.value("config-dir")) {
    if (!isAbsoluteDirectoryPath(*dir))
      usage(fmt::format("--config-dir '{}' is not an absolute path", *dir));
    checkDirectoryArgument("--config-dir", *dir);
    options.configDirectory = files::normalPath(*dir);
    if (options.configDirectory != options.dataDirectory &&
        (files::within(options.configDirectory, options.dataDirectory) ||
         files::within(options.dataDirectory, options.configDirectory)))
      usage(fmt::format("--config-dir '{}' overlaps the data directory '{}'",
                        options.configDirectory, options.dataDirectory),
            "give the data directory itself (the default) or a directory outside it, e.g. "
            "--config-dir=/etc/postgresql/15/restore");
  }
  options.target = parseTarget(cl);
  options.backup = cl.value("backup");
  options.tablespaceMap = parseTablespaceMap(cl);
  options.standby = cl.has("standby");
  options.dryRun = cl.has("dry-run");
  options.force = cl.has("force");
  options.verify = cl.has("verify");
  if (auto v = cl.value("archiving")) {
    if (*v == "on")
      options.archiving = Archiving::On;
    else if (*v == "off")
      options.archiving = Archiving::Off;
    else if (*v == "preserve")
      options.archiving = Archiving::Preserve;
    else
      usage(fmt::format("--archiving '{}' is not on, off or preserve", *v));
  }
  if (auto v = cl.value("port")) {
    std::optional<std::uint64_t> port = parseDecimal(*v);
    if (!port || *port == 0 || *port > 65535)
      usage(fmt::format("--port '{}' is not a port number (1..65535)", *v));
    options.port = int(*port);
  }
  // Before anything is planned or written: a promoted copy that keeps production's
  // archive_command pushes its new timeline into production's stanza, and every later recovery
  // with recovery_target_timeline = latest follows that copy (docs/recovery.md).
  if (willPromote(options) && !options.archiving)
    usage(
        "the recovered server promotes at the end of recovery: choose --archiving=on (it becomes "
        "the primary and archives into the stanza) or --archiving=off (a copy that never "
        "archives)",
        "a copy restored beside production with archiving on writes its timeline into "
        "production's stanza (" +
            docPath("recovery.md") + ", \"Archiving after recovery\")");
  return options;
}

bool willPromote(const RecoverOptions& options) {
  // A standby with no target follows the archive for ever; with a target, recovery_target_action
  // applies to it too (PostgreSQL 15).
  if (options.target.kind == recovery::TargetKind::Latest) return !options.standby;
  return options.target.action == recovery::TargetAction::Promote;
}

Archiving effectiveArchiving(const RecoverOptions& options) {
  return options.archiving.value_or(Archiving::Off);
}

std::vector<std::string> serverSettings(const RecoverOptions& options) {
  std::vector<std::string> lines;
  switch (effectiveArchiving(options)) {
    case Archiving::On:
      lines.push_back("archive_mode = 'on'");
      break;
    case Archiving::Off:
      for (const auto& [name, value] : restore::isolatedCopySettings())
        lines.push_back(
            name + " = " +
            (!value.empty() && value.find_first_not_of("0123456789") == std::string::npos
                 ? value
                 : restore::confQuote(value)));
      break;
    case Archiving::Preserve:
      break;
  }
  if (options.port) lines.push_back(fmt::format("port = {}", *options.port));
  return lines;
}

namespace {

// Where a tablespace is restored.
struct Place {
  std::uint32_t oid;
  std::string dir;
};

// Where each tablespace of the backup goes (its mapped place, else its original location), said
// in the plan; no place may hold another, or the data directory. Writes nothing.
std::vector<Place> tablespacePlaces(const recovery::RecoveryPlan& plan,
                                    const RecoverOptions& options) {
  for (const auto& object : plan.backup.objects) {
    if (!object.tablespaceOid) continue;
    auto mapped = options.tablespaceMap.find(object.tablespaceOid);
    if (mapped == options.tablespaceMap.end())
      std::printf(
          "tablespace %u: restored to %s (its original location; --tablespace-map %u=DIR to move "
          "it)\n",
          object.tablespaceOid, object.tablespaceLocation.c_str(), object.tablespaceOid);
    else
      std::printf("tablespace %u: restored to %s (--tablespace-map; its original location: %s)\n",
                  object.tablespaceOid, mapped->second.c_str(), object.tablespaceLocation.c_str());
  }
  for (const auto& [oid, dir] : options.tablespaceMap) {
    bool known =
        std::any_of(plan.backup.objects.begin(), plan.backup.objects.end(),
                    [oid = oid](const auto& object) { return object.tablespaceOid == oid; });
    if (!known) {
      std::string has;
      for (const auto& object : plan.backup.objects)
        if (object.tablespaceOid)
          has += fmt::format("{}{} ({})", has.empty() ? "" : ", ", object.tablespaceOid,
                             object.tablespaceLocation);
      usage(fmt::format("--tablespace-map names tablespace {}, which backup {} does not have", oid,
                        plan.backup.label),
            has.empty() ? "the backup has no tablespaces: leave out --tablespace-map"
                        : "its tablespaces are " + has);
    }
  }
  std::vector<Place> places;
  for (const auto& object : plan.backup.objects) {
    if (!object.tablespaceOid) continue;
    auto mapped = options.tablespaceMap.find(object.tablespaceOid);
    std::string dir = mapped != options.tablespaceMap.end()
                          ? mapped->second
                          : files::normalPath(object.tablespaceLocation);
    checkTablespaceLocation(object.tablespaceOid, dir);
    if (files::within(dir, options.dataDirectory) || files::within(options.dataDirectory, dir))
      usage(fmt::format(
                "tablespace {} would be restored to '{}', which overlaps the data directory '{}'",
                object.tablespaceOid, dir, options.dataDirectory),
            fmt::format("restore it elsewhere: --tablespace-map {}=DIR", object.tablespaceOid));
    for (const auto& other : places)
      if (files::within(dir, other.dir) || files::within(other.dir, dir))
        usage(fmt::format(
                  "tablespaces {} and {} would be restored to overlapping places ('{}' and '{}')",
                  other.oid, object.tablespaceOid, other.dir, dir),
              "give each its own directory with --tablespace-map OID=DIR");
    places.push_back({object.tablespaceOid, dir});
  }
  return places;
}

// Room for the restore: checked for every place before anything is removed.
void checkPlaces(const RecoverOptions& options, const std::vector<Place>& places) {
  const std::set<std::string> linked = linkedTablespaces(options.dataDirectory);
  checkPlace(options.dataDirectory, "data directory", options.force, true,
             "choose an empty directory, or add --force to replace everything in it");
  checkDataDirectoryMode(options.dataDirectory);
  // Every location refused is named at once: one run, not one per tablespace, says what to move.
  std::vector<Place> refused;
  for (const auto& place : places) {
    const bool replaceable = linked.count(place.dir) > 0;
    if (!isEmpty(place.dir) && (!options.force || !replaceable))
      refused.push_back(place);
    else
      checkPlace(place.dir, fmt::format("the location of tablespace {}", place.oid), options.force,
                 replaceable, "");
  }
  if (refused.empty()) return;
  std::string which, maps;
  for (std::size_t i = 0; i < refused.size(); ++i) {
    which += fmt::format("{}{} '{}'",
                         i == 0                    ? ""
                         : i + 1 == refused.size() ? " and "
                                                   : ", ",
                         refused[i].oid, refused[i].dir);
    maps += fmt::format(" --tablespace-map {}=DIR", refused[i].oid);
  }
  const bool one = refused.size() == 1;
  throw Error(ErrorCode::InvalidInput,
              fmt::format("the location{} of tablespace{} {} {} not empty", one ? "" : "s",
                          one ? "" : "s", which, one ? "is" : "are"),
              fmt::format("restore {} to {} with{} (--force empties only the tablespaces the "
                          "replaced data directory links to: {} may belong to a running server)",
                          one ? "it" : "them", one ? "an empty directory" : "empty directories",
                          maps, one ? "this one" : "these"));
}

// What --force would remove with the data directory's own spool (pg_wal/tidemark, where
// archive.spool-path is not set) that no repository knows yet: WAL the safety valve dropped. A
// gap of another repository, cluster or stanza stops the command (checked before anything is
// written); one of this stanza's clusters is recorded in the repository (`record`: just before
// the directory is emptied; listed in a dry run). A pg_wal that links elsewhere is not removed,
// nor what it holds.
void keepDroppedWal(const repo::Repository& repository, const repo::StanzaInfo& stanza,
                    const std::string& stanzaName, const RecoverOptions& options, bool record) {
  if (!options.force) return;
  const fs::path spoolPath = spool::dataDirectorySpool(options.dataDirectory);
  std::error_code ec;
  if (fs::is_symlink(spoolPath.parent_path(), ec)) return;
  for (const auto& found : spool::findGaps(spoolPath.string())) {
    if (found.stanza != stanzaName ||
        !spool::gapBelongs(found.gap, repository, stanza, stanza.systemId))
      throw Error(ErrorCode::InvalidInput,
                  fmt::format("{}, which no repository records yet: --force would remove it with "
                              "the data directory",
                              spool::describeGap(found.folder, found.gap)),
                  "copy that file aside (it names the WAL that archive lacks), then run again");
    if (record)
      spool::recordGap(found.folder, repository, stanza, stanza.systemId);
    else if (options.dryRun)
      spdlog::info("{}: it would be recorded in {} before --force removes it",
                   spool::describeGap(found.folder, found.gap), repository.describe());
  }
}

// Whether the configuration goes to a directory of its own (--config-dir).
bool separateConfigDirectory(const RecoverOptions& options) {
  return options.configDirectory != options.dataDirectory;
}

// The configuration a backup stored, read before anything is written (a damaged config.tar is
// found now, not after the data is restored), and where it goes.
struct ConfigPlan {
  restore::StoredConfiguration stored;
  std::set<std::string> fresh;  // paths to write that do not exist yet: never replaced, and
                                // removed again when the restore fails
};

// The data directory a postgresql.conf names (its last data_directory), "" when none.
std::string namedDataDirectory(const std::string& confPath) {
  std::ifstream in(confPath);
  std::stringstream text;
  text << in.rdbuf();
  auto found = pg::configDirectives(text.str(), {"data_directory"});
  return found.empty() ? std::string() : found.back().value;
}

// The configuration files a backup stored: said in the plan, and their place checked before
// anything is written (a --config-dir must not hold them, unless --force; it may hold others;
// never the configuration of a running server, even with --force).
ConfigPlan checkConfigPlace(const repo::Repository& repository, const recovery::RecoveryPlan& plan,
                            const RecoverOptions& options, const std::vector<Place>& places) {
  for (const auto& line : restore::describeConfiguration(plan.backup, options.configDirectory))
    std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  ConfigPlan out;
  const bool stored = plan.backup.configuration.state == repo::BackupConfiguration::State::Stored;
  if (stored) out.stored = restore::readStoredConfiguration(repository, plan.backup);
  if (!separateConfigDirectory(options)) return out;
  if (!stored) {
    spdlog::warn("--config-dir: backup {} holds no configuration files; nothing goes to '{}'",
                 plan.backup.label, options.configDirectory);
    return out;
  }
  for (const auto& place : places)
    if (files::within(options.configDirectory, place.dir) ||
        files::within(place.dir, options.configDirectory))
      usage(fmt::format("--config-dir '{}' overlaps the location of tablespace {} ('{}')",
                        options.configDirectory, place.oid, place.dir));
  restore::checkConfigurationPlace(plan.backup, options.configDirectory);
  const std::string existing = options.configDirectory + "/postgresql.conf";
  const std::string named = namedDataDirectory(existing);
  if (!named.empty())
    if (auto pid = runningServer(named))
      throw Error(ErrorCode::InvalidInput,
                  fmt::format("--config-dir '{}' holds the configuration of a running server "
                              "(pid {}, data directory '{}')",
                              options.configDirectory, *pid, named),
                  "restore the configuration into another directory, e.g. "
                  "--config-dir=/etc/postgresql/15/restore; --force never replaces a running "
                  "server's configuration");
  for (const auto& path : restore::configurationPaths(plan.backup, options.configDirectory)) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
      out.fresh.insert(path);
      continue;
    }
    if (!options.force)
      throw Error(ErrorCode::InvalidInput,
                  fmt::format("'{}' exists: --config-dir '{}' already holds a configuration file "
                              "the backup restores",
                              path, options.configDirectory),
                  "choose an empty directory, or add --force to replace the backup's files in it "
                  "(other files there are left alone)");
  }
  return out;
}

// restore_command repeats the settings the environment gives (serverCommand), but a secret is
// never a flag: with it in the environment only, the plan could be made with credentials the
// restored server's archive-get lacks. Credentials from a shared credentials file are the file of
// whoever runs this, which the server's user may not have.
void checkEnvironmentCredentials(const Config& config) {
  if (config.repo.type != "s3") return;  // the secrets are S3's: unused
  if (!config.sources.environmentSecrets.empty()) {
    const std::string& name = config.sources.environmentSecrets.front();
    throw Error(ErrorCode::Config,
                fmt::format("{} is set, but PostgreSQL's restore_command would not see it (a "
                            "secret is never passed as a flag)",
                            name),
                fmt::format("put the S3 credentials in the configuration file (s3.access-key-id, "
                            "s3.secret-access-key; readable by its owner only) and unset {}",
                            name));
  }
  if (!config.sources.credentialsFile.empty())
    spdlog::warn(
        "the S3 credentials come from '{}': restore_command runs as the server's user and reads "
        "that user's credentials file (~/.aws/credentials, or AWS_SHARED_CREDENTIALS_FILE in the "
        "server's environment); put them in the configuration file if it has none",
        config.sources.credentialsFile);
}

// Never leave a half-restored directory that someone could start.
void removeRestored(const RecoverOptions& options, bool existed, const std::vector<Place>& places,
                    const std::vector<bool>& placeExisted) {
  spdlog::error("the restore failed: removing what was written in '{}'", options.dataDirectory);
  std::error_code ec;
  if (existed) {
    for (const auto& entry : fs::directory_iterator(options.dataDirectory, ec))
      fs::remove_all(entry.path(), ec);
  } else {
    fs::remove_all(options.dataDirectory, ec);
  }
  // A tablespace location this run made goes too; one that existed is emptied.
  for (std::size_t i = 0; i < places.size(); ++i) {
    if (!placeExisted[i]) {
      fs::remove_all(places[i].dir, ec);
      continue;
    }
    for (const auto& entry : fs::directory_iterator(places[i].dir, ec))
      fs::remove_all(entry.path(), ec);
  }
}

// Empties the places (--force), restores the backup, writes the recovery settings and gives
// everything to the data directory's owner; on failure removes what it wrote and rethrows.
// Returns whether an owner other than root was found.
bool restoreAndConfigure(const repo::Repository& repository, const recovery::RecoveryPlan& plan,
                         const RecoverOptions& options, const std::vector<Place>& places,
                         const ConfigPlan& configPlan, const std::string& restoreCommandLine,
                         const std::function<bool()>& stopRequested,
                         const std::optional<std::string>& lease) {
  std::error_code existsError;
  bool existed = fs::exists(options.dataDirectory, existsError);
  std::vector<bool> placeExisted;
  for (const auto& place : places)
    placeExisted.push_back(fs::exists(place.dir, existsError));
  auto owner = restoredOwner(options.dataDirectory);
  clearPlace(options.dataDirectory, "data directory", true);
  for (const auto& place : places)
    clearPlace(place.dir, fmt::format("the location of tablespace {}", place.oid), false);
  // A stop asked for after the files are restored: what was written is removed all the same, up
  // to the recovery settings (after them the directory is ready and kept).
  const auto stopIfRequested = [&] {
    if (stopRequested && stopRequested())
      throw Error(ErrorCode::Interrupted,
                  "the restore was interrupted before its recovery settings were written");
  };
  try {
    // Synced once, at the end: after the owner changes too, or a crash could lose them.
    RestoreStats stats = restoreBackup(
        repository, plan.backup, options.dataDirectory,
        RestoreOptions{
            .tablespaceMap = options.tablespaceMap, .sync = false, .stopRequested = stopRequested});
    // Into the data directory: given to its owner and synced with it below.
    const bool separate = separateConfigDirectory(options);
    restore::ConfigRestoreResult config = restore::restoreConfiguration(
        configPlan.stored, plan.backup, options.configDirectory, options.dataDirectory,
        separate ? owner : std::nullopt, separate, configPlan.fresh);
    for (const auto& line : config.rewritten)
      spdlog::info("configuration: {} (the backed-up server's path commented out)", line);
    if (!config.written.empty())
      spdlog::info("configuration: {} restored into {}",
                   plural(config.written.size(), "file", "files"), options.configDirectory);
    stopIfRequested();
    if (owner) {
      chownTree(options.dataDirectory, !existed, owner->uid, owner->gid);
      for (std::size_t i = 0; i < places.size(); ++i)
        chownTree(places[i].dir, !placeExisted[i], owner->uid, owner->gid);
    }
    files::syncTree(options.dataDirectory);
    for (const auto& place : places)
      files::syncTree(place.dir);
    stopIfRequested();
    // Only now, with every restored byte on disk, what makes the directory start as a recovery:
    // a kill or a crash before this point leaves a directory that is not started as one.
    if (lease) {
      // The replay's archive-get renews the lease from this marker (repo/marks.h).
      files::AtomicFile marker(options.dataDirectory + "/" + repo::kLeaseMarkerFile,
                               {.mode = 0600, .owner = owner});
      marker.write(io::asBytes(*lease));
      marker.commit();
    }
    std::string note = fmt::format("(backup {}, {})", plan.backup.label, formatUtc(utcNow()));
    std::vector<std::string> settings = restore::recoverySettings(
        recovery::settingsTarget(options.target, plan, options.standby), restoreCommandLine);
    for (auto& line : serverSettings(options))
      settings.push_back(std::move(line));
    restore::writeRecoverySettings(options.dataDirectory, settings, options.standby, note, owner);
    spdlog::info("restored backup {}: {} in {}, {:.1f} s ({}/s)", plan.backup.label,
                 humanBytes(stats.bytes), plural(stats.files, "file", "files"), stats.seconds,
                 humanBytes(std::uint64_t(double(stats.bytes) / std::max(stats.seconds, 1e-3))));
  } catch (...) {
    removeRestored(options, existed, places, placeExisted);
    for (const auto& path : configPlan.fresh)
      ::unlink(path.c_str());
    throw;
  }
  return owner.has_value();
}

// --verify: every object the plan reads, read and verified (4 at a time) before anything is
// written; a damaged or missing one refuses the recovery, naming each.
void verifyPlan(const repo::Repository& repository, const recovery::RecoveryPlan& plan,
                const std::function<bool()>& stopRequested) {
  restore::PreflightResult result = restore::verifyPlanObjects(repository, plan, 4, stopRequested);
  if (!result.problems.empty()) {
    std::string list;
    for (const auto& problem : result.problems)
      list += (list.empty() ? "" : "; ") + problem;
    throw Error(ErrorCode::Corrupt,
                fmt::format("--verify: {} of the {} the plan needs {} damaged or missing: {}",
                            result.problems.size(),
                            plural(result.objects + result.problems.size(), "object", "objects"),
                            result.problems.size() == 1 ? "is" : "are", list),
                "nothing was written. Choose another backup (--backup) or a target before the "
                "damaged WAL; a segment may still be in the server's pg_wal (push it with "
                "tidemark-archive-push); tidemark verify checks the whole repository");
  }
  std::printf("verified:  %s, %s in %.1f s: every object the plan needs is intact\n",
              plural(result.objects, "object", "objects").c_str(), humanBytes(result.bytes).c_str(),
              result.seconds);
  std::fflush(stdout);
}

// How to start the server, and what to check.
void printNextSteps(const recovery::RecoveryPlan& plan, const RecoverOptions& options, bool owned) {
  std::string pgCtl = "pg_ctl";
  try {
    pgCtl = pg::findPgProgram("pg_ctl", plan.backup.pgVersion).value_or(pgCtl);
  } catch (const Error&) {
    // findPgProgram throws only on a stop signal (while pg_config answers): the directory is
    // ready all the same.
  }
  const char* dir = options.dataDirectory.c_str();
  std::printf("\nthe data directory is ready; recovery settings are in %s/postgresql.auto.conf\n",
              dir);
  if (!owned && ::geteuid() == 0)
    std::printf(
        "  it belongs to root: give it to the server's user first: chown -R postgres:postgres %s\n",
        dir);
  if (options.target.kind != recovery::TargetKind::Immediate)
    std::printf(
        "  a tablespace created after the backup is created again by the replay at its original\n"
        "  location: where another cluster's tablespace is (production's, on its host), the\n"
        "  replay stops before it and the server log says so (tidemark-archive-get)\n");
  std::error_code confError;
  if (separateConfigDirectory(options) &&
      plan.backup.configuration.state == repo::BackupConfiguration::State::Stored)
    std::printf(
        "start PostgreSQL (as its user) with the configuration restored into %s\n"
        "(its data_directory names %s):\n  %s -D %s -l %s/recovery.log start\n",
        options.configDirectory.c_str(), dir, pgCtl.c_str(), options.configDirectory.c_str(), dir);
  else if (fs::exists(options.dataDirectory + "/postgresql.conf", confError))
    std::printf("start PostgreSQL (as its user):\n  %s -D %s -l %s/recovery.log start\n",
                pgCtl.c_str(), dir, dir);
  else
    std::printf(
        "start PostgreSQL (as its user); the backup has no postgresql.conf (Debian keeps it in\n"
        "/etc/postgresql/%d/<cluster>/): start the cluster whose data_directory this is, e.g.\n"
        "  pg_ctlcluster %d <cluster> start\n"
        "or give a configuration file (data_directory on the command line: the file's own would\n"
        "start the cluster it names):\n"
        "  %s -D %s -l %s/recovery.log -o '-c "
        "config_file=/etc/postgresql/%d/<cluster>/postgresql.conf "
        "-c data_directory=%s' start\n",
        plan.backup.pgVersion, plan.backup.pgVersion, pgCtl.c_str(), dir, dir,
        plan.backup.pgVersion, dir);
  std::printf("then check:\n");
  std::printf(
      "  - the log: 'restored log file ... from archive' lines, then 'recovery stopping' at the "
      "target\n");
  if (options.target.kind == recovery::TargetKind::Latest)
    std::printf(
        "  - after the last archived WAL the server promotes to a new timeline and accepts "
        "writes\n");
  else if (options.target.action == recovery::TargetAction::Pause)
    std::printf(
        "  - at the target the server pauses, read-only: check the data, then\n"
        "    SELECT pg_wal_replay_resume(); to promote (or restore again with another target)\n");
  else if (options.target.action == recovery::TargetAction::Promote)
    std::printf("  - at the target the server promotes to a new timeline and accepts writes\n");
  else
    std::printf(
        "  - at the target the server shuts down. Do not just remove recovery.signal and start\n"
        "    it: crash recovery would replay the WAL in pg_wal past the target. To use it, set\n"
        "    recovery_target_action = 'promote' (or 'pause') in postgresql.auto.conf, start it\n");
  switch (effectiveArchiving(options)) {
    case Archiving::On:
      std::printf(
          "  - archiving: on; the promoted server archives its new timeline into the stanza\n"
          "    (archive_command is whatever its postgresql.conf says)\n");
      break;
    case Archiving::Off:
      std::printf(
          "  - archiving: off (archive_mode, archive_command, archive_cleanup_command,\n"
          "    recovery_end_command, external_pid_file, synchronous_standby_names,\n"
          "    max_logical_replication_workers and log_directory in postgresql.auto.conf): "
          "nothing\n"
          "    it writes reaches the stanza. To make it the primary later, remove those lines "
          "(ALTER SYSTEM\n"
          "    RESET each), restart it, and take a new base backup. To drop a subscription in a\n"
          "    copy without dropping the publisher's slot: ALTER SUBSCRIPTION s DISABLE; ALTER\n"
          "    SUBSCRIPTION s SET (slot_name = NONE); DROP SUBSCRIPTION s;\n");
      break;
    case Archiving::Preserve:
      std::printf("  - archiving: as its postgresql.conf says (--archiving=preserve)\n");
      break;
  }
  std::printf(
      "  - settings given on the server's command line (pg_ctl -o, a service's -c options) win\n"
      "    over postgresql.auto.conf; before promoting, check: SELECT name, setting, source\n"
      "    FROM pg_settings WHERE name IN ('archive_mode', 'archive_command', 'port');\n");
  if (options.port) std::printf("  - it listens on port %d (--port)\n", *options.port);
}

}  // namespace

recovery::RecoveryPlan recover(const Config& config, const RecoverOptions& options,
                               const std::function<bool()>& stopRequested) {
  if (options.archiving == Archiving::Preserve && willPromote(options))
    spdlog::warn(
        "--archiving=preserve: the server promotes with its own archive settings; if they are a "
        "production server's and this is a copy beside it, it archives into that stanza");
  // What the restored server's restore_command needs, checked first: a dry run says 0 only for
  // a plan the real run can carry out.
  checkEnvironmentCredentials(config);
  const std::string restoreCommand = restore::restoreCommand(config);
  repo::Repository repository = repo::openRepository(config);
  recovery::RecoveryPlan plan =
      recovery::planRecovery(repository, options.target, options.backup, options.standby);
  std::fputs(recovery::describePlan(plan, options.target, options.standby).c_str(), stdout);
  std::fflush(stdout);
  std::vector<Place> places = tablespacePlaces(plan, options);
  checkPlaces(options, places);
  const ConfigPlan configPlan = checkConfigPlace(repository, plan, options, places);
  const repo::StanzaInfo stanza = repo::requireStanza(repository);
  keepDroppedWal(repository, stanza, config.stanza, options, false);
  restore::checkBackupObjectsListed(repository, plan.backup);
  if (options.verify) verifyPlan(repository, plan, stopRequested);
  if (options.dryRun) {
    std::puts("dry run: nothing was written");
    return plan;
  }
  // A lease on the WAL the replay reads, before anything is restored: expire keeps that WAL while
  // the lease is renewed (by the replay's archive-get) and lets it lapse after
  // retention.lease-timeout without a renewal.
  restore::RecoveryLease lease(repository, stanza.identity(), plan,
                               fmt::format("tidemark-recover into '{}' on {} (pid {})",
                                           options.dataDirectory, hostName(), ::getpid()),
                               config.retention.leaseTimeout);
  bool owned = false;
  try {
    // Renewed while the restore runs (the replay's archive-get renews it from then on).
    lease.startRenewal();
    keepDroppedWal(repository, stanza, config.stanza, options, true);
    owned = restoreAndConfigure(repository, plan, options, places, configPlan, restoreCommand,
                                stopRequested, lease.marker());
  } catch (...) {
    lease.release();
    throw;
  }
  // A spool kept outside the data directory (archive.spool-path) belonged to the cluster's former
  // life: nothing in it is for the restored one.
  if (auto folder = spool::stanzaSpool(config, options.dataDirectory)) spool::discard(*folder);
  printNextSteps(plan, options, owned);
  return plan;
}

}  // namespace tidemark::recover
