// What WAL a stanza holds, as listed: segments and .partial files per timeline, and which
// timelines have a history file; and reading one history file. The questions asked of it (which
// file a recovery reads, where the gaps are) are recovery/'s.
#pragma once

#include <cstdint>
#include <map>
#include <set>

#include "common/pg/timeline.h"
#include "common/repo/repository.h"

namespace tidemark::repo {

struct ArchivedFile {
  std::uint64_t storedSize = 0;
  std::int64_t modified = 0;  // when it was stored (the storage's clock), seconds since the epoch
};

struct WalCatalog {
  std::uint32_t segmentSize = 16u << 20;
  // Timeline -> segment number -> the stored segment.
  std::map<std::uint32_t, std::map<std::uint64_t, ArchivedFile>> segments;
  // Timeline -> segment number -> a .partial segment (the end of a timeline at a promotion).
  std::map<std::uint32_t, std::map<std::uint64_t, ArchivedFile>> partials;
  // Timeline -> segment number -> the backup history files (".backup") of backups that began in
  // that segment, by name.
  std::map<std::uint32_t, std::multimap<std::uint64_t, std::string>> backupFiles;
  std::set<std::uint32_t> histories;  // timelines with a .history file

  bool has(std::uint32_t timeline, std::uint64_t segment) const;
  // Every timeline with segments, .partial files or a history file.
  std::set<std::uint32_t> timelines() const;
  // The highest segment number stored on any timeline (0 when there is none).
  std::uint64_t newestSegment() const;
};

// Lists the WAL of generation `generation` of the stanza (repo/generation.h), one listing per
// timeline+log folder. Throws Error(Storage).
WalCatalog scanWal(const Repository& repository, int generation, std::uint32_t segmentSize);

// The history of `timeline` from its .history file in generation `generation`'s WAL folder
// (timeline 1 has none). Throws Error(Corrupt) when the file is missing for a timeline above 1 or
// is damaged, and Error(Config) when it is encrypted with a key the handle lacks.
pg::TimelineHistory loadHistory(const Repository& repository, int generation,
                                std::uint32_t timeline);

}  // namespace tidemark::repo
