// tidemark's local state on the database host, under one folder (`archive.spool-path`, by default
// pg_wal/tidemark in the data directory): today the statistics of the last pushes, which
// `tidemark metrics` reads. Nothing here is needed for a recovery, and nothing here is ever read
// as the truth about the repository.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/config/config.h"

namespace tidemark::spool {

// The spool folder: archive.spool-path when set, else <dataDirectory>/pg_wal/tidemark. nullopt
// when neither is known (no spool-path and no data directory).
std::optional<std::string> spoolDirectory(const Config& config,
                                          const std::optional<std::string>& dataDirectory);

// One push, as archive-push records it.
struct PushStat {
  std::int64_t finishedMs = 0;  // UTC, milliseconds since the epoch
  std::int64_t durationMs = 0;
  bool ok = false;
  std::string file;    // the WAL file name
  std::string stanza;  // the stanza it was pushed to
};

// The file in the spool that push statistics are appended to (and its predecessor, rotated).
inline constexpr const char* kPushStatsFile = "push-stats";
inline constexpr std::uint64_t kPushStatsRotateBytes = 64 * 1024;

// Appends one line for `stat` to the spool's statistics (creating the folder, mode 0700, when
// it is missing and its parent exists), and rotates the file once it has grown past
// kPushStatsRotateBytes. One O_APPEND write of a short line (atomic among concurrent pushers), no
// fsync: statistics may be lost in a crash. Never throws: a statistic that cannot be written is a
// debug line, never a failed push.
void recordPush(const std::string& spool, const PushStat& stat) noexcept;

// The last `count` statistics of `stanza` (oldest first), from the rotated file and the current
// one. Lines that do not parse are skipped.
std::vector<PushStat> readPushStats(const std::string& spool, const std::string& stanza,
                                    std::size_t count);

// The line format, for tests: "<finishedMs> <durationMs> ok|fail <file> <stanza>\n".
std::string formatPushStat(const PushStat& stat);
std::optional<PushStat> parsePushStat(const std::string& line);

}  // namespace tidemark::spool
