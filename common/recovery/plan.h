// The recovery plan: for a target, which backup, which timeline path, which WAL, and whether the
// repository holds all of it. A query on the recovery model (catalog.h), made before anything is
// written (and all that tidemark-recover --dry-run does).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/pg/timeline.h"
#include "common/recovery/catalog.h"
#include "common/recovery/last_commit.h"
#include "common/recovery/target.h"
#include "common/repo/backup.h"

namespace tidemark::recovery {

struct RecoveryPlan {
  repo::BackupInfo backup;
  std::string backupReason;                         // why this backup was chosen
  pg::TimelineHistory history;                      // of the timeline recovery follows
  std::string timelinePath;                         // "1 (until 0/5000158) -> 2"
  std::uint64_t firstSegment = 0, lastSegment = 0;  // the WAL range checked
  std::string firstWal, lastWal;
  std::vector<WalGap> gaps;
  std::vector<std::string> warnings;
  int generation = 1;  // of the stanza: whose WAL the recovery reads (repo/generation.h)
  // For a time target: where the WAL the recovery reads ends in commit time (last_commit.h).
  std::optional<ArchiveEnd> archiveEnd;
};

// Chooses the backup (the one labelled `backupLabel`, else the newest one that ends before the
// target on the target timeline's history), the timeline recovery follows and the WAL range, and
// checks the WAL. Throws Error(InvalidInput) when no backup can reach the target (naming the
// oldest backup's stop time), Error(Corrupt) when a timeline history is damaged, and
// Error(InvalidInput) when a gap in the archive makes the target unreachable (or, with no target,
// would silently end recovery early). Gaps that may or may not matter (time, xid and name targets
// past the backup's own WAL) become warnings, as do damaged backup.json files and timelines whose
// history file is missing.
// `dropped`: the records of WAL archive-push's safety valve dropped (repo::readGapRecords): a gap
// they account for is named as such, and a time target after the drop is refused.
// `standby`: the recovery is a standby's, which keeps 'latest' (settingsTarget): PostgreSQL's
// choice is planned (Catalog::newestFrom), with a warning when the history has branched, and a
// time target is not checked against the archive's last commit.
RecoveryPlan planRecovery(const Catalog& catalog, const Target& target,
                          const std::optional<std::string>& backupLabel = std::nullopt,
                          const std::vector<repo::GapRecord>& dropped = {}, bool standby = false);

// Which generation's catalog (`generations` oldest first, not empty) a recovery uses: the one
// holding `backupLabel`; else the generation of the newest backup (by stop time, across
// generations) that ends before the target (any backup, for targets other than a time or an
// LSN); else the generation of the oldest backup (its plan then names it).
// Never another generation because a plan fails: a gap in the newest generation's WAL must not
// turn into a recovery of the version before the upgrade.
const Catalog& generationFor(const std::vector<Catalog>& generations, const Target& target,
                             const std::optional<std::string>& backupLabel = std::nullopt);

// Warnings for a plan in `chosen`: another generation received WAL later (a rolled-back upgrade,
// or not the cluster the operator means).
std::vector<std::string> generationWarnings(const std::vector<Catalog>& generations,
                                            const Catalog& chosen);

// The plan on the repository's catalogs: every generation loaded (Catalog::loadGenerations), the
// one generationFor chooses planned, with generationWarnings among the plan's warnings. For a time
// target, the last commit in the WAL it reads (to the first gap) is read with pg_waldump
// (last_commit.h; the one in `binDirectory` first when given): a target at or after it is refused
// (refuseUnreachableTime), and when it cannot be told, a warning says why. Throws
// repo::missingStanza's error when the stanza does not exist, and as planRecovery.
RecoveryPlan planRecovery(const repo::Repository& repository, const Target& target,
                          const std::optional<std::string>& backupLabel = std::nullopt,
                          bool standby = false, const std::string& binDirectory = "");

// The target the recovery settings are written with: recovery_target_timeline = 'latest' replaced
// by the number of the timeline the plan resolved (PostgreSQL's 'latest' is the highest-numbered
// timeline with a history file, whether or not it descends from the backup; docs/recovery.md).
// A standby keeps 'latest': it follows the primary's later promotions.
Target settingsTarget(const Target& target, const RecoveryPlan& plan, bool standby);

// The plan as lines for an operator (`standby`: the settings keep 'latest', see settingsTarget).
std::string describePlan(const RecoveryPlan& plan, const Target& target, bool standby = false);

}  // namespace tidemark::recovery
