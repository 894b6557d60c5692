// tidemark-basebackup: the backup worker and the command around it.
#include "basebackup/basebackup.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cmath>
#include <ctime>
#include <filesystem>
#include <memory>
#include <thread>
#include <utility>

#include "basebackup/server_config.h"
#include "common/base/error.h"
#include "common/base/text.h"
#include "common/base/time.h"
#include "common/base/version.h"
#include "common/cli/progress.h"
#include "common/files/file.h"
#include "common/pg/config_file.h"
#include "common/pg/connection.h"
#include "common/pg/control.h"
#include "common/pg/replication.h"
#include "common/pg/timeline.h"
#include "common/pg/wal.h"
#include "common/repo/generation.h"
#include "common/repo/layout.h"
#include "common/repo/metadata.h"
#include "common/repo/stanza.h"
#include "common/repo/wal_store.h"

namespace tidemark::backup {

namespace {

void sleepUnlessStopped(std::chrono::milliseconds duration,
                        const std::function<bool()>& stopRequested) {
  auto until = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < until) {
    if (stopRequested && stopRequested())
      throw Error(ErrorCode::Interrupted,
                  "the base backup was interrupted; no backup was recorded");
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(100), until - std::chrono::steady_clock::now()));
  }
}

// Streams each archive of the backup into its own repository object.
class Receiver final : public pg::BaseBackupReceiver {
 public:
  Receiver(const repo::Repository& repository, std::string label, Progress& progress,
           const std::function<bool()>& stopRequested)
      : repository_(repository),
        label_(std::move(label)),
        options_(repository.objectOptions()),
        progress_(progress),
        stopRequested_(stopRequested) {
    // Archives are large: hash beside the compression, on another core (docs/benchmarks.md).
    options_.backgroundHash = true;
  }

  void started(const pg::BackupStart& start) override {
    start_ = start;
    std::uint64_t total = 0;
    for (const auto& t : start.tablespaces)
      total += t.sizeKiB * 1024;
    progress_.setTotal(total);
  }

  void archive(const std::string& name, const std::string& location) override {
    if (name == repo::kConfigArchive)  // tidemark's own object
      throw error(ErrorCode::Database, "the server named an archive '{}', which cannot be stored",
                  name);
    std::uint32_t oid = 0;
    for (const auto& t : start_.tablespaces)
      if (!location.empty() && t.location == location) oid = t.oid;
    open(repo::BackupObject{.name = name, .tablespaceOid = oid, .tablespaceLocation = location});
  }

  void archiveData(io::ByteView data) override {
    if (stopRequested_ && stopRequested_())
      throw Error(ErrorCode::Interrupted,
                  "the base backup was interrupted; no backup was recorded");
    writer_->write(data);
    progress_.add(data.size());
  }

  void manifest() override { open(repo::BackupObject{.name = "backup_manifest"}); }

  // An object of tidemark's own (config.tar), stored like an archive (and removed with the others
  // when the backup fails), but not one of the backup's archives: returned, not listed.
  repo::BackupObject storeObject(const std::string& name, io::ByteView bytes) {
    open(repo::BackupObject{.name = name});
    writer_->write(bytes);
    commitCurrent();
    repo::BackupObject stored = objects_.back();
    objects_.pop_back();
    return stored;
  }

  void manifestData(io::ByteView data) override { writer_->write(data); }

  void progress(std::uint64_t) override {}  // our own byte count drives the display

  // Commits the last object.
  void finish() { commitCurrent(); }
  const pg::BackupStart& start() const { return start_; }

  const std::vector<repo::BackupObject>& objects() const { return objects_; }
  const std::vector<std::string>& stored() const { return stored_; }

 private:
  void open(repo::BackupObject object) {
    commitCurrent();
    if (object.name.empty() || object.name.find('/') != std::string::npos ||
        object.name == "backup.json")
      throw error(ErrorCode::Database, "the server named an archive '{}', which cannot be stored",
                  object.name);
    std::string path = repo::backupObject(repository_.stanza(), label_, object.name);
    writer_ = std::make_unique<repo::ObjectWriter>(
        repository_.storage().newWrite(path, {.noReplace = true}), path, options_);
    current_ = std::move(object);
    currentPath_ = path;
  }

  void commitCurrent() {
    if (!writer_) return;
    writer_->close();
    stored_.push_back(currentPath_);  // from here on, a failure removes it (it may be stored)
    if (!writer_->commit()) {
      // No-replace refused: someone else's object, or ours after a lost reply and a retry (S3).
      auto found = repository_.verifyObject(currentPath_, writer_->summary().plainSize);
      const auto& mine = writer_->summary();
      if (!found || found->plainSize != mine.plainSize || found->plainSha256 != mine.plainSha256) {
        stored_.pop_back();  // not ours: leave it alone
        throw error(ErrorCode::Storage,
                    "'{}' already exists in the repository; backup labels must be unique",
                    currentPath_);
      }
    }
    const auto& summary = writer_->summary();
    current_.size = summary.plainSize;
    current_.storedSize = summary.storedSize;
    current_.sha256 = summary.plainSha256;
    objects_.push_back(current_);
    writer_.reset();
  }

  const repo::Repository& repository_;
  std::string label_;
  repo::ObjectOptions options_;
  Progress& progress_;
  const std::function<bool()>& stopRequested_;
  pg::BackupStart start_;
  std::unique_ptr<repo::ObjectWriter> writer_;
  repo::BackupObject current_;
  std::string currentPath_;
  std::vector<repo::BackupObject> objects_;
  std::vector<std::string> stored_;
};

}  // namespace

void waitForWal(const repo::Repository& repository, int generation, std::uint32_t timeline,
                std::uint64_t first, std::uint64_t last, std::uint32_t segmentSize,
                std::chrono::seconds timeout, std::chrono::milliseconds poll,
                const std::function<bool()>& stopRequested) {
  auto started = std::chrono::steady_clock::now();
  auto lastReport = started;
  auto lastProgress = started;  // the timeout runs from the last segment that arrived: a slow
                                // archive working through a backlog is not a stuck one
  std::uint64_t next = first;   // segments are archived in order: wait for each in turn
  for (;;) {
    std::uint64_t before = next;
    while (next <= last) {
      std::string name = pg::segmentFileName(timeline, next, segmentSize);
      if (!repository.storage().info(
              repo::walObject(repository.stanza(), generation, *pg::parseWalName(name))))
        break;
      ++next;
    }
    if (next > last) return;
    auto now = std::chrono::steady_clock::now();
    if (next != before) lastProgress = now;
    std::string missing = pg::segmentFileName(timeline, next, segmentSize);
    if (now - lastProgress >= timeout)
      throw Error(
          ErrorCode::Timeout,
          fmt::format(
              "the archive did not receive WAL file {} within {} s ({} archived of the {} the "
              "backup needs); no backup was recorded",
              missing, timeout.count(), next - first,
              plural(last - first + 1, "segment", "segments")),
          "check archive_mode and archive_command on the server ('tidemark check' proves "
          "archiving end to end and names what to fix, an archive_command without this "
          "configuration's --config among them), and pg_stat_archiver (failed_count, "
          "last_failed_wal); raise backup.wal-timeout for a slow archive");
    if (now - lastReport >= std::chrono::seconds(10)) {
      spdlog::info("waiting for the archive to receive WAL: {} archived of {}, next {}",
                   next - first, plural(last - first + 1, "segment", "segments"), missing);
      lastReport = now;
    }
    sleepUnlessStopped(poll, stopRequested);
  }
}

namespace {

// What the server told about itself, checked.
struct Server {
  int version = 0;  // 150004
  std::uint64_t systemId = 0;
  std::uint32_t segmentSize = 0;
  std::uint32_t timeline = 0;
};

// One backup of a stanza at a time: the lock is held until the backup ends.
std::unique_ptr<storage::Lock> lockStanza(const repo::Repository& repository) {
  std::string holder;
  std::string owner = fmt::format("tidemark-basebackup pid {} on {}, started {}", ::getpid(),
                                  hostName(), formatUtc(utcNow()));
  auto lock =
      repository.storage().tryLock(repo::backupLockFile(repository.stanza()), owner, holder);
  if (!lock)
    throw Error(
        ErrorCode::Locked,
        fmt::format("another backup of stanza '{}' is running: {}", repository.stanza(), holder),
        "wait for it to finish; only one backup of a stanza runs at a time");
  return lock;
}

// The server's version, identity and settings, refused when a backup could not complete.
Server checkServer(pg::Connection& connection, const std::string& archiveCommand) {
  Server server;
  server.version = connection.serverVersion();
  if (server.version < 150000)
    throw Error(
        ErrorCode::Unsupported,
        fmt::format("{} runs PostgreSQL {}.{}; tidemark-basebackup needs PostgreSQL 15 or newer",
                    connection.describe(), server.version / 10000, server.version % 10000),
        "PostgreSQL 13 and 14 send one COPY stream per tablespace, which tidemark does not read; "
        "use "
        "pg_basebackup there, or upgrade");
  pg::ServerIdentity identity = pg::identifyServer(connection);
  server.systemId = identity.systemId;
  server.segmentSize = identity.walSegmentSize;
  server.timeline = identity.timeline;
  std::string walLevel = connection.show("wal_level");
  if (walLevel != "replica" && walLevel != "logical")
    throw Error(ErrorCode::Database,
                fmt::format("wal_level is '{}' on {}; a base backup needs 'replica'", walLevel,
                            connection.describe()),
                "set wal_level = replica in postgresql.conf (on Debian: "
                "/etc/postgresql/15/main/postgresql.conf) and restart PostgreSQL");
  if (connection.show("archive_mode") == "off")
    throw Error(
        ErrorCode::Database,
        fmt::format("archive_mode is off on {}: the backup's WAL would never reach the repository",
                    connection.describe()),
        fmt::format("set archive_mode = on and archive_command = {}, then restart PostgreSQL",
                    pg::quoteConfigValue(archiveCommand)));
  return server;
}

// The stanza must exist (a backup never creates one), and the server's cluster must be one of its
// generations, with the stanza's encryption setting: others are refused before anything is
// stored. With encryption, stanza.json must be authenticated: its identifier is what the new
// backup.json is signed for.
struct CheckedStanza {
  repo::StanzaInfo stanza;
  repo::Generation generation;
};
CheckedStanza checkStanza(const repo::Repository& repository, const Server& server,
                          const pg::Connection& connection) {
  repo::StanzaInfo read = repo::requireStanza(repository);
  repo::checkEncryption(repository, read);  // an allow-mixed switch signs what it rewrites
  // What the new backup.json is signed for and the generations are checked against: the
  // authenticated stanza.json (the first read is only for the encryption check).
  repo::StanzaInfo stanza = repo::authenticateStanzaForWriting(repository);
  if (stanza.identity() != read.identity())
    throw Error(ErrorCode::Conflict,
                fmt::format("stanza.json of stanza '{}' changed while the backup started",
                            repository.stanza()),
                "run the backup again");
  repo::Generation generation = repo::requireGeneration(
      repository, stanza, server.systemId, server.segmentSize, server.version / 10000,
      fmt::format("the cluster at {}", connection.describe()));
  return {stanza, generation};
}

// Whether the generation's WAL folder holds anything: a segment folder or a history file.
bool holdsWal(const repo::Repository& repository, int generation) {
  bool found = false;
  repository.storage().list(repo::walDirectory(repository.stanza(), generation),
                            [&](const storage::ListEntry&) { found = true; });
  return found;
}

// What pg_stat_archiver says (readable by any role); nullopt when it cannot be read.
struct ArchiverStatus {
  std::string archivedCount, lastArchived, failedCount, lastFailed;
  std::string describe() const {
    return fmt::format(
        "pg_stat_archiver: archived_count {} (last '{}'), failed_count {} (last '{}')",
        archivedCount, lastArchived, failedCount, lastFailed);
  }
};
std::optional<ArchiverStatus> archiverStatus(pg::Connection& connection) {
  try {
    pg::Result row = connection.query(
        "SELECT archived_count, coalesce(last_archived_wal, ''), failed_count, "
        "coalesce(last_failed_wal, '') FROM pg_stat_archiver",
        "reading pg_stat_archiver");
    if (row.rows() != 1) return std::nullopt;
    return ArchiverStatus{row.value(0, 0), row.value(0, 1), row.value(0, 2), row.value(0, 3)};
  } catch (const Error& e) {
    spdlog::debug("cannot read pg_stat_archiver: {}", e.what());
    return std::nullopt;
  }
}

// A backup is useless without its WAL, and it waits for that WAL only after streaming everything
// (backup.wal-timeout, five minutes by default). A stanza that holds no WAL of this cluster's
// generation yet is either new (the first backup of a new cluster: no segment completed yet) or
// not the one archive_command pushes into. The server is asked to complete a segment
// (pg_switch_wal), and the backup streams only once that segment, or any WAL, reached the stanza;
// it fails at once when pg_stat_archiver shows the segment archived elsewhere, and after
// `params.firstWalTimeout` otherwise (docs/decisions.md).
void requireWalFromCluster(const repo::Repository& repository, int generation, const Server& server,
                           const BackupParams& params) {
  if (holdsWal(repository, generation)) return;
  const auto timeout = std::min(params.firstWalTimeout, params.walTimeout);
  std::optional<pg::Connection> sql;
  std::string completed;  // the WAL file the server completed for us
  std::string noSwitch;   // why the server could not be asked
  try {
    sql = pg::Connection::open(params.conninfo, false, "tidemark-basebackup");
    completed =
        sql->query("SELECT pg_walfile_name(pg_switch_wal())", "pg_switch_wal()").value(0, 0);
  } catch (const Error& e) {
    noSwitch = e.what();
  }
  spdlog::info(
      "stanza '{}' holds no WAL from this cluster yet: {}; waiting up to {} s for it to reach the "
      "repository before streaming",
      repository.stanza(),
      completed.empty()
          ? fmt::format("the server could not be asked to complete a segment ({})", noSwitch)
          : fmt::format("the server completed WAL file {}", completed),
      timeout.count());
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::optional<ArchiverStatus> status;
  std::string why;
  for (;;) {
    if (holdsWal(repository, generation)) {
      spdlog::info("stanza '{}' received WAL from this cluster", repository.stanza());
      return;
    }
    if (sql) status = archiverStatus(*sql);
    // Names of one timeline compare in order; a newer timeline's are greater too.
    if (status && !completed.empty() && status->lastArchived >= completed) {
      why = fmt::format(
          "the server archived {} through its archive_command, and it is not in the stanza",
          status->lastArchived);
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      // A failing archive_command is waited for (a transient failure is retried by the archiver).
      if (status && !completed.empty() && status->lastFailed >= completed)
        why =
            fmt::format("the server's archive_command failed on {} and no WAL arrived within {} s",
                        status->lastFailed, timeout.count());
      else
        why = completed.empty() ? fmt::format("no WAL arrived within {} s", timeout.count())
                                : fmt::format("WAL file {} did not arrive within {} s", completed,
                                              timeout.count());
      break;
    }
    sleepUnlessStopped(params.walPoll, params.stopRequested);
  }
  throw Error(
      ErrorCode::Config,
      fmt::format("stanza '{}' holds no WAL from this cluster (system identifier {}): is "
                  "archive_command pushing into stanza '{}'? run tidemark check",
                  repository.stanza(), server.systemId, repository.stanza()),
      fmt::format("{}{}; archive_command must be tidemark-archive-push with the configuration of "
                  "this backup (repository '{}', stanza '{}'), e.g. archive_command = "
                  "'tidemark-archive-push --config /etc/tidemark/tidemark.toml %p'; nothing was "
                  "streamed",
                  why, status ? " (" + status->describe() + ")" : std::string(),
                  repository.describe(), repository.stanza()));
}

// The history files of the server's timeline and its ancestors that the repository lacks (a
// cluster promoted before it archived into this stanza), fetched with TIMELINE_HISTORY and stored
// as archive-push stores them: recovery follows the timelines through them, and `tidemark info`
// shows them. The current timeline's history names its ancestors; only those are asked for.
void storeMissingHistory(const repo::Repository& repository, int generation,
                         pg::Connection& connection, std::uint32_t timeline) {
  if (timeline < 2) return;
  auto store = [&](std::uint32_t tli, const std::string& content) {
    auto name = pg::parseWalName(pg::historyFileName(tli));
    auto stored = repo::storeWalFile(repository, generation, *name, 0,
                                     [&](io::Sink& sink) { sink.write(io::asBytes(content)); });
    if (stored.outcome == repo::WalStoreOutcome::Stored)
      spdlog::info("stored {} from the server: the repository did not have it", name->name);
  };
  auto missing = [&](std::uint32_t tli) {
    return !repository.storage().info(repo::walObject(repository.stanza(), generation,
                                                      *pg::parseWalName(pg::historyFileName(tli))));
  };
  // What the server sends is checked like a pushed file: bounded, and a history of its timeline.
  struct Fetched {
    std::string content;
    pg::TimelineHistory history;
  };
  auto fetch = [&](std::uint32_t tli) -> std::optional<Fetched> {
    std::string name = pg::historyFileName(tli);
    try {
      std::string content = pg::timelineHistory(connection, tli);
      if (content.size() > pg::maxWalFileSize(*pg::parseWalName(name), 0))
        throw error(ErrorCode::Database, "TIMELINE_HISTORY {} sent {} bytes", tli, content.size());
      pg::TimelineHistory history =
          pg::parseHistory(tli, content, fmt::format("{} from {}", name, connection.describe()));
      if (history.parents.empty())
        throw error(ErrorCode::Database, "TIMELINE_HISTORY {} sent a history without parents", tli);
      return Fetched{std::move(content), std::move(history)};
    } catch (const Error& e) {
      spdlog::warn(
          "the repository has no {} and the server cannot send a valid one ({}): recovery cannot "
          "follow timeline {} from the repository alone",
          name, e.what(), tli);
      return std::nullopt;
    }
  };
  auto current = fetch(timeline);
  if (!current) return;
  if (missing(timeline)) store(timeline, current->content);
  for (const auto& parent : current->history.parents)
    if (parent.timeline >= 2 && missing(parent.timeline))
      if (auto ancestor = fetch(parent.timeline)) store(parent.timeline, ancestor->content);
}

// The server's files read through SQL (pg_read_binary_file, pg_stat_file, pg_ls_dir: a
// superuser, or a role granted pg_read_server_files and EXECUTE on the three functions), on a
// connection opened on first use.
class SqlFileReader final : public ServerFileReader {
 public:
  explicit SqlFileReader(std::string conninfo) : conninfo_(std::move(conninfo)) {}

  std::optional<std::string> read(const std::string& path) override {
    // PostgreSQL 15 has no pg_read_binary_file(path, missing_ok): the size first, then the
    // four-argument form (which 15 has).
    std::string literal = sql().literal(path);
    pg::Result size = sql_->query(
        fmt::format("SELECT s.size, s.isdir FROM pg_catalog.pg_stat_file({}, true) s", literal),
        fmt::format("looking at '{}'", path));
    if (size.rows() != 1 || size.isNull(0, 0)) return std::nullopt;
    if (size.value(0, 1) == "t") throw error(ErrorCode::Database, "'{}' is a directory", path);
    pg::Result row = sql_->query(
        fmt::format("SELECT encode(pg_catalog.pg_read_binary_file({}, 0, {}, true), 'hex')",
                    literal, size.value(0, 0)),
        fmt::format("reading '{}'", path));
    if (row.rows() != 1 || row.isNull(0, 0)) return std::nullopt;
    std::string hex = row.value(0, 0), out;
    out.reserve(hex.size() / 2);
    auto digit = [&](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      throw error(ErrorCode::Database, "the server sent '{}' as something other than hex", path);
    };
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
      out.push_back(char(digit(hex[i]) * 16 + digit(hex[i + 1])));
    return out;
  }

  std::optional<std::vector<std::string>> list(const std::string& directory) override {
    std::string literal = sql().literal(directory);
    pg::Result kind =
        sql_->query(fmt::format("SELECT (pg_catalog.pg_stat_file({}, true)).isdir", literal),
                    fmt::format("looking at '{}'", directory));
    if (kind.rows() != 1 || kind.isNull(0, 0)) return std::nullopt;
    if (kind.value(0, 0) != "t")
      throw error(ErrorCode::Database, "include_dir '{}' is not a directory", directory);
    pg::Result rows = sql_->query(fmt::format("SELECT pg_catalog.pg_ls_dir({})", literal),
                                  fmt::format("listing '{}'", directory));
    std::vector<std::string> names;
    for (int i = 0; i < rows.rows(); ++i)
      names.push_back(rows.value(i, 0));
    return names;
  }

  bool isDirectory(const std::string& path) override {
    pg::Result kind = sql().query(
        fmt::format("SELECT (pg_catalog.pg_stat_file({}, true)).isdir", sql_->literal(path)),
        fmt::format("looking at '{}'", path));
    return kind.rows() == 1 && kind.value(0, 0) == "t";
  }

  std::string describe() const override { return "the server (pg_read_binary_file)"; }

 private:
  pg::Connection& sql() {
    if (!sql_) sql_ = pg::Connection::open(conninfo_, false, "tidemark-basebackup");
    return *sql_;
  }
  std::string conninfo_;
  std::optional<pg::Connection> sql_;
};

// The server's files read from this host: only when the data directory the server names holds,
// here, the cluster's pg_control (tidemark-basebackup runs on the database host).
class LocalFileReader final : public ServerFileReader {
 public:
  std::optional<std::string> read(const std::string& path) override {
    auto fd = files::openForRead(path);
    if (!fd) return std::nullopt;
    io::MemorySink sink(16u << 20);
    files::streamFile(fd->get(), path, sink);
    return std::string(sink.text());
  }

  std::optional<std::vector<std::string>> list(const std::string& directory) override {
    std::error_code ec;
    std::vector<std::string> names;
    std::filesystem::directory_iterator it(directory, ec);
    if (ec == std::errc::no_such_file_or_directory) return std::nullopt;
    for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
      names.push_back(it->path().filename().string());
    if (ec) throw systemError(ErrorCode::LocalIo, ec.value(), "cannot list '{}'", directory);
    return names;
  }

  bool isDirectory(const std::string& path) override {
    std::error_code ec;
    return std::filesystem::is_directory(path, ec);
  }

  std::string describe() const override { return "this host's filesystem"; }
};

// Where the server keeps its configuration, and what of it the backup stores: read through SQL,
// else from this host's files; when neither can read them, nothing, with the reasons as notes
// (the backup itself goes on: its data is whole, and the plan of a recovery says what is missing).
CollectedConfiguration readServerConfiguration(pg::Connection& connection,
                                               const std::string& conninfo,
                                               std::uint64_t systemId) {
  CollectedConfiguration out;
  using State = repo::BackupConfiguration::State;
  ServerPaths paths;
  try {
    paths = {connection.show("data_directory"), connection.show("config_file"),
             connection.show("hba_file"), connection.show("ident_file")};
  } catch (const Error& e) {
    out.record.state = State::LocationUnknown;
    out.record.notes.push_back(
        fmt::format("the server would not say where its configuration files are ({}): grant "
                    "pg_read_all_settings to the backup's role",
                    e.what()));
    spdlog::warn("{}; if they live outside the data directory, this backup does not hold them",
                 out.record.notes.back());
    return out;
  }
  std::vector<std::string> failures;
  SqlFileReader sql(conninfo);
  LocalFileReader local;
  for (ServerFileReader* reader :
       {static_cast<ServerFileReader*>(&sql), static_cast<ServerFileReader*>(&local)}) {
    if (reader == &local && pg::controlSystemId(paths.dataDirectory) != systemId) {
      failures.push_back(
          fmt::format("{}: '{}' here is not this cluster's data directory (or cannot "
                      "be read: run tidemark-basebackup on the database host as "
                      "the server's user)",
                      reader->describe(), paths.dataDirectory));
      break;
    }
    try {
      out = collectConfiguration(paths, *reader);
      if (out.record.state == State::Stored) {
        out.archive = configArchive(out, std::time(nullptr));
        spdlog::info(
            "the server's configuration lives outside the data directory, in '{}': storing {} "
            "with the backup (read through {})",
            out.record.directory, plural(out.contents.size(), "file", "files"), reader->describe());
      }
      for (const auto& note : out.record.notes)
        spdlog::warn("configuration: {}", note);
      return out;
    } catch (const Error& e) {
      failures.push_back(fmt::format("{}: {}", reader->describe(), e.what()));
    }
  }
  out = {};
  out.record.state = State::NotStored;
  out.record.directory = files::dirName(paths.configFile);
  out.record.notes = failures;
  spdlog::warn(
      "the server's configuration lives outside the data directory, in '{}', and could not be "
      "read ({}): this backup does not hold it; GRANT pg_read_server_files to the backup's role "
      "and GRANT EXECUTE ON FUNCTION pg_read_binary_file(text, bigint, bigint, boolean), "
      "pg_stat_file(text, boolean), pg_ls_dir(text) TO it, or run tidemark-basebackup on the "
      "database host as the server's user",
      out.record.directory, fmt::join(failures, "; "));
  return out;
}

// The backup's start and stop times on the server's clock, which commit timestamps (and so time
// targets) are measured on: a client whose clock is behind would record a stop time before the
// real end, and a time target between the two would choose a backup that is not yet consistent
// there. This machine's clock, with one warning, when the server cannot be asked.
class BackupClock {
 public:
  explicit BackupClock(std::string conninfo) : conninfo_(std::move(conninfo)) {}

  // Rounded down, or up (a stop time).
  UtcSeconds now(bool roundUp = false) {
    using namespace std::chrono;
    system_clock::time_point time;
    try {
      auto asked = system_clock::now();
      time = pg::serverClock(conninfo_, "tidemark-basebackup");
      // The local clock halfway through the exchange, so that the connection's own time is not
      // taken for skew.
      auto local = asked + (system_clock::now() - asked) / 2;
      skew_ = time - local;
      double seconds = duration<double>(*skew_).count();
      if (std::abs(seconds) > 2 && !skewReported_) {
        skewReported_ = true;
        spdlog::warn(
            "this machine's clock is {:.1f} s {} the server's: the backup's times are the "
            "server's; keep clocks in sync (NTP), time targets are the server's clock too",
            std::abs(seconds), seconds > 0 ? "behind" : "ahead of");
      }
    } catch (const Error& e) {
      // The skew measured at the start still applies: a stop time on the unadjusted local clock
      // could be before the real end.
      time = system_clock::now() + skew_.value_or(system_clock::duration::zero());
      spdlog::warn(
          "cannot read the server's clock on a regular connection ({}): {}; keep this machine's "
          "clock in sync with the server's (NTP), or let the role connect to a database "
          "(pg_hba.conf, [pg] conninfo dbname)",
          e.what(),
          skew_ ? "using this machine's clock corrected by the skew measured earlier"
                : "the backup's times are this machine's");
    }
    auto down = floor<seconds>(time);
    return UtcSeconds(roundUp && down < time ? down + seconds(1) : down);
  }

 private:
  std::string conninfo_;
  std::optional<std::chrono::system_clock::duration> skew_;  // server minus local, once known
  bool skewReported_ = false;
};

// Labels sort by time; two backups within a second get distinct labels. `label` is the first
// candidate: the time the backup started.
std::string freeLabel(const repo::Repository& repository, std::string label,
                      const std::function<bool()>& stopRequested) {
  auto taken = [&](const std::string& candidate) {
    bool found = false;
    repository.storage().list(repo::backupDirectory(repository.stanza(), candidate),
                              [&](const storage::ListEntry&) { found = true; });
    return found;
  };
  while (taken(label)) {
    sleepUnlessStopped(std::chrono::milliseconds(1000), stopRequested);
    label = repo::backupLabel(utcNow());
  }
  return label;
}

// backup.json last: its presence is what makes the backup complete (its MAC record, with
// encryption, just before it). False when `path` holds someone else's (a refused no-replace commit
// whose object holds our bytes was ours: a retry after a lost reply).
bool writeBackupJson(const repo::Repository& repository, const std::string& path,
                     const repo::BackupInfo& info, const std::string& stanzaId,
                     const std::function<void()>& confirmLock) {
  std::string json = info.toJson();
  confirmLock();
  repo::writeMetadataMac(repository, path, json, stanzaId);
  confirmLock();
  auto write = repository.storage().newWrite(path, {.noReplace = true});
  write->write(io::asBytes(json));
  return write->commit() || storage::readSmall(repository.storage(), path, 16u << 20) == json;
}

// After a failure: a backup.json that may have been stored goes first (archives without it are
// recognisably incomplete, while a backup.json without its archives would be offered for
// recovery); if it cannot be removed, the backup may well be complete: everything is kept.
// Then what was stored, where it can be removed.
void removeFailedBackup(const repo::Repository& repository, const std::string& infoPath,
                        const std::vector<std::string>& stored) {
  if (!infoPath.empty()) {
    try {
      repository.storage().remove(infoPath);
    } catch (const std::exception& e) {
      spdlog::error(
          "could not remove '{}' of the failed backup ({}): keeping its archives; check with "
          "tidemark info",
          infoPath, e.what());
      throw;
    }
  }
  std::vector<std::string> objects = stored;
  if (!infoPath.empty() && repo::authenticatesMetadata(repository))
    objects.push_back(repo::macRecordPath(infoPath));
  for (const auto& path : objects) {
    try {
      repository.storage().remove(path);
    } catch (const std::exception& e) {
      spdlog::warn("could not remove '{}' of the failed backup: {}", path, e.what());
    }
  }
}

// Streams the backup, then waits for its WAL; fills in what the server and the stream told.
void streamAndWait(const repo::Repository& repository, int generation, const BackupParams& params,
                   pg::Connection& connection, Receiver& receiver, Progress& progress,
                   BackupClock& clock, repo::BackupInfo& info) {
  spdlog::info("backup {}: from {} (system identifier {}) into {}, {} checkpoint", info.label,
               connection.describe(), info.systemId, repository.describe(),
               info.fastCheckpoint ? "fast" : "spread");
  pg::BaseBackupOptions options{.label = "tidemark " + info.label,
                                .fastCheckpoint = params.fastCheckpoint,
                                .manifestChecksums = params.manifestChecksums};
  if (params.maxRate)
    options.maxRateKiB =
        std::uint32_t(std::clamp<std::uint64_t>(params.maxRate / 1024, 32, 1048576));
  pg::BackupStop stop = pg::runBaseBackup(connection, options, receiver, params.stopRequested);
  receiver.finish();
  progress.finish();
  connection = pg::Connection();  // the walsender is not needed while the archive catches up
  // Rounded up: a time target between the real end and a rounded-down one would choose this
  // backup, and PostgreSQL would stop before it is consistent.
  info.stopTime = clock.now(true);
  info.objects = receiver.objects();
  info.startLsn = receiver.start().lsn;
  info.stopLsn = stop.lsn;
  info.timeline = receiver.start().timeline;
  if (stop.timeline != info.timeline)
    throw error(ErrorCode::Database,
                "the server changed timeline during the backup ({} to {}, a promotion?); take the "
                "backup again",
                info.timeline, stop.timeline);

  // Complete only once the archive holds every WAL segment from the start to the stop location
  // (the server switched to a new segment at the stop, so the last one is archivable).
  spdlog::info("backup {}: {} streamed in {:.1f} s; waiting for the archive to hold WAL {} to {}",
               info.label, humanBytes(info.size()), progress.seconds(), info.walStart(),
               info.walStop());
  waitForWal(repository, generation, info.timeline, info.firstSegment(), info.lastSegment(),
             info.walSegmentSize, params.walTimeout, params.walPoll, params.stopRequested);
}

}  // namespace

repo::BackupInfo takeBackup(const repo::Repository& repository, const BackupParams& outer) {
  std::string startLabel = repo::backupLabel(utcNow());
  auto lock = lockStanza(repository);
  // Every step that polls for a stop also checks the lock: a backup whose lock was taken over (s3,
  // after it could not be refreshed) stops and records nothing, as another may be running.
  BackupParams params = outer;
  auto lockLost = [&repository] {
    return Error(ErrorCode::Locked,
                 fmt::format("lost the backup lock of stanza '{}': another process may be taking a "
                             "backup now; no backup was recorded",
                             repository.stanza()),
                 "check the repository's reachability (s3.timeout, s3.lock-timeout) and run the "
                 "backup again");
  };
  params.stopRequested = [&lock, &lockLost, stop = outer.stopRequested] {
    if (!lock->held()) throw lockLost();
    return stop && stop();
  };
  // Before each write only the holder may make (backup.json's MAC record, backup.json): refreshed
  // on the spot, so that a takeover would need a whole lock-timeout from just before the write.
  const std::function<void()> confirmLock = [&lock, &lockLost] {
    if (!lock->confirm()) throw lockLost();
  };
  pg::Connection connection = pg::Connection::open(params.conninfo, true, "tidemark-basebackup");
  const Server server = checkServer(connection, params.archiveCommand);
  const auto [stanza, generation] = checkStanza(repository, server, connection);
  requireWalFromCluster(repository, generation.number, server, params);
  storeMissingHistory(repository, generation.number, connection, server.timeline);
  CollectedConfiguration configuration =
      readServerConfiguration(connection, params.conninfo, server.systemId);

  repo::BackupInfo info;
  info.label = freeLabel(repository, std::move(startLabel), params.stopRequested);
  info.tidemarkVersion = kVersion;
  info.pgVersion = server.version / 10000;
  info.pgVersionNum = server.version;
  info.systemId = server.systemId;
  info.walSegmentSize = server.segmentSize;
  info.compression = repository.policy().compress;
  info.encryption = repository.policy().encryption;
  info.fastCheckpoint = params.fastCheckpoint;
  info.manifestChecksums = params.manifestChecksums;
  info.configuration = configuration.record;
  BackupClock clock(params.conninfo);
  info.startTime = clock.now();

  Progress progress(fmt::format("backup {}", info.label), 0, params.terminal);
  Receiver receiver(repository, info.label, progress, params.stopRequested);
  std::string infoPath;  // set once backup.json may be stored
  try {
    if (!configuration.archive.empty())
      info.configuration.object =
          receiver.storeObject(repo::kConfigArchive, io::asBytes(configuration.archive));
    streamAndWait(repository, generation.number, params, connection, receiver, progress, clock,
                  info);
    if (params.stopRequested())  // and throws if the lock is lost
      throw Error(ErrorCode::Interrupted,
                  "the base backup was interrupted; no backup was recorded");
    infoPath = repo::backupInfoFile(repository.stanza(), info.label);
    if (!writeBackupJson(repository, infoPath, info, stanza.identity(), confirmLock)) {
      std::string taken = std::exchange(infoPath, "");  // someone else's: leave it alone
      throw error(ErrorCode::Storage, "'{}' already exists", taken);
    }
  } catch (...) {
    progress.finish();
    removeFailedBackup(repository, infoPath, receiver.stored());
    throw;
  }
  return info;
}

repo::BackupInfo basebackup(const Config& config, const std::function<bool()>& stopRequested) {
  repo::Repository repository = repo::openRepository(config);
  BackupParams params{.conninfo = config.pg.conninfo,
                      .fastCheckpoint = config.backup.fastCheckpoint,
                      .maxRate = config.backup.maxRate,
                      .manifestChecksums = config.backup.manifestChecksums,
                      .walTimeout = std::chrono::seconds(config.backup.walTimeout),
                      .stopRequested = stopRequested,
                      .archiveCommand = suggestedArchiveCommand(config)};
  auto started = std::chrono::steady_clock::now();
  repo::BackupInfo info = takeBackup(repository, params);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::size_t archives = 0;
  for (const auto& o : info.objects)
    archives += o.name != "backup_manifest";
  spdlog::info(
      "backup {} complete: {} in {} archive{}, {} stored ({:.1f}x, {}), {:.1f} s, {}/s; needs WAL "
      "{} to {}",
      info.label, humanBytes(info.size()), archives, archives == 1 ? "" : "s",
      humanBytes(info.storedSize()),
      info.storedSize() ? double(info.size()) / double(info.storedSize()) : 0.0,
      info.storageDescription(), seconds,
      humanBytes(std::uint64_t(double(info.size()) / std::max(seconds, 1e-3))), info.walStart(),
      info.walStop());
  return info;
}

}  // namespace tidemark::backup
