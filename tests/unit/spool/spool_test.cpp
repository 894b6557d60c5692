// Unit tests of common/spool/spool.h: the spool's place and the push statistics.
#include "common/spool/spool.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "common/io/sink.h"
#include "support/check.h"
#include "support/segment.h"

using namespace tidemark;

TEST_CASE("the spool is archive.spool-path, else pg_wal/tidemark in the data directory") {
  Config config;
  CHECK_FALSE(spool::spoolDirectory(config, std::nullopt));
  CHECK(spool::spoolDirectory(config, "/var/lib/postgresql/15/main") ==
        "/var/lib/postgresql/15/main/pg_wal/tidemark");
  config.archive.spoolPath = "/var/spool/tidemark";
  CHECK(spool::spoolDirectory(config, "/data") == "/var/spool/tidemark");
}

TEST_CASE("push statistics: one line per push, read back per stanza, rotated, bad lines skipped") {
  test::TempDir dir;
  const std::string spool = dir.path() + "/spool";
  for (int i = 0; i < 5; ++i)
    spool::recordPush(spool, {.finishedMs = 1000 + i,
                              .durationMs = 10 * i,
                              .ok = i != 2,
                              .file = "00000001000000000000000" + std::to_string(i),
                              .stanza = i == 4 ? "other" : "main"});
  struct stat st {};
  REQUIRE(::stat(spool.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  std::ofstream(spool + "/" + spool::kPushStatsFile, std::ios::app) << "garbage line\n";
  auto stats = spool::readPushStats(spool, "main", 100);
  REQUIRE(stats.size() == 4);
  CHECK(stats[0].durationMs == 0);
  CHECK_FALSE(stats[2].ok);
  CHECK(stats[3].file == "000000010000000000000003");
  CHECK(spool::readPushStats(spool, "main", 2).size() == 2);
  CHECK(spool::readPushStats(spool, "main", 2)[1].durationMs == 30);

  // Past the rotation size, the file moves to .1 and both are read.
  std::string padding(spool::kPushStatsRotateBytes, '\n');
  std::ofstream(spool + "/" + spool::kPushStatsFile, std::ios::app) << padding;
  spool::recordPush(
      spool, {.finishedMs = 2000, .durationMs = 7, .ok = true, .file = "f", .stanza = "main"});
  CHECK(std::filesystem::exists(spool + "/" + spool::kPushStatsFile + ".1"));
  stats = spool::readPushStats(spool, "main", 100);
  REQUIRE(stats.size() == 5);
  CHECK(stats.back().durationMs == 7);

  CHECK_FALSE(spool::parsePushStat("1 2 maybe f main"));
  CHECK_FALSE(spool::parsePushStat("1 2 ok f main extra"));
  CHECK(spool::parsePushStat(
            spool::formatPushStat(
                {.finishedMs = 5, .durationMs = 6, .ok = true, .file = "f", .stanza = "s"}))
            ->stanza == "s");
}

TEST_CASE("a push statistic that cannot be written is no failure") {
  spool::recordPush("/proc/no-such-place/spool",
                    {.finishedMs = 1, .durationMs = 1, .ok = true, .file = "f", .stanza = "main"});
}

namespace {

const spool::Identity kIdentity{
    .repository = "posix:/repo", .stanzaId = "0123456789abcdef", .systemId = 7000000000000000001};

spool::FileRecord ackFor(const std::string& file, const spool::Fingerprint& local) {
  return {.file = file,
          .identity = kIdentity,
          .size = local.size,
          .sha256 = std::string(64, 'a'),
          .local = local,
          .atMs = 1700000000000};
}

}  // namespace

TEST_CASE("the stanza's spool folder is below the spool") {
  Config config;
  config.stanza = "main";
  CHECK(spool::stanzaSpool(config, "/data") == "/data/pg_wal/tidemark/main");
  CHECK_FALSE(spool::stanzaSpool(config, std::nullopt));
}

TEST_CASE("spool records are read whole up to 64 KiB, and a longer file is no record") {
  test::TempDir dir;
  const std::string folder = dir.path() + "/spool/main";
  spool::claim(folder, kIdentity);
  const std::string path = folder + "/" + spool::kIdentityFile;
  const std::string text = "tidemark spool 1\nrepository " + kIdentity.repository + "\nstanza-id " +
                           kIdentity.stanzaId + "\nsystem-id " +
                           std::to_string(kIdentity.systemId) + "\n";
  auto write = [&](std::size_t padding) {
    // A field the reader ignores, to make the file as long as wanted.
    std::ofstream(path, std::ios::trunc) << text << "padding " << std::string(padding, 'p') << "\n";
  };
  write(10);
  CHECK(spool::recordedIdentity(folder) == kIdentity);
  write(64 * 1024 - text.size() - 9);  // exactly 64 KiB, across 4 KiB reads
  CHECK(std::filesystem::file_size(path) == 64 * 1024);
  CHECK(spool::recordedIdentity(folder) == kIdentity);
  write(64 * 1024 - text.size() - 8);  // one byte more
  CHECK_FALSE(spool::recordedIdentity(folder));
}

TEST_CASE("claim: a spool of another identity is emptied of tidemark's files, never of others") {
  test::TempDir dir;
  const std::string folder = dir.path() + "/spool/main";
  CHECK_FALSE(spool::claim(folder, kIdentity));  // new: nothing to discard
  CHECK(spool::recordedIdentity(folder) == kIdentity);
  CHECK_FALSE(spool::claim(folder, kIdentity));  // the same identity keeps everything
  std::filesystem::create_directories(folder + "/get");
  std::ofstream(folder + "/get/000000010000000000000005") << "x";
  std::ofstream(folder + "/someone-elses-file") << "keep me";
  std::ofstream(folder + "/.bashrc") << "keep me too";
  std::ofstream(folder + "/.identity.tmp-123-abc") << "a temporary file of a killed write";
  spool::writeWanted(folder, "000000010000000000000005", "posix:/repo");
  spool::writePushAck(folder, ackFor("000000010000000000000005", {.size = 1}));
  spool::writeGap(folder, {.repository = "posix:/repo",
                           .systemId = 1,
                           .ranges = {{.first = "000000010000000000000001",
                                       .last = "000000010000000000000001",
                                       .files = 1}}});
  spool::recordPush(folder,
                    {.finishedMs = 1, .durationMs = 1, .ok = true, .file = "f", .stanza = "main"});
  REQUIRE(spool::claim(folder, kIdentity) == false);
  CHECK(spool::listPushAcks(folder).size() == 1);

  for (auto changed :
       {spool::Identity{"posix:/other", kIdentity.stanzaId, kIdentity.systemId},
        spool::Identity{kIdentity.repository, "fedcba9876543210", kIdentity.systemId},
        spool::Identity{kIdentity.repository, kIdentity.stanzaId, 42}}) {
    CAPTURE(changed.repository);
    spool::writePushAck(folder, ackFor("000000010000000000000006", {.size = 1}));
    CHECK(spool::claim(folder, changed));
    CHECK(spool::recordedIdentity(folder) == changed);
    CHECK(spool::listPushAcks(folder).empty());
    CHECK_FALSE(std::filesystem::exists(folder + "/get"));
    CHECK_FALSE(std::filesystem::exists(folder + "/" + spool::kPushStatsFile));
    CHECK(std::filesystem::exists(folder + "/someone-elses-file"));
    CHECK(std::filesystem::exists(folder + "/.bashrc"));
    CHECK_FALSE(std::filesystem::exists(folder + "/.identity.tmp-123-abc"));
    // What PostgreSQL asked for last stays: the prefetcher claims the spool after it is written.
    REQUIRE(spool::readWanted(folder));
    CHECK(spool::readWanted(folder)->repository == "posix:/repo");
    // The gap names its own repository: archive-push records or reports it, never forgets it.
    CHECK(spool::readGap(folder));
  }
  // A damaged identity is no identity: everything tidemark's goes.
  std::ofstream(folder + "/" + spool::kIdentityFile) << "tidemark spool 1\nrepository x\n";
  CHECK_FALSE(spool::recordedIdentity(folder));
  spool::writePushAck(folder, ackFor("000000010000000000000007", {.size = 1}));
  CHECK(spool::claim(folder, kIdentity));
  CHECK(spool::listPushAcks(folder).empty());
}

TEST_CASE("push acknowledgements: written durably, read back exactly, damaged ones are none") {
  test::TempDir dir;
  const std::string folder = dir.path() + "/main";
  spool::claim(folder, kIdentity);
  std::ofstream(dir.path() + "/seg") << "segment";
  auto local = spool::fingerprintOf(dir.path() + "/seg");
  REQUIRE(local);
  CHECK(local->size == 7);
  CHECK_FALSE(spool::fingerprintOf(dir.path() + "/missing"));
  spool::writePushAck(folder, ackFor("000000010000000000000005", *local));
  auto ack = spool::readPushAck(folder, "000000010000000000000005");
  REQUIRE(ack);
  CHECK(ack->identity == kIdentity);
  CHECK(ack->local == *local);
  CHECK(ack->sha256 == std::string(64, 'a'));
  CHECK(spool::listPushAcks(folder) == std::vector<std::string>{"000000010000000000000005"});
  // Renamed to another file's name, an acknowledgement vouches for nothing.
  std::filesystem::rename(folder + "/push/000000010000000000000005.ok",
                          folder + "/push/000000010000000000000006.ok");
  CHECK_FALSE(spool::readPushAck(folder, "000000010000000000000006"));
  spool::removePushAck(folder, "000000010000000000000006");
  CHECK(spool::listPushAcks(folder).empty());
  // Cut short or edited: not an acknowledgement.
  std::string text = spool::formatRecord(ackFor("000000010000000000000005", *local));
  CHECK(spool::parseRecord(text));
  CHECK_FALSE(spool::parseRecord(text.substr(0, text.size() / 2)));
  CHECK_FALSE(spool::parseRecord("tidemark file record 2\n" + text.substr(text.find('\n') + 1)));
  // A prefetched segment's count of CREATE TABLESPACE records: read back, or not counted.
  CHECK_FALSE(spool::parseRecord(text)->tablespaceRecords);
  spool::FileRecord counted = ackFor("000000010000000000000005", *local);
  counted.tablespaceRecords = 3;
  CHECK(spool::formatRecord(counted) == text + "tablespace-records-v1 3\n");
  CHECK(spool::parseRecord(spool::formatRecord(counted))->tablespaceRecords == 3u);
  for (const char* bad : {"-1", "4294967296", "+1", " 1", "1 "}) {
    CAPTURE(bad);
    CHECK_FALSE(spool::parseRecord(text + "tablespace-records-v1 " + bad + "\n"));
  }
  CHECK_FALSE(spool::parseRecord(text + "tablespace-records-v1 1\ntablespace-records-v1 2\n"));
  // Counted by another version of the walk: not relied on.
  CHECK_FALSE(spool::parseRecord(text + "tablespace-records-v0 0\n")->tablespaceRecords);
  // A change to the file changes its fingerprint.
  std::ofstream(dir.path() + "/seg", std::ios::app) << "!";
  CHECK(spool::fingerprintOf(dir.path() + "/seg") != *local);
}

TEST_CASE("the safety valve's gap: durable, exact, and a damaged one is an error, never none") {
  test::TempDir dir;
  const std::string folder = dir.path() + "/spool/main";
  CHECK_FALSE(spool::readGap(folder));
  spool::LocalGap gap{.repository = "s3://bucket/prefix (http://127.0.0.1:9000)",
                      .systemId = 7,
                      .ranges = {{.first = "000000010000000000000001",
                                  .last = "000000010000000000000003",
                                  .files = 3,
                                  .firstMs = 10,
                                  .lastMs = 30},
                                 {.first = "000000020000000000000007",
                                  .last = "000000020000000000000007",
                                  .files = 1,
                                  .firstMs = 40,
                                  .lastMs = 40}}};
  spool::writeGap(folder, gap);
  CHECK(spool::readGap(folder) == gap);
  std::ofstream(folder + "/" + spool::kGapFile, std::ios::app) << "range x\n";
  CHECK(test::thrownError([&] { spool::readGap(folder); }).code() == ErrorCode::LocalIo);
  spool::removeGap(folder);
  CHECK_FALSE(spool::readGap(folder));
  CHECK_FALSE(spool::hasGap(folder));
  SUBCASE("a gap file that cannot be looked at may be there: never none") {
    // ELOOP here (EIO or EACCES on a failing disk): only "no such file" is no gap.
    spool::writeGap(folder, gap);
    const std::string loop = dir.path() + "/loop";
    REQUIRE(::symlink(loop.c_str(), loop.c_str()) == 0);
    CHECK(spool::hasGap(loop + "/main"));
    CHECK(test::thrownError([&] { spool::readGap(loop + "/main"); }).code() == ErrorCode::LocalIo);
  }
}

TEST_CASE("findGaps finds the gap of every stanza folder, a former stanza name's too") {
  test::TempDir dir;
  const std::string spool = dir.path() + "/spool";
  CHECK(spool::findGaps(spool).empty());  // no spool: nothing dropped here
  spool::claim(spool + "/main", {.repository = "posix:/repo", .stanzaId = "a", .systemId = 7});
  std::ofstream(spool + "/stray") << "a file, not a stanza folder";
  CHECK(spool::findGaps(spool).empty());
  const spool::LocalGap gap{
      .repository = "posix:/repo",
      .systemId = 7,
      .ranges = {
          {.first = "000000010000000000000004", .last = "000000010000000000000005", .files = 2}}};
  spool::writeGap(spool + "/old-name", gap);
  spool::writeGap(spool + "/main", gap);
  auto found = spool::findGaps(spool);
  REQUIRE(found.size() == 2);
  CHECK(found[0].stanza == "main");
  CHECK(found[0].folder == spool + "/main");
  CHECK(found[0].gap == gap);
  CHECK(found[1].stanza == "old-name");
  // A gap that cannot be read is an error, never none.
  std::ofstream(spool + "/old-name/" + spool::kGapFile, std::ios::app) << "range x\n";
  CHECK(test::thrownError([&] { spool::findGaps(spool); }).code() == ErrorCode::LocalIo);
  // A spool that cannot be listed (ELOOP here, EIO or EACCES on a failing disk) too.
  const std::string loop = dir.path() + "/loop";
  REQUIRE(::symlink(loop.c_str(), loop.c_str()) == 0);
  const Error e = test::thrownError([&] { spool::findGaps(loop); });
  CHECK(e.code() == ErrorCode::LocalIo);
  CHECK(e.hint() == test::Containing("check the disk the spool is on"));
}

TEST_CASE("findHostGaps: this cluster's gaps in each spool once, not another cluster's") {
  test::TempDir dir;
  const std::string data = dir.path() + "/data";
  const std::string own = data + "/pg_wal/tidemark";
  REQUIRE(std::filesystem::create_directories(data + "/pg_wal"));
  Config config;
  spool::LocalGap gap{
      .repository = "posix:/repo",
      .systemId = 7,
      .ranges = {
          {.first = "000000010000000000000004", .last = "000000010000000000000004", .files = 1}}};
  spool::writeGap(own + "/main", gap);      // this stanza's
  spool::writeGap(own + "/old-name", gap);  // this cluster's, under a former stanza name
  gap.systemId = 8;
  spool::writeGap(own + "/neighbour", gap);  // another cluster's that shares the spool
  auto names = [](const spool::HostGaps& host) {
    std::vector<std::string> out;
    for (const auto& found : host.gaps)
      out.push_back(found.stanza);
    return out;
  };
  auto host = spool::findHostGaps(config, data, 7);
  CHECK(host.spools == std::vector<std::string>{own});
  CHECK(host.denied.empty());
  CHECK(names(host) == std::vector<std::string>{"main", "old-name"});
  // The system identifier unknown: every gap counts.
  CHECK(names(spool::findHostGaps(config, data, 0)) ==
        std::vector<std::string>{"main", "neighbour", "old-name"});
  // Not given: the data directory's own, from its pg_control; none readable there: unknown.
  CHECK(names(spool::findHostGaps(config, data)) ==
        std::vector<std::string>{"main", "neighbour", "old-name"});
  REQUIRE(std::filesystem::create_directories(data + "/global"));
  io::Buffer control(8192, 0);
  io::putLe64(control.data(), 7);
  test::writeFile(data + "/global/pg_control", io::ByteView(control));
  CHECK(names(spool::findHostGaps(config, data)) == std::vector<std::string>{"main", "old-name"});
  // archive.spool-path naming the data directory's own spool by another path: looked into once.
  REQUIRE(::symlink(own.c_str(), (dir.path() + "/link").c_str()) == 0);
  config.archive.spoolPath = dir.path() + "/link";
  host = spool::findHostGaps(config, data, 7);
  CHECK(host.spools == std::vector<std::string>{dir.path() + "/link"});
  CHECK(names(host) == std::vector<std::string>{"main", "old-name"});
  // No spool on this host (the server runs elsewhere): nothing looked into, nothing denied.
  config.archive.spoolPath = dir.path() + "/elsewhere";
  host = spool::findHostGaps(config, std::nullopt, 7);
  CHECK(host.spools.empty());
  CHECK(host.denied.empty());
}

TEST_CASE("the spools of a host: the configured one, and the data directory's when it is another") {
  Config config;
  CHECK(spool::spoolDirectories(config, std::nullopt).empty());
  CHECK(spool::spoolDirectories(config, "/data") ==
        std::vector<std::string>{"/data/pg_wal/tidemark"});
  config.archive.spoolPath = "/var/spool/tidemark";
  CHECK(spool::spoolDirectories(config, std::nullopt) ==
        std::vector<std::string>{"/var/spool/tidemark"});
  CHECK(spool::spoolDirectories(config, "/data") ==
        std::vector<std::string>{"/var/spool/tidemark", "/data/pg_wal/tidemark"});
  config.archive.spoolPath = "/data/pg_wal/tidemark";
  CHECK(spool::spoolDirectories(config, "/data") ==
        std::vector<std::string>{"/data/pg_wal/tidemark"});
}

TEST_CASE("the gap's lock that root makes belongs to the spool folder's owner") {
  if (::geteuid() != 0) {
    MESSAGE("skipped: not root");
    return;
  }
  test::TempDir dir;
  const std::string folder = dir.path() + "/main";
  REQUIRE(::mkdir(folder.c_str(), 0700) == 0);
  REQUIRE(::chown(folder.c_str(), 4321, 4321) == 0);  // the PostgreSQL user's, say
  // tidemark-recover, as root, records a gap under it; archive-push, as that user, opens it later.
  { spool::GapLock lock(folder); }
  struct stat st {};
  REQUIRE(::stat((folder + "/gap.lock").c_str(), &st) == 0);
  CHECK(st.st_uid == 4321);
  CHECK(st.st_gid == 4321);
  // A file of root's that user links there is not given away (the lock is still taken: nothing is
  // written into it).
  REQUIRE(::unlink((folder + "/gap.lock").c_str()) == 0);
  test::writeFile(dir.path() + "/other", "root's");
  REQUIRE(::link((dir.path() + "/other").c_str(), (folder + "/gap.lock").c_str()) == 0);
  { spool::GapLock lock(folder); }
  REQUIRE(::stat((dir.path() + "/other").c_str(), &st) == 0);
  CHECK(st.st_uid == 0);
  CHECK(test::readText(dir.path() + "/other") == "root's");
}

TEST_CASE("root writes through no symlink in the spool") {
  if (::geteuid() != 0) {
    MESSAGE("skipped: not root");
    return;
  }
  test::TempDir dir;
  const std::string folder = dir.path() + "/spool/main";
  spool::claim(folder, kIdentity);
  REQUIRE(::chown((dir.path() + "/spool").c_str(), 4321, 4321) == 0);
  REQUIRE(::chown(folder.c_str(), 4321, 4321) == 0);
  // Root's files, which the folder's owner names from the spool: nothing is written through them.
  test::writeFile(dir.path() + "/secret", "root's");
  REQUIRE(::symlink((dir.path() + "/secret").c_str(),
                    (folder + "/" + spool::kPushStatsFile).c_str()) == 0);
  REQUIRE(::symlink((dir.path() + "/secret").c_str(), (folder + "/detached.log").c_str()) == 0);
  spool::recordPush(folder,
                    {.finishedMs = 1, .durationMs = 1, .ok = true, .file = "f", .stanza = "main"});
  const int prefetchLock = spool::takeLock(folder, spool::kPrefetchLockFile);
  REQUIRE(prefetchLock >= 0);
  spool::startDetached(
      folder, "detached.log", "tidemark-test", Config{}, [](int) { return 0; }, prefetchLock);
  ::close(prefetchLock);
  REQUIRE(spool::waitForWorkers(folder, std::chrono::seconds(5)));
  CHECK(test::readText(dir.path() + "/secret") == "root's");
}

TEST_CASE("a record is trusted only under the spool's identity, configuration and file") {
  test::TempDir dir;
  const std::string folder = dir.path() + "/main";
  spool::claim(folder, kIdentity);
  const std::string file = dir.path() + "/seg";
  std::ofstream(file) << "segment";
  auto record = ackFor("000000010000000000000005", *spool::fingerprintOf(file));
  CHECK_FALSE(spool::untrusted(folder, record, kIdentity.repository, kIdentity.systemId, file));
  CHECK(*spool::untrusted(folder, record, "posix:/elsewhere", kIdentity.systemId, file) ==
        test::Containing("names repository posix:/repo"));
  CHECK(*spool::untrusted(folder, record, kIdentity.repository, 1, file) ==
        test::Containing("names the cluster"));
  auto other = record;
  other.identity.stanzaId = "another";
  CHECK(*spool::untrusted(folder, other, kIdentity.repository, kIdentity.systemId, file) ==
        test::Containing("another identity"));
  std::ofstream(file, std::ios::app) << "!";
  CHECK(*spool::untrusted(folder, record, kIdentity.repository, kIdentity.systemId, file) ==
        test::Containing("not the one"));
}

TEST_CASE("a push claim: one holder at a time, waited for, removed when let go or left behind") {
  test::TempDir dir;
  const std::string folder = dir.path() + "/main";
  const std::string file = "000000010000000000000005";
  const std::string marker = folder + "/push/" + file + ".pushing";
  // Nobody pushes it: no wait.
  CHECK(spool::waitWhilePushed(folder, file, std::chrono::milliseconds(0)));
  {
    auto claim = spool::PushClaim::take(folder, file);
    REQUIRE(claim);
    CHECK(test::exists(marker));
    // A second taker (flock is per open file: the same process stands for another one) gets none,
    // and a waiter waits until the timeout.
    CHECK_FALSE(spool::PushClaim::take(folder, file));
    CHECK_FALSE(spool::waitWhilePushed(folder, file, std::chrono::milliseconds(50)));
    // Held markers are no stale ones.
    spool::removeStalePushClaims(folder);
    CHECK(test::exists(marker));
    // Moved: still held, and the moved-from one lets nothing go.
    std::optional<spool::PushClaim> moved = std::move(claim);
    claim.reset();
    CHECK_FALSE(spool::PushClaim::take(folder, file));
  }
  // Let go: the marker is gone, and the next one takes it at once.
  CHECK_FALSE(test::exists(marker));
  CHECK(spool::waitWhilePushed(folder, file, std::chrono::milliseconds(0)));
  CHECK(spool::PushClaim::take(folder, file));
  // A marker left by a killed holder (no lock on it) does not block, and the sweep removes it.
  std::ofstream(marker).flush();
  CHECK(spool::waitWhilePushed(folder, file, std::chrono::milliseconds(0)));
  spool::removeStalePushClaims(folder);
  CHECK_FALSE(test::exists(marker));
  // Acknowledgements are not claims: the listing of acknowledgements never shows a marker.
  CHECK(spool::listPushAcks(folder).empty());
}

TEST_CASE("takeLock: one holder, a timeout that says so, and the wait for workers") {
  test::TempDir dir;
  const std::string folder = dir.path();
  int lock = spool::takeLock(folder, spool::kPushLockFile);
  REQUIRE(lock >= 0);
  errno = 0;
  CHECK(spool::takeLock(folder, spool::kPushLockFile, std::chrono::milliseconds(30)) == -1);
  CHECK(errno == EWOULDBLOCK);
  CHECK_FALSE(spool::waitForWorkers(folder, std::chrono::milliseconds(30)));
  ::close(lock);
  CHECK(spool::waitForWorkers(folder, std::chrono::milliseconds(0)));
  // A folder that does not exist: no lock can be made, and errno says why.
  CHECK(spool::takeLock(folder + "/missing", spool::kPushLockFile) == -1);
  CHECK(errno == ENOENT);
}

TEST_CASE("a detached process opens no file on a number a descriptor of its caller's had") {
  test::TempDir dir;
  const std::string folder = dir.path();
  // A lock is handed over, and `stray` stands for what a library of the caller's keeps open and
  // writes to later: the dynamic loader's LD_DEBUG_OUTPUT report, written at each dlopen.
  const int lock = spool::takeLock(folder, spool::kPushLockFile);
  REQUIRE(lock >= 0);
  const int stray = ::open((dir / "stray").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE(stray >= 0);
  // And a pipe's writing end, as PostgreSQL's pipes: let go, the reader sees its end at once.
  int pipe[2];
  REQUIRE(::pipe2(pipe, O_CLOEXEC) == 0);
  spool::startDetached(
      folder, "detached.log", "tidemark-test", Config{},
      [&](int held) {
        // The files it opens take the lowest free numbers: it gets the stray's, were it free.
        struct stat heldStat {
        }, lockStat{};
        std::string report = ::fstat(held, &heldStat) == 0 &&
                                     ::stat((dir / spool::kPushLockFile).c_str(), &lockStat) == 0 &&
                                     heldStat.st_ino == lockStat.st_ino
                                 ? ""
                                 : "the lock was not handed over\n";
        for (int i = 0; i < 64; ++i) {
          const std::string path = dir / ("mine-" + std::to_string(i));
          const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
          if (fd < 0) return 1;
          if (::write(stray, "stray", 5) != 5) report += "the stray writer failed\n";
          if (::write(fd, "mine", 4) != 4) report += "cannot write " + path + "\n";
          ::close(fd);
          if (test::readText(path) != "mine") {
            report += path + " was written by the stray\n";
            break;
          }
        }
        std::ofstream(dir / "report.tmp") << (report.empty() ? "ok" : report);
        ::rename((dir / "report.tmp").c_str(), (dir / "report").c_str());
        for (int i = 0; i < 500 && !std::filesystem::exists(dir / "release"); ++i)
          ::usleep(10000);
        return 0;
      },
      lock);
  ::close(lock);
  ::close(stray);
  ::close(pipe[1]);
  for (int i = 0; i < 500 && !std::filesystem::exists(dir / "report"); ++i)
    ::usleep(10000);
  REQUIRE(std::filesystem::exists(dir / "report"));
  CHECK(test::readText(dir / "report") == "ok");
  // It still runs (until "release" appears), and holds no end of the pipe.
  pollfd reader{.fd = pipe[0], .events = POLLIN, .revents = 0};
  CHECK(::poll(&reader, 1, 5000) == 1);
  char byte;
  CHECK(::read(pipe[0], &byte, 1) == 0);
  ::close(pipe[0]);
  test::writeFile(dir / "release", "");
  // What the caller's library wrote after the fork went nowhere, and the lock was held through.
  CHECK(test::readText(dir / "stray").empty());
  CHECK(spool::waitForWorkers(folder, std::chrono::seconds(5)));
}

TEST_CASE("stanza.json's signer is remembered for its stanza id and kStanzaSignerTtl, then not") {
  test::TempDir dir;
  const std::string folder = dir.path();
  const std::int64_t now = 1'800'000'000;
  REQUIRE_FALSE(spool::claim(folder, {"posix:/repo", "id-1", 7}));
  CHECK_FALSE(spool::readStanzaSigner(folder, "id-1", now));
  spool::writeStanzaSigner(folder, "id-1", "0123456789abcdef", now);
  CHECK(spool::readStanzaSigner(folder, "id-1", now) == "0123456789abcdef");
  CHECK(spool::readStanzaSigner(folder, "id-1", now + spool::kStanzaSignerTtl - 1) ==
        "0123456789abcdef");
  // Read again from the repository: after the TTL (a rotation's re-signing reaches every host),
  // with the clock set back, or for a re-created stanza (another id).
  CHECK_FALSE(spool::readStanzaSigner(folder, "id-1", now + spool::kStanzaSignerTtl));
  CHECK_FALSE(spool::readStanzaSigner(folder, "id-1", now - 1));
  CHECK_FALSE(spool::readStanzaSigner(folder, "id-2", now));
  // A claim for another identity discards it with the rest of tidemark's files.
  CHECK(spool::claim(folder, {"posix:/repo", "id-2", 7}));
  CHECK_FALSE(std::filesystem::exists(folder + "/stanza-signer"));
}
