// The recovery model's queries.
#include "common/recovery/catalog.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/base/time.h"
#include "common/pg/wal.h"
#include "common/repo/metadata.h"

namespace tidemark::recovery {

std::string WalGap::describe() const {
  return describeRun(first, last, count);
}

std::vector<Catalog> Catalog::loadGenerations(const repo::Repository& repository) {
  // With encryption configured, stanza.json, the generation records and every backup.json are
  // checked against their MACs before a field is used: a failing stanza.json or generation record
  // stops everything, a failing backup.json leaves that backup out (listed as damaged).
  auto stanza = repo::loadStanza(repository, true);
  if (!stanza) return {};
  std::vector<repo::Generation> generations = repo::loadGenerations(repository, *stanza);
  repo::checkWalFolders(repository, generations);
  std::vector<std::string> damagedAll;
  std::vector<repo::BackupInfo> all =
      repo::listBackups(repository, &damagedAll, stanza->identity());
  std::vector<std::vector<repo::BackupInfo>> backups(generations.size());
  std::vector<std::vector<std::string>> damaged(generations.size());
  damaged.back() = std::move(damagedAll);
  // A backup.json of no generation's cluster, or one whose segment size differs from its
  // generation's (every range and window is computed with the generation's), does not belong to
  // this stanza (or was altered).
  const bool authenticated = repo::authenticatesMetadata(repository);
  for (auto& b : all) {
    const repo::Generation* g = repo::findGeneration(generations, b.systemId);
    if (!g)
      damaged.back().push_back(fmt::format(
          "backup {} is of the cluster with system identifier {}, but stanza '{}' is of {}",
          b.label, b.systemId, repository.stanza(),
          generations.size() == 1
              ? std::to_string(stanza->systemId)
              : fmt::format("{} (generation 1) to {} (generation {})", stanza->systemId,
                            generations.back().systemId, generations.back().number)));
    else if (b.walSegmentSize != g->walSegmentSize)
      damaged[g->number - 1].push_back(
          fmt::format("backup {} records {} byte WAL segments, but stanza '{}' has {} byte "
                      "segments",
                      b.label, b.walSegmentSize, repository.stanza(), g->walSegmentSize));
    else
      backups[g->number - 1].push_back(std::move(b));
  }
  const repo::MetadataTrust trust =
      authenticated ? repo::MetadataTrust::Authenticated : repo::MetadataTrust::Unauthenticated;
  std::vector<Catalog> out;
  for (std::size_t i = 0; i < generations.size(); ++i) {
    const repo::Generation& g = generations[i];
    repo::WalCatalog wal = repo::scanWal(repository, g.number, g.walSegmentSize);
    // History files are read later, through the same storage (which must outlive the catalog).
    Catalog catalog(
        repository.stanza(), *stanza, std::move(backups[i]), std::move(damaged[i]), std::move(wal),
        [storage = &repository.storage(), name = repository.stanza(), keys = repository.keys(),
         policy = repository.policy(), generation = g.number](std::uint32_t timeline) {
          return repo::loadHistory(repo::Repository(*storage, name, keys, policy), generation,
                                   timeline);
        },
        g);
    catalog.trust_ = trust;
    out.push_back(std::move(catalog));
  }
  return out;
}

std::optional<Catalog> Catalog::load(const repo::Repository& repository) {
  std::vector<Catalog> generations = loadGenerations(repository);
  if (generations.empty()) return std::nullopt;
  return std::move(generations.back());
}

Catalog::Catalog(std::string name, repo::StanzaInfo stanza, std::vector<repo::BackupInfo> backups,
                 std::vector<std::string> damaged, repo::WalCatalog wal, HistoryLoader loadHistory,
                 std::optional<repo::Generation> generation)
    : name_(std::move(name)),
      stanza_(std::move(stanza)),
      generation_(generation ? std::move(*generation) : repo::Generation::first(stanza_)),
      backups_(std::move(backups)),
      damaged_(std::move(damaged)),
      wal_(std::move(wal)),
      loadHistory_(std::move(loadHistory)) {}

const repo::BackupInfo* Catalog::findBackup(const std::string& label) const {
  auto it = std::find_if(backups_.begin(), backups_.end(),
                         [&](const auto& b) { return b.label == label; });
  return it == backups_.end() ? nullptr : &*it;
}

std::set<std::uint32_t> Catalog::timelines() const {
  std::set<std::uint32_t> out = wal_.timelines();
  for (const auto& backup : backups_)
    out.insert(backup.timeline);
  return out;
}

const repo::GapRecord* droppedBy(const std::vector<repo::GapRecord>& dropped,
                                 std::uint64_t systemId, const WalGap& gap) {
  for (const auto& record : dropped)
    if (record.systemId == systemId && record.first <= gap.last && gap.first <= record.last)
      return &record;
  return nullptr;
}

std::string describeDropped(const repo::GapRecord& record) {
  auto at = [](std::int64_t ms) {
    return formatUtcText(UtcSeconds(std::chrono::seconds(ms / 1000)));
  };
  return fmt::format("archive-push's safety valve (archive.queue-max) dropped {} between {} and {}",
                     describeRun(record.first, record.last, record.files),
                     at(record.firstDroppedMs), at(record.lastDroppedMs));
}

std::uint32_t Catalog::newestFrom(std::uint32_t timeline) const {
  while (hasHistoryFile(timeline + 1))
    ++timeline;
  return timeline;
}

const pg::TimelineHistory& Catalog::history(std::uint32_t timeline) const {
  auto it = histories_.find(timeline);
  if (it != histories_.end()) return it->second;
  pg::TimelineHistory history{timeline, {}};
  if (timeline > 1 && hasHistoryFile(timeline)) history = loadHistory_(timeline);
  return histories_.emplace(timeline, std::move(history)).first->second;
}

std::uint32_t Catalog::fileTimeline(const pg::TimelineHistory& history,
                                    std::uint64_t segment) const {
  return pg::fileTimeline(history, segment, segmentSize());
}

std::string Catalog::fileName(const pg::TimelineHistory& history, std::uint64_t segment) const {
  return pg::segmentFileName(fileTimeline(history, segment), segment, segmentSize());
}

bool Catalog::holds(const pg::TimelineHistory& history, std::uint64_t segment) const {
  return wal_.has(fileTimeline(history, segment), segment);
}

std::vector<WalGap> Catalog::gaps(const pg::TimelineHistory& history, std::uint64_t first,
                                  std::uint64_t last) const {
  std::vector<WalGap> gaps;
  // Past the newest stored segment everything is missing: one run, not a walk (an LSN target
  // far in the future must not mean billions of steps).
  const std::uint64_t walked = std::min(last, std::max(first, wal_.newestSegment() + 1));
  std::optional<std::uint64_t> previousMissing;
  for (std::uint64_t segment = first; segment <= walked; ++segment) {
    if (holds(history, segment)) continue;
    std::string name = fileName(history, segment);
    if (previousMissing && *previousMissing + 1 == segment) {
      gaps.back().last = name;
      ++gaps.back().count;
    } else {
      gaps.push_back(WalGap{name, name, 1});
    }
    previousMissing = segment;
  }
  if (walked < last) {  // segment `walked` is missing, so the last gap ends there: extend it
    gaps.back().last = fileName(history, last);
    gaps.back().count += last - walked;
  }
  return gaps;
}

std::optional<std::uint64_t> Catalog::newestOnPath(const pg::TimelineHistory& history,
                                                   std::uint64_t from) const {
  std::optional<std::uint64_t> newest;
  auto consider = [&](std::uint32_t timeline, std::uint64_t lowest,
                      std::optional<std::uint64_t> highest) {
    auto it = wal_.segments.find(timeline);
    if (it == wal_.segments.end()) return;
    for (auto segment = it->second.lower_bound(lowest);
         segment != it->second.end() && (!highest || segment->first <= *highest); ++segment)
      if (!newest || segment->first > *newest) newest = segment->first;
  };
  std::uint64_t begin = 0;
  for (const auto& parent : history.parents) {
    // A parent's files count up to the segment holding its switch point.
    if (parent.switchpoint > 0)
      consider(parent.timeline, std::max(from, begin / segmentSize()),
               (parent.switchpoint - 1) / segmentSize());
    begin = parent.switchpoint;
  }
  consider(history.timeline, std::max(from, begin / segmentSize()), std::nullopt);
  return newest;
}

std::uint64_t Catalog::divergence(const pg::TimelineHistory& a, const pg::TimelineHistory& b) {
  std::vector<std::uint64_t> points{0};
  for (const auto* history : {&a, &b})
    for (const auto& parent : history->parents)
      points.push_back(parent.switchpoint);
  std::sort(points.begin(), points.end());
  for (std::uint64_t point : points)
    if (a.timelineOf(point) != b.timelineOf(point)) return point;
  return UINT64_MAX;
}

std::int64_t Catalog::newestWalStored(std::int64_t notAfter) const {
  std::int64_t newest = 0;
  for (const auto* files : {&wal_.segments, &wal_.partials})
    for (const auto& [timeline, segments] : *files)
      for (const auto& [segment, file] : segments)
        if (file.modified <= notAfter) newest = std::max(newest, file.modified);
  return newest;
}

bool Catalog::walAfter(std::uint32_t timeline, std::uint64_t lsn) const {
  auto it = wal_.segments.find(timeline);
  // Segment n ends at (n + 1) * size: after lsn from n = lsn / size on.
  return it != wal_.segments.end() &&
         it->second.lower_bound(lsn / segmentSize()) != it->second.end();
}

std::vector<Branch> Catalog::branchesFrom(const repo::BackupInfo& backup,
                                          std::vector<std::string>* problems) const {
  std::vector<Branch> candidates;
  for (std::uint32_t timeline : timelines()) {
    if (timeline != backup.timeline && !hasHistoryFile(timeline)) {
      // Where it branched is unknown: it may be a branch of this backup's history.
      if (timeline > backup.timeline && problems)
        problems->push_back(fmt::format("timeline {} has WAL but the repository has no {}",
                                        timeline, pg::historyFileName(timeline)));
      continue;
    }
    try {
      const pg::TimelineHistory& h = history(timeline);
      if (onHistory(backup, h)) candidates.push_back(Branch{.timeline = timeline, .history = h});
    } catch (const Error& e) {
      // A damaged or undecryptable history file; a repository that cannot be read stops here.
      if (e.code() != ErrorCode::Corrupt && e.code() != ErrorCode::Config) throw;
      if (problems)
        problems->push_back(
            fmt::format("the history of timeline {} cannot be read: {}", timeline, e.what()));
    }
  }
  std::vector<Branch> out;
  for (auto& candidate : candidates) {
    bool continued = false;
    for (const auto& other : candidates)
      if (auto end = other.history.endOf(candidate.timeline))
        continued = continued || (&other != &candidate && !walAfter(candidate.timeline, *end));
    if (continued) continue;
    if (auto it = wal_.segments.find(candidate.timeline);
        it != wal_.segments.end() && !it->second.empty()) {
      candidate.newestSegment = it->second.rbegin()->first;
      candidate.newestStored = it->second.rbegin()->second.modified;
    }
    out.push_back(std::move(candidate));
  }
  for (auto& branch : out)
    for (const auto& other : out)
      if (&other != &branch)
        branch.fork = std::max(branch.fork, divergence(branch.history, other.history));
  return out;
}

bool Catalog::onHistory(const repo::BackupInfo& backup, const pg::TimelineHistory& history) {
  if (!history.contains(backup.timeline)) return false;
  auto end = history.endOf(backup.timeline);
  return !end || backup.stopLsn <= *end;
}

}  // namespace tidemark::recovery
