// The state records of retention (repo/state.h holds the mechanism): keep marks, per-timeline
// low-water marks and recovery leases. Formats: docs/repository-format.md ("State records").
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/repo/repository.h"

namespace tidemark::repo {

// ---- keep marks (subject: the backup's label) ------------------------------------------------

// Records that backup `label` is kept by every rule (`keep`), or no longer (`!keep`).
void writeKeepMark(const Repository& repository, const std::string& stanzaId,
                   const std::string& label, bool keep);
// The labels whose newest keep record keeps them.
std::set<std::string> keepMarks(const Repository& repository, const std::string& stanzaId);

// ---- low-water marks (subject: the timeline, 8 hex digits; "<n>-" before it in generation n) -

// Written by expire before it deletes WAL of `timeline` of generation `generation`: segments before
// `segment` may be gone on purpose. archive-get answers a request below it that it cannot find with
// an error, never "not found" (which PostgreSQL would take for the end of the archive).
void writeLowWaterMark(const Repository& repository, const std::string& stanzaId, int generation,
                       std::uint32_t timeline, std::uint64_t segment,
                       const std::string& segmentName, std::int64_t* stored = nullptr);
// The highest authenticated mark of `timeline` (the first segment number kept); nullopt when
// none. A record that is not vouched for or not a mark is left out, with a warning, and why in
// `leftOut` when given; one removed since the listing is skipped; one the store fails to read
// throws Error(Storage).
std::optional<std::uint64_t> lowWaterMark(const Repository& repository, const std::string& stanzaId,
                                          int generation, std::uint32_t timeline,
                                          std::vector<std::string>* leftOut = nullptr);

// ---- recorded gaps (subject: the cluster's system identifier and the first dropped file) ------

// WAL files archive-push's safety valve (archive.queue-max) acknowledged without storing them: the
// archive lacks `first` .. `last` of the cluster `systemId`, so no backup taken before them
// recovers past them. Written before the first push that stores a file after the drop.
struct GapRecord {
  std::uint64_t systemId = 0;
  std::string first, last;  // WAL file names
  std::uint64_t files = 0;
  std::int64_t firstDroppedMs = 0, lastDroppedMs = 0;  // UTC, milliseconds since the epoch
  // When `first` was last written in pg_wal (its modification time): it holds nothing later.
  std::int64_t firstWrittenMs = 0;
};
void writeGapRecord(const Repository& repository, const std::string& stanzaId,
                    const GapRecord& gap);
// "<system id>-<first>": two generations whose clusters drop from the same WAL name (a
// rolled-back upgrade, a cluster that starts its names again) keep a record each.
std::string gapSubject(const GapRecord& gap);
// The newest record of every recorded gap, by cluster and first file name. A record that is not
// vouched for or not a gap is left out, with a warning, and why in `leftOut` when given (a newer
// record left out for an older one too: the older may hold a shorter gap).
std::vector<GapRecord> readGapRecords(const Repository& repository, const std::string& stanzaId,
                                      std::vector<std::string>* leftOut = nullptr);

// ---- recovery leases (subject: the lease id) -------------------------------------------------

// A recovery (tidemark-recover's restore, then PostgreSQL's replay through archive-get; a drill)
// that reads WAL from `firstSegment` on `timelines`: expire keeps it, and the backup, while the
// lease is live (renewed within `timeoutSeconds`, by the storage's clock).
struct Lease {
  std::string id;                     // 16 hex digits
  std::string holder;                 // "tidemark-recover on host (pid 123)", for messages
  std::string backup;                 // the label restored
  int generation = 1;                 // of the stanza (repo/generation.h) whose WAL it reads
  std::set<std::uint32_t> timelines;  // the history of the timeline it replays to
  std::uint64_t firstSegment = 0;
  std::string firstSegmentName;
  std::int64_t timeoutSeconds = 0;
  bool released = false;
  std::int64_t stored = 0;  // when its newest record was stored (the storage's clock)
  std::string recordName;   // that record's name (readLeases)
};

std::string newLeaseId();
// Writes a record of `lease` (a new lease, a renewal, or with `released` its end); returns the
// storage's time of the write.
std::int64_t writeLease(const Repository& repository, const std::string& stanzaId,
                        const Lease& lease);
// The newest record of every lease, released ones included.
std::vector<Lease> readLeases(const Repository& repository, const std::string& stanzaId);
// The file tidemark-recover leaves in the data directory it restored, so that the replay's
// archive-get (run by PostgreSQL in that directory) renews the lease while it fetches WAL. In
// pg_wal/: base backups leave pg_wal's content out (a backup of the recovered server does not
// carry the lease on), pg_verifybackup ignores it, and PostgreSQL removes only WAL names there.
inline constexpr const char* kLeaseMarkerFile = "pg_wal/tidemark.lease";
std::string leaseMarker(const Lease& lease, const std::string& stanza, const std::string& stanzaId);
// The lease of a marker and its stanza's name and identifier; nullopt when the text is not one.
struct LeaseMarker {
  Lease lease;
  std::string stanza, stanzaId;
};
std::optional<LeaseMarker> parseLeaseMarker(const std::string& text);

// Whether `lease` still holds at storage time `now`.
bool leaseLive(const Lease& lease, std::int64_t now);

}  // namespace tidemark::repo
