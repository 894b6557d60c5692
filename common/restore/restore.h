// Restoring a base backup: every archive fetched from the repository, verified, decompressed and
// extracted into the data directory and the tablespaces' locations.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/repo/backup.h"
#include "common/repo/repository.h"

namespace tidemark::restore {

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

// Reads the object `expected` of backup `label` through verification into `sink`, and checks that
// it is the one backup.json records (size, SHA-256): Error(Corrupt) otherwise, or when it is
// missing.
void readBackupObject(const repo::Repository& repository, const std::string& label,
                      const repo::BackupObject& expected, io::Sink& sink);

// Throws Error(InvalidInput), naming --tablespace-map, when a tablespace location is not absolute,
// or is a system directory or lies under one (/, /bin, /boot, /dev, /etc, /lib*, /proc, /sbin,
// /sys, /usr), as written or with its symbolic links resolved: a location comes from backup.json,
// and root creates it and hands it to the server's user.
void checkTablespaceLocation(std::uint32_t oid, const std::string& location);

// Gives everything below `root` to uid:gid, and `root` itself only when `created` (tidemark made
// it: a directory that existed keeps its owner, as its path may come from backup.json). Never
// follows a symbolic link: `root` is opened once with O_NOFOLLOW, each entry changed by name
// relative to its directory, each subdirectory opened with O_NOFOLLOW, so a directory swapped for
// a link while root walks the tree is refused (Error(LocalIo)), not followed.
void chownTree(const std::string& root, bool created, uid_t uid, gid_t gid);

// Throws Error(InvalidInput) when `dataDirectory` exists with a mode PostgreSQL refuses (readable
// by others, or writable by the group): tidemark changes the mode only of directories it creates.
void checkDataDirectoryMode(const std::string& dataDirectory);

// Restores `backup` into `dataDirectory`, which must be empty or absent (created 0700; one that
// exists keeps its mode and owner, checked by checkDataDirectoryMode). Each tablespace archive goes
// to its mapped location, else its original one (checkTablespaceLocation), which must be empty or
// absent (likewise created 0700, or left as it is); pg_tblspc/<oid> links to it, and
// tablespace_map names it, so PostgreSQL
// finds it at startup. backup_manifest is stored in the data directory (pg_verifybackup reads it
// there). Every object is checked against backup.json (size and SHA-256) as well as its own
// trailer. Archives are extracted by a reader that refuses paths leaving their directory.
// Throws Error (Corrupt, InvalidInput, LocalIo, Storage, Interrupted); a failed restore leaves
// what it wrote so far for the caller to remove.
RestoreStats restoreBackup(const repo::Repository& repository, const repo::BackupInfo& backup,
                           const std::string& dataDirectory, const RestoreOptions& options);

}  // namespace tidemark::restore
