// tidemark info against a real repository (posix and S3) filled by a real PostgreSQL 15: the
// backup, the WAL of timeline 1 and its recoverable window in the JSON output, the backup in the
// text output; and the command line's refusals.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cluster.h"
#include "common/base/time.h"
#include "common/pg/lsn.h"
#include "common/pg/wal.h"
#include "common/repo/backup.h"
#include "tidemark_runner.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace tidemark::test {

namespace {

// Runs the tidemark binary with `args` exactly as given (no --config added: some commands read
// none), as the current user.
Outcome tidemarkWith(const Workspace& ws, std::vector<std::string> args) {
  args.insert(args.begin(), ws.ctl());
  return runLogged(ws, "tidemark", std::move(args));
}

}  // namespace

TEST_CASE_TEMPLATE(
    "tidemark info reports the backup, the WAL and the recoverable window of a real repository",
    Repo, PosixRepo, S3Repo) {
  Workspace ws(Repo::value);
  PgCluster pg(ws.path("primary"), "primary");
  pg.initdb();
  ws.stanzaCreate(pg);
  pg.configure(
      "archive_mode = on\n"
      "archive_command = '" +
      ws.archiveCommand() +
      "'\n"
      "wal_level = replica\n"
      "max_wal_senders = 5\n");
  pg.start();
  pg.exec("create table t as select g from generate_series(1, 10000) g");
  takeBackup(ws, pg);
  pg.exec("insert into t select g from generate_series(1, 10000) g");
  pg.waitArchived();
  std::string last = pg.value("select last_archived_wal from pg_stat_archiver");
  std::string systemId = pg.value("select system_identifier from pg_control_system()");

  auto backups = repo::listBackups(ws.repository());
  REQUIRE(backups.size() == 1);
  const repo::BackupInfo& backup = backups.front();

  Outcome json = tidemarkWith(ws, {"info", "--config", ws.config(), "--output", "json"});
  INFO(json.err);
  REQUIRE(json.status == 0);
  INFO(json.out);
  auto doc = nlohmann::json::parse(json.out);

  const auto& stanza = doc.at("stanza");
  CHECK(stanza.at("name") == "main");
  CHECK(stanza.at("repository") == ws.storage()->describe());
  CHECK(stanza.at("system-identifier") == systemId);
  CHECK(stanza.at("pg-version") == 15);
  CHECK(stanza.at("wal-segment-size") == 16u << 20);

  REQUIRE(doc.at("backups").size() == 1);
  const auto& b = doc.at("backups")[0];
  CHECK(b.at("label") == backup.label);
  CHECK(b.at("timeline") == 1);
  CHECK(b.at("start-lsn") == pg::formatLsn(backup.startLsn));
  CHECK(b.at("stop-lsn") == pg::formatLsn(backup.stopLsn));
  CHECK(b.at("start-time") == formatUtc(backup.startTime));
  CHECK(b.at("stop-time") == formatUtc(backup.stopTime));
  CHECK(b.at("wal-start") == backup.walStart());
  CHECK(b.at("wal-stop") == backup.walStop());
  CHECK(b.at("size") == backup.size());
  CHECK(b.at("stored-size") == backup.storedSize());
  CHECK(b.at("duration") == (backup.stopTime - backup.startTime).count());
  CHECK(b.at("compression") == "zstd");
  CHECK(b.at("tablespaces").empty());

  REQUIRE(doc.at("timelines").size() == 1);
  const auto& t = doc.at("timelines")[0];
  CHECK(t.at("timeline") == 1);
  CHECK(t.at("history-file") == false);
  const auto& wal = t.at("wal");
  CHECK(wal.at("first") == "000000010000000000000001");
  CHECK(wal.at("last") == last);
  CHECK(wal.at("segments").get<std::uint64_t>() ==
        pg::segmentNumber(*pg::parseWalName(last), 16u << 20));
  CHECK(wal.at("stored-size").get<std::uint64_t>() > 0);
  CHECK(wal.at("gaps").empty());
  CHECK(wal.at("partial").is_null());
  const auto& window = t.at("window");
  CHECK(window.at("available") == true);
  CHECK(window.at("earliest").at("backup") == backup.label);
  CHECK(window.at("earliest").at("lsn") == pg::formatLsn(backup.stopLsn));
  CHECK(window.at("earliest").at("time") == formatUtc(backup.stopTime));
  const auto& latest = window.at("latest");
  CHECK(latest.at("backup") == backup.label);
  CHECK(latest.at("segment") == last);
  std::uint64_t lastSegment = pg::segmentNumber(*pg::parseWalName(last), 16u << 20);
  CHECK(latest.at("lsn") == pg::formatLsn((lastSegment + 1) * (16u << 20)));
  auto archivedAt = parseUtc(latest.at("archived-at").get<std::string>());
  REQUIRE(archivedAt.has_value());
  CHECK(*archivedAt >= backup.startTime);
  CHECK(*archivedAt <= utcNow());

  Outcome text = tidemarkWith(ws, {"info", "--config", ws.config()});
  INFO(text.err);
  CHECK(text.status == 0);
  INFO(text.out);
  CHECK(text.out.find("backups: 1 complete backup, oldest first\n  " + backup.label +
                      "  timeline 1\n") != std::string::npos);
  // The archive time (the storage's clock, to the second), unless it is before the backup's stop
  // time (the server's clock, rounded up; it happens here): latest is never shown before earliest.
  const bool early = *archivedAt < backup.stopTime;
  CHECK(text.out.find(
            "end of " + last +
            (early ? " (archived before the backup's stop time: its clock)" : " (archive time)") +
            ", from backup " + backup.label) != std::string::npos);

  // Global options may come before the command: the same report.
  Outcome before = tidemarkWith(ws, {"--config", ws.config(), "info"});
  INFO(before.err);
  CHECK(before.status == 0);
  CHECK(before.out == text.out);
}

TEST_CASE("tidemark refuses unknown commands and options, and a stanza that holds nothing") {
  Workspace ws(Backend::Posix);
  SUBCASE("--help lists the commands") {
    Outcome help = tidemarkWith(ws, {"--help"});
    CHECK(help.status == 0);
    CHECK(help.out.find("usage: tidemark [GLOBAL OPTIONS] COMMAND [OPTIONS]") != std::string::npos);
    CHECK(help.out.find("\n  info           Shows what the stanza holds") != std::string::npos);
    CHECK(help.out.find("\n  stanza-create  Creates the stanza for this cluster") !=
          std::string::npos);
    Outcome infoHelp = tidemarkWith(ws, {"info", "--help"});
    CHECK(infoHelp.status == 0);
    CHECK(infoHelp.out.find("usage: tidemark info [OPTIONS]") != std::string::npos);
    CHECK(infoHelp.out.find("--output=FORMAT") != std::string::npos);
    CHECK(help.out.find("\n  keygen         Makes a new random 32-byte master key") !=
          std::string::npos);
    Outcome before = tidemarkWith(ws, {"--help", "info"});
    CHECK(before.status == 0);
    CHECK(before.out == infoHelp.out);
    Outcome misplaced = tidemarkWith(ws, {"--output=json", "info"});
    CHECK(misplaced.status == 3);
    CHECK(misplaced.err.find("ERROR: option '--output' is not a global option: it goes after the "
                             "command") != std::string::npos);
    Outcome keygenHelp = tidemarkWith(ws, {"keygen", "--help"});
    CHECK(keygenHelp.status == 0);
    CHECK(keygenHelp.out.find("usage: tidemark keygen [OPTIONS] PATH") != std::string::npos);
    CHECK(keygenHelp.out.find("configuration flags") == std::string::npos);
  }
  SUBCASE("keygen writes a 0600 key file without reading a configuration, and never replaces one") {
    std::string key = ws.path("new.key");
    Outcome made = tidemarkWith(ws, {"keygen", key});
    CHECK(made.status == 0);
    CHECK(made.out.find("wrote a new key to " + key + " (mode 0600), key id ") !=
          std::string::npos);
    CHECK(made.out.find("key-file = \"" + key + "\"") != std::string::npos);
    CHECK((fs::status(key).permissions() & fs::perms::all) ==
          (fs::perms::owner_read | fs::perms::owner_write));
    io::Buffer before = readFile(key);
    Outcome again = tidemarkWith(ws, {"keygen", key});
    CHECK(again.status == 9);
    CHECK(again.err.find("ERROR: '" + key + "' already exists; a key file is never replaced") !=
          std::string::npos);
    CHECK(readFile(key) == before);
  }
  SUBCASE("an unknown command is a usage error listing the commands") {
    Outcome unknown = tidemarkWith(ws, {"inof"});
    CHECK(unknown.status == 3);
    CHECK(
        unknown.err.find("ERROR: unknown command 'inof' (commands: info, stanza-create, "
                         "stanza-upgrade, check, verify, expire, keep, drill, metrics, keygen)") !=
        std::string::npos);
    CHECK(unknown.err.find("HINT: did you mean 'info'?") != std::string::npos);
    Outcome none = tidemarkWith(ws, {});
    CHECK(none.status == 3);
    CHECK(none.err.find("ERROR: missing command: tidemark COMMAND (commands: info, stanza-create, "
                        "stanza-upgrade, check, verify, expire, keep, drill, metrics, keygen)") !=
          std::string::npos);
  }
  SUBCASE("a wrong --output is a usage error") {
    Outcome wrong = tidemarkWith(ws, {"info", "--config", ws.config(), "--output=yaml"});
    CHECK(wrong.status == 3);
    CHECK(wrong.err.find("ERROR: --output 'yaml' is not text or json") != std::string::npos);
  }
  SUBCASE("a stanza without stanza.json is a configuration error with a hint") {
    Outcome empty = tidemarkWith(ws, {"info", "--config", ws.config(), "--stanza=other"});
    CHECK(empty.status == 4);
    CHECK(empty.out.empty());
    CHECK(empty.err.find("ERROR: stanza 'other' does not exist in posix:") != std::string::npos);
    CHECK(empty.err.find("HINT: create it once with 'tidemark stanza-create'") !=
          std::string::npos);
    // A repository that holds other stanzas: the name is the likelier mistake, and they are named.
    ws.createStanza();
    Outcome typo = tidemarkWith(ws, {"info", "--config", ws.config(), "--stanza=mian"});
    CHECK(typo.status == 4);
    CHECK(typo.err.find("ERROR: stanza 'mian' does not exist in posix:") != std::string::npos);
    CHECK(typo.err.find("holds stanza 'main': check 'stanza' (--stanza, TIDEMARK_STANZA)") !=
          std::string::npos);
  }
}

}  // namespace tidemark::test
