// Unit tests of common/recovery/last_commit.h: when a time target lies beyond the archive's last
// commit, as PostgreSQL decides it (recoveryStopsBefore), and the refusal's words.
#include "common/recovery/last_commit.h"

#include <doctest/doctest.h>

#include "support/check.h"

using namespace tidemark;
using recovery::Target;
using recovery::TargetKind;
using test::thrownError;
using test::what;

namespace {

Target at(const std::string& text, bool exclusive = false) {
  Target t;
  t.kind = TargetKind::Time;
  t.text = text;
  t.time = parseTimestamp(text, "--target-time");
  t.exclusive = exclusive;
  return t;
}

recovery::LastCommit commitAt(const std::string& text) {
  return {parseTimestamp(text, "test"), 0x3000060, "COMMIT", "000000010000000000000003"};
}

}  // namespace

TEST_CASE("a time target is reached when a commit or abort lies after it (at it, exclusive)") {
  auto last = commitAt("2026-12-04 10:42:07.500000+00");
  CHECK(recovery::reaches(last, at("2026-12-04 10:42:07.499999+00")));
  CHECK_FALSE(recovery::reaches(last, at("2026-12-04 10:42:07.500000+00")));
  CHECK(recovery::reaches(last, at("2026-12-04 10:42:07.500000+00", true)));
  CHECK_FALSE(recovery::reaches(last, at("2026-12-04 10:42:07.500001+00", true)));
}

TEST_CASE("refuseUnreachableTime names the last commit and both ways forward") {
  recovery::ArchiveEnd end{commitAt("2026-12-04 10:42:07.500000+00"), ""};
  Error e =
      thrownError([&] { recovery::refuseUnreachableTime(end, at("2026-12-04 10:50:00+00")); });
  CHECK(e.code() == ErrorCode::InvalidInput);
  CHECK(what(e) == test::Containing("is at or after the last commit in the archive "
                                    "(2026-12-04 10:42:07.500000+00 at 0/3000060 in "
                                    "000000010000000000000003, COMMIT)"));
  CHECK(what(e) == test::Containing("recovery ended before configured recovery target"));
  CHECK(e.hint() == test::Containing("choose a target before 2026-12-04 10:42:07.500000+00"));
  CHECK(e.hint() == test::Containing("no target"));
  // Before it, unknown, or another kind of target: nothing to refuse.
  recovery::refuseUnreachableTime(end, at("2026-12-04 10:42:07+00"));
  recovery::refuseUnreachableTime(recovery::ArchiveEnd{std::nullopt, "why"},
                                  at("2026-12-04 10:50:00+00"));
  recovery::refuseUnreachableTime(end, Target{});
}
