// tidemark metrics.
#include "ctl/metrics.h"

#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/files/file.h"
#include "common/pg/connection.h"
#include "common/pg/wal.h"
#include "common/repo/repository.h"

namespace tidemark::ctl {

namespace {

double epochOf(UtcSeconds time) {
  return double(time.time_since_epoch().count());
}

std::optional<double> parseNumber(const std::string& text) {
  if (text.empty()) return std::nullopt;
  try {
    std::size_t used = 0;
    double value = std::stod(text, &used);
    if (used != text.size()) return std::nullopt;
    return value;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// A label value in the exposition format: backslash, double quote and line feed escaped.
std::string escapeLabel(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string formatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) return fmt::format("{:.0f}", value);
  return fmt::format("{}", value);
}

// The q-quantile of sorted values (nearest rank).
double quantile(const std::vector<double>& sorted, double q) {
  std::size_t rank = std::size_t(std::ceil(q * double(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

ServerMetrics readServer(const std::string& conninfo) {
  ServerMetrics server;
  pg::Connection conn;
  try {
    // A server that hangs must not hold up the repository's metrics.
    ::setenv("PGCONNECT_TIMEOUT", "10", 0);
    conn = pg::Connection::open(conninfo, false, "tidemark metrics");
    conn.query("SET statement_timeout = '10s'", "the statement timeout");
  } catch (const Error& e) {
    server.error = e.what();
    return server;
  }
  server.up = true;
  try {
    pg::Result archiver = conn.query(
        "SELECT archived_count, failed_count, "
        "extract(epoch FROM clock_timestamp() - last_archived_time)::float8, "
        "extract(epoch FROM clock_timestamp() - last_failed_time)::float8 FROM pg_stat_archiver",
        "pg_stat_archiver");
    server.archivedCount = parseNumber(archiver.value(0, 0));
    server.failedCount = parseNumber(archiver.value(0, 1));
    server.lastArchivedAge = parseNumber(archiver.value(0, 2));
    server.lastFailedAge = parseNumber(archiver.value(0, 3));
  } catch (const Error& e) {
    server.error = e.what();
  }
  // Needs superuser or pg_monitor (pg_ls_archive_statusdir, the data directory's setting).
  try {
    pg::Result ready = conn.query(
        "SELECT count(*) FILTER (WHERE name ~ '^[0-9A-F]{24}\\.ready$'), "
        "count(*) FILTER (WHERE name LIKE '%.ready'), "
        "(SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size') "
        "FROM pg_ls_archive_statusdir()",
        "the WAL waiting in archive_status");
    auto segments = parseNumber(ready.value(0, 0));
    auto files = parseNumber(ready.value(0, 1));
    auto segmentSize = parseNumber(ready.value(0, 2));
    if (segments && files && segmentSize) {
      server.readyFiles = *files;
      server.readyBytes = *segments * *segmentSize;
    }
  } catch (const Error& e) {
    if (server.error.empty()) server.error = e.what();
    spdlog::warn("{} (grant the role pg_monitor to read archive_status)", e.what());
  }
  // Whether it archives at all. archive_mode is anyone's to read; archive_command needs
  // pg_read_all_settings: a role without it still reports archive_mode = off.
  try {
    pg::Result mode =
        conn.query("SELECT current_setting('archive_mode'), pg_is_in_recovery()", "archive_mode");
    const std::string archiveMode = mode.value(0, 0);
    const bool standby = mode.value(0, 1) == "t";
    if (archiveMode == "off") {
      server.archiving = false;
    } else if (archiveMode == "always" || !standby) {
      pg::Result command = conn.query(
          "SELECT current_setting('archive_command'), "
          "coalesce(current_setting('archive_library', true), '')",
          "archive_command");
      const std::string archiveCommand = command.value(0, 0);
      server.archiving = !command.value(0, 1).empty() ||
                         (!archiveCommand.empty() && archiveCommand != "(disabled)");
    }
    if (server.archiving == false)
      spdlog::warn(
          "the server does not archive WAL (archive_mode '{}', or archive_command "
          "empty): nothing it writes can be recovered; tidemark check says how to set it "
          "up",
          archiveMode);
  } catch (const Error& e) {
    if (server.error.empty()) server.error = e.what();
    spdlog::warn("{} (grant the role pg_monitor to read archive_command)", e.what());
  }
  // Where the spool is by default (pg_wal/tidemark): superuser or pg_read_all_settings.
  try {
    server.dataDirectory = conn.show("data_directory");
  } catch (const Error& e) {
    spdlog::warn(
        "{}: the push statistics are read only with archive.spool-path set, or with the "
        "role pg_monitor",
        e.what());
  }
  return server;
}

}  // namespace

std::vector<MetricFamily> buildMetrics(const MetricsInput& in) {
  // A deque: the references the families are filled through stay valid as families are added.
  std::deque<MetricFamily> out;
  auto family = [&](std::string name, std::string type, std::string help) -> MetricFamily& {
    out.push_back({std::move(name), std::move(type), std::move(help), {}});
    return out.back();
  };
  auto gauge = [&](std::string name, std::string help) -> MetricFamily& {
    return family(std::move(name), "gauge", std::move(help));
  };
  auto set = [](MetricFamily& f, std::optional<double> value,
                std::map<std::string, std::string> labels = {}) {
    if (value) f.samples.push_back({std::move(labels), *value});
  };

  set(gauge("tidemark_up", "1 when the repository and the stanza could be read"),
      in.info ? 1.0 : 0.0);
  set(gauge("tidemark_metrics_generated_timestamp_seconds", "when these metrics were computed"),
      in.now);
  auto& serverUp = gauge("tidemark_server_up", "1 when the server (pg.conninfo) answered");
  if (in.server) set(serverUp, in.server->up ? 1.0 : 0.0);
  auto& archiving = gauge("tidemark_server_archiving",
                          "1 when the server archives WAL (archive_mode on, archive_command set); "
                          "0 when it does not; no sample for a standby that leaves it to its "
                          "primary");
  if (in.server && in.server->archiving) set(archiving, *in.server->archiving ? 1.0 : 0.0);

  // Archiving, from the repository: the newest segment of the current generation.
  auto& lastAge = gauge("tidemark_archive_last_segment_age_seconds",
                        "seconds since the newest archived WAL segment was stored");
  auto& lastLsn = gauge("tidemark_archive_last_segment_end_lsn_bytes",
                        "where the newest archived WAL segment ends, as a WAL position in bytes");
  if (in.info) {
    const TimelineInfo* newest = nullptr;
    for (const auto& t : in.info->current().timelines)
      if (t.wal.lastStored &&
          (!newest || *t.wal.lastStored > *newest->wal.lastStored ||
           (*t.wal.lastStored == *newest->wal.lastStored && t.timeline > newest->timeline)))
        newest = &t;
    if (newest) {
      set(lastAge, std::max(0.0, in.now - double(*newest->wal.lastStored)));
      if (auto name = pg::parseWalName(*newest->wal.last)) {
        const std::uint32_t size = in.info->current().generation.walSegmentSize;
        set(lastLsn, double((pg::segmentNumber(*name, size) + 1) * size),
            {{"timeline", std::to_string(newest->timeline)}});
      }
    }
  }
  // Archiving, from the server.
  const ServerMetrics* server = in.server && in.server->up ? &*in.server : nullptr;
  set(family("tidemark_archive_archived_total", "counter",
             "WAL files the server archived since its statistics were reset (pg_stat_archiver)"),
      server ? server->archivedCount : std::nullopt);
  set(family("tidemark_archive_failed_total", "counter",
             "failed archive_command runs since the statistics were reset (pg_stat_archiver)"),
      server ? server->failedCount : std::nullopt);
  set(gauge("tidemark_archive_last_success_age_seconds",
            "seconds since the server last archived a WAL file"),
      server ? server->lastArchivedAge : std::nullopt);
  set(gauge("tidemark_archive_last_failure_age_seconds",
            "seconds since archive_command last failed (absent when it never did)"),
      server ? server->lastFailedAge : std::nullopt);
  set(gauge("tidemark_archive_ready_files", "WAL files waiting in pg_wal/archive_status"),
      server ? server->readyFiles : std::nullopt);
  set(gauge("tidemark_archive_ready_bytes", "bytes of WAL segments waiting to be archived"),
      server ? server->readyBytes : std::nullopt);

  // The last pushes (the spool).
  auto& latency = gauge("tidemark_archive_push_duration_seconds",
                        fmt::format("percentiles of the duration of the last successful "
                                    "archive-push runs (at most {})",
                                    kPushWindow));
  auto& recorded = gauge(
      "tidemark_archive_push_recorded",
      fmt::format("archive-push runs recorded in the spool (the last {} at most)", kPushWindow));
  auto& errors =
      gauge("tidemark_archive_push_errors",
            fmt::format("failed archive-push runs among the last {} recorded", kPushWindow));
  if (!in.pushes.empty()) {
    std::vector<double> durations;
    double failed = 0;
    for (const auto& push : in.pushes) {
      if (push.ok)
        durations.push_back(double(push.durationMs) / 1000);
      else
        ++failed;
    }
    set(errors, failed);
    std::sort(durations.begin(), durations.end());
    if (!durations.empty())
      // "percentile", not "quantile": that label belongs to summaries, whose _sum and _count
      // are cumulative, which a window of the last pushes cannot give.
      for (int p : {50, 90, 99})
        set(latency, quantile(durations, p / 100.0), {{"percentile", std::to_string(p)}});
    set(recorded, double(in.pushes.size()));
  }

  // The safety valve (archive.queue-max).
  auto& dropped = gauge("tidemark_archive_dropped_files",
                        "WAL files the safety valve acknowledged without storing them, as the "
                        "repository records them (every generation)");
  if (in.info) {
    double files = 0;
    for (const auto& gap : in.info->droppedWal)
      files += double(gap.files);
    set(dropped, files);
  }
  set(gauge("tidemark_archive_dropped_unrecorded_files",
            "WAL files the safety valve dropped that only the spool records, not yet the "
            "repository"),
      in.unrecordedDrops ? std::optional(double(*in.unrecordedDrops)) : std::nullopt);

  // Backups: every generation's.
  auto& count = gauge("tidemark_backups", "complete backups in the stanza");
  auto& age = gauge("tidemark_backup_last_age_seconds", "seconds since the newest backup ended");
  auto& duration =
      gauge("tidemark_backup_last_duration_seconds", "how long the newest backup took");
  auto& size = gauge("tidemark_backup_last_size_bytes", "the newest backup's size (plain bytes)");
  auto& stored =
      gauge("tidemark_backup_stored_bytes", "stored bytes of every complete backup of the stanza");
  auto& walStored = gauge("tidemark_wal_stored_bytes", "stored bytes of the stanza's WAL segments");
  auto& windowStart =
      gauge("tidemark_recovery_window_start_timestamp_seconds",
            "the earliest moment a recovery can reach, per timeline of the current generation");
  auto& windowEnd = gauge("tidemark_recovery_window_end_timestamp_seconds",
                          "when the last segment of the unbroken WAL from a backup was stored, per "
                          "timeline of the current generation");
  if (in.info) {
    const InfoBackup* newest = nullptr;
    double storedBytes = 0, walBytes = 0, backups = 0;
    for (const auto& g : in.info->generations) {
      for (const auto& b : g.backups) {
        ++backups;
        storedBytes += double(b.backup.storedSize());
        if (!newest || b.backup.stopTime > newest->backup.stopTime) newest = &b;
      }
      for (const auto& t : g.timelines)
        walBytes += double(t.wal.storedSize);
    }
    set(count, backups);
    set(stored, storedBytes);
    set(walStored, walBytes);
    if (newest) {
      set(age, std::max(0.0, in.now - epochOf(newest->backup.stopTime)));
      if (newest->durationSeconds) set(duration, double(*newest->durationSeconds));
      set(size, double(newest->backup.size()));
    }
    for (const auto& t : in.info->current().timelines) {
      if (!t.window.available()) continue;
      std::map<std::string, std::string> labels{{"timeline", std::to_string(t.timeline)}};
      set(windowStart, epochOf(t.window.earliest->time), labels);
      // The storage's clock, against the server's (rounded up) for the start: never before it.
      set(windowEnd,
          std::max(epochOf(t.window.latest->archivedAt), epochOf(t.window.earliest->time)), labels);
    }
  }

  // The last verify and drill (state records).
  auto& verifyAge =
      gauge("tidemark_verify_last_age_seconds", "seconds since the last tidemark verify ended");
  auto& verifyOk =
      gauge("tidemark_verify_last_success", "1 when the last tidemark verify found no problem");
  auto& drillAge =
      gauge("tidemark_drill_last_age_seconds", "seconds since the last tidemark drill ended");
  auto& drillOk = gauge("tidemark_drill_last_success", "1 when the last tidemark drill passed");
  auto& rto = gauge("tidemark_drill_last_rto_seconds",
                    "the last passed drill's RTO: from its start to the target reached and the "
                    "server answering");
  auto& rpo = gauge("tidemark_drill_last_rpo_seconds",
                    "the last drill's RPO: from the newest commit it replayed to its start");
  if (in.info && in.info->lastVerify) {
    if (auto at = parseUtc(in.info->lastVerify->finished))
      set(verifyAge, std::max(0.0, in.now - epochOf(*at)));
    set(verifyOk, in.info->lastVerify->ok ? 1.0 : 0.0);
  }
  if (in.info && in.info->lastDrill) {
    const auto& d = *in.info->lastDrill;
    if (auto at = parseUtc(d.finished)) set(drillAge, std::max(0.0, in.now - epochOf(*at)));
    set(drillOk, d.ok ? 1.0 : 0.0);
    if (d.ok) set(rto, d.rtoSeconds);
    set(rpo, d.rpoSeconds);
  }
  return {out.begin(), out.end()};
}

std::string renderMetrics(const std::vector<MetricFamily>& families, const std::string& stanza,
                          const std::string& repository) {
  std::string out;
  for (const auto& f : families) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name, f.help, f.name, f.type);
    for (const auto& sample : f.samples) {
      std::string labels = fmt::format("stanza=\"{}\",repository=\"{}\"", escapeLabel(stanza),
                                       escapeLabel(repository));
      for (const auto& [key, value] : sample.labels)
        labels += fmt::format(",{}=\"{}\"", key, escapeLabel(value));
      out += fmt::format("{}{{{}}} {}\n", f.name, labels, formatValue(sample.value));
    }
  }
  return out;
}

std::vector<OptionSpec> metricsOptionSpecs() {
  return {{"textfile", "PATH",
           "write the metrics atomically to PATH (node_exporter's textfile collector, e.g. "
           "/var/lib/prometheus/node-exporter/tidemark.prom) instead of printing them"}};
}

int metrics(const Config& config, const CommandLine& commandLine) {
  auto textfile = commandLine.value("textfile");
  if (textfile && (textfile->empty() || textfile->front() != '/'))
    throw Error(ErrorCode::Usage, fmt::format("--textfile '{}' is not an absolute path", *textfile),
                "give the full path of the .prom file node_exporter reads");
  MetricsInput input;
  input.stanza = config.stanza;
  input.now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::optional<Error> failure;
  // The same label whether the repository can be opened or not: one series for tidemark_up.
  input.repository = repo::describeRepository(config);
  try {
    input.info = collectInfo(repo::openRepository(config), false);
  } catch (const Error& e) {
    failure = e;
  }
  if (!config.pg.conninfo.empty()) {
    input.server = readServer(config.pg.conninfo);
    if (!input.server->up) spdlog::warn("the server does not answer: {}", input.server->error);
  }
  std::optional<std::string> dataDirectory =
      input.server ? input.server->dataDirectory : std::nullopt;
  if (auto spoolPath = spool::stanzaSpool(config, dataDirectory))
    input.pushes = spool::readPushStats(*spoolPath, config.stanza, kPushWindow);
  // Only where archive-push keeps its spool (a server on another host has none here). Every
  // stanza folder of this cluster's counts: a drop left under a former stanza name is unrecorded
  // too.
  try {
    spool::HostGaps host = spool::findHostGaps(config, dataDirectory);
    if (!host.spools.empty() && host.denied.empty()) {
      std::uint64_t count = 0;
      for (const auto& found : host.gaps)
        for (const auto& range : found.gap.ranges)
          count += range.files;
      input.unrecordedDrops = count;
    } else if (!host.spools.empty()) {
      spdlog::warn(
          "cannot look into '{}' (permission denied): "
          "tidemark_archive_dropped_unrecorded_files has no sample; run tidemark metrics "
          "as the user PostgreSQL runs as",
          host.denied.front());
    }
  } catch (const Error& e) {
    spdlog::warn("{}: tidemark_archive_dropped_unrecorded_files has no sample", e.what());
  }

  std::string text = renderMetrics(buildMetrics(input), input.stanza, input.repository);
  if (textfile) {
    files::AtomicFile file(*textfile, {.mode = 0644});
    file.write(io::asBytes(text));
    file.commit();
  } else if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() ||
             std::fflush(stdout) != 0) {
    throw systemError(ErrorCode::LocalIo, errno, "cannot write the metrics to standard output");
  }
  if (failure) throw *failure;
  return 0;
}

}  // namespace tidemark::ctl
