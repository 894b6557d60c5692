// Repository paths.
#include "common/repo/layout.h"

namespace tidemark::repo {

std::string stanzaFile(const std::string& stanza) {
  return stanza + "/stanza.json";
}

std::string generationsDirectory(const std::string& stanza) {
  return stanza + "/generations";
}

std::string generationFile(const std::string& stanza, int generation) {
  return generationsDirectory(stanza) + "/" + std::to_string(generation) + ".json";
}

std::string walDirectory(const std::string& stanza, int generation) {
  return generation <= 1 ? stanza + "/wal" : stanza + "/wal-" + std::to_string(generation);
}

std::string walObject(const std::string& stanza, int generation, const pg::WalName& name) {
  if (name.kind == pg::WalKind::History) return walDirectory(stanza, generation) + "/" + name.name;
  return walDirectory(stanza, generation) + "/" + name.name.substr(0, 16) + "/" + name.name;
}

std::string backupsDirectory(const std::string& stanza) {
  return stanza + "/backups";
}

std::string backupDirectory(const std::string& stanza, const std::string& label) {
  return backupsDirectory(stanza) + "/" + label;
}

std::string backupObject(const std::string& stanza, const std::string& label,
                         const std::string& name) {
  return backupDirectory(stanza, label) + "/" + name;
}

std::string backupInfoFile(const std::string& stanza, const std::string& label) {
  return backupObject(stanza, label, "backup.json");
}

std::string backupLockFile(const std::string& stanza) {
  return stanza + "/backup.lock";
}

std::string probeObject(const std::string& stanza, const std::string& name) {
  return stanza + "/probe/" + name;
}

std::string outsideProbeObject(const std::string& stanza, const std::string& name) {
  return "_probe/" + stanza + "/" + name;
}

std::string stateDirectory(const std::string& stanza) {
  return stanza + "/state";
}

std::string stateKindDirectory(const std::string& stanza, const std::string& kind) {
  return stateDirectory(stanza) + "/" + kind;
}

std::string stateSubjectDirectory(const std::string& stanza, const std::string& kind,
                                  const std::string& subject) {
  return stateKindDirectory(stanza, kind) + "/" + subject;
}

}  // namespace tidemark::repo
