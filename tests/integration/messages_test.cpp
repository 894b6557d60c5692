// Messages that lead to the fix, on the real binaries: no configuration file (with a real
// PostgreSQL 15 whose archive_command forgot --config), and a repository the user tidemark runs
// as may not write into.
#include <doctest/doctest.h>
#include <pwd.h>
#include <unistd.h>

#include <filesystem>

#include "cluster.h"
#include "common/base/error.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace tidemark::test {

TEST_CASE(
    "archive_command without --config and no default file: the log says so, and where it "
    "looked" *
    doctest::skip(fs::exists("/etc/tidemark/tidemark.toml") ||
                  fs::exists("/var/lib/tidemark/repo"))) {
  Workspace ws(Backend::Posix);
  PgCluster pg(ws.path("pg"));
  pg.initdb();
  ws.stanzaCreate(pg);
  // The usual mistake: the configuration is elsewhere, and archive_command does not say so.
  pg.configure("archive_mode = on\narchive_command = '" + ws.push() +
               " %p'\nwal_level = replica\n");
  pg.start();
  pg.exec("select pg_switch_wal()");
  bool logged = waitUntil(
      [&] { return pg.logTail(200).find("no configuration file was found") != std::string::npos; },
      60s);
  std::string log = pg.logTail(200);
  INFO(log);
  REQUIRE(logged);
  // The defaults' error as before (the embedded repository path does not exist), then the note.
  CHECK(log.find("tidemark-archive-push[") != std::string::npos);
  CHECK(log.find("ERROR: repository path '/var/lib/tidemark/repo' does not exist or is not a "
                 "directory") != std::string::npos);
  CHECK(log.find("HINT: no configuration file was found (no --config, no TIDEMARK_CONFIG, and "
                 "'/etc/tidemark/tidemark.toml' does not exist), so the built-in defaults apply: "
                 "repository 'posix:/var/lib/tidemark/repo', stanza 'main'; if the configuration "
                 "is elsewhere, give it with --config FILE (in archive_command too)") !=
        std::string::npos);
  // PostgreSQL keeps the segment and retries, as before.
  CHECK(pg.value("select failed_count > 0 from pg_stat_archiver") == "t");
  CHECK(pg.value("select archived_count from pg_stat_archiver") == "0");
}

// Needs root: the push runs as the server's user in a repository root made.
TEST_CASE(
    "a repository the server's user may not write into: the error names the user, the "
    "owner and mode, and the chown that fixes it" *
    doctest::skip(::geteuid() != 0 || !testUser())) {
  Workspace ws(Backend::Posix);
  SegmentSpec spec{.segmentNumber = 3};
  ws.createStanza(spec);
  std::string segment = writeSegment(ws.makeDir("source"), spec);
  const std::string repo = ws.path("repo");
  // Made (and stanza-created) by root, never given to postgres.
  REQUIRE(run({"/bin/chown", "-R", "root:root", repo}) == 0);
  std::string log = ws.path("push.log");
  auto push = [&] {
    return run({ws.push(), "--config", ws.config(), segment},
               {.user = testUser(), .stderrPath = log});
  };
  int status = push();
  std::string text = readText(log);
  INFO(text);
  CHECK(status == exitStatus(ErrorCode::Storage));
  passwd* user = ::getpwnam(testUser()->c_str());
  REQUIRE(user != nullptr);
  CHECK(text.find("ERROR: cannot open '" + repo + "/main/stanza.json': Permission denied") !=
        std::string::npos);
  CHECK(text.find("HINT: tidemark runs as '" + *testUser() + "' (uid " +
                  std::to_string(user->pw_uid) + "); '" + repo +
                  "/main' belongs to 'root' (group 'root', mode 0750); as root, run: chown -R " +
                  *testUser() + ": '" + repo + "' (the repository belongs to the user") !=
        std::string::npos);
  // The command it gives fixes it.
  REQUIRE(run({"/bin/chown", "-R", *testUser() + ":", repo}) == 0);
  CHECK(push() == 0);
  CHECK(ws.hasObject(Workspace::walObject(segmentName(spec))));
}

}  // namespace tidemark::test
