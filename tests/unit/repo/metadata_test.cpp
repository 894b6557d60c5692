// Unit tests of common/repo/metadata.h: MAC records for stanza.json and backup.json, and what
// readers make of metadata someone without the key wrote or edited.
#include "common/repo/metadata.h"

#include <doctest/doctest.h>

#include "common/recovery/catalog.h"
#include "common/repo/layout.h"
#include "common/repo/stanza.h"
#include "support/check.h"
#include "support/fake_repository.h"
#include "support/memory_storage.h"

using namespace tidemark;
using namespace tidemark::repo;
using test::Containing;
using test::thrownError;
using test::what;

namespace {

MasterKey key(std::uint8_t fill, const std::string& source = "key-file '/k'") {
  io::Key256 bytes{};
  bytes.fill(fill);
  return MasterKey(bytes, source);
}

// A handle that encrypts with `current` (and can read with `old`), as openRepository makes one.
Repository encrypting(storage::Storage& s, const MasterKey& current,
                      std::vector<MasterKey> old = {}) {
  return Repository(s, "main", Keyring{.current = current, .old = std::move(old)},
                    {.encryption = io::EncryptType::Aes256Gcm});
}

const std::string kPath = "main/backups/20261101T000000Z/backup.json";
const std::string kContent = "{\"label\": \"20261101T000000Z\"}\n";

std::string textOf(test::MemoryStorage& s, const std::string& path) {
  auto text = storage::readSmall(s, path, 1 << 20);
  REQUIRE(text);
  return *text;
}

}  // namespace

TEST_CASE("metadata MACs: written with the key, checked before use, bound to content and name") {
  test::MemoryStorage s;
  const MasterKey current = key(1);
  Repository repository = encrypting(s, current);
  writeMetadataMac(repository, kPath, kContent);
  REQUIRE(s.object(kPath + ".mac"));
  CHECK(textOf(s, kPath + ".mac") == Containing("\"key-id\": \"" + current.idHex() + "\""));

  SUBCASE("the content it was made for is authenticated") {
    CHECK(verifyMetadata(repository, kPath, kContent) == MetadataTrust::Authenticated);
  }
  SUBCASE("an edited content is not") {
    std::string edited = kContent;
    edited[3] = 'X';
    Error e = thrownError([&] { verifyMetadata(repository, kPath, edited); });
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == Containing("'" + kPath + "' in "));
    CHECK(what(e) == Containing("is not authenticated: its MAC does not match its content"));
  }
  SUBCASE("a record copied to another name does not vouch for it there") {
    const std::string other = "main/backups/20261102T000000Z/backup.json";
    s.setObject(other + ".mac", *s.object(kPath + ".mac"));
    CHECK(thrownError([&] { verifyMetadata(repository, other, kContent); }).code() ==
          ErrorCode::Corrupt);
  }
  SUBCASE("a missing or damaged record is not authenticated") {
    s.remove(kPath + ".mac");
    CHECK(what(thrownError([&] { verifyMetadata(repository, kPath, kContent); })) ==
          Containing("'" + kPath + ".mac' is missing"));
    s.setObject(kPath + ".mac", test::FakeRepository::text("{\"format\": 1}"));
    CHECK(what(thrownError([&] { verifyMetadata(repository, kPath, kContent); })) ==
          Containing("its MAC record '" + kPath + ".mac' is damaged"));
  }
  SUBCASE("a record made with another key: Config, naming the key; with it as an old key, fine") {
    Repository other = encrypting(s, key(2));
    Error e = thrownError([&] { verifyMetadata(other, kPath, kContent); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == Containing("was authenticated with key " + current.idHex()));
    Repository rotated = encrypting(s, key(2), {current});
    CHECK(verifyMetadata(rotated, kPath, kContent) == MetadataTrust::Authenticated);
  }
  SUBCASE("written again: the same content is a retry; other content a conflict, unless replaced") {
    CHECK_NOTHROW(writeMetadataMac(repository, kPath, kContent));
    CHECK(thrownError([&] { writeMetadataMac(repository, kPath, kContent + " "); }).code() ==
          ErrorCode::Conflict);
    CHECK(verifyMetadata(repository, kPath, kContent) == MetadataTrust::Authenticated);
    writeMetadataMac(repository, kPath, kContent + " ", true);
    CHECK(verifyMetadata(repository, kPath, kContent + " ") == MetadataTrust::Authenticated);
  }
  SUBCASE("without encryption configured: nothing written, nothing checked") {
    test::MemoryStorage plain;
    Repository unencrypted(plain, "main");
    writeMetadataMac(unencrypted, kPath, kContent);
    CHECK_FALSE(plain.object(kPath + ".mac"));
    CHECK(verifyMetadata(unencrypted, kPath, "anything") == MetadataTrust::Unauthenticated);
    CHECK(verifyMetadata(Repository(s, "main"), kPath, "edited") == MetadataTrust::Unauthenticated);
  }
}

TEST_CASE("an encrypted stanza's metadata is authenticated end to end") {
  test::FakeRepository fake;  // stanza.json and backup.json files written without MACs
  fake.storage.remove(stanzaFile("main"));
  const MasterKey current = key(7);
  Repository repository = encrypting(fake.storage, current);
  auto created = createStanza(
      repository,
      {.systemId = 18446744073709551615ULL, .pgVersion = 15, .walSegmentSize = test::kSegmentSize});
  REQUIRE(created.created);
  CHECK(fake.storage.object(stanzaFile("main") + ".mac"));
  fake.backup("20261101T000000Z", 1, 0x100028, 0x200100);
  fake.backup("20261102T000000Z", 1, 0x300028, 0x400100);

  SUBCASE("backups written before MACs existed are left out until stanza-create signs them") {
    auto catalog = recovery::Catalog::load(repository);
    REQUIRE(catalog);
    CHECK(catalog->backups().empty());
    REQUIRE(catalog->damagedBackups().size() == 2);
    CHECK(catalog->damagedBackups()[0] == Containing("backup.json.mac' is missing"));
    auto again = createStanza(repository, {.systemId = 18446744073709551615ULL,
                                           .pgVersion = 15,
                                           .walSegmentSize = test::kSegmentSize});
    CHECK_FALSE(again.created);
    CHECK(again.macsAdded == 2);
    catalog = recovery::Catalog::load(repository);
    CHECK(catalog->backups().size() == 2);
    CHECK(catalog->metadataTrust() == MetadataTrust::Authenticated);
    CHECK(createStanza(repository, {.systemId = 18446744073709551615ULL,
                                    .pgVersion = 15,
                                    .walSegmentSize = test::kSegmentSize})
              .macsAdded == 0);
  }
  SUBCASE("an edited backup.json is left out, the others stay usable; stanza-create refuses it") {
    for (const char* label : {"20261101T000000Z", "20261102T000000Z"})
      writeMetadataMac(repository, backupInfoFile("main", label),
                       textOf(fake.storage, backupInfoFile("main", label)));
    std::string edited = textOf(fake.storage, backupInfoFile("main", "20261102T000000Z"));
    edited.replace(
        edited.find("/srv") == std::string::npos ? edited.find("base.tar") : edited.find("/srv"), 4,
        "evil");
    fake.storage.setObject(backupInfoFile("main", "20261102T000000Z"),
                           test::FakeRepository::text(edited));
    auto catalog = recovery::Catalog::load(repository);
    REQUIRE(catalog->backups().size() == 1);
    CHECK(catalog->backups()[0].label == "20261101T000000Z");
    REQUIRE(catalog->damagedBackups().size() == 1);
    CHECK(catalog->damagedBackups()[0] == Containing("its MAC does not match its content"));
    Error refused = thrownError([&] {
      createStanza(repository, {.systemId = 18446744073709551615ULL,
                                .pgVersion = 15,
                                .walSegmentSize = test::kSegmentSize});
    });
    CHECK(refused.code() == ErrorCode::Corrupt);
    CHECK(refused.hint() == Containing("tidemark does not sign over it"));
  }
  SUBCASE("an edited stanza.json stops every reader that checks") {
    std::string text = textOf(fake.storage, stanzaFile("main"));
    text.replace(text.find("\"pg-version\": 15"), 16, "\"pg-version\": 14");
    fake.storage.setObject(stanzaFile("main"), test::FakeRepository::text(text));
    CHECK(thrownError([&] { recovery::Catalog::load(repository); }).code() == ErrorCode::Corrupt);
    // A handle without the key reads it, and says the catalog is unauthenticated.
    auto unchecked = recovery::Catalog::load(Repository(fake.storage, "main"));
    REQUIRE(unchecked);
    CHECK(unchecked->metadataTrust() == MetadataTrust::Unauthenticated);
    CHECK(unchecked->stanza().pgVersion == 14);
  }
  SUBCASE("a history file planted without encryption is refused, not followed") {
    fake.history(2, "1\t0/3000000\tplanted\n");
    auto catalog = recovery::Catalog::load(repository);
    Error e = thrownError([&] { catalog->history(2); });
    CHECK(what(e) == Containing("not encrypted"));
  }
}
