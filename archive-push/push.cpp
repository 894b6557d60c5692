// tidemark-archive-push: the push worker and the command around it.
#include "archive-push/push.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <chrono>
#include <set>
#include <thread>

#include "archive-push/queue.h"
#include "common/base/error.h"
#include "common/base/text.h"
#include "common/files/file.h"
#include "common/pg/control.h"
#include "common/repo/generation.h"
#include "common/repo/layout.h"
#include "common/repo/marks.h"
#include "common/repo/stanza.h"
#include "common/repo/wal_store.h"
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

// One call of the command: the file PostgreSQL asked for and where its local state lives.
struct Call {
  const Config& config;
  std::string walPath, file;
  // The data directory's system identifier: PostgreSQL runs archive_command in the data
  // directory, whose pg_control names the cluster of a file without a page header.
  std::optional<std::uint64_t> systemId;
  std::optional<std::string> spool;  // the stanza's spool folder, when there is one
  std::string repository;            // how the configured repository describes itself

  // Appends a push's statistic to the spool (tidemark metrics reads them).
  void recordStat(const std::string& name, bool ok, std::int64_t durationMs) const {
    if (spool)
      spool::recordPush(*spool, {.finishedMs = nowMs(),
                                 .durationMs = durationMs,
                                 .ok = ok,
                                 .file = name,
                                 .stanza = config.stanza});
  }
};

// Whether push-ahead acknowledged the file: its acknowledgement was written under the spool's
// identity, names the repository the configuration names and the cluster of this data directory,
// and the file is still the one that was pushed. The acknowledgement goes either way: a used one
// is not needed again (PostgreSQL marks the file done), a stale one never will be.
bool acknowledged(const Call& call) {
  auto ack = spool::readPushAck(*call.spool, call.file);
  if (!ack) return false;
  spool::removePushAck(*call.spool, call.file);
  if (auto stale =
          spool::untrusted(*call.spool, *ack, call.repository, *call.systemId, call.walPath)) {
    spdlog::info("ignored the acknowledgement of {}: {}; pushing it", call.file, *stale);
    return false;
  }
  spdlog::info("{} was pushed ahead {} ms ago (SHA-256 {}), acknowledged", call.file,
               std::max<std::int64_t>(0, nowMs() - ack->atMs), ack->sha256.substr(0, 16));
  return true;
}

// The safety valve: acknowledges the file without storing it, after recording it in the spool's
// gap. Throws (and drops nothing) when the gap cannot be recorded.
void drop(const Call& call, const pg::WalName& name, std::uint64_t waiting) {
  spool::GapLock lock(*call.spool);
  auto gap = spool::readGap(*call.spool);
  if (gap && (gap->repository != call.repository || gap->systemId != *call.systemId))
    throw Error(ErrorCode::LocalIo,
                fmt::format("'{}/{}' records WAL dropped from the archive of {} (system identifier "
                            "{}), not this configuration's: nothing more is dropped",
                            *call.spool, spool::kGapFile, gap->repository, gap->systemId),
                "record what it says (that archive lacks those files), then move it aside");
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
}

// Records the spool's gap in the repository before anything is stored after it, then forgets it
// locally. A gap of another repository or cluster stays, with an error on every call.
void recordGap(const Call& call, const repo::Repository& repository, const std::string& stanzaId) {
  if (!spool::hasGap(*call.spool)) return;
  spool::GapLock lock(*call.spool);
  auto gap = spool::readGap(*call.spool);
  if (!gap) return;
  if (gap->repository != call.repository || gap->systemId != *call.systemId) {
    spdlog::error(
        "'{}/{}' records WAL dropped from the archive of {} (system identifier {}), which this "
        "configuration does not name: it is left there for you to read",
        *call.spool, spool::kGapFile, gap->repository, gap->systemId);
    return;
  }
  for (const auto& range : gap->ranges)
    repo::writeGapRecord(repository, stanzaId,
                         {.systemId = gap->systemId,
                          .first = range.first,
                          .last = range.last,
                          .files = range.files,
                          .firstDroppedMs = range.firstMs,
                          .lastDroppedMs = range.lastMs,
                          .firstWrittenMs = range.writtenMs});
  spool::removeGap(*call.spool);
  for (const auto& range : gap->ranges)
    spdlog::error("recorded in {} that the safety valve dropped {} to {} ({})",
                  repository.describe(), range.first, range.last,
                  plural(range.files, "file", "files"));
}

// Pushes `file` of the WAL directory on its own thread's handle and acknowledges it.
void pushAhead(const Call& call, repo::Repository repository, const repo::StanzaInfo& stanza,
               const spool::Identity& identity, const std::string& file) noexcept {
  const auto started = std::chrono::steady_clock::now();
  try {
    PushResult result =
        pushWalFile(repository, {.walPath = files::dirName(call.walPath) + "/" + file,
                                 .controlSystemId = call.systemId,
                                 .stanza = &stanza});
    spool::writePushAck(*call.spool, {.file = file,
                                      .identity = identity,
                                      .size = result.summary.plainSize,
                                      .sha256 = io::toHex(result.summary.plainSha256),
                                      .local = result.local,
                                      .atMs = nowMs()});
    call.recordStat(file, true, msSince(started));
    spdlog::info("pushed ahead {}: {} in, {} stored, {} ms", file,
                 humanBytes(result.summary.plainSize), humanBytes(result.summary.storedSize),
                 msSince(started));
  } catch (const std::exception& e) {
    call.recordStat(file, false, msSince(started));
    spdlog::warn("could not push {} ahead (it is pushed when PostgreSQL asks for it): {}", file,
                 e.what());
  }
}

}  // namespace

void archivePush(const Config& config, const std::string& walPath) {
  const auto started = std::chrono::steady_clock::now();
  Call call{.config = config, .walPath = walPath, .file = files::baseName(walPath)};
  call.systemId = pg::controlSystemId(".");
  call.spool = spool::stanzaSpool(
      config, call.systemId ? std::optional<std::string>(std::string(".")) : std::nullopt);
  call.repository = repo::describeRepository(config);
  // Push-ahead and the safety valve work in a data directory, whose pg_wal/archive_status tells
  // what waits.
  const bool local = call.spool && call.systemId;
  // After a drop, nothing returns 0 before the gap is in the repository (the slow path records it).
  if (local && !spool::hasGap(*call.spool) && acknowledged(call)) return;

  std::optional<std::vector<ReadyFile>> ready;
  if (local && (config.archive.pushAhead > 0 || config.archive.queueMax > 0)) {
    try {
      ready = readyFiles(files::dirName(walPath));
    } catch (const Error& e) {
      spdlog::warn("push-ahead and the safety valve are off for this call: {}", e.what());
    }
  }
  auto name = pg::parseWalName(call.file);
  if (ready && config.archive.queueMax > 0 && name && name->kind != pg::WalKind::History) {
    // .history files are never dropped: a lost history breaks 'latest' and lets a timeline
    // number be used twice.
    std::vector<std::string> acks = spool::listPushAcks(*call.spool);
    std::uint64_t waiting = waitingBytes(*ready, {acks.begin(), acks.end()});
    if (waiting > config.archive.queueMax) return drop(call, *name, waiting);
  }

  PushResult result;
  std::vector<std::thread> workers;
  std::exception_ptr failure;
  try {
    repo::Repository repository = repo::openRepository(config);
    repo::StanzaInfo stanza = repo::requireStanza(repository);
    // Once, before the workers share it (a switch of encryption type rewrites stanza.json).
    repo::checkEncryption(repository, stanza);
    std::vector<std::string> ahead;
    spool::Identity identity;
    bool spoolUsable = local;
    if (local) {
      identity = {
          .repository = call.repository, .stanzaId = stanza.identity(), .systemId = *call.systemId};
      try {
        spool::claim(*call.spool, identity);
      } catch (const Error& e) {
        // A full or read-only spool costs push-ahead, never the push.
        spdlog::warn("push-ahead is off for this call: {}", e.what());
        spoolUsable = false;
      }
      // Before anything is stored after a drop (an error here fails the push).
      recordGap(call, repository, stanza.identity());
    }
    if (ready && spoolUsable && config.archive.pushAhead > 0 && repository.canOpenAnother()) {
      // Acknowledgements of files that no longer wait are stale; the others need no push.
      std::set<std::string> waiting, acked;
      for (const auto& file : *ready)
        waiting.insert(file.name.name);
      for (const auto& file : spool::listPushAcks(*call.spool))
        if (!waiting.count(file))
          spool::removePushAck(*call.spool, file);
        else
          acked.insert(file);
      ahead = chooseAhead(*ready, call.file, config.archive.pushAhead, acked);
    }
    for (const auto& file : ahead) {
      try {
        workers.emplace_back(pushAhead, std::cref(call), repository.another(), std::cref(stanza),
                             std::cref(identity), file);
      } catch (const std::system_error& e) {
        spdlog::warn("pushing fewer files ahead: cannot start a thread: {}", e.what());
        break;
      }
    }
    try {
      result = pushWalFile(
          repository, {.walPath = walPath, .controlSystemId = call.systemId, .stanza = &stanza});
    } catch (...) {
      failure = std::current_exception();
    }
    for (auto& worker : workers)
      worker.join();
    workers.clear();
  } catch (...) {
    for (auto& worker : workers)
      worker.join();
    failure = std::current_exception();
  }
  if (failure) {
    call.recordStat(call.file, false, msSince(started));
    std::rethrow_exception(failure);
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
