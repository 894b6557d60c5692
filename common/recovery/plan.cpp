// Choosing the backup and checking the WAL a recovery needs.
#include "common/recovery/plan.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/base/time.h"
#include "common/pg/lsn.h"
#include "common/pg/wal.h"
#include "common/repo/stanza.h"

namespace tidemark::recovery {

namespace {

// Steps of planRecovery, in order. Each adds what it learns to the plan.
class Planner {
 public:
  Planner(const Catalog& catalog, const Target& target, const std::vector<repo::GapRecord>& dropped,
          bool standby)
      : catalog_(catalog), target_(target), dropped_(dropped), standby_(standby) {}

  RecoveryPlan plan(const std::optional<std::string>& backupLabel) {
    requireBackups();
    const pg::TimelineHistory* wanted = wantedHistory();
    chooseBackup(backupLabel, wanted);
    resolveTimeline();
    chooseWalRange();
    checkGaps();
    plan_.warnings.insert(plan_.warnings.begin(), warnings_.begin(), warnings_.end());
    return std::move(plan_);
  }

 private:
  // Damaged backup.json files are left out with a warning; with no backup left, nothing can be
  // planned.
  void requireBackups() {
    for (const auto& problem : catalog_.damagedBackups())
      warnings_.push_back("a backup is left out: " + problem);
    if (!catalog_.backups().empty()) return;
    const std::string& stanza = catalog_.name();
    throw Error(ErrorCode::InvalidInput,
                catalog_.damagedBackups().empty()
                    ? fmt::format("stanza '{}' has no complete backup", stanza)
                    : fmt::format("stanza '{}' has no usable backup: {}", stanza,
                                  catalog_.damagedBackups().front()),
                "take one with tidemark-basebackup; tidemark info lists what the repository holds");
  }

  // A timeline's history; one whose .history file is missing is taken to have no parents, as
  // PostgreSQL does, with a warning (once).
  const pg::TimelineHistory& historyOf(std::uint32_t timeline) {
    if (timeline > 1 && !catalog_.hasHistoryFile(timeline) &&
        warnedNoHistory_.insert(timeline).second)
      warnings_.push_back(
          fmt::format("the repository has no {}: timeline {} is taken to have no parents, as "
                      "PostgreSQL does; copy the file from the server's pg_wal with "
                      "tidemark-archive-push to make its history known",
                      pg::historyFileName(timeline), timeline));
    return catalog_.history(timeline);
  }

  // The history the chosen backup must lie on: the requested timeline's, or with 'latest' the
  // newest timeline's; none with 'current'.
  const pg::TimelineHistory* wantedHistory() {
    switch (target_.timeline.kind) {
      case TimelineChoice::Kind::Number:
        return &historyOf(target_.timeline.number);
      case TimelineChoice::Kind::Current:
        return nullptr;
      case TimelineChoice::Kind::Latest:
        break;
    }
    std::uint32_t latest = 1;
    for (std::uint32_t t : catalog_.wal().timelines())
      latest = std::max(latest, t);  // with WAL or a history file
    try {
      return &historyOf(latest);
    } catch (const Error& e) {
      // PostgreSQL's 'latest' would read that file too; another timeline does not need it.
      if (e.code() != ErrorCode::Corrupt) throw;
      throw Error(ErrorCode::Corrupt, e.what(),
                  fmt::format("{}; or recover along another timeline with --target-timeline N "
                              "(tidemark info shows the timeline tree)",
                              e.hint()));
    }
  }

  // Whether a backup ended before the target (always, for targets tidemark cannot place).
  bool beforeTarget(const repo::BackupInfo& b) const {
    if (target_.kind == TargetKind::Time) return b.stopTime <= target_.time;
    if (target_.kind == TargetKind::Lsn) return b.stopLsn <= target_.lsn;
    return true;
  }

  // "20261103T000000Z (timeline 1, ended 2026-11-03T00:01:15Z at 0/800100)", for the debug log.
  static std::string backupText(const repo::BackupInfo& b) {
    return fmt::format("{} (timeline {}, ended {} at {})", b.label, b.timeline,
                       formatUtc(b.stopTime), pg::formatLsn(b.stopLsn));
  }

  // Why a backup does not lie on `wanted` (Catalog::onHistory), for the debug log.
  static std::string offHistory(const repo::BackupInfo& b, const pg::TimelineHistory& wanted) {
    if (!wanted.contains(b.timeline))
      return fmt::format("timeline {} is not timeline {} nor an ancestor of it", b.timeline,
                         wanted.timeline);
    return fmt::format(
        "it ends after timeline {} was left at {} for timeline {}'s history: on another branch",
        b.timeline, pg::formatLsn(wanted.endOf(b.timeline).value_or(0)), wanted.timeline);
  }

  // Which timeline's history the backup must lie on, for the debug log.
  std::string wantedText(const pg::TimelineHistory* wanted) const {
    switch (target_.timeline.kind) {
      case TimelineChoice::Kind::Number:
        return fmt::format("on the history of timeline {} (the target timeline)",
                           target_.timeline.number);
      case TimelineChoice::Kind::Current:
        return "on any timeline (target timeline current: the backup's own)";
      case TimelineChoice::Kind::Latest:
        break;
    }
    return fmt::format(
        "on the history of timeline {} (target timeline latest: the stanza's highest-numbered)",
        wanted ? wanted->timeline : 0);
  }

  // Each backup considered, and why it was taken or passed over, go to the debug log
  // (--log-level=debug): the first question when a recovery restores an unexpected backup.
  void chooseBackup(const std::optional<std::string>& label, const pg::TimelineHistory* wanted) {
    if (label) {
      const repo::BackupInfo* chosen = catalog_.findBackup(*label);
      if (!chosen)
        throw Error(ErrorCode::InvalidInput,
                    fmt::format("stanza '{}' has no complete backup '{}'", catalog_.name(), *label),
                    "tidemark info lists the complete backups");
      if (!beforeTarget(*chosen))
        throw Error(ErrorCode::InvalidInput,
                    fmt::format("backup {} ends at {} ({}), after the target {}", chosen->label,
                                formatUtc(chosen->stopTime), pg::formatLsn(chosen->stopLsn),
                                target_.describe()),
                    "choose an earlier backup, or a later target");
      plan_.backup = *chosen;
      plan_.backupReason = "chosen with --backup";
      if (debug_) spdlog::debug("backup {}: chosen with --backup", backupText(*chosen));
      return;
    }
    const auto& backups = catalog_.backups();
    const bool placeable = target_.kind == TargetKind::Time || target_.kind == TargetKind::Lsn;
    if (debug_)
      spdlog::debug("choosing the backup for {}: {}, newest first; the first {}{} is taken",
                    target_.describe(),
                    plural(backups.size(), "complete backup", "complete backups"),
                    placeable ? "that ends before the target, " : "", wantedText(wanted));
    for (auto it = backups.rbegin(); it != backups.rend(); ++it) {
      if (!beforeTarget(*it)) {
        if (debug_)
          spdlog::debug("backup {}: passed over: it ends after the target", backupText(*it));
        continue;
      }
      if (wanted && !Catalog::onHistory(*it, *wanted)) {
        if (debug_)
          spdlog::debug("backup {}: passed over: {}", backupText(*it), offHistory(*it, *wanted));
        continue;
      }
      plan_.backup = *it;
      plan_.backupReason = reasonFor(target_.kind);
      if (debug_) spdlog::debug("backup {}: chosen: {}", backupText(*it), plan_.backupReason);
      return;
    }
    refuseNoBackup(wanted);
  }

  static std::string reasonFor(TargetKind kind) {
    switch (kind) {
      case TargetKind::Time:
      case TargetKind::Lsn:
        return "the newest complete backup that ends before the target";
      case TargetKind::Xid:
      case TargetKind::Name:
        return "the newest complete backup: tidemark cannot tell which backup precedes a "
               "transaction id or a restore "
               "point; if this one is too recent, choose an older one with --backup";
      default:
        return "the newest complete backup";
    }
  }

  [[noreturn]] void refuseNoBackup(const pg::TimelineHistory* wanted) const {
    const auto& backups = catalog_.backups();
    const repo::BackupInfo& oldest = backups.front();
    const bool placeable = target_.kind == TargetKind::Time || target_.kind == TargetKind::Lsn;
    const bool anyBefore =
        std::any_of(backups.begin(), backups.end(), [&](const auto& b) { return beforeTarget(b); });
    if (placeable && anyBefore)
      throw Error(ErrorCode::InvalidInput,
                  fmt::format("no complete backup that ends before the target {} lies on the "
                              "history of timeline {}",
                              target_.describe(), wanted ? wanted->timeline : 0),
                  "choose the timeline with --target-timeline (tidemark info shows each backup's "
                  "timeline)");
    if (placeable)
      throw Error(
          ErrorCode::InvalidInput,
          fmt::format("no complete backup ends before the target {}: the oldest ends at {} ({})",
                      target_.describe(), formatUtc(oldest.stopTime),
                      pg::formatLsn(oldest.stopLsn)),
          "a recovery can only reach moments after a backup's end; choose a later target");
    const std::uint32_t timeline = wanted ? wanted->timeline : 0;
    throw Error(ErrorCode::InvalidInput,
                fmt::format("no complete backup lies on the history of timeline {}{}", timeline,
                            timeline > 1 && !catalog_.hasHistoryFile(timeline)
                                ? fmt::format(" (the repository has no {}, so it is taken to have "
                                              "no parents, as PostgreSQL does)",
                                              pg::historyFileName(timeline))
                                : ""),
                "choose the timeline with --target-timeline, or take a backup on it; a missing "
                ".history file can be archived again from the server's pg_wal with "
                "tidemark-archive-push");
  }

  // The timeline recovery follows, as PostgreSQL will choose it, and its path from the backup.
  void resolveTimeline() {
    const repo::BackupInfo& b = plan_.backup;
    std::uint32_t timeline = b.timeline;
    if (target_.timeline.kind == TimelineChoice::Kind::Number) timeline = target_.timeline.number;
    if (target_.timeline.kind == TimelineChoice::Kind::Latest) timeline = latestBranch(b);
    plan_.history = historyOf(timeline);
    if (!Catalog::onHistory(b, plan_.history))
      throw Error(
          ErrorCode::InvalidInput,
          fmt::format("backup {} (timeline {}, ending at {}) is not on the history of timeline {}",
                      b.label, b.timeline, pg::formatLsn(b.stopLsn), timeline),
          "choose the timeline with --target-timeline, or another backup with --backup");
    plan_.timelinePath = pathText(plan_.history, b.timeline);
    if (target_.timeline.kind == TimelineChoice::Kind::Number && target_.kind == TargetKind::Latest)
      warnIfContinued(b, timeline);
    if (debug_)
      spdlog::debug("recovery follows timeline {} (target timeline {}): {}", timeline,
                    target_.timeline.text(), plan_.timelinePath);
  }

  // A timeline named for a recovery to the end of the archive that a later one continues (a
  // promotion after it): the replay ends where it was left, and promotes into a new fork beside
  // the later timeline. A drill.target-timeline set for a stray branch and then forgotten would
  // drill that point, further in the past each time.
  void warnIfContinued(const repo::BackupInfo& b, std::uint32_t timeline) {
    std::vector<Branch> later;
    for (auto& branch : catalog_.branchesFrom(b)) {
      if (branch.timeline == timeline) return;
      if (branch.history.endOf(timeline)) later.push_back(std::move(branch));
    }
    if (later.empty()) return;
    warnings_.push_back(fmt::format(
        "timeline {} was left at {} and {} {} {} it: the recovery ends where timeline {} was "
        "left; to reach the newer WAL, name {} with --target-timeline",
        timeline, pg::formatLsn(*later.front().history.endOf(timeline)),
        later.size() == 1 ? "timeline" : "timelines", branchNumbers(later),
        later.size() == 1 ? "continues" : "continue", timeline,
        later.size() == 1 ? "it" : "one of them"));
  }

  // The timeline 'latest' means for this backup, decided here rather than by PostgreSQL (whose
  // 'latest' is the newest timeline it finds by probing for history files upwards, whoever
  // archived it): the one branch the backup's history leads to, or, when it has branched and the
  // recovery passes the fork, nothing: the operator chooses.
  std::uint32_t latestBranch(const repo::BackupInfo& b) {
    std::vector<std::string> problems;
    std::vector<Branch> branches = catalog_.branchesFrom(b, &problems);
    if (standby_) {
      // A standby keeps 'latest' (it follows the primary's later promotions): PostgreSQL's choice,
      // with the branches said.
      const std::uint32_t timeline = catalog_.newestFrom(b.timeline);
      if (branches.size() > 1 || !problems.empty())
        warnings_.push_back(fmt::format(
            "the history of backup {} has branched after it (timelines {}): a standby follows "
            "recovery_target_timeline = 'latest', timeline {} today",
            b.label, branchNumbers(branches), timeline));
      return timeline;
    }
    std::uint64_t split = UINT64_MAX;
    for (const auto& branch : branches)
      if (branches.size() > 1) split = std::min(split, branch.fork);
    // A target that stops before the first fork reads the same WAL on every branch: the backup's
    // consistency point (before every fork, as the backup lies on each branch's history), or an
    // exclusive LSN at or before it (an inclusive one replays the first record at or after it,
    // which may be the fork's).
    const bool beforeFork =
        target_.kind == TargetKind::Immediate ||
        (target_.kind == TargetKind::Lsn && target_.exclusive && target_.lsn <= split);
    if (!problems.empty() && !beforeFork) {
      std::string list;
      for (const auto& problem : problems)
        list += (list.empty() ? "" : "; ") + problem;
      throw Error(ErrorCode::InvalidInput,
                  fmt::format("cannot tell which timelines a recovery from backup {} can end on: "
                              "{}",
                              b.label, list),
                  "name the timeline with --target-timeline N (tidemark info shows the timeline "
                  "tree), or restore the history file");
    }
    if (branches.empty()) return b.timeline;
    if (branches.size() == 1) {
      const std::uint32_t chosen = branches.front().timeline;
      // Chosen with --backup: a newer timeline may branch off before the backup's end.
      const std::uint32_t newest = *catalog_.timelines().rbegin();
      if (newest > chosen)
        warnings_.push_back(fmt::format(
            "the stanza's newest timeline, {}, does not pass through backup {}: the recovery "
            "follows timeline {}; to follow timeline {}, choose an earlier backup",
            newest, b.label, chosen, newest));
      // A timeline left exactly at a segment boundary leaves no trace of going on until its
      // next segment is archived.
      for (const auto& parent : branches.front().history.parents)
        if (parent.timeline >= b.timeline && parent.switchpoint > b.stopLsn &&
            parent.switchpoint % catalog_.segmentSize() == 0)
          warnings_.push_back(fmt::format(
              "timeline {} was left at a segment boundary ({}): no archived WAL can show yet "
              "whether its server went on writing after timeline {} began there; if it did (a "
              "restored copy promoted beside it), name the timeline with --target-timeline",
              parent.timeline, pg::formatLsn(parent.switchpoint),
              branches.front().history.timelineOf(parent.switchpoint)));
      return chosen;
    }
    // The lowest-numbered branch: its path reads full segments up to the fork.
    if (beforeFork) return branches.front().timeline;
    std::string list;
    for (const auto& branch : branches) {
      if (!list.empty()) list += "; ";
      const std::string path = pathText(branch.history, b.timeline);
      list += fmt::format("timeline {} ({}forks at {}): ", branch.timeline,
                          path == std::to_string(branch.timeline) ? "" : "path " + path + "; ",
                          pg::formatLsn(branch.fork));
      list +=
          branch.newestSegment
              ? fmt::format("newest WAL {} stored {}",
                            pg::segmentFileName(branch.timeline, *branch.newestSegment,
                                                catalog_.segmentSize()),
                            formatUtcText(UtcSeconds(std::chrono::seconds(branch.newestStored))))
              : std::string("no WAL of its own stored");
    }
    // An inclusive LSN before the fork could stop there with --target-exclusive.
    const bool lsnBeforeFork =
        target_.kind == TargetKind::Lsn && !target_.exclusive && target_.lsn <= split;
    throw Error(ErrorCode::InvalidInput,
                fmt::format("the history of backup {} has branched after it, and {} branches "
                            "hold WAL past the fork: {}. PostgreSQL's "
                            "recovery_target_timeline = 'latest' would follow timeline {} "
                            "whichever one is production's",
                            b.label, branches.size(), list, catalog_.newestFrom(b.timeline)),
                fmt::format("name the branch with --target-timeline N (a scheduled tidemark drill: "
                            "drill.target-timeline); tidemark info shows the timeline tree. A "
                            "branch that a restored copy or a former primary archived is not "
                            "production's history{}",
                            lsnBeforeFork ? ". An LSN target before the fork needs no branch "
                                            "with --target-exclusive (an inclusive one replays "
                                            "the first record at or after it, which may be the "
                                            "fork's)"
                                          : ""));
  }

  static std::string branchNumbers(const std::vector<Branch>& branches) {
    std::string out;
    for (const auto& branch : branches)
      out += (out.empty() ? "" : ", ") + std::to_string(branch.timeline);
    return out;
  }

  // "1 (until 0/5000158) -> 2": the timelines of `history` from `from` on.
  static std::string pathText(const pg::TimelineHistory& history, std::uint32_t from) {
    std::string out;
    for (const auto& parent : history.parents)
      if (parent.timeline >= from)
        out += fmt::format("{} (until {}) -> ", parent.timeline, pg::formatLsn(parent.switchpoint));
    return out + std::to_string(history.timeline);
  }

  // From the backup's start to the target, or to the newest archived segment.
  void chooseWalRange() {
    const repo::BackupInfo& b = plan_.backup;
    plan_.firstSegment = b.firstSegment();
    if (target_.kind == TargetKind::Lsn)
      plan_.lastSegment = target_.lsn / catalog_.segmentSize();
    else if (target_.kind == TargetKind::Immediate)
      plan_.lastSegment = b.lastSegment();
    else
      plan_.lastSegment = std::max(
          b.lastSegment(), catalog_.newestOnPath(plan_.history, plan_.firstSegment).value_or(0));
    // A timeline that began inside a segment: that segment's file on the new timeline also holds
    // the end of the old one (whose own copy is only a .partial file, which PostgreSQL never asks
    // for). Until it is archived, a replay to the newest WAL stops at the end of the segment before
    // and silently leaves out the old timeline's last records: the range must include it.
    if (target_.kind != TargetKind::Lsn && target_.kind != TargetKind::Immediate)
      for (const auto& parent : plan_.history.parents)
        if (parent.switchpoint > b.startLsn && parent.switchpoint % catalog_.segmentSize() != 0) {
          switchSegment_ = parent.switchpoint / catalog_.segmentSize();
          plan_.lastSegment = std::max(plan_.lastSegment, *switchSegment_);
        }
    plan_.firstWal = catalog_.fileName(plan_.history, plan_.firstSegment);
    plan_.lastWal = catalog_.fileName(plan_.history, plan_.lastSegment);
  }

  // A gap in the backup's own WAL, before an LSN target or on the way to the end of the archive
  // is an error; before a target tidemark cannot place, a warning.
  void checkGaps() {
    plan_.gaps = catalog_.gaps(plan_.history, plan_.firstSegment, plan_.lastSegment);
    const std::uint32_t size = catalog_.segmentSize();
    for (const auto& gap : plan_.gaps) {
      // The first file the safety valve dropped holds nothing written after its last write (or,
      // unknown, its drop): a time target later than that lies beyond the gap.
      if (const repo::GapRecord* record =
              droppedBy(dropped_, catalog_.generation().systemId, gap)) {
        const std::int64_t bound =
            record->firstWrittenMs ? record->firstWrittenMs : record->firstDroppedMs;
        if (target_.kind == TargetKind::Time &&
            target_.time > UtcMicros(std::chrono::milliseconds(bound)))
          throw Error(ErrorCode::InvalidInput,
                      fmt::format("the target {} lies after a gap in the archive: {}; no backup "
                                  "taken before it recovers past it",
                                  target_.describe(), describeDropped(*record)),
                      "recover to a time before the gap, or from a backup taken after it");
        warnings_.push_back(describeDropped(*record));
      }
      std::uint64_t first = pg::segmentNumber(*pg::parseWalName(gap.first), size);
      std::uint64_t last = pg::segmentNumber(*pg::parseWalName(gap.last), size);
      if (first <= plan_.backup.lastSegment())
        throw Error(
            ErrorCode::InvalidInput,
            fmt::format("the WAL of backup {} is incomplete: {} is missing from the repository",
                        plan_.backup.label, gap.describe()),
            "the backup cannot reach consistency; choose another one with --backup");
      if (target_.kind == TargetKind::Latest && switchSegment_ && first <= *switchSegment_ &&
          *switchSegment_ <= last && *switchSegment_ == plan_.lastSegment)
        refuseMissingSwitchSegment();
      switch (target_.kind) {
        case TargetKind::Lsn:
          throw Error(ErrorCode::InvalidInput,
                      fmt::format("{} is missing from the repository: the target {} is unreachable",
                                  gap.describe(), target_.describe()),
                      "recover to a target before the gap, or find the missing files");
        case TargetKind::Latest:
          throw Error(
              ErrorCode::InvalidInput,
              fmt::format(
                  "{} is missing from the repository: recovery would stop there and silently leave "
                  "out everything archived after it",
                  gap.describe()),
              "find the missing files, or accept the loss with an explicit target before the gap "
              "(--target-lsn, --target-time)");
        default:
          plan_.warnings.push_back(
              fmt::format("{} is missing from the repository: if the target lies after it, "
                          "PostgreSQL stops there and refuses to end recovery",
                          gap.describe()));
      }
    }
  }

  [[noreturn]] void refuseMissingSwitchSegment() const {
    const std::uint32_t size = catalog_.segmentSize();
    std::uint32_t newTimeline = catalog_.fileTimeline(plan_.history, *switchSegment_);
    throw Error(
        ErrorCode::InvalidInput,
        fmt::format(
            "{} is not in the repository yet: it holds the last WAL of timeline {} before the "
            "switch "
            "to timeline {} (the old timeline's copy is only a .partial file); without it recovery "
            "stops at {} and silently leaves those records out",
            pg::segmentFileName(newTimeline, *switchSegment_, size),
            plan_.history.timelineOf(*switchSegment_ * size), newTimeline,
            pg::formatLsn(*switchSegment_ * size)),
        "on the new primary run SELECT pg_switch_wal() and wait until it is archived, or accept "
        "the loss "
        "with an explicit target (--target-lsn, --target-time)");
  }

  const Catalog& catalog_;
  const Target& target_;
  RecoveryPlan plan_;
  std::vector<std::string> warnings_;  // go before the plan's own
  std::set<std::uint32_t> warnedNoHistory_;
  std::optional<std::uint64_t> switchSegment_;  // a switch inside a segment on the path
  const std::vector<repo::GapRecord>& dropped_;
  const bool standby_;
  // --log-level=debug: the choices are explained (and only then put into words).
  const bool debug_ = spdlog::should_log(spdlog::level::debug);
};

}  // namespace

RecoveryPlan planRecovery(const Catalog& catalog, const Target& target,
                          const std::optional<std::string>& backupLabel,
                          const std::vector<repo::GapRecord>& dropped, bool standby) {
  RecoveryPlan plan = Planner(catalog, target, dropped, standby).plan(backupLabel);
  plan.generation = catalog.generation().number;
  return plan;
}

const Catalog& generationFor(const std::vector<Catalog>& generations, const Target& target,
                             const std::optional<std::string>& backupLabel) {
  if (generations.empty()) throw Error(ErrorCode::Internal, "generationFor: no generation");
  if (backupLabel) {
    for (const auto& catalog : generations)
      if (catalog.findBackup(*backupLabel)) return catalog;
    return generations.back();  // whose planner names the label as unknown
  }
  auto before = [&](const repo::BackupInfo& b) {
    if (target.kind == TargetKind::Time) return b.stopTime <= target.time;
    if (target.kind == TargetKind::Lsn) return b.stopLsn <= target.lsn;
    return true;
  };
  // The generation of the newest backup that can serve the target (by time, not by generation
  // number: a rolled-back upgrade's old cluster may have the newest backup).
  const Catalog* chosen = nullptr;
  const repo::BackupInfo* newest = nullptr;
  const Catalog* oldestOwner = nullptr;
  const repo::BackupInfo* oldest = nullptr;
  for (const auto& catalog : generations)
    for (const auto& b : catalog.backups()) {
      if (before(b) && (!newest || b.stopTime > newest->stopTime)) {
        newest = &b;
        chosen = &catalog;
      }
      if (!oldest || b.stopTime < oldest->stopTime) {
        oldest = &b;
        oldestOwner = &catalog;
      }
    }
  if (chosen) return *chosen;
  // No backup ends before the target: the oldest backup's generation says so, naming it.
  return oldestOwner ? *oldestOwner : generations.back();
}

std::vector<std::string> generationWarnings(const std::vector<Catalog>& generations,
                                            const Catalog& chosen) {
  std::vector<std::string> out;
  const std::int64_t mine = chosen.newestWalStored();
  for (const auto& other : generations) {
    if (&other == &chosen) continue;
    const std::int64_t theirs = other.newestWalStored();
    if (theirs > mine)
      out.push_back(fmt::format(
          "generation {} of the stanza (system identifier {}) received WAL after this "
          "generation's newest ({} against {}): if an upgrade was rolled back, or this is not the "
          "cluster you mean, name a backup of the other with --backup",
          other.generation().number, other.generation().systemId,
          formatUtc(UtcSeconds(std::chrono::seconds(theirs))),
          formatUtc(UtcSeconds(std::chrono::seconds(mine)))));
  }
  return out;
}

Target settingsTarget(const Target& target, const RecoveryPlan& plan, bool standby) {
  Target out = target;
  if (!standby && target.timeline.kind == TimelineChoice::Kind::Latest)
    out.timeline = TimelineChoice{TimelineChoice::Kind::Number, plan.history.timeline};
  return out;
}

std::string describePlan(const RecoveryPlan& plan, const Target& target, bool standby) {
  const repo::BackupInfo& b = plan.backup;
  std::string out;
  if (plan.generation > 1)
    out += fmt::format(
        "generation: {} of the stanza (PostgreSQL {}, system identifier {}: after "
        "stanza-upgrade)\n",
        plan.generation, b.pgVersion, b.systemId);
  out += fmt::format("backup:    {} (timeline {}, {} to {}, ended {}, {}): {}\n", b.label,
                     b.timeline, pg::formatLsn(b.startLsn), pg::formatLsn(b.stopLsn),
                     formatUtc(b.stopTime), humanBytes(b.size()), plan.backupReason);
  if (target.kind == TargetKind::Latest)
    out += fmt::format("target:    {}, then promote (a new timeline)\n", target.describe());
  else
    out += fmt::format("target:    {}{}, then {}\n", target.describe(),
                       target.kind == TargetKind::Immediate
                           ? ""
                           : (target.exclusive ? " (exclusive)" : " (inclusive)"),
                       actionName(target.action));
  const Target written = settingsTarget(target, plan, standby);
  out += fmt::format("timeline:  {} (recovery_target_timeline = {}{})\n", plan.timelinePath,
                     written.timeline.text(),
                     written.timeline.kind == target.timeline.kind ? "" : ", resolved from latest");
  std::uint64_t count = plan.lastSegment - plan.firstSegment + 1;
  if (plan.gaps.empty())
    out += fmt::format("WAL:       {} to {} ({}): all in the repository\n", plan.firstWal,
                       plan.lastWal, plural(count, "segment", "segments"));
  else
    out +=
        fmt::format("WAL:       {} to {} ({}): {}\n", plan.firstWal, plan.lastWal,
                    plural(count, "segment", "segments"), plural(plan.gaps.size(), "gap", "gaps"));
  if (plan.archiveEnd && plan.archiveEnd->commit) {
    const LastCommit& last = *plan.archiveEnd->commit;
    out += fmt::format(
        "archive:   its last commit is at {} ({} at {} in {}): the target lies "
        "before it\n",
        formatTimestamp(last.time), last.kind, pg::formatLsn(last.lsn), last.segment);
  }
  for (const auto& warning : plan.warnings)
    out += "warning:   " + warning + "\n";
  return out;
}

RecoveryPlan planRecovery(const repo::Repository& repository, const Target& target,
                          const std::optional<std::string>& backupLabel, bool standby,
                          const std::string& binDirectory) {
  std::vector<Catalog> generations = Catalog::loadGenerations(repository);
  if (generations.empty()) throw repo::missingStanza(repository);
  const Catalog& chosen = generationFor(generations, target, backupLabel);
  // What the safety valve dropped names the gaps it made (and what a time target needs).
  std::vector<repo::GapRecord> dropped;
  std::string unreadable;
  try {
    dropped = repo::readGapRecords(repository, generations.front().stanza().identity());
  } catch (const Error& e) {
    unreadable = e.what();
  }
  RecoveryPlan plan = planRecovery(chosen, target, backupLabel, dropped, standby);
  // A standby receives more WAL later: where the archive ends today does not limit it.
  if (target.kind == TargetKind::Time && !standby) {
    // To the end of the unbroken run: replay stops at the first gap.
    std::uint64_t last = plan.lastSegment;
    if (!plan.gaps.empty())
      last =
          pg::segmentNumber(*pg::parseWalName(plan.gaps.front().first), chosen.segmentSize()) - 1;
    plan.archiveEnd = lastCommit(repository, chosen, plan.history, plan.firstSegment, last,
                                 plan.backup.pgVersion, binDirectory);
    refuseUnreachableTime(*plan.archiveEnd, target,
                          plan.gaps.empty() ? std::string() : plan.gaps.front().describe());
    if (!plan.archiveEnd->commit)
      plan.warnings.push_back(
          "cannot tell where the archive ends in commit time (" + plan.archiveEnd->unknown +
          "): a target after the last archived commit fails at the end of the replay");
  }
  if (!unreadable.empty())
    plan.warnings.push_back("the records of dropped WAL cannot be read: " + unreadable);
  for (auto& warning : generationWarnings(generations, chosen))
    plan.warnings.push_back(std::move(warning));
  return plan;
}

}  // namespace tidemark::recovery
