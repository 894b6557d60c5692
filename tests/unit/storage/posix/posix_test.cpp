// Unit tests of common/storage/posix/posix.h beyond the shared storage contract (which
// memory_storage_test.cpp runs against this driver too): the root, temporary files, layout.
#include "common/storage/posix/posix.h"

#include <doctest/doctest.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

#include "support/check.h"
#include "support/segment.h"

using namespace tidemark;
using storage::PosixStorage;
using test::Containing;
using test::listDirectory;
using test::thrownError;
using test::what;

namespace {

bool put(storage::Storage& s, const std::string& path, std::string_view content) {
  auto w = s.newWrite(path, {});
  w->write(io::asBytes(content));
  return w->commit();
}

std::vector<std::string> listed(storage::Storage& s, const std::string& dir) {
  std::vector<std::string> names;
  s.list(dir,
         [&](const storage::ListEntry& e) { names.push_back(e.name + (e.directory ? "/" : "")); });
  std::sort(names.begin(), names.end());
  return names;
}

using Names = std::vector<std::string>;

// What `fn` throws when run by 'nobody' (uid 65534, test::thrownUnprivileged): the code, message
// and hint, one per line.
std::string thrownAsNobody(const std::function<void()>& fn) {
  Error e = test::thrownUnprivileged(fn);
  return std::to_string(int(e.code())) + "\n" + e.what() + "\n" + e.hint();
}

}  // namespace

TEST_CASE("PosixStorage needs an absolute root") {
  SUBCASE("a relative root is a configuration error") {
    Error e = thrownError([] { PosixStorage s("repo"); });
    CHECK(e.code() == ErrorCode::Config);
    CHECK(what(e) == "repository path 'repo' is not absolute");
    CHECK(e.hint() == Containing("absolute path"));
    CHECK(thrownError([] { PosixStorage s("./repo"); }).code() == ErrorCode::Config);
  }
  SUBCASE("an empty root is a configuration error") {
    CHECK(thrownError([] { PosixStorage s(""); }).code() == ErrorCode::Config);
  }
  SUBCASE("trailing slashes are dropped, and the root names the storage") {
    PosixStorage s("/var/lib/tidemark/repo//");
    CHECK(s.root() == "/var/lib/tidemark/repo");
    CHECK(s.describe() == "posix:/var/lib/tidemark/repo");
    CHECK(PosixStorage("/").root() == "/");
  }
}

TEST_CASE("PosixStorage never takes a missing repository root for a missing object") {
  test::TempDir dir;
  const std::string root = dir / "unmounted";
  PosixStorage s(root, {.sync = false});
  const std::string wal = "main/wal/0000000100000000/000000010000000000000001";
  auto checkRootError = [&](const Error& e) {
    CHECK(e.code() == ErrorCode::Storage);
    CHECK(what(e) == "repository path '" + root + "' does not exist or is not a directory");
    CHECK(e.hint() == Containing("mount"));
  };
  SUBCASE("read throws instead of answering 'not found', and writes nothing") {
    io::MemorySink out;
    checkRootError(thrownError([&] { s.read(wal, out, {}); }));
    checkRootError(thrownError([&] { s.read("main/stanza.json", out, {}); }));
    CHECK(out.data().empty());
  }
  SUBCASE("info throws instead of answering 'not found'") {
    checkRootError(thrownError([&] { s.info(wal); }));
    checkRootError(thrownError([&] { s.info("main/stanza.json"); }));
  }
  SUBCASE("list throws instead of listing nothing") {
    checkRootError(thrownError([&] { s.list("", [](const storage::ListEntry&) {}); }));
    checkRootError(thrownError([&] { s.list("main/wal", [](const storage::ListEntry&) {}); }));
  }
  SUBCASE("remove throws instead of reporting a missing object as removed") {
    checkRootError(thrownError([&] { s.remove(wal); }));
  }
  SUBCASE("a write fails and does not create the root") {
    Error e = thrownError([&] { s.newWrite(wal, {}); });
    CHECK(e.code() == ErrorCode::Storage);
    CHECK(what(e) == "'" + root + "' does not exist");
    CHECK_FALSE(test::exists(root));
  }
  SUBCASE("a root that is a file is refused the same way") {
    test::writeFile(root, "not a directory");
    io::MemorySink out;
    CHECK(thrownError([&] { s.read(wal, out, {}); }).code() == ErrorCode::Storage);
    CHECK(thrownError([&] { s.info(wal); }).code() == ErrorCode::Storage);
  }
  SUBCASE("once the root exists, a missing object is simply not found") {
    REQUIRE(::mkdir(root.c_str(), 0750) == 0);
    io::MemorySink out;
    CHECK_FALSE(s.read(wal, out, {}));
    CHECK_FALSE(s.info(wal).has_value());
    CHECK(listed(s, "").empty());
    CHECK_NOTHROW(s.remove(wal));
  }
  SUBCASE("a folder on the way replaced by a file is an error, never 'not found'") {
    REQUIRE(::mkdir(root.c_str(), 0750) == 0);
    REQUIRE(::mkdir((root + "/main").c_str(), 0750) == 0);
    test::writeFile(root + "/main/wal", "a file where the WAL folder was");
    io::MemorySink out;
    for (const Error& e :
         {thrownError([&] { s.read(wal, out, {}); }), thrownError([&] { s.info(wal); }),
          thrownError([&] { s.remove(wal); }),
          thrownError([&] { s.list("main/wal", [](const storage::ListEntry&) {}); })}) {
      CHECK(e.code() == ErrorCode::Storage);
      CHECK(what(e) == Containing("Not a directory"));
    }
    CHECK(out.data().empty());
  }
}

TEST_CASE("PosixStorage stores objects as files under the root") {
  test::TempDir dir;
  PosixStorage s(dir.path(), {.sync = false, .allowTmpfile = false});
  const std::string wal = "main/wal/0000000100000000/000000010000000000000001";
  SUBCASE("an object is a plain file at its path, with its parents created") {
    CHECK(put(s, wal, "bytes"));
    CHECK(std::string(io::asText(test::readFile(dir / wal))) == "bytes");
    CHECK(listDirectory(dir / "main/wal/0000000100000000") == Names{"000000010000000000000001"});
  }
  SUBCASE("an unfinished write is a hidden temporary file that list never shows") {
    auto w = s.newWrite(wal, {});
    w->write(io::asBytes("in progress"));
    Names names = listDirectory(dir / "main/wal/0000000100000000");
    REQUIRE(names.size() == 1);
    CHECK(names[0].rfind(".000000010000000000000001.tmp-", 0) == 0);
    CHECK(listed(s, "main/wal/0000000100000000").empty());
    w.reset();
    CHECK(listDirectory(dir / "main/wal/0000000100000000").empty());
  }
  SUBCASE("list skips every hidden name, and entries that are neither files nor directories") {
    CHECK(put(s, wal, "x"));
    test::writeFile(dir / "main/wal/0000000100000000/.000000010000000000000002.tmp-1-abc",
                    "left by a crash");
    REQUIRE(::symlink("000000010000000000000001",
                      (dir / "main/wal/0000000100000000/link").c_str()) == 0);
    REQUIRE(::mkfifo((dir / "main/wal/0000000100000000/fifo").c_str(), 0600) == 0);
    REQUIRE(::mkdir((dir / "main/wal/0000000100000000/sub").c_str(), 0750) == 0);
    CHECK(listed(s, "main/wal/0000000100000000") == Names{"000000010000000000000001", "sub/"});
  }
  SUBCASE("a directory is not an object") {
    CHECK(put(s, wal, "x"));
    Error e = thrownError([&] { s.info("main/wal"); });
    CHECK(e.code() == ErrorCode::Storage);
    CHECK(what(e) == Containing("is not a regular file"));
    io::MemorySink out;
    CHECK(thrownError([&] { s.read("main/wal", out, {}); }).code() == ErrorCode::Storage);
  }
  SUBCASE("a file where a directory belongs makes the write fail") {
    CHECK(put(s, "main/wal", "a file"));
    Error e = thrownError([&] { s.newWrite(wal, {}); });
    CHECK(e.code() == ErrorCode::Storage);
    CHECK(what(e) == Containing("exists and is not a directory"));
  }
}

TEST_CASE("two PosixStorage instances racing for one name: the first commit wins") {
  // Two archivers (a primary and a standby with archive_mode = always) share one repository.
  for (bool tmpfile : {true, false}) {
    CAPTURE(tmpfile);
    test::TempDir dir;
    PosixStorage a(dir.path(), {.sync = false, .allowTmpfile = tmpfile});
    PosixStorage b(dir.path(), {.sync = false, .allowTmpfile = tmpfile});
    const std::string wal = "main/wal/0000000100000000/000000010000000000000001";
    auto first = a.newWrite(wal, {.noReplace = true});
    auto second = b.newWrite(wal, {.noReplace = true});
    first->write(io::asBytes("from a"));
    second->write(io::asBytes("from b"));
    CHECK(second->commit());
    CHECK_FALSE(first->commit());
    first.reset();
    second.reset();
    CHECK(std::string(io::asText(test::readFile(dir / wal))) == "from b");
    CHECK(listDirectory(dir / "main/wal/0000000100000000") == Names{"000000010000000000000001"});
  }
}

// Needs root (it chowns): skipped, and reported as skipped, otherwise.
TEST_CASE("PosixStorage run by root keeps the repository owned by its owner" *
          doctest::skip(::geteuid() != 0)) {
  // root running a backup or a push by hand must not leave folders postgres cannot write into.
  test::TempDir dir;
  const std::string root = dir / "repo";
  REQUIRE(::mkdir(root.c_str(), 0750) == 0);
  REQUIRE(::chown(root.c_str(), 65534, 65534) == 0);
  PosixStorage s(root, {.sync = false});
  auto write = s.newWrite("main/wal/0000000100000000/000000010000000000000001", {});
  write->write(io::asBytes("x"));
  REQUIRE(write->commit());
  std::string holder;
  auto lock = s.tryLock("main/backup.lock", "test", holder);
  REQUIRE(lock);
  for (const std::string& path :
       {root + "/main", root + "/main/wal", root + "/main/wal/0000000100000000",
        root + "/main/wal/0000000100000000/000000010000000000000001", root + "/main/backup.lock"}) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CAPTURE(path);
    CHECK(st.st_uid == 65534);
    CHECK(st.st_gid == 65534);
  }
}

TEST_CASE("PosixStorage run by root gives away no file of root's the repository links to" *
          doctest::skip(::geteuid() != 0)) {
  // The repository's owner names root's files from it; root's lock refuses them: it would write
  // into them and give them away.
  test::TempDir dir;
  const std::string root = dir / "repo";
  REQUIRE(::mkdir(root.c_str(), 0750) == 0);
  REQUIRE(::mkdir((root + "/main").c_str(), 0750) == 0);
  for (const std::string& folder : {root, root + "/main"})
    REQUIRE(::chown(folder.c_str(), 65534, 65534) == 0);
  test::writeFile(dir / "secret", "root's");
  test::writeFile(dir / "other", "root's too");
  REQUIRE(::symlink((dir / "secret").c_str(), (root + "/main/backup.lock").c_str()) == 0);
  REQUIRE(::link((dir / "other").c_str(), (root + "/main/expire.lock").c_str()) == 0);
  PosixStorage s(root, {.sync = false});
  std::string holder;
  CHECK_THROWS(s.tryLock("main/backup.lock", "test", holder));
  try {
    s.tryLock("main/expire.lock", "test", holder);
    FAIL("a lock file with a second name was taken");
  } catch (const Error& e) {
    CHECK(e.hint().find("a second name (a hard link)") != std::string::npos);
  }
  CHECK(test::readText(dir / "secret") == "root's");
  CHECK(test::readText(dir / "other") == "root's too");
  for (const char* name : {"secret", "other"}) {
    struct stat st {};
    REQUIRE(::stat((dir / name).c_str(), &st) == 0);
    CAPTURE(name);
    CHECK(st.st_uid == 0);
  }
}

// Needs root (it runs the driver as 'nobody' in a child): skipped, and reported as skipped,
// otherwise.
TEST_CASE("a permission error on the repository names the user, the owner and mode, and the fix" *
          doctest::skip(::geteuid() != 0)) {
  test::TempDir dir;
  REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
  const std::string root = dir / "repo";
  REQUIRE(::mkdir(root.c_str(), 0755) == 0);
  const std::string storage = std::to_string(int(ErrorCode::Storage));
  auto write = [&] {
    PosixStorage s(root, {.sync = false});
    s.newWrite("main/wal/0000000100000000/000000010000000000000001", {});
  };
  SUBCASE("a repository root made by root: chown it to the user tidemark runs as") {
    CHECK(thrownAsNobody(write) ==
          storage + "\ncannot create directory '" + root + "/main': Permission denied\n" +
              "tidemark runs as 'nobody' (uid 65534); '" + root +
              "' belongs to 'root' (group 'root', mode 0755); as root, run: chown -R nobody: '" +
              root +
              "' (the repository belongs to the user the server's archive_command runs as, "
              "usually postgres)");
  }
  SUBCASE("a folder of the user's own without write permission: chmod the repository") {
    REQUIRE(::chown(root.c_str(), 65534, 65534) == 0);
    REQUIRE(::mkdir((root + "/main").c_str(), 0555) == 0);
    REQUIRE(::chown((root + "/main").c_str(), 65534, 65534) == 0);
    CHECK(thrownAsNobody(write) ==
          storage + "\ncannot create directory '" + root + "/main/wal': Permission denied\n" +
              "tidemark runs as 'nobody' (uid 65534); '" + root +
              "/main' belongs to 'nobody' (group 'nogroup', mode 0555); run: chmod -R u+rwX '" +
              root + "'");
  }
  SUBCASE("an object another user owns, unreadable: run as the owner, or chown") {
    REQUIRE(::chown(root.c_str(), 65534, 65534) == 0);
    test::writeFile(root + "/stanza.json", "{}");
    REQUIRE(::chown((root + "/stanza.json").c_str(), 1, 1) == 0);
    REQUIRE(::chmod((root + "/stanza.json").c_str(), 0600) == 0);
    std::string report = thrownAsNobody([&] {
      PosixStorage s(root, {.sync = false});
      io::NullSink discard;
      s.read("stanza.json", discard, {});
    });
    CHECK(report == storage + "\ncannot open '" + root + "/stanza.json': Permission denied\n" +
                        "tidemark runs as 'nobody' (uid 65534); '" + root +
                        "/stanza.json' belongs to 'daemon' (group 'daemon', mode 0600); run "
                        "tidemark as 'daemon', its owner (sudo -u daemon ...): a chown to "
                        "'nobody' would lock out what writes there as 'daemon' (the server's "
                        "archive_command, when that is the server's user)");
  }
  SUBCASE("a folder above the repository the user may not enter is named, not the repository") {
    const std::string outer = dir / "outer", inner = dir / "outer/repo";
    REQUIRE(::mkdir(outer.c_str(), 0700) == 0);
    REQUIRE(::mkdir(inner.c_str(), 0755) == 0);
    REQUIRE(::chown(inner.c_str(), 65534, 65534) == 0);
    std::string report = thrownAsNobody([&] {
      PosixStorage s(inner, {.sync = false});
      s.info("main/stanza.json");
    });
    CHECK(report == storage + "\ncannot access '" + inner +
                        "/main/stanza.json': Permission denied\n" +
                        "tidemark runs as 'nobody' (uid 65534); '" + outer +
                        "' belongs to 'root' (group 'root', mode 0700); let 'nobody' enter it: "
                        "chmod o+x '" +
                        outer + "', or move the repository");
  }
}
