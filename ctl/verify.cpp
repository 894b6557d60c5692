// tidemark verify: the worker (inventory, parallel read-back, backup structure, WAL continuity,
// history files, the incremental record), its renderings and the command.
#include "ctl/verify.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <unordered_map>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/base/time.h"
#include "common/base/version.h"
#include "common/files/tar.h"
#include "common/io/hash.h"
#include "common/pg/lsn.h"
#include "common/pg/timeline.h"
#include "common/pg/wal.h"
#include "common/recovery/catalog.h"
#include "common/repo/backup.h"
#include "common/repo/envelope.h"
#include "common/repo/generation.h"
#include "common/repo/layout.h"
#include "common/repo/marks.h"
#include "common/repo/stanza.h"
#include "common/repo/state.h"

namespace tidemark::ctl {

namespace {

using Json = nlohmann::ordered_json;
namespace kind = finding_kind;

// The verification record's subject (repo/state.h) and the most it may hold: records are read
// whole and refused above 64 MiB.
constexpr const char* kRecordSubject = "objects";
// The subject of the records of each run's result.
constexpr const char* kResultSubject = "result";
constexpr std::size_t kRecordLimit = 60u << 20;
// A manifest is read into memory to be parsed; one larger than this is verified like any object
// but its content is not checked.
constexpr std::uint64_t kManifestLimit = 1ull << 30;

constexpr std::size_t kNoBackup = static_cast<std::size_t>(-1);

enum class Role { Wal, Archive, Manifest, Other };

// One object to verify, as listed.
struct Item {
  std::string path;
  Role role = Role::Wal;
  std::uint64_t storedSize = 0;
  std::int64_t modified = 0;
  std::optional<std::uint64_t> maxPlainSize;
  std::size_t backup = kNoBackup;  // index into the run's backups (every generation's)
  std::size_t object = 0;          // index into that backup's objects
  std::string walName;             // for WAL objects, the file name
  int generation = 0;              // for WAL objects, the generation whose folder holds it
  std::uint64_t systemId = 0;      // for WAL objects, that generation's cluster
};

struct Member {
  std::string path;
  std::uint64_t size = 0;
  std::string checksum;  // as the manifest writes it; "" when not computed
};

// Collects a tar archive's file members (path, size, checksum) while its bytes stream past. A
// tar that does not parse is recorded, not thrown: the object's own checks still run to the end.
class MemberCollector final : public files::TarReader::Handler, public io::Sink {
 public:
  explicit MemberCollector(const std::string& algorithm) : checksum_(algorithm), reader_(*this) {}

  void begin(const files::TarEntry& entry) override {
    inFile_ = entry.type == files::TarEntry::Type::File;
    if (inFile_) current_ = Member{entry.path, entry.size, {}};
  }
  void data(io::ByteView bytes) override {
    if (inFile_) checksum_.update(bytes);
  }
  void end() override {
    if (!inFile_) return;
    if (checksum_.valid()) current_.checksum = checksum_.finish();
    members.push_back(std::move(current_));
    inFile_ = false;
  }

  void write(io::ByteView bytes) override {
    if (error) return;
    try {
      reader_.write(bytes);
    } catch (const Error& e) {
      error = e.what();
    }
  }
  void close() override {
    if (error) return;
    try {
      reader_.close();
    } catch (const Error& e) {
      error = e.what();
    }
  }

  std::vector<Member> members;
  std::optional<std::string> error;

 private:
  ManifestChecksum checksum_;
  Member current_;
  bool inFile_ = false;
  files::TarReader reader_;
};

// What reading one object found.
struct Outcome {
  bool read = false;  // read to the end and every check of the object passed
  bool attempted = false;
  std::uint64_t storedBytes = 0, plainBytes = 0;
  std::vector<VerifyFinding> findings;
  std::vector<Member> members;  // archives
  std::optional<std::string> tarError;
  std::optional<std::string> manifest;  // the manifest's text
};

std::string describeError(const Error& e) {
  std::string text = e.what();
  if (!e.hint().empty()) text += " (" + e.hint() + ")";
  return text;
}

// The detail of a finding about a WAL-related file of `generation`: file names repeat across the
// generations of an upgraded stanza, so a later generation's says whose it is.
std::string inGeneration(int generation, std::string detail) {
  return generation > 1 ? fmt::format("generation {}: {}", generation, detail) : detail;
}

// Reads and checks one object through `repository` (this thread's handle).
Outcome verifyItem(const repo::Repository& repository, const Item& item,
                   const std::string& manifestChecksums) {
  Outcome outcome;
  outcome.attempted = true;
  try {
    std::optional<repo::ObjectSummary> summary;
    if (item.role == Role::Archive) {
      MemberCollector collector(manifestChecksums);
      summary = repository.readObject(item.path, collector, item.maxPlainSize);
      outcome.members = std::move(collector.members);
      outcome.tarError = std::move(collector.error);
    } else if (item.role == Role::Manifest && item.storedSize <= kManifestLimit) {
      io::MemorySink sink(kManifestLimit);
      summary = repository.readObject(item.path, sink, kManifestLimit);
      if (summary) outcome.manifest = std::string(sink.text());
    } else if (auto name = pg::parseWalName(item.walName);
               item.role == Role::Wal && name && name->hasPageHeader()) {
      // A segment must be the one its name says, of its generation's cluster, as archive-get
      // checks before it hands it to PostgreSQL: one stored under another segment's name would
      // pass every other check and stop the recovery that needs it.
      io::NullSink discard;
      pg::HeaderCapture header(discard);
      summary = repository.readObject(item.path, header, item.maxPlainSize);
      if (summary) {
        pg::LongPageHeader page = pg::checkSegmentHeader(header.header(), *name, summary->plainSize,
                                                         item.path, pg::kStoredSegmentHint);
        if (page.systemId != item.systemId)
          throw Error(ErrorCode::Corrupt,
                      fmt::format("'{}' holds WAL of the cluster with system identifier {}, not "
                                  "of this generation's ({})",
                                  item.path, page.systemId, item.systemId),
                      std::string(pg::kStoredSegmentHint));
      }
    } else {
      summary = repository.verifyObject(item.path, item.maxPlainSize);
    }
    if (!summary) {
      // Listed (or named by backup.json) a moment ago, and gone: a finding, unless a WAL file
      // that expire deleted meanwhile (the caller drops those below a low-water mark).
      outcome.findings.push_back(
          {item.path, kind::kObjectMissing,
           "listed, but a read of it found nothing (deleted meanwhile, or a storage that lists "
           "what it does not serve)"});
      outcome.attempted = false;
      return outcome;
    }
    outcome.read = true;
    outcome.storedBytes = summary->storedSize;
    outcome.plainBytes = summary->plainSize;
  } catch (const Error& e) {
    switch (e.code()) {
      case ErrorCode::Corrupt:
      case ErrorCode::InvalidInput:  // a segment that is not the one its name says
        outcome.findings.push_back({item.path, kind::kObjectCorrupt, describeError(e)});
        break;
      case ErrorCode::Config:
      case ErrorCode::Storage:
      case ErrorCode::Unsupported:
      case ErrorCode::LocalIo:
        outcome.findings.push_back({item.path, kind::kObjectUnreadable, describeError(e)});
        break;
      default:
        throw;
    }
  }
  return outcome;
}

// Reads every item, `jobs` at a time, each thread with a connection of its own.
std::vector<Outcome> readAll(const repo::Repository& repository, const std::vector<Item>& items,
                             const std::vector<std::string>& checksumsOf, unsigned jobs) {
  std::vector<Outcome> outcomes(items.size());
  if (items.empty()) return outcomes;
  // Largest first, so that one big archive does not start last and run alone.
  std::vector<std::size_t> order(items.size());
  for (std::size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return items[a].storedSize > items[b].storedSize;
  });
  auto checksums = [&](const Item& item) -> const std::string& {
    static const std::string none;
    return item.backup == kNoBackup ? none : checksumsOf[item.backup];
  };
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex failureMutex;
  std::exception_ptr failure;
  auto work = [&](const repo::Repository& handle) {
    try {
      while (!stop) {
        std::size_t at = next++;
        if (at >= order.size()) break;
        const Item& item = items[order[at]];
        outcomes[order[at]] = verifyItem(handle, item, checksums(item));
      }
    } catch (...) {
      std::lock_guard lock(failureMutex);
      if (!failure) failure = std::current_exception();
      stop = true;
    }
  };
  if (jobs <= 1 || !repository.canOpenAnother() || items.size() == 1) {
    work(repository);
  } else {
    std::vector<std::thread> threads;
    const std::size_t count = std::min<std::size_t>(jobs, items.size());
    for (std::size_t t = 0; t < count; ++t)
      threads.emplace_back([&] {
        std::optional<repo::Repository> handle;
        try {
          handle.emplace(repository.another());
        } catch (...) {
          std::lock_guard lock(failureMutex);
          if (!failure) failure = std::current_exception();
          stop = true;
          return;
        }
        work(*handle);
      });
    for (auto& thread : threads)
      thread.join();
  }
  if (failure) std::rethrow_exception(failure);
  return outcomes;
}

// ---- the verification record -----------------------------------------------------------------

struct Verified {
  std::uint64_t size = 0;
  std::int64_t modified = 0;
  std::int64_t verified = 0;
};

std::map<std::string, Verified> parseRecord(const std::string& content, const std::string& where) {
  std::map<std::string, Verified> out;
  try {
    auto doc = nlohmann::json::parse(content);
    for (const auto& entry : doc.at("objects"))
      out[entry.at("path").get<std::string>()] = {entry.at("size").get<std::uint64_t>(),
                                                  entry.at("modified").get<std::int64_t>(),
                                                  entry.at("verified").get<std::int64_t>()};
  } catch (const std::exception& e) {
    throw Error(ErrorCode::Corrupt,
                fmt::format("the verification record '{}' cannot be read: {}", where, e.what()));
  }
  return out;
}

std::string recordJson(const std::map<std::string, Verified>& entries, std::int64_t now) {
  // Oldest verifications are dropped first when the record would be too large: those objects
  // are simply read again by the next run.
  std::vector<std::pair<std::string, Verified>> list(entries.begin(), entries.end());
  std::size_t total = 0;
  std::vector<std::string> lines;
  lines.reserve(list.size());
  for (const auto& [path, v] : list) {
    Json entry = {
        {"path", path}, {"size", v.size}, {"modified", v.modified}, {"verified", v.verified}};
    lines.push_back(entry.dump());
    total += lines.back().size() + 2;
  }
  if (total > kRecordLimit) {
    std::vector<std::size_t> byAge(list.size());
    for (std::size_t i = 0; i < byAge.size(); ++i)
      byAge[i] = i;
    std::sort(byAge.begin(), byAge.end(), [&](std::size_t a, std::size_t b) {
      return list[a].second.verified < list[b].second.verified;
    });
    for (std::size_t i : byAge) {
      if (total <= kRecordLimit) break;
      total -= lines[i].size() + 2;
      lines[i].clear();
    }
  }
  std::string out = fmt::format("{{\"format\": 1, \"written\": \"{}\", \"objects\": [\n",
                                formatUtc(UtcSeconds(std::chrono::seconds(now))));
  bool first = true;
  for (const auto& line : lines) {
    if (line.empty()) continue;
    out += (first ? "  " : ",\n  ") + line;
    first = false;
  }
  out += "\n]}\n";
  return out;
}

// ---- inventory ---------------------------------------------------------------------------------

// Every WAL-related object (segments, .partial, .backup and .history files) in the WAL folder of
// `generation`, as listed.
std::vector<Item> listWal(const repo::Repository& repository, const repo::Generation& generation) {
  std::vector<Item> items;
  storage::Storage& storage = repository.storage();
  const std::string& stanza = repository.stanza();
  const std::string directory = repo::walDirectory(stanza, generation.number);
  std::vector<std::string> folders;
  auto add = [&](const storage::ListEntry& entry) {
    auto name = pg::parseWalName(entry.name);
    if (!name) return;
    items.push_back({.path = repo::walObject(stanza, generation.number, *name),
                     .role = Role::Wal,
                     .storedSize = entry.size,
                     .modified = entry.modified,
                     .maxPlainSize = pg::maxWalFileSize(*name, generation.walSegmentSize),
                     .walName = entry.name,
                     .generation = generation.number,
                     .systemId = generation.systemId});
  };
  storage.list(directory, [&](const storage::ListEntry& entry) {
    if (entry.directory)
      folders.push_back(entry.name);
    else
      add(entry);
  });
  for (const auto& folder : folders)
    storage.list(storage::joinPath(directory, folder), [&](const storage::ListEntry& entry) {
      if (!entry.directory) add(entry);
    });
  return items;
}

std::string hex(const io::Sha256Digest& digest) {
  return io::toHex(digest);
}

// ---- the checks that read no object in full
// ------------------------------------------------------

// The checks of one generation of the stanza: its backups against its own WAL and histories.
class Checker {
 public:
  Checker(const repo::Repository& repository, const recovery::Catalog& catalog,
          std::vector<VerifyFinding>& findings, const std::vector<repo::GapRecord>& dropped)
      : repository_(repository), catalog_(catalog), findings_(findings), dropped_(dropped) {}

  const recovery::Catalog& catalog() const { return catalog_; }
  int generation() const { return catalog_.generation().number; }

  void add(std::string object, const char* kind, std::string detail) {
    findings_.push_back({std::move(object), kind, std::move(detail)});
  }
  // A finding about WAL-related file `name` of this generation.
  void addWal(const std::string& name, const char* kind, std::string detail) {
    add(walPath(name), kind, inGeneration(generation(), std::move(detail)));
  }

  // Where this generation stores WAL-related file `name`.
  std::string walPath(const std::string& name) const {
    return repo::walObject(repository_.stanza(), generation(), *pg::parseWalName(name));
  }

  // backup.json files that could not be used.
  void damagedBackups() {
    if (catalog_.damagedBackups().empty()) return;
    std::vector<std::string> labels;
    repository_.storage().list(repo::backupsDirectory(repository_.stanza()),
                               [&](const storage::ListEntry& entry) {
                                 if (entry.directory) labels.push_back(entry.name);
                               });
    for (const auto& why : catalog_.damagedBackups()) {
      std::string object = repo::backupsDirectory(repository_.stanza());
      for (const auto& label : labels)
        if (why.find(label) != std::string::npos)
          object = repo::backupInfoFile(repository_.stanza(), label);
      add(object, kind::kBackupDamaged,
          why + ": the backup is not offered for recovery (nor verified further)");
    }
  }

  // The objects backup.json names: present, the stored size it records, and a trailer (read by a
  // small ranged request) that records the plain size and SHA-256 backup.json records. Returns
  // the backup's objects as items to read, as those of the run's backup `index`.
  std::vector<Item> backupObjects(const repo::BackupInfo& backup, std::size_t index,
                                  std::set<std::string>& trailerDamaged) {
    const std::string& stanza = repository_.stanza();
    std::map<std::string, storage::ListEntry> listed;
    repository_.storage().list(repo::backupDirectory(stanza, backup.label),
                               [&](const storage::ListEntry& entry) {
                                 if (!entry.directory) listed[entry.name] = entry;
                               });
    std::vector<Item> items;
    // The archives first, with the indexes they have in backup.objects; config.tar after them.
    const std::vector<repo::BackupObject> objects = backup.storedObjects();
    for (std::size_t i = 0; i < objects.size(); ++i) {
      const repo::BackupObject& object = objects[i];
      std::string path = repo::backupObject(stanza, backup.label, object.name);
      auto it = listed.find(object.name);
      if (it == listed.end()) {
        add(path, kind::kObjectMissing,
            fmt::format("backup {}'s backup.json names '{}', which the repository does not hold: "
                        "the backup cannot be restored",
                        backup.label, object.name));
        continue;
      }
      const storage::ListEntry& entry = it->second;
      // config.tar (the server's configuration files) is read and checked, not compared with the
      // manifest, which lists only the data directory's files.
      bool isArchive = repo::isDataArchive(object);
      items.push_back({.path = path,
                       .role = object.name == "backup_manifest" ? Role::Manifest
                               : isArchive                      ? Role::Archive
                                                                : Role::Other,
                       .storedSize = entry.size,
                       .modified = entry.modified,
                       .backup = index,
                       .object = i});
      if (object.storedSize != 0 && object.storedSize != entry.size)
        add(path, kind::kBackupMismatch,
            fmt::format("backup.json records {} stored bytes, the repository holds {}",
                        object.storedSize, entry.size));
      trailer(path, entry.size, object, trailerDamaged);
    }
    return items;
  }

  void trailer(const std::string& path, std::uint64_t storedSize, const repo::BackupObject& object,
               std::set<std::string>& trailerDamaged) {
    if (storedSize < repo::kTrailerSize + 20) {
      trailerDamaged.insert(path);
      add(path, kind::kObjectCorrupt,
          fmt::format("{} stored bytes cannot hold an object's header and trailer", storedSize));
      return;
    }
    io::MemorySink sink(repo::kTrailerSize);
    if (!repository_.storage().read(
            path, sink, {.offset = storedSize - repo::kTrailerSize, .length = repo::kTrailerSize}))
      return;  // gone since the listing: the read-back says so
    const io::Buffer& bytes = sink.data();
    if (bytes.size() != repo::kTrailerSize ||
        !std::equal(repo::kTrailerMagic.begin(), repo::kTrailerMagic.end(), bytes.begin() + 40)) {
      trailerDamaged.insert(path);
      add(path, kind::kObjectCorrupt, "its trailer is damaged (no trailer magic): truncated?");
      return;
    }
    std::uint64_t plainSize = 0;
    for (int i = 7; i >= 0; --i)
      plainSize = plainSize << 8 | bytes[std::size_t(i)];
    io::Sha256Digest sha{};
    std::copy(bytes.begin() + 8, bytes.begin() + 40, sha.begin());
    if (plainSize != object.size)
      add(path, kind::kBackupMismatch,
          fmt::format("backup.json records {} plain bytes, the object's trailer {}", object.size,
                      plainSize));
    if (sha != object.sha256)
      add(path, kind::kBackupMismatch,
          fmt::format("backup.json records SHA-256 {}, the object's trailer {}", hex(object.sha256),
                      hex(sha)));
  }

  // A gap that ends below its timeline's low-water mark was deleted by tidemark expire on
  // purpose (the WAL between a keep-marked backup's stop and the oldest backup a rule keeps):
  // every backup's own WAL is still checked, start to stop (ownWal).
  bool expiredOnPurpose(const recovery::WalGap& gap) {
    auto first = pg::parseWalName(gap.first);
    return first && first->timeline == pg::parseWalName(gap.last)->timeline &&
           belowLowWater(gap.last);
  }

  // Whether WAL file `name` lies below its timeline's low-water mark (expired on purpose). A mark
  // that cannot be read counts as none: the gap is reported.
  bool belowLowWater(const std::string& name) {
    auto wal = pg::parseWalName(name);
    if (!wal || wal->kind == pg::WalKind::History) return false;
    auto [it, fresh] = marks_.try_emplace(wal->timeline);
    if (fresh) try {
        it->second = repo::lowWaterMark(repository_, catalog_.stanza().identity(), generation(),
                                        wal->timeline);
      } catch (const Error&) {
        it->second.reset();
      }
    return it->second && pg::segmentNumber(*wal, catalog_.segmentSize()) < *it->second;
  }

  // Each backup's own WAL, start to stop, also below a low-water mark (a keep-marked backup).
  void ownWal() {
    for (const auto& backup : catalog_.backups()) {
      const pg::TimelineHistory* history = historyOf(backup.timeline);
      if (!history) continue;
      for (const auto& gap : catalog_.gaps(*history, backup.firstSegment(), backup.lastSegment()))
        if (expiredOnPurpose(gap))  // otherwise continuity() reports it
          addWal(gap.first, kind::kWalGap,
                 fmt::format("missing {}: backup {} cannot reach consistency without it",
                             gap.describe(), backup.label));
    }
  }

  // WAL continuity: from the oldest backup on each timeline's history to the newest file on that
  // path (or the end of the backup's own WAL), every file PostgreSQL would read must be there.
  // WAL older than every backup is not needed (and may have been expired on purpose).
  void continuity() {
    std::set<std::pair<std::string, std::string>> reported;
    for (std::uint32_t timeline : catalog_.timelines()) {
      const pg::TimelineHistory* history = historyOf(timeline);
      if (!history) continue;
      std::optional<std::uint64_t> from, needed;
      std::string oldest;
      for (const auto& backup : catalog_.backups()) {
        if (!recovery::Catalog::onHistory(backup, *history)) continue;
        if (!from || backup.firstSegment() < *from) {
          from = backup.firstSegment();
          oldest = backup.label;
        }
        needed = std::max(needed.value_or(0), backup.lastSegment());
      }
      if (!from) continue;
      std::uint64_t last = std::max(*needed, catalog_.newestOnPath(*history, *from).value_or(0));
      for (const auto& gap : catalog_.gaps(*history, *from, last)) {
        if (expiredOnPurpose(gap)) continue;
        if (!reported.insert({gap.first, gap.last}).second) continue;
        const repo::GapRecord* record =
            recovery::droppedBy(dropped_, catalog_.generation().systemId, gap);
        addWal(gap.first, kind::kWalGap,
               fmt::format("missing {}: a recovery from backup {} (or a later one before the gap) "
                           "along timeline {} stops there{}",
                           gap.describe(), oldest, timeline,
                           record ? " (" + recovery::describeDropped(*record) + ")" : ""));
      }
    }
  }

  // History files: present for every timeline above 1 that has WAL or a backup or is an
  // ancestor, readable, agreeing with their parents' files, and no segment of a timeline before
  // it began.
  void histories() {
    std::set<std::uint32_t> needed;
    for (std::uint32_t timeline : catalog_.timelines())
      if (timeline > 1) needed.insert(timeline);
    std::set<std::uint32_t> missing;
    for (std::uint32_t timeline : needed) {
      if (!catalog_.hasHistoryFile(timeline)) {
        missing.insert(timeline);
        continue;
      }
      const pg::TimelineHistory* history = historyOf(timeline);
      if (!history) continue;
      for (std::size_t i = 0; i < history->parents.size(); ++i) {
        const pg::TimelineSwitch& parent = history->parents[i];
        if (parent.timeline >= timeline) {
          addWal(pg::historyFileName(timeline), kind::kHistoryInconsistent,
                 fmt::format("{} names timeline {} as an ancestor, which is not older",
                             pg::historyFileName(timeline), parent.timeline));
          continue;
        }
        if (parent.timeline <= 1) continue;
        if (!catalog_.hasHistoryFile(parent.timeline)) {
          missing.insert(parent.timeline);
          continue;
        }
        const pg::TimelineHistory* parentHistory = historyOf(parent.timeline);
        if (!parentHistory) continue;
        bool agrees = parentHistory->parents.size() == i;
        for (std::size_t k = 0; agrees && k < i; ++k)
          agrees = parentHistory->parents[k].timeline == history->parents[k].timeline &&
                   parentHistory->parents[k].switchpoint == history->parents[k].switchpoint;
        if (!agrees)
          addWal(pg::historyFileName(timeline), kind::kHistoryInconsistent,
                 fmt::format("{} and {} disagree about the ancestry of timeline {}",
                             pg::historyFileName(timeline), pg::historyFileName(parent.timeline),
                             parent.timeline));
      }
      if (!history->parents.empty()) {
        std::uint64_t begin = history->parents.back().switchpoint;
        std::uint64_t firstSegment = begin == 0 ? 0 : (begin - 1) / catalog_.segmentSize();
        auto it = catalog_.wal().segments.find(timeline);
        if (it != catalog_.wal().segments.end() && !it->second.empty() &&
            it->second.begin()->first < firstSegment)
          addWal(
              pg::segmentFileName(timeline, it->second.begin()->first, catalog_.segmentSize()),
              kind::kHistoryInconsistent,
              fmt::format("timeline {} holds this segment, but {} says the timeline began at {}, "
                          "in segment {}",
                          timeline, pg::historyFileName(timeline), pg::formatLsn(begin),
                          pg::segmentFileName(timeline, firstSegment, catalog_.segmentSize())));
      }
    }
    for (std::uint32_t timeline : missing) {
      std::size_t segments = 0;
      if (auto it = catalog_.wal().segments.find(timeline); it != catalog_.wal().segments.end())
        segments = it->second.size();
      addWal(pg::historyFileName(timeline), kind::kHistoryMissing,
             fmt::format("timeline {} ({}) has no {}: its parent and switch point are "
                         "unknown, so a recovery cannot follow it (and a promotion after one "
                         "would write an incomplete history)",
                         timeline, plural(segments, "segment", "segments"),
                         pg::historyFileName(timeline)));
    }
  }

 private:
  // The history of `timeline`, or nullptr when its file is damaged (reported once).
  const pg::TimelineHistory* historyOf(std::uint32_t timeline) {
    if (badHistories_.count(timeline)) return nullptr;
    try {
      return &catalog_.history(timeline);
    } catch (const Error& e) {
      if (e.code() != ErrorCode::Corrupt && e.code() != ErrorCode::Config &&
          e.code() != ErrorCode::Unsupported)
        throw;
      badHistories_.insert(timeline);
      // A key that is not configured, or a newer format: the file may be sound.
      addWal(pg::historyFileName(timeline),
             e.code() == ErrorCode::Corrupt ? kind::kHistoryDamaged : kind::kObjectUnreadable,
             describeError(e));
      return nullptr;
    }
  }

  const repo::Repository& repository_;
  const recovery::Catalog& catalog_;
  std::vector<VerifyFinding>& findings_;
  const std::vector<repo::GapRecord>& dropped_;
  std::map<std::uint32_t, std::optional<std::uint64_t>> marks_;
  std::set<std::uint32_t> badHistories_;
};

// ---- the checks of a backup's content
// ------------------------------------------------------------

// The manifest against backup.json (WAL ranges) and, when every archive was read, against the
// archives' members (paths, sizes and, where computed, checksums).
void checkBackupContent(const repo::Repository& repository, const repo::BackupInfo& backup,
                        const std::vector<Item>& items, const std::vector<Outcome>& outcomes,
                        std::vector<VerifyFinding>& findings) {
  const Item* manifestItem = nullptr;
  const Outcome* manifestOutcome = nullptr;
  bool allArchivesRead = true;
  std::map<std::string, Member> members;  // by data-directory path
  std::vector<VerifyFinding> local;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const Item& item = items[i];
    if (item.role == Role::Manifest) {
      manifestItem = &item;
      manifestOutcome = &outcomes[i];
    }
    if (item.role != Role::Archive) continue;
    if (!outcomes[i].read) {
      allArchivesRead = false;
      continue;
    }
    if (outcomes[i].tarError) {
      local.push_back(
          {item.path, kind::kManifestMismatch,
           "the archive is intact but is not a valid tar archive: " + *outcomes[i].tarError});
      allArchivesRead = false;
      continue;
    }
    const repo::BackupObject& object = backup.objects[item.object];
    std::string prefix =
        object.tablespaceOid == 0 ? "" : fmt::format("pg_tblspc/{}/", object.tablespaceOid);
    for (const Member& member : outcomes[i].members)
      members[prefix + member.path] = member;
  }
  if (!manifestItem) {
    // Named but not held: the object-missing finding says so already.
    if (std::any_of(backup.objects.begin(), backup.objects.end(),
                    [](const repo::BackupObject& o) { return o.name == "backup_manifest"; }))
      return;
    findings.push_back(
        {repo::backupObject(repository.stanza(), backup.label, "backup_manifest"),
         kind::kBackupMismatch,
         fmt::format("backup.json of backup {} lists no backup_manifest", backup.label)});
    return;
  }
  if (!manifestOutcome->read || !manifestOutcome->manifest) {
    findings.insert(findings.end(), local.begin(), local.end());
    return;
  }
  const std::string& path = manifestItem->path;
  Manifest manifest;
  auto problems = parseManifest(*manifestOutcome->manifest, manifest);
  for (const auto& problem : problems)
    local.push_back({path, kind::kManifestMismatch, "the manifest is damaged: " + problem});
  if (manifest.walRanges.empty() && manifest.files.empty() && !problems.empty()) {
    // Nothing could be read from it: the problems above say why.
  } else if (manifest.walRanges.empty()) {
    local.push_back({path, kind::kManifestMismatch, "the manifest lists no WAL-Ranges"});
  } else {
    const auto& first = manifest.walRanges.front();
    const auto& last = manifest.walRanges.back();
    if (first.timeline != backup.timeline || first.start != backup.startLsn ||
        last.end != backup.stopLsn)
      local.push_back(
          {path, kind::kManifestMismatch,
           fmt::format("the manifest's WAL-Ranges (timeline {} from {} to {}) do not match "
                       "backup.json (timeline {} from {} to {})",
                       first.timeline, pg::formatLsn(first.start), pg::formatLsn(last.end),
                       backup.timeline, pg::formatLsn(backup.startLsn),
                       pg::formatLsn(backup.stopLsn))});
  }
  if (allArchivesRead && !manifest.files.empty()) {
    std::size_t reported = 0;
    auto report = [&](const std::string& object, std::string detail) {
      // One damaged archive could mean thousands of lines: the first few name the problem.
      if (++reported <= 20) local.push_back({object, kind::kManifestMismatch, std::move(detail)});
    };
    std::set<std::string> listed;
    for (const ManifestFile& file : manifest.files) {
      listed.insert(file.path);
      auto it = members.find(file.path);
      if (it == members.end()) {
        report(path, fmt::format("the manifest lists '{}', which no archive holds", file.path));
        continue;
      }
      if (it->second.size != file.size)
        report(path, fmt::format("'{}' holds {} bytes in the archive, the manifest says {}",
                                 file.path, it->second.size, file.size));
      else if (!file.checksum.empty() && !it->second.checksum.empty() &&
               it->second.checksum != file.checksum)
        report(path, fmt::format("'{}' has {} checksum {} in the archive, the manifest says {}",
                                 file.path, file.algorithm, it->second.checksum, file.checksum));
    }
    for (const auto& [memberPath, member] : members)
      if (!listed.count(memberPath))
        report(path,
               fmt::format("the archives hold '{}', which the manifest does not list", memberPath));
    if (reported > 20)
      local.push_back({path, kind::kManifestMismatch,
                       fmt::format("... and {} more differences between the manifest and the "
                                   "archives",
                                   reported - 20)});
  }
  findings.insert(findings.end(), local.begin(), local.end());
}

}  // namespace

std::map<std::string, std::uint64_t> VerifyReport::counts() const {
  std::map<std::string, std::uint64_t> out;
  for (const auto& finding : findings)
    ++out[finding.kind];
  return out;
}

std::string verifyFix(const VerifyFinding& finding) {
  const std::string& object = finding.object;
  const std::string file = object.substr(object.rfind('/') + 1);
  // WAL-related files keep their PostgreSQL names; a backup's objects never have one.
  const std::optional<pg::WalName> wal = pg::parseWalName(file);
  const std::string_view k = finding.kind;
  // archive-push run by hand stores a file PostgreSQL archived before (docs/archiving.md), from
  // the server that archived it: after pg_upgrade WAL names repeat (the detail names the
  // generation), and a standby's copy of a segment may be one it is still receiving.
  auto push = [](const std::string& name, bool moveAside) {
    return fmt::format(
        "if the server that archived it still has {} in pg_wal: {}"
        "push it as archive_command does (tidemark-archive-push [its options] "
        "pg_wal/{}, in the data directory, as the server's user)",
        name, moveAside ? "move this object aside and " : "", name);
  };
  // Without the file, what is left to do.
  auto otherwise = [&](bool missing) -> std::string {
    switch (wal->kind) {
      case pg::WalKind::History:
        return "rebuild it (the parent timeline's history file plus a line <parent "
               "timeline><TAB><switch LSN><TAB><reason>; pg_waldump shows the switch) and push it "
               "as above";
      case pg::WalKind::Segment:
        return "take a new base backup (a recovery from an older backup stops at this file)";
      case pg::WalKind::Partial:  // read only while the next timeline's first segment is missing
        return "make sure the next timeline's first segment is archived (a recovery then "
               "never reads this file)" +
               std::string(missing ? "" : ", and move this object aside");
      default:  // a .backup file, which no recovery reads
        return missing ? "nothing is lost, no recovery reads it"
                       : "no recovery reads it: move this object aside";
    }
  };
  if (k == kind::kObjectCorrupt || k == kind::kHistoryDamaged)
    return wal ? fmt::format("{}; if none has it: {}", push(file, true), otherwise(false))
               : "take a new base backup: this backup cannot be restored";
  if (k == kind::kObjectMissing || k == kind::kHistoryMissing)
    return wal ? fmt::format("{}; if none has it: {}{}", push(file, false), otherwise(true),
                             k == kind::kObjectMissing
                                 ? "; find out what deletes objects from the repository"
                                 : "")
               : "take a new base backup, and find out what deletes objects from the repository";
  if (k == kind::kWalGap)
    return fmt::format(
        "take a new base backup now (a recovery from an older backup stops at the "
        "gap); for each missing file, {}",
        push("<file>", false));
  if (k == kind::kObjectUnreadable)
    return "configure the key that wrote it ([encryption]), upgrade tidemark (an object of a "
           "newer format), or repair the storage or its permissions (the detail says which "
           "failed); then verify again; if it stays unreadable: as for object-corrupt";
  if (k == kind::kBackupDamaged)
    return "the backup is not offered for recovery: take a new base backup";
  if (k == kind::kBackupMismatch || k == kind::kManifestMismatch)
    return "the backup cannot be trusted: take a new base backup";
  if (k == kind::kNoBackup) return "take a base backup (tidemark-basebackup)";
  if (k == kind::kHistoryInconsistent)
    return "find out which server wrote which file: a recovery along this timeline is unreliable";
  if (k == kind::kStanzaDamaged)
    return "restore the file from a copy (docs/encryption.md, tidemark stanza-create): nothing "
           "else could be checked";
  return {};
}

VerifyReport verifyRepository(const repo::Repository& repository, const VerifyOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  const std::int64_t now = options.now != 0 ? options.now : utcNow().time_since_epoch().count();
  VerifyReport report;
  report.stanza = repository.stanza();
  report.repository = repository.describe();
  report.incremental = options.incremental;
  auto finish = [&] {
    // A history file that fails its read-back check does not parse either, and one read with a
    // key that is not configured fails twice (read, then parsed): one finding says so.
    std::set<std::string> corrupt, unreadable;
    for (const auto& f : report.findings)
      if (f.kind == kind::kObjectCorrupt) corrupt.insert(f.object);
    std::vector<VerifyFinding> kept;
    for (auto& f : report.findings)
      if (!(f.kind == kind::kHistoryDamaged && corrupt.count(f.object)) &&
          !(f.kind == kind::kObjectUnreadable && !unreadable.insert(f.object).second))
        kept.push_back(std::move(f));
    report.findings = std::move(kept);
    for (auto& finding : report.findings)
      finding.fix = verifyFix(finding);
    std::sort(report.findings.begin(), report.findings.end(), [](const auto& a, const auto& b) {
      return std::tie(a.object, a.kind, a.detail) < std::tie(b.object, b.kind, b.detail);
    });
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return report;
  };

  // One catalog per generation, oldest first; stanza.json and every generation record are read
  // (and with encryption checked against their MACs) first.
  std::vector<recovery::Catalog> catalogs;
  try {
    catalogs = recovery::Catalog::loadGenerations(repository);
  } catch (const repo::GenerationRecordError& e) {
    report.findings.push_back({e.path(), kind::kStanzaDamaged, describeError(e)});
    return finish();
  } catch (const Error& e) {
    if (e.code() != ErrorCode::Corrupt) throw;
    report.findings.push_back(
        {repo::stanzaFile(repository.stanza()), kind::kStanzaDamaged, describeError(e)});
    return finish();
  }
  if (catalogs.empty()) throw repo::missingStanza(repository);
  const recovery::Catalog& current = catalogs.back();
  const std::string stanzaId = current.stanza().identity();
  // WAL the safety valve dropped: its gaps are findings like any other, named for what they are.
  std::vector<repo::GapRecord> dropped;
  try {
    dropped = repo::readGapRecords(repository, stanzaId);
  } catch (const Error& e) {
    spdlog::warn("the records of dropped WAL cannot be read: {}", e.what());
  }
  std::vector<Checker> checkers;
  checkers.reserve(catalogs.size());  // pointers to them are taken below
  for (const auto& catalog : catalogs)
    checkers.emplace_back(repository, catalog, report.findings, dropped);
  auto checkerOf = [&](int generation) -> Checker& {
    return *std::find_if(checkers.begin(), checkers.end(),
                         [&](const Checker& c) { return c.generation() == generation; });
  };

  // Every complete backup, of every generation: what an item's `backup` indexes.
  struct RunBackup {
    const repo::BackupInfo* info;
    Checker* checker;  // its generation's
  };
  std::vector<RunBackup> backups;
  for (auto& checker : checkers)
    for (const auto& backup : checker.catalog().backups())
      backups.push_back({&backup, &checker});
  auto findBackup = [&](const std::string& label) -> const RunBackup* {
    auto it = std::find_if(backups.begin(), backups.end(),
                           [&](const RunBackup& b) { return b.info->label == label; });
    return it == backups.end() ? nullptr : &*it;
  };
  for (const auto& label : options.backups)
    if (!findBackup(label))
      throw Error(
          ErrorCode::Config,
          fmt::format("stanza '{}' has no complete backup '{}'", repository.stanza(), label),
          "'tidemark info' lists the complete backups");

  // The checks that read no object in full: every run, on the whole stanza.
  std::vector<Item> all;
  for (auto& checker : checkers) {
    checker.damagedBackups();
    auto wal = listWal(repository, checker.catalog().generation());
    all.insert(all.end(), wal.begin(), wal.end());
  }
  // Backup folders without a backup.json: a backup that runs or was interrupted (expire removes
  // those after retention.sweep-age), or one whose backup.json was deleted. Never offered for
  // recovery, so said, but not a finding: a running backup is no damage.
  std::vector<std::string> folders;
  repository.storage().list(repo::backupsDirectory(repository.stanza()),
                            [&](const storage::ListEntry& entry) {
                              if (entry.directory) folders.push_back(entry.name);
                            });
  for (const auto& label : folders)
    if (!findBackup(label) &&
        !repository.storage().info(repo::backupInfoFile(repository.stanza(), label)))
      report.notes.push_back(fmt::format(
          "'{}' has no backup.json: a backup that is running or was interrupted (expire removes "
          "it after retention.sweep-age), or one whose backup.json was deleted; it is not offered "
          "for recovery",
          repo::backupDirectory(repository.stanza(), label)));
  // Only the current cluster's backups can recover it: an older generation's restore the cluster
  // as it was before the upgrade.
  if (current.backups().empty())
    report.findings.push_back(
        {repo::backupsDirectory(repository.stanza()), kind::kNoBackup,
         catalogs.size() == 1
             ? "the stanza has no complete backup: nothing can be recovered"
             : fmt::format("generation {} of the stanza (its current cluster, since "
                           "'tidemark stanza-upgrade') has no complete backup: nothing since the "
                           "upgrade can be recovered",
                           current.generation().number)});
  std::set<std::string> trailerDamaged;
  std::vector<std::string> checksumsOf;
  for (std::size_t i = 0; i < backups.size(); ++i) {
    auto items = backups[i].checker->backupObjects(*backups[i].info, i, trailerDamaged);
    all.insert(all.end(), items.begin(), items.end());
    checksumsOf.push_back(backups[i].info->manifestChecksums);
  }
  for (auto& checker : checkers) {
    checker.continuity();
    checker.ownWal();
    checker.histories();
  }

  // Which objects this run reads.
  std::set<std::string> backupWal;  // --backup: the WAL objects the backups need
  for (const auto& label : options.backups) {
    const RunBackup& backup = *findBackup(label);
    const std::uint32_t timeline = backup.info->timeline;
    for (std::uint64_t s = backup.info->firstSegment(); s <= backup.info->lastSegment(); ++s)
      backupWal.insert(backup.checker->walPath(
          pg::segmentFileName(timeline, s, backup.checker->catalog().segmentSize())));
    if (timeline > 1) backupWal.insert(backup.checker->walPath(pg::historyFileName(timeline)));
  }
  auto inScope = [&](const Item& item) {
    if (options.walOnly && item.role != Role::Wal) return false;
    if (!options.backups.empty()) {
      if (item.role == Role::Wal) {
        if (!backupWal.count(item.path)) return false;
      } else if (std::find(options.backups.begin(), options.backups.end(),
                           backups[item.backup].info->label) == options.backups.end()) {
        return false;
      }
    }
    if (options.since && item.modified < *options.since) return false;
    return true;
  };

  std::map<std::string, Verified> previous;
  if (options.incremental) {
    // A record that cannot be used costs a full read, never the verification itself.
    try {
      auto record =
          repo::newestStateRecord(repository, stanzaId, repo::state_kind::kVerify, kRecordSubject);
      if (record) {
        previous = parseRecord(record->content, record->path);
        report.previousRecord = record->path;
      }
    } catch (const Error& e) {
      if (e.code() != ErrorCode::Corrupt && e.code() != ErrorCode::Config) throw;
      previous.clear();
      report.notes.push_back(fmt::format(
          "the newest verification record cannot be used, so every object in scope is read: {}",
          describeError(e)));
    }
  }
  auto verifiedBefore = [&](const Item& item) {
    auto it = previous.find(item.path);
    if (it == previous.end()) return false;
    if (it->second.size != item.storedSize || it->second.modified != item.modified) return false;
    if (options.recheckOlderThan && now - it->second.verified >= *options.recheckOlderThan)
      return false;
    return true;
  };

  // A backup is read as a whole (its manifest is checked against its archives), so one object
  // of it to read means all of them.
  std::set<std::size_t> backupsToRead;
  std::vector<Item> toRead;
  for (const Item& item : all) {
    if (!inScope(item)) continue;
    ++report.objects;
    if (options.incremental && verifiedBefore(item)) continue;
    if (item.role == Role::Wal)
      toRead.push_back(item);
    else
      backupsToRead.insert(item.backup);
  }
  for (const Item& item : all)
    if (item.role != Role::Wal && backupsToRead.count(item.backup)) toRead.push_back(item);
  std::uint64_t inScopeRead = 0;
  for (const Item& item : toRead)
    inScopeRead += inScope(item);
  report.objectsSkipped = report.objects - std::min(report.objects, inScopeRead);

  std::vector<Outcome> outcomes = readAll(repository, toRead, checksumsOf, options.jobs);
  std::set<std::string> failed;  // objects with a finding from their read (not recorded)
  std::map<std::size_t, std::pair<std::vector<Item>, std::vector<Outcome>>> byBackup;
  for (std::size_t i = 0; i < toRead.size(); ++i) {
    Outcome& outcome = outcomes[i];
    const Item& item = toRead[i];
    if (outcome.read) {
      ++report.objectsRead;
      report.storedBytesRead += outcome.storedBytes;
      report.plainBytesRead += outcome.plainBytes;
      report.read.push_back(item.path);
    }
    if (item.role == Role::Wal) {
      if (!outcome.read && checkerOf(item.generation).belowLowWater(item.walName))
        outcome.findings.clear();  // expired while verify ran
      for (auto& finding : outcome.findings)
        finding.detail = inGeneration(item.generation, std::move(finding.detail));
    }
    if (!outcome.findings.empty()) failed.insert(item.path);
    report.findings.insert(report.findings.end(), outcome.findings.begin(), outcome.findings.end());
    if (item.role != Role::Wal) {
      byBackup[item.backup].first.push_back(item);
      byBackup[item.backup].second.push_back(std::move(outcome));
    }
  }
  // A damaged trailer found by the cheap check and again by the read is one finding.
  std::erase_if(report.findings, [&](const VerifyFinding& f) {
    return f.kind == kind::kObjectCorrupt && trailerDamaged.count(f.object) &&
           f.detail.starts_with("its trailer is damaged") && failed.count(f.object);
  });
  for (auto& [index, pair] : byBackup) {
    std::size_t before = report.findings.size();
    checkBackupContent(repository, *backups[index].info, pair.first, pair.second, report.findings);
    // A backup whose content disagrees with its manifest is read again next time, so that the
    // finding is reported until it is dealt with.
    if (report.findings.size() != before)
      for (const Item& item : pair.first)
        failed.insert(item.path);
  }
  std::sort(report.read.begin(), report.read.end());

  if (options.incremental) {
    std::map<std::string, Verified> next;
    for (const Item& item : all) {
      auto it = previous.find(item.path);
      if (it != previous.end() && it->second.size == item.storedSize &&
          it->second.modified == item.modified)
        next[item.path] = it->second;
    }
    for (std::size_t i = 0; i < toRead.size(); ++i)
      if (outcomes[i].read && !failed.count(toRead[i].path))
        next[toRead[i].path] = {toRead[i].storedSize, toRead[i].modified, now};
      else
        next.erase(toRead[i].path);
    // Objects found damaged are left out, so that every run reads them again.
    for (const auto& finding : report.findings)
      if (finding.kind == kind::kObjectCorrupt || finding.kind == kind::kBackupMismatch)
        next.erase(finding.object);
    auto written = repo::writeStateRecord(repository, stanzaId, repo::state_kind::kVerify,
                                          kRecordSubject, recordJson(next, now));
    report.record = written.path;
  }
  return finish();
}

// ---- renderings
// ----------------------------------------------------------------------------------

std::string renderVerifyJson(const VerifyReport& report) {
  Json findings = Json::array();
  for (const auto& f : report.findings)
    findings.push_back(
        {{"object", f.object}, {"kind", f.kind}, {"detail", f.detail}, {"fix", f.fix}});
  Json counts = Json::object();
  for (const auto& [k, n] : report.counts())
    counts[k] = n;
  double mb = report.seconds > 0 ? double(report.storedBytesRead) / 1e6 / report.seconds : 0;
  Json doc = {
      {"stanza", report.stanza},
      {"repository", report.repository},
      {"healthy", report.healthy()},
      {"incremental", report.incremental},
      {"objects",
       {{"in-scope", report.objects},
        {"read", report.objectsRead},
        {"skipped", report.objectsSkipped},
        {"stored-bytes", report.storedBytesRead},
        {"plain-bytes", report.plainBytesRead},
        {"seconds", report.seconds},
        {"mb-per-second", mb}}},
      {"read", report.read},
      {"previous-record", report.previousRecord ? Json(*report.previousRecord) : Json(nullptr)},
      {"record", report.record ? Json(*report.record) : Json(nullptr)},
      {"notes", report.notes},
      {"counts", counts},
      {"findings", findings},
  };
  return doc.dump(2) + "\n";
}

std::string renderVerifySummary(const VerifyReport& report) {
  double mb = report.seconds > 0 ? double(report.storedBytesRead) / 1e6 / report.seconds : 0;
  std::string out = fmt::format(
      "verify: stanza '{}' ({}): {} read ({} stored, {} plain) in {:.1f} s, {:.1f} MB/s",
      report.stanza, report.repository, plural(report.objectsRead, "object", "objects"),
      humanBytes(report.storedBytesRead), humanBytes(report.plainBytesRead), report.seconds, mb);
  if (report.objectsSkipped > 0)
    out += fmt::format("; {} verified before, not read again", report.objectsSkipped);
  out += "\n";
  for (const auto& note : report.notes)
    out += "verify: " + note + "\n";
  if (report.healthy()) return out + "verify: no problems found\n";
  std::string kinds;
  for (const auto& [k, n] : report.counts())
    kinds += fmt::format("{}{}: {}", kinds.empty() ? "" : ", ", k, n);
  out += fmt::format("verify: {} ({})\n", plural(report.findings.size(), "problem", "problems"),
                     kinds);
  for (const auto& f : report.findings)
    out += fmt::format("  {}  {}\n    {}\n    fix: {}\n", f.kind, f.object, f.detail, f.fix);
  return out;
}

// ---- the command
// ---------------------------------------------------------------------------------

std::vector<OptionSpec> verifyOptionSpecs() {
  return {
      {.name = "output",
       .valueName = "FORMAT",
       .help = "text (default) or json (" + docPath("verify.md") + ")"},
      {.name = "jobs", .valueName = "N", .help = "objects read at once (default 1)"},
      {.name = "backup",
       .valueName = "LABEL",
       .help = "read only this backup's objects and the WAL it needs (repeatable)",
       .repeatable = true},
      {.name = "wal-only", .help = "read only WAL objects"},
      {.name = "since",
       .valueName = "TIME",
       .help = "read only objects stored at or after TIME (\"2026-11-22 10:00:00+00\")"},
      {.name = "incremental",
       .help = "read only objects not verified before, and record what was (a state record)"},
      {.name = "recheck-older-than",
       .valueName = "DURATION",
       .help = "with --incremental, read again objects verified this long ago or longer (\"30d\")"},
  };
}

void recordVerifyResult(const repo::Repository& repository, const VerifyReport& report,
                        const std::string& scope) {
  try {
    Json doc{{"format", 1},
             {"finished", formatUtc(utcNow())},
             {"result", report.healthy() ? "ok" : "failed"},
             {"scope", scope},
             {"findings", report.findings.size()},
             {"objects-read", report.objectsRead},
             {"seconds", report.seconds}};
    repo::writeStateRecord(repository, repo::requireStanza(repository).identity(),
                           repo::state_kind::kVerify, kResultSubject, doc.dump(2) + "\n");
  } catch (const Error& e) {
    spdlog::warn("could not record the verification's result in the repository: {}", e.what());
  }
}

std::optional<VerifyResult> lastVerify(const repo::Repository& repository,
                                       const std::string& stanzaId) {
  // Only informs, as a drill's record: one signed with a key this host lacks is left out.
  auto record = repo::newestStateRecord(repository, stanzaId, repo::state_kind::kVerify,
                                        kResultSubject, nullptr, true);
  if (!record) return std::nullopt;
  try {
    Json doc = Json::parse(record->content);
    return VerifyResult{.finished = doc.at("finished").get<std::string>(),
                        .ok = doc.at("result").get<std::string>() == "ok",
                        .scope = doc.at("scope").get<std::string>(),
                        .findings = doc.at("findings").get<std::uint64_t>(),
                        .path = record->path};
  } catch (const std::exception& e) {
    throw Error(ErrorCode::Corrupt,
                fmt::format("verification result '{}' cannot be read: {}", record->path, e.what()),
                "run tidemark verify again: a new record replaces it");
  }
}

int verify(const Config& config, const CommandLine& commandLine) {
  bool json = false;
  if (auto output = commandLine.value("output"); output && *output != "text") {
    if (*output != "json")
      throw Error(ErrorCode::Usage, fmt::format("--output '{}' is not text or json", *output),
                  "use --output=text (the default) or --output=json");
    json = true;
  }
  VerifyOptions options;
  if (auto jobs = commandLine.value("jobs")) {
    auto n = parseDecimal(*jobs);
    if (!n || *n < 1 || *n > 256)
      throw Error(ErrorCode::Usage,
                  fmt::format("--jobs '{}' is not a number from 1 to 256", *jobs));
    options.jobs = static_cast<unsigned>(*n);
  }
  if (auto it = commandLine.options.find("backup"); it != commandLine.options.end())
    options.backups = it->second;
  options.walOnly = commandLine.has("wal-only");
  if (options.walOnly && !options.backups.empty())
    throw Error(ErrorCode::Usage, "--wal-only and --backup exclude each other");
  if (auto since = commandLine.value("since"))
    options.since = std::chrono::duration_cast<std::chrono::seconds>(
                        parseTimestamp(*since, "--since").time_since_epoch())
                        .count();
  options.incremental = commandLine.has("incremental");
  if (auto recheck = commandLine.value("recheck-older-than")) {
    if (!options.incremental)
      throw Error(ErrorCode::Usage, "--recheck-older-than needs --incremental");
    options.recheckOlderThan = parseDurationSeconds(*recheck);
    if (!options.recheckOlderThan)
      throw Error(ErrorCode::Usage,
                  fmt::format("--recheck-older-than '{}' is not a duration", *recheck),
                  "for example 30d, 12h or 2w");
  }

  repo::Repository repository = repo::openRepository(config);
  VerifyReport report = verifyRepository(repository, options);
  // Only a run over the whole repository is "the last verify": a passing --backup, --wal-only or
  // --since run must not hide a failed full one.
  if (!options.walOnly && options.backups.empty() && !options.since)
    recordVerifyResult(repository, report, options.incremental ? "incremental" : "full");
  std::string summary = renderVerifySummary(report);
  std::fputs(summary.c_str(), stderr);
  if (json) {
    std::string text = renderVerifyJson(report);
    if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0)
      throw Error(ErrorCode::LocalIo,
                  fmt::format("cannot write the report to standard output: {}", errnoText(errno)));
  }
  if (!report.healthy()) {
    std::string kinds;
    for (const auto& [k, n] : report.counts())
      kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", n, k);
    throw Error(
        ErrorCode::Unhealthy,
        fmt::format("verify found {} in stanza '{}': {}",
                    plural(report.findings.size(), "problem", "problems"), report.stanza, kinds),
        "the report above names each and what to do; " + docPath("verify.md") +
            " says more about each kind");
  }
  return 0;
}

}  // namespace tidemark::ctl
