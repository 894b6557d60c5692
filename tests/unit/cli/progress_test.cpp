// Unit tests of common/progress.h: durations as the progress display writes them, and the
// byte count of a transfer (what it prints on stderr or in the log is not captured).
#include "common/cli/progress.h"

#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

using namespace tidemark;

TEST_CASE("formatDuration writes minutes:seconds, and hours:minutes:seconds from one hour") {
  SUBCASE("under an hour") {
    CHECK(formatDuration(0) == "0:00");
    CHECK(formatDuration(7) == "0:07");
    CHECK(formatDuration(59) == "0:59");
    CHECK(formatDuration(60) == "1:00");
    CHECK(formatDuration(247) == "4:07");
    CHECK(formatDuration(3599) == "59:59");
  }
  SUBCASE("an hour and more") {
    CHECK(formatDuration(3600) == "1:00:00");
    CHECK(formatDuration(3903) == "1:05:03");
    CHECK(formatDuration(90061) == "25:01:01");
  }
  SUBCASE("fractions round to the nearest second, across a minute or an hour") {
    CHECK(formatDuration(0.4) == "0:00");
    CHECK(formatDuration(0.5) == "0:01");
    CHECK(formatDuration(59.5) == "1:00");
    CHECK(formatDuration(3599.4) == "59:59");
    CHECK(formatDuration(3599.5) == "1:00:00");
  }
}

TEST_CASE("Progress counts what was done, quietly, when stderr is not a terminal") {
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  SUBCASE("with a known total") {
    Progress progress("backup 20261122T101500Z", 1000, 0);
    CHECK(progress.done() == 0);
    progress.add(0);
    CHECK(progress.done() == 0);
    progress.add(400);
    progress.add(600);
    CHECK(progress.done() == 1000);
    progress.add(24);  // more than announced: the server's total is an estimate
    CHECK(progress.done() == 1024);
    progress.finish();
    progress.finish();  // a second finish changes nothing
    CHECK(progress.done() == 1024);
  }
  SUBCASE("with a total unknown at first, then set") {
    Progress progress("restore", 0, 0);
    for (int i = 0; i < 1000; ++i)
      progress.add(1u << 20);
    CHECK(progress.done() == 1000ULL << 20);
    progress.setTotal(2000ULL << 20);
    progress.add(1);
    CHECK(progress.done() == (1000ULL << 20) + 1);
  }
  spdlog::set_level(level);
}
