// tidemark-basebackup against a real PostgreSQL 15: a backup taken under load restores, passes
// pg_verifybackup and recovers consistently; interruptions, concurrent runs and a foreign cluster
// leave nothing recorded; memory stays bounded.
#include <doctest/doctest.h>
#include <signal.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cluster.h"
#include "common/base/error.h"
#include "common/repo/backup.h"
#include "common/repo/layout.h"
#include "common/restore/restore.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace tidemark::test {

namespace {

// A primary that archives through tidemark, with a tablespace holding a table.
struct Primary {
  Workspace& ws;
  PgCluster pg;
  std::string tablespace;

  Primary(Workspace& workspace, int scale)
      : ws(workspace), pg(workspace.path("primary"), "primary") {
    pg.initdb();
    ws.stanzaCreate(pg);
    pg.configure(
        "archive_mode = on\n"
        "archive_command = '" +
        ws.archiveCommand() +
        "'\n"
        "wal_level = replica\n"
        "max_wal_senders = 5\n");
    pg.start();
    tablespace = ws.makeDir("tablespace");
    pg.exec("create tablespace ts location '" + tablespace + "'");
    pg.exec(
        "create table in_ts tablespace ts as select g as id, repeat('x', 200) as filler "
        "from generate_series(1, 20000) g");
    REQUIRE(pgbench({"-i", "-q", "-s", std::to_string(scale)}) == 0);
  }

  std::string conninfo() const { return pg.conninfo(); }

  std::vector<std::string> pgbenchArgs(std::vector<std::string> args) const {
    std::vector<std::string> argv{pgBinDir() + "/pgbench",   "-h", "127.0.0.1", "-p",
                                  std::to_string(pg.port()), "-U", "postgres"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("postgres");
    return argv;
  }
  int pgbench(std::vector<std::string> args) const {
    return run(pgbenchArgs(std::move(args)), {.stderrPath = ws.path("pgbench.log")});
  }

  // Every WAL file written so far is in the repository.
  void archiveEverything() { pg.waitArchived(); }
};

std::vector<std::string> backupCommand(const Workspace& ws, const std::string& conninfo,
                                       std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{ws.basebackup(), "--config", ws.config(),
                                "--pg-conninfo=" + conninfo};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

// The objects stored under backups/ (any label), for checking that nothing was left.
std::vector<std::string> backupObjects(const Workspace& ws) {
  auto storage = ws.storage();
  std::vector<std::string> found;
  std::function<void(const std::string&)> walk = [&](const std::string& dir) {
    storage->list(dir, [&](const storage::ListEntry& entry) {
      std::string path = storage::joinPath(dir, entry.name);
      if (entry.directory)
        walk(path);
      else
        found.push_back(path);
    });
  };
  walk(repo::backupsDirectory("main"));
  return found;
}

}  // namespace

TEST_CASE_TEMPLATE(
    "a base backup taken under load restores, passes pg_verifybackup and recovers consistently",
    Repo, PosixRepo, S3Repo) {
  Workspace ws(Repo::value);
  Primary primary(ws, 5);

  // pgbench writes during the whole backup.
  Process load(primary.pgbenchArgs({"-c", "2", "-T", "600"}),
               {.stderrPath = ws.path("pgbench-load.log")});
  std::this_thread::sleep_for(1s);
  std::string log = ws.path("basebackup.log");
  int status = run(backupCommand(ws, primary.conninfo()), {.stderrPath = log});
  INFO(readText(log));
  REQUIRE(status == 0);
  load.signal(SIGINT);
  load.wait();
  primary.archiveEverything();
  std::string historyRows = primary.pg.value("select count(*) from pgbench_history");
  CHECK(std::stoll(historyRows) > 0);
  primary.pg.stop();

  auto backups = repo::listBackups(ws.repository());
  REQUIRE(backups.size() == 1);
  const repo::BackupInfo& backup = backups.front();
  CHECK(backup.pgVersion == 15);
  CHECK(backup.timeline == 1);
  CHECK(backup.startLsn < backup.stopLsn);
  CHECK(backup.walStart() <= backup.walStop());
  std::vector<std::string> names;
  for (const auto& object : backup.objects)
    names.push_back(object.name);
  CHECK(names.size() == 3);
  CHECK(std::find(names.begin(), names.end(), "base.tar") != names.end());
  CHECK(std::find(names.begin(), names.end(), "backup_manifest") != names.end());
  auto tablespaceArchive =
      std::find_if(backup.objects.begin(), backup.objects.end(),
                   [](const repo::BackupObject& o) { return o.tablespaceOid != 0; });
  REQUIRE(tablespaceArchive != backup.objects.end());
  CHECK(tablespaceArchive->tablespaceLocation == primary.tablespace);
  CHECK(tablespaceArchive->name == std::to_string(tablespaceArchive->tablespaceOid) + ".tar");

  // Restore to the original locations (the old tablespace moved aside), as after losing the server.
  fs::rename(primary.tablespace, primary.tablespace + ".lost");
  std::string restored = ws.path("restored");
  restore::restoreBackup(ws.repository(), backup, restored, {.terminal = 0});
  std::string verifyLog = ws.path("verifybackup.log");
  int verified = run({pgBinDir() + "/pg_verifybackup", "--no-parse-wal", restored},
                     {.stdoutPath = verifyLog, .stderrPath = verifyLog});
  INFO(readText(verifyLog));
  CHECK(verified == 0);

  giveToTestUser(restored);
  giveToTestUser(primary.tablespace);
  PgCluster server(restored, "restored");
  server.configure("restore_command = '" + ws.restoreCommand() + "'\narchive_mode = off\n");
  writeFile(restored + "/recovery.signal", "");
  giveToTestUser(restored);
  server.start();
  bool promoted =
      waitUntil([&] { return server.value("select pg_is_in_recovery()") == "f"; }, 300s);
  INFO(server.logTail());
  REQUIRE(promoted);
  // Every transaction archived is there, and pgbench's books balance.
  CHECK(server.value("select count(*) from pgbench_history") == historyRows);
  CHECK(server.value("select (select sum(abalance) from pgbench_accounts) = (select "
                     "coalesce(sum(delta), 0) from "
                     "pgbench_history)") == "t");
  CHECK(server.value("select (select sum(bbalance) from pgbench_branches) = (select "
                     "coalesce(sum(delta), 0) from "
                     "pgbench_history)") == "t");
  CHECK(server.value("select count(*) from in_ts") == "20000");
  CHECK(server.value("select count(*) from pg_tablespace where spcname = 'ts'") == "1");
}

TEST_CASE("a base backup interrupted by SIGTERM records nothing, and the next one succeeds") {
  Workspace ws(Backend::Posix);
  Primary primary(ws, 10);
  std::string log = ws.path("interrupted.log");
  {
    // Slowed down by the server, so that the signal arrives mid-stream.
    Process backup(backupCommand(ws, primary.conninfo(), {"--backup-max-rate=2MiB"}),
                   {.stderrPath = log});
    std::this_thread::sleep_for(3s);
    REQUIRE(backup.running());
    backup.signal(SIGTERM);
    auto status = backup.waitFor(30s);
    INFO(readText(log));
    REQUIRE(status);
    CHECK(*status == 14);  // Interrupted
  }
  CHECK(readText(log).find("interrupted") != std::string::npos);
  CHECK(repo::listBackups(ws.repository()).empty());
  CHECK(backupObjects(ws).empty());  // what was stored was removed on the way out

  std::string next = ws.path("next.log");
  int status = run(backupCommand(ws, primary.conninfo()), {.stderrPath = next});
  INFO(readText(next));
  CHECK(status == 0);
  CHECK(repo::listBackups(ws.repository()).size() == 1);
}

TEST_CASE("a backup's times are the server's clock, even when this machine's clock is off") {
  // libfaketime sets tidemark-basebackup's clock two hours back; the server's is right. A stop
  // time on the client's clock would be two hours before the backup really ended, and a time
  // target in between would choose a backup that is not consistent there.
  std::string faketime;  // /usr/lib/<multiarch>/faketime/libfaketime.so.1
  for (const auto& entry : fs::directory_iterator("/usr/lib"))
    if (fs::exists(entry.path() / "faketime/libfaketime.so.1"))
      faketime = entry.path() / "faketime/libfaketime.so.1";
  REQUIRE_MESSAGE(!faketime.empty(), "install faketime (scripts/test does)");
  const std::vector<std::string> skewed{"LD_PRELOAD=" + faketime, "FAKETIME=-2h",
                                        "FAKETIME_DONT_FAKE_MONOTONIC=1"};
  Workspace ws(Backend::Posix);
  Primary primary(ws, 1);
  primary.archiveEverything();
  auto serverNow = [&] {
    return std::stod(primary.pg.value("select extract(epoch from clock_timestamp())"));
  };
  auto seconds = [](UtcSeconds t) { return double(t.time_since_epoch().count()); };
  auto backup = [&](const std::string& conninfo, const std::string& log) {
    int status = run(backupCommand(ws, conninfo), {.env = skewed, .stderrPath = log});
    INFO(readText(log));
    REQUIRE(status == 0);
    auto backups = repo::listBackups(ws.repository());
    REQUIRE_FALSE(backups.empty());
    return backups.back();
  };

  double before = serverNow();
  repo::BackupInfo info = backup(primary.conninfo(), ws.path("skewed.log"));
  double after = serverNow();
  INFO(readText(ws.path("skewed.log")));
  CHECK(seconds(info.startTime) >= std::floor(before));
  CHECK(seconds(info.stopTime) >= seconds(info.startTime));
  CHECK(seconds(info.stopTime) <= std::ceil(after));
  CHECK(readText(ws.path("skewed.log")).find("this machine's clock is 72") != std::string::npos);
  CHECK(readText(ws.path("skewed.log")).find("behind the server's") != std::string::npos);

  // When the server cannot be asked on a regular connection (here: a database that does not
  // exist; the replication connection needs none), this machine's clock, with a warning.
  std::string fallbackLog = ws.path("fallback.log");
  repo::BackupInfo local = backup(primary.conninfo() + " dbname=nosuchdb", fallbackLog);
  CHECK(readText(fallbackLog).find("cannot read the server's clock") != std::string::npos);
  CHECK(seconds(local.stopTime) < serverNow() - 3600);
}

TEST_CASE("a backup stores the timeline history files of promotions the archive never saw") {
  // A cluster promoted twice before tidemark was installed: 00000002.history and
  // 00000003.history are only in its pg_wal. Without them in the repository, recovery cannot
  // follow the timelines from a backup taken on timeline 3.
  Workspace ws(Backend::Posix);
  PgCluster pg(ws.path("primary"), "primary");
  pg.initdb();
  pg.configure("wal_level = replica\nmax_wal_senders = 5\n");
  pg.start();  // once as a primary: a standby needs the settings pg_control records
  pg.stop();
  for (int promotion = 0; promotion < 2; ++promotion) {
    writeFile(pg.dataDir() + "/standby.signal", "");
    giveToTestUser(pg.dataDir() + "/standby.signal");
    pg.start();
    REQUIRE(pg.value("select pg_promote(true, 60)") == "t");
    pg.stop();
  }
  ws.stanzaCreate(pg);
  pg.configure("archive_mode = on\narchive_command = '" + ws.archiveCommand() + "'\n");
  pg.start();
  REQUIRE(pg.value("select timeline_id from pg_control_checkpoint()") == "3");
  CHECK_FALSE(ws.hasObject(Workspace::walObject("00000002.history")));

  std::string log = ws.path("backup.log");
  int status = run(backupCommand(ws, pg.conninfo()), {.stderrPath = log});
  std::string text = readText(log);
  INFO(text);
  REQUIRE(status == 0);
  for (const std::string history : {"00000002.history", "00000003.history"}) {
    CAPTURE(history);
    CHECK(text.find("stored " + history + " from the server") != std::string::npos);
    io::MemorySink sink;
    REQUIRE(ws.repository().readObject(Workspace::walObject(history), sink, 1 << 20));
    CHECK(sink.data() == readFile(pg.dataDir() + "/pg_wal/" + history));
  }
  // The next backup finds them there.
  std::string again = ws.path("again.log");
  REQUIRE(run(backupCommand(ws, pg.conninfo()), {.stderrPath = again}) == 0);
  CHECK(readText(again).find("from the server") == std::string::npos);
}

TEST_CASE("a second backup of a stanza fails at once, naming the one that runs") {
  Workspace ws(Backend::Posix);
  Primary primary(ws, 10);
  Process first(backupCommand(ws, primary.conninfo(), {"--backup-max-rate=2MiB"}),
                {.stderrPath = ws.path("first.log")});
  std::this_thread::sleep_for(2s);
  REQUIRE(first.running());
  std::string log = ws.path("second.log");
  auto started = std::chrono::steady_clock::now();
  int status = run(backupCommand(ws, primary.conninfo()), {.stderrPath = log});
  auto took = std::chrono::steady_clock::now() - started;
  std::string text = readText(log);
  INFO(text);
  CHECK(status == 15);  // Locked
  CHECK(took < 10s);
  CHECK(text.find("another backup of stanza 'main' is running: tidemark-basebackup pid " +
                  std::to_string(first.pid())) != std::string::npos);
  first.signal(SIGTERM);
  first.wait();
}

TEST_CASE("a backup of another cluster into the stanza is refused before anything is stored") {
  Workspace ws(Backend::Posix);
  Primary primary(ws, 1);
  primary.archiveEverything();
  PgCluster other(ws.path("other"), "other");
  other.initdb();
  other.configure("archive_mode = on\narchive_command = '/bin/true'\nwal_level = replica\n");
  other.start();
  std::string log = ws.path("foreign.log");
  int status = run(backupCommand(ws, other.conninfo()), {.stderrPath = log});
  std::string text = readText(log);
  INFO(text);
  CHECK(status == 8);  // ForeignCluster
  CHECK(text.find("each cluster needs its own stanza") != std::string::npos);
  CHECK(backupObjects(ws).empty());
}

TEST_CASE(
    "a backup into a stanza that receives no WAL from the cluster fails before streaming, and a "
    "new "
    "cluster's first backup works") {
  SUBCASE("archive_command pushes into another stanza: refused at once, nothing stored") {
    Workspace ws(Backend::Posix);
    PgCluster pg(ws.path("pg"));
    pg.initdb();
    ws.stanzaCreate(pg);
    std::string other = ws.path("other.toml");
    writeFile(other, "stanza = \"other\"\n" + ws.repoToml());
    giveToTestUser(other);
    std::string created = ws.path("other-stanza.log");
    REQUIRE(run({ws.ctl(), "stanza-create", "--config", other, "--pgdata", pg.dataDir()},
                {.user = testUser(), .stdoutPath = created, .stderrPath = created}) == 0);
    pg.configure("archive_mode = on\narchive_command = '" + ws.push() + " --config " + other +
                 " %p'\nwal_level = replica\nmax_wal_senders = 5\n");
    pg.start();
    std::string log = ws.path("backup.log");
    auto started = std::chrono::steady_clock::now();
    int status = run(backupCommand(ws, pg.conninfo()), {.stderrPath = log});
    auto took = std::chrono::steady_clock::now() - started;
    std::string text = readText(log);
    INFO(text);
    CHECK(status == exitStatus(ErrorCode::Config));
    CHECK(took < 20s);  // not backup.wal-timeout (300 s)
    std::string systemId = pg.value("select system_identifier from pg_control_system()");
    CHECK(text.find("ERROR: stanza 'main' holds no WAL from this cluster (system identifier " +
                    systemId +
                    "): is archive_command pushing into stanza 'main'? run tidemark check\n") !=
          std::string::npos);
    CHECK(text.find("through its archive_command, and it is not in the stanza") !=
          std::string::npos);
    CHECK(text.find("streamed in") == std::string::npos);  // the stream never started
    CHECK(backupObjects(ws).empty());
    for (const auto& object : ws.objects())
      CHECK_MESSAGE(object.rfind("main/wal/", 0) != 0, object);
  }
  SUBCASE("a new cluster, archiving into the stanza, nothing archived yet: the backup completes") {
    Workspace ws(Backend::Posix);
    PgCluster pg(ws.path("pg"));
    ws.startArchivingPrimary(pg);
    REQUIRE(pg.value("select archived_count from pg_stat_archiver") == "0");
    std::string log = ws.path("first.log");
    int status = run(backupCommand(ws, pg.conninfo()), {.stderrPath = log});
    std::string text = readText(log);
    INFO(text);
    CHECK(status == 0);
    CHECK(text.find("stanza 'main' holds no WAL from this cluster yet: the server completed WAL "
                    "file 000000010000000000000001") != std::string::npos);
    CHECK(repo::listBackups(ws.repository()).size() == 1);
  }
}

TEST_CASE(
    "the server's refusals are named: no server, a role without REPLICATION, archive_mode off") {
  Workspace ws(Backend::Posix);
  PgCluster pg(ws.path("pg"));
  pg.initdb();
  pg.configure("wal_level = replica\narchive_mode = off\n");
  pg.start();
  pg.exec("create role plain login");
  int counter = 0;
  auto attempt = [&](const std::string& conninfo) {
    std::string log = ws.path("refused-" + std::to_string(++counter) + ".log");
    int status = run(backupCommand(ws, conninfo), {.stderrPath = log});
    return std::make_pair(status, readText(log));
  };
  std::string base = "host=127.0.0.1 port=" + std::to_string(pg.port());
  {
    auto [status, text] =
        attempt("host=127.0.0.1 port=" + std::to_string(freePort()) + " user=postgres");
    INFO(text);
    CHECK(status == 12);  // Database
    CHECK(text.find("cannot connect to PostgreSQL") != std::string::npos);
    CHECK(text.find("check [pg] conninfo") != std::string::npos);
  }
  {
    auto [status, text] = attempt(base + " user=plain");
    INFO(text);
    CHECK(status == 12);
    CHECK(text.find("the role needs the REPLICATION attribute") != std::string::npos);
  }
  {
    auto [status, text] = attempt(base + " user=postgres");
    INFO(text);
    CHECK(status == 12);
    CHECK(text.find("archive_mode is off") != std::string::npos);
    // With the configuration this backup was given: archive-push must read the same one.
    CHECK(text.find("archive_command = 'tidemark-archive-push --config " + ws.config() + " %p'") !=
          std::string::npos);
  }
  CHECK(backupObjects(ws).empty());
}

TEST_CASE_TEMPLATE(
    "a backup of a database far larger than its buffers stays under 128 MiB of memory", Repo,
    PosixRepo, S3Repo) {
  Workspace ws(Repo::value);
  Primary primary(ws, 20);  // about 300 MiB of tables
  std::string log = ws.path("big.log");
  Process backup(backupCommand(ws, primary.conninfo()), {.stderrPath = log});
  int status = backup.wait();
  INFO(readText(log));
  REQUIRE(status == 0);
  auto backups = repo::listBackups(ws.repository());
  REQUIRE(backups.size() == 1);
  CHECK(backups.front().size() > (250ULL << 20));
  MESSAGE("peak RSS of tidemark-basebackup: ", backup.maxRssKiB() / 1024, " MiB for ",
          backups.front().size() >> 20, " MiB backed up");
  CHECK(backup.maxRssKiB() < 128 * 1024);
}

}  // namespace tidemark::test
