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
  CHECK_THROWS_AS(planExpiry(catalog, {}, {}, {}, at("2026-11-05T00:00:00Z")), Error);
}

TEST_CASE(
    "full = 2 keeps the newest two, and WAL before the older one's start goes, on its timeline") {
  Four f;
  auto catalog = f.repository.catalog();
  ExpiryPlan plan = planExpiry(catalog, {.full = 2}, {}, {}, at("2026-11-05T00:00:00Z"));
  CHECK(labels(plan.backups) == std::vector<std::string>{"20261101T000000Z", "20261102T000000Z"});
  REQUIRE(plan.cutoffBackup);
  CHECK(*plan.cutoffBackup == "20261103T000000Z");
  CHECK(plan.cutoffSegment == 6);
  CHECK(plan.lowWater == std::map<std::uint32_t, std::uint64_t>{{1, 6}});
  CHECK(walNames(plan) == std::vector<std::string>{seg(1, 1), seg(1, 2),
                                                   seg(1, 2) + ".00000028.backup", seg(1, 3),
                                                   seg(1, 4), seg(1, 5)});
  SUBCASE("more backups than exist: nothing goes") {
    ExpiryPlan all = planExpiry(catalog, {.full = 10}, {}, {}, at("2026-11-05T00:00:00Z"));
    CHECK(all.backups.empty());
    CHECK(all.wal.size() == 1);  // segment 1, before the oldest backup
  }
}

TEST_CASE("a keep mark keeps its backup and the WAL from its start to its stop only") {
  Four f;
  auto catalog = f.repository.catalog();
  ExpiryPlan plan =
      planExpiry(catalog, {.full = 1}, {"20261102T000000Z"}, {}, at("2026-11-05T00:00:00Z"));
  CHECK(labels(plan.backups) == std::vector<std::string>{"20261101T000000Z", "20261103T000000Z"});
  CHECK(plan.cutoffSegment == 8);  // the mark does not hold back the cutoff
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
  ExpiryPlan plan = planExpiry(catalog, {.window = 36 * 3600}, {}, {}, at("2026-11-04T00:00:00Z"));
  CHECK(labels(plan.backups) == std::vector<std::string>{"20261101T000000Z"});
  CHECK(*plan.cutoffBackup == "20261102T000000Z");
  SUBCASE("no backup before the window's start: every backup stays") {
    ExpiryPlan all =
        planExpiry(catalog, {.window = 30 * 86400}, {}, {}, at("2026-11-05T00:00:00Z"));
    CHECK(all.backups.empty());
  }
  SUBCASE("either rule keeps: the count rule keeps more than the window") {
    ExpiryPlan both =
        planExpiry(catalog, {.full = 4, .window = 3600}, {}, {}, at("2026-11-05T00:00:00Z"));
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
  ExpiryPlan plan = planExpiry(catalog, {.full = 1}, {}, {lease}, at("2026-11-05T00:00:00Z"));
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
  ExpiryPlan plan = planExpiry(catalog, {.full = 2}, {}, {}, at("2026-11-05T00:00:00Z"));
  CHECK(labels(plan.backups) == std::vector<std::string>{"20261101T000000Z"});
  CHECK(plan.lowWater == std::map<std::uint32_t, std::uint64_t>{{1, 6}, {2, 7}});
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
