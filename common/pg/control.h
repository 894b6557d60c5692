// A data directory's identity, read without a running server: global/pg_control (system
// identifier, WAL segment size, the settings a hot standby needs; src/include/catalog/pg_control.h)
// and PG_VERSION (the major version, which pg_control does not hold).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace tidemark::pg {

struct ControlData {
  std::uint64_t systemId = 0;
  std::uint32_t controlVersion = 0;  // PG_CONTROL_VERSION
  std::uint32_t catalogVersion = 0;  // CATALOG_VERSION_NO ("PG_15_<it>" names tablespaces)
  std::uint64_t checkpointRedo = 0;  // the latest checkpoint's (or restartpoint's) redo LSN
  std::uint32_t walSegmentSize = 0;
  std::uint32_t blockSize = 0;
  int pgVersion = 0;  // the major version, from PG_VERSION
  // The primary's settings that a hot standby (a recovery that accepts queries) must match or
  // exceed, as of the last checkpoint or parameter change the file records.
  struct HotStandbySettings {
    int maxConnections = 0;
    int maxWorkerProcesses = 0;
    int maxWalSenders = 0;
    int maxPreparedTransactions = 0;
    int maxLocksPerTransaction = 0;
  } hotStandby;
};

// Reads and checks `dataDirectory`'s pg_control and PG_VERSION. A running server rewrites
// pg_control in place, so a read can see half of a write: a CRC that does not match is read again
// (every 10 ms, up to 10 times, until the same wrong CRC comes twice), as PostgreSQL's
// get_controlfile() does. Throws Error(LocalIo) when a file cannot be read, Error(InvalidInput)
// when it is not a data directory's (a CRC that stays wrong, an impossible segment size) and
// Error(Unsupported) for a pg_control layout this version does not know (PostgreSQL 13 to 16).
ControlData readControlData(const std::string& dataDirectory);

// The system identifier in `dataDirectory`'s global/pg_control (its first field in every version,
// so no CRC or version check); nullopt when the file cannot be read. For checks that may not fail
// (archive-push run in the data directory).
std::optional<std::uint64_t> controlSystemId(const std::string& dataDirectory);

}  // namespace tidemark::pg
