// archive-push killed with SIGKILL at random moments: the repository never shows a damaged
// object, and the next push of the same file succeeds.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <thread>

#include "cluster.h"
#include "common/repo/layout.h"
#include "common/repo/object.h"
#include "common/repo/stanza.h"
#include "common/storage/posix/posix.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace tidemark::test {

namespace {

// Verifies every object in the repository (throws on damage) and returns how many there are.
std::size_t verifyRepository(storage::Storage& storage) {
  std::size_t objects = 0;
  std::function<void(const std::string&)> walk = [&](const std::string& dir) {
    storage.list(dir, [&](const storage::ListEntry& entry) {
      std::string path = storage::joinPath(dir, entry.name);
      if (entry.directory) return walk(path);
      if (entry.name == "stanza.json") return;
      repo::verifyObject(storage, path);
      ++objects;
    });
  };
  walk("");
  return objects;
}

// Hidden names are temporary files of unfinished writes.
std::size_t hiddenFiles(const std::string& dir) {
  std::size_t hidden = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.path().filename().string().front() == '.') ++hidden;
  return hidden;
}

std::string objectPath(const SegmentSpec& spec) {
  return repo::walObject("main", 1, *pg::parseWalName(segmentName(spec)));
}

bool tmpfileSupported(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY, 0600);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

}  // namespace

TEST_CASE_TEMPLATE(
    "archive-push killed at random moments never leaves a visible object that fails verification",
    Repo, PosixRepo, S3Repo) {
  Workspace ws(Repo::value);
  ws.createStanza();
  auto repository = ws.storage();
  storage::Storage& storage = *repository;
  // posix: the repository folder, to look for temporary files the kills left.
  const std::string folder = ws.path("repo");
  std::string source = ws.makeDir("source");
  const char* compressions[] = {"zstd", "lz4", "none"};
  auto seed = std::random_device{}();
  std::mt19937 random(seed);
  INFO("random seed ", seed);

  // How long an uninterrupted push of each kind takes here, so kills land across its duration.
  std::uint64_t nextSegment = 1;
  std::map<std::string, std::chrono::microseconds> typical;
  for (const char* compress : compressions) {
    std::vector<std::chrono::microseconds> times;
    for (int i = 0; i < 3; ++i) {
      SegmentSpec spec{.segmentNumber = nextSegment++};
      std::string file = writeSegment(source, spec);
      auto started = std::chrono::steady_clock::now();
      REQUIRE(run({ws.push(), "--config", ws.config(), std::string("--compress-type=") + compress,
                   file}) == 0);
      times.push_back(std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::steady_clock::now() - started));
    }
    std::sort(times.begin(), times.end());
    typical[compress] = times[1];
  }
  const std::size_t warmupObjects = nextSegment - 1;

  constexpr int kRounds = 60;
  int killedMidway = 0;
  for (int round = 0; round < kRounds; ++round) {
    SegmentSpec spec{.segmentNumber = nextSegment++, .seed = std::uint64_t(round)};
    const char* compress = compressions[round % 3];
    std::string file = writeSegment(source, spec);
    std::vector<std::string> argv{ws.push(), "--config", ws.config(),
                                  std::string("--compress-type=") + compress, file};
    {
      Process push(argv);
      std::uniform_int_distribution<long> delay(0, long(typical[compress].count()));
      std::this_thread::sleep_for(std::chrono::microseconds(delay(random)));
      ::kill(push.pid(), SIGKILL);
      if (push.wait() == 128 + SIGKILL) ++killedMidway;
    }
    CAPTURE(round);
    // What the kill left: the object is either absent or whole (earlier objects are not touched
    // by this push; they are all verified again at the end).
    CHECK_NOTHROW(repo::verifyObject(storage, objectPath(spec)));
    CHECK_NOTHROW(repo::loadStanza(repo::Repository(storage, "main")));
    if (ws.backend() == Backend::Posix && tmpfileSupported(folder)) CHECK(hiddenFiles(folder) == 0);

    // PostgreSQL retries: the retry must succeed whatever state the kill left.
    REQUIRE(run(argv, {.stderrPath = ws.path("retry.log")}) == 0);
    CHECK(repo::verifyObject(storage, objectPath(spec)));
  }
  CHECK(verifyRepository(storage) == warmupObjects + kRounds);
  MESSAGE(killedMidway, " of ", kRounds,
          " pushes were killed before they finished (typical push: zstd ",
          typical["zstd"].count() / 1000, " ms, lz4 ", typical["lz4"].count() / 1000, " ms, none ",
          typical["none"].count() / 1000, " ms)");
  // Otherwise the test proved nothing about interrupted pushes.
  CHECK(killedMidway >= kRounds / 3);
}

}  // namespace tidemark::test
