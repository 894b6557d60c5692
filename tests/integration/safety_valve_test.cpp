// The safety valve (archive.queue-max): with the repository unreachable, archive-push drops WAL
// past the bound instead of letting pg_wal fill the disk, records the gap, and info, verify and
// recovery planning know of it.
#include <doctest/doctest.h>

#include <filesystem>

#include "cluster.h"
#include "tidemark_runner.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace tidemark::test {

namespace {

std::size_t readyFiles(const PgCluster& pg) {
  std::size_t n = 0;
  for (const auto& entry : fs::directory_iterator(pg.dataDir() + "/pg_wal/archive_status"))
    n += entry.path().extension() == ".ready";
  return n;
}

std::string switchWal(PgCluster& pg) {
  pg.exec("insert into t select g from generate_series(1, 1000) g");
  return pg.value("select pg_walfile_name(pg_switch_wal())");
}

// Waits for the archiver (woken every half second: after failures it would sleep a minute).
bool waitArchiver(PgCluster& pg, const std::function<bool()>& done) {
  return waitUntil(
      [&] {
        if (done()) return true;
        pg.exec("select pg_reload_conf()");
        std::this_thread::sleep_for(500ms);
        return false;
      },
      240s);
}

// The value of the one sample of `family` in the exposition `text` (-1 when there is none).
double sampleOf(const std::string& text, const std::string& family) {
  const auto at = text.find("\n" + family + "{");
  if (at == std::string::npos) return -1;
  const auto end = text.find('\n', at + 1);
  const std::string line = text.substr(at + 1, end - at - 1);
  return std::stod(line.substr(line.rfind(' ') + 1));
}

}  // namespace

TEST_CASE("the safety valve bounds pg_wal when the repository is unreachable and records the gap") {
  Workspace ws(Backend::Posix, "[archive]\nqueue-max = \"48MiB\"\n");
  PgCluster pg(ws.path("pg"));
  ws.startArchivingPrimary(pg);
  pg.exec("create table t (i int)");
  takeBackup(ws, pg);
  std::this_thread::sleep_for(1500ms);  // past the backup's end, which is recorded in seconds
  const double beforeGap = serverNow(pg);

  // The repository goes away (an unmounted volume, a network outage).
  const std::string repo = ws.path("repo"), away = ws.path("repo-away");
  fs::rename(repo, away);
  std::string last;
  for (int i = 0; i < 8; ++i)
    last = switchWal(pg);
  // pg_wal stops growing past the bound: at most 48 MiB (three segments) wait, plus the one being
  // dropped.
  bool bounded = waitArchiver(pg, [&] {
    return readyFiles(pg) <= 3 && fs::exists(pg.dataDir() + "/pg_wal/tidemark/main/gap");
  });
  std::string log = pg.logTail(400);
  INFO(log);
  REQUIRE(bounded);
  CHECK(log.find("WITHOUT being stored") != std::string::npos);
  // tidemark metrics counts the drops only the spool records (the repository is away: it says so
  // with tidemark_up 0 and fails once the metrics are written).
  const std::string conninfo = "--pg-conninfo=" + pg.conninfo() + " dbname=postgres";
  Outcome unrecorded = ctl(ws, {"metrics", conninfo});
  INFO(unrecorded.output());
  CHECK(unrecorded.status != 0);
  CHECK(sampleOf(unrecorded.out, "tidemark_archive_dropped_unrecorded_files") >= 1);
  // tidemark check names the drop (and keeps a copy: below, it is left under a former stanza name).
  const std::string gapFile = pg.dataDir() + "/pg_wal/tidemark/main/gap";
  fs::copy_file(gapFile, ws.path("orphan-gap"));
  Outcome checked = ctl(ws, {"check", conninfo});
  INFO(checked.output());
  CHECK(checked.status == 16);
  CHECK(checked.out.find("failed   dropped-wal: no repository records this yet: '" + gapFile +
                         "' records WAL dropped") != std::string::npos);
  CHECK(checked.out.find("fix: '" + gapFile + "': archive-push records it in the repository") !=
        std::string::npos);
  // More WAL: it comes back to the bound each time.
  for (int i = 0; i < 3; ++i) {
    switchWal(pg);
    CHECK(waitArchiver(pg, [&] { return readyFiles(pg) <= 3; }));
  }

  // Back: the next push records the gap in the repository first, and archiving catches up.
  fs::rename(away, repo);
  const double afterGap = serverNow(pg);
  last = switchWal(pg);
  bool caughtUp = waitArchiver(pg, [&] {
    return pg.value("select coalesce(last_archived_wal, '') >= '" + last +
                    "' from pg_stat_archiver") == "t" &&
           !fs::exists(pg.dataDir() + "/pg_wal/tidemark/main/gap");
  });
  INFO(pg.logTail(200));
  REQUIRE(caughtUp);

  Outcome back = ctl(ws, {"metrics", conninfo});
  INFO(back.output());
  CHECK(back.status == 0);
  CHECK(sampleOf(back.out, "tidemark_archive_dropped_unrecorded_files") == 0);
  CHECK(sampleOf(back.out, "tidemark_archive_dropped_files") >= 1);

  // A drop left under a former stanza name (the stanza was renamed before the repository came
  // back): no archive-push records it, so metrics counts it and check names it.
  const std::string former = pg.dataDir() + "/pg_wal/tidemark/renamed";
  fs::create_directory(former);
  fs::copy_file(ws.path("orphan-gap"), former + "/gap");
  Outcome orphanMetrics = ctl(ws, {"metrics", conninfo});
  INFO(orphanMetrics.output());
  CHECK(sampleOf(orphanMetrics.out, "tidemark_archive_dropped_unrecorded_files") >= 1);
  Outcome orphanCheck = ctl(ws, {"check", conninfo});
  INFO(orphanCheck.output());
  CHECK(orphanCheck.status == 16);
  CHECK(orphanCheck.out.find("failed   dropped-wal: no repository records this yet: '" + former +
                             "/gap' records WAL dropped") != std::string::npos);
  CHECK(orphanCheck.out.find("fix: '" + former + "/gap': no archive-push of this configuration " +
                             "records it") != std::string::npos);
  fs::remove_all(former);

  auto info = ctl(ws, {"info", "--output", "json"});
  INFO(info.output());
  REQUIRE(info.status == 0);
  CHECK(info.out.find("\"dropped-wal\": [\n    {") != std::string::npos);
  auto text = ctl(ws, {"info"});
  CHECK(text.out.find("DROPPED WAL") != std::string::npos);

  // A recovery that asks for a dropped file stops (255), never takes it for the end of the archive.
  std::string dropped = log.substr(log.find("WITHOUT being stored") - 60, 60);
  dropped = dropped.substr(dropped.find(": ") + 2, 24);
  auto get = runTidemark(ws, ws.get(), {dropped, ws.path("fetched")});
  INFO(get.output());
  CHECK(get.status == 255);
  CHECK(get.output().find("safety valve") != std::string::npos);

  auto verify = ctl(ws, {"verify"});
  INFO(verify.output());
  CHECK(verify.status != 0);
  CHECK(verify.output().find("safety valve") != std::string::npos);

  // From the backup taken before the gap: a time after it is refused; one before the drops is
  // planned, with the gap named (its WAL may hold the target: PostgreSQL then stops at the gap).
  std::string dir = ws.path("restored");
  Outcome refused =
      recoverWith(ws, {"--pgdata=" + dir, "--dry-run", "--target-time=" + isoTarget(afterGap)});
  INFO(refused.output());
  CHECK(refused.status != 0);
  CHECK(refused.output().find("lies after a gap in the archive") != std::string::npos);
  Outcome planned =
      recoverWith(ws, {"--pgdata=" + dir, "--dry-run", "--target-time=" + isoTarget(beforeGap)});
  INFO(planned.output());
  CHECK(planned.status == 0);
  CHECK(planned.output().find("safety valve") != std::string::npos);
  pg.stop();
}

}  // namespace tidemark::test
