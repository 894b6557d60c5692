// tidemark-archive-get: fetch one WAL file from the repository for PostgreSQL's recovery.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/base/error.h"
#include "common/config/config.h"
#include "common/pg/wal_records.h"
#include "common/repo/object.h"
#include "common/repo/repository.h"

namespace tidemark::archive {

struct GetParams {
  std::string walName;      // %f: the file PostgreSQL wants
  std::string destination;  // %p: where to put it (relative to the working directory)
  // The system identifier of the cluster that recovers (pg_control of the working directory, which
  // PostgreSQL makes the data directory): which generation of the stanza to read. Without it, only
  // a stanza of one generation is read (Error(InvalidInput) otherwise).
  std::optional<std::uint64_t> controlSystemId;
};

enum class GetOutcome {
  Restored,  // verified and renamed into place
  NotFound,  // the repository answered and does not hold the file; nothing was written
};

struct GetResult {
  GetOutcome outcome = GetOutcome::NotFound;
  repo::ObjectSummary summary;
};

// The worker: streams the object through decompression and verification into a temporary file
// beside `destination`, fsyncs it and renames it into place. On any failure nothing is left at
// `destination` (and an earlier file there is untouched). Reads no globals.
GetResult getWalFile(const repo::Repository& repository, const GetParams& params);

// The command: fetches with the configured repository, retrying transient errors (Error::transient)
// twice with backoff (on top of the S3 driver's own per-request retries), and logs the outcome.
GetOutcome archiveGet(const Config& config, const std::string& walName,
                      const std::string& destination);

// Replay of a CREATE TABLESPACE links pg_tblspc/<oid> to the location the primary gave, on this
// host: where that location holds a tablespace of another cluster of this PostgreSQL version (the
// cluster a copy restored beside it was backed up from), the replay would write into its files.
// The tablespace found there ("PG_15_202209061"), or nullopt: an in-place tablespace, one the
// recovery in `dataDirectory` linked already (it started again), a location that does not exist
// (PostgreSQL's replay stops on its own) or holds none.
std::optional<std::string> foreignTablespace(const std::string& dataDirectory,
                                             const pg::TablespaceCreation& creation, int pgVersion);
// Where the recovery in `dataDirectory` begins (`from`: backup_label's START WAL LOCATION, else
// pg_control's latest redo point) and stops, from the recovery_target* settings of its
// postgresql.auto.conf (where tidemark-recover and tidemark drill write them): Kind::None when
// there is no target, more than one kind, 'immediate', a value this cannot read as PostgreSQL
// does (a time without a zone is read in the server's), an include in the file or a target on
// the server's command line (postmaster.opts).
pg::ReplayStop replayStop(const std::string& dataDirectory);
// Scans the segment restored at `path` (unless `recorded` is 0) for CREATE TABLESPACE records
// replayed before the target (replayStop, pg::scanTablespaceCreations) and, when one would write
// into another cluster's tablespace (or cannot be looked at), removes the file and throws
// Error(Conflict) naming the segment, the location and the fix: the recovery stops before the
// replay. The segment before, which PostgreSQL keeps in pg_wal under its name, is read too: in its
// last pages for a record this segment's first page continues, and whole, when something was found,
// for a target reached there (nothing of this segment is then replayed). `recorded`: what
// tablespaceRecords counted in this segment when the prefetcher fetched it (0: its own records are
// not walked again).
void checkReplayedTablespaces(const std::string& dataDirectory, const std::string& walName,
                              const std::string& path,
                              std::optional<std::uint32_t> recorded = std::nullopt);
// How many CREATE TABLESPACE records begin and end in the segment at `path`, whatever the
// recovery's target and start (they only leave records out): 0 for a file that is not a segment;
// nullopt when the walk ended at a record failing its CRC (a replay that starts past it reads
// on). Throws Error(LocalIo) when it cannot be read.
std::optional<std::uint32_t> tablespaceRecords(const std::string& path);

// The exit status for a failure, from the mode the working directory shows: with standby.signal
// present, the error's own status (3..99, common/base/error.h: the standby keeps retrying);
// otherwise 255, so that PostgreSQL stops recovery instead of taking the error for the end of WAL
// and promoting early.
// When `dataDirectory` holds tidemark-recover's lease marker (repo::kLeaseMarkerFile) for this
// stanza and the lease was last renewed a quarter of its timeout ago or more, writes a renewal
// record and touches the marker. Never fails: a renewal that cannot be written is a warning.
void renewLease(const repo::Repository& repository, const std::string& dataDirectory);

int failureStatus(ErrorCode code, const std::string& dataDirectory = ".");

}  // namespace tidemark::archive
