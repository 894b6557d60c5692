// tidemark-archive-push: store one WAL file in the repository, durably and verifiably.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/config/config.h"
#include "common/pg/wal.h"
#include "common/repo/object.h"
#include "common/repo/repository.h"
#include "common/repo/stanza.h"
#include "common/spool/spool.h"

namespace tidemark::archive {

struct PushParams {
  std::string walPath;  // the file to push (absolute, or relative to the working directory)
  // The system identifier in the data directory's pg_control, when known: files without a page
  // header (.history, .backup) are checked against the stanza with it.
  std::optional<std::uint64_t> controlSystemId;
  // The stanza, when the caller has read it already (push-ahead's workers share one read);
  // otherwise the worker reads stanza.json.
  const repo::StanzaInfo* stanza = nullptr;
};

enum class PushOutcome {
  Stored,           // a new object was committed
  AlreadyArchived,  // the repository already held this exact content (a retry after a crash)
};

struct PushResult {
  PushOutcome outcome = PushOutcome::Stored;
  pg::WalName name;
  repo::ObjectSummary summary;  // of the bytes pushed; storedSize is 0 when AlreadyArchived
  spool::Fingerprint local;     // of the file pushed, the same before and after it was read
};

// The worker: checks the file, stores it under its name without ever replacing an existing
// object, and on a name collision compares checksums. Reads no globals: callable from a thread
// with its own Repository handle. Throws Error: InvalidInput (not a WAL file), ForeignCluster,
// Conflict (different content already archived), Corrupt (the archived copy is damaged),
// InvalidInput also when the file changed while it was read,
// Config (the stanza records another encryption type, or the stored copy's key is missing),
// Storage, LocalIo.
PushResult pushWalFile(const repo::Repository& repository, const PushParams& params);

// The command PostgreSQL runs for each file (docs/archiving.md): returns at once for a file
// push-ahead acknowledged; drops the file when the safety valve (archive.queue-max) is open;
// otherwise pushes `walPath` with the configured repository, and beside it up to
// archive.push-ahead of the next .ready files in parallel, acknowledging each in the spool.
// Throws the error of `walPath`'s push; the others' failures are warnings (PostgreSQL asks again).
void archivePush(const Config& config, const std::string& walPath);

}  // namespace tidemark::archive
