// The recovery model: what one generation of a stanza holds (its identity, its complete backups,
// its WAL per timeline, the timeline histories), read once, and the questions every command asks of
// it: which file PostgreSQL reads for a segment on the way to a timeline, which of those files are
// missing, how far an unbroken run of WAL reaches, which backups lie on a timeline's history and
// what WAL each needs.
//
// tidemark-recover's plan (plan.h) and tidemark info's recoverable window (window.h) are queries
// on it; so are the commands that come next (expire: what each kept backup needs; verify: what
// must be present; drill: a plan to the end of the archive).
//
// Not thread-safe: history files are read (and cached) when first asked for.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/pg/timeline.h"
#include "common/repo/backup.h"
#include "common/repo/generation.h"
#include "common/repo/marks.h"
#include "common/repo/metadata.h"
#include "common/repo/repository.h"
#include "common/repo/stanza.h"
#include "common/repo/wal_catalog.h"

namespace tidemark::recovery {

// A run of consecutive missing segments, by file name.
struct WalGap {
  std::string first, last;
  std::uint64_t count = 0;

  // "000000010000000000000005" or "000000010000000000000005 to 000000010000000000000007 (3 files)".
  std::string describe() const;
};

// The record of archive-push's safety valve (repo/marks.h) that accounts for `gap` in the WAL of
// the cluster `systemId`, or nullptr: one whose dropped range overlaps it.
const repo::GapRecord* droppedBy(const std::vector<repo::GapRecord>& dropped,
                                 std::uint64_t systemId, const WalGap& gap);
// "archive-push's safety valve (archive.queue-max) dropped A to B (N files) between T1 and T2".
std::string describeDropped(const repo::GapRecord& record);

// A timeline a recovery from a backup can end on (Catalog::branchesFrom).
struct Branch {
  std::uint32_t timeline = 0;
  pg::TimelineHistory history;
  // Where its path parts from the nearest other branch's (0 when it is the only branch).
  std::uint64_t fork = 0;
  // The newest segment stored on its own timeline, and when it was stored (the storage's clock,
  // seconds since the epoch).
  std::optional<std::uint64_t> newestSegment;
  std::int64_t newestStored = 0;
};

class Catalog {
 public:
  // Reads a history file; throws like repo::loadHistory.
  using HistoryLoader = std::function<pg::TimelineHistory(std::uint32_t timeline)>;

  // One catalog per generation of the stanza (repo/generation.h), oldest first: reads stanza.json,
  // the generation records, every backup.json (each in the catalog of the generation of its
  // system identifier; a damaged one is left out and listed in damagedBackups(), as is one of no
  // generation, in the newest catalog's: one damaged file must not make every other backup
  // unusable) and each generation's WAL listing; history files are read when first asked for,
  // through the handle's storage, which must outlive the catalogs. Empty when the stanza has no
  // stanza.json (it does not exist). Throws Error(Corrupt) for a damaged stanza.json or
  // generation record, Error(Storage) when the repository cannot be read.
  static std::vector<Catalog> loadGenerations(const repo::Repository& repository);
  // The newest generation's catalog (the one pushes of the current cluster go to); nullopt when
  // the stanza does not exist.
  static std::optional<Catalog> load(const repo::Repository& repository);

  // From parts (tests, and loadGenerations()). `backups` oldest first. Without `generation`,
  // generation 1 (what `stanza` records).
  Catalog(std::string name, repo::StanzaInfo stanza, std::vector<repo::BackupInfo> backups,
          std::vector<std::string> damagedBackups, repo::WalCatalog wal, HistoryLoader loadHistory,
          std::optional<repo::Generation> generation = std::nullopt);

  // The stanza's name, and what its stanza.json records.
  const std::string& name() const { return name_; }
  const repo::StanzaInfo& stanza() const { return stanza_; }
  // The generation this catalog describes: its cluster, and the WAL folder it listed.
  const repo::Generation& generation() const { return generation_; }
  // Complete backups (with a readable backup.json), oldest first.
  const std::vector<repo::BackupInfo>& backups() const { return backups_; }
  // Why each left-out backup.json could not be read (or was not authenticated).
  const std::vector<std::string>& damagedBackups() const { return damaged_; }
  // Whether load() checked stanza.json and the backups' backup.json against their MACs
  // (encryption configured), or could not (repo/metadata.h).
  repo::MetadataTrust metadataTrust() const { return trust_; }
  const repo::WalCatalog& wal() const { return wal_; }
  std::uint32_t segmentSize() const { return wal_.segmentSize; }
  // When the newest WAL segment or .partial file was stored (the storage's clock, seconds since
  // the epoch), of those stored no later than `notAfter` (a time in the future is no storage
  // time: a file touched on purpose); 0 without any.
  std::int64_t newestWalStored(
      std::int64_t notAfter = std::numeric_limits<std::int64_t>::max()) const;

  // The complete backup with that label, or nullptr.
  const repo::BackupInfo* findBackup(const std::string& label) const;

  // ---- timelines --------------------------------------------------------------------------

  // Every timeline with WAL, a .partial file, a history file or a backup, ascending.
  std::set<std::uint32_t> timelines() const;
  bool hasHistoryFile(std::uint32_t timeline) const { return wal_.histories.count(timeline) > 0; }
  // From `timeline`, the last of the consecutive timelines that have a history file: PostgreSQL's
  // recovery_target_timeline = 'latest' (findNewestTimeLine).
  std::uint32_t newestFrom(std::uint32_t timeline) const;
  // The history of `timeline` (cached). Timeline 1 has no parents; a timeline above 1 whose
  // .history file the repository lacks is taken to have none either, as PostgreSQL does
  // (readTimeLineHistory): hasHistoryFile() tells the two apart. Throws Error(Corrupt) for a
  // damaged file and Error(Config) for one encrypted with a key the handle lacks.
  const pg::TimelineHistory& history(std::uint32_t timeline) const;

  // ---- branches ---------------------------------------------------------------------------

  // Where the paths to two timelines part: the first location read from different timelines
  // (UINT64_MAX for the same path).
  static std::uint64_t divergence(const pg::TimelineHistory& a, const pg::TimelineHistory& b);
  // Whether `timeline` holds a stored segment with WAL after `lsn` (one that ends after it): it
  // went on writing after a child timeline left it there.
  bool walAfter(std::uint32_t timeline, std::uint64_t lsn) const;
  // The timelines a recovery from `backup` can end on. Candidates are the timelines whose history
  // the backup lies on (onHistory: its own, and those with a history file); a candidate that
  // another one leaves at S is continued by it, and no branch, unless it holds WAL after S
  // (walAfter: the old primary went on writing after a promotion, or production after a restored
  // copy promoted and archived). More than one branch is a choice PostgreSQL's
  // recovery_target_timeline = 'latest' makes blindly (the highest number wins). Ascending by
  // timeline. A timeline above the backup's whose history is unknown (a damaged or missing
  // history file) is left out and named in `problems`: it may be a branch. Throws when the
  // repository cannot be read.
  std::vector<Branch> branchesFrom(const repo::BackupInfo& backup,
                                   std::vector<std::string>* problems = nullptr) const;

  // ---- WAL along a history ----------------------------------------------------------------

  // The timeline whose file PostgreSQL reads for `segment` on the way to history.timeline: the
  // newest timeline on the path that began at or before the segment's end (XLogFileReadAnyTLI).
  std::uint32_t fileTimeline(const pg::TimelineHistory& history, std::uint64_t segment) const;
  // That file's name.
  std::string fileName(const pg::TimelineHistory& history, std::uint64_t segment) const;
  // Whether the repository holds that file.
  bool holds(const pg::TimelineHistory& history, std::uint64_t segment) const;
  // The files PostgreSQL would read from `first` to `last` that the repository lacks, as runs.
  std::vector<WalGap> gaps(const pg::TimelineHistory& history, std::uint64_t first,
                           std::uint64_t last) const;
  // The newest segment archived on the path to history.timeline, no earlier than `from`.
  std::optional<std::uint64_t> newestOnPath(const pg::TimelineHistory& history,
                                            std::uint64_t from) const;

  // ---- backups ----------------------------------------------------------------------------

  // Whether `backup` can start a recovery that follows `history`: its timeline is on that history
  // and it ended before that timeline did (a backup taken on a timeline after the switch away from
  // it lies on another branch).
  static bool onHistory(const repo::BackupInfo& backup, const pg::TimelineHistory& history);

 private:
  std::string name_;
  repo::StanzaInfo stanza_;
  repo::Generation generation_;
  std::vector<repo::BackupInfo> backups_;
  std::vector<std::string> damaged_;
  repo::WalCatalog wal_;
  HistoryLoader loadHistory_;
  mutable std::map<std::uint32_t, pg::TimelineHistory> histories_;
  repo::MetadataTrust trust_ = repo::MetadataTrust::Unauthenticated;
};

}  // namespace tidemark::recovery
