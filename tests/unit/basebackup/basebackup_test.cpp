// Unit tests of basebackup/basebackup.h that need no server: waitForWal, which holds the backup
// back until the archive has every WAL segment it needs. takeBackup runs against PostgreSQL in
// tests/integration/tidemark_basebackup_test.cpp.
#include "basebackup/basebackup.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "common/pg/wal.h"
#include "common/repo/layout.h"
#include "support/check.h"
#include "support/fault_storage.h"
#include "support/forwarding_storage.h"
#include "support/memory_storage.h"
#include "support/segment.h"

using namespace tidemark;
using namespace std::chrono_literals;
using test::Containing;
using test::thrownError;
using test::what;

namespace {

constexpr std::uint32_t kSegmentSize = 16u << 20;

std::string segment(std::uint64_t number, std::uint32_t timeline = 1) {
  return pg::segmentFileName(timeline, number, kSegmentSize);
}

std::string objectPath(const std::string& name) {
  return repo::walObject("main", 1, *pg::parseWalName(name));
}

void archive(test::MemoryStorage& s, const std::string& name) {
  s.setObject(objectPath(name), io::Buffer{'w', 'a', 'l'});
}

// A storage in which each missing WAL object that info() is asked about appears right after
// the question: the archive receives one segment per poll.
class ArrivingStorage final : public test::ForwardingStorage {
 public:
  explicit ArrivingStorage(test::MemoryStorage& inner) : ForwardingStorage(inner), inner_(inner) {}
  std::optional<storage::ObjectInfo> info(const std::string& path) override {
    asked.push_back(path);
    auto found = inner_.info(path);
    if (!found) inner_.setObject(path, io::Buffer{'w', 'a', 'l'});
    return found;
  }

  std::vector<std::string> asked;

 private:
  test::MemoryStorage& inner_;
};

}  // namespace

TEST_CASE("waitForWal returns once the archive holds every segment of the backup, in order") {
  test::MemoryStorage s;
  const std::function<bool()> never;

  SUBCASE("segments already archived: it returns at once") {
    for (std::uint64_t n = 5; n <= 7; ++n)
      archive(s, segment(n));
    auto start = std::chrono::steady_clock::now();
    CHECK_NOTHROW(backup::waitForWal(repo::Repository(s, "main"), 1, 1, 5, 7, kSegmentSize, 0s,
                                     1000ms, never));
    CHECK(test::secondsSince(start) < 0.5);
  }
  SUBCASE("a backup within one segment needs only that one") {
    archive(s, segment(5));
    CHECK_NOTHROW(backup::waitForWal(repo::Repository(s, "main"), 1, 1, 5, 5, kSegmentSize, 0s,
                                     1000ms, never));
  }
  SUBCASE("segments that arrive while it waits are picked up at the next poll") {
    std::thread archiver([&] {
      for (std::uint64_t n = 5; n <= 7; ++n) {
        std::this_thread::sleep_for(20ms);
        archive(s, segment(n));
      }
    });
    auto start = std::chrono::steady_clock::now();
    try {
      backup::waitForWal(repo::Repository(s, "main"), 1, 1, 5, 7, kSegmentSize, 10s, 5ms, never);
    } catch (...) {
      archiver.join();
      throw;
    }
    double waited = test::secondsSince(start);
    archiver.join();
    CHECK(waited >= 0.05);
    CHECK(waited < 1.0);
    for (std::uint64_t n = 5; n <= 7; ++n)
      CHECK(s.object(objectPath(segment(n))).has_value());
  }
  SUBCASE("it asks for each segment in turn, never again for one it has seen") {
    ArrivingStorage arriving(s);
    backup::waitForWal(repo::Repository(arriving, "main"), 1, 1, 5, 7, kSegmentSize, 10s, 1ms,
                       never);
    // Each segment is missing when first asked about, then found at the next poll.
    CHECK(arriving.asked == std::vector<std::string>{objectPath(segment(5)), objectPath(segment(5)),
                                                     objectPath(segment(6)), objectPath(segment(6)),
                                                     objectPath(segment(7)),
                                                     objectPath(segment(7))});
  }
  SUBCASE("a range across a log boundary names the segments of the next log") {
    ArrivingStorage arriving(s);
    backup::waitForWal(repo::Repository(arriving, "main"), 1, 2, 0xFF, 0x101, kSegmentSize, 10s,
                       1ms, never);
    std::set<std::string> asked(arriving.asked.begin(), arriving.asked.end());
    CHECK(asked == std::set<std::string>{"main/wal/0000000200000000/0000000200000000000000FF",
                                         "main/wal/0000000200000001/000000020000000100000000",
                                         "main/wal/0000000200000001/000000020000000100000001"});
  }
  SUBCASE("other segment sizes name their segments accordingly") {
    archive(s, pg::segmentFileName(1, 0x40, 64u << 20));  // 64 segments per log
    CHECK(pg::segmentFileName(1, 0x40, 64u << 20) == "000000010000000100000000");
    CHECK_NOTHROW(backup::waitForWal(repo::Repository(s, "main"), 1, 1, 0x40, 0x40, 64u << 20, 0s,
                                     1ms, never));
  }
}

TEST_CASE("waitForWal's timeout runs from the last segment that arrived, not from its start") {
  test::MemoryStorage s;
  const std::function<bool()> never;
  // Six segments, one every 300 ms: 1.8 s in all, longer than the 1 s timeout.
  std::thread archiver([&] {
    for (std::uint64_t n = 5; n <= 10; ++n) {
      std::this_thread::sleep_for(300ms);
      archive(s, segment(n));
    }
  });
  auto start = std::chrono::steady_clock::now();
  CHECK_NOTHROW(
      backup::waitForWal(repo::Repository(s, "main"), 1, 1, 5, 10, kSegmentSize, 1s, 10ms, never));
  CHECK(test::secondsSince(start) > 1.0);
  archiver.join();
}

TEST_CASE("waitForWal gives up with Timeout naming the first missing segment, and honours a stop") {
  test::MemoryStorage s;
  const std::function<bool()> never;

  SUBCASE("a missing segment past the timeout is Timeout, saying how far the archive got") {
    archive(s, segment(5));
    archive(s, segment(7));  // archived out of order: 6 is still the first missing one
    Error e = thrownError([&] {
      backup::waitForWal(repo::Repository(s, "main"), 1, 1, 5, 7, kSegmentSize, 0s, 1ms, never);
    });
    CHECK(e.code() == ErrorCode::Timeout);
    CHECK(what(e) ==
          "the archive did not receive WAL file 000000010000000000000006 within 0 s (1 archived "
          "of the 3 segments the backup needs); no backup was recorded");
    CHECK(e.hint() == Containing("'tidemark check' proves archiving end to end"));
    CHECK(e.hint() == Containing("backup.wal-timeout"));
  }
  SUBCASE("with nothing archived, the first segment is missing") {
    Error e = thrownError([&] {
      backup::waitForWal(repo::Repository(s, "main"), 1, 1, 5, 5, kSegmentSize, 0s, 1ms, never);
    });
    CHECK(e.code() == ErrorCode::Timeout);
    CHECK(what(e) ==
          "the archive did not receive WAL file 000000010000000000000005 within 0 s (0 archived "
          "of the 1 segment the backup needs); no backup was recorded");
  }
  SUBCASE("a partial segment, another timeline's or another stanza's does not count") {
    s.setObject(repo::walObject("main", 1, *pg::parseWalName(segment(5) + ".partial")),
                io::Buffer{'p'});
    archive(s, segment(5, 2));
    s.setObject(repo::walObject("other", 1, *pg::parseWalName(segment(5))), io::Buffer{'o'});
    Error e = thrownError([&] {
      backup::waitForWal(repo::Repository(s, "main"), 1, 1, 5, 5, kSegmentSize, 0s, 1ms, never);
    });
    CHECK(e.code() == ErrorCode::Timeout);
    CHECK(what(e) == Containing("WAL file 000000010000000000000005 within"));
  }
  SUBCASE("a stop request while waiting is Interrupted, well before the timeout") {
    std::atomic<int> polls{0};
    auto stop = [&] { return ++polls >= 3; };
    auto start = std::chrono::steady_clock::now();
    Error e = thrownError([&] {
      backup::waitForWal(repo::Repository(s, "main"), 1, 1, 5, 7, kSegmentSize, 60s, 10ms, stop);
    });
    CHECK(e.code() == ErrorCode::Interrupted);
    CHECK(what(e) == "the base backup was interrupted; no backup was recorded");
    CHECK(polls == 3);
    CHECK(test::secondsSince(start) < 1.0);
  }
  SUBCASE("a stop request is noticed within a long poll interval") {
    auto start = std::chrono::steady_clock::now();
    auto stop = [&] { return test::secondsSince(start) > 0.05; };
    Error e = thrownError([&] {
      backup::waitForWal(repo::Repository(s, "main"), 1, 1, 5, 7, kSegmentSize, 60s, 60000ms, stop);
    });
    CHECK(e.code() == ErrorCode::Interrupted);
    CHECK(test::secondsSince(start) < 1.0);
  }
  SUBCASE("a storage failure is not waited out: it passes through") {
    test::FaultStorage faulty(s, {.failInfo = true});
    Error e = thrownError([&] {
      backup::waitForWal(repo::Repository(faulty, "main"), 1, 1, 5, 7, kSegmentSize, 60s, 10ms,
                         never);
    });
    CHECK(e.code() == ErrorCode::Storage);
    CHECK(what(e) == Containing("injected fault:"));
  }
}
