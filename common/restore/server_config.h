// Restoring the server's configuration files that a backup stored because they lived outside the
// data directory (config.tar; basebackup/server_config.h collects them), into the data directory
// or a directory of the operator's choice, with the paths they name pointed at the restore.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/files/file.h"
#include "common/repo/backup.h"
#include "common/repo/repository.h"

namespace tidemark::restore {

struct ConfigRestoreResult {
  std::vector<std::string> written;    // the files written (not the directories made)
  std::vector<std::string> rewritten;  // "postgresql.conf: hba_file = '/restore/pg_hba.conf'"
};

// The names restoreConfiguration writes below `directory`, for the checks made before anything is
// written (a directory of the operator's choice must not hold them, unless --force). Empty when
// the backup stored no configuration.
std::vector<std::string> configurationPaths(const repo::BackupInfo& backup,
                                            const std::string& directory);

// With backup.configuration.state Stored: reads config.tar (verified against backup.json), makes
// `directory` (0700, given to `owner`) when absent, and writes each file under its recorded name
// (0600, atomically, replacing one of that name), and every include_dir directory. In the
// postgresql.conf and included files written, each directive that would reach the backed-up
// server's files is commented out and followed by one naming the restored place: data_directory
// (`dataDirectory`), hba_file and ident_file (the restored copies), and include, include_if_exists
// and include_dir whose value does not lead to the restored copy as written. Nothing is written
// through a symbolic link below `directory`. Does nothing for another state. Throws Error
// (Corrupt for a config.tar that does not match backup.json, LocalIo); what it wrote is left for
// the caller to remove.
ConfigRestoreResult restoreConfiguration(const repo::Repository& repository,
                                         const repo::BackupInfo& backup,
                                         const std::string& directory,
                                         const std::string& dataDirectory,
                                         std::optional<files::Owner> owner, bool sync);

// What the plan says about the backup's configuration, one line per fact (empty for a backup
// that did not record it): where it was, and where it goes (`directory`).
std::vector<std::string> describeConfiguration(const repo::BackupInfo& backup,
                                               const std::string& directory);

}  // namespace tidemark::restore
