// Storing a WAL file (segment, .history, .backup) under its name: never replacing an object, and
// telling a retry of the same content from a conflict. archive-push stores what PostgreSQL
// archives; tidemark-basebackup stores timeline history files the archive never received.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "common/io/sink.h"
#include "common/pg/wal.h"
#include "common/repo/object.h"
#include "common/repo/repository.h"

namespace tidemark::repo {

enum class WalStoreOutcome {
  Stored,         // a new object was committed
  AlreadyStored,  // the repository already held this exact content (a retry after a crash)
};

struct WalStoreResult {
  WalStoreOutcome outcome = WalStoreOutcome::Stored;
  ObjectSummary summary;  // of the bytes written; storedSize is 0 when AlreadyStored
};

// Writes `name`'s object (in generation `generation`'s WAL folder) with `fill` (which writes the
// file's bytes into the sink, and throws to abandon the write), committing it only if no object has
// that name. When one has: the same content is AlreadyStored; different content is Error(Conflict)
// and a damaged stored copy Error(Corrupt), both naming the object and leaving it unchanged.
// `sizeHint` bounds what the stored copy may decompress to when it is compared (pg::maxWalFileSize
// with it). `plainSize`, when the caller knows it before `fill` runs, is exactly how many bytes
// `fill` writes: an uncompressed object's size then follows from it, and the storage may send the
// object while `fill` writes it (s3); `fill` writing another number of bytes fails the store.
WalStoreResult storeWalFile(const Repository& repository, int generation, const pg::WalName& name,
                            std::uint32_t sizeHint, const std::function<void(io::Sink&)>& fill,
                            std::optional<std::uint64_t> plainSize = std::nullopt);

}  // namespace tidemark::repo
