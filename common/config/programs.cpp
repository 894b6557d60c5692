// Which program uses which configuration key: one table, read by --help, the man pages and the
// command-line parser.
#include "common/config/programs.h"

#include <utility>

namespace tidemark {

namespace {

const std::pair<Program, const char*> kNames[] = {
    {kArchivePush, "tidemark-archive-push"},
    {kArchiveGet, "tidemark-archive-get"},
    {kBasebackup, "tidemark-basebackup"},
    {kRecover, "tidemark-recover"},
    {kInfo, "tidemark info"},
    {kStanzaCreate, "tidemark stanza-create"},
    {kStanzaUpgrade, "tidemark stanza-upgrade"},
    {kCheck, "tidemark check"},
    {kVerify, "tidemark verify"},
    {kExpire, "tidemark expire"},
    {kKeep, "tidemark keep"},
    {kDrill, "tidemark drill"},
    {kMetrics, "tidemark metrics"},
};

// What reaches the repository (every program but keygen): where it is, how to read it, how to
// log. What tidemark-archive-get uses is also used by what writes its restore_command.
constexpr Programs kRepository = kEveryProgram;
constexpr Programs kRestoreCommand = kArchiveGet | kRecover | kDrill;

// By section, then by key ("" = every key of the section); the first match wins.
const struct {
  const char* section;
  const char* key;
  Programs users;
} kUsers[] = {
    {"", "stanza", kRepository},
    {"repo", "", kRepository},
    {"encryption", "", kRepository},
    {"s3", "", kRepository},
    {"log", "", kEveryProgram},
    // Only what stores WAL or backups compresses what it writes.
    {"compress", "", kArchivePush | kBasebackup},
    // The server to back up, to read the identity of, to check or to report on.
    {"pg", "conninfo", kBasebackup | kStanzaCreate | kStanzaUpgrade | kCheck | kMetrics},
    {"backup", "", kBasebackup},
    {"retention", "lease-timeout", kRecover | kDrill},
    {"retention", "", kExpire},
    // The spool: push acknowledgements and prefetched segments; recover discards a stale one,
    // metrics reads the push statistics, metrics and check the safety valve's unrecorded drops.
    {"archive", "spool-path", kArchivePush | kRestoreCommand | kMetrics | kCheck},
    {"archive", "push-ahead", kArchivePush},
    {"archive", "queue-max", kArchivePush},
    {"archive", "get-ahead", kRestoreCommand},
    {"drill", "", kDrill},
};

}  // namespace

std::vector<std::string> programNames(Programs set) {
  std::vector<std::string> names;
  for (const auto& [program, name] : kNames)
    if (set & program) names.emplace_back(name);
  return names;
}

Programs keyUsers(std::string_view key) {
  std::string_view section, leaf = key;
  if (auto dot = key.find('.'); dot != std::string_view::npos) {
    section = key.substr(0, dot);
    leaf = key.substr(dot + 1);
  }
  for (const auto& entry : kUsers)
    if (section == entry.section && (*entry.key == '\0' || leaf == entry.key)) return entry.users;
  return 0;
}

}  // namespace tidemark
