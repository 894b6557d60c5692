// What WAL the repository holds: segments per timeline, timeline history files, and gaps.
// Shared by tidemark-recover (its pre-flight checks) and tidemark info.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/pg/timeline.h"
#include "common/repo/backup.h"
#include "common/repo/keys.h"
#include "common/storage/storage.h"

namespace tidemark::repo {

struct ArchivedFile {
  std::uint64_t storedSize = 0;
  std::int64_t modified = 0;  // when it was stored (the storage's clock)
};

struct WalCatalog {
  std::uint32_t segmentSize = 16u << 20;
  // Timeline -> segment number -> the stored segment.
  std::map<std::uint32_t, std::map<std::uint64_t, ArchivedFile>> segments;
  // Timeline -> segment number -> a .partial segment (the end of a timeline at a promotion).
  std::map<std::uint32_t, std::map<std::uint64_t, ArchivedFile>> partials;
  std::set<std::uint32_t> histories;  // timelines with a .history file

  bool has(std::uint32_t timeline, std::uint64_t segment) const;
  // Every timeline with segments or a history file.
  std::set<std::uint32_t> timelines() const;
};

// Lists the stanza's WAL (one listing per timeline+log folder).
WalCatalog scanWal(storage::Storage& storage, const std::string& stanza, std::uint32_t segmentSize);

// The history of `timeline` from its .history file in the repository (timeline 1 has none).
// Throws Error(Corrupt) when the file is missing for a timeline above 1 or is damaged, and
// Error(Config) when it is encrypted with a key `keys` lacks.
pg::TimelineHistory loadHistory(storage::Storage& storage, const std::string& stanza, std::uint32_t timeline,
                                const Keyring& keys = Keyring::none());

// A run of consecutive missing segments, by name.
struct WalGap {
  std::string first, last;
  std::uint64_t count = 0;
};

// Along the history of `target` (history.timeline), from segment `first` to `last`: the segments
// PostgreSQL would read (for each segment, the file of the newest timeline on the path that has
// begun by then) that the repository does not hold.
std::vector<WalGap> findGaps(const WalCatalog& catalog, const pg::TimelineHistory& history, std::uint64_t first,
                             std::uint64_t last);

// The timeline whose file PostgreSQL reads for `segment` on the way to history.timeline.
std::uint32_t timelineForSegment(const pg::TimelineHistory& history, std::uint64_t segment, std::uint32_t segmentSize);

// The newest segment archived on the path to history.timeline, starting no earlier than `from`
// (nullopt when there is none).
std::optional<std::uint64_t> newestOnPath(const WalCatalog& catalog, const pg::TimelineHistory& history,
                                          std::uint64_t from);

// Whether `backup` can start a recovery that follows `history` (to history.timeline): its timeline
// is on that history and it ended before that timeline did (a backup taken on a timeline after
// the switch away from it lies on another branch). Pure; never throws.
bool backupOnHistory(const BackupInfo& backup, const pg::TimelineHistory& history);

}  // namespace tidemark::repo
