// Unit tests of common/pg/lsn.h: WAL locations as PostgreSQL writes them.
#include "common/pg/lsn.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>

using namespace tidemark;

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
  SUBCASE("anything else is refused") {
    for (std::string bad : {"",      "1",     "/",           "/1",          "1/",   "G/1",
                            "1/G",   "1/2/3", "100000000/0", "0/100000000", "1 /2", "1/2 ",
                            " 1/2",  "1/ 2",  "+1/2",        "1/+2",        "-0/1", "0/-1",
                            "0x1/2", "1/0x2", "000000001/0", "1/2\n"}) {
      CAPTURE(bad);
      CHECK_FALSE(pg::parseLsn(bad).has_value());
    }
  }
}
