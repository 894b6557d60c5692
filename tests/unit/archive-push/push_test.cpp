// Unit tests of archive-push/push.h: the push worker against posix, memory and faulty storage.
#include "archive-push/push.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <future>
#include <set>
#include <thread>

#include "common/repo/generation.h"
#include "common/repo/keys.h"
#include "common/repo/layout.h"
#include "common/repo/marks.h"
#include "common/repo/metadata.h"
#include "common/repo/stanza.h"
#include "common/spool/spool.h"
#include "common/storage/posix/posix.h"
#include "support/check.h"
#include "support/fake_s3.h"
#include "support/fault_storage.h"
#include "support/forwarding_storage.h"
#include "support/memory_storage.h"
#include "support/segment.h"
#include "support/stanza.h"

using namespace tidemark;
using archive::PushOutcome;
using test::Containing;
using test::thrownError;
using test::what;

namespace {

// 1 MiB segments keep the tests fast; one test uses PostgreSQL's default 16 MiB.
const test::SegmentSpec kSegment{.segmentNumber = 5, .segmentSize = 1u << 20};

std::string objectPath(const std::string& name) {
  return repo::walObject("main", 1, *pg::parseWalName(name));
}

// pg_upgrade's cluster: initialised later than kSegment's, its WAL names going on from `segment`.
test::SegmentSpec upgradedCluster(std::uint64_t segment) {
  test::SegmentSpec upgraded = kSegment;
  upgraded.systemId = kSegment.systemId + (std::uint64_t(100) << 32);
  upgraded.segmentNumber = segment;
  upgraded.seed = 2;
  return upgraded;
}

// tidemark stanza-upgrade --force for the cluster of `upgraded` (a pg_upgrade to the same
// version: the test segments are PostgreSQL 15's).
void stanzaUpgrade(const repo::Repository& repository, const test::SegmentSpec& upgraded) {
  REQUIRE(
      repo::upgradeStanza(
          repository, repo::requireStanza(repository),
          {.systemId = upgraded.systemId, .pgVersion = 15, .walSegmentSize = upgraded.segmentSize},
          true)
          .created);
}

std::string text(const io::Buffer& bytes) {
  return std::string(io::asText(bytes));
}

// One push of a test: the worker's parameters and the repository handle's settings.
struct PushParams {
  std::string walPath;
  io::CompressType compress = io::CompressType::Zstd;
  std::optional<std::uint64_t> controlSystemId;
  const repo::Keyring* keys = nullptr;  // the keys the handle holds
  bool encrypt = false;                 // with the current one
  bool allowMixedEncryption = false;
};

PushParams params(const std::string& walPath, io::CompressType type = io::CompressType::Zstd) {
  return {.walPath = walPath, .compress = type};
}

// The worker on a handle of stanza "main" of `s`.
archive::PushResult pushWalFile(storage::Storage& s, const PushParams& p) {
  repo::Repository repository(
      s, "main", p.keys ? *p.keys : repo::Keyring{},
      {.compress = p.compress,
       .level = 1,
       .encryption = p.encrypt ? io::EncryptType::Aes256Gcm : io::EncryptType::None,
       .allowMixedEncryption = p.allowMixedEncryption});
  return archive::pushWalFile(repository,
                              {.walPath = p.walPath, .controlSystemId = p.controlSystemId});
}

std::optional<repo::StanzaInfo> loadStanza(storage::Storage& s, const std::string& stanza) {
  return repo::loadStanza(repo::Repository(s, stanza));
}

io::Buffer plainOf(storage::Storage& s, const std::string& path) {
  io::MemorySink out;
  REQUIRE(repo::readObject(s, path, out));
  return out.data();
}

// A pg_wal folder and a posix repository.
struct Posix {
  test::TempDir pgWal{"tidemark-pgwal"};
  test::TempDir repoDir{"tidemark-repo"};
  storage::PosixStorage storage{repoDir.path(), {.sync = false}};

  std::string write(const test::SegmentSpec& spec) {
    return test::writeSegment(pgWal.path(), spec);
  }
  std::string write(const std::string& name, std::string_view content) {
    test::writeFile(pgWal / name, content);
    return pgWal / name;
  }
  io::Buffer stored(const std::string& name) { return test::readFile(repoDir / objectPath(name)); }
  bool has(const std::string& name) { return test::exists(repoDir / objectPath(name)); }
  // The stanza, as tidemark stanza-create makes it: for kSegment's cluster (1 MiB segments).
  void createStanza(io::EncryptType encryption = io::EncryptType::None) {
    test::createStanza(storage, {.segmentSize = kSegment.segmentSize, .encryption = encryption});
  }
};

const std::string kHistory = "1\t0/3000000\tno recovery target specified\n";
const std::string kBackup =
    "START WAL LOCATION: 0/3000028 (file 000000010000000000000003)\nSTOP WAL LOCATION: 0/3000100 "
    "(file "
    "000000010000000000000003)\nLABEL: base\n";

}  // namespace

TEST_CASE("pushWalFile stores a segment into its stanza, and never creates a stanza") {
  Posix f;
  const test::SegmentSpec spec{.systemId = 7123456789012345678ULL,
                               .segmentNumber = 3};  // 16 MiB, PostgreSQL 15
  const std::string path = f.write(spec);
  const io::Buffer bytes = test::makeSegment(spec);
  SUBCASE(
      "without a stanza (not created, a mistyped name, an unmounted repository): refused, nothing "
      "stored") {
    Error e = thrownError([&] { pushWalFile(f.storage, params(path)); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "stanza 'main' does not exist in " + f.storage.describe());
    CHECK(e.hint() == Containing("tidemark stanza-create"));
    CHECK(test::listDirectory(f.repoDir.path()).empty());
  }
  SUBCASE("with a stanza: stored, stanza.json untouched") {
    test::createStanza(f.storage, {.systemId = spec.systemId});
    const io::Buffer stanzaBefore = test::readFile(f.repoDir / "main/stanza.json");
    auto result = pushWalFile(f.storage, params(path));
    CHECK(result.outcome == PushOutcome::Stored);
    CHECK(result.name.name == "000000010000000000000003");
    CHECK(result.summary.plainSize == 16u << 20);
    CHECK(result.summary.plainSha256 == io::Sha256::of(bytes));
    CHECK(result.summary.storedSize == f.storage.info(objectPath(result.name.name))->size);
    CHECK(result.summary.storedSize < bytes.size() / 2);
    SUBCASE("stanza.json is as stanza-create wrote it") {
      CHECK(test::readFile(f.repoDir / "main/stanza.json") == stanzaBefore);
    }
    SUBCASE("the object is under its name and reads back byte-identical") {
      CHECK(test::listDirectory(f.repoDir / "main/wal/0000000100000000") ==
            std::vector<std::string>{"000000010000000000000003"});
      CHECK(plainOf(f.storage, objectPath(result.name.name)) == bytes);
    }
  }
}

TEST_CASE("pushWalFile never replaces an archived file") {
  Posix f;
  f.createStanza();
  const std::string path = f.write(kSegment);
  const std::string name = test::segmentName(kSegment);
  REQUIRE(pushWalFile(f.storage, params(path)).outcome == PushOutcome::Stored);
  const io::Buffer before = f.stored(name);

  SUBCASE("a re-push of the same bytes is AlreadyArchived and changes nothing") {
    auto again = pushWalFile(f.storage, params(path, io::CompressType::Lz4));
    CHECK(again.outcome == PushOutcome::AlreadyArchived);
    CHECK(again.summary.storedSize == 0);
    CHECK(again.summary.plainSha256 == io::Sha256::of(test::makeSegment(kSegment)));
    CHECK(f.stored(name) == before);
  }
  SUBCASE(
      "a re-push with different bytes is refused as a Conflict naming both checksums, and changes "
      "nothing") {
    test::SegmentSpec other = kSegment;
    other.seed = 2;
    f.write(other);  // same name, other content
    const io::Buffer otherBytes = test::makeSegment(other);
    Error e = thrownError([&] { pushWalFile(f.storage, params(path)); });
    CHECK(e.code() == ErrorCode::Conflict);
    CHECK(what(e) ==
          Containing("WAL file '" + name + "' is already archived with different content"));
    CHECK(what(e) == Containing(io::toHex(io::Sha256::of(test::makeSegment(kSegment)))));
    CHECK(what(e) == Containing(io::toHex(io::Sha256::of(otherBytes))));
    CHECK(what(e) == Containing("the stored copy is unchanged"));
    CHECK(e.hint() == Containing("never overwrites WAL"));
    CHECK(f.stored(name) == before);
    CHECK(test::listDirectory(f.repoDir / "main/wal/0000000100000000") ==
          std::vector<std::string>{name});
  }
  SUBCASE("a damaged stored object makes a re-push fail as Corrupt and stays untouched") {
    io::Buffer damaged = before;
    damaged[damaged.size() / 2] ^= 0x10;
    test::writeFile(f.repoDir / objectPath(name), io::ByteView(damaged));
    Error e = thrownError([&] { pushWalFile(f.storage, params(path)); });
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == Containing("WAL file '" + name +
                                "' is already archived, but the stored copy is damaged"));
    CHECK(e.hint() == Containing("keep the damaged object '" + objectPath(name) + "' aside"));
    CHECK(f.stored(name) == damaged);
  }
  SUBCASE("a stored object of a newer format makes a re-push fail as Unsupported") {
    io::Buffer newer = before;
    io::putLe16(&newer[8], 2);
    io::Sha256Digest check = io::Sha256::of(io::ByteView(newer).subspan(0, repo::kHeaderFixedSize));
    std::copy_n(check.begin(), repo::kHeaderCheckSize, newer.begin() + repo::kHeaderFixedSize);
    test::writeFile(f.repoDir / objectPath(name), io::ByteView(newer));
    CHECK(thrownError([&] { pushWalFile(f.storage, params(path)); }).code() ==
          ErrorCode::Unsupported);
    CHECK(f.stored(name) == newer);
  }
}

TEST_CASE("pushWalFile refuses files from another cluster and stores nothing") {
  Posix f;
  f.createStanza();
  REQUIRE(pushWalFile(f.storage, params(f.write(kSegment))).outcome == PushOutcome::Stored);
  const io::Buffer stanza = test::readFile(f.repoDir / "main/stanza.json");
  SUBCASE("a segment from another system identifier is ForeignCluster") {
    test::SegmentSpec foreign = kSegment;
    foreign.systemId = 42;
    foreign.segmentNumber = 6;
    Error e = thrownError([&] { pushWalFile(f.storage, params(f.write(foreign))); });
    CHECK(e.code() == ErrorCode::ForeignCluster);
    CHECK(what(e) ==
          Containing("system identifier 42, but stanza 'main' belongs to 7000000000000000001"));
    CHECK_FALSE(f.has(test::segmentName(foreign)));
  }
  SUBCASE("a segment of another segment size is refused") {
    test::SegmentSpec other = kSegment;
    other.segmentSize = 2u << 20;
    other.segmentNumber = 4;
    Error e = thrownError([&] { pushWalFile(f.storage, params(f.write(other))); });
    CHECK(e.code() == ErrorCode::ForeignCluster);
    CHECK(what(e) ==
          Containing("has 2097152 byte segments, but stanza 'main' has 1048576 byte segments"));
    CHECK_FALSE(f.has(test::segmentName(other)));
  }
  SUBCASE("a .history file is refused when the data directory's pg_control names another cluster") {
    PushParams p = params(f.write("00000002.history", kHistory));
    p.controlSystemId = 42;
    Error e = thrownError([&] { pushWalFile(f.storage, p); });
    CHECK(e.code() == ErrorCode::ForeignCluster);
    CHECK(what(e) ==
          Containing("WAL file '00000002.history' (from the data directory with that pg_control)"));
    CHECK_FALSE(f.has("00000002.history"));
  }
  SUBCASE("a .backup file is refused the same way") {
    PushParams p = params(f.write("000000010000000000000003.00000028.backup", kBackup));
    p.controlSystemId = 42;
    CHECK(thrownError([&] { pushWalFile(f.storage, p); }).code() == ErrorCode::ForeignCluster);
    CHECK_FALSE(f.has("000000010000000000000003.00000028.backup"));
  }
  SUBCASE("a .history file whose pg_control matches the stanza is stored") {
    PushParams p = params(f.write("00000002.history", kHistory));
    p.controlSystemId = kSegment.systemId;
    CHECK(pushWalFile(f.storage, p).outcome == PushOutcome::Stored);
  }
  CHECK(test::readFile(f.repoDir / "main/stanza.json") == stanza);
}

TEST_CASE("pushWalFile after stanza-upgrade: each cluster's WAL goes to its own generation") {
  Posix f;
  f.createStanza();
  REQUIRE(pushWalFile(f.storage, params(f.write(kSegment))).outcome == PushOutcome::Stored);
  // pg_upgrade's cluster: initialised later, and its WAL names go on where the old ones ended.
  const test::SegmentSpec upgraded = upgradedCluster(kSegment.segmentNumber);
  const std::string path = f.write(upgraded);
  Error refused = thrownError([&] { pushWalFile(f.storage, params(path)); });
  CHECK(refused.code() == ErrorCode::ForeignCluster);
  // The same version: a stanza of its own first, stanza-upgrade only to replace the cluster.
  CHECK(std::string(refused.hint()) == Containing("its own stanza"));
  CHECK(std::string(refused.hint()) == Containing("tidemark stanza-upgrade --force"));
  CHECK_FALSE(test::exists(f.repoDir / "main/wal-2"));

  stanzaUpgrade(repo::Repository(f.storage, "main"), upgraded);
  // The same name as generation 1's segment, another cluster: its own folder, no conflict.
  CHECK(pushWalFile(f.storage, params(path)).outcome == PushOutcome::Stored);
  const std::string second =
      repo::walObject("main", 2, *pg::parseWalName(test::segmentName(upgraded)));
  CHECK(plainOf(f.storage, second) == test::makeSegment(upgraded));
  CHECK(plainOf(f.storage, objectPath(test::segmentName(kSegment))) == test::makeSegment(kSegment));

  SUBCASE("the old cluster still archives into generation 1") {
    test::SegmentSpec next = kSegment;
    next.segmentNumber = 6;
    CHECK(pushWalFile(f.storage, params(f.write(next))).outcome == PushOutcome::Stored);
    CHECK(f.has(test::segmentName(next)));
  }
  SUBCASE("a .history file goes to the generation its data directory's pg_control names") {
    PushParams p = params(f.write("00000002.history", kHistory));
    p.controlSystemId = upgraded.systemId;
    CHECK(pushWalFile(f.storage, p).outcome == PushOutcome::Stored);
    CHECK(test::exists(f.repoDir / "main/wal-2/00000002.history"));
    CHECK_FALSE(f.has("00000002.history"));
  }
  SUBCASE("without pg_control, a .history file of a stanza with generations is refused") {
    Error e =
        thrownError([&] { pushWalFile(f.storage, params(f.write("00000002.history", kHistory))); });
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == Containing("cannot tell which generation"));
  }
  SUBCASE("a third cluster, initialised before the stanza's, is told to use its own stanza") {
    test::SegmentSpec older = kSegment;
    older.systemId = kSegment.systemId - (std::uint64_t(100) << 32);
    older.segmentNumber = 7;
    Error e = thrownError([&] { pushWalFile(f.storage, params(f.write(older))); });
    CHECK(e.code() == ErrorCode::ForeignCluster);
    CHECK(std::string(e.hint()) == Containing("its own stanza"));
    CHECK(std::string(e.hint()).find("stanza-upgrade") == std::string::npos);
  }
}

TEST_CASE("pushWalFile refuses what is not a WAL file") {
  Posix f;
  SUBCASE("a name that is not a WAL file name is InvalidInput") {
    Error e = thrownError([&] { pushWalFile(f.storage, params(f.write("RECOVERYXLOG", "x"))); });
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == "'RECOVERYXLOG' is not a WAL file name");
    CHECK(e.hint() == Containing("%p"));
    CHECK(thrownError([&] {
            pushWalFile(f.storage, params(f.write("000000010000000000000001.ready", "")));
          }).code() == ErrorCode::InvalidInput);
  }
  SUBCASE("a missing file is LocalIo") {
    Error e =
        thrownError([&] { pushWalFile(f.storage, params(f.pgWal / "000000010000000000000009")); });
    CHECK(e.code() == ErrorCode::LocalIo);
    CHECK(what(e) == "WAL file '" + (f.pgWal / "000000010000000000000009") + "' does not exist");
  }
  SUBCASE("a directory named like a segment is InvalidInput") {
    REQUIRE(::mkdir((f.pgWal / "000000010000000000000009").c_str(), 0700) == 0);
    Error e =
        thrownError([&] { pushWalFile(f.storage, params(f.pgWal / "000000010000000000000009")); });
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == Containing("is not a regular file"));
  }
  SUBCASE("a segment with a bad page header is InvalidInput") {
    io::Buffer bytes = test::makeSegment(kSegment);
    bytes[0] ^= 0xFF;
    const std::string path = f.pgWal / test::segmentName(kSegment);
    test::writeFile(path, io::ByteView(bytes));
    Error e = thrownError([&] { pushWalFile(f.storage, params(path)); });
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == Containing("is not a valid WAL segment: unknown page magic"));
  }
  SUBCASE("a segment cut short is InvalidInput") {
    io::Buffer bytes = test::makeSegment(kSegment);
    bytes.resize(bytes.size() - 8192);
    const std::string path = f.pgWal / test::segmentName(kSegment);
    test::writeFile(path, io::ByteView(bytes));
    CHECK(thrownError([&] { pushWalFile(f.storage, params(path)); }).code() ==
          ErrorCode::InvalidInput);
    test::writeFile(path, "short");
    Error e = thrownError([&] { pushWalFile(f.storage, params(path)); });
    CHECK(what(e) == Containing("too short for a page header"));
  }
  SUBCASE("a .history file too large to be one is InvalidInput") {
    const std::string path = f.pgWal / "00000002.history";
    test::writeFile(path, "");
    REQUIRE(::truncate(path.c_str(), (16 << 20) + 1) == 0);  // sparse: no bytes written
    Error e = thrownError([&] { pushWalFile(f.storage, params(path)); });
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == Containing("too large for a timeline history file"));
  }
  // Nothing reached the repository: not even a stanza.
  CHECK(test::listDirectory(f.repoDir.path()).empty());
}

TEST_CASE("pushWalFile stores .history, .backup and .partial files") {
  Posix f;
  SUBCASE("without a stanza, a .history or .backup file is refused like a segment") {
    for (const std::string& path : {f.write("00000002.history", kHistory),
                                    f.write("000000010000000000000003.00000028.backup", kBackup)}) {
      CAPTURE(path);
      Error e = thrownError([&] { pushWalFile(f.storage, params(path)); });
      CHECK(e.code() == ErrorCode::Config);
      CHECK(e.hint() == Containing("tidemark stanza-create"));
    }
    CHECK(test::listDirectory(f.repoDir.path()).empty());
  }
  SUBCASE("with a stanza") {
    f.createStanza();
    SUBCASE(".history and .backup files need no page header") {
      auto history = pushWalFile(f.storage, params(f.write("00000002.history", kHistory)));
      CHECK(history.outcome == PushOutcome::Stored);
      CHECK(text(plainOf(f.storage, "main/wal/00000002.history")) == kHistory);
      auto backup = pushWalFile(
          f.storage, params(f.write("000000010000000000000003.00000028.backup", kBackup)));
      CHECK(backup.outcome == PushOutcome::Stored);
      CHECK(text(plainOf(f.storage, objectPath("000000010000000000000003.00000028.backup"))) ==
            kBackup);
    }
    SUBCASE("a .history file pushed again is AlreadyArchived, or a Conflict with other content") {
      const std::string path = f.write("00000002.history", kHistory);
      REQUIRE(pushWalFile(f.storage, params(path)).outcome == PushOutcome::Stored);
      CHECK(pushWalFile(f.storage, params(path)).outcome == PushOutcome::AlreadyArchived);
      f.write("00000002.history", "1\t0/4000000\tbefore 2026-11-22 10:00:00+00\n");
      Error e = thrownError([&] { pushWalFile(f.storage, params(path)); });
      CHECK(e.code() == ErrorCode::Conflict);
      CHECK(text(plainOf(f.storage, "main/wal/00000002.history")) == kHistory);
    }
    SUBCASE("a .partial segment is checked like a segment and stored under its own name") {
      const std::string name = test::segmentName(kSegment) + ".partial";
      io::Buffer bytes = test::makeSegment(kSegment);
      test::writeFile(f.pgWal / name, io::ByteView(bytes));
      CHECK(pushWalFile(f.storage, params(f.pgWal / name)).outcome == PushOutcome::Stored);
      CHECK(plainOf(f.storage, objectPath(name)) == bytes);
      bytes[2] = 0;  // no long header
      const std::string bad =
          test::segmentName({.segmentNumber = 6, .segmentSize = 1u << 20}) + ".partial";
      test::writeFile(f.pgWal / bad, io::ByteView(bytes));
      CHECK(thrownError([&] { pushWalFile(f.storage, params(f.pgWal / bad)); }).code() ==
            ErrorCode::InvalidInput);
    }
    SUBCASE("a relative path is taken from the working directory") {
      const std::string name = test::segmentName(kSegment);
      f.write(kSegment);
      test::ChangeDirectory cd(f.pgWal.path());
      CHECK(pushWalFile(f.storage, params(name)).outcome == PushOutcome::Stored);
    }
  }
}

TEST_CASE("pushWalFile stores with the requested compression") {
  for (io::CompressType type :
       {io::CompressType::None, io::CompressType::Lz4, io::CompressType::Zstd}) {
    CAPTURE(type);
    Posix f;
    f.createStanza();
    const std::string name = test::segmentName(kSegment);
    auto result = pushWalFile(f.storage, params(f.write(kSegment), type));
    CHECK(result.summary.compress == type);
    io::Buffer stored = f.stored(name);
    CHECK(stored[12] == std::uint8_t(type));
    if (type == io::CompressType::None)
      CHECK(stored.size() == (1u << 20) + 68);
    else
      CHECK(stored.size() < (1u << 20) / 2);
    CHECK(plainOf(f.storage, objectPath(name)) == test::makeSegment(kSegment));
  }
}

TEST_CASE("pushWalFile announces the stored size of an uncompressed file, so S3 can stream it") {
  test::TempDir pgWal;
  test::MemoryStorage s;  // refuses a write that does not match the size it announced
  test::createStanza(s, {.segmentSize = kSegment.segmentSize});
  const std::string path = test::writeSegment(pgWal.path(), kSegment);
  const std::string object = objectPath(test::segmentName(kSegment));
  SUBCASE("without compression: the segment and the envelope's 68 bytes") {
    CHECK(pushWalFile(s, params(path, io::CompressType::None)).outcome == PushOutcome::Stored);
    CHECK(s.announcedSize(object) == (1u << 20) + 68);
    CHECK(s.object(object)->size() == (1u << 20) + 68);
  }
  SUBCASE("a .history file too") {
    test::writeFile(pgWal / "00000002.history", kHistory);
    CHECK(pushWalFile(s, params(pgWal / "00000002.history", io::CompressType::None)).outcome ==
          PushOutcome::Stored);
    CHECK(s.announcedSize(objectPath("00000002.history")) == kHistory.size() + 68);
  }
  SUBCASE("compressed: nothing, its size is known only at its end") {
    CHECK(pushWalFile(s, params(path, io::CompressType::Zstd)).outcome == PushOutcome::Stored);
    CHECK_FALSE(s.announcedSize(object));
  }
}

TEST_CASE("pushWalFile refuses a file that grows while it is read, storing nothing") {
  test::TempDir pgWal;
  test::MemoryStorage s;
  test::createStanza(s, {.segmentSize = kSegment.segmentSize});
  const std::string path = test::writeSegment(pgWal.path(), kSegment);
  // A storage whose first write appends to the file being pushed: what PostgreSQL never does to
  // a completed segment, and what a wrong %p could.
  struct Growing final : test::ForwardingStorage {
    using ForwardingStorage::ForwardingStorage;
    std::string file;
    std::unique_ptr<storage::Write> newWrite(const std::string& p,
                                             storage::WriteOptions options) override {
      int fd = ::open(file.c_str(), O_WRONLY | O_APPEND);
      REQUIRE(fd >= 0);
      CHECK(::write(fd, "x", 1) == 1);
      ::close(fd);
      return ForwardingStorage::newWrite(p, options);
    }
  } growing(s);
  growing.file = path;
  for (io::CompressType type : {io::CompressType::None, io::CompressType::Zstd}) {
    CAPTURE(type);
    test::writeSegment(pgWal.path(), kSegment);
    Error e = thrownError([&] { pushWalFile(growing, params(path, type)); });
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == Containing("changed size while being archived (1048576 bytes, then more)"));
    CHECK_FALSE(s.object(objectPath(test::segmentName(kSegment))));
  }
}

TEST_CASE("pushWalFile leaves nothing visible when the storage fails, and a retry succeeds") {
  test::TempDir pgWal;
  const std::string path = test::writeSegment(pgWal.path(), kSegment);
  const io::Buffer bytes = test::makeSegment(kSegment);
  const std::string object = objectPath(test::segmentName(kSegment));
  test::MemoryStorage inner;
  test::FaultStorage s(inner);
  auto checkInjected = [](const Error& e) {
    CHECK(e.code() == ErrorCode::Storage);
    CHECK(what(e) == Containing("injected fault"));
  };
  auto objects = [&] { return inner.paths(); };
  using Paths = std::vector<std::string>;
  test::createStanza(inner, {.segmentSize = kSegment.segmentSize});

  SUBCASE("the first write fails: nothing at all is stored") {
    s.plan().failWriteCall = 1;
    checkInjected(thrownError([&] { pushWalFile(s, params(path)); }));
    CHECK(objects() == Paths{"main/stanza.json"});
    CHECK(inner.openWrites() == 0);
    CHECK(pushWalFile(s, params(path)).outcome == PushOutcome::Stored);
  }
  SUBCASE("with earlier segments stored") {
    test::SegmentSpec earlier = kSegment;
    earlier.segmentNumber = 4;
    REQUIRE(pushWalFile(s, params(test::writeSegment(pgWal.path(), earlier))).outcome ==
            PushOutcome::Stored);
    const Paths before = objects();
    REQUIRE(before.size() == 2);  // stanza.json and that segment

    SUBCASE("a write that fails midway leaves the segment invisible") {
      s.plan().failWriteCall = s.counts().writeCalls + 2;  // after the envelope header
      checkInjected(thrownError([&] { pushWalFile(s, params(path)); }));
      CHECK(objects() == before);
      CHECK(inner.openWrites() == 0);
    }
    SUBCASE("a write that cannot even be created leaves nothing") {
      s.plan().failNewWrite = s.counts().newWrites + 1;
      checkInjected(thrownError([&] { pushWalFile(s, params(path)); }));
      CHECK(objects() == before);
    }
    SUBCASE("a failed commit leaves the segment invisible") {
      s.plan().failCommit = s.counts().commits + 1;
      checkInjected(thrownError([&] { pushWalFile(s, params(path)); }));
      CHECK(objects() == before);
      CHECK(inner.openWrites() == 0);
    }
    SUBCASE(
        "a commit whose reply is lost fails, and PostgreSQL's retry finds it already archived") {
      s.plan().loseCommitAck = s.counts().commits + 1;
      checkInjected(thrownError([&] { pushWalFile(s, params(path)); }));
      CHECK(pushWalFile(s, params(path)).outcome == PushOutcome::AlreadyArchived);
      CHECK(plainOf(inner, object) == bytes);
      return;
    }
    SUBCASE("a re-push whose comparison read fails is a storage error, not a verdict") {
      REQUIRE(pushWalFile(s, params(path)).outcome == PushOutcome::Stored);
      s.plan().failReadAfter = 100;
      checkInjected(thrownError([&] { pushWalFile(s, params(path)); }));
      s.plan().failReadAfter.reset();
      CHECK(pushWalFile(s, params(path)).outcome == PushOutcome::AlreadyArchived);
      return;
    }
    // After each failure, the retry stores the segment whole.
    s.plan() = {};
    CHECK(pushWalFile(s, params(path)).outcome == PushOutcome::Stored);
    CHECK(plainOf(inner, object) == bytes);
  }
}

TEST_CASE("two archivers pushing the same files at once store each file exactly once") {
  // A primary and a standby with archive_mode = always: one stanza, the same files, at the same
  // time. Whatever the interleaving, each file is Stored by one and AlreadyArchived for the
  // other.
  test::TempDir pgWal, repoDir;
  {
    storage::PosixStorage s(repoDir.path(), {.sync = false});
    test::createStanza(s, {.segmentSize = kSegment.segmentSize});
  }
  std::vector<std::string> paths;
  for (std::uint64_t n = 1; n <= 6; ++n) {
    test::SegmentSpec spec = kSegment;
    spec.segmentNumber = n;
    paths.push_back(test::writeSegment(pgWal.path(), spec));
  }
  test::writeFile(pgWal / "00000002.history", kHistory);
  paths.push_back(pgWal / "00000002.history");
  struct Outcomes {
    std::vector<PushOutcome> outcomes;
    std::string failure;
  };
  auto archiver = [&](Outcomes& out) {
    try {
      storage::PosixStorage s(repoDir.path(), {.sync = false});
      for (const auto& path : paths)
        out.outcomes.push_back(pushWalFile(s, params(path)).outcome);
    } catch (const std::exception& e) {
      out.failure = e.what();
    }
  };
  Outcomes a, b;
  std::thread first(archiver, std::ref(a)), second(archiver, std::ref(b));
  first.join();
  second.join();
  REQUIRE(a.failure == "");
  REQUIRE(b.failure == "");
  REQUIRE(a.outcomes.size() == paths.size());
  REQUIRE(b.outcomes.size() == paths.size());
  for (std::size_t i = 0; i < paths.size(); ++i) {
    CAPTURE(paths[i]);
    CHECK(a.outcomes[i] != b.outcomes[i]);
  }
  storage::PosixStorage s(repoDir.path(), {.sync = false});
  CHECK(loadStanza(s, "main")->systemId == kSegment.systemId);
  CHECK(test::listDirectory(repoDir / "main/wal/0000000100000000").size() == 6);
}

TEST_CASE("pushWalFile on a posix repository whose root is missing fails without creating it") {
  test::TempDir pgWal, dir;
  storage::PosixStorage s(dir / "unmounted", {.sync = false});
  const std::string path = test::writeSegment(pgWal.path(), kSegment);
  Error e = thrownError([&] { pushWalFile(s, params(path)); });
  CHECK(e.code() == ErrorCode::Storage);
  CHECK(what(e) == Containing(dir / "unmounted"));
  CHECK_FALSE(test::exists(dir / "unmounted"));
  // A .history file is refused the same way.
  test::writeFile(pgWal / "00000002.history", kHistory);
  Error history = thrownError([&] { pushWalFile(s, params(pgWal / "00000002.history")); });
  CHECK(history.code() == ErrorCode::Storage);
  CHECK_FALSE(test::exists(dir / "unmounted"));
}

TEST_CASE("archivePush pushes with the configured repository, stanza and compression") {
  test::TempDir pgWal, repoDir;
  Config config;
  config.stanza = "db1";
  config.repo.path = repoDir.path();
  config.compress = {.type = io::CompressType::Lz4, .level = 5};
  {
    storage::PosixStorage s(repoDir.path());
    test::createStanza(s, {.stanza = "db1", .segmentSize = kSegment.segmentSize});
  }
  const std::string path = test::writeSegment(pgWal.path(), kSegment);
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  archive::archivePush(config, path);
  archive::archivePush(config, path);  // already archived: success
  spdlog::set_level(level);
  storage::PosixStorage s(repoDir.path());
  std::string object = repo::walObject("db1", 1, *pg::parseWalName(test::segmentName(kSegment)));
  auto summary = repo::verifyObject(s, object);
  REQUIRE(summary);
  CHECK(summary->compress == io::CompressType::Lz4);
}

TEST_CASE("archivePush refuses a key-file stanza.json was not signed with, and passes a rotation") {
  test::TempDir pgWal, repoDir, keys;
  Config config;
  config.repo.path = repoDir.path();
  config.encryption.type = io::EncryptType::Aes256Gcm;
  const std::string first = keys / "first.key", second = keys / "second.key";
  repo::writeNewKeyFile(first);
  repo::writeNewKeyFile(second);
  config.encryption.keyFile = first;
  // stanza-create with the first key signs stanza.json with it.
  REQUIRE(repo::createStanza(repo::openRepository(config), {.systemId = kSegment.systemId,
                                                            .pgVersion = 15,
                                                            .walSegmentSize = kSegment.segmentSize})
              .created);
  const std::string path = test::writeSegment(pgWal.path(), kSegment);
  const std::string object =
      repo::walObject("main", 1, *pg::parseWalName(test::segmentName(kSegment)));
  storage::PosixStorage s(repoDir.path());
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  config.encryption.keyFile = second;
  Error e = thrownError([&] { archive::archivePush(config, path); });
  CHECK(e.code() == ErrorCode::Config);
  CHECK(what(e) == Containing("'main/stanza.json' was authenticated with key"));
  CHECK_FALSE(s.info(object));
  config.encryption.oldKeyFiles = {first};
  archive::archivePush(config, path);
  spdlog::set_level(level);
  CHECK(s.info(object));
}

TEST_CASE("pushWalFile with a key stores encrypted objects and keeps the stanza unmixed") {
  Posix f;
  io::Key256 bytes{};
  bytes[0] = 1;
  const repo::MasterKey key(bytes, "key-file '/k'");
  const repo::Keyring keys{.current = key};
  auto encrypted = [&](const std::string& path) {
    PushParams p = params(path);
    p.keys = &keys;
    p.encrypt = true;
    return p;
  };
  f.createStanza(io::EncryptType::Aes256Gcm);
  const std::string segment = f.write(kSegment);
  const std::string name = test::segmentName(kSegment);
  REQUIRE(pushWalFile(f.storage, encrypted(segment)).outcome == PushOutcome::Stored);
  CHECK(loadStanza(f.storage, "main")->encryption == io::EncryptType::Aes256Gcm);
  CHECK(f.stored(name)[13] == std::uint8_t(io::EncryptType::Aes256Gcm));
  io::MemorySink out;
  REQUIRE(repo::readObject(f.storage, objectPath(name), out, keys));
  CHECK(out.data() == test::makeSegment(kSegment));

  SUBCASE("a re-push of the same bytes is AlreadyArchived; other bytes are a Conflict") {
    CHECK(pushWalFile(f.storage, encrypted(segment)).outcome == PushOutcome::AlreadyArchived);
    test::SegmentSpec other = kSegment;
    other.seed = 7;
    test::writeSegment(f.pgWal.path(), other);
    CHECK(thrownError([&] { pushWalFile(f.storage, encrypted(segment)); }).code() ==
          ErrorCode::Conflict);
  }
  SUBCASE(
      "an unencrypted push into the encrypted stanza is refused, segment or .history, storing "
      "nothing") {
    test::SegmentSpec next = kSegment;
    next.segmentNumber = 6;
    Error e = thrownError([&] { pushWalFile(f.storage, params(f.write(next))); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) ==
          Containing("stanza 'main' records encryption 'aes-256-gcm' in stanza.json, but "
                     "encryption.type is 'none'"));
    CHECK_FALSE(f.has(test::segmentName(next)));
    CHECK(thrownError([&] {
            pushWalFile(f.storage, params(f.write("00000002.history", kHistory)));
          }).code() == ErrorCode::Config);
    CHECK_FALSE(f.has("00000002.history"));
  }
  SUBCASE("with allowMixedEncryption it is stored, and the stanza switches") {
    test::SegmentSpec next = kSegment;
    next.segmentNumber = 6;
    PushParams p = params(f.write(next));
    p.allowMixedEncryption = true;
    CHECK(pushWalFile(f.storage, p).outcome == PushOutcome::Stored);
    CHECK(loadStanza(f.storage, "main")->encryption == io::EncryptType::None);
    CHECK(f.stored(test::segmentName(next))[13] == 0);
  }
  SUBCASE("a push with a key stanza.json was not signed with is refused, storing nothing") {
    // stanza.json signed with `key`, as stanza-create with it does.
    const repo::Repository signer(f.storage, "main", keys,
                                  {.encryption = io::EncryptType::Aes256Gcm});
    const std::string stanzaPath = repo::stanzaFile("main");
    auto stanzaText = storage::readSmall(f.storage, stanzaPath, 1 << 20);
    REQUIRE(stanzaText);
    repo::writeMetadataMac(signer, stanzaPath, *stanzaText, repo::requireStanza(signer).identity());
    io::Key256 otherBytes{};
    otherBytes[0] = 2;
    const repo::MasterKey other(otherBytes, "key-file '/wrong'");
    test::SegmentSpec next = kSegment;
    next.segmentNumber = 6;
    const std::string nextPath = f.write(next);
    PushParams p = encrypted(nextPath);
    const repo::Keyring wrong{.current = other};
    p.keys = &wrong;
    Error e = thrownError([&] { pushWalFile(f.storage, p); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == Containing("'main/stanza.json' was authenticated with key " + key.idHex() +
                                "; configured keys are " + other.idHex()));
    CHECK(e.hint().find("set encryption.key-file (or key-command) to that key") !=
          std::string::npos);
    CHECK_FALSE(f.has(test::segmentName(next)));
    // A key rotation: the new key writes, the stanza's key stays among the old ones.
    const repo::Keyring rotated{.current = other, .old = {key}};
    p.keys = &rotated;
    CHECK(pushWalFile(f.storage, p).outcome == PushOutcome::Stored);
  }
  SUBCASE("a re-push whose stored copy was written with a key not configured names both keys") {
    io::Key256 otherBytes{};
    const repo::MasterKey other(otherBytes, "key-file '/other'");
    const repo::Keyring otherKeys{.current = other};
    PushParams p = encrypted(segment);
    p.keys = &otherKeys;
    Error e = thrownError([&] { pushWalFile(f.storage, p); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == Containing("was written with key " + key.idHex() + "; configured keys are " +
                                other.idHex()));
  }
}

namespace {

// A data directory with .ready segments in pg_wal, a "running server" (postmaster.pid) and a
// posix repository with stanza "main": what the pusher works on, without PostgreSQL.
struct PusherSetup {
  PusherSetup() {
    REQUIRE(::mkdir((data / "pg_wal").c_str(), 0700) == 0);
    REQUIRE(::mkdir((data / "pg_wal/archive_status").c_str(), 0700) == 0);
    test::writeFile(data / "postmaster.pid", "1\n");
    config.stanza = "main";
    config.repo.path = repoDir.path();
    config.archive.pushAhead = 2;
    storage::PosixStorage s(repoDir.path());
    auto stanza = test::createStanza(s, {.segmentSize = kSegment.segmentSize});
    // As the call that starts the pusher does before it.
    spool::claim(folder(), {.repository = repo::describeRepository(config),
                            .stanzaId = stanza.identity(),
                            .systemId = kSegment.systemId});
  }
  // Segments `first` .. `last` written and .ready; their names.
  std::vector<std::string> ready(std::uint64_t first, std::uint64_t last) {
    std::vector<std::string> names;
    for (std::uint64_t n = first; n <= last; ++n) {
      auto spec = kSegment;
      spec.segmentNumber = n;
      spec.seed = n;
      names.push_back(test::segmentName(spec));
      test::writeSegment(data / "pg_wal", spec);
      test::writeFile(data / ("pg_wal/archive_status/" + names.back() + ".ready"), "");
    }
    return names;
  }
  archive::PusherContext context() const {
    return {.config = config,
            .folder = folder(),
            .systemId = kSegment.systemId,
            .repository = repo::describeRepository(config),
            .walDirectory = data / "pg_wal",
            .dataDirectory = data.path()};
  }
  // Waits (up to 30 s) until the pusher has acknowledged a file.
  void waitForAck() const {
    for (int i = 0; i < 3000 && spool::listPushAcks(folder()).empty(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE_FALSE(spool::listPushAcks(folder()).empty());
  }
  // PostgreSQL marks a file done once a call for it returned 0.
  void markDone(const std::string& name) const {
    REQUIRE(::rename((data / ("pg_wal/archive_status/" + name + ".ready")).c_str(),
                     (data / ("pg_wal/archive_status/" + name + ".done")).c_str()) == 0);
  }
  std::string folder() const { return data / "pg_wal/tidemark/main"; }
  bool archived(const std::string& name) const { return test::exists(repoDir / objectPath(name)); }
  // An acknowledgement that archive-push would trust for `name`.
  bool acknowledged(const std::string& name) const {
    auto ack = spool::readPushAck(folder(), name);
    return ack && !spool::untrusted(folder(), *ack, repo::describeRepository(config),
                                    kSegment.systemId, data / ("pg_wal/" + name));
  }

  test::TempDir data{"tidemark-pgdata"};
  test::TempDir repoDir{"tidemark-repo"};
  Config config;
  // Short waits: the tests do not wait for the defaults.
  archive::PusherOptions options{.idle = std::chrono::milliseconds(300),
                                 .poll = std::chrono::milliseconds(5),
                                 .retry = std::chrono::milliseconds(50),
                                 .giveUp = std::chrono::seconds(1)};
};

// Where archive_command runs (the data directory, whose pg_control names the cluster `systemId`),
// for the tests that call archivePush; back to the previous working directory at the end.
struct InDataDirectory {
  explicit InDataDirectory(const PusherSetup& s, std::uint64_t systemId = kSegment.systemId) {
    REQUIRE(::mkdir((s.data / "global").c_str(), 0700) == 0);
    std::string control(8192, '\0');
    io::putLe64(reinterpret_cast<std::uint8_t*>(control.data()), systemId);
    test::writeFile(s.data / "global/pg_control", control);
    REQUIRE(::getcwd(previous, sizeof previous) != nullptr);
    REQUIRE(::chdir(s.data.path().c_str()) == 0);
  }
  ~InDataDirectory() { CHECK(::chdir(previous) == 0); }
  InDataDirectory(const InDataDirectory&) = delete;
  InDataDirectory& operator=(const InDataDirectory&) = delete;
  char previous[4096];
};

// archive-push of pg_wal/`name` as PostgreSQL runs it in the data directory of `s`, its log lines
// left out.
void pushInDataDirectory(const PusherSetup& s, const std::string& name) {
  InDataDirectory inData(s);
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  archive::archivePush(s.config, "pg_wal/" + name);
  spdlog::set_level(level);
}

// Points `s` at the fake S3 `server` (its stanza created there, the spool claimed for it) after
// `s.config`'s other settings are made; returns how many PUTs the server has seen.
std::size_t onFakeS3(PusherSetup& s, const test::FakeS3& server) {
  test::useFakeS3(s.config, server);
  s.config.repo.path = "";
  repo::Repository repository = repo::openRepository(s.config);
  auto stanza = test::createStanza(repository.storage(), {.segmentSize = kSegment.segmentSize});
  spool::claim(s.folder(), {.repository = repo::describeRepository(s.config),
                            .stanzaId = stanza.identity(),
                            .systemId = kSegment.systemId});
  return server.putPayloads().size();
}

// Waits (up to 30 s) until the server has seen more than `before` PUTs: an upload is under way.
void waitForPut(const test::FakeS3& server, std::size_t before) {
  for (int i = 0; i < 3000 && server.putPayloads().size() == before; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(server.putPayloads().size() > before);
}

// Runs the pusher on its own thread; returns whether it ended within `limit`.
bool runPusherFor(const PusherSetup& s, const archive::PusherOptions& options,
                  std::chrono::seconds limit, const std::function<void()>& meanwhile = {}) {
  auto done = std::async(std::launch::async, [&] { archive::runPusher(s.context(), options); });
  try {
    if (meanwhile) meanwhile();
  } catch (...) {
    ::unlink((s.data / "postmaster.pid").c_str());  // stops it: the future waits for it
    throw;
  }
  if (done.wait_for(limit) == std::future_status::ready) return true;
  ::unlink((s.data / "postmaster.pid").c_str());  // a failure, not a hang: the future waits for it
  return false;
}

}  // namespace

TEST_CASE("the pusher pushes what waits but the oldest, acknowledges each, and ends when idle") {
  PusherSetup s;
  auto names = s.ready(5, 9);
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  REQUIRE(runPusherFor(s, s.options, std::chrono::seconds(60)));
  spdlog::set_level(level);
  // The oldest is the file PostgreSQL asks for (or will next): its call pushes it.
  CHECK_FALSE(s.archived(names[0]));
  CHECK_FALSE(spool::readPushAck(s.folder(), names[0]));
  for (std::size_t i = 1; i < names.size(); ++i) {
    CAPTURE(names[i]);
    CHECK(s.archived(names[i]));
    CHECK(s.acknowledged(names[i]));
  }
  // Nothing is left held: the lock and every file's claim are free.
  CHECK(spool::waitForWorkers(s.folder(), std::chrono::milliseconds(0)));
  CHECK_FALSE(test::exists(s.folder() + "/push/" + names[1] + ".pushing"));
}

TEST_CASE("the pusher pushes nothing without a running server, or past the safety valve") {
  PusherSetup s;
  auto names = s.ready(5, 8);
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  SUBCASE("no postmaster.pid: the server stopped") {
    ::unlink((s.data / "postmaster.pid").c_str());
    REQUIRE(runPusherFor(s, s.options, std::chrono::seconds(30)));
  }
  SUBCASE("more waits than archive.queue-max: the valve is about to open") {
    s.config.archive.queueMax = 2 * kSegment.segmentSize;
    REQUIRE(runPusherFor(s, s.options, std::chrono::seconds(30)));
  }
  SUBCASE("a gap the valve recorded in the spool that names another repository") {
    spool::writeGap(s.folder(), {.repository = "posix:/elsewhere",
                                 .systemId = kSegment.systemId,
                                 .ranges = {{.first = names[0], .last = names[0], .files = 1}}});
    REQUIRE(runPusherFor(s, s.options, std::chrono::seconds(30)));
  }
  spdlog::set_level(level);
  for (const auto& name : names)
    CHECK_FALSE(s.archived(name));
}

TEST_CASE(
    "the pusher stops when the server stops, the spool is claimed elsewhere, or the stanza "
    "changes") {
  PusherSetup s;
  auto names = s.ready(5, 40);
  s.config.archive.pushAhead = 1;
  // A long idle time: only the stop it is given ends it within the limit.
  auto options = s.options;
  options.idle = std::chrono::seconds(600);
  options.giveUp = std::chrono::seconds(600);
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  SUBCASE("the server stops") {
    CHECK(runPusherFor(s, options, std::chrono::seconds(60), [&] {
      s.waitForAck();
      ::unlink((s.data / "postmaster.pid").c_str());
    }));
  }
  SUBCASE("the stanza is re-created in the repository") {
    CHECK(runPusherFor(s, options, std::chrono::seconds(60), [&] {
      s.waitForAck();
      REQUIRE(::unlink((s.repoDir / "main/stanza.json").c_str()) == 0);
      storage::PosixStorage st(s.repoDir.path());
      test::createStanza(st, {.systemId = 42, .segmentSize = kSegment.segmentSize});
    }));
  }
  SUBCASE("a call claims the spool for another repository") {
    CHECK(runPusherFor(s, options, std::chrono::seconds(60), [&] {
      s.waitForAck();
      // Emptying the folder may race the pusher's writes into push/: as a call would, try again.
      for (int attempt = 0;; ++attempt) {
        try {
          spool::claim(s.folder(),
                       {.repository = "posix:/elsewhere", .stanzaId = "x", .systemId = 1});
          break;
        } catch (const Error&) {
          if (attempt == 20) throw;
        }
      }
    }));
  }
  spdlog::set_level(level);
  // Within the limit, with an idle time of ten minutes: it stopped because it was told.
}

TEST_CASE("the pusher stores and acknowledges nothing once the stanza is gone or was re-created") {
  PusherSetup s;
  auto names = s.ready(5, 60);
  s.config.archive.pushAhead = 1;
  auto options = s.options;
  options.idle = std::chrono::seconds(600);  // only the stop ends it within the limit
  options.giveUp = std::chrono::seconds(600);
  test::TempDir elsewhere{"tidemark-hidden"};
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  SUBCASE("the repository's mount point is unmounted (its folder stays, empty)") {
    REQUIRE(runPusherFor(s, options, std::chrono::seconds(60), [&] {
      s.waitForAck();
      REQUIRE(::rename((s.repoDir / "main").c_str(), (elsewhere / "main").c_str()) == 0);
    }));
    // Every acknowledgement names a file the real repository holds; nothing went into the mount
    // point's folder but, at most, the file a thread was pushing (never acknowledged).
    for (const auto& name : names) {
      CAPTURE(name);
      if (s.acknowledged(name)) CHECK(test::exists(elsewhere / objectPath(name)));
    }
    CHECK_FALSE(test::exists(s.repoDir / "main/stanza.json"));
  }
  SUBCASE("the stanza is removed and created again for another cluster") {
    REQUIRE(runPusherFor(s, options, std::chrono::seconds(60), [&] {
      s.waitForAck();
      // Removed at once (a removal file by file races the pusher's writes).
      REQUIRE(::rename((s.repoDir / "main").c_str(), (elsewhere / "main").c_str()) == 0);
      storage::PosixStorage st(s.repoDir.path());
      test::createStanza(st, {.systemId = 42, .segmentSize = kSegment.segmentSize});
    }));
    // Nothing of this cluster acknowledged into the other's stanza (at most the file a thread
    // was pushing may have landed there, unacknowledged).
    std::size_t stored = 0;
    for (const auto& name : names) {
      CAPTURE(name);
      if (s.archived(name)) {
        ++stored;
        CHECK_FALSE(s.acknowledged(name));
      }
    }
    CHECK(stored <= 1);
  }
  spdlog::set_level(level);
}

TEST_CASE(
    "the pusher stops when files it acknowledged are archived without their acknowledgements") {
  PusherSetup s;
  auto names = s.ready(5, 40);
  s.config.archive.pushAhead = 1;
  auto options = s.options;
  options.giveUp = std::chrono::seconds(600);
  std::set<std::string> marked;
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  SUBCASE("calls that use the acknowledgements keep it going") {
    // Each acknowledged file is archived by a call that used (and so removed) its
    // acknowledgement, as every call with this spool does.
    CHECK(runPusherFor(s, options, std::chrono::seconds(60), [&] {
      for (int i = 0; i < 3000 && marked.size() + 2 < names.size(); ++i) {
        for (const auto& name : spool::listPushAcks(s.folder())) {
          spool::removePushAck(s.folder(), name);
          s.markDone(name);
          marked.insert(name);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }));
    // Everything but the oldest (the archiver's own next file) was pushed: it did not stop.
    for (std::size_t i = 1; i < names.size(); ++i) {
      CAPTURE(names[i]);
      CHECK(s.archived(names[i]));
    }
  }
  SUBCASE("calls that use another spool stop it") {
    options.idle = std::chrono::seconds(600);  // only the stop ends it within the limit
    CHECK(runPusherFor(s, options, std::chrono::seconds(60), [&] {
      // Archived by calls that never looked at this spool: the acknowledgements stay.
      for (int i = 0; i < 3000 && marked.size() < 4; ++i) {
        for (const auto& name : spool::listPushAcks(s.folder()))
          if (marked.insert(name).second) s.markDone(name);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      REQUIRE(marked.size() >= 4);
    }));
    // Within the limit, with ten minutes to idle or to give up: it stopped because of them.
  }
  spdlog::set_level(level);
}

TEST_CASE(
    "the safety valve waits for a running pusher, then drops only a file still past the bound") {
  PusherSetup s;
  auto names = s.ready(5, 9);
  s.config.archive.pushAhead = 0;  // the call starts no pusher: the test plays it
  s.config.archive.queueMax = 2 * kSegment.segmentSize;
  InDataDirectory inData(s);
  // The pusher runs: it holds the lock until it stops.
  int pusher = spool::takeLock(s.folder(), spool::kPushLockFile, std::chrono::milliseconds(0));
  REQUIRE(pusher >= 0);
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  auto call =
      std::async(std::launch::async, [&] { archive::archivePush(s.config, "pg_wal/" + names[0]); });
  // Five segments wait, two may: the call waits for the pusher, dropping nothing meanwhile.
  CHECK(call.wait_for(std::chrono::milliseconds(700)) == std::future_status::timeout);
  CHECK_FALSE(spool::hasGap(s.folder()));
  SUBCASE("the queue is still past the bound when the pusher stops: the file is dropped") {
    ::close(pusher);
    REQUIRE(call.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    call.get();
    CHECK(spool::hasGap(s.folder()));
    CHECK_FALSE(s.archived(names[0]));
  }
  SUBCASE("the pusher stored enough before it stopped: the file is pushed, nothing dropped") {
    for (std::size_t i = 1; i <= 3; ++i)
      s.markDone(names[i]);
    ::close(pusher);
    REQUIRE(call.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    call.get();
    CHECK_FALSE(spool::hasGap(s.folder()));
    CHECK(s.archived(names[0]));
  }
  spdlog::set_level(level);
}

TEST_CASE("the safety valve does not drop a file the pusher stored: it uses the acknowledgement") {
  PusherSetup s;
  auto names = s.ready(5, 9);
  s.config.archive.pushAhead = 0;  // the call starts no pusher: the test plays it
  s.config.archive.queueMax = 2 * kSegment.segmentSize;
  InDataDirectory inData(s);
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  // Five segments wait, two may: the oldest is dropped (a gap, not yet in the repository).
  archive::archivePush(s.config, "pg_wal/" + names[0]);
  s.markDone(names[0]);
  REQUIRE(spool::readGap(s.folder()));
  // The pusher had stored the next one and acknowledged it, then stopped.
  const std::string path = s.data / ("pg_wal/" + names[1]);
  REQUIRE(archive::pushWalFile(repo::openRepository(s.config), {.walPath = path}).outcome ==
          PushOutcome::Stored);
  spool::writePushAck(s.folder(), {.file = names[1],
                                   .identity = *spool::recordedIdentity(s.folder()),
                                   .size = kSegment.segmentSize,
                                   .sha256 = std::string(64, 'a'),
                                   .local = *spool::fingerprintOf(path),
                                   .atMs = 1});
  REQUIRE(s.acknowledged(names[1]));
  // Still past the bound: the call returns 0 for it, stored, without recording it as dropped.
  archive::archivePush(s.config, "pg_wal/" + names[1]);
  spdlog::set_level(level);
  auto gap = spool::readGap(s.folder());
  REQUIRE(gap);
  REQUIRE(gap->ranges.size() == 1);
  CHECK(gap->ranges[0].first == names[0]);
  CHECK(gap->ranges[0].last == names[0]);
  CHECK(gap->ranges[0].files == 1);
  CHECK_FALSE(spool::readPushAck(s.folder(), names[1]));  // used
  // The next one has none: dropped, after the gap's first file (a second range).
  s.markDone(names[1]);
  spdlog::set_level(spdlog::level::off);
  archive::archivePush(s.config, "pg_wal/" + names[2]);
  spdlog::set_level(level);
  gap = spool::readGap(s.folder());
  REQUIRE(gap);
  REQUIRE(gap->ranges.size() == 2);
  CHECK(gap->ranges[1].first == names[2]);
  CHECK_FALSE(s.archived(names[2]));
}

TEST_CASE(
    "a run by hand of a file PostgreSQL archived before stores it: no acknowledgement, no valve") {
  // The file's damaged object was moved aside (tidemark verify's fix); PostgreSQL marked the file
  // done long ago, so no .ready asks for it. More WAL waits than archive.queue-max allows.
  PusherSetup s;
  auto names = s.ready(5, 9);
  s.config.archive.pushAhead = 0;
  s.config.archive.queueMax = 2 * kSegment.segmentSize;
  s.markDone(names[0]);
  SUBCASE("an acknowledgement left in the spool for it is not trusted") {
    spool::writePushAck(s.folder(),
                        {.file = names[0],
                         .identity = *spool::recordedIdentity(s.folder()),
                         .size = kSegment.segmentSize,
                         .sha256 = std::string(64, 'a'),
                         .local = *spool::fingerprintOf(s.data / ("pg_wal/" + names[0])),
                         .atMs = 1});
    REQUIRE(s.acknowledged(names[0]));
  }
  SUBCASE("the safety valve does not drop it") {}
  InDataDirectory inData(s);
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  archive::archivePush(s.config, "pg_wal/" + names[0]);
  CHECK(s.archived(names[0]));
  CHECK_FALSE(spool::hasGap(s.folder()));
  // The same call for a file PostgreSQL asks for is still dropped: the valve works as before.
  archive::archivePush(s.config, "pg_wal/" + names[1]);
  spdlog::set_level(level);
  CHECK_FALSE(s.archived(names[1]));
  CHECK(spool::hasGap(s.folder()));
}

TEST_CASE("archive-push run by root in another user's data directory refuses, writing nothing") {
  if (::geteuid() != 0) {
    MESSAGE("skipped: not root");
    return;
  }
  // An operator pushes by hand as root in the data directory of the PostgreSQL user (4321 here):
  // the spool files it would make (a lock, acknowledgements, the pusher it would start) would be
  // root's, and the server's own calls could not open them.
  PusherSetup s;
  auto names = s.ready(5, 6);
  InDataDirectory inData(s);
  std::filesystem::remove_all(s.folder());
  REQUIRE(::chown(s.data.path().c_str(), 4321, 4322) == 0);
  const auto before = test::listDirectory(s.data / "pg_wal");
  Error e = thrownError([&] { archive::archivePush(s.config, "pg_wal/" + names[0]); });
  CHECK(e.code() == ErrorCode::Usage);
  CHECK(std::string(e.what()).find("runs as root, and the data directory") != std::string::npos);
  CHECK(e.hint().find("sudo -u '#4321' tidemark-archive-push") != std::string::npos);  // no name
  CHECK_FALSE(s.archived(names[0]));
  CHECK(test::listDirectory(s.data / "pg_wal") == before);  // no spool made
  // Its owner's run, or root's in a data directory of root's (these tests), goes on as before.
  REQUIRE(::chown(s.data.path().c_str(), 0, 0) == 0);
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  archive::archivePush(s.config, "pg_wal/" + names[0]);
  spdlog::set_level(level);
  CHECK(s.archived(names[0]));
}

TEST_CASE("archive-push run by root outside a data directory leaves archive.spool-path alone") {
  if (::geteuid() != 0) {
    MESSAGE("skipped: not root");
    return;
  }
  // The spool of the server's calls, the PostgreSQL user's: a stanza folder root made there would
  // be root's, and those calls could not write into it.
  PusherSetup s;
  auto names = s.ready(5, 5);
  test::TempDir spoolDir{"tidemark-spool"};
  REQUIRE(::chown(spoolDir.path().c_str(), 4321, 4322) == 0);
  s.config.archive.spoolPath = spoolDir.path();
  test::TempDir elsewhere;  // no pg_control: not a data directory
  test::ChangeDirectory cd(elsewhere.path());
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  archive::archivePush(s.config, s.data / ("pg_wal/" + names[0]));
  spdlog::set_level(level);
  CHECK(s.archived(names[0]));
  CHECK(test::listDirectory(spoolDir.path()).empty());
}

TEST_CASE("a call starts no pusher while a gap it cannot record waits in the spool") {
  PusherSetup s;
  auto names = s.ready(5, 8);
  s.config.archive.pushAhead = 1;
  // Another repository's gap: it stays, and a pusher would stop at once, after one more error.
  spool::writeGap(s.folder(), {.repository = "posix:/elsewhere",
                               .systemId = kSegment.systemId,
                               .ranges = {{.first = names[0], .last = names[0], .files = 1}}});
  pushInDataDirectory(s, names[0]);
  CHECK(s.archived(names[0]));
  CHECK(spool::hasGap(s.folder()));
  // The pusher's log is made when one starts.
  CHECK_FALSE(test::exists(s.folder() + "/push.log"));
  CHECK(spool::waitForWorkers(s.folder(), std::chrono::seconds(10)));
  for (std::size_t i = 1; i < names.size(); ++i)
    CHECK_FALSE(s.archived(names[i]));
}

TEST_CASE("a gap left in the data directory's spool is recorded after archive.spool-path is set") {
  PusherSetup s;
  auto names = s.ready(5, 6);
  // The valve dropped segment 4 into the default spool; the repository was away.
  const spool::LocalGap gap{
      .repository = repo::describeRepository(s.config),
      .systemId = kSegment.systemId,
      .ranges = {
          {.first = "000000010000000000000004", .last = "000000010000000000000004", .files = 1}}};
  spool::writeGap(s.folder(), gap);
  // Then the spool moved elsewhere.
  test::TempDir elsewhere{"tidemark-spool"};
  s.config.archive.spoolPath = elsewhere.path();
  s.config.archive.pushAhead = 0;
  pushInDataDirectory(s, names[0]);
  CHECK(s.archived(names[0]));
  repo::Repository repository = repo::openRepository(s.config);
  auto records = repo::readGapRecords(repository, repo::requireStanza(repository).identity());
  REQUIRE(records.size() == 1);
  CHECK(records[0].first == "000000010000000000000004");
  CHECK_FALSE(spool::hasGap(s.folder()));
}

TEST_CASE("a gap the old cluster's valve left is recorded for its generation after pg_upgrade") {
  PusherSetup s;
  auto old = s.ready(5, 5);
  // The old cluster's valve dropped segment 5; the repository was away, the gap stayed local.
  spool::writeGap(s.folder(), {.repository = repo::describeRepository(s.config),
                               .systemId = kSegment.systemId,
                               .ranges = {{.first = old[0], .last = old[0], .files = 1}}});
  // pg_upgrade, then tidemark stanza-upgrade: the new cluster archives into generation 2.
  const test::SegmentSpec upgraded = upgradedCluster(6);
  repo::Repository repository = repo::openRepository(s.config);
  stanzaUpgrade(repository, upgraded);
  const repo::StanzaInfo stanza = repo::requireStanza(repository);
  test::writeSegment(s.data / "pg_wal", upgraded);
  InDataDirectory inData(s, upgraded.systemId);
  s.config.archive.pushAhead = 0;
  SUBCASE("the new cluster's WAL waits below archive.queue-max") {}
  SUBCASE("past archive.queue-max: nothing is dropped while the old cluster's gap waits") {
    // The old cluster's segment 5 and the new one's 6 to 8 wait; one segment may.
    s.config.archive.queueMax = kSegment.segmentSize;
    for (std::uint64_t n = 6; n <= 8; ++n) {
      test::SegmentSpec more = upgraded;
      more.segmentNumber = n;
      more.seed = n;
      if (n > 6) test::writeSegment(s.data / "pg_wal", more);
      test::writeFile(s.data / ("pg_wal/archive_status/" + test::segmentName(more) + ".ready"), "");
    }
  }
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  archive::archivePush(s.config, "pg_wal/" + test::segmentName(upgraded));
  spdlog::set_level(level);
  // Recorded before the new cluster's first file was stored, for the old cluster; gone locally.
  auto records = repo::readGapRecords(repository, stanza.identity());
  REQUIRE(records.size() == 1);
  CHECK(records[0].systemId == kSegment.systemId);
  CHECK(records[0].first == old[0]);
  CHECK_FALSE(spool::hasGap(s.folder()));
  CHECK(test::exists(s.repoDir /
                     repo::walObject("main", 2, *pg::parseWalName(test::segmentName(upgraded)))));
}

TEST_CASE("the pusher removes a prefetch spool a killed prefetcher left, out of recovery only") {
  PusherSetup s;
  s.ready(5, 7);
  const std::string left = spool::fetchedPath(s.folder(), "000000010000000000000009");
  REQUIRE(::mkdir(spool::fetchedFolder(s.folder()).c_str(), 0700) == 0);
  test::writeFile(left, "a segment the prefetcher fetched");
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  SUBCASE("a primary: removed") {
    REQUIRE(runPusherFor(s, s.options, std::chrono::seconds(60)));
    CHECK_FALSE(test::exists(spool::fetchedFolder(s.folder())));
  }
  SUBCASE("a standby: kept (its prefetcher may come back)") {
    test::writeFile(s.data / "standby.signal", "");
    REQUIRE(runPusherFor(s, s.options, std::chrono::seconds(60)));
    CHECK(test::exists(left));
  }
  SUBCASE("a prefetcher runs: kept") {
    int lock = spool::takeLock(s.folder(), spool::kPrefetchLockFile);
    REQUIRE(lock >= 0);
    REQUIRE(runPusherFor(s, s.options, std::chrono::seconds(60)));
    ::close(lock);
    CHECK(test::exists(left));
  }
  spdlog::set_level(level);
}

TEST_CASE("a pusher that must stop abandons its S3 uploads instead of waiting for them") {
  PusherSetup s;
  auto names = s.ready(5, 8);
  test::FakeS3 server;
  s.config.s3.timeout = 600;  // libcurl's own stall limit would not end it
  s.config.archive.pushAhead = 1;
  const std::size_t putsBefore = onFakeS3(s, server);
  // The server takes each upload's bytes, then answers a minute later.
  server.lie({.stallPutsMs = 60000});
  auto options = s.options;
  options.idle = std::chrono::seconds(600);
  options.giveUp = std::chrono::seconds(600);
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  CHECK(runPusherFor(s, options, std::chrono::seconds(20), [&] {
    waitForPut(server, putsBefore);
    ::unlink((s.data / "postmaster.pid").c_str());  // the server stops
  }));
  spdlog::set_level(level);
  CHECK(spool::listPushAcks(s.folder()).empty());
}

TEST_CASE("with the safety valve due, the pusher lets its uploads under way finish a while") {
  PusherSetup s;
  auto names = s.ready(5, 7);
  test::FakeS3 server;
  s.config.archive.pushAhead = 1;
  // Three segments wait; past three and a half, the valve is due.
  s.config.archive.queueMax = 7 * kSegment.segmentSize / 2;
  const std::size_t putsBefore = onFakeS3(s, server);
  server.lie({.stallPutsMs = 3000});  // each upload takes 3 s
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  CHECK(runPusherFor(s, s.options, std::chrono::seconds(30), [&] {
    waitForPut(server, putsBefore);  // the upload of the second is under way
    s.ready(8, 9);  // five wait now: the pusher stops, but its upload near its end goes on
  }));
  spdlog::set_level(level);
  CHECK(s.acknowledged(names[1]));
  CHECK_FALSE(spool::readPushAck(s.folder(), names[2]));  // nothing new started
}

TEST_CASE("the pusher leaves a file another process is pushing to it") {
  PusherSetup s;
  auto names = s.ready(5, 8);
  std::optional<spool::PushClaim> claim;
  claim = spool::PushClaim::take(s.folder(), names[2]);
  REQUIRE(claim);
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  REQUIRE(runPusherFor(s, s.options, std::chrono::seconds(60)));
  spdlog::set_level(level);
  CHECK(s.acknowledged(names[1]));
  CHECK_FALSE(s.archived(names[2]));
  CHECK(s.acknowledged(names[3]));
}

TEST_CASE("the pusher gives up when nothing can be pushed, even with files left to try") {
  PusherSetup s;
  auto names = s.ready(5, 40);
  auto options = s.options;
  options.idle = std::chrono::seconds(600);  // only giving up ends it within the limit
  options.retry = std::chrono::milliseconds(10);
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  // The repository's WAL folder cannot be made: every push fails.
  test::writeFile(s.repoDir / "main/wal", "not a folder");
  CHECK(runPusherFor(s, options, std::chrono::seconds(60)));
  spdlog::set_level(level);
  for (const auto& name : names)
    CHECK_FALSE(spool::readPushAck(s.folder(), name));
}
