// tidemark-basebackup, tidemark-recover and tidemark-archive-get killed with SIGKILL at random
// moments of their run (posix repository): no incomplete backup is ever listed, no partial WAL
// file appears at %p, a restored directory that looks ready to start is complete, and a rerun
// always succeeds. The delays come from a fixed seed (printed; FAULT_TEST_SEED overrides it), so a
// failure can be replayed.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "cluster.h"
#include "common/repo/backup.h"
#include "common/repo/layout.h"
#include "common/restore/restore.h"
#include "tidemark_runner.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace tidemark::test {

namespace {

std::uint64_t faultSeed() {
  const char* text = std::getenv("FAULT_TEST_SEED");
  return text && *text ? std::strtoull(text, nullptr, 10) : 20261203;
}

using Micros = std::chrono::microseconds;

Micros since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<Micros>(std::chrono::steady_clock::now() - start);
}

// Starts `argv`, lets it run for a random part of `typical` (a little beyond it, so that some runs
// finish), kills it with SIGKILL and returns its status (128 + 9 when the kill landed).
int killSomewhere(const std::vector<std::string>& argv, const ProcessOptions& options,
                  Micros typical, std::mt19937_64& random) {
  Process process(argv, options);
  std::uniform_int_distribution<long> delay(0, long(typical.count() * 11 / 10));
  std::this_thread::sleep_for(Micros(delay(random)));
  ::kill(process.pid(), SIGKILL);
  return process.wait();
}

// A tmpfs on `dir` (owned by the test user) when this process may mount one, unmounted when
// destroyed: forty restores then cost no fsyncs, whatever else the machine's disk is doing.
class MaybeTmpfs {
 public:
  MaybeTmpfs(std::string dir, std::uint64_t bytes) : dir_(std::move(dir)) {
    if (!canMount()) return;
    struct stat st {};
    REQUIRE(::stat(dir_.c_str(), &st) == 0);
    std::string options = "size=" + std::to_string(bytes) +
                          ",mode=700,uid=" + std::to_string(st.st_uid) +
                          ",gid=" + std::to_string(st.st_gid);
    mounted_ = ::mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) == 0;
  }
  ~MaybeTmpfs() {
    if (mounted_ && ::umount2(dir_.c_str(), 0) != 0) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  MaybeTmpfs(const MaybeTmpfs&) = delete;
  MaybeTmpfs& operator=(const MaybeTmpfs&) = delete;
  bool mounted() const { return mounted_; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

bool tmpfileSupported(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY, 0600);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

// A primary archiving into the workspace, with a table of known content.
void startPrimary(const Workspace& ws, PgCluster& pg) {
  ws.startArchivingPrimary(pg, "max_wal_senders = 10\n");
  pg.exec("create table t as select g, md5(g::text) as m from generate_series(1, 20000) g");
}
const char* const kSum = "select count(*) || ':' || md5(string_agg(m, ',' order by g)) from t";

// Every object backup.json names is there and is what it records.
void checkWhole(const Workspace& ws, const repo::BackupInfo& backup) {
  CAPTURE(backup.label);
  auto repository = ws.repository();
  for (const auto& object : backup.objects) {
    CAPTURE(object.name);
    auto summary =
        repository.verifyObject(repo::backupObject("main", backup.label, object.name), object.size);
    REQUIRE(summary);
    CHECK(summary->plainSize == object.size);
    CHECK(summary->plainSha256 == object.sha256);
  }
}

int verifyBackupDirectory(const Workspace& ws, const std::string& dir, std::string& output) {
  std::string log = ws.path("verifybackup.log");
  fs::remove(log);
  int status = run({pgBinDir() + "/pg_verifybackup", "--no-parse-wal", dir},
                   {.stdoutPath = log, .stderrPath = log});
  output = readText(log);
  return status;
}

}  // namespace

TEST_CASE(
    "tidemark-basebackup killed at random moments never lists an incomplete backup, and "
    "the next one succeeds") {
  const auto seed = faultSeed();
  MESSAGE("random seed ", seed, " (FAULT_TEST_SEED=", seed, " replays it)");
  std::mt19937_64 random(seed);
  Workspace ws(Backend::Posix);
  PgCluster pg(ws.path("primary"), "primary");
  startPrimary(ws, pg);
  pg.waitArchived();
  const std::vector<std::string> argv{ws.basebackup(), "--config", ws.config(),
                                      "--pg-conninfo=" + pg.conninfo()};
  const std::string repoDir = ws.path("repo");
  const bool checkTemporary = tmpfileSupported(repoDir);

  // How long a whole run takes here, and its part after the label is chosen (the log line "backup
  // LABEL: from ..."): the median of three runs in a row (the later ones wait for a free label, as
  // the runs of the rounds do).
  constexpr std::string_view kStarted = ": from postgres@";
  std::vector<Micros> totals, streams;
  for (int i = 0; i < 3; ++i) {
    std::string log = ws.path("clean-" + std::to_string(i) + ".log");
    auto started = std::chrono::steady_clock::now();
    std::optional<std::chrono::steady_clock::time_point> labelled;
    Process backup(argv, {.stderrPath = log});
    while (backup.running()) {
      if (!labelled && readText(log).find(kStarted) != std::string::npos)
        labelled = std::chrono::steady_clock::now();
      std::this_thread::sleep_for(500us);
    }
    INFO(readText(log));
    REQUIRE(backup.wait() == 0);
    REQUIRE(labelled);
    totals.push_back(since(started));
    streams.push_back(since(*labelled));
  }
  std::sort(totals.begin(), totals.end());
  std::sort(streams.begin(), streams.end());
  const Micros typical = totals[1], streaming = streams[1];
  std::set<std::string> checked;  // backups already found whole
  for (const auto& backup : repo::listBackups(ws.repository()))
    checked.insert(backup.label);

  std::size_t listed = checked.size();
  constexpr int kRounds = 30;
  int killedMidway = 0;
  std::map<std::string, int> phases;  // where the kills landed, from each run's log
  for (int round = 0; round < kRounds; ++round) {
    CAPTURE(round);
    std::string log = ws.path("round-" + std::to_string(round) + ".log");
    int status = 0;
    if (round % 2 == 0) {
      // Anywhere in the run.
      status = killSomewhere(argv, {.stderrPath = log}, typical, random);
    } else {
      // Anywhere after the label is chosen: streaming, waiting for WAL, writing backup.json.
      Process backup(argv, {.stderrPath = log});
      while (backup.running() && readText(log).find(kStarted) == std::string::npos)
        std::this_thread::sleep_for(200us);
      std::uniform_int_distribution<long> delay(0, long(streaming.count() * 11 / 10));
      std::this_thread::sleep_for(Micros(delay(random)));
      ::kill(backup.pid(), SIGKILL);
      status = backup.wait();
    }
    std::string text = readText(log);
    INFO(text);
    if (status == 128 + SIGKILL)
      ++killedMidway;
    else
      CHECK(status == 0);  // it finished before the kill
    ++phases[text.find(" complete: ") != std::string::npos     ? "finished"
             : text.find(" streamed in ") != std::string::npos ? "waiting for WAL"
             : text.find(kStarted) != std::string::npos        ? "streaming"
                                                               : "starting"];
    // A backup is listed only once backup.json is stored, and backup.json only once everything
    // it names is: whatever the kill interrupted, what is listed is whole.
    std::vector<std::string> damaged;
    auto backups = repo::listBackups(ws.repository(), &damaged);
    CHECK(damaged.empty());
    for (const auto& backup : backups)
      if (checked.insert(backup.label).second) checkWhole(ws, backup);
    // A backup that finished is listed; a killed one at most once (if the kill came after its
    // backup.json).
    if (status == 0)
      CHECK(backups.size() == listed + 1);
    else
      CHECK(backups.size() <= listed + 1);
    listed = backups.size();
    if (checkTemporary) CHECK(hiddenNames(repoDir).empty());
  }

  // The kernel released the killed backups' locks: the next backup runs, and is listed.
  std::string log = ws.path("final.log");
  int status = run(argv, {.stderrPath = log});
  INFO(readText(log));
  REQUIRE(status == 0);
  auto backups = repo::listBackups(ws.repository());
  REQUIRE(backups.size() == checked.size() + 1);
  std::vector<std::string> labels;
  for (const auto& backup : backups)
    labels.push_back(backup.label);
  CHECK(infoLabels(ws) == labels);
  const repo::BackupInfo& newest = backups.back();
  checkWhole(ws, newest);
  std::string restored = ws.path("restored");
  restore::restoreBackup(ws.repository(), newest, restored, {.terminal = 0});
  std::string verifyOutput;
  int verified = verifyBackupDirectory(ws, restored, verifyOutput);
  INFO(verifyOutput);
  CHECK(verified == 0);

  MESSAGE(killedMidway, " of ", kRounds, " backups were killed before they finished (typical run ",
          typical.count() / 1000, " ms, ", streaming.count() / 1000,
          " ms after the label); the kills landed: starting ", phases["starting"], ", streaming ",
          phases["streaming"], ", waiting for WAL ", phases["waiting for WAL"], ", finished ",
          phases["finished"], "; ", backups.size(), " complete backups in the end");
  CHECK(killedMidway >= kRounds / 3);
}

TEST_CASE(
    "tidemark-recover killed at random moments never leaves an incomplete directory that "
    "looks ready, and a rerun with --force restores a cluster that starts") {
  const auto seed = faultSeed();
  MESSAGE("random seed ", seed, " (FAULT_TEST_SEED=", seed, " replays it)");
  std::mt19937_64 random(seed + 1);
  Workspace ws(Backend::Posix);
  std::string sum;
  {
    PgCluster pg(ws.path("primary"), "primary");
    startPrimary(ws, pg);
    sum = pg.value(kSum);
    takeBackup(ws, pg);
    pg.waitArchived();
  }
  // The random rounds restore into a tmpfs when one can be mounted (fast, whatever the disk is
  // doing); the rounds killed while --force empties a previous restore use the disk, whose order
  // of directory entries (ext4: by hash; xfs, btrfs: by creation) is what decides what a kill
  // there leaves (tmpfs lists the newest entry, recovery.signal, first).
  const std::string fast = ws.makeDir("restore-fast"), disk = ws.path("restore-disk");
  fs::permissions(fast, fs::perms::owner_all);  // PostgreSQL's mode: recover keeps an existing one
  MaybeTmpfs memory(fast, 256u << 20);
  // --force: a rerun replaces whatever the kill left (docs/recovery.md).
  auto argvFor = [&](const std::string& dir) {
    return std::vector<std::string>{
        ws.recover(),      "--config", ws.config(),          "--archiving=preserve",
        "--pgdata=" + dir, "--force",  "--target=immediate", "--target-action=promote"};
  };
  int runs = 0;
  auto runToEnd = [&](const std::string& dir) {
    std::string log = ws.path("complete-" + std::to_string(++runs) + ".log");
    int status = run(argvFor(dir), {.stdoutPath = log, .stderrPath = log});
    INFO(readText(log));
    REQUIRE(status == 0);
    REQUIRE(fs::exists(dir + "/recovery.signal"));
    std::string verifyOutput;
    int verified = verifyBackupDirectory(ws, dir, verifyOutput);
    INFO(verifyOutput);
    CHECK(verified == 0);
  };

  std::vector<Micros> times;
  for (int i = 0; i < 3; ++i) {
    auto started = std::chrono::steady_clock::now();
    runToEnd(fast);
    times.push_back(since(started));
  }
  std::sort(times.begin(), times.end());
  const Micros typical = times[1];  // the median

  // What PostgreSQL would start as a recovery must be a whole restore. (A directory without the
  // signal file is not started as one; its backup_label without WAL stops a plain start.)
  int looksReady = 0, notWhole = 0;
  auto checkLeftovers = [&](const std::string& dir) {
    if (!fs::exists(dir + "/recovery.signal") && !fs::exists(dir + "/standby.signal")) return;
    ++looksReady;
    std::string verifyOutput;
    int verified = verifyBackupDirectory(ws, dir, verifyOutput);
    if (verified == 0) return;
    ++notWhole;
    std::size_t missing = 0;
    for (std::size_t at = 0; (at = verifyOutput.find("but not on disk", at)) != std::string::npos;
         ++at)
      ++missing;
    INFO(verifyOutput.substr(0, 1500));
    std::string message =
        "the kill left " +
        std::string(fs::exists(dir + "/recovery.signal") ? "recovery.signal" : "standby.signal") +
        " (and restore_command in postgresql.auto.conf) in a directory that is not a whole "
        "restore: " +
        std::to_string(missing) + " files of the backup are missing";
    FAIL_CHECK(message);
  };

  constexpr int kRounds = 30;
  int killedMidway = 0;
  for (int round = 0; round < kRounds; ++round) {
    CAPTURE(round);
    std::string log = ws.path("round-" + std::to_string(round) + ".log");
    int status =
        killSomewhere(argvFor(fast), {.stdoutPath = log, .stderrPath = log}, typical, random);
    INFO(readText(log));
    if (status == 128 + SIGKILL)
      ++killedMidway;
    else
      CHECK(status == 0);
    checkLeftovers(fast);
    runToEnd(fast);
  }

  // Directed: killed while --force empties the previous restore, a window random delays rarely
  // hit: at steps after its warning is logged.
  runToEnd(disk);
  const Micros afterWarning[] = {0us, 500us, 1ms, 2ms, 3ms, 5ms, 8ms, 12ms, 20ms, 30ms};
  int killedClearing = 0;
  for (Micros delay : afterWarning) {
    CAPTURE(delay.count());
    std::string log = ws.path("clearing-" + std::to_string(delay.count()) + ".log");
    {
      Process process(argvFor(disk), {.stdoutPath = log, .stderrPath = log});
      while (process.running() &&
             readText(log).find("--force: removing everything") == std::string::npos)
        std::this_thread::sleep_for(100us);
      std::this_thread::sleep_for(delay);
      ::kill(process.pid(), SIGKILL);
      if (process.wait() == 128 + SIGKILL) ++killedClearing;
    }
    INFO(readText(log));
    checkLeftovers(disk);
    runToEnd(disk);
  }

  // The last rerun after a kill starts, and has the data.
  PgCluster server(disk, "restored");
  giveToTestUser(disk);
  server.start();
  bool promoted =
      waitUntil([&] { return server.value("select pg_is_in_recovery()") == "f"; }, 300s);
  INFO(server.logTail());
  REQUIRE(promoted);
  CHECK(server.value(kSum) == sum);

  MESSAGE(killedMidway, " of ", kRounds, " restores were killed at random before they finished ",
          "(typical run ", typical.count() / 1000, " ms, on ",
          std::string(memory.mounted() ? "a tmpfs" : "the disk"), "), ", killedClearing, " of ",
          std::size(afterWarning), " while --force emptied the directory; ", looksReady,
          " kills left a signal file, ", notWhole,
          " of them in a directory that is not a whole restore");
  CHECK(killedMidway >= kRounds / 3);
}

TEST_CASE(
    "tidemark-archive-get killed at random moments never leaves a partial file at %p, and "
    "a rerun restores identical bytes") {
  const auto seed = faultSeed();
  MESSAGE("random seed ", seed, " (FAULT_TEST_SEED=", seed, " replays it)");
  std::mt19937_64 random(seed + 2);
  Workspace ws(Backend::Posix);
  ws.createStanza();
  std::string source = ws.makeDir("source");
  const std::string pgWal = ws.makeDir("pg_wal");  // PostgreSQL's %p: pg_wal/RECOVERYXLOG
  const std::string destination = pgWal + "/RECOVERYXLOG";
  const bool checkTemporary = tmpfileSupported(pgWal);

  struct Stored {
    std::string name;
    io::Buffer bytes;
    Micros typical{0};
  };
  std::vector<Stored> stored;
  std::uint64_t segmentNumber = 1;
  for (const char* compress : {"zstd", "lz4", "none"}) {
    SegmentSpec spec{.segmentNumber = segmentNumber, .seed = 100 + segmentNumber};
    ++segmentNumber;
    std::string file = writeSegment(source, spec);
    REQUIRE(run({ws.push(), "--config", ws.config(), std::string("--compress-type=") + compress,
                 file}) == 0);
    stored.push_back({segmentName(spec), readFile(file)});
  }
  auto getArgv = [&](const Stored& segment) {
    return std::vector<std::string>{ws.get(), "--config", ws.config(), segment.name, destination};
  };
  const ProcessOptions options{.user = testUser(), .stderrPath = ws.path("get.log")};
  // How long an uninterrupted fetch of each takes here (the median of three).
  for (auto& segment : stored) {
    std::vector<Micros> times;
    for (int i = 0; i < 3; ++i) {
      fs::remove(destination);
      auto started = std::chrono::steady_clock::now();
      REQUIRE(run(getArgv(segment), options) == 0);
      times.push_back(since(started));
      REQUIRE(readFile(destination) == segment.bytes);
    }
    std::sort(times.begin(), times.end());
    segment.typical = times[1];
  }

  constexpr int kRounds = 60;
  int killedMidway = 0, absent = 0;
  for (int round = 0; round < kRounds; ++round) {
    CAPTURE(round);
    const Stored& segment = stored[std::size_t(round) % stored.size()];
    CAPTURE(segment.name);
    fs::remove(destination);  // PostgreSQL removes it before each call
    int status = killSomewhere(getArgv(segment), options, segment.typical, random);
    if (status == 128 + SIGKILL)
      ++killedMidway;
    else
      CHECK(status == 0);
    // Nothing, or the whole verified file (a kill after the publish): never a part of it.
    if (fs::exists(destination))
      CHECK(readFile(destination) == segment.bytes);
    else
      ++absent;
    if (checkTemporary) {
      std::vector<std::string> names = listDirectory(pgWal);
      std::erase(names, "RECOVERYXLOG");
      INFO("left in pg_wal: " << (names.empty() ? "" : names.front()));
      CHECK(names.empty());
    }
    fs::remove(destination);
    REQUIRE(run(getArgv(segment), options) == 0);
    CHECK(readFile(destination) == segment.bytes);
  }
  MESSAGE(killedMidway, " of ", kRounds,
          " fetches were killed before they finished (typical: zstd ",
          stored[0].typical.count() / 1000, " ms, lz4 ", stored[1].typical.count() / 1000,
          " ms, none ", stored[2].typical.count() / 1000, " ms); ", absent, " left nothing at %p");
  CHECK(killedMidway >= kRounds / 3);
}

}  // namespace tidemark::test
