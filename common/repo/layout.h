// Repository layout: the only place that builds repository paths (docs/repository-format.md).
//
//   <stanza>/stanza.json                      generation 1's identity
//   <stanza>/generations/<n>.json             generation n's (n >= 2: repo/generation.h)
//   <stanza>/wal/<timeline+log, 16 hex>/<segment, .partial or .backup file name>
//   <stanza>/wal/<timeline, 8 hex>.history
//   <stanza>/wal-<n>/...                      the same for generation n >= 2
//   <stanza>/backups/<label>/<archive or backup_manifest>
//   <stanza>/backups/<label>/backup.json      written last: its presence means "complete"
//   <stanza>/backup.lock                      held while a backup runs
//   <stanza>/probe/<name>                     short-lived objects that check what the storage does
//   <stanza>/state/<kind>/<subject>/<name>    state records (repo/state.h)
//   _probe/<stanza>/<name>                    tidemark check's probe objects, outside the stanza
#pragma once

#include <optional>
#include <string>

#include "common/pg/wal.h"

namespace tidemark::repo {

std::string stanzaFile(const std::string& stanza);
std::string generationsDirectory(const std::string& stanza);
std::string generationFile(const std::string& stanza, int generation);
// Generation `generation`'s WAL folder: "wal" for generation 1, "wal-<n>" after.
std::string walDirectory(const std::string& stanza, int generation);
// Where a WAL-related file of a generation is stored.
std::string walObject(const std::string& stanza, int generation, const pg::WalName& name);
// The generation a name in generationsDirectory() records ("2.json" -> 2), and the one a folder of
// the stanza holds the WAL of ("wal-2" -> 2); nullopt for every other name (a .mac record, a
// temporary file, "wal", "backups").
std::optional<int> generationOfRecord(const std::string& name);
std::optional<int> generationOfWalFolder(const std::string& name);

std::string backupsDirectory(const std::string& stanza);
std::string backupDirectory(const std::string& stanza, const std::string& label);
std::string backupObject(const std::string& stanza, const std::string& label,
                         const std::string& name);
std::string backupInfoFile(const std::string& stanza, const std::string& label);
std::string backupLockFile(const std::string& stanza);
// Probe objects (stanza-create): written and removed at once, never data.
std::string probeObject(const std::string& stanza, const std::string& name);
// Probe objects outside every stanza's data (tidemark check): under a prefix of their own,
// "_probe/<stanza>/<name>", so that an Object Lock retention on the stanza's objects never blocks
// their removal.
std::string outsideProbeObject(const std::string& stanza, const std::string& name);

// State records (repo/state.h): <stanza>/state/<kind>/<subject>/<record name>.
std::string stateDirectory(const std::string& stanza);
std::string stateKindDirectory(const std::string& stanza, const std::string& kind);
std::string stateSubjectDirectory(const std::string& stanza, const std::string& kind,
                                  const std::string& subject);

}  // namespace tidemark::repo
