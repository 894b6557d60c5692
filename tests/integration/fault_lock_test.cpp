// The S3 backup lock (common/storage/s3/s3_lock.cpp) against a real S3 server, with
// s3.lock-timeout at its minimum (10 s): a running backup keeps its lock however long it runs; a
// backup stopped with SIGSTOP (a paused VM, a process stuck in the kernel) loses it to the next
// backup after lock-timeout, and once it runs again it must stop and record nothing, whether it
// was stopped while streaming or while waiting for its WAL.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "cluster.h"
#include "common/repo/backup.h"
#include "common/repo/layout.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace tidemark::test {

namespace {

constexpr auto kLockTimeout = 10s;
// Longer than lock-timeout plus its holder's refresh interval (a tenth of it) plus a second for
// the server's whole-second Last-Modified.
constexpr auto kStale = kLockTimeout + 3s;
const std::string kLockToml = "[s3]\nlock-timeout = 10\n";

std::vector<std::string> backupCommand(const Workspace& ws, const PgCluster& pg,
                                       std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{ws.basebackup(), "--config", ws.config(),
                                "--pg-conninfo=" + pg.conninfo()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

// A primary archiving into the workspace through `archiveCommand`, with ~25 MiB of data (a backup
// at 1 MiB/s takes longer than lock-timeout).
void startPrimary(const Workspace& ws, PgCluster& pg, const std::string& archiveCommand) {
  pg.initdb();
  ws.stanzaCreate(pg);
  pg.configure("archive_mode = on\narchive_command = '" + archiveCommand +
               "'\nwal_level = replica\nmax_wal_senders = 10\n");
  pg.start();
  pg.exec("create table t as select g, md5(g::text) as m from generate_series(1, 20000) g");
  pg.waitArchived();
}

// The label a backup's log names ("backup LABEL: from ..."), or "".
std::string labelIn(const std::string& log) {
  auto end = log.find(": from postgres@");
  if (end == std::string::npos) return "";
  auto start = log.rfind("backup ", end);
  if (start == std::string::npos) return "";
  start += 7;
  return log.substr(start, end - start);
}

// Objects stored under one backup's folder.
std::vector<std::string> objectsOf(const Workspace& ws, const std::string& label) {
  std::vector<std::string> found;
  std::string prefix = repo::backupDirectory("main", label) + "/";
  for (const auto& object : ws.objects())
    if (object.rfind(prefix, 0) == 0) found.push_back(object);
  return found;
}

// After the stopped backup A (`aLog`, status `aStatus`) resumed and B (`bLog`) took its lock:
// exactly B's backup is complete, and A left nothing.
void checkOnlyB(const Workspace& ws, const std::string& aLog, int aStatus,
                const std::string& bLog) {
  std::string aText = readText(aLog), bText = readText(bLog);
  std::string aLabel = labelIn(aText), bLabel = labelIn(bText);
  INFO("A: " << aText);
  INFO("B: " << bText);
  REQUIRE_FALSE(aLabel.empty());
  REQUIRE_FALSE(bLabel.empty());
  REQUIRE(aLabel != bLabel);
  CHECK(aStatus == 15);  // Locked
  CHECK(aText.find("lost the backup lock of stanza 'main'") != std::string::npos);
  CHECK(aText.find("complete: ") == std::string::npos);
  CHECK_FALSE(ws.hasObject(repo::backupInfoFile("main", aLabel)));
  CHECK(objectsOf(ws, aLabel).empty());  // what it stored was removed on the way out
  auto backups = repo::listBackups(ws.repository());
  REQUIRE(backups.size() == 1);
  CHECK(backups.front().label == bLabel);
  CHECK(infoLabels(ws) == std::vector<std::string>{bLabel});
  // B released its lock, and A (which no longer held it) did not leave one.
  CHECK_FALSE(ws.hasObject(repo::backupLockFile("main")));
}

// B, once A's lock is stale: takes it over and completes.
std::string runB(const Workspace& ws, const PgCluster& pg, pid_t a) {
  std::string log = ws.path("b.log");
  int status = run(backupCommand(ws, pg), {.stderrPath = log});
  std::string text = readText(log);
  INFO(text);
  CHECK(status == 0);
  CHECK(text.find("took over lock 'main/backup.lock': its holder (tidemark-basebackup pid " +
                  std::to_string(a)) != std::string::npos);
  return log;
}

}  // namespace

TEST_CASE(
    "an S3 backup lock is kept by a running backup past lock-timeout, taken over from a "
    "stopped one, and the stopped backup records nothing when it resumes") {
  Workspace ws(Backend::S3, kLockToml);
  PgCluster pg(ws.path("primary"), "primary");
  startPrimary(ws, pg, ws.archiveCommand());
  const std::string lock = repo::backupLockFile("main");

  // A: slowed down by the server (~25 MiB at 1 MiB/s), so that it outlives lock-timeout.
  std::string aLog = ws.path("a.log");
  Process a(backupCommand(ws, pg, {"--backup-max-rate=1MiB"}), {.stderrPath = aLog});
  REQUIRE(waitUntil([&] { return ws.hasObject(lock); }, 30s));
  auto locked = std::chrono::steady_clock::now();

  // Past lock-timeout, A's lock is fresh (it refreshes it): a second backup fails at once.
  std::this_thread::sleep_until(locked + kStale);
  REQUIRE(a.running());
  {
    std::string log = ws.path("second.log");
    auto started = std::chrono::steady_clock::now();
    int status = run(backupCommand(ws, pg), {.stderrPath = log});
    auto took = std::chrono::steady_clock::now() - started;
    std::string text = readText(log);
    INFO(text);
    CHECK(status == 15);  // Locked
    CHECK(took < 10s);
    CHECK(text.find("another backup of stanza 'main' is running: tidemark-basebackup pid " +
                    std::to_string(a.pid())) != std::string::npos);
    CHECK(text.find("took over") == std::string::npos);
  }
  REQUIRE(a.running());  // still streaming: the stop below lands mid-stream
  CHECK(readText(aLog).find(" streamed in ") == std::string::npos);

  // A stops refreshing; after lock-timeout B takes the lock over and completes.
  a.signal(SIGSTOP);
  std::this_thread::sleep_for(kStale);
  std::string bLog = runB(ws, pg, a.pid());

  // A runs again: it must notice that its lock was taken, stop, and record nothing.
  a.signal(SIGCONT);
  auto aStatus = a.waitFor(120s);
  REQUIRE(aStatus);
  checkOnlyB(ws, aLog, *aStatus, bLog);
}

TEST_CASE(
    "a backup stopped while it waits for its WAL, whose S3 lock was taken over, records "
    "nothing when it resumes") {
  Workspace ws(Backend::S3, kLockToml);
  // While this file exists, archiving fails (PostgreSQL keeps the segments and retries): a backup
  // then waits for its WAL.
  const std::string hold = ws.path("hold-archiving");
  PgCluster pg(ws.path("primary"), "primary");
  startPrimary(ws, pg, "test ! -e " + hold + " && " + ws.archiveCommand());

  writeFile(hold, "");
  std::string aLog = ws.path("a.log");
  Process a(backupCommand(ws, pg), {.stderrPath = aLog});
  bool waiting = waitUntil(
      [&] {
        return !a.running() ||
               readText(aLog).find("waiting for the archive to hold WAL") != std::string::npos;
      },
      120s);
  {
    INFO(readText(aLog));
    REQUIRE(waiting);
    REQUIRE(a.running());
  }
  a.signal(SIGSTOP);

  // Archiving works again; A's lock goes stale; B takes it over, and its WAL and A's arrive.
  fs::remove(hold);
  pg.exec("insert into t values (0, 'wake the archiver')");
  pg.exec("select pg_switch_wal()");
  std::this_thread::sleep_for(kStale);
  std::string bLog = runB(ws, pg, a.pid());
  pg.waitArchived();

  // A runs again and finds every WAL file it waited for: it must still notice that its lock was
  // taken before it writes backup.json.
  a.signal(SIGCONT);
  auto aStatus = a.waitFor(120s);
  REQUIRE(aStatus);
  checkOnlyB(ws, aLog, *aStatus, bLog);
}

}  // namespace tidemark::test
