// Retention: which backups and WAL files expire may delete (retention.h).
#include "common/recovery/retention.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/base/error.h"
#include "common/base/text.h"

namespace tidemark::recovery {

namespace {

// Whether a recovery that starts at `first` and follows `history` reads WAL file (timeline,
// segment, kind): a segment when it is the file PostgreSQL reads for that position; a .partial or
// .backup file on any timeline of the path from `first` on.
bool reads(const Catalog& catalog, const pg::TimelineHistory& history, std::uint64_t first,
           std::optional<std::uint64_t> last, const ExpiredWal& file) {
  if (file.segment < first || (last && file.segment > *last)) return false;
  if (!history.contains(file.timeline)) return false;
  if (file.kind != pg::WalKind::Segment) return true;
  return catalog.fileTimeline(history, file.segment) == file.timeline;
}

}  // namespace

void requirePolicy(const RetentionPolicy& policy) {
  if (policy.empty())
    throw Error(ErrorCode::Config,
                "no retention policy: retention.full and retention.window are both unset",
                "set retention.full (the newest N backups to keep) or retention.window (e.g. "
                "\"14d\") in [retention], TIDEMARK_RETENTION_* or --retention-*: an unset policy "
                "never deletes");
}

ExpiryPlan planExpiry(const Catalog& catalog, const RetentionPolicy& policy,
                      const std::set<std::string>& keepMarks,
                      const std::vector<repo::Lease>& leases, UtcSeconds now) {
  requirePolicy(policy);
  const auto& backups = catalog.backups();  // oldest first
  const std::size_t n = backups.size();
  std::vector<std::vector<std::string>> reasons(n);
  std::vector<bool> byRule(n, false);

  if (policy.full > 0)
    for (std::size_t i = n > std::size_t(policy.full) ? n - policy.full : 0; i < n; ++i) {
      reasons[i].push_back(fmt::format("one of the newest {} (retention.full)", policy.full));
      byRule[i] = true;
    }
  if (policy.window > 0) {
    UtcSeconds start = now - std::chrono::seconds(policy.window);
    std::size_t first = 0;  // the newest backup that stopped before the window's start
    for (std::size_t i = 0; i < n; ++i)
      if (backups[i].stopTime < start) first = i;
    for (std::size_t i = first; i < n; ++i) {
      reasons[i].push_back(
          backups[i].stopTime < start
              ? fmt::format("recovers the start of the {} window (retention.window)",
                            formatDuration(policy.window))
              : fmt::format("within the {} window (retention.window)",
                            formatDuration(policy.window)));
      byRule[i] = true;
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (keepMarks.count(backups[i].label)) reasons[i].push_back("keep mark ('tidemark keep')");
    for (const auto& lease : leases)
      if (lease.backup == backups[i].label)
        reasons[i].push_back(
            fmt::format("a recovery replays it (lease {}, {})", lease.id, lease.holder));
  }

  ExpiryPlan plan;
  std::optional<std::size_t> cutoff;
  for (std::size_t i = 0; i < n; ++i) {
    if (reasons[i].empty()) {
      plan.backups.push_back({backups[i].label, "no retention rule keeps it"});
      continue;
    }
    plan.kept.push_back({backups[i].label, reasons[i]});
    if (byRule[i] && !cutoff) cutoff = i;
  }
  if (!cutoff) return plan;

  const repo::BackupInfo& oldest = backups[*cutoff];
  plan.cutoffBackup = oldest.label;
  plan.cutoffSegment = oldest.firstSegment();
  plan.cutoffTimeline = oldest.timeline;
  const pg::TimelineHistory& path = catalog.history(oldest.timeline);
  std::vector<std::uint32_t> timelines{oldest.timeline};
  for (const auto& parent : path.parents)
    timelines.push_back(parent.timeline);
  std::sort(timelines.begin(), timelines.end());

  const repo::WalCatalog& wal = catalog.wal();
  std::vector<ExpiredWal> candidates;
  for (std::uint32_t timeline : timelines) {
    // An ancestor goes only up to where the path left it: what it holds after that (the old
    // primary's own WAL after a promotion) is another branch.
    std::uint64_t limit = plan.cutoffSegment;
    if (auto end = path.endOf(timeline)) limit = std::min(limit, *end / wal.segmentSize + 1);
    plan.lowWater[timeline] = limit;
    std::vector<ExpiredWal> files;
    if (auto it = wal.segments.find(timeline); it != wal.segments.end())
      for (auto s = it->second.begin(); s != it->second.end() && s->first < limit; ++s)
        files.push_back({timeline, s->first, pg::WalKind::Segment,
                         pg::segmentFileName(timeline, s->first, wal.segmentSize)});
    if (auto it = wal.partials.find(timeline); it != wal.partials.end())
      for (auto s = it->second.begin(); s != it->second.end() && s->first < limit; ++s)
        files.push_back({timeline, s->first, pg::WalKind::Partial,
                         pg::segmentFileName(timeline, s->first, wal.segmentSize) + ".partial"});
    if (auto it = wal.backupFiles.find(timeline); it != wal.backupFiles.end())
      for (auto s = it->second.begin(); s != it->second.end() && s->first < limit; ++s)
        files.push_back({timeline, s->first, pg::WalKind::Backup, s->second});
    std::sort(files.begin(), files.end(), [](const ExpiredWal& a, const ExpiredWal& b) {
      return a.segment != b.segment ? a.segment < b.segment : a.name < b.name;
    });
    candidates.insert(candidates.end(), files.begin(), files.end());
  }

  // What must stay although it is older than the cutoff.
  struct Need {
    std::string why;
    const pg::TimelineHistory* history = nullptr;
    std::set<std::uint32_t> timelines;  // instead of a history (leases)
    std::uint64_t first = 0;
    std::optional<std::uint64_t> last;
  };
  std::vector<Need> needs;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& backup = backups[i];
    if (byRule[i])
      needs.push_back({"", &catalog.history(backup.timeline), {}, backup.firstSegment(), {}});
    else if (keepMarks.count(backup.label))
      needs.push_back({fmt::format("backup {} has a keep mark", backup.label),
                       &catalog.history(backup.timeline),
                       {},
                       backup.firstSegment(),
                       backup.lastSegment()});
  }
  for (const auto& lease : leases)
    needs.push_back({fmt::format("a recovery replays from backup {} (lease {}, {})", lease.backup,
                                 lease.id, lease.holder),
                     nullptr,
                     lease.timelines,
                     lease.firstSegment,
                     {}});

  std::map<std::string, std::uint64_t> held;
  for (const auto& file : candidates) {
    const Need* keeper = nullptr;
    for (const auto& need : needs) {
      bool needed = need.history
                        ? reads(catalog, *need.history, need.first, need.last, file)
                        : file.segment >= need.first && need.timelines.count(file.timeline) > 0;
      if (needed) {
        keeper = &need;
        break;
      }
    }
    if (!keeper)
      plan.wal.push_back(file);
    else if (!keeper->why.empty())
      ++held[keeper->why];
  }
  for (const auto& [why, count] : held)
    plan.heldBack.push_back(fmt::format("{} WAL file(s) stay: {}", count, why));
  return plan;
}

}  // namespace tidemark::recovery
