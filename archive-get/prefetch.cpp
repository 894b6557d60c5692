// Prefetch: the background fetcher and the handover of what it fetched.
#include "archive-get/prefetch.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "archive-get/get.h"
#include "common/base/error.h"
#include "common/base/text.h"
#include "common/base/watchdog.h"
#include "common/files/file.h"
#include "common/log/log.h"
#include "common/repo/generation.h"
#include "common/repo/layout.h"
#include "common/repo/stanza.h"
#include "common/repo/wal_catalog.h"
#include "common/spool/spool.h"

namespace tidemark::archive {

namespace {

constexpr const char* kLogFile = "prefetch.log";
// How often the prefetcher's watchdog looks whether it must stop while fetches run.
constexpr std::chrono::milliseconds kWatchEvery{200};

std::int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool inRecovery(const std::string& dataDirectory) {
  return files::exists(dataDirectory + "/recovery.signal") ||
         files::exists(dataDirectory + "/standby.signal");
}

// The generation of the cluster `systemId` (nullopt: not one of the stanza).
std::optional<repo::Generation> generationOf(const repo::Repository& repository,
                                             const repo::StanzaInfo& stanza,
                                             std::uint64_t systemId) {
  if (systemId == stanza.systemId) return repo::Generation::first(stanza);
  auto generations = repo::loadGenerations(repository, stanza);
  if (auto g = repo::findGeneration(generations, systemId)) return *g;
  return std::nullopt;
}

// How long archive-get waits for a segment the prefetcher is fetching.
constexpr auto kInflightWait = std::chrono::seconds(10);

// Outcome of one fetch into the spool.
enum class Fetch { Stored, Absent, Failed };

// Timelines looked for past the one asked for: no cluster makes this many, and a store that
// answers every HEAD (a broken or lying server) cannot hold the prefetcher probing for ever.
constexpr std::uint32_t kMaxTimelinesAhead = 1024;

}  // namespace

pg::TimelineHistory followedHistory(const repo::Repository& repository, int generation,
                                    const pg::WalName& wanted, std::uint32_t segmentSize) {
  const std::uint32_t timeline = wanted.timeline;
  std::uint32_t newest = timeline;
  while (newest - timeline < kMaxTimelinesAhead &&
         newest < std::numeric_limits<std::uint32_t>::max()) {
    auto name = pg::parseWalName(pg::historyFileName(newest + 1));
    if (!repository.storage().info(repo::walObject(repository.stanza(), generation, *name))) break;
    ++newest;
  }
  pg::TimelineHistory history = repo::loadHistory(repository, generation, newest);
  if (asksAlong(history, wanted, segmentSize)) return history;
  // A branch that does not lead through the timeline PostgreSQL is on is not its way. A file off
  // the newest path that the repository holds is PostgreSQL reading on along its own timeline;
  // one it does not hold is a probe (XLogFileReadAnyTLI trying an older timeline's file after the
  // newest's was missing, or a standby that has not yet seen the newer history asking for the
  // segment its timeline ended in, archived as .partial): PostgreSQL stays on the newest path.
  if (!history.contains(timeline) ||
      repository.storage().info(repo::walObject(repository.stanza(), generation, wanted)))
    return repo::loadHistory(repository, generation, timeline);
  return history;
}

std::size_t segmentsWithRoom(std::uint64_t available, std::uint64_t total, std::size_t wanted,
                             std::uint32_t segmentSize) {
  const std::uint64_t reserve = std::min<std::uint64_t>(1ull << 30, total / 10);
  if (available <= reserve || segmentSize == 0) return 0;
  return std::size_t(std::min<std::uint64_t>(wanted, (available - reserve) / segmentSize));
}

bool asksAlong(const pg::TimelineHistory& history, const pg::WalName& wanted,
               std::uint32_t segmentSize) {
  return history.contains(wanted.timeline) &&
         pg::fileTimeline(history, pg::segmentNumber(wanted, segmentSize), segmentSize) ==
             wanted.timeline;
}

std::vector<std::string> planAhead(const pg::TimelineHistory& history, const pg::WalName& wanted,
                                   int count, std::uint32_t segmentSize) {
  std::vector<std::string> plan;
  const std::uint64_t first = pg::segmentNumber(wanted, segmentSize) + 1;
  for (std::uint64_t segment = first; segment < first + std::uint64_t(std::max(count, 0));
       ++segment)
    plan.push_back(
        pg::segmentFileName(pg::fileTimeline(history, segment, segmentSize), segment, segmentSize));
  return plan;
}

std::optional<spool::FileRecord> takePrefetched(const PrefetchContext& context,
                                                const std::string& file,
                                                const std::string& destination) {
  try {
    auto record = spool::readFetched(context.folder, file);
    // Being fetched already: waiting for it is cheaper than fetching it twice. A marker that no
    // running prefetcher holds (one killed mid-fetch) is not waited on.
    const std::string inflight = spool::inflightPath(context.folder, file);
    auto checked = std::chrono::steady_clock::time_point{};
    for (auto deadline = std::chrono::steady_clock::now() + kInflightWait;
         !record && files::exists(inflight) && std::chrono::steady_clock::now() < deadline;) {
      if (std::chrono::steady_clock::now() - checked > std::chrono::milliseconds(250)) {
        if (spool::waitForLock(context.folder, spool::kPrefetchLockFile,
                               std::chrono::milliseconds(0)))
          break;
        checked = std::chrono::steady_clock::now();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      record = spool::readFetched(context.folder, file);
    }
    if (!record) return std::nullopt;
    const std::string path = spool::fetchedPath(context.folder, file);
    if (auto stale =
            spool::untrusted(context.folder, *record, context.repository, context.systemId, path)) {
      spdlog::info("ignored the prefetched {}: {}", file, *stale);
      spool::removeFetched(context.folder, file);
      return std::nullopt;
    }
    // The file was fsynced when it was fetched. pg_wal is not synced after the rename: PostgreSQL
    // renames %p to the segment's name at once with durable_rename(), which fsyncs the file and
    // pg_wal, and a %p lost in a crash before that is asked for again (it never reads one it did
    // not just restore). A crash may also bring the file back into the spool: with its record,
    // the same verified segment, handed over again or removed by the next prefetcher.
    if (::rename(path.c_str(), destination.c_str()) != 0) {
      if (errno != EXDEV) {
        spdlog::debug("cannot move the prefetched {} to '{}': {}", file, destination,
                      errnoText(errno));
        return std::nullopt;
      }
      // spool-path on another filesystem than pg_wal: a copy, durable before it is published
      // under its name (still cheaper than a fetch, a decompression and a hash).
      auto in = files::openForRead(path);
      if (!in) return std::nullopt;
      files::AtomicFile out(destination, {.mode = 0600});
      files::streamFile(in->get(), path, out);
      out.commit();
    }
    spool::removeFetched(context.folder, file);
    // What the prefetcher counted in it holds for the file the record vouches for, moved (which
    // changes only its change time), not copied, nor replaced since: another is walked.
    std::optional<spool::Fingerprint> moved;
    try {
      moved = spool::fingerprintOf(destination);
    } catch (const Error&) {
    }
    if (moved) moved->ctimeNs = record->local.ctimeNs;
    if (moved != record->local) record->tablespaceRecords.reset();
    return record;
  } catch (const std::exception& e) {
    spdlog::warn("the prefetched {} is not used: {}", file, e.what());
    return std::nullopt;
  }
}

void requestPrefetch(const PrefetchContext& context, const std::string& file) noexcept {
  try {
    spool::writeWanted(context.folder, file, context.repository);
    int lock = spool::takeLock(context.folder, spool::kPrefetchLockFile);
    if (lock < 0) return;  // one runs (or the lock cannot be made: nothing to start)
    ::close(lock);
    spool::startDetached(context.folder, kLogFile, "tidemark-prefetch", context.config, [&](int) {
      runPrefetcher(context);
      return 0;
    });
  } catch (const std::exception& e) {
    spdlog::warn("prefetch is off for this call: {}", e.what());
  }
}

std::chrono::milliseconds absentRetryWait(const PrefetchOptions& options, int misses) {
  auto wait = options.retryAbsent;
  for (int i = 1; i < misses && wait < options.retryAbsentMax; ++i)
    wait *= 2;
  return std::min(wait, std::max(options.retryAbsentMax, options.retryAbsent));
}

void runPrefetcher(const PrefetchContext& context, const PrefetchOptions& options) {
  std::atomic<bool> abandon{false};
  runPrefetcher(context, repo::openRepository(context.config, &abandon), options, &abandon);
}

void runPrefetcher(const PrefetchContext& context, repo::Repository repository,
                   const PrefetchOptions& options, std::atomic<bool>* abandon) {
  const Config& config = context.config;
  auto stanza = repo::loadStanza(repository);
  if (!stanza) return;
  auto generation = generationOf(repository, *stanza, context.systemId);
  if (!generation) return;
  int lock = spool::takeLock(context.folder, spool::kPrefetchLockFile);
  if (lock < 0) return;
  const spool::Identity identity{.repository = context.repository,
                                 .stanzaId = stanza->identity(),
                                 .systemId = context.systemId};
  spool::claim(context.folder, identity);
  const std::string fetched = spool::fetchedFolder(context.folder);
  if (::mkdir(fetched.c_str(), 0700) != 0 && errno != EEXIST)
    throw systemError(ErrorCode::LocalIo, errno, "cannot create '{}'", fetched);
  try {
    spool::sweepFetched(context.folder);  // none runs but this one
  } catch (const Error& e) {
    spdlog::warn("the prefetch spool keeps what a prefetcher before left: {}", e.what());
  }
  const int ahead = std::max(config.archive.getAhead, 1);
  const std::size_t parallel = std::size_t(std::clamp(ahead, 1, 4));
  std::vector<repo::Repository> handles;
  for (std::size_t i = 0; i < parallel && repository.canOpenAnother(); ++i)
    handles.push_back(repository.another());
  if (handles.empty()) handles.push_back(std::move(repository));
  const std::uint32_t segmentSize = generation->walSegmentSize;
  spdlog::info("prefetcher started for {} ({} ahead)", context.folder,
               plural(std::uint64_t(ahead), "segment", "segments"));

  std::optional<pg::TimelineHistory> history;
  std::uint32_t historyFor = 0;
  std::string decidedFor;  // the request the history was chosen for
  auto historyChecked = std::chrono::steady_clock::time_point{};
  // When to look again for a segment of the way ahead that was not fetched, and how many times in
  // a row the repository did not hold it while PostgreSQL asked for no later segment.
  struct Retry {
    std::chrono::steady_clock::time_point at;
    int misses = 0;
  };
  std::map<std::string, Retry> retryAt;
  std::uint64_t furthestAsked = 0;  // the highest segment number PostgreSQL asked for
  // Why the prefetcher must stop now, if it must: checked before each round, and by a watchdog
  // while fetches run (they then end: one can last as long as a slow server keeps it).
  // When PostgreSQL last asked (the request's stamp changed; the first one seen counts, the
  // stanza's loading may have taken long), on this process's monotonic clock: the wall clock may
  // be stepped either way meanwhile. Read by the watchdog's thread too.
  std::mutex askedMutex;
  std::optional<std::string> askedStamp;
  auto askedAt = std::chrono::steady_clock::now();
  auto stopReason = [&](const std::optional<spool::Wanted>& wanted) -> std::optional<std::string> {
    if (!inRecovery(context.dataDirectory)) return "recovery ended";
    if (!files::exists(context.dataDirectory + "/postmaster.pid")) return "the server stopped";
    if (!wanted) return "nothing was asked for";
    {
      std::lock_guard lock(askedMutex);
      const auto now = std::chrono::steady_clock::now();
      if (askedStamp != wanted->stamp) askedStamp = wanted->stamp, askedAt = now;
      if (now - askedAt > options.idle) return "nothing was asked for";
    }
    if (wanted->repository != context.repository)
      return "the configuration names another repository now";
    if (spool::recordedIdentity(context.folder) != identity)
      return "the spool was claimed for another repository, stanza or cluster";
    return std::nullopt;
  };
  // While requests run, a watchdog abandons them when the prefetcher must stop; `stopped` then
  // says why (written by its thread, read after it is destroyed).
  std::optional<std::string> stopped;
  const auto watch = [&](std::optional<Watchdog>& watchdog) {
    if (abandon != nullptr)
      watchdog.emplace(
          [&] {
            stopped = stopReason(spool::readWanted(context.folder));
            return stopped.has_value();
          },
          *abandon, kWatchEvery);
  };
  std::string reason = "recovery ended";
  std::string lastWait;  // logged once, not every second while the repository is away
  while (true) {
    const auto wanted = spool::readWanted(context.folder);
    if (auto why = stopReason(wanted)) {
      reason = *why;
      break;
    }
    auto name = pg::parseWalName(wanted->file);
    const auto now = std::chrono::steady_clock::now();
    if (!name || name->kind != pg::WalKind::Segment) {
      std::this_thread::sleep_for(options.poll);
      continue;
    }
    // PostgreSQL moved on: the archive did too, what was missing may be there now (with get-ahead
    // > 1 several segments back off together, and the first of them holds up the rest). Asking
    // for the same segment on another timeline is not moving on: after a promotion elsewhere a
    // standby asks for it on each timeline in turn every 5 s.
    if (const std::uint64_t asked = pg::segmentNumber(*name, segmentSize); asked > furthestAsked) {
      std::erase_if(retryAt, [](const auto& entry) { return entry.second.misses > 0; });
      furthestAsked = asked;
    }
    // The way ahead: the history files tell where PostgreSQL goes; a new one may appear while a
    // standby follows a primary that was promoted. A request off the path followed is decided
    // once (followedHistory), not on every poll.
    if (!history || historyFor != name->timeline ||
        now - historyChecked > std::chrono::seconds(10) ||
        (decidedFor != wanted->file && history->timeline != name->timeline &&
         !asksAlong(*history, *name, segmentSize))) {
      // Watched too: a slow server can hold a history lookup as long as a fetch.
      std::optional<Watchdog> watchdog;
      watch(watchdog);
      try {
        history = followedHistory(handles.front(), generation->number, *name, segmentSize);
        historyFor = name->timeline;
        decidedFor = wanted->file;
        historyChecked = now;
      } catch (const Error& e) {
        watchdog.reset();
        if (stopped) {
          reason = *stopped;
          break;
        }
        if (e.what() != lastWait) spdlog::warn("prefetch waits: {}", e.what());
        lastWait = e.what();
        history.reset();
        std::this_thread::sleep_for(options.retryAbsent);
        continue;
      }
    }
    if (stopped) {  // the watchdog abandoned the requests as the lookup ended: none would work
      reason = *stopped;
      break;
    }
    const auto plan = planAhead(*history, *name, ahead, segmentSize);
    const std::set<std::string> planned(plan.begin(), plan.end());
    // What PostgreSQL will not ask for goes (the file it asks for now stays: it may be taken).
    for (const auto& file : spool::listFetched(context.folder))
      if (!planned.count(file) && file != wanted->file) spool::removeFetched(context.folder, file);

    std::vector<std::string> batch;
    for (const auto& file : plan) {
      if (spool::readFetched(context.folder, file)) continue;
      auto retry = retryAt.find(file);
      if (retry != retryAt.end() && retry->second.at > now) break;  // absent: what follows too
      batch.push_back(file);
      if (batch.size() == handles.size()) break;
    }
    if (batch.empty()) {
      std::this_thread::sleep_for(options.poll);
      continue;
    }
    // The spool never takes the room PostgreSQL needs: it waits (PostgreSQL's own fetches go on).
    if (struct statvfs fs{}; ::statvfs(fetched.c_str(), &fs) == 0) {
      const std::uint64_t unit = fs.f_frsize ? fs.f_frsize : fs.f_bsize;
      const std::size_t room =
          segmentsWithRoom(std::uint64_t(fs.f_bavail) * unit, std::uint64_t(fs.f_blocks) * unit,
                           batch.size(), segmentSize);
      if (room < batch.size()) {
        if (room == 0) {
          const std::string why = fmt::format(
              "prefetch waits: too little free in '{}', which it leaves to PostgreSQL", fetched);
          if (why != lastWait)
            spdlog::warn("{} ({} free)", why, humanBytes(std::uint64_t(fs.f_bavail) * unit));
          lastWait = why;
          std::this_thread::sleep_for(options.retryAbsent);
          continue;
        }
        batch.resize(room);
      }
    }
    std::vector<Fetch> results(batch.size(), Fetch::Failed);
    auto fetch = [&](std::size_t i) {
      const std::string& file = batch[i];
      const std::string inflight = spool::inflightPath(context.folder, file);
      int marker = ::open(inflight.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
      if (marker >= 0) ::close(marker);
      // The marker goes last; before it, a segment that was not recorded (its record could not
      // be written, or the fetch failed): it would take room the count of segments does not see.
      struct Unmark {
        const std::string& path;
        ~Unmark() { ::unlink(path.c_str()); }
      } unmark{inflight};
      struct Unrecorded {
        const PrefetchContext& context;
        const std::string& file;
        const Fetch& result;
        ~Unrecorded() {
          if (result != Fetch::Stored) spool::removeFetched(context.folder, file);
        }
      } unrecorded{context, file, results[i]};
      try {
        GetResult result =
            getWalFile(handles[i], {.walName = file,
                                    .destination = spool::fetchedPath(context.folder, file),
                                    .controlSystemId = context.systemId});
        if (result.outcome == GetOutcome::NotFound) {
          results[i] = Fetch::Absent;
          return;
        }
        const std::string path = spool::fetchedPath(context.folder, file);
        // Counted here, the segment still in the page cache, so that the hand-over need not walk
        // it (checkReplayedTablespaces; not counted, it walks it): the count of the file the
        // record vouches for, unchanged while it was counted.
        std::optional<std::uint32_t> creations;
        const auto counted = spool::fingerprintOf(path);
        try {
          creations = tablespaceRecords(path);
        } catch (const Error& e) {
          spdlog::debug("{}: the hand-over walks it: {}", file, e.what());
        }
        auto local = spool::fingerprintOf(path);
        if (!local) return;
        if (local != counted) creations.reset();
        spool::writeFetched(context.folder, {.file = file,
                                             .identity = identity,
                                             .size = result.summary.plainSize,
                                             .sha256 = io::toHex(result.summary.plainSha256),
                                             .local = *local,
                                             .atMs = nowMs(),
                                             .tablespaceRecords = creations});
        results[i] = Fetch::Stored;
      } catch (const std::exception& e) {
        // Damaged or unreadable ahead is no error until PostgreSQL asks for it: archive-get then
        // fetches it itself and reports what it finds.
        spdlog::info("prefetch of {} failed (archive-get reports it if PostgreSQL asks): {}", file,
                     e.what());
      }
    };
    std::optional<Watchdog> watchdog;
    watch(watchdog);
    std::vector<std::thread> threads;
    try {
      for (std::size_t i = 1; i < batch.size(); ++i)
        threads.emplace_back(fetch, i);
    } catch (const std::system_error& e) {
      spdlog::warn("fetching fewer segments at once: cannot start a thread: {}", e.what());
      batch.resize(threads.size() + 1);
      results.resize(batch.size());
    }
    fetch(0);
    for (auto& t : threads)
      t.join();
    watchdog.reset();
    if (stopped) {
      reason = *stopped;
      break;
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (results[i] == Fetch::Stored) {
        retryAt.erase(batch[i]);
      } else {
        // Without this wait, a standby at the end of the archive would ask for it in a loop; the
        // longer it stays there, the less often (PostgreSQL's own calls still look every 5 s).
        Retry& retry = retryAt[batch[i]];
        std::chrono::milliseconds wait = options.retryAbsent * 5;
        if (results[i] == Fetch::Absent) wait = absentRetryWait(options, ++retry.misses);
        retry.at = std::chrono::steady_clock::now() + wait;
      }
    }
    // Forget the retries of segments PostgreSQL has passed.
    for (auto it = retryAt.begin(); it != retryAt.end();)
      it = planned.count(it->first) ? std::next(it) : retryAt.erase(it);
  }
  spool::removeFetchedFolder(context.folder);
  ::close(lock);
  spdlog::info("prefetcher stopped: {}; its spool is removed", reason);
}

}  // namespace tidemark::archive
