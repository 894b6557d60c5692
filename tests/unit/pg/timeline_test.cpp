// Unit tests of common/pg/timeline.h: timeline history files as PostgreSQL writes them
// (timeline.c: writeTimeLineHistory, readTimeLineHistory), and the questions asked of a history.
#include "common/pg/timeline.h"

#include <doctest/doctest.h>

#include "common/base/error.h"
#include "support/check.h"

using namespace tidemark;
using pg::parseHistory;
using pg::TimelineHistory;
using test::Containing;
using test::thrownError;
using test::what;

namespace {

Error refused(std::uint32_t timeline, const std::string& content) {
  return thrownError(
      [&] { parseHistory(timeline, content, "posix:/r/main/wal/00000003.history"); });
}

}  // namespace

TEST_CASE("parseHistory reads the parents of a timeline, oldest first") {
  SUBCASE("what PostgreSQL writes: parent, switch point and reason, one line per ancestor") {
    TimelineHistory h = parseHistory(3,
                                     "1\t0/3000158\tno recovery target specified\n"
                                     "\n"
                                     "2\t0/5000000\tbefore 2026-11-22 10:42:07.000000+01\n",
                                     "w");
    CHECK(h.timeline == 3);
    REQUIRE(h.parents.size() == 2);
    CHECK(h.parents[0].timeline == 1);
    CHECK(h.parents[0].switchpoint == 0x3000158);
    CHECK(h.parents[0].reason == "no recovery target specified");
    CHECK(h.parents[1].timeline == 2);
    CHECK(h.parents[1].switchpoint == 0x5000000);
    CHECK(h.parents[1].reason == "before 2026-11-22 10:42:07.000000+01");
  }
  SUBCASE("comments, blank lines and lines of spaces are skipped; the reason may be absent") {
    TimelineHistory h = parseHistory(2, "# a comment\n   \n\t# another\n1 0/A00028\n", "w");
    REQUIRE(h.parents.size() == 1);
    CHECK(h.parents[0].switchpoint == 0xA00028);
    CHECK(h.parents[0].reason.empty());
  }
  SUBCASE(
      "a timeline whose parents skip numbers (a branch of a branch) and a switch point shared by "
      "two") {
    TimelineHistory h = parseHistory(7, "1\t0/3000000\ta\n4\t0/3000000\tb\n", "w");
    REQUIRE(h.parents.size() == 2);
    CHECK(h.parents[1].timeline == 4);
  }
  SUBCASE("an empty file: no parents") {
    CHECK(parseHistory(2, "", "w").parents.empty());
    CHECK(parseHistory(2, "\n\n", "w").parents.empty());
  }
  SUBCASE("a last line without a newline is read too") {
    CHECK(parseHistory(2, "1\t0/3000000\treason", "w").parents.size() == 1);
  }
}

TEST_CASE("parseHistory refuses a damaged file as Corrupt, naming the file and the line") {
  SUBCASE("a line without a switch point") {
    Error e = refused(3, "1\t0/3000000\tok\n2\n");
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) ==
          "'posix:/r/main/wal/00000003.history' line 2: expected a parent timeline and a switch "
          "point");
    CHECK(e.hint() == "the timeline history file is damaged; restore it from a copy");
  }
  SUBCASE("a parent that is not a number") {
    for (const char* line :
         {"x\t0/3000000\n", "+1\t0/3000000\n", "1.0\t0/3000000\n", "0x1\t0/3000000\n"}) {
      CAPTURE(line);
      CHECK(what(refused(3, line)) == Containing("line 1: '"));
      CHECK(what(refused(3, line)) == Containing("' is not a timeline"));
    }
  }
  SUBCASE("a parent that cannot be one: 0, the timeline itself, or a later one") {
    for (const char* line : {"0\t0/3000000\n", "3\t0/3000000\n", "4\t0/3000000\n"}) {
      CAPTURE(line);
      CHECK(what(refused(3, line)) == Containing("is not a parent timeline"));
    }
  }
  SUBCASE("a switch point that is not a WAL location") {
    CHECK(what(refused(3, "1\t3000000\treason\n")) ==
          "'posix:/r/main/wal/00000003.history' line 1: '3000000' is not a WAL location");
    CHECK(what(refused(3, "1\t0/G\n")) == Containing("'0/G' is not a WAL location"));
  }
  SUBCASE("parents out of order: timelines and switch points must increase") {
    CHECK(what(refused(3, "2\t0/5000000\n1\t0/3000000\n")) ==
          "'posix:/r/main/wal/00000003.history' line 2: timelines and switch points must increase "
          "from line to line");
    CHECK(what(refused(3, "1\t0/5000000\n2\t0/3000000\n")) == Containing("must increase"));
    CHECK(what(refused(3, "1\t0/3000000\n1\t0/5000000\n")) == Containing("must increase"));
  }
}

TEST_CASE("a history tells which timeline a WAL location belongs to on the way to its timeline") {
  const TimelineHistory h = parseHistory(3, "1\t0/3000000\n2\t0/5000000\n", "w");
  SUBCASE("contains: the timeline and its ancestors") {
    CHECK(h.contains(1));
    CHECK(h.contains(2));
    CHECK(h.contains(3));
    CHECK_FALSE(h.contains(4));
    CHECK_FALSE(parseHistory(5, "1\t0/3000000\n", "w").contains(2));
  }
  SUBCASE("endOf: where an ancestor ended; nothing for the timeline itself or a stranger") {
    CHECK(h.endOf(1) == std::optional<std::uint64_t>(0x3000000));
    CHECK(h.endOf(2) == std::optional<std::uint64_t>(0x5000000));
    CHECK_FALSE(h.endOf(3).has_value());
    CHECK_FALSE(h.endOf(9).has_value());
  }
  SUBCASE("timelineOf: a switch point already belongs to the child") {
    CHECK(h.timelineOf(0) == 1);
    CHECK(h.timelineOf(0x2FFFFFF) == 1);
    CHECK(h.timelineOf(0x3000000) == 2);
    CHECK(h.timelineOf(0x4FFFFFF) == 2);
    CHECK(h.timelineOf(0x5000000) == 3);
    CHECK(h.timelineOf(~0ULL) == 3);
    CHECK(TimelineHistory{}.timelineOf(0x5000000) == 1);
  }
  CHECK(pg::historyFileName(2) == "00000002.history");
  CHECK(pg::historyFileName(0xABCDEF01) == "ABCDEF01.history");
}
