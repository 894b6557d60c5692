// Storing a WAL file under its name, never replacing one.
#include "common/repo/wal_store.h"

#include <fmt/format.h>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/io/hash.h"
#include "common/repo/layout.h"

namespace tidemark::repo {

WalStoreResult storeWalFile(const Repository& repository, int generation, const pg::WalName& name,
                            std::uint32_t sizeHint, const std::function<void(io::Sink&)>& fill,
                            std::optional<std::uint64_t> plainSize) {
  WalStoreResult result;
  std::string path = walObject(repository.stanza(), generation, name);
  const ObjectOptions options = repository.objectOptions();
  std::optional<std::uint64_t> size;
  if (plainSize) size = storedSize(options, *plainSize);
  ObjectWriter writer(repository.storage().newWrite(path, {.noReplace = true, .size = size}), path,
                      options);
  fill(writer);
  writer.close();
  result.summary = writer.summary();
  if (writer.commit()) return result;

  // The name is taken: a retry of a store that completed (PostgreSQL re-runs archive_command
  // after a crash) or a second writer. Same content is success; anything else is refused.
  std::optional<ObjectSummary> existing;
  try {
    existing = repository.verifyObject(path, pg::maxWalFileSize(name, sizeHint));
  } catch (const Error& e) {
    if (e.code() != ErrorCode::Corrupt) throw;
    throw Error(
        ErrorCode::Corrupt,
        fmt::format("WAL file '{}' is already archived, but the stored copy is damaged: {}",
                    name.name, e.what()),
        fmt::format(
            "tidemark never overwrites WAL: keep the damaged object '{}' aside for inspection, "
            "then the next attempt stores the file again",
            path));
  }
  if (!existing)  // removed between our publish attempt and the read: let the caller retry
    throw error(ErrorCode::Storage,
                "'{}' vanished while being compared; the next attempt will store it", path);
  if (existing->plainSha256 != result.summary.plainSha256 ||
      existing->plainSize != result.summary.plainSize)
    throw Error(
        ErrorCode::Conflict,
        fmt::format(
            "WAL file '{}' is already archived with different content (stored SHA-256 {}, {} "
            "bytes; this file {}, {} bytes); the stored copy is unchanged",
            name.name, io::toHex(existing->plainSha256), existing->plainSize,
            io::toHex(result.summary.plainSha256), result.summary.plainSize),
        fmt::format("tidemark never overwrites WAL: check that no other cluster archives to stanza "
                    "'{}', and find out which copy is right before moving the stored one aside",
                    repository.stanza()));
  result.outcome = WalStoreOutcome::AlreadyStored;
  result.summary.storedSize = 0;
  return result;
}

}  // namespace tidemark::repo
