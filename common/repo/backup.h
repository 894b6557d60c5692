// backup.json: the record of a complete base backup, written last (its presence means
// "complete"). Format: docs/repository-format.md ("backup.json").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/io/hash.h"
#include "common/storage/storage.h"

namespace tidemark::repo {

struct BackupObject {
  std::string name;                // "base.tar", "16385.tar", "backup_manifest"
  std::uint32_t tablespaceOid = 0;  // 0: the main data directory (or not a tablespace archive)
  std::string tablespaceLocation;  // where the tablespace lived on the server
  std::uint64_t size = 0;          // plain bytes
  std::uint64_t storedSize = 0;
  io::Sha256Digest sha256{};       // of the plain bytes
};

struct BackupInfo {
  int format = 1;
  std::string label;  // 20261122T101500Z: sorts by time
  std::string tidemarkVersion;
  int pgVersion = 0;             // major (15)
  int pgVersionNum = 0;          // 150004
  std::uint64_t systemId = 0;
  std::uint32_t timeline = 0;
  std::uint64_t startLsn = 0, stopLsn = 0;
  std::string startTime, stopTime;  // ISO 8601 UTC, tidemark's clock
  std::string walStart, walStop;    // first and last WAL segment the backup needs
  std::uint32_t walSegmentSize = 0;
  std::string compression;          // as stored: none | lz4 | zstd
  std::string encryption = "none";  // as stored: none | aes-256-gcm
  std::string checkpoint;           // fast | spread
  std::string manifestChecksums;    // SHA256, CRC32C, ...
  std::vector<BackupObject> objects;

  std::uint64_t size() const;        // plain bytes of the tar archives
  std::uint64_t storedSize() const;  // stored bytes of every object

  std::string toJson() const;
  static BackupInfo fromJson(const std::string& text, const std::string& where);
};

// Labels: the UTC time, "20261122T101500Z".
std::string backupLabel(std::int64_t unixTime);

// Every complete backup of the stanza (those with a backup.json), oldest first. A damaged
// backup.json is Error(Corrupt); with `damaged`, it is left out instead and its error message
// added there (one damaged file must not make every other backup unusable).
std::vector<BackupInfo> listBackups(storage::Storage& storage, const std::string& stanza,
                                    std::vector<std::string>* damaged = nullptr);

}  // namespace tidemark::repo
