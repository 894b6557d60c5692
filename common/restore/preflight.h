// Reading every object a recovery plan needs before anything is restored (tidemark-recover
// --verify): a damaged segment is found now, not during the replay after the server "started".
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/recovery/plan.h"
#include "common/repo/repository.h"

namespace tidemark::restore {

struct PreflightResult {
  std::uint64_t objects = 0;  // read and verified
  std::uint64_t bytes = 0;    // plain bytes read
  double seconds = 0;
  std::vector<std::string> problems;  // each damaged or missing object: what is wrong
};

// The repository paths `plan` reads, in the order a restore and its replay read them: the
// backup's archives (backup_manifest too), the history files of the timelines on its path above
// the backup's, and each WAL file from plan.firstSegment to plan.lastSegment along plan.history
// (the file PostgreSQL reads for each segment), less the gaps the plan already names.
std::vector<std::string> planObjects(const repo::Repository& repository,
                                     const recovery::RecoveryPlan& plan);

// Refuses (Error(Corrupt), naming each) a backup whose objects are not all in the repository with
// the stored sizes backup.json records: one listing of the backup's folder, for every pre-flight
// (a dry run's 0 promises a restore that can be carried out, and a truncated or deleted archive
// would otherwise be found after the others were downloaded).
void checkBackupObjectsListed(const repo::Repository& repository, const repo::BackupInfo& backup);

// Reads and verifies every object planObjects lists, `parallel` at a time when the handle can open
// more connections (each thread its own): each archive against its trailer and backup.json (size
// and SHA-256), each WAL file against its trailer and the segment size. Every problem is listed,
// not just the first. Throws Error(Interrupted) when `stopRequested` says so, and Error(Storage)
// when the repository cannot be read.
PreflightResult verifyPlanObjects(const repo::Repository& repository,
                                  const recovery::RecoveryPlan& plan, int parallel,
                                  const std::function<bool()>& stopRequested = {});

}  // namespace tidemark::restore
