// Synthetic WAL files and temporary directories for tests.
#include "support/segment.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <stdexcept>

#include "common/base/process.h"
#include "common/files/file.h"

namespace tidemark::test {

io::Buffer makeSegment(const SegmentSpec& spec) {
  io::Buffer bytes(spec.segmentSize, 0);
  std::mt19937_64 random(spec.seed * 0x9E3779B97F4A7C15ULL + spec.segmentNumber);
  constexpr std::size_t kPage = 8192;
  std::size_t randomBytes = std::size_t(kPage * spec.randomFraction);
  for (std::size_t page = 0; page < bytes.size(); page += kPage) {
    for (std::size_t i = 64; i < 64 + randomBytes && page + i < bytes.size(); i += 8) {
      std::uint64_t r = random();
      for (int b = 0; b < 8 && page + i + b < bytes.size(); ++b)
        bytes[page + i + b] = std::uint8_t(r >> (8 * b));
    }
  }
  // XLogLongPageHeaderData at offset 0.
  std::uint8_t* h = bytes.data();
  std::fill(h, h + pg::kLongPageHeaderSize, 0);
  io::putLe16(h + 0, spec.pageMagic);
  io::putLe16(h + 2, pg::kXlpLongHeader);
  io::putLe32(h + 4, spec.timeline);
  io::putLe64(h + 8, spec.segmentNumber * spec.segmentSize);
  io::putLe64(h + 24, spec.systemId);
  io::putLe32(h + 32, spec.segmentSize);
  io::putLe32(h + 36, 8192);
  return bytes;
}

std::string segmentName(const SegmentSpec& spec) {
  return pg::segmentFileName(spec.timeline, spec.segmentNumber, spec.segmentSize);
}

std::string writeSegment(const std::string& dir, const SegmentSpec& spec) {
  std::string path = dir + "/" + segmentName(spec);
  io::Buffer bytes = makeSegment(spec);
  writeFile(path, io::ByteView(bytes));
  return path;
}

void writeFile(const std::string& path, io::ByteView content) {
  files::Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) throw std::runtime_error("cannot create " + path);
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n <= 0) throw std::runtime_error("cannot write " + path);
    done += std::size_t(n);
  }
}

void writeFile(const std::string& path, std::string_view content) {
  writeFile(path, io::asBytes(content));
}

io::Buffer readFile(const std::string& path) {
  auto fd = files::openForRead(path);
  if (!fd) throw std::runtime_error("no such file: " + path);
  io::MemorySink sink(std::size_t(1) << 32);
  files::streamFile(fd->get(), path, sink);
  return sink.data();
}

std::string readText(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return {};
  io::Buffer bytes = readFile(path);
  return std::string(bytes.begin(), bytes.end());
}

std::vector<std::string> listDirectory(const std::string& dir) {
  std::unique_ptr<DIR, int (*)(DIR*)> handle(::opendir(dir.c_str()), ::closedir);
  if (!handle) throw std::runtime_error("cannot list " + dir);
  std::vector<std::string> names;
  while (dirent* entry = ::readdir(handle.get())) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

ChangeDirectory::ChangeDirectory(const std::string& dir)
    : previous_(std::filesystem::current_path().string()) {
  std::filesystem::current_path(dir);
}

ChangeDirectory::~ChangeDirectory() {
  std::error_code ignored;
  std::filesystem::current_path(previous_, ignored);
}

ScopedEnv::ScopedEnv(const std::string& name, const std::optional<std::string>& value)
    : name_(name) {
  if (const char* was = std::getenv(name.c_str())) previous_ = was;
  if (value)
    ::setenv(name.c_str(), value->c_str(), 1);
  else
    ::unsetenv(name.c_str());
}

ScopedEnv::~ScopedEnv() {
  if (previous_)
    ::setenv(name_.c_str(), previous_->c_str(), 1);
  else
    ::unsetenv(name_.c_str());
}

StopNoted::StopNoted(int signal) {
  noteStopSignal(signal);
}

StopNoted::~StopNoted() {
  noteStopSignal(0);
}

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TempDir::TempDir(const std::string& prefix) {
  std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("mkdtemp failed for " + pattern);
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace tidemark::test
