// Repository paths.
#include "common/repo/layout.h"

#include <string_view>

#include "common/base/text.h"

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

namespace {

// The number that `name` is, between `prefix` and `suffix`, written as generationFile() and
// walDirectory() write it (no sign, no leading zero), 2 to 9999.
std::optional<int> numberBetween(const std::string& name, std::string_view prefix,
                                 std::string_view suffix) {
  if (name.size() <= prefix.size() + suffix.size() || !name.starts_with(prefix) ||
      !name.ends_with(suffix))
    return std::nullopt;
  auto n = parseDecimal(
      std::string_view(name).substr(prefix.size(), name.size() - prefix.size() - suffix.size()));
  if (!n || *n < 2 || *n > 9999) return std::nullopt;
  const int number = int(*n);
  if (name != std::string(prefix) + std::to_string(number) + std::string(suffix))
    return std::nullopt;
  return number;
}

}  // namespace

std::optional<int> generationOfRecord(const std::string& name) {
  return numberBetween(name, "", ".json");
}

std::optional<int> generationOfWalFolder(const std::string& name) {
  return numberBetween(name, "wal-", "");
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
