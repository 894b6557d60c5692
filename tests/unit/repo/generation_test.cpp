// Unit tests of common/repo/generation.h: the generations of a stanza after pg_upgrade, their
// records, and which generation a cluster's WAL belongs to.
#include "common/repo/generation.h"

#include <doctest/doctest.h>

#include "common/base/error.h"
#include "common/repo/layout.h"
#include "common/repo/metadata.h"
#include "support/check.h"
#include "support/fake_repository.h"

using namespace tidemark;
using namespace tidemark::repo;
using test::Containing;
using test::thrownError;

namespace {

// System identifiers begin with initdb's time: 0x69... is 2026, 0x5f... 2020.
constexpr std::uint64_t kLater = 0x6930000000000001ULL;
constexpr std::uint64_t kEarlier = 0x5f00000000000001ULL;
constexpr std::uint64_t kFirst = 18446744073709551615ULL;  // FakeRepository's stanza.json

Generation cluster(std::uint64_t systemId, int pgVersion = 15,
                   std::uint32_t segmentSize = test::kSegmentSize) {
  return Generation{.systemId = systemId, .pgVersion = pgVersion, .walSegmentSize = segmentSize};
}

}  // namespace

TEST_CASE("a stanza starts with one generation, stanza.json's") {
  test::FakeRepository f;
  Repository repository = f.handle();
  StanzaInfo stanza = requireStanza(repository);
  auto generations = loadGenerations(repository, stanza);
  REQUIRE(generations.size() == 1);
  CHECK(generations[0].number == 1);
  CHECK(generations[0].systemId == kFirst);
  CHECK(requireGeneration(repository, stanza, kFirst, test::kSegmentSize, 15, "x").number == 1);
}

TEST_CASE("stanza-upgrade records the next generation once, and finds it again") {
  test::FakeRepository f;
  Repository repository = f.handle();
  StanzaInfo stanza = requireStanza(repository);
  UpgradedStanza upgraded = upgradeStanza(repository, stanza, cluster(kLater, 16), true);
  CHECK(upgraded.created);
  CHECK(upgraded.generation.number == 2);
  REQUIRE(f.storage.object(generationFile("main", 2)));
  auto generations = loadGenerations(repository, stanza);
  REQUIRE(generations.size() == 2);
  CHECK(generations[1].systemId == kLater);
  CHECK(generations[1].pgVersion == 16);
  CHECK(generations[1].created.has_value());
  CHECK(requireGeneration(repository, stanza, kLater, test::kSegmentSize, 16, "x").number == 2);
  // The old cluster's WAL still goes to generation 1 (a cluster rolled back after a failed
  // upgrade keeps archiving).
  CHECK(requireGeneration(repository, stanza, kFirst, test::kSegmentSize, 15, "x").number == 1);

  SUBCASE("again, for the same cluster: nothing new") {
    UpgradedStanza again = upgradeStanza(repository, stanza, cluster(kLater, 16), true);
    CHECK_FALSE(again.created);
    CHECK(again.generation.number == 2);
    CHECK(loadGenerations(repository, stanza).size() == 2);
  }
  SUBCASE("for the first generation's cluster: it already is one") {
    UpgradedStanza again = upgradeStanza(repository, stanza, cluster(kFirst), true);
    CHECK_FALSE(again.created);
    CHECK(again.generation.number == 1);
  }
  SUBCASE("a cluster of an older version is another cluster, not an upgrade") {
    Error e =
        thrownError([&] { upgradeStanza(repository, stanza, cluster(kLater + 7, 15), true); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(std::string(e.what()) == Containing("never goes back"));
  }
  SUBCASE("its segment size must be the generation's") {
    Error e = thrownError(
        [&] { requireGeneration(repository, stanza, kLater, 2 * test::kSegmentSize, 16, "x"); });
    CHECK(e.code() == ErrorCode::ForeignCluster);
  }
  SUBCASE("a third generation follows the second") {
    CHECK(upgradeStanza(repository, stanza, cluster(kLater + 1, 17), true).generation.number == 3);
    CHECK(loadGenerations(repository, stanza).back().number == 3);
  }
}

TEST_CASE("an unknown cluster is refused, naming stanza-upgrade only when it looks like one") {
  test::FakeRepository f;
  Repository repository = f.handle();
  // stanza.json's identifier is the largest there is: start from a realistic one instead.
  upgradeStanza(repository, requireStanza(repository), cluster(kLater), true);
  StanzaInfo stanza = requireStanza(repository);
  auto refused = [&](std::uint64_t systemId, int pgVersion) {
    Error e = thrownError([&] {
      requireGeneration(repository, stanza, systemId, test::kSegmentSize, pgVersion, "WAL file X");
    });
    CHECK(e.code() == ErrorCode::ForeignCluster);
    CHECK(std::string(e.what()) == Containing("WAL file X"));
    return std::string(e.hint());
  };
  // A newer version: an upgrade, as far as it shows.
  CHECK(refused(kLater + (1ULL << 32), 16) == Containing("run 'tidemark stanza-upgrade' once"));
  CHECK(refused(kEarlier, 16) == Containing("run 'tidemark stanza-upgrade' once"));
  // A later cluster of a version unknown: a stanza of its own first, an upgrade only if newer.
  const std::string unknown = refused(kLater + (1ULL << 32), 0);
  CHECK(unknown.rfind("each cluster needs its own stanza", 0) == 0);
  CHECK(unknown == Containing("after a pg_upgrade to a newer major version, run 'tidemark "
                              "stanza-upgrade' once"));
  // A later cluster of the same version: a second cluster pointed at this stanza far more often
  // than a same-version pg_upgrade; a stanza of its own first, stanza-upgrade only with --force.
  const std::string same = refused(kLater + (1ULL << 32), 15);
  CHECK(same.rfind("each cluster needs its own stanza", 0) == 0);
  CHECK(same == Containing("replaces the stanza's for good"));
  CHECK(same == Containing("'tidemark stanza-upgrade --force'"));
  // An older cluster, an older version: no upgrade, only the wrong-stanza hint.
  CHECK(refused(kEarlier, 15).find("stanza-upgrade") == std::string::npos);
  CHECK(refused(kLater + (1ULL << 32), 14).find("stanza-upgrade") == std::string::npos);
  CHECK(refused(kEarlier, 15) == Containing("its own stanza"));
}

TEST_CASE("damaged or missing generation records stop readers") {
  test::FakeRepository f;
  Repository repository = f.handle();
  StanzaInfo stanza = requireStanza(repository);
  upgradeStanza(repository, stanza, cluster(kLater), true);
  SUBCASE("a hole in the numbers") {
    f.storage.setObject(generationFile("main", 4), *f.storage.object(generationFile("main", 2)));
    Error e = thrownError([&] { loadGenerations(repository, stanza); });
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(std::string(e.what()) == Containing("no generation 3"));
    try {
      loadGenerations(repository, stanza);
    } catch (const GenerationRecordError& record) {
      CHECK(record.path() == generationFile("main", 3));  // the one to restore
    }
  }
  SUBCASE("a record that is not JSON, or names another generation") {
    f.storage.setObject(generationFile("main", 2), test::FakeRepository::text("{"));
    CHECK(thrownError([&] { loadGenerations(repository, stanza); }).code() == ErrorCode::Corrupt);
    Generation g = cluster(kLater);
    g.number = 3;
    f.storage.setObject(generationFile("main", 2), test::FakeRepository::text(g.toJson()));
    CHECK(thrownError([&] { loadGenerations(repository, stanza); }).code() == ErrorCode::Corrupt);
  }
  SUBCASE("a WAL folder of a generation whose record is lost") {
    f.storage.setObject(walDirectory("main", 3) + "/0000000100000000/000000010000000000000009",
                        test::FakeRepository::text("w"));
    // Found by the readers that survey the stanza (the catalog), not on every push.
    auto generations = loadGenerations(repository, stanza);
    Error e = thrownError([&] { checkWalFolders(repository, generations); });
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(std::string(e.what()) == Containing("no record of generation 3"));
    CHECK_THROWS_AS(f.catalogs(), GenerationRecordError);
  }
  SUBCASE("other names in the folder are not records") {
    f.storage.setObject(generationsDirectory("main") + "/notes.txt",
                        test::FakeRepository::text("x"));
    f.storage.setObject(generationsDirectory("main") + "/02.json", test::FakeRepository::text("x"));
    CHECK(loadGenerations(repository, stanza).size() == 2);
  }
}

TEST_CASE("with encryption, generation records are authenticated like stanza.json") {
  test::MemoryStorage s;
  io::Key256 bytes{};
  bytes.fill(7);
  MasterKey key(bytes, "key-file '/k'");
  Repository repository(s, "main", Keyring{.current = key},
                        {.encryption = io::EncryptType::Aes256Gcm});
  StanzaInfo created = createStanza(repository, StanzaInfo{.systemId = kEarlier,
                                                           .pgVersion = 15,
                                                           .walSegmentSize = test::kSegmentSize})
                           .info;
  SUBCASE("a cluster initialised before the current one is not its upgrade (unless --force)") {
    Error e = thrownError([&] { upgradeStanza(repository, created, cluster(kEarlier - 1, 16)); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(e.hint() == Containing("--force"));
    CHECK_FALSE(s.object(generationFile("main", 2)));
    CHECK(upgradeStanza(repository, created, cluster(kEarlier - 1, 16), true).created);
  }
  SUBCASE("a cluster of the same version is another cluster, not its upgrade (unless --force)") {
    Error e = thrownError([&] { upgradeStanza(repository, created, cluster(kLater, 15)); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(std::string(e.what()) ==
          Containing("runs PostgreSQL 15, as generation 1 (system identifier"));
    CHECK(std::string(e.what()) == Containing("so it is another cluster"));
    CHECK(e.hint() == Containing("a stanza of its own"));
    CHECK(e.hint() == Containing("--force"));
    CHECK_FALSE(s.object(generationFile("main", 2)));
    // Of the same version and made before it: the refusal names both (--force passes both).
    Error both = thrownError([&] { upgradeStanza(repository, created, cluster(kEarlier - 1)); });
    CHECK(std::string(both.what()) == Containing("does, and was initialised before it: "));
    CHECK_FALSE(s.object(generationFile("main", 2)));
    CHECK(upgradeStanza(repository, created, cluster(kLater, 15), true).created);
  }
  SUBCASE("beside a running backup it waits its turn") {
    std::string holder;
    auto lock = s.tryLock(backupLockFile("main"), "a backup", holder);
    REQUIRE(lock);
    CHECK(thrownError([&] { upgradeStanza(repository, created, cluster(kLater, 16)); }).code() ==
          ErrorCode::Locked);
  }
  SUBCASE("a recorded generation is authenticated") {
    upgradeStanza(repository, created, cluster(kLater, 16));
    REQUIRE(s.object(macRecordPath(generationFile("main", 2))));
    CHECK(loadGenerations(repository, created).size() == 2);
    CHECK(unauthenticatedMetadata(repository, created).empty());
    SUBCASE("a record written without the key is refused") {
      Generation forged = cluster(kLater + (1ULL << 32));
      forged.number = 3;
      s.setObject(generationFile("main", 3), test::FakeRepository::text(forged.toJson()));
      CHECK(thrownError([&] { loadGenerations(repository, created); }).code() ==
            ErrorCode::Corrupt);
      CHECK(unauthenticatedMetadata(repository, created).size() == 1);
    }
  }
}
