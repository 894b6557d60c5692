// tidemark drill on a real PostgreSQL 15 (posix and S3): a healthy repository passes with RTO and
// RPO, the user's query answered, nothing left behind (no server, no scratch directory, nothing
// new in the repository but the drill's record and its lease); a damaged WAL segment fails the
// replay step naming it, a damaged backup archive the restore step, a failing query the query
// step; SIGTERM in the middle of the replay stops the server and removes the scratch directory;
// SIGKILL of the drill takes its server down too; a scratch directory too small for the backup
// fails the restore step and leaves nothing; --target-time stops the replay at the target (and the
// plan reads the archive's end with drill.pg-bin's pg_waldump); a history with two branches past
// the backup is refused without --target-timeline and drilled with it.
// And tidemark metrics: every family, parsed (promtool when installed), changing after a push
// and a backup.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "cluster.h"
#include "tidemark_runner.h"
#include "tmpfs.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace tidemark::test {

namespace {

struct Drilled : Outcome {
  nlohmann::json doc;
};

Drilled drillWith(const Workspace& ws, std::vector<std::string> args) {
  args.insert(args.begin(), {"drill", "--output", "json"});
  Drilled o{ctl(ws, std::move(args)), nullptr};
  if (!o.out.empty()) o.doc = nlohmann::json::parse(o.out);
  return o;
}

bool processGone(long pid) {
  return pid > 0 && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH;
}

// A primary archiving into the workspace, with table t (20000 rows at the backup), a backup, and
// `segments` WAL segments archived after it.
struct Archived {
  Workspace& ws;
  PgCluster pg;
  std::string rows;
  Archived(Workspace& workspace, int segments)
      : ws(workspace), pg(workspace.path("primary"), "primary") {
    ws.startArchivingPrimary(pg);
    pg.exec("create table t as select g from generate_series(1, 20000) g");
    takeBackup(ws, pg);
    for (int i = 0; i < segments; ++i) {
      pg.exec("insert into t select g from generate_series(1, 100) g");
      pg.exec("select pg_switch_wal()");
    }
    pg.waitArchived();
    rows = pg.value("select count(*) from t");
  }
};

// The WAL segments of timeline 1, in order (object paths).
std::vector<std::string> segmentObjects(const Workspace& ws) {
  std::vector<std::string> out;
  for (const auto& path : ws.objects()) {
    std::string name = path.substr(path.rfind('/') + 1);
    if (path.find("/wal/") != std::string::npos && name.size() == 24 &&
        name.find_first_not_of("0123456789ABCDEF") == std::string::npos)
      out.push_back(path);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The log of the drill's server shows the replay restoring files from the archive.
bool replayBegan(const std::string& scratch) {
  std::ifstream in(scratch + "/postgresql.log");
  std::stringstream text;
  text << in.rdbuf();
  return text.str().find("restored log file") != std::string::npos;
}

long postmasterPid(const std::string& dataDirectory) {
  long pid = 0;
  std::ifstream(dataDirectory + "/postmaster.pid") >> pid;
  return pid;
}

void healthyDrill(Backend backend) {
  Workspace ws(backend);
  Archived archived(ws, 12);
  archived.pg.stop();
  std::set<std::string> before;
  for (const auto& path : ws.objects())
    before.insert(path);
  const std::string scratch = ws.path("scratch");
  Drilled o = drillWith(ws, {"--scratch", scratch, "--query", "select count(*) from t"});
  INFO(o.err);
  INFO(o.out);
  REQUIRE(o.status == 0);
  const auto& d = o.doc;
  CHECK(d.at("result") == "ok");
  CHECK(d.at("failed-step").is_null());
  CHECK(d.at("target") == "latest");
  CHECK(d.at("rto-seconds").get<double>() > 0);
  CHECK(d.at("rto-seconds").get<double>() < 600);
  CHECK(d.at("restore-seconds").get<double>() <= d.at("rto-seconds").get<double>());
  CHECK(d.at("replay-seconds").get<double>() <= d.at("rto-seconds").get<double>());
  // The last insert committed before the server stopped, the drill began after: the RPO is the
  // time between them, seconds here.
  CHECK(d.at("rpo-basis") == "last-replayed-commit");
  CHECK(d.at("rpo-seconds").get<double>() >= 0);
  CHECK(d.at("rpo-seconds").get<double>() < 600);
  CHECK(d.at("segments-replayed").get<int>() >= 12);
  bool queried = false;
  for (const auto& check : d.at("checks")) {
    CHECK(check.at("ok") == true);
    if (check.at("name") == "query 1") {
      queried = true;
      CHECK(check.at("first-row") == nlohmann::json::array({archived.rows}));
    }
  }
  CHECK(queried);
  // Nothing left behind: no server, no scratch directory.
  CHECK(processGone(d.at("server-pid").get<long>()));
  CHECK_FALSE(fs::exists(scratch));
  // Nothing new in the repository but the drill's record and its (released) recovery lease.
  std::set<std::string> added;
  for (const auto& path : ws.objects())
    if (!before.count(path)) added.insert(path);
  CHECK_FALSE(added.empty());
  for (const auto& path : added) {
    INFO(path);
    CHECK((path.starts_with("main/state/drill/") || path.starts_with("main/state/lease/")));
  }
  REQUIRE(d.at("record").is_string());
  CHECK(added.count(d.at("record").get<std::string>()));
  // tidemark info shows the last drill.
  Outcome info = ctl(ws, {"info", "--output", "json"});
  REQUIRE(info.status == 0);
  auto last = nlohmann::json::parse(info.out).at("last-drill");
  CHECK(last.at("result") == "ok");
  CHECK(last.at("backup") == d.at("backup"));
  CHECK(last.at("rto-seconds") == d.at("rto-seconds"));
}

}  // namespace

TEST_CASE("tidemark drill passes on a healthy posix repository and leaves nothing behind") {
  healthyDrill(Backend::Posix);
}

TEST_CASE("tidemark drill passes on a healthy S3 repository and leaves nothing behind") {
  healthyDrill(Backend::S3);
}

TEST_CASE("tidemark drill names the failed step: a damaged segment, a damaged backup, a query") {
  Workspace ws(Backend::Posix);
  Archived archived(ws, 10);
  archived.pg.stop();
  const std::string scratch = ws.path("scratch");
  auto failsIn = [&](const std::string& step, const std::vector<std::string>& extra,
                     const std::string& named) {
    std::vector<std::string> args = {"--scratch", scratch};
    args.insert(args.end(), extra.begin(), extra.end());
    Drilled o = drillWith(ws, args);
    INFO(o.err);
    INFO(o.out);
    CHECK(o.status == 16);
    REQUIRE(o.doc.is_object());
    CHECK(o.doc.at("result") == "failed");
    CHECK(o.doc.at("failed-step") == step);
    CHECK(o.doc.at("error").get<std::string>().find(named) != std::string::npos);
    CHECK(o.err.find("the drill failed in the " + step + " step") != std::string::npos);
    if (o.doc.at("server-pid").is_number()) CHECK(processGone(o.doc.at("server-pid").get<long>()));
    CHECK_FALSE(fs::exists(scratch));
    return o;
  };

  SUBCASE("a damaged WAL segment in the middle of the chain") {
    auto segments = segmentObjects(ws);
    REQUIRE(segments.size() >= 10);
    const std::string middle = segments[segments.size() / 2 + 1];
    const std::string name = middle.substr(middle.rfind('/') + 1);
    io::Buffer bytes = ws.readObject(middle);
    flipByte(ws, middle, bytes.size() / 2);
    Drilled o = failsIn("replay", {}, name);
    CHECK(o.doc.at("server-log").get<std::string>().find(name) != std::string::npos);
  }
  SUBCASE("a damaged backup archive") {
    auto labels = infoLabels(ws);
    REQUIRE(labels.size() == 1);
    const std::string base = "main/backups/" + labels.front() + "/base.tar";
    io::Buffer bytes = ws.readObject(base);
    flipByte(ws, base, bytes.size() / 2);
    failsIn("restore", {}, "base.tar");
  }
  SUBCASE("a query that fails") {
    Drilled o =
        failsIn("query", {"--query", "select count(*) from no_such_table"}, "no_such_table");
    CHECK(o.doc.at("checks").at(0).at("name") == "connect");
    CHECK(o.doc.at("checks").at(0).at("ok") == true);
  }
  // A failed drill is recorded too: info shows it.
  Outcome info = ctl(ws, {"info", "--output", "json"});
  REQUIRE(info.status == 0);
  CHECK(nlohmann::json::parse(info.out).at("last-drill").at("result") == "failed");
}

TEST_CASE(
    "tidemark drill stopped during the replay leaves no server: SIGTERM cleans up, SIGKILL takes "
    "the server down through its parent-death signal") {
  Workspace ws(Backend::Posix);
  Archived archived(ws, 40);
  archived.pg.stop();
  const std::string scratch = ws.path("scratch");
  Process drill({ws.ctl(), "drill", "--config", ws.config(), "--scratch", scratch},
                {.stdoutPath = ws.path("drill.out"), .stderrPath = ws.path("drill.err")});
  // The replay has begun once the server restored a file from the archive.
  REQUIRE(waitUntil([&] { return replayBegan(scratch); }, 120s));
  long serverPid = postmasterPid(scratch + "/data");
  REQUIRE(serverPid > 0);
  SUBCASE("SIGTERM") {
    drill.signal(SIGTERM);
    auto status = drill.waitFor(120s);
    REQUIRE(status);
    CHECK(*status == 14);  // Interrupted
    CHECK(processGone(serverPid));
    CHECK_FALSE(fs::exists(scratch));
  }
  SUBCASE("SIGKILL") {
    drill.signal(SIGKILL);
    drill.wait();
    CHECK(waitUntil([&] { return processGone(serverPid); }, 60s));
  }
}

TEST_CASE(
    "tidemark drill into a scratch directory too small for the backup fails the restore "
    "step and leaves nothing" *
    doctest::skip(!canMount())) {
  Workspace ws(Backend::Posix);
  Archived archived(ws, 2);
  archived.pg.stop();
  std::set<std::string> before;
  for (const auto& path : ws.objects())
    before.insert(path);
  const std::string scratch = ws.makeDir("scratch");
  Tmpfs space(scratch, 8 * kMiB, 0700);
  Drilled o = drillWith(ws, {"--scratch", scratch});
  INFO(o.output());
  CHECK(o.status == 16);
  REQUIRE(o.doc.is_object());
  CHECK(o.doc.at("failed-step") == "restore");
  CHECK(o.doc.at("error").get<std::string>().find("No space left on device") != std::string::npos);
  CHECK(o.doc.at("server-pid").is_null());
  // The directory was given: it stays, emptied.
  CHECK(fs::is_empty(scratch));
  for (const auto& path : ws.objects())
    if (!before.count(path))
      CHECK((path.starts_with("main/state/drill/") || path.starts_with("main/state/lease/")));
}

TEST_CASE("tidemark drill --target-time replays to the target and stops there") {
  Workspace ws(Backend::Posix);
  PgCluster pg(ws.path("primary"), "primary");
  ws.startArchivingPrimary(pg);
  pg.exec("create table t as select g from generate_series(1, 1000) g");
  takeBackup(ws, pg);
  std::this_thread::sleep_for(1500ms);  // a backup's stop time is rounded up to the second
  pg.exec("insert into t select g from generate_series(1, 500) g");
  const double target = serverNow(pg);
  const std::string atTarget = pg.value("select count(*) from t");
  std::this_thread::sleep_for(1500ms);
  pg.exec("insert into t select g from generate_series(1, 700) g");
  pg.exec("select pg_switch_wal()");
  pg.waitArchived();
  pg.stop();
  // drill.pg-bin: a directory of the server's programs, its pg_waldump one that says it ran (the
  // plan reads where the archive ends with it).
  const std::string bin = ws.path("pg-bin");
  fs::create_directories(bin);
  for (const auto& entry : fs::directory_iterator(pgBinDir()))
    if (entry.path().filename() != "pg_waldump")
      fs::create_symlink(entry.path(), bin + "/" + entry.path().filename().string());
  const std::string ran = ws.path("pg_waldump-ran");
  {
    std::ofstream script(bin + "/pg_waldump");
    script << "#!/bin/sh\n[ \"$1\" = --version ] || touch '" << ran << "'\nexec '" << pgBinDir()
           << "/pg_waldump' \"$@\"\n";
  }
  fs::permissions(bin + "/pg_waldump", fs::perms(0755));
  Drilled o = drillWith(ws, {"--target-time", isoTarget(target), "--query",
                             "select count(*) from t", "--drill-pg-bin", bin});
  INFO(o.output());
  REQUIRE(o.status == 0);
  CHECK(fs::exists(ran));
  CHECK(o.doc.at("pg-bin") == bin);
  for (const auto& warning : o.doc.at("warnings"))  // its answer was read
    CHECK(warning.get<std::string>().find("cannot tell where the archive ends") ==
          std::string::npos);
  CHECK(o.doc.at("target").get<std::string>().find("time") != std::string::npos);
  bool queried = false;
  for (const auto& check : o.doc.at("checks"))
    if (check.at("name") == "query 1") {
      queried = true;
      CHECK(check.at("first-row") == nlohmann::json::array({atTarget}));
    }
  CHECK(queried);
  CHECK(o.doc.at("last-replayed-commit").is_string());
}

TEST_CASE(
    "tidemark drill from a backup before two branches with WAL after the fork: refused without "
    "--target-timeline, passes with it") {
  Workspace ws(Backend::Posix);
  PgCluster source(ws.path("source"), "source");
  // A copy restored with production's archiving on archives timeline 2; production goes on.
  archiveTwoBranches(ws, source);

  const std::string scratch = ws.path("scratch");
  Drilled refused = drillWith(ws, {"--scratch", scratch});
  INFO(refused.output());
  CHECK(refused.status == 16);
  REQUIRE(refused.doc.is_object());
  CHECK(refused.doc.at("failed-step") == "plan");
  CHECK(refused.doc.at("error").get<std::string>().find(
            "2 branches hold WAL past the fork: timeline 1") != std::string::npos);
  CHECK(refused.doc.at("error").get<std::string>().find("--target-timeline N") !=
        std::string::npos);
  CHECK(refused.doc.at("target-timeline") == "latest");
  CHECK(refused.doc.at("timeline").is_null());
  CHECK_FALSE(fs::exists(scratch));

  // drill.target-timeline is read as --target-timeline is: a wrong value stops the drill before
  // it runs (a configuration error, not recorded).
  Outcome wrong = ctl(ws, {"drill", "--drill-target-timeline=production"});
  CHECK(wrong.status == 4);
  CHECK(wrong.err.find("drill.target-timeline 'production' is not latest, current or a timeline "
                       "number") != std::string::npos);

  // Production's branch named: its backup, its newest WAL.
  Drilled o = drillWith(ws, {"--scratch", scratch, "--target-timeline", "1", "--query",
                             "select string_agg(n::text, ',' order by n) from rows"});
  INFO(o.output());
  REQUIRE(o.status == 0);
  CHECK(o.doc.at("target") == "latest");
  CHECK(o.doc.at("target-timeline") == "1");
  CHECK(o.doc.at("timeline") == 1);
  bool queried = false;
  for (const auto& check : o.doc.at("checks"))
    if (check.at("name") == "query 1") {
      queried = true;
      CHECK(check.at("first-row") == nlohmann::json::array({"1,2"}));
    }
  CHECK(queried);
  CHECK_FALSE(fs::exists(scratch));
}

// Every file below `dir` with its size and modification time.
std::map<std::string, std::pair<std::uintmax_t, fs::file_time_type>> snapshot(
    const std::string& dir) {
  std::map<std::string, std::pair<std::uintmax_t, fs::file_time_type>> out;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    out[entry.path().string()] = {entry.is_regular_file() ? entry.file_size() : 0,
                                  entry.last_write_time()};
  return out;
}

TEST_CASE(
    "tidemark drill run as root never writes into production's files: a tablespace "
    "created after the backup" *
    doctest::skip(::geteuid() != 0 || !canMount())) {
  Workspace ws(Backend::Posix);
  PgCluster pg(ws.path("primary"), "primary");
  ws.startArchivingPrimary(pg);
  pg.exec("create table t as select g from generate_series(1, 1000) g");
  takeBackup(ws, pg);
  // After the backup: a tablespace at a path of the production host, with a table in it.
  const std::string tablespace = ws.makeDir("production-tablespace");
  pg.exec("create tablespace prod location '" + tablespace + "'");
  pg.exec("create table u tablespace prod as select g from generate_series(1, 1000) g");
  pg.exec("select pg_switch_wal()");
  pg.waitArchived();
  pg.stop();
  auto before = snapshot(tablespace);
  REQUIRE_FALSE(before.empty());
  Drilled o = drillWith(ws, {"--scratch", ws.path("scratch")});
  INFO(o.output());
  // The replay cannot create the tablespace's files in a read-only place: the drill fails (this
  // host cannot restore that WAL without touching production), and production is untouched.
  CHECK(o.status == 16);
  REQUIRE(o.doc.is_object());
  CHECK(o.doc.at("failed-step") == "replay");
  CHECK(snapshot(tablespace) == before);
  CHECK(processGone(o.doc.at("server-pid").get<long>()));
}

}  // namespace tidemark::test
