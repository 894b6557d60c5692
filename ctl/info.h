// tidemark info: what a stanza holds (backups, WAL per timeline) and how far a recovery can reach
// with it. The report is computed as a plain struct (collectInfo) and rendered as text or JSON.
// The JSON format is documented field by field in docs/info.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/config/config.h"
#include "common/recovery/catalog.h"
#include "common/recovery/window.h"
#include "common/repo/backup.h"
#include "common/repo/repository.h"
#include "common/repo/stanza.h"

namespace tidemark::ctl {

struct InfoBackup {
  repo::BackupInfo backup;
  std::optional<std::int64_t>
      durationSeconds;  // stop - start; nullopt when the stop is before the start
};

// The WAL files of one timeline, as stored (not following its history).
struct TimelineWal {
  std::optional<std::string> first, last;  // segment file names; nullopt when it has no segment
  std::uint64_t segments = 0;
  std::uint64_t storedSize = 0;  // stored bytes of its segments (not .partial or .history files)
  std::optional<std::string> partial;  // the newest .partial file of the timeline
  std::vector<recovery::WalGap> gaps;  // runs of missing segments between first and last
};

struct TimelineInfo {
  std::uint32_t timeline = 0;
  bool historyFile = false;                  // the repository holds <timeline>.history
  std::optional<std::uint32_t> parent;       // from the history file
  std::optional<std::uint64_t> switchPoint;  // where the parent ended and this timeline began
  std::string historyError;  // the history is unknown (missing or damaged file): why; "" otherwise
  TimelineWal wal;
  recovery::RecoveryWindow window;
};

struct InfoReport {
  std::string stanza;
  std::string repository;  // Storage::describe()
  repo::StanzaInfo info;
  std::vector<InfoBackup> backups;          // complete ones, oldest first
  std::vector<std::string> damagedBackups;  // backup.json files that cannot be read: why
  // Whether stanza.json and the backup.json files were checked against their MACs (encryption
  // configured); when not, they are shown as read, and said to be unauthenticated.
  bool metadataAuthenticated = false;
  std::vector<TimelineInfo>
      timelines;  // every timeline with WAL, a history file or a backup, ascending
};

// Reads the stanza's stanza.json, backup.json files, WAL listing and history files, and computes
// the report. Read-only. Throws Error(Config) when the stanza has no stanza.json (nothing was
// ever archived to it), Error(Storage) when the repository cannot be read and Error(Corrupt) for
// a damaged stanza.json; a damaged backup.json is reported in damagedBackups. A missing or
// damaged history file, or one encrypted with a key the handle lacks, is not an error: the timeline
// is reported without a window, saying why.
InfoReport collectInfo(const repo::Repository& repository);

// An operator's view: aligned columns, sizes in KiB/MiB/GiB, UTC times.
std::string renderText(const InfoReport& report);
// The machine-readable view (docs/info.md), ending with a newline.
std::string renderJson(const InfoReport& report);

enum class OutputFormat { Text, Json };

// The options of `tidemark info`, for its CommandSpec.
std::vector<OptionSpec> infoOptionSpecs();

// --output (throws Error(Usage) for a value that is not text or json).
OutputFormat parseOutputFormat(const CommandLine& commandLine);

// The command: opens the configured repository, collects the report and prints it to stdout.
// Returns the exit status (0). Throws like collectInfo, and Error(LocalIo) when stdout fails.
int info(const Config& config, const CommandLine& commandLine);

}  // namespace tidemark::ctl
