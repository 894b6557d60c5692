// tidemark info: what a stanza holds (backups, WAL per timeline) and how far a recovery can reach
// with it, for each generation of the stanza (repo/generation.h: one per cluster, a new one after
// pg_upgrade). The report is computed as a plain struct (collectInfo) and rendered as text or JSON.
// The JSON format is documented field by field in docs/info.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/config/config.h"
#include "common/recovery/catalog.h"
#include "common/recovery/last_commit.h"
#include "common/recovery/window.h"
#include "common/repo/backup.h"
#include "common/repo/generation.h"
#include "common/repo/marks.h"
#include "common/repo/repository.h"
#include "common/repo/stanza.h"
#include "ctl/drill.h"
#include "ctl/verify.h"

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
  std::optional<std::string> partial;      // the newest .partial file of the timeline
  std::vector<recovery::WalGap> gaps;      // runs of missing segments between first and last
  std::optional<std::int64_t> lastStored;  // when `last` was stored (the storage's clock)
};

struct TimelineInfo {
  std::uint32_t timeline = 0;
  bool historyFile = false;                  // the repository holds <timeline>.history
  std::optional<std::uint32_t> parent;       // from the history file
  std::optional<std::uint64_t> switchPoint;  // where the parent ended and this timeline began
  std::string historyError;  // the history is unknown (missing or damaged file): why; "" otherwise
  // The parent holds WAL after the switch point (it went on writing: two branches, and a recovery
  // through the fork must name its timeline; recovery/catalog.h, branchesFrom).
  bool parentWentOn = false;
  TimelineWal wal;
  recovery::RecoveryWindow window;
  // With a window: where its WAL ends in commit time (recovery/last_commit.h); a time target must
  // lie before that commit.
  std::optional<recovery::ArchiveEnd> archiveEnd;
};

// What the repository holds of one generation: its backups (those of its cluster), and its WAL
// (its own folder) with the windows computed from them.
struct GenerationReport {
  repo::Generation generation;
  bool current = false;                     // the newest: the cluster's WAL and backups go there
  std::vector<InfoBackup> backups;          // complete ones, oldest first
  std::vector<std::string> damagedBackups;  // backup.json files left out: why (recovery/catalog.h)
  std::vector<TimelineInfo>
      timelines;  // every timeline with WAL, a history file or a backup, ascending
};

struct InfoReport {
  std::string stanza;
  std::string repository;  // Storage::describe()
  repo::StanzaInfo info;   // stanza.json: generation 1's cluster
  // Whether stanza.json, the generation records and the backup.json files were checked against
  // their MACs (encryption configured); when not, they are shown as read, and said to be
  // unauthenticated.
  bool metadataAuthenticated = false;
  std::vector<GenerationReport> generations;  // oldest first, never empty
  // The newest recorded results of `tidemark verify` and `tidemark drill` (state records); a
  // record that cannot be read is reported in `notes` and left out.
  std::optional<VerifyResult> lastVerify;
  std::optional<DrillRecord> lastDrill;
  // WAL archive-push's safety valve dropped (archive.queue-max), as recorded: backups taken before
  // a gap do not recover past it.
  std::vector<repo::GapRecord> droppedWal;
  std::vector<std::string> notes;

  // The newest generation's.
  const GenerationReport& current() const { return generations.back(); }
};

// Reads the stanza's stanza.json, generation records, backup.json files, WAL listings and history
// files, and computes the report. Read-only. Throws Error(Config) when the stanza has no
// stanza.json (nothing was ever archived to it), Error(Storage) when the repository cannot be read
// and Error(Corrupt) for a damaged stanza.json or generation record; a damaged backup.json is
// reported in damagedBackups. A missing or damaged history file, or one encrypted with a key the
// handle lacks, is not an error: the timeline is reported without a window, saying why.
// With `lastCommits`, each window's end in commit time is read with pg_waldump
// (recovery/last_commit.h: one segment fetched per window); when it cannot be, archiveEnd says
// why. tidemark metrics, which runs every minute, leaves it out.
InfoReport collectInfo(const repo::Repository& repository, bool lastCommits = true);

// An operator's view: aligned columns, sizes in KiB/MiB/GiB, UTC times. With several generations,
// each is shown in turn, oldest first, with its backups, WAL and windows.
std::string renderText(const InfoReport& report);
// The machine-readable view (docs/info.md), ending with a newline: the current generation at the
// top level (as before generations existed), and every generation in "generations".
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
