// Unit tests of common/config/programs.h: which program uses which configuration key.
#include "common/config/programs.h"

#include <doctest/doctest.h>

#include "common/config/config.h"

using namespace tidemark;

TEST_CASE("every configuration key is used by at least one program, and the table says which") {
  SUBCASE("no key of the key table is missing from the table of users") {
    for (const auto& key : configKeys()) {
      CAPTURE(key);
      CHECK(keyUsers(key) != 0);
    }
    CHECK(keyUsers("no.such") == 0);
    CHECK(keyUsers("stanzas") == 0);
  }
  SUBCASE("configKeyInfo carries the table's users") {
    for (const auto& info : configKeyInfo()) {
      CAPTURE(info.key);
      CHECK(info.usedBy == keyUsers(info.key));
    }
  }
  SUBCASE("what only one program does is offered to that program alone") {
    CHECK(keyUsers("backup.max-rate") == kBasebackup);
    CHECK(keyUsers("archive.push-ahead") == kArchivePush);
    CHECK(keyUsers("compress.type") == (kArchivePush | kBasebackup));
    CHECK(keyUsers("retention.full") == kExpire);
    CHECK(keyUsers("drill.scratch") == kDrill);
    CHECK((keyUsers("pg.conninfo") & kArchivePush) == 0);
    CHECK((keyUsers("pg.conninfo") & kArchiveGet) == 0);
  }
  SUBCASE("what archive-get uses, the writers of its restore_command use too") {
    for (const auto& info : configKeyInfo()) {
      CAPTURE(info.key);
      if (info.usedBy & kArchiveGet) {
        CHECK((info.usedBy & kRecover) != 0);
        CHECK((info.usedBy & kDrill) != 0);
      }
    }
  }
  SUBCASE("the repository's keys are every program's") {
    for (const char* key : {"stanza", "repo.path", "s3.bucket", "encryption.key-file", "log.level"})
      CHECK(keyUsers(key) == kEveryProgram);
  }
  SUBCASE("programNames names the programs in the table's order") {
    CHECK(
        programNames(kBasebackup | kCheck | kArchivePush) ==
        std::vector<std::string>{"tidemark-archive-push", "tidemark-basebackup", "tidemark check"});
    CHECK(programNames(0).empty());
    CHECK(programNames(kEveryProgram).size() == 13);
  }
}
