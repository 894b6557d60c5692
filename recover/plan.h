// The recovery plan: which backup, which timeline path, which WAL, and whether the repository
// holds all of it. Computed before anything is written (and all that --dry-run does).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/pg/timeline.h"
#include "common/repo/backup.h"
#include "common/repo/catalog.h"
#include "common/storage/storage.h"
#include "recover/target.h"

namespace tidemark::recover {

struct RecoveryPlan {
  repo::BackupInfo backup;
  std::string backupReason;      // why this backup was chosen
  pg::TimelineHistory history;   // of the target timeline
  std::string timelinePath;      // "1 -> 2 (from 0/5000158)"
  std::uint64_t firstSegment = 0, lastSegment = 0;  // the WAL range checked
  std::string firstWal, lastWal;
  std::vector<repo::WalGap> gaps;
  std::vector<std::string> warnings;
};

// Chooses the backup and checks the WAL for `target`. Throws Error(InvalidInput) when no backup
// can reach the target (naming the oldest backup's stop time), Error(Corrupt) when a timeline
// history is damaged, and Error(InvalidInput) when a gap in the archive makes the target
// unreachable (or, with no target, would silently end recovery early). Gaps that may or may not
// matter (time, xid and name targets past the backup's own WAL) become warnings.
// `keys` decrypt encrypted timeline history files.
RecoveryPlan planRecovery(storage::Storage& storage, const std::string& stanza, const Target& target,
                          const std::optional<std::string>& backupLabel, const repo::Keyring& keys = repo::Keyring::none());

// The plan as lines for an operator.
std::string describePlan(const RecoveryPlan& plan, const Target& target);

}  // namespace tidemark::recover
