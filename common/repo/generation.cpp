// Generations of a stanza (generation.h).
#include "common/repo/generation.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/base/version.h"
#include "common/io/sink.h"
#include "common/repo/layout.h"
#include "common/repo/metadata.h"

namespace tidemark::repo {

namespace {

constexpr int kGenerationFormat = 1;

// When initdb made the cluster: a system identifier begins with its time in seconds.
std::int64_t initialised(std::uint64_t systemId) {
  return std::int64_t(systemId >> 32);
}

std::string describeGeneration(const Generation& g) {
  return fmt::format("generation {} (system identifier {}, PostgreSQL {})", g.number, g.systemId,
                     g.pgVersion);
}

constexpr const char* kOwnStanzaHint =
    "each cluster needs its own stanza: set 'stanza' for this cluster to a new name";

// Error(ForeignCluster) unless `what`, of generation `g`'s cluster, has its segment size.
void checkSegmentSize(const Repository& repository, const Generation& g,
                      std::uint32_t walSegmentSize, const std::string& what) {
  if (g.walSegmentSize == walSegmentSize) return;
  throw Error(
      ErrorCode::ForeignCluster,
      fmt::format("{} has {} byte segments, but {}stanza '{}' has {} byte segments", what,
                  walSegmentSize, g.number == 1 ? std::string() : describeGeneration(g) + " of ",
                  repository.stanza(), g.walSegmentSize),
      kOwnStanzaHint);
}

}  // namespace

Generation Generation::first(const StanzaInfo& stanza) {
  return Generation{.number = 1,
                    .systemId = stanza.systemId,
                    .pgVersion = stanza.pgVersion,
                    .walSegmentSize = stanza.walSegmentSize,
                    .created = stanza.created,
                    .tidemarkVersion = stanza.tidemarkVersion};
}

std::string Generation::toJson() const {
  nlohmann::ordered_json doc;
  doc["format"] = kGenerationFormat;
  doc["generation"] = number;
  doc["system-identifier"] = std::to_string(systemId);
  doc["pg-version"] = pgVersion;
  doc["wal-segment-size"] = walSegmentSize;
  doc["created"] = created ? formatUtc(*created) : "";
  doc["tidemark-version"] = tidemarkVersion;
  return doc.dump(2) + "\n";
}

Generation Generation::fromJson(const std::string& text, int number, const std::string& where) {
  try {
    auto doc = nlohmann::json::parse(text);
    if (doc.at("format").get<int>() != kGenerationFormat)
      throw Error(ErrorCode::Unsupported,
                  fmt::format("'{}' has generation record format {}; this tidemark reads format {}",
                              where, doc.at("format").get<int>(), kGenerationFormat),
                  "use the tidemark version that wrote this repository");
    Generation g;
    g.number = doc.at("generation").get<int>();
    if (g.number != number) throw std::invalid_argument("generation (it names another)");
    auto id = parseDecimal(doc.at("system-identifier").get<std::string>());
    if (!id || *id == 0) throw std::invalid_argument("system-identifier");
    g.systemId = *id;
    g.pgVersion = doc.at("pg-version").get<int>();
    g.walSegmentSize = doc.at("wal-segment-size").get<std::uint32_t>();
    if (g.walSegmentSize < (1u << 20) || (g.walSegmentSize & (g.walSegmentSize - 1)) != 0)
      throw std::invalid_argument("wal-segment-size");
    g.created = parseUtc(doc.value("created", ""));
    g.tidemarkVersion = doc.value("tidemark-version", "");
    return g;
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::Corrupt,
                fmt::format("'{}' is not a valid generation record: {}", where, e.what()),
                "restore it from a copy: it tells which cluster the generation's WAL and backups "
                "belong to");
  } catch (const std::invalid_argument& e) {
    throw Error(ErrorCode::Corrupt, fmt::format("'{}' has an invalid {}", where, e.what()),
                "restore it from a copy");
  }
}

std::vector<Generation> loadGenerations(const Repository& repository, const StanzaInfo& stanza) {
  std::vector<Generation> out{Generation::first(stanza)};
  std::vector<int> numbers;
  std::map<int, std::int64_t> stored;
  repository.storage().list(generationsDirectory(repository.stanza()),
                            [&](const storage::ListEntry& entry) {
                              if (auto n = generationOfRecord(entry.name); n && !entry.directory) {
                                numbers.push_back(*n);
                                stored[*n] = entry.modified;
                              }
                            });
  std::sort(numbers.begin(), numbers.end());
  for (int n : numbers) {
    const std::string path = generationFile(repository.stanza(), n);
    const std::string where = repository.describe() + "/" + path;
    if (n != out.back().number + 1) {
      const std::string missing = generationFile(repository.stanza(), out.back().number + 1);
      throw GenerationRecordError(
          missing,
          fmt::format("stanza '{}' has generation {} but no generation {} in {}",
                      repository.stanza(), n, out.back().number + 1, repository.describe()),
          fmt::format("restore '{}' from a copy: without it, WAL and backups of that "
                      "generation cannot be told apart",
                      missing));
    }
    auto text = storage::readSmall(repository.storage(), path, 1 << 20);
    if (!text)  // listed, then gone: records are never deleted
      throw Error(ErrorCode::Storage, fmt::format("'{}' was listed but cannot be read", where),
                  "run again; if it persists, the repository lost a generation record: restore it "
                  "from a copy");
    try {
      verifyMetadata(repository, path, *text, stanza.identity());
      out.push_back(Generation::fromJson(*text, n, where));
      out.back().recordStored = stored[n];
    } catch (const Error& e) {
      if (e.code() != ErrorCode::Corrupt) throw;
      throw GenerationRecordError(path, e.what(), e.hint());
    }
  }
  return out;
}

void checkWalFolders(const Repository& repository, const std::vector<Generation>& generations) {
  int highest = 1;
  repository.storage().list(repository.stanza(), [&](const storage::ListEntry& entry) {
    if (auto n = generationOfWalFolder(entry.name); n && entry.directory)
      highest = std::max(highest, *n);
  });
  if (highest <= generations.back().number) return;
  const std::string record = generationFile(repository.stanza(), highest);
  throw GenerationRecordError(
      record,
      fmt::format("stanza '{}' in {} has a WAL folder '{}' but no record of generation {}",
                  repository.stanza(), repository.describe(),
                  walDirectory(repository.stanza(), highest), highest),
      fmt::format("restore '{}' from a copy: without it, that generation's WAL and backups "
                  "cannot be told apart from the others",
                  record));
}

const Generation* findGeneration(const std::vector<Generation>& generations,
                                 std::uint64_t systemId) {
  auto it = std::find_if(generations.begin(), generations.end(),
                         [&](const Generation& g) { return g.systemId == systemId; });
  return it == generations.end() ? nullptr : &*it;
}

Generation requireGeneration(const Repository& repository, const StanzaInfo& stanza,
                             std::uint64_t systemId, std::optional<std::uint32_t> walSegmentSize,
                             int pgVersion, const std::string& what) {
  std::vector<Generation> generations;
  if (systemId == stanza.systemId)
    generations = {Generation::first(stanza)};  // nothing more to read
  else
    generations = loadGenerations(repository, stanza);
  if (const Generation* found = findGeneration(generations, systemId)) {
    if (walSegmentSize) checkSegmentSize(repository, *found, *walSegmentSize, what);
    return *found;
  }
  const Generation& current = generations.back();
  // pg_upgrade makes its cluster after the old one, most often of a newer major version. A later
  // cluster of the same version may be a same-version pg_upgrade, or a second cluster pointed at
  // this stanza by mistake: that one must not take the stanza from the cluster still archiving
  // into it, so its hint names a stanza of its own first and stanza-upgrade only with --force.
  const bool later = initialised(systemId) > initialised(current.systemId);
  std::string hint = kOwnStanzaHint;
  if (pgVersion > current.pgVersion)
    hint = fmt::format(
        "if this cluster is '{}' after pg_upgrade, run 'tidemark stanza-upgrade' once ({}): "
        "archiving resumes in a new generation of the stanza; otherwise {}",
        repository.stanza(), docPath("upgrade.md"), kOwnStanzaHint);
  else if (pgVersion == 0 && later)  // a file without the version in it (a .history file)
    hint = fmt::format(
        "{}; only if this cluster is '{}' after a pg_upgrade to a newer major version, run "
        "'tidemark stanza-upgrade' once ({})",
        kOwnStanzaHint, repository.stanza(), docPath("upgrade.md"));
  else if (pgVersion == current.pgVersion && later)
    hint = fmt::format(
        "{}; only if this cluster replaces the stanza's for good (a pg_upgrade to the same "
        "version, a dump and restore: the old cluster archives no more), run 'tidemark "
        "stanza-upgrade --force' once ({})",
        kOwnStanzaHint, docPath("upgrade.md"));
  throw Error(
      ErrorCode::ForeignCluster,
      fmt::format("{} is from the cluster with system identifier {}, but stanza '{}' belongs to {}",
                  what, systemId, repository.stanza(),
                  generations.size() == 1 ? std::to_string(stanza.systemId)
                                          : fmt::format("{} (its current {})", stanza.systemId,
                                                        describeGeneration(current))),
      hint);
}

UpgradedStanza upgradeStanza(const Repository& repository, const StanzaInfo& stanza,
                             const Generation& cluster, bool force) {
  auto known = [&](const std::vector<Generation>& generations) -> std::optional<UpgradedStanza> {
    const Generation* g = findGeneration(generations, cluster.systemId);
    if (!g) return std::nullopt;
    checkSegmentSize(repository, *g, cluster.walSegmentSize, "this cluster");
    return UpgradedStanza{*g, false};
  };
  std::vector<Generation> generations = loadGenerations(repository, stanza);
  if (auto found = known(generations)) return *found;
  const Generation& current = generations.back();
  if (cluster.pgVersion < current.pgVersion)
    throw Error(ErrorCode::Config,
                fmt::format("this cluster runs PostgreSQL {}, older than {} of stanza '{}': "
                            "pg_upgrade never goes back a version",
                            cluster.pgVersion, describeGeneration(current), repository.stanza()),
                "this is another cluster: give it a stanza of its own ('stanza' and 'tidemark "
                "stanza-create')");
  // pg_upgrade goes to a newer major version, and makes its cluster after the old one. A cluster
  // of the same version is another one, and a new generation for it would leave the stanza's
  // cluster archiving into an old generation that expire treats as superseded. One --force
  // covers both checks, so the refusal names each that applies.
  const bool sameVersion = cluster.pgVersion == current.pgVersion;
  const bool earlier = initialised(cluster.systemId) <= initialised(current.systemId);
  if (!force && sameVersion)
    throw Error(ErrorCode::Config,
                fmt::format("this cluster runs PostgreSQL {}, as {} of stanza '{}' does{}: "
                            "pg_upgrade goes to a newer major version, so it is another cluster",
                            cluster.pgVersion, describeGeneration(current), repository.stanza(),
                            earlier ? ", and was initialised before it" : ""),
                "give this cluster a stanza of its own ('stanza' and 'tidemark stanza-create'); "
                "only to replace the stanza's cluster for good (the old one no longer archives: "
                "a dump and restore, a same-version pg_upgrade), run again with --force");
  // pg_upgrade's new cluster is made (initdb) for the upgrade, after the old one.
  if (!force && earlier)
    throw Error(
        ErrorCode::Config,
        fmt::format("this cluster was initialised at {}, not after the cluster of {} of "
                    "stanza '{}' ({}): it is not that cluster after pg_upgrade",
                    formatUtc(UtcSeconds(std::chrono::seconds(initialised(cluster.systemId)))),
                    describeGeneration(current), repository.stanza(),
                    formatUtc(UtcSeconds(std::chrono::seconds(initialised(current.systemId))))),
        "give this cluster a stanza of its own; if it is the upgraded cluster all the "
        "same (a host whose clock was wrong at initdb), run again with --force");
  StanzaInfo checked = stanza;
  checkEncryption(repository, checked);
  // One stanza-upgrade at a time, and none beside a backup or an expire: under the lock, a MAC
  // record without its generation record is only ever one a killed upgrade left.
  std::string holder;
  auto lock = repository.storage().tryLock(
      backupLockFile(repository.stanza()),
      fmt::format("tidemark stanza-upgrade on {}, started {}", hostName(), formatUtc(utcNow())),
      holder);
  if (!lock)
    throw Error(ErrorCode::Locked,
                fmt::format("a backup, an expire or another stanza-upgrade of stanza '{}' is "
                            "running: {}",
                            repository.stanza(), holder),
                "run stanza-upgrade again when it has finished");
  generations = loadGenerations(repository, stanza);
  if (auto found = known(generations)) return *found;
  Generation next = cluster;
  next.number = generations.back().number + 1;
  next.created = utcNow();
  next.tidemarkVersion = kVersion;
  const std::string path = generationFile(repository.stanza(), next.number);
  // Read directly: a listing that lags (S3) must not hide a record we would sign over.
  if (repository.storage().info(path))
    throw Error(ErrorCode::Storage,
                fmt::format("'{}' exists in {}, but the listing of '{}' did not show it yet", path,
                            repository.describe(), generationsDirectory(repository.stanza())),
                "run stanza-upgrade again in a moment");
  const std::string text = next.toJson();
  // The MAC record first, as for every metadata file: the record is never visible without it.
  writeMetadataMac(repository, path, text, stanza.identity(), true);
  if (!lock->confirm())
    throw Error(
        ErrorCode::Locked,
        fmt::format("lost the lock of stanza '{}' during stanza-upgrade", repository.stanza()),
        "run stanza-upgrade again");
  auto write = repository.storage().newWrite(path, {.noReplace = true});
  write->write(io::asBytes(text));
  if (write->commit()) return {next, true};
  throw Error(ErrorCode::Conflict,
              fmt::format("'{}' was written by someone else during this stanza-upgrade", path),
              "check which cluster archives to this stanza: 'tidemark info' shows its generations");
}

}  // namespace tidemark::repo
