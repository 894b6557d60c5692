// Unit tests of ctl/verify.h: the verification of a repository in memory (damaged, missing and
// mismatched objects, WAL gaps, history files, the incremental record, parallel reads) and the
// backup_manifest pieces (its own checksum, WAL ranges, file checksums).
#include "ctl/verify.h"

#include <doctest/doctest.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/base/error.h"
#include "common/io/hash.h"
#include "common/io/sink.h"
#include "common/pg/lsn.h"
#include "common/repo/layout.h"
#include "common/repo/marks.h"
#include "common/repo/object.h"
#include "common/repo/state.h"
#include "support/check.h"
#include "support/fake_repository.h"
#include "support/forwarding_storage.h"
#include "support/memory_storage.h"
#include "support/segment.h"

using namespace tidemark;
using ctl::VerifyFinding;
using ctl::VerifyOptions;
using ctl::VerifyReport;
using test::kSegmentSize;

namespace {

struct TarFile {
  std::string name, content;
};

// A ustar archive of regular files, ending with two zero blocks.
std::string tarOf(const std::vector<TarFile>& files) {
  std::string tar;
  for (const auto& file : files) {
    std::string header(512, '\0');
    std::memcpy(header.data(), file.name.data(), file.name.size());
    std::snprintf(header.data() + 100, 8, "%07o", 0600);
    std::snprintf(header.data() + 124, 12, "%011o", unsigned(file.content.size()));
    std::snprintf(header.data() + 136, 12, "%011o", 0);
    header[156] = '0';
    std::memcpy(header.data() + 257, "ustar", 6);
    std::memcpy(header.data() + 263, "00", 2);
    std::memset(header.data() + 148, ' ', 8);
    unsigned sum = 0;
    for (char c : header)
      sum += static_cast<unsigned char>(c);
    std::snprintf(header.data() + 148, 8, "%06o", sum);
    tar += header + file.content;
    tar += std::string((512 - file.content.size() % 512) % 512, '\0');
  }
  return tar + std::string(1024, '\0');
}

std::string crcHex(const std::string& content) {
  ctl::ManifestChecksum checksum("CRC32C");
  checksum.update(io::asBytes(content));
  return checksum.finish();
}

// A backup_manifest as PostgreSQL writes it, with its own checksum.
std::string manifestOf(const std::vector<ctl::ManifestFile>& files, std::uint32_t timeline,
                       std::uint64_t start, std::uint64_t end) {
  std::string text = "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [";
  bool first = true;
  for (const auto& f : files) {
    text += first ? "\n" : ",\n";
    first = false;
    text += "{ \"Path\": \"" + f.path + "\", \"Size\": " + std::to_string(f.size) +
            ", \"Last-Modified\": \"2026-11-01 00:00:00 GMT\", \"Checksum-Algorithm\": \"" +
            f.algorithm + "\", \"Checksum\": \"" + f.checksum + "\" }";
  }
  text += " ],\n\"WAL-Ranges\": [\n{ \"Timeline\": " + std::to_string(timeline) +
          ", \"Start-LSN\": \"" + pg::formatLsn(start) + "\", \"End-LSN\": \"" +
          pg::formatLsn(end) + "\" }\n],\n";
  std::string checksum = io::toHex(io::Sha256::of(io::asBytes(text)));
  return text + "\"Manifest-Checksum\": \"" + checksum + "\"}\n";
}

// A repository in memory whose objects are real envelopes: WAL segments (1 MiB, with the first
// page header their name says), history files and complete backups with a tar archive and a
// manifest that agree. WAL goes to the newest generation (upgrade()).
struct Repo : test::FakeRepository {
  std::string walPathOf(int walGeneration, std::uint32_t timeline, std::uint64_t segment) const {
    return repo::walObject("main", walGeneration,
                           *pg::parseWalName(pg::segmentFileName(timeline, segment, kSegmentSize)));
  }
  std::string walPath(std::uint32_t timeline, std::uint64_t segment) const {
    return walPathOf(generation, timeline, segment);
  }
  repo::ObjectSummary put(const std::string& path, const std::string& content) {
    repo::ObjectWriter writer(storage.newWrite(path, {.noReplace = false}), path,
                              {.compress = io::CompressType::Zstd});
    writer.write(io::asBytes(content));
    writer.close();
    REQUIRE(writer.commit());
    return writer.summary();
  }
  // A segment whose first page is the one its name says, of the newest generation's cluster.
  std::string segmentBytes(std::uint32_t timeline, std::uint64_t segment) const {
    io::Buffer bytes = test::makeSegment({.systemId = systemId,
                                          .timeline = timeline,
                                          .segmentNumber = segment,
                                          .segmentSize = kSegmentSize,
                                          .seed = segment,
                                          .randomFraction = 0.01});
    return std::string(io::asText(bytes));
  }
  void segments(std::uint32_t timeline, std::uint64_t first, std::uint64_t last) {
    for (std::uint64_t s = first; s <= last; ++s)
      put(walPath(timeline, s), segmentBytes(timeline, s));
  }
  void partial(std::uint32_t timeline, std::uint64_t segment) {
    std::string name = pg::segmentFileName(timeline, segment, kSegmentSize) + ".partial";
    put(repo::walObject("main", generation, *pg::parseWalName(name)),
        segmentBytes(timeline, segment));
  }
  // A backup on `timeline` from `start` to `stop` with base.tar and backup_manifest; `tweak`
  // changes the manifest's files before it is written.
  repo::BackupInfo goodBackup(
      const std::string& label, std::uint32_t timeline, std::uint64_t start, std::uint64_t stop,
      const std::function<void(std::vector<ctl::ManifestFile>&)>& tweak = {}) {
    std::vector<TarFile> files = {{"backup_label", "START WAL LOCATION: " + label + "\n"},
                                  {"global/pg_control", std::string(8192, 'c')},
                                  {"base/1/1259", std::string(20000, 'x')}};
    std::vector<ctl::ManifestFile> listed;
    for (const auto& f : files)
      listed.push_back({f.name, f.content.size(), "CRC32C", crcHex(f.content)});
    if (tweak) tweak(listed);
    repo::BackupInfo info = backup(label, timeline, start, stop);
    repo::ObjectSummary tar = put(repo::backupObject("main", label, "base.tar"), tarOf(files));
    repo::ObjectSummary manifest = put(repo::backupObject("main", label, "backup_manifest"),
                                       manifestOf(listed, timeline, start, stop));
    info.objects = {{.name = "base.tar",
                     .size = tar.plainSize,
                     .storedSize = tar.storedSize,
                     .sha256 = tar.plainSha256},
                    {.name = "backup_manifest",
                     .size = manifest.plainSize,
                     .storedSize = manifest.storedSize,
                     .sha256 = manifest.plainSha256}};
    storage.setObject(repo::backupInfoFile("main", label), text(info.toJson()));
    return info;
  }
  // Flips one byte in the middle of a stored object.
  void flip(const std::string& path) {
    auto bytes = *storage.object(path);
    bytes[bytes.size() / 2] ^= 0x5a;
    storage.setObject(path, bytes);
  }
};

VerifyReport run(Repo& r, VerifyOptions options = {}) {
  // Verification records are named by the time to the millisecond: one run per millisecond keeps
  // "the newest" unambiguous.
  if (options.incremental) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  return ctl::verifyRepository(r.handle(), options);
}

std::vector<std::string> kinds(const VerifyReport& report) {
  std::vector<std::string> out;
  for (const auto& f : report.findings)
    out.push_back(f.kind + " " + f.object);
  return out;
}

bool has(const VerifyReport& report, const std::string& kind, const std::string& object,
         const std::string& inDetail = "") {
  for (const auto& f : report.findings)
    if (f.kind == kind && f.object == object && f.detail.find(inDetail) != std::string::npos)
      return true;
  return false;
}

const std::string kBase = "main/backups/20261101T000000Z/base.tar";
const std::string kManifest = "main/backups/20261101T000000Z/backup_manifest";

}  // namespace

TEST_CASE("verify reads every object back and names what would make a recovery fail") {
  Repo r;
  r.segments(1, 1, 8);
  r.goodBackup("20261101T000000Z", 1, 0x200028, 0x300100);
  const auto pristine = r.storage.paths();
  std::map<std::string, io::Buffer> saved;
  for (const auto& p : pristine)
    saved[p] = *r.storage.object(p);
  auto restore = [&] {
    for (const auto& p : r.storage.paths())
      if (!saved.count(p)) r.storage.remove(p);
    for (const auto& [p, bytes] : saved)
      r.storage.setObject(p, bytes);
  };

  // Healthy: everything read, nothing found.
  VerifyReport healthy = run(r);
  INFO(kinds(healthy));
  CHECK(healthy.healthy());
  CHECK(healthy.objects == 10);
  CHECK(healthy.objectsRead == 10);
  CHECK(healthy.objectsSkipped == 0);
  CHECK(healthy.read.size() == 10);
  CHECK(healthy.plainBytesRead > 30000);
  CHECK(healthy.notes.empty());

  // A backup folder without backup.json (running, interrupted, or its backup.json deleted): a
  // note, not a finding.
  r.put("main/backups/20261201T000000Z/base.tar", "half a backup");
  VerifyReport unlisted = run(r);
  CHECK(unlisted.healthy());
  REQUIRE(unlisted.notes.size() == 1);
  CHECK(unlisted.notes[0] ==
        test::Containing("'main/backups/20261201T000000Z' has no backup.json"));
  restore();

  // A flipped byte in a WAL object.
  r.flip(r.walPath(1, 5));
  VerifyReport report = run(r);
  CHECK(kinds(report) == std::vector<std::string>{"object-corrupt " + r.walPath(1, 5)});
  CHECK(report.objectsRead == 9);
  // Its fix names the file and the command that pushes it again.
  CHECK(report.findings[0].fix ==
        "if the server that archived it still has 000000010000000000000005 in "
        "pg_wal: move this object aside and push it as archive_command does "
        "(tidemark-archive-push [its options] pg_wal/000000010000000000000005, in the data "
        "directory, as the server's user); if none has it: take a new base backup (a recovery "
        "from an older backup stops at this file)");
  restore();

  // A sound envelope around the wrong segment: segment 5 stored under 6's name, and a segment of
  // another cluster. archive-get would refuse either, stopping the recovery that needs it.
  r.put(r.walPath(1, 6), r.segmentBytes(1, 5));
  report = run(r);
  CHECK(kinds(report) == std::vector<std::string>{"object-corrupt " + r.walPath(1, 6)});
  CHECK(report.findings[0].detail.find("its first page is for WAL location 0/00500000, not "
                                       "0/00600000") != std::string::npos);
  CHECK(report.findings[0].detail.find("archive the segment again from pg_wal") !=
        std::string::npos);
  restore();
  {
    const std::uint64_t ours = r.systemId;
    r.systemId = 42;
    r.put(r.walPath(1, 6), r.segmentBytes(1, 6));
    r.systemId = ours;
  }
  report = run(r);
  CHECK(kinds(report) == std::vector<std::string>{"object-corrupt " + r.walPath(1, 6)});
  CHECK(report.findings[0].detail.find("holds WAL of the cluster with system identifier 42") !=
        std::string::npos);
  restore();

  // A flipped byte in the archive: the object fails, and the manifest is not compared with it.
  r.flip(kBase);
  report = run(r);
  CHECK(kinds(report) == std::vector<std::string>{"object-corrupt " + kBase});
  CHECK(report.findings[0].fix == "take a new base backup: this backup cannot be restored");
  restore();

  // A truncated object: the trailer check (cheap) and the read find it: one finding.
  {
    auto bytes = *r.storage.object(kBase);
    bytes.resize(bytes.size() - 10);
    r.storage.setObject(kBase, bytes);
  }
  report = run(r);
  INFO(kinds(report));
  CHECK(has(report, "object-corrupt", kBase));
  CHECK(std::count_if(report.findings.begin(), report.findings.end(), [&](const auto& f) {
          return f.kind == "object-corrupt" && f.object == kBase;
        }) == 1);
  CHECK(has(report, "backup-mismatch", kBase, "stored bytes"));
  restore();

  // A segment missing in the middle of the backup's timeline.
  r.storage.remove(r.walPath(1, 6));
  report = run(r);
  CHECK(kinds(report) == std::vector<std::string>{"wal-gap " + r.walPath(1, 6)});
  CHECK(report.findings[0].detail.find("missing 000000010000000000000006") != std::string::npos);
  r.storage.remove(r.walPath(1, 7));
  report = run(r);
  REQUIRE(report.findings.size() == 1);
  CHECK(report.findings[0].detail.find(
            "000000010000000000000006 to 000000010000000000000007 (2 files)") != std::string::npos);
  restore();

  // WAL older than the oldest backup is not needed: its absence is no gap.
  r.storage.remove(r.walPath(1, 1));
  CHECK(run(r).healthy());
  restore();

  // A backup object backup.json names is gone.
  r.storage.remove(kManifest);
  report = run(r);
  CHECK(kinds(report) == std::vector<std::string>{"object-missing " + kManifest});
  restore();

  // backup.json records another checksum than the object holds.
  {
    auto info = r.catalog().backups().front();
    info.objects[0].sha256[0] ^= 1;
    r.storage.setObject(repo::backupInfoFile("main", info.label), Repo::text(info.toJson()));
  }
  report = run(r);
  CHECK(kinds(report) == std::vector<std::string>{"backup-mismatch " + kBase});
  restore();

  // A damaged backup.json: the backup is left out and named.
  r.storage.setObject(repo::backupInfoFile("main", "20261101T000000Z"), Repo::text("{not json"));
  report = run(r);
  CHECK(has(report, "backup-damaged", "main/backups/20261101T000000Z/backup.json"));
  restore();

  // A damaged stanza.json: nothing else can be checked, and that is a finding too.
  r.storage.setObject(repo::stanzaFile("main"), Repo::text("{"));
  report = run(r);
  CHECK(kinds(report) == std::vector<std::string>{"stanza-damaged main/stanza.json"});
  restore();
  CHECK(run(r).healthy());
}

TEST_CASE("verify checks backup_manifest against backup.json and the archives") {
  Repo r;
  r.segments(1, 2, 3);
  SUBCASE("an altered manifest fails its own checksum") {
    r.goodBackup("20261101T000000Z", 1, 0x200028, 0x300100);
    // Rewrite the manifest with one changed byte, in a valid envelope.
    io::MemorySink plain;
    REQUIRE(repo::readObject(r.storage, kManifest, plain));
    std::string text(plain.text());
    text[text.find("\"Size\": ") + 8] = '9';
    r.put(kManifest, text);
    auto info = r.catalog().backups().front();
    auto summary = repo::verifyObject(r.storage, kManifest);
    info.objects[1].sha256 = summary->plainSha256;
    info.objects[1].storedSize = summary->storedSize;
    info.objects[1].size = summary->plainSize;
    r.storage.setObject(repo::backupInfoFile("main", info.label), Repo::text(info.toJson()));
    VerifyReport report = run(r);
    INFO(kinds(report));
    CHECK(has(report, "manifest-mismatch", kManifest, "Manifest-Checksum"));
  }
  SUBCASE("WAL ranges that differ from backup.json") {
    r.goodBackup("20261101T000000Z", 1, 0x200028, 0x300100);
    auto info = r.catalog().backups().front();
    info.stopLsn = 0x300200;
    r.storage.setObject(repo::backupInfoFile("main", info.label), Repo::text(info.toJson()));
    VerifyReport report = run(r);
    INFO(kinds(report));
    CHECK(has(report, "manifest-mismatch", kManifest,
              "WAL-Ranges (timeline 1 from 0/200028 to "
              "0/300100) do not match backup.json"));
  }
  SUBCASE("a file whose size, checksum or presence differs from the archive") {
    r.goodBackup("20261101T000000Z", 1, 0x200028, 0x300100, [](auto& files) {
      files[1].size = 4096;
      files[2].checksum = "00000000";
      files.push_back({"base/1/2600", 8192, "CRC32C", "00000000"});
      files.erase(files.begin());
    });
    VerifyReport report = run(r);
    INFO(kinds(report));
    CHECK(has(report, "manifest-mismatch", kManifest,
              "'global/pg_control' holds 8192 bytes in the archive, the manifest says 4096"));
    CHECK(has(report, "manifest-mismatch", kManifest, "'base/1/1259' has CRC32C checksum"));
    CHECK(has(report, "manifest-mismatch", kManifest, "lists 'base/1/2600', which no archive"));
    CHECK(has(report, "manifest-mismatch", kManifest, "hold 'backup_label', which the manifest"));
    CHECK(report.findings.size() == 4);
  }
}

TEST_CASE("verify follows timelines: histories, .partial files at a promotion, missing files") {
  Repo r;
  // Timeline 1: segments 2-9 and A.partial; promoted to timeline 2 at 0/A00028 (segment A is
  // then read from timeline 2); timeline 2: A-C.
  r.segments(1, 2, 9);
  r.partial(1, 0xA);
  r.history(2, "1\t0/A00028\tno recovery target specified\n");
  r.segments(2, 0xA, 0xC);
  r.goodBackup("20261101T000000Z", 1, 0x200028, 0x300100);
  const std::string history2 = "main/wal/00000002.history";
  VerifyReport report = run(r);
  INFO(kinds(report));
  CHECK(report.healthy());
  CHECK(report.objectsRead == 8 + 1 + 1 + 3 + 2);

  SUBCASE("a missing .history file of a timeline with segments") {
    r.storage.remove(history2);
    report = run(r);
    INFO(kinds(report));
    CHECK(has(report, "history-missing", history2, "timeline 2 (3 segments) has no"));
    CHECK(report.findings.size() == 1);
  }
  SUBCASE("a damaged .history file") {
    r.put(history2, "this is not a history\n");
    report = run(r);
    CHECK(kinds(report) == std::vector<std::string>{"history-damaged " + history2});
    CHECK(report.findings[0].fix ==
          test::Containing("still has 00000002.history in pg_wal: move this object aside and push "
                           "it as archive_command does (tidemark-archive-push [its options] "
                           "pg_wal/00000002.history, in the data directory, as the server's "
                           "user); if none has it: rebuild it (the parent timeline's"));
  }
  SUBCASE("a .history object whose envelope is damaged: one finding, not two") {
    r.flip(history2);
    report = run(r);
    CHECK(kinds(report) == std::vector<std::string>{"object-corrupt " + history2});
    // The fix the history-damaged finding gave: no new backup brings a timeline's history back.
    CHECK(report.findings[0].fix ==
          test::Containing("if none has it: rebuild it (the parent timeline's history file"));
  }
  SUBCASE("a .history object of a newer format: unreadable, not damaged, and said once") {
    auto bytes = *r.storage.object(history2);
    bytes[8] = 2;  // the envelope's version, its header check made again
    const std::size_t headerSize = io::getLe16(&bytes[10]);
    const io::Sha256Digest check = io::Sha256::of({bytes.data(), headerSize - 4});
    std::copy_n(check.begin(), 4, bytes.begin() + std::ptrdiff_t(headerSize - 4));
    r.storage.setObject(history2, bytes);
    report = run(r);
    CHECK(kinds(report) == std::vector<std::string>{"object-unreadable " + history2});
    CHECK(report.findings[0].detail == test::Containing("object format version 2"));
  }
  SUBCASE("a segment missing on the new timeline after the switch") {
    r.storage.remove(r.walPath(2, 0xB));
    report = run(r);
    CHECK(kinds(report) == std::vector<std::string>{"wal-gap " + r.walPath(2, 0xB)});
    CHECK(report.findings[0].detail.find("along timeline 2") != std::string::npos);
  }
  SUBCASE("the switch segment missing on both timelines") {
    r.storage.remove(r.walPath(2, 0xA));
    report = run(r);
    CHECK(kinds(report) == std::vector<std::string>{"wal-gap " + r.walPath(2, 0xA)});
  }
  SUBCASE("histories that disagree, and a segment from before its timeline began") {
    r.history(3, "1\t0/900000\tno recovery target specified\n2\t0/C00028\tpromoted\n");
    r.segments(3, 0xC, 0xC);
    r.segments(3, 0x4, 0x4);
    report = run(r);
    INFO(kinds(report));
    CHECK(has(report, "history-inconsistent", "main/wal/00000003.history",
              "00000003.history and 00000002.history disagree"));
    CHECK(has(report, "history-inconsistent", r.walPath(3, 4), "began at 0/C00028"));
  }
  SUBCASE("an ancestor's missing history file") {
    r.history(3, "1\t0/A00028\tno recovery target specified\n2\t0/C00028\tpromoted\n");
    r.segments(3, 0xC, 0xD);
    r.storage.remove(history2);
    report = run(r);
    INFO(kinds(report));
    CHECK(has(report, "history-missing", history2));
  }
}

TEST_CASE("verify --incremental reads only what is new, changed or due, and records it") {
  Repo r;
  r.segments(1, 2, 5);
  r.goodBackup("20261101T000000Z", 1, 0x200028, 0x300100);
  const std::int64_t day = 86400;
  VerifyOptions options{.incremental = true, .now = 1'800'000'000};

  VerifyReport first = run(r, options);
  CHECK(first.healthy());
  CHECK(first.objectsRead == 6);
  CHECK_FALSE(first.previousRecord);
  REQUIRE(first.record);
  auto record = repo::newestStateRecord(r.handle(), r.catalog().stanza().identity(),
                                        repo::state_kind::kVerify, "objects");
  REQUIRE(record);
  CHECK(record->path == *first.record);
  auto doc = nlohmann::json::parse(record->content);
  REQUIRE(doc.at("objects").size() == 6);
  CHECK(doc.at("objects")[0].at("verified") == 1'800'000'000);
  CHECK(doc.at("objects")[0].contains("size"));
  CHECK(doc.at("objects")[0].contains("modified"));

  options.now += day;
  VerifyReport second = run(r, options);
  CHECK(second.objectsRead == 0);
  CHECK(second.objectsSkipped == 6);
  CHECK(second.previousRecord == first.record);

  // Two new segments: exactly those are read.
  r.segments(1, 6, 7);
  options.now += day;
  VerifyReport third = run(r, options);
  CHECK(third.read == std::vector<std::string>{r.walPath(1, 6), r.walPath(1, 7)});

  // An object replaced by one of another size is read again (and its damage found).
  r.put(r.walPath(1, 3), "another segment 3, longer than the first one");
  r.flip(r.walPath(1, 3));
  options.now += day;
  VerifyReport fourth = run(r, options);
  CHECK(fourth.read.empty());
  CHECK(kinds(fourth) == std::vector<std::string>{"object-corrupt " + r.walPath(1, 3)});
  // ... and again on the next run: damaged objects are not recorded as verified.
  options.now += day;
  CHECK(kinds(run(r, options)) == kinds(fourth));
  r.segments(1, 3, 3);

  // Objects verified --recheck-older-than ago or longer are read again.
  options.now += day;
  options.recheckOlderThan = 4 * day;
  VerifyReport recheck = run(r, options);
  CHECK(recheck.healthy());
  // Verified 5 days ago: segments 2, 4, 5 and the backup; 6 and 7 were verified 3 days ago (less
  // than 4), segment 3 is new.
  CHECK(recheck.read == std::vector<std::string>{kManifest, kBase, r.walPath(1, 2), r.walPath(1, 3),
                                                 r.walPath(1, 4), r.walPath(1, 5)});

  // A run without --incremental reads everything and writes no record.
  auto records = repo::listStateRecords(r.handle(), repo::state_kind::kVerify, "objects");
  VerifyReport full = run(r, {.now = options.now});
  CHECK(full.objectsRead == 8);
  CHECK_FALSE(full.record);
  CHECK(repo::listStateRecords(r.handle(), repo::state_kind::kVerify, "objects").size() ==
        records.size());

  // A damaged newest record: a note, everything read, and a new record that works again. (Record
  // names carry the time to the millisecond: the pauses keep their order.)
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  repo::writeStateRecord(r.handle(), r.catalog().stanza().identity(), repo::state_kind::kVerify,
                         "objects", "{\"objects\": 12}");
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  VerifyReport afterDamage = run(r, options);
  CHECK(afterDamage.healthy());
  CHECK(afterDamage.objectsRead == 8);
  REQUIRE(afterDamage.notes.size() == 1);
  CHECK(afterDamage.notes[0].find("the newest verification record cannot be used") !=
        std::string::npos);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(run(r, options).objectsRead == 0);
}

TEST_CASE("verify selects objects with --backup, --wal-only and --since, and reads in parallel") {
  Repo r;
  r.segments(1, 2, 9);
  r.goodBackup("20261101T000000Z", 1, 0x200028, 0x300100);
  r.goodBackup("20261102T000000Z", 1, 0x600028, 0x700100);

  VerifyReport one = run(r, {.backups = {"20261102T000000Z"}});
  CHECK(one.read == std::vector<std::string>{"main/backups/20261102T000000Z/backup_manifest",
                                             "main/backups/20261102T000000Z/base.tar",
                                             r.walPath(1, 6), r.walPath(1, 7)});
  VerifyReport wal = run(r, {.walOnly = true});
  CHECK(wal.objectsRead == 8);
  CHECK(run(r, {.since = std::time(nullptr) + 3600}).objectsRead == 0);
  CHECK(run(r, {.since = std::time(nullptr) - 3600}).objectsRead == 12);
  // The cheap checks still cover everything: a gap outside the subset is reported.
  r.storage.remove(r.walPath(1, 9));
  r.segments(1, 10, 10);
  CHECK(kinds(run(r, {.walOnly = true})) == std::vector<std::string>{"wal-gap " + r.walPath(1, 9)});
  CHECK(test::thrownError([&] { run(r, {.backups = {"20261231T000000Z"}}); }).code() ==
        ErrorCode::Config);

  // Several threads, each with a connection of its own, find the same.
  r.flip(r.walPath(1, 4));
  r.flip("main/backups/20261102T000000Z/base.tar");
  std::atomic<int> opened = 0;  // counted from every reading thread at once
  repo::Repository parallel(std::make_unique<test::ForwardingStorage>(r.storage), "main", {}, {},
                            [&] {
                              ++opened;
                              return std::make_unique<test::ForwardingStorage>(r.storage);
                            });
  VerifyReport report = ctl::verifyRepository(parallel, {.jobs = 4});
  CHECK(opened == 4);
  CHECK(kinds(report) == std::vector<std::string>{
                             "object-corrupt main/backups/20261102T000000Z/base.tar",
                             "object-corrupt " + r.walPath(1, 4), "wal-gap " + r.walPath(1, 9)});
  CHECK(report.objectsRead == 10);
  CHECK(kinds(ctl::verifyRepository(r.handle(), {})) == kinds(report));

  // The JSON report: every finding, the counts, what was read.
  auto doc = nlohmann::json::parse(ctl::renderVerifyJson(report));
  CHECK(doc.at("healthy") == false);
  CHECK(doc.at("objects").at("read") == 10);
  CHECK(doc.at("counts").at("object-corrupt") == 2);
  CHECK(doc.at("counts").at("wal-gap") == 1);
  CHECK(doc.at("findings").size() == 3);
  CHECK(doc.at("findings")[2].at("object") == r.walPath(1, 9));
  CHECK(doc.at("findings")[2].at("kind") == "wal-gap");
  std::string summary = ctl::renderVerifySummary(report);
  CHECK(summary.find("verify: 3 problems (object-corrupt: 2, wal-gap: 1)") != std::string::npos);
  // What to do, after each finding, in both.
  CHECK(doc.at("findings")[2].at("fix") == test::Containing("take a new base backup now"));
  CHECK(summary == test::Containing("  wal-gap  " + r.walPath(1, 9) + "\n    missing "));
  CHECK(summary == test::Containing("\n    fix: take a new base backup now (a recovery from an "
                                    "older backup stops at the gap); for each missing file, if the "
                                    "server that archived it still has <file> in "
                                    "pg_wal: push it as archive_command does "
                                    "(tidemark-archive-push [its options] pg_wal/<file>, in the "
                                    "data directory, as the server's user)\n"));
}

TEST_CASE("each kind of finding says what to do, by what the object is") {
  auto fix = [](std::string object, std::string kind) {
    return ctl::verifyFix({.object = std::move(object), .kind = std::move(kind)});
  };
  const std::string wal = "main/wal/0000000100000000/";
  // A .partial or .backup file: no recovery reads it, so no new backup is asked for.
  CHECK(fix(wal + "000000010000000000000005.partial", "object-corrupt") ==
        test::Containing("; if none has it: make sure the next timeline's first segment is "
                         "archived (a recovery then never reads this file), and move this "
                         "object aside"));
  CHECK(fix(wal + "000000010000000000000005.00000028.backup", "object-missing") ==
        test::Containing("; if none has it: nothing is lost, no recovery reads it; find out what "
                         "deletes objects from the repository"));
  // A segment missing (expired by someone else, say): pushed again, or a new backup.
  CHECK(fix("main/wal-2/0000000100000000/000000010000000000000005", "object-missing") ==
        test::Containing("pg_wal/000000010000000000000005, in the data directory, as the "
                         "server's user); if none has it: take a new base backup"));
  CHECK(fix("main/wal/00000003.history", "history-missing") ==
        "if the server that archived it still has 00000003.history in pg_wal: push it "
        "as archive_command does (tidemark-archive-push [its options] pg_wal/00000003.history, in "
        "the data directory, as the server's user); if none has it: rebuild it (the parent "
        "timeline's history file plus a line <parent timeline><TAB><switch LSN><TAB><reason>; "
        "pg_waldump shows the switch) and push it as above");
  // A backup's objects: a new backup.
  CHECK(fix("main/backups/20261102T000000Z/base.tar", "object-missing") ==
        "take a new base backup, and find out what deletes objects from the repository");
  CHECK(fix("main/backups/20261102T000000Z/backup_manifest", "manifest-mismatch") ==
        "the backup cannot be trusted: take a new base backup");
  // Whatever the object, a key or storage problem is fixed where it is, then verified again.
  CHECK(fix(wal + "000000010000000000000005", "object-unreadable") ==
        test::Containing("the detail says which failed); then verify again"));
  for (const char* kind :
       {"object-corrupt", "object-missing", "object-unreadable", "backup-damaged",
        "backup-mismatch", "manifest-mismatch", "wal-gap", "history-missing", "history-damaged",
        "history-inconsistent", "stanza-damaged", "no-backup"}) {
    CAPTURE(kind);
    CHECK_FALSE(fix("main/stanza.json", kind).empty());
  }
}

TEST_CASE("verify reads and checks every generation of an upgraded stanza") {
  // Generation 1: segments 1-D of timeline 1 and a backup in 2-3. After pg_upgrade the new
  // cluster's WAL names continue on timeline 1 and overlap (A-D are in both folders); generation
  // 2: segments A-E and a backup in B-C.
  Repo r;
  r.segments(1, 1, 0xD);
  r.goodBackup("20261101T000000Z", 1, 0x200028, 0x300100);
  r.upgrade(7'400'000'000'000'000'001ULL);
  r.segments(1, 0xA, 0xE);
  r.goodBackup("20261116T000000Z", 1, 0xB00028, 0xC00100);
  const std::string old = r.walPathOf(1, 1, 0xC), now = r.walPathOf(2, 1, 0xC);
  REQUIRE(old == "main/wal/0000000100000000/00000001000000000000000C");
  REQUIRE(now == "main/wal-2/0000000100000000/00000001000000000000000C");

  VerifyReport healthy = run(r);
  INFO(kinds(healthy));
  CHECK(healthy.healthy());
  CHECK(healthy.objects == 13 + 2 + 5 + 2);
  CHECK(healthy.objectsRead == 13 + 2 + 5 + 2);
  CHECK(std::count(healthy.read.begin(), healthy.read.end(), old) == 1);
  CHECK(std::count(healthy.read.begin(), healthy.read.end(), now) == 1);

  SUBCASE(
      "a segment missing in generation 2 is named with its generation, though generation 1 "
      "holds a file of that name") {
    r.storage.remove(now);
    VerifyReport report = run(r);
    REQUIRE(kinds(report) == std::vector<std::string>{"wal-gap " + now});
    CHECK(report.findings[0].detail.starts_with(
        "generation 2: missing 00000001000000000000000C: a recovery from backup 20261116T000000Z"));
    // Generation 1's file of that name, missing: its own finding, in its own folder.
    r.put(now, r.segmentBytes(1, 0xC));
    r.storage.remove(old);
    report = run(r);
    REQUIRE(kinds(report) == std::vector<std::string>{"wal-gap " + old});
    CHECK(report.findings[0].detail.starts_with(
        "missing 00000001000000000000000C: a recovery from backup 20261101T000000Z"));
  }
  SUBCASE("a flipped byte in a generation-2 WAL object") {
    r.flip(now);
    VerifyReport report = run(r);
    REQUIRE(kinds(report) == std::vector<std::string>{"object-corrupt " + now});
    CHECK(report.findings[0].detail.starts_with("generation 2: "));
    CHECK(report.objectsRead == healthy.objectsRead - 1);
  }
  SUBCASE("a low-water mark counts only in its own generation") {
    // Generation 1's WAL below E expired on purpose; generation 2's was not.
    repo::writeLowWaterMark(r.handle(), r.catalog().stanza().identity(), 1, 1, 0xE,
                            "00000001000000000000000E");
    r.storage.remove(old);
    r.storage.remove(now);
    CHECK(kinds(run(r)) == std::vector<std::string>{"wal-gap " + now});
  }
  SUBCASE("--backup reads the WAL of its own generation, --wal-only every generation's") {
    CHECK(run(r, {.backups = {"20261116T000000Z"}}).read ==
          std::vector<std::string>{"main/backups/20261116T000000Z/backup_manifest",
                                   "main/backups/20261116T000000Z/base.tar", r.walPathOf(2, 1, 0xB),
                                   now});
    CHECK(run(r, {.backups = {"20261101T000000Z"}}).read ==
          std::vector<std::string>{kManifest, kBase, r.walPathOf(1, 1, 2), r.walPathOf(1, 1, 3)});
    CHECK(run(r, {.walOnly = true}).objectsRead == 13 + 5);
  }
  SUBCASE("--incremental records the objects of every generation") {
    VerifyOptions options{.incremental = true, .now = 1'800'000'000};
    CHECK(run(r, options).objectsRead == healthy.objectsRead);
    options.now += 86400;
    VerifyReport second = run(r, options);
    CHECK(second.objectsRead == 0);
    CHECK(second.objectsSkipped == healthy.objectsRead);
    r.segments(1, 0xF, 0xF);
    options.now += 86400;
    CHECK(run(r, options).read == std::vector<std::string>{r.walPathOf(2, 1, 0xF)});
  }
  SUBCASE("a damaged or missing generation record is a finding that names it") {
    const std::string record = repo::generationFile("main", 2);
    const io::Buffer saved = *r.storage.object(record);
    r.storage.setObject(record, Repo::text("{"));
    VerifyReport report = run(r);
    CHECK(kinds(report) == std::vector<std::string>{"stanza-damaged main/generations/2.json"});
    // A third generation, and the second's record lost: WAL of generation 2 would pass for
    // another generation's.
    r.storage.setObject(record, saved);
    r.upgrade(7'500'000'000'000'000'001ULL);
    r.storage.remove(record);
    report = run(r);
    REQUIRE(kinds(report) == std::vector<std::string>{"stanza-damaged main/generations/2.json"});
    CHECK(report.findings[0].detail.find("has generation 3 but no generation 2") !=
          std::string::npos);
  }
  SUBCASE("a current generation without a complete backup") {
    r.upgrade(7'500'000'000'000'000'001ULL);
    r.segments(1, 0xF, 0x10);
    VerifyReport report = run(r);
    REQUIRE(kinds(report) == std::vector<std::string>{"no-backup main/backups"});
    CHECK(report.findings[0].detail.starts_with("generation 3 of the stanza"));
    CHECK(report.objectsRead == healthy.objectsRead + 2);
  }
}

TEST_CASE("backup_manifest: its own checksum, WAL ranges and files, and file checksums") {
  std::string text =
      manifestOf({{"backup_label", 12, "CRC32C", "e3069283"}}, 2, 0x200028, 0x300100);
  ctl::Manifest manifest;
  CHECK(ctl::parseManifest(text, manifest).empty());
  REQUIRE(manifest.walRanges.size() == 1);
  CHECK(manifest.walRanges[0].timeline == 2);
  CHECK(manifest.walRanges[0].start == 0x200028);
  CHECK(manifest.walRanges[0].end == 0x300100);
  REQUIRE(manifest.files.size() == 1);
  CHECK(manifest.files[0].path == "backup_label");
  CHECK(manifest.files[0].size == 12);

  std::string altered = text;
  altered[altered.find("12")] = '3';
  ctl::Manifest other;
  auto problems = ctl::parseManifest(altered, other);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("does not match the SHA-256 of its content") != std::string::npos);
  CHECK(ctl::parseManifest("{\"Files\": []}", other).front() ==
        "it has no \"Manifest-Checksum\" line");
  CHECK(ctl::parseManifest("not json\n\"Manifest-Checksum\": 1", other)
            .front()
            .starts_with("it is not valid JSON"));

  // CRC-32C as PostgreSQL writes it: the value's bytes in memory order, in hex.
  CHECK(crcHex("123456789") == "839206e3");  // CRC-32C("123456789") = 0xE3069283
  std::string data(100003, '\0');
  for (std::size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<char>(i * 7919 % 251);
  CHECK(ctl::fastCrc32c(io::asBytes(data)) == io::crc32c(io::asBytes(data)));
  CHECK(ctl::fastCrc32c(io::asBytes(data.substr(5000)),
                        ctl::fastCrc32c(io::asBytes(data.substr(0, 5000)))) ==
        io::crc32c(io::asBytes(data)));
  ctl::ManifestChecksum sha("SHA256");
  sha.update(io::asBytes(std::string("abc")));
  CHECK(sha.finish() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK_FALSE(ctl::ManifestChecksum("NONE").valid());
}
