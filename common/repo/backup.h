// backup.json: the record of a complete base backup, written last (its presence means
// "complete"). Format: docs/repository-format.md ("backup.json").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/time.h"
#include "common/io/compress.h"
#include "common/io/encrypt.h"
#include "common/io/hash.h"
#include "common/repo/repository.h"

namespace tidemark::repo {

struct BackupObject {
  std::string name;                 // "base.tar", "16385.tar", "backup_manifest"
  std::uint32_t tablespaceOid = 0;  // 0: the main data directory (or not a tablespace archive)
  std::string tablespaceLocation;   // where the tablespace lived on the server
  std::uint64_t size = 0;           // plain bytes
  std::uint64_t storedSize = 0;
  io::Sha256Digest sha256{};  // of the plain bytes
};

// The object holding the server's configuration files when they lived outside the data directory
// (a tar archive of the files under their restored names; docs/repository-format.md).
inline constexpr const char* kConfigArchive = "config.tar";
// Its largest plain size, written or read (configuration files are small).
inline constexpr std::size_t kMaxConfigArchive = 64u << 20;

// A data archive (base.tar, or a tablespace's <oid>.tar): restored into a data directory or a
// tablespace location, and listed in backup_manifest.
bool isDataArchive(const BackupObject& object);

// One of the server's configuration files (or include_dir directories) recorded with a backup.
struct ConfigFile {
  std::string role;  // "config_file", "hba_file", "ident_file", "include", "include_dir"
  std::string path;  // where it was on the server
  std::string name;  // where it goes, relative to the directory the configuration is restored to
};

// Where the server's configuration was when the backup was taken, and what was stored of it.
struct BackupConfiguration {
  enum class State {
    Unknown,          // not recorded (a backup written before tidemark recorded it)
    InDataDirectory,  // postgresql.conf was in the data directory: base.tar holds it
    Stored,           // outside it: the files are in config.tar (files lists them)
    NotStored,        // outside it, and could not be read (note says why)
    LocationUnknown,  // the backup's role could not ask where it is (SHOW config_file)
  };
  State state = State::Unknown;
  std::string directory;  // the directory of the server's config_file
  std::vector<ConfigFile> files;
  std::vector<std::string> notes;  // what was left out, and why, for people
  // config.tar (Stored only). Recorded here, not in BackupInfo::objects: a tidemark that predates
  // it ignores it instead of extracting it into a data directory.
  std::optional<BackupObject> object;

  // Where `serverPath` (a file, or an include_dir directory, as the server named it) goes,
  // relative to the restored configuration directory: the name recorded for it, else the rule
  // every recorded name follows (below `directory`: the same relative path; elsewhere:
  // "included" and the absolute path, "included/etc/postgresql-common/common.conf").
  std::string restoredName(const std::string& serverPath) const;
  // The files recorded (not the include_dir directories).
  std::size_t fileCount() const;
};
std::string_view configStateName(BackupConfiguration::State state);

// Every field is parsed and checked once, in fromJson: a backup.json that does not hold what its
// fields promise is Error(Corrupt).
struct BackupInfo {
  int format = 1;
  std::string label;  // 20261122T101500Z: sorts by time
  std::string tidemarkVersion;
  int pgVersion = 0;     // major (15)
  int pgVersionNum = 0;  // 150004
  std::uint64_t systemId = 0;
  std::uint32_t timeline = 0;
  std::uint64_t startLsn = 0, stopLsn = 0;
  UtcSeconds startTime, stopTime;  // the server's clock; the stop time rounded up
  std::uint32_t walSegmentSize = 0;
  io::CompressType compression = io::CompressType::None;  // as stored
  io::EncryptType encryption = io::EncryptType::None;     // as stored
  bool fastCheckpoint = true;
  std::string manifestChecksums;  // SHA256, CRC32C, ... (as PostgreSQL names them)
  std::vector<BackupObject> objects;
  BackupConfiguration configuration;

  std::uint64_t size() const;        // plain bytes of the tar archives
  std::uint64_t storedSize() const;  // stored bytes of every object
  // `objects` and, when stored, the configuration's object after them (what verification reads).
  std::vector<BackupObject> storedObjects() const;
  // The WAL the backup needs to reach consistency: segments from the start to the stop location,
  // on its timeline (and their file names).
  std::uint64_t firstSegment() const;
  std::uint64_t lastSegment() const;
  std::string walStart() const;
  std::string walStop() const;
  // "zstd" or "zstd, aes-256-gcm", for people.
  std::string storageDescription() const;

  std::string toJson() const;
  static BackupInfo fromJson(const std::string& text, const std::string& where);
};

// Labels: the UTC time, "20261122T101500Z".
std::string backupLabel(UtcSeconds time);

// Every complete backup of the stanza (those with a backup.json), oldest first. A damaged
// backup.json is Error(Corrupt); with `damaged`, it is left out instead and its error message
// added there (one damaged file must not make every other backup unusable). With
// `authenticateFor` (the stanza's identifier), each backup.json's MAC is checked first when the
// handle authenticates metadata (repo/metadata.h): one that fails is damaged.
std::vector<BackupInfo> listBackups(const Repository& repository,
                                    std::vector<std::string>* damaged = nullptr,
                                    const std::optional<std::string>& authenticateFor = {});

}  // namespace tidemark::repo
