// Restoring a base backup: every archive fetched from the repository, verified, decompressed and
// extracted into the data directory and the tablespaces' locations.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/repo/backup.h"
#include "common/repo/repository.h"

namespace tidemark::recover {

struct RestoreOptions {
  // Tablespace OID -> where to put it instead of its original location (absolute paths).
  std::map<std::uint32_t, std::string> tablespaceMap;
  bool sync = true;
  int terminal = -1;  // progress display: 1 bar, 0 log lines, -1 whether stderr is a terminal
  std::function<bool()> stopRequested;
  // When the repository handle can open another connection, tablespace archives are fetched on
  // threads of their own (at most parallel - 1, each with its own handle, as drivers are used from
  // one thread at a time), beside base.tar.
  int parallel = 4;
};

struct RestoreStats {
  std::uint64_t bytes = 0;  // plain bytes of the archives
  std::uint64_t files = 0;
  double seconds = 0;
};

// Restores `backup` into `dataDirectory`, which must exist and be empty (mode set to
// 0700). Each tablespace archive goes to its mapped location, else its original one, which must
// be empty or absent; pg_tblspc/<oid> links to it, and tablespace_map names it, so PostgreSQL
// finds it at startup. backup_manifest is stored in the data directory (pg_verifybackup reads it
// there). Every object is checked against backup.json (size and SHA-256) as well as its own
// trailer. Archives are extracted by a reader that refuses paths leaving their directory.
// Throws Error (Corrupt, InvalidInput, LocalIo, Storage, Interrupted); a failed restore leaves
// what it wrote so far for the caller to remove.
RestoreStats restoreBackup(const repo::Repository& repository, const repo::BackupInfo& backup,
                           const std::string& dataDirectory, const RestoreOptions& options);

}  // namespace tidemark::recover
