// tidemark stanza-upgrade against a real pg_upgrade (PostgreSQL 15 to 15, as PostgreSQL's own
// tests do: the new cluster gets a new system identifier), on posix and S3 repositories: the
// upgraded cluster's WAL is refused as a foreign cluster with a hint naming stanza-upgrade --force;
// stanza-upgrade refuses a cluster of the same version without --force, records generation 2 with
// it (and, run again, changes nothing); archiving resumes into
// <stanza>/wal-2/; a backup of the new cluster belongs to generation 2; recoveries to a time in
// each generation restore that generation's backup and replay its WAL; and a cluster that is no
// upgrade of the stanza's is still refused.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include "cluster.h"
#include "common/base/error.h"
#include "common/repo/backup.h"
#include "tidemark_runner.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace tidemark::test {

namespace {

// `tidemark COMMAND --config ... ARGS`, as the server's user (what it writes, the server's
// archive_command must read).
Outcome serverCtl(const Workspace& ws, std::vector<std::string> args) {
  return ctl(ws, std::move(args), {.user = testUser()});
}

// tidemark-archive-push by hand on a file of the cluster's pg_wal, in its data directory (where
// PostgreSQL runs archive_command), as the server's user.
Outcome pushByHand(const Workspace& ws, const PgCluster& pg, const std::string& walName) {
  return runTidemark(ws, ws.push(), {"pg_wal/" + walName},
                     {.cwd = pg.dataDir(), .user = testUser()});
}

std::string systemId(PgCluster& pg) {
  return pg.value("select system_identifier from pg_control_system()");
}

// Where generation `generation` keeps WAL segment `name` (docs/repository-format.md).
std::string walObjectOf(int generation, const std::string& name) {
  return std::string("main/") + (generation == 1 ? "wal" : "wal-" + std::to_string(generation)) +
         "/" + name.substr(0, 16) + "/" + name;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A server started on a restored data directory (as the test user, not archiving: nothing of it
// goes into the stanza), promoted at its target; stopped by its pid when destroyed.
struct Recovered {
  PgCluster pg;
  Recovered(const std::string& dir, const std::string& name) : pg(dir, name) {
    giveToTestUser(dir);
    pg.configure("archive_mode = off\n");
    pg.start();
    bool promoted = waitUntil([&] { return pg.value("select pg_is_in_recovery()") == "f"; }, 300s);
    INFO(pg.logTail());
    REQUIRE(promoted);
  }
};

}  // namespace

TEST_CASE_TEMPLATE(
    "stanza-upgrade after pg_upgrade: the new cluster's WAL is refused until then, archives into "
    "generation 2 after, and both generations recover to a point in time",
    Repo, PosixRepo, S3Repo) {
  Workspace ws(Repo::value);
  const std::string archiving = "archive_mode = on\narchive_command = '" + ws.archiveCommand() +
                                "'\nwal_level = replica\nmax_wal_senders = 5\n";

  // 1. The old cluster: a stanza, a backup, data before and after T1, all archived.
  PgCluster old(ws.path("old"), "old");
  old.initdb();
  ws.stanzaCreate(old);
  old.configure(archiving);
  old.start();
  const std::string oldId = systemId(old);
  old.exec("create table t (gen int, i int, at timestamptz default clock_timestamp())");
  old.exec("insert into t (gen, i) select 1, g from generate_series(1, 100) g");
  takeBackup(ws, old);
  std::this_thread::sleep_for(1100ms);  // after the backup's stop time (rounded up to seconds)
  old.exec("insert into t (gen, i) values (1, 101)");
  const double t1 = serverNow(old);
  std::this_thread::sleep_for(1100ms);
  old.exec("insert into t (gen, i) values (1, 102)");  // after T1
  old.waitArchived();
  REQUIRE(old.value("select failed_count from pg_stat_archiver") == "0");
  old.stop();

  // Another cluster, made after the old one and before the new one: it is no upgrade of the
  // stanza's current cluster (step 6).
  PgCluster other(ws.path("other"), "other");
  other.initdb();
  std::this_thread::sleep_for(1100ms);  // system identifiers begin with initdb's second

  // 2. pg_upgrade into a new cluster (its own system identifier), as the server's user, in a
  // folder it may write (pg_upgrade's sockets and scripts go to the working directory).
  PgCluster upgraded(ws.path("new"), "new");
  upgraded.initdb();
  {
    std::string work = ws.makeDir("pg_upgrade");
    Outcome o =
        runLogged(ws, "pg_upgrade",
                  {pgBinDir() + "/pg_upgrade", "-b", pgBinDir(), "-B", pgBinDir(), "-d",
                   old.dataDir(), "-D", upgraded.dataDir(), "-p", std::to_string(freePort()), "-P",
                   std::to_string(freePort()), "-U", "postgres", "--no-sync"},
                  {.cwd = work, .user = testUser()});
    INFO(o.output());
    REQUIRE(o.status == 0);
  }
  upgraded.configure(archiving);  // only now: pg_upgrade's own runs of the server push nothing

  // 3. Its WAL is refused: a foreign cluster, with a hint naming stanza-upgrade.
  upgraded.start();
  const std::string newId = systemId(upgraded);
  REQUIRE(newId != oldId);
  CHECK(upgraded.value("select string_agg(i::text, ',' order by i) from t where i > 100") ==
        "101,102");
  upgraded.exec("create table after_upgrade (i int)");
  upgraded.exec("select pg_switch_wal()");
  REQUIRE(waitUntil(
      [&] { return upgraded.value("select failed_count > 0 from pg_stat_archiver") == "t"; }, 60s));
  const std::string refusedWal = upgraded.value("select last_failed_wal from pg_stat_archiver");
  {
    Outcome o = pushByHand(ws, upgraded, refusedWal);
    INFO(o.output());
    CHECK(o.status == 8);  // ErrorCode::ForeignCluster
    CHECK(contains(o.output(), newId));
    // The same version (15 to 15): a stanza of its own first, stanza-upgrade with --force.
    CHECK(contains(o.output(), "each cluster needs its own stanza"));
    CHECK(contains(o.output(), "tidemark stanza-upgrade --force"));
    INFO(upgraded.logTail(80));
    CHECK(contains(readText(ws.path("new.log")), "stanza-upgrade"));  // what the archiver got
  }
  for (const auto& object : ws.objects()) {
    CHECK_FALSE(object.rfind("main/wal-2/", 0) == 0);
    CHECK_FALSE(object.rfind("main/generations/", 0) == 0);
  }
  CHECK_FALSE(ws.hasObject(walObjectOf(1, refusedWal)));

  // 4. stanza-upgrade (from the data directory): refused for a cluster of the same version (it
  // may be another cluster pointed at this stanza), recorded with --force; again (from the
  // server): nothing more to do.
  {
    Outcome refused = serverCtl(ws, {"stanza-upgrade", "--pgdata", upgraded.dataDir()});
    INFO(refused.output());
    CHECK(refused.status == exitStatus(ErrorCode::Config));
    CHECK(contains(refused.output(), "runs PostgreSQL 15, as generation 1"));
    CHECK_FALSE(ws.hasObject("main/generations/2.json"));
    Outcome o = serverCtl(ws, {"stanza-upgrade", "--pgdata", upgraded.dataDir(), "--force"});
    INFO(o.output());
    REQUIRE(o.status == 0);
    CHECK(contains(o.output(), "new generation 2, system identifier " + newId + ", PostgreSQL 15"));
    CHECK(ws.hasObject("main/generations/2.json"));
    Outcome again = serverCtl(ws, {"stanza-upgrade", "--pg-conninfo=" + upgraded.conninfo()});
    INFO(again.output());
    CHECK(again.status == 0);
    CHECK(contains(again.output(), "this cluster already is generation 2"));
    CHECK_FALSE(ws.hasObject("main/generations/3.json"));
  }
  // Archiving resumes (pg_switch_wal wakes the archiver), into generation 2's folder.
  upgraded.waitArchived();
  CHECK(upgraded.value("select last_archived_time >= coalesce(last_failed_time, '-infinity') "
                       "from pg_stat_archiver") == "t");
  const std::string archived = upgraded.value("select last_archived_wal from pg_stat_archiver");
  CHECK(ws.hasObject(walObjectOf(2, refusedWal)));
  CHECK(ws.hasObject(walObjectOf(2, archived)));
  CHECK_FALSE(ws.hasObject(walObjectOf(1, refusedWal)));
  CHECK_FALSE(ws.hasObject(walObjectOf(1, archived)));

  // A backup of the new cluster, data before and after T2.
  takeBackup(ws, upgraded);
  std::this_thread::sleep_for(1100ms);
  upgraded.exec("insert into t (gen, i) select 2, g from generate_series(1, 50) g");
  const double t2 = serverNow(upgraded);
  std::this_thread::sleep_for(1100ms);
  upgraded.exec("insert into t (gen, i) values (2, 999)");  // after T2
  upgraded.waitArchived();
  upgraded.stop();

  const auto backups = repo::listBackups(ws.repository());
  REQUIRE(backups.size() == 2);
  CHECK(std::to_string(backups[0].systemId) == oldId);
  CHECK(std::to_string(backups[1].systemId) == newId);

  // 5. A time in generation 1: its backup, its WAL; the old cluster's data as of T1.
  {
    std::string dir = ws.path("at-t1");
    Outcome o = recoverWith(
        ws, {"--pgdata=" + dir, "--target-time=" + isoTarget(t1 + 0.3), "--target-action=promote"});
    INFO(o.output());
    REQUIRE(o.status == 0);
    CHECK(contains(o.output(), backups[0].label));
    CHECK_FALSE(contains(o.output(), backups[1].label));
    Recovered server(dir, "at-t1");
    CHECK(systemId(server.pg) == oldId);
    CHECK(server.pg.value("select count(*) from t where gen = 1") == "101");
    CHECK(server.pg.value("select max(i) from t") == "101");
    CHECK(server.pg.value("select to_regclass('after_upgrade') is null") == "t");
    server.pg.stop();
  }
  // A time in generation 2: the new cluster's backup and generation 2's WAL.
  {
    std::string dir = ws.path("at-t2");
    Outcome o = recoverWith(
        ws, {"--pgdata=" + dir, "--target-time=" + isoTarget(t2 + 0.3), "--target-action=promote"});
    INFO(o.output());
    REQUIRE(o.status == 0);
    CHECK(contains(o.output(), backups[1].label));
    Recovered server(dir, "at-t2");
    CHECK(systemId(server.pg) == newId);
    CHECK(server.pg.value("select count(*) from t where gen = 1") == "102");
    CHECK(server.pg.value("select count(*) from t where gen = 2") == "50");
    CHECK(server.pg.value("select count(*) from t where i = 999") == "0");
    server.pg.stop();
  }
  // The plans for the end of the archive and for the old backup by its label.
  {
    Outcome latest = recoverWith(ws, {"--pgdata=" + ws.path("latest"), "--dry-run"});
    INFO(latest.output());
    CHECK(latest.status == 0);
    CHECK(contains(latest.output(), backups[1].label));
    Outcome byLabel = recoverWith(ws, {"--pgdata=" + ws.path("by-label"), "--dry-run",
                                       "--backup=" + backups[0].label, "--target=immediate"});
    INFO(byLabel.output());
    CHECK(byLabel.status == 0);
    CHECK(contains(byLabel.output(), backups[0].label));
    CHECK_FALSE(fs::exists(ws.path("latest")));
    CHECK_FALSE(fs::exists(ws.path("by-label")));
  }

  // 6. A cluster that is neither generation, and no upgrade of the current one: refused, with
  // the wrong-stanza hint.
  {
    Outcome o = pushByHand(ws, other, "000000010000000000000001");
    INFO(o.output());
    CHECK(o.status == 8);
    CHECK(contains(o.output(), "each cluster needs its own stanza"));
    CHECK_FALSE(contains(o.output(), "stanza-upgrade"));
  }

  // tidemark info reports both generations' backups (the top level is the current one's); and
  // verify finds nothing wrong.
  {
    std::vector<std::string> listed = infoLabels(ws);
    CHECK(std::find(listed.begin(), listed.end(), backups[1].label) != listed.end());
    Outcome info = serverCtl(ws, {"info", "--output", "json"});
    INFO(info.output());
    CHECK(info.status == 0);
    CHECK(contains(info.output(), backups[0].label));
    CHECK(contains(info.output(), backups[1].label));
  }
  Outcome verified = serverCtl(ws, {"verify"});
  INFO(verified.output());
  CHECK(verified.status == 0);
}

}  // namespace tidemark::test
