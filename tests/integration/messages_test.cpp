// Messages that lead to the fix, on the real binaries: no configuration file (with a real
// PostgreSQL 15 whose archive_command forgot --config).
#include <doctest/doctest.h>

#include <filesystem>

#include "cluster.h"

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

}  // namespace tidemark::test
