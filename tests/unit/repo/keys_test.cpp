// Unit tests of common/repo/keys.h: key forms, key files and their modes, key commands, key ids
// and tidemark keygen's key files.
#include "common/repo/keys.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include "common/io/hash.h"
#include "support/check.h"
#include "support/segment.h"

using namespace tidemark;
using namespace tidemark::repo;
using test::Containing;
using test::thrownError;
using test::what;

namespace {

const std::string kHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
// The same 32 bytes in base64.
const std::string kBase64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

io::Key256 counting() {
  io::Key256 key{};
  for (std::size_t i = 0; i < key.size(); ++i)
    key[i] = std::uint8_t(i);
  return key;
}

std::string keyFile(const test::TempDir& dir, const std::string& name, std::string_view content,
                    mode_t mode) {
  std::string path = dir / name;
  test::writeFile(path, content);
  ::chmod(path.c_str(), mode);
  return path;
}

}  // namespace

TEST_CASE("parseKey reads raw, hex and base64 keys, and refuses anything else without echoing it") {
  const io::Key256 expected = counting();
  CHECK(parseKey(kHex, "k") == expected);
  CHECK(parseKey("  " + kHex + "\n", "k") == expected);
  CHECK(parseKey(kBase64 + "\n", "k") == expected);
  std::string raw(expected.begin(), expected.end());
  CHECK(parseKey(raw, "k") == expected);
  for (std::string bad : {std::string(""), kHex.substr(2), kHex + "00", "zz" + kHex.substr(2),
                          kBase64.substr(4), std::string("secret-password-of-the-operator")}) {
    CAPTURE(bad);
    Error e = thrownError([&] { parseKey(bad, "encryption.key-file '/k'"); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(
        what(e) ==
        "encryption.key-file '/k' does not hold a key (expected 32 raw bytes, 64 hex digits or 44 "
        "base64 characters)");
    if (bad.size() > 4) CHECK(what(e).find(bad) == std::string::npos);
  }
  SUBCASE("32 characters of text are not 32 raw bytes: a passphrase is not a key") {
    for (std::string text : {std::string("correct horse battery staple 123"), kHex.substr(0, 32),
                             std::string(31, 'a') + "\n"}) {
      CAPTURE(text);
      REQUIRE(text.size() == 32);
      Error e = thrownError([&] { parseKey(text, "encryption.key-file '/k'"); });
      CHECK(e.code() == ErrorCode::Config);
      CHECK(what(e) ==
            "encryption.key-file '/k' holds 32 characters of text, not a key (expected 32 raw "
            "bytes, 64 hex "
            "digits or 44 base64 characters)");
      CHECK(what(e).find(text.substr(0, 10)) == std::string::npos);
    }
  }
}

TEST_CASE("a master key's id is HKDF of the key, and the object key depends on the salt") {
  MasterKey key(counting(), "k");
  KeyId expected{};
  io::hkdfSha256(counting(), {}, kKeyIdInfo, expected);
  CHECK(key.id() == expected);
  CHECK(key.idHex() == io::toHex(expected));
  CHECK(key.idHex().size() == 16);
  std::array<std::uint8_t, kSaltSize> a{}, b{};
  b[0] = 1;
  CHECK(key.objectKey(a) != key.objectKey(b));
  CHECK(key.objectKey(a) == key.objectKey(a));
}

TEST_CASE("a keyring finds its current and old keys by id, as bytes or as hex") {
  io::Key256 otherBytes{};
  otherBytes.fill(7);
  const MasterKey current(counting(), "current"), old(otherBytes, "old");
  const Keyring keys{.current = current, .old = {old}};
  CHECK(keys.find(current.id())->source() == "current");
  CHECK(keys.findHex(current.idHex())->source() == "current");
  CHECK(keys.find(old.id())->source() == "old");
  CHECK(keys.findHex(old.idHex())->source() == "old");
  CHECK(keys.findHex("0123456789abcdef") == nullptr);
  CHECK(Keyring::none().findHex(current.idHex()) == nullptr);
}

TEST_CASE("readKeyFile refuses a key file others may read, naming the chmod to run") {
  test::TempDir dir;
  SUBCASE("mode 0600 and 0400 are fine") {
    CHECK(readKeyFile(keyFile(dir, "a", kHex, 0600), "encryption.key-file").id() ==
          MasterKey(counting(), "").id());
    CHECK_NOTHROW(readKeyFile(keyFile(dir, "b", kBase64, 0400), "encryption.key-file"));
  }
  SUBCASE("readable by group or others") {
    for (mode_t mode : {mode_t(0640), mode_t(0604), mode_t(0620), mode_t(0644)}) {
      std::string path = keyFile(dir, "k", kHex, mode);
      Error e = thrownError([&] { readKeyFile(path, "encryption.key-file"); });
      CHECK(e.code() == ErrorCode::Config);
      CHECK(what(e) ==
            fmt::format(
                "encryption.key-file '{}' may be read or changed by group or others (mode {:04o})",
                path, mode));
      CHECK(e.hint() == "run: chmod 600 '" + path + "'");
    }
  }
  SUBCASE("missing, not a key, or a directory") {
    Error missing = thrownError([&] { readKeyFile(dir / "none", "encryption.key-file"); });
    CHECK(missing.code() == ErrorCode::Config);
    CHECK(what(missing) == "encryption.key-file '" + (dir / "none") + "' does not exist");
    CHECK(missing.hint() == Containing("tidemark keygen"));
    Error garbage = thrownError(
        [&] { readKeyFile(keyFile(dir, "g", "hunter2\n", 0600), "encryption.key-file"); });
    CHECK(what(garbage) == Containing("does not hold a key"));
    CHECK(what(garbage).find("hunter2") == std::string::npos);
    ::chmod(dir.path().c_str(), 0700);
    CHECK(thrownError([&] { readKeyFile(dir.path(), "encryption.key-file"); }).code() ==
          ErrorCode::Config);
  }
}

TEST_CASE("runKeyCommand takes the key from standard output and never echoes what it printed") {
  SUBCASE("hex or base64 on standard output") {
    CHECK(runKeyCommand("echo " + kHex).id() == MasterKey(counting(), "").id());
    CHECK(runKeyCommand("printf '%s' '" + kBase64 + "'").source() == "encryption.key-command");
  }
  SUBCASE("a command that fails") {
    Error e = thrownError([] { runKeyCommand("echo not-a-key-but-secret; exit 3"); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "encryption.key-command failed (exit status 3)");
    CHECK(e.hint() == Containing("run the command by hand"));
  }
  SUBCASE("output that is not a key is not repeated") {
    Error e = thrownError([] { runKeyCommand("echo secret-token-123"); });
    CHECK(what(e) ==
          "encryption.key-command did not print a key (expected 32 raw bytes, 64 hex digits or 44 "
          "base64 characters on standard output)");
    CHECK(what(e).find("secret-token") == std::string::npos);
    CHECK(what(thrownError([] { runKeyCommand("head -c 10000 /dev/zero"); })) ==
          Containing("printed more than a key"));
  }
  SUBCASE("a command that hangs is stopped") {
    Error e = thrownError([] { runKeyCommand("sleep 30", std::chrono::seconds(1)); });
    CHECK(what(e) == "encryption.key-command did not finish within 1 s and was stopped");
  }
}

TEST_CASE("writeNewKeyFile makes a 0600 key file and never replaces one") {
  test::TempDir dir;
  std::string path = dir / "repo.key";
  std::string id = writeNewKeyFile(path);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  MasterKey key = readKeyFile(path, "encryption.key-file");
  CHECK(key.idHex() == id);
  CHECK(test::readFile(path).size() == 65);
  std::string again = writeNewKeyFile(dir / "second.key");
  CHECK(again != id);
  io::Buffer before = test::readFile(path);
  Error e = thrownError([&] { writeNewKeyFile(path); });
  CHECK(e.code() == ErrorCode::InvalidInput);
  CHECK(what(e) == "'" + path + "' already exists; a key file is never replaced");
  CHECK(test::readFile(path) == before);
}
