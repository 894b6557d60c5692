// tidemark-archive-push: the push worker and the command around it.
#include "archive-push/push.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <chrono>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/files/file.h"
#include "common/pg/control.h"
#include "common/repo/generation.h"
#include "common/repo/layout.h"
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
  repo::StanzaInfo stanza = repo::requireStanza(repository);
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
  result.outcome = stored.outcome == repo::WalStoreOutcome::Stored ? PushOutcome::Stored
                                                                   : PushOutcome::AlreadyArchived;
  result.summary = stored.summary;
  return result;
}

namespace {

// Appends the push's statistic to the spool (tidemark metrics reads them): the configured one,
// else pg_wal/tidemark of the data directory when archive-push runs in one.
void recordPushStat(const Config& config, const std::string& walPath, bool inDataDirectory, bool ok,
                    std::int64_t durationMs) {
  auto spool = spool::spoolDirectory(
      config, inDataDirectory ? std::optional<std::string>(std::string(".")) : std::nullopt);
  if (!spool) return;
  auto now = std::chrono::system_clock::now().time_since_epoch();
  spool::recordPush(
      *spool, {.finishedMs = std::chrono::duration_cast<std::chrono::milliseconds>(now).count(),
               .durationMs = durationMs,
               .ok = ok,
               .file = files::baseName(walPath),
               .stanza = config.stanza});
}

}  // namespace

void archivePush(const Config& config, const std::string& walPath) {
  auto started = std::chrono::steady_clock::now();
  auto elapsedMs = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 started)
        .count();
  };
  // PostgreSQL runs archive_command in the data directory: its pg_control names the cluster of a
  // file without a page header, and its pg_wal holds the spool.
  const std::optional<std::uint64_t> controlSystemId = pg::controlSystemId(".");
  const bool inDataDirectory = controlSystemId.has_value();
  PushResult result;
  try {
    repo::Repository repository = repo::openRepository(config);
    result = pushWalFile(repository, {.walPath = walPath, .controlSystemId = controlSystemId});
  } catch (...) {
    recordPushStat(config, walPath, inDataDirectory, false, elapsedMs());
    throw;
  }
  const auto ms = elapsedMs();
  recordPushStat(config, walPath, inDataDirectory, true, ms);
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
