// tidemark-archive-get: the fetch worker and the command around it.
#include "archive-get/get.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "archive-get/prefetch.h"
#include "common/base/text.h"
#include "common/base/time.h"
#include "common/files/file.h"
#include "common/pg/config_file.h"
#include "common/pg/control.h"
#include "common/pg/lsn.h"
#include "common/pg/wal.h"
#include "common/pg/wal_records.h"
#include "common/repo/generation.h"
#include "common/repo/layout.h"
#include "common/repo/marks.h"
#include "common/repo/stanza.h"
#include "common/spool/spool.h"

namespace tidemark::archive {

namespace {

// A small text file (a label, a setting file, a marker), or "" when it is missing or larger than
// `limit`: what it holds is never trusted for its size.
std::string readSmallFile(const std::string& path, std::size_t limit = 1u << 20) {
  std::ifstream in(path, std::ios::binary);
  std::string text;
  char chunk[8192];
  // Read no further than one chunk past the limit: a huge file is never held in memory.
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
    text.append(chunk, std::size_t(in.gcount()));
    if (text.size() > limit) return std::string();
  }
  return text;
}

}  // namespace

GetResult getWalFile(const repo::Repository& repository, const GetParams& params) {
  auto name = pg::parseWalName(params.walName);
  if (!name)
    throw Error(
        ErrorCode::InvalidInput, fmt::format("'{}' is not a WAL file name", params.walName),
        "restore_command must pass %f and %p: restore_command = 'tidemark-archive-get %f %p'");
  // "Not found" ends recovery, so it must mean this stanza answered, not that the configuration
  // points at a stanza that does not exist. stanza.json also gives the segment size, the most a
  // segment object may hold: a damaged or forged one must not fill pg_wal.
  auto stanza = repo::loadStanza(repository);
  if (!stanza)
    throw repo::missingStanza(
        repository, "recovery stops here rather than take a wrong repository for the end of WAL");
  // The generation of the cluster that recovers: the WAL of another generation (names continue
  // across pg_upgrade) is never what it needs.
  repo::Generation generation = repo::Generation::first(*stanza);
  if (!params.controlSystemId || *params.controlSystemId != stanza->systemId) {
    std::vector<repo::Generation> generations = repo::loadGenerations(repository, *stanza);
    if (!params.controlSystemId && generations.size() > 1)
      throw Error(ErrorCode::InvalidInput,
                  fmt::format("cannot tell which generation of stanza '{}' to read '{}' from: "
                              "there is no global/pg_control in the working directory",
                              repository.stanza(), name->name),
                  "run tidemark-archive-get in the data directory of the cluster that recovers "
                  "(as PostgreSQL's restore_command does)");
    if (params.controlSystemId) {
      const repo::Generation* g = repo::findGeneration(generations, *params.controlSystemId);
      if (!g)
        throw Error(
            ErrorCode::ForeignCluster,
            fmt::format("the cluster recovering here (system identifier {}, from "
                        "global/pg_control) is not one of stanza '{}' in {}",
                        *params.controlSystemId, repository.stanza(), repository.describe()),
            "restore_command names the stanza of another cluster: check 'stanza' in "
            "the configuration it uses");
      generation = *g;
    }
  }
  files::AtomicFile file(params.destination,
                         {.noReplace = false, .mode = 0600, .errorCode = ErrorCode::LocalIo});
  pg::HeaderCapture sink(file);
  GetResult result;
  auto summary =
      repository.readObject(repo::walObject(repository.stanza(), generation.number, *name), sink,
                            pg::maxWalFileSize(*name, generation.walSegmentSize));
  // A segment is the cluster's own: a stored object of another cluster (another generation's
  // under the same name, or a forgery without encryption) is never handed to PostgreSQL.
  if (summary && name->hasPageHeader()) {
    const std::string where = repository.describe() + "/" +
                              repo::walObject(repository.stanza(), generation.number, *name);
    pg::LongPageHeader page = pg::checkSegmentHeader(sink.header(), *name, summary->plainSize,
                                                     where, pg::kStoredSegmentHint);
    if (page.systemId != generation.systemId)
      throw Error(ErrorCode::ForeignCluster,
                  fmt::format("'{}' holds WAL of the cluster with system identifier {}, but the "
                              "cluster recovering here is {}",
                              where, page.systemId, generation.systemId),
                  "the repository holds another cluster's file under this name: move it aside "
                  "and find out how it got there (tidemark verify)");
  }
  if (!summary) {  // `file` is discarded unpublished
    // Below a low-water mark the file was expired on purpose: "not found" would end the
    // recovery as if the archive ended there, with the WAL after it never replayed.
    // A record that cannot be vouched for may be the one that says so (below).
    std::vector<std::string> leftOut;
    if (name->kind != pg::WalKind::History) {
      std::uint64_t segment = pg::segmentNumber(*name, generation.walSegmentSize);
      auto mark = repo::lowWaterMark(repository, stanza->identity(), generation.number,
                                     name->timeline, &leftOut);
      if (mark && segment < *mark)
        throw Error(
            ErrorCode::Storage,
            fmt::format("'{}' was expired: 'tidemark expire' deleted the WAL of timeline "
                        "{} before {} in {}",
                        name->name, name->timeline,
                        pg::segmentFileName(name->timeline, *mark, generation.walSegmentSize),
                        repository.describe()),
            "this recovery started from a backup older than what the retention policy "
            "keeps: restore a newer backup (tidemark-recover picks one), or recover with "
            "a lease (tidemark-recover registers one) so that expire keeps its WAL");
    }
    // Dropped by archive-push's safety valve: "not found" would end the recovery at the gap as if
    // the archive ended there.
    if (name->kind != pg::WalKind::History) {
      for (const auto& gap : repo::readGapRecords(repository, stanza->identity(), &leftOut))
        if (gap.systemId == generation.systemId && gap.first <= name->name &&
            name->name <= gap.last)
          throw Error(ErrorCode::Storage,
                      fmt::format("'{}' is missing from {}: archive-push's safety valve "
                                  "(archive.queue-max) dropped {} to {}",
                                  name->name, repository.describe(), gap.first, gap.last),
                      "WAL after the gap cannot be replayed: recover to a moment before it, or "
                      "from a backup taken after it");
      // Damaged, or not vouched for by the stanza's key: it may be the mark or the gap that covers
      // this file, and "not found" would then end the recovery here as if the archive ended.
      if (!leftOut.empty())
        throw Error(ErrorCode::Corrupt,
                    fmt::format("'{}' is missing from {}, and whether it was expired or dropped "
                                "on purpose cannot be told: {}",
                                name->name, repository.describe(), leftOut.front()),
                    "move the record aside (tidemark verify lists what is damaged); until then "
                    "the recovery stops here instead of ending as if the archive ended");
    }
    return result;
  }
  file.commit();
  result.outcome = GetOutcome::Restored;
  result.summary = *summary;
  return result;
}

std::optional<std::string> foreignTablespace(const std::string& dataDirectory,
                                             const pg::TablespaceCreation& creation,
                                             int pgVersion) {
  if (creation.location.empty()) return std::nullopt;  // in place, under pg_tblspc
  // Missing: PostgreSQL's replay stops on its own ("directory does not exist"). One that cannot
  // be looked at may hold anything: refused too.
  auto unreadable = [&]() -> std::optional<std::string> {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    return fmt::format("cannot be read here ({}), so it may hold another cluster's tablespace",
                       errnoText(errno));
  };
  std::unique_ptr<char, decltype(&std::free)> where(::realpath(creation.location.c_str(), nullptr),
                                                    &std::free);
  if (!where) return unreadable();
  DIR* dir = ::opendir(where.get());
  if (!dir) return unreadable();
  // This recovery's own: a link in its pg_tblspc leads there (its replay created it already: a
  // recovery that started again, or a tablespace dropped and another created at its location).
  const std::string links = dataDirectory + "/pg_tblspc";
  if (DIR* own = ::opendir(links.c_str())) {
    bool linked = false;
    while (const dirent* entry = ::readdir(own)) {
      std::unique_ptr<char, decltype(&std::free)> target(
          ::realpath((links + "/" + entry->d_name).c_str(), nullptr), &std::free);
      if (entry->d_name[0] != '.' && target && std::strcmp(target.get(), where.get()) == 0)
        linked = true;
    }
    ::closedir(own);
    if (linked) {
      ::closedir(dir);
      return std::nullopt;
    }
  }
  const std::string prefix = fmt::format("PG_{}_", pgVersion);
  std::optional<std::string> found;
  while (const dirent* entry = ::readdir(dir))
    if (std::string_view(entry->d_name).starts_with(prefix)) {
      found = fmt::format("holds another cluster's tablespace ('{}')", printable(entry->d_name));
      break;
    }
  ::closedir(dir);
  return found;
}

namespace {

// A file mapped read-only (a WAL segment, for the tablespace scan); empty when it is shorter than
// a page header.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    auto fd = files::openForRead(path);
    struct stat st {};
    if (!fd || ::fstat(fd->get(), &st) != 0)
      throw Error(ErrorCode::LocalIo, fmt::format("cannot read '{}': {}", path, errnoText(errno)));
    if (st.st_size < std::int64_t(pg::kLongPageHeaderSize)) return;
    size_ = std::size_t(st.st_size);
    map_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd->get(), 0);
    if (map_ == MAP_FAILED)
      throw Error(ErrorCode::LocalIo, fmt::format("cannot map '{}': {}", path, errnoText(errno)));
  }
  ~MappedFile() {
    if (map_ && map_ != MAP_FAILED) ::munmap(map_, size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  io::ByteView bytes() const {
    return map_ ? io::ByteView(static_cast<const std::uint8_t*>(map_), size_) : io::ByteView();
  }
  // The bytes when they are a whole segment (of a size PostgreSQL allows); empty otherwise.
  io::ByteView segment() const { return pg::validSegmentSize(size_) ? bytes() : io::ByteView(); }

 private:
  void* map_ = nullptr;
  std::size_t size_ = 0;
};

// The segment before `name` (segment number `number`) that recovery restored into pg_wal, where
// PostgreSQL keeps what it restores under its name: of `name`'s timeline or, past a switch, an
// earlier one. Empty when there is none.
std::string previousRestored(const std::string& dataDirectory, const pg::WalName& name,
                             std::uint64_t number, std::uint32_t segmentSize) {
  if (number == 0) return {};
  const std::string suffix = pg::segmentFileName(1, number - 1, segmentSize).substr(8);
  std::string best;
  std::uint32_t bestTimeline = 0;
  DIR* dir = ::opendir((dataDirectory + "/pg_wal").c_str());
  if (!dir) return {};
  while (const dirent* entry = ::readdir(dir)) {
    auto found = pg::parseWalName(entry->d_name);
    if (found && found->kind == pg::WalKind::Segment && found->name.ends_with(suffix) &&
        found->timeline <= name.timeline && found->timeline > bestTimeline) {
      best = dataDirectory + "/pg_wal/" + found->name;
      bestTimeline = found->timeline;
    }
  }
  ::closedir(dir);
  return best;
}

}  // namespace

namespace {

// Where the replay began: backup_label's START WAL LOCATION while the file is there (PostgreSQL
// renames it once pg_control records that checkpoint), else pg_control's latest checkpoint's redo
// point; 0 when neither can be read.
std::uint64_t replayStart(const std::string& dataDirectory) {
  const std::string label = readSmallFile(dataDirectory + "/backup_label");
  constexpr std::string_view kStart = "START WAL LOCATION: ";
  if (auto at = label.find(kStart); at != std::string::npos) {
    const std::size_t from = at + kStart.size();
    return pg::parseLsn(label.substr(from, label.find(' ', from) - from)).value_or(0);
  }
  try {
    return pg::readControlData(dataDirectory).checkpointRedo;
  } catch (const Error&) {
    return 0;
  }
}

// PostgreSQL's parse_bool, as far as "false" goes: off, false, no, 0, and their prefixes.
bool falseSetting(std::string value) {
  for (auto& c : value)
    c = char(std::tolower(static_cast<unsigned char>(c)));
  return value == "0" ||
         (!value.empty() && (std::string_view("false").starts_with(value) ||
                             std::string_view("no").starts_with(value))) ||
         (value.size() >= 2 && std::string_view("off").starts_with(value));
}

}  // namespace

pg::ReplayStop replayStop(const std::string& dataDirectory) {
  pg::ReplayStop stop{.from = replayStart(dataDirectory)};
  const std::string text = readSmallFile(dataDirectory + "/postgresql.auto.conf");
  // A target given on the server's command line, or in a file postgresql.auto.conf includes,
  // would win over what is read here.
  if (readSmallFile(dataDirectory + "/postmaster.opts").find("recovery_target") !=
          std::string::npos ||
      !pg::configDirectives(text, {"include", "include_if_exists", "include_dir"}).empty())
    return stop;
  // PostgreSQL uses the last setting of a name, and refuses to start with two kinds of target.
  std::map<std::string, std::string> last;
  for (auto& d : pg::configDirectives(
           text, {"recovery_target", "recovery_target_lsn", "recovery_target_time",
                  "recovery_target_xid", "recovery_target_name", "recovery_target_inclusive"}))
    last[d.name] = d.value;
  int kinds = 0;
  for (const char* name : {"recovery_target", "recovery_target_lsn", "recovery_target_time",
                           "recovery_target_xid", "recovery_target_name"})
    kinds += !last[name].empty();
  if (kinds != 1) return stop;
  stop.inclusive = !falseSetting(last["recovery_target_inclusive"]);
  try {
    if (auto lsn = pg::parseLsn(last["recovery_target_lsn"])) {
      stop.kind = pg::ReplayStop::Kind::Lsn;
      stop.lsn = *lsn;
    } else if (!last["recovery_target_time"].empty()) {
      // TimestampTz: microseconds since 2000-01-01 00:00 UTC.
      constexpr std::int64_t kPostgresEpoch = 946684800LL * 1000000;
      UtcMicros time = parseTimestamp(last["recovery_target_time"], "recovery_target_time");
      stop.kind = pg::ReplayStop::Kind::Time;
      stop.time = time.time_since_epoch().count() - kPostgresEpoch;
    } else if (auto xid = parseDecimal(last["recovery_target_xid"]);
               xid && last["recovery_target_xid"].front() != '0') {  // 0755 is octal to it
      stop.kind = pg::ReplayStop::Kind::Xid;
      stop.xid = std::uint32_t(*xid);
    } else if (!last["recovery_target_name"].empty()) {
      stop.kind = pg::ReplayStop::Kind::Name;
      stop.name = last["recovery_target_name"];
    }
  } catch (const Error&) {
    return pg::ReplayStop{.from = stop.from};  // a time without a zone: not known here
  }
  return stop;
}

std::optional<std::uint32_t> tablespaceRecords(const std::string& path) {
  MappedFile file(path);
  if (file.segment().empty()) return 0;
  const pg::TablespaceScan scan = pg::scanTablespaceCreations(file.segment());
  if (scan.endedAtBadCrc) return std::nullopt;
  return std::uint32_t(scan.created.size());
}

void checkReplayedTablespaces(const std::string& dataDirectory, const std::string& walName,
                              const std::string& path, std::optional<std::uint32_t> recorded) {
  auto name = pg::parseWalName(walName);
  if (!name || !name->hasPageHeader()) return;
  MappedFile file(path);
  const io::ByteView bytes = file.segment();
  if (bytes.empty()) return;
  // What the recovery replays: up to its target, when tidemark wrote one. None of the segment's
  // own records when the prefetcher counted none.
  const pg::ReplayStop stop = replayStop(dataDirectory);
  const bool targeted = stop.kind != pg::ReplayStop::Kind::None;
  std::vector<pg::TablespaceCreation> created;
  if (recorded != 0u) created = pg::scanTablespaceCreations(bytes, {}, stop).created;
  // The segment before, as PostgreSQL keeps it in pg_wal: a record this segment's first page
  // continues began there (it is replayed now that this one is here), and the recovery may stop
  // there (PostgreSQL reads ahead of its replay: then nothing of this segment is replayed).
  const std::uint32_t segmentSize = std::uint32_t(bytes.size());
  const bool continues = io::getLe16(&bytes[2]) & pg::kXlpFirstIsContRecord;
  if (continues || (targeted && !created.empty())) {
    const std::string previous =
        previousRestored(dataDirectory, *name, pg::segmentNumber(*name, segmentSize), segmentSize);
    if (!previous.empty()) {
      MappedFile before(previous);
      if (before.bytes().size() == bytes.size()) {
        // The record the segment's end cuts begins in its last two pages. A target reached before
        // them is looked for (the whole segment walked) only when there is something it would
        // leave out: a target found in them, or none, gives the same or more.
        pg::TablespaceScan earlier =
            pg::scanTablespaceCreations(before.bytes(), bytes, stop, /*tailOnly=*/true);
        const bool cut = std::any_of(earlier.created.begin(), earlier.created.end(),
                                     [](const auto& c) { return c.endsInNext; });
        if (targeted && !earlier.stopped && (cut || !created.empty()))
          earlier = pg::scanTablespaceCreations(before.bytes(), bytes, stop);
        if (earlier.stopped) created.clear();
        for (auto& creation : earlier.created)
          if (creation.endsInNext) created.push_back(std::move(creation));
      }
    } else if (continues) {
      spdlog::debug("{} continues a record of a segment not in pg_wal: not read", walName);
    }
  }
  const std::optional<int> version = pg::versionFromPageMagic(io::getLe16(bytes.data()));
  for (const auto& creation : created) {
    auto held = version ? foreignTablespace(dataDirectory, creation, *version) : std::nullopt;
    if (!held) continue;
    ::unlink(path.c_str());
    throw Error(
        ErrorCode::Conflict,
        fmt::format("{} creates tablespace {} at '{}', which {}: replaying it would write into "
                    "that cluster's files",
                    walName, creation.oid, printable(creation.location), *held),
        "the recovery stops here. If that cluster runs on this host (this is a copy "
        "restored beside it), recover on another host; if the directory is what is left "
        "of the cluster this recovery replaces, move it aside; then start the server again");
  }
}

GetOutcome archiveGet(const Config& config, const std::string& walName,
                      const std::string& destination) {
  auto started = std::chrono::steady_clock::now();
  auto elapsedMs = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 started)
        .count();
  };
  // PostgreSQL runs restore_command in the data directory: its pg_control says which cluster
  // recovers. One that is there but cannot be read is an error, never a guess.
  std::optional<std::uint64_t> systemId = pg::controlSystemId(".");
  if (!systemId && ::access("global/pg_control", F_OK) == 0)
    throw Error(ErrorCode::LocalIo, "cannot read the system identifier from global/pg_control",
                "check the data directory's files and permissions");
  // Root refuses a data directory of another user's before it writes there (docs/decisions.md).
  if (systemId) files::refuseRootIn(".", "the data directory", "tidemark-archive-get");
  // Prefetch works for segments, in a data directory (whose recovery it follows).
  auto name = pg::parseWalName(walName);
  std::optional<std::string> folder =
      systemId ? spool::stanzaSpool(config, std::string(".")) : std::nullopt;
  if (folder && config.archive.getAhead > 0 && name && name->kind == pg::WalKind::Segment) {
    PrefetchContext prefetch{.config = config,
                             .folder = *folder,
                             .systemId = *systemId,
                             .repository = repo::describeRepository(config)};
    requestPrefetch(prefetch, walName);
    if (auto taken = takePrefetched(prefetch, walName, destination)) {
      checkReplayedTablespaces(".", walName, destination, taken->tablespaceRecords);
      spdlog::info("restored {} from the prefetch spool, {} ms", walName, elapsedMs());
      // The file is in place: nothing after this may fail the call (255 would stop recovery).
      if (::access(repo::kLeaseMarkerFile, F_OK) == 0) {
        try {
          renewLease(repo::openRepository(config), ".");
        } catch (const Error& e) {
          spdlog::warn("could not renew the recovery lease: {}", e.what());
        }
      }
      return GetOutcome::Restored;
    }
  }
  repo::Repository repository = repo::openRepository(config);
  GetParams params{.walName = walName, .destination = destination, .controlSystemId = systemId};
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    try {
      GetResult result = getWalFile(repository, params);
      if (result.outcome == GetOutcome::Restored && systemId)
        checkReplayedTablespaces(".", walName, destination);
      auto ms = elapsedMs();
      if (result.outcome == GetOutcome::NotFound) {
        // PostgreSQL probes for files that do not exist (each timeline's .history): stay quiet.
        spdlog::debug("{} is not in the repository", walName);
      } else {
        spdlog::info("restored {}: {} ({} stored), {} ms", walName,
                     humanBytes(result.summary.plainSize), humanBytes(result.summary.storedSize),
                     ms);
      }
      renewLease(repository, ".");
      return result.outcome;
    } catch (const Error& e) {
      // Transient: a timeout, a reset, a 5xx, EIO or ESTALE on NFS. Not a 403 or a missing root.
      bool retry = e.transient() && attempt < kAttempts;
      if (!retry) throw;
      auto wait = std::chrono::milliseconds(250 << attempt);
      spdlog::warn("{} (attempt {} of {}, retrying in {} ms)", e.what(), attempt, kAttempts,
                   wait.count());
      std::this_thread::sleep_for(wait);
    }
  }
}

void renewLease(const repo::Repository& repository, const std::string& dataDirectory) {
  std::string path = dataDirectory + "/" + repo::kLeaseMarkerFile;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;  // no recovery lease
  try {
    auto marker = repo::parseLeaseMarker(readSmallFile(path, 64u << 10));
    if (!marker) {
      spdlog::warn("'{}' is not a lease marker: the recovery's lease is not renewed", path);
      return;
    }
    if (marker->stanza != repository.stanza()) return;
    std::int64_t age = std::time(nullptr) - std::int64_t(st.st_mtime);
    if (age >= 0 && age < marker->lease.timeoutSeconds / 4) return;
    auto stanza = repo::loadStanza(repository);
    if (!stanza || stanza->identity() != marker->stanzaId) return;
    repo::writeLease(repository, marker->stanzaId, marker->lease);
    if (::utimensat(AT_FDCWD, path.c_str(), nullptr, 0) != 0)
      spdlog::warn("cannot touch '{}': {}", path, errnoText(errno));
    spdlog::debug("renewed recovery lease {}", marker->lease.id);
  } catch (const Error& e) {
    // The file is fetched; a lease that could not be renewed now is tried on the next call.
    spdlog::warn("could not renew the recovery lease of '{}': {}", path, e.what());
  }
}

int failureStatus(ErrorCode code, const std::string& dataDirectory) {
  if (::access((dataDirectory + "/standby.signal").c_str(), F_OK) == 0) return exitStatus(code);
  return 255;
}

}  // namespace tidemark::archive
