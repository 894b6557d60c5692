// tidemark expire and tidemark keep against a real PostgreSQL 15 and real repositories (posix and
// S3): four backups with WAL between them; a dry run deletes nothing; full = 2 removes the oldest
// with the WAL only it needed while a keep mark holds the second and its WAL; a point-in-time
// recovery after the third backup still works; info and verify agree; the window rule keeps the
// backup before the window's start; a recovery's lease holds the WAL it replays while expire runs;
// a request below a low-water mark is an error (255), never "not found" (1). And SIGKILL at
// random moments: the repository stays consistent and a rerun finishes.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "cluster.h"
#include "common/base/time.h"
#include "common/repo/backup.h"
#include "common/repo/layout.h"
#include "tidemark_runner.h"
#include "tmpfs.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace tidemark::test {

namespace {

std::set<std::string> objectSet(const Workspace& ws) {
  auto list = ws.objects();
  return {list.begin(), list.end()};
}

std::vector<repo::BackupInfo> backups(const Workspace& ws) {
  return repo::listBackups(ws.repository());
}

// Four backups, rows committed between them, every WAL file archived.
struct Fixture {
  Workspace& ws;
  PgCluster pg;
  std::vector<repo::BackupInfo> taken;
  double afterThird = 0;  // a moment after the third backup, its row committed

  explicit Fixture(Workspace& workspace) : ws(workspace), pg(ws.path("primary"), "primary") {
    pg.initdb();
    ws.stanzaCreate(pg);
    pg.configure("archive_mode = on\narchive_command = '" + ws.archiveCommand() + "'\n");
    pg.start();
    pg.exec("create table t(i int, at timestamptz default clock_timestamp())");
    for (int i = 1; i <= 4; ++i) {
      pg.exec("insert into t(i) values (" + std::to_string(i) + ")");
      pg.waitArchived();
      takeBackup(ws, pg);
      if (i == 3) {
        std::this_thread::sleep_for(1100ms);  // after the backup's stop time (rounded up)
        pg.exec("insert into t(i) values (30)");
        afterThird = serverNow(pg);
        pg.waitArchived();
      }
      std::this_thread::sleep_for(1100ms);  // labels are seconds
    }
    pg.exec("insert into t(i) values (5)");
    pg.waitArchived();
    taken = backups(ws);
    REQUIRE(taken.size() == 4);
  }
};

}  // namespace

TEST_CASE_TEMPLATE(
    "expire: count rule, keep marks, window rule, dry run, info, verify, PITR, "
    "and a recovery's lease",
    Repo, PosixRepo, S3Repo) {
  Workspace ws(Repo::value);
  Fixture f(ws);
  const auto& b = f.taken;
  const std::string b1Start = Workspace::walObject(b[0].walStart());
  const std::string b2Start = Workspace::walObject(b[1].walStart());

  // No policy: refused, nothing deleted.
  auto before = objectSet(ws);
  Outcome none = ctl(ws, {"expire"});
  CHECK(none.status == 4);
  CHECK(none.output().find("no retention policy") != std::string::npos);

  // An empty backup folder (a backup that failed before storing anything; posix only: S3 lists
  // only what holds objects) goes as what it is, with no age claimed for it.
  const std::string empty = ws.path("repo") + "/main/backups/29990101T000000Z";
  if (ws.backend() == Backend::Posix) fs::create_directories(empty);

  // The dry run names what would go and why, and deletes nothing.
  Outcome dry = ctl(ws, {"expire", "--dry-run", "--retention-full=2"});
  INFO(dry.output());
  REQUIRE(dry.status == 0);
  if (ws.backend() == Backend::Posix) {
    CHECK(dry.output().find("would delete incomplete backup 29990101T000000Z (an empty folder: "
                            "no object, no backup.json)") != std::string::npos);
    CHECK(fs::exists(empty));
    fs::remove(empty);
  }
  CHECK(dry.output().find("would delete backup " + b[0].label + ": no retention rule keeps it") !=
        std::string::npos);
  CHECK(dry.output().find("would delete backup " + b[1].label) != std::string::npos);
  CHECK(dry.output().find("would delete WAL " + b[0].walStart()) != std::string::npos);
  CHECK(objectSet(ws) == before);

  // A keep mark on the second: it survives with its own WAL; the first goes with its WAL.
  REQUIRE(ctl(ws, {"keep", b[1].label}).status == 0);
  Outcome nope = ctl(ws, {"keep", "20990101T000000Z"});
  CHECK(nope.status == 3);
  Outcome run1 = ctl(ws, {"expire", "--retention-full=2"});
  INFO(run1.output());
  REQUIRE(run1.status == 0);
  auto left = backups(ws);
  REQUIRE(left.size() == 3);
  CHECK(left[0].label == b[1].label);
  CHECK(infoLabels(ws) == std::vector<std::string>{b[1].label, b[2].label, b[3].label});
  CHECK_FALSE(ws.hasObject(repo::backupInfoFile("main", b[0].label)));
  CHECK_FALSE(ws.hasObject(repo::backupObject("main", b[0].label, "base.tar")));
  CHECK_FALSE(ws.hasObject(b1Start));
  CHECK(ws.hasObject(b2Start));
  CHECK(ws.hasObject(Workspace::walObject(b[2].walStart())));
  // Between the second's stop and the third's start: older than the cutoff, not the mark's.
  for (std::uint64_t s = b[1].lastSegment() + 1; s < b[2].firstSegment(); ++s)
    CHECK_FALSE(ws.hasObject(Workspace::walObject(pg::segmentFileName(1, s, 16u << 20))));
  Outcome verified = ctl(ws, {"verify"});
  INFO(verified.output());
  CHECK(verified.status == 0);
  // A second run has nothing left to do.
  Outcome again = ctl(ws, {"expire", "--retention-full=2"});
  CHECK(again.status == 0);
  INFO(again.output());
  CHECK(again.output().find("0 backups and 0 WAL files deleted") != std::string::npos);

  // A request below the low-water mark is an error (255 in recovery), never "not found".
  std::string getDir = ws.makeDir("get");
  int got =
      run({ws.get(), "--config", ws.config(), b[0].walStart(), getDir + "/x"}, {.cwd = getDir});
  CHECK(got == 255);

  // From the keep-marked backup, a recovery past its own WAL is refused before anything is
  // restored (expire deleted what follows it); to its end, it is not.
  {
    std::string dir = ws.makeDir("refused");
    fs::remove_all(dir);
    std::string log = ws.path("recover-refused.log");
    int status = run({ws.recover(), "--config", ws.config(), "--archiving=preserve",
                      "--pgdata=" + dir, "--backup=" + b[1].label},
                     {.stdoutPath = log, .stderrPath = log});
    INFO(readText(log));
    CHECK(status == 9);
    CHECK(readText(log).find("is missing from the repository") != std::string::npos);
    CHECK_FALSE(fs::exists(dir + "/PG_VERSION"));
    status = run({ws.recover(), "--config", ws.config(), "--archiving=preserve", "--pgdata=" + dir,
                  "--backup=" + b[1].label, "--target=immediate",
                  "--retention-lease-timeout=1"},  // lapses at once: b[1] goes below
                 {.stdoutPath = log, .stderrPath = log});
    CHECK(status == 0);
  }

  // A point-in-time recovery to a moment after the third backup still works.
  {
    std::string dir = ws.makeDir("pitr");
    fs::remove_all(dir);
    std::string log = ws.path("recover-pitr.log");
    int status =
        run({ws.recover(), "--config", ws.config(), "--archiving=preserve", "--pgdata=" + dir,
             "--target-time=" + isoTarget(f.afterThird + 0.2), "--target-action=promote"},
            {.stdoutPath = log, .stderrPath = log});
    INFO(readText(log));
    REQUIRE(status == 0);
    giveToTestUser(dir);
    PgCluster restored(dir, "pitr");
    restored.configure("archive_mode = off\n");  // its new timeline stays out of the stanza
    restored.start();
    REQUIRE(waitUntil([&] { return restored.value("select pg_is_in_recovery()") == "f"; }, 300s));
    CHECK(restored.value("select count(*) from t where i = 30") == "1");
    CHECK(restored.value("select count(*) from t where i = 5") == "0");
    restored.stop();
  }

  // The window rule keeps the newest backup that stopped before the window's start (the third)
  // and every later one; released, the second goes.
  std::this_thread::sleep_for(2500ms);  // the immediate restore's 1 s lease has lapsed
  std::int64_t now = utcNow().time_since_epoch().count();
  std::int64_t window = now - b[2].stopTime.time_since_epoch().count() - 1;
  REQUIRE(ctl(ws, {"keep", "--release", b[1].label}).status == 0);
  Outcome run2 = ctl(ws, {"expire", "--retention-window=" + std::to_string(window)});
  INFO(run2.output());
  REQUIRE(run2.status == 0);
  CHECK(run2.output().find("keep backup " + b[2].label + ": recovers the start of the") !=
        std::string::npos);
  CHECK(infoLabels(ws) == std::vector<std::string>{b[2].label, b[3].label});
  CHECK_FALSE(ws.hasObject(b2Start));

  // A recovery from the oldest backup holds its WAL while expire runs (its lease), and completes.
  std::string dir = ws.makeDir("leased");
  fs::remove_all(dir);
  std::string log = ws.path("recover-leased.log");
  int recovered =
      run({ws.recover(), "--config", ws.config(), "--archiving=preserve", "--pgdata=" + dir},
          {.stdoutPath = log, .stderrPath = log});
  INFO(readText(log));
  REQUIRE(recovered == 0);
  CHECK(fs::exists(dir + "/pg_wal/tidemark.lease"));
  std::this_thread::sleep_for(1100ms);
  f.pg.exec("insert into t(i) values (6)");
  f.pg.waitArchived();
  takeBackup(ws, f.pg);
  Outcome run3 = ctl(ws, {"expire", "--retention-full=1"});
  INFO(run3.output());
  REQUIRE(run3.status == 0);
  CHECK(run3.output().find("a recovery's lease holds it (lease") != std::string::npos);
  CHECK(run3.output().find("without a renewal)") != std::string::npos);
  CHECK(ws.hasObject(Workspace::walObject(b[3].walStart())));
  giveToTestUser(dir);
  PgCluster leased(dir, "leased");
  leased.configure("archive_mode = off\n");
  leased.start();
  REQUIRE(waitUntil([&] { return leased.value("select pg_is_in_recovery()") == "f"; }, 300s));
  INFO(readText(log));
  INFO(leased.logTail(60));
  CHECK(leased.value("select count(*) from t where i = 6") == "1");
  leased.stop();
  f.pg.stop();
}

TEST_CASE(
    "expire killed with SIGKILL at random moments leaves a repository that verifies, and a "
    "rerun completes") {
  Workspace ws(Backend::Posix);
  Fixture f(ws);
  f.pg.stop();
  const std::string repoDir = ws.path("repo"), saved = ws.path("repo-saved");
  fs::copy(repoDir, saved, fs::copy_options::recursive);
  std::mt19937 random(std::random_device{}());
  int interrupted = 0;
  for (int round = 0; round < 20; ++round) {
    fs::remove_all(repoDir);
    fs::copy(saved, repoDir, fs::copy_options::recursive);
    giveToTestUser(repoDir);
    {
      Process expire({ws.ctl(), "expire", "--config", ws.config(), "--retention-full=1"});
      std::this_thread::sleep_for(std::chrono::microseconds(random() % 60000));
      if (expire.running()) {
        expire.signal(SIGKILL);
        ++interrupted;
      }
      expire.wait();
    }
    Outcome verified = ctl(ws, {"verify"});
    INFO("round " << round << ": " << verified.output());
    CHECK(verified.status == 0);
    Outcome rerun = ctl(ws, {"expire", "--retention-full=1"});
    INFO(rerun.output());
    REQUIRE(rerun.status == 0);
    CHECK(infoLabels(ws) == std::vector<std::string>{f.taken[3].label});
    for (const auto& backup : f.taken)
      if (backup.label != f.taken[3].label)
        CHECK_FALSE(fs::exists(repoDir + "/main/backups/" + backup.label));
    CHECK_FALSE(ws.hasObject(Workspace::walObject(f.taken[2].walStart())));
    CHECK(ctl(ws, {"verify"}).status == 0);
  }
  MESSAGE(interrupted << " of 20 runs were killed midway");
  CHECK(interrupted > 0);
}

TEST_CASE(
    "expire on a full repository fails before it deletes anything, and completes once there "
    "is room" *
    doctest::skip(!canMount())) {
  Workspace ws(Backend::Posix);
  Fixture f(ws);
  f.pg.stop();
  const std::string repoDir = ws.path("repo"), saved = ws.path("repo-saved");
  fs::copy(repoDir, saved, fs::copy_options::recursive);
  Tmpfs repo(repoDir, 256 * kMiB, 0750);
  fs::copy(saved, repoDir, fs::copy_options::recursive);
  // Room for the lock's owner line (one page), none for a state record.
  auto data = [&] {
    std::set<std::string> out;
    for (const auto& object : objectSet(ws))
      if (object.find("/wal/") != std::string::npos ||
          object.find("/backups/") != std::string::npos)
        out.insert(object);
    return out;
  };
  auto before = data();
  std::string filler = repo.fillLeaving(4096);

  Outcome full = ctl(ws, {"expire", "--retention-full=1"});
  INFO(full.output());
  CHECK(full.status == 5);
  CHECK(full.output().find("No space left on device") != std::string::npos);
  CHECK(data() == before);  // the low-water mark comes first: nothing went
  CHECK(hiddenNames(repoDir).empty());

  fs::remove(filler);
  Outcome room = ctl(ws, {"expire", "--retention-full=1"});
  INFO(room.output());
  REQUIRE(room.status == 0);
  CHECK(infoLabels(ws) == std::vector<std::string>{f.taken[3].label});
  CHECK(ctl(ws, {"verify"}).status == 0);
}

}  // namespace tidemark::test
