// Unit tests of common/repo/layout.h: where WAL files, backups and locks live in the repository.
#include "common/repo/layout.h"

#include <doctest/doctest.h>

using namespace tidemark;

TEST_CASE("repository paths follow the documented layout") {
  auto object = [](const char* name) {
    return repo::walObject("main", 1, *pg::parseWalName(name));
  };
  CHECK(repo::stanzaFile("main") == "main/stanza.json");
  CHECK(repo::walDirectory("main", 1) == "main/wal");
  SUBCASE("generations after the first have a WAL folder of their own, and a record") {
    CHECK(repo::walDirectory("main", 2) == "main/wal-2");
    CHECK(repo::walObject("main", 3, *pg::parseWalName("000000010000000000000001")) ==
          "main/wal-3/0000000100000000/000000010000000000000001");
    CHECK(repo::walObject("main", 2, *pg::parseWalName("00000002.history")) ==
          "main/wal-2/00000002.history");
    CHECK(repo::generationFile("main", 2) == "main/generations/2.json");
    CHECK(repo::generationOfRecord("2.json") == 2);
    CHECK(repo::generationOfWalFolder("wal-12") == 12);
    for (const char* other : {"1.json", "02.json", "2.json.mac", ".2.json.tmp-1", "x.json", ""})
      CHECK_FALSE(repo::generationOfRecord(other));
    for (const char* other : {"wal", "wal-1", "wal-02", "wal-", "backups", "wal-2x"})
      CHECK_FALSE(repo::generationOfWalFolder(other));
  }
  SUBCASE("segments, partial segments and backup files go under their timeline and log") {
    CHECK(object("000000010000000000000001") ==
          "main/wal/0000000100000000/000000010000000000000001");
    CHECK(object("0000000200000003000000FF.partial") ==
          "main/wal/0000000200000003/0000000200000003000000FF.partial");
    CHECK(object("000000010000000000000003.00000028.backup") ==
          "main/wal/0000000100000000/000000010000000000000003.00000028.backup");
  }
  SUBCASE("timeline history files sit directly in wal/") {
    CHECK(object("00000002.history") == "main/wal/00000002.history");
  }
}

TEST_CASE("backup paths follow the documented layout") {
  SUBCASE("each backup has its own directory under backups/, named by its label") {
    CHECK(repo::backupsDirectory("main") == "main/backups");
    CHECK(repo::backupDirectory("main", "20261122T101500Z") == "main/backups/20261122T101500Z");
  }
  SUBCASE("a backup's archives, manifest and backup.json sit directly in its directory") {
    CHECK(repo::backupObject("main", "20261122T101500Z", "base.tar") ==
          "main/backups/20261122T101500Z/base.tar");
    CHECK(repo::backupObject("main", "20261122T101500Z", "16385.tar") ==
          "main/backups/20261122T101500Z/16385.tar");
    CHECK(repo::backupObject("main", "20261122T101500Z", "backup_manifest") ==
          "main/backups/20261122T101500Z/backup_manifest");
    CHECK(repo::backupInfoFile("main", "20261122T101500Z") ==
          "main/backups/20261122T101500Z/backup.json");
  }
  SUBCASE("the backup lock is one file per stanza, beside stanza.json") {
    CHECK(repo::backupLockFile("main") == "main/backup.lock");
    CHECK(repo::backupLockFile("other") == "other/backup.lock");
  }
  SUBCASE("stanzas do not share backup paths") {
    CHECK(repo::backupInfoFile("other", "20261122T101500Z") ==
          "other/backups/20261122T101500Z/backup.json");
  }
}
