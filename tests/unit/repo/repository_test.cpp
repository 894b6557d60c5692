// Unit tests of common/repo/repository.h: the handle, and opening the configured repository
// (driver, keys, write policy).
#include "common/repo/repository.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include "common/config/config.h"
#include "common/io/hash.h"
#include "support/check.h"
#include "support/memory_storage.h"
#include "support/segment.h"

using namespace tidemark;
using namespace tidemark::repo;
using test::Containing;
using test::thrownError;
using test::what;

namespace {

// A key file of 64 hex digits, mode 0600.
std::string keyFile(const test::TempDir& dir, const std::string& name, std::uint8_t first) {
  io::Key256 key{};
  key[0] = first;
  std::string path = dir / name;
  test::writeFile(path, io::toHex(key));
  ::chmod(path.c_str(), 0600);
  return path;
}

}  // namespace

TEST_CASE(
    "openRepository opens the driver, the stanza and the write policy the configuration names") {
  test::TempDir root;
  Config config;
  config.stanza = "db1";
  config.repo.path = root.path();
  config.compress = {.type = io::CompressType::Lz4, .level = 5};
  SUBCASE("posix, unencrypted") {
    Repository repository = openRepository(config);
    CHECK(repository.stanza() == "db1");
    CHECK(repository.describe() == "posix:" + root.path());
    CHECK(repository.policy().compress == io::CompressType::Lz4);
    CHECK(repository.policy().level == 5);
    CHECK(repository.policy().encryption == io::EncryptType::None);
    CHECK_FALSE(repository.keys().current.has_value());
    ObjectOptions options = repository.objectOptions();
    CHECK(options.compress == io::CompressType::Lz4);
    CHECK(options.key == nullptr);
  }
  SUBCASE("s3: the driver with the bucket, endpoint and key prefix") {
    config.repo.type = "s3";
    config.repo.path = "/prefix/";
    config.s3.bucket = "bucket";
    config.s3.endpoint = "https://s3.example.com";
    config.s3.region = "eu-west-1";
    config.s3.accessKeyId = "AKIDEXAMPLE";
    config.s3.secretAccessKey = "secret";
    Repository repository = openRepository(config);
    CHECK(repository.describe() == Containing("bucket"));
    CHECK(repository.describe() == Containing("prefix"));
  }
  SUBCASE("another repo.type is a configuration error") {
    config.repo.type = "ftp";
    Error e = thrownError([&] { openRepository(config); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "repo.type 'ftp' is not supported");
  }
  SUBCASE("another() opens a second handle on the same stanza, with the same keys and policy") {
    Repository repository = openRepository(config);
    REQUIRE(repository.canOpenAnother());
    Repository other = repository.another();
    CHECK(&other.storage() != &repository.storage());
    CHECK(other.stanza() == "db1");
    CHECK(other.policy().compress == io::CompressType::Lz4);
  }
}

TEST_CASE(
    "openRepository loads the current key and the old ones, and encrypts with the current one") {
  test::TempDir dir, root;
  std::string current = keyFile(dir, "current", 1);
  std::string old = keyFile(dir, "old", 2);
  Config config;
  config.repo.path = root.path();
  config.encryption.type = io::EncryptType::Aes256Gcm;
  config.encryption.keyFile = current;
  config.encryption.oldKeyFiles = {old};
  Repository repository = openRepository(config);
  const Keyring& keys = repository.keys();
  REQUIRE(keys.current.has_value());
  REQUIRE(keys.old.size() == 1);
  CHECK(keys.find(keys.old[0].id()) == &keys.old[0]);
  CHECK(keys.find(KeyId{}) == nullptr);
  CHECK(keys.describe() == keys.current->idHex() + " (encryption.key-file '" + current + "'), " +
                               keys.old[0].idHex() + " (encryption.old-key-files '" + old + "')");
  CHECK(Keyring::none().describe() == "none");
  CHECK(repository.objectOptions().key == &*keys.current);
  CHECK(repository.objectOptions().encryption() == io::EncryptType::Aes256Gcm);
  SUBCASE(
      "with encryption.type = none the keys are still read (old objects stay readable), but not "
      "used to write") {
    config.encryption.type = io::EncryptType::None;
    Repository plain = openRepository(config);
    CHECK(plain.keys().current.has_value());
    CHECK(plain.objectOptions().key == nullptr);
  }
  SUBCASE("without a key file, no key") {
    Config none;
    none.repo.path = root.path();
    CHECK_FALSE(openRepository(none).keys().current.has_value());
  }
}

TEST_CASE("a handle that encrypts without a current key is a bug, reported as such") {
  test::MemoryStorage storage;
  Repository repository(storage, "main", {}, {.encryption = io::EncryptType::Aes256Gcm});
  Error e = thrownError([&] { repository.objectOptions(); });
  CHECK(e.code() == ErrorCode::Internal);
  CHECK_FALSE(repository.canOpenAnother());
  CHECK(thrownError([&] { repository.another(); }).code() == ErrorCode::Internal);
}
