// The recoverable window of a timeline.
#include "common/recovery/window.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "common/pg/lsn.h"
#include "common/pg/wal.h"

namespace tidemark::recovery {

namespace {

// How far unbroken runs of WAL reach along one history. Each segment is walked once, however
// many backups start inside the same run.
class Runs {
 public:
  Runs(const Catalog& catalog, const pg::TimelineHistory& history)
      : catalog_(catalog), history_(history) {}

  // The last segment of the unbroken run from `start`; nullopt when `start` itself is missing.
  std::optional<std::uint64_t> reach(std::uint64_t start) {
    if (!catalog_.holds(history_, start)) return std::nullopt;
    if (auto it = runs_.upper_bound(start); it != runs_.begin() && start <= std::prev(it)->second)
      return std::prev(it)->second;
    std::uint64_t last = start;
    while (catalog_.holds(history_, last + 1)) {
      if (auto known = runs_.find(last + 1); known != runs_.end()) {
        last = known->second;
        break;
      }
      ++last;
    }
    runs_[start] = last;
    return last;
  }

 private:
  const Catalog& catalog_;
  const pg::TimelineHistory& history_;
  std::map<std::uint64_t, std::uint64_t> runs_;  // first segment -> last segment
};

std::string timelineList(const pg::TimelineHistory& history) {
  std::string out;
  for (const auto& parent : history.parents)
    out += (out.empty() ? "" : ", ") + std::to_string(parent.timeline);
  return out;
}

// Why a timeline has no window although it has backups.
std::string noWindowReason(const Catalog& catalog, const pg::TimelineHistory& history,
                           const RecoveryWindow& window, bool anyOnHistory) {
  if (!window.incompleteBackups.empty()) {
    const auto& first = window.incompleteBackups.front();
    return fmt::format("the WAL of every backup on its history is incomplete (backup {} lacks {})",
                       first.label, first.missing);
  }
  if (!anyOnHistory) {
    auto oldest = std::find_if(catalog.backups().begin(), catalog.backups().end(),
                               [&](const auto& b) { return history.contains(b.timeline); });
    if (oldest != catalog.backups().end())
      return fmt::format(
          "every backup on its history was taken after the switch away from its timeline (the "
          "oldest, {}, ended at "
          "{} on timeline {}, which ended at {})",
          oldest->label, pg::formatLsn(oldest->stopLsn), oldest->timeline,
          pg::formatLsn(history.endOf(oldest->timeline).value_or(0)));
  }
  if (history.parents.empty())
    return fmt::format("no complete backup was taken on timeline {}", history.timeline);
  return fmt::format("no complete backup was taken on timeline {} or its ancestors ({})",
                     history.timeline, timelineList(history));
}

// Points between the earliest and the latest that no backup's replay reaches: `reachable` holds
// each usable backup's stop LSN and the end of its replay.
std::vector<WindowHole> holesBetween(
    std::vector<std::pair<std::uint64_t, std::uint64_t>> reachable) {
  std::vector<WindowHole> holes;
  std::sort(reachable.begin(), reachable.end());
  std::uint64_t reached = reachable.front().second;
  for (const auto& [stop, end] : reachable) {
    if (stop > reached) holes.push_back({reached, stop});
    reached = std::max(reached, end);
  }
  return holes;
}

}  // namespace

RecoveryWindow recoverableWindow(const Catalog& catalog, const pg::TimelineHistory& history) {
  RecoveryWindow window;
  if (catalog.backups().empty()) {
    window.reason =
        catalog.generation().number == 1
            ? "the stanza has no complete backup; take one with tidemark-basebackup"
            : fmt::format(
                  "generation {} (after stanza-upgrade) has no complete backup yet; take "
                  "one with tidemark-basebackup: until then the upgraded cluster cannot be "
                  "recovered",
                  catalog.generation().number);
    return window;
  }
  const std::uint32_t size = catalog.segmentSize();
  Runs runs(catalog, history);
  bool anyOnHistory = false;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> reachable;  // stop LSN, end of the replay
  for (const repo::BackupInfo& b : catalog.backups()) {
    if (!Catalog::onHistory(b, history)) continue;
    anyOnHistory = true;
    std::uint64_t start = b.firstSegment();
    auto last = runs.reach(start);
    if (!last || *last < b.lastSegment()) {
      std::uint64_t missing = last ? *last + 1 : start;
      window.incompleteBackups.push_back({b.label, catalog.fileName(history, missing)});
      continue;
    }
    if (!window.earliest) window.earliest = WindowEarliest{b.label, b.stopTime, b.stopLsn};
    std::uint64_t end = (*last + 1) * size;
    reachable.emplace_back(b.stopLsn, end);
    // Ties go to the newer backup: the same point with a shorter replay.
    if (!window.latest || end >= window.latest->lsn) {
      std::uint32_t timeline = catalog.fileTimeline(history, *last);
      auto modified = catalog.wal().segments.at(timeline).at(*last).modified;
      window.latest = WindowLatest{b.label, end, pg::segmentFileName(timeline, *last, size),
                                   UtcSeconds(std::chrono::seconds(modified))};
    }
  }
  if (window.earliest)
    window.holes = holesBetween(std::move(reachable));
  else
    window.reason = noWindowReason(catalog, history, window, anyOnHistory);
  return window;
}

}  // namespace tidemark::recovery
