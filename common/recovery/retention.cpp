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

// A lease is renewed while its recovery fetches WAL, and lapses without a renewal: a finished or
// abandoned recovery holds until then, so the message says when, not that one is running.
std::string describeLease(const repo::Lease& lease) {
  return fmt::format(
      "lease {}, {}, renewed {}, lapses {} without a renewal", lease.id, lease.holder,
      formatUtc(UtcSeconds(std::chrono::seconds(lease.stored))),
      formatUtc(UtcSeconds(std::chrono::seconds(lease.stored + lease.timeoutSeconds))));
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

ExpiryPlan planExpiry(const std::vector<Catalog>& generations, const RetentionPolicy& policy,
                      const std::set<std::string>& keepMarks,
                      const std::vector<repo::Lease>& leases, UtcSeconds now) {
  requirePolicy(policy);
  // Every backup of every generation, oldest first (labels are start times): the rules count and
  // window over all of them.
  struct Entry {
    const repo::BackupInfo* backup;
    const Catalog* catalog;
  };
  std::vector<Entry> backups;
  for (const auto& catalog : generations)
    for (const auto& b : catalog.backups())
      backups.push_back({&b, &catalog});
  std::stable_sort(backups.begin(), backups.end(), [](const Entry& a, const Entry& b) {
    return a.backup->label < b.backup->label;
  });
  const std::size_t n = backups.size();
  std::vector<std::vector<std::string>> reasons(n);
  std::vector<bool> byRule(n, false);

  // The count and window rules over `subset` (indexes into `backups`, oldest first); `of` names
  // the set in the reasons when it is not every backup.
  const auto applyRules = [&](const std::vector<std::size_t>& subset, const std::string& of) {
    const std::size_t m = subset.size();
    if (policy.full > 0)
      for (std::size_t k = m > std::size_t(policy.full) ? m - policy.full : 0; k < m; ++k) {
        reasons[subset[k]].push_back(
            fmt::format("one of the newest {}{} (retention.full)", policy.full, of));
        byRule[subset[k]] = true;
      }
    if (policy.window > 0) {
      UtcSeconds start = now - std::chrono::seconds(policy.window);
      std::size_t first = 0;  // the newest backup that stopped before the window's start
      for (std::size_t k = 0; k < m; ++k)
        if (backups[subset[k]].backup->stopTime < start) first = k;
      for (std::size_t k = first; k < m; ++k) {
        reasons[subset[k]].push_back(
            backups[subset[k]].backup->stopTime < start
                ? fmt::format("recovers the start of the {} window{} (retention.window)",
                              formatDuration(policy.window), of)
                : fmt::format("within the {} window{} (retention.window)",
                              formatDuration(policy.window), of));
        byRule[subset[k]] = true;
      }
    }
  };
  std::vector<std::size_t> every(n);
  for (std::size_t i = 0; i < n; ++i)
    every[i] = i;
  applyRules(every, "");

  // An older generation whose cluster still archives: WAL of it stored after the next generation
  // was recorded (both by the storage's clock; an hour allowed for a late upload) and recently. A
  // rolled-back upgrade, a migration by logical replication with the old cluster still in service,
  // or a cluster that was never the one upgraded (stanza-upgrade --force on the wrong one): the
  // rules count and window across generations, and would delete its backups and WAL as
  // superseded. Its own backups get the rules of their own, as a stanza of its own would, until
  // it has archived nothing for kStillArchivingFor.
  const std::int64_t nowSeconds = now.time_since_epoch().count();
  for (std::size_t g = 0; g + 1 < generations.size(); ++g) {
    const repo::Generation& next = generations[g + 1].generation();
    std::int64_t recorded = next.recordStored;
    if (recorded == 0 && next.created) recorded = next.created->time_since_epoch().count();
    const std::int64_t newest = generations[g].newestWalStored(nowSeconds + 3600);
    if (recorded == 0 || newest <= recorded + 3600 ||
        newest < nowSeconds - std::int64_t(kStillArchivingFor.count()))
      continue;
    std::vector<std::size_t> own;
    for (std::size_t i = 0; i < n; ++i)
      if (backups[i].catalog == &generations[g]) own.push_back(i);
    applyRules(own, fmt::format(" of generation {}, which still archives (WAL stored at {}, after "
                                "generation {} was recorded at {})",
                                generations[g].generation().number,
                                formatUtc(UtcSeconds(std::chrono::seconds(newest))), next.number,
                                formatUtc(UtcSeconds(std::chrono::seconds(recorded)))));
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (keepMarks.count(backups[i].backup->label))
      reasons[i].push_back("keep mark ('tidemark keep')");
    for (const auto& lease : leases)
      if (lease.backup == backups[i].backup->label)
        reasons[i].push_back(fmt::format("a recovery's lease holds it ({})", describeLease(lease)));
  }

  ExpiryPlan plan;
  for (std::size_t i = 0; i < n; ++i) {
    if (reasons[i].empty())
      plan.backups.push_back({backups[i].backup->label, "no retention rule keeps it"});
    else
      plan.kept.push_back({backups[i].backup->label, reasons[i]});
  }

  // What must stay although it is older than a cutoff.
  struct Need {
    std::string why;
    int generation = 1;
    const Catalog* catalog = nullptr;
    const pg::TimelineHistory* history = nullptr;
    std::set<std::uint32_t> timelines;  // instead of a history (leases)
    std::uint64_t first = 0;
    std::optional<std::uint64_t> last;
  };
  std::vector<Need> needs;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& [backup, catalog] = backups[i];
    const int generation = catalog->generation().number;
    if (byRule[i])
      needs.push_back({"",
                       generation,
                       catalog,
                       &catalog->history(backup->timeline),
                       {},
                       backup->firstSegment(),
                       {}});
    else if (keepMarks.count(backup->label))
      needs.push_back({fmt::format("backup {} has a keep mark", backup->label),
                       generation,
                       catalog,
                       &catalog->history(backup->timeline),
                       {},
                       backup->firstSegment(),
                       backup->lastSegment()});
  }
  for (const auto& lease : leases)
    needs.push_back({fmt::format("a recovery's lease on backup {} holds it ({})", lease.backup,
                                 describeLease(lease)),
                     lease.generation,
                     nullptr,
                     nullptr,
                     lease.timelines,
                     lease.firstSegment,
                     {}});

  // Each generation's cutoff: its oldest backup a rule keeps; or, with none, all of it when a
  // later generation has one.
  std::vector<ExpiredWal> candidates;
  for (std::size_t g = 0; g < generations.size(); ++g) {
    const Catalog& catalog = generations[g];
    const repo::WalCatalog& wal = catalog.wal();
    GenerationCutoff cutoff{.generation = catalog.generation().number,
                            .segmentSize = catalog.segmentSize()};
    const repo::BackupInfo* oldest = nullptr;
    for (std::size_t i = 0; i < n && !oldest; ++i)
      if (byRule[i] && backups[i].catalog == &catalog) oldest = backups[i].backup;
    if (oldest) {
      cutoff.cutoffBackup = oldest->label;
      cutoff.cutoffSegment = oldest->firstSegment();
      cutoff.cutoffTimeline = oldest->timeline;
      const pg::TimelineHistory& path = catalog.history(oldest->timeline);
      std::set<std::uint32_t> timelines{oldest->timeline};
      for (const auto& parent : path.parents)
        timelines.insert(parent.timeline);
      for (std::uint32_t timeline : timelines) {
        // An ancestor goes only up to where the path left it: what it holds after that (the old
        // primary's own WAL after a promotion) is another branch.
        std::uint64_t limit = cutoff.cutoffSegment;
        if (auto end = path.endOf(timeline)) limit = std::min(limit, *end / wal.segmentSize + 1);
        cutoff.lowWater[timeline] = limit;
      }
    } else {
      for (std::size_t i = 0; i < n; ++i)
        if (byRule[i] && backups[i].catalog->generation().number > cutoff.generation) {
          cutoff.whole = true;
          cutoff.laterBackup = backups[i].backup->label;
          break;
        }
      if (!cutoff.whole) continue;
      for (std::uint32_t timeline : wal.timelines()) {
        std::uint64_t end = 0;
        for (const auto* files : {&wal.segments, &wal.partials})
          if (auto it = files->find(timeline); it != files->end() && !it->second.empty())
            end = std::max(end, it->second.rbegin()->first + 1);
        if (auto it = wal.backupFiles.find(timeline); it != wal.backupFiles.end())
          if (!it->second.empty()) end = std::max(end, it->second.rbegin()->first + 1);
        if (end > 0) cutoff.lowWater[timeline] = end;
      }
    }
    for (const auto& [timeline, limit] : cutoff.lowWater) {
      std::vector<ExpiredWal> files;
      auto add = [&](pg::WalKind kind, std::uint64_t segment, std::string name) {
        files.push_back({cutoff.generation, timeline, segment, kind, std::move(name)});
      };
      if (auto it = wal.segments.find(timeline); it != wal.segments.end())
        for (auto s = it->second.begin(); s != it->second.end() && s->first < limit; ++s)
          add(pg::WalKind::Segment, s->first,
              pg::segmentFileName(timeline, s->first, wal.segmentSize));
      if (auto it = wal.partials.find(timeline); it != wal.partials.end())
        for (auto s = it->second.begin(); s != it->second.end() && s->first < limit; ++s)
          add(pg::WalKind::Partial, s->first,
              pg::segmentFileName(timeline, s->first, wal.segmentSize) + ".partial");
      if (auto it = wal.backupFiles.find(timeline); it != wal.backupFiles.end())
        for (auto s = it->second.begin(); s != it->second.end() && s->first < limit; ++s)
          add(pg::WalKind::Backup, s->first, s->second);
      std::sort(files.begin(), files.end(), [](const ExpiredWal& a, const ExpiredWal& b) {
        return a.segment != b.segment ? a.segment < b.segment : a.name < b.name;
      });
      candidates.insert(candidates.end(), files.begin(), files.end());
    }
    plan.cutoffs.push_back(std::move(cutoff));
  }

  std::map<std::string, std::uint64_t> held;
  for (const auto& file : candidates) {
    const Need* keeper = nullptr;
    for (const auto& need : needs) {
      if (need.generation != file.generation) continue;
      bool needed = need.history
                        ? reads(*need.catalog, *need.history, need.first, need.last, file)
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
    plan.heldBack.push_back(
        fmt::format("{} stay: {}", plural(count, "WAL file", "WAL files"), why));
  return plan;
}

}  // namespace tidemark::recovery
