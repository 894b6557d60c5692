// Unit tests of common/repo/state.h and marks.h: state records written once, the newest wins,
// MAC'd with encryption; keep marks, low-water marks and leases on top of them.
#include "common/repo/state.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "common/base/error.h"
#include "common/repo/marks.h"
#include "support/check.h"
#include "support/fake_repository.h"
#include "support/forwarding_storage.h"
#include "support/memory_storage.h"

using namespace tidemark;

TEST_CASE("state records: written once under unique names, the newest wins, compaction keeps it") {
  test::FakeRepository f;
  repo::Repository repository = f.handle();
  auto a = repo::writeStateRecord(repository, "id", "keep", "L", "{\"n\":1}");
  auto b = repo::writeStateRecord(repository, "id", "keep", "L", "{\"n\":2}");
  CHECK(a.path != b.path);
  CHECK(a.path.starts_with("main/state/keep/L/"));
  auto records = repo::listStateRecords(repository, "keep", "L");
  REQUIRE(records.size() == 2);
  auto newest = repo::newestStateRecord(repository, "id", "keep", "L");
  REQUIRE(newest);
  CHECK(newest->content == "{\"n\":2}");
  CHECK(repo::listStateSubjects(repository, "keep") == std::vector<std::string>{"L"});
  CHECK(repo::compactStateRecords(repository, "keep", "L") == 1);
  CHECK(repo::listStateRecords(repository, "keep", "L").size() == 1);
  CHECK(repo::newestStateRecord(repository, "id", "keep", "L")->content == "{\"n\":2}");
  CHECK_FALSE(repo::newestStateRecord(repository, "id", "keep", "other"));
}

TEST_CASE("keep marks: the newest record decides, and a release undoes a mark") {
  test::FakeRepository f;
  repo::Repository repository = f.handle();
  repo::writeKeepMark(repository, "id", "20261101T000000Z", true);
  repo::writeKeepMark(repository, "id", "20261102T000000Z", true);
  CHECK(repo::keepMarks(repository, "id") ==
        std::set<std::string>{"20261101T000000Z", "20261102T000000Z"});
  repo::writeKeepMark(repository, "id", "20261101T000000Z", false);
  CHECK(repo::keepMarks(repository, "id") == std::set<std::string>{"20261102T000000Z"});
}

TEST_CASE("a keep record moved to another backup's folder is refused") {
  test::FakeRepository f;
  repo::Repository repository = f.handle();
  repo::writeKeepMark(repository, "id", "20261101T000000Z", false);
  auto record = repo::listStateRecords(repository, "keep", "20261101T000000Z").at(0);
  f.storage.setObject("main/state/keep/20261102T000000Z/" + record.name,
                      *f.storage.object(record.path));
  CHECK_THROWS_AS(repo::keepMarks(repository, "id"), Error);
}

namespace {

// A handle that authenticates state records with a key, as openRepository makes one.
repo::Repository authenticating(storage::Storage& s) {
  io::Key256 bytes{};
  bytes.fill(3);
  return repo::Repository(s, "main", repo::Keyring{.current = repo::MasterKey(bytes, "k")},
                          {.encryption = io::EncryptType::Aes256Gcm});
}

// Reads through to `inner`, but a MAC record's read finds the record it vouches for removed first
// (expire compacting between a reader's two reads).
struct CompactedMeanwhile : test::ForwardingStorage {
  explicit CompactedMeanwhile(test::MemoryStorage& inner)
      : ForwardingStorage(inner), inner_(inner) {}
  bool read(const std::string& path, io::Sink& out, storage::ReadOptions options) override {
    if (path.ends_with(".mac")) {
      inner_.remove(path.substr(0, path.size() - 4));
      inner_.remove(path);
    }
    return ForwardingStorage::read(path, out, options);
  }
  test::MemoryStorage& inner_;
};

}  // namespace

TEST_CASE("records left out are told to a reader that asks, records compacted meanwhile are not") {
  test::FakeRepository f;
  repo::Repository repository = authenticating(f.storage);
  repo::GapRecord gap{.systemId = 7,
                      .first = "000000010000000000000006",
                      .last = "000000010000000000000006",
                      .files = 1};
  repo::writeGapRecord(repository, "id", gap);
  gap.last = "000000010000000000000008";
  gap.files = 3;
  repo::writeGapRecord(repository, "id", gap);
  SUBCASE("a newer gap record that fails its MAC: the older holds, and the reader is told") {
    auto newest = repo::listStateRecords(repository, "gap", repo::gapSubject(gap)).back();
    auto bytes = *f.storage.object(newest.path);
    std::string edited(bytes.begin(), bytes.end());
    edited.replace(edited.find("008"), 3, "009");
    f.storage.setObject(newest.path, test::FakeRepository::text(edited));
    std::vector<std::string> leftOut;
    auto gaps = repo::readGapRecords(repository, "id", &leftOut);
    REQUIRE(gaps.size() == 1);
    CHECK(gaps[0].last == "000000010000000000000006");
    REQUIRE(leftOut.size() == 1);
    CHECK(leftOut[0] == test::Containing(newest.path));
  }
  SUBCASE(
      "a newer record signed with a key the reader does not hold: an error, or for records "
      "that only inform, the older holds") {
    // A command run with another encryption.key-file wrote it: a host a key rotation reached
    // first (its lease must not be ignored by an expire elsewhere), or a wrong key-file.
    io::Key256 otherBytes{};
    otherBytes.fill(9);
    repo::Repository wrongKey(f.storage, "main",
                              repo::Keyring{.current = repo::MasterKey(otherBytes, "wrong")},
                              {.encryption = io::EncryptType::Aes256Gcm});
    gap.last = "000000010000000000000009";
    gap.files = 4;
    repo::writeGapRecord(wrongKey, "id", gap);
    Error e = test::thrownError([&] { repo::readGapRecords(repository, "id"); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(test::what(e) == test::Containing("was authenticated with key"));
    std::vector<std::string> leftOut;
    auto newest =
        repo::newestStateRecord(repository, "id", "gap", repo::gapSubject(gap), &leftOut, true);
    REQUIRE(newest);
    CHECK(newest->content.find("000000010000000000000008") != std::string::npos);
    REQUIRE(leftOut.size() == 1);
    CHECK(leftOut[0] == test::Containing("was authenticated with key"));
  }
  SUBCASE("a low-water mark removed between the reads of it and its MAC is no mark left out") {
    repo::writeLowWaterMark(repository, "id", 1, 1, 9, "000000010000000000000009");
    CompactedMeanwhile store(f.storage);
    repo::Repository reader = authenticating(store);
    std::vector<std::string> leftOut;
    CHECK_FALSE(repo::lowWaterMark(reader, "id", 1, 1, &leftOut));
    CHECK(leftOut.empty());
  }
}

TEST_CASE("gap records of two clusters that dropped from the same WAL name both hold") {
  test::FakeRepository f;
  repo::Repository repository = authenticating(f.storage);
  // A rolled-back upgrade: both clusters wrote 000000010000000000000006 and dropped from it.
  const repo::GapRecord old{.systemId = 7,
                            .first = "000000010000000000000006",
                            .last = "000000010000000000000007",
                            .files = 2};
  repo::GapRecord upgraded = old;
  upgraded.systemId = 8;
  upgraded.last = "000000010000000000000006";
  upgraded.files = 1;
  repo::writeGapRecord(repository, "id", old);
  repo::writeGapRecord(repository, "id", upgraded);
  auto gaps = repo::readGapRecords(repository, "id");
  REQUIRE(gaps.size() == 2);
  CHECK(gaps[0].systemId == 7);
  CHECK(gaps[0].files == 2);
  CHECK(gaps[1].systemId == 8);
  CHECK(gaps[1].files == 1);
  SUBCASE("a record named by its first file alone (made before) is read, and not twice") {
    repo::GapRecord longer = old;
    longer.last = "000000010000000000000009";
    longer.files = 4;
    nlohmann::ordered_json doc;
    doc["system-id"] = longer.systemId;
    doc["first"] = longer.first;
    doc["last"] = longer.last;
    doc["files"] = longer.files;
    doc["first-dropped-ms"] = 1;
    doc["last-dropped-ms"] = 2;
    repo::writeStateRecord(repository, "id", "gap", longer.first, doc.dump(2));
    gaps = repo::readGapRecords(repository, "id");
    REQUIRE(gaps.size() == 2);
    CHECK(gaps[0].systemId == 7);
    CHECK(gaps[0].files == 4);
    CHECK(gaps[1].systemId == 8);
  }
  SUBCASE("a record moved under another cluster's name is left out") {
    auto record = repo::listStateRecords(repository, "gap", repo::gapSubject(old)).back();
    std::vector<std::string> leftOut;
    auto bytes = *f.storage.object(record.path);
    repo::writeStateRecord(repository, "id", "gap", "9-" + old.first,
                           std::string(bytes.begin(), bytes.end()));
    gaps = repo::readGapRecords(repository, "id", &leftOut);
    CHECK(gaps.size() == 2);
    CHECK(leftOut.size() == 1);
  }
}

TEST_CASE("low-water marks and leases") {
  test::FakeRepository f;
  repo::Repository repository = f.handle();
  CHECK_FALSE(repo::lowWaterMark(repository, "id", 1, 1));
  repo::writeLowWaterMark(repository, "id", 1, 1, 6, "000000010000000000000006");
  repo::writeLowWaterMark(repository, "id", 1, 1, 9, "000000010000000000000009");
  CHECK(repo::lowWaterMark(repository, "id", 1, 1) == 9u);
  CHECK_FALSE(repo::lowWaterMark(repository, "id", 1, 2));
  // Another generation's timeline 1 has marks of its own.
  CHECK_FALSE(repo::lowWaterMark(repository, "id", 2, 1));
  repo::writeLowWaterMark(repository, "id", 2, 1, 3, "000000010000000000000003");
  CHECK(repo::lowWaterMark(repository, "id", 2, 1) == 3u);
  CHECK(repo::lowWaterMark(repository, "id", 1, 1) == 9u);

  repo::Lease lease{.id = repo::newLeaseId(),
                    .holder = "test",
                    .backup = "20261101T000000Z",
                    .timelines = {1, 2},
                    .firstSegment = 3,
                    .firstSegmentName = "000000010000000000000003",
                    .timeoutSeconds = 60};
  repo::writeLease(repository, "id", lease);
  auto leases = repo::readLeases(repository, "id");
  REQUIRE(leases.size() == 1);
  CHECK(leases[0].timelines == std::set<std::uint32_t>{1, 2});
  CHECK(repo::leaseLive(leases[0], leases[0].stored + 60));
  CHECK_FALSE(repo::leaseLive(leases[0], leases[0].stored + 61));
  lease.released = true;
  repo::writeLease(repository, "id", lease);
  CHECK_FALSE(repo::leaseLive(repo::readLeases(repository, "id").at(0), 0));

  auto marker = repo::parseLeaseMarker(repo::leaseMarker(lease, "main", "sid"));
  REQUIRE(marker);
  CHECK(marker->lease.id == lease.id);
  CHECK(marker->stanzaId == "sid");
  CHECK_FALSE(repo::parseLeaseMarker("{\"lease\": \"../x\"}"));
}
