// tidemark-basebackup: a base backup over the replication protocol, streamed into the repository
// and recorded as complete (backup.json) only once the archive holds every WAL file it needs.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "common/config/config.h"
#include "common/repo/backup.h"
#include "common/repo/repository.h"

namespace tidemark::backup {

struct BackupParams {
  std::string conninfo;
  bool fastCheckpoint = true;
  std::uint64_t maxRate = 0;  // bytes per second, 0 = unlimited
  std::string manifestChecksums = "CRC32C";
  std::chrono::seconds walTimeout{300};
  std::chrono::milliseconds walPoll{
      200};  // a HEAD per segment checked: cheap, and a backup ends sooner
  // How long a stanza that holds no WAL from the cluster yet may take to receive the segment the
  // server is asked to complete before streaming (at most walTimeout; docs/backup.md).
  std::chrono::seconds firstWalTimeout{30};
  // Polled throughout: true stops the backup (Error Interrupted) and removes what it stored.
  std::function<bool()> stopRequested;
  int terminal = -1;  // progress display: 1 bar, 0 log lines, -1 whether stderr is a terminal
  // The archive_command a hint suggests (suggestedArchiveCommand: with this configuration's file).
  std::string archiveCommand = "tidemark-archive-push %p";
};

// The worker: takes the stanza's backup lock, checks the server (version, wal_level,
// archive_mode, cluster identity), makes sure the stanza receives WAL from the cluster (a stanza
// that holds none yet: the server is asked to complete a segment, which must arrive within
// firstWalTimeout; Error(Config) before anything is streamed otherwise), streams every archive and
// the manifest into backups/<label>/, waits until the repository holds every WAL segment from the
// start to the stop location, then writes backup.json. On any failure it removes what it stored
// (where it can) and rethrows; without backup.json nothing is ever offered for recovery. Reads no
// globals.
repo::BackupInfo takeBackup(const repo::Repository& repository, const BackupParams& params);

// The command around it: configuration in, one summary line out.
repo::BackupInfo basebackup(const Config& config, const std::function<bool()>& stopRequested);

// Waits until `storage` holds every WAL segment of the range [first, last] of `timeline` in
// generation `generation`'s WAL (in order, as PostgreSQL archives them), logging progress;
// Error(Timeout) naming the first missing one when `timeout` passes, Error(Interrupted) when
// `stopRequested` says so.
void waitForWal(const repo::Repository& repository, int generation, std::uint32_t timeline,
                std::uint64_t first, std::uint64_t last, std::uint32_t segmentSize,
                std::chrono::seconds timeout, std::chrono::milliseconds poll,
                const std::function<bool()>& stopRequested);

}  // namespace tidemark::backup
