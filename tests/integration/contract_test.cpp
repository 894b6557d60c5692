// The exit-status contract of the binaries PostgreSQL calls, checked on the real binaries.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>
#include <regex>
#include <sstream>

#include "cluster.h"
#include "common/files/file.h"

namespace fs = std::filesystem;

namespace tidemark::test {

namespace {

std::size_t entriesIn(const std::string& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir))
    ++n;
  return n;
}

}  // namespace

TEST_CASE_TEMPLATE(
    "archive-push and archive-get keep the exit-status contract PostgreSQL relies on", Repo,
    PosixRepo, S3Repo, EncryptedPosixRepo, EncryptedS3Repo) {
  Workspace ws(Repo::value);
  std::string pgWal = ws.makeDir("source");
  SegmentSpec spec{.segmentNumber = 3};
  std::string segment = writeSegment(pgWal, spec);
  std::string name = segmentName(spec);
  ProcessOptions quiet{.stderrPath = ws.path("tidemark.log")};
  auto push = [&](const std::string& file, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{ws.push(), "--config", ws.config()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(file);
    return run(argv, quiet);
  };
  // archive-get run in `cwd` (PostgreSQL runs restore_command in the data directory).
  auto get = [&](const std::string& walName, const std::string& dest, const std::string& cwd,
                 std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{ws.get(), "--config", ws.config()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(walName);
    argv.push_back(dest);
    ProcessOptions options = quiet;
    options.cwd = cwd;
    return run(argv, options);
  };
  std::string recovering = ws.makeDir("recovering");
  writeFile(recovering + "/recovery.signal", "");
  std::string standby = ws.makeDir("standby");
  writeFile(standby + "/standby.signal", "");
  fs::create_directories(recovering + "/pg_wal");
  fs::create_directories(standby + "/pg_wal");

  const std::string object = Workspace::walObject(name);
  // No stanza yet: refused with a status PostgreSQL retries, naming stanza-create, and nothing is
  // created (an unmounted repository path must never become a repository).
  int beforeStanza = push(segment);
  CHECK(beforeStanza == exitStatus(ErrorCode::Config));
  CHECK(readText(ws.path("tidemark.log")).find("tidemark stanza-create") != std::string::npos);
  CHECK(ws.objects().empty());
  ws.createStanza(spec);
  REQUIRE(push(segment) == 0);
  REQUIRE(ws.hasObject(object));
  REQUIRE(ws.hasObject("main/stanza.json"));

  SUBCASE("a re-push of the same bytes exits 0") {
    CHECK(push(segment) == 0);
  }

  SUBCASE("every line logged, success or failure, has the documented prefix") {
    // "2026-12-03 16:36:35.555 UTC tidemark-archive-push[29797] INFO: ...": the prefix operators
    // grep PostgreSQL's log for, with the time zone as PostgreSQL writes it. A module compiled
    // against spdlog's header-only mode once logged its lines through a second, unconfigured logger
    // ("[2026-...] [info] pushed ...").
    fs::remove(ws.path("tidemark.log"));
    CHECK(push(segment) == 0);
    CHECK(get(name, "pg_wal/RECOVERYXLOG", recovering) == 0);
    CHECK(get("000000010000000000000009", "pg_wal/RECOVERYXLOG", recovering) == 1);
    CHECK(push(ws.path("not-a-wal-name")) != 0);
    std::string log = readText(ws.path("tidemark.log"));
    INFO(log);
    const std::regex line(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} ([A-Za-z]{2,6}|[+-]\d{4}) )"
                          R"(tidemark-archive-(push|get)\[\d+\] )"
                          R"((DEBUG|INFO|WARNING|ERROR|HINT): .*)");
    std::istringstream lines(log);
    int count = 0;
    for (std::string text; std::getline(lines, text); ++count)
      CHECK_MESSAGE(std::regex_match(text, line), text);
    CHECK(count >= 4);
  }

  SUBCASE("a re-push of different bytes is refused and the stored object is unchanged") {
    io::Buffer before = ws.readObject(object);
    SegmentSpec other = spec;
    other.seed = 2;
    writeFile(segment, io::ByteView(makeSegment(other)));
    int status = push(segment);
    CHECK(status >= 1);
    CHECK(status <= 125);
    CHECK(ws.readObject(object) == before);
  }

  SUBCASE("a segment from another cluster is refused and nothing is stored") {
    SegmentSpec foreign{.systemId = 7000000000000000999ULL, .segmentNumber = 4};
    std::string file = writeSegment(pgWal, foreign);
    int status = push(file);
    CHECK(status >= 1);
    CHECK(status <= 125);
    CHECK_FALSE(ws.hasObject(Workspace::walObject(segmentName(foreign))));
  }

  SUBCASE("a missing segment or .history file gets 1 and leaves no file") {
    CHECK(get("000000010000000000000009", "pg_wal/RECOVERYXLOG", recovering) == 1);
    CHECK(get("00000002.history", "pg_wal/RECOVERYHISTORY", recovering) == 1);
    CHECK(get("00000002.history", "pg_wal/RECOVERYHISTORY", standby) == 1);
    CHECK(entriesIn(recovering + "/pg_wal") == 0);
    CHECK(entriesIn(standby + "/pg_wal") == 0);
  }

  SUBCASE("an archived segment comes back byte-identical") {
    CHECK(get(name, "pg_wal/RECOVERYXLOG", recovering) == 0);
    CHECK(readFile(recovering + "/pg_wal/RECOVERYXLOG") == makeSegment(spec));
  }

  SUBCASE("a corrupted object gets 255 in recovery and 2..125 on a standby, and leaves no file") {
    io::Buffer stored = ws.readObject(object);
    stored[stored.size() / 2] ^= 0x01;
    ws.replaceObject(object, stored);
    CHECK(get(name, "pg_wal/RECOVERYXLOG", recovering) == 255);
    int status = get(name, "pg_wal/RECOVERYXLOG", standby);
    CHECK(status >= 2);
    CHECK(status <= 125);
    CHECK(entriesIn(recovering + "/pg_wal") == 0);
    CHECK(entriesIn(standby + "/pg_wal") == 0);
    // Run by hand, without a signal file: also 255.
    CHECK(get(name, ws.path("by-hand"), ws.root()) == 255);
    CHECK_FALSE(fs::exists(ws.path("by-hand")));
  }

  if (ws.encrypted()) {
    SUBCASE("encrypted: the object copied to another WAL file's name gets 255 in recovery") {
      SegmentSpec next{.segmentNumber = 4};
      std::string nextName = segmentName(next);
      ws.replaceObject(Workspace::walObject(nextName), ws.readObject(object));
      CHECK(get(nextName, "pg_wal/RECOVERYXLOG", recovering) == 255);
      CHECK(entriesIn(recovering + "/pg_wal") == 0);
    }

    SUBCASE("encrypted: another key gets 255 and names both keys; old-key-files reads it again") {
      std::string otherKey = ws.path("other.key");
      runOutput({ws.ctl(), "keygen", otherKey});
      giveToTestUser(otherKey);
      std::string log = ws.path("tidemark.log");
      CHECK(get(name, "pg_wal/RECOVERYXLOG", recovering, {"--encryption-key-file=" + otherKey}) ==
            255);
      std::string text(io::asText(readFile(log)));
      CHECK(text.find("was written with key ") != std::string::npos);
      CHECK(text.find("configured keys are ") != std::string::npos);
      CHECK(get(name, "pg_wal/RECOVERYXLOG", recovering,
                {"--encryption-key-file=" + otherKey,
                 "--encryption-old-key-files=" + ws.keyFile()}) == 0);
      CHECK(readFile(recovering + "/pg_wal/RECOVERYXLOG") == makeSegment(spec));
    }

    SUBCASE("encrypted: pushing unencrypted into the stanza is refused unless allow-mixed") {
      SegmentSpec next{.segmentNumber = 4};
      std::string file = writeSegment(pgWal, next);
      int status = push(file, {"--encryption-type=none"});
      CHECK(status == exitStatus(ErrorCode::Config));
      CHECK_FALSE(ws.hasObject(Workspace::walObject(segmentName(next))));
      CHECK(push(file, {"--encryption-type=none", "--encryption-allow-mixed=true"}) == 0);
      CHECK(ws.hasObject(Workspace::walObject(segmentName(next))));
    }
  }

  SUBCASE("an unreachable repository is an error, never 'not found'") {
    // posix: a repository path that does not exist (an unmounted NFS share); s3: a bucket that
    // does not exist.
    std::vector<std::string> elsewhere{ws.backend() == Backend::Posix
                                           ? "--repo-path=" + ws.path("not-mounted")
                                           : "--s3-bucket=no-such-bucket"};
    CHECK(get("000000010000000000000009", "pg_wal/RECOVERYXLOG", recovering, elsewhere) == 255);
    int status = get("000000010000000000000009", "pg_wal/RECOVERYXLOG", standby, elsewhere);
    CHECK(status >= 2);
    CHECK(status <= 125);
    CHECK(push(segment, elsewhere) >= 1);
    CHECK_FALSE(fs::exists(ws.path("not-mounted")));
  }

  SUBCASE("a stanza that does not exist is an error, never 'not found'") {
    CHECK(get("000000010000000000000009", "pg_wal/RECOVERYXLOG", recovering, {"--stanza=typo"}) ==
          255);
  }

  SUBCASE("bad configuration: push exits 1..125, get exits 255, neither 126, 127 nor 143") {
    int pushStatus = push(segment, {"--compress-type=gzip"});
    CHECK(pushStatus >= 1);
    CHECK(pushStatus <= 125);
    CHECK(get(name, "pg_wal/RECOVERYXLOG", recovering, {"--archive-get-ahead=x"}) == 255);
    CHECK(get(name, "pg_wal/RECOVERYXLOG", recovering, {"--no-such-flag"}) == 255);
    CHECK(entriesIn(recovering + "/pg_wal") == 0);
  }
}

}  // namespace tidemark::test

namespace tidemark::test {

TEST_CASE("a secret in a configuration file others may read stops administration, not archiving") {
  // An attacker's view: any local user reads s3.secret-access-key from a 0644 file.
  Workspace ws(Backend::S3);
  SegmentSpec spec{.segmentNumber = 3};
  ws.createStanza(spec);
  std::string segment = writeSegment(ws.makeDir("source"), spec);
  REQUIRE(::chmod(ws.config().c_str(), 0644) == 0);
  std::string log = ws.path("tidemark.log");
  const std::string message = "ERROR: configuration file '" + ws.config() +
                              "' holds s3.secret-access-key and its group or others may read it "
                              "(mode 0644)";

  // archive_command goes on (refusing would fill pg_wal), and says so on every call.
  CHECK(run({ws.push(), "--config", ws.config(), segment}, {.stderrPath = log}) == 0);
  CHECK(ws.hasObject(Workspace::walObject(segmentName(spec))));
  CHECK(readText(log).find(message) != std::string::npos);
  CHECK(readText(log).find("chmod 600 '" + ws.config() + "'") != std::string::npos);
  CHECK(readText(log).find(s3Server().secretKey) == std::string::npos);

  // What PostgreSQL does not call refuses, before it reads anything.
  fs::remove(log);
  CHECK(run({ws.ctl(), "info", "--config", ws.config()}, {.stderrPath = log}) ==
        exitStatus(ErrorCode::Config));
  CHECK(readText(log).find(message) != std::string::npos);
  REQUIRE(::chmod(ws.config().c_str(), 0600) == 0);
  CHECK(run({ws.ctl(), "info", "--config", ws.config()}, {.stderrPath = log}) == 0);
}

// PostgreSQL starts one archive-push per WAL file (and one archive-get per file in recovery): a
// library linked into them costs every call its start-up, whether used or not. libpq (with
// Kerberos and LDAP) and libcurl are loaded at run time where needed (docs/decisions.md).
TEST_CASE("archive-push and archive-get link neither libpq nor libcurl") {
  Workspace ws;
  for (const std::string& binary : {ws.push(), ws.get()}) {
    CAPTURE(binary);
    std::string out = ws.path("ldd.out");
    fs::remove(out);
    REQUIRE(run({"/usr/bin/ldd", binary}, {.stdoutPath = out, .stderrPath = out}) == 0);
    std::string libraries = readText(out);
    INFO(libraries);
    CHECK(libraries.find("libpq.so") == std::string::npos);
    CHECK(libraries.find("libcurl") == std::string::npos);
    CHECK(libraries.find("libgssapi") == std::string::npos);
  }
}

}  // namespace tidemark::test
