// Prefetch (archive.get-ahead): while PostgreSQL replays, a background process of tidemark's
// fetches the segments it will ask for next into the spool (<spool>/<stanza>/get), verified and
// fsynced; archive-get hands a prefetched segment over with a rename.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/config/config.h"
#include "common/pg/timeline.h"
#include "common/pg/wal.h"
#include "common/repo/repository.h"
#include "common/spool/spool.h"

namespace tidemark::archive {

// Where one cluster's prefetched segments live, and for whom.
struct PrefetchContext {
  const Config& config;
  std::string folder;      // the stanza's spool folder (spool::stanzaSpool)
  std::uint64_t systemId;  // of the cluster that recovers
  std::string repository;  // repo::describeRepository(config)
  std::string dataDirectory = ".";
};

// Hands `file` over to `destination` when the spool holds it for this configuration and cluster:
// its record names the spool's identity, the configured repository and this cluster, and the
// segment is the file the prefetcher wrote (its fingerprint). Renamed into place, its folder
// synced (from a spool on another filesystem: copied, synced, then renamed); its record returned.
// nullopt when it is not there, or not trusted (then it is removed), or cannot be moved: the
// caller fetches it from the repository.
std::optional<spool::FileRecord> takePrefetched(const PrefetchContext& context,
                                                const std::string& file,
                                                const std::string& destination);

// Tells the prefetcher that PostgreSQL asked for `file`, and starts one in the background when
// none runs. Never throws: prefetching that cannot start is a warning, never a failed fetch.
void requestPrefetch(const PrefetchContext& context, const std::string& file) noexcept;

struct PrefetchOptions {
  // Nothing asked for this long: PostgreSQL stopped, or no longer needs the archive.
  std::chrono::seconds idle{120};
  std::chrono::milliseconds poll{50};
  // A segment the repository does not hold is looked for again after this long, then twice as
  // long after each further miss up to retryAbsentMax (a standby at the end of the archive), and
  // at once again when PostgreSQL asks for a later segment.
  std::chrono::milliseconds retryAbsent{1000};
  std::chrono::milliseconds retryAbsentMax{30000};
};

// How long the prefetcher waits before it looks again for a segment the repository did not hold
// the last `misses` times (1: the first miss).
std::chrono::milliseconds absentRetryWait(const PrefetchOptions& options, int misses);

// The prefetcher (what requestPrefetch runs in the background; tests run it directly): one per
// spool folder (a lock), it follows the segment PostgreSQL asked for last, fetches the next
// archive.get-ahead on the way to the newest timeline in parallel, and removes what PostgreSQL
// will not ask for. Returns, removing the prefetched segments, once the data directory is out of
// recovery (neither recovery.signal nor standby.signal), the server stopped, or nothing was asked
// for options.idle (checked before each round of fetches, and while they run: S3 fetches under
// way are then abandoned); at once when another prefetcher runs.
void runPrefetcher(const PrefetchContext& context, const PrefetchOptions& options = {});
// The same on a repository handle of the caller's (tests give one around a storage of theirs).
// `abandon`, when given (the flag the handle was opened with: repo::openRepository): set when the
// prefetcher must stop while fetches run, so that they end rather than finish.
void runPrefetcher(const PrefetchContext& context, repo::Repository repository,
                   const PrefetchOptions& options, std::atomic<bool>* abandon = nullptr);

// Whether PostgreSQL, following `history`, would ask for `wanted`: `wanted` is on that history's
// path and is the file it reads for its segment (pg::fileTimeline). A request off the path is
// PostgreSQL following another timeline, or probing one (followedHistory tells which).
bool asksAlong(const pg::TimelineHistory& history, const pg::WalName& wanted,
               std::uint32_t segmentSize);

// The history PostgreSQL follows when it asks for `wanted`: with recovery_target_timeline =
// 'latest' (the default), the newest of the consecutive timelines after wanted's that have a
// history file in the repository. A request off that path for a file the repository holds means
// PostgreSQL reads on along wanted's own timeline (an explicit recovery_target_timeline): that
// timeline's history. One for a file it does not hold is a probe PostgreSQL makes before it comes
// back to the newest path: the newest history still.
pg::TimelineHistory followedHistory(const repo::Repository& repository, int generation,
                                    const pg::WalName& wanted, std::uint32_t segmentSize);

// The `count` segments after `wanted` that PostgreSQL reads on the way to history.timeline, by
// file name (each on the timeline whose file it reads: pg::fileTimeline).
std::vector<std::string> planAhead(const pg::TimelineHistory& history, const pg::WalName& wanted,
                                   int count, std::uint32_t segmentSize);

// How many of `wanted` segments of `segmentSize` bytes the prefetcher may write into a filesystem
// of `total` bytes with `available` free: it leaves free what PostgreSQL needs beside it (its own
// restored segments, pg_wal), a reserve of 1 GiB or a tenth of the filesystem, whichever is less.
std::size_t segmentsWithRoom(std::uint64_t available, std::uint64_t total, std::size_t wanted,
                             std::uint32_t segmentSize);

}  // namespace tidemark::archive
