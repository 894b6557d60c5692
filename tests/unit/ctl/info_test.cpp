// Unit tests of ctl/info.h: the report tidemark info computes from a repository (backups, WAL per
// timeline, gaps, .partial and .history files, recoverable windows) and its JSON and text forms.
#include "ctl/info.h"

#include <doctest/doctest.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "common/repo/layout.h"
#include "common/repo/object.h"
#include "support/check.h"
#include "support/fake_repository.h"
#include "support/memory_storage.h"

using namespace tidemark;
using ctl::InfoReport;
using ctl::TimelineInfo;
using test::Containing;
using test::thrownError;
using test::what;

namespace {

using test::kSegmentSize;
using Repository = test::FakeRepository;

// A timeline of a generation (the current one by default).
const TimelineInfo& timeline(const ctl::GenerationReport& generation, std::uint32_t number) {
  for (const auto& t : generation.timelines)
    if (t.timeline == number) return t;
  FAIL("no timeline " << number << " in generation " << generation.generation.number);
  return generation.timelines.front();
}
const TimelineInfo& timeline(const InfoReport& report, std::uint32_t number) {
  return timeline(report.current(), number);
}

// Timeline 1 (segments 2-4, 6-9, 0000000100000000000000A.partial) was promoted to timeline 2 at
// 0/A00028; timeline 2 holds segments A-C and E. Backups: B1 and B2 on timeline 1 before the
// switch, B3 on timeline 1 ending after it (the old primary kept running).
struct Promoted : Repository {
  std::int64_t before = std::time(nullptr);
  Promoted() {
    wal(1, 2, 4, 1000);
    wal(1, 6, 9, 2000);
    file("00000001000000000000000A.partial", 500);
    history(2, "1\t0/A00028\tno recovery target specified\n");
    wal(2, 0xA, 0xC, 3000);
    wal(2, 0xE, 0xE, 3000);
    backup("20261101T000000Z", 1, 0x200028, 0x300100, 16385);
    backup("20261102T000000Z", 1, 0x600028, 0x700100);
    backup("20261103T000000Z", 1, 0x900028, 0xA80000);
  }
  std::int64_t after = std::time(nullptr);
};

constexpr std::uint64_t kUpgradedId = 7000000000000000001ULL;

// Generation 1 (stanza.json's cluster): timeline 1, segments 2-9 of 1000 bytes, backup B1 ending
// in segment 3. pg_upgrade, then generation 2 (kUpgradedId): timeline 1 again, segments 5-7 of
// 4000 bytes (names that generation 1 also has, in a folder of their own), backup B15 ending in
// segment 5.
struct Upgraded : Repository {
  Upgraded() {
    wal(1, 2, 9, 1000);
    backup("20261101T000000Z", 1, 0x200028, 0x300100);
    upgrade(kUpgradedId);
    wal(1, 5, 7, 4000);
    backup("20261115T000000Z", 1, 0x500028, 0x500100);
  }
};

}  // namespace

TEST_CASE(
    "collectInfo reports the stanza, its backups, the WAL of each timeline and their recoverable "
    "windows") {
  Promoted repository;
  InfoReport report = ctl::collectInfo(repository.handle());

  SUBCASE("the stanza: name, repository, system identifier, version and segment size") {
    CHECK(report.stanza == "main");
    CHECK(report.repository == repository.storage.describe());
    CHECK(report.info.systemId == 18446744073709551615ULL);
    CHECK(report.info.pgVersion == 15);
    CHECK(report.info.walSegmentSize == kSegmentSize);
    REQUIRE(report.generations.size() == 1);
    CHECK(report.current().generation.number == 1);
    CHECK(report.current().generation.systemId == 18446744073709551615ULL);
    CHECK(report.current().current);
  }
  SUBCASE("every complete backup, oldest first, with its duration; an incomplete one is left out") {
    repository.storage.setObject(repo::backupObject("main", "20261104T000000Z", "base.tar"),
                                 io::Buffer(10, 'x'));
    report = ctl::collectInfo(repository.handle());
    REQUIRE(report.current().backups.size() == 3);
    CHECK(report.current().backups[0].backup.label == "20261101T000000Z");
    CHECK(report.current().backups[2].backup.label == "20261103T000000Z");
    CHECK(report.current().backups[0].durationSeconds == 75);
    CHECK(report.current().backups[0].backup.objects[1].tablespaceOid == 16385);
  }
  SUBCASE("the WAL of timeline 1: first, last, count, stored size, the gap and the .partial file") {
    const TimelineInfo& t = timeline(report, 1);
    CHECK(t.wal.first == "000000010000000000000002");
    CHECK(t.wal.last == "000000010000000000000009");
    CHECK(t.wal.segments == 7);
    CHECK(t.wal.storedSize == 3 * 1000 + 4 * 2000);
    CHECK(t.wal.partial == "00000001000000000000000A.partial");
    REQUIRE(t.wal.gaps.size() == 1);
    CHECK(t.wal.gaps[0].first == "000000010000000000000005");
    CHECK(t.wal.gaps[0].last == "000000010000000000000005");
    CHECK(t.wal.gaps[0].count == 1);
    CHECK_FALSE(t.historyFile);
    CHECK_FALSE(t.parent);
    CHECK(t.historyError.empty());
  }
  SUBCASE("the WAL of timeline 2: its history file, parent and switch point, and its gap") {
    const TimelineInfo& t = timeline(report, 2);
    CHECK(t.historyFile);
    CHECK(t.parent == 1u);
    CHECK(t.switchPoint == 0xA00028u);
    CHECK(t.wal.first == "00000002000000000000000A");
    CHECK(t.wal.last == "00000002000000000000000E");
    CHECK(t.wal.segments == 4);
    CHECK_FALSE(t.wal.partial);
    REQUIRE(t.wal.gaps.size() == 1);
    CHECK(t.wal.gaps[0].first == "00000002000000000000000D");
    CHECK(t.wal.gaps[0].count == 1);
  }
  SUBCASE("a gap of several segments is one run") {
    repository.wal(1, 0x10, 0x10);
    report = ctl::collectInfo(repository.handle());
    const TimelineInfo& t = timeline(report, 1);
    REQUIRE(t.wal.gaps.size() == 2);
    CHECK(t.wal.gaps[1].first == "00000001000000000000000A");
    CHECK(t.wal.gaps[1].last == "00000001000000000000000F");
    CHECK(t.wal.gaps[1].count == 6);
  }
  SUBCASE("timeline 1: from the oldest backup's end to the end of the furthest contiguous run") {
    const auto& w = timeline(report, 1).window;
    REQUIRE(w.available());
    CHECK(w.earliest->backup == "20261101T000000Z");
    CHECK(w.earliest->lsn == 0x300100);
    CHECK(formatUtc(w.earliest->time) == "2026-11-01T00:01:15Z");
    // B1 stops at the gap (segment 5); B2 reaches segment 9 (segment A is only a .partial).
    CHECK(w.latest->backup == "20261102T000000Z");
    CHECK(w.latest->lsn == 0xA00000);
    CHECK(w.latest->segment == "000000010000000000000009");
    CHECK(w.latest->archivedAt.time_since_epoch().count() >= repository.before);
    CHECK(w.latest->archivedAt.time_since_epoch().count() <= repository.after);
    // Between B1's run (to the end of segment 4) and B2's stop, nothing can be reached.
    REQUIRE(w.holes.size() == 1);
    CHECK(w.holes[0].from == 0x500000);
    CHECK(w.holes[0].to == 0x700100);
    // B3 ends in segment A, which timeline 1 holds only as a .partial: it cannot reach consistency.
    REQUIRE(w.incompleteBackups.size() == 1);
    CHECK(w.incompleteBackups[0].label == "20261103T000000Z");
    CHECK(w.incompleteBackups[0].missing == "00000001000000000000000A");
  }
  SUBCASE(
      "timeline 2: backups of timeline 1 that ended before the switch, following the path into "
      "timeline 2") {
    const auto& w = timeline(report, 2).window;
    REQUIRE(w.available());
    CHECK(w.earliest->backup == "20261101T000000Z");
    CHECK(w.earliest->lsn == 0x300100);
    // From B2: 6-9 on timeline 1, then A-C on timeline 2, up to the gap at D.
    CHECK(w.latest->backup == "20261102T000000Z");
    CHECK(w.latest->lsn == 0xD00000);
    CHECK(w.latest->segment == "00000002000000000000000C");
    // B3 ended after the switch: on another branch, neither usable nor incomplete.
    CHECK(w.incompleteBackups.empty());
  }
  SUBCASE(
      "a backup on timeline 1 is usable for timeline 2 only if it ended before the switch point") {
    repository.wal(2, 0xD, 0xD);
    repository.backup("20261104T000000Z", 1, 0xA00000, 0xA00028);  // ends exactly at the switch
    report = ctl::collectInfo(repository.handle());
    const auto& w = timeline(report, 2).window;
    // Without the gap at D, the run from B2 reaches E; B4 reaches the same end with a shorter
    // replay.
    CHECK(w.latest->lsn == 0xF00000);
    CHECK(w.latest->backup == "20261104T000000Z");
    CHECK(w.latest->segment == "00000002000000000000000E");
    // B4 ends in segment A, which timeline 1 holds only as a .partial.
    const auto& w1 = timeline(report, 1).window;
    REQUIRE(w1.incompleteBackups.size() == 2);
    CHECK(w1.incompleteBackups[1].label == "20261104T000000Z");
  }
  SUBCASE("a point reached from several backups names the newest of them (the shortest replay)") {
    repository.wal(1, 5, 5);  // B1's run now reaches segment 9 too
    report = ctl::collectInfo(repository.handle());
    const auto& w = timeline(report, 1).window;
    CHECK(w.latest->lsn == 0xA00000);
    CHECK(w.latest->backup == "20261102T000000Z");
    CHECK(w.holes.empty());
  }
}

TEST_CASE("collectInfo says why a timeline has no recoverable window") {
  Repository repository;
  repository.wal(1, 1, 3);

  SUBCASE("no complete backup at all") {
    InfoReport report = ctl::collectInfo(repository.handle());
    CHECK(report.current().backups.empty());
    const auto& w = timeline(report, 1).window;
    CHECK_FALSE(w.available());
    CHECK_FALSE(w.latest);
    CHECK(w.reason == "the stanza has no complete backup; take one with tidemark-basebackup");
  }
  SUBCASE("every backup of the parent timeline ended after the switch") {
    repository.history(2, "1\t0/200000\tno recovery target specified\n");
    repository.wal(2, 2, 3);
    repository.backup("20261101T000000Z", 1, 0x200028, 0x200100);
    InfoReport report = ctl::collectInfo(repository.handle());
    CHECK(timeline(report, 1).window.available());
    const auto& w = timeline(report, 2).window;
    CHECK_FALSE(w.available());
    CHECK(w.reason ==
          "every backup on its history was taken after the switch away from its timeline (the "
          "oldest, "
          "20261101T000000Z, ended at 0/200100 on timeline 1, which ended at 0/200000)");
  }
  SUBCASE("the only backup is on a child timeline") {
    repository.history(2, "1\t0/200000\tno recovery target specified\n");
    repository.wal(2, 2, 3);
    repository.backup("20261101T000000Z", 2, 0x300028, 0x300100);
    InfoReport report = ctl::collectInfo(repository.handle());
    CHECK(timeline(report, 1).window.reason == "no complete backup was taken on timeline 1");
    CHECK(timeline(report, 2).window.earliest->backup == "20261101T000000Z");
    repository.history(
        3, "1\t0/200000\tno recovery target specified\n2\t0/280000\tsecond promotion\n");
    report = ctl::collectInfo(repository.handle());
    CHECK(timeline(report, 3).window.reason ==
          "every backup on its history was taken after the switch away from its timeline (the "
          "oldest, "
          "20261101T000000Z, ended at 0/300100 on timeline 2, which ended at 0/280000)");
    CHECK(timeline(report, 3).parent == 2u);
    CHECK(timeline(report, 3).switchPoint == 0x280000u);
  }
  SUBCASE("no backup on the timeline or its ancestors") {
    repository.history(2, "1\t0/200000\tno recovery target specified\n");
    repository.history(3, "1\t0/200000\tno recovery target specified\n");
    repository.backup("20261101T000000Z", 2, 0x300028, 0x300100);
    repository.wal(2, 2, 3);
    InfoReport report = ctl::collectInfo(repository.handle());
    CHECK(timeline(report, 3).window.reason ==
          "no complete backup was taken on timeline 3 or its ancestors (1)");
  }
  SUBCASE("the only backup's own WAL is incomplete") {
    repository.backup("20261101T000000Z", 1, 0x200028, 0x400100);  // needs segments 2 to 4
    InfoReport report = ctl::collectInfo(repository.handle());
    const auto& w = timeline(report, 1).window;
    CHECK_FALSE(w.available());
    CHECK(w.reason ==
          "the WAL of every backup on its history is incomplete (backup 20261101T000000Z lacks "
          "000000010000000000000004)");
    REQUIRE(w.incompleteBackups.size() == 1);
    CHECK(w.incompleteBackups[0].missing == "000000010000000000000004");
  }
  SUBCASE("a backup whose first segment is missing") {
    repository.backup("20261101T000000Z", 1, 0x500028, 0x500100);
    InfoReport report = ctl::collectInfo(repository.handle());
    REQUIRE(timeline(report, 1).window.incompleteBackups.size() == 1);
    CHECK(timeline(report, 1).window.incompleteBackups[0].missing == "000000010000000000000005");
  }
  SUBCASE("a timeline without its history file") {
    repository.wal(3, 4, 5);
    repository.backup("20261101T000000Z", 1, 0x100028, 0x100100);
    InfoReport report = ctl::collectInfo(repository.handle());
    const TimelineInfo& t = timeline(report, 3);
    CHECK_FALSE(t.historyFile);
    CHECK(t.historyError ==
          "the repository has no 00000003.history: the timeline's parent and switch point are "
          "unknown");
    CHECK(t.wal.segments == 2);
    CHECK(t.window.reason == "its history is unknown: " + t.historyError);
  }
  SUBCASE("a damaged history file") {
    repository.history(2, "one\t0/200000\n");
    InfoReport report = ctl::collectInfo(repository.handle());
    const TimelineInfo& t = timeline(report, 2);
    CHECK(t.historyFile);
    CHECK(t.historyError == Containing("'one' is not a timeline"));
    CHECK_FALSE(t.window.available());
  }
  SUBCASE("an encrypted history file: read with the key; without it, the timeline has no window") {
    const repo::MasterKey key(io::Key256{9}, "key-file '/k'");
    repository.history(2, "1\t0/A00028\tno recovery target specified\n", &key);
    InfoReport decrypted = ctl::collectInfo(repository.handle({.current = key}));
    const TimelineInfo& with = timeline(decrypted, 2);
    CHECK(with.historyError.empty());
    InfoReport report = ctl::collectInfo(repository.handle());
    const TimelineInfo& t = timeline(report, 2);
    CHECK(t.historyError ==
          Containing("was written with key " + key.idHex() + "; configured keys are none"));
    CHECK(t.window.reason == "its history is unknown: " + t.historyError);
  }
}

TEST_CASE("collectInfo refuses a stanza without stanza.json as a configuration error") {
  test::MemoryStorage storage;
  auto e = thrownError([&] { ctl::collectInfo(repo::Repository(storage, "main")); });
  CHECK(e.code() == ErrorCode::Config);
  CHECK(what(e) == "stanza 'main' does not exist in " + storage.describe());
  CHECK(e.hint() == Containing("tidemark stanza-create"));
  SUBCASE("also when the stanza folder holds objects but no stanza.json") {
    storage.setObject(repo::walObject("main", 1, *pg::parseWalName("000000010000000000000001")),
                      io::Buffer(1, 'x'));
    CHECK(thrownError([&] { ctl::collectInfo(repo::Repository(storage, "main")); }).code() ==
          ErrorCode::Config);
  }
}

TEST_CASE("renderJson uses the documented field names, LSNs as strings and sizes in bytes") {
  Promoted repository;
  auto doc = nlohmann::json::parse(ctl::renderJson(ctl::collectInfo(repository.handle())));

  SUBCASE("the stanza, with the system identifier as a string") {
    const auto& s = doc.at("stanza");
    CHECK(s.at("name") == "main");
    CHECK(s.at("repository") == repository.storage.describe());
    CHECK(s.at("system-identifier") == "18446744073709551615");
    CHECK(s.at("pg-version") == 15);
    CHECK(s.at("wal-segment-size") == kSegmentSize);
    CHECK(s.at("format") == 1);
    CHECK(s.at("created") == "2026-11-01T00:00:00Z");
  }
  SUBCASE("a backup") {
    REQUIRE(doc.at("backups").size() == 3);
    const auto& b = doc.at("backups")[0];
    std::vector<std::string> keys;
    for (const auto& [key, value] : b.items())
      keys.push_back(key);
    CHECK(keys == std::vector<std::string>{"compression", "duration", "encryption", "label", "size",
                                           "start-lsn", "start-time", "stop-lsn", "stop-time",
                                           "stored-size", "tablespaces", "timeline", "wal-start",
                                           "wal-stop"});
    CHECK(b.at("label") == "20261101T000000Z");
    CHECK(b.at("timeline") == 1);
    CHECK(b.at("start-time") == "2026-11-01T00:00:00Z");
    CHECK(b.at("stop-time") == "2026-11-01T00:01:15Z");
    CHECK(b.at("start-lsn") == "0/200028");
    CHECK(b.at("stop-lsn") == "0/300100");
    CHECK(b.at("wal-start") == "000000010000000000000002");
    CHECK(b.at("wal-stop") == "000000010000000000000003");
    CHECK(b.at("size") == (30u << 20) + (2u << 20));
    CHECK(b.at("stored-size") == (3u << 20) + (1u << 20) + 1000);
    CHECK(b.at("duration") == 75);
    CHECK(b.at("compression") == "zstd");
    CHECK(b.at("encryption") == "none");
    CHECK(b.at("tablespaces") ==
          nlohmann::json::parse(R"([{"oid": 16385, "location": "/srv/ts1"}])"));
    CHECK(doc.at("backups")[1].at("tablespaces").empty());
  }
  SUBCASE("a timeline without a history file, its WAL and window") {
    const auto& t = doc.at("timelines")[0];
    CHECK(t.at("timeline") == 1);
    CHECK(t.at("history-file") == false);
    CHECK(t.at("parent").is_null());
    CHECK(t.at("switch-point").is_null());
    CHECK(t.at("history-error").is_null());
    const auto& wal = t.at("wal");
    CHECK(wal.at("first") == "000000010000000000000002");
    CHECK(wal.at("last") == "000000010000000000000009");
    CHECK(wal.at("segments") == 7);
    CHECK(wal.at("stored-size") == 11000);
    CHECK(wal.at("partial") == "00000001000000000000000A.partial");
    CHECK(wal.at("gaps") == nlohmann::json::parse(R"([{"first": "000000010000000000000005",
                                                      "last": "000000010000000000000005", "count": 1}])"));
    const auto& w = t.at("window");
    CHECK(w.at("available") == true);
    CHECK(w.at("reason").is_null());
    CHECK(w.at("earliest") ==
          nlohmann::json::parse(R"({"backup": "20261101T000000Z", "time": "2026-11-01T00:01:15Z",
                                                        "lsn": "0/300100"})"));
    const auto& latest = w.at("latest");
    CHECK(latest.at("backup") == "20261102T000000Z");
    CHECK(latest.at("lsn") == "0/A00000");
    CHECK(latest.at("segment") == "000000010000000000000009");
    std::string archived = latest.at("archived-at");
    CHECK(archived.size() == 20);
    CHECK(archived.back() == 'Z');
    CHECK(archived[10] == 'T');
    CHECK(w.at("holes") == nlohmann::json::parse(R"([{"from": "0/500000", "to": "0/700100"}])"));
    CHECK(w.at("incomplete-backups") == nlohmann::json::parse(R"([{"label": "20261103T000000Z",
                                                                   "missing": "00000001000000000000000A"}])"));
  }
  SUBCASE("one generation: the current one, with the top level's backups and timelines") {
    REQUIRE(doc.at("generations").size() == 1);
    const auto& g = doc.at("generations")[0];
    CHECK(g.at("number") == 1);
    CHECK(g.at("system-identifier") == "18446744073709551615");
    CHECK(g.at("current") == true);
    CHECK(g.at("backups") == doc.at("backups"));
    CHECK(g.at("damaged-backups") == doc.at("damaged-backups"));
    CHECK(g.at("timelines") == doc.at("timelines"));
  }
  SUBCASE("a timeline with a history file") {
    const auto& t = doc.at("timelines")[1];
    CHECK(t.at("timeline") == 2);
    CHECK(t.at("history-file") == true);
    CHECK(t.at("parent") == 1);
    CHECK(t.at("switch-point") == "0/A00028");
    CHECK(t.at("wal").at("partial").is_null());
  }
  SUBCASE("a timeline without a window or segments") {
    repository.history(3, "2\t0/F00000\tagain\n");
    repository.storage.remove(repo::backupInfoFile("main", "20261101T000000Z"));
    repository.storage.remove(repo::backupInfoFile("main", "20261102T000000Z"));
    repository.storage.remove(repo::backupInfoFile("main", "20261103T000000Z"));
    doc = nlohmann::json::parse(ctl::renderJson(ctl::collectInfo(repository.handle())));
    CHECK(doc.at("backups").empty());
    const auto& t = doc.at("timelines")[2];
    CHECK(t.at("wal").at("first").is_null());
    CHECK(t.at("wal").at("last").is_null());
    CHECK(t.at("wal").at("segments") == 0);
    const auto& w = t.at("window");
    CHECK(w.at("available") == false);
    CHECK(w.at("reason") == "the stanza has no complete backup; take one with tidemark-basebackup");
    CHECK(w.at("earliest").is_null());
    CHECK(w.at("latest").is_null());
    CHECK(w.at("holes").empty());
    CHECK(w.at("incomplete-backups").empty());
  }
}

TEST_CASE("renderText shows the report in aligned columns with UTC times and readable sizes") {
  Promoted repository;
  std::string text = ctl::renderText(ctl::collectInfo(repository.handle()));
  CAPTURE(text);
  CHECK(text ==
        Containing("stanza 'main'\n  repository         " + repository.storage.describe() + "\n"));
  CHECK(text == Containing("  system identifier  18446744073709551615\n"));
  CHECK(text == Containing("  WAL segment size   1.0 MiB\n"));
  CHECK(text ==
        Containing("backups: 3 complete backups, oldest first\n  20261101T000000Z  timeline 1\n"));
  CHECK(text ==
        Containing(
            "    start           2026-11-01 00:00:00 UTC  0/200028  000000010000000000000002\n"));
  CHECK(text ==
        Containing(
            "    stop            2026-11-01 00:01:15 UTC  0/300100  000000010000000000000003\n"));
  CHECK(text == Containing("    duration        1 min 15 s\n"));
  CHECK(text == Containing("    size            32.0 MiB, 4.0 MiB stored (zstd)\n"));
  CHECK(text == Containing("    tablespace      16385  /srv/ts1\n"));
  CHECK(text ==
        Containing(
            "  timeline  first                     last                      segments  stored"));
  CHECK(text ==
        Containing(
            "         2  00000002000000000000000A  00000002000000000000000E         4  11.7 KiB  -"
            "                                 from timeline 1 at 0/A00028\n"));
  CHECK(text == Containing("    gap: 000000010000000000000005 is missing\n         2  "));
  CHECK(text == Containing("    earliest  0/300100  2026-11-01 00:01:15 UTC  end of backup "
                           "20261101T000000Z (stop time)\n"));
  CHECK(text == Containing("    latest    0/D00000  "));
  CHECK(text ==
        Containing(
            "    hole: 0/500000 to 0/700100 cannot be reached (missing WAL between backups)\n"));
  CHECK(
      text ==
      Containing("end of 00000002000000000000000C (archive time), from backup 20261102T000000Z\n"));
  CHECK(text == Containing("    backup 20261103T000000Z cannot reach consistency: "
                           "00000001000000000000000A is missing\n"));
  // One generation reads as the stanza did before generations existed.
  CHECK(text.find("generation") == std::string::npos);
  SUBCASE("no backups and no window") {
    Repository empty;
    empty.wal(1, 1, 1);
    text = ctl::renderText(ctl::collectInfo(empty.handle()));
    CHECK(text == Containing("backups: none complete (take one with tidemark-basebackup)\n"));
    CHECK(text == Containing("  timeline 1  none: the stanza has no complete backup; take one with "
                             "tidemark-basebackup\n"));
  }
}

TEST_CASE("renderText never shows the window's latest point before its earliest") {
  Promoted repository;
  ctl::InfoReport report = ctl::collectInfo(repository.handle());
  recovery::RecoveryWindow& w = report.generations.back().timelines.front().window;
  REQUIRE(w.available());
  // Archived (storage clock, to the second) before the backup's stop time (server clock, rounded
  // up): the text shows the stop time, and says why.
  w.latest->archivedAt = w.earliest->time - std::chrono::seconds(1);
  std::string text = ctl::renderText(report);
  CAPTURE(text);
  CHECK(text == Containing("    latest    0/A00000  " + formatUtcText(w.earliest->time) +
                           "  end of 000000010000000000000009 (archived before the backup's "
                           "stop time: its clock), from backup 20261102T000000Z\n"));
  CHECK(text.find(formatUtcText(w.latest->archivedAt)) == std::string::npos);
}

TEST_CASE("--output is text by default, or json, and anything else is a usage error") {
  CommandLine commandLine;
  CHECK(ctl::parseOutputFormat(commandLine) == ctl::OutputFormat::Text);
  commandLine.options["output"] = {"json"};
  CHECK(ctl::parseOutputFormat(commandLine) == ctl::OutputFormat::Json);
  commandLine.options["output"] = {"text"};
  CHECK(ctl::parseOutputFormat(commandLine) == ctl::OutputFormat::Text);
  commandLine.options["output"] = {"yaml"};
  auto e = thrownError([&] { ctl::parseOutputFormat(commandLine); });
  CHECK(e.code() == ErrorCode::Usage);
  CHECK(what(e) == "--output 'yaml' is not text or json");
}

TEST_CASE("a damaged backup.json is reported and left out, and the other backups stay") {
  Repository repository;
  repository.wal(1, 2, 9);
  repository.backup("20261101T000000Z", 1, 0x200028, 0x300100);
  repository.storage.setObject(repo::backupInfoFile("main", "20261102T000000Z"),
                               Repository::text("{\"format\": 1, \"label\": "));
  InfoReport report = ctl::collectInfo(repository.handle());
  REQUIRE(report.current().backups.size() == 1);
  REQUIRE(report.current().damagedBackups.size() == 1);
  CHECK(report.current().damagedBackups.front() == Containing("20261102T000000Z"));
  CHECK(timeline(report, 1).window.available());
  auto json = nlohmann::json::parse(ctl::renderJson(report));
  CHECK(json["damaged-backups"].size() == 1);
  CHECK(ctl::renderText(report) == Containing("DAMAGED, left out: "));
}

TEST_CASE(
    "collectInfo reports every generation with its own backups, WAL and recoverable windows") {
  Upgraded repository;
  InfoReport report = ctl::collectInfo(repository.handle());
  REQUIRE(report.generations.size() == 2);
  const auto& first = report.generations[0];
  const auto& second = report.generations[1];

  SUBCASE("each generation's cluster, oldest first, the newest current") {
    CHECK(first.generation.number == 1);
    CHECK(first.generation.systemId == 18446744073709551615ULL);
    CHECK(formatUtc(*first.generation.created) == "2026-11-01T00:00:00Z");
    CHECK_FALSE(first.current);
    CHECK(second.generation.number == 2);
    CHECK(second.generation.systemId == kUpgradedId);
    CHECK(second.generation.pgVersion == 15);
    CHECK(second.generation.walSegmentSize == kSegmentSize);
    CHECK(formatUtc(*second.generation.created) == "2026-11-15T00:00:00Z");
    CHECK(second.current);
    CHECK(&report.current() == &second);
    CHECK(report.info.systemId == 18446744073709551615ULL);  // stanza.json's
  }
  SUBCASE("each backup under the generation of its cluster") {
    REQUIRE(first.backups.size() == 1);
    CHECK(first.backups[0].backup.label == "20261101T000000Z");
    REQUIRE(second.backups.size() == 1);
    CHECK(second.backups[0].backup.label == "20261115T000000Z");
  }
  SUBCASE("WAL of generation 2 with generation 1's file names is generation 2's only") {
    const TimelineInfo& old = timeline(first, 1);
    CHECK(old.wal.first == "000000010000000000000002");
    CHECK(old.wal.last == "000000010000000000000009");
    CHECK(old.wal.segments == 8);
    CHECK(old.wal.storedSize == 8 * 1000);
    CHECK(old.wal.gaps.empty());
    const TimelineInfo& now = timeline(second, 1);
    CHECK(now.wal.first == "000000010000000000000005");
    CHECK(now.wal.last == "000000010000000000000007");
    CHECK(now.wal.segments == 3);
    CHECK(now.wal.storedSize == 3 * 4000);
    CHECK(now.wal.gaps.empty());
  }
  SUBCASE("each generation's window, from its own backups over its own WAL") {
    const auto& w1 = timeline(first, 1).window;
    REQUIRE(w1.available());
    CHECK(w1.earliest->backup == "20261101T000000Z");
    CHECK(w1.earliest->lsn == 0x300100);
    CHECK(w1.latest->lsn == 0xA00000);
    CHECK(w1.latest->segment == "000000010000000000000009");
    const auto& w2 = timeline(second, 1).window;
    REQUIRE(w2.available());
    CHECK(w2.earliest->backup == "20261115T000000Z");
    CHECK(w2.earliest->lsn == 0x500100);
    CHECK(w2.latest->backup == "20261115T000000Z");
    CHECK(w2.latest->lsn == 0x800000);
    CHECK(w2.latest->segment == "000000010000000000000007");
  }
  SUBCASE("a generation without a backup of its own has no window") {
    repository.storage.remove(repo::backupInfoFile("main", "20261115T000000Z"));
    report = ctl::collectInfo(repository.handle());
    CHECK(report.generations[0].backups.size() == 1);
    CHECK(timeline(report.generations[0], 1).window.available());
    CHECK(report.current().backups.empty());
    CHECK_FALSE(timeline(report, 1).window.available());
  }
}

TEST_CASE(
    "renderText shows every generation in turn, its cluster above its backups, WAL and window") {
  Upgraded repository;
  std::string text = ctl::renderText(ctl::collectInfo(repository.handle()));
  CAPTURE(text);
  // The stanza's header names no cluster: each generation's does.
  CHECK(text == Containing("stanza 'main'\n  repository   " + repository.storage.describe() +
                           "\n  created      2026-11-01 00:00:00 UTC\n"));
  CHECK(text == Containing("  generations  2, oldest first below; the current one is generation 2\n"
                           "  last verify  never (tidemark verify)\n"
                           "  last drill   never (tidemark drill)\n\n"
                           "generation 1\n"
                           "  system identifier  18446744073709551615\n"
                           "  PostgreSQL         15\n"
                           "  WAL segment size   1.0 MiB\n"
                           "  recorded           2026-11-01 00:00:00 UTC\n\n"
                           "  backups: 1 complete backup, oldest first\n"
                           "    20261101T000000Z  timeline 1\n"));
  CHECK(text == Containing("\n\ngeneration 2 (current)\n"
                           "  system identifier  7000000000000000001\n"
                           "  PostgreSQL         15\n"
                           "  WAL segment size   1.0 MiB\n"
                           "  recorded           2026-11-15 00:00:00 UTC\n\n"
                           "  backups: 1 complete backup, oldest first\n"
                           "    20261115T000000Z  timeline 1\n"));
  // Generation 1's sections come before generation 2's header, and generation 2's after it.
  const std::size_t boundary = text.find("generation 2 (current)");
  const std::string older = text.substr(0, boundary), newer = text.substr(boundary);
  CHECK(older == Containing("           1  000000010000000000000002  000000010000000000000009  "
                            "       8  7.8 KiB  -        -\n"));
  CHECK(older == Containing("      earliest  0/300100  2026-11-01 00:01:15 UTC  end of backup "
                            "20261101T000000Z (stop time)\n"));
  CHECK(older == Containing("end of 000000010000000000000009 (archive time), from backup "
                            "20261101T000000Z\n"));
  CHECK(older.find("20261115T000000Z") == std::string::npos);
  CHECK(newer == Containing("           1  000000010000000000000005  000000010000000000000007  "
                            "       3  11.7 KiB  -        -\n"));
  CHECK(newer == Containing("      earliest  0/500100  2026-11-15 00:01:15 UTC  end of backup "
                            "20261115T000000Z (stop time)\n"));
  CHECK(newer == Containing("end of 000000010000000000000007 (archive time), from backup "
                            "20261115T000000Z\n"));
  CHECK(newer.find("20261101T000000Z") == std::string::npos);
  CHECK(newer.find("000000010000000000000009") == std::string::npos);
  CHECK(newer == Containing("    (latest: the end of the last segment reachable without a gap"));

  SUBCASE("only the current generation is told to take a backup") {
    repository.storage.remove(repo::backupInfoFile("main", "20261101T000000Z"));
    repository.storage.remove(repo::backupInfoFile("main", "20261115T000000Z"));
    text = ctl::renderText(ctl::collectInfo(repository.handle()));
    CHECK(text == Containing("  recorded           2026-11-01 00:00:00 UTC\n\n"
                             "  backups: none complete\n\n  WAL\n"));
    CHECK(text == Containing("2026-11-15 00:00:00 UTC\n\n"
                             "  backups: none complete (take one with tidemark-basebackup)\n"));
  }
}

TEST_CASE(
    "renderJson keeps the current generation at the top level and lists every generation in "
    "generations") {
  Upgraded repository;
  auto doc = nlohmann::json::parse(ctl::renderJson(ctl::collectInfo(repository.handle())));
  CAPTURE(doc.dump(2));

  SUBCASE("the top level is the current generation's") {
    const auto& s = doc.at("stanza");
    CHECK(s.at("system-identifier") == "7000000000000000001");
    CHECK(s.at("pg-version") == 15);
    CHECK(s.at("created") == "2026-11-01T00:00:00Z");  // the stanza's
    REQUIRE(doc.at("backups").size() == 1);
    CHECK(doc.at("backups")[0].at("label") == "20261115T000000Z");
    REQUIRE(doc.at("timelines").size() == 1);
    CHECK(doc.at("timelines")[0].at("wal").at("first") == "000000010000000000000005");
    CHECK(doc.at("timelines")[0].at("window").at("latest").at("lsn") == "0/800000");
  }
  SUBCASE("every generation, oldest first, with its backups, WAL and windows") {
    const auto& generations = doc.at("generations");
    REQUIRE(generations.size() == 2);
    const auto& g1 = generations[0];
    std::vector<std::string> keys;
    for (const auto& [key, value] : g1.items())
      keys.push_back(key);
    CHECK(keys == std::vector<std::string>{"backups", "created", "current", "damaged-backups",
                                           "number", "pg-version", "system-identifier", "timelines",
                                           "wal-segment-size"});
    CHECK(g1.at("number") == 1);
    CHECK(g1.at("system-identifier") == "18446744073709551615");
    CHECK(g1.at("pg-version") == 15);
    CHECK(g1.at("wal-segment-size") == kSegmentSize);
    CHECK(g1.at("created") == "2026-11-01T00:00:00Z");
    CHECK(g1.at("current") == false);
    REQUIRE(g1.at("backups").size() == 1);
    CHECK(g1.at("backups")[0].at("label") == "20261101T000000Z");
    CHECK(g1.at("backups")[0].at("stop-lsn") == "0/300100");
    REQUIRE(g1.at("timelines").size() == 1);
    const auto& t1 = g1.at("timelines")[0];
    CHECK(t1.at("wal").at("first") == "000000010000000000000002");
    CHECK(t1.at("wal").at("last") == "000000010000000000000009");
    CHECK(t1.at("wal").at("segments") == 8);
    CHECK(t1.at("wal").at("stored-size") == 8000);
    CHECK(t1.at("window").at("earliest").at("backup") == "20261101T000000Z");
    CHECK(t1.at("window").at("latest").at("segment") == "000000010000000000000009");

    const auto& g2 = generations[1];
    CHECK(g2.at("number") == 2);
    CHECK(g2.at("system-identifier") == "7000000000000000001");
    CHECK(g2.at("created") == "2026-11-15T00:00:00Z");
    CHECK(g2.at("current") == true);
    CHECK(g2.at("backups") == doc.at("backups"));
    CHECK(g2.at("timelines") == doc.at("timelines"));
    CHECK(g2.at("timelines")[0].at("wal").at("segments") == 3);
    CHECK(g2.at("timelines")[0].at("wal").at("stored-size") == 12000);
  }
}

TEST_CASE("damaged backups of every generation are listed, each under its generation") {
  Upgraded repository;
  // Of generation 1's cluster, with another segment size: left out of generation 1.
  repo::BackupInfo odd = repository.backup("20261102T000000Z", 1, 0x600028, 0x600100);
  odd.systemId = 18446744073709551615ULL;
  odd.walSegmentSize = 2 * kSegmentSize;
  repository.storage.setObject(repo::backupInfoFile("main", odd.label),
                               Repository::text(odd.toJson()));
  // Unreadable: its generation cannot be told, so it goes with the current one.
  repository.storage.setObject(repo::backupInfoFile("main", "20261116T000000Z"),
                               Repository::text("{\"format\": 1, \"label\": "));
  InfoReport report = ctl::collectInfo(repository.handle());
  REQUIRE(report.generations.size() == 2);
  REQUIRE(report.generations[0].damagedBackups.size() == 1);
  CHECK(report.generations[0].damagedBackups[0] == Containing("backup 20261102T000000Z records "
                                                              "2097152 byte WAL segments"));
  CHECK(report.generations[0].backups.size() == 1);
  REQUIRE(report.current().damagedBackups.size() == 1);
  CHECK(report.current().damagedBackups[0] == Containing("20261116T000000Z"));
  CHECK(report.current().backups.size() == 1);

  SUBCASE("in JSON: all of them at the top level, and each in its generation") {
    auto doc = nlohmann::json::parse(ctl::renderJson(report));
    CHECK(doc.at("damaged-backups").size() == 2);
    CHECK(doc.at("generations")[0].at("damaged-backups") ==
          nlohmann::json(report.generations[0].damagedBackups));
    CHECK(doc.at("generations")[1].at("damaged-backups") ==
          nlohmann::json(report.current().damagedBackups));
  }
  SUBCASE("in text: under the backups of its generation") {
    std::string text = ctl::renderText(report);
    CAPTURE(text);
    const std::size_t boundary = text.find("generation 2 (current)");
    CHECK(text.substr(0, boundary) == Containing("    DAMAGED, left out: backup 20261102T000000Z"));
    CHECK(text.substr(boundary) == Containing("    DAMAGED, left out: "));
    CHECK(text.substr(boundary).find("20261102T000000Z") == std::string::npos);
  }
}

TEST_CASE("the timeline tree shows each timeline under its parent, and the forks") {
  Repository repository;
  repository.wal(1, 2, 9);
  repository.history(2, "1\t0/600000\tbefore 2026-11-02 00:00:00+00\n");  // 1 went on: a fork
  repository.wal(2, 6, 7);
  repository.history(3, "1\t0/600000\tbefore 2026-11-02 00:00:00+00\n2\t0/800000\tno target\n");
  repository.backup("20261101T000000Z", 1, 0x200028, 0x300100);
  InfoReport report = ctl::collectInfo(repository.handle());
  CHECK(timeline(report, 2).parentWentOn);
  CHECK_FALSE(timeline(report, 3).parentWentOn);  // timeline 2 holds nothing after 0/800000
  std::string text = ctl::renderText(report);
  CHECK(text == Containing("timeline tree\n  1; newest WAL 000000010000000000000009, stored "));
  CHECK(text == Containing("\n    2  from 1 at 0/600000 (timeline 1 went on after it: a fork); "
                           "newest WAL 000000020000000000000007, stored "));
  CHECK(text == Containing("\n      3  from 2 at 0/800000; no WAL\n"));
  auto json = nlohmann::json::parse(ctl::renderJson(report));
  CHECK(json["timelines"][1]["parent-went-on"] == true);
  CHECK(json["timelines"][2]["parent-went-on"] == false);
}
