// Prefetch (archive.get-ahead): recoveries and a standby replay through tidemark-archive-get while
// a prefetcher fills the spool ahead of them.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>

#include "cluster.h"
#include "tidemark_runner.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace tidemark::test {

namespace {

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
    ++n;
  return n;
}

// Writes `segments` WAL segments of rows into table t (made when missing); returns the last name.
std::string writeSegments(PgCluster& pg, int segments) {
  pg.exec("create table if not exists t (i int, pad text)");
  std::string last;
  for (int i = 0; i < segments; ++i) {
    pg.exec("insert into t select g, repeat('x', 100) from generate_series(1, 1500) g");
    last = pg.value("select pg_walfile_name(pg_switch_wal())");
  }
  return last;
}

void waitArchived(PgCluster& pg, const std::string& name) {
  bool archived = waitUntil(
      [&] {
        return pg.value("select coalesce(last_archived_wal, '') >= '" + name +
                        "' from pg_stat_archiver") == "t";
      },
      180s);
  INFO(pg.logTail());
  REQUIRE(archived);
}

// A copy of `primary` without WAL (pg_basebackup -X none): every segment its recovery needs comes
// through restore_command.
std::string copyOf(const Workspace& ws, PgCluster& primary, const std::string& name) {
  std::string copy = ws.path(name);
  ProcessOptions asUser{.user = testUser(), .stderrPath = ws.path(name + "-basebackup.log")};
  REQUIRE(run({pgBinDir() + "/pg_basebackup", "-D", copy, "-X", "none", "-c", "fast", "-h",
               "127.0.0.1", "-p", std::to_string(primary.port()), "-U", "postgres"},
              asUser) == 0);
  return copy;
}

std::string fingerprint(PgCluster& pg) {
  return pg.value("select count(*) || ':' || sum(i) from t");
}

// Starts `copy` recovering through `restoreCommand` (default: the workspace's) with `settings`.
void startRecovery(const Workspace& ws, PgCluster& restored, const std::string& copy,
                   const std::string& settings, const std::string& signal = "recovery.signal",
                   const std::string& restoreCommand = "") {
  restored.configure("restore_command = '" +
                     (restoreCommand.empty() ? ws.restoreCommand() : restoreCommand) +
                     "'\narchive_mode = off\n" + settings);
  writeFile(copy + "/" + signal, "");
  giveToTestUser(copy);
  restored.start();
}

// Whether `pg` left recovery (was promoted) within `limit`.
bool promotedWithin(PgCluster& pg, std::chrono::seconds limit) {
  return waitUntil([&] { return pg.value("select pg_is_in_recovery()") == "f"; }, limit);
}

// Recovers `copy` through the workspace's restore_command with `settings`, archiving on as its
// primary had it (the new timeline goes to the same stanza), until it is promoted (REQUIRE).
void promoteBranch(const Workspace& ws, PgCluster& branch, const std::string& copy,
                   const std::string& settings) {
  branch.configure("restore_command = '" + ws.restoreCommand() + "'\n" + settings);
  writeFile(copy + "/recovery.signal", "");
  giveToTestUser(copy);
  branch.start();
  REQUIRE(promotedWithin(branch, 180s));
}

const std::string kSpool = "/pg_wal/tidemark/main/get";

// What the prefetcher logged (for failure messages).
std::string prefetchLog(const std::string& dataDirectory) {
  std::string path = dataDirectory + "/pg_wal/tidemark/main/prefetch.log";
  if (!fs::exists(path)) return "(no prefetch.log)";
  auto bytes = readFile(path);
  return "prefetch.log:\n" + std::string(bytes.begin(), bytes.end());
}

}  // namespace

TEST_CASE_TEMPLATE(
    "a recovery of 52 segments through prefetch holds the source's data, and the spool is "
    "removed after promotion",
    Repo, PosixRepo, S3Repo) {
  Workspace ws(Repo::value);
  PgCluster primary(ws.path("primary"), "primary");
  ws.startArchivingPrimary(primary);
  std::string copy = copyOf(ws, primary, "copy");
  waitArchived(primary, writeSegments(primary, 52));
  const std::string expected = fingerprint(primary);
  primary.stop();

  PgCluster restored(copy, "restored");
  // The dynamic loader reports what each call loads.
  const std::string loads = ws.makeDir("ld-debug");
  startRecovery(ws, restored, copy, "", "recovery.signal",
                withLoaderReports(ws.restoreCommand(), loads));
  bool promoted = promotedWithin(restored, 300s);
  std::string log = restored.logTail(100000);
  INFO(log);
  INFO(prefetchLog(copy));
  REQUIRE(promoted);
  CHECK(fingerprint(restored) == expected);
  // Most segments were handed over from the spool.
  CHECK(count(log, "from the prefetch spool") >= 30);
  // Those calls need no cryptography and no decompressor, and do not pay for loading them
  // (docs/decisions.md, "Few shared libraries at start").
  for (const char* library : {"libcrypto.so", "liblz4.so", "libzstd.so"}) {
    CAPTURE(library);
    auto calls =
        callsThatLoaded(log, loads, "tidemark-archive-get", "from the prefetch spool", library);
    INFO(calls.loaded);
    CHECK(calls.loaded.empty());
    CHECK(calls.checked >= 30);
  }
  // Out of recovery, the prefetcher removes its spool and stops.
  CHECK(waitUntil([&] { return !fs::exists(copy + kSpool); }, 30s));
}

TEST_CASE("a damaged segment ahead does not stop a recovery short of it, one that needs it stops") {
  Workspace ws(Backend::Posix);
  PgCluster primary(ws.path("primary"), "primary");
  ws.startArchivingPrimary(primary);
  std::string first = copyOf(ws, primary, "first"), second = copyOf(ws, primary, "second");
  writeSegments(primary, 6);
  const std::string target = primary.value("select pg_current_wal_lsn()");
  const std::string expected = fingerprint(primary);
  // The segment the target lies in, then more.
  const std::string targetSegment = primary.value("select pg_walfile_name('" + target + "')");
  std::string last = writeSegments(primary, 8);
  waitArchived(primary, last);
  primary.stop();
  // Damage a segment well after the target, within the prefetcher's reach.
  auto name = pg::parseWalName(targetSegment);
  REQUIRE(name);
  const std::string damaged =
      pg::segmentFileName(name->timeline, pg::segmentNumber(*name, 16u << 20) + 4, 16u << 20);
  flipByte(ws, Workspace::walObject(damaged),
           ws.readObject(Workspace::walObject(damaged)).size() / 2);

  PgCluster toTarget(first, "to-target");
  startRecovery(ws, toTarget, first,
                "recovery_target_lsn = '" + target + "'\nrecovery_target_action = 'promote'\n");
  bool promoted = promotedWithin(toTarget, 180s);
  INFO(toTarget.logTail(200));
  REQUIRE(promoted);
  CHECK(fingerprint(toTarget) == expected);
  toTarget.stop();

  // Without a target, recovery needs the damaged segment: archive-get fails with 255 and
  // PostgreSQL stops instead of promoting at the damage.
  PgCluster toEnd(second, "to-end");
  startRecovery(ws, toEnd, second, "");
  bool stopped = waitUntil([&] { return !toEnd.running(); }, 180s);
  std::string log = toEnd.logTail(400);
  INFO(log);
  CHECK(stopped);
  CHECK(log.find(damaged) != std::string::npos);
  CHECK(log.find("database system is ready to accept connections") == std::string::npos);
}

TEST_CASE("prefetch follows a timeline switch as PostgreSQL does") {
  Workspace ws(Backend::Posix);
  PgCluster primary(ws.path("primary"), "primary");
  ws.startArchivingPrimary(primary);
  std::string base = copyOf(ws, primary, "base"), again = copyOf(ws, primary, "again");
  waitArchived(primary, writeSegments(primary, 4));
  primary.stop();

  // A first recovery promotes to timeline 2 and archives into the same stanza.
  PgCluster branch(base, "branch");
  promoteBranch(ws, branch, base, "");
  CHECK(branch.value("select substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)") == "00000002");
  waitArchived(branch, writeSegments(branch, 12));
  const std::string expected = fingerprint(branch);
  branch.stop();

  // A second recovery from the same base follows 1 -> 2 ('latest') to the end.
  PgCluster follower(again, "follower");
  startRecovery(ws, follower, again, "");
  bool promoted = promotedWithin(follower, 180s);
  std::string log = follower.logTail(100000);
  INFO(log);
  REQUIRE(promoted);
  CHECK(fingerprint(follower) == expected);
  CHECK(follower.value("select substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)") == "00000003");
  // Segments of timeline 2 were prefetched after the switch.
  CHECK(count(log, "restored 00000002") >= 6);
  CHECK(count(log, "from the prefetch spool") >= 6);
}

TEST_CASE("prefetch stays on the timeline that recovery_target_timeline names past a fork") {
  Workspace ws(Backend::Posix);
  PgCluster primary(ws.path("primary"), "primary");
  ws.startArchivingPrimary(primary);
  std::string base = copyOf(ws, primary, "base"), again = copyOf(ws, primary, "again");
  writeSegments(primary, 2);
  primary.exec("select pg_create_restore_point('fork')");
  // Timeline 1 goes on well past the point where timeline 2 will leave it.
  waitArchived(primary, writeSegments(primary, 12));
  const std::string expected = fingerprint(primary);
  primary.stop();

  // A recovery to the restore point promotes to timeline 2, which becomes the newest.
  PgCluster branch(base, "branch");
  promoteBranch(ws, branch, base,
                "recovery_target_name = 'fork'\nrecovery_target_action = 'promote'\n");
  waitArchived(branch, writeSegments(branch, 2));
  branch.stop();

  // A recovery along timeline 1 to its end: PostgreSQL asks for timeline 1's files past the fork,
  // and the prefetcher fetches those, not timeline 2's.
  PgCluster follower(again, "follower");
  startRecovery(ws, follower, again, "recovery_target_timeline = '1'\n");
  bool promoted = promotedWithin(follower, 180s);
  std::string log = follower.logTail(100000);
  INFO(log);
  INFO(prefetchLog(again));
  REQUIRE(promoted);
  CHECK(fingerprint(follower) == expected);
  CHECK(count(log, "from the prefetch spool") >= 8);
}

TEST_CASE(
    "a standby at the end of the archive waits without filling the spool, then replays more") {
  Workspace ws(Backend::Posix, "[archive]\nget-ahead = 8\n");
  PgCluster primary(ws.path("primary"), "primary");
  ws.startArchivingPrimary(primary);
  std::string copy = copyOf(ws, primary, "standby");
  waitArchived(primary, writeSegments(primary, 4));

  PgCluster standby(copy, "standby");
  startRecovery(ws, standby, copy, "hot_standby = on\n", "standby.signal");
  REQUIRE(waitUntil([&] { return fingerprint(standby) == fingerprint(primary); }, 180s));
  // At the end of the archive: the standby asks again every few seconds; the spool stays bounded.
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(1s);
    std::size_t files = 0;
    if (fs::exists(copy + kSpool))
      for ([[maybe_unused]] const auto& entry : fs::directory_iterator(copy + kSpool))
        ++files;
    CHECK(files <= 2 * 8 + 2);
  }
  waitArchived(primary, writeSegments(primary, 6));
  bool caughtUp = waitUntil([&] { return fingerprint(standby) == fingerprint(primary); }, 120s);
  std::string log = standby.logTail(100000);
  INFO(log);
  CHECK(caughtUp);
  CHECK(standby.value("select pg_is_in_recovery()") == "t");
  // Nothing fills the log while it waits: "not in the repository" is not an error.
  CHECK(count(log, "ERROR") == 0);
  standby.stop();
  primary.stop();
}

}  // namespace tidemark::test
