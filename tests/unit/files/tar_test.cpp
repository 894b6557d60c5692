// Unit tests of common/io/tar.h: the streaming reader on GNU tar's and hand-made archives, and the
// extractor on honest and hostile ones.
#include "common/files/tar.h"

#include <dirent.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <random>

#include "support/check.h"
#include "support/segment.h"

using namespace tidemark;
using namespace tidemark::io;
using namespace tidemark::files;
using test::Containing;
using test::listDirectory;
using test::readFile;
using test::thrownError;
using test::what;
using test::writeFile;

namespace {

// write() chunk sizes every archive is fed in; 0 is the whole archive at once.
const std::size_t kChunks[] = {1, 7, 511, 512, 513, 0};

using Strings = std::vector<std::string>;

// --- A small tar writer, for archives GNU tar will not write ------------------------------------

constexpr std::string_view kPosixMagic{
    "ustar\0"
    "00",
    8};
constexpr std::string_view kGnuMagic{"ustar  \0", 8};

struct Header {
  std::string name;
  char type = '0';
  std::uint64_t size = 0;  // for files: the data's size when left 0
  std::uint32_t mode = 0644;
  std::int64_t mtime = 1700000000;
  std::string link;
  std::string prefix;
  std::string_view magic = kPosixMagic;
  bool base256Size = false;            // GNU base-256, as PostgreSQL writes sizes of 8 GiB and more
  std::optional<std::string> rawSize;  // the size field's bytes, as they are
  bool signedChecksum = false;         // sum the bytes as signed chars, as some old tars did
  std::optional<std::uint32_t> checksum;
};

void putField(Buffer& b, std::size_t at, std::size_t length, std::string_view value) {
  std::memcpy(&b[at], value.data(), std::min(length, value.size()));
}

// Octal with a NUL, as PostgreSQL's tarCreateHeader() writes numbers.
void putOctal(Buffer& b, std::size_t at, std::size_t length, std::uint64_t value) {
  putField(b, at, length, fmt::format("{:0{}o}", value, length - 1));
}

void putBase256(Buffer& b, std::size_t at, std::size_t length, std::int64_t value) {
  auto bits = std::uint64_t(value);
  for (std::size_t i = 0; i < length; ++i)
    b[at + length - 1 - i] = i < 8 ? std::uint8_t(bits >> (8 * i)) : (value < 0 ? 0xff : 0);
  b[at] = value < 0 ? 0xff : 0x80;
}

Buffer headerBlock(const Header& h) {
  Buffer b(512, 0);
  putField(b, 0, 100, h.name);
  putOctal(b, 100, 8, h.mode);
  putOctal(b, 108, 8, 1000);
  putOctal(b, 116, 8, 1000);
  if (h.rawSize) {
    putField(b, 124, 12, *h.rawSize);
  } else if (h.base256Size) {
    putBase256(b, 124, 12, std::int64_t(h.size));
  } else {
    putOctal(b, 124, 12, h.size);
  }
  if (h.mtime < 0) {
    putBase256(b, 136, 12, h.mtime);
  } else {
    putOctal(b, 136, 12, std::uint64_t(h.mtime));
  }
  b[156] = std::uint8_t(h.type);
  putField(b, 157, 100, h.link);
  putField(b, 257, 8, h.magic);
  putField(b, 265, 32, "postgres");
  putField(b, 297, 32, "postgres");
  putField(b, 345, 155, h.prefix);
  std::memset(&b[148], ' ', 8);
  std::int64_t sum = 0;
  for (auto c : b)
    sum += h.signedChecksum ? std::int64_t(static_cast<signed char>(c)) : c;
  putOctal(b, 148, 7, h.checksum ? *h.checksum : std::uint64_t(sum) & 0777777);
  return b;
}

class TarBuilder {
 public:
  // A header, then `data` padded to a block.
  TarBuilder& add(Header h, std::string_view data = {}) {
    if (h.size == 0 && !h.rawSize) h.size = data.size();
    append(headerBlock(h));
    bytes.insert(bytes.end(), data.begin(), data.end());
    pad();
    return *this;
  }
  TarBuilder& file(const std::string& name, std::string_view content, std::uint32_t mode = 0644) {
    return add({.name = name, .mode = mode}, content);
  }
  TarBuilder& directory(const std::string& name, std::uint32_t mode = 0755) {
    return add({.name = name, .type = '5', .mode = mode});
  }
  TarBuilder& symlink(const std::string& name, const std::string& target) {
    return add({.name = name, .type = '2', .mode = 0777, .link = target});
  }
  TarBuilder& hardLink(const std::string& name, const std::string& target) {
    return add({.name = name, .type = '1', .link = target});
  }
  // A pax extended header ('x', or 'g' for a global one) with these records.
  TarBuilder& pax(const std::vector<std::pair<std::string, std::string>>& records,
                  char type = 'x') {
    std::string data;
    for (const auto& [key, value] : records)
      data += paxRecord(key, value);
    return add({.name = "PaxHeaders/x", .type = type}, data);
  }
  // A GNU long name ('L') or long link name ('K').
  TarBuilder& gnuLong(char type, const std::string& value) {
    return add({.name = "././@LongLink", .type = type, .magic = kGnuMagic},
               std::string_view(value.c_str(), value.size() + 1));
  }
  TarBuilder& end() {
    bytes.resize(bytes.size() + 1024, 0);
    return *this;
  }
  TarBuilder& append(ByteView more) {
    bytes.insert(bytes.end(), more.begin(), more.end());
    return *this;
  }
  void pad() { bytes.resize((bytes.size() + 511) / 512 * 512, 0); }

  static std::string paxRecord(const std::string& key, const std::string& value) {
    const std::size_t body = key.size() + value.size() + 3;  // ' ', '=', '\n'
    std::size_t length = body + 1;
    while (std::to_string(length).size() + body != length)
      length = std::to_string(length).size() + body;
    return std::to_string(length) + " " + key + "=" + value + "\n";
  }

  Buffer bytes;
};

// --- Feeding and recording ----------------------------------------------------------------------

void feed(Sink& sink, ByteView bytes, std::size_t chunk) {
  if (chunk == 0) chunk = std::max<std::size_t>(bytes.size(), 1);
  for (std::size_t at = 0; at < bytes.size(); at += chunk)
    sink.write(bytes.subspan(at, std::min(chunk, bytes.size() - at)));
}

struct Seen {
  TarEntry entry;
  std::string data;
  bool ended = false;
};

// Keeps every entry and its data, and counts Handler calls out of order (checked by readAll).
class Recorder final : public TarReader::Handler {
 public:
  void begin(const TarEntry& entry) override {
    if (!seen.empty() && !seen.back().ended) ++misordered;
    seen.push_back({entry, {}, false});
  }
  void data(ByteView bytes) override {
    if (seen.empty() || seen.back().ended || seen.back().entry.type != TarEntry::Type::File) {
      ++misordered;
      return;
    }
    seen.back().data.append(asText(bytes));
  }
  void end() override {
    if (seen.empty() || seen.back().ended || seen.back().data.size() != seen.back().entry.size)
      ++misordered;
    if (!seen.empty()) seen.back().ended = true;
  }
  std::vector<Seen> seen;
  int misordered = 0;
};

std::vector<Seen> readAll(ByteView archive, std::size_t chunk) {
  Recorder recorder;
  TarReader reader(recorder);
  feed(reader, archive, chunk);
  reader.close();
  CHECK(recorder.misordered == 0);
  CHECK(reader.entries() == recorder.seen.size());
  if (!recorder.seen.empty()) CHECK(recorder.seen.back().ended);
  return recorder.seen;
}

Error readError(ByteView archive, std::size_t chunk) {
  return thrownError([&] {
    Recorder recorder;
    TarReader reader(recorder);
    feed(reader, archive, chunk);
    reader.close();
  });
}

const char* typeName(TarEntry::Type type) {
  switch (type) {
    case TarEntry::Type::File:
      return "file";
    case TarEntry::Type::Directory:
      return "dir";
    case TarEntry::Type::Symlink:
      return "symlink";
    case TarEntry::Type::HardLink:
      return "hardlink";
    case TarEntry::Type::Other:
      return "other";
  }
  return "?";
}

// One line per entry: what a comparison of two readings looks at.
Strings describe(const std::vector<Seen>& seen) {
  Strings out;
  for (const auto& s : seen)
    out.push_back(fmt::format("{} {} size={} mode={:o} mtime={} link={} data={}", s.entry.path,
                              typeName(s.entry.type), s.entry.size, s.entry.mode, s.entry.mtime,
                              s.entry.linkTarget, std::hash<std::string>{}(s.data)));
  return out;
}

ExtractStats extract(ByteView archive, const std::string& root, std::size_t chunk,
                     ExtractOptions options = {}) {
  TarExtractor extractor(root, options);
  TarReader reader(extractor);
  feed(reader, archive, chunk);
  reader.close();
  return extractor.finish();
}

Error extractError(ByteView archive, const std::string& root) {
  return thrownError([&] { extract(archive, root, 0); });
}

// --- Trees on disk ------------------------------------------------------------------------------

std::string pattern(std::size_t size, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  std::string out(size, '\0');
  for (auto& c : out)
    c = char('a' + random() % 26);
  return out;
}

void makeDir(const std::string& path, mode_t mode = 0755) {
  REQUIRE(::mkdir(path.c_str(), 0700) == 0);
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

void makeFile(const std::string& path, std::string_view content, mode_t mode = 0644) {
  writeFile(path, content);
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

void makeSymlink(const std::string& target, const std::string& path) {
  REQUIRE(::symlink(target.c_str(), path.c_str()) == 0);
}

void setMtime(const std::string& path, std::int64_t mtime) {
  const timespec times[2] = {{time_t(mtime), 0}, {time_t(mtime), 0}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0);
}

// Every name below `root` (not root itself), recursively, sorted.
void walkTree(const std::string& root, const std::string& rel, Strings& out) {
  for (const auto& name : listDirectory(rel.empty() ? root : root + "/" + rel)) {
    const std::string path = rel.empty() ? name : rel + "/" + name;
    out.push_back(path);
    struct stat st {};
    REQUIRE(::lstat((root + "/" + path).c_str(), &st) == 0);
    if (S_ISDIR(st.st_mode)) walkTree(root, path, out);
  }
}

// One line per name below `root`: type, mode, mtime, and a file's content or a symlink's target.
Strings describeTree(const std::string& root) {
  Strings names, out;
  walkTree(root, "", names);
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    const std::string path = root + "/" + name;
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t n = ::readlink(path.c_str(), target, sizeof target);
      REQUIRE(n >= 0);
      out.push_back(fmt::format("{} symlink -> {} mtime={}", name, std::string(target, n),
                                st.st_mtim.tv_sec));
    } else if (S_ISDIR(st.st_mode)) {
      out.push_back(
          fmt::format("{} dir mode={:o} mtime={}", name, st.st_mode & 07777, st.st_mtim.tv_sec));
    } else {
      Buffer content = readFile(path);
      out.push_back(fmt::format("{} file mode={:o} mtime={} size={} data={}", name,
                                st.st_mode & 07777, st.st_mtim.tv_sec, content.size(),
                                std::hash<std::string_view>{}(asText(content))));
    }
  }
  return out;
}

// One line per string, so that a failed comparison shows both sides.
std::string lines(const Strings& strings) {
  std::string out;
  for (const auto& s : strings)
    out += s + "\n";
  return out;
}

ino_t inode(const std::string& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_ino;
}

mode_t modeOf(const std::string& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

const std::string kDeepA(60, 'A'), kDeepB(60, 'B'), kDeepC(33, 'C'), kDeepName(100, 'N');
const std::string kDeepDir = kDeepA + "/" + kDeepB + "/" + kDeepC;  // 155: a full ustar prefix
const std::string kLongP(120, 'p'), kLongQ(120, 'q'), kLongR(120, 'r');

// A tree like a small PostgreSQL data directory, plus the name-length edges of ustar: names of
// 99 and 100 bytes, a 256-byte path (155-byte prefix + 100-byte name), a 100-byte link target.
// With `longNames`, also what only GNU and pax archives hold: a 101-byte name, a 370-byte path,
// long symlink and hard link targets.
void makeTree(const std::string& src, bool longNames) {
  makeFile(src + "/PG_VERSION", "15\n", 0600);
  makeFile(src + "/empty", "", 0600);
  makeFile(src + "/postgresql.auto.conf", "# Do not edit this file manually!\n", 0600);
  makeDir(src + "/base", 0700);
  makeDir(src + "/base/1", 0700);
  makeFile(src + "/base/1/1259", pattern(65536 + 1000, 1), 0600);  // more than one 64 KiB chunk
  makeFile(src + "/base/1/1259_fsm", std::string(3 * 8192, '\0'), 0600);
  makeFile(src + "/base/1/PG_VERSION", "15\n", 0640);
  makeDir(src + "/global", 0750);
  makeFile(src + "/global/pg_control", pattern(8192, 2), 0600);
  makeDir(src + "/pg_wal", 0700);
  makeDir(src + "/pg_wal/archive_status", 0700);
  makeDir(src + "/emptydir", 0750);
  makeFile(src + "/run.sh", "#!/bin/sh\n", 0755);
  makeFile(src + "/readonly", "r", 0444);
  makeFile(src + "/" + std::string(99, 'x'), "99", 0600);
  makeFile(src + "/" + std::string(100, 'y'), "100", 0600);
  makeDir(src + "/" + kDeepA);
  makeDir(src + "/" + kDeepA + "/" + kDeepB);
  makeDir(src + "/" + kDeepDir);
  makeFile(src + "/" + kDeepDir + "/" + kDeepName, "deep", 0600);
  makeSymlink("base/1/1259", src + "/link");
  makeSymlink("base", src + "/dirlink");
  makeSymlink("../PG_VERSION", src + "/base/up");
  makeSymlink("missing/dangling", src + "/dangling");
  makeSymlink(std::string(100, 'y'), src + "/link100");
  makeFile(src + "/hard1", "linked", 0600);
  REQUIRE(::link((src + "/hard1").c_str(), (src + "/hard2").c_str()) == 0);
  Strings dirs = {"base/1", "base",     "global", "pg_wal/archive_status",
                  "pg_wal", "emptydir", kDeepDir, kDeepA + "/" + kDeepB,
                  kDeepA};
  if (longNames) {
    makeDir(src + "/long");
    makeFile(src + "/long/" + std::string(101, 'n'), "101", 0600);
    makeDir(src + "/long/" + kLongP);
    makeDir(src + "/long/" + kLongP + "/" + kLongQ);
    const std::string longFile = "long/" + kLongP + "/" + kLongQ + "/" + kLongR;
    makeFile(src + "/" + longFile, pattern(5000, 3), 0640);
    makeSymlink(kLongP + "/" + kLongQ + "/" + kLongR, src + "/long/sym");
    REQUIRE(::link((src + "/" + longFile).c_str(), (src + "/long/hard").c_str()) == 0);
    dirs.insert(dirs.begin(), {"long/" + kLongP + "/" + kLongQ, "long/" + kLongP, "long"});
  }
  Strings names;
  walkTree(src, "", names);
  std::int64_t mtime = 1600000000;
  for (const auto& name : names)
    setMtime(src + "/" + name, mtime += 100);
  for (const auto& dir : dirs)
    setMtime(src + "/" + dir, mtime += 100);  // children first
}

// Runs GNU tar; `what` is what follows -cf <archive>.
Buffer gnuTar(const std::string& format, const std::string& archive, const std::string& what) {
  const std::string command =
      fmt::format("tar --format={} -cf '{}' {} 2>&1", format, archive, what);
  INFO(command);
  REQUIRE(std::system(command.c_str()) == 0);
  return readFile(archive);
}

// The top-level names of `dir`, quoted for the shell.
std::string topLevel(const std::string& dir) {
  std::string out = "-C '" + dir + "'";
  for (const auto& name : listDirectory(dir))
    out += " '" + name + "'";
  return out;
}

}  // namespace

TEST_CASE("TarReader reports what GNU tar archived, in any format and any chunk size") {
  test::TempDir dir;
  makeDir(dir / "src");
  makeTree(dir / "src", false);
  std::optional<Strings> first;
  for (const char* format : {"ustar", "gnu", "pax"}) {
    CAPTURE(format);
    const Buffer archive = gnuTar(format, dir / "archive.tar", topLevel(dir / "src"));
    std::vector<Seen> whole = readAll(archive, 0);
    // The same entries whatever the format: extended headers are never reported.
    if (!first) first = describe(whole);
    CHECK(lines(describe(whole)) == lines(*first));
    for (std::size_t chunk : kChunks) {
      CAPTURE(chunk);
      CHECK(lines(describe(readAll(archive, chunk))) == lines(*first));
    }
    std::map<std::string, const Seen*> byPath;
    for (const auto& s : whole)
      byPath[s.entry.path] = &s;
    REQUIRE(byPath.count("base/1/1259"));
    CHECK(byPath["base/1/1259"]->entry.size == 66536);
    CHECK(byPath["base/1/1259"]->data == pattern(66536, 1));
    CHECK(byPath["base/1/1259"]->entry.mode == 0600);
    REQUIRE(byPath.count("empty"));
    CHECK(byPath["empty"]->entry.type == TarEntry::Type::File);
    CHECK(byPath["empty"]->entry.size == 0);
    REQUIRE(byPath.count("base/1"));  // GNU tar writes "base/1/": no trailing '/'
    CHECK(byPath["base/1"]->entry.type == TarEntry::Type::Directory);
    CHECK(byPath["base/1"]->entry.size == 0);
    REQUIRE(byPath.count("link"));
    CHECK(byPath["link"]->entry.type == TarEntry::Type::Symlink);
    CHECK(byPath["link"]->entry.linkTarget == "base/1/1259");
    REQUIRE(byPath.count("link100"));
    CHECK(byPath["link100"]->entry.linkTarget == std::string(100, 'y'));
    REQUIRE(byPath.count("hard2"));
    CHECK(byPath["hard2"]->entry.type == TarEntry::Type::HardLink);
    CHECK(byPath["hard2"]->entry.linkTarget == "hard1");
    CHECK(byPath.count(std::string(99, 'x')));
    CHECK(byPath.count(std::string(100, 'y')));
    REQUIRE(byPath.count(kDeepDir + "/" + kDeepName));
    CHECK(byPath[kDeepDir + "/" + kDeepName]->data == "deep");
    CHECK(byPath["run.sh"]->entry.mode == 0755);
    CHECK(byPath["base/1/1259"]->entry.mtime > 1600000000);
  }
}

TEST_CASE("TarReader reads long names and link names from GNU and pax archives") {
  test::TempDir dir;
  makeDir(dir / "src");
  makeTree(dir / "src", true);
  const std::string longFile = "long/" + kLongP + "/" + kLongQ + "/" + kLongR;
  std::optional<Strings> first;
  for (const char* format : {"gnu", "pax"}) {
    CAPTURE(format);
    const Buffer archive = gnuTar(format, dir / "archive.tar", topLevel(dir / "src"));
    for (std::size_t chunk : kChunks) {
      CAPTURE(chunk);
      std::vector<Seen> seen = readAll(archive, chunk);
      if (!first) first = describe(seen);
      CHECK(lines(describe(seen)) == lines(*first));
      std::map<std::string, const Seen*> byPath;
      for (const auto& s : seen)
        byPath[s.entry.path] = &s;
      CHECK(byPath.count("long/" + std::string(101, 'n')));
      REQUIRE(byPath.count(longFile));
      CHECK(byPath[longFile]->data == pattern(5000, 3));
      REQUIRE(byPath.count("long/sym"));
      CHECK(byPath["long/sym"]->entry.linkTarget == kLongP + "/" + kLongQ + "/" + kLongR);
      REQUIRE(byPath.count("long/hard"));
      CHECK(byPath["long/hard"]->entry.type == TarEntry::Type::HardLink);
      CHECK(byPath["long/hard"]->entry.linkTarget == longFile);
    }
  }
}

TEST_CASE("TarReader parses hand-made headers: PostgreSQL's, GNU's, pax's and old ones") {
  SUBCASE("a PostgreSQL-style archive: trailing '/' on directories and symlinks, NUL-ended octal") {
    TarBuilder tar;
    tar.directory("base/", 0700)
        .directory("base/1/", 0700)
        .file("base/1/112", std::string(8192, 'q'), 0600)
        .file("backup_label", "START WAL LOCATION: 0/2000028\n", 0600)
        .add({.name = "pg_tblspc/16385/", .type = '2', .mode = 0777, .link = "../ts"})
        .end();
    for (std::size_t chunk : kChunks) {
      CAPTURE(chunk);
      auto seen = readAll(tar.bytes, chunk);
      REQUIRE(seen.size() == 5);
      CHECK(seen[0].entry.path == "base");
      CHECK(seen[0].entry.type == TarEntry::Type::Directory);
      CHECK(seen[0].entry.mode == 0700);
      CHECK(seen[0].entry.mtime == 1700000000);
      CHECK(seen[2].entry.path == "base/1/112");
      CHECK(seen[2].data == std::string(8192, 'q'));
      CHECK(seen[3].data == "START WAL LOCATION: 0/2000028\n");
      CHECK(seen[4].entry.path == "pg_tblspc/16385");
      CHECK(seen[4].entry.type == TarEntry::Type::Symlink);
      CHECK(seen[4].entry.linkTarget == "../ts");
    }
  }
  SUBCASE("paths are normalised: no './', no empty or '.' components, no trailing '/'") {
    TarBuilder tar;
    tar.directory("./")
        .file("./a//b/./c/", "x")
        .directory(".//d/./")
        .hardLink("./e", "./a/./b/c")
        .symlink("./f/", "./keep//as/is/")
        .file("/abs/olute", "")
        .file("x/../y", "");
    auto seen = readAll(tar.bytes, 0);
    REQUIRE(seen.size() == 7);
    CHECK(seen[0].entry.path == "");
    CHECK(seen[1].entry.path == "a/b/c");
    CHECK(seen[2].entry.path == "d");
    CHECK(seen[3].entry.linkTarget == "a/b/c");
    CHECK(seen[4].entry.path == "f");
    CHECK(seen[4].entry.linkTarget == "./keep//as/is/");  // a symlink's target is kept as stored
    CHECK(seen[5].entry.path == "/abs/olute");            // kept for the extractor to refuse
    CHECK(seen[6].entry.path == "x/../y");
  }
  SUBCASE("a ustar name is its prefix, '/', and its name; a 100-byte name has no NUL") {
    TarBuilder tar;
    tar.add({.name = kDeepName, .prefix = kDeepDir}, "deep").file(std::string(100, 'y'), "100");
    auto seen = readAll(tar.bytes, 0);
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].entry.path == kDeepDir + "/" + kDeepName);
    CHECK(seen[1].entry.path == std::string(100, 'y'));
  }
  SUBCASE("GNU headers keep other things in the prefix field, which is not a prefix there") {
    TarBuilder tar;
    tar.add({.name = "name", .prefix = "not-a-prefix", .magic = kGnuMagic}, "x");
    auto seen = readAll(tar.bytes, 0);
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].entry.path == "name");
  }
  SUBCASE("GNU long names and long link names apply to the next entry only") {
    const std::string longName = std::string(150, 'L') + "/" + std::string(150, 'M');
    const std::string longLink = std::string(200, 'K');
    TarBuilder tar;
    tar.gnuLong('L', longName)
        .file("truncated-name", "data")
        .gnuLong('L', "sym")
        .gnuLong('K', longLink)
        .symlink("s", "truncated-link")
        .file("short", "s");
    for (std::size_t chunk : kChunks) {
      CAPTURE(chunk);
      auto seen = readAll(tar.bytes, chunk);
      REQUIRE(seen.size() == 3);
      CHECK(seen[0].entry.path == longName);
      CHECK(seen[0].data == "data");
      CHECK(seen[1].entry.path == "sym");
      CHECK(seen[1].entry.linkTarget == longLink);
      CHECK(seen[2].entry.path == "short");
    }
  }
  SUBCASE("pax headers set path, linkpath, size and mtime of the next entry; 'g' is ignored") {
    TarBuilder tar;
    tar.pax({{"comment", "global"}, {"path", "ignored"}}, 'g')
        .pax({{"path", "pax/long/" + std::string(300, 'p')},
              {"mtime", "1234567890.123456789"},
              {"atime", "1.5"},
              {"SCHILY.xattr.user.x", "y"}})
        .file("short", "content")
        .pax({{"linkpath", std::string(120, 't')}})
        .symlink("s", "short-target")
        .pax({{"size", "5"}})
        .add({.name = "sized", .size = 999}, "12345")
        .pax({{"path", "cancelled"}, {"path", ""}, {"mtime", "-100"}})
        .file("header-name", "");
    for (std::size_t chunk : kChunks) {
      CAPTURE(chunk);
      auto seen = readAll(tar.bytes, chunk);
      REQUIRE(seen.size() == 4);
      CHECK(seen[0].entry.path == "pax/long/" + std::string(300, 'p'));
      CHECK(seen[0].entry.mtime == 1234567890);
      CHECK(seen[0].data == "content");
      CHECK(seen[1].entry.path == "s");
      CHECK(seen[1].entry.linkTarget == std::string(120, 't'));
      CHECK(seen[1].entry.mtime == 1700000000);
      CHECK(seen[2].entry.size == 5);
      CHECK(seen[2].data == "12345");
      CHECK(seen[3].entry.path == "header-name");
      CHECK(seen[3].entry.mtime == -100);
    }
  }
  SUBCASE("base-256 sizes and mtimes, as GNU tar and PostgreSQL write them") {
    TarBuilder tar;
    tar.add({.name = "b256", .mtime = -86400, .base256Size = true}, pattern(1000, 4));
    auto seen = readAll(tar.bytes, 7);
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].entry.size == 1000);
    CHECK(seen[0].data == pattern(1000, 4));
    CHECK(seen[0].entry.mtime == -86400);
  }
  SUBCASE("a file over 8 GiB, with a base-256 size, streams through in bounded memory") {
    // 8 GiB + 1 byte of zeros, pushed in 1 MiB chunks: the reader must not keep any of it.
    const std::uint64_t size = (8ULL << 30) + 1;
    struct Count final : TarReader::Handler {
      void begin(const TarEntry& e) override { entries.push_back(e); }
      void data(ByteView bytes) override { bytes_ += bytes.size(); }
      void end() override { ++ends; }
      std::vector<TarEntry> entries;
      std::uint64_t bytes_ = 0;
      int ends = 0;
    } count;
    TarReader reader(count);
    reader.write(headerBlock({.name = "base/1/16384", .size = size, .base256Size = true}));
    const Buffer zeros(1 << 20, 0);
    std::uint64_t left = size + 511;  // the data and its padding
    while (left > 0) {
      const std::size_t n = std::size_t(std::min<std::uint64_t>(left, zeros.size()));
      reader.write({zeros.data(), n});
      left -= n;
    }
    TarBuilder after;
    after.file("after", "ok").end();
    reader.write(after.bytes);
    reader.close();
    REQUIRE(count.entries.size() == 2);
    CHECK(count.entries[0].size == size);
    CHECK(count.bytes_ == size + 2);
    CHECK(count.ends == 2);
    CHECK(count.entries[1].path == "after");
    CHECK(reader.endMarkerSeen());
  }
  SUBCASE("checksums summed as signed bytes are accepted, as GNU tar accepts them") {
    TarBuilder tar;
    tar.add({.name = "caf\xc3\xa9", .signedChecksum = true}, "x");
    auto seen = readAll(tar.bytes, 0);
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].entry.path == "caf\xc3\xa9");
  }
  SUBCASE("an old v7 header, without magic, is read") {
    TarBuilder tar;
    tar.add({.name = "old", .prefix = "not-used", .magic = std::string_view("\0\0\0\0\0\0\0\0", 8)},
            "v7");
    auto seen = readAll(tar.bytes, 0);
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].entry.path == "old");
    CHECK(seen[0].data == "v7");
  }
  SUBCASE("entry types: no data after links, directories and devices; other types are skipped") {
    TarBuilder tar;
    tar.add({.name = "contiguous", .type = '7'}, "seven")
        .add({.name = "old-style-file", .type = '\0'}, "nul")
        .add({.name = "dir-with-size/", .type = '5', .size = 4096})  // no data follows
        .add({.name = "tty", .type = '3'})
        .add({.name = "disk", .type = '4'})
        .add({.name = "fifo", .type = '6'})
        .add({.name = "label", .type = 'V'}, std::string(700, 'v'))  // data skipped
        .add({.name = "dumpdir/", .type = 'D'}, std::string(100, 'd'))
        .add({.name = "old-style-dir/", .type = '\0'})
        .file("last", "end");
    for (std::size_t chunk : kChunks) {
      CAPTURE(chunk);
      auto seen = readAll(tar.bytes, chunk);
      REQUIRE(seen.size() == 10);
      CHECK(seen[0].entry.type == TarEntry::Type::File);
      CHECK(seen[0].data == "seven");
      CHECK(seen[1].entry.type == TarEntry::Type::File);
      CHECK(seen[1].data == "nul");
      CHECK(seen[2].entry.type == TarEntry::Type::Directory);
      CHECK(seen[2].entry.size == 0);
      for (int i : {3, 4, 5, 6}) {
        CHECK(seen[i].entry.type == TarEntry::Type::Other);
        CHECK(seen[i].entry.size == 0);
      }
      CHECK(seen[3].entry.typeFlag == '3');
      CHECK(seen[6].entry.typeFlag == 'V');
      CHECK(seen[7].entry.type == TarEntry::Type::Directory);
      CHECK(seen[7].entry.path == "dumpdir");
      CHECK(seen[8].entry.type == TarEntry::Type::Directory);
      CHECK(seen[8].entry.path == "old-style-dir");
      CHECK(seen[9].data == "end");
    }
  }
}

TEST_CASE("TarReader ends an archive at an entry boundary, with or without the zero blocks") {
  TarBuilder tar;
  tar.file("a", std::string(600, 'a')).file("b", "");
  const std::size_t boundary = tar.bytes.size();  // 512 + 1024 + 512
  tar.end();
  SUBCASE("two zero blocks, one, part of the second, none, or GNU tar's record padding") {
    Buffer padded = tar.bytes;
    padded.resize(10240, 0);  // GNU tar fills its last 10240-byte record with zeros
    for (std::size_t chunk : kChunks) {
      CAPTURE(chunk);
      CHECK(readAll(tar.bytes, chunk).size() == 2);
      CHECK(readAll(ByteView(tar.bytes).first(boundary + 512), chunk).size() == 2);
      CHECK(readAll(ByteView(tar.bytes).first(boundary + 700), chunk).size() == 2);
      CHECK(readAll(ByteView(tar.bytes).first(boundary), chunk).size() == 2);
      CHECK(readAll(padded, chunk).size() == 2);
    }
  }
  SUBCASE("an empty stream is an empty archive, and so is a zero block") {
    Recorder recorder;
    TarReader reader(recorder);
    reader.close();
    CHECK(recorder.seen.empty());
    CHECK_FALSE(reader.endMarkerSeen());
    CHECK(readAll(Buffer(1024, 0), 1).empty());
  }
  SUBCASE("endMarkerSeen tells a marked end from a stream that stopped") {
    Recorder recorder;
    TarReader reader(recorder);
    reader.write(ByteView(tar.bytes).first(boundary));
    CHECK_FALSE(reader.endMarkerSeen());
    reader.write(ByteView(tar.bytes).subspan(boundary));
    CHECK(reader.endMarkerSeen());
    reader.close();
  }
}

TEST_CASE("TarReader refuses a truncated archive, naming where it was cut") {
  TarBuilder tar;
  tar.file("base/1/1259", std::string(600, 'a')).file("PG_VERSION", "15\n").end();
  struct Cut {
    std::size_t at;
    std::string message;
  };
  const Cut cuts[] = {
      {100, "tar archive is truncated: it ends inside a header at offset 0 (100 of 512 bytes)"},
      {512, "tar archive is truncated: it ends inside the data of 'base/1/1259' (0 of 600 bytes)"},
      {812, "it ends inside the data of 'base/1/1259' (300 of 600 bytes)"},
      {1112, "it ends inside the padding after the data of 'base/1/1259'"},
      {1535, "it ends inside the padding after the data of 'base/1/1259'"},
      {1536 + 511,
       "it ends inside a header at offset 1536 (511 of 512 bytes), after entry 'base/1/1259'"},
      {2048 + 2, "it ends inside the data of 'PG_VERSION' (2 of 3 bytes)"},
  };
  SUBCASE("inside a header, a file's data or its padding, in any chunk size") {
    for (const Cut& cut : cuts) {
      for (std::size_t chunk : kChunks) {
        CAPTURE(cut.at);
        CAPTURE(chunk);
        Error e = readError(ByteView(tar.bytes).first(cut.at), chunk);
        CHECK(e.code() == ErrorCode::Corrupt);
        CHECK(what(e) == Containing(cut.message));
      }
    }
  }
  SUBCASE("after an extended header, or inside one") {
    TarBuilder pax;
    pax.pax({{"path", std::string(300, 'p')}});
    const std::size_t paxEnd = pax.bytes.size();
    pax.file("x", "data");
    Error e = readError(ByteView(pax.bytes).first(paxEnd), 0);
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) ==
          "tar archive is truncated: it ends after an extended header at offset 0, "
          "without the entry it describes");
    e = readError(ByteView(pax.bytes).first(600), 1);
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) ==
          Containing("it ends inside the extended header at offset 0 (88 of 310 bytes)"));

    TarBuilder gnu;
    gnu.gnuLong('L', std::string(300, 'L')).end();
    e = readError(gnu.bytes, 7);
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) ==
          "tar archive ends at offset 1024 right after an extended header, without "
          "the entry it describes");
  }
}

TEST_CASE("TarReader refuses damaged headers with Corrupt, naming the entry and the problem") {
  SUBCASE("a bad header checksum") {
    TarBuilder tar;
    tar.file("PG_VERSION", "15\n");
    Buffer bad = headerBlock({.name = "base/1/1259", .size = 3});
    bad[0] = 'c';  // the name changes after the checksum was computed
    tar.append(bad).append(asBytes("abc")).pad();
    for (std::size_t chunk : kChunks) {
      CAPTURE(chunk);
      Error e = readError(tar.bytes, chunk);
      CHECK(e.code() == ErrorCode::Corrupt);
      CHECK(what(e) ==
            Containing("bad header checksum for tar entry 'case/1/1259' at offset 1024"));
    }
    Buffer zeroSum = headerBlock({.name = "x", .checksum = 0});
    CHECK(what(readError(zeroSum, 0)) == Containing("bad header checksum for tar entry 'x'"));
  }
  SUBCASE("random bytes are not a header") {
    TarBuilder tar;
    tar.append(asBytes(pattern(512, 9)));
    Error e = readError(tar.bytes, 0);
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == Containing("bad header checksum"));
  }
  SUBCASE("an unknown header format") {
    Buffer header = headerBlock({.name = "x", .magic = "garbage!"});
    Error e = readError(header, 0);
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == "tar entry 'x' at offset 0 has an unknown header format (magic 'garbage!')");
  }
  SUBCASE("impossible sizes") {
    const Header bad[] = {
        {.name = "negative", .size = std::uint64_t(-5), .base256Size = true},
        {.name = "huge",
         .rawSize = std::string("\x80\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 12)},
        {.name = "not-octal", .rawSize = "0000001238"},
    };
    for (const Header& h : bad) {
      CAPTURE(h.name);
      Error e = readError(headerBlock(h), 0);
      CHECK(e.code() == ErrorCode::Corrupt);
      CHECK(what(e) == Containing("tar entry '" + h.name + "' at offset 0 has an impossible size"));
    }
    TarBuilder paxSize;
    paxSize.pax({{"size", "12abc"}}).file("x", "");
    Error e = readError(paxSize.bytes, 0);
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == "tar pax header at offset 0 has an impossible size '12abc'");
    TarBuilder tooLong;
    tooLong.add({.name = "PaxHeaders/x", .type = 'x', .size = 1 << 20});
    e = readError(tooLong.bytes, 0);
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) ==
          Containing("has an impossible size of 1048576 bytes (at most 65536 expected)"));
  }
  SUBCASE("malformed pax records") {
    const std::pair<std::string, std::string> bad[] = {
        {"abc path=x\n", "a record with a bad length"},
        {"99 path=x\n", "a record with a bad length"},
        {"1 x", "a record with a bad length"},
        {"10 path=xy", "a record not ended by a newline"},
        {"10 pathxy\n", "a record without a key"},
        {"11 mtime=x\n", "has a malformed mtime 'x'"},
    };
    for (const auto& [records, message] : bad) {
      CAPTURE(records);
      TarBuilder tar;
      tar.add({.name = "PaxHeaders/x", .type = 'x'}, records).file("x", "");
      Error e = readError(tar.bytes, 0);
      CHECK(e.code() == ErrorCode::Corrupt);
      CHECK(what(e) == Containing(message));
    }
  }
  SUBCASE("an entry with an empty name, or a link with an empty target") {
    Error e = readError(headerBlock({.name = ""}), 0);
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == "tar entry at offset 0 has an empty name");
    e = readError(headerBlock({.name = "s", .type = '2'}), 0);
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == "tar entry 's' at offset 0 is a link with an empty target");
  }
  SUBCASE("data after the end-of-archive marker, or a lone zero block inside the archive") {
    TarBuilder tar;
    tar.file("a", "x").end().file("b", "y");
    for (std::size_t chunk : kChunks) {
      CAPTURE(chunk);
      Error e = readError(tar.bytes, chunk);
      CHECK(e.code() == ErrorCode::Corrupt);
      CHECK(what(e) ==
            Containing("tar archive has data after its end-of-archive marker at offset 2048"));
    }
    TarBuilder lone;
    lone.file("a", "x").append(Buffer(512, 0)).file("b", "y");
    Error e = readError(lone.bytes, 0);
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == Containing("after its end-of-archive marker at offset 1536"));
  }
  SUBCASE("GNU sparse files and multi-volume archives are Unsupported") {
    Error e = readError(headerBlock({.name = "sparse", .type = 'S', .magic = kGnuMagic}), 0);
    CHECK(e.code() == ErrorCode::Unsupported);
    CHECK(what(e) ==
          "tar entry 'sparse' at offset 0 is a GNU sparse file, which this reader does "
          "not support");
    TarBuilder pax;
    pax.pax({{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"}}).file("x", "");
    e = readError(pax.bytes, 0);
    CHECK(e.code() == ErrorCode::Unsupported);
    CHECK(what(e) == Containing("describes a GNU sparse file"));
    e = readError(headerBlock({.name = "part", .type = 'M', .magic = kGnuMagic}), 0);
    CHECK(e.code() == ErrorCode::Unsupported);
    CHECK(what(e) == Containing("multi-volume"));
  }
  SUBCASE("a name with control bytes is shown with '?' in messages") {
    Buffer bad = headerBlock({.name = "evil\x1b[2Jname", .size = 3});
    bad[148] ^= 1;
    Error e = readError(bad, 0);
    CHECK(what(e) == Containing("'evil?[2Jname'"));
  }
}

TEST_CASE("TarExtractor recreates GNU tar's archives byte for byte") {
  struct Case {
    const char* format;
    bool longNames;
  };
  for (Case c : {Case{"ustar", false}, Case{"gnu", true}, Case{"pax", true}}) {
    CAPTURE(c.format);
    test::TempDir dir;
    makeDir(dir / "src");
    makeTree(dir / "src", c.longNames);
    const Buffer archive = gnuTar(c.format, dir / "archive.tar", topLevel(dir / "src"));
    const Strings expected = describeTree(dir / "src");
    for (std::size_t chunk : kChunks) {
      CAPTURE(chunk);
      const std::string root = dir / fmt::format("out-{}", chunk);
      makeDir(root, 0700);
      ExtractStats stats = extract(archive, root, chunk);
      CHECK(lines(describeTree(root)) == lines(expected));
      CHECK(inode(root + "/hard1") == inode(root + "/hard2"));
      CHECK(modeOf(root) == 0700);  // root is the caller's: untouched
      CHECK(stats.files == (c.longNames ? 15 : 13));
      CHECK(stats.directories == (c.longNames ? 12 : 9));
      CHECK(stats.links == (c.longNames ? 8 : 6));
      CHECK(stats.bytes == 3 + 34 + 66536 + 3 * 8192 + 3 + 8192 + 10 + 1 + 2 + 3 + 4 + 6 +
                               (c.longNames ? 3 + 5000 : 0));
      if (c.longNames) {
        const std::string longFile = root + "/long/" + kLongP + "/" + kLongQ + "/" + kLongR;
        CHECK(inode(longFile) == inode(root + "/long/hard"));
      }
    }
  }
}

TEST_CASE("TarExtractor options, counts and its file entry point") {
  test::TempDir dir;
  const std::string root = dir / "root";
  makeDir(root, 0700);
  TarBuilder tar;
  tar.file("implicit/sub/file", "content", 0640)
      .directory("explicit/", 0750)
      .file("explicit/x", "x", 0604)
      .end();
  SUBCASE("implicit directories get directoryMode, explicit ones the archive's") {
    ExtractStats stats = extract(tar.bytes, root, 0, {.directoryMode = 0711});
    CHECK(modeOf(root + "/implicit") == 0711);
    CHECK(modeOf(root + "/implicit/sub") == 0711);
    CHECK(modeOf(root + "/explicit") == 0750);
    CHECK(modeOf(root + "/implicit/sub/file") == 0640);
    CHECK(modeOf(root + "/explicit/x") == 0604);
    CHECK(stats.files == 2);
    CHECK(stats.directories == 1);  // implicit ones are not counted
    CHECK(stats.bytes == 8);
  }
  SUBCASE("without preserveMode, files are 0600 and directories directoryMode") {
    extract(tar.bytes, root, 1, {.directoryMode = 0750, .preserveMode = false});
    CHECK(modeOf(root + "/implicit/sub/file") == 0600);
    CHECK(modeOf(root + "/explicit/x") == 0600);
    CHECK(modeOf(root + "/explicit") == 0750);
    CHECK(modeOf(root + "/implicit") == 0750);
  }
  SUBCASE("without sync, the same tree") {
    extract(tar.bytes, root, 513, {.sync = false});
    CHECK(std::string(asText(readFile(root + "/implicit/sub/file"))) == "content");
    CHECK(modeOf(root + "/explicit") == 0750);
  }
  SUBCASE("skipped entries are read past and not written") {
    TarBuilder standby;
    standby.file("./standby.signal", "", 0600)
        .file("PG_VERSION", "15\n", 0600)
        .file("global/standby.signal", "x", 0600)
        .end();
    ExtractStats stats = extract(standby.bytes, root, 7, {.skip = {"standby.signal"}});
    CHECK_FALSE(std::filesystem::exists(root + "/standby.signal"));
    CHECK(std::string(asText(readFile(root + "/PG_VERSION"))) == "15\n");
    CHECK(std::filesystem::exists(root + "/global/standby.signal"));  // only the path named
    CHECK(stats.files == 2);
  }
  SUBCASE("the archive's root entry './' is ignored and root keeps its mode") {
    TarBuilder dot;
    dot.directory("./", 0777).file("./PG_VERSION", "15\n", 0600).end();
    ExtractStats stats = extract(dot.bytes, root, 0);
    CHECK(modeOf(root) == 0700);
    CHECK(stats.directories == 0);
    CHECK(std::string(asText(readFile(root + "/PG_VERSION"))) == "15\n");
  }
  SUBCASE("an archive GNU tar made with '-C dir .' extracts the same tree") {
    makeDir(dir / "src");
    makeTree(dir / "src", false);
    const Buffer archive = gnuTar("gnu", dir / "dot.tar", "-C '" + dir / "src" + "' .");
    extract(archive, root, 0);
    CHECK(lines(describeTree(root)) == lines(describeTree(dir / "src")));
  }
  SUBCASE("extractTarFile reads an archive from disk") {
    writeFile(dir / "archive.tar", tar.bytes);
    ExtractStats stats = extractTarFile(dir / "archive.tar", root);
    CHECK(stats.files == 2);
    CHECK(std::string(asText(readFile(root + "/explicit/x"))) == "x");
    Error e = thrownError([&] { extractTarFile(dir / "missing.tar", root); });
    CHECK(e.code() == ErrorCode::LocalIo);
    CHECK(what(e) == "tar archive '" + dir / "missing.tar" + "' does not exist");
  }
  SUBCASE("a missing root is LocalIo, and is not created") {
    Error e = thrownError([&] { TarExtractor extractor(dir / "missing"); });
    CHECK(e.code() == ErrorCode::LocalIo);
    CHECK(what(e) == Containing("cannot open extraction root '" + dir / "missing" + "'"));
    CHECK_FALSE(test::exists(dir / "missing"));
  }
  SUBCASE("a directory's mode that denies its owner is applied only at the end") {
    TarBuilder locked;
    locked.directory("locked/", 0500).file("locked/inside", "x", 0400).end();
    extract(locked.bytes, root, 0);
    CHECK(modeOf(root + "/locked") == 0500);
    CHECK(modeOf(root + "/locked/inside") == 0400);
    REQUIRE(::chmod((root + "/locked").c_str(), 0700) == 0);
  }
}

TEST_CASE(
    "TarExtractor keeps symlinks leading outside its root only when allowed, and never follows "
    "them") {
  test::TempDir dir;
  const std::string outside = dir / "outside";
  makeDir(outside, 0700);
  const std::string root = dir / "root";
  makeDir(root, 0700);
  TarBuilder tar;
  tar.symlink("log", outside)
      .directory("a/")
      .symlink("a/up", "../../outside")
      .file("kept", "x")
      .end();
  ExtractStats stats = extract(tar.bytes, root, 0, {.allowOutsideSymlinks = true});
  CHECK(stats.outsideSymlinks ==
        std::vector<std::string>{"log -> " + outside, "a/up -> ../../outside"});
  CHECK(std::filesystem::read_symlink(root + "/log") == outside);
  CHECK(std::filesystem::read_symlink(root + "/a/up") == "../../outside");
  CHECK(stats.files == 1);
  SUBCASE("an entry through such a symlink is still refused") {
    const std::string again = dir / "again";
    makeDir(again, 0700);
    TarBuilder through;
    through.symlink("log", outside).file("log/evil", "x").end();
    Error e =
        thrownError([&] { extract(through.bytes, again, 0, {.allowOutsideSymlinks = true}); });
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(listDirectory(outside).empty());
  }
}

TEST_CASE("TarExtractor replaces an earlier name with a later one, never a directory") {
  test::TempDir dir;
  const std::string root = dir / "root", outside = dir / "outside";
  makeDir(root, 0700);
  makeDir(outside, 0700);
  SUBCASE("the same file twice: the later content wins") {
    TarBuilder tar;
    tar.file("f", "first, and longer").file("f", "second").end();
    extract(tar.bytes, root, 7);
    CHECK(std::string(asText(readFile(root + "/f"))) == "second");
  }
  SUBCASE("a file over a symlink replaces the symlink, and does not write through it") {
    makeSymlink(outside + "/f", root + "/f");
    TarBuilder tar;
    tar.file("f", "inside").end();
    extract(tar.bytes, root, 0);
    struct stat st {};
    REQUIRE(::lstat((root + "/f").c_str(), &st) == 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK(listDirectory(outside).empty());
  }
  SUBCASE("a symlink or hard link over a file replaces the file") {
    TarBuilder tar;
    tar.file("f", "file").file("g", "g").file("h", "h").symlink("f", "g").hardLink("g", "h").end();
    extract(tar.bytes, root, 0);
    char target[16] = {};
    CHECK(::readlink((root + "/f").c_str(), target, sizeof target) == 1);
    CHECK(std::string(target) == "g");
    CHECK(inode(root + "/g") == inode(root + "/h"));
  }
  SUBCASE("a file named twice, stored by GNU tar as a link to itself") {
    TarBuilder tar;
    tar.file("f", "x").hardLink("f", "f").end();
    ExtractStats stats = extract(tar.bytes, root, 0);
    CHECK(std::string(asText(readFile(root + "/f"))) == "x");
    CHECK(stats.links == 0);
  }
  SUBCASE("a file, symlink or link where a directory is, is refused") {
    TarBuilder tar;
    tar.directory("d/").file("d/keep", "k").file("d", "clobber").end();
    Error e = extractError(tar.bytes, root);
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == "refusing tar entry 'd': a directory of that name is already there");
    CHECK(e.hint() == Containing("extract into an empty directory"));
    CHECK(std::string(asText(readFile(root + "/d/keep"))) == "k");
    TarBuilder sym;
    sym.symlink("d", "elsewhere").end();
    CHECK(what(extractError(sym.bytes, root)) ==
          "refusing tar entry 'd': a directory of that name is already there");
  }
  SUBCASE("a directory where a file or symlink is, is refused") {
    writeFile(root + "/f", "file");
    makeSymlink(outside, root + "/s");
    TarBuilder file;
    file.directory("f/").end();
    Error e = extractError(file.bytes, root);
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == "refusing tar entry 'f': a non-directory of that name is already there");
    TarBuilder sym;
    sym.directory("s/").end();
    e = extractError(sym.bytes, root);
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == "refusing tar entry 's': a symlink of that name is already there");
    CHECK(listDirectory(outside).empty());
  }
  SUBCASE("an existing directory is reused and gets the archive's mode") {
    makeDir(root + "/d", 0755);
    writeFile(root + "/d/old", "old");
    TarBuilder tar;
    tar.directory("d/", 0750).file("d/new", "new").end();
    extract(tar.bytes, root, 0);
    CHECK(modeOf(root + "/d") == 0750);
    CHECK(lines(listDirectory(root + "/d")) == "new\nold\n");
  }
}

TEST_CASE("TarExtractor refuses entries that would write outside its root") {
  test::TempDir dir;
  const std::string outside = dir / "outside";
  makeDir(outside, 0700);
  writeFile(outside + "/secret", "secret");
  int roots = 0;
  // What `prepare` does to a fresh root before extraction, if anything.
  std::function<void(const std::string&)> prepare;
  // Extracting `tar` into a fresh root is refused with InvalidInput and `message`, nothing is
  // written outside root, and root then holds `left`.
  auto refused = [&](const TarBuilder& tar, const std::string& message, const Strings& left = {}) {
    for (std::size_t chunk : {std::size_t(1), std::size_t(0)}) {
      CAPTURE(chunk);
      const std::string root = dir / fmt::format("root-{}", ++roots);
      makeDir(root, 0700);
      if (prepare) prepare(root);
      Error e = thrownError([&] { extract(tar.bytes, root, chunk); });
      CHECK(e.code() == ErrorCode::InvalidInput);
      CHECK(what(e) == message);
      CHECK(e.hint() == Containing("outside the extraction root"));
      CHECK(listDirectory(outside) == Strings{"secret"});
      CHECK(std::string(asText(readFile(outside + "/secret"))) == "secret");
      Strings names;
      walkTree(root, "", names);
      std::sort(names.begin(), names.end());
      CHECK(lines(names) == lines(left));
    }
  };
  SUBCASE("absolute paths") {
    TarBuilder tar;
    tar.file(outside + "/evil", "x").end();
    refused(tar, "refusing tar entry '" + outside + "/evil': the path is absolute");
    TarBuilder directory;
    directory.directory("/tmp/").end();
    refused(directory, "refusing tar entry '/tmp': the path is absolute");
  }
  SUBCASE("'..' components") {
    TarBuilder up;
    up.file("../outside/evil", "x").end();
    refused(up, "refusing tar entry '../outside/evil': the path has a '..' component");
    TarBuilder inner;
    inner.file("a/../../outside/evil", "x").end();
    refused(inner, "refusing tar entry 'a/../../outside/evil': the path has a '..' component");
    TarBuilder gnuLong;
    gnuLong.gnuLong('L', std::string(120, 'a') + "/../../outside/evil").file("short", "x").end();
    refused(gnuLong, "refusing tar entry '" + std::string(120, 'a') +
                         "/../../outside/evil': the path has a '..' component");
  }
  SUBCASE("symlinks with an absolute target, or one that climbs out") {
    TarBuilder absolute;
    absolute.symlink("etc", "/etc").file("etc/passwd", "root::0:0::/:/bin/sh\n").end();
    refused(absolute, "refusing tar entry 'etc': symlink target '/etc' is absolute");
    TarBuilder climbs;
    climbs.directory("a/").symlink("a/out", "../../outside").end();
    refused(climbs,
            "refusing tar entry 'a/out': symlink target '../../outside' climbs out of "
            "the extraction root",
            {"a"});
    TarBuilder top;
    top.symlink("up", "..").end();
    refused(top, "refusing tar entry 'up': symlink target '..' climbs out of the extraction root");
    TarBuilder pg;  // PostgreSQL's tablespace link, in a backup taken without TABLESPACE_MAP
    pg.add({.name = "pg_tblspc/16385/", .type = '2', .link = outside}).end();
    refused(pg,
            "refusing tar entry 'pg_tblspc/16385': symlink target '" + outside + "' is absolute");
  }
  SUBCASE("a symlink with '..' after a name, which could climb out through another symlink") {
    // "l" -> "." is root; "d/x" -> "../l/.." is root/l/.. = root/.. in fact, though lexically
    // it is root.
    TarBuilder tar;
    tar.symlink("l", ".").directory("d/").symlink("d/x", "../l/..").end();
    refused(tar,
            "refusing tar entry 'd/x': symlink target '../l/..' has '..' after a name, which "
            "could climb out of the extraction root through another symlink",
            {"d", "l"});
  }
  SUBCASE("symlinks that stay inside root are created, dangling or not") {
    TarBuilder tar;
    tar.directory("d/")
        .directory("d/e/")
        .symlink("d/e/top", "../../f")
        .symlink("d/self", ".")
        .symlink("d/dangling", "e/missing")
        .symlink("d/dots", "./e/./")
        .end();
    const std::string root = dir / "root";
    makeDir(root);
    ExtractStats stats = extract(tar.bytes, root, 0);
    CHECK(stats.links == 4);
    char target[64] = {};
    CHECK(::readlink((root + "/d/e/top").c_str(), target, sizeof target) == 7);
    CHECK(std::string(target) == "../../f");
  }
  SUBCASE("an entry through a symlink in the archive") {
    TarBuilder file;
    file.directory("d/").symlink("a", "d").file("a/passwd", "x").end();
    refused(file,
            "refusing tar entry 'a/passwd': 'a' is a symlink, and nothing is extracted through a "
            "symlink",
            {"a", "d"});
    TarBuilder deeper;
    deeper.directory("d/").directory("d/e/").symlink("d/l", "e").directory("d/l/sub/").end();
    refused(deeper,
            "refusing tar entry 'd/l/sub': 'd/l' is a symlink, and nothing is extracted through "
            "a symlink",
            {"d", "d/e", "d/l"});
  }
  SUBCASE("an entry through a symlink that was in root before (the classic attack)") {
    prepare = [&](const std::string& root) { makeSymlink(outside, root + "/a"); };
    TarBuilder file;
    file.file("a/passwd", "x").end();
    refused(file,
            "refusing tar entry 'a/passwd': 'a' is a symlink, and nothing is extracted through a "
            "symlink",
            {"a"});
    TarBuilder directory;
    directory.directory("a/sub/").end();
    refused(directory,
            "refusing tar entry 'a/sub': 'a' is a symlink, and nothing is extracted through a "
            "symlink",
            {"a"});
    TarBuilder link;
    link.hardLink("stolen", "a/secret").end();
    refused(link,
            "refusing tar entry 'stolen': 'a' is a symlink, and nothing is extracted through a "
            "symlink",
            {"a"});
    TarBuilder sym;
    sym.symlink("a/x", "y").end();
    refused(sym,
            "refusing tar entry 'a/x': 'a' is a symlink, and nothing is extracted through a "
            "symlink",
            {"a"});
  }
  SUBCASE("an entry below a file") {
    TarBuilder tar;
    tar.file("f", "x").file("f/g", "y").end();
    refused(tar, "refusing tar entry 'f/g': 'f' is not a directory", {"f"});
  }
  SUBCASE("hard links to outside, to a directory, or to what is not extracted yet") {
    TarBuilder absolute;
    absolute.hardLink("h", outside + "/secret").end();
    refused(absolute,
            "refusing tar entry 'h': hard link target '" + outside + "/secret' is absolute");
    TarBuilder up;
    up.hardLink("h", "../outside/secret").end();
    refused(up,
            "refusing tar entry 'h': hard link target '../outside/secret' has a '..' "
            "component");
    TarBuilder early;
    early.hardLink("h", "later").file("later", "x").end();
    refused(early,
            "refusing tar entry 'h': hard link target 'later' has not been extracted (a "
            "hard link must follow its target in the archive)");
    TarBuilder missingDir;
    missingDir.hardLink("h", "no/such/file").end();
    refused(missingDir,
            "refusing tar entry 'h': hard link target 'no/such/file' has not been "
            "extracted (a hard link must follow its target in the archive)");
    TarBuilder directory;
    directory.directory("d/").hardLink("h", "d").end();
    refused(directory, "refusing tar entry 'h': hard link target 'd' is a directory", {"d"});
  }
  SUBCASE("a hard link to a symlink whose target would climb out from the new place") {
    TarBuilder tar;
    tar.directory("a/").directory("a/b/").symlink("a/b/l", "../..").hardLink("l2", "a/b/l").end();
    refused(tar,
            "refusing tar entry 'l2': the target of the symlink it links to, '../..' climbs out "
            "of the extraction root",
            {"a", "a/b", "a/b/l"});
    TarBuilder fine;
    fine.directory("a/").symlink("a/l", "x").hardLink("a/l2", "a/l").end();
    makeDir(dir / "fine");
    CHECK(extract(fine.bytes, dir / "fine", 0).links == 2);
  }
  SUBCASE("devices, FIFOs and other types") {
    TarBuilder tty;
    tty.add({.name = "dev/tty", .type = '3'}).end();
    refused(tty, "refusing tar entry 'dev/tty': cannot extract a character device");
    TarBuilder fifo;
    fifo.add({.name = "fifo", .type = '6'}).end();
    refused(fifo, "refusing tar entry 'fifo': cannot extract a FIFO");
    TarBuilder label;
    label.add({.name = "label", .type = 'V'}).end();
    refused(label, "refusing tar entry 'label': cannot extract an entry of type 'V'");
  }
  SUBCASE("a file named like the root itself") {
    TarBuilder tar;
    tar.file(".", "x").end();
    refused(tar, "refusing tar entry '': it names the extraction root itself");
  }
}
