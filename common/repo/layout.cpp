// Repository paths.
#include "common/repo/layout.h"

namespace tidemark::repo {

std::string stanzaFile(const std::string& stanza) { return stanza + "/stanza.json"; }

std::string walDirectory(const std::string& stanza) { return stanza + "/wal"; }

std::string walObject(const std::string& stanza, const pg::WalName& name) {
  if (name.kind == pg::WalKind::History) return walDirectory(stanza) + "/" + name.name;
  return walDirectory(stanza) + "/" + name.name.substr(0, 16) + "/" + name.name;
}

}  // namespace tidemark::repo
