// What waits to be archived: the .ready files of pg_wal/archive_status, in the order PostgreSQL's
// archiver takes them, and what tidemark-archive-push does ahead of the file it was asked for.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/pg/wal.h"

namespace tidemark::archive {

struct ReadyFile {
  pg::WalName name;
  std::uint64_t size = 0;  // of pg_wal/<name>; 0 when it is gone
};

// The .ready files of `walDirectory`/archive_status (names that are not WAL files are skipped),
// ordered as PostgreSQL's archiver takes them (pgarch_readyXlog): timeline history files first,
// then by name. Throws Error(LocalIo) when archive_status cannot be read whole, or a file's size
// cannot be looked at (but for a file gone: 0).
std::vector<ReadyFile> readyFiles(const std::string& walDirectory);

// The bytes they hold, but for the files in `stored` (acknowledged by push-ahead: they are in the
// repository already, and PostgreSQL marks them done on its next call).
std::uint64_t waitingBytes(const std::vector<ReadyFile>& ready,
                           const std::set<std::string>& stored = {});

// The files to push beside `asked`: the first `count` of `ready` (in its order) that are not
// `asked` and not in `skip` (acknowledged already).
std::vector<std::string> chooseAhead(const std::vector<ReadyFile>& ready, const std::string& asked,
                                     int count, const std::set<std::string>& skip);

}  // namespace tidemark::archive
