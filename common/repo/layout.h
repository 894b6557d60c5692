// Repository layout: the only place that builds repository paths (docs/repository-format.md).
//
//   <stanza>/stanza.json
//   <stanza>/wal/<timeline+log, 16 hex>/<segment, .partial or .backup file name>
//   <stanza>/wal/<timeline, 8 hex>.history
//   <stanza>/backups/<label>/<archive or backup_manifest>
//   <stanza>/backups/<label>/backup.json      written last: its presence means "complete"
//   <stanza>/backup.lock                      held while a backup runs
//   <stanza>/probe/<name>                     short-lived objects that check what the storage does
#pragma once

#include <string>

#include "common/pg/wal.h"

namespace tidemark::repo {

std::string stanzaFile(const std::string& stanza);
std::string walDirectory(const std::string& stanza);
// Where a WAL-related file is stored.
std::string walObject(const std::string& stanza, const pg::WalName& name);

std::string backupsDirectory(const std::string& stanza);
std::string backupDirectory(const std::string& stanza, const std::string& label);
std::string backupObject(const std::string& stanza, const std::string& label,
                         const std::string& name);
std::string backupInfoFile(const std::string& stanza, const std::string& label);
std::string backupLockFile(const std::string& stanza);
// Probe objects (stanza-create, check): written and removed at once, never data.
std::string probeObject(const std::string& stanza, const std::string& name);

}  // namespace tidemark::repo
