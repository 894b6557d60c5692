// Unit tests of common/recovery/plan.h: the backup chosen for a target and the WAL a recovery
// needs, on a repository in memory.
#include "common/recovery/plan.h"

#include <doctest/doctest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <sstream>

#include "support/check.h"
#include "support/fake_repository.h"

using namespace tidemark;
using recovery::Target;
using recovery::TargetKind;
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
  t.time = *parseUtc(iso);
  return t;
}

recovery::RecoveryPlan planRecovery(test::FakeRepository& repository, const Target& target,
                                    const std::optional<std::string>& label = std::nullopt) {
  return recovery::planRecovery(repository.catalog(), target, label);
}

}  // namespace

TEST_CASE(
    "a recovery to the newest WAL needs the first segment of a timeline that began inside it") {
  Failover repository("0/A00028");
  SUBCASE("not archived yet: refused, naming it and the way out") {
    auto e = thrownError([&] { planRecovery(repository, Target{}); });
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == test::Containing("00000002000000000000000A is not in the repository yet"));
    CHECK(what(e) == test::Containing("last WAL of timeline 1 before the switch to timeline 2"));
    CHECK(e.hint() == test::Containing("pg_switch_wal()"));
  }
  SUBCASE("archived: the range runs on timeline 2") {
    repository.wal(2, 0xA, 0xB);
    auto plan = planRecovery(repository, Target{});
    CHECK(plan.lastSegment == 0xB);
    CHECK(plan.lastWal == "00000002000000000000000B");
    CHECK(plan.gaps.empty());
  }
  SUBCASE("a time target: only a warning (the target may lie before the switch)") {
    auto plan = planRecovery(repository, timeTarget("2026-11-01T00:05:00Z"));
    CHECK(plan.lastSegment == 0xA);
    REQUIRE(plan.warnings.size() == 1);
    CHECK(plan.warnings.front() == test::Containing("00000002000000000000000A"));
  }
  SUBCASE("an LSN target before the switch segment needs nothing of timeline 2") {
    Target t;
    t.kind = TargetKind::Lsn;
    t.lsn = 0x900000;
    auto plan = planRecovery(repository, t);
    CHECK(plan.lastSegment == 9);
    CHECK(plan.gaps.empty());
  }
}

TEST_CASE("a timeline that began on a segment boundary needs none of its own segments yet") {
  Failover repository("0/A00000");
  auto plan = planRecovery(repository, Target{});
  CHECK(plan.lastSegment == 9);
  CHECK(plan.lastWal == "000000010000000000000009");
  CHECK(plan.gaps.empty());
  // Nothing archived can show whether timeline 1 went on: said.
  REQUIRE(plan.warnings.size() == 1);
  CHECK(plan.warnings.front() ==
        test::Containing("timeline 1 was left at a segment boundary (0/A00000)"));
}

TEST_CASE(
    "planRecovery chooses the newest backup that ends before a time target, and refuses earlier "
    "ones") {
  test::FakeRepository repository;
  repository.wal(1, 2, 9);
  repository.backup("20261101T000000Z", 1, 0x200028, 0x300100);  // ends 2026-11-01T00:01:15Z
  repository.backup("20261103T000000Z", 1, 0x600028, 0x700100);  // ends 2026-11-03T00:01:15Z
  CHECK(planRecovery(repository, timeTarget("2026-11-02T00:00:00Z")).backup.label ==
        "20261101T000000Z");
  CHECK(planRecovery(repository, timeTarget("2026-11-03T00:01:15Z")).backup.label ==
        "20261103T000000Z");
  auto e = thrownError([&] { planRecovery(repository, timeTarget("2026-11-01T00:01:14Z")); });
  CHECK(e.code() == ErrorCode::InvalidInput);
  CHECK(what(e) == test::Containing("no complete backup ends before the target"));
}

TEST_CASE("a gap in the WAL is refused with no target and named") {
  test::FakeRepository repository;
  repository.wal(1, 2, 4);
  repository.wal(1, 6, 9);
  repository.backup("20261101T000000Z", 1, 0x200028, 0x300100);
  auto e = thrownError([&] { planRecovery(repository, Target{}); });
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
  auto e = thrownError([&] { planRecovery(repository, t); });
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
  auto plan = planRecovery(repository, Target{});
  CHECK(plan.backup.label == "20261101T000000Z");
  CHECK(plan.lastWal == "000000020000000000000009");
  REQUIRE(plan.warnings.size() == 2);
  CHECK(plan.warnings[0] == test::Containing("a backup is left out: "));
  CHECK(plan.warnings[0] == test::Containing("20261102T000000Z"));
  CHECK(plan.warnings[1] == test::Containing("the repository has no 00000002.history"));
}

TEST_CASE(
    "a damaged history of the newest timeline: refused for latest, naming --target-timeline") {
  test::FakeRepository repository;
  repository.wal(1, 2, 9);
  repository.history(2, "this is not a history file\n");
  repository.wal(2, 6, 7);
  repository.backup("20261101T000000Z", 1, 0x200028, 0x300100);
  Error e = thrownError([&] { planRecovery(repository, Target{}); });
  CHECK(e.code() == ErrorCode::Corrupt);
  CHECK(what(e) == test::Containing("00000002.history"));
  CHECK(e.hint() == test::Containing("or recover along another timeline with --target-timeline N"));
  Target one;
  one.timeline = *recovery::TimelineChoice::parse("1");
  CHECK(planRecovery(repository, one).lastWal == "000000010000000000000009");
}

TEST_CASE("planRecovery follows the timeline the target asks for, and the backups on its history") {
  // Timeline 1 ran to segment 9; timeline 2 branched off at 0/600000 (a point-in-time recovery)
  // and holds segments 6 and 7. B1 ended before the branch, B2 after it (on timeline 1 only).
  test::FakeRepository repository;
  repository.wal(1, 2, 9);
  repository.history(2, "1\t0/600000\tbefore 2026-11-02 00:00:00+00\n");
  repository.wal(2, 6, 7);
  repository.backup("20261101T000000Z", 1, 0x200028, 0x300100);
  repository.backup("20261103T000000Z", 1, 0x800028, 0x800100);
  SUBCASE("latest: both branches hold WAL past the fork, so the operator chooses") {
    Error e = thrownError([&] { planRecovery(repository, Target{}); });
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == test::Containing("the history of backup 20261101T000000Z has branched after "
                                      "it, and 2 branches hold WAL past the fork: timeline 1 "
                                      "(forks at 0/600000): newest WAL 000000010000000000000009"));
    CHECK(what(e) == test::Containing("timeline 2 (path 1 (until 0/600000) -> 2; forks at "
                                      "0/600000): newest WAL 000000020000000000000007"));
    CHECK(what(e) == test::Containing("'latest' would follow timeline 2"));
    CHECK(e.hint() == test::Containing("--target-timeline N"));
  }
  SUBCASE("latest: timeline 1 without WAL past the fork is continued by timeline 2") {
    test::FakeRepository pitr;
    pitr.wal(1, 2, 5);
    pitr.file("000000010000000000000006.partial");
    pitr.history(2, "1\t0/600000\tbefore 2026-11-02 00:00:00+00\n");
    pitr.wal(2, 6, 7);
    pitr.backup("20261101T000000Z", 1, 0x200028, 0x300100);
    auto plan = planRecovery(pitr, Target{});
    CHECK(plan.backup.label == "20261101T000000Z");
    CHECK(plan.history.timeline == 2);
    CHECK(plan.timelinePath == "1 (until 0/600000) -> 2");
    CHECK(plan.firstWal == "000000010000000000000002");
    CHECK(plan.lastWal == "000000020000000000000007");
    CHECK(plan.backupReason == "the newest complete backup");
    // Written as its number: PostgreSQL's 'latest' takes any higher timeline with a history file.
    CHECK(recovery::settingsTarget(Target{}, plan, false).timeline.text() == "2");
    CHECK(recovery::settingsTarget(Target{}, plan, true).timeline.text() == "latest");
  }
  SUBCASE("latest: a branch holding only its history file still counts (latest would follow it)") {
    repository.history(3, "1\t0/900000\tno recovery target specified\n");
    Error e = thrownError([&] { planRecovery(repository, Target{}, "20261103T000000Z"); });
    CHECK(what(e) == test::Containing("timeline 1 (forks at 0/900000): newest WAL "
                                      "000000010000000000000009"));
    CHECK(what(e) == test::Containing("timeline 3 (path 1 (until 0/900000) -> 3; forks at "
                                      "0/900000): no WAL of its own stored"));
  }
  SUBCASE("latest: a target that stops before the first fork reads the same WAL on every branch") {
    Target t;
    t.kind = TargetKind::Lsn;
    t.lsn = 0x600000;
    t.exclusive = true;  // stops before the first record at or after the fork
    auto plan = planRecovery(repository, t);
    CHECK(plan.history.timeline == 1);  // the lowest branch: full segments up to the fork
    t.lsn = 0x600001;
    CHECK(thrownError([&] { planRecovery(repository, t); }).code() == ErrorCode::InvalidInput);
    // Inclusive: replays the first record at or after the target, which may be the fork's.
    t.lsn = 0x5FFFFF;
    t.exclusive = false;
    CHECK(thrownError([&] { planRecovery(repository, t); }).code() == ErrorCode::InvalidInput);
    Target immediate;
    immediate.kind = TargetKind::Immediate;
    CHECK(planRecovery(repository, immediate).backup.label == "20261101T000000Z");
  }
  SUBCASE("latest: a timeline whose history cannot be read may be a branch: refused") {
    repository.wal(3, 8, 9);  // no 00000003.history
    Error e = thrownError([&] { planRecovery(repository, Target{}, "20261103T000000Z"); });
    CHECK(what(e) == test::Containing("cannot tell which timelines a recovery from backup "
                                      "20261103T000000Z can end on: timeline 3 has WAL but the "
                                      "repository has no 00000003.history"));
    CHECK(e.hint() == test::Containing("--target-timeline N"));
  }
  SUBCASE("a standby keeps PostgreSQL's 'latest', with a warning that the history branched") {
    auto plan = recovery::planRecovery(repository.catalog(), Target{}, std::nullopt, {}, true);
    CHECK(plan.history.timeline == 2);
    REQUIRE_FALSE(plan.warnings.empty());
    CHECK(plan.warnings.front() == test::Containing("has branched after it (timelines 1, 2): a "
                                                    "standby follows"));
  }
  SUBCASE("current: the newest backup, on its own timeline") {
    Target t;
    t.timeline = *recovery::TimelineChoice::parse("current");
    auto plan = planRecovery(repository, t);
    CHECK(plan.backup.label == "20261103T000000Z");
    CHECK(plan.history.timeline == 1);
    CHECK(plan.lastWal == "000000010000000000000009");
  }
  SUBCASE("a timeline number: only backups on its history") {
    Target t;
    t.timeline = *recovery::TimelineChoice::parse("1");
    CHECK(planRecovery(repository, t).backup.label == "20261103T000000Z");
    t.timeline = *recovery::TimelineChoice::parse("2");
    CHECK(planRecovery(repository, t).backup.label == "20261101T000000Z");
  }
  SUBCASE("--backup of a backup after the fork follows its own branch, with a warning") {
    auto plan = planRecovery(repository, Target{}, "20261103T000000Z");
    CHECK(plan.history.timeline == 1);
    CHECK(plan.lastWal == "000000010000000000000009");
    REQUIRE(plan.warnings.size() == 1);
    CHECK(plan.warnings.front() ==
          "the stanza's newest timeline, 2, does not pass through backup 20261103T000000Z: the "
          "recovery follows timeline 1; to follow timeline 2, choose an earlier backup");
  }
  SUBCASE("--backup of a backup that is not on the target timeline's history is refused") {
    Target t;
    t.timeline = *recovery::TimelineChoice::parse("2");
    Error e = thrownError([&] { planRecovery(repository, t, "20261103T000000Z"); });
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) ==
          "backup 20261103T000000Z (timeline 1, ending at 0/800100) is not on the history of "
          "timeline 2");
    CHECK(e.hint() == test::Containing("--target-timeline"));
  }
  SUBCASE("a time target: the newest backup before it on the wanted history") {
    Target t = timeTarget("2026-11-04T00:00:00Z");
    // With latest, the backup on timeline 2's history has branched: a time cannot be placed
    // before the fork, so the operator chooses.
    CHECK(what(thrownError([&] { planRecovery(repository, t); })) ==
          test::Containing("has branched after it"));
    t.timeline = *recovery::TimelineChoice::parse("2");
    CHECK(planRecovery(repository, t).backup.label == "20261101T000000Z");
    t.timeline = *recovery::TimelineChoice::parse("1");
    CHECK(planRecovery(repository, t).backup.label == "20261103T000000Z");
  }
}

TEST_CASE("a timeline named for a recovery to the end that a later one continues: a warning") {
  // Timeline 1 was left for timeline 2 at 0/600000 (a promotion) and wrote nothing after it.
  test::FakeRepository repository;
  repository.wal(1, 2, 5);
  repository.file("000000010000000000000006.partial");
  repository.history(2, "1\t0/600000\tno recovery target specified\n");
  repository.wal(2, 6, 7);
  repository.backup("20261101T000000Z", 1, 0x200028, 0x300100);
  Target t;
  t.timeline = *recovery::TimelineChoice::parse("1");
  auto plan = planRecovery(repository, t);
  CHECK(plan.history.timeline == 1);
  REQUIRE(plan.warnings.size() == 1);
  CHECK(plan.warnings.front() ==
        "timeline 1 was left at 0/600000 and timeline 2 continues it: the recovery ends where "
        "timeline 1 was left; to reach the newer WAL, name it with --target-timeline");
  SUBCASE("not for the timeline that continues it, nor for a target on the way") {
    t.timeline = *recovery::TimelineChoice::parse("2");
    CHECK(planRecovery(repository, t).warnings.empty());
    Target time = timeTarget("2026-11-01T12:00:00Z");
    time.timeline = *recovery::TimelineChoice::parse("1");
    CHECK(planRecovery(repository, time).warnings.empty());
  }
  SUBCASE("not for a timeline that went on after the fork: a branch of its own") {
    repository.wal(1, 6, 8);
    CHECK(planRecovery(repository, t).warnings.empty());
  }
}

TEST_CASE(
    "at debug level, the plan logs each backup it considered and why it took or passed it "
    "over") {
  // Timeline 2 branched off timeline 1 at 0/600000; timeline 1 went on. 1 November: before the
  // fork; 2 November: on timeline 2; 3 November: on timeline 1 after the fork.
  test::FakeRepository repository;
  repository.wal(1, 2, 9);
  repository.history(2, "1\t0/600000\tbefore 2026-11-02 00:00:00+00\n");
  repository.wal(2, 6, 7);
  repository.backup("20261101T000000Z", 1, 0x200028, 0x300100);
  repository.backup("20261103T000000Z", 1, 0x800028, 0x800100);
  repository.backup("20261102T000000Z", 2, 0x700028, 0x700100);
  std::ostringstream lines;
  auto logger = std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_st>(lines));
  logger->set_pattern("%v");
  logger->set_level(spdlog::level::debug);
  struct Restore {
    ~Restore() { spdlog::set_default_logger(previous); }
    std::shared_ptr<spdlog::logger> previous;
  } restore{spdlog::default_logger()};
  spdlog::set_default_logger(logger);

  SUBCASE("a time target on timeline 1: a backup of another timeline, one after the target") {
    Target t = timeTarget("2026-11-02T12:00:00Z");
    t.timeline = *recovery::TimelineChoice::parse("1");
    CHECK(planRecovery(repository, t).backup.label == "20261101T000000Z");
    CHECK(lines.str() ==
          "choosing the backup for time 2026-11-02T12:00:00Z (2026-11-02 12:00:00.000000+00 "
          "UTC): 3 complete backups, newest first; the first that ends before the target, on "
          "the history of timeline 1 (the target timeline) is taken\n"
          "backup 20261103T000000Z (timeline 1, ended 2026-11-03T00:01:15Z at 0/800100): passed "
          "over: it ends after the target\n"
          "backup 20261102T000000Z (timeline 2, ended 2026-11-02T00:01:15Z at 0/700100): passed "
          "over: timeline 2 is not timeline 1 nor an ancestor of it\n"
          "backup 20261101T000000Z (timeline 1, ended 2026-11-01T00:01:15Z at 0/300100): chosen: "
          "the newest complete backup that ends before the target\n"
          "recovery follows timeline 1 (target timeline 1): 1\n");
  }
  SUBCASE("on timeline 2's history: a backup of timeline 1 after the fork is on another branch") {
    Target t = timeTarget("2026-11-03T12:00:00Z");
    t.timeline = *recovery::TimelineChoice::parse("2");
    CHECK(planRecovery(repository, t).backup.label == "20261102T000000Z");
    CHECK(lines.str() ==
          test::Containing("backup 20261103T000000Z (timeline 1, ended 2026-11-03T00:01:15Z at "
                           "0/800100): passed over: it ends after timeline 1 was left at "
                           "0/600000 for timeline 2's history: on another branch\n"));
    CHECK(lines.str() == test::Containing("recovery follows timeline 2 (target timeline 2): 2\n"));
  }
  SUBCASE("latest, no target: the highest-numbered timeline's history") {
    CHECK(planRecovery(repository, Target{}).backup.label == "20261102T000000Z");
    CHECK(lines.str() ==
          test::Containing("the first on the history of timeline 2 (target timeline latest: the "
                           "stanza's highest-numbered) is taken\n"));
    CHECK(lines.str() ==
          test::Containing("backup 20261102T000000Z (timeline 2, ended 2026-11-02T00:01:15Z at "
                           "0/700100): chosen: the newest complete backup\n"));
  }
  SUBCASE("--backup") {
    Target t;
    t.timeline = *recovery::TimelineChoice::parse("current");
    planRecovery(repository, t, "20261103T000000Z");
    CHECK(lines.str() ==
          test::Containing("backup 20261103T000000Z (timeline 1, ended 2026-11-03T00:01:15Z at "
                           "0/800100): chosen with --backup\n"));
  }
  SUBCASE("not at debug level: nothing") {
    logger->set_level(spdlog::level::info);
    planRecovery(repository, Target{});
    CHECK(lines.str().empty());
  }
}

TEST_CASE("planRecovery checks a chosen backup against the target and says why it chose one") {
  test::FakeRepository repository;
  repository.wal(1, 2, 9);
  repository.backup("20261101T000000Z", 1, 0x200028, 0x300100);
  repository.backup("20261103T000000Z", 1, 0x600028, 0x700100);
  SUBCASE("a backup that ends after the target is refused, naming both") {
    Error e = thrownError(
        [&] { planRecovery(repository, timeTarget("2026-11-02T00:00:00Z"), "20261103T000000Z"); });
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) ==
          test::Containing(
              "backup 20261103T000000Z ends at 2026-11-03T00:01:15Z (0/700100), after the target"));
  }
  SUBCASE("an LSN target before a backup's end rules it out") {
    Target t;
    t.kind = TargetKind::Lsn;
    t.lsn = 0x500000;
    CHECK(planRecovery(repository, t).backup.label == "20261101T000000Z");
  }
  SUBCASE("a label that names no complete backup is refused") {
    Error e = thrownError([&] { planRecovery(repository, Target{}, "20261102T000000Z"); });
    CHECK(what(e) == "stanza 'main' has no complete backup '20261102T000000Z'");
  }
  SUBCASE("transaction and restore point targets take the newest backup and say so") {
    Target t;
    t.kind = TargetKind::Xid;
    t.xid = 742;
    t.text = "742";
    auto plan = planRecovery(repository, t);
    CHECK(plan.backup.label == "20261103T000000Z");
    CHECK(plan.backupReason ==
          test::Containing("cannot tell which backup precedes a transaction id"));
  }
  SUBCASE("an immediate target needs the backup's own WAL only") {
    Target t;
    t.kind = TargetKind::Immediate;
    auto plan = planRecovery(repository, t);
    CHECK(plan.firstSegment == 6);
    CHECK(plan.lastSegment == 7);
  }
  SUBCASE("a stanza without any backup cannot be planned") {
    test::FakeRepository empty;
    empty.wal(1, 2, 3);
    Error e = thrownError([&] { planRecovery(empty, Target{}); });
    CHECK(what(e) == "stanza 'main' has no complete backup");
    CHECK(e.hint() == test::Containing("tidemark-basebackup"));
  }
}

TEST_CASE("describePlan shows the backup, the target, the timeline path and the WAL") {
  test::FakeRepository repository;
  repository.wal(1, 2, 9);
  repository.backup("20261101T000000Z", 1, 0x200028, 0x300100);
  Target t = timeTarget("2026-11-02T00:00:00Z");
  t.text = "2026-11-02 01:00:00+01";
  t.action = recovery::TargetAction::Promote;
  std::string text = recovery::describePlan(planRecovery(repository, t), t);
  CHECK(text == test::Containing(
                    "backup:    20261101T000000Z (timeline 1, 0/200028 to 0/300100, ended "
                    "2026-11-01T00:01:15Z, 30.0 MiB): the newest complete backup that ends before "
                    "the target\n"));
  CHECK(text == test::Containing(
                    "target:    time 2026-11-02 01:00:00+01 (2026-11-02 00:00:00.000000+00 UTC) "
                    "(inclusive), then promote\n"));
  CHECK(text ==
        test::Containing("timeline:  1 (recovery_target_timeline = 1, resolved from latest)\n"));
  CHECK(recovery::describePlan(planRecovery(repository, t), t, true) ==
        test::Containing("timeline:  1 (recovery_target_timeline = latest)\n"));
  CHECK(text == test::Containing(
                    "WAL:       000000010000000000000002 to 000000010000000000000009 (8 segments): "
                    "all in the repository\n"));
}

TEST_CASE("after a stanza-upgrade the target chooses the generation, never a failed plan") {
  // Generation 1: WAL 2 to 9, a backup on 1 November; generation 2 (after pg_upgrade): WAL 10 to
  // 14 under the same names' numbering, a backup on 3 November.
  test::FakeRepository repository;
  repository.wal(1, 2, 9);
  repository.backup("20261101T000000Z", 1, 0x200028, 0x300100);
  repository.upgrade(7400000000000000001ULL);
  repository.wal(1, 10, 14);
  repository.backup("20261103T000000Z", 1, 0xA00028, 0xB00100);
  auto generations = repository.catalogs();
  REQUIRE(generations.size() == 2);
  auto chosen = [&](const Target& target, const std::optional<std::string>& label = {}) {
    return recovery::generationFor(generations, target, label).generation().number;
  };
  CHECK(chosen(Target{}) == 2);
  CHECK(chosen(timeTarget("2026-11-04T00:00:00Z")) == 2);
  CHECK(chosen(timeTarget("2026-11-02T00:00:00Z")) == 1);  // before generation 2's backup
  CHECK(chosen(Target{}, "20261101T000000Z") == 1);
  CHECK(chosen(timeTarget("2026-10-01T00:00:00Z")) ==
        1);  // before every backup: the oldest says so

  auto plan = recovery::planRecovery(generations[0], timeTarget("2026-11-02T00:00:00Z"));
  CHECK(plan.generation == 1);
  CHECK(plan.backup.label == "20261101T000000Z");
  auto newest = recovery::planRecovery(generations[1], Target{});
  CHECK(newest.generation == 2);
  CHECK(newest.lastWal == "00000001000000000000000E");
  CHECK(recovery::describePlan(newest, Target{}) == test::Containing("generation: 2"));

  SUBCASE("a gap in the newest generation is reported, not recovered around") {
    repository.storage.remove(
        repo::walObject("main", 2, *pg::parseWalName("00000001000000000000000B")));
    generations = repository.catalogs();
    const auto& catalog = recovery::generationFor(generations, Target{});
    CHECK(catalog.generation().number == 2);
    CHECK(thrownError([&] { recovery::planRecovery(catalog, Target{}); }).code() ==
          ErrorCode::InvalidInput);
  }
}

TEST_CASE("a plan warns when another generation received WAL later: a rolled-back upgrade") {
  repo::StanzaInfo stanza{
      .systemId = 7000000000000000001ULL, .pgVersion = 15, .walSegmentSize = kSegmentSize};
  auto catalogWith = [&](int number, std::int64_t newestWal) {
    repo::WalCatalog wal;
    wal.segmentSize = kSegmentSize;
    wal.segments[1][5] = {.storedSize = 100, .modified = newestWal - 60};
    wal.segments[1][6] = {.storedSize = 100, .modified = newestWal};
    return recovery::Catalog(
        "main", stanza, {}, {}, wal,
        [](std::uint32_t t) {
          return pg::TimelineHistory{t, {}};
        },
        repo::Generation{.number = number,
                         .systemId = stanza.systemId + std::uint64_t(number),
                         .pgVersion = 15,
                         .walSegmentSize = kSegmentSize});
  };
  std::vector<recovery::Catalog> generations{catalogWith(1, 1'800'000'000),
                                             catalogWith(2, 1'700'000'000)};
  // Generation 1 (the old cluster, running again) archived after generation 2's newest WAL.
  auto warnings = recovery::generationWarnings(generations, generations[1]);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0] == test::Containing("generation 1 of the stanza"));
  CHECK(warnings[0] == test::Containing("--backup"));
  CHECK(recovery::generationWarnings(generations, generations[0]).empty());
}

TEST_CASE("WAL the safety valve dropped: a time target after the drop is refused and named") {
  test::FakeRepository repository;
  repository.wal(1, 2, 4);
  repository.wal(1, 8, 9);
  repository.backup("20261101T000000Z", 1, 0x200028, 0x300100);  // ends 2026-11-01 00:01:15
  const std::uint64_t systemId = repository.catalog().generation().systemId;
  // Segments 5 to 7 were dropped between 01:00 and 01:02.
  const std::vector<repo::GapRecord> dropped{{.systemId = systemId,
                                              .first = "000000010000000000000005",
                                              .last = "000000010000000000000007",
                                              .files = 3,
                                              .firstDroppedMs = 1793494800000,
                                              .lastDroppedMs = 1793494920000}};
  auto refused = thrownError([&] {
    recovery::planRecovery(repository.catalog(), timeTarget("2026-11-01T01:30:00Z"), std::nullopt,
                           dropped);
  });
  CHECK(refused.code() == ErrorCode::InvalidInput);
  CHECK(what(refused) == test::Containing("lies after a gap in the archive"));
  CHECK(what(refused) == test::Containing("safety valve"));
  // Before the drop: planned, the gap named (PostgreSQL stops there if the target is inside it).
  auto plan = recovery::planRecovery(repository.catalog(), timeTarget("2026-11-01T00:30:00Z"),
                                     std::nullopt, dropped);
  CHECK(plan.backup.label == "20261101T000000Z");
  bool named = false;
  for (const auto& w : plan.warnings)
    named |= w.find("safety valve") != std::string::npos;
  CHECK(named);
  // A record of another cluster accounts for nothing.
  auto other = dropped;
  other[0].systemId = systemId - 1;
  CHECK_NOTHROW(recovery::planRecovery(repository.catalog(), timeTarget("2026-11-01T01:30:00Z"),
                                       std::nullopt, other));
}
