// Choosing the backup and checking the WAL a recovery needs.
#include "recover/plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "common/error.h"
#include "common/pg/connection.h"
#include "common/pg/wal.h"
#include "common/repo/stanza.h"
#include "common/text.h"

namespace tidemark::recover {

namespace {

std::string gapText(const repo::WalGap& gap) {
  return gap.count == 1 ? gap.first : fmt::format("{} to {} ({} files)", gap.first, gap.last, gap.count);
}

}  // namespace

RecoveryPlan planRecovery(storage::Storage& storage, const std::string& stanza, const Target& target,
                          const std::optional<std::string>& backupLabel, const repo::Keyring& keys) {
  auto stanzaInfo = repo::loadStanza(storage, stanza);
  if (!stanzaInfo)
    throw Error(ErrorCode::Config, fmt::format("stanza '{}' does not exist in {}", stanza, storage.describe()),
                "check 'stanza' and the repository settings");
  std::vector<std::string> warnings, damaged;
  std::vector<repo::BackupInfo> backups = repo::listBackups(storage, stanza, &damaged);
  for (const auto& problem : damaged) warnings.push_back("a backup is left out: " + problem);
  if (backups.empty())
    throw Error(ErrorCode::InvalidInput,
                damaged.empty() ? fmt::format("stanza '{}' has no complete backup", stanza)
                                : fmt::format("stanza '{}' has no usable backup: {}", stanza, damaged.front()),
                "take one with tidemark-basebackup; tidemark info lists what the repository holds");
  const std::uint32_t segmentSize = stanzaInfo->walSegmentSize;
  repo::WalCatalog catalog = repo::scanWal(storage, stanza, segmentSize);

  std::map<std::uint32_t, pg::TimelineHistory> histories;
  auto historyOf = [&](std::uint32_t timeline) -> const pg::TimelineHistory& {
    auto it = histories.find(timeline);
    if (it != histories.end()) return it->second;
    if (timeline > 1 && !catalog.histories.count(timeline)) {
      // As PostgreSQL does (readTimeLineHistory): no history file, no parents. A backup taken on
      // this timeline can still be recovered along it.
      warnings.push_back(fmt::format("the repository has no {}: timeline {} is taken to have no parents, as "
                                     "PostgreSQL does; copy the file from the server's pg_wal with "
                                     "tidemark-archive-push to make its history known",
                                     pg::historyFileName(timeline), timeline));
      return histories.emplace(timeline, pg::TimelineHistory{timeline, {}}).first->second;
    }
    return histories.emplace(timeline, repo::loadHistory(storage, stanza, timeline, keys)).first->second;
  };
  // PostgreSQL's recovery_target_timeline = 'latest': from the backup's timeline, the last of the
  // consecutive timelines that have a history file (findNewestTimeLine).
  auto newestFrom = [&](std::uint32_t timeline) {
    while (catalog.histories.count(timeline + 1)) ++timeline;
    return timeline;
  };
  auto beforeTarget = [&](const repo::BackupInfo& b) {
    if (target.kind == TargetKind::Time) return parseIsoUtc(b.stopTime) <= target.time;
    if (target.kind == TargetKind::Lsn) return b.stopLsn <= target.lsn;
    return true;
  };

  std::optional<std::uint32_t> requestedTimeline;
  if (target.timeline != "latest" && target.timeline != "current") {
    auto number = parseDecimal(target.timeline);
    if (number && *number > 0 && *number <= 0xFFFFFFFFu) requestedTimeline = std::uint32_t(*number);
    if (!requestedTimeline)
      throw Error(ErrorCode::Usage, fmt::format("--target-timeline '{}' is not latest, current or a timeline number",
                                                target.timeline));
  }
  std::uint32_t latest = 1;
  for (std::uint32_t t : catalog.timelines()) latest = std::max(latest, t);  // with WAL or a history file
  const pg::TimelineHistory* wanted = nullptr;
  if (requestedTimeline) wanted = &historyOf(*requestedTimeline);
  else if (target.timeline == "latest") wanted = &historyOf(latest);

  RecoveryPlan plan;
  const repo::BackupInfo* chosen = nullptr;
  if (backupLabel) {
    auto it = std::find_if(backups.begin(), backups.end(), [&](const auto& b) { return b.label == *backupLabel; });
    if (it == backups.end())
      throw Error(ErrorCode::InvalidInput, fmt::format("stanza '{}' has no complete backup '{}'", stanza, *backupLabel),
                  "tidemark info lists the complete backups");
    if (!beforeTarget(*it))
      throw Error(ErrorCode::InvalidInput,
                  fmt::format("backup {} ends at {} ({}), after the target {}", it->label, it->stopTime,
                              pg::formatLsn(it->stopLsn), target.describe()),
                  "choose an earlier backup, or a later target");
    chosen = &*it;
    plan.backupReason = "chosen with --backup";
  } else {
    for (auto it = backups.rbegin(); it != backups.rend(); ++it) {
      if (!beforeTarget(*it) || (wanted && !repo::backupOnHistory(*it, *wanted))) continue;
      chosen = &*it;
      break;
    }
    if (!chosen) {
      const repo::BackupInfo& oldest = backups.front();
      const bool anyBefore = std::any_of(backups.begin(), backups.end(), beforeTarget);
      if ((target.kind == TargetKind::Time || target.kind == TargetKind::Lsn) && anyBefore)
        throw Error(ErrorCode::InvalidInput,
                    fmt::format("no complete backup that ends before the target {} lies on the history of "
                                "timeline {}",
                                target.describe(), wanted ? wanted->timeline : 0),
                    "choose the timeline with --target-timeline (tidemark info shows each backup's timeline)");
      if (target.kind == TargetKind::Time || target.kind == TargetKind::Lsn)
        throw Error(ErrorCode::InvalidInput,
                    fmt::format("no complete backup ends before the target {}: the oldest ends at {} ({})",
                                target.describe(), oldest.stopTime, pg::formatLsn(oldest.stopLsn)),
                    "a recovery can only reach moments after a backup's end; choose a later target");
      throw Error(ErrorCode::InvalidInput,
                  fmt::format("no complete backup lies on the history of timeline {}", wanted ? wanted->timeline : 0),
                  "choose the timeline with --target-timeline, or take a backup on it");
    }
    switch (target.kind) {
      case TargetKind::Time:
      case TargetKind::Lsn: plan.backupReason = "the newest complete backup that ends before the target"; break;
      case TargetKind::Xid:
      case TargetKind::Name:
        plan.backupReason =
            "the newest complete backup: tidemark cannot tell which backup precedes a transaction id or a restore "
            "point; if this one is too recent, choose an older one with --backup";
        break;
      default: plan.backupReason = "the newest complete backup";
    }
  }
  plan.backup = *chosen;
  const repo::BackupInfo& b = plan.backup;

  // The timeline recovery will follow.
  std::uint32_t timeline = requestedTimeline ? *requestedTimeline : b.timeline;
  if (target.timeline == "latest") timeline = newestFrom(b.timeline);
  plan.history = historyOf(timeline);
  if (!repo::backupOnHistory(b, plan.history))
    throw Error(ErrorCode::InvalidInput,
                fmt::format("backup {} (timeline {}, ending at {}) is not on the history of timeline {}", b.label,
                            b.timeline, pg::formatLsn(b.stopLsn), timeline),
                "choose the timeline with --target-timeline, or another backup with --backup");
  plan.timelinePath.clear();
  for (const auto& parent : plan.history.parents)
    if (parent.timeline >= b.timeline)
      plan.timelinePath += fmt::format("{} (until {}) -> ", parent.timeline, pg::formatLsn(parent.switchpoint));
  plan.timelinePath += std::to_string(timeline);

  // The WAL range: from the backup's start to the target, or to the newest archived segment.
  plan.firstSegment = b.startLsn / segmentSize;
  std::uint64_t backupLast = (b.stopLsn - 1) / segmentSize;
  if (target.kind == TargetKind::Lsn) plan.lastSegment = target.lsn / segmentSize;
  else if (target.kind == TargetKind::Immediate) plan.lastSegment = backupLast;
  else plan.lastSegment = std::max(backupLast, repo::newestOnPath(catalog, plan.history, plan.firstSegment).value_or(0));
  // A timeline that began inside a segment: that segment's file on the new timeline also holds
  // the end of the old one (whose own copy is only a .partial file, which PostgreSQL never
  // asks for). Until it is archived, a replay to the newest WAL stops at the end of the segment
  // before and silently leaves out the old timeline's last records: the range must include it.
  std::optional<std::uint64_t> switchSegment;
  if (target.kind != TargetKind::Lsn && target.kind != TargetKind::Immediate)
    for (const auto& parent : plan.history.parents)
      if (parent.switchpoint > b.startLsn && parent.switchpoint % segmentSize != 0) {
        switchSegment = parent.switchpoint / segmentSize;
        plan.lastSegment = std::max(plan.lastSegment, *switchSegment);
      }
  plan.firstWal = pg::segmentFileName(repo::timelineForSegment(plan.history, plan.firstSegment, segmentSize),
                                      plan.firstSegment, segmentSize);
  plan.lastWal = pg::segmentFileName(repo::timelineForSegment(plan.history, plan.lastSegment, segmentSize),
                                     plan.lastSegment, segmentSize);
  plan.gaps = repo::findGaps(catalog, plan.history, plan.firstSegment, plan.lastSegment);

  for (const auto& gap : plan.gaps) {
    std::uint64_t first = pg::segmentNumber(*pg::parseWalName(gap.first), segmentSize);
    if (first <= backupLast)
      throw Error(ErrorCode::InvalidInput,
                  fmt::format("the WAL of backup {} is incomplete: {} is missing from the repository", b.label,
                              gapText(gap)),
                  "the backup cannot reach consistency; choose another one with --backup");
    std::uint64_t last = pg::segmentNumber(*pg::parseWalName(gap.last), segmentSize);
    if (target.kind == TargetKind::Latest && switchSegment && first <= *switchSegment && *switchSegment <= last &&
        *switchSegment == plan.lastSegment) {
      std::uint32_t newTimeline = repo::timelineForSegment(plan.history, *switchSegment, segmentSize);
      throw Error(ErrorCode::InvalidInput,
                  fmt::format("{} is not in the repository yet: it holds the last WAL of timeline {} before the "
                              "switch to timeline {} (the old timeline's copy is only a .partial file); without it "
                              "recovery stops at {} and silently leaves those records out",
                              pg::segmentFileName(newTimeline, *switchSegment, segmentSize),
                              plan.history.timelineOf(*switchSegment * segmentSize), newTimeline,
                              pg::formatLsn(*switchSegment * segmentSize)),
                  "on the new primary run SELECT pg_switch_wal() and wait until it is archived, or accept the loss "
                  "with an explicit target (--target-lsn, --target-time)");
    }
    switch (target.kind) {
      case TargetKind::Lsn:
        throw Error(ErrorCode::InvalidInput,
                    fmt::format("{} is missing from the repository: the target {} is unreachable", gapText(gap),
                                target.describe()),
                    "recover to a target before the gap, or find the missing files");
      case TargetKind::Latest:
        throw Error(ErrorCode::InvalidInput,
                    fmt::format("{} is missing from the repository: recovery would stop there and silently leave "
                                "out everything archived after it",
                                gapText(gap)),
                    fmt::format("find the missing files, or accept the loss with an explicit target before the "
                                "gap (--target-lsn, --target-time)"));
      default:
        plan.warnings.push_back(fmt::format(
            "{} is missing from the repository: if the target lies after it, PostgreSQL stops there and refuses to "
            "end recovery",
            gapText(gap)));
    }
  }
  plan.warnings.insert(plan.warnings.begin(), warnings.begin(), warnings.end());
  return plan;
}

std::string describePlan(const RecoveryPlan& plan, const Target& target) {
  const repo::BackupInfo& b = plan.backup;
  std::string out;
  out += fmt::format("backup:    {} (timeline {}, {} to {}, ended {}, {}): {}\n", b.label, b.timeline,
                     pg::formatLsn(b.startLsn), pg::formatLsn(b.stopLsn), b.stopTime, humanBytes(b.size()),
                     plan.backupReason);
  if (target.kind == TargetKind::Latest)
    out += fmt::format("target:    {}, then promote (a new timeline)\n", target.describe());
  else
    out += fmt::format("target:    {}{}, then {}\n", target.describe(),
                       target.kind == TargetKind::Immediate ? "" : (target.exclusive ? " (exclusive)" : " (inclusive)"),
                       target.action);
  out += fmt::format("timeline:  {} (recovery_target_timeline = {})\n", plan.timelinePath, target.timeline);
  std::uint64_t count = plan.lastSegment - plan.firstSegment + 1;
  if (plan.gaps.empty())
    out += fmt::format("WAL:       {} to {} ({} segments): all in the repository\n", plan.firstWal, plan.lastWal, count);
  else
    out += fmt::format("WAL:       {} to {} ({} segments): {} gap(s)\n", plan.firstWal, plan.lastWal, count,
                       plan.gaps.size());
  for (const auto& warning : plan.warnings) out += "warning:   " + warning + "\n";
  return out;
}

}  // namespace tidemark::recover
