// Unit tests of archive-get/prefetch.h: handing prefetched segments over (what needs no server or
// prefetcher; tests/integration/prefetch_test.cpp runs them with PostgreSQL).
#include "archive-get/prefetch.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <fstream>
#include <future>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "archive-push/push.h"
#include "common/pg/wal.h"
#include "common/repo/layout.h"
#include "common/repo/object.h"
#include "common/spool/spool.h"
#include "support/fake_repository.h"
#include "support/fake_s3.h"
#include "support/forwarding_storage.h"
#include "support/segment.h"
#include "support/stanza.h"
#include "support/wal_builder.h"

using namespace tidemark;

namespace {

constexpr std::uint64_t kSystemId = 7000000000000000001;
const std::string kName = "000000010000000000000005";

// A stanza's spool folder claimed for one repository and cluster, with an empty get/ folder.
struct Spool {
  Spool() {
    spool::claim(folder, identity);
    REQUIRE(::mkdir(spool::fetchedFolder(folder).c_str(), 0700) == 0);
  }
  archive::PrefetchContext context() const {
    return {.config = config,
            .folder = folder,
            .systemId = kSystemId,
            .repository = identity.repository,
            .dataDirectory = data.path()};
  }
  // The marker the prefetcher leaves beside a segment it is fetching.
  std::string marker(const std::string& file) const { return spool::inflightPath(folder, file); }

  test::TempDir dir{"tidemark-spool"};
  test::TempDir data{"tidemark-pgdata"};
  const std::string folder = dir / "main";
  const spool::Identity identity{
      .repository = "posix:/nowhere", .stanzaId = "stanza-1", .systemId = kSystemId};
  Config config;
};

// A storage that counts the requests naming a file.
struct CountingStorage : test::ForwardingStorage {
  using ForwardingStorage::ForwardingStorage;
  bool read(const std::string& path, io::Sink& out, storage::ReadOptions options) override {
    note(path);
    return ForwardingStorage::read(path, out, options);
  }
  std::optional<storage::ObjectInfo> info(const std::string& path) override {
    note(path);
    return ForwardingStorage::info(path);
  }
  void note(const std::string& path) {
    std::lock_guard guard(mutex);
    paths.push_back(path);
  }
  std::size_t requests(const std::string& file) {
    std::lock_guard guard(mutex);
    return std::size_t(std::count_if(paths.begin(), paths.end(), [&](const std::string& p) {
      return p.find(file) != std::string::npos;
    }));
  }
  std::mutex mutex;
  std::vector<std::string> paths;
};

// A prefetcher on `store` (stanza "main" of a FakeRepository) for a standby whose data directory
// is s.data, asking for `asked`, run on a thread until the test ends (it leaves recovery).
struct StandbyPrefetcher {
  StandbyPrefetcher(Spool& s, storage::Storage& store, std::uint64_t systemId,
                    const std::string& asked, const archive::PrefetchOptions& options)
      : s(s), context(s.context()) {
    context.systemId = systemId;
    std::ofstream(s.data / "standby.signal").flush();
    std::ofstream(s.data / "postmaster.pid").flush();
    ask(asked);
    // Handles of their own for its threads (another()), all on `store`.
    auto open = [&store] { return std::make_unique<test::ForwardingStorage>(store); };
    thread = std::thread([this, open, options] {
      archive::runPrefetcher(context, repo::Repository(open(), "main", {}, {}, open), options);
    });
  }
  ~StandbyPrefetcher() {
    ::unlink((s.data / "standby.signal").c_str());  // out of recovery: it stops
    thread.join();
  }
  void ask(const std::string& file) {
    spool::writeWanted(context.folder, file, context.repository);
  }

  Spool& s;
  archive::PrefetchContext context;
  std::thread thread;
};

}  // namespace

TEST_CASE("takePrefetched waits on a segment being fetched only while a prefetcher runs") {
  Spool s;
  std::ofstream(s.marker(kName)).flush();
  const std::string destination = s.data / "RECOVERYXLOG";
  SUBCASE("a marker left by a prefetcher that was killed is not waited on") {
    // Waiting for it would cost each such call the whole wait (10 s), the recovery stalled.
    auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(archive::takePrefetched(s.context(), kName, destination));
    CHECK(test::secondsSince(start) < 5);
    CHECK(::access(destination.c_str(), F_OK) != 0);
  }
  SUBCASE("with the prefetcher's lock held, the call waits until the marker goes") {
    int lock = ::open((s.folder + "/" + spool::kPrefetchLockFile).c_str(),
                      O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    REQUIRE(lock >= 0);
    REQUIRE(::flock(lock, LOCK_EX | LOCK_NB) == 0);
    // The marker goes (the fetch failed): the call gives up waiting and fetches itself.
    std::thread fetcher([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(600));
      ::unlink(s.marker(kName).c_str());
    });
    auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(archive::takePrefetched(s.context(), kName, destination));
    double waited = test::secondsSince(start);
    fetcher.join();
    ::close(lock);
    CHECK(waited >= 0.5);
    CHECK(waited < 5);
  }
}

TEST_CASE("takePrefetched hands a segment over from a spool on another filesystem") {
  // /dev/shm is a tmpfs: another filesystem than the temporary folder's, where the data directory
  // is (skipped where they are the same).
  struct stat shm {
  }, tmp{};
  test::TempDir data{"tidemark-pgdata"};
  if (::stat("/dev/shm", &shm) != 0 || ::stat(data.path().c_str(), &tmp) != 0 ||
      shm.st_dev == tmp.st_dev) {
    MESSAGE("skipped: no second filesystem at /dev/shm");
    return;
  }
  test::TempDir elsewhere("/dev/shm/tidemark-spool");  // an absolute prefix replaces $TMPDIR
  Spool s;
  archive::PrefetchContext context = s.context();
  context.folder = elsewhere / "main";
  context.dataDirectory = data.path();
  spool::claim(context.folder, s.identity);
  REQUIRE(::mkdir(spool::fetchedFolder(context.folder).c_str(), 0700) == 0);
  const std::string spooled = spool::fetchedPath(context.folder, kName);
  const std::string content(100000, 'w');
  std::ofstream(spooled) << content;
  spool::writeFetched(context.folder, {.file = kName,
                                       .identity = s.identity,
                                       .size = content.size(),
                                       .sha256 = std::string(64, 'a'),
                                       .local = *spool::fingerprintOf(spooled),
                                       .atMs = 1,
                                       .tablespaceRecords = 0});
  const std::string destination = data / "RECOVERYXLOG";
  auto taken = archive::takePrefetched(context, kName, destination);
  REQUIRE(taken);
  // A copy is not the file counted: the hand-over walks it.
  CHECK_FALSE(taken->tablespaceRecords);
  std::ifstream in(destination);
  CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == content);
  // Handed over once: the spool no longer holds it.
  CHECK_FALSE(spool::readFetched(context.folder, kName));
  CHECK(::access(spooled.c_str(), F_OK) != 0);
}

TEST_CASE("the prefetcher leaves PostgreSQL a reserve of free space") {
  constexpr std::uint64_t kGiB = 1ull << 30, kMiB = 1ull << 20;
  constexpr std::uint32_t kSeg = 16u << 20;
  // A large filesystem: 1 GiB stays free.
  CHECK(archive::segmentsWithRoom(100 * kGiB, 1000 * kGiB, 4, kSeg) == 4);
  CHECK(archive::segmentsWithRoom(kGiB + 3 * kSeg, 1000 * kGiB, 4, kSeg) == 3);
  CHECK(archive::segmentsWithRoom(kGiB + kSeg - 1, 1000 * kGiB, 4, kSeg) == 0);
  CHECK(archive::segmentsWithRoom(kGiB, 1000 * kGiB, 4, kSeg) == 0);
  CHECK(archive::segmentsWithRoom(0, 1000 * kGiB, 4, kSeg) == 0);
  // A small one: a tenth of it stays free.
  CHECK(archive::segmentsWithRoom(200 * kMiB, 1000 * kMiB, 16, kSeg) == 6);
  CHECK(archive::segmentsWithRoom(100 * kMiB, 1000 * kMiB, 16, kSeg) == 0);
}

TEST_CASE("a starting prefetcher's sweep keeps the recorded segments and nothing else") {
  Spool s;
  const std::string recorded = "000000010000000000000006";
  const std::string temporary = spool::fetchedPath(s.folder, "." + kName + ".tmp-1-0123456789ab");
  std::ofstream(s.marker(kName)).flush();
  std::ofstream(spool::fetchedPath(s.folder, kName)).flush();  // written, never recorded
  std::ofstream(temporary).flush();
  std::ofstream(spool::fetchedPath(s.folder, recorded)) << "wal";
  spool::writeFetched(s.folder,
                      {.file = recorded,
                       .identity = s.identity,
                       .size = 3,
                       .sha256 = std::string(64, 'a'),
                       .local = *spool::fingerprintOf(spool::fetchedPath(s.folder, recorded)),
                       .atMs = 1});
  spool::sweepFetched(s.folder);
  CHECK(::access(s.marker(kName).c_str(), F_OK) != 0);
  CHECK(::access(spool::fetchedPath(s.folder, kName).c_str(), F_OK) != 0);
  CHECK(::access(temporary.c_str(), F_OK) != 0);
  CHECK(spool::readFetched(s.folder, recorded));
  CHECK(::access(spool::fetchedPath(s.folder, recorded).c_str(), F_OK) == 0);
  CHECK(spool::listFetched(s.folder) == std::vector<std::string>{recorded});
}

TEST_CASE("the way ahead: the newest timeline's path, or the timeline PostgreSQL stays on") {
  constexpr std::uint32_t kSize = 16u << 20;
  // Timeline 2 began inside segment 0xA of timeline 1 (0/A800000); timeline 1 went on after it.
  const pg::TimelineHistory newest = pg::parseHistory(2, "1\t0/A800000\n", "w");
  const pg::TimelineHistory one = pg::parseHistory(1, "", "w");
  auto name = [](const std::string& file) { return *pg::parseWalName(file); };
  SUBCASE("asksAlong: a file of the path, or one PostgreSQL asks for only off it") {
    CHECK(archive::asksAlong(newest, name("000000010000000000000009"), kSize));
    // 'latest' reads segment A from timeline 2, where the switch lies: timeline 1's A is off it.
    CHECK_FALSE(archive::asksAlong(newest, name("00000001000000000000000A"), kSize));
    CHECK_FALSE(archive::asksAlong(newest, name("00000001000000000000000C"), kSize));
    CHECK(archive::asksAlong(newest, name("00000002000000000000000A"), kSize));
    CHECK_FALSE(archive::asksAlong(one, name("00000002000000000000000A"), kSize));
    CHECK(archive::asksAlong(one, name("00000001000000000000000C"), kSize));
  }
  SUBCASE("planAhead on the newest path crosses to timeline 2; on timeline 1's own stays there") {
    CHECK(archive::planAhead(newest, name("000000010000000000000008"), 3, kSize) ==
          std::vector<std::string>{"000000010000000000000009", "00000002000000000000000A",
                                   "00000002000000000000000B"});
    CHECK(archive::planAhead(one, name("00000001000000000000000A"), 2, kSize) ==
          std::vector<std::string>{"00000001000000000000000B", "00000001000000000000000C"});
  }
}

TEST_CASE("followedHistory looks a bounded way ahead on a store that says every object exists") {
  test::FakeRepository f;
  // Every HEAD answered "here", as a broken or lying server might: without a bound the search
  // for newer timelines would go on for 2^32 requests (stopped here after 100000).
  struct EverythingExists : test::ForwardingStorage {
    using ForwardingStorage::ForwardingStorage;
    std::optional<storage::ObjectInfo> info(const std::string&) override {
      if (++probes > 100000) throw Error(ErrorCode::Storage, "too many probes");
      return storage::ObjectInfo{.size = 1};
    }
    std::size_t probes = 0;
  } store(f.storage);
  repo::Repository repository(store, "main");
  try {
    archive::followedHistory(repository, 1, *pg::parseWalName("000000010000000000000009"),
                             test::kSegmentSize);
  } catch (const Error&) {
    // The newest timeline it settles on has no history: the prefetcher logs it and waits,
    // fetching nothing ahead.
  }
  CHECK(store.probes <= 1100);
}

TEST_CASE("followedHistory: the newest timeline's, unless PostgreSQL reads on along its own") {
  test::FakeRepository f;
  // Timeline 2 began inside segment 0xA of timeline 1 (1 MiB segments: 0/A80000), and is the
  // newest.
  f.history(2, "1\t0/A80000\tno recovery target specified\n");
  f.wal(1, 8, 0xA);
  auto followed = [&](const std::string& file) {
    return archive::followedHistory(f.handle(), 1, *pg::parseWalName(file), test::kSegmentSize)
        .timeline;
  };
  // Before the fork, timeline 1's files are on timeline 2's path.
  CHECK(followed("000000010000000000000009") == 2);
  CHECK(followed("00000002000000000000000A") == 2);
  SUBCASE("a file off the path that the repository holds: PostgreSQL reads on along timeline 1") {
    f.wal(1, 0xB, 0xC);
    CHECK(followed("00000001000000000000000A") == 1);
    CHECK(followed("00000001000000000000000B") == 1);
  }
  SUBCASE("one it does not hold is a probe: PostgreSQL comes back to timeline 2") {
    // Timeline 1's segment 0xB is not in the repository (its last one was archived as .partial).
    CHECK(followed("00000001000000000000000B") == 2);
  }
}

TEST_CASE("absentRetryWait doubles from retryAbsent up to retryAbsentMax") {
  using std::chrono::milliseconds;
  const archive::PrefetchOptions options{.retryAbsent = milliseconds(1000),
                                         .retryAbsentMax = milliseconds(30000)};
  CHECK(archive::absentRetryWait(options, 1) == milliseconds(1000));
  CHECK(archive::absentRetryWait(options, 2) == milliseconds(2000));
  CHECK(archive::absentRetryWait(options, 5) == milliseconds(16000));
  CHECK(archive::absentRetryWait(options, 6) == milliseconds(30000));
  CHECK(archive::absentRetryWait(options, 1000) == milliseconds(30000));
  // A maximum below the first wait is the first wait.
  CHECK(archive::absentRetryWait({.retryAbsent = milliseconds(500), .retryAbsentMax = {}}, 3) ==
        milliseconds(500));
}

TEST_CASE("at the end of the archive the prefetcher looks less and less often, then at once") {
  test::FakeRepository f;
  CountingStorage store(f.storage);
  Spool s;
  // Four at once: they back off together, and the first of them holds up the rest.
  s.config.archive.getAhead = 4;
  // A standby that replayed segment 5 and asks for 6, which the archive does not hold yet.
  const std::string next = "000000010000000000000007", after = "000000010000000000000008",
                    last = "00000001000000000000000B";
  using std::chrono::milliseconds;
  StandbyPrefetcher prefetcher(s, store, f.systemId, "000000010000000000000006",
                               {.poll = milliseconds(5),
                                .retryAbsent = milliseconds(20),
                                .retryAbsentMax = milliseconds(2000)});

  // Every 20 ms for 1.5 s would be 75 looks; 20, 40, 80, 160, 320, 640 ms apart is 7.
  std::this_thread::sleep_for(milliseconds(1500));
  const std::size_t looks = store.requests(next);
  CHECK(looks >= 3);
  CHECK(looks <= 12);
  CHECK(store.requests(after) + 1 >= looks);  // looked for with 7, in parallel
  CHECK(store.requests(last) == 0);           // 7 to 10 are the way ahead
  // Right after the next look (about 2.5 s after the first), which waits 2 s for the one after
  // it, PostgreSQL moves on (it fetched 6 itself): the segments ahead are looked for at once.
  const auto waited = std::chrono::steady_clock::now();
  while (store.requests(next) == looks && test::secondsSince(waited) < 10)
    std::this_thread::sleep_for(milliseconds(1));
  const std::size_t before = store.requests(after);
  prefetcher.ask(next);
  const auto asked = std::chrono::steady_clock::now();
  while ((store.requests(after) == before || store.requests(last) == 0) &&
         test::secondsSince(asked) < 5)
    std::this_thread::sleep_for(milliseconds(5));
  CHECK(store.requests(after) > before);
  CHECK(store.requests(last) > 0);
  CHECK(test::secondsSince(asked) < 1);
}

TEST_CASE("a segment the prefetcher cannot record is not left in the spool") {
  test::FakeRepository f;
  CountingStorage store(f.storage);
  test::TempDir source;
  const std::string fetched = "000000010000000000000007";
  REQUIRE(archive::pushWalFile(
              repo::Repository(f.storage, "main"),
              {.walPath = test::writeSegment(source.path(), {.systemId = f.systemId,
                                                             .segmentNumber = 7,
                                                             .segmentSize = test::kSegmentSize})})
              .outcome == archive::PushOutcome::Stored);
  Spool s;
  s.config.archive.getAhead = 1;
  // The spool is the prefetcher's already (it would empty it otherwise).
  spool::claim(s.folder, {.repository = s.identity.repository,
                          .stanzaId = repo::loadStanza(f.handle())->identity(),
                          .systemId = f.systemId});
  // Its record cannot be written: a folder stands where it goes (as a full disk would fail it).
  REQUIRE(::mkdir(spool::fetchedFolder(s.folder).c_str(), 0700) == 0);
  const std::string recordPath = spool::fetchedPath(s.folder, fetched + ".ok");
  REQUIRE(::mkdir(recordPath.c_str(), 0700) == 0);
  REQUIRE(::mkdir((recordPath + "/x").c_str(), 0700) ==
          0);  // not empty: rename() cannot replace it
  using std::chrono::milliseconds;
  // One attempt in the test's time (a failed fetch is tried again 5 x retryAbsent later).
  StandbyPrefetcher prefetcher(s, store, f.systemId, "000000010000000000000006",
                               {.poll = milliseconds(5), .retryAbsent = milliseconds(10000)});
  const auto start = std::chrono::steady_clock::now();
  while (store.requests(fetched) == 0 && test::secondsSince(start) < 5)
    std::this_thread::sleep_for(milliseconds(5));
  REQUIRE(store.requests(fetched) > 0);
  // The fetch ends (its marker goes) without a record; what it wrote goes with it, not only when
  // the prefetcher stops.
  while (::access(s.marker(fetched).c_str(), F_OK) == 0 && test::secondsSince(start) < 5)
    std::this_thread::sleep_for(milliseconds(5));
  REQUIRE(::access(s.marker(fetched).c_str(), F_OK) != 0);
  CHECK(::access(spool::fetchedPath(s.folder, fetched).c_str(), F_OK) != 0);
  CHECK_FALSE(spool::readFetched(s.folder, fetched));
}

TEST_CASE("the prefetcher counts each segment's CREATE TABLESPACE records in its record") {
  test::FakeRepository f;
  test::TempDir source;
  // Segment 7 creates two tablespaces; segment 8 holds other records.
  test::WalSegment seven(7), eight(8);
  seven.add(test::createTablespaceRecord(16400, "/srv/ts1"));
  seven.add(test::createTablespaceRecord(16401, "/srv/ts2"));
  eight.add(test::otherWalRecord(100));
  for (test::WalSegment* segment : {&seven, &eight}) {
    io::putLe64(&segment->bytes[24], f.systemId);  // the stanza's cluster
    const std::string path = source / segment->name();
    test::writeFile(path, segment->bytes);
    REQUIRE(archive::pushWalFile(repo::Repository(f.storage, "main"), {.walPath = path}).outcome ==
            archive::PushOutcome::Stored);
  }
  Spool s;
  s.config.archive.getAhead = 2;
  spool::claim(s.folder, {.repository = s.identity.repository,
                          .stanzaId = repo::loadStanza(f.handle())->identity(),
                          .systemId = f.systemId});
  StandbyPrefetcher prefetcher(s, f.storage, f.systemId, "000000010000000000000006",
                               {.poll = std::chrono::milliseconds(5)});
  const auto start = std::chrono::steady_clock::now();
  while ((!spool::readFetched(s.folder, seven.name()) ||
          !spool::readFetched(s.folder, eight.name())) &&
         test::secondsSince(start) < 10)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto counted = [&](const std::string& file) {
    auto record = spool::readFetched(s.folder, file);
    REQUIRE(record);
    REQUIRE(record->tablespaceRecords);
    return *record->tablespaceRecords;
  };
  CHECK(counted(seven.name()) == 2);
  CHECK(counted(eight.name()) == 0);
  // The hand-over gives the record to the caller (archive-get passes the count on).
  {
    auto context = s.context();
    context.systemId = f.systemId;
    auto taken = archive::takePrefetched(context, eight.name(), s.data / "RECOVERYXLOG");
    REQUIRE(taken);
    CHECK(taken->tablespaceRecords == 0u);
  }
}

TEST_CASE("a step of the wall clock neither stops a prefetcher early nor keeps it running") {
  test::FakeRepository f;
  Spool s;
  spool::claim(s.folder, {.repository = s.identity.repository,
                          .stanzaId = repo::loadStanza(f.handle())->identity(),
                          .systemId = f.systemId});
  const std::chrono::seconds idle{2};
  StandbyPrefetcher prefetcher(s, f.storage, f.systemId, "000000010000000000000006",
                               {.idle = idle, .poll = std::chrono::milliseconds(5)});
  const auto running = [&] { return ::access(spool::fetchedFolder(s.folder).c_str(), F_OK) == 0; };
  // It runs (the claim above emptied the spool; it makes its folder anew).
  const auto started = std::chrono::steady_clock::now();
  while (!running() && test::secondsSince(started) < 10)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE(running());
  // Requests, each half of `idle` after the one before, keep it running past `idle`.
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    prefetcher.ask("000000010000000000000006");
    CHECK(running());
  }
  const auto lastAsked = std::chrono::steady_clock::now();
  prefetcher.ask("000000010000000000000006");
  // What only touches the request is no request: its times set an hour back (as after the clock
  // stepped forward: before, that stopped it at once), an hour ahead (the clock set back), its
  // mode changed (which a stamp of inode and change time took for a request).
  const std::string wanted = s.folder + "/wanted";
  const auto touch = [&](int round) {
    const std::int64_t offset = round % 2 == 0 ? -3600 : 3600;
    const timespec times[2] = {{.tv_sec = std::time(nullptr) + offset, .tv_nsec = 0},
                               {.tv_sec = std::time(nullptr) + offset, .tv_nsec = 0}};
    ::utimensat(AT_FDCWD, wanted.c_str(), times, 0);
    ::chmod(wanted.c_str(), round % 2 == 0 ? 0600 : 0640);
  };
  touch(0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(running());
  // Touched on and on, but asked for nothing: it stops (and removes its spool) once `idle` has
  // passed on its own clock.
  for (int round = 1; running() && test::secondsSince(lastAsked) < 20; ++round) {
    touch(round);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK_FALSE(running());
  CHECK(std::chrono::steady_clock::now() - lastAsked >= idle);
}

// A standby's prefetcher against a fake S3 server that a test makes slow: a request lasts until
// the server answers or the prefetcher abandons it (libcurl's own stall limit is far away).
struct SlowS3Standby {
  test::FakeS3 server;
  Spool s;
  std::atomic<bool> abandon{false};
  std::future<void> done;  // destroyed first: it waits for the prefetcher, the server outlives it

  SlowS3Standby() {
    s.config.stanza = "main";
    test::useFakeS3(s.config, server);
    s.config.s3.timeout = 600;
    s.config.archive.getAhead = 1;
  }
  // The stanza, its spool claimed for it.
  repo::Repository createStanza() {
    repo::Repository repository = repo::openRepository(s.config);
    auto stanza = test::createStanza(repository.storage(),
                                     {.systemId = kSystemId, .segmentSize = test::kSegmentSize});
    spool::claim(s.folder, {.repository = s.identity.repository,
                            .stanzaId = stanza.identity(),
                            .systemId = kSystemId});
    return repository;
  }
  // Starts the prefetcher of a standby whose server asked for `wanted`.
  void start(const std::string& wanted) {
    std::ofstream(s.data / "standby.signal").flush();
    std::ofstream(s.data / "postmaster.pid").flush();
    spool::writeWanted(s.folder, wanted, s.identity.repository);
    done = std::async(std::launch::async, [this] {
      archive::runPrefetcher(s.context(), repo::openRepository(s.config, &abandon),
                             {.poll = std::chrono::milliseconds(5)}, &abandon);
    });
  }
  // Recovery ends: the prefetcher must stop at once, not when the server answers, and remove its
  // spool.
  void endRecovery() {
    ::unlink((s.data / "standby.signal").c_str());
    CHECK(done.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
    CHECK(::access(spool::fetchedFolder(s.folder).c_str(), F_OK) != 0);
  }
};

TEST_CASE("a prefetcher that must stop abandons its S3 fetches instead of waiting for them") {
  SlowS3Standby standby;
  const std::string fetched = "000000010000000000000007";
  {
    repo::Repository repository = standby.createStanza();
    test::TempDir source;
    REQUIRE(archive::pushWalFile(
                repository,
                {.walPath = test::writeSegment(source.path(), {.systemId = kSystemId,
                                                               .segmentNumber = 7,
                                                               .segmentSize = test::kSegmentSize})})
                .outcome == archive::PushOutcome::Stored);
  }
  // The server answers the segment's GET a minute late.
  standby.server.lie({.stallGetsMs = 60000, .stallGetsOf = fetched});
  standby.start("000000010000000000000006");
  const auto start = std::chrono::steady_clock::now();
  const std::string marker = standby.s.marker(fetched);
  while (::access(marker.c_str(), F_OK) != 0 && test::secondsSince(start) < 10)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(::access(marker.c_str(), F_OK) == 0);  // its fetch is under way
  standby.endRecovery();
}

TEST_CASE("a prefetcher that must stop abandons a history lookup a slow server holds") {
  SlowS3Standby standby;
  {
    repo::Repository repository = standby.createStanza();
    // Timeline 2, which the standby follows: its history is read before anything is fetched.
    const std::string path = repo::walObject("main", 1, *pg::parseWalName(pg::historyFileName(2)));
    repo::ObjectWriter writer(repository.storage().newWrite(path, {}), path,
                              {.compress = io::CompressType::None});
    writer.write(io::asBytes(std::string("1\t0/680000\tno recovery target specified\n")));
    writer.close();
    REQUIRE(writer.commit());
  }
  // The server answers the history's GET a minute late.
  standby.server.lie({.stallGetsMs = 60000, .stallGetsOf = "00000002.history"});
  standby.start("000000020000000000000006");
  // The lookup is under way once the next timeline's history was looked for (a request the
  // server records when it answers; the stalled GET follows it).
  const auto asked = [&] {
    for (const auto& request : standby.server.requests())
      if (request.find("00000003.history") != std::string::npos) return true;
    return false;
  };
  const auto start = std::chrono::steady_clock::now();
  while (!asked() && test::secondsSince(start) < 10)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE(asked());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  standby.endRecovery();
}

TEST_CASE("after a promotion elsewhere the prefetcher's looks stay apart while the standby waits") {
  test::FakeRepository f;
  CountingStorage store(f.storage);
  // Timeline 2 began inside segment 6 (0/680000), which timeline 1's archive ends before.
  f.history(2, "1\t0/680000\tno recovery target specified\n");
  Spool s;
  s.config.archive.getAhead = 1;
  using std::chrono::milliseconds;
  StandbyPrefetcher prefetcher(s, store, f.systemId, "000000020000000000000006",
                               {.poll = milliseconds(5),
                                .retryAbsent = milliseconds(20),
                                .retryAbsentMax = milliseconds(2000)});
  // PostgreSQL asks for segment 6 on each timeline in turn (every 5 s; here every 50 ms): the
  // segment after it, on timeline 2, backs off as it would with one request.
  const std::string next = "000000020000000000000007";
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; test::secondsSince(start) < 1.5; ++i) {
    prefetcher.ask(i % 2 ? "000000020000000000000006" : "000000010000000000000006");
    std::this_thread::sleep_for(milliseconds(50));
  }
  // Every 50 ms would be 30 looks; 20, 40, 80, 160, 320, 640 ms apart is 7.
  const std::size_t looks = store.requests(next);
  CHECK(looks >= 3);
  CHECK(looks <= 12);
}
