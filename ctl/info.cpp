// tidemark info: the report (collectInfo), its text and JSON renderings, and the command.
#include "ctl/info.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "common/error.h"
#include "common/pg/connection.h"
#include "common/pg/wal.h"
#include "common/text.h"

namespace tidemark::ctl {

namespace {

// For people: "2026-11-22 17:08:44 UTC" (whatever the local time zone), or the text as stored.
std::string textTime(const std::string& iso) {
  auto seconds = repo::parseUtc(iso);
  if (!seconds) return iso;
  std::time_t t = std::time_t(*seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buffer[40];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buffer;
}

std::string textTime(std::int64_t seconds) {
  return textTime(repo::formatUtc(seconds));
}

// "45 s", "12 min 5 s", "3 h 02 min".
std::string textDuration(std::int64_t seconds) {
  if (seconds < 60) return fmt::format("{} s", seconds);
  if (seconds < 3600) return fmt::format("{} min {} s", seconds / 60, seconds % 60);
  return fmt::format("{} h {:02} min", seconds / 3600, seconds % 3600 / 60);
}

std::string plural(std::uint64_t count, const char* one, const char* many) {
  return fmt::format("{} {}", count, count == 1 ? one : many);
}

TimelineWal walOf(const repo::WalCatalog& catalog, std::uint32_t timeline) {
  TimelineWal wal;
  const std::uint32_t size = catalog.segmentSize;
  if (auto it = catalog.segments.find(timeline);
      it != catalog.segments.end() && !it->second.empty()) {
    const auto& files = it->second;
    wal.first = pg::segmentFileName(timeline, files.begin()->first, size);
    wal.last = pg::segmentFileName(timeline, files.rbegin()->first, size);
    wal.segments = files.size();
    std::optional<std::uint64_t> previous;
    for (const auto& [segment, file] : files) {
      wal.storedSize += file.storedSize;
      if (previous && segment > *previous + 1)
        wal.gaps.push_back(repo::WalGap{pg::segmentFileName(timeline, *previous + 1, size),
                                        pg::segmentFileName(timeline, segment - 1, size),
                                        segment - *previous - 1});
      previous = segment;
    }
  }
  if (auto it = catalog.partials.find(timeline);
      it != catalog.partials.end() && !it->second.empty())
    wal.partial = pg::segmentFileName(timeline, it->second.rbegin()->first, size) + ".partial";
  return wal;
}

std::string timelineList(const pg::TimelineHistory& history) {
  std::string out;
  for (const auto& parent : history.parents)
    out += (out.empty() ? "" : ", ") + std::to_string(parent.timeline);
  return out;
}

// The recoverable window of history.timeline. A backup starts a replay at its start segment;
// the replay follows the timeline's path (the file of the newest timeline begun by each
// segment, as PostgreSQL reads them) as long as the repository holds the next segment.
RecoveryWindow windowOf(const repo::WalCatalog& catalog, const std::vector<InfoBackup>& backups,
                        const pg::TimelineHistory& history) {
  RecoveryWindow window;
  const std::uint32_t size = catalog.segmentSize;
  if (backups.empty()) {
    window.reason = "the stanza has no complete backup; take one with tidemark-basebackup";
    return window;
  }
  auto fileOf = [&](std::uint64_t segment) {
    return repo::timelineForSegment(history, segment, size);
  };
  auto stored = [&](std::uint64_t segment) { return catalog.has(fileOf(segment), segment); };
  // Contiguous runs already walked: first segment -> last segment. Each segment is walked once.
  std::map<std::uint64_t, std::uint64_t> runs;
  auto reach = [&](std::uint64_t start) -> std::optional<std::uint64_t> {
    if (!stored(start)) return std::nullopt;
    if (auto it = runs.upper_bound(start); it != runs.begin() && start <= std::prev(it)->second)
      return std::prev(it)->second;
    std::uint64_t last = start;
    while (stored(last + 1)) {
      if (auto known = runs.find(last + 1); known != runs.end()) {
        last = known->second;
        break;
      }
      ++last;
    }
    runs[start] = last;
    return last;
  };

  const InfoBackup* oldestOnPath = nullptr;
  bool anyUsable = false;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> reachable;  // stop LSN, end of the run
  for (const auto& entry : backups) {
    const repo::BackupInfo& b = entry.backup;
    if (!oldestOnPath && history.contains(b.timeline)) oldestOnPath = &entry;
    if (!repo::backupOnHistory(b, history)) continue;
    anyUsable = true;
    std::uint64_t start = b.startLsn / size;
    std::uint64_t stop = b.stopLsn == 0 ? start : std::max(start, (b.stopLsn - 1) / size);
    auto last = reach(start);
    if (!last || *last < stop) {
      std::uint64_t missing = last ? *last + 1 : start;
      window.incompleteBackups.push_back(
          {b.label, pg::segmentFileName(fileOf(missing), missing, size)});
      continue;
    }
    if (!window.earliest) window.earliest = WindowEarliest{b.label, b.stopTime, b.stopLsn};
    std::uint64_t end = (*last + 1) * size;
    reachable.emplace_back(b.stopLsn, end);
    // Ties go to the newer backup: the same point with a shorter replay.
    if (!window.latest || end >= window.latest->lsn) {
      std::uint32_t timeline = fileOf(*last);
      window.latest = WindowLatest{b.label, end, pg::segmentFileName(timeline, *last, size),
                                   catalog.segments.at(timeline).at(*last).modified};
    }
  }
  if (window.earliest) {
    std::sort(reachable.begin(), reachable.end());
    std::uint64_t reached = reachable.front().second;
    for (const auto& [stop, end] : reachable) {
      if (stop > reached) window.holes.push_back({reached, stop});
      reached = std::max(reached, end);
    }
    return window;
  }
  if (!window.incompleteBackups.empty()) {
    const auto& first = window.incompleteBackups.front();
    window.reason =
        fmt::format("the WAL of every backup on its history is incomplete (backup {} lacks {})",
                    first.label, first.missing);
  } else if (!anyUsable && oldestOnPath) {
    const repo::BackupInfo& b = oldestOnPath->backup;
    window.reason = fmt::format(
        "every backup on its history was taken after the switch away from its timeline (the "
        "oldest, {}, ended at "
        "{} on timeline {}, which ended at {})",
        b.label, pg::formatLsn(b.stopLsn), b.timeline,
        pg::formatLsn(history.endOf(b.timeline).value_or(0)));
  } else if (history.parents.empty()) {
    window.reason = fmt::format("no complete backup was taken on timeline {}", history.timeline);
  } else {
    window.reason = fmt::format("no complete backup was taken on timeline {} or its ancestors ({})",
                                history.timeline, timelineList(history));
  }
  return window;
}

// ---- text ---------------------------------------------------------------------------------

// Columns padded to the widest cell. A row's last cell is never padded and does not widen its
// column (a long value at the end of a short row must not push the other rows apart).
class Table {
 public:
  explicit Table(std::set<std::size_t> rightAligned = {}) : right_(std::move(rightAligned)) {}
  void row(std::vector<std::string> cells) { lines_.push_back({std::move(cells), false}); }
  // A free line below the previous row, indented by two more spaces.
  void note(std::string text) { lines_.push_back({{std::move(text)}, true}); }

  std::string render(const std::string& indent) const {
    std::vector<std::size_t> widths;
    for (const auto& line : lines_) {
      if (line.note) continue;
      for (std::size_t i = 0; i + 1 < line.cells.size(); ++i) {
        if (widths.size() <= i) widths.resize(i + 1, 0);
        widths[i] = std::max(widths[i], line.cells[i].size());
      }
    }
    std::string out;
    for (const auto& line : lines_) {
      if (line.note) {
        out += indent + "  " + line.cells.front() + "\n";
        continue;
      }
      std::string text = indent;
      for (std::size_t i = 0; i < line.cells.size(); ++i) {
        const std::string& cell = line.cells[i];
        bool last = i + 1 == line.cells.size();
        std::size_t width = i < widths.size() ? widths[i] : 0;
        if (right_.count(i))
          text += std::string(width > cell.size() ? width - cell.size() : 0, ' ') + cell;
        else
          text +=
              last ? cell : cell + std::string(width > cell.size() ? width - cell.size() : 0, ' ');
        if (!last) text += "  ";
      }
      while (!text.empty() && text.back() == ' ')
        text.pop_back();
      out += text + "\n";
    }
    return out;
  }

 private:
  struct Line {
    std::vector<std::string> cells;
    bool note;
  };
  std::set<std::size_t> right_;
  std::vector<Line> lines_;
};

std::string gapText(const repo::WalGap& gap) {
  if (gap.count == 1) return fmt::format("gap: {} is missing", gap.first);
  return fmt::format("gap: {} to {} are missing ({} segments)", gap.first, gap.last, gap.count);
}

std::string historyText(const TimelineInfo& t) {
  if (!t.historyError.empty()) return t.historyFile ? "DAMAGED" : "MISSING";
  if (t.parent)
    return fmt::format("from timeline {} at {}", *t.parent,
                       pg::formatLsn(t.switchPoint.value_or(0)));
  return t.historyFile ? "yes (no parent)" : "-";
}

// ---- JSON ---------------------------------------------------------------------------------

using Json = nlohmann::ordered_json;

template <typename T>
Json orNull(const std::optional<T>& value) {
  return value ? Json(*value) : Json(nullptr);
}

}  // namespace

InfoReport collectInfo(storage::Storage& storage, const std::string& stanza, const repo::Keyring& keys) {
  auto stanzaInfo = repo::loadStanza(storage, stanza);
  if (!stanzaInfo)
    throw Error(ErrorCode::Config,
                fmt::format("no stanza.json: nothing has been archived to stanza '{}' in {}",
                            stanza, storage.describe()),
                "check 'stanza' and the repository settings");
  InfoReport report;
  report.stanza = stanza;
  report.repository = storage.describe();
  report.info = *stanzaInfo;
  for (auto& backup : repo::listBackups(storage, stanza, &report.damagedBackups)) {
    InfoBackup entry{std::move(backup), std::nullopt};
    auto start = repo::parseUtc(entry.backup.startTime), stop = repo::parseUtc(entry.backup.stopTime);
    if (start && stop && *stop >= *start) entry.durationSeconds = *stop - *start;
    report.backups.push_back(std::move(entry));
  }

  repo::WalCatalog catalog = repo::scanWal(storage, stanza, stanzaInfo->walSegmentSize);
  std::set<std::uint32_t> timelines = catalog.timelines();
  for (const auto& entry : report.backups)
    timelines.insert(entry.backup.timeline);
  for (std::uint32_t timeline : timelines) {
    TimelineInfo t;
    t.timeline = timeline;
    t.historyFile = catalog.histories.count(timeline) > 0;
    t.wal = walOf(catalog, timeline);
    std::optional<pg::TimelineHistory> history;
    if (timeline <= 1) {
      history = pg::TimelineHistory{timeline, {}};
    } else if (!t.historyFile) {
      t.historyError = fmt::format(
          "the repository has no {}: the timeline's parent and switch point are unknown",
          pg::historyFileName(timeline));
    } else {
      try {
        history = repo::loadHistory(storage, stanza, timeline, keys);
      } catch (const Error& e) {
        if (e.code() != ErrorCode::Corrupt && e.code() != ErrorCode::Config) throw;
        t.historyError = e.what();
      }
    }
    if (history) {
      if (!history->parents.empty()) {
        t.parent = history->parents.back().timeline;
        t.switchPoint = history->parents.back().switchpoint;
      }
      t.window = windowOf(catalog, report.backups, *history);
    } else {
      t.window.reason = "its history is unknown: " + t.historyError;
    }
    report.timelines.push_back(std::move(t));
  }
  return report;
}

std::string renderText(const InfoReport& report) {
  std::string out = fmt::format("stanza '{}'\n", report.stanza);
  {
    Table table;
    table.row({"repository", report.repository});
    table.row({"system identifier", std::to_string(report.info.systemId)});
    table.row({"PostgreSQL", std::to_string(report.info.pgVersion)});
    table.row({"WAL segment size", humanBytes(report.info.walSegmentSize)});
    if (!report.info.created.empty()) table.row({"created", textTime(report.info.created)});
    out += table.render("  ");
  }

  out += "\n";
  if (report.backups.empty()) {
    out += "backups: none complete (take one with tidemark-basebackup)\n";
  } else {
    out += fmt::format("backups: {}, oldest first\n",
                       plural(report.backups.size(), "complete backup", "complete backups"));
    Table table;
    for (const auto& entry : report.backups) {
      const repo::BackupInfo& b = entry.backup;
      table.row({b.label, fmt::format("timeline {}", b.timeline)});
      table.row({"  start", textTime(b.startTime), pg::formatLsn(b.startLsn), b.walStart});
      table.row({"  stop", textTime(b.stopTime), pg::formatLsn(b.stopLsn), b.walStop});
      table.row(
          {"  duration", entry.durationSeconds ? textDuration(*entry.durationSeconds) : "unknown"});
      table.row({"  size", fmt::format("{}, {} stored ({})", humanBytes(b.size()),
                                       humanBytes(b.storedSize()),
                                       b.encryption == "none" ? b.compression : b.compression + ", " + b.encryption)});
      for (const auto& object : b.objects)
        if (object.tablespaceOid != 0)
          table.row({"  tablespace",
                     fmt::format("{}  {}", object.tablespaceOid, object.tablespaceLocation)});
    }
    out += table.render("  ");
  }
  for (const auto& problem : report.damagedBackups)
    out += "  DAMAGED, left out: " + problem + "\n";

  out += "\n";
  if (report.timelines.empty()) {
    out += "WAL: none archived\n";
  } else {
    out += "WAL\n";
    Table table({0, 3});
    table.row({"timeline", "first", "last", "segments", "stored", "partial", "history"});
    for (const auto& t : report.timelines) {
      table.row({std::to_string(t.timeline), t.wal.first.value_or("-"), t.wal.last.value_or("-"),
                 std::to_string(t.wal.segments), humanBytes(t.wal.storedSize),
                 t.wal.partial.value_or("-"), historyText(t)});
      for (const auto& gap : t.wal.gaps)
        table.note(gapText(gap));
      if (!t.historyError.empty()) table.note("history: " + t.historyError);
    }
    out += table.render("  ");
  }

  if (!report.timelines.empty()) {
    out += "\nrecoverable window\n";
    Table table;
    for (const auto& t : report.timelines) {
      const RecoveryWindow& w = t.window;
      if (!w.available()) {
        table.row({fmt::format("timeline {}", t.timeline), "none: " + w.reason});
      } else {
        table.row({fmt::format("timeline {}", t.timeline), ""});
        table.row({"  earliest", pg::formatLsn(w.earliest->lsn), textTime(w.earliest->time),
                   fmt::format("end of backup {} (stop time)", w.earliest->backup)});
        table.row({"  latest", pg::formatLsn(w.latest->lsn), textTime(w.latest->archivedAt),
                   fmt::format("end of {} (archive time), from backup {}", w.latest->segment,
                               w.latest->backup)});
      }
      for (const auto& hole : w.holes)
        table.note(fmt::format("hole: {} to {} cannot be reached (missing WAL between backups)",
                               pg::formatLsn(hole.from), pg::formatLsn(hole.to)));
      for (const auto& b : w.incompleteBackups)
        table.note(
            fmt::format("backup {} cannot reach consistency: {} is missing", b.label, b.missing));
    }
    out += table.render("  ");
    out +=
        "  (latest: the end of the last segment reachable without a gap; tidemark does not read "
        "commit times\n"
        "  from WAL records, so its time is when the segment was archived, shortly after its last "
        "commit)\n";
  }
  return out;
}

std::string renderJson(const InfoReport& report) {
  Json doc;
  Json& stanza = doc["stanza"];
  stanza["name"] = report.stanza;
  stanza["repository"] = report.repository;
  stanza["system-identifier"] = std::to_string(report.info.systemId);
  stanza["pg-version"] = report.info.pgVersion;
  stanza["wal-segment-size"] = report.info.walSegmentSize;
  stanza["format"] = report.info.format;
  stanza["created"] = report.info.created;

  Json& backups = doc["backups"] = Json::array();
  for (const auto& entry : report.backups) {
    const repo::BackupInfo& b = entry.backup;
    Json j;
    j["label"] = b.label;
    j["timeline"] = b.timeline;
    j["start-time"] = b.startTime;
    j["stop-time"] = b.stopTime;
    j["start-lsn"] = pg::formatLsn(b.startLsn);
    j["stop-lsn"] = pg::formatLsn(b.stopLsn);
    j["wal-start"] = b.walStart;
    j["wal-stop"] = b.walStop;
    j["size"] = b.size();
    j["stored-size"] = b.storedSize();
    j["duration"] = orNull(entry.durationSeconds);
    j["compression"] = b.compression;
    j["encryption"] = b.encryption;
    Json& tablespaces = j["tablespaces"] = Json::array();
    for (const auto& object : b.objects)
      if (object.tablespaceOid != 0)
        tablespaces.push_back(
            Json{{"oid", object.tablespaceOid}, {"location", object.tablespaceLocation}});
    backups.push_back(std::move(j));
  }

  doc["damaged-backups"] = report.damagedBackups;

  Json& timelines = doc["timelines"] = Json::array();
  for (const auto& t : report.timelines) {
    Json j;
    j["timeline"] = t.timeline;
    j["history-file"] = t.historyFile;
    j["parent"] = orNull(t.parent);
    j["switch-point"] = t.switchPoint ? Json(pg::formatLsn(*t.switchPoint)) : Json(nullptr);
    j["history-error"] = t.historyError.empty() ? Json(nullptr) : Json(t.historyError);
    Json& wal = j["wal"];
    wal["first"] = orNull(t.wal.first);
    wal["last"] = orNull(t.wal.last);
    wal["segments"] = t.wal.segments;
    wal["stored-size"] = t.wal.storedSize;
    wal["partial"] = orNull(t.wal.partial);
    Json& gaps = wal["gaps"] = Json::array();
    for (const auto& gap : t.wal.gaps)
      gaps.push_back(Json{{"first", gap.first}, {"last", gap.last}, {"count", gap.count}});
    Json& window = j["window"];
    const RecoveryWindow& w = t.window;
    window["available"] = w.available();
    window["reason"] = w.available() ? Json(nullptr) : Json(w.reason);
    window["earliest"] = w.earliest ? Json{{"backup", w.earliest->backup},
                                           {"time", w.earliest->time},
                                           {"lsn", pg::formatLsn(w.earliest->lsn)}}
                                    : Json(nullptr);
    window["latest"] = w.latest ? Json{{"backup", w.latest->backup},
                                       {"lsn", pg::formatLsn(w.latest->lsn)},
                                       {"segment", w.latest->segment},
                                       {"archived-at", repo::formatUtc(w.latest->archivedAt)}}
                                : Json(nullptr);
    Json& holes = window["holes"] = Json::array();
    for (const auto& hole : w.holes)
      holes.push_back(Json{{"from", pg::formatLsn(hole.from)}, {"to", pg::formatLsn(hole.to)}});
    Json& incomplete = window["incomplete-backups"] = Json::array();
    for (const auto& b : w.incompleteBackups)
      incomplete.push_back(Json{{"label", b.label}, {"missing", b.missing}});
    timelines.push_back(std::move(j));
  }
  return doc.dump(2) + "\n";
}

std::vector<OptionSpec> infoOptionSpecs() {
  return {{.name = "output",
           .valueName = "FORMAT",
           .help = "text (default) or json (fields: docs/info.md)"}};
}

OutputFormat parseOutputFormat(const CommandLine& commandLine) {
  auto value = commandLine.value("output");
  if (!value || *value == "text") return OutputFormat::Text;
  if (*value == "json") return OutputFormat::Json;
  throw Error(ErrorCode::Usage, fmt::format("--output '{}' is not text or json", *value),
              "use --output=text (the default) or --output=json");
}

int info(const Config& config, const CommandLine& commandLine) {
  OutputFormat format = parseOutputFormat(commandLine);
  auto storage = storage::openStorage(config);
  repo::Keyring keys = repo::loadKeyring(config);
  InfoReport report = collectInfo(*storage, config.stanza, keys);
  std::string text = format == OutputFormat::Json ? renderJson(report) : renderText(report);
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0)
    throw systemError(ErrorCode::LocalIo, errno, "cannot write the report to standard output");
  return 0;
}

}  // namespace tidemark::ctl
