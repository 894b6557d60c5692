// Unit tests of common/recovery/last_commit.h: when a time target lies beyond the archive's last
// commit, as PostgreSQL decides it (recoveryStopsBefore), and the refusal's words.
#include "common/recovery/last_commit.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>

#include "support/check.h"
#include "support/fake_repository.h"
#include "support/segment.h"

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
  // With a gap after the backup, the last commit before it, the missing file, and no advice to
  // replay "everything" (that stops at the gap too).
  Error gap = thrownError([&] {
    recovery::refuseUnreachableTime(
        end, at("2026-12-04 10:50:00+00"),
        "000000010000000000000008 to 00000001000000000000000A (3 files)");
  });
  CHECK(gap.code() == ErrorCode::InvalidInput);
  CHECK(what(gap) == test::Containing("is at or after the last commit before a gap in the "
                                      "archived WAL (2026-12-04 10:42:07.500000+00 at "
                                      "0/3000060 in 000000010000000000000003, COMMIT; missing: "
                                      "000000010000000000000008 to 00000001000000000000000A (3 "
                                      "files))"));
  CHECK(gap.hint() == test::Containing("choose a target before 2026-12-04 10:42:07.500000+00"));
  CHECK(gap.hint() == test::Containing("put the missing WAL back into the archive"));
  CHECK(gap.hint().find("no target") == std::string::npos);
  // Before it, unknown, or another kind of target: nothing to refuse.
  recovery::refuseUnreachableTime(end, at("2026-12-04 10:42:07+00"));
  recovery::refuseUnreachableTime(recovery::ArchiveEnd{std::nullopt, "why"},
                                  at("2026-12-04 10:50:00+00"));
  recovery::refuseUnreachableTime(end, Target{});
}

TEST_CASE("lastCommit runs the pg_waldump of the directory given when it holds one") {
  // Segment 2 of timeline 1, stored as an object (lastCommit fetches and verifies it).
  test::FakeRepository repository;
  const std::string name = pg::segmentFileName(1, 2, test::kSegmentSize);
  const std::string object = repo::walObject("main", 1, *pg::parseWalName(name));
  repo::ObjectWriter writer(repository.storage.newWrite(object, {}), object,
                            {.compress = io::CompressType::None});
  writer.write(io::Buffer(test::kSegmentSize, 0));
  writer.close();
  REQUIRE(writer.commit());
  const recovery::Catalog catalog = repository.catalog();
  const pg::TimelineHistory history{1, {}};
  // PostgreSQL 99 is installed nowhere: only a pg_waldump in the directory given is found.
  test::TempDir bin;
  test::writeFile(
      bin / "pg_waldump",
      "#!/bin/sh\necho 'rmgr: Transaction len (rec/tot):     34/    34, tx:        717, "
      "lsn: 0/00200140, prev 0/00200100, desc: COMMIT 2026-12-04 18:14:13.791870 "
      "UTC'\n");
  REQUIRE(::chmod((bin / "pg_waldump").c_str(), 0755) == 0);
  recovery::ArchiveEnd end =
      recovery::lastCommit(repository.handle(), catalog, history, 2, 2, 99, bin.path());
  REQUIRE(end.commit);
  CHECK(end.commit->segment == name);
  CHECK(end.commit->lsn == 0x200140);
  {
    // A stop signal is no reason the last commit is unknown: the command stops (pg_waldump given,
    // so that nothing before lastCommit's own catch runs a program).
    const test::StopNoted noted(SIGINT);
    CHECK(test::thrownError([&] {
            (void)recovery::lastCommit(repository.handle(), catalog, history, 2, 2,
                                       bin / "pg_waldump");
          }).code() == ErrorCode::Interrupted);
  }
  end = recovery::lastCommit(repository.handle(), catalog, history, 2, 2, 99);
  CHECK_FALSE(end.commit);
  CHECK(end.unknown == test::Containing("pg_waldump of PostgreSQL 99 is not installed here "
                                        "(looked in /usr/lib/postgresql/99/bin"));
  // One that says it is of another version is passed over.
  test::TempDir other;
  test::writeFile(other / "pg_waldump", "#!/bin/sh\necho 'pg_waldump (PostgreSQL) 16.2'\n");
  REQUIRE(::chmod((other / "pg_waldump").c_str(), 0755) == 0);
  end = recovery::lastCommit(repository.handle(), catalog, history, 2, 2, 99, other.path());
  CHECK_FALSE(end.commit);
  CHECK(end.unknown == test::Containing("pg_waldump of PostgreSQL 99 is not installed here"));
  // A directory without one: named among the places looked in.
  test::TempDir empty;
  end = recovery::lastCommit(repository.handle(), catalog, history, 2, 2, 99, empty.path());
  CHECK_FALSE(end.commit);
  CHECK(end.unknown ==
        test::Containing("(looked in '" + empty.path() + "', /usr/lib/postgresql/99/bin"));
}
