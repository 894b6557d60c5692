// The repository's WAL catalog.
#include "common/repo/catalog.h"

#include "common/error.h"
#include "common/pg/wal.h"
#include "common/repo/layout.h"
#include "common/repo/object.h"

namespace tidemark::repo {

bool WalCatalog::has(std::uint32_t timeline, std::uint64_t segment) const {
  auto it = segments.find(timeline);
  return it != segments.end() && it->second.count(segment) > 0;
}

std::set<std::uint32_t> WalCatalog::timelines() const {
  std::set<std::uint32_t> out(histories);
  for (const auto& [tli, files] : segments) out.insert(tli);
  for (const auto& [tli, files] : partials) out.insert(tli);
  return out;
}

WalCatalog scanWal(storage::Storage& storage, const std::string& stanza, std::uint32_t segmentSize) {
  WalCatalog catalog;
  catalog.segmentSize = segmentSize;
  std::string wal = walDirectory(stanza);
  std::vector<std::string> folders;
  storage.list(wal, [&](const storage::ListEntry& entry) {
    if (entry.directory) {
      folders.push_back(entry.name);
    } else if (auto name = pg::parseWalName(entry.name); name && name->kind == pg::WalKind::History) {
      catalog.histories.insert(name->timeline);
    }
  });
  for (const auto& folder : folders) {
    storage.list(wal + "/" + folder, [&](const storage::ListEntry& entry) {
      auto name = pg::parseWalName(entry.name);
      if (!name || entry.directory) return;
      ArchivedFile file{entry.size, entry.modified};
      if (name->kind == pg::WalKind::Segment)
        catalog.segments[name->timeline][pg::segmentNumber(*name, segmentSize)] = file;
      else if (name->kind == pg::WalKind::Partial)
        catalog.partials[name->timeline][pg::segmentNumber(*name, segmentSize)] = file;
    });
  }
  return catalog;
}

pg::TimelineHistory loadHistory(storage::Storage& storage, const std::string& stanza, std::uint32_t timeline,
                                const Keyring& keys) {
  if (timeline <= 1) return pg::TimelineHistory{timeline, {}};
  auto name = pg::parseWalName(pg::historyFileName(timeline));
  std::string path = walObject(stanza, *name);
  io::MemorySink sink(4u << 20);
  auto summary = readObject(storage, path, sink, keys);
  if (!summary)
    throw Error(ErrorCode::Corrupt,
                fmt::format("timeline {} has no history file '{}' in {}", timeline, path, storage.describe()),
                "the repository is missing the history of that timeline; choose another target timeline");
  return pg::parseHistory(timeline, std::string(sink.text()), storage.describe() + "/" + path);
}

std::uint32_t timelineForSegment(const pg::TimelineHistory& history, std::uint64_t segment, std::uint32_t segmentSize) {
  // PostgreSQL (XLogFileReadAnyTLI) reads a segment from the newest timeline on its path that
  // began at or before the segment's end.
  std::uint64_t end = (segment + 1) * segmentSize - 1;
  std::uint32_t chosen = history.parents.empty() ? history.timeline : history.parents.front().timeline;
  std::uint64_t begin = 0;
  for (const auto& parent : history.parents) {
    if (begin <= end) chosen = parent.timeline;
    begin = parent.switchpoint;
  }
  if (begin <= end) chosen = history.timeline;
  return chosen;
}

std::vector<WalGap> findGaps(const WalCatalog& catalog, const pg::TimelineHistory& history, std::uint64_t first,
                             std::uint64_t last) {
  std::vector<WalGap> gaps;
  // Past the newest stored segment everything is missing: one run, not a walk (an LSN target
  // far in the future must not mean billions of steps).
  std::uint64_t newest = 0;
  for (const auto& [timeline, files] : catalog.segments)
    if (!files.empty()) newest = std::max(newest, files.rbegin()->first);
  const std::uint64_t walked = std::min(last, std::max(first, newest + 1));
  for (std::uint64_t segment = first; segment <= walked; ++segment) {
    std::uint32_t timeline = timelineForSegment(history, segment, catalog.segmentSize);
    if (catalog.has(timeline, segment)) continue;
    std::string name = pg::segmentFileName(timeline, segment, catalog.segmentSize);
    if (!gaps.empty() && gaps.back().count > 0 &&
        pg::segmentNumber(*pg::parseWalName(gaps.back().last), catalog.segmentSize) + 1 == segment) {
      gaps.back().last = name;
      ++gaps.back().count;
    } else {
      gaps.push_back(WalGap{name, name, 1});
    }
  }
  if (walked < last) {  // segment `walked` is missing, so the last gap ends there: extend it
    gaps.back().last = pg::segmentFileName(timelineForSegment(history, last, catalog.segmentSize), last,
                                           catalog.segmentSize);
    gaps.back().count += last - walked;
  }
  return gaps;
}

std::optional<std::uint64_t> newestOnPath(const WalCatalog& catalog, const pg::TimelineHistory& history,
                                          std::uint64_t from) {
  std::optional<std::uint64_t> newest;
  auto consider = [&](std::uint32_t timeline, std::uint64_t lowest, std::optional<std::uint64_t> highest) {
    auto it = catalog.segments.find(timeline);
    if (it == catalog.segments.end()) return;
    for (const auto& [segment, file] : it->second) {
      if (segment < lowest || (highest && segment > *highest)) continue;
      if (!newest || segment > *newest) newest = segment;
    }
  };
  std::uint64_t begin = 0;
  for (const auto& parent : history.parents) {
    // A parent's files count up to the segment holding its switch point.
    consider(parent.timeline, std::max(from, begin / catalog.segmentSize),
             parent.switchpoint == 0 ? 0 : (parent.switchpoint - 1) / catalog.segmentSize);
    begin = parent.switchpoint;
  }
  consider(history.timeline, std::max(from, begin / catalog.segmentSize), std::nullopt);
  return newest;
}

bool backupOnHistory(const BackupInfo& backup, const pg::TimelineHistory& history) {
  if (!history.contains(backup.timeline)) return false;
  auto end = history.endOf(backup.timeline);
  return !end || backup.stopLsn <= *end;
}

}  // namespace tidemark::repo
