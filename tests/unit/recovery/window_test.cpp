// Unit tests of common/recovery/window.h: the recoverable window of a timeline, computed on the
// recovery model alone (tests/unit/ctl/info_test.cpp covers the reasons tidemark info gives).
#include "common/recovery/window.h"

#include <doctest/doctest.h>

#include "support/fake_repository.h"

using namespace tidemark;
using recovery::recoverableWindow;
using recovery::RecoveryWindow;

namespace {

RecoveryWindow windowOf(test::FakeRepository& repository, std::uint32_t timeline) {
  recovery::Catalog catalog = repository.catalog();
  return recoverableWindow(catalog, catalog.history(timeline));
}

}  // namespace

TEST_CASE("the window runs from the oldest complete backup's end to the end of the unbroken WAL") {
  test::FakeRepository repository;
  repository.wal(1, 2, 6);
  repository.backup("20261101T000000Z", 1, 0x200028, 0x300100);
  RecoveryWindow w = windowOf(repository, 1);
  REQUIRE(w.available());
  CHECK(w.earliest->backup == "20261101T000000Z");
  CHECK(w.earliest->lsn == 0x300100);
  CHECK(formatUtc(w.earliest->time) == "2026-11-01T00:01:15Z");
  CHECK(w.latest->backup == "20261101T000000Z");
  CHECK(w.latest->segment == "000000010000000000000006");
  CHECK(w.latest->lsn == 0x700000);
  CHECK(w.holes.empty());
  CHECK(w.reason.empty());
}

TEST_CASE("a gap between two backups is a hole, and the later backup carries the window on") {
  test::FakeRepository repository;
  repository.wal(1, 2, 4);
  repository.wal(1, 7, 9);  // 5 and 6 lost
  repository.backup("20261101T000000Z", 1, 0x200028, 0x300100);
  repository.backup("20261102T000000Z", 1, 0x700028, 0x800100);
  RecoveryWindow w = windowOf(repository, 1);
  REQUIRE(w.available());
  CHECK(w.earliest->backup == "20261101T000000Z");
  CHECK(w.latest->backup == "20261102T000000Z");
  CHECK(w.latest->lsn == 0xA00000);
  REQUIRE(w.holes.size() == 1);
  CHECK(w.holes[0].from == 0x500000);  // the end of segment 4
  CHECK(w.holes[0].to == 0x800100);    // the second backup is consistent from there
  SUBCASE("a backup inside the first run adds nothing: still one hole") {
    repository.backup("20261101T120000Z", 1, 0x300028, 0x400100);
    CHECK(windowOf(repository, 1).holes.size() == 1);
  }
}

TEST_CASE("on a branch, the window follows the history into the child timeline") {
  test::FakeRepository repository;
  repository.wal(1, 2, 9);  // the old primary went on after the branch
  repository.history(2, "1\t0/600000\tbefore 2026-11-02 00:00:00+00\n");
  repository.wal(2, 6, 7);
  repository.backup("20261101T000000Z", 1, 0x200028, 0x300100);
  repository.backup("20261103T000000Z", 1, 0x800028,
                    0x800100);  // after the branch: timeline 1 only
  RecoveryWindow one = windowOf(repository, 1);
  CHECK(one.latest->segment == "000000010000000000000009");
  CHECK(one.latest->backup == "20261103T000000Z");
  RecoveryWindow two = windowOf(repository, 2);
  REQUIRE(two.available());
  CHECK(two.earliest->backup == "20261101T000000Z");
  CHECK(two.latest->segment == "000000020000000000000007");
  CHECK(two.latest->backup == "20261101T000000Z");
  CHECK(two.incompleteBackups.empty());
}

TEST_CASE("a backup whose own WAL is incomplete is listed, and the window comes from the others") {
  test::FakeRepository repository;
  repository.wal(1, 2, 3);
  repository.wal(1, 6, 8);
  repository.backup("20261101T000000Z", 1, 0x200028, 0x400100);  // needs 2 to 4: 4 missing
  repository.backup("20261102T000000Z", 1, 0x600028, 0x700100);
  RecoveryWindow w = windowOf(repository, 1);
  REQUIRE(w.available());
  CHECK(w.earliest->backup == "20261102T000000Z");
  REQUIRE(w.incompleteBackups.size() == 1);
  CHECK(w.incompleteBackups[0].label == "20261101T000000Z");
  CHECK(w.incompleteBackups[0].missing == "000000010000000000000004");
}
