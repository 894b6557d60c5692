// tidemark check against a real PostgreSQL 15 and a real repository: it passes on a server that
// archives into the stanza (the switched segment arrives and verifies), and each misconfiguration
// fails with its own line and exit status 16: archive_command pointing elsewhere, archive_mode off,
// an unreachable repository, a stanza of another cluster, a role without REPLICATION or the GRANTs
// (and the documented GRANTs make it pass). S3: the probe, and an endpoint nobody answers.
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "cluster.h"
#include "common/base/error.h"
#include "common/repo/stanza.h"
#include "tidemark_runner.h"

using namespace std::chrono_literals;

namespace tidemark::test {

namespace {

// tidemark check with `args`, as the current user.
Outcome check(const Workspace& ws, std::vector<std::string> args) {
  args.insert(args.begin(), {"check", "--timeout", "60"});
  return ctl(ws, std::move(args));
}

bool has(const Outcome& o, const std::string& text) {
  return o.out.find(text) != std::string::npos;
}

// The report's line of check `name` ("" when there is none): "<status, 8 wide> <name>: ...".
std::string line(const Outcome& o, const std::string& name) {
  std::istringstream in(o.out);
  for (std::string text; std::getline(in, text);)
    if (text.size() > 9 && text.compare(9, name.size() + 2, name + ": ") == 0) return text;
  return "";
}

// Sets a server setting with ALTER SYSTEM and reloads; waits until new sessions see it.
void setAndReload(PgCluster& pg, const std::string& setting, const std::string& value) {
  pg.exec("ALTER SYSTEM SET " + setting + " = '" + value + "'");
  pg.exec("SELECT pg_reload_conf()");
  REQUIRE(waitUntil([&] { return pg.value("SHOW " + setting) == value; }, 20s));
}

}  // namespace

TEST_CASE("tidemark check proves archiving end to end, and names each misconfiguration") {
  Workspace ws(Backend::Posix);
  PgCluster pg(ws.path("pg"));
  ws.startArchivingPrimary(pg);
  const std::string conninfo = "--pg-conninfo=" + pg.conninfo() + " dbname=postgres";
  const std::string repoPath = ws.path("repo");
  const std::string systemId = pg.value("select system_identifier from pg_control_system()");

  // A correctly configured server: every check passes, the switched segment arrives.
  Outcome passed = check(ws, {conninfo});
  INFO(passed.out);
  INFO(passed.err);
  REQUIRE(passed.status == 0);
  CHECK(line(passed, "repository") ==
        "ok       repository: posix:" + repoPath +
            " is reachable and writable (a probe object written, read back and removed)");
  CHECK(line(passed, "system-identifier")
            .starts_with("ok       system-identifier: the cluster's system identifier " + systemId +
                         " "));
  CHECK(line(passed, "archive-command") ==
        "ok       archive-command: archive_command calls tidemark-archive-push with "
        "configuration '" +
            ws.config() + "': the same stanza 'main' in posix:" + repoPath);
  CHECK(line(passed, "replication-role") ==
        "ok       replication-role: role 'postgres' has SUPERUSER");
  std::string switched = line(passed, "wal-switch");
  REQUIRE(switched.starts_with("ok       wal-switch: pg_switch_wal() completed '"));
  std::string segment = switched.substr(switched.find('\'') + 1, 24);
  CHECK(line(passed, "wal-archived")
            .starts_with("ok       wal-archived: '" + segment +
                         "' reached the repository and verifies"));
  CHECK(ws.hasObject(Workspace::walObject(segment)));
  CHECK(has(passed, "stanza 'main' in posix:" + repoPath + ": every check passed\n"));
  // The probe objects are gone, and none was ever under the stanza.
  for (const auto& object : ws.objects())
    CHECK(object.find("probe") == std::string::npos);

  // Twice in a row on an idle server: the restore point makes the switch complete a segment.
  Outcome again = check(ws, {conninfo, "--output", "json"});
  INFO(again.out);
  REQUIRE(again.status == 0);
  auto doc = nlohmann::json::parse(again.out);
  CHECK(doc.at("ok") == true);
  CHECK(doc.at("stanza") == "main");
  REQUIRE(doc.at("checks").size() == 14);
  for (const auto& c : doc.at("checks")) {
    INFO(c.dump());
    CHECK(c.at("status") == "ok");
    CHECK(c.at("ok") == true);
    CHECK(c.at("fix").is_null());
  }
  std::string second = doc.at("checks")[12].at("detail").get<std::string>();
  CHECK(second.find("' reached the repository and verifies") != std::string::npos);
  CHECK(second.substr(1, 24) > segment);

  // Interrupted (SIGINT) while it waits for a segment the archiver cannot store (the repository's
  // WAL folder read-only for the server's user): the report is still printed, wal-archived says
  // why it is skipped, and the archiver's failure is named (16; 14 when nothing failed).
  {
    const std::string walDir = repoPath + "/main/wal/0000000100000000";
    const auto mode = std::filesystem::status(walDir).permissions();
    const std::string failedBefore = pg.value("select failed_count from pg_stat_archiver");
    std::filesystem::permissions(walDir, std::filesystem::perms::all,
                                 std::filesystem::perm_options::remove);
    struct Restore {
      std::string dir;
      std::filesystem::perms mode;
      ~Restore() { std::filesystem::permissions(dir, mode); }
    } restore{walDir, mode};
    const std::string out = ws.path("interrupted.out"), err = ws.path("interrupted.err");
    Process running({ws.ctl(), "check", "--config", ws.config(), conninfo, "--timeout", "300"},
                    {.stdoutPath = out, .stderrPath = err});
    // Once the archiver failed on the switched segment, the check waits for it.
    bool failing = waitUntil(
        [&] { return pg.value("select failed_count from pg_stat_archiver") != failedBefore; }, 60s);
    running.signal(SIGINT);
    std::optional<int> status = running.waitFor(30s);
    REQUIRE(failing);
    REQUIRE(status);
    Outcome interrupted{*status, readText(out), readText(err)};
    INFO(interrupted.out);
    INFO(interrupted.err);
    CHECK(*status == exitStatus(ErrorCode::Unhealthy));
    CHECK(line(interrupted, "wal-switch").starts_with("ok       wal-switch: pg_switch_wal() "));
    CHECK(line(interrupted, "wal-archived")
              .starts_with("skipped  wal-archived: interrupted (SIGINT or SIGTERM) "));
    CHECK(line(interrupted, "archiver").starts_with("failed   archiver: "));
    CHECK(has(interrupted, "stanza 'main' in posix:" + repoPath + ": 1 check failed (archiver)\n"));
    CHECK(interrupted.err.find("check of stanza 'main' failed: archiver") != std::string::npos);
    std::filesystem::permissions(walDir, mode);
    pg.waitArchived();
  }

  // archive_command pushes into another stanza of the same repository.
  std::string other = ws.path("other.toml");
  writeFile(other, "stanza = \"other\"\n" + ws.repoToml());
  giveToTestUser(other);
  setAndReload(pg, "archive_command", ws.push() + " --config " + other + " %p");
  Outcome otherStanza = check(ws, {conninfo});
  INFO(otherStanza.out);
  CHECK(otherStanza.status == exitStatus(ErrorCode::Unhealthy));
  CHECK(line(otherStanza, "archive-command") ==
        "failed   archive-command: archive_command pushes to stanza 'other' in posix:" + repoPath +
            " (configuration '" + other + "'), not to stanza 'main' in posix:" + repoPath +
            ": stanza 'other' (this configuration: 'main') -- fix: set archive_command = "
            "'tidemark-archive-push --config " +
            ws.config() +
            " %p' in postgresql.conf and reload PostgreSQL (SELECT pg_reload_conf()), or run "
            "tidemark check with the configuration archive_command uses");
  CHECK(line(otherStanza, "wal-switch") ==
        "skipped  wal-switch: not switched: 'archive-command' failed");
  CHECK(otherStanza.err.find("check of stanza 'main' failed: archive-command") !=
        std::string::npos);

  // ... or into another repository path.
  setAndReload(
      pg, "archive_command",
      ws.push() + " --config " + ws.config() + " --repo-path=" + ws.path("elsewhere") + " %p");
  Outcome otherPath = check(ws, {conninfo});
  INFO(otherPath.out);
  CHECK(otherPath.status == exitStatus(ErrorCode::Unhealthy));
  CHECK(line(otherPath, "archive-command")
            .starts_with("failed   archive-command: archive_command pushes to stanza 'main' in "
                         "posix:" +
                         ws.path("elsewhere")));
  CHECK(has(otherPath, ": repo.path '" + ws.path("elsewhere") + "' (this configuration: '" +
                           repoPath + "') -- fix: "));

  // ... or somewhere else entirely.
  setAndReload(pg, "archive_command", "cp %p /tmp/%f");
  Outcome copies = check(ws, {conninfo});
  CHECK(copies.status == exitStatus(ErrorCode::Unhealthy));
  CHECK(line(copies, "archive-command")
            .starts_with("failed   archive-command: archive_command 'cp %p /tmp/%f' does not call "
                         "tidemark-archive-push: WAL does not go to stanza 'main' in posix:" +
                         repoPath + " -- fix: set archive_command = "));
  setAndReload(pg, "archive_command", ws.archiveCommand());

  // The repository is not there (an unmounted path): the stanza cannot be read either.
  Outcome unreachable = check(ws, {conninfo, "--repo-path=" + ws.path("not-mounted")});
  INFO(unreachable.out);
  CHECK(unreachable.status == exitStatus(ErrorCode::Unhealthy));
  CHECK(line(unreachable, "repository").starts_with("failed   repository: "));
  CHECK(line(unreachable, "repository").find(ws.path("not-mounted") + "' does not exist") !=
        std::string::npos);
  CHECK(line(unreachable, "repository").find(" -- fix: ") != std::string::npos);
  CHECK(line(unreachable, "stanza") == "skipped  stanza: the repository is not reachable");
  CHECK(line(unreachable, "system-identifier") ==
        "skipped  system-identifier: the stanza could not be read");
  CHECK(line(unreachable, "wal-archived").starts_with("skipped  wal-archived: not switched: "));

  // A stanza that belongs to another cluster.
  PgCluster otherCluster(ws.path("other-pg"), "other");
  otherCluster.initdb();
  std::string log = ws.path("foreign-stanza.log");
  REQUIRE(run({ws.ctl(), "stanza-create", "--config", ws.config(), "--stanza=foreign", "--pgdata",
               otherCluster.dataDir()},
              {.user = testUser(), .stdoutPath = log, .stderrPath = log}) == 0);
  std::uint64_t foreignId = repo::loadStanza(repo::Repository(*ws.storage(), "foreign"))->systemId;
  Outcome foreign = check(ws, {conninfo, "--stanza=foreign"});
  INFO(foreign.out);
  CHECK(foreign.status == exitStatus(ErrorCode::Unhealthy));
  CHECK(line(foreign, "system-identifier")
            .starts_with("failed   system-identifier: the cluster at postgres@127.0.0.1:" +
                         std::to_string(pg.port()) +
                         " is from the cluster with system identifier " + systemId +
                         ", but stanza 'foreign' belongs to " + std::to_string(foreignId) +
                         " -- fix: "));

  // A monitoring role without REPLICATION and without the GRANTs.
  pg.exec("CREATE ROLE monitor LOGIN");
  const std::string monitor = "--pg-conninfo=host=127.0.0.1 port=" + std::to_string(pg.port()) +
                              " user=monitor dbname=postgres";
  Outcome bare = check(ws, {monitor});
  INFO(bare.out);
  CHECK(bare.status == exitStatus(ErrorCode::Unhealthy));
  CHECK(line(bare, "replication-role") ==
        "failed   replication-role: role 'monitor' has no REPLICATION attribute: "
        "tidemark-basebackup cannot run BASE_BACKUP -- fix: ALTER ROLE monitor REPLICATION; (as a "
        "superuser)");
  CHECK(line(bare, "replication-connection")
            .starts_with("failed   replication-connection: the server refused a replication "
                         "connection: cannot connect to PostgreSQL: "));
  CHECK(line(bare, "replication-connection").find("must be superuser or replication role") !=
        std::string::npos);
  CHECK(line(bare, "wal-switch") ==
        "failed   wal-switch: role 'monitor' may not run pg_switch_wal() or "
        "pg_create_restore_point(text): permission denied -- fix: GRANT EXECUTE ON FUNCTION "
        "pg_switch_wal() TO monitor; GRANT EXECUTE ON FUNCTION pg_create_restore_point(text) TO "
        "monitor;");
  // PostgreSQL 15 shows archive_command to every role; data_directory it does not.
  CHECK(line(bare, "archive-command").starts_with("ok       archive-command: "));

  // The GRANTs docs/check.md lists are enough.
  pg.exec("ALTER ROLE monitor REPLICATION");
  pg.exec("GRANT pg_monitor TO monitor");
  pg.exec("GRANT EXECUTE ON FUNCTION pg_switch_wal() TO monitor");
  pg.exec("GRANT EXECUTE ON FUNCTION pg_create_restore_point(text) TO monitor");
  Outcome granted = check(ws, {monitor});
  INFO(granted.out);
  INFO(granted.err);
  CHECK(granted.status == 0);
  CHECK(line(granted, "replication-role") ==
        "ok       replication-role: role 'monitor' has the REPLICATION attribute");

  // On a standby, the switch is the primary's job: a note, not a failure.
  std::string standbyDir = ws.path("standby");
  std::string copyLog = ws.path("pg_basebackup.log");
  REQUIRE(run({pgBinDir() + "/pg_basebackup", "-h", "127.0.0.1", "-p", std::to_string(pg.port()),
               "-U", "postgres", "-D", standbyDir, "-R", "-X", "stream", "--no-sync"},
              {.user = testUser(), .stdoutPath = copyLog, .stderrPath = copyLog}) == 0);
  PgCluster standby(standbyDir, "standby");
  standby.start();
  Outcome onStandby = check(ws, {"--pg-conninfo=" + standby.conninfo() + " dbname=postgres"});
  INFO(onStandby.out);
  CHECK(onStandby.status == 0);
  CHECK(line(onStandby, "connection").ends_with(", a standby (in recovery)"));
  CHECK(
      line(onStandby, "system-identifier")
          .starts_with("ok       system-identifier: the cluster's system identifier " + systemId));
  CHECK(line(onStandby, "wal-switch") ==
        "note     wal-switch: the server is a standby: switching WAL is the primary's job (run "
        "tidemark check there)");
  CHECK(line(onStandby, "wal-archived") == "skipped  wal-archived: no WAL switch on a standby");
  standby.stop();

  // archive_mode off (it needs a restart).
  pg.exec("ALTER SYSTEM SET archive_mode = off");
  pg.stop();
  pg.start();
  Outcome off = check(ws, {conninfo});
  INFO(off.out);
  CHECK(off.status == exitStatus(ErrorCode::Unhealthy));
  CHECK(line(off, "archive-mode") ==
        "failed   archive-mode: archive_mode is 'off': PostgreSQL archives nothing -- fix: set "
        "archive_mode = on in postgresql.conf and restart PostgreSQL (archive_mode takes effect "
        "only at server start)");
  CHECK(line(off, "archive-command") ==
        "skipped  archive-command: archive_mode is 'off': PostgreSQL shows archive_command as "
        "'(disabled)'");
  CHECK(line(off, "wal-switch") == "skipped  wal-switch: not switched: 'archive-mode' failed");
  pg.stop();
}

TEST_CASE("tidemark check writes its probe to S3 and removes it, and fails on a closed endpoint") {
  Workspace ws(Backend::S3);
  // No server: the repository checks run, the server's are skipped for want of a connection.
  const std::string nowhere = "--pg-conninfo=host=127.0.0.1 port=" + std::to_string(freePort()) +
                              " user=postgres connect_timeout=5";
  Outcome reachable = check(ws, {nowhere});
  INFO(reachable.out);
  INFO(reachable.err);
  CHECK(reachable.status == exitStatus(ErrorCode::Unhealthy));
  CHECK(line(reachable, "repository") ==
        "ok       repository: " + ws.storage()->describe() +
            " is reachable and writable (a probe object written, read back and removed)");
  CHECK(line(reachable, "stanza")
            .starts_with("failed   stanza: stanza 'main' does not exist in " +
                         ws.storage()->describe()));
  CHECK(line(reachable, "connection")
            .starts_with("failed   connection: cannot connect to PostgreSQL: "));
  CHECK(line(reachable, "archive-command") ==
        "skipped  archive-command: no connection to PostgreSQL");
  CHECK(ws.objects().empty());

  Outcome closed =
      check(ws, {nowhere, "--s3-endpoint=http://127.0.0.1:" + std::to_string(freePort()),
                 "--s3-retry-max=0"});
  INFO(closed.out);
  CHECK(closed.status == exitStatus(ErrorCode::Unhealthy));
  CHECK(line(closed, "repository").starts_with("failed   repository: S3 "));
  CHECK(line(closed, "repository").find("failed after 1 attempt") != std::string::npos);
  CHECK(line(closed, "stanza") == "skipped  stanza: the repository is not reachable");
}

}  // namespace tidemark::test
