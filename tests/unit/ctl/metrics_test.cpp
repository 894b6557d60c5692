// Unit tests of ctl/metrics.h: the families built from a repository's report, the server's
// answers and the last pushes, and their exposition format.
#include "ctl/metrics.h"

#include <doctest/doctest.h>

#include <map>
#include <set>
#include <sstream>

#include "common/repo/marks.h"
#include "common/repo/stanza.h"
#include "support/check.h"
#include "support/fake_repository.h"

using namespace tidemark;
using test::Containing;

namespace {

const ctl::MetricFamily& family(const std::vector<ctl::MetricFamily>& families,
                                const std::string& name) {
  for (const auto& f : families)
    if (f.name == name) return f;
  FAIL("no family " << name);
  return families.front();
}

std::optional<double> value(const std::vector<ctl::MetricFamily>& families,
                            const std::string& name) {
  for (const auto& s : family(families, name).samples)
    if (s.labels.empty()) return s.value;
  return std::nullopt;
}

}  // namespace

TEST_CASE("metrics of an unreadable repository: every family announced, tidemark_up 0") {
  ctl::MetricsInput input{.stanza = "main", .repository = "posix:/r", .now = 1000};
  auto families = ctl::buildMetrics(input);
  CHECK(families.size() == 31);
  std::set<std::string> names;
  for (const auto& f : families) {
    CHECK(f.name.rfind("tidemark_", 0) == 0);
    CHECK_FALSE(f.help.empty());
    CHECK(names.insert(f.name).second);
    if (f.type == "counter") CHECK(f.name.ends_with("_total"));
  }
  CHECK(value(families, "tidemark_up") == 0);
  CHECK(value(families, "tidemark_metrics_generated_timestamp_seconds") == 1000);
  CHECK_FALSE(value(families, "tidemark_backups"));
  CHECK(family(families, "tidemark_server_up").samples.empty());  // no pg.conninfo
  CHECK_FALSE(value(families, "tidemark_archive_dropped_files"));
  CHECK_FALSE(value(families, "tidemark_archive_dropped_unrecorded_files"));  // no spool here
}

TEST_CASE("metrics of a repository: backups, the newest segment, windows, pushes, server") {
  test::FakeRepository repository;
  repository.wal(1, 2, 9, 1000);
  repository.backup("20261101T000000Z", 1, 0x200028, 0x300100);
  repository.backup("20261102T000000Z", 1, 0x600028, 0x700100);
  // The safety valve dropped 2 files (recorded), and since then 3 more (in the spool only).
  repo::writeGapRecord(repository.handle(), repo::loadStanza(repository.handle())->identity(),
                       {.systemId = repository.systemId,
                        .first = "00000001000000000000000A",
                        .last = "00000001000000000000000B",
                        .files = 2});
  ctl::MetricsInput input{.stanza = "main", .repository = "memory", .unrecordedDrops = 3};
  input.info = ctl::collectInfo(repository.handle());
  input.now = double(std::time(nullptr)) + 10;
  ctl::ServerMetrics server{.up = true,
                            .archivedCount = 42,
                            .failedCount = 3,
                            .lastArchivedAge = 5,
                            .lastFailedAge = 60,
                            .readyFiles = 2,
                            .readyBytes = 2.0 * 16 * 1024 * 1024,
                            .archiving = false};
  input.server = server;
  for (int i = 1; i <= 10; ++i)
    input.pushes.push_back(
        {.finishedMs = i, .durationMs = i * 100, .ok = i != 5, .file = "x", .stanza = "main"});
  auto families = ctl::buildMetrics(input);
  CHECK(value(families, "tidemark_up") == 1);
  CHECK(value(families, "tidemark_server_up") == 1);
  CHECK(value(families, "tidemark_backups") == 2);
  CHECK(value(families, "tidemark_archive_archived_total") == 42);
  CHECK(value(families, "tidemark_archive_failed_total") == 3);
  CHECK(value(families, "tidemark_archive_ready_files") == 2);
  CHECK(value(families, "tidemark_server_archiving") == 0);
  CHECK(value(families, "tidemark_archive_push_errors") == 1);
  CHECK(value(families, "tidemark_archive_push_recorded") == 10);
  CHECK(value(families, "tidemark_archive_dropped_files") == 2);
  CHECK(value(families, "tidemark_archive_dropped_unrecorded_files") == 3);
  const auto& latency = family(families, "tidemark_archive_push_duration_seconds");
  CHECK(latency.type == "gauge");  // quantiles of a window: no cumulative _sum and _count
  std::map<std::string, double> quantiles;
  for (const auto& s : latency.samples)
    if (s.labels.count("percentile")) quantiles[s.labels.at("percentile")] = s.value;
  CHECK(quantiles.at("50") == doctest::Approx(0.6));  // nearest rank 5 of 9
  CHECK(quantiles.at("99") == doctest::Approx(1.0));
  // Segment 9 ends at 10 segments into the WAL (one label per timeline, not per segment).
  const auto& last = family(families, "tidemark_archive_last_segment_end_lsn_bytes");
  REQUIRE(last.samples.size() == 1);
  CHECK(last.samples[0].value == 10.0 * double(test::kSegmentSize));
  CHECK(last.samples[0].labels.at("timeline") == "1");
  CHECK(value(families, "tidemark_archive_last_segment_age_seconds") >= 0);
  CHECK(family(families, "tidemark_recovery_window_start_timestamp_seconds").samples.size() == 1);
  // Never drilled or verified: announced, without a sample (the alert rules use absent()).
  CHECK(family(families, "tidemark_drill_last_success").samples.empty());
  CHECK(family(families, "tidemark_verify_last_success").samples.empty());

  std::string text = ctl::renderMetrics(families, "main", "posix:/r \"x\"");
  CHECK(text == Containing("# HELP tidemark_backups complete backups in the stanza\n"
                           "# TYPE tidemark_backups gauge\n"
                           "tidemark_backups{stanza=\"main\",repository=\"posix:/r "
                           "\\\"x\\\"\"} 2\n"));
  CHECK(text == Containing("tidemark_archive_push_recorded{stanza=\"main\""));
  CHECK(text == Containing("percentile=\"50\"} 0.6\n"));
}
