// Unit tests of common/recovery/catalog.h: the recovery model on repositories in memory (what a
// stanza holds, and which files a recovery along a timeline's history reads).
#include "common/recovery/catalog.h"

#include <doctest/doctest.h>

#include "common/base/error.h"
#include "common/io/hash.h"
#include "common/repo/keys.h"
#include "support/check.h"
#include "support/fake_repository.h"

using namespace tidemark;
using recovery::Catalog;
using recovery::WalGap;
using test::Containing;
using test::kSegmentSize;
using test::thrownError;
using test::what;

namespace {

// Timeline 1: segments 2-9 (5 missing) and 0000000100000000000000A.partial; promoted to timeline 2
// at 0/A00028 (inside segment A); timeline 2: segments A-C. Timeline 3 branched from timeline 1 at
// 0/800000 (a point-in-time recovery back to segment 8): segments 8-9 of its own.
struct Branches : test::FakeRepository {
  Branches() {
    wal(1, 2, 4);
    wal(1, 6, 9);
    file("00000001000000000000000A.partial");
    history(2, "1\t0/A00028\tno recovery target specified\n");
    wal(2, 0xA, 0xC);
    history(3, "1\t0/800000\tbefore 2026-11-02 00:00:00+00\n");
    wal(3, 8, 9);
    backup("20261101T000000Z", 1, 0x200028, 0x300100);
    backup("20261102T000000Z", 1, 0x600028, 0x700100);
  }
};

std::vector<std::string> names(const std::vector<WalGap>& gaps) {
  std::vector<std::string> out;
  for (const auto& gap : gaps)
    out.push_back(gap.describe());
  return out;
}

}  // namespace

TEST_CASE("Catalog::load reads what the stanza holds, once") {
  Branches repository;
  Catalog catalog = repository.catalog();
  CHECK(catalog.name() == "main");
  CHECK(catalog.stanza().systemId == 18446744073709551615ULL);
  CHECK(catalog.segmentSize() == kSegmentSize);
  REQUIRE(catalog.backups().size() == 2);
  CHECK(catalog.backups()[0].label == "20261101T000000Z");
  CHECK(catalog.findBackup("20261102T000000Z") == &catalog.backups()[1]);
  CHECK(catalog.findBackup("20261103T000000Z") == nullptr);
  CHECK(catalog.timelines() == std::set<std::uint32_t>{1, 2, 3});
  CHECK(catalog.hasHistoryFile(2));
  CHECK_FALSE(catalog.hasHistoryFile(1));
  SUBCASE("a stanza without stanza.json has no catalog") {
    test::MemoryStorage empty;
    CHECK_FALSE(Catalog::load(repo::Repository(empty, "main")).has_value());
  }
  SUBCASE("a damaged backup.json is left out and said why; the others stay usable") {
    repository.storage.setObject(repo::backupInfoFile("main", "20261103T000000Z"),
                                 test::FakeRepository::text("{"));
    Catalog damaged = repository.catalog();
    CHECK(damaged.backups().size() == 2);
    REQUIRE(damaged.damagedBackups().size() == 1);
    CHECK(damaged.damagedBackups()[0] ==
          Containing("20261103T000000Z/backup.json' is not a valid backup.json"));
  }
  SUBCASE(
      "a backup.json of another segment size is left out as damaged: every range uses the "
      "stanza's") {
    repo::BackupInfo other = repository.backup("20261103T000000Z", 1, 0x800028, 0x900100);
    other.walSegmentSize = 16u << 20;
    repository.storage.setObject(repo::backupInfoFile("main", other.label),
                                 test::FakeRepository::text(other.toJson()));
    Catalog damaged = repository.catalog();
    CHECK(damaged.backups().size() == 2);
    REQUIRE(damaged.damagedBackups().size() == 1);
    CHECK(damaged.damagedBackups()[0] ==
          "backup 20261103T000000Z records 16777216 byte WAL segments, but stanza 'main' has "
          "1048576 byte segments");
  }
  SUBCASE("a backup without backup.json is incomplete: not in the catalog") {
    repository.storage.setObject(repo::backupObject("main", "20261103T000000Z", "base.tar"),
                                 io::Buffer(10, 'x'));
    CHECK(repository.catalog().backups().size() == 2);
  }
}

TEST_CASE(
    "Catalog::history reads history files when asked, and takes a missing one as no parents") {
  Branches repository;
  Catalog catalog = repository.catalog();
  CHECK(catalog.history(1).parents.empty());
  const pg::TimelineHistory& two = catalog.history(2);
  REQUIRE(two.parents.size() == 1);
  CHECK(two.parents[0].switchpoint == 0xA00028);
  CHECK(&catalog.history(2) == &two);  // cached
  SUBCASE("a timeline above 1 without a .history file: no parents, as PostgreSQL takes it") {
    repository.wal(5, 2, 3);
    Catalog withFive = repository.catalog();
    CHECK_FALSE(withFive.hasHistoryFile(5));
    CHECK(withFive.history(5).parents.empty());
    CHECK(withFive.history(5).timeline == 5);
  }
  SUBCASE("a damaged history file is Corrupt, naming it") {
    repository.history(4, "not a history\n");
    Error e = thrownError([&] { repository.catalog().history(4); });
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == Containing("00000004.history' line 1"));
  }
  SUBCASE("a history file encrypted with a key the handle lacks is a configuration error") {
    io::Key256 bytes{};
    bytes[0] = 9;
    const repo::MasterKey key(bytes, "key-file '/k'");
    repository.history(4, "3\t0/900000\tx\n", &key);
    CHECK(thrownError([&] { repository.catalog().history(4); }).code() == ErrorCode::Config);
    CHECK(repository.catalog(repo::Keyring{.current = key}).history(4).parents.size() == 1);
  }
}

TEST_CASE(
    "Catalog::newestFrom follows consecutive history files, as recovery_target_timeline = latest") {
  Branches repository;
  CHECK(repository.catalog().newestFrom(1) == 3);
  CHECK(repository.catalog().newestFrom(3) == 3);
  repository.history(5, "1\t0/900000\tx\n");
  CHECK(repository.catalog().newestFrom(1) == 3);  // 4 has no history file: the search stops there
  repository.history(4, "1\t0/900000\tx\n");
  CHECK(repository.catalog().newestFrom(1) == 5);
}

TEST_CASE("Catalog reads each segment from the newest timeline that began by its end") {
  Branches repository;
  Catalog catalog = repository.catalog();
  const pg::TimelineHistory& two = catalog.history(2);
  const pg::TimelineHistory& three = catalog.history(3);
  SUBCASE("fileTimeline and fileName") {
    CHECK(catalog.fileTimeline(two, 9) == 1);
    CHECK(catalog.fileTimeline(two, 0xA) == 2);  // the switch lies inside segment A
    CHECK(catalog.fileName(two, 0xA) == "00000002000000000000000A");
    CHECK(catalog.fileTimeline(three, 7) == 1);
    CHECK(catalog.fileTimeline(three, 8) == 3);  // began on segment 8's first byte
    CHECK(catalog.fileTimeline(catalog.history(1), 0xA) == 1);
  }
  SUBCASE("holds and gaps along a history") {
    CHECK(catalog.holds(two, 0xA));
    CHECK_FALSE(catalog.holds(catalog.history(1), 0xA));  // only a .partial on timeline 1
    CHECK(names(catalog.gaps(two, 2, 0xC)) == std::vector<std::string>{"000000010000000000000005"});
    CHECK(names(catalog.gaps(three, 6, 9)).empty());
    CHECK(
        names(catalog.gaps(catalog.history(1), 3, 0xB)) ==
        std::vector<std::string>{"000000010000000000000005",
                                 "00000001000000000000000A to 00000001000000000000000B (2 files)"});
  }
  SUBCASE("gaps far beyond the newest segment are one run, found at once") {
    auto gaps = catalog.gaps(two, 0xC, 0xFFFFFFFFFFULL);
    REQUIRE(gaps.size() == 1);
    CHECK(gaps[0].first == "00000002000000000000000D");
    CHECK(gaps[0].count == 0xFFFFFFFFFFULL - 0xC);
  }
  SUBCASE("newestOnPath: a parent's files count only up to its switch") {
    CHECK(catalog.newestOnPath(two, 2) == std::optional<std::uint64_t>(0xC));
    CHECK(catalog.newestOnPath(three, 2) == std::optional<std::uint64_t>(9));
    CHECK(catalog.newestOnPath(three, 0xA) == std::nullopt);
    CHECK(catalog.newestOnPath(catalog.history(1), 2) == std::optional<std::uint64_t>(9));
  }
}

TEST_CASE(
    "Catalog::onHistory: a backup lies on a history when its timeline does and it ended before the "
    "switch") {
  Branches repository;
  Catalog catalog = repository.catalog();
  const auto& b1 = catalog.backups()[0];  // timeline 1, ends 0/300100
  const auto& b2 = catalog.backups()[1];  // timeline 1, ends 0/700100
  CHECK(Catalog::onHistory(b1, catalog.history(2)));
  CHECK(Catalog::onHistory(b2, catalog.history(3)));  // ended before 0/800000
  repo::BackupInfo late = b2;
  late.stopLsn = 0x900000;  // the old primary went on after timeline 3 branched off
  CHECK_FALSE(Catalog::onHistory(late, catalog.history(3)));
  CHECK(Catalog::onHistory(late, catalog.history(2)));
  repo::BackupInfo onTwo = b2;
  onTwo.timeline = 2;
  CHECK_FALSE(Catalog::onHistory(onTwo, catalog.history(3)));
  CHECK(Catalog::onHistory(onTwo, catalog.history(2)));
}
