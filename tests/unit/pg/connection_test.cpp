// Unit tests of common/pg/connection.h's helpers that need no server: literals for replication
// commands. Connections themselves are tested in tests/integration.
#include "common/pg/connection.h"

#include <doctest/doctest.h>

using namespace tidemark;

TEST_CASE("quoteLiteral quotes a string for a replication command") {
  CHECK(pg::quoteLiteral("tidemark 20261122T101500Z") == "'tidemark 20261122T101500Z'");
  CHECK(pg::quoteLiteral("") == "''");
  SUBCASE("single quotes are doubled") {
    CHECK(pg::quoteLiteral("it's") == "'it''s'");
    CHECK(pg::quoteLiteral("'") == "''''");
    CHECK(pg::quoteLiteral("''x''") == "'''''x'''''");
  }
  SUBCASE("everything else is kept: replication commands have no backslash escapes") {
    CHECK(pg::quoteLiteral("a\\b") == "'a\\b'");
    CHECK(pg::quoteLiteral("a\"b; DROP") == "'a\"b; DROP'");
    CHECK(pg::quoteLiteral("été") == "'été'");
  }
}
