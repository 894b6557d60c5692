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
  std::string location;   // as the primary gave it; empty for an in-place tablespace
  std::uint64_t lsn = 0;  // where the record begins
};

struct TablespaceScan {
  std::vector<TablespaceCreation> created;
  // A CREATE TABLESPACE record begins in the segment and ends in the next one, which was not
  // given (or does not continue it): its location is not known.
  bool cutAtEnd = false;
};

// The CREATE TABLESPACE records that begin in `segment` (a whole segment file, its first page
// opening with the long header), read as PostgreSQL's WAL reader walks them: page headers skipped,
// the end of a record begun in the segment before skipped, a candidate record checked by its CRC.
// The walk ends where the WAL written ends: a zero record length, a page of another address, a
// candidate failing its CRC, the end of the segment. A CREATE TABLESPACE record cut by the end of
// the segment is read to its end from `next`, the segment after it, when given. Never throws;
// bytes that are not WAL give an empty scan. (A record whose header is cut before its resource
// manager byte is not looked at.)
TablespaceScan scanTablespaceCreations(io::ByteView segment, io::ByteView next = {});

}  // namespace tidemark::pg
