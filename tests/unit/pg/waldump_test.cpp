// Unit tests of common/pg/waldump.h: the lines of pg_waldump --rmgr=Transaction that carry the
// timestamps a time target stops at (as PostgreSQL 15's pg_waldump prints them with TZ=UTC).
#include "common/pg/waldump.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "support/check.h"
#include "support/segment.h"

using namespace tidemark;

TEST_CASE("parseWalDumpLine reads commits, aborts and their prepared forms, and nothing else") {
  auto commit = pg::parseWalDumpLine(
      "rmgr: Transaction len (rec/tot):     66/    66, tx:        717, lsn: 0/014F9CB8, prev "
      "0/014F9AA0, desc: COMMIT 2026-12-04 18:13:45.599586 UTC; inval msgs: catcache 21");
  REQUIRE(commit);
  CHECK(commit->lsn == 0x014F9CB8);
  CHECK(commit->kind == "COMMIT");
  CHECK(formatTimestamp(commit->time) == "2026-12-04 18:13:45.599586+00");

  auto abort = pg::parseWalDumpLine(
      "rmgr: Transaction len (rec/tot):     34/    34, tx:        726, lsn: 0/01516810, prev "
      "0/015167D0, desc: ABORT 2026-12-04 18:14:13.795147 UTC");
  REQUIRE(abort);
  CHECK(abort->kind == "ABORT");
  CHECK(formatTimestamp(abort->time) == "2026-12-04 18:14:13.795147+00");

  auto prepared = pg::parseWalDumpLine(
      "rmgr: Transaction len (rec/tot):     42/    42, tx:          0, lsn: 1/01516970, prev "
      "0/01516878, desc: COMMIT_PREPARED 727: 2026-12-04 18:14:13.798953 UTC");
  REQUIRE(prepared);
  CHECK(prepared->lsn == 0x101516970ULL);
  CHECK(prepared->kind == "COMMIT_PREPARED");
  CHECK(formatTimestamp(prepared->time) == "2026-12-04 18:14:13.798953+00");
  auto rolledBack = pg::parseWalDumpLine(
      "rmgr: Transaction len (rec/tot):     42/    42, tx:          0, lsn: 0/01516AD8, prev "
      "0/015169E0, desc: ABORT_PREPARED 728: 2026-12-04 18:14:13.806721 UTC");
  REQUIRE(rolledBack);
  CHECK(rolledBack->kind == "ABORT_PREPARED");

  // PREPARE carries a time too, but recovery does not stop at it.
  CHECK_FALSE(pg::parseWalDumpLine(
      "rmgr: Transaction len (rec/tot):    242/   242, tx:        727, lsn: 0/01516878, prev "
      "0/01516838, desc: PREPARE gid x: 2026-12-04 18:14:13.795527 UTC"));
  CHECK_FALSE(pg::parseWalDumpLine(
      "rmgr: Heap        len (rec/tot):     59/    59, tx:        717, lsn: 0/014F9C78, prev "
      "0/014F9C40, desc: INSERT off 1 flags 0x00"));
  CHECK_FALSE(pg::parseWalDumpLine(
      "pg_waldump: error: error in WAL record at 0/1500718: invalid record length at 0/1500790: "
      "wanted 24, got 0"));
  // Another zone than UTC (tidemark runs it with TZ=UTC) is not guessed at.
  CHECK_FALSE(pg::parseWalDumpLine(
      "rmgr: Transaction len (rec/tot):     34/    34, tx:        725, lsn: 0/015167A8, prev "
      "0/01516768, desc: COMMIT 2026-12-04 19:14:13.791870 CET"));
}

TEST_CASE("findPgProgram looks in the directory given, and nowhere else then") {
  CHECK_FALSE(pg::findPgProgram("pg_waldump", 15, "/nonexistent"));
  CHECK(pg::findPgProgram("sh", 15, "/bin") == "/bin/sh");
}

TEST_CASE("a program's major version is read from its --version line") {
  CHECK(pg::parseProgramVersion("pg_waldump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)") == 15);
  CHECK(pg::parseProgramVersion("postgres (PostgreSQL) 16.4") == 16);
  CHECK(pg::parseProgramVersion("postgres (PostgreSQL) 17devel") == 17);
  CHECK_FALSE(pg::parseProgramVersion(""));
  CHECK_FALSE(pg::parseProgramVersion("sh: 1: --version: not found"));
  CHECK_FALSE(pg::parseProgramVersion("postgres (PostgreSQL) beta"));
  // Run: a program that answers, one in a path with a quote, one that answers nothing useful.
  test::TempDir dir;
  const std::string odd = dir / "it's pg_waldump";
  test::writeFile(odd, "#!/bin/sh\necho \"pg_waldump (PostgreSQL) 16.2\"\n");
  REQUIRE(::chmod(odd.c_str(), 0755) == 0);
  CHECK(pg::programVersion(odd) == 16);
  CHECK_FALSE(pg::programVersion("/bin/true"));
  CHECK_FALSE(pg::programVersion(dir / "missing"));
  // What it says on its standard error is not its answer.
  const std::string noisy = dir / "noisy";
  test::writeFile(noisy,
                  "#!/bin/sh\necho 'postgres (PostgreSQL) 14.1' >&2\n"
                  "echo 'postgres (PostgreSQL) 15.3'\n");
  REQUIRE(::chmod(noisy.c_str(), 0755) == 0);
  CHECK(pg::programVersion(noisy) == 15);
}

TEST_CASE("a program that does not answer its --version is stopped, and the version is unknown") {
  test::TempDir dir;
  const std::string stuck = dir / "postgres";
  test::writeFile(stuck, "#!/bin/sh\nexec sleep 60\n");
  REQUIRE(::chmod(stuck.c_str(), 0755) == 0);
  const auto started = std::chrono::steady_clock::now();
  CHECK_FALSE(pg::programVersion(stuck, std::chrono::milliseconds(300)));
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(20));
}

TEST_CASE("a stop signal is not taken for a program that did not answer: the command stops") {
  const test::StopNoted noted(SIGINT);
  CHECK(test::thrownError([] { (void)pg::programVersion("/bin/true"); }).code() ==
        ErrorCode::Interrupted);
}

TEST_CASE("findPgProgram asks the pg_config in PATH for its version and its bindir") {
  test::TempDir tools, bin;
  const std::string waldump = bin / "pg_waldump";
  test::writeFile(waldump, "#!/bin/sh\n");
  REQUIRE(::chmod(waldump.c_str(), 0755) == 0);
  const std::string pgConfig = tools / "pg_config";
  test::writeFile(pgConfig,
                  "#!/bin/sh\ncase \"$1\" in\n--version) echo 'PostgreSQL 98.2' ;;\n"
                  "--bindir) echo '" +
                      bin.path() + "' ;;\nesac\n");
  REQUIRE(::chmod(pgConfig.c_str(), 0755) == 0);
  test::ScopedEnv path("PATH", tools.path() + ":/usr/bin:/bin");
  const auto found = pg::findPgProgram("pg_waldump", 98);
  const auto otherVersion = pg::findPgProgram("pg_waldump", 97);
  const auto otherProgram = pg::findPgProgram("pg_dump", 98);
  CHECK(found == waldump);
  CHECK_FALSE(otherVersion);
  CHECK_FALSE(otherProgram);
}

namespace {

// A stand-in for pg_waldump printing `output` (and exiting with `status`), in a fresh directory.
struct FakeWalDump {
  std::string dir, path;
  FakeWalDump(const std::string& output, int status) {
    char pattern[] = "/tmp/tidemark-waldump-test-XXXXXX";
    REQUIRE(::mkdtemp(pattern));
    dir = pattern;
    path = dir + "/pg_waldump";
    std::ofstream script(path);
    script << "#!/bin/sh\ncat <<'EOF'\n" << output << "EOF\nexit " << status << "\n";
    script.close();
    ::chmod(path.c_str(), 0755);
  }
  ~FakeWalDump() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

const char* kRecord =
    "rmgr: Heap        len (rec/tot):     59/    59, tx:        717, lsn: 0/01000100, prev "
    "0/01000028, desc: INSERT off 1 flags 0x00\n";
const char* kCommit =
    "rmgr: Transaction len (rec/tot):     34/    34, tx:        717, lsn: 0/01000140, prev "
    "0/01000100, desc: COMMIT 2026-12-04 18:14:13.791870 UTC\n";

}  // namespace

TEST_CASE("xactTimes reads the commits of a chain of records, and refuses a forged line") {
  SUBCASE("a chain, ending where the files end: the commits in range") {
    FakeWalDump dump(std::string(kRecord) + kCommit +
                         "pg_waldump: error: error in WAL record at 0/1000140: invalid record "
                         "length at 0/1000168: wanted 24, got 0\n",
                     1);
    auto records = pg::xactTimes(dump.path, dump.dir, "000000010000000000000001",
                                 "000000010000000000000001", 0x1000000, 0x2000000);
    REQUIRE(records.size() == 1);
    CHECK(records.front().lsn == 0x1000140);
    // Out of range: left out.
    CHECK(pg::xactTimes(dump.path, dump.dir, "a", "a", 0x1000000, 0x1000140).empty());
  }
  SUBCASE("a line break in a prepared transaction's identifier cannot forge a commit") {
    FakeWalDump dump(std::string(kRecord) +
                         "rmgr: Transaction len (rec/tot):    242/   242, tx:        718, lsn: "
                         "0/01000140, prev 0/01000100, desc: PREPARE gid x\n"
                         "rmgr: Transaction len (rec/tot):     34/    34, tx:        719, lsn: "
                         "0/01000150, prev 0/01000140, desc: COMMIT 2099-01-01 00:00:00.000000 "
                         "UTC\n"
                         // The identifier's end, dressed as a record that chains to the forgery.
                         "rmgr: Transaction len (rec/tot):     42/    42, tx:          0, lsn: "
                         "0/01000160, prev 0/01000150, desc: COMMIT_PREPARED 1: 2026-12-04 "
                         "18:14:13.795527 UTC\n"
                         // The real next record follows the PREPARE: the chain breaks.
                         "rmgr: Heap        len (rec/tot):     59/    59, tx:        720, lsn: "
                         "0/01000238, prev 0/01000140, desc: INSERT off 2 flags 0x00\n",
                     0);
    Error e = test::thrownError(
        [&] { pg::xactTimes(dump.path, dump.dir, "f", "f", 0x1000000, 0x2000000); });
    CHECK(e.code() == ErrorCode::Corrupt);
    CHECK(test::what(e) == test::Containing("does not chain from record to record"));
  }
  SUBCASE("one that does not finish is stopped at the timeout") {
    FakeWalDump dump(std::string(kRecord), 0);
    {
      std::ofstream script(dump.path, std::ios::trunc);
      script << "#!/bin/sh\nexec sleep 30\n";
    }
    auto started = std::chrono::steady_clock::now();
    Error e = test::thrownError([&] {
      pg::xactTimes(dump.path, dump.dir, "f", "f", 0, 0x2000000, std::chrono::milliseconds(300));
    });
    CHECK(e.code() == ErrorCode::Timeout);
    CHECK(test::what(e) == test::Containing("did not finish reading f within 300 ms"));
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(20));
  }
  SUBCASE("another failure, with nothing read, is an error") {
    FakeWalDump dump("pg_waldump: error: could not open file \"x\": Permission denied\n", 1);
    CHECK(test::thrownError([&] {
            pg::xactTimes(dump.path, dump.dir, "f", "f", 0, 0x2000000);
          }).code() == ErrorCode::LocalIo);
  }
}
