// WAL records, as far as tidemark reads them: the CREATE TABLESPACE records of a segment
// (src/include/access/xlogrecord.h, xlog_internal.h, commands/tablespace.h). Replay of one links
// pg_tblspc/<oid> to the location the primary gave, on whatever host the replay runs: a copy
// restored beside its cluster would write into that cluster's tablespace.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/io/sink.h"

namespace tidemark::pg {

struct TablespaceCreation {
  std::uint32_t oid = 0;
  std::string location;     // as the primary gave it; empty for an in-place tablespace
  std::uint64_t lsn = 0;    // where the record begins
  bool endsInNext = false;  // the record's end is in the next segment
};

// Where the recovery that replays the segment stops, as far as the scan needs it: no record after
// the stop is replayed (PostgreSQL's recoveryStopsBefore and recoveryStopsAfter).
struct ReplayStop {
  enum class Kind { None, Lsn, Time, Xid, Name };
  Kind kind = Kind::None;
  std::uint64_t lsn = 0;  // Lsn: the first record at or past it is the last replayed (inclusive)
  std::int64_t time = 0;  // Time: a commit or abort later than this (microseconds since
                          // 2000-01-01 UTC, PostgreSQL's TimestampTz) is not replayed
  std::uint32_t xid = 0;  // Xid: the commit or abort of this transaction is the last
  std::string name;       // Name: this restore point is the last record replayed
  bool inclusive = true;  // recovery_target_inclusive
  // Where the replay begins (the redo point of its checkpoint): a record before it is neither
  // replayed nor decides the stop.
  std::uint64_t from = 0;
};

struct TablespaceScan {
  std::vector<TablespaceCreation> created;
  bool stopped = false;  // the replay stops in this segment: nothing after it is replayed
  // The walk ended at a candidate failing its CRC (WAL PostgreSQL does not replay, or damage): a
  // walk from a later start (ReplayStop::from), which does not read that record, may go on.
  bool endedAtBadCrc = false;
};

// The version of scanTablespaceCreations' walk, raised whenever a change may find records it did
// not: what an earlier version found (a count the prefetcher recorded) is not relied on.
inline constexpr int kTablespaceScanVersion = 1;

// The CREATE TABLESPACE records that begin in `segment` (a whole segment file, its first page
// opening with the long header), read as PostgreSQL's WAL reader walks them: page headers skipped,
// the end of a record begun in the segment before skipped, a record whose continuation a page
// written after a crash overwrote abandoned, a candidate checked by its CRC. The walk ends where
// the WAL written ends: a zero record length, a page of another address, a candidate failing its
// CRC, the end of the segment. A record the end of the segment cuts is read to its end from
// `next`, the segment after it, when given (else left out: it is replayed only once the next
// segment is there). The records past `stop` are left out too (never replayed); a record that
// decides the stop counts only when its CRC says it is WAL PostgreSQL replays. With `tailOnly`,
// only the records of the segment's last two pages are walked: enough for the record its end cuts
// (a CREATE TABLESPACE record is smaller than a page), not for a stop earlier in it (`stopped`
// then says that the replay stops there at the latest). Never throws; bytes that are not WAL give
// an empty scan.
TablespaceScan scanTablespaceCreations(io::ByteView segment, io::ByteView next = {},
                                       const ReplayStop& stop = {}, bool tailOnly = false);

}  // namespace tidemark::pg
