// Unit tests of recover/restore.h: a small backup (GNU tar archives of a fake data directory and
// tablespace, and a manifest, stored as repository objects in memory) restored into temporary
// directories, and every refusal. Restores of real backups run in tests/integration.
#include "common/restore/restore.h"

#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <system_error>

#include "common/repo/layout.h"
#include "common/repo/object.h"
#include "support/check.h"
#include "support/forwarding_storage.h"
#include "support/memory_storage.h"
#include "support/segment.h"

using namespace tidemark;
using restore::restoreBackup;
using restore::RestoreOptions;
using test::Containing;
using test::listDirectory;
using test::thrownError;
using test::what;

namespace {

constexpr std::uint32_t kOid = 16385;
const std::string kLabel = "20261122T101500Z";

std::string text(const io::Buffer& bytes) {
  return std::string(io::asText(bytes));
}

std::string pattern(std::size_t size, unsigned seed) {
  std::string out(size, '\0');
  for (std::size_t i = 0; i < size; ++i)
    out[i] = char((i * 131 + seed) ^ (i >> 7));
  return out;
}

void makeDirectories(const std::string& path) {
  for (std::size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    std::string part = path.substr(0, slash);
    if (::mkdir(part.c_str(), 0755) != 0) REQUIRE(errno == EEXIST);
    if (slash == std::string::npos) break;
  }
}

mode_t modeOf(const std::string& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

std::string linkTarget(const std::string& path) {
  char buffer[4096];
  ssize_t n = ::readlink(path.c_str(), buffer, sizeof buffer);
  REQUIRE(n > 0);
  return std::string(buffer, std::size_t(n));
}

// Every entry below `root`: a file's content, "<dir>" or "<link -> target>", by relative path.
using Tree = std::map<std::string, std::string>;
Tree treeOf(const std::string& root, const std::string& below = "") {
  Tree tree;
  for (const auto& name : listDirectory(below.empty() ? root : root + "/" + below)) {
    std::string rel = below.empty() ? name : below + "/" + name;
    std::string path = root + "/" + rel;
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    if (S_ISLNK(st.st_mode)) {
      tree[rel] = "<link -> " + linkTarget(path) + ">";
    } else if (S_ISDIR(st.st_mode)) {
      tree[rel] = "<dir>";
      tree.merge(treeOf(root, rel));
    } else {
      tree[rel] = text(test::readFile(path));
    }
  }
  return tree;
}

// Files in a directory tree; directories are made as needed.
void writeTree(const std::string& root, const Tree& files) {
  for (const auto& [rel, content] : files) {
    if (content == "<dir>") {
      makeDirectories(root + "/" + rel);
      continue;
    }
    std::string path = root + "/" + rel;
    makeDirectories(path.substr(0, path.rfind('/')));
    test::writeFile(path, content);
  }
}

// GNU tar's ustar archive of `what` (arguments after -cf ARCHIVE).
io::Buffer gnuTar(const std::string& archive, const std::string& what) {
  std::string command = fmt::format("tar --format=ustar -cf '{}' {} 2>&1", archive, what);
  INFO(command);
  REQUIRE(std::system(command.c_str()) == 0);
  return test::readFile(archive);
}

// A fake cluster's data directory and tablespace. tablespace_map names where the tablespace
// lived on the server; the tests record a temporary directory as that location in backup.json
// instead, so that restoring to the "original location" writes nowhere else.
const Tree kBase{
    {"PG_VERSION", "15\n"},
    {"backup_label",
     "START WAL LOCATION: 0/5000028 (file 000000010000000000000005)\nLABEL: tidemark\n"},
    {"tablespace_map", "16385 /srv/ts1\n"},
    {"global", "<dir>"},
    {"global/pg_control", pattern(8192, 1)},
    {"base", "<dir>"},
    {"base/1", "<dir>"},
    {"base/1/1259", pattern(200000, 2)},
    {"base/1/PG_VERSION", "15\n"},
    {"pg_tblspc", "<dir>"},
    {"pg_wal", "<dir>"},
};
const Tree kTablespace{
    {"PG_15_202209061", "<dir>"},
    {"PG_15_202209061/1", "<dir>"},
    {"PG_15_202209061/1/16390", pattern(50000, 3)},
};
const std::string kManifest = "{ \"PostgreSQL-Backup-Manifest-Version\": 1, \"Files\": [] }\n";

// Their GNU tar archives, made once: each tar run is a process start.
struct Archives {
  test::TempDir dir{"tidemark-restore-source"};
  io::Buffer base, tablespace;
  Archives() {
    writeTree(dir / "base", kBase);
    REQUIRE(::chmod((dir / "base/base/1/1259").c_str(), 0600) == 0);
    writeTree(dir / "ts", kTablespace);
    base = gnuTar(dir / "base.tar", "-C '" + dir / "base" + "' .");
    tablespace = gnuTar(dir / "ts.tar", "-C '" + dir / "ts" + "' .");
  }
};
const Archives& archives() {
  static const Archives made;
  return made;
}

// A backup of the fake cluster with its tablespace and manifest, stored in memory.
struct Fixture {
  test::TempDir dir{"tidemark-restore"};
  test::MemoryStorage storage;
  const std::string tsLocation = dir / "ts-on-server";  // where the tablespace lived
  const std::string data = dir / "data";                // where the backup is restored
  repo::BackupInfo info;

  Fixture() {
    info.label = kLabel;
    info.compression = io::CompressType::Zstd;
    store("base.tar", archives().base);
    store(fmt::format("{}.tar", kOid), archives().tablespace, kOid, tsLocation);
    store("backup_manifest", io::Buffer(kManifest.begin(), kManifest.end()));
  }

  std::string path(const std::string& name) const {
    return repo::backupObject("main", kLabel, name);
  }

  // Stores `bytes` as the object `name` and records it in `info`.
  void store(const std::string& name, const io::Buffer& bytes, std::uint32_t oid = 0,
             std::string location = {}) {
    repo::ObjectWriter writer(storage.newWrite(path(name), {}), path(name),
                              {.compress = io::CompressType::Zstd, .level = 1});
    writer.write(bytes);
    writer.close();
    REQUIRE(writer.commit());
    const auto& summary = writer.summary();
    info.objects.push_back({.name = name,
                            .tablespaceOid = oid,
                            .tablespaceLocation = std::move(location),
                            .size = summary.plainSize,
                            .storedSize = summary.storedSize,
                            .sha256 = summary.plainSha256});
  }

  restore::RestoreStats restore(RestoreOptions options = {}) {
    options.sync = false;
    options.terminal = 0;
    return restoreBackup(repo::Repository(storage, "main"), info, data, options);
  }
  Error restoreError(RestoreOptions options = {}) {
    return thrownError([&] { restore(std::move(options)); });
  }
};

}  // namespace

TEST_CASE("restoreBackup puts a backup back, byte for byte, with its tablespace") {
  Fixture f;
  SUBCASE("into the original location: every file as archived, tablespace_map unchanged") {
    auto stats = f.restore();
    Tree expected = kBase;
    expected["backup_manifest"] = kManifest;
    expected[fmt::format("pg_tblspc/{}", kOid)] = "<link -> " + f.tsLocation + ">";
    CHECK(treeOf(f.data) == expected);
    CHECK(treeOf(f.tsLocation) == kTablespace);
    CHECK(modeOf(f.data) == 0700);
    CHECK(modeOf(f.tsLocation) == 0700);
    CHECK(modeOf(f.data + "/base/1/1259") == 0600);
    CHECK(modeOf(f.data + "/backup_manifest") == 0600);
    CHECK(stats.bytes == f.info.size());
    CHECK(stats.files == 7);  // 6 files of base.tar, 1 of the tablespace
  }
  SUBCASE("into an empty data directory that exists with a mode PostgreSQL accepts, kept") {
    makeDirectories(f.data);
    ::chmod(f.data.c_str(), 0750);
    f.restore();
    CHECK(modeOf(f.data) == 0750);
    CHECK(text(test::readFile(f.data + "/base/1/1259")) == kBase.at("base/1/1259"));
  }
  SUBCASE("into an empty tablespace location that exists: its mode is left as it was") {
    makeDirectories(f.tsLocation);
    ::chmod(f.tsLocation.c_str(), 0755);
    f.restore();
    CHECK(treeOf(f.tsLocation) == kTablespace);
    CHECK(modeOf(f.tsLocation) == 0755);
  }
  SUBCASE("into a mapped location: link and tablespace_map name it, the original is untouched") {
    const std::string mapped = f.dir / "elsewhere/ts";
    f.restore({.tablespaceMap = {{kOid, mapped}}});
    CHECK(treeOf(mapped) == kTablespace);
    CHECK_FALSE(test::exists(f.tsLocation));
    CHECK(linkTarget(f.data + "/pg_tblspc/16385") == mapped);
    CHECK(text(test::readFile(f.data + "/tablespace_map")) == "16385 " + mapped + "\n");
    CHECK(modeOf(f.data + "/tablespace_map") == 0600);
    Tree expected = kBase;
    expected["backup_manifest"] = kManifest;
    expected["pg_tblspc/16385"] = "<link -> " + mapped + ">";
    expected["tablespace_map"] = "16385 " + mapped + "\n";
    CHECK(treeOf(f.data) == expected);
  }
  SUBCASE("tablespace_map escapes a backslash or newline in a location, as PostgreSQL does") {
    const std::string mapped = f.dir / "odd\\name\nts";
    f.restore({.tablespaceMap = {{kOid, mapped}}});
    CHECK(treeOf(mapped) == kTablespace);
    CHECK(linkTarget(f.data + "/pg_tblspc/16385") == mapped);
    CHECK(text(test::readFile(f.data + "/tablespace_map")) ==
          "16385 " + f.dir.path() + "/odd\\\\name\\\nts\n");
  }
  SUBCASE("a backup of a standby: its standby.signal is not restored (recover writes its own)") {
    Tree standby = kBase;
    standby["standby.signal"] = "";
    writeTree(f.dir / "standby", standby);
    io::Buffer tar = gnuTar(f.dir / "standby.tar", "-C '" + f.dir / "standby" + "' .");
    f.info.objects.clear();
    f.storage.remove(f.path("base.tar"));
    f.store("base.tar", tar);
    auto stats = f.restore();
    CHECK_FALSE(test::exists(f.data + "/standby.signal"));
    CHECK(text(test::readFile(f.data + "/base/1/1259")) == kBase.at("base/1/1259"));
    CHECK(stats.files == 6);
  }
  SUBCASE("a backup without tablespaces makes no pg_tblspc links, keeps its tablespace_map") {
    f.info.objects.erase(f.info.objects.begin() + 1);
    f.restore();
    CHECK(listDirectory(f.data + "/pg_tblspc").empty());
    CHECK(text(test::readFile(f.data + "/tablespace_map")) == kBase.at("tablespace_map"));
  }
}

TEST_CASE("restoreBackup refuses places it must not write to") {
  Fixture f;
  SUBCASE("a data directory that is not empty is InvalidInput, and nothing is written") {
    writeTree(f.data, {{"postmaster.pid", "4242\n"}});
    Error e = f.restoreError();
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == "data directory '" + f.data + "' is not empty");
    CHECK(listDirectory(f.data) == std::vector<std::string>{"postmaster.pid"});
    CHECK_FALSE(test::exists(f.tsLocation));
  }
  SUBCASE("a data directory holding only a hidden file is not empty") {
    writeTree(f.data, {{".keep", ""}});
    CHECK(f.restoreError().code() == ErrorCode::InvalidInput);
  }
  SUBCASE("a data directory that is a file is InvalidInput") {
    test::writeFile(f.data, "not a directory");
    Error e = f.restoreError();
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == "data directory '" + f.data + "' exists and is not a directory");
  }
  SUBCASE("a relative data directory is InvalidInput") {
    Error e = thrownError([&] {
      restoreBackup(repo::Repository(f.storage, "main"), f.info, "data",
                    {.sync = false, .terminal = 0});
    });
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == "data directory 'data' is not an absolute path");
  }
  SUBCASE("a tablespace location that is not empty is InvalidInput, and is left as it was") {
    writeTree(f.tsLocation, {{"PG_15_202209061/1/16390", "another cluster's"}});
    Error e = f.restoreError();
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == "the location of tablespace 16385 '" + f.tsLocation + "' is not empty");
    CHECK(text(test::readFile(f.tsLocation + "/PG_15_202209061/1/16390")) == "another cluster's");
  }
  SUBCASE("a mapped location that is not empty is InvalidInput") {
    const std::string mapped = f.dir / "mapped";
    writeTree(mapped, {{"x", "1"}});
    Error e = f.restoreError({.tablespaceMap = {{kOid, mapped}}});
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == "the location of tablespace 16385 '" + mapped + "' is not empty");
  }
  SUBCASE("a relative mapped location is InvalidInput") {
    Error e = f.restoreError({.tablespaceMap = {{kOid, "ts"}}});
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == "the location of tablespace 16385 'ts' is not an absolute path");
  }
  SUBCASE("an empty data directory that others may read is refused, its mode unchanged") {
    makeDirectories(f.data);
    ::chmod(f.data.c_str(), 0755);
    Error e = f.restoreError();
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == "data directory '" + f.data +
                         "' has mode 0755: PostgreSQL refuses to start in one that others can "
                         "read or the group can write");
    CHECK(modeOf(f.data) == 0755);
    CHECK(listDirectory(f.data).empty());
  }
}

TEST_CASE("a tablespace location may not be a system directory or lie under one") {
  // backup.json says where each tablespace goes, and root creates that directory and hands it to
  // the server's user: a forged location must not give away /usr/local/sbin.
  for (const std::string location :
       {"/", "/usr", "/usr/local/sbin", "/etc/cron.d", "/bin", "/boot/x", "/dev/shm/ts", "/lib",
        "/lib64/ts", "/libx32", "/proc/1", "/root/.ssh", "/sbin/", "/sys/fs", "/srv/../usr/share",
        "//usr//local"}) {
    CAPTURE(location);
    Error e = thrownError([&] { restore::checkTablespaceLocation(16385, location); });
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(e.hint() == "restore it elsewhere: --tablespace-map 16385=DIR");
  }
  for (const std::string location : {"/srv/ts", "/var/lib/postgresql/ts", "/tmp/usr", "/opt/etc"})
    CHECK_NOTHROW(restore::checkTablespaceLocation(16385, location));

  SUBCASE("a symbolic link into a system directory counts as the directory") {
    test::TempDir dir("tidemark-location");
    REQUIRE(::symlink("/usr/local", (dir / "link").c_str()) == 0);
    CHECK_THROWS_AS(restore::checkTablespaceLocation(16385, dir / "link/sbin"), Error);
  }
  SUBCASE("restoreBackup refuses it before writing anything") {
    Fixture f;
    f.info.objects[1].tablespaceLocation = "/usr/local/sbin";
    Error e = f.restoreError();
    CHECK(what(e) ==
          "the location of tablespace 16385 '/usr/local/sbin' is or lies under the system "
          "directory /usr: tidemark does not create or restore into one");
    CHECK_FALSE(test::exists(f.data));
    // Mapped elsewhere, it restores.
    const std::string mapped = f.dir / "mapped";
    f.restore({.tablespaceMap = {{kOid, mapped}}});
    CHECK(treeOf(mapped) == kTablespace);
  }
}

TEST_CASE("restoreBackup trusts only the objects backup.json records") {
  Fixture f;
  SUBCASE("an object whose content differs from what backup.json records is Corrupt") {
    f.info.objects[0].sha256[0] ^= 1;
    Error e = f.restoreError();
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == Containing("backup object '" + f.path("base.tar") +
                                "' is not the one its backup.json records (SHA-256 "));
    CHECK(e.hint() ==
          "the backup is damaged or was tampered with: choose another one with "
          "--backup=LABEL (tidemark info lists them)");
  }
  SUBCASE("an object swapped for another valid one is Corrupt") {
    f.storage.setObject(f.path("base.tar"), *f.storage.object(f.path("16385.tar")));
    Error e = f.restoreError();
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) ==
          fmt::format(
              "backup object '{}' is not the one its backup.json records (SHA-256 {}, {} bytes; "
              "expected {}, {} bytes)",
              f.path("base.tar"), io::toHex(f.info.objects[1].sha256), f.info.objects[1].size,
              io::toHex(f.info.objects[0].sha256), f.info.objects[0].size));
  }
  SUBCASE("an object larger than backup.json records is stopped there, not extracted to its end") {
    f.info.objects[0].size = 2048;
    Error e = f.restoreError();
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == Containing("it holds more than 2048 bytes, the most it may hold"));
  }
  SUBCASE("a manifest that differs from backup.json is Corrupt, and not left in place") {
    f.info.objects[2].size += 1;
    Error e = f.restoreError();
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) ==
          Containing("backup object '" + f.path("backup_manifest") + "' is not the one"));
    CHECK_FALSE(test::exists(f.data + "/backup_manifest"));
  }
  SUBCASE("a missing object is Corrupt, naming it and the storage") {
    f.storage.remove(f.path("16385.tar"));
    Error e = f.restoreError();
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) ==
          "backup object '" + f.path("16385.tar") + "' is missing from " + f.storage.describe());
    CHECK(
        e.hint() ==
        "the backup is damaged: choose another one with --backup=LABEL (tidemark info lists them)");
  }
  SUBCASE("a damaged stored object is Corrupt") {
    io::Buffer bytes = *f.storage.object(f.path("base.tar"));
    bytes[bytes.size() / 2] ^= 0x40;
    f.storage.setObject(f.path("base.tar"), bytes);
    Error e = f.restoreError();
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(what(e) == Containing("object '" + f.path("base.tar") + "' in " + f.storage.describe() +
                                " failed verification"));
  }
  SUBCASE("an archive with a '../' path is InvalidInput, and nothing is written outside") {
    writeTree(f.dir / "evil/inner", {{"x", "1"}});
    test::writeFile(f.dir / "evil/escaped", "outside");
    f.info.objects.clear();
    f.storage.remove(f.path("base.tar"));
    f.store("base.tar",
            gnuTar(f.dir / "evil.tar", "-P -C '" + f.dir / "evil/inner" + "' x ../escaped"));
    Error e = f.restoreError();
    CHECK(e.code() == ErrorCode::InvalidInput);
    CHECK(what(e) == "refusing tar entry '../escaped': the path has a '..' component");
    CHECK_FALSE(test::exists(f.dir / "escaped"));
  }
  SUBCASE("a stop request is Interrupted") {
    std::atomic<int> calls{0};
    Error e =
        f.restoreError({.stopRequested = [&] { return ++calls > 1; }});  // after the first bytes
    CHECK(e.code() == ErrorCode::Interrupted);
    CHECK(what(e) == "the restore was interrupted; the data directory is incomplete");
    CHECK(calls == 2);
  }
}

namespace {

// A handle that can open other connections to the fixture's storage: tablespace archives are
// then restored on threads of their own.
repo::Repository threadedHandle(Fixture& f) {
  return repo::Repository(std::make_unique<test::ForwardingStorage>(f.storage), "main", {}, {},
                          [&f] { return std::make_unique<test::ForwardingStorage>(f.storage); });
}

}  // namespace

TEST_CASE("restoreBackup restores tablespaces on threads of their own") {
  Fixture f;
  const std::string second = f.dir / "ts2-on-server";
  f.store("16386.tar", archives().tablespace, 16386, second);
  auto stats = restoreBackup(threadedHandle(f), f.info, f.data,
                             {.sync = false, .terminal = 0, .parallel = 3});
  CHECK(stats.files == 8);
  CHECK(treeOf(f.tsLocation) == kTablespace);
  CHECK(treeOf(second) == kTablespace);
}

// Needs root: the child becomes a user whose thread limit is then enforced (root's never is).
TEST_CASE("a restore thread that cannot be created fails the restore, not the process" *
          doctest::skip(::geteuid() != 0)) {
  Fixture f;
  f.store("16386.tar", archives().tablespace, 16386, f.dir / "ts2-on-server");
  ::chmod(f.dir.path().c_str(), 0777);  // the child writes there as another user
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // One thread more than the child itself: the first worker is created, the second cannot be
    // (the first is still there: workers wait until all are created, so this is no race).
    rlimit limit{2, 2};
    int status = 1;
    if (::setgid(65533) == 0 && ::setuid(65533) == 0 && ::setrlimit(RLIMIT_NPROC, &limit) == 0) {
      try {
        restoreBackup(threadedHandle(f), f.info, f.data,
                      {.sync = false, .terminal = 0, .parallel = 3});
        status = 2;  // it should have failed
      } catch (const std::system_error&) {
        status = 0;  // the failure to start a thread, reported after the other thread was joined
      } catch (...) {
        status = 3;
      }
    }
    std::_Exit(status);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));  // not killed by SIGABRT (std::terminate)
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("chownTree gives the restored tree away without following a link" *
          doctest::skip(::geteuid() != 0)) {
  test::TempDir dir("tidemark-chown");
  const std::string root = dir / "data";
  makeDirectories(root + "/base/1");
  test::writeFile(root + "/base/1/1259", "x");
  // A file of root's elsewhere, and links to it and to its directory inside the tree.
  const std::string outside = dir / "outside";
  makeDirectories(outside);
  test::writeFile(outside + "/secret", "root's");
  REQUIRE(::symlink((outside + "/secret").c_str(), (root + "/link-to-file").c_str()) == 0);
  REQUIRE(::symlink(outside.c_str(), (root + "/base/link-to-dir").c_str()) == 0);
  auto ownerOf = [](const std::string& path) {
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    return st.st_uid;
  };
  const uid_t nobody = 65534;

  SUBCASE("what is below is given away, links themselves but never their targets") {
    restore::chownTree(root, false, nobody, nobody);
    CHECK(ownerOf(root) == 0);  // it existed: kept
    CHECK(ownerOf(root + "/base") == nobody);
    CHECK(ownerOf(root + "/base/1/1259") == nobody);
    CHECK(ownerOf(root + "/link-to-file") == nobody);
    CHECK(ownerOf(root + "/base/link-to-dir") == nobody);
    CHECK(ownerOf(outside) == 0);
    CHECK(ownerOf(outside + "/secret") == 0);
    restore::chownTree(root, true, nobody, nobody);
    CHECK(ownerOf(root) == nobody);  // created by tidemark: given away too
  }
  SUBCASE("a second name of a file elsewhere (a hard link) is refused, not given away") {
    REQUIRE(::link((outside + "/secret").c_str(), (root + "/base/1/planted").c_str()) == 0);
    Error e = thrownError([&] { restore::chownTree(root, false, nobody, nobody); });
    CHECK(e.code() == ErrorCode::LocalIo);
    CHECK(what(e) == Containing("has 2 names (hard links)"));
    CHECK(ownerOf(outside + "/secret") == 0);
  }
  SUBCASE("a root that is a link (swapped in during the restore) is refused, not followed") {
    const std::string swapped = dir / "swapped";
    REQUIRE(::symlink(outside.c_str(), swapped.c_str()) == 0);
    Error e = thrownError([&] { restore::chownTree(swapped, true, nobody, nobody); });
    CHECK(e.code() == ErrorCode::LocalIo);
    CHECK(ownerOf(outside) == 0);
    CHECK(ownerOf(outside + "/secret") == 0);
  }
}
