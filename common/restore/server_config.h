// Restoring the server's configuration files that a backup stored because they lived outside the
// data directory (config.tar; basebackup/server_config.h collects them), into the data directory
// or a directory of the operator's choice, with the paths they name pointed at the restore.
#pragma once

#include <map>
#include <optional>
#include <set>
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

// config.tar's files, read and checked against backup.json: name -> bytes.
struct StoredConfiguration {
  std::map<std::string, std::string> files;
};

// With backup.configuration.state Stored: reads config.tar (verified against backup.json) and
// checks that it holds every file backup.json records (Error(Corrupt) otherwise). Small: read
// while planning, so that a damaged one is found before anything is written. Empty for another
// state.
StoredConfiguration readStoredConfiguration(const repo::Repository& repository,
                                            const repo::BackupInfo& backup);

// Throws Error(InvalidInput) when a directory on the way to a file restoreConfiguration would
// write below `directory` is a symbolic link or not a directory. Writes nothing.
void checkConfigurationPlace(const repo::BackupInfo& backup, const std::string& directory);

// Writes `stored` into `directory` (made 0700 when absent), each file under its recorded name
// (0600, atomically; a path in `mustBeNew` must still not exist, else Error(InvalidInput);
// others are replaced), and every include_dir directory; the included files first, postgresql.conf
// last. In the postgresql.conf and included files written, each directive that would reach the
// backed-up server's files is commented out and followed by one naming the restored place:
// data_directory (`dataDirectory`), hba_file and ident_file (the restored copies), and include,
// include_if_exists and include_dir whose value does not lead to the restored copy as written;
// and postgresql.conf ends with data_directory, hba_file and ident_file set to the restored places
// (the last setting wins). Nothing is written through a symbolic link below `directory`;
// directories it makes are given to `owner` at the end, files as they are written. Does nothing
// for another state. Throws Error (InvalidInput, LocalIo); what it wrote is left for the caller to
// remove.
ConfigRestoreResult restoreConfiguration(const StoredConfiguration& stored,
                                         const repo::BackupInfo& backup,
                                         const std::string& directory,
                                         const std::string& dataDirectory,
                                         std::optional<files::Owner> owner, bool sync,
                                         const std::set<std::string>& mustBeNew = {});

// What the plan says about the backup's configuration, one line per fact (empty for a backup
// that did not record it): where it was, and where it goes (`directory`).
std::vector<std::string> describeConfiguration(const repo::BackupInfo& backup,
                                               const std::string& directory);

}  // namespace tidemark::restore
