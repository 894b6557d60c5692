// A real PostgreSQL 15 archives through tidemark-archive-push and recovers through
// tidemark-archive-get.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "cluster.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace tidemark::test {

namespace {

// Waits until pg_stat_archiver has archived `name` (or later), with no failures.
void waitArchived(PgCluster& pg, const std::string& name) {
  bool archived = waitUntil(
      [&] {
        return pg.value("select coalesce(last_archived_wal, '') >= '" + name +
                        "' from pg_stat_archiver") == "t";
      },
      120s);
  INFO(pg.logTail());
  REQUIRE(archived);
  CHECK(pg.value("select failed_count from pg_stat_archiver") == "0");
}

std::string switchWal(PgCluster& pg) {
  return pg.value("select pg_walfile_name(pg_switch_wal())");
}

bool contains(const io::Buffer& bytes, const std::string& text) {
  return std::search(bytes.begin(), bytes.end(), text.begin(), text.end()) != bytes.end();
}

}  // namespace

TEST_CASE_TEMPLATE("PostgreSQL archives through tidemark and every file comes back byte-identical",
                   Repo, PosixRepo, S3Repo, EncryptedPosixRepo, EncryptedS3Repo) {
  for (std::string compress : {"zstd", "lz4", "none"}) {
    CAPTURE(compress);
    Workspace ws(Repo::value, "[compress]\ntype = \"" + compress + "\"\n");
    std::string reference = ws.makeDir("reference");
    PgCluster pg(ws.path("pg"));
    pg.initdb();
    ws.stanzaCreate(pg);
    // A second command keeps a copy of exactly what PostgreSQL handed over.
    pg.configure(
        "archive_mode = on\n"
        "archive_command = '" +
        ws.archiveCommand() + " && cp %p " + reference +
        "/%f'\n"
        "wal_level = replica\n");
    pg.start();
    // A row whose text PostgreSQL writes into its WAL as it is.
    const std::string marker = "tidemark-marker-" + std::to_string(::getpid()) + "-c0ffee";
    pg.exec("create table secret (t text)");
    pg.exec("insert into secret values ('" + marker + "')");

    run({pgBinDir() + "/pgbench", "-i", "-s", "2", "-h", "127.0.0.1", "-p",
         std::to_string(pg.port()), "-U", "postgres", "postgres"});
    std::string last;
    for (int i = 0; i < 3; ++i) {
      REQUIRE(run({pgBinDir() + "/pgbench", "-t", "300", "-h", "127.0.0.1", "-p",
                   std::to_string(pg.port()), "-U", "postgres", "postgres"}) == 0);
      last = switchWal(pg);
    }
    waitArchived(pg, last);
    pg.stop();

    std::size_t files = 0, handedOverWithMarker = 0;
    for (const auto& entry : fs::directory_iterator(reference)) {
      std::string name = entry.path().filename().string();
      std::string restored = ws.path("restored-" + name);
      REQUIRE(run({ws.get(), "--config", ws.config(), name, restored}) == 0);
      CHECK_MESSAGE(readFile(restored) == readFile(entry.path().string()), name);
      handedOverWithMarker += contains(readFile(entry.path().string()), marker);
      ++files;
    }
    CHECK(files >= 4);
    CHECK(handedOverWithMarker >= 1);
    // Encrypted, no stored object shows the row; unencrypted and uncompressed, the WAL does (so the
    // search would find it).
    std::size_t storedWithMarker = 0, objects = 0;
    for (const auto& object : ws.objects()) {
      storedWithMarker += contains(ws.readObject(object), marker);
      ++objects;
    }
    CHECK(objects >= files + 1);
    if (ws.encrypted())
      CHECK(storedWithMarker == 0);
    else if (compress == "none")
      CHECK(storedWithMarker >= 1);
  }
}

TEST_CASE_TEMPLATE(
    "a copy of the cluster recovers through tidemark-archive-get and holds rows written after the "
    "copy",
    Repo, PosixRepo, S3Repo, EncryptedPosixRepo, EncryptedS3Repo) {
  Workspace ws(Repo::value);
  PgCluster primary(ws.path("primary"), "primary");
  primary.initdb();
  ws.stanzaCreate(primary);
  primary.configure(
      "archive_mode = on\n"
      "archive_command = '" +
      ws.archiveCommand() +
      "'\n"
      "wal_level = replica\n");
  primary.start();
  primary.exec("create table before_copy as select generate_series(1, 1000) as i");

  // Until tidemark's own base backup exists: pg_basebackup without WAL, so that every WAL file
  // recovery needs comes through restore_command.
  std::string copy = ws.path("copy");
  ProcessOptions asUser{.user = testUser(), .stderrPath = ws.path("basebackup.log")};
  REQUIRE(run({pgBinDir() + "/pg_basebackup", "-D", copy, "-X", "none", "-c", "fast", "-h",
               "127.0.0.1", "-p", std::to_string(primary.port()), "-U", "postgres"},
              asUser) == 0);

  primary.exec("create table after_copy as select generate_series(1, 5000) as i");
  primary.exec("insert into after_copy select generate_series(5001, 7000)");
  std::string last = switchWal(primary);
  waitArchived(primary, last);
  primary.stop();

  PgCluster restored(copy, "restored");
  restored.configure("restore_command = '" + ws.restoreCommand() +
                     "'\n"
                     "archive_mode = off\n");
  writeFile(copy + "/recovery.signal", "");
  giveToTestUser(copy);
  restored.start();
  // No target: replay every archived file, then promote at the end of the archive.
  bool promoted =
      waitUntil([&] { return restored.value("select pg_is_in_recovery()") == "f"; }, 120s);
  INFO(restored.logTail());
  REQUIRE(promoted);
  CHECK(restored.value("select count(*) from before_copy") == "1000");
  CHECK(restored.value("select count(*) from after_copy") == "7000");
  CHECK(restored.value("select substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)") == "00000002");
}

}  // namespace tidemark::test
