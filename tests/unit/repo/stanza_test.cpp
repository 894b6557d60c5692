// Unit tests of common/repo/stanza.h: stanza.json, and checking files against a stanza.
#include "common/repo/stanza.h"

#include <doctest/doctest.h>

#include "common/base/error.h"
#include "common/base/version.h"
#include "common/repo/layout.h"
#include "support/check.h"
#include "support/forwarding_storage.h"
#include "support/memory_storage.h"

using namespace tidemark;
using namespace tidemark::repo;
using test::Containing;
using test::thrownError;
using test::what;

namespace {

const StanzaInfo kCandidate{
    .systemId = 7000000000000000001ULL, .pgVersion = 15, .walSegmentSize = 16u << 20};

// A storage where another process creates the stanza between our check and our write.
class RacingStorage final : public test::ForwardingStorage {
 public:
  RacingStorage(test::MemoryStorage& inner, std::string winner)
      : ForwardingStorage(inner), inner_(inner), winner_(std::move(winner)) {}
  std::unique_ptr<storage::Write> newWrite(const std::string& path,
                                           storage::WriteOptions options) override {
    auto write = inner_.newWrite(path, options);
    if (!winner_.empty() && path.ends_with("stanza.json")) {
      inner_.setObject(path, io::Buffer(winner_.begin(), winner_.end()));
      winner_.clear();
    }
    return write;
  }

 private:
  test::MemoryStorage& inner_;
  std::string winner_;
};

void putText(test::MemoryStorage& s, const std::string& path, std::string_view text) {
  s.setObject(path, io::Buffer(text.begin(), text.end()));
}

// The functions under test on a handle of `stanza` in `s`, written with `encryption`.
std::optional<StanzaInfo> loadStanza(storage::Storage& s, const std::string& stanza) {
  return repo::loadStanza(Repository(s, stanza));
}

StanzaInfo createStanza(storage::Storage& s, const std::string& stanza, const StanzaInfo& cluster,
                        io::EncryptType encryption = io::EncryptType::None,
                        bool* created = nullptr) {
  auto result = repo::createStanza(Repository(s, stanza, {}, {.encryption = encryption}), cluster);
  if (created) *created = result.created;
  return result.info;
}

void checkEncryption(storage::Storage& s, const std::string& stanza, StanzaInfo& info,
                     io::EncryptType encryption, bool allowMixed) {
  repo::checkEncryption(
      Repository(s, stanza, {}, {.encryption = encryption, .allowMixedEncryption = allowMixed}),
      info);
}

}  // namespace

TEST_CASE("stanza.json round-trips and refuses documents it cannot trust") {
  SUBCASE("every field survives, including a 64-bit system identifier, kept as a string") {
    StanzaInfo info = kCandidate;
    info.systemId = 18446744073709551615ULL;
    info.created = parseUtc("2026-11-22T10:15:00Z");
    info.tidemarkVersion = "0.1.0";
    std::string json = info.toJson();
    CHECK(json == Containing("\"system-identifier\": \"18446744073709551615\""));
    StanzaInfo back = StanzaInfo::fromJson(json, "x");
    CHECK(back.systemId == info.systemId);
    CHECK(back.pgVersion == 15);
    CHECK(back.walSegmentSize == 16u << 20);
    CHECK(back.format == kRepositoryFormat);
    CHECK(back.created == info.created);
    CHECK(back.tidemarkVersion == "0.1.0");
  }
  SUBCASE("text that is not JSON is Corrupt, naming where it came from") {
    Error e = thrownError([] { StanzaInfo::fromJson("{ not json", "posix:/r/main/stanza.json"); });
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == Containing("'posix:/r/main/stanza.json' is not a valid stanza.json"));
  }
  SUBCASE("a missing field is Corrupt") {
    Error e = thrownError([] { StanzaInfo::fromJson(R"({"format": 1, "pg-version": 15})", "w"); });
    CHECK(e.code() == ErrorCode::Corrupt);
  }
  SUBCASE("a system identifier that is not a number is Corrupt") {
    Error e = thrownError([] {
      StanzaInfo::fromJson(
          R"({"format": 1, "system-identifier": "abc", "pg-version": 15, "wal-segment-size": 16777216})",
          "w");
    });
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == "'w' has an invalid system-identifier");
  }
  SUBCASE("a damaged system identifier is Corrupt, not silently another number") {
    for (std::string id :
         {"", "-1", "7000000000000000001x", " 7000000000000000001", "+7", "99999999999999999999"}) {
      CAPTURE(id);
      std::string json = fmt::format(
          R"({{"format": 1, "system-identifier": "{}", "pg-version": 15, "wal-segment-size": 16777216}})",
          id);
      Error e = thrownError([&] { StanzaInfo::fromJson(json, "w"); });
      CHECK(e.code() == ErrorCode::Corrupt);
      CHECK(what(e) == "'w' has an invalid system-identifier");
    }
  }
  SUBCASE("another repository format is Unsupported") {
    StanzaInfo info = kCandidate;
    info.format = 2;
    Error e = thrownError([&] { StanzaInfo::fromJson(info.toJson(), "w"); });
    CHECK(e.code() == ErrorCode::Unsupported);
    CHECK(what(e) == "'w' has repository format 2; this tidemark reads format 1");
  }
}

TEST_CASE("createStanza creates stanza.json once, for one cluster, after probing the storage") {
  test::MemoryStorage s;
  SUBCASE(
      "the first call creates it, with a random identifier of its own, and leaves no probe "
      "behind") {
    CHECK_FALSE(loadStanza(s, "main").has_value());
    bool created = false;
    StanzaInfo info = createStanza(s, "main", kCandidate, io::EncryptType::None, &created);
    CHECK(created);
    CHECK(info.systemId == kCandidate.systemId);
    CHECK(info.tidemarkVersion == kVersion);
    REQUIRE(info.created.has_value());
    CHECK(*info.created <= utcNow());
    CHECK(info.id.size() == 32);
    CHECK(info.identity() == info.id);
    CHECK(info.noReplaceChecked);
    auto loaded = loadStanza(s, "main");
    REQUIRE(loaded);
    CHECK(loaded->systemId == kCandidate.systemId);
    CHECK(loaded->pgVersion == 15);
    CHECK(loaded->walSegmentSize == 16u << 20);
    CHECK(loaded->id == info.id);
    CHECK(s.paths() == std::vector<std::string>{stanzaFile("main")});
  }
  SUBCASE("two stanzas get two identifiers") {
    CHECK(createStanza(s, "main", kCandidate).id != createStanza(s, "other", kCandidate).id);
  }
  SUBCASE("again for the same cluster: the stored identity, unchanged") {
    StanzaInfo first = createStanza(s, "main", kCandidate);
    io::Buffer before = *s.object(stanzaFile("main"));
    bool created = true;
    StanzaInfo again = createStanza(
        s, "main", {.systemId = kCandidate.systemId, .pgVersion = 16, .walSegmentSize = 16u << 20},
        io::EncryptType::None, &created);
    CHECK_FALSE(created);
    CHECK(again.pgVersion == 15);
    CHECK(again.id == first.id);
    CHECK(*s.object(stanzaFile("main")) == before);
  }
  SUBCASE("another cluster is ForeignCluster, naming both and the stanza") {
    createStanza(s, "main", kCandidate);
    Error e = thrownError([&] {
      createStanza(s, "main", {.systemId = 42, .pgVersion = 15, .walSegmentSize = 16u << 20});
    });
    CHECK(e.code() == ErrorCode::ForeignCluster);
    CHECK(
        what(e) ==
        "this cluster is from the cluster with system identifier 42, but stanza 'main' belongs to "
        "7000000000000000001");
    CHECK(e.hint() == Containing("its own stanza"));
    Error size = thrownError([&] {
      createStanza(s, "main",
                   {.systemId = kCandidate.systemId, .pgVersion = 15, .walSegmentSize = 64u << 20});
    });
    CHECK(size.code() == ErrorCode::ForeignCluster);
    CHECK(what(size) ==
          "this cluster has 67108864 byte segments, but stanza 'main' has 16777216 byte segments");
  }
  SUBCASE("when another process creates it first, the winner's identity is used and checked") {
    StanzaInfo winner = kCandidate;
    winner.created = parseUtc("2026-01-01T00:00:00Z");
    RacingStorage racing(s, winner.toJson());
    bool created = true;
    CHECK(createStanza(racing, "main", kCandidate, io::EncryptType::None, &created).created ==
          parseUtc("2026-01-01T00:00:00Z"));
    CHECK_FALSE(created);
    StanzaInfo foreign = kCandidate;
    foreign.systemId = 99;
    test::MemoryStorage other;
    RacingStorage racingForeign(other, foreign.toJson());
    CHECK(thrownError([&] { createStanza(racingForeign, "main", kCandidate); }).code() ==
          ErrorCode::ForeignCluster);
  }
  SUBCASE("a damaged stanza.json is Corrupt, never replaced") {
    putText(s, stanzaFile("main"), "{\"format\": 1,");
    CHECK(thrownError([&] { createStanza(s, "main", kCandidate); }).code() == ErrorCode::Corrupt);
  }
}

namespace {

// A storage that replaces objects even on a no-replace write (an S3 server that ignores
// If-None-Match).
class ReplacingStorage final : public test::ForwardingStorage {
 public:
  using ForwardingStorage::ForwardingStorage;
  std::unique_ptr<storage::Write> newWrite(const std::string& path,
                                           storage::WriteOptions) override {
    return ForwardingStorage::newWrite(path, {.noReplace = false});
  }
};

}  // namespace

TEST_CASE("createStanza refuses a storage that replaces objects it was told not to") {
  test::MemoryStorage inner;
  ReplacingStorage s(inner);
  Error e = thrownError([&] { createStanza(s, "main", kCandidate); });
  CHECK(e.code() == ErrorCode::Unsupported);
  CHECK(what(e) == Containing("replaced an existing object on a write that must not replace one"));
  CHECK(e.hint() == Containing("If-None-Match"));
  CHECK(inner.paths().empty());  // no stanza, and the probe removed
}

TEST_CASE(
    "requireStanza: a stanza that does not exist is an error naming stanza-create, never created") {
  test::MemoryStorage s;
  Error e = thrownError([&] { requireStanza(Repository(s, "main")); });
  CHECK(e.code() == ErrorCode::Config);
  CHECK(what(e) == "stanza 'main' does not exist in " + s.describe());
  CHECK(e.hint() == Containing("tidemark stanza-create"));
  CHECK(e.hint() == Containing("mounted"));
  CHECK(s.paths().empty());
  createStanza(s, "main", kCandidate);
  CHECK(requireStanza(Repository(s, "main")).systemId == kCandidate.systemId);
}

TEST_CASE("a stanza.json written before stanza-create existed has a stable identity of its own") {
  StanzaInfo legacy = StanzaInfo::fromJson(
      R"({"format": 1, "system-identifier": "1", "pg-version": 15, "wal-segment-size": 16777216,
          "created": "2026-11-01T00:00:00Z"})",
      "x");
  CHECK(legacy.id.empty());
  CHECK(legacy.identity().rfind("legacy-", 0) == 0);
  CHECK(legacy.identity().size() == 31);
  CHECK(legacy.identity() == StanzaInfo::fromJson(legacy.toJson(), "x").identity());
  StanzaInfo other = legacy;
  other.systemId = 2;
  CHECK(other.identity() != legacy.identity());
  Error e = thrownError([] {
    StanzaInfo::fromJson(
        R"({"format": 1, "system-identifier": "1", "pg-version": 15, "wal-segment-size": 16777216,
            "stanza-id": "../../etc"})",
        "w");
  });
  CHECK(what(e) == "'w' has an invalid stanza-id");
}

TEST_CASE("stanza.json records the encryption type, and checkEncryption keeps a stanza unmixed") {
  test::MemoryStorage s;
  SUBCASE("recorded and read back; a stanza.json without the field is unencrypted") {
    StanzaInfo info = kCandidate;
    info.encryption = io::EncryptType::Aes256Gcm;
    CHECK(info.toJson() == Containing("\"encryption\": \"aes-256-gcm\""));
    CHECK(StanzaInfo::fromJson(info.toJson(), "x").encryption == io::EncryptType::Aes256Gcm);
    StanzaInfo old = StanzaInfo::fromJson(
        R"({"format": 1, "system-identifier": "1", "pg-version": 15, "wal-segment-size": 16777216})",
        "x");
    CHECK(old.encryption == io::EncryptType::None);
    Error e = thrownError([] {
      StanzaInfo::fromJson(
          R"({"format": 1, "system-identifier": "1", "pg-version": 15, "wal-segment-size": 1, "encryption": "rot13"})",
          "w");
    });
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == "'w' has an invalid encryption");
  }
  SUBCASE("the first writer's type is recorded; the other type is refused, naming the override") {
    StanzaInfo candidate = kCandidate;
    candidate.encryption = io::EncryptType::Aes256Gcm;
    StanzaInfo info = createStanza(s, "main", candidate, io::EncryptType::Aes256Gcm);
    CHECK(loadStanza(s, "main")->encryption == io::EncryptType::Aes256Gcm);
    checkEncryption(s, "main", info, io::EncryptType::Aes256Gcm,
                    false);  // the same type: nothing to refuse
    CHECK(loadStanza(s, "main")->encryption == io::EncryptType::Aes256Gcm);
    Error e = thrownError([&] { checkEncryption(s, "main", info, io::EncryptType::None, false); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) ==
          "stanza 'main' records encryption 'aes-256-gcm' in stanza.json, but encryption.type is "
          "'none': the stanza would mix encrypted and unencrypted objects");
    CHECK(e.hint() == Containing("encryption.allow-mixed = true"));
    CHECK(loadStanza(s, "main")->encryption == io::EncryptType::Aes256Gcm);
  }
  SUBCASE(
      "allow-mixed switches the stanza: stanza.json records the new type, the old one is refused") {
    StanzaInfo info = createStanza(s, "main", kCandidate);
    checkEncryption(s, "main", info, io::EncryptType::Aes256Gcm, true);
    StanzaInfo switched = *loadStanza(s, "main");
    CHECK(switched.encryption == io::EncryptType::Aes256Gcm);
    CHECK(switched.systemId == kCandidate.systemId);
    CHECK(thrownError([&] {
            checkEncryption(s, "main", switched, io::EncryptType::None, false);
          }).code() == ErrorCode::Config);
  }
}
