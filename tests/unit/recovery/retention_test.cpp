// Unit tests of common/recovery/retention.h: which backups and WAL files expire may delete,
// computed on the recovery model alone.
#include "common/recovery/retention.h"

#include <doctest/doctest.h>

#include <algorithm>

#include "common/base/error.h"
#include "support/fake_repository.h"

using namespace tidemark;
using recovery::ExpiryPlan;
using recovery::planExpiry;
using recovery::RetentionPolicy;

namespace {

UtcSeconds at(const std::string& text) {
  return *parseUtc(text);
}

std::vector<std::string> labels(const std::vector<recovery::ExpiredBackup>& gone) {
  std::vector<std::string> out;
  for (const auto& b : gone)
    out.push_back(b.label);
  return out;
}

std::vector<std::string> walNames(const ExpiryPlan& plan) {
  std::vector<std::string> out;
  for (const auto& w : plan.wal)
    out.push_back(w.name);
  return out;
}

bool goes(const ExpiryPlan& plan, const std::string& name) {
  auto names = walNames(plan);
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string seg(std::uint32_t timeline, std::uint64_t n) {
  return pg::segmentFileName(timeline, n, test::kSegmentSize);
}

// Four daily backups on timeline 1, each in its own segment (2, 4, 6, 8), WAL 1..10.
struct Four {
  test::FakeRepository repository;
  Four() {
    repository.wal(1, 1, 10);
    repository.file(seg(1, 2) + ".00000028.backup", 300);
    repository.backup("20261101T000000Z", 1, 0x200028, 0x200100);
    repository.backup("20261102T000000Z", 1, 0x400028, 0x400100);
    repository.backup("20261103T000000Z", 1, 0x600028, 0x600100);
    repository.backup("20261104T000000Z", 1, 0x800028, 0x800100);
  }
};

}  // namespace

TEST_CASE("an empty retention policy never deletes: refused") {
  Four f;
  auto catalog = f.repository.catalog();
  CHECK_THROWS_AS(planExpiry({catalog}, {}, {}, {}, at("2026-11-05T00:00:00Z")), Error);
}

TEST_CASE(
    "full = 2 keeps the newest two, and WAL before the older one's start goes, on its timeline") {
  Four f;
  auto catalog = f.repository.catalog();
  ExpiryPlan plan = planExpiry({catalog}, {.full = 2}, {}, {}, at("2026-11-05T00:00:00Z"));
  CHECK(labels(plan.backups) == std::vector<std::string>{"20261101T000000Z", "20261102T000000Z"});
  REQUIRE(plan.cutoffs.size() == 1);
  REQUIRE(plan.cutoffs[0].cutoffBackup);
  CHECK(*plan.cutoffs[0].cutoffBackup == "20261103T000000Z");
  CHECK(plan.cutoffs[0].cutoffSegment == 6);
  CHECK(plan.cutoffs[0].lowWater == std::map<std::uint32_t, std::uint64_t>{{1, 6}});
  CHECK(walNames(plan) == std::vector<std::string>{seg(1, 1), seg(1, 2),
                                                   seg(1, 2) + ".00000028.backup", seg(1, 3),
                                                   seg(1, 4), seg(1, 5)});
  SUBCASE("more backups than exist: nothing goes") {
    ExpiryPlan all = planExpiry({catalog}, {.full = 10}, {}, {}, at("2026-11-05T00:00:00Z"));
    CHECK(all.backups.empty());
    CHECK(all.wal.size() == 1);  // segment 1, before the oldest backup
  }
}

TEST_CASE("a keep mark keeps its backup and the WAL from its start to its stop only") {
  Four f;
  auto catalog = f.repository.catalog();
  ExpiryPlan plan =
      planExpiry({catalog}, {.full = 1}, {"20261102T000000Z"}, {}, at("2026-11-05T00:00:00Z"));
  CHECK(labels(plan.backups) == std::vector<std::string>{"20261101T000000Z", "20261103T000000Z"});
  CHECK(plan.cutoffs.at(0).cutoffSegment == 8);  // the mark does not hold back the cutoff
  CHECK_FALSE(goes(plan, seg(1, 4)));
  CHECK(goes(plan, seg(1, 3)));
  CHECK(goes(plan, seg(1, 5)));
  CHECK(goes(plan, seg(1, 7)));
  REQUIRE(plan.heldBack.size() == 1);
}

TEST_CASE("the window rule keeps the newest backup that stopped before the window's start") {
  Four f;
  auto catalog = f.repository.catalog();
  // The window starts 2026-11-02T12:00: the second backup (stopped 2026-11-02T00:01:15) is the
  // newest before it.
  ExpiryPlan plan =
      planExpiry({catalog}, {.window = 36 * 3600}, {}, {}, at("2026-11-04T00:00:00Z"));
  CHECK(labels(plan.backups) == std::vector<std::string>{"20261101T000000Z"});
  CHECK(*plan.cutoffs.at(0).cutoffBackup == "20261102T000000Z");
  SUBCASE("no backup before the window's start: every backup stays") {
    ExpiryPlan all =
        planExpiry({catalog}, {.window = 30 * 86400}, {}, {}, at("2026-11-05T00:00:00Z"));
    CHECK(all.backups.empty());
  }
  SUBCASE("either rule keeps: the count rule keeps more than the window") {
    ExpiryPlan both =
        planExpiry({catalog}, {.full = 4, .window = 3600}, {}, {}, at("2026-11-05T00:00:00Z"));
    CHECK(both.backups.empty());
  }
}

TEST_CASE("a live lease keeps its backup and the WAL it replays, from its first segment on") {
  Four f;
  auto catalog = f.repository.catalog();
  repo::Lease lease{.id = "0123456789abcdef",
                    .holder = "test",
                    .backup = "20261101T000000Z",
                    .timelines = {1},
                    .firstSegment = 2,
                    .timeoutSeconds = 3600};
  ExpiryPlan plan = planExpiry({catalog}, {.full = 1}, {}, {lease}, at("2026-11-05T00:00:00Z"));
  CHECK(labels(plan.backups) == std::vector<std::string>{"20261102T000000Z", "20261103T000000Z"});
  CHECK(walNames(plan) == std::vector<std::string>{seg(1, 1)});
}

TEST_CASE("across a promotion: WAL on the other branch and every .history file stay") {
  test::FakeRepository repository;
  repository.wal(1, 1, 9);  // the old primary went on after the branch at segment 5
  repository.file(seg(1, 5) + ".partial");
  repository.history(2, "1\t0/580000\tno recovery target specified\n");
  repository.wal(2, 5, 9);
  repository.backup("20261101T000000Z", 1, 0x200028, 0x200100);
  repository.backup("20261102T000000Z", 2, 0x700028, 0x700100);
  repository.backup("20261103T000000Z", 2, 0x800028, 0x800100);
  auto catalog = repository.catalog();
  ExpiryPlan plan = planExpiry({catalog}, {.full = 2}, {}, {}, at("2026-11-05T00:00:00Z"));
  CHECK(labels(plan.backups) == std::vector<std::string>{"20261101T000000Z"});
  CHECK(plan.cutoffs.at(0).lowWater == std::map<std::uint32_t, std::uint64_t>{{1, 6}, {2, 7}});
  // Timeline 1 before the switch, and timeline 2's copies before the cutoff, go.
  CHECK(goes(plan, seg(1, 4)));
  CHECK(goes(plan, seg(2, 6)));
  CHECK(goes(plan, seg(1, 5) + ".partial"));
  // Timeline 1 after the branch point (the old primary's own WAL) is another branch: it stays.
  CHECK_FALSE(goes(plan, seg(1, 6)));
  CHECK_FALSE(goes(plan, seg(1, 7)));
  CHECK_FALSE(goes(plan, seg(2, 7)));
  for (const auto& w : plan.wal)
    CHECK(w.kind != pg::WalKind::History);
}

TEST_CASE("across a stanza-upgrade: each generation's WAL goes by its own backups") {
  // Generation 1: WAL 1 to 9 and two backups; after pg_upgrade, generation 2's WAL names go on
  // from 10 on the same timeline, with two backups of its own.
  test::FakeRepository repository;
  repository.wal(1, 1, 9);
  repository.backup("20261101T000000Z", 1, 0x200028, 0x200100);
  repository.backup("20261102T000000Z", 1, 0x500028, 0x500100);
  repository.upgrade(7400000000000000001ULL);
  repository.wal(1, 10, 14);
  repository.backup("20261103T000000Z", 1, 0xB00028, 0xB00100);
  repository.backup("20261104T000000Z", 1, 0xD00028, 0xD00100);
  auto catalogs = repository.catalogs();
  REQUIRE(catalogs.size() == 2);
  auto in = [](const ExpiryPlan& plan, int generation) {
    std::vector<std::string> out;
    for (const auto& w : plan.wal)
      if (w.generation == generation) out.push_back(w.name);
    return out;
  };

  SUBCASE("the newest two are generation 2's: generation 1 goes whole") {
    ExpiryPlan plan = planExpiry(catalogs, {.full = 2}, {}, {}, at("2026-11-05T00:00:00Z"));
    CHECK(labels(plan.backups) == std::vector<std::string>{"20261101T000000Z", "20261102T000000Z"});
    REQUIRE(plan.cutoffs.size() == 2);
    CHECK(plan.cutoffs[0].whole);
    CHECK(plan.cutoffs[0].laterBackup == "20261103T000000Z");
    CHECK(plan.cutoffs[0].lowWater == std::map<std::uint32_t, std::uint64_t>{{1, 10}});
    CHECK(in(plan, 1).size() == 9);
    CHECK(*plan.cutoffs[1].cutoffBackup == "20261103T000000Z");
    CHECK(plan.cutoffs[1].lowWater == std::map<std::uint32_t, std::uint64_t>{{1, 11}});
    CHECK(in(plan, 2) == std::vector<std::string>{seg(1, 10)});
  }
  SUBCASE("a generation-1 backup kept by the rules keeps generation 1's WAL from its start") {
    ExpiryPlan plan = planExpiry(catalogs, {.full = 3}, {}, {}, at("2026-11-05T00:00:00Z"));
    CHECK(labels(plan.backups) == std::vector<std::string>{"20261101T000000Z"});
    CHECK(in(plan, 1) == std::vector<std::string>{seg(1, 1), seg(1, 2), seg(1, 3), seg(1, 4)});
    // Generation 2's WAL before its first backup serves no backup of its own.
    CHECK(in(plan, 2) == std::vector<std::string>{seg(1, 10)});
  }
  SUBCASE("a keep mark and a lease hold WAL of their own generation only") {
    repo::Lease lease{.id = "0123456789abcdef",
                      .holder = "test",
                      .backup = "20261103T000000Z",
                      .generation = 2,
                      .timelines = {1},
                      .firstSegment = 10,
                      .timeoutSeconds = 3600};
    ExpiryPlan plan = planExpiry(catalogs, {.full = 1}, {"20261101T000000Z"}, {lease},
                                 at("2026-11-05T00:00:00Z"));
    // Generation 1: only the marked backup's own WAL (segment 2) stays, also its name's twin in
    // generation 2 does not keep it.
    CHECK(in(plan, 1) == std::vector<std::string>{seg(1, 1), seg(1, 3), seg(1, 4), seg(1, 5),
                                                  seg(1, 6), seg(1, 7), seg(1, 8), seg(1, 9)});
    // Generation 2: the lease reads from segment 10 on.
    CHECK(in(plan, 2).empty());
    CHECK(plan.heldBack.size() == 2);
  }
  SUBCASE("generation 1 still archives after generation 2 was recorded: its own rules apply") {
    // Its cluster is in service (an upgrade rolled back, a migration by logical replication, or
    // another cluster made generation 2 by mistake): WAL of it stored now, two days after the
    // record (both by the storage's clock).
    const UtcSeconds now = utcNow();
    repository.storage.setModified(repo::generationFile("main", 2),
                                   (now - std::chrono::days(2)).time_since_epoch().count());
    repository.storage.setObject(repo::walObject("main", 1, *pg::parseWalName(seg(1, 20))),
                                 io::Buffer(1000, 'w'));
    auto live = repository.catalogs();
    ExpiryPlan plan = planExpiry(live, {.full = 1}, {}, {}, now);
    // The newest of all (generation 2's) and the newest of generation 1's own stay.
    CHECK(labels(plan.backups) == std::vector<std::string>{"20261101T000000Z", "20261103T000000Z"});
    bool named = false;
    for (const auto& kept : plan.kept)
      for (const auto& reason : kept.reasons)
        named =
            named || (kept.label == "20261102T000000Z" &&
                      reason.find("one of the newest 1 of generation 1, which still archives") !=
                          std::string::npos);
    CHECK(named);
    // Its WAL goes by its own kept backup, not whole.
    REQUIRE(plan.cutoffs.size() == 2);
    CHECK_FALSE(plan.cutoffs[0].whole);
    CHECK(in(plan, 1) == std::vector<std::string>{seg(1, 1), seg(1, 2), seg(1, 3), seg(1, 4)});
    // A WAL time in the future is no storage time (a file touched on purpose): not in service.
    repository.storage.setModified(repo::walObject("main", 1, *pg::parseWalName(seg(1, 20))),
                                   (now + std::chrono::days(30)).time_since_epoch().count());
    CHECK(planExpiry(repository.catalogs(), {.full = 1}, {}, {}, now).cutoffs[0].whole);
    // A week after its last WAL, it counts as superseded again: it goes whole.
    ExpiryPlan later = planExpiry(live, {.full = 1}, {}, {}, now + std::chrono::days(8));
    CHECK(later.cutoffs[0].whole);
    CHECK(labels(later.backups).size() == 3);
  }
  SUBCASE("a new generation without a backup yet keeps everything") {
    test::FakeRepository fresh;
    fresh.wal(1, 1, 9);
    fresh.backup("20261101T000000Z", 1, 0x200028, 0x200100);
    fresh.upgrade(7400000000000000001ULL);
    fresh.wal(1, 10, 12);
    ExpiryPlan plan = planExpiry(fresh.catalogs(), {.full = 1}, {}, {}, at("2026-11-05T00:00:00Z"));
    CHECK(plan.backups.empty());
    CHECK(in(plan, 1) == std::vector<std::string>{seg(1, 1)});
    CHECK(in(plan, 2).empty());
  }
}
