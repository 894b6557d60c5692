// tidemark-archive-push: the push worker and the command around it.
#include "archive-push/push.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "archive-push/queue.h"
#include "common/base/error.h"
#include "common/base/text.h"
#include "common/base/watchdog.h"
#include "common/files/file.h"
#include "common/pg/control.h"
#include "common/repo/generation.h"
#include "common/repo/layout.h"
#include "common/repo/metadata.h"
#include "common/repo/stanza.h"
#include "common/repo/wal_store.h"
#include "common/spool/gap_record.h"
#include "common/spool/spool.h"

namespace tidemark::archive {

namespace {

// The generation of the stanza (which must exist: a push never creates one) the file belongs to,
// by the cluster that wrote it; and the configured encryption checked against the stanza's.
repo::Generation checkCluster(const repo::Repository& repository, const PushParams& params,
                              const pg::WalName& name, int fd, std::uint64_t size) {
  std::string what = fmt::format("WAL file '{}'", name.name);
  if (!name.hasPageHeader() && size > pg::maxWalFileSize(name, 0))
    throw Error(
        ErrorCode::InvalidInput,
        fmt::format("'{}' is {} long, too large for a {} file", params.walPath, humanBytes(size),
                    name.kind == pg::WalKind::History ? "timeline history" : "backup history"),
        "archive_command must pass %p, the path PostgreSQL gives");
  std::optional<pg::LongPageHeader> page;
  if (name.hasPageHeader()) {
    std::uint8_t header[pg::kLongPageHeaderSize];
    std::size_t got = files::preadFull(fd, header, sizeof header, 0, params.walPath);
    page = pg::checkSegmentHeader({header, got}, name, size, params.walPath);
  }
  repo::StanzaInfo stanza = params.stanza ? *params.stanza : repo::requireStanza(repository);
  repo::checkEncryption(repository, stanza);
  if (!params.stanza) repo::requireStanzaKey(repository);
  if (page)
    return repo::requireGeneration(repository, stanza, page->systemId, page->segmentSize,
                                   pg::versionFromPageMagic(page->magic).value_or(0), what);
  if (params.controlSystemId)
    // No page header to identify the cluster: the data directory's pg_control does, when we run
    // in it (PostgreSQL runs archive_command there).
    return repo::requireGeneration(
        repository, stanza, *params.controlSystemId, std::nullopt, 0,
        fmt::format("{} (from the data directory with that pg_control)", what));
  // Run elsewhere (by hand): only a stanza of one generation leaves no doubt where it goes.
  std::vector<repo::Generation> generations = repo::loadGenerations(repository, stanza);
  if (generations.size() > 1)
    throw Error(ErrorCode::InvalidInput,
                fmt::format("cannot tell which generation of stanza '{}' {} belongs to: it has no "
                            "page header, and there is no pg_control in the working directory",
                            repository.stanza(), what),
                "run tidemark-archive-push in the data directory of the cluster that wrote it "
                "(as PostgreSQL's archive_command does)");
  return generations.front();
}

}  // namespace

PushResult pushWalFile(const repo::Repository& repository, const PushParams& params) {
  std::string base = files::baseName(params.walPath);
  auto name = pg::parseWalName(base);
  if (!name)
    throw Error(ErrorCode::InvalidInput, fmt::format("'{}' is not a WAL file name", base),
                "archive_command must pass %p: archive_command = 'tidemark-archive-push %p'");
  auto fd = files::openForRead(params.walPath);
  if (!fd)
    throw Error(
        ErrorCode::LocalIo, fmt::format("WAL file '{}' does not exist", params.walPath),
        "archive_command must pass %p; a relative path is taken from the working directory");
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0)
    throw error(ErrorCode::LocalIo, "cannot stat '{}': {}", params.walPath, errnoText(errno));
  if (!S_ISREG(st.st_mode))
    throw error(ErrorCode::InvalidInput, "'{}' is not a regular file", params.walPath);
  std::uint64_t size = std::uint64_t(st.st_size);
  const spool::Fingerprint before = spool::fingerprintOf(fd->get(), params.walPath);

  const repo::Generation generation = checkCluster(repository, params, *name, fd->get(), size);

  PushResult result;
  result.name = *name;
  // A segment's size is its segment size (checkSegmentHeader made sure of it). The size is
  // announced (an uncompressed object is then sent while it is read), so exactly that many bytes
  // are read, and a byte past them means the file grew.
  auto stored = repo::storeWalFile(
      repository, generation.number, *name,
      std::uint32_t(std::min<std::uint64_t>(size, std::uint64_t(1) << 30)),
      [&](io::Sink& sink) {
        std::uint64_t read = files::streamFile(fd->get(), params.walPath, sink, 0, size);
        std::uint8_t more;
        if (read == size && files::preadFull(fd->get(), &more, 1, size, params.walPath) == 1)
          ++read;
        if (read != size)
          throw error(ErrorCode::InvalidInput,
                      "'{}' changed size while being archived ({} bytes, then {})", params.walPath,
                      size, read == size + 1 ? "more" : std::to_string(read));
      },
      size);
  // PostgreSQL never changes a file it handed to archive_command: one that changed is not what
  // was stored, and no acknowledgement may vouch for it.
  if (spool::fingerprintOf(fd->get(), params.walPath) != before)
    throw error(ErrorCode::InvalidInput, "'{}' changed while being archived", params.walPath);
  result.outcome = stored.outcome == repo::WalStoreOutcome::Stored ? PushOutcome::Stored
                                                                   : PushOutcome::AlreadyArchived;
  result.summary = stored.summary;
  result.local = before;
  return result;
}

namespace {

std::int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t msSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start)
      .count();
}

constexpr const char* kPusherLog = "push.log";
// How often the pusher's watchdog looks whether it must stop while uploads run, and how long the
// uploads under way may go on once the safety valve is due (less than kValveWait).
constexpr std::chrono::milliseconds kWatchEvery{200};
constexpr std::chrono::seconds kFinishUploadsFor{30};
// How long a call waits for the pusher to finish the file it asks for, and how long the safety
// valve waits for the pusher to stop before it drops anything.
constexpr auto kPushedWait = std::chrono::minutes(5);
constexpr auto kValveWait = std::chrono::minutes(1);
// Files the pusher acknowledged that were archived without their acknowledgement, in a row,
// before it stops: the archiver's calls use another spool (a call gives up waiting for the
// pusher only after kPushedWait, so one such file now and then is no sign).
constexpr std::size_t kUnusedAcksToStop = 4;

// Appends a push's statistic to the spool (tidemark metrics reads them).
void recordStat(const std::string& folder, const Config& config, const std::string& name, bool ok,
                std::int64_t durationMs) {
  spool::recordPush(folder, {.finishedMs = nowMs(),
                             .durationMs = durationMs,
                             .ok = ok,
                             .file = name,
                             .stanza = config.stanza});
}

// One call of the command: the file PostgreSQL asked for and where its local state lives.
struct Call {
  const Config& config;
  std::string walPath, file;
  // The data directory's system identifier: PostgreSQL runs archive_command in the data
  // directory, whose pg_control names the cluster of a file without a page header.
  std::optional<std::uint64_t> systemId;
  std::optional<std::string> spool;  // the stanza's spool folder, when there is one
  std::string repository;            // how the configured repository describes itself

  void recordStat(const std::string& name, bool ok, std::int64_t durationMs) const {
    if (spool) archive::recordStat(*spool, config, name, ok, durationMs);
  }
  PusherContext pusher() const {
    return {.config = config,
            .folder = *spool,
            .systemId = *systemId,
            .repository = repository,
            .walDirectory = files::dirName(walPath)};
  }
};

// Whether push-ahead acknowledged the file: its acknowledgement was written under the spool's
// identity, names the repository the configuration names and the cluster of this data directory,
// and the file is still the one that was pushed. The acknowledgement goes either way: a used one
// is not needed again (PostgreSQL marks the file done), a stale one never will be.
// `meanwhile`: the pusher took the file while this call opened the repository (the fast path,
// which opens nothing, logs "acknowledged"; tests tell the two apart by it).
bool acknowledged(const Call& call, bool meanwhile = false) {
  auto ack = spool::readPushAck(*call.spool, call.file);
  if (!ack) return false;
  spool::removePushAck(*call.spool, call.file);
  if (auto stale =
          spool::untrusted(*call.spool, *ack, call.repository, *call.systemId, call.walPath)) {
    spdlog::info("ignored the acknowledgement of {}: {}; pushing it", call.file, *stale);
    return false;
  }
  if (meanwhile)
    spdlog::info(
        "{} was pushed ahead by the pusher meanwhile (SHA-256 {}), its acknowledgement used",
        call.file, ack->sha256.substr(0, 16));
  else
    spdlog::info("{} was pushed ahead {} ms ago (SHA-256 {}), acknowledged", call.file,
                 std::max<std::int64_t>(0, nowMs() - ack->atMs), ack->sha256.substr(0, 16));
  return true;
}

// The WAL waiting in the call's pg_wal/archive_status, but the files acknowledged in the spool.
std::uint64_t waitingNow(const Call& call) {
  auto acks = spool::listPushAcks(*call.spool);
  return waitingBytes(readyFiles(files::dirName(call.walPath)), {acks.begin(), acks.end()});
}

// The safety valve: acknowledges the file without storing it, after recording it in the spool's
// gap, when the queue is still past the bound once the pusher has stopped (false: it is not, push
// the file). A file the pusher stored is not dropped: its acknowledgement is used (the fast path
// uses none while a gap waits to be recorded). Nothing is dropped (false) while the spool holds
// another cluster's or repository's gap. Throws (and drops nothing) when the gap cannot be
// recorded, or while the pusher still stores files (it stops when it sees the queue past the
// bound): nothing is stored after a drop before the gap is in the repository.
bool drop(const Call& call, const pg::WalName& name) {
  // No pusher can run in a spool folder that does not exist (yet): GapLock makes it.
  int pusher = spool::takeLock(*call.spool, spool::kPushLockFile, kValveWait);
  if (pusher < 0 && errno != EWOULDBLOCK && errno != ENOENT)
    throw systemError(ErrorCode::LocalIo, errno, "cannot take the lock '{}/{}'", *call.spool,
                      spool::kPushLockFile);
  if (pusher < 0 && errno == EWOULDBLOCK)
    throw Error(ErrorCode::LocalIo,
                fmt::format("the safety valve would drop {}, but the pusher in '{}' still runs",
                            call.file, *call.spool),
                "PostgreSQL asks again; see its log there (push.log)");
  const files::Fd held(pusher);
  // The pusher may have stored more while we waited: the queue is measured again.
  std::uint64_t waiting = waitingNow(call);
  if (waiting <= call.config.archive.queueMax) return false;
  if (acknowledged(call, true)) return true;  // in the archive: nothing to record as missing
  spool::GapLock lock(*call.spool);
  auto gap = spool::readGap(*call.spool);
  if (gap && (gap->repository != call.repository || gap->systemId != *call.systemId)) {
    // One gap file holds one cluster's drops: none is added while another's waits. The push goes
    // on, and records that gap first when it is an older generation's of the stanza (pg_upgrade).
    spdlog::error(
        "the safety valve does not drop {} while {}, not this configuration's: pushing it "
        "(the valve drops again once that file is recorded or moved aside)",
        call.file, spool::describeGap(*call.spool, *gap));
    return false;
  }
  if (!gap) gap = spool::LocalGap{.repository = call.repository, .systemId = *call.systemId};
  const std::int64_t now = nowMs();
  // A segment right after the last range's extends it (the segment size is the file's size).
  bool extended = false;
  if (!gap->ranges.empty() && name.kind == pg::WalKind::Segment) {
    auto& last = gap->ranges.back();
    auto previous = pg::parseWalName(last.last);
    auto size = spool::fingerprintOf(call.walPath);
    if (previous && previous->kind == pg::WalKind::Segment && size &&
        previous->timeline == name.timeline && pg::validSegmentSize(size->size)) {
      auto segmentSize = std::uint32_t(size->size);
      if (pg::segmentNumber(name, segmentSize) == pg::segmentNumber(*previous, segmentSize) + 1) {
        last.last = call.file;
        ++last.files;
        last.lastMs = now;
        extended = true;
      }
    }
  }
  if (!extended) {
    auto local = spool::fingerprintOf(call.walPath);
    gap->ranges.push_back({.first = call.file,
                           .last = call.file,
                           .files = 1,
                           .firstMs = now,
                           .lastMs = now,
                           .writtenMs = local ? local->mtimeNs / 1000000 : now});
  }
  spool::writeGap(*call.spool, *gap);
  call.recordStat(call.file, false, 0);
  spdlog::error(
      "{} of WAL waits to be archived, more than archive.queue-max ({}): {} is acknowledged "
      "WITHOUT being stored. The archive now has a gap ({} to {}): no backup taken before it "
      "recovers past it; take a new base backup once archiving keeps up",
      humanBytes(waiting), humanBytes(call.config.archive.queueMax), call.file,
      gap->ranges.back().first, gap->ranges.back().last);
  return true;
}

// Records the spool's gap in the repository before anything is stored after it, then forgets it
// locally. A gap of another repository, or of a cluster that is none of the stanza's generations,
// stays, with an error on every call; one of an older generation (the cluster before pg_upgrade
// dropped it) is recorded for that generation.
// With archive.spool-path set, the data directory's own spool (the default) is looked at too: the
// setting may have come after a drop recorded there, which the new spool knows nothing of.
void recordGap(const PusherContext& where, const repo::Repository& repository,
               const repo::StanzaInfo& stanza) {
  if (auto other = spool::recordGap(where.folder, repository, stanza, where.systemId))
    spdlog::error(
        "{}, which is none of this stanza's clusters in {}: it stays there, and the safety valve "
        "drops nothing meanwhile; note that that archive lacks those files, then move the file "
        "aside",
        spool::describeGap(where.folder, *other), where.repository);
  if (where.config.archive.spoolPath.empty()) return;
  const std::string former =
      spool::dataDirectorySpool(where.dataDirectory) + "/" + where.config.stanza;
  if (auto other = spool::recordGap(former, repository, stanza, where.systemId))
    spdlog::error(
        "{}, which is none of this stanza's clusters in {}, and archive.spool-path names another "
        "folder now: note that that archive lacks those files, then move the file aside",
        spool::describeGap(former, *other), where.repository);
}

// Why the repository's stanza is no longer the one the pusher started with: gone (an unmounted
// mount point shows an empty folder, where a posix write would make the stanza's folders anew),
// re-created (another stanza id, perhaps another cluster's), or its encryption switched; nullopt
// while it is. Throws when it cannot be read.
std::optional<std::string> stanzaChange(const repo::Repository& repository,
                                        const repo::StanzaInfo& started) {
  auto now = repo::loadStanza(repository);
  if (!now)
    return fmt::format("the stanza is gone from {} (an unmounted mount point?)",
                       repository.describe());
  if (now->identity() != started.identity())
    return std::string("the stanza was re-created (another stanza id): the next call pushes to it");
  try {
    repo::checkEncryption(repository, *now);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::Config) return std::string(e.what());
    throw;
  }
  return std::nullopt;
}

// What the pusher's threads share: the files to push next, and why it stops.
class PushQueue {
 public:
  PushQueue(const PusherContext& context, const PusherOptions& options,
            const spool::Identity& identity)
      : context_(context), options_(options), identity_(identity) {}

  // The next file to push (in the order the archiver asks for them), or nullopt once the pusher
  // stops: nothing waited for options.idle, the server stopped, the spool was claimed for another
  // configuration, the safety valve is about to open, nothing succeeded for options.giveUp, or
  // stop() was called.
  std::optional<std::string> next() {
    std::unique_lock guard(mutex_);
    while (!reason_) {
      const auto now = std::chrono::steady_clock::now();
      checkStop(now);
      if (reason_) break;
      if ((pending_.empty() && now - listed_ > options_.poll * 5) ||
          now - listed_ > std::chrono::seconds(1))
        refill(now);
      if (reason_) break;
      while (!pending_.empty()) {
        std::string file = pending_.front();
        pending_.pop_front();
        if (inflight_.count(file) || done_.count(file)) continue;
        auto retry = retryAt_.find(file);
        if (retry != retryAt_.end() && retry->second > now) continue;
        inflight_.insert(file);
        return file;
      }
      if (now - lastWork_ > options_.idle && inflight_.empty()) {
        halt("nothing more waits", Uploads::Finish);
      } else {
        guard.unlock();
        std::this_thread::sleep_for(options_.poll);
        guard.lock();
      }
    }
    return std::nullopt;
  }

  // The outcome of a file next() gave: pushed (acknowledged), skipped (another process pushes it,
  // or it was acknowledged already), or failed (tried again later).
  enum class Outcome { Pushed, Skipped, Failed };
  void finish(const std::string& file, Outcome outcome) {
    std::lock_guard guard(mutex_);
    inflight_.erase(file);
    const auto now = std::chrono::steady_clock::now();
    switch (outcome) {
      case Outcome::Pushed:
        done_.insert(file);
        retryAt_.erase(file);
        lastWork_ = lastSuccess_ = now;
        failing_ = false;
        break;
      case Outcome::Skipped:  // not our work: it does not keep the pusher alive
        retryAt_[file] = now + options_.retry;
        break;
      case Outcome::Failed:
        retryAt_[file] = now + options_.retry;
        lastWork_ = now;
        failing_ = true;
        break;
    }
  }

  std::string reason() {
    std::lock_guard guard(mutex_);
    return reason_.value_or("");
  }

  // Whether the uploads under way must be abandoned, asked by the pusher's watchdog while every
  // upload thread may be busy: the checks next() makes before each file, and once a second the
  // list of what waits (the safety valve's bound among them), decide (halt()).
  bool abandonUploads() {
    std::lock_guard guard(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (!reason_) checkStop(now);
    if (!reason_ && now - listed_ > std::chrono::seconds(1)) refill(now);
    return abandonAt_ && now >= *abandonAt_;
  }

  // Stops the pusher: next() gives no more files (the first reason stays), and its uploads under
  // way are abandoned.
  void stop(std::string why) {
    std::lock_guard guard(mutex_);
    halt(std::move(why), Uploads::Abandon);
  }

 private:
  // What becomes of the uploads under way when the pusher stops.
  enum class Uploads {
    Finish,        // they may succeed yet, and harm nothing
    FinishAWhile,  // abandoned if they last kFinishUploadsFor
    Abandon,       // at once: they push for nobody, or where they must not
  };
  // Stops the pusher for `why` (under the mutex; the first reason stays).
  void halt(std::string why, Uploads uploads) {
    if (reason_) return;
    reason_ = std::move(why);
    const auto now = std::chrono::steady_clock::now();
    if (uploads == Uploads::Abandon) abandonAt_ = now;
    if (uploads == Uploads::FinishAWhile) abandonAt_ = now + kFinishUploadsFor;
  }

  // Whether the pusher must stop before it starts another file (under the mutex).
  void checkStop(std::chrono::steady_clock::time_point now) {
    if (failing_ && now - lastSuccess_ > options_.giveUp) {
      // Uploads under way may succeed yet (a slow one is no failure).
      halt("nothing could be pushed for " + std::to_string(options_.giveUp.count()) + " s",
           Uploads::Finish);
      return;
    }
    if (!files::exists(context_.dataDirectory + "/postmaster.pid")) {
      halt("the server stopped", Uploads::Abandon);
      return;
    }
    if (spool::recordedIdentity(context_.folder) != identity_) {
      halt("the spool was claimed for another repository, stanza or cluster", Uploads::Abandon);
      return;
    }
    if (spool::hasGap(context_.folder)) {
      halt("the safety valve dropped WAL (the next call records it first)", Uploads::Abandon);
      return;
    }
  }

  // Lists what waits (under the mutex).
  void refill(std::chrono::steady_clock::time_point now) {
    listed_ = now;
    std::vector<ReadyFile> ready;
    try {
      ready = readyFiles(context_.walDirectory);
    } catch (const Error& e) {
      halt(e.what(), Uploads::Finish);
      return;
    }
    // Acknowledgements of files that no longer wait are stale; the others need no push.
    std::set<std::string> waiting, acked, stale;
    for (const auto& file : ready)
      waiting.insert(file.name.name);
    for (const auto& file : spool::listPushAcks(context_.folder))
      if (!waiting.count(file)) {
        spool::removePushAck(context_.folder, file);
        stale.insert(file);
      } else {
        acked.insert(file);
      }
    // A file this run acknowledged is archived (no longer waits) by a call that used its
    // acknowledgement, or, now and then, by one that gave up waiting for it. Several in a row
    // archived without theirs: the archiver's calls use another spool (spool-path, the
    // repository or archive_command changed), and this pusher would go on pushing for nobody,
    // perhaps into a repository the configuration no longer names.
    std::size_t used = 0, unused = 0;
    for (const auto& file : done_)
      if (!waiting.count(file)) ++(stale.count(file) ? unused : used);
    unusedInARow_ = used ? unused : unusedInARow_ + unused;
    if (unusedInARow_ >= kUnusedAcksToStop) {
      halt(std::to_string(unusedInARow_) +
               " files it acknowledged were archived without their acknowledgement: the "
               "archiver's calls use another spool or repository (spool-path, repo or "
               "archive_command changed?)",
           Uploads::Abandon);
      return;
    }
    if (context_.config.archive.queueMax > 0 &&
        waitingBytes(ready, acked) > context_.config.archive.queueMax) {
      // Uploads near their end bring the queue back under the bound; one that lasts holds the
      // valve, which waits a minute for the pusher (kValveWait).
      halt("more WAL waits than archive.queue-max: the safety valve is about to open",
           Uploads::FinishAWhile);
      return;
    }
    // Files pushed in this run that PostgreSQL has marked done are forgotten.
    std::erase_if(done_, [&](const std::string& file) { return !waiting.count(file); });
    pending_.clear();
    for (const auto& file : ready)
      if (!acked.count(file.name.name)) pending_.push_back(file.name.name);
    // The oldest is PostgreSQL's: the file it asks for now (pushed by that call) or next. After
    // that call returns, it stays .ready for a moment: a push of it here would be a second one.
    if (!pending_.empty()) pending_.pop_front();
  }

  const PusherContext& context_;
  const PusherOptions& options_;
  const spool::Identity identity_;
  std::mutex mutex_;
  std::deque<std::string> pending_;
  std::set<std::string> inflight_, done_;
  std::map<std::string, std::chrono::steady_clock::time_point> retryAt_;
  std::chrono::steady_clock::time_point listed_{}, lastWork_ = std::chrono::steady_clock::now(),
                                                   lastSuccess_ = std::chrono::steady_clock::now();
  bool failing_ = false;
  std::size_t unusedInARow_ = 0;
  std::optional<std::string> reason_;
  // When the uploads under way are abandoned (none: they finish).
  std::optional<std::chrono::steady_clock::time_point> abandonAt_;
};

// One of the pusher's threads: pushes what the queue gives with its own repository handle, each
// file under its claim, and acknowledges it once it is durable.
void pushFiles(const PusherContext& context, PushQueue& queue, const repo::Repository& repository,
               const repo::StanzaInfo& stanza, const spool::Identity& identity) noexcept {
  while (auto file = queue.next()) {
    const auto started = std::chrono::steady_clock::now();
    auto outcome = PushQueue::Outcome::Failed;
    try {
      auto claim = spool::PushClaim::take(context.folder, *file);
      // Another process pushes it, it was pushed, or PostgreSQL archived it since the listing
      // (and may be recycling it).
      if (!claim || spool::readPushAck(context.folder, *file) ||
          !files::exists(context.walDirectory + "/archive_status/" + *file + ".ready")) {
        queue.finish(*file, PushQueue::Outcome::Skipped);
        continue;
      }
      PushResult result = pushWalFile(repository, {.walPath = context.walDirectory + "/" + *file,
                                                   .controlSystemId = context.systemId,
                                                   .stanza = &stanza});
      // The stanza is read again before the acknowledgement, which a call trusts without reading
      // the stanza: a file stored after it went (at most one per thread) is never acknowledged,
      // and the pusher stops. A read before each push too cost 14% of an S3 drain (its latency).
      if (auto changed = stanzaChange(repository, stanza)) {
        queue.stop(*changed);
        throw Error(ErrorCode::Conflict, *changed);
      }
      spool::writePushAck(context.folder, {.file = *file,
                                           .identity = identity,
                                           .size = result.summary.plainSize,
                                           .sha256 = io::toHex(result.summary.plainSha256),
                                           .local = result.local,
                                           .atMs = nowMs()});
      outcome = PushQueue::Outcome::Pushed;
      recordStat(context.folder, context.config, *file, true, msSince(started));
      spdlog::info("pushed ahead {}: {} in, {} stored, {} ms", *file,
                   humanBytes(result.summary.plainSize), humanBytes(result.summary.storedSize),
                   msSince(started));
    } catch (const std::exception& e) {
      // An upload abandoned because the pusher stops is no failure of the repository's.
      if (queue.reason().empty())
        recordStat(context.folder, context.config, *file, false, msSince(started));
      spdlog::warn("could not push {} ahead (it is pushed when PostgreSQL asks for it): {}", *file,
                   e.what());
    }
    queue.finish(*file, outcome);
  }
}

}  // namespace

void runPusher(const PusherContext& context, const PusherOptions& options, int lock) {
  if (lock < 0) lock = spool::takeLock(context.folder, spool::kPushLockFile);
  if (lock < 0) return;
  const files::Fd held(lock);
  // Set when the pusher must stop: uploads under way end then (S3) instead of running on for as
  // long as a slow server or middlebox keeps them, holding the lock the safety valve waits for.
  std::atomic<bool> abandon{false};
  repo::Repository repository = repo::openRepository(context.config, &abandon);
  repo::StanzaInfo stanza = repo::requireStanza(repository);
  repo::checkEncryption(repository, stanza);
  repo::requireStanzaKey(repository);
  const spool::Identity identity{.repository = context.repository,
                                 .stanzaId = stanza.identity(),
                                 .systemId = context.systemId};
  // The call that started it claimed the spool; one that claimed it since for another
  // configuration is not overruled.
  if (spool::recordedIdentity(context.folder) != identity) {
    spdlog::info("pusher not started: the spool '{}' is not claimed for {} and this cluster",
                 context.folder, context.repository);
    return;
  }
  recordGap(context, repository, stanza);
  spool::removeStalePushClaims(context.folder);
  // A prefetcher killed with the server (systemd kills what is left of the service) left its
  // segments; out of recovery none starts again to remove them.
  if (!files::exists(context.dataDirectory + "/recovery.signal") &&
      !files::exists(context.dataDirectory + "/standby.signal") &&
      spool::waitForLock(context.folder, spool::kPrefetchLockFile, std::chrono::milliseconds(0)))
    spool::removeFetchedFolder(context.folder);
  const int parallel = std::clamp(context.config.archive.pushAhead, 1, 64);
  spdlog::info("pusher started for {} ({} at once)", context.folder,
               plural(std::uint64_t(parallel), "file", "files"));
  PushQueue queue(context, options, identity);
  const Watchdog watchdog([&] { return queue.abandonUploads(); }, abandon,
                          std::max(options.poll, kWatchEvery));
  if (!watchdog.watching())
    spdlog::warn("uploads under way finish before the pusher stops: cannot start a thread");
  std::vector<std::thread> threads;
  for (int i = 1; i < parallel && repository.canOpenAnother(); ++i) {
    try {
      threads.emplace_back(pushFiles, std::cref(context), std::ref(queue), repository.another(),
                           std::cref(stanza), std::cref(identity));
    } catch (const std::exception& e) {
      spdlog::warn("pushing fewer files at once: {}", e.what());
      break;
    }
  }
  pushFiles(context, queue, repository, stanza, identity);
  for (auto& thread : threads)
    thread.join();
  spdlog::info("pusher stopped: {}", queue.reason());
}

void startPusher(const PusherContext& context) noexcept {
  try {
    // Taken here and handed over: no second call starts one while this one gets going.
    int lock = spool::takeLock(context.folder, spool::kPushLockFile);
    if (lock < 0) return;  // one runs (or the lock cannot be made: nothing to start)
    const files::Fd held(lock);
    spool::startDetached(
        context.folder, kPusherLog, "tidemark-pusher", context.config,
        [&](int held) {
          runPusher(context, {}, held);
          return 0;
        },
        lock);
  } catch (const std::exception& e) {
    spdlog::warn("push-ahead is off for this call: {}", e.what());
  }
}

void archivePush(const Config& config, const std::string& walPath) {
  const auto started = std::chrono::steady_clock::now();
  Call call{.config = config, .walPath = walPath, .file = files::baseName(walPath)};
  call.systemId = pg::controlSystemId(".");
  // Root refuses a data directory of another user's before it writes anything there, and uses no
  // spool elsewhere (archive.spool-path's files would be root's: docs/decisions.md).
  if (call.systemId) files::refuseRootIn(".", "the data directory", "tidemark-archive-push");
  if (call.systemId || ::geteuid() != 0)
    call.spool = spool::stanzaSpool(
        config, call.systemId ? std::optional<std::string>(std::string(".")) : std::nullopt);
  call.repository = repo::describeRepository(config);
  // Push-ahead and the safety valve work in a data directory, whose pg_wal/archive_status tells
  // what waits.
  const bool local = call.spool && call.systemId;
  const bool ahead = local && config.archive.pushAhead > 0;
  // PostgreSQL asks only for a file it marked .ready. A run by hand (a file archived before,
  // pushed again once its damaged object was moved aside: docs/verify.md) is never answered from
  // an acknowledgement or dropped by the safety valve: it stores the file, or fails.
  const bool asked =
      local &&
      ::access((files::dirName(walPath) + "/archive_status/" + call.file + ".ready").c_str(),
               F_OK) == 0;
  // The pusher may be pushing it now: waiting for it is cheaper than pushing it twice. One
  // deadline for every wait of the call.
  const auto waitUntil = std::chrono::steady_clock::now() + kPushedWait;
  auto waitForPusher = [&] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        waitUntil - std::chrono::steady_clock::now());
    if (spool::waitWhilePushed(*call.spool, call.file,
                               std::max(left, std::chrono::milliseconds(0))))
      return true;
    spdlog::warn("{} is still being pushed by the pusher after {} s; pushing it", call.file,
                 std::chrono::seconds(kPushedWait).count());
    return false;
  };
  // While a gap waits to be recorded, an acknowledgement is used only by the valve (drop): the
  // slow path records the gap before it stores anything.
  if (asked && !spool::hasGap(*call.spool)) {
    if (ahead) waitForPusher();
    if (acknowledged(call)) {
      if (ahead) startPusher(call.pusher());  // keeps what waits moving between calls
      return;
    }
  }

  std::optional<std::vector<ReadyFile>> ready;
  if (local && (config.archive.pushAhead > 0 || config.archive.queueMax > 0)) {
    try {
      ready = readyFiles(files::dirName(walPath));
    } catch (const Error& e) {
      spdlog::warn("push-ahead and the safety valve are off for this call: {}", e.what());
    }
  }
  auto name = pg::parseWalName(call.file);
  std::set<std::string> acked;
  if (ready) {
    auto acks = spool::listPushAcks(*call.spool);
    acked.insert(acks.begin(), acks.end());
  }
  if (asked && ready && config.archive.queueMax > 0 && name && name->kind != pg::WalKind::History) {
    // .history files are never dropped: a lost history breaks 'latest' and lets a timeline
    // number be used twice.
    std::uint64_t waiting = waitingBytes(*ready, acked);
    if (waiting > config.archive.queueMax && drop(call, *name)) return;
  }

  PushResult result;
  try {
    repo::Repository repository = repo::openRepository(config);
    repo::StanzaInfo stanza = repo::requireStanza(repository);
    repo::checkEncryption(repository, stanza);
    // The key that signed stanza.json must be among this call's (requireStanzaKey): read from its
    // MAC record, unless the spool remembers, from the last kStanzaSignerTtl, a signer this call's
    // keys include (one S3 request per call less; a key-file changed to a wrong key is not among
    // them, and reads it again).
    auto checkStanzaKey = [&](bool spoolUsable) {
      if (!repo::authenticatesMetadata(repository)) return;
      const std::string id = stanza.identity();
      const std::int64_t now = std::time(nullptr);
      // (An unreadable cache is no cache: readStanzaSigner never throws.)
      if (spoolUsable)
        if (auto cached = spool::readStanzaSigner(*call.spool, id, now);
            cached && repository.keys().findHex(*cached))
          return;
      auto signer = repo::requireStanzaKey(repository);
      try {
        if (spoolUsable && signer) spool::writeStanzaSigner(*call.spool, id, *signer, now);
      } catch (const Error& e) {
        spdlog::debug("cannot remember stanza.json's signer in the spool: {}", e.what());
      }
    };
    std::optional<spool::PushClaim> claim;  // ours while we push it: the pusher leaves it alone
    if (!local) checkStanzaKey(false);
    if (local) {
      bool spoolUsable = true;
      try {
        spool::claim(*call.spool, {.repository = call.repository,
                                   .stanzaId = stanza.identity(),
                                   .systemId = *call.systemId});
        if (ahead) {
          claim = spool::PushClaim::take(*call.spool, call.file);
          // The pusher took it a moment ago: wait for it once more.
          const bool waited = !claim && waitForPusher();
          // Pushed and acknowledged since the fast path looked (while this call opened the
          // repository), or while it waited: left unused, it would be pushed twice.
          if (asked && (claim || waited) && !spool::hasGap(*call.spool) && acknowledged(call, true))
            return;
          if (waited) claim = spool::PushClaim::take(*call.spool, call.file);
        }
      } catch (const Error& e) {
        // A full or read-only spool costs push-ahead, never the push (one whose gap file cannot
        // be looked at fails it below: a drop recorded there may be unknown).
        spdlog::warn("push-ahead is off for this call: {}", e.what());
        spoolUsable = false;
      }
      checkStanzaKey(spoolUsable);
      // Before anything is stored after a drop (an error here fails the push).
      recordGap(call.pusher(), repository, stanza);
      // More waits than this file: the pusher takes it on, beside this push and after this call.
      // Not while a gap stays unrecorded (another repository's or cluster's): it would stop at
      // once, after one more error line, on every call.
      if (ahead && ready && spoolUsable && !spool::hasGap(*call.spool) &&
          !chooseAhead(*ready, call.file, 1, acked).empty())
        startPusher(call.pusher());
    }
    result = pushWalFile(repository,
                         {.walPath = walPath, .controlSystemId = call.systemId, .stanza = &stanza});
  } catch (...) {
    call.recordStat(call.file, false, msSince(started));
    throw;
  }
  const auto ms = msSince(started);
  call.recordStat(call.file, true, ms);
  if (result.outcome == PushOutcome::AlreadyArchived) {
    spdlog::info("{} is already archived with the same content (SHA-256 {}), nothing to do ({} ms)",
                 result.name.name, io::toHex(result.summary.plainSha256).substr(0, 16), ms);
    return;
  }
  const auto& s = result.summary;
  spdlog::info("pushed {}: {} in, {} stored ({:.1f}x, {}{}), {} ms", result.name.name,
               humanBytes(s.plainSize), humanBytes(s.storedSize),
               s.storedSize ? double(s.plainSize) / double(s.storedSize) : 0.0,
               io::compressName(s.compress),
               s.encryption == io::EncryptType::None ? "" : ", aes-256-gcm", ms);
}

}  // namespace tidemark::archive
