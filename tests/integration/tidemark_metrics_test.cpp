// tidemark metrics against a real PostgreSQL 15 archiving into a posix repository: the output is
// valid exposition format (promtool check metrics, and a parse of our own), holds every family
// docs/metrics.md lists, and changes after a push and after a backup; --textfile writes the same
// atomically; a repository that cannot be read still gives metrics (tidemark_up 0) and a failure.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "cluster.h"
#include "tidemark_runner.h"

namespace fs = std::filesystem;

namespace tidemark::test {

namespace {

// Every family tidemark metrics writes (docs/metrics.md).
const std::vector<std::string> kFamilies = {
    "tidemark_up",
    "tidemark_metrics_generated_timestamp_seconds",
    "tidemark_server_up",
    "tidemark_server_archiving",
    "tidemark_archive_last_segment_age_seconds",
    "tidemark_archive_last_segment_end_lsn_bytes",
    "tidemark_archive_archived_total",
    "tidemark_archive_failed_total",
    "tidemark_archive_last_success_age_seconds",
    "tidemark_archive_last_failure_age_seconds",
    "tidemark_archive_ready_files",
    "tidemark_archive_ready_bytes",
    "tidemark_archive_push_duration_seconds",
    "tidemark_archive_push_recorded",
    "tidemark_archive_push_errors",
    "tidemark_archive_dropped_files",
    "tidemark_archive_dropped_unrecorded_files",
    "tidemark_backups",
    "tidemark_backup_last_age_seconds",
    "tidemark_backup_last_duration_seconds",
    "tidemark_backup_last_size_bytes",
    "tidemark_backup_stored_bytes",
    "tidemark_wal_stored_bytes",
    "tidemark_recovery_window_start_timestamp_seconds",
    "tidemark_recovery_window_end_timestamp_seconds",
    "tidemark_verify_last_age_seconds",
    "tidemark_verify_last_success",
    "tidemark_drill_last_age_seconds",
    "tidemark_drill_last_success",
    "tidemark_drill_last_rto_seconds",
    "tidemark_drill_last_rpo_seconds",
};

// The exposition text, parsed strictly: every sample belongs to a family announced by # HELP and
// # TYPE lines before it, and carries the stanza and repository labels.
struct Parsed {
  std::map<std::string, std::string> types;
  std::map<std::string, double> samples;  // "name{labels}" -> value
  double value(const std::string& prefix) const {
    for (const auto& [key, v] : samples)
      if (key.rfind(prefix, 0) == 0) return v;
    FAIL("no sample " << prefix);
    return 0;
  }
  std::string key(const std::string& prefix) const {
    for (const auto& [key, v] : samples)
      if (key.rfind(prefix, 0) == 0) return key;
    return "";
  }
};

Parsed parseExposition(const std::string& text) {
  Parsed out;
  std::set<std::string> helped;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    INFO(line);
    if (line.rfind("# HELP ", 0) == 0) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      CHECK(line.size() > 8 + name.size());
      helped.insert(name);
    } else if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string name, type;
      words >> name >> type;
      CHECK(helped.count(name));
      CHECK((type == "gauge" || type == "counter"));
      out.types[name] = type;
    } else {
      std::size_t brace = line.find('{');
      std::size_t close = line.rfind('}');
      REQUIRE(brace != std::string::npos);
      REQUIRE(close != std::string::npos);
      CHECK(out.types.count(line.substr(0, brace)));
      CHECK(line.find("stanza=\"main\"", brace) == brace + 1);
      CHECK(line.find("repository=\"") != std::string::npos);
      std::string value = line.substr(close + 2);
      out.samples[line.substr(0, close + 1)] = std::stod(value);
    }
  }
  return out;
}

void promtoolAccepts(const Workspace& ws, const std::string& text) {
  REQUIRE_MESSAGE(fs::exists("/usr/bin/promtool"),
                  "promtool is missing: scripts/test installs the Debian package prometheus");
  std::string file = ws.path("metrics.prom");
  std::ofstream(file) << text;
  Outcome o =
      runLogged(ws, "promtool", {"/bin/sh", "-c", "/usr/bin/promtool check metrics < " + file});
  INFO(o.output());
  CHECK(o.status == 0);
}

}  // namespace

TEST_CASE("tidemark metrics: every family, valid, and moving with pushes and backups") {
  Workspace ws(Backend::Posix);
  PgCluster pg(ws.path("primary"), "primary");
  ws.startArchivingPrimary(pg);
  pg.exec("create table t as select g from generate_series(1, 1000) g");
  takeBackup(ws, pg);
  pg.exec("select pg_switch_wal()");
  pg.waitArchived();
  const std::string conninfo = "--pg-conninfo=" + pg.conninfo() + " dbname=postgres";
  auto metrics = [&] {
    Outcome o = ctl(ws, {"metrics", conninfo});
    INFO(o.output());
    REQUIRE(o.status == 0);
    return o.out;
  };

  std::string first = metrics();
  promtoolAccepts(ws, first);
  Parsed m = parseExposition(first);
  for (const auto& family : kFamilies) {
    INFO(family);
    CHECK(m.types.count(family));
  }
  CHECK(m.value("tidemark_up{") == 1);
  CHECK(m.value("tidemark_server_up{") == 1);
  CHECK(m.value("tidemark_server_archiving{") == 1);  // the archiving primary
  CHECK(m.value("tidemark_backups{") == 1);
  CHECK(m.value("tidemark_backup_last_size_bytes{") > 0);
  CHECK(m.value("tidemark_archive_failed_total{") == 0);
  CHECK(m.value("tidemark_archive_ready_files{") >= 0);
  CHECK(m.value("tidemark_archive_push_recorded{") >= 2);
  CHECK(m.value("tidemark_archive_push_errors{") == 0);
  CHECK(m.value("tidemark_archive_dropped_files{") == 0);
  CHECK(m.value("tidemark_archive_dropped_unrecorded_files{") == 0);  // the spool is read
  CHECK(m.value("tidemark_recovery_window_end_timestamp_seconds{") >=
        m.value("tidemark_recovery_window_start_timestamp_seconds{"));
  const double lastLsn = m.value("tidemark_archive_last_segment_end_lsn_bytes{");
  const double archived = m.value("tidemark_archive_archived_total{");
  const double pushes = m.value("tidemark_archive_push_recorded{");

  // A push: a newer last segment, one more archived file, one more push recorded.
  pg.exec("insert into t select g from generate_series(1, 1000) g");
  pg.exec("select pg_switch_wal()");
  pg.waitArchived();
  Parsed pushed = parseExposition(metrics());
  CHECK(pushed.value("tidemark_archive_last_segment_end_lsn_bytes{") > lastLsn);
  CHECK(pushed.value("tidemark_archive_archived_total{") > archived);
  CHECK(pushed.value("tidemark_archive_push_recorded{") > pushes);

  // A backup: two now, and the newest is seconds old.
  takeBackup(ws, pg);
  Parsed backedUp = parseExposition(metrics());
  CHECK(backedUp.value("tidemark_backups{") == 2);
  CHECK(backedUp.value("tidemark_backup_last_age_seconds{") < 600);
  CHECK(backedUp.value("tidemark_backup_stored_bytes{") >
        pushed.value("tidemark_backup_stored_bytes{"));

  // A verify: its result and age appear.
  REQUIRE(ctl(ws, {"verify"}).status == 0);
  Parsed verified = parseExposition(metrics());
  CHECK(verified.value("tidemark_verify_last_success{") == 1);
  CHECK(verified.value("tidemark_verify_last_age_seconds{") < 600);

  // --textfile: the same families, written atomically, readable by node_exporter.
  const std::string textfile = ws.path("node-exporter/tidemark.prom");
  fs::create_directories(ws.path("node-exporter"));
  Outcome written = ctl(ws, {"metrics", conninfo, "--textfile", textfile});
  INFO(written.output());
  REQUIRE(written.status == 0);
  CHECK(written.out.empty());
  std::ifstream in(textfile);
  std::stringstream text;
  text << in.rdbuf();
  Parsed fromFile = parseExposition(text.str());
  CHECK(fromFile.types.size() == kFamilies.size());
  CHECK((fs::status(textfile).permissions() & fs::perms::others_read) != fs::perms::none);
  pg.stop();

  // A repository that cannot be read: metrics all the same (tidemark_up 0), and a failure.
  Outcome down = ctl(ws, {"metrics", "--repo-path", ws.path("no-such-repository")});
  CHECK(down.status != 0);
  Parsed unreadable = parseExposition(down.out);
  CHECK(unreadable.value("tidemark_up{") == 0);
  CHECK(unreadable.key("tidemark_backups{").empty());
}

}  // namespace tidemark::test
