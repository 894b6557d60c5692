// A full disk: the repository, or the directory a restore writes into, on a small tmpfs that runs
// out of space in the middle of archive-push, tidemark-basebackup and tidemark-recover. Each fails
// with a clear error, leaves nothing that looks usable, and succeeds once there is room.
// Mounting needs root (CAP_SYS_ADMIN): the tests are skipped, and reported as skipped, otherwise.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <pwd.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "cluster.h"
#include "common/files/file.h"
#include "common/repo/backup.h"
#include "common/repo/layout.h"
#include "tmpfs.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace tidemark::test {

namespace {

// Every object stored under a stanza's backups/ folder.
std::vector<std::string> backupObjects(const Workspace& ws) {
  std::vector<std::string> found;
  for (const auto& object : ws.objects())
    if (object.rfind(repo::backupsDirectory("main") + "/", 0) == 0) found.push_back(object);
  return found;
}

struct Outcome {
  int status;
  std::string output;  // stdout and stderr
};

Outcome runLogged(const Workspace& ws, const std::string& name,
                  const std::vector<std::string>& argv,
                  std::optional<std::string> user = std::nullopt) {
  std::string log = ws.path(name + ".log");
  int status = run(argv, {.user = std::move(user), .stdoutPath = log, .stderrPath = log});
  return {status, readText(log)};
}

void configureArchiving(const Workspace& ws, PgCluster& pg) {
  pg.configure("archive_mode = on\narchive_command = '" + ws.archiveCommand() +
               "'\nwal_level = replica\nmax_wal_senders = 5\n");
}

// A server started on a restored data directory, promoted at the end of recovery.
void startPromoted(PgCluster& server, const std::string& dir) {
  giveToTestUser(dir);
  server.start();
  bool promoted =
      waitUntil([&] { return server.value("select pg_is_in_recovery()") == "f"; }, 300s);
  INFO(server.logTail());
  REQUIRE(promoted);
}

// About `rows` KiB of random bytes (no compression shrinks them), and the query of its checksum.
std::string noiseTable(int rows) {
  return "create table noise as select g, (select string_agg(decode(md5(random()::text || g::text "
         "|| i::text), 'hex'), ''::bytea) from generate_series(1, 64) i) as b "
         "from generate_series(1, " +
         std::to_string(rows) + ") g";
}
const char* const kNoiseSum = "select md5(string_agg(b, ''::bytea order by g)) from noise";

}  // namespace

TEST_CASE(
    "archive-push into a full repository fails for PostgreSQL to retry, leaves nothing, "
    "and succeeds once there is room" *
    doctest::skip(!canMount())) {
  Workspace ws(Backend::Posix);
  Tmpfs repo(ws.path("repo"), 48 * kMiB, 0750);
  ws.createStanza();
  std::string source = ws.makeDir("source");
  // Incompressible: no compression brings the object under the space left.
  SegmentSpec spec{.segmentNumber = 1, .seed = 11, .randomFraction = 0.99};
  std::string segment = writeSegment(source, spec);
  giveToTestUser(segment);
  const std::string object = Workspace::walObject(segmentName(spec));
  std::string filler = repo.fillLeaving(8 * kMiB);

  for (const char* compress : {"none", "zstd", "lz4"}) {
    CAPTURE(compress);
    std::uint64_t before = repo.available();
    Outcome push = runLogged(
        ws, std::string("push-full-") + compress,
        {ws.push(), "--config", ws.config(), std::string("--compress-type=") + compress, segment},
        testUser());
    INFO(push.output);
    // Non-zero and within 3..99: PostgreSQL keeps the segment and retries.
    CHECK(push.status >= 3);
    CHECK(push.status <= 99);
    CHECK(push.status == 5);  // Storage
    CHECK(push.output.find("No space left on device") != std::string::npos);
    CHECK_FALSE(ws.hasObject(object));
    CHECK(hiddenNames(repo.path()).empty());
    // Nothing of the failed object holds on to space.
    CHECK(repo.available() + 64 * 1024 >= before);
  }

  fs::remove(filler);
  Outcome push =
      runLogged(ws, "push-room", {ws.push(), "--config", ws.config(), segment}, testUser());
  INFO(push.output);
  REQUIRE(push.status == 0);
  CHECK(ws.hasObject(object));
  CHECK(hiddenNames(repo.path()).empty());
  std::string destination = ws.makeDir("pg_wal") + "/RECOVERYXLOG";
  Outcome get = runLogged(
      ws, "get", {ws.get(), "--config", ws.config(), segmentName(spec), destination}, testUser());
  INFO(get.output);
  REQUIRE(get.status == 0);
  CHECK(readFile(destination) == readFile(segment));
}

TEST_CASE(
    "a base backup into a full repository fails, records nothing, and a rerun with room "
    "restores" *
    doctest::skip(!canMount())) {
  Workspace ws(Backend::Posix);
  Tmpfs repo(ws.path("repo"), 160 * kMiB, 0750);
  PgCluster pg(ws.path("primary"), "primary");
  pg.initdb();
  ws.stanzaCreate(pg);
  configureArchiving(ws, pg);
  pg.start();
  pg.exec(noiseTable(24 * 1024));  // the backup: ~24 MiB of noise beside ~23 MiB of catalog
  const std::string sum = pg.value(kNoiseSum);
  pg.waitArchived();

  // Less room than the backup needs, even before compression is considered.
  std::string filler = repo.fillLeaving(12 * kMiB);
  Outcome full = runLogged(ws, "backup-full",
                           {ws.basebackup(), "--config", ws.config(), "--compress-type=none",
                            "--pg-conninfo=" + pg.conninfo()});
  {
    INFO(full.output);
    CHECK(full.status != 0);
    CHECK(full.status == 5);  // Storage
    CHECK(full.output.find("No space left on device") != std::string::npos);
  }
  std::vector<std::string> damaged;
  CHECK(repo::listBackups(ws.repository(), &damaged).empty());
  CHECK(damaged.empty());
  CHECK(infoLabels(ws).empty());
  CHECK(backupObjects(ws).empty());  // what it stored was removed on the way out
  CHECK(hiddenNames(repo.path()).empty());

  fs::remove(filler);
  Outcome again = runLogged(ws, "backup-room",
                            {ws.basebackup(), "--config", ws.config(), "--compress-type=none",
                             "--pg-conninfo=" + pg.conninfo()});
  INFO(again.output);
  REQUIRE(again.status == 0);
  auto backups = repo::listBackups(ws.repository());
  REQUIRE(backups.size() == 1);
  CHECK(infoLabels(ws) == std::vector<std::string>{backups.front().label});
  CHECK(backups.front().size() > 40 * kMiB);  // it did need more room than was left
  pg.waitArchived();
  pg.stop();

  std::string restored = ws.path("restored");
  Outcome recovered =
      runLogged(ws, "recover",
                {ws.recover(), "--config", ws.config(), "--archiving=preserve",
                 "--pgdata=" + restored, "--target=immediate", "--target-action=promote"});
  INFO(recovered.output);
  REQUIRE(recovered.status == 0);
  PgCluster server(restored, "restored");
  startPromoted(server, restored);
  CHECK(server.value(kNoiseSum) == sum);
}

TEST_CASE(
    "a restore into a data directory without room fails, leaves the directory empty, and "
    "succeeds once there is room" *
    doctest::skip(!canMount())) {
  Workspace ws(Backend::Posix);
  std::string sum;
  {
    PgCluster pg(ws.path("primary"), "primary");
    pg.initdb();
    ws.stanzaCreate(pg);
    configureArchiving(ws, pg);
    pg.start();
    pg.exec(noiseTable(4 * 1024));
    sum = pg.value(kNoiseSum);
    Outcome backup = runLogged(
        ws, "backup", {ws.basebackup(), "--config", ws.config(), "--pg-conninfo=" + pg.conninfo()});
    INFO(backup.output);
    REQUIRE(backup.status == 0);
    pg.waitArchived();
  }
  // The data directory is the root of a filesystem far smaller than the backup (~27 MiB).
  std::string dir = ws.makeDir("restore");
  Tmpfs space(dir, 8 * kMiB, 0700);
  const std::vector<std::string> recover{ws.recover(),
                                         "--config",
                                         ws.config(),
                                         "--archiving=preserve",
                                         "--pgdata=" + dir,
                                         "--target=immediate",
                                         "--target-action=promote"};
  Outcome full = runLogged(ws, "recover-full", recover);
  {
    INFO(full.output);
    CHECK(full.status == 10);  // LocalIo
    CHECK(full.output.find("No space left on device") != std::string::npos);
    CHECK(full.output.find("the restore failed: removing what was written") != std::string::npos);
    CHECK(full.output.find("the data directory is ready") == std::string::npos);
  }
  // docs/recovery.md: a half-restored directory is never left for someone to start. The
  // directory existed (it is a mount point), so it is emptied, not removed.
  CHECK(fs::is_directory(dir));
  CHECK(listDirectory(dir).empty());
  CHECK(space.available() + 64 * 1024 >= 8 * kMiB);

  // Room: the same directory, with no --force needed (it was left empty).
  space.resize(256 * kMiB);
  Outcome roomy = runLogged(ws, "recover-room", recover);
  INFO(roomy.output);
  REQUIRE(roomy.status == 0);
  CHECK(fs::exists(dir + "/recovery.signal"));
  PgCluster server(dir, "restored");
  startPromoted(server, dir);
  CHECK(server.value(kNoiseSum) == sum);
}

}  // namespace tidemark::test
