// Where the archive ends in commit time: the newest commit or abort record (the records a
// recovery_target_time stops at) in the WAL a recovery reads, found by PostgreSQL's own
// pg_waldump on the newest segments, fetched from the repository and verified. A time target at
// or after it cannot be reached: PostgreSQL replays everything and then fails with "recovery ended
// before configured recovery target was reached". tidemark-recover refuses such a target before
// anything is written; tidemark info ends the recoverable window there.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/base/time.h"
#include "common/pg/timeline.h"
#include "common/recovery/catalog.h"
#include "common/recovery/target.h"
#include "common/repo/repository.h"

namespace tidemark::recovery {

struct LastCommit {
  UtcMicros time{};
  std::uint64_t lsn = 0;
  std::string kind;     // COMMIT, ABORT, COMMIT_PREPARED, ABORT_PREPARED
  std::string segment;  // the file it is in
};

struct ArchiveEnd {
  std::optional<LastCommit> commit;
  std::string unknown;  // without a commit: why it could not be told
};

// How many segments lastCommit reads back at most (an idle cluster's archive_timeout segments
// hold no commit).
inline constexpr std::uint64_t kLastCommitSegments = 16;

// The newest commit or abort along `history` in the segments `first` to `last` (the files
// PostgreSQL reads: Catalog::fileName), reading back from `last` until a segment holds one (at
// most kLastCommitSegments). The newest by time among the records of that segment and the one
// after it: commit times are taken before the record is inserted, so they are not quite in WAL
// order. `walDump`: pg_waldump of the cluster's version (pg::findPgProgram). Never throws for
// what it cannot read: `unknown` says why; a stop signal throws Error(Interrupted) (runChild).
ArchiveEnd lastCommit(const repo::Repository& repository, const Catalog& catalog,
                      const pg::TimelineHistory& history, std::uint64_t first, std::uint64_t last,
                      const std::string& walDump);

// The same, with pg_waldump of PostgreSQL `pgVersion`: the one in `binDirectory` when given and
// it holds one not of another version (drill.pg-bin: the server binaries a drill starts), else
// where that version is installed (pg::findPgProgram).
ArchiveEnd lastCommit(const repo::Repository& repository, const Catalog& catalog,
                      const pg::TimelineHistory& history, std::uint64_t first, std::uint64_t last,
                      int pgVersion, const std::string& binDirectory = "");

// Whether a time target is reached by WAL whose newest commit or abort is `commit`: PostgreSQL
// stops before the first such record later than the target (inclusive) or at it or later
// (exclusive): xlogrecovery.c, recoveryStopsBefore.
bool reaches(const LastCommit& commit, const Target& target);

// Throws Error(InvalidInput) when `end` shows the time target unreachable, naming the last commit
// and the ways forward. `gap`: the first gap in the WAL after the backup, described (WalGap::
// describe: the replay stops there, and `end` was read up to it), empty when it is unbroken.
void refuseUnreachableTime(const ArchiveEnd& end, const Target& target,
                           const std::string& gap = "");

}  // namespace tidemark::recovery
