// Retention: which backups and which WAL files `tidemark expire` may delete. A query on the
// recovery model (catalog.h), computed without touching the repository, so that --dry-run and a
// real run decide alike and the rules are tested on their own (docs/expire.md).
//
// Backups: one is kept when the count rule (the newest `full`) or the window rule (the newest
// backup that stopped before the window's start, and every later one) keeps it, when it has a keep
// mark, or when a live recovery lease names it.
//
// WAL, per generation of the stanza (repo/generation.h): only files older than the start of the
// generation's oldest backup that a rule keeps (its cutoff backup) go, and only on that backup's
// timeline and its ancestors; .history files never go, nor WAL on any other branch. A generation
// none of whose backups a rule keeps loses all its WAL (but its .history files) when a later
// generation has a backup a rule keeps: every file of it is older than that backup. On top of
// that, nothing goes that a kept backup (by a rule) reads from its start along its own timeline's
// history, that a keep-marked backup needs from its start to its stop, or that a live lease reads
// from its first segment on its timelines. Without a backup kept by a rule, no WAL goes.
//
// An older generation that still archives (WAL stored more than an hour after the next
// generation's record, both by the storage's clock, and within kStillArchivingFor; a WAL time in
// the future does not count) gets the rules of its own over its own backups, as a stanza of its
// own would: its cluster is in service (a rolled-back upgrade, a migration by logical replication,
// a cluster that was never the one upgraded), not superseded.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/base/time.h"
#include "common/pg/wal.h"
#include "common/recovery/catalog.h"
#include "common/repo/marks.h"

namespace tidemark::recovery {

struct RetentionPolicy {
  int full = 0;             // the newest N complete backups (0: no count rule)
  std::int64_t window = 0;  // seconds (0: no window rule)
  bool empty() const { return full == 0 && window == 0; }
};

struct ExpiredBackup {
  std::string label;
  std::string reason;  // why no rule keeps it
};

struct KeptBackup {
  std::string label;
  std::vector<std::string> reasons;  // "the newest 2 (full = 2)", "keep mark", "lease ..."
};

struct ExpiredWal {
  int generation = 1;
  std::uint32_t timeline = 0;
  std::uint64_t segment = 0;
  pg::WalKind kind = pg::WalKind::Segment;
  std::string name;  // the file name
};

// Where WAL of one generation goes from.
struct GenerationCutoff {
  int generation = 1;
  std::uint32_t segmentSize = 0;
  // The generation's oldest backup a rule keeps, whose start is the cutoff; nullopt with `whole`.
  std::optional<std::string> cutoffBackup;
  std::uint64_t cutoffSegment = 0;
  std::uint32_t cutoffTimeline = 0;
  // No backup of this generation is kept by a rule, but one of a later generation is
  // (`laterBackup`): all of its WAL goes.
  bool whole = false;
  std::string laterBackup;
  // The timelines WAL goes from (the cutoff backup's timeline and its ancestors, each up to where
  // the path left it; with `whole`, every timeline up to its end), and for each the low-water mark
  // to record before deleting: below it, WAL may be gone.
  std::map<std::uint32_t, std::uint64_t> lowWater;
};

struct ExpiryPlan {
  std::vector<KeptBackup> kept;        // oldest first
  std::vector<ExpiredBackup> backups;  // oldest first
  // One per generation that loses WAL (none: no WAL goes), oldest first.
  std::vector<GenerationCutoff> cutoffs;
  std::vector<ExpiredWal> wal;  // by generation, timeline, then segment
  // Files older than the cutoff that stay because a keep mark or a lease needs them: why.
  std::vector<std::string> heldBack;
};

// How long an older generation that archived after the next one was recorded counts as in service.
inline constexpr std::chrono::seconds kStillArchivingFor = std::chrono::days(7);

// Throws Error(Config) for an empty policy, naming the keys to set: an unset policy never deletes.
void requirePolicy(const RetentionPolicy& policy);

// `generations`: the stanza's catalogs, oldest generation first (Catalog::loadGenerations). Throws
// like requirePolicy for an empty policy, and Error(Corrupt) when a history file it needs cannot
// be read (nothing is decided on a guess).
ExpiryPlan planExpiry(const std::vector<Catalog>& generations, const RetentionPolicy& policy,
                      const std::set<std::string>& keepMarks,
                      const std::vector<repo::Lease>& liveLeases, UtcSeconds now);

}  // namespace tidemark::recovery
