// Unit tests of common/pg/connection.h's helpers that need no server: WAL locations (LSNs) and
// literals for replication commands. Connections themselves are tested in tests/integration.
#include "common/pg/connection.h"

#include <doctest/doctest.h>

#include <cstdint>

#include "support/check.h"

using namespace tidemark;
using test::thrownError;
using test::what;

TEST_CASE("parseLsn and formatLsn convert WAL locations as PostgreSQL writes them") {
  SUBCASE("the high and low 32 bits, in upper-case hex without leading zeros") {
    CHECK(pg::formatLsn(0x3000028) == "0/3000028");
    CHECK(pg::formatLsn(0x1A00000100ULL) == "1A/100");
    CHECK(pg::formatLsn(0) == "0/0");
    CHECK(pg::formatLsn(0xFFFFFFFFFFFFFFFFULL) == "FFFFFFFF/FFFFFFFF");
    CHECK(pg::formatLsn(0x100000000ULL) == "1/0");
  }
  SUBCASE("what formatLsn writes, parseLsn reads back") {
    for (std::uint64_t lsn :
         {std::uint64_t(0), std::uint64_t(1), std::uint64_t(0x3000028), std::uint64_t(0xFFFFFFFF),
          std::uint64_t(0x100000000ULL), std::uint64_t(0x1A00000100ULL),
          std::uint64_t(0xFFFFFFFFFFFFFFFFULL), std::uint64_t(0x123456789ABCDEF0ULL)}) {
      CAPTURE(lsn);
      CHECK(pg::parseLsn(pg::formatLsn(lsn)) == lsn);
    }
  }
  SUBCASE("lower-case hex and leading zeros are read too") {
    CHECK(pg::parseLsn("0/3000028") == 0x3000028);
    CHECK(pg::parseLsn("1a/ff") == 0x1A000000FFULL);
    CHECK(pg::parseLsn("00000001/00000002") == 0x100000002ULL);
    CHECK(pg::parseLsn("0/0") == 0);
    CHECK(pg::parseLsn("FFFFFFFF/FFFFFFFF") == 0xFFFFFFFFFFFFFFFFULL);
  }
  SUBCASE("anything else is a Database error naming the text") {
    for (std::string bad : {"",      "1",     "/",           "/1",          "1/",   "G/1",
                            "1/G",   "1/2/3", "100000000/0", "0/100000000", "1 /2", "1/2 ",
                            " 1/2",  "1/ 2",  "+1/2",        "1/+2",        "-0/1", "0/-1",
                            "0x1/2", "1/0x2", "000000001/0", "1/2\n"}) {
      CAPTURE(bad);
      Error e = thrownError([&] { pg::parseLsn(bad); });
      CHECK(e.code() == ErrorCode::Database);
      CHECK(what(e) == "'" + bad + "' is not a WAL location");
    }
  }
}

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
