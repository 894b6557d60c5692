// The server's configuration files, stored with a backup when they live outside the data
// directory (Debian keeps postgresql.conf, pg_hba.conf and pg_ident.conf in /etc/postgresql/...,
// and BASE_BACKUP sends only the data directory). docs/backup.md says what is stored and what not.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/repo/backup.h"

namespace tidemark::backup {

// How the server's files are read: through SQL on the server, or from this host's filesystem.
class ServerFileReader {
 public:
  virtual ~ServerFileReader() = default;
  // The file's bytes; nullopt when it does not exist. Throws Error when it cannot be read.
  virtual std::optional<std::string> read(const std::string& path) = 0;
  // The names in `directory` (without . and ..); nullopt when it does not exist. Throws Error when
  // it cannot be listed.
  virtual std::optional<std::vector<std::string>> list(const std::string& directory) = 0;
  // Whether `path` is a directory (an include_dir's *.conf directories are skipped, as PostgreSQL
  // skips them).
  virtual bool isDirectory(const std::string& path) = 0;
  // "the server (pg_read_binary_file)", "this host's filesystem", for messages.
  virtual std::string describe() const = 0;
};

// Where the server keeps its data and configuration (SHOW data_directory, config_file, hba_file,
// ident_file: absolute paths).
struct ServerPaths {
  std::string dataDirectory, configFile, hbaFile, identFile;
};

struct CollectedConfiguration {
  repo::BackupConfiguration record;
  std::vector<std::pair<std::string, std::string>> contents;  // name in config.tar, its bytes
  std::string archive;  // config.tar (configArchive), when stored
};

// What a backup stores of the server's configuration. With config_file in the data directory:
// nothing (base.tar holds it), with a note for an hba_file or ident_file kept elsewhere. Otherwise
// config_file under the name postgresql.conf, every file it includes (include, include_if_exists,
// include_dir, recursively, as PostgreSQL resolves them: relative to the including file, an
// include_dir's *.conf files not starting with '.'), hba_file as pg_hba.conf and ident_file as
// pg_ident.conf; the others keep their place relative to config_file's directory
// (repo::BackupConfiguration::restoredName). A missing include is a note, not an error. Throws
// what `reader` throws when a file cannot be read: the caller tries another reader.
CollectedConfiguration collectConfiguration(const ServerPaths& paths, ServerFileReader& reader);

// config.tar: the collected files under their names (mode 0600). Throws Error(InvalidInput) for a
// name a tar header cannot hold; the sink's error when the files exceed repo::kMaxConfigArchive.
std::string configArchive(const CollectedConfiguration& collected, std::int64_t mtime);

}  // namespace tidemark::backup
