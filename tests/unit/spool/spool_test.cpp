// Unit tests of common/spool/spool.h: the spool's place and the push statistics.
#include "common/spool/spool.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "support/segment.h"

using namespace tidemark;

TEST_CASE("the spool is archive.spool-path, else pg_wal/tidemark in the data directory") {
  Config config;
  CHECK_FALSE(spool::spoolDirectory(config, std::nullopt));
  CHECK(spool::spoolDirectory(config, "/var/lib/postgresql/15/main") ==
        "/var/lib/postgresql/15/main/pg_wal/tidemark");
  config.archive.spoolPath = "/var/spool/tidemark";
  CHECK(spool::spoolDirectory(config, "/data") == "/var/spool/tidemark");
}

TEST_CASE("push statistics: one line per push, read back per stanza, rotated, bad lines skipped") {
  test::TempDir dir;
  const std::string spool = dir.path() + "/spool";
  for (int i = 0; i < 5; ++i)
    spool::recordPush(spool, {.finishedMs = 1000 + i,
                              .durationMs = 10 * i,
                              .ok = i != 2,
                              .file = "00000001000000000000000" + std::to_string(i),
                              .stanza = i == 4 ? "other" : "main"});
  struct stat st {};
  REQUIRE(::stat(spool.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  std::ofstream(spool + "/" + spool::kPushStatsFile, std::ios::app) << "garbage line\n";
  auto stats = spool::readPushStats(spool, "main", 100);
  REQUIRE(stats.size() == 4);
  CHECK(stats[0].durationMs == 0);
  CHECK_FALSE(stats[2].ok);
  CHECK(stats[3].file == "000000010000000000000003");
  CHECK(spool::readPushStats(spool, "main", 2).size() == 2);
  CHECK(spool::readPushStats(spool, "main", 2)[1].durationMs == 30);

  // Past the rotation size, the file moves to .1 and both are read.
  std::string padding(spool::kPushStatsRotateBytes, '\n');
  std::ofstream(spool + "/" + spool::kPushStatsFile, std::ios::app) << padding;
  spool::recordPush(
      spool, {.finishedMs = 2000, .durationMs = 7, .ok = true, .file = "f", .stanza = "main"});
  CHECK(std::filesystem::exists(spool + "/" + spool::kPushStatsFile + ".1"));
  stats = spool::readPushStats(spool, "main", 100);
  REQUIRE(stats.size() == 5);
  CHECK(stats.back().durationMs == 7);

  CHECK_FALSE(spool::parsePushStat("1 2 maybe f main"));
  CHECK_FALSE(spool::parsePushStat("1 2 ok f main extra"));
  CHECK(spool::parsePushStat(
            spool::formatPushStat(
                {.finishedMs = 5, .durationMs = 6, .ok = true, .file = "f", .stanza = "s"}))
            ->stanza == "s");
}

TEST_CASE("a push statistic that cannot be written is no failure") {
  spool::recordPush("/proc/no-such-place/spool",
                    {.finishedMs = 1, .durationMs = 1, .ok = true, .file = "f", .stanza = "main"});
}
