// Unit tests of common/io/file.h: reading local files, directories, and the atomic publish.
#include "common/files/file.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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

namespace {

std::string text(const Buffer& bytes) {
  return std::string(asText(bytes));
}

// The names in `dir` that do not start with '.'.
std::vector<std::string> visibleNames(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& name : listDirectory(dir))
    if (name[0] != '.') out.push_back(name);
  return out;
}

bool supportsTmpfile(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600));
  return bool(fd);
}

// AtomicFile's promises, for one way of making its temporary file.
void atomicFileBehaviours(bool allowTmpfile) {
  test::TempDir dir;
  const std::string path = dir / "000000010000000000000001";
  const AtomicWriteOptions plain{.allowTmpfile = allowTmpfile};
  const AtomicWriteOptions noReplace{.noReplace = true, .allowTmpfile = allowTmpfile};
  using Names = std::vector<std::string>;

  SUBCASE("nothing is visible under the name before commit, even after close") {
    AtomicFile file(path, plain);
    file.write(asBytes("hello "));
    file.write(asBytes("world"));
    CHECK(file.size() == 11);
    CHECK_FALSE(test::exists(path));
    file.close();
    CHECK_FALSE(test::exists(path));
    CHECK(visibleNames(dir.path()).empty());
    // O_TMPFILE leaves no name at all; the fallback (also where the filesystem lacks O_TMPFILE,
    // as overlayfs before Linux 6.6 does) a hidden one.
    if (allowTmpfile && supportsTmpfile(dir.path())) {
      CHECK(listDirectory(dir.path()).empty());
    } else {
      REQUIRE(listDirectory(dir.path()).size() == 1);
      CHECK(listDirectory(dir.path())[0].rfind(".000000010000000000000001.tmp-", 0) == 0);
    }
    CHECK(file.commit());
    CHECK(text(readFile(path)) == "hello world");
    CHECK(listDirectory(dir.path()) == Names{"000000010000000000000001"});
  }
  SUBCASE("commit without close closes, and an empty file can be published") {
    AtomicFile file(path, plain);
    CHECK(file.commit());
    CHECK(readFile(path).empty());
    CHECK(listDirectory(dir.path()) == Names{"000000010000000000000001"});
  }
  SUBCASE("destroyed without commit, it leaves no file and no temporary file") {
    {
      AtomicFile file(path, plain);
      file.write(asBytes("partial"));
    }
    {
      AtomicFile file(path, plain);
      file.write(asBytes("closed but not committed"));
      file.close();
    }
    CHECK(listDirectory(dir.path()).empty());
  }
  SUBCASE("destroyed during stack unwinding, it leaves nothing") {
    CHECK_THROWS_AS(
        [&] {
          AtomicFile file(path, plain);
          file.write(asBytes("half"));
          throw std::runtime_error("the producer failed");
        }(),
        std::runtime_error);
    CHECK(listDirectory(dir.path()).empty());
  }
  SUBCASE("no-replace publishes when the name is free") {
    AtomicFile file(path, noReplace);
    file.write(asBytes("first"));
    CHECK(file.commit());
    CHECK(text(readFile(path)) == "first");
    CHECK(listDirectory(dir.path()) == Names{"000000010000000000000001"});
  }
  SUBCASE("no-replace refuses an existing name and leaves the existing file untouched") {
    test::writeFile(path, "existing");
    {
      AtomicFile file(path, noReplace);
      file.write(asBytes("newcomer"));
      CHECK_FALSE(file.commit());
      CHECK(text(readFile(path)) == "existing");
    }
    CHECK(text(readFile(path)) == "existing");
    CHECK(listDirectory(dir.path()) == Names{"000000010000000000000001"});
  }
  SUBCASE("of two no-replace writers, the first to commit wins") {
    AtomicFile first(path, noReplace), second(path, noReplace);
    second.write(asBytes("second"));
    first.write(asBytes("first"));
    CHECK(first.commit());
    CHECK_FALSE(second.commit());
    CHECK(text(readFile(path)) == "first");
  }
  SUBCASE("replace mode replaces an existing file") {
    test::writeFile(path, "old content, longer than the new");
    AtomicFile file(path, plain);
    file.write(asBytes("new"));
    CHECK(text(readFile(path)) == "old content, longer than the new");
    CHECK(file.commit());
    CHECK(text(readFile(path)) == "new");
    CHECK(listDirectory(dir.path()) == Names{"000000010000000000000001"});
  }
  SUBCASE("a directory that has the name is refused and left in place, synced or not") {
    REQUIRE(::mkdir(path.c_str(), 0700) == 0);
    for (bool sync : {true, false}) {
      CAPTURE(sync);
      AtomicFile file(path, {.sync = sync, .allowTmpfile = allowTmpfile});
      file.write(asBytes("new"));
      Error e = thrownError([&] { file.commit(); });
      CHECK(what(e) == Containing("cannot publish '" + path + "'"));
      struct stat st {};
      REQUIRE(::stat(path.c_str(), &st) == 0);
      CHECK(S_ISDIR(st.st_mode));
    }
    CHECK(listDirectory(dir.path()) == Names{"000000010000000000000001"});
  }
  SUBCASE("the file gets the requested mode") {
    AtomicFile file(path, {.mode = 0600, .allowTmpfile = allowTmpfile});
    file.write(asBytes("x"));
    CHECK(file.commit());
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
  SUBCASE("without sync it publishes the same way") {
    AtomicFile file(path, {.sync = false, .allowTmpfile = allowTmpfile});
    file.write(asBytes("unsynced"));
    CHECK(file.commit());
    CHECK(text(readFile(path)) == "unsynced");
  }
  SUBCASE("without sync it replaces an existing file by a new one, and leaves no other") {
    // Published by swapping the names (RENAME_EXCHANGE) and removing the old file.
    test::writeFile(path, "old content, longer than the new");
    struct stat before {};
    REQUIRE(::stat(path.c_str(), &before) == 0);
    AtomicFile file(path, {.sync = false, .allowTmpfile = allowTmpfile});
    file.write(asBytes("unsynced"));
    CHECK(file.commit());
    CHECK(text(readFile(path)) == "unsynced");
    struct stat after {};
    REQUIRE(::stat(path.c_str(), &after) == 0);
    CHECK(after.st_ino != before.st_ino);
    CHECK(listDirectory(dir.path()) == Names{"000000010000000000000001"});
  }
  SUBCASE("a missing directory fails at construction with the configured code") {
    Error e = thrownError([&] {
      AtomicFile file(dir / "missing/file",
                      {.errorCode = ErrorCode::Storage, .allowTmpfile = allowTmpfile});
    });
    CHECK(e.code() == ErrorCode::Storage);
    CHECK(what(e) == Containing("cannot create a file in '" + (dir / "missing") + "'"));
    Error local = thrownError([&] { AtomicFile file(dir / "missing/file", plain); });
    CHECK(local.code() == ErrorCode::LocalIo);
  }
  SUBCASE("relative paths, as restore_command's %p, are taken from the working directory") {
    REQUIRE(::mkdir((dir / "pg_wal").c_str(), 0700) == 0);
    test::ChangeDirectory cd(dir.path());
    AtomicFile inSub("pg_wal/RECOVERYXLOG", plain), bare("RECOVERYXLOG", plain);
    inSub.write(asBytes("sub"));
    bare.write(asBytes("bare"));
    CHECK(inSub.commit());
    CHECK(bare.commit());
    CHECK(text(readFile(dir / "pg_wal/RECOVERYXLOG")) == "sub");
    CHECK(text(readFile(dir / "RECOVERYXLOG")) == "bare");
    CHECK(listDirectory(dir / "pg_wal") == Names{"RECOVERYXLOG"});
  }
}

}  // namespace

TEST_CASE("AtomicFile publishes a file whole, or leaves nothing") {
  SUBCASE("with an unnamed O_TMPFILE inode") {
    atomicFileBehaviours(true);
  }
  SUBCASE("with a hidden named temporary file (the fallback for NFS)") {
    atomicFileBehaviours(false);
  }
}

TEST_CASE("makeDirectories creates what is missing below an existing root, and never the root") {
  test::TempDir dir;
  const std::string root = dir / "repo";
  SUBCASE("a missing root is refused and not created") {
    Error e = thrownError([&] { makeDirectories(root + "/main/wal", root, ErrorCode::Storage); });
    CHECK(e.code() == ErrorCode::Storage);
    CHECK(what(e) == "'" + root + "' does not exist");
    CHECK(e.hint() == Containing("mount"));
    CHECK_FALSE(test::exists(root));
  }
  SUBCASE("nested directories below the root are created") {
    REQUIRE(::mkdir(root.c_str(), 0750) == 0);
    makeDirectories(root + "/main/wal/0000000100000000", root);
    struct stat st {};
    REQUIRE(::stat((root + "/main/wal/0000000100000000").c_str(), &st) == 0);
    CHECK(S_ISDIR(st.st_mode));
    SUBCASE("and creating them again is fine") {
      CHECK_NOTHROW(makeDirectories(root + "/main/wal", root));
    }
  }
  SUBCASE("the root itself is accepted when it exists") {
    REQUIRE(::mkdir(root.c_str(), 0750) == 0);
    CHECK_NOTHROW(makeDirectories(root, root));
    CHECK(listDirectory(root).empty());
  }
  SUBCASE("a file where a directory belongs is an error") {
    REQUIRE(::mkdir(root.c_str(), 0750) == 0);
    test::writeFile(root + "/main", "not a directory");
    Error e = thrownError([&] { makeDirectories(root + "/main/wal", root, ErrorCode::Storage); });
    CHECK(e.code() == ErrorCode::Storage);
    CHECK(what(e) == "'" + root + "/main' exists and is not a directory");
  }
  SUBCASE("a root that is a file is an error") {
    test::writeFile(root, "not a directory");
    Error e = thrownError([&] { makeDirectories(root + "/main", root); });
    CHECK(e.code() == ErrorCode::LocalIo);
    CHECK(what(e) == "'" + root + "' is not a directory");
  }
}

TEST_CASE("baseName and dirName split paths") {
  CHECK(baseName("pg_wal/000000010000000000000001") == "000000010000000000000001");
  CHECK(dirName("pg_wal/000000010000000000000001") == "pg_wal");
  CHECK(baseName("a/b/c") == "c");
  CHECK(dirName("a/b/c") == "a/b");
  CHECK(baseName("c") == "c");
  CHECK(dirName("c") == ".");
  CHECK(baseName("/c") == "c");
  CHECK(dirName("/c") == "/");
}

TEST_CASE("local file reading: open, pread and stream") {
  test::TempDir dir;
  const std::string path = dir / "data";
  Buffer content(3000);
  for (std::size_t i = 0; i < content.size(); ++i)
    content[i] = std::uint8_t(i * 7);
  test::writeFile(path, ByteView(content));
  SUBCASE("a missing file is nullopt, not an error") {
    CHECK_FALSE(openForRead(dir / "missing").has_value());
  }
  SUBCASE("a path below a file does not exist either") {
    CHECK_FALSE(openForRead(path + "/below-a-file").has_value());
  }
  SUBCASE("a file that cannot be opened for another reason throws the given code") {
    const std::string tooLong = dir / std::string(300, 'x');  // ENAMETOOLONG
    Error e = thrownError([&] { openForRead(tooLong, ErrorCode::Storage); });
    CHECK(e.code() == ErrorCode::Storage);
    CHECK(what(e) == Containing("cannot open '" + tooLong + "'"));
  }
  SUBCASE("preadFull reads at an offset and returns fewer bytes only at the end") {
    auto fd = openForRead(path);
    REQUIRE(fd);
    Buffer out(100);
    CHECK(preadFull(fd->get(), out.data(), 100, 10, path) == 100);
    CHECK(std::equal(out.begin(), out.end(), content.begin() + 10));
    CHECK(preadFull(fd->get(), out.data(), 100, 2950, path) == 50);
    CHECK(preadFull(fd->get(), out.data(), 100, 5000, path) == 0);
  }
  SUBCASE("streamFile delivers the whole file, or a range, in chunks") {
    auto fd = openForRead(path);
    REQUIRE(fd);
    MemorySink all;
    CHECK(streamFile(fd->get(), path, all, 0, std::nullopt, 7) == 3000);
    CHECK(all.data() == content);
    MemorySink range;
    CHECK(streamFile(fd->get(), path, range, 1000, 1500, 64) == 1500);
    CHECK(Buffer(content.begin() + 1000, content.begin() + 2500) == range.data());
    MemorySink pastEnd;
    CHECK(streamFile(fd->get(), path, pastEnd, 2900, 500) == 100);
    MemorySink empty;
    CHECK(streamFile(fd->get(), path, empty, 10, 0) == 0);
    CHECK(empty.data().empty());
  }
  SUBCASE("syncDirectory of a missing directory throws the given code") {
    Error e = thrownError([&] { syncDirectory(dir / "missing", ErrorCode::Storage); });
    CHECK(e.code() == ErrorCode::Storage);
    CHECK_NOTHROW(syncDirectory(dir.path()));
  }
}

// Needs root: it hides /proc in a mount namespace of its own.
TEST_CASE("AtomicFile publishes through a named temporary file where /proc is not mounted" *
          doctest::skip(::geteuid() != 0)) {
  test::TempDir dir;
  const std::string target = dir / "object";
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int status = 1;
    if (::unshare(CLONE_NEWNS) == 0 &&
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
        ::mount("tmpfs", "/proc", "tmpfs", 0, nullptr) == 0) {
      try {
        AtomicFile file(target, {.noReplace = true});
        file.write(io::asBytes("published"));
        status = file.commit() ? 0 : 2;
      } catch (...) {
        status = 3;
      }
    }
    std::_Exit(status);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(std::string(io::asText(readFile(target))) == "published");
  CHECK(listDirectory(dir.path()) == std::vector<std::string>{"object"});  // no temporary file left
}
