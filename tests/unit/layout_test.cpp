// Unit tests of common/repo/layout.h: where each WAL-related file lives in the repository.
#include "common/repo/layout.h"

#include <doctest/doctest.h>

using namespace tidemark;

TEST_CASE("repository paths follow the documented layout") {
  auto object = [](const char* name) { return repo::walObject("main", *pg::parseWalName(name)); };
  CHECK(repo::stanzaFile("main") == "main/stanza.json");
  CHECK(repo::walDirectory("main") == "main/wal");
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
