// Unit tests of common/repo/repository.h: the handle, and opening the configured repository
// (driver, keys, write policy).
#include "common/repo/repository.h"

#include <doctest/doctest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <regex>
#include <sstream>

#include "common/config/config.h"
#include "common/io/hash.h"
#include "common/storage/posix/posix.h"
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

TEST_CASE("at debug level, every repository request is logged with its answer and duration") {
  test::TempDir dir;
  Config config;
  config.repo.path = dir.path();
  std::ostringstream lines;
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_st>(lines));
  logger->set_pattern("%v");
  spdlog::set_default_logger(logger);
  struct Restore {
    ~Restore() { spdlog::set_default_logger(previous); }
    std::shared_ptr<spdlog::logger> previous;
  } restore{previous};

  SUBCASE("debug: operation, path, result or size, milliseconds") {
    logger->set_level(spdlog::level::debug);
    Repository repository = openRepository(config);
    CHECK_FALSE(repository.storage().info("main/stanza.json"));
    auto write = repository.storage().newWrite("main/x", {});
    write->write(io::asBytes(std::string(2048, 'x')));
    CHECK(write->commit());
    io::NullSink discard;
    CHECK(repository.storage().read("main/x", discard, {}));
    repository.storage().list("main", [](const storage::ListEntry&) {});
    Repository other = repository.another();
    other.storage().remove("main/x");
    std::string text = lines.str();
    CAPTURE(text);
    const std::string ms = R"(, \d+ ms\n)";
    CHECK(
        std::regex_search(text, std::regex("repository info 'main/stanza.json': not found" + ms)));
    CHECK(std::regex_search(text, std::regex("repository write 'main/x': done" + ms)));
    CHECK(std::regex_search(text, std::regex("repository commit 'main/x': 2.0 KiB stored" + ms)));
    CHECK(std::regex_search(text, std::regex("repository read 'main/x': 2.0 KiB" + ms)));
    CHECK(std::regex_search(text, std::regex("repository list 'main': 1 entry" + ms)));
    CHECK(std::regex_search(text, std::regex("repository remove 'main/x': done" + ms)));
  }
  SUBCASE("a failure is logged with its message, and still thrown") {
    logger->set_level(spdlog::level::debug);
    config.repo.path = dir / "missing";
    Repository repository = openRepository(config);
    Error e = thrownError([&] { repository.storage().info("main/stanza.json"); });
    CHECK(e.code() == ErrorCode::Storage);
    CHECK(lines.str() ==
          Containing("repository info 'main/stanza.json': failed (repository path '" +
                     (dir / "missing") + "' does not exist or is not a directory)"));
  }
  SUBCASE("not at debug level: nothing is logged (and nothing wraps the driver)") {
    logger->set_level(spdlog::level::info);
    Repository repository = openRepository(config);
    CHECK_FALSE(repository.storage().info("main/stanza.json"));
    CHECK(lines.str().empty());
    CHECK(dynamic_cast<storage::PosixStorage*>(&repository.storage()) != nullptr);
  }
}
