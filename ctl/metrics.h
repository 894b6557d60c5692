// tidemark metrics: the stanza's state in the Prometheus text exposition format, from the
// repository (backups, WAL, windows, the last verify and drill), the server when pg.conninfo is
// set (pg_stat_archiver, WAL waiting in archive_status) and the spool (the last pushes' latency).
// docs/metrics.md lists every family.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/config/config.h"
#include "common/spool/spool.h"
#include "ctl/info.h"

namespace tidemark::ctl {

struct MetricSample {
  std::map<std::string, std::string> labels;  // besides stanza and repository
  double value = 0;
};

struct MetricFamily {
  std::string name, type, help;  // type: gauge or counter
  std::vector<MetricSample> samples;
};

// What the server said (pg.conninfo set).
struct ServerMetrics {
  bool up = false;
  std::optional<double> archivedCount, failedCount;
  std::optional<double> lastArchivedAge, lastFailedAge;  // seconds, by the server's clock
  std::optional<double> readyFiles, readyBytes;          // nullopt: not allowed to look
  // Whether the server archives WAL: archive_mode is 'always', or 'on' on a primary, and
  // archive_command (or archive_library) is set. nullopt: a standby with archive_mode = 'on' (its
  // primary archives), or the settings could not be read.
  std::optional<bool> archiving;
  std::optional<std::string> dataDirectory;
  std::string error;  // why it is not up, or what it could not read
};

struct MetricsInput {
  std::string stanza, repository;
  double now = 0;                       // seconds since the epoch
  std::optional<InfoReport> info;       // nullopt: the repository could not be read
  std::optional<ServerMetrics> server;  // nullopt: pg.conninfo is not set
  std::vector<spool::PushStat> pushes;  // the last ones, oldest first
  // Files the safety valve dropped that only the spool's gap records (not the repository yet);
  // nullopt: the spool could not be found or read.
  std::optional<std::uint64_t> unrecordedDrops;
};

// The families (every one always present, with HELP and TYPE; samples where the value is known).
std::vector<MetricFamily> buildMetrics(const MetricsInput& input);
// The text exposition format, labels stanza and repository first on every sample.
std::string renderMetrics(const std::vector<MetricFamily>& families, const std::string& stanza,
                          const std::string& repository);

// How many of the last pushes the latency summary covers.
inline constexpr std::size_t kPushWindow = 100;

std::vector<OptionSpec> metricsOptionSpecs();

// The command: prints the metrics, or with --textfile PATH writes them atomically (mode 0644) for
// node_exporter's textfile collector. When the repository cannot be read the metrics are still
// written (tidemark_up 0) and the error is thrown afterwards.
int metrics(const Config& config, const CommandLine& commandLine);

}  // namespace tidemark::ctl
