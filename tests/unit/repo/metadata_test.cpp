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
const std::string kId = "5f0c1e2a9b7d4c3e8a6f0b1d2c3e4f5a";

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
  writeMetadataMac(repository, kPath, kContent, kId);
  REQUIRE(s.object(kPath + ".mac"));
  CHECK(textOf(s, kPath + ".mac") == Containing("\"key-id\": \"" + current.idHex() + "\""));

  SUBCASE("after a key rotation a writer signs it again with the new key, once") {
    auto put = [&](std::string_view text) {
      auto write = s.newWrite(kPath, {.noReplace = false});
      write->write(io::asBytes(text));
      REQUIRE(write->commit());
    };
    put(kContent);
    const MasterKey next = key(2);
    Repository rotated = encrypting(s, next, {current});
    CHECK(signWithCurrentKey(rotated, kPath, kContent, kId));
    CHECK(textOf(s, kPath + ".mac") == Containing("\"key-id\": \"" + next.idHex() + "\""));
    CHECK_FALSE(signWithCurrentKey(rotated, kPath, kContent, kId));
    // The old key can go: writers and readers with the new one alone accept it.
    Repository newOnly = encrypting(s, next);
    CHECK(verifyMetadata(newOnly, kPath, kContent, kId) == MetadataTrust::Authenticated);
    requireKnownSigner(newOnly, kPath);
    // An edited content is never signed again.
    CHECK(thrownError([&] {
            signWithCurrentKey(encrypting(s, key(3), {next}), kPath, "{}", kId);
          }).code() == ErrorCode::Corrupt);
    // An object replaced while it is signed again (here: before the record is written) is named.
    put("{\"replaced\": true}\n");
    Error e = thrownError(
        [&] { signWithCurrentKey(encrypting(s, key(3), {next}), kPath, kContent, kId); });
    CHECK(e.code() == ErrorCode::Conflict);
    CHECK(what(e) == Containing("changed while it was signed again with the current key"));
  }
  SUBCASE("a writer without the signing key is refused; an old key that signed it passes") {
    Error e = thrownError([&] { requireKnownSigner(encrypting(s, key(2)), kPath); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(e.hint() == Containing("set encryption.key-file (or key-command) to that key"));
    requireKnownSigner(encrypting(s, key(2), {current}), kPath);
  }
  SUBCASE("the content it was made for is authenticated") {
    CHECK(verifyMetadata(repository, kPath, kContent, kId) == MetadataTrust::Authenticated);
  }
  SUBCASE("an edited content is not") {
    std::string edited = kContent;
    edited[3] = 'X';
    Error e = thrownError([&] { verifyMetadata(repository, kPath, edited, kId); });
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == Containing("'" + kPath + "' in "));
    CHECK(what(e) == Containing("is not authenticated: its MAC does not match its content"));
  }
  SUBCASE("a record copied to another name does not vouch for it there") {
    const std::string other = "main/backups/20261102T000000Z/backup.json";
    s.setObject(other + ".mac", *s.object(kPath + ".mac"));
    CHECK(thrownError([&] { verifyMetadata(repository, other, kContent, kId); }).code() ==
          ErrorCode::Corrupt);
  }
  SUBCASE(
      "a record vouches for one stanza: with another stanza's identifier, or under another "
      "stanza's name, it fails") {
    CHECK(thrownError([&] {
            verifyMetadata(repository, kPath, kContent, "00000000000000000000000000000000");
          }).code() == ErrorCode::Corrupt);
    const std::string elsewhere = "other/backups/20261101T000000Z/backup.json";
    s.setObject(elsewhere + ".mac", *s.object(kPath + ".mac"));
    CHECK(thrownError([&] {
            verifyMetadata(Repository(s, "other", Keyring{.current = current},
                                      {.encryption = io::EncryptType::Aes256Gcm}),
                           elsewhere, kContent, kId);
          }).code() == ErrorCode::Corrupt);
  }
  SUBCASE("a missing or damaged record is not authenticated") {
    s.remove(kPath + ".mac");
    CHECK(what(thrownError([&] { verifyMetadata(repository, kPath, kContent, kId); })) ==
          Containing("'" + kPath + ".mac' is missing"));
    CHECK_FALSE(hasVouchingRecord(repository, kPath));
    s.setObject(kPath + ".mac", test::FakeRepository::text("{\"format\": 2}"));
    CHECK(what(thrownError([&] { verifyMetadata(repository, kPath, kContent, kId); })) ==
          Containing("its MAC record '" + kPath + ".mac' is damaged"));
    CHECK(hasVouchingRecord(repository, kPath));  // damaged: nothing to sign over
  }
  SUBCASE("a record of format 1 (not bound to the stanza) vouches for nothing") {
    s.setObject(kPath + ".mac", test::FakeRepository::text(
                                    "{\"format\": 1, \"key-id\": \"" + current.idHex() +
                                    "\", \"hmac-sha256\": \"" + std::string(64, '0') + "\"}"));
    CHECK(what(thrownError([&] { verifyMetadata(repository, kPath, kContent, kId); })) ==
          Containing("made by an earlier version of tidemark"));
    CHECK_FALSE(hasVouchingRecord(repository, kPath));
  }
  SUBCASE("a record made with another key: Config, naming the key; with it as an old key, fine") {
    Repository other = encrypting(s, key(2));
    Error e = thrownError([&] { verifyMetadata(other, kPath, kContent, kId); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == Containing("was authenticated with key " + current.idHex()));
    CHECK_FALSE(hasVouchingRecord(other, kPath));  // a removed (leaked) key vouches for nothing
    Repository rotated = encrypting(s, key(2), {current});
    CHECK(verifyMetadata(rotated, kPath, kContent, kId) == MetadataTrust::Authenticated);
    CHECK(hasVouchingRecord(rotated, kPath));
  }
  SUBCASE("written again: the same content is a retry; other content a conflict, unless replaced") {
    CHECK_NOTHROW(writeMetadataMac(repository, kPath, kContent, kId));
    CHECK(thrownError([&] { writeMetadataMac(repository, kPath, kContent + " ", kId); }).code() ==
          ErrorCode::Conflict);
    CHECK(verifyMetadata(repository, kPath, kContent, kId) == MetadataTrust::Authenticated);
    writeMetadataMac(repository, kPath, kContent + " ", kId, true);
    CHECK(verifyMetadata(repository, kPath, kContent + " ", kId) == MetadataTrust::Authenticated);
  }
  SUBCASE("without encryption configured: nothing written, nothing checked") {
    test::MemoryStorage plain;
    Repository unencrypted(plain, "main");
    writeMetadataMac(unencrypted, kPath, kContent, kId);
    CHECK_FALSE(plain.object(kPath + ".mac"));
    CHECK(verifyMetadata(unencrypted, kPath, "anything", kId) == MetadataTrust::Unauthenticated);
    CHECK(verifyMetadata(Repository(s, "main"), kPath, "edited", kId) ==
          MetadataTrust::Unauthenticated);
  }
}

TEST_CASE("an encrypted stanza's metadata is authenticated end to end") {
  test::FakeRepository fake;  // stanza.json and backup.json files written without MACs
  fake.storage.remove(stanzaFile("main"));
  const MasterKey current = key(7);
  Repository repository = encrypting(fake.storage, current);
  const StanzaInfo cluster{
      .systemId = 18446744073709551615ULL, .pgVersion = 15, .walSegmentSize = test::kSegmentSize};
  auto created = createStanza(repository, cluster);
  REQUIRE(created.created);
  CHECK(fake.storage.object(stanzaFile("main") + ".mac"));
  const std::string id = created.info.identity();
  auto sign = [&](const std::string& label) {
    writeMetadataMac(repository, backupInfoFile("main", label),
                     textOf(fake.storage, backupInfoFile("main", label)), id);
  };
  fake.backup("20261101T000000Z", 1, 0x100028, 0x200100);
  fake.backup("20261102T000000Z", 1, 0x300028, 0x400100);

  SUBCASE(
      "backups without MAC records are left out; stanza-create names them and never signs on "
      "the side; --authenticate-existing does, once") {
    auto catalog = recovery::Catalog::load(repository);
    REQUIRE(catalog);
    CHECK(catalog->backups().empty());
    REQUIRE(catalog->damagedBackups().size() == 2);
    CHECK(catalog->damagedBackups()[0] == Containing("backup.json.mac' is missing"));
    Error refused = thrownError([&] { createStanza(repository, cluster); });
    CHECK(refused.code() == ErrorCode::Corrupt);
    CHECK(what(refused) == Containing("2 metadata files of stanza 'main' are not authenticated"));
    CHECK(refused.hint() == Containing("tidemark stanza-create --authenticate-existing"));
    CHECK(recovery::Catalog::load(repository)->backups().empty());  // still nothing signed
    std::vector<std::string> signedPaths = authenticateExisting(repository);
    CHECK(signedPaths == std::vector<std::string>{backupInfoFile("main", "20261101T000000Z"),
                                                  backupInfoFile("main", "20261102T000000Z")});
    catalog = recovery::Catalog::load(repository);
    CHECK(catalog->backups().size() == 2);
    CHECK(catalog->metadataTrust() == MetadataTrust::Authenticated);
    CHECK_FALSE(createStanza(repository, cluster).created);
    CHECK(authenticateExisting(repository).empty());
  }
  SUBCASE("an edited backup.json is left out, the others stay usable; stanza-create names it") {
    sign("20261101T000000Z");
    sign("20261102T000000Z");
    std::string edited = textOf(fake.storage, backupInfoFile("main", "20261102T000000Z"));
    edited.replace(edited.find("base.tar"), 4, "evil");
    fake.storage.setObject(backupInfoFile("main", "20261102T000000Z"),
                           test::FakeRepository::text(edited));
    auto catalog = recovery::Catalog::load(repository);
    REQUIRE(catalog->backups().size() == 1);
    CHECK(catalog->backups()[0].label == "20261101T000000Z");
    REQUIRE(catalog->damagedBackups().size() == 1);
    CHECK(catalog->damagedBackups()[0] == Containing("its MAC does not match its content"));
    Error refused = thrownError([&] { createStanza(repository, cluster); });
    CHECK(refused.code() == ErrorCode::Corrupt);
    CHECK(what(refused) == Containing("1 metadata file of"));
  }
  SUBCASE("a backup.json copied with its record from another stanza sharing the key is refused") {
    // Stanza "other" of another cluster, with the same key.
    Repository other(fake.storage, "other", Keyring{.current = current},
                     {.encryption = io::EncryptType::Aes256Gcm});
    auto otherStanza = createStanza(
        other, {.systemId = 42, .pgVersion = 15, .walSegmentSize = test::kSegmentSize});
    repo::BackupInfo foreign = fake.backup("20261103T000000Z", 1, 0x500028, 0x600100);
    foreign.systemId = 42;
    std::string foreignJson = foreign.toJson();
    fake.storage.setObject(backupInfoFile("other", foreign.label),
                           test::FakeRepository::text(foreignJson));
    writeMetadataMac(other, backupInfoFile("other", foreign.label), foreignJson,
                     otherStanza.info.identity());
    fake.storage.setObject(backupInfoFile("main", foreign.label),
                           test::FakeRepository::text(foreignJson));
    fake.storage.setObject(backupInfoFile("main", foreign.label) + ".mac",
                           *fake.storage.object(backupInfoFile("other", foreign.label) + ".mac"));
    sign("20261101T000000Z");
    sign("20261102T000000Z");
    auto catalog = recovery::Catalog::load(repository);
    CHECK(catalog->backups().size() == 2);
    CHECK_FALSE(catalog->findBackup(foreign.label));
    // Its copied record contradicts it here: --authenticate-existing refuses to sign over it.
    Error refused = thrownError([&] { authenticateExisting(repository); });
    CHECK(refused.code() == ErrorCode::Corrupt);
    CHECK(what(refused) == Containing("does not match its MAC record"));
    // Without the record, and signed by mistake as this stanza's, it is still of another cluster:
    // left out.
    fake.storage.remove(backupInfoFile("main", foreign.label) + ".mac");
    authenticateExisting(repository);
    catalog = recovery::Catalog::load(repository);
    CHECK_FALSE(catalog->findBackup(foreign.label));
    CHECK(catalog->damagedBackups().back() ==
          Containing("is of the cluster with system identifier 42"));
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
  SUBCASE("--authenticate-existing never signs over a record that contradicts its file") {
    sign("20261101T000000Z");
    std::string edited = textOf(fake.storage, backupInfoFile("main", "20261101T000000Z"));
    edited.replace(edited.find("base.tar"), 4, "evil");
    fake.storage.setObject(backupInfoFile("main", "20261101T000000Z"),
                           test::FakeRepository::text(edited));
    Error refused = thrownError([&] { authenticateExisting(repository); });
    CHECK(refused.code() == ErrorCode::Corrupt);
    CHECK(what(refused) ==
          Containing("1 metadata file of stanza 'main' does not match its MAC record"));
    CHECK(what(refused) == Containing("nothing was signed"));
    // The other backup, which has no record, was not signed either.
    CHECK_FALSE(fake.storage.object(backupInfoFile("main", "20261102T000000Z") + ".mac"));
    CHECK(recovery::Catalog::load(repository)->backups().empty());
  }
  SUBCASE("an encryption switch never signs a stanza.json its record contradicts") {
    std::string text = textOf(fake.storage, stanzaFile("main"));
    text.replace(text.find("aes-256-gcm"), 11, "none");
    fake.storage.setObject(stanzaFile("main"), test::FakeRepository::text(text));
    StanzaInfo forged = *loadStanza(repository);
    REQUIRE(forged.encryption == io::EncryptType::None);
    Repository mixed(fake.storage, "main", Keyring{.current = current},
                     {.encryption = io::EncryptType::Aes256Gcm, .allowMixedEncryption = true});
    CHECK(thrownError([&] { checkEncryption(mixed, forged); }).code() == ErrorCode::Corrupt);
    CHECK(textOf(fake.storage, stanzaFile("main")) == text);  // not rewritten, not signed
  }
  SUBCASE("--authenticate-existing needs encryption configured") {
    CHECK(thrownError([&] { authenticateExisting(Repository(fake.storage, "main")); }).code() ==
          ErrorCode::Config);
  }
}
