// The BASE_BACKUP replication command (PostgreSQL 15+): one COPY stream whose CopyData messages
// start with a type byte ('n' new archive, 'd' data, 'p' progress, 'm' manifest), between a
// result set with the start location and tablespaces and one with the end location
// (src/backend/replication/basebackup_copy.c).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/io/sink.h"
#include "common/pg/connection.h"

namespace tidemark::pg {

struct BaseBackupOptions {
  std::string label;
  bool fastCheckpoint = true;
  std::optional<std::uint32_t> maxRateKiB;  // MAX_RATE, 32..1048576 kB/s
  std::string manifestChecksums = "SHA256";
};

struct Tablespace {
  std::uint32_t oid = 0;      // 0 for the main data directory
  std::string location;       // "" for the main data directory
  std::uint64_t sizeKiB = 0;  // the server's estimate (PROGRESS)
};

struct BackupStart {
  std::uint64_t lsn = 0;
  std::uint32_t timeline = 0;
  std::vector<Tablespace> tablespaces;
};

struct BackupStop {
  std::uint64_t lsn = 0;
  std::uint32_t timeline = 0;
};

// What a BASE_BACKUP stream delivers, in order: started(), then for each archive archive() and
// its archiveData(), then manifest() and manifestData(); progress() at any time after started().
class BaseBackupReceiver {
 public:
  virtual ~BaseBackupReceiver() = default;
  virtual void started(const BackupStart& start) = 0;
  virtual void archive(const std::string& name, const std::string& tablespaceLocation) = 0;
  virtual void archiveData(io::ByteView data) = 0;
  virtual void manifest() = 0;
  virtual void manifestData(io::ByteView data) = 0;
  virtual void progress(std::uint64_t bytesDone) = 0;
};

// Who the server is, on a replication connection: IDENTIFY_SYSTEM's system identifier and
// timeline, the server's version and its WAL segment size. Throws Error(Database) for answers
// that are not.
struct ServerIdentity {
  std::uint64_t systemId = 0;
  int versionNum = 0;  // 150004
  std::uint32_t walSegmentSize = 0;
  std::uint32_t timeline = 0;  // the server's current timeline
};
ServerIdentity identifyServer(Connection& connection);

// The content of timeline `timeline`'s history file (TIMELINE_HISTORY), which the server keeps in
// pg_wal for every timeline after the first. Throws Error(Database).
std::string timelineHistory(Connection& connection, std::uint32_t timeline);

// Runs BASE_BACKUP (LABEL, PROGRESS, CHECKPOINT, WAIT false, MANIFEST with checksums,
// TABLESPACE_MAP, MAX_RATE) on a replication connection and streams it into `receiver`.
// `stopRequested` is polled at least once a second while waiting for the server and before every
// message: when it says so, Error(Interrupted) is thrown (closing the connection then makes the
// server abandon the backup). Protocol and server errors are Error(Database).
BackupStop runBaseBackup(Connection& connection, const BaseBackupOptions& options,
                         BaseBackupReceiver& receiver, const std::function<bool()>& stopRequested);

// The BASE_BACKUP command text for `options`.
std::string baseBackupCommand(const BaseBackupOptions& options);

}  // namespace tidemark::pg
