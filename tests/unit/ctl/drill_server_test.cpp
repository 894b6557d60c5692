// Unit tests of ctl/drill_server.h: the server binaries a drill starts.
#include "ctl/drill_server.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include "support/check.h"
#include "support/segment.h"

using namespace tidemark;
using ctl::findServerBinaries;
using test::thrownError;
using test::what;

TEST_CASE(
    "findServerBinaries takes drill.pg-bin's postgres, unless it says it is another version") {
  test::TempDir bin;
  const std::string postgres = bin / "postgres";
  auto answers = [&](const std::string& line) {
    test::writeFile(postgres, "#!/bin/sh\necho '" + line + "'\n");
    REQUIRE(::chmod(postgres.c_str(), 0755) == 0);
  };
  SUBCASE("none there") {
    Error e = thrownError([&] { findServerBinaries(bin.path(), 15); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == test::Containing("holds no executable 'postgres'"));
  }
  SUBCASE("of the backup's version") {
    answers("postgres (PostgreSQL) 15.18");
    CHECK(findServerBinaries(bin.path(), 15) == bin.path());
  }
  SUBCASE("of another version: refused, naming both") {
    answers("postgres (PostgreSQL) 16.4");
    Error e = thrownError([&] { findServerBinaries(bin.path(), 15); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == test::Containing("holds the server of PostgreSQL 16, and the backup is of "
                                      "PostgreSQL 15"));
    CHECK(e.hint() == test::Containing("/usr/lib/postgresql/15/bin"));
  }
  SUBCASE("that does not say: taken (starting it tells)") {
    answers("something else");
    CHECK(findServerBinaries(bin.path(), 15) == bin.path());
  }
}
