// Generations of a stanza: after pg_upgrade a cluster has a new system identifier (and major
// version), and its WAL names continue the old cluster's on the same timeline, so its WAL cannot
// share a folder with the old one. `tidemark stanza-upgrade` starts a new generation: a record of
// the new identity (written once, MAC'd with encryption), and a WAL folder of its own. Generation
// 1 is what stanza.json records and keeps the folder it always had; backups stay in one folder
// (labels are times), each belonging to the generation of its system identifier.
//
//   <stanza>/generations/<n>.json     n >= 2, the identity of generation n
//   <stanza>/wal/...                  generation 1's WAL
//   <stanza>/wal-<n>/...              generation n's WAL
//
// Every push, backup and recovery finds its generation by the cluster's system identifier; the
// newest generation is the current one. Format: docs/repository-format.md ("Generations").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/base/time.h"
#include "common/repo/repository.h"
#include "common/repo/stanza.h"

namespace tidemark::repo {

struct Generation {
  int number = 1;
  std::uint64_t systemId = 0;
  int pgVersion = 0;
  std::uint32_t walSegmentSize = 0;
  std::optional<UtcSeconds> created;  // when stanza-create or stanza-upgrade recorded it
  std::string tidemarkVersion;
  // When its record was stored, by the storage's clock (seconds since the epoch; 0: unknown, as
  // for generation 1): read from the listing, not from the record. What retention compares WAL
  // storage times with, on the same clock.
  std::int64_t recordStored = 0;

  // Generation 1: what stanza.json records.
  static Generation first(const StanzaInfo& stanza);
  std::string toJson() const;
  // Throws Error(Corrupt) naming `where` when the text is not a generation record of `number`.
  static Generation fromJson(const std::string& text, int number, const std::string& where);
};

// Error(Corrupt) about one generation record, naming it (`path`: the damaged record, or the one
// missing), so that a report can point at the object.
class GenerationRecordError : public Error {
 public:
  GenerationRecordError(std::string path, std::string message, std::string hint)
      : Error(ErrorCode::Corrupt, std::move(message), std::move(hint)), path_(std::move(path)) {}
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Every generation of the stanza, oldest first: generation 1 from `stanza`, then each record in
// <stanza>/generations/ (checked against its MAC when the handle authenticates metadata). Throws
// GenerationRecordError for a damaged or unauthenticated record, or numbers with a hole (a record
// that goes missing must not make WAL look like another generation's).
std::vector<Generation> loadGenerations(const Repository& repository, const StanzaInfo& stanza);

// Throws GenerationRecordError when the stanza has a WAL folder of a generation past the newest of
// `generations` (its record lost: that WAL would be invisible). One listing of the stanza's
// folder: for the readers that survey the whole stanza (the catalog), not for every push.
void checkWalFolders(const Repository& repository, const std::vector<Generation>& generations);

// The generation whose cluster has `systemId`, or nullptr.
const Generation* findGeneration(const std::vector<Generation>& generations,
                                 std::uint64_t systemId);

// The generation of the cluster with `systemId` and `walSegmentSize` (not checked when nullopt: a
// file without a page header). Fast when it is generation 1 (stanza.json's: nothing more is read);
// else the records are listed. Throws
// Error(ForeignCluster) naming `what` when no generation has it: with a HINT naming
// `tidemark stanza-upgrade` when the cluster looks like an upgrade of the current one (`pgVersion`
// newer, or the same and the cluster initialised later: system identifiers begin with initdb's
// time), else the wrong-stanza hint. `pgVersion` 0: unknown.
Generation requireGeneration(const Repository& repository, const StanzaInfo& stanza,
                             std::uint64_t systemId, std::optional<std::uint32_t> walSegmentSize,
                             int pgVersion, const std::string& what);

struct UpgradedStanza {
  Generation generation;
  bool created = false;  // false: the cluster already is a generation of the stanza
};

// `tidemark stanza-upgrade`'s worker: records `cluster` (system identifier, version, segment size)
// as the stanza's next generation. Idempotent: a cluster that already is a generation is returned
// as it is. Error(Config) when the cluster's major version is older than the current generation's
// (pg_upgrade never goes back: that is another cluster, for a stanza of its own), or, unless
// `force`, when it was initialised (initdb: its system identifier's time) no later than the
// current generation's cluster (pg_upgrade's new cluster is made for the upgrade). Holds the
// stanza's backup lock while it writes (Error(Locked) beside a backup, an expire or another
// stanza-upgrade).
UpgradedStanza upgradeStanza(const Repository& repository, const StanzaInfo& stanza,
                             const Generation& cluster, bool force = false);

}  // namespace tidemark::repo
