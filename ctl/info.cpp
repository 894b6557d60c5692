// tidemark info: the report (collectInfo), its text and JSON renderings, and the command.
#include "ctl/info.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/base/time.h"
#include "common/base/version.h"
#include "common/pg/lsn.h"
#include "common/pg/wal.h"

namespace tidemark::ctl {

namespace {

// Where the server's configuration was, for a backup's rows; nullopt when not recorded.
std::optional<std::string> configurationText(const repo::BackupConfiguration& config) {
  using State = repo::BackupConfiguration::State;
  switch (config.state) {
    case State::Unknown:
      return std::nullopt;
    case State::InDataDirectory:
      return "in the data directory";
    case State::Stored:
      return fmt::format("{} from {}, stored", plural(config.fileCount(), "file", "files"),
                         config.directory);
    case State::NotStored:
      return fmt::format("NOT stored (kept outside the data directory{})",
                         config.directory.empty() ? "" : ", in " + config.directory);
    case State::LocationUnknown:
      return "unknown (the backup's role could not ask where it is)";
  }
  return std::nullopt;
}

// "45 s", "12 min 5 s", "3 h 02 min".
std::string textDuration(std::int64_t seconds) {
  if (seconds < 60) return fmt::format("{} s", seconds);
  if (seconds < 3600) return fmt::format("{} min {} s", seconds / 60, seconds % 60);
  return fmt::format("{} h {:02} min", seconds / 3600, seconds % 3600 / 60);
}

TimelineWal walOf(const repo::WalCatalog& catalog, std::uint32_t timeline) {
  TimelineWal wal;
  const std::uint32_t size = catalog.segmentSize;
  if (auto it = catalog.segments.find(timeline);
      it != catalog.segments.end() && !it->second.empty()) {
    const auto& files = it->second;
    wal.first = pg::segmentFileName(timeline, files.begin()->first, size);
    wal.last = pg::segmentFileName(timeline, files.rbegin()->first, size);
    wal.lastStored = files.rbegin()->second.modified;
    wal.segments = files.size();
    std::optional<std::uint64_t> previous;
    for (const auto& [segment, file] : files) {
      wal.storedSize += file.storedSize;
      if (previous && segment > *previous + 1)
        wal.gaps.push_back(recovery::WalGap{pg::segmentFileName(timeline, *previous + 1, size),
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

// One timeline: its WAL as stored, its history (or why it is unknown) and its window.
TimelineInfo timelineInfo(const repo::Repository& repository, const recovery::Catalog& catalog,
                          std::uint32_t timeline,
                          std::map<std::string, recovery::ArchiveEnd>* archiveEnds) {
  TimelineInfo t;
  t.timeline = timeline;
  t.historyFile = catalog.hasHistoryFile(timeline);
  t.wal = walOf(catalog.wal(), timeline);
  if (timeline > 1 && !t.historyFile) {
    t.historyError =
        fmt::format("the repository has no {}: the timeline's parent and switch point are unknown",
                    pg::historyFileName(timeline));
  } else {
    try {
      const pg::TimelineHistory& history = catalog.history(timeline);
      if (!history.parents.empty()) {
        t.parent = history.parents.back().timeline;
        t.switchPoint = history.parents.back().switchpoint;
        t.parentWentOn = catalog.walAfter(*t.parent, *t.switchPoint);
      }
      t.window = recovery::recoverableWindow(catalog, history);
      if (t.window.available() && archiveEnds) {
        // Timelines whose windows end in the same file share the answer.
        auto [it, added] = archiveEnds->try_emplace(t.window.latest->segment);
        if (added) {
          const std::uint64_t last = t.window.latest->lsn / catalog.segmentSize() - 1;
          it->second = recovery::lastCommit(repository, catalog, history,
                                            t.window.earliest->lsn / catalog.segmentSize(), last,
                                            catalog.generation().pgVersion);
        }
        t.archiveEnd = it->second;
      }
      return t;
    } catch (const Error& e) {
      if (e.code() != ErrorCode::Corrupt && e.code() != ErrorCode::Config) throw;
      t.historyError = e.what();
    }
  }
  t.window.reason = "its history is unknown: " + t.historyError;
  return t;
}

// One generation of the stanza: its backups (durations computed) and timelines.
GenerationReport generationReport(const repo::Repository& repository,
                                  const recovery::Catalog& catalog, bool current,
                                  bool lastCommits) {
  GenerationReport g;
  g.generation = catalog.generation();
  g.current = current;
  g.damagedBackups = catalog.damagedBackups();
  for (const auto& backup : catalog.backups()) {
    InfoBackup entry{backup, std::nullopt};
    if (backup.stopTime >= backup.startTime)
      entry.durationSeconds = (backup.stopTime - backup.startTime).count();
    g.backups.push_back(std::move(entry));
  }
  std::map<std::string, recovery::ArchiveEnd> archiveEnds;
  for (std::uint32_t timeline : catalog.timelines())
    g.timelines.push_back(
        timelineInfo(repository, catalog, timeline, lastCommits ? &archiveEnds : nullptr));
  return g;
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

std::string gapText(const recovery::WalGap& gap) {
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

// The timelines as a tree: each under its parent, with where it left it and whether the parent
// went on writing after that (a fork that recoveries through it must resolve).
std::string timelineTree(const std::vector<TimelineInfo>& timelines, const std::string& indent) {
  std::string out = indent + "timeline tree\n";
  std::function<void(const TimelineInfo&, int)> show = [&](const TimelineInfo& t, int depth) {
    std::string line = indent + std::string(2 + 2 * depth, ' ') + std::to_string(t.timeline);
    if (t.parent)
      line += fmt::format(
          "  from {} at {}{}", *t.parent, pg::formatLsn(t.switchPoint.value_or(0)),
          t.parentWentOn ? fmt::format(" (timeline {} went on after it: a fork)", *t.parent) : "");
    else if (!t.historyError.empty())
      line += "  parent unknown (" + historyText(t) + " history file)";
    line += t.wal.last
                ? fmt::format("; newest WAL {}{}", *t.wal.last,
                              t.wal.lastStored
                                  ? ", stored " + formatUtcText(UtcSeconds(
                                                      std::chrono::seconds(*t.wal.lastStored)))
                                  : "")
                : "; no WAL";
    out += line + "\n";
    for (const auto& child : timelines)
      if (child.parent == t.timeline) show(child, depth + 1);
  };
  // Roots: timelines without a parent, or whose parent the repository no longer holds (expired).
  auto listed = [&](std::uint32_t number) {
    return std::any_of(timelines.begin(), timelines.end(),
                       [&](const TimelineInfo& t) { return t.timeline == number; });
  };
  for (const auto& t : timelines)
    if (!t.parent || !listed(*t.parent)) show(t, 0);
  return out;
}

// Whether what info shows can be trusted (repo/metadata.h). Not worded from what stanza.json
// says about encryption: unauthenticated, that could be anyone's.
std::string metadataText(const InfoReport& report) {
  if (report.metadataAuthenticated) return "authenticated (MACs checked with the configured key)";
  return "UNAUTHENTICATED: no encryption key is configured here, so stanza.json and backup.json "
         "are shown as read, unchecked";
}

// The cluster of a generation: the stanza's header with one generation, each generation's with
// several.
void identityRows(Table& table, const repo::Generation& g) {
  table.row({"system identifier", std::to_string(g.systemId)});
  table.row({"PostgreSQL", std::to_string(g.pgVersion)});
  table.row({"WAL segment size", humanBytes(g.walSegmentSize)});
}

// A generation's backups, WAL and windows: headings at `indent`, their tables two spaces in.
std::string generationText(const GenerationReport& g, const std::string& indent) {
  const std::string in = indent + "  ";
  std::string out = "\n";
  if (g.backups.empty()) {
    // Only the current cluster can be backed up: an older generation's backups are what they are.
    out += indent + (g.current ? "backups: none complete (take one with tidemark-basebackup)\n"
                               : "backups: none complete\n");
  } else {
    out += indent + fmt::format("backups: {}, oldest first\n",
                                plural(g.backups.size(), "complete backup", "complete backups"));
    Table table;
    for (const auto& entry : g.backups) {
      const repo::BackupInfo& b = entry.backup;
      table.row({b.label, fmt::format("timeline {}", b.timeline)});
      table.row({"  start", formatUtcText(b.startTime), pg::formatLsn(b.startLsn), b.walStart()});
      table.row({"  stop", formatUtcText(b.stopTime), pg::formatLsn(b.stopLsn), b.walStop()});
      table.row(
          {"  duration", entry.durationSeconds ? textDuration(*entry.durationSeconds) : "unknown"});
      table.row({"  size", fmt::format("{}, {} stored ({})", humanBytes(b.size()),
                                       humanBytes(b.storedSize()), b.storageDescription())});
      for (const auto& object : b.objects)
        if (object.tablespaceOid != 0)
          table.row({"  tablespace",
                     fmt::format("{}  {}", object.tablespaceOid, object.tablespaceLocation)});
      if (auto config = configurationText(b.configuration)) table.row({"  configuration", *config});
      for (const auto& note : b.configuration.notes)
        table.row({"", note});
    }
    out += table.render(in);
  }
  for (const auto& problem : g.damagedBackups)
    out += in + "DAMAGED, left out: " + problem + "\n";

  out += "\n";
  if (g.timelines.empty()) {
    out += indent + "WAL: none archived\n";
  } else {
    out += indent + "WAL\n";
    Table table({0, 3});
    table.row({"timeline", "first", "last", "segments", "stored", "partial", "history"});
    for (const auto& t : g.timelines) {
      table.row({std::to_string(t.timeline), t.wal.first.value_or("-"), t.wal.last.value_or("-"),
                 std::to_string(t.wal.segments), humanBytes(t.wal.storedSize),
                 t.wal.partial.value_or("-"), historyText(t)});
      for (const auto& gap : t.wal.gaps)
        table.note(gapText(gap));
      if (!t.historyError.empty()) table.note("history: " + t.historyError);
    }
    out += table.render(in);
  }

  if (g.timelines.size() > 1) out += "\n" + timelineTree(g.timelines, indent);

  if (!g.timelines.empty()) {
    out += "\n" + indent + "recoverable window\n";
    Table table;
    for (const auto& t : g.timelines) {
      const recovery::RecoveryWindow& w = t.window;
      if (!w.available()) {
        table.row({fmt::format("timeline {}", t.timeline), "none: " + w.reason});
      } else {
        table.row({fmt::format("timeline {}", t.timeline), ""});
        table.row({"  earliest", pg::formatLsn(w.earliest->lsn), formatUtcText(w.earliest->time),
                   fmt::format("end of backup {} (stop time)", w.earliest->backup)});
        // The segment's archive time (the storage's clock, to the second) can be before the
        // backup's stop time (the server's clock, rounded up), while the replay always reaches
        // past the backup's end: latest is never shown before earliest.
        const bool clamped = w.latest->archivedAt < w.earliest->time;
        table.row({"  latest", pg::formatLsn(w.latest->lsn),
                   formatUtcText(clamped ? w.earliest->time : w.latest->archivedAt),
                   fmt::format("end of {} ({}), from backup {}", w.latest->segment,
                               clamped ? "archived before the backup's stop time: its clock"
                                       : "archive time",
                               w.latest->backup)});
        if (t.archiveEnd && t.archiveEnd->commit)
          table.row({"  commit", pg::formatLsn(t.archiveEnd->commit->lsn),
                     formatTimestamp(t.archiveEnd->commit->time),
                     fmt::format("the last one ({} in {}): a time target must lie before it",
                                 t.archiveEnd->commit->kind, t.archiveEnd->commit->segment)});
        else if (t.archiveEnd)
          table.row({"  commit", "the last one is unknown: " + t.archiveEnd->unknown});
      }
      for (const auto& hole : w.holes)
        table.note(fmt::format("hole: {} to {} cannot be reached (missing WAL between backups)",
                               pg::formatLsn(hole.from), pg::formatLsn(hole.to)));
      for (const auto& b : w.incompleteBackups)
        table.note(
            fmt::format("backup {} cannot reach consistency: {} is missing", b.label, b.missing));
    }
    out += table.render(in);
    out += in +
           "(latest: the end of the last segment reachable without a gap, at the time it was "
           "archived;\n" +
           in +
           "commit: the newest commit or abort in it, read with pg_waldump, where a time "
           "target's reach ends)\n";
  }
  return out;
}

// ---- JSON ---------------------------------------------------------------------------------

using Json = nlohmann::ordered_json;

template <typename T>
Json orNull(const std::optional<T>& value) {
  return value ? Json(*value) : Json(nullptr);
}

Json backupsJson(const std::vector<InfoBackup>& entries) {
  Json backups = Json::array();
  for (const auto& entry : entries) {
    const repo::BackupInfo& b = entry.backup;
    Json j;
    j["label"] = b.label;
    j["timeline"] = b.timeline;
    j["start-time"] = formatUtc(b.startTime);
    j["stop-time"] = formatUtc(b.stopTime);
    j["start-lsn"] = pg::formatLsn(b.startLsn);
    j["stop-lsn"] = pg::formatLsn(b.stopLsn);
    j["wal-start"] = b.walStart();
    j["wal-stop"] = b.walStop();
    j["size"] = b.size();
    j["stored-size"] = b.storedSize();
    j["duration"] = orNull(entry.durationSeconds);
    j["compression"] = std::string(io::compressName(b.compression));
    j["encryption"] = std::string(io::encryptName(b.encryption));
    if (b.configuration.state != repo::BackupConfiguration::State::Unknown)
      j["configuration"] =
          Json{{"state", std::string(repo::configStateName(b.configuration.state))},
               {"directory", b.configuration.directory},
               {"files", b.configuration.fileCount()},
               {"notes", b.configuration.notes}};
    Json& tablespaces = j["tablespaces"] = Json::array();
    for (const auto& object : b.objects)
      if (object.tablespaceOid != 0)
        tablespaces.push_back(
            Json{{"oid", object.tablespaceOid}, {"location", object.tablespaceLocation}});
    backups.push_back(std::move(j));
  }
  return backups;
}

Json timelinesJson(const std::vector<TimelineInfo>& entries) {
  Json timelines = Json::array();
  for (const auto& t : entries) {
    Json j;
    j["timeline"] = t.timeline;
    j["history-file"] = t.historyFile;
    j["parent"] = orNull(t.parent);
    j["switch-point"] = t.switchPoint ? Json(pg::formatLsn(*t.switchPoint)) : Json(nullptr);
    j["history-error"] = t.historyError.empty() ? Json(nullptr) : Json(t.historyError);
    j["parent-went-on"] = t.parentWentOn;
    Json& wal = j["wal"];
    wal["first"] = orNull(t.wal.first);
    wal["last"] = orNull(t.wal.last);
    wal["last-stored"] = t.wal.lastStored
                             ? Json(formatUtc(UtcSeconds(std::chrono::seconds(*t.wal.lastStored))))
                             : Json(nullptr);
    wal["segments"] = t.wal.segments;
    wal["stored-size"] = t.wal.storedSize;
    wal["partial"] = orNull(t.wal.partial);
    Json& gaps = wal["gaps"] = Json::array();
    for (const auto& gap : t.wal.gaps)
      gaps.push_back(Json{{"first", gap.first}, {"last", gap.last}, {"count", gap.count}});
    Json& window = j["window"];
    const recovery::RecoveryWindow& w = t.window;
    window["available"] = w.available();
    window["reason"] = w.available() ? Json(nullptr) : Json(w.reason);
    window["earliest"] = w.earliest ? Json{{"backup", w.earliest->backup},
                                           {"time", formatUtc(w.earliest->time)},
                                           {"lsn", pg::formatLsn(w.earliest->lsn)}}
                                    : Json(nullptr);
    window["latest"] = w.latest ? Json{{"backup", w.latest->backup},
                                       {"lsn", pg::formatLsn(w.latest->lsn)},
                                       {"segment", w.latest->segment},
                                       {"archived-at", formatUtc(w.latest->archivedAt)}}
                                : Json(nullptr);
    if (t.archiveEnd && t.archiveEnd->commit)
      window["last-commit"] = Json{{"time", formatTimestamp(t.archiveEnd->commit->time)},
                                   {"lsn", pg::formatLsn(t.archiveEnd->commit->lsn)},
                                   {"kind", t.archiveEnd->commit->kind},
                                   {"segment", t.archiveEnd->commit->segment}};
    else
      window["last-commit"] = nullptr;
    window["last-commit-unknown"] =
        t.archiveEnd && !t.archiveEnd->commit ? Json(t.archiveEnd->unknown) : Json(nullptr);
    Json& holes = window["holes"] = Json::array();
    for (const auto& hole : w.holes)
      holes.push_back(Json{{"from", pg::formatLsn(hole.from)}, {"to", pg::formatLsn(hole.to)}});
    Json& incomplete = window["incomplete-backups"] = Json::array();
    for (const auto& b : w.incompleteBackups)
      incomplete.push_back(Json{{"label", b.label}, {"missing", b.missing}});
    timelines.push_back(std::move(j));
  }
  return timelines;
}

Json generationJson(const GenerationReport& g) {
  Json j;
  j["number"] = g.generation.number;
  j["system-identifier"] = std::to_string(g.generation.systemId);
  j["pg-version"] = g.generation.pgVersion;
  j["wal-segment-size"] = g.generation.walSegmentSize;
  j["created"] = g.generation.created ? Json(formatUtc(*g.generation.created)) : Json(nullptr);
  j["current"] = g.current;
  j["backups"] = backupsJson(g.backups);
  j["damaged-backups"] = g.damagedBackups;
  j["timelines"] = timelinesJson(g.timelines);
  return j;
}

}  // namespace

InfoReport collectInfo(const repo::Repository& repository, bool lastCommits) {
  std::vector<recovery::Catalog> catalogs = recovery::Catalog::loadGenerations(repository);
  if (catalogs.empty()) throw repo::missingStanza(repository);
  InfoReport report;
  report.stanza = repository.stanza();
  report.repository = repository.describe();
  report.info = catalogs.front().stanza();
  report.metadataAuthenticated =
      catalogs.front().metadataTrust() == repo::MetadataTrust::Authenticated;
  for (std::size_t i = 0; i < catalogs.size(); ++i)
    report.generations.push_back(
        generationReport(repository, catalogs[i], i + 1 == catalogs.size(), lastCommits));
  const std::string stanzaId = report.info.identity();
  try {
    report.lastVerify = lastVerify(repository, stanzaId);
  } catch (const Error& e) {
    report.notes.push_back(e.what());
  }
  try {
    report.lastDrill = lastDrill(repository, stanzaId);
  } catch (const Error& e) {
    report.notes.push_back(e.what());
  }
  try {
    report.droppedWal = repo::readGapRecords(repository, stanzaId);
  } catch (const Error& e) {
    report.notes.push_back(e.what());
  }
  return report;
}

std::string renderText(const InfoReport& report) {
  // One generation reads as the stanza always did; several each get a header of their own.
  const bool several = report.generations.size() > 1;
  std::string out = fmt::format("stanza '{}'\n", report.stanza);
  {
    Table table;
    table.row({"repository", report.repository});
    if (!several) identityRows(table, report.current().generation);
    if (report.info.created) table.row({"created", formatUtcText(*report.info.created)});
    table.row({"stanza id", report.info.identity()});
    table.row({"encryption", std::string(io::encryptName(report.info.encryption))});
    table.row({"metadata", metadataText(report)});
    if (several)
      table.row({"generations",
                 fmt::format("{}, oldest first below; the current one is generation {}",
                             report.generations.size(), report.current().generation.number)});
    if (report.lastVerify)
      table.row({"last verify",
                 fmt::format("{} {} ({} scope, {})", report.lastVerify->finished,
                             report.lastVerify->ok ? "ok" : "FAILED", report.lastVerify->scope,
                             plural(report.lastVerify->findings, "finding", "findings"))});
    else
      table.row({"last verify", "never (tidemark verify)"});
    if (const auto& d = report.lastDrill)
      table.row({"last drill",
                 d->ok ? fmt::format("{} ok, backup {}, RTO {:.1f} s, RPO {}", d->finished,
                                     d->backup, d->rtoSeconds.value_or(0),
                                     d->rpoSeconds ? fmt::format("{:.1f} s", *d->rpoSeconds)
                                                   : std::string("-"))
                       : fmt::format("{} FAILED in the {} step", d->finished, d->failedStep)});
    else
      table.row({"last drill", "never (tidemark drill)"});
    for (const auto& gap : report.droppedWal)
      table.row({"DROPPED WAL", recovery::describeDropped(gap) +
                                    ": backups taken before it do not recover past it"});
    for (const auto& note : report.notes)
      table.row({"note", note});
    out += table.render("  ");
  }
  if (!several) return out + generationText(report.current(), "");

  for (const auto& g : report.generations) {
    out += fmt::format("\ngeneration {}{}\n", g.generation.number, g.current ? " (current)" : "");
    Table table;
    identityRows(table, g.generation);
    if (g.generation.created) table.row({"recorded", formatUtcText(*g.generation.created)});
    out += table.render("  ");
    out += generationText(g, "  ");
  }
  return out;
}

std::string renderJson(const InfoReport& report) {
  // The top level is the current generation's, as it was before generations existed; except
  // damaged-backups: every generation's (one that cannot be read cannot tell its generation).
  const GenerationReport& current = report.current();
  Json doc;
  Json& stanza = doc["stanza"];
  stanza["name"] = report.stanza;
  stanza["repository"] = report.repository;
  stanza["system-identifier"] = std::to_string(current.generation.systemId);
  stanza["pg-version"] = current.generation.pgVersion;
  stanza["wal-segment-size"] = current.generation.walSegmentSize;
  stanza["format"] = report.info.format;
  stanza["created"] = report.info.created ? formatUtc(*report.info.created) : "";
  stanza["stanza-id"] = report.info.identity();
  stanza["encryption"] = std::string(io::encryptName(report.info.encryption));
  stanza["metadata-authenticated"] = report.metadataAuthenticated;

  if (const auto& v = report.lastVerify)
    doc["last-verify"] = Json{{"finished", v->finished},
                              {"result", v->ok ? "ok" : "failed"},
                              {"scope", v->scope},
                              {"findings", v->findings}};
  else
    doc["last-verify"] = nullptr;
  if (const auto& d = report.lastDrill)
    doc["last-drill"] =
        Json{{"finished", d->finished},
             {"result", d->ok ? "ok" : "failed"},
             {"failed-step", d->failedStep.empty() ? Json(nullptr) : Json(d->failedStep)},
             {"backup", d->backup.empty() ? Json(nullptr) : Json(d->backup)},
             {"rto-seconds", d->rtoSeconds ? Json(*d->rtoSeconds) : Json(nullptr)},
             {"rpo-seconds", d->rpoSeconds ? Json(*d->rpoSeconds) : Json(nullptr)}};
  else
    doc["last-drill"] = nullptr;
  Json& dropped = doc["dropped-wal"] = Json::array();
  for (const auto& gap : report.droppedWal)
    dropped.push_back(Json{
        {"system-identifier", std::to_string(gap.systemId)},
        {"first", gap.first},
        {"last", gap.last},
        {"files", gap.files},
        {"first-dropped", formatUtc(UtcSeconds(std::chrono::seconds(gap.firstDroppedMs / 1000)))},
        {"last-dropped", formatUtc(UtcSeconds(std::chrono::seconds(gap.lastDroppedMs / 1000)))}});
  doc["notes"] = report.notes;
  doc["backups"] = backupsJson(current.backups);
  Json& damaged = doc["damaged-backups"] = Json::array();
  for (const auto& g : report.generations)
    for (const auto& problem : g.damagedBackups)
      damaged.push_back(problem);
  doc["timelines"] = timelinesJson(current.timelines);

  Json& generations = doc["generations"] = Json::array();
  for (const auto& g : report.generations)
    generations.push_back(generationJson(g));
  return doc.dump(2) + "\n";
}

std::vector<OptionSpec> infoOptionSpecs() {
  return {{.name = "output",
           .valueName = "FORMAT",
           .help = "text (default) or json (fields: " + docPath("info.md") + ")"}};
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
  repo::Repository repository = repo::openRepository(config);
  InfoReport report = collectInfo(repository);
  std::string text = format == OutputFormat::Json ? renderJson(report) : renderText(report);
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0)
    throw systemError(ErrorCode::LocalIo, errno, "cannot write the report to standard output");
  return 0;
}

}  // namespace tidemark::ctl
