// The recoverable window of a timeline: from the end of the oldest backup whose WAL is complete
// to the end of the last segment an unbroken replay reaches, with the holes between them that no
// backup's replay reaches, and the backups that cannot reach consistency. A query on the
// recovery model (catalog.h); tidemark info reports it per timeline.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/base/time.h"
#include "common/pg/timeline.h"
#include "common/recovery/catalog.h"

namespace tidemark::recovery {

struct WindowEarliest {
  std::string backup;     // the oldest usable backup
  UtcSeconds time;        // its stop time
  std::uint64_t lsn = 0;  // its stop LSN: recovery is consistent from there on
};

struct WindowLatest {
  std::string backup;     // the newest usable backup from which the replay reaches this point
  std::uint64_t lsn = 0;  // the end of `segment`
  std::string segment;    // the last segment of the unbroken run
  UtcSeconds archivedAt;  // when `segment` was stored (the storage's clock)
};

// A backup on the timeline's history that cannot reach consistency with the stored WAL.
struct IncompleteBackup {
  std::string label;
  std::string missing;  // the first file of its own WAL that the repository lacks
};

// WAL locations between earliest and latest that no backup's replay reaches (a gap in the WAL
// between two backups): every point strictly after `from` and before `to`.
struct WindowHole {
  std::uint64_t from = 0;  // the end of the run before the gap
  std::uint64_t to = 0;    // the stop LSN of the next backup that can reach consistency
};

struct RecoveryWindow {
  std::optional<WindowEarliest> earliest;  // both set, or neither
  std::optional<WindowLatest> latest;
  std::vector<WindowHole> holes;  // ascending
  std::string reason;             // when there is no window: why
  std::vector<IncompleteBackup> incompleteBackups;

  bool available() const { return earliest.has_value(); }
};

// The window of history.timeline. A backup starts a replay at its start segment; the replay
// follows the history (the file of the newest timeline begun by each segment, as PostgreSQL reads
// them) as long as the repository holds the next segment. Reads nothing but the catalog.
RecoveryWindow recoverableWindow(const Catalog& catalog, const pg::TimelineHistory& history);

}  // namespace tidemark::recovery
