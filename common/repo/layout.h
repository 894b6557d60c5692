// Repository layout: the only place that builds repository paths (docs/repository-format.md).
//
//   <stanza>/stanza.json
//   <stanza>/wal/<timeline+log, 16 hex>/<segment, .partial or .backup file name>
//   <stanza>/wal/<timeline, 8 hex>.history
#pragma once

#include <string>

#include "common/pg/wal.h"

namespace tidemark::repo {

std::string stanzaFile(const std::string& stanza);
std::string walDirectory(const std::string& stanza);
// Where a WAL-related file is stored.
std::string walObject(const std::string& stanza, const pg::WalName& name);

}  // namespace tidemark::repo
