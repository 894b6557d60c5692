// tidemark-recover end to end on a real PostgreSQL 15: "restore to 10:42:07, just before the DROP
// TABLE", timelines, every target kind, and the refusals that protect an operator.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "cluster.h"
#include "common/files/tar.h"
#include "common/recovery/target.h"
#include "common/repo/backup.h"
#include "common/repo/layout.h"
#include "common/repo/marks.h"
#include "common/repo/object.h"
#include "common/repo/stanza.h"
#include "common/spool/spool.h"
#include "tidemark_runner.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace tidemark::test {

namespace {

// A ustar archive of one regular file.
io::Buffer tarOfOneFile(const std::string& name, const std::string& content) {
  io::Buffer tar(512 + (content.size() + 511) / 512 * 512 + 1024, 0);
  std::copy(name.begin(), name.end(), tar.begin());
  std::snprintf(reinterpret_cast<char*>(&tar[100]), 8, "%07o", 0600);
  std::snprintf(reinterpret_cast<char*>(&tar[124]), 12, "%011o", unsigned(content.size()));
  std::snprintf(reinterpret_cast<char*>(&tar[136]), 12, "%011o", 0);
  tar[156] = '0';
  std::memcpy(&tar[257], "ustar", 6);
  std::memcpy(&tar[263], "00", 2);
  std::memset(&tar[148], ' ', 8);
  unsigned sum = 0;
  for (int i = 0; i < 512; ++i)
    sum += tar[std::size_t(i)];
  std::snprintf(reinterpret_cast<char*>(&tar[148]), 8, "%06o", sum);
  std::memcpy(&tar[512], content.data(), content.size());
  return tar;
}

// Stores `bytes` as object `name` of backup `label`, and returns its backup.json entry.
repo::BackupObject storeBackupObject(storage::Storage& storage, const std::string& label,
                                     const std::string& name, const io::Buffer& bytes) {
  std::string path = repo::backupObject("main", label, name);
  repo::ObjectWriter writer(storage.newWrite(path), path, {});
  writer.write(bytes);
  REQUIRE(writer.commit());
  return repo::BackupObject{.name = name,
                            .size = writer.summary().plainSize,
                            .storedSize = writer.summary().storedSize,
                            .sha256 = writer.summary().plainSha256};
}

// Writes (or replaces, as an attacker would) the backup.json of `info`.
void writeBackupInfo(storage::Storage& storage, const repo::BackupInfo& info) {
  auto write = storage.newWrite(repo::backupInfoFile("main", info.label), {.noReplace = false});
  std::string json = info.toJson();
  write->write(io::asBytes(json));
  REQUIRE(write->commit());
}

// A server started on a restored data directory (as the test user), stopped when destroyed.
struct Recovered {
  PgCluster pg;
  Recovered(const std::string& dir, const std::string& name) : pg(dir, name) {
    giveToTestUser(dir);
    pg.start();
  }
  // Waits until recovery ended (promoted) or paused at the target.
  void waitPromoted() {
    bool done = waitUntil([&] { return pg.value("select pg_is_in_recovery()") == "f"; }, 300s);
    INFO(pg.logTail());
    REQUIRE(done);
  }
  void waitPaused() {
    bool done = waitUntil(
        [&] { return pg.value("select pg_get_wal_replay_pause_state()") == "paused"; }, 300s);
    INFO(pg.logTail());
    REQUIRE(done);
  }
  std::string timeline() {
    return pg.value("select substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)");
  }
};

// Every WAL file written so far is archived, and no attempt failed.
void waitArchived(PgCluster& pg) {
  pg.waitArchived();
  REQUIRE(pg.value("select failed_count from pg_stat_archiver") == "0");
}

}  // namespace

TEST_CASE_TEMPLATE("recovery to a moment just before a DROP TABLE, then along the new timelines",
                   Repo, PosixRepo, S3Repo, EncryptedPosixRepo, EncryptedS3Repo) {
  Workspace ws(Repo::value);
  std::vector<double> committed;  // server time after each batch
  {
    PgCluster primary(ws.path("primary"), "primary");
    ws.startArchivingPrimary(primary);
    primary.exec(
        "create table batches (n int primary key, at timestamptz default clock_timestamp())");
    primary.exec("create table precious as select g as id from generate_series(1, 1000) g");
    takeBackup(ws, primary);
    for (int n = 1; n <= 3; ++n) {
      primary.exec("insert into batches (n) values (" + std::to_string(n) + ")");
      committed.push_back(serverNow(primary));
      std::this_thread::sleep_for(1s);
    }
    primary.exec("drop table precious");  // the mistake
    std::this_thread::sleep_for(1s);
    for (int n = 4; n <= 6; ++n) {
      primary.exec("insert into batches (n) values (" + std::to_string(n) + ")");
      committed.push_back(serverNow(primary));
      std::this_thread::sleep_for(1s);
    }
    waitArchived(primary);
    primary.stop();
  }
  fs::remove_all(ws.path("primary"));  // the server is lost

  // "Restore to just before the DROP TABLE": between batch 3 and the drop.
  std::string first = ws.path("first");
  Outcome o =
      recoverWith(ws, {"--pgdata=" + first, "--target-time=" + isoTarget(committed[2] + 0.5),
                       "--target-action=promote"});
  INFO(o.output());
  REQUIRE(o.status == 0);
  CHECK(o.output().find("the newest complete backup that ends before the target") !=
        std::string::npos);
  {
    Recovered server(first, "first");
    server.waitPromoted();
    CHECK(server.pg.value("select string_agg(n::text, ',' order by n) from batches") == "1,2,3");
    CHECK(server.pg.value("select count(*) from precious") == "1000");
    CHECK(server.timeline() == "00000002");

    // The recovered server archives its timeline into the same stanza; write on it.
    server.pg.exec("insert into batches (n) values (7)");
    committed.push_back(serverNow(server.pg));
    std::this_thread::sleep_for(1s);
    server.pg.exec("insert into batches (n) values (8)");
    committed.push_back(serverNow(server.pg));
    waitArchived(server.pg);
    CHECK(ws.hasObject("main/wal/00000002.history"));
    server.pg.stop();
  }

  // A point on timeline 2: from the timeline-1 backup, through the switch. Timeline 1 went on
  // after the fork (the drop, batches 4 to 6): which branch is a choice, never a guess.
  std::string second = ws.path("second");
  o = recoverWith(ws, {"--pgdata=" + second, "--target-time=" + isoTarget(committed[6] + 0.5),
                       "--target-action=promote"});
  CHECK(o.status == 9);
  CHECK(o.output().find("has branched after it") != std::string::npos);
  CHECK_FALSE(fs::exists(second));
  o = recoverWith(ws, {"--pgdata=" + second, "--target-time=" + isoTarget(committed[6] + 0.5),
                       "--target-action=promote", "--target-timeline=2"});
  INFO(o.output());
  REQUIRE(o.status == 0);
  CHECK(o.output().find("1 (until ") != std::string::npos);  // the timeline path 1 -> 2
  {
    Recovered server(second, "second");
    server.waitPromoted();
    CHECK(server.pg.value("select string_agg(n::text, ',' order by n) from batches") == "1,2,3,7");
    CHECK(server.timeline() == "00000003");
    server.pg.exec("insert into batches (n) values (9)");
    waitArchived(server.pg);
    server.pg.stop();
  }

  // No target: the newest archived WAL, on the timeline named (1, 2 and 3 all went on after
  // their forks).
  std::string third = ws.path("third");
  o = recoverWith(ws, {"--pgdata=" + third, "--target-timeline=3"});
  INFO(o.output());
  REQUIRE(o.status == 0);
  {
    Recovered server(third, "third");
    server.waitPromoted();
    CHECK(server.pg.value("select string_agg(n::text, ',' order by n) from batches") ==
          "1,2,3,7,9");
    CHECK(server.timeline() == "00000004");
  }
}

TEST_CASE("LSN, transaction, restore point and immediate targets land where expected") {
  Workspace ws(Backend::Posix);
  std::string lsnAfterB, xidOfD;
  {
    PgCluster primary(ws.path("primary"), "primary");
    ws.startArchivingPrimary(primary);
    primary.exec("create table marks (name text)");
    primary.exec("insert into marks values ('before-backup')");
    takeBackup(ws, primary);
    primary.exec("insert into marks values ('A')");
    primary.exec("select pg_create_restore_point('after-A')");
    primary.exec("insert into marks values ('B')");
    lsnAfterB = primary.value("select pg_current_wal_lsn()");
    primary.exec("select pg_switch_wal()");
    primary.exec("insert into marks values ('C')");
    xidOfD = primary.value("insert into marks values ('D') returning txid_current()");
    primary.exec("insert into marks values ('E')");
    waitArchived(primary);
    primary.stop();
  }
  auto marksAfter = [&](const std::string& name, std::vector<std::string> target,
                        bool verifyFirst = false) {
    std::string dir = ws.path(name);
    Outcome o = recoverWith(ws, [&] {
      std::vector<std::string> args{"--pgdata=" + dir, "--target-action=pause"};
      args.insert(args.end(), target.begin(), target.end());
      return args;
    }());
    INFO(o.output());
    REQUIRE(o.status == 0);
    if (verifyFirst) {
      // The restored directory is the backup, byte for byte, before the server touches it.
      std::string log = ws.path(name + "-verify.log");
      int verified = run({pgBinDir() + "/pg_verifybackup", "--no-parse-wal", dir},
                         {.stdoutPath = log, .stderrPath = log});
      INFO(readText(log));
      CHECK(verified == 0);
    }
    Recovered server(dir, name);
    server.waitPaused();
    return server.pg.value("select string_agg(name, ',' order by name) from marks");
  };
  CHECK(marksAfter("name", {"--target-name=after-A"}) == "A,before-backup");
  CHECK(marksAfter("lsn", {"--target-lsn=" + lsnAfterB}) == "A,B,before-backup");
  CHECK(marksAfter("xid", {"--target-xid=" + xidOfD}) == "A,B,C,D,before-backup");
  CHECK(marksAfter("xid-exclusive", {"--target-xid=" + xidOfD, "--target-exclusive"}) ==
        "A,B,C,before-backup");
  CHECK(marksAfter("immediate", {"--target=immediate"}, true) == "before-backup");
}

TEST_CASE("recover refuses, before writing anything, what it cannot do safely") {
  Workspace ws(Backend::Posix);
  double beforeBackup = 0, afterBackup = 0;
  std::string walToLose;
  {
    PgCluster primary(ws.path("primary"), "primary");
    ws.startArchivingPrimary(primary);
    primary.exec("create table t as select generate_series(1, 100) as i");
    beforeBackup = serverNow(primary);
    std::this_thread::sleep_for(1s);
    takeBackup(ws, primary);
    std::this_thread::sleep_for(1s);  // past the backup's stop time, which is rounded up
    primary.exec("insert into t select generate_series(101, 200)");
    afterBackup = serverNow(primary);
    walToLose = primary.value("select pg_walfile_name(pg_current_wal_lsn())");
    primary.exec("select pg_switch_wal()");
    primary.exec("insert into t select generate_series(201, 300)");
    waitArchived(primary);
    primary.stop();
  }
  // Each check in turn (they share one primary: starting it once per check would be slow).
  {
    INFO("a target before the oldest backup's end");
    std::string dir = ws.path("too-early");
    Outcome o = recoverWith(ws, {"--pgdata=" + dir, "--target-time=" + isoTarget(beforeBackup)});
    INFO(o.output());
    CHECK(o.status == 9);
    CHECK(o.output().find("no complete backup ends before the target") != std::string::npos);
    CHECK(o.output().find("the oldest ends at") != std::string::npos);
    CHECK_FALSE(fs::exists(dir));
  }
  {
    INFO("a named zone lands on the same instant as its UTC offset, shown in both (dry run)");
    // Between the backup's end and the last archived commit.
    UtcMicros instant{std::chrono::microseconds(std::int64_t(afterBackup * 1e6))};
    std::string local = formatInZone(instant, "Europe/Paris");
    std::string paris = local.substr(0, local.find(' ', 11));  // without "CET (+01:00)"
    Outcome named = recoverWith(ws, {"--pgdata=" + ws.path("named-zone"), "--dry-run",
                                     "--target-time=" + paris + " Europe/Paris"});
    Outcome offset = recoverWith(ws, {"--pgdata=" + ws.path("named-zone"), "--dry-run",
                                      "--target-time=" + formatTimestamp(instant)});
    INFO(named.output());
    INFO(offset.output());
    CHECK(named.status == 0);
    CHECK(offset.status == 0);
    CHECK(named.output().find("time " + formatTimestamp(instant) +
                              " UTC = " + formatInZone(instant, "Europe/Paris") +
                              " in Europe/Paris") != std::string::npos);
    CHECK(offset.output().find("(" + formatTimestamp(instant) + " UTC)") != std::string::npos);
    CHECK_FALSE(fs::exists(ws.path("named-zone")));
  }
  {
    INFO("a time without a zone");
    std::string dir = ws.path("no-zone");
    Outcome o = recoverWith(ws, {"--pgdata=" + dir, "--target-time=2026-11-22 10:42:07"});
    CHECK(o.status == 3);
    CHECK(o.output().find("has no time zone") != std::string::npos);
    CHECK_FALSE(fs::exists(dir));
  }
  {
    INFO("a data directory that is not empty, unless --force");
    std::string dir = ws.path("occupied");
    fs::create_directories(dir);
    fs::permissions(dir, fs::perms::owner_all);  // PostgreSQL's 0700: tidemark leaves it as it is
    writeFile(dir + "/precious", "keep me");
    Outcome o = recoverWith(ws, {"--pgdata=" + dir});
    CHECK(o.status == 9);
    CHECK(o.output().find("is not empty") != std::string::npos);
    CHECK(readFile(dir + "/precious") == io::Buffer{'k', 'e', 'e', 'p', ' ', 'm', 'e'});
    Outcome forced = recoverWith(ws, {"--pgdata=" + dir, "--force", "--target=immediate"});
    INFO(forced.output());
    CHECK(forced.status == 0);
    CHECK_FALSE(fs::exists(dir + "/precious"));
    CHECK(fs::exists(dir + "/PG_VERSION"));
  }
  {
    INFO("a setting in the environment reaches restore_command as a flag; a secret is refused");
    std::string dir = ws.path("env");
    Outcome o =
        recoverWith(ws, {"--pgdata=" + dir, "--target=immediate"}, {"TIDEMARK_LOG_LEVEL=debug"});
    INFO(o.output());
    CHECK(o.status == 0);
    CHECK(readText(dir + "/postgresql.auto.conf").find(" --log-level=debug %f %p'") !=
          std::string::npos);
    // A secret is never a flag: the restored server's archive-get would lack it. A dry run says
    // so too: its 0 promises a run that can be carried out.
    // (An S3 repository that is never reached: the refusal comes first.)
    std::string secretDir = ws.path("env-secret");
    for (bool dryRun : {false, true}) {
      std::vector<std::string> args{"--pgdata=" + secretDir, "--repo-type=s3",
                                    "--s3-bucket=never-reached", "--s3-endpoint=http://127.0.0.1:9",
                                    "--s3-access-key-id=AKID"};
      if (dryRun) args.push_back("--dry-run");
      Outcome refused = recoverWith(ws, args, {"TIDEMARK_S3_SECRET_ACCESS_KEY=hush"});
      INFO(refused.output());
      CHECK(refused.status == 4);
      CHECK(refused.output().find("TIDEMARK_S3_SECRET_ACCESS_KEY is set, but PostgreSQL's "
                                  "restore_command would not see it") != std::string::npos);
      CHECK(refused.output().find("hush") == std::string::npos);
      CHECK_FALSE(fs::exists(secretDir));
    }
    // Unused by a posix repository: no refusal.
    Outcome posix = recoverWith(ws, {"--pgdata=" + secretDir, "--dry-run"},
                                {"TIDEMARK_S3_SECRET_ACCESS_KEY=hush"});
    INFO(posix.output());
    CHECK(posix.status == 0);
    // A line break would end restore_command's line in postgresql.auto.conf and make what
    // follows a setting of its own: refused before anything is written.
    Outcome broken = recoverWith(ws, {"--pgdata=" + secretDir, "--target=immediate"},
                                 {"TIDEMARK_ARCHIVE_SPOOL_PATH=/tmp/spool\nrestore_command='sh'"});
    INFO(broken.output());
    CHECK(broken.status == 4);
    CHECK(broken.output().find("TIDEMARK_ARCHIVE_SPOOL_PATH holds a line break") !=
          std::string::npos);
    CHECK_FALSE(fs::exists(secretDir));
  }
  {
    INFO("a backup object missing or truncated: refused by the dry run too, before any download");
    auto storage = ws.storage();
    const repo::BackupInfo backup = repo::listBackups(repo::Repository(*storage, "main")).front();
    const std::string manifest = repo::backupObject("main", backup.label, "backup_manifest");
    const io::Buffer saved = ws.readObject(manifest);
    std::string dir = ws.path("missing-object");
    storage->remove(manifest);
    for (bool dryRun : {true, false}) {
      std::vector<std::string> args{"--pgdata=" + dir, "--target=immediate"};
      if (dryRun) args.push_back("--dry-run");
      Outcome o = recoverWith(ws, args);
      INFO(o.output());
      CHECK(o.status == 6);
      CHECK(o.output().find("backup " + backup.label + " cannot be restored from ") !=
            std::string::npos);
      CHECK(o.output().find("'backup_manifest' is missing") != std::string::npos);
      CHECK(o.output().find("--backup=LABEL") != std::string::npos);
      CHECK_FALSE(fs::exists(dir));
    }
    ws.replaceObject(manifest, io::ByteView(saved).first(saved.size() / 2));
    Outcome truncated = recoverWith(ws, {"--pgdata=" + dir, "--target=immediate", "--dry-run"});
    INFO(truncated.output());
    CHECK(truncated.status == 6);
    CHECK(truncated.output().find("'backup_manifest' holds " + std::to_string(saved.size() / 2) +
                                  " stored bytes, backup.json records " +
                                  std::to_string(saved.size())) != std::string::npos);
    ws.replaceObject(manifest, saved);
  }
  {
    INFO(
        "a non-empty tablespace location is never emptied unless the replaced data directory links "
        "to it");
    // A backup.json naming a tablespace (the checks come before any object is read).
    auto storage = ws.storage();
    repo::BackupInfo fake = repo::listBackups(repo::Repository(*storage, "main")).front();
    fake.label = "29980101T000000Z";
    std::string live = ws.path("live-tablespace"), dir = ws.path("ts-target");
    fs::create_directories(live);
    writeFile(live + "/PG_15_202209061", "a live server's tablespace");
    fake.objects.push_back(repo::BackupObject{
        .name = "16385.tar", .tablespaceOid = 16385, .tablespaceLocation = live});
    auto info = storage->newWrite(repo::backupInfoFile("main", fake.label));
    std::string json = fake.toJson();
    info->write(io::asBytes(json));
    REQUIRE(info->commit());
    auto attempt = [&](std::vector<std::string> args) {
      args.insert(args.begin(),
                  {"--pgdata=" + dir, "--backup=" + fake.label, "--target=immediate"});
      Outcome o = recoverWith(ws, args);
      INFO(o.output());
      CHECK(readFile(live + "/PG_15_202209061").size() == 26);
      CHECK_FALSE(fs::exists(dir));
      return o;
    };
    Outcome forced = attempt({"--force"});
    CHECK(forced.status == 9);
    CHECK(forced.output().find("the location of tablespace 16385 '" + live + "' is not empty") !=
          std::string::npos);
    CHECK(forced.output().find("--tablespace-map 16385=DIR") != std::string::npos);
    Outcome dry = attempt({"--force", "--dry-run"});
    CHECK(dry.status == 9);
    Outcome inside = attempt({"--tablespace-map=16385=" + dir + "/ts"});
    CHECK(inside.status == 3);
    CHECK(inside.output().find("overlaps the data directory") != std::string::npos);
    Outcome twice = attempt({"--tablespace-map=16385=/srv/a", "--tablespace-map=16385=/srv/b"});
    CHECK(twice.status == 3);
    CHECK(twice.output().find("two places") != std::string::npos);
    // Two locations refused: one run names both, and the map that moves each.
    const std::string live2 = ws.path("live-tablespace-2");
    fs::create_directories(live2);
    writeFile(live2 + "/PG_15_202209061", "another live tablespace");
    fake.objects.push_back(repo::BackupObject{
        .name = "16386.tar", .tablespaceOid = 16386, .tablespaceLocation = live2});
    writeBackupInfo(*storage, fake);
    Outcome both = attempt({"--force"});
    CHECK(both.status == 9);
    CHECK(both.output().find("the locations of tablespaces 16385 '" + live + "' and 16386 '" +
                             live2 + "' are not empty") != std::string::npos);
    CHECK(both.output().find("restore them to empty directories with --tablespace-map 16385=DIR "
                             "--tablespace-map 16386=DIR") != std::string::npos);
    CHECK(readFile(live2 + "/PG_15_202209061").size() == 23);
    fake.objects.pop_back();
    writeBackupInfo(*storage, fake);
    // A restore that fails (the tablespace's archive is not the one backup.json records) removes
    // the tablespace location it made, as it removes the data directory.
    const repo::BackupInfo original = repo::listBackups(repo::Repository(*storage, "main")).front();
    REQUIRE(original.label != fake.label);
    for (const auto& object : original.storedObjects())
      ws.replaceObject(repo::backupObject("main", fake.label, object.name),
                       ws.readObject(repo::backupObject("main", original.label, object.name)));
    repo::BackupObject tablespace = storeBackupObject(
        *storage, fake.label, "16385.tar", tarOfOneFile("PG_15_202209061/x", "not recorded\n"));
    tablespace.tablespaceOid = 16385;
    tablespace.tablespaceLocation = live;
    tablespace.sha256[0] ^= 1;
    fake.objects.back() = tablespace;
    writeBackupInfo(*storage, fake);
    const std::string newLocation = ws.path("ts-new");
    Outcome failed = attempt({"--tablespace-map=16385=" + newLocation});
    CHECK(failed.status != 0);
    CHECK(failed.output().find("the restore failed") != std::string::npos);
    CHECK_FALSE(fs::exists(newLocation));
    for (const auto& object : fake.storedObjects())
      storage->remove(repo::backupObject("main", fake.label, object.name));
    storage->remove(repo::backupInfoFile("main", fake.label));
  }
  {
    INFO(
        "backup.json says where tablespaces go: never a system directory, and a directory that "
        "existed keeps its owner and mode");
    // An attacker who can write to the repository adds a tablespace to the real backup.
    auto storage = ws.storage();
    const repo::BackupInfo original = repo::listBackups(repo::Repository(*storage, "main")).front();
    repo::BackupObject tablespace =
        storeBackupObject(*storage, original.label, "16385.tar",
                          tarOfOneFile("PG_15_202209061/marker", "planted by backup.json\n"));
    tablespace.tablespaceOid = 16385;
    auto forgeLocation = [&](const std::string& location) {
      repo::BackupInfo forged = original;
      tablespace.tablespaceLocation = location;
      forged.objects.push_back(tablespace);
      writeBackupInfo(*storage, forged);
    };
    struct stat before {};
    REQUIRE(::stat("/usr/local", &before) == 0);
    forgeLocation("/usr/local/sbin");
    std::string dir = ws.path("forged-location");
    Outcome refused = recoverWith(ws, {"--pgdata=" + dir, "--target=immediate"});
    INFO(refused.output());
    CHECK(refused.status == 9);
    CHECK(refused.output().find("the location of tablespace 16385 '/usr/local/sbin' is or lies "
                                "under the system directory /usr") != std::string::npos);
    CHECK(refused.output().find("--tablespace-map 16385=DIR") != std::string::npos);
    CHECK_FALSE(fs::exists(dir));
    struct stat after {};
    REQUIRE(::stat("/usr/local", &after) == 0);
    CHECK(after.st_uid == before.st_uid);
    CHECK(after.st_mode == before.st_mode);

    // An empty directory that exists (root's, 0755) is restored into, and keeps its owner and
    // mode; what is restored below it goes to the data directory's owner.
    std::string existing = ws.path("root-owned-location");
    fs::create_directories(existing);
    REQUIRE(::chown(existing.c_str(), 0, 0) == 0);
    REQUIRE(::chmod(existing.c_str(), 0755) == 0);
    forgeLocation(existing);
    Outcome restored = recoverWith(ws, {"--pgdata=" + dir, "--target=immediate"});
    INFO(restored.output());
    CHECK(restored.status == 0);
    CHECK(restored.output().find("tablespace 16385: restored to " + existing) != std::string::npos);
    struct stat location {
    }, data{}, marker{};
    REQUIRE(::stat(existing.c_str(), &location) == 0);
    REQUIRE(::stat(dir.c_str(), &data) == 0);
    REQUIRE(::stat((existing + "/PG_15_202209061/marker").c_str(), &marker) == 0);
    CHECK(location.st_uid == 0);
    CHECK((location.st_mode & 07777) == 0755);
    CHECK(marker.st_uid == data.st_uid);
    CHECK(data.st_uid != 0);  // the workspace's owner, the server's user

    writeBackupInfo(*storage, original);
    storage->remove(repo::backupObject("main", original.label, "16385.tar"));
    fs::remove_all(dir);
  }
  {
    INFO(
        "--force keeps what the data directory's spool knows of dropped WAL: this stanza's gap is "
        "recorded in the repository first, another's stops it");
    std::string dir = ws.path("dropped");
    const std::string folder = dir + "/pg_wal/tidemark/main";
    fs::create_directories(folder);
    fs::permissions(dir, fs::perms::owner_all);
    auto storage = ws.storage();
    const repo::Repository repository(*storage, "main");
    const repo::StanzaInfo stanza = repo::requireStanza(repository);
    spool::LocalGap gap{.repository = "posix:/elsewhere",
                        .systemId = stanza.systemId,
                        .ranges = {{.first = "0000000100000000000000F0",
                                    .last = "0000000100000000000000F1",
                                    .files = 2,
                                    .firstMs = 1,
                                    .lastMs = 2,
                                    .writtenMs = 1}}};
    spool::writeGap(folder, gap);
    Outcome foreign = recoverWith(ws, {"--pgdata=" + dir, "--force", "--target=immediate"});
    INFO(foreign.output());
    CHECK(foreign.status == 9);
    CHECK(foreign.output().find("records WAL dropped from the archive of posix:/elsewhere") !=
          std::string::npos);
    CHECK(foreign.output().find("copy that file aside") != std::string::npos);
    CHECK(spool::readGap(folder) == gap);
    CHECK_FALSE(fs::exists(dir + "/PG_VERSION"));

    gap.repository = repository.describe();
    spool::writeGap(folder, gap);
    Outcome dry =
        recoverWith(ws, {"--pgdata=" + dir, "--force", "--target=immediate", "--dry-run"});
    INFO(dry.output());
    CHECK(dry.status == 0);
    CHECK(dry.output().find("it would be recorded in " + repository.describe()) !=
          std::string::npos);
    CHECK(spool::readGap(folder) == gap);
    CHECK(repo::readGapRecords(repository, stanza.identity()).empty());

    Outcome forced = recoverWith(ws, {"--pgdata=" + dir, "--force", "--target=immediate"});
    INFO(forced.output());
    CHECK(forced.status == 0);
    CHECK(fs::exists(dir + "/PG_VERSION"));
    CHECK_FALSE(spool::hasGap(folder));
    auto records = repo::readGapRecords(repository, stanza.identity());
    REQUIRE(records.size() == 1);
    CHECK(records[0].systemId == stanza.systemId);
    CHECK(records[0].first == "0000000100000000000000F0");
    CHECK(records[0].last == "0000000100000000000000F1");
    CHECK(records[0].files == 2);
    fs::remove_all(dir);
  }
  {
    INFO("a missing WAL file is named by --dry-run, and the recovery refuses");
    std::string dir = ws.path("gap");
    ws.storage()->remove(Workspace::walObject(walToLose));
    Outcome dry = recoverWith(ws, {"--pgdata=" + dir, "--dry-run"});
    INFO(dry.output());
    CHECK(dry.status == 9);
    CHECK(dry.output().find(walToLose + " is missing from the repository") != std::string::npos);
    CHECK(dry.output().find("silently leave out everything archived after it") !=
          std::string::npos);
    Outcome real = recoverWith(ws, {"--pgdata=" + dir});
    CHECK(real.status == 9);
    CHECK_FALSE(fs::exists(dir));
  }
  {
    INFO("a backup whose archive holds a '../' path");
    std::string dir = ws.path("hostile");
    // A backup whose base.tar tries to write beside the data directory.
    auto storage = ws.storage();
    repo::BackupInfo fake = repo::listBackups(repo::Repository(*storage, "main")).front();
    fake.label = "29990101T000000Z";
    fake.objects = {
        storeBackupObject(*storage, fake.label, "base.tar", tarOfOneFile("../escaped", "evil\n"))};
    writeBackupInfo(*storage, fake);
    Outcome o =
        recoverWith(ws, {"--pgdata=" + dir, "--backup=" + fake.label, "--target=immediate"});
    INFO(o.output());
    CHECK(o.status == 9);
    CHECK(o.output().find("refusing tar entry '../escaped'") != std::string::npos);
    CHECK_FALSE(fs::exists(ws.path("escaped")));
    CHECK_FALSE(fs::exists(dir));  // nothing half-restored is left to start by mistake
  }
}

}  // namespace tidemark::test

namespace tidemark::test {

TEST_CASE("with encryption, what someone without the key writes to the repository is refused") {
  // The attacker can write to the repository (the bucket) but holds no key.
  Workspace ws(EncryptedPosixRepo::value);
  {
    PgCluster primary(ws.path("primary"), "primary");
    ws.startArchivingPrimary(primary);
    primary.exec("create table t as select generate_series(1, 100) as i");
    takeBackup(ws, primary);
    waitArchived(primary);
    primary.stop();
  }
  auto storage = ws.storage();
  const repo::BackupInfo original = repo::listBackups(repo::Repository(*storage, "main")).front();
  const std::string infoPath = repo::backupInfoFile("main", original.label);
  const std::string originalJson = *storage::readSmall(*storage, infoPath, 1 << 20);
  std::string dir = ws.path("restored");

  {
    INFO("an edited backup.json (a tablespace planted under /srv) is not used");
    repo::BackupInfo forged = original;
    forged.objects.push_back(repo::BackupObject{
        .name = "16385.tar", .tablespaceOid = 16385, .tablespaceLocation = "/srv/planted"});
    writeBackupInfo(*storage, forged);
    Outcome o = recoverWith(ws, {"--pgdata=" + dir, "--dry-run"});
    INFO(o.output());
    CHECK(o.status == 9);
    CHECK(o.output().find("has no usable backup") != std::string::npos);
    CHECK(o.output().find("is not authenticated: its MAC does not match its content") !=
          std::string::npos);
    CHECK_FALSE(fs::exists(dir));
    auto restore = storage->newWrite(infoPath, {.noReplace = false});
    restore->write(io::asBytes(originalJson));
    REQUIRE(restore->commit());
  }
  {
    INFO("a .history file planted without encryption is refused, not followed");
    std::string path = Workspace::walObject("00000002.history");
    repo::ObjectWriter writer(storage->newWrite(path), path, {});
    writer.write(io::asBytes(std::string("1\t0/3000000\tplanted by someone without the key\n")));
    REQUIRE(writer.commit());
    Outcome o = recoverWith(ws, {"--pgdata=" + dir, "--dry-run"});
    INFO(o.output());
    CHECK(o.status != 0);
    CHECK(o.output().find("not encrypted") != std::string::npos);
    CHECK_FALSE(fs::exists(dir));
    // archive-get refuses it too, whatever recovery asks for.
    std::string log = ws.path("get.log");
    CHECK(run({ws.get(), "--config", ws.config(), "00000002.history", ws.path("fetched")},
              {.stderrPath = log}) == 255);
    CHECK(readText(log).find("not encrypted") != std::string::npos);
    storage->remove(path);
  }
  {
    INFO("without the key (a monitoring host), info reads the metadata and says it is unchecked");
    std::string config = ws.path("monitor.toml");
    writeFile(config, ws.repoToml().substr(0, ws.repoToml().find("[encryption]")));
    std::string out = ws.path("info.out");
    REQUIRE(run({ws.ctl(), "info", "--config", config}, {.stdoutPath = out}) == 0);
    CHECK(readText(out).find("UNAUTHENTICATED") != std::string::npos);
    REQUIRE(run({ws.ctl(), "info", "--config", ws.config()}, {.stdoutPath = out}) == 0);
    CHECK(readText(out).find("authenticated (MACs checked") != std::string::npos);
  }
  {
    INFO(
        "a backup.json without its record is left out; stanza-create names it and does not sign "
        "it; --authenticate-existing does, on the operator's word, without the cluster");
    storage->remove(infoPath + ".mac");
    Outcome refused = recoverWith(ws, {"--pgdata=" + dir, "--dry-run"});
    CHECK(refused.status == 9);
    std::string out = ws.path("stanza-create.out");
    CHECK(
        run({ws.ctl(), "stanza-create", "--config", ws.config(), "--pgdata=" + ws.path("primary")},
            {.stdoutPath = out, .stderrPath = out}) == 6);
    INFO(readText(out));
    CHECK(readText(out).find("1 metadata file of stanza 'main' is not authenticated") !=
          std::string::npos);
    CHECK_FALSE(storage->info(infoPath + ".mac"));
    fs::remove(out);
    REQUIRE(run({ws.ctl(), "stanza-create", "--config", ws.config(), "--authenticate-existing"},
                {.stdoutPath = out, .stderrPath = out}) == 0);
    CHECK(readText(out).find("signed " + infoPath) != std::string::npos);
  }
  {
    INFO("the untouched repository recovers");
    Outcome o = recoverWith(ws, {"--pgdata=" + dir, "--target=immediate"});
    INFO(o.output());
    CHECK(o.status == 0);
  }
}

}  // namespace tidemark::test

namespace tidemark::test {

TEST_CASE(
    "a copy restored with --archiving=off beside its source never enters the source's history") {
  Workspace ws(Backend::Posix);
  PgCluster source(ws.path("source"), "source");
  ws.startArchivingPrimary(source);
  source.exec("create table rows (n int primary key)");
  takeBackup(ws, source);
  source.exec("insert into rows values (1)");
  waitArchived(source);

  // A promoting recovery without --archiving: refused, before anything is written.
  const std::string copy = ws.path("copy");
  Outcome refused = runTidemark(ws, ws.recover(), {"--pgdata=" + copy});
  INFO(refused.output());
  CHECK(refused.status == 3);  // Error(Usage)
  CHECK(refused.output().find("--archiving=on") != std::string::npos);
  CHECK(refused.output().find("--archiving=off") != std::string::npos);
  CHECK_FALSE(fs::exists(copy));

  // The copy: archiving off, its own port written; it promotes and writes, and archives nothing.
  Outcome o = recoverWith(ws, {"--pgdata=" + copy, "--archiving=off", "--port=54329"});
  INFO(o.output());
  REQUIRE(o.status == 0);
  CHECK(o.output().find("archiving: off") != std::string::npos);
  std::string settings = readText(copy + "/postgresql.auto.conf");
  CHECK(settings.find("archive_mode = 'off'\narchive_command = ''\narchive_cleanup_command = ''\n"
                      "recovery_end_command = ''\nexternal_pid_file = ''\n"
                      "synchronous_standby_names = ''\nmax_logical_replication_workers = 0\n"
                      "log_directory = 'log'\nport = 54329\n") != std::string::npos);
  {
    Recovered server(copy, "copy");
    server.waitPromoted();
    CHECK(server.pg.value("show archive_mode") == "off");
    CHECK(server.timeline() == "00000002");
    server.pg.exec("insert into rows values (100)");
    server.pg.exec("select pg_switch_wal()");
    server.pg.exec("checkpoint");
    CHECK(server.pg.value("select archived_count + failed_count from pg_stat_archiver") == "0");
    server.pg.stop();
  }
  CHECK_FALSE(ws.hasObject("main/wal/00000002.history"));

  // The source goes on; its next recovery (no target: latest) reaches its newest WAL.
  source.exec("insert into rows values (2)");
  waitArchived(source);
  source.stop();
  const std::string again = ws.path("again");
  o = recoverWith(ws, {"--pgdata=" + again, "--archiving=off"});
  INFO(o.output());
  REQUIRE(o.status == 0);
  Recovered server(again, "again");
  server.waitPromoted();
  CHECK(server.pg.value("select string_agg(n::text, ',' order by n) from rows") == "1,2");
  CHECK(server.timeline() == "00000002");
}

TEST_CASE(
    "a copy that archived its own timeline beside its source makes latest a choice: the plan "
    "asks for --target-timeline, info shows both branches, and timeline 1 reaches the source's "
    "newest WAL") {
  Workspace ws(Backend::Posix);
  PgCluster source(ws.path("source"), "source");
  // The mistake: a copy restored with production's archiving on, promoted, archives timeline 2;
  // production goes on writing timeline 1.
  archiveTwoBranches(ws, source);

  // latest would follow the copy's timeline 2: refused before anything is written.
  const std::string again = ws.path("again");
  Outcome o = recoverWith(ws, {"--pgdata=" + again, "--archiving=off"});
  INFO(o.output());
  CHECK(o.status == 9);  // Error(InvalidInput)
  CHECK(o.output().find("2 branches hold WAL past the fork: timeline 1") != std::string::npos);
  CHECK(o.output().find("timeline 2 (path 1 (until ") != std::string::npos);
  CHECK(o.output().find("--target-timeline") != std::string::npos);
  CHECK_FALSE(fs::exists(again));
  // --log-level=debug says which backup the plan took, and why.
  o = recoverWith(ws, {"--pgdata=" + again, "--archiving=off", "--dry-run", "--log-level=debug"});
  CHECK(o.status == 9);
  CHECK(o.err.find("DEBUG: choosing the backup for the end of the archived WAL: 1 complete "
                   "backup, newest first; the first on the history of timeline 2 (target "
                   "timeline latest: the stanza's highest-numbered) is taken") !=
        std::string::npos);
  CHECK(o.err.find("(timeline 1, ended ") != std::string::npos);
  CHECK(o.err.find("): chosen: the newest complete backup\n") != std::string::npos);

  Outcome info = ctl(ws, {"info"});
  INFO(info.output());
  REQUIRE(info.status == 0);
  CHECK(info.out.find("timeline tree\n  1; newest WAL ") != std::string::npos);
  CHECK(info.out.find("\n    2  from 1 at ") != std::string::npos);
  CHECK(info.out.find("(timeline 1 went on after it: a fork)") != std::string::npos);

  // Naming production's branch: its newest WAL, and the settings carry the number.
  o = recoverWith(ws, {"--pgdata=" + again, "--archiving=off", "--target-timeline=1"});
  INFO(o.output());
  REQUIRE(o.status == 0);
  CHECK(readText(again + "/postgresql.auto.conf").find("recovery_target_timeline = '1'\n") !=
        std::string::npos);
  Recovered server(again, "again");
  server.waitPromoted();
  CHECK(server.pg.value("select string_agg(n::text, ',' order by n) from rows") == "1,2");
}

TEST_CASE(
    "a time target after the archive's last commit is refused before anything is written, and "
    "one just before it lands exactly") {
  Workspace ws(Backend::Posix);
  PgCluster source(ws.path("source"), "source");
  ws.startArchivingPrimary(source, "track_commit_timestamp = on\n");
  source.exec("create table rows (n int primary key)");
  takeBackup(ws, source);
  source.exec("select pg_sleep(1.2)");  // past the backup's stop time (whole seconds, rounded up)
  source.exec("insert into rows values (1)");
  source.exec("insert into rows values (2)");
  // The exact commit time of the last commit (commit_ts records the time in its WAL record).
  const std::string last = source.value(
      "select to_char(pg_xact_commit_timestamp(xmin) at time zone 'UTC', "
      "'YYYY-MM-DD HH24:MI:SS.US') || '+00' from rows where n = 2");
  const UtcMicros lastTime = parseTimestamp(last, "test");
  waitArchived(source);
  source.stop();

  // info's window ends there too.
  Outcome info = ctl(ws, {"info"});
  INFO(info.output());
  REQUIRE(info.status == 0);
  CHECK(info.out.find(last + "  the last one (COMMIT in ") != std::string::npos);

  const std::string dir = ws.path("restored");
  for (const auto& extra : {std::string(), std::string("--dry-run")}) {
    std::vector<std::string> args = {"--pgdata=" + dir,
                                     "--target-time=" + formatTimestamp(lastTime),
                                     "--target-action=promote", "--archiving=off"};
    if (!extra.empty()) args.push_back(extra);
    Outcome o = recoverWith(ws, args);
    INFO(o.output());
    CHECK(o.status == 9);  // Error(InvalidInput)
    CHECK(o.output().find("is at or after the last commit in the archive (" + last) !=
          std::string::npos);
    CHECK(o.output().find("or give no target") != std::string::npos);
    CHECK_FALSE(fs::exists(dir));
  }

  const std::string before = formatTimestamp(lastTime - std::chrono::microseconds(1));
  Outcome o = recoverWith(ws, {"--pgdata=" + dir, "--target-time=" + before,
                               "--target-action=promote", "--archiving=off"});
  INFO(o.output());
  REQUIRE(o.status == 0);
  CHECK(o.output().find("archive:   its last commit is at " + last + " (COMMIT at ") !=
        std::string::npos);
  Recovered server(dir, "restored");
  server.waitPromoted();
  CHECK(server.pg.value("select string_agg(n::text, ',' order by n) from rows") == "1");
}

TEST_CASE(
    "--verify reads every object the plan needs and refuses a flipped byte before restoring") {
  Workspace ws(Backend::Posix);
  PgCluster source(ws.path("source"), "source");
  ws.startArchivingPrimary(source);
  source.exec("create table rows (n int primary key)");
  takeBackup(ws, source);
  const std::string needed = source.value("select pg_walfile_name(pg_current_wal_lsn())");
  source.exec("insert into rows select generate_series(1, 1000)");
  source.exec("select pg_switch_wal()");
  source.exec("insert into rows select generate_series(1001, 2000)");
  const std::string next = source.value("select pg_walfile_name(pg_current_wal_lsn())");
  REQUIRE(next != needed);
  waitArchived(source);
  source.stop();

  const std::string dir = ws.path("restored");
  Outcome o = recoverWith(ws, {"--pgdata=" + dir, "--archiving=off", "--verify", "--dry-run"});
  INFO(o.output());
  REQUIRE(o.status == 0);
  CHECK(o.output().find("every object the plan needs is intact") != std::string::npos);

  // A byte flipped in a segment the replay needs, after the backup's own WAL.
  flipByte(ws, Workspace::walObject(needed),
           ws.readObject(Workspace::walObject(needed)).size() / 2);
  for (const auto& extra : {std::string("--dry-run"), std::string()}) {
    std::vector<std::string> args = {"--pgdata=" + dir, "--archiving=off", "--verify"};
    if (!extra.empty()) args.push_back(extra);
    o = recoverWith(ws, args);
    INFO(o.output());
    CHECK(o.status == 6);  // Error(Corrupt)
    CHECK(o.output().find("--verify: 1 of the ") != std::string::npos);
    CHECK(o.output().find(needed) != std::string::npos);
    CHECK(o.output().find("nothing was written") != std::string::npos);
    CHECK_FALSE(fs::exists(dir));
  }

  // A sound object holding another segment (the next one, under this one's name): every
  // envelope check passes, the segment's own page header does not.
  ws.replaceObject(Workspace::walObject(needed), ws.readObject(Workspace::walObject(next)));
  o = recoverWith(ws, {"--pgdata=" + dir, "--archiving=off", "--verify", "--dry-run"});
  INFO(o.output());
  CHECK(o.status == 6);
  CHECK(o.output().find("'" + Workspace::walObject(needed) + "' is not a valid WAL segment") !=
        std::string::npos);
  CHECK_FALSE(fs::exists(dir));
}

}  // namespace tidemark::test

namespace tidemark::test {

namespace {

// Every file under `dir` with its content.
std::map<std::string, io::Buffer> treeContents(const std::string& dir) {
  std::map<std::string, io::Buffer> out;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file()) out[entry.path().string()] = readFile(entry.path().string());
  return out;
}

}  // namespace

TEST_CASE(
    "a copy restored beside its source stops before replaying a CREATE TABLESPACE into the "
    "source's tablespace, and replays it once the location is free") {
  Workspace ws(Backend::Posix);
  PgCluster source(ws.path("source"), "source");
  ws.startArchivingPrimary(source);
  source.exec("create table rows (n int primary key)");
  takeBackup(ws, source);
  source.exec("insert into rows values (1)");
  const std::string beforeCreate = source.value("select pg_current_wal_lsn()");
  // After the backup: a tablespace whose CREATE the WAL records with its location on this host.
  const std::string location = ws.makeDir("tablespace");
  source.exec("create tablespace ts location '" + location + "'");
  source.exec("create table in_ts tablespace ts as select g as n from generate_series(1, 1000) g");
  const std::string oid = source.value("select oid from pg_tablespace where spcname = 'ts'");
  waitArchived(source);
  source.stop();
  const auto before = treeContents(location);
  REQUIRE_FALSE(before.empty());

  const std::string copy = ws.path("copy");
  Outcome o = recoverWith(ws, {"--pgdata=" + copy, "--archiving=off"});
  INFO(o.output());
  REQUIRE(o.status == 0);
  giveToTestUser(copy);
  PgCluster server(copy, "copy");
  // The replay stops before the record: the server may have opened for reads, then exits.
  try {
    server.start();
  } catch (const std::exception&) {
  }
  bool stopped = waitUntil([&] { return !server.running(); }, 120s);
  const std::string log = server.logTail(200);
  INFO(log);
  REQUIRE(stopped);
  CHECK(log.find("creates tablespace " + oid + " at '" + location +
                 "', which holds another cluster's tablespace ('PG_15_") != std::string::npos);
  CHECK(log.find("recover on another host") != std::string::npos);
  // The source's tablespace is as it was, and the copy does not link to it.
  CHECK(treeContents(location) == before);
  CHECK_FALSE(fs::exists(copy + "/pg_tblspc/" + oid));

  // A copy to a target before the CREATE, in the same segment, never replays it: not stopped.
  {
    const std::string early = ws.path("early");
    Outcome restored = recoverWith(ws, {"--pgdata=" + early, "--archiving=off",
                                        "--target-lsn=" + beforeCreate, "--target-action=promote"});
    INFO(restored.output());
    REQUIRE(restored.status == 0);
    Recovered copyBefore(early, "early");
    copyBefore.waitPromoted();
    CHECK(copyBefore.pg.value("select count(*) from rows") == "1");
    CHECK_FALSE(fs::exists(early + "/pg_tblspc/" + oid));
    copyBefore.pg.stop();
  }
  CHECK(treeContents(location) == before);

  // The source's host lost (its tablespace moved away): the location is free, the same copy
  // starts again and replays the tablespace into it.
  fs::rename(location, location + ".source");
  ws.makeDir("tablespace");
  server.start();
  bool promoted =
      waitUntil([&] { return server.value("select pg_is_in_recovery()") == "f"; }, 300s);
  INFO(server.logTail());
  REQUIRE(promoted);
  CHECK(server.value("select count(*) from in_ts") == "1000");
  CHECK(fs::read_symlink(copy + "/pg_tblspc/" + oid).string() == location);
  server.stop();
}

}  // namespace tidemark::test
