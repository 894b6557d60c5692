// Synthetic WAL files for tests: a segment with a valid long page header and filler content.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/io/sink.h"
#include "common/pg/wal.h"

namespace tidemark::test {

struct SegmentSpec {
  std::uint64_t systemId = 7000000000000000001ULL;
  std::uint32_t timeline = 1;
  std::uint64_t segmentNumber = 1;
  std::uint32_t segmentSize = 16u << 20;
  std::uint16_t pageMagic = 0xD110;  // PostgreSQL 15
  // Varies the content: segments with different seeds differ; the same seed gives the same bytes.
  std::uint64_t seed = 1;
  // Fraction of each 8 KiB page filled with pseudo-random bytes (the rest is zeros), like WAL
  // that compresses several times over.
  double randomFraction = 0.25;
};

// The segment's bytes.
io::Buffer makeSegment(const SegmentSpec& spec);
// Its file name, e.g. 000000010000000000000001.
std::string segmentName(const SegmentSpec& spec);
// Writes it into `dir` under its name and returns the path.
std::string writeSegment(const std::string& dir, const SegmentSpec& spec);

// Writes `content` to `path` (replacing it); throws on failure.
void writeFile(const std::string& path, std::string_view content);
void writeFile(const std::string& path, io::ByteView content);
// Reads a whole file; throws when it cannot.
io::Buffer readFile(const std::string& path);
// The text of a file, or "" when it does not exist (a log a process may not have written).
std::string readText(const std::string& path);

// Every name in `dir`, hidden ones included (not "." and ".."), sorted; throws when it cannot.
std::vector<std::string> listDirectory(const std::string& dir);
// Whether anything (file, directory, dangling symlink) exists at `path`.
bool exists(const std::string& path);

// Changes the working directory for its lifetime (tests are single-threaded).
class ChangeDirectory {
 public:
  explicit ChangeDirectory(const std::string& dir);
  ~ChangeDirectory();
  ChangeDirectory(const ChangeDirectory&) = delete;
  ChangeDirectory& operator=(const ChangeDirectory&) = delete;

 private:
  std::string previous_;
};

// Sets (or, with nullopt, unsets) environment variable `name` for its lifetime, then puts back
// what was there (tests are single-threaded).
class ScopedEnv {
 public:
  ScopedEnv(const std::string& name, const std::optional<std::string>& value);
  ~ScopedEnv();
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> previous_;
};

// A stop signal noted (as cli's handler notes SIGINT) for its lifetime, forgotten after.
class StopNoted {
 public:
  explicit StopNoted(int signal);
  ~StopNoted();
  StopNoted(const StopNoted&) = delete;
  StopNoted& operator=(const StopNoted&) = delete;
};

// Seconds since `start` on the steady clock.
double secondsSince(std::chrono::steady_clock::time_point start);

// A fresh temporary directory, removed with everything in it on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "tidemark-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace tidemark::test
