// Unit tests of recover/plan.h: the backup chosen for a target and the WAL a recovery needs,
// on a repository in memory.
#include "recover/plan.h"

#include <doctest/doctest.h>

#include "support/check.h"
#include "support/fake_repository.h"

using namespace tidemark;
using recover::planRecovery;
using recover::Target;
using recover::TargetKind;
using test::kSegmentSize;
using test::thrownError;
using test::what;

namespace {

// Timeline 1 holds segments 2 to 9 and 0000000100000000000000A.partial; one backup on it.
struct Failover : test::FakeRepository {
  explicit Failover(const std::string& switchpoint) {
    wal(1, 2, 9);
    file("00000001000000000000000A.partial");
    history(2, "1\t" + switchpoint + "\tno recovery target specified\n");
    backup("20261101T000000Z", 1, 0x200028, 0x300100);
  }
};

Target timeTarget(const std::string& iso) {
  Target t;
  t.kind = TargetKind::Time;
  t.text = iso;
  t.time = recover::parseIsoUtc(iso);
  return t;
}

}  // namespace

TEST_CASE(
    "a recovery to the newest WAL needs the first segment of a timeline that began inside it") {
  Failover repository("0/A00028");
  SUBCASE("not archived yet: refused, naming it and the way out") {
    auto e = thrownError([&] { planRecovery(repository.storage, "main", Target{}, std::nullopt); });
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == test::Containing("00000002000000000000000A is not in the repository yet"));
    CHECK(what(e) == test::Containing("last WAL of timeline 1 before the switch to timeline 2"));
    CHECK(e.hint() == test::Containing("pg_switch_wal()"));
  }
  SUBCASE("archived: the range runs on timeline 2") {
    repository.wal(2, 0xA, 0xB);
    auto plan = planRecovery(repository.storage, "main", Target{}, std::nullopt);
    CHECK(plan.lastSegment == 0xB);
    CHECK(plan.lastWal == "00000002000000000000000B");
    CHECK(plan.gaps.empty());
  }
  SUBCASE("a time target: only a warning (the target may lie before the switch)") {
    auto plan =
        planRecovery(repository.storage, "main", timeTarget("2026-11-01T00:05:00Z"), std::nullopt);
    CHECK(plan.lastSegment == 0xA);
    REQUIRE(plan.warnings.size() == 1);
    CHECK(plan.warnings.front() == test::Containing("00000002000000000000000A"));
  }
  SUBCASE("an LSN target before the switch segment needs nothing of timeline 2") {
    Target t;
    t.kind = TargetKind::Lsn;
    t.lsn = 0x900000;
    auto plan = planRecovery(repository.storage, "main", t, std::nullopt);
    CHECK(plan.lastSegment == 9);
    CHECK(plan.gaps.empty());
  }
}

TEST_CASE("a timeline that began on a segment boundary needs none of its own segments yet") {
  Failover repository("0/A00000");
  auto plan = planRecovery(repository.storage, "main", Target{}, std::nullopt);
  CHECK(plan.lastSegment == 9);
  CHECK(plan.lastWal == "000000010000000000000009");
  CHECK(plan.gaps.empty());
}

TEST_CASE(
    "planRecovery chooses the newest backup that ends before a time target, and refuses earlier "
    "ones") {
  test::FakeRepository repository;
  repository.wal(1, 2, 9);
  repository.backup("20261101T000000Z", 1, 0x200028, 0x300100);  // ends 2026-11-01T00:01:15Z
  repository.backup("20261103T000000Z", 1, 0x600028, 0x700100);  // ends 2026-11-03T00:01:15Z
  CHECK(planRecovery(repository.storage, "main", timeTarget("2026-11-02T00:00:00Z"), std::nullopt)
            .backup.label == "20261101T000000Z");
  CHECK(planRecovery(repository.storage, "main", timeTarget("2026-11-03T00:01:15Z"), std::nullopt)
            .backup.label == "20261103T000000Z");
  auto e = thrownError([&] {
    planRecovery(repository.storage, "main", timeTarget("2026-11-01T00:01:14Z"), std::nullopt);
  });
  CHECK(e.code() == ErrorCode::InvalidInput);
  CHECK(what(e) == test::Containing("no complete backup ends before the target"));
}

TEST_CASE("a gap in the WAL is refused with no target and named") {
  test::FakeRepository repository;
  repository.wal(1, 2, 4);
  repository.wal(1, 6, 9);
  repository.backup("20261101T000000Z", 1, 0x200028, 0x300100);
  auto e = thrownError([&] { planRecovery(repository.storage, "main", Target{}, std::nullopt); });
  CHECK(e.code() == ErrorCode::InvalidInput);
  CHECK(what(e) == test::Containing("000000010000000000000005 is missing"));
}

TEST_CASE("an LSN target far beyond the archive is one gap, found at once") {
  test::FakeRepository repository;
  repository.wal(1, 2, 9);
  repository.backup("20261101T000000Z", 1, 0x200028, 0x300100);
  Target t;
  t.kind = TargetKind::Lsn;
  t.lsn = 0xFFFFFFFF00000000ULL;
  auto e = thrownError([&] { planRecovery(repository.storage, "main", t, std::nullopt); });
  CHECK(e.code() == ErrorCode::InvalidInput);
  CHECK(what(e) ==
        test::Containing(
            "00000001000000000000000A to 00000001FFFFFFFF00000000 (17592186040311 files)"));
  CHECK(what(e) == test::Containing("the target WAL location FFFFFFFF/0 is unreachable"));
}

TEST_CASE(
    "a damaged backup.json is left out with a warning, and a missing history means no parents") {
  test::FakeRepository repository;
  repository.wal(2, 2, 9);
  repository.backup("20261101T000000Z", 2, 0x200028, 0x300100);  // timeline 2, no 00000002.history
  repository.storage.setObject(repo::backupInfoFile("main", "20261102T000000Z"),
                               test::FakeRepository::text("{"));
  auto plan = planRecovery(repository.storage, "main", Target{}, std::nullopt);
  CHECK(plan.backup.label == "20261101T000000Z");
  CHECK(plan.lastWal == "000000020000000000000009");
  REQUIRE(plan.warnings.size() == 2);
  CHECK(plan.warnings[0] == test::Containing("a backup is left out: "));
  CHECK(plan.warnings[0] == test::Containing("20261102T000000Z"));
  CHECK(plan.warnings[1] == test::Containing("the repository has no 00000002.history"));
}
