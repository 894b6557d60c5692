// Unit tests of common/recovery/target.h: how a target reads in the plan and in messages, and
// how --target-timeline is parsed.
#include "common/recovery/target.h"

#include <doctest/doctest.h>

#include "support/check.h"

using namespace tidemark;

TEST_CASE("Target::describe shows a time target in UTC, and in the zone it was given in") {
  recovery::Target target{.kind = recovery::TargetKind::Time};
  SUBCASE("an offset: as typed, and in UTC") {
    target.text = "2026-11-22 10:42:07+01";
    target.time = parseTimestamp(target.text, "--target-time");
    CHECK(target.describe() == "time 2026-11-22 10:42:07+01 (2026-11-22 09:42:07.000000+00 UTC)");
  }
  SUBCASE("a named zone: in UTC, then in that zone with its abbreviation and offset then") {
    target.text = "2026-11-22 10:42:07 Europe/Paris";
    target.time = parseTimestamp(target.text, "--target-time");
    CHECK(target.describe() ==
          "time 2026-11-22 09:42:07.000000+00 UTC = 2026-11-22 10:42:07 CET "
          "(+01:00) in Europe/Paris");
    target.text = "2026-07-01 12:00:00.5 Europe/Paris";
    target.time = parseTimestamp(target.text, "--target-time");
    CHECK(target.describe() ==
          "time 2026-07-01 10:00:00.500000+00 UTC = 2026-07-01 12:00:00.5 "
          "CEST (+02:00) in Europe/Paris");
  }
}

TEST_CASE("parseTimelineChoice reads --target-timeline, and names the option or key it refuses") {
  using recovery::parseTimelineChoice;
  using recovery::TimelineChoice;
  CHECK(parseTimelineChoice("latest", "--target-timeline").kind == TimelineChoice::Kind::Latest);
  CHECK(parseTimelineChoice("current", "--target-timeline").kind == TimelineChoice::Kind::Current);
  TimelineChoice number = parseTimelineChoice("12", "--target-timeline");
  CHECK(number.kind == TimelineChoice::Kind::Number);
  CHECK(number.number == 12);
  CHECK(number.text() == "12");
  // Decimal, as typed: a leading zero is not octal (PostgreSQL's reading), and is written without.
  CHECK(parseTimelineChoice("010", "--target-timeline").text() == "10");
  CHECK(parseTimelineChoice("4294967295", "--target-timeline").number == 4294967295u);
  SUBCASE("an option: Error(Usage) naming it and the values allowed") {
    for (const char* wrong : {"", "0", "-1", "4294967296", "Latest", "2x", "newest"}) {
      CAPTURE(wrong);
      Error e = test::thrownError([&] { parseTimelineChoice(wrong, "--target-timeline"); });
      CHECK(e.code() == ErrorCode::Usage);
      CHECK(test::what(e) == "--target-timeline '" + std::string(wrong) +
                                 "' is not latest, current or a timeline number");
      CHECK(e.hint() == test::Containing("tidemark info shows the timeline tree"));
    }
  }
  SUBCASE("a configuration key: the code given, Error(Config)") {
    Error e = test::thrownError(
        [&] { parseTimelineChoice("two", "drill.target-timeline", ErrorCode::Config); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(test::what(e) ==
          "drill.target-timeline 'two' is not latest, current or a timeline number");
  }
}
