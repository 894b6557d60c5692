// Unit tests of common/recovery/target.h: how a target reads in the plan and in messages.
#include "common/recovery/target.h"

#include <doctest/doctest.h>

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
