// tidemark-archive-get: the fetch worker and the command around it.
#include "archive-get/get.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/base/text.h"
#include "common/files/file.h"
#include "common/pg/wal.h"
#include "common/repo/layout.h"
#include "common/repo/stanza.h"

namespace tidemark::archive {

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
  files::AtomicFile file(params.destination,
                         {.noReplace = false, .mode = 0600, .errorCode = ErrorCode::LocalIo});
  GetResult result;
  auto summary = repository.readObject(repo::walObject(repository.stanza(), *name), file,
                                       pg::maxWalFileSize(*name, stanza->walSegmentSize));
  if (!summary) return result;  // `file` is discarded unpublished
  file.commit();
  result.outcome = GetOutcome::Restored;
  result.summary = *summary;
  return result;
}

GetOutcome archiveGet(const Config& config, const std::string& walName,
                      const std::string& destination) {
  auto started = std::chrono::steady_clock::now();
  repo::Repository repository = repo::openRepository(config);
  GetParams params{.walName = walName, .destination = destination};
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    try {
      GetResult result = getWalFile(repository, params);
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - started)
                    .count();
      if (result.outcome == GetOutcome::NotFound) {
        // PostgreSQL probes for files that do not exist (each timeline's .history): stay quiet.
        spdlog::debug("{} is not in the repository", walName);
      } else {
        spdlog::info("restored {}: {} ({} stored), {} ms", walName,
                     humanBytes(result.summary.plainSize), humanBytes(result.summary.storedSize),
                     ms);
      }
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

int failureStatus(ErrorCode code, const std::string& dataDirectory) {
  if (::access((dataDirectory + "/standby.signal").c_str(), F_OK) == 0) return exitStatus(code);
  return 255;
}

}  // namespace tidemark::archive
