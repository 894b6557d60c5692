// Unit tests of archive-get/get.h: the fetch worker and the exit status of a failure.
#include "archive-get/get.h"

#include <doctest/doctest.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <optional>

#include "archive-push/push.h"
#include "common/pg/lsn.h"
#include "common/repo/generation.h"
#include "common/repo/layout.h"
#include "common/repo/marks.h"
#include "common/repo/stanza.h"
#include "common/repo/state.h"
#include "common/spool/spool.h"
#include "common/storage/posix/posix.h"
#include "support/check.h"
#include "support/fault_storage.h"
#include "support/memory_storage.h"
#include "support/segment.h"
#include "support/stanza.h"
#include "support/wal_builder.h"

using namespace tidemark;
using archive::GetOutcome;
using test::Containing;
using test::listDirectory;
using test::thrownError;
using test::what;

namespace {

const test::SegmentSpec kSegment{.segmentNumber = 5, .segmentSize = 1u << 20};
const std::string kName = "000000010000000000000005";
const std::string kHistory = "1\t0/3000000\tno recovery target specified\n";

using Names = std::vector<std::string>;

// What one fetch of a test asks for.
struct GetParams {
  std::string walName, destination;
  std::string stanza = "main";
};

// The worker on a handle of the stanza of `s`.
archive::GetResult getWalFile(storage::Storage& s, const GetParams& p) {
  return archive::getWalFile(repo::Repository(s, p.stanza),
                             {.walName = p.walName, .destination = p.destination});
}

// A repository holding one segment and one history file, and a data directory to restore into.
struct Fixture {
  explicit Fixture(io::CompressType type = io::CompressType::Zstd) {
    REQUIRE(::mkdir((pgData / "pg_wal").c_str(), 0700) == 0);
    test::createStanza(storage, {.segmentSize = kSegment.segmentSize});
    test::TempDir source;
    test::writeFile(source / "00000002.history", kHistory);
    for (const std::string& path :
         {test::writeSegment(source.path(), kSegment), source / "00000002.history"})
      REQUIRE(archive::pushWalFile(repo::Repository(storage, "main", {}, {.compress = type}),
                                   {.walPath = path})
                  .outcome == archive::PushOutcome::Stored);
  }
  GetParams params(const std::string& name, const std::string& destination) {
    return {.walName = name, .destination = destination};
  }
  std::string objectPath(const std::string& name) {
    return repo::walObject("main", 1, *pg::parseWalName(name));
  }

  test::TempDir repoDir{"tidemark-repo"};
  test::TempDir pgData{"tidemark-pgdata"};
  storage::PosixStorage storage{repoDir.path(), {.sync = false}};
  const std::string destination = pgData / "pg_wal/RECOVERYXLOG";
};

std::string text(const io::Buffer& bytes) {
  return std::string(io::asText(bytes));
}

}  // namespace

TEST_CASE("getWalFile restores an archived file byte-identical and atomically") {
  for (io::CompressType type :
       {io::CompressType::None, io::CompressType::Lz4, io::CompressType::Zstd}) {
    CAPTURE(type);
    Fixture f(type);
    SUBCASE("a segment") {
      auto result = getWalFile(f.storage, f.params(kName, f.destination));
      CHECK(result.outcome == GetOutcome::Restored);
      CHECK(result.summary.plainSize == 1u << 20);
      CHECK(result.summary.compress == type);
      CHECK(test::readFile(f.destination) == test::makeSegment(kSegment));
      CHECK(listDirectory(f.pgData / "pg_wal") == Names{"RECOVERYXLOG"});
      struct stat st {};
      REQUIRE(::stat(f.destination.c_str(), &st) == 0);
      CHECK((st.st_mode & 0777) == 0600);
    }
    SUBCASE("a timeline history file") {
      CHECK(getWalFile(f.storage, f.params("00000002.history", f.pgData / "pg_wal/RECOVERYHISTORY"))
                .outcome == GetOutcome::Restored);
      CHECK(text(test::readFile(f.pgData / "pg_wal/RECOVERYHISTORY")) == kHistory);
    }
  }
}

TEST_CASE("getWalFile writes where restore_command's %p says") {
  Fixture f;
  SUBCASE("a relative destination is taken from the working directory (the data directory)") {
    test::ChangeDirectory cd(f.pgData.path());
    CHECK(getWalFile(f.storage, f.params(kName, "pg_wal/RECOVERYXLOG")).outcome ==
          GetOutcome::Restored);
    CHECK(test::readFile(f.destination) == test::makeSegment(kSegment));
  }
  SUBCASE("an earlier file at the destination is replaced") {
    test::writeFile(f.destination, "the previous RECOVERYXLOG");
    CHECK(getWalFile(f.storage, f.params(kName, f.destination)).outcome == GetOutcome::Restored);
    CHECK(test::readFile(f.destination) == test::makeSegment(kSegment));
    CHECK(listDirectory(f.pgData / "pg_wal") == Names{"RECOVERYXLOG"});
  }
  SUBCASE("a missing destination directory is LocalIo") {
    Error e = thrownError(
        [&] { getWalFile(f.storage, f.params(kName, f.pgData / "missing/RECOVERYXLOG")); });
    CHECK(e.code() == ErrorCode::LocalIo);
  }
}

TEST_CASE("getWalFile reports 'not found' only when the repository answered") {
  Fixture f;
  SUBCASE("a file the stanza does not hold is NotFound, and nothing is written") {
    auto result = getWalFile(f.storage, f.params("000000010000000000000006", f.destination));
    CHECK(result.outcome == GetOutcome::NotFound);
    CHECK(getWalFile(f.storage, f.params("00000003.history", f.destination)).outcome ==
          GetOutcome::NotFound);
    CHECK(listDirectory(f.pgData / "pg_wal").empty());
  }
  SUBCASE("an earlier file at the destination survives a NotFound") {
    test::writeFile(f.destination, "older");
    CHECK(getWalFile(f.storage, f.params("000000010000000000000006", f.destination)).outcome ==
          GetOutcome::NotFound);
    CHECK(text(test::readFile(f.destination)) == "older");
  }
  SUBCASE("a stanza without stanza.json is a configuration error, not the end of WAL") {
    Error e = thrownError([&] {
      getWalFile(f.storage, {.walName = kName, .destination = f.destination, .stanza = "mian"});
    });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "stanza 'mian' does not exist in " + f.storage.describe());
    CHECK(e.hint() == Containing("recovery stops here"));
    // The repository's own stanza is named: a recovery never creates one, the name is wrong.
    CHECK(e.hint() == Containing("holds stanza 'main': check 'stanza'"));
    CHECK(listDirectory(f.pgData / "pg_wal").empty());
  }
  SUBCASE("a missing repository root is a storage error, not the end of WAL") {
    storage::PosixStorage unmounted(f.repoDir / "unmounted");
    Error e = thrownError([&] { getWalFile(unmounted, f.params(kName, f.destination)); });
    CHECK(e.code() == ErrorCode::Storage);
    CHECK(listDirectory(f.pgData / "pg_wal").empty());
  }
  SUBCASE("a WAL folder replaced by a file is a storage error, not the end of WAL") {
    // ENOTDIR on the way to the object: damage, not absence (exit 255 in recovery, never 1).
    const std::string folder = f.repoDir / "main/wal/0000000100000000";
    std::filesystem::remove_all(folder);
    test::writeFile(folder, "not a folder");
    Error e = thrownError([&] { getWalFile(f.storage, f.params(kName, f.destination)); });
    CHECK(e.code() == ErrorCode::Storage);
    CHECK(what(e) == Containing("Not a directory"));
    CHECK(listDirectory(f.pgData / "pg_wal").empty());
  }
  SUBCASE("a name that is not a WAL file name is InvalidInput") {
    Error e = thrownError([&] { getWalFile(f.storage, f.params("RECOVERYXLOG", f.destination)); });
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == "'RECOVERYXLOG' is not a WAL file name");
    CHECK(listDirectory(f.pgData / "pg_wal").empty());
  }
}

TEST_CASE(
    "getWalFile: a missing file whose expire mark or gap record cannot be vouched for stops the "
    "recovery") {
  Fixture f;
  repo::Repository repository(f.storage, "main");
  const std::string id = repo::loadStanza(repository)->identity();
  const std::uint64_t systemId = repo::loadStanza(repository)->systemId;
  auto get = [&](const std::string& name) {
    return getWalFile(f.storage, f.params(name, f.destination));
  };
  // Every record of a kind, newest last.
  auto records = [&](const std::string& kind, const std::string& subject) {
    return repo::listStateRecords(repository, kind, subject);
  };
  auto damage = [&](const repo::StateRecord& record) {
    f.storage.remove(record.path);
    auto write = f.storage.newWrite(record.path, {.noReplace = true});
    write->write(io::asBytes(std::string("{\"timeline\": 1, \"seg")));
    REQUIRE(write->commit());
  };
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  SUBCASE("below a readable low-water mark: expired, an error") {
    repo::writeLowWaterMark(repository, id, 1, 1, 0x10, "000000010000000000000010");
    Error e = thrownError([&] { get("000000010000000000000006"); });
    CHECK(e.code() == ErrorCode::Storage);
    CHECK(what(e) == Containing("was expired"));
  }
  SUBCASE("a damaged low-water mark: cannot be told, an error") {
    repo::writeLowWaterMark(repository, id, 1, 1, 0x10, "000000010000000000000010");
    damage(records("low-water", "00000001").back());
    Error e = thrownError([&] { get("000000010000000000000006"); });
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == Containing("cannot be told"));
  }
  SUBCASE("a low-water mark the store fails to read: a storage error") {
    repo::writeLowWaterMark(repository, id, 1, 1, 0x10, "000000010000000000000010");
    test::FaultStorage failing(f.storage, {.failReadsOf = "low-water"});
    Error e = thrownError(
        [&] { getWalFile(failing, f.params("000000010000000000000006", f.destination)); });
    CHECK(e.code() == ErrorCode::Storage);
  }
  SUBCASE("a gap whose newest record is damaged: the older, shorter one does not decide") {
    repo::GapRecord gap{.systemId = systemId,
                        .first = "000000010000000000000006",
                        .last = "000000010000000000000006",
                        .files = 1};
    repo::writeGapRecord(repository, id, gap);
    CHECK(what(thrownError([&] { get("000000010000000000000006"); })) ==
          Containing("safety valve"));
    gap.last = "000000010000000000000008";
    gap.files = 3;
    repo::writeGapRecord(repository, id, gap);
    damage(records("gap", repo::gapSubject(gap)).back());
    Error e = thrownError([&] { get("000000010000000000000007"); });
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == Containing("cannot be told"));
  }
  SUBCASE("no record at all: not found, the end of the archive") {
    CHECK(get("000000010000000000000006").outcome == GetOutcome::NotFound);
  }
  spdlog::set_level(level);
  CHECK(listDirectory(f.pgData / "pg_wal").empty());
}

TEST_CASE("getWalFile never leaves unverified bytes at the destination") {
  Fixture f;
  const std::string object = f.repoDir / f.objectPath(kName);
  io::Buffer stored = test::readFile(object);
  SUBCASE("a corrupted stored object is Corrupt, and nothing is written") {
    stored[stored.size() / 2] ^= 0x01;
    test::writeFile(object, io::ByteView(stored));
    Error e = thrownError([&] { getWalFile(f.storage, f.params(kName, f.destination)); });
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == Containing("object '" + f.objectPath(kName) + "'"));
    CHECK(listDirectory(f.pgData / "pg_wal").empty());
  }
  SUBCASE("a corrupted stored object leaves an older file at the destination untouched") {
    test::writeFile(f.destination, "older");
    stored.resize(stored.size() - 1);
    test::writeFile(object, io::ByteView(stored));
    CHECK(thrownError([&] { getWalFile(f.storage, f.params(kName, f.destination)); }).code() ==
          ErrorCode::Corrupt);
    CHECK(text(test::readFile(f.destination)) == "older");
    CHECK(listDirectory(f.pgData / "pg_wal") == Names{"RECOVERYXLOG"});
  }
}

TEST_CASE("getWalFile with a failing storage leaves no destination file") {
  test::MemoryStorage inner({.readChunk = 4096});
  test::FaultStorage s(inner);
  test::TempDir source, pgData;
  test::createStanza(inner, {.segmentSize = kSegment.segmentSize});
  REQUIRE(archive::pushWalFile(repo::Repository(inner, "main"),
                               {.walPath = test::writeSegment(source.path(), kSegment)})
              .outcome == archive::PushOutcome::Stored);
  const std::string destination = pgData / "RECOVERYXLOG";
  const GetParams params{.walName = kName, .destination = destination};
  SUBCASE("a read that fails partway is a storage error") {
    s.plan().failReadAfter = 10000;
    Error e = thrownError([&] { getWalFile(s, params); });
    CHECK(e.code() == ErrorCode::Storage);
    CHECK(listDirectory(pgData.path()).empty());
  }
  SUBCASE("a read cut short without an error is caught by verification") {
    s.plan().truncateReadAfter = 10000;
    Error e = thrownError([&] { getWalFile(s, params); });
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(listDirectory(pgData.path()).empty());
  }
  SUBCASE("a read that fails at once is a storage error") {
    s.plan().failReads = true;
    CHECK(thrownError([&] { getWalFile(s, params); }).code() == ErrorCode::Storage);
    CHECK(listDirectory(pgData.path()).empty());
  }
  SUBCASE("when the stanza check itself fails, 'not found' is not claimed") {
    s.plan().failReadsOf = "stanza.json";
    CHECK(thrownError([&] {
            getWalFile(s, {.walName = "000000010000000000000006",
                           .destination = destination,
                           .stanza = "main"});
          }).code() == ErrorCode::Storage);
  }
  SUBCASE("and it works once the storage does") {
    CHECK(getWalFile(s, params).outcome == GetOutcome::Restored);
    CHECK(test::readFile(destination) == test::makeSegment(kSegment));
  }
}

TEST_CASE("archiveGet fetches with the configured repository and stanza") {
  Fixture f;
  Config config;
  config.repo.path = f.repoDir.path();
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  CHECK(archive::archiveGet(config, kName, f.destination) == GetOutcome::Restored);
  CHECK(archive::archiveGet(config, "000000010000000000000006", f.pgData / "pg_wal/X") ==
        GetOutcome::NotFound);
  config.stanza = "other";
  CHECK(thrownError([&] { archive::archiveGet(config, kName, f.destination); }).code() ==
        ErrorCode::Config);
  spdlog::set_level(level);
  CHECK(test::readFile(f.destination) == test::makeSegment(kSegment));
}

TEST_CASE("archiveGet run by root in another user's data directory refuses, writing nothing") {
  if (::geteuid() != 0) {
    MESSAGE("skipped: not root");
    return;
  }
  Fixture f;
  Config config;
  config.repo.path = f.repoDir.path();
  std::filesystem::create_directories(f.pgData / "global");
  std::string control(8192, '\0');
  io::putLe64(reinterpret_cast<std::uint8_t*>(control.data()), 7000000000000000001);
  test::writeFile(f.pgData / "global/pg_control", control);
  REQUIRE(::chown(f.pgData.path().c_str(), 4321, 4322) == 0);  // the PostgreSQL user's, say
  test::ChangeDirectory cd(f.pgData.path());
  // The file (and the prefetcher's spool) would be root's: the server could not read them.
  Error e = thrownError([&] { archive::archiveGet(config, kName, "pg_wal/RECOVERYXLOG"); });
  CHECK(e.code() == ErrorCode::Usage);
  CHECK(std::string(e.what()).find("runs as root, and the data directory") != std::string::npos);
  CHECK(e.hint().find("sudo -u '#4321' tidemark-archive-get") != std::string::npos);
  CHECK(test::listDirectory(f.pgData / "pg_wal").empty());
  // Run elsewhere (no spool, no server reading the file), it writes where it is told.
  test::TempDir elsewhere;
  test::ChangeDirectory there(elsewhere.path());
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  CHECK(archive::archiveGet(config, kName, elsewhere / "x") == GetOutcome::Restored);
  spdlog::set_level(level);
}

TEST_CASE("failureStatus stops recovery unless the server is a standby") {
  test::TempDir dataDirectory;
  const std::vector<ErrorCode> codes = {ErrorCode::Usage,        ErrorCode::Config,
                                        ErrorCode::Storage,      ErrorCode::Corrupt,
                                        ErrorCode::Conflict,     ErrorCode::ForeignCluster,
                                        ErrorCode::InvalidInput, ErrorCode::LocalIo,
                                        ErrorCode::Unsupported,  ErrorCode::Internal};
  SUBCASE("without standby.signal every failure is 255, which PostgreSQL treats as fatal") {
    for (ErrorCode code : codes) {
      CAPTURE(code);
      CHECK(archive::failureStatus(code, dataDirectory.path()) == 255);
    }
  }
  SUBCASE("with standby.signal the error's own status (2..125), so the standby retries") {
    test::writeFile(dataDirectory / "standby.signal", "");
    for (ErrorCode code : codes) {
      CAPTURE(code);
      int status = archive::failureStatus(code, dataDirectory.path());
      CHECK(status == exitStatus(code));
      CHECK(status >= 2);
      CHECK(status <= 125);
    }
  }
  SUBCASE("recovery.signal alone is not a standby") {
    test::writeFile(dataDirectory / "recovery.signal", "");
    CHECK(archive::failureStatus(ErrorCode::Storage, dataDirectory.path()) == 255);
  }
}

TEST_CASE("getWalFile refuses an object it must not trust before it fills pg_wal") {
  Fixture f;
  SUBCASE(
      "a segment object that holds more than a segment (forged or damaged) stops at the segment "
      "size") {
    const std::string name = "000000010000000000000006";
    const std::string path = f.objectPath(name);
    repo::ObjectWriter writer(f.storage.newWrite(path, {}), path,
                              {.compress = io::CompressType::Zstd});
    writer.write(
        io::Buffer(3u << 20, 'x'));  // a valid envelope around 3 MiB, named like a 1 MiB segment
    writer.close();
    REQUIRE(writer.commit());
    Error e = thrownError([&] { getWalFile(f.storage, f.params(name, f.destination)); });
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == Containing("it holds more than 1048576 bytes, the most it may hold"));
    CHECK(listDirectory(f.pgData / "pg_wal").empty());
  }
  SUBCASE(
      "an unencrypted object is refused when encryption is configured, unless the stanza mixes on "
      "purpose") {
    io::Key256 bytes{};
    bytes[0] = 3;
    const repo::Keyring keys{.current = repo::MasterKey(bytes, "key-file '/k'")};
    repo::Repository encrypted(f.storage, "main", keys, {.encryption = io::EncryptType::Aes256Gcm});
    Error e = thrownError(
        [&] { archive::getWalFile(encrypted, {.walName = kName, .destination = f.destination}); });
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == Containing("it is not encrypted, but encryption is configured"));
    CHECK(listDirectory(f.pgData / "pg_wal").empty());
    repo::Repository mixed(
        f.storage, "main", keys,
        {.encryption = io::EncryptType::Aes256Gcm, .allowMixedEncryption = true});
    CHECK(archive::getWalFile(mixed, {.walName = kName, .destination = f.destination}).outcome ==
          GetOutcome::Restored);
  }
}

TEST_CASE("getWalFile reads the generation of the cluster that recovers") {
  Fixture f;
  // After pg_upgrade and stanza-upgrade: generation 2's segment 5 has generation 1's name.
  test::SegmentSpec upgraded = kSegment;
  upgraded.systemId = kSegment.systemId + (std::uint64_t(100) << 32);
  upgraded.seed = 2;
  repo::Repository repository(f.storage, "main");
  repo::upgradeStanza(  // a pg_upgrade to the same version (PostgreSQL 15's segments): --force
      repository, repo::requireStanza(repository),
      {.systemId = upgraded.systemId, .pgVersion = 15, .walSegmentSize = upgraded.segmentSize},
      true);
  test::TempDir source;
  REQUIRE(archive::pushWalFile(repository, {.walPath = test::writeSegment(source.path(), upgraded)})
              .outcome == archive::PushOutcome::Stored);
  auto fetch = [&](std::optional<std::uint64_t> systemId) {
    auto result = archive::getWalFile(
        repository, {.walName = kName, .destination = f.destination, .controlSystemId = systemId});
    REQUIRE(result.outcome == GetOutcome::Restored);
    return test::readFile(f.destination);
  };
  CHECK(fetch(kSegment.systemId) == test::makeSegment(kSegment));
  CHECK(fetch(upgraded.systemId) == test::makeSegment(upgraded));
  SUBCASE("without pg_control it cannot tell which: an error, never a guess or 'not found'") {
    Error e = thrownError(
        [&] { archive::getWalFile(repository, {.walName = kName, .destination = f.destination}); });
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == Containing("cannot tell which generation"));
  }
  SUBCASE("a segment of another cluster stored under the name is refused") {
    // Generation 2's object copied over generation 1's (someone with write access).
    f.storage.remove(f.objectPath(kName));
    auto bytes = test::readFile(f.repoDir / repo::walObject("main", 2, *pg::parseWalName(kName)));
    auto write = f.storage.newWrite(f.objectPath(kName), {});
    write->write(bytes);
    REQUIRE(write->commit());
    std::filesystem::remove(f.destination);
    Error e = thrownError([&] { fetch(kSegment.systemId); });
    CHECK(e.code() == ErrorCode::ForeignCluster);
    CHECK(what(e) == Containing("holds WAL of the cluster with system identifier"));
    CHECK_FALSE(test::exists(f.destination));
  }
  SUBCASE("a cluster of no generation is an error, never 'not found'") {
    Error e = thrownError([&] {
      archive::getWalFile(repository,
                          {.walName = kName, .destination = f.destination, .controlSystemId = 42});
    });
    CHECK(e.code() == ErrorCode::ForeignCluster);
    CHECK(what(e) == Containing("system identifier 42"));
  }
  SUBCASE("generation 1's history file is not generation 2's") {
    auto result =
        archive::getWalFile(repository, {.walName = "00000002.history",
                                         .destination = f.pgData / "pg_wal/RECOVERYHISTORY",
                                         .controlSystemId = upgraded.systemId});
    CHECK(result.outcome == GetOutcome::NotFound);
  }
}

TEST_CASE("foreignTablespace names another cluster's tablespace where a CREATE TABLESPACE points") {
  namespace fs = std::filesystem;
  test::TempDir root;
  const std::string data = root / "data", location = root / "ts";
  fs::create_directories(data + "/pg_tblspc");
  auto creation = [&](const std::string& where) {
    return pg::TablespaceCreation{.oid = 16400, .location = where, .lsn = 0};
  };
  // Missing: PostgreSQL's replay stops on its own. Empty, or another version's: nothing to harm.
  CHECK_FALSE(archive::foreignTablespace(data, creation(location), 15));
  fs::create_directories(location + "/PG_14_202107181");
  CHECK_FALSE(archive::foreignTablespace(data, creation(location), 15));
  CHECK_FALSE(archive::foreignTablespace(data, creation(""), 15));  // in place
  // A tablespace of this version that this recovery did not link: another cluster's.
  fs::create_directories(location + "/PG_15_202209061/16384");
  CHECK(archive::foreignTablespace(data, creation(location), 15) ==
        std::optional<std::string>("holds another cluster's tablespace ('PG_15_202209061')"));
  // Linked by this recovery's replay already (it started again): its own.
  fs::create_directory_symlink(location, data + "/pg_tblspc/16400");
  CHECK_FALSE(archive::foreignTablespace(data, creation(location), 15));
  // A link of this OID to somewhere else does not make the location its own.
  fs::remove(data + "/pg_tblspc/16400");
  fs::create_directory_symlink(root / "elsewhere", data + "/pg_tblspc/16400");
  CHECK(archive::foreignTablespace(data, creation(location), 15));
  // One that cannot be looked at may hold anything (root reads every directory: run as nobody).
  fs::remove(data + "/pg_tblspc/16400");
  fs::permissions(location, fs::perms::none);
  Error unreadable = test::thrownUnprivileged([&] {
    throw Error(ErrorCode::Internal,
                archive::foreignTablespace(data, creation(location), 15).value_or("none"));
  });
  fs::permissions(location, fs::perms::owner_all);
  CHECK(what(unreadable).starts_with("cannot be read here (Permission denied)"));
}

// A recovery's data directory beside production's tablespace (PostgreSQL 15's version directory
// in it), and where archive-get puts the segment it hands over.
struct BesideProduction {
  test::TempDir root;
  std::string data = root / "data", location = root / "production-ts";
  std::string path = data + "/pg_wal/RECOVERYXLOG";
  BesideProduction() {
    std::filesystem::create_directories(data + "/pg_wal");
    std::filesystem::create_directories(data + "/pg_tblspc");
    std::filesystem::create_directories(location + "/PG_15_202209061/16384");
  }
};

TEST_CASE("checkReplayedTablespaces stops before a segment creates a tablespace in another's") {
  namespace fs = std::filesystem;
  BesideProduction b;
  const std::string &root = b.root.path(), &data = b.data, &location = b.location, &path = b.path;
  SUBCASE(
      "a CREATE TABLESPACE at another cluster's tablespace: the file goes, the error names it") {
    test::WalSegment segment(3);
    segment.add(test::otherWalRecord(100));
    segment.add(test::createTablespaceRecord(16400, location));
    test::writeFile(path, segment.bytes);
    Error e = thrownError([&] { archive::checkReplayedTablespaces(data, segment.name(), path); });
    CHECK(e.code() == ErrorCode::Conflict);
    CHECK(what(e) == segment.name() + " creates tablespace 16400 at '" + location +
                         "', which holds another cluster's tablespace ('PG_15_202209061'): "
                         "replaying it would write into that cluster's files");
    CHECK(e.hint().find("move it aside") != std::string::npos);
    CHECK_FALSE(test::exists(path));
  }
  SUBCASE("elsewhere, or at a location this recovery linked: the file stays") {
    test::WalSegment segment(3);
    segment.add(test::createTablespaceRecord(16400, root + "/free"));
    segment.add(test::createTablespaceRecord(16401, location));
    test::writeFile(path, segment.bytes);
    // Linked by this recovery's replay, under another OID (a tablespace dropped, another created
    // at its location) and through another path to it.
    fs::create_directory_symlink(root + "/./production-ts", data + "/pg_tblspc/16399");
    archive::checkReplayedTablespaces(data, segment.name(), path);
    CHECK(test::exists(path));
    // Not a segment: not read.
    archive::checkReplayedTablespaces(data, "00000002.history", path);
  }
  SUBCASE("a record the segment continues is read from the segment before, in pg_wal") {
    test::WalSegment before(3);
    before.nextAt(test::kWalSegmentSize - 40);
    const io::Buffer cut = test::createTablespaceRecord(16400, location);
    before.add(cut);
    test::WalSegment segment(4, io::Buffer(cut.begin() + 40, cut.end()));
    test::writeFile(path, segment.bytes);
    // The segment before not in pg_wal (the first of a recovery): not read.
    archive::checkReplayedTablespaces(data, segment.name(), path);
    CHECK(test::exists(path));
    // Where PostgreSQL keeps what it restored, under its name: read.
    test::writeFile(data + "/pg_wal/" + before.name(), before.bytes);
    Error e = thrownError([&] { archive::checkReplayedTablespaces(data, segment.name(), path); });
    CHECK(e.code() == ErrorCode::Conflict);
    CHECK(what(e).starts_with(segment.name() + " creates tablespace 16400"));
    // Its own records were checked when it was handed over: only the one continued counts.
    test::WalSegment alone(4);
    test::writeFile(path, alone.bytes);
    test::WalSegment earlier(3);
    earlier.add(test::createTablespaceRecord(16401, location));
    test::writeFile(data + "/pg_wal/" + earlier.name(), earlier.bytes);
    archive::checkReplayedTablespaces(data, alone.name(), path);
    CHECK(test::exists(path));
  }
}

TEST_CASE("replayStop reads the target tidemark wrote into postgresql.auto.conf") {
  test::TempDir data;
  using Kind = pg::ReplayStop::Kind;
  auto stopFor = [&](const std::string& text) {
    test::writeFile(data / "postgresql.auto.conf", text);
    return archive::replayStop(data.path());
  };
  CHECK(archive::replayStop(data.path()).kind == Kind::None);  // no file
  // As tidemark writes it: the other kinds cleared, the last setting of a name winning.
  pg::ReplayStop time = stopFor(
      "recovery_target_time = '2020-01-01 00:00:00+00'\n"
      "recovery_target = ''\nrecovery_target_lsn = ''\nrecovery_target_name = ''\n"
      "recovery_target_xid = ''\n"
      "recovery_target_time = '2000-01-01 00:00:01.5+00'\nrecovery_target_inclusive = off\n");
  CHECK(time.kind == Kind::Time);
  CHECK(time.time == 1500000);
  CHECK_FALSE(time.inclusive);
  pg::ReplayStop lsn = stopFor("recovery_target_lsn = '0/3000028'\n");
  CHECK(lsn.kind == Kind::Lsn);
  CHECK(lsn.lsn == 0x3000028);
  CHECK(lsn.inclusive);
  CHECK(stopFor("recovery_target_xid = '734'\n").xid == 734);
  CHECK(stopFor("recovery_target_name = 'before-migration'\n").name == "before-migration");
  // Nothing tidemark can read as PostgreSQL does: no stop (every CREATE TABLESPACE is looked at).
  CHECK(stopFor("recovery_target = 'immediate'\n").kind == Kind::None);
  CHECK(stopFor("recovery_target_time = '2026-12-03 10:42:07'\n").kind == Kind::None);  // no zone
  CHECK(stopFor("recovery_target_xid = '7'\nrecovery_target_name = 'x'\n").kind == Kind::None);
  CHECK(stopFor("# recovery_target_xid = '7'\n").kind == Kind::None);
  CHECK(stopFor("recovery_target_xid = '0755'\n").kind == Kind::None);  // octal to PostgreSQL
  // A file it includes, or the server's command line, could set another target.
  CHECK(stopFor("include 'more.conf'\nrecovery_target_xid = '7'\n").kind == Kind::None);
  test::writeFile(data / "postmaster.opts", "postgres \"-c\" \"recovery_target_xid=9\"\n");
  CHECK(stopFor("recovery_target_xid = '7'\n").kind == Kind::None);
  std::filesystem::remove(data / "postmaster.opts");
  // recovery_target_inclusive as PostgreSQL's parse_bool reads it.
  for (const char* no : {"off", "OFF", "of", "f", "false", "n", "no", "0"}) {
    CAPTURE(no);
    CHECK_FALSE(stopFor("recovery_target_xid = '7'\nrecovery_target_inclusive = '" +
                        std::string(no) + "'\n")
                    .inclusive);
  }
  CHECK(stopFor("recovery_target_xid = '7'\nrecovery_target_inclusive = on\n").inclusive);
  // Where the replay begins: backup_label's START WAL LOCATION while it is there.
  CHECK(stopFor("").from == 0);
  test::writeFile(data / "backup_label",
                  "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
                  "CHECKPOINT LOCATION: 0/2000060\n");
  CHECK(stopFor("").from == 0x2000028);
  CHECK(stopFor("recovery_target_xid = '7'\n").from == 0x2000028);
}

TEST_CASE("checkReplayedTablespaces looks at nothing past a target reached in the segment before") {
  BesideProduction b;
  const std::string &data = b.data, &location = b.location, &path = b.path;
  // PostgreSQL reads ahead of its replay: it may ask for segment 4 before it stops in 3, where the
  // target transaction 700 commits. Segment 4 is then not replayed; with another target, it is.
  const io::Buffer create = test::createTablespaceRecord(16400, location);
  auto replayedOnlyPast700 = [&](const test::WalSegment& before, const test::WalSegment& segment,
                                 std::optional<std::uint32_t> recorded = std::nullopt) {
    test::writeFile(data + "/pg_wal/" + before.name(), before.bytes);
    test::writeFile(path, segment.bytes);
    test::writeFile(data + "/postgresql.auto.conf", "recovery_target_xid = '700'\n");
    archive::checkReplayedTablespaces(data, segment.name(), path, recorded);
    CHECK(test::exists(path));
    test::writeFile(data + "/postgresql.auto.conf", "recovery_target_xid = '701'\n");
    CHECK(thrownError([&] {
            archive::checkReplayedTablespaces(data, segment.name(), path, recorded);
          }).code() == ErrorCode::Conflict);
  };
  test::WalSegment before(3);
  before.add(test::commitRecord(700, 1000));
  SUBCASE("a CREATE in segment 4") {
    test::WalSegment segment(4);
    segment.add(create);
    replayedOnlyPast700(before, segment);
  }
  SUBCASE("a CREATE cut by segment 3's end, far from the commit") {
    // Only a walk of the whole of segment 3 sees that the replay stops first.
    before.nextAt(test::kWalSegmentSize - 40);
    before.add(create);
    replayedOnlyPast700(before, test::WalSegment(4, io::Buffer(create.begin() + 40, create.end())));
  }
  SUBCASE("the commit in segment 3's last pages, segment 4's CREATE counted by the prefetcher") {
    test::WalSegment late(3);
    late.nextAt(test::kWalSegmentSize - 3 * test::kWalBlock / 2);
    late.add(test::commitRecord(700, 1000));
    test::WalSegment segment(4);
    segment.add(create);
    replayedOnlyPast700(late, segment, 1u);
  }
}

TEST_CASE("the prefetcher's count of CREATE TABLESPACE records spares the hand-over its walk") {
  BesideProduction b;
  const std::string &data = b.data, &location = b.location, &path = b.path;
  test::WalSegment segment(3);
  segment.add(test::otherWalRecord(100));
  segment.add(test::createTablespaceRecord(16400, location));
  segment.add(test::createTablespaceRecord(16401, b.root / "free"));
  // Whatever the target; a record the segment's end cuts is not one of its own (the hand-over of
  // the next segment reads it).
  segment.nextAt(test::kWalSegmentSize - 40);
  segment.add(test::createTablespaceRecord(16402, location));
  test::writeFile(path, segment.bytes);
  test::writeFile(data + "/postgresql.auto.conf", "recovery_target_xid = '700'\n");
  CHECK(archive::tablespaceRecords(path) == 2u);
  // Counted: walked and refused, as without a count.
  CHECK(thrownError([&] {
          archive::checkReplayedTablespaces(data, segment.name(), path, 2u);
        }).code() == ErrorCode::Conflict);
  // None counted (by the prefetcher, in the file its record vouches for): not walked again.
  test::writeFile(path, segment.bytes);
  archive::checkReplayedTablespaces(data, segment.name(), path, 0u);
  CHECK(test::exists(path));
  // A walk that ends at a record failing its CRC counts nothing: a replay that starts past that
  // record reads on to the next.
  test::WalSegment damaged(3);
  io::Buffer broken = test::createTablespaceRecord(16403, b.root / "free");
  broken.back() ^= 1;
  damaged.add(broken);
  const std::uint64_t after = damaged.add(test::createTablespaceRecord(16400, location));
  test::writeFile(path, damaged.bytes);
  CHECK_FALSE(archive::tablespaceRecords(path));
  test::writeFile(data + "/backup_label", "START WAL LOCATION: " + pg::formatLsn(after) +
                                              " (file " + damaged.name() + ")\n");
  CHECK(thrownError([&] {
          archive::checkReplayedTablespaces(data, damaged.name(), path);
        }).code() == ErrorCode::Conflict);
  // Not a segment: none.
  test::writeFile(path, std::string_view("not WAL"));
  CHECK(archive::tablespaceRecords(path) == 0u);
  CHECK(thrownError([&] { archive::tablespaceRecords(data + "/pg_wal/missing"); }).code() ==
        ErrorCode::LocalIo);
}

TEST_CASE("archiveGet checks a segment the prefetcher fetched, with the count it recorded") {
  BesideProduction b;
  const std::string &data = b.data, &location = b.location;
  constexpr std::uint64_t kSystemId = 7000000000000000001;  // test::WalSegment's
  std::filesystem::create_directories(data + "/global");
  std::string control(8192, '\0');
  io::putLe64(reinterpret_cast<std::uint8_t*>(control.data()), kSystemId);
  test::writeFile(data + "/global/pg_control", control);
  test::TempDir repoDir{"tidemark-repo"};
  storage::PosixStorage storage{repoDir.path(), {.sync = false}};
  const repo::StanzaInfo stanza =
      test::createStanza(storage, {.systemId = kSystemId, .segmentSize = test::kWalSegmentSize});
  Config config;
  config.repo.path = repoDir.path();
  // The spool of this data directory, claimed for the repository; its prefetch lock held, as a
  // running prefetcher holds it (the call starts none).
  const std::string folder = *spool::stanzaSpool(config, data);
  spool::claim(folder, {.repository = repo::describeRepository(config),
                        .stanzaId = stanza.identity(),
                        .systemId = kSystemId});
  REQUIRE(::mkdir(spool::fetchedFolder(folder).c_str(), 0700) == 0);
  const int lock = spool::takeLock(folder, spool::kPrefetchLockFile);
  REQUIRE(lock >= 0);
  test::WalSegment segment(3);
  segment.add(test::createTablespaceRecord(16400, location));
  auto prefetched = [&](std::optional<std::uint32_t> count) {
    const std::string spooled = spool::fetchedPath(folder, segment.name());
    test::writeFile(spooled, segment.bytes);
    spool::writeFetched(folder, {.file = segment.name(),
                                 .identity = *spool::recordedIdentity(folder),
                                 .size = segment.bytes.size(),
                                 .sha256 = std::string(64, 'a'),
                                 .local = *spool::fingerprintOf(spooled),
                                 .atMs = 1,
                                 .tablespaceRecords = count});
  };
  test::ChangeDirectory cd(data);
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  for (std::optional<std::uint32_t> count : {std::optional<std::uint32_t>(1), {}}) {
    CAPTURE(count.value_or(99));
    prefetched(count);
    CHECK(thrownError([&] {
            archive::archiveGet(config, segment.name(), "pg_wal/RECOVERYXLOG");
          }).code() == ErrorCode::Conflict);
    CHECK_FALSE(test::exists(data + "/pg_wal/RECOVERYXLOG"));
    CHECK_FALSE(spool::readFetched(folder, segment.name()));  // handed over, then refused
  }
  // Counted none: what the count says is what the hand-over goes by.
  prefetched(0);
  CHECK(archive::archiveGet(config, segment.name(), "pg_wal/RECOVERYXLOG") == GetOutcome::Restored);
  spdlog::set_level(level);
  ::close(lock);
}
