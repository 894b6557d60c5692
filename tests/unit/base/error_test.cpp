// Unit tests of common/error.h: the error table and the Error type.
#include "common/base/error.h"

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <set>

#include "support/check.h"

using namespace tidemark;

namespace {
const std::vector<ErrorCode> kAllCodes = {
#define TIDEMARK_TEST_CODE(name, status, what) ErrorCode::name,
    TIDEMARK_ERRORS(TIDEMARK_TEST_CODE)
#undef TIDEMARK_TEST_CODE
};
}  // namespace

TEST_CASE("the error table maps every code to a distinct status, name and meaning") {
  SUBCASE("statuses stay within 3..99, so no failure reads as 'not found' or as fatal") {
    // docs/archiving.md: 1 is archive-get's "not found", above 125 is fatal to PostgreSQL.
    for (ErrorCode code : kAllCodes) {
      CAPTURE(code);
      CHECK(exitStatus(code) >= 3);
      CHECK(exitStatus(code) <= 99);
    }
  }
  SUBCASE("statuses and names are unique") {
    std::set<int> statuses;
    std::set<std::string_view> names;
    for (ErrorCode code : kAllCodes) {
      statuses.insert(exitStatus(code));
      names.insert(errorName(code));
      CHECK_FALSE(errorMeaning(code).empty());
    }
    CHECK(statuses.size() == kAllCodes.size());
    CHECK(names.size() == kAllCodes.size());
  }
  SUBCASE("the documented statuses do not move") {
    CHECK(exitStatus(ErrorCode::Usage) == 3);
    CHECK(exitStatus(ErrorCode::Config) == 4);
    CHECK(exitStatus(ErrorCode::Storage) == 5);
    CHECK(exitStatus(ErrorCode::Corrupt) == 6);
    CHECK(exitStatus(ErrorCode::Conflict) == 7);
    CHECK(exitStatus(ErrorCode::ForeignCluster) == 8);
    CHECK(exitStatus(ErrorCode::InvalidInput) == 9);
    CHECK(exitStatus(ErrorCode::LocalIo) == 10);
    CHECK(exitStatus(ErrorCode::Unsupported) == 11);
    CHECK(exitStatus(ErrorCode::Database) == 12);
    CHECK(exitStatus(ErrorCode::Timeout) == 13);
    CHECK(exitStatus(ErrorCode::Interrupted) == 14);
    CHECK(exitStatus(ErrorCode::Locked) == 15);
    CHECK(exitStatus(ErrorCode::Unhealthy) == 16);
    CHECK(exitStatus(ErrorCode::Internal) == 99);
    CHECK(errorName(ErrorCode::ForeignCluster) == "foreign-cluster");
  }
}

TEST_CASE("Error carries a code, a message, a hint and a transient flag") {
  SUBCASE("the parts are kept as given") {
    Error e(ErrorCode::Storage, "cannot read 'x'", "check the mount");
    CHECK(e.code() == ErrorCode::Storage);
    CHECK(test::what(e) == "cannot read 'x'");
    CHECK(e.hint() == "check the mount");
    CHECK_FALSE(e.transient());
    e.setTransient();
    CHECK(e.transient());
  }
  SUBCASE("error() formats the message and leaves the hint empty") {
    Error e = error(ErrorCode::Corrupt, "object '{}' is {} bytes", "a/b", 12);
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(test::what(e) == "object 'a/b' is 12 bytes");
    CHECK(e.hint().empty());
  }
  SUBCASE("errnoText names the errno") {
    CHECK(errnoText(ENOENT) == "No such file or directory");
  }
}

TEST_CASE("systemError appends the errno text and marks what may pass as transient") {
  SUBCASE("network-filesystem hiccups are transient") {
    for (int err : {EIO, ETIMEDOUT, ESTALE, EAGAIN, EINTR}) {
      CAPTURE(err);
      Error e = systemError(ErrorCode::Storage, err, "cannot read '{}'", "/repo/x");
      CHECK(e.transient());
      CHECK(test::what(e) == "cannot read '/repo/x': " + errnoText(err));
    }
  }
  SUBCASE("conditions that stay are not") {
    for (int err : {ENOENT, EACCES, ENOSPC, EROFS, ENOTDIR}) {
      CAPTURE(err);
      CHECK_FALSE(systemError(ErrorCode::Storage, err, "cannot write '{}'", "x").transient());
    }
  }
}

TEST_CASE("allErrorCodes lists the table in order, and README.md states it word for word") {
  CHECK(allErrorCodes() == kAllCodes);
  std::ifstream in(std::string(TIDEMARK_SOURCE_DIR) + "/README.md");
  REQUIRE(in.good());
  std::string readme((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto table = readme.find("\n| status | cause |\n|---|---|\n");
  REQUIRE(table != std::string::npos);
  std::string expected;
  for (ErrorCode code : allErrorCodes())
    expected += fmt::format("| {} | {} |\n", exitStatus(code), errorMeaning(code));
  std::size_t start = table + std::string("\n| status | cause |\n|---|---|\n").size();
  std::size_t end = readme.find("\n\n", start);
  REQUIRE(end != std::string::npos);
  CHECK(readme.substr(start, end + 1 - start) == expected);
}
