// tidemark-archive-push: store one WAL file in the repository, durably and verifiably.
#pragma once

#include <chrono>
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
  // The stanza, when the caller has read it already and checked its key (requireStanzaKey;
  // push-ahead's workers share one read); otherwise the worker reads stanza.json and does so.
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

// Where the pusher works: one data directory's WAL, the stanza's spool folder, and for whom.
struct PusherContext {
  const Config& config;
  std::string folder;      // the stanza's spool folder (spool::stanzaSpool)
  std::uint64_t systemId;  // of the data directory's cluster
  std::string repository;  // repo::describeRepository(config)
  std::string walDirectory = "pg_wal";
  std::string dataDirectory = ".";
};

struct PusherOptions {
  // Nothing waited this long: the backlog is drained.
  std::chrono::milliseconds idle{2000};
  std::chrono::milliseconds poll{20};
  // A file whose push failed is tried again after this long; nothing pushed for `giveUp` (and a
  // failure): the repository is away, and the calls of PostgreSQL report why.
  std::chrono::milliseconds retry{1000};
  std::chrono::seconds giveUp{30};
};

// The pusher (what startPusher runs in the background; tests run it directly): one per spool
// folder (a lock), it pushes the .ready files of the WAL directory in the archiver's order with
// archive.push-ahead threads, each file under its PushClaim, and acknowledges each in the spool
// once it is durable. Returns once nothing waited for options.idle, the server stopped (no
// postmaster.pid), the spool was claimed for another repository, stanza or cluster, files it
// acknowledged were archived without their acknowledgements (the archiver's calls use another
// spool), the safety valve dropped or is about to drop WAL, or nothing succeeded for
// options.giveUp (all checked before each file it starts, and every 200 ms while uploads run: S3
// uploads under way are then abandoned, never acknowledged), or the stanza is gone, was re-created
// or its encryption switched (read before each push and again before its acknowledgement: a file
// pushed meanwhile is not acknowledged); at once when another pusher runs, or when the spool is not
// claimed for this configuration and cluster (the call that starts it claims it). `lock`: the
// pusher's lock (spool::kPushLockFile) when the caller took it already (startPusher hands it over);
// -1: taken here. Throws when the repository or the stanza cannot be opened.
void runPusher(const PusherContext& context, const PusherOptions& options = {}, int lock = -1);

// Starts the pusher in the background when none runs. Never throws: a pusher that cannot start
// is a warning, never a failed push.
void startPusher(const PusherContext& context) noexcept;

// The command PostgreSQL runs for each file (docs/archiving.md): returns at once for a file
// the pusher acknowledged (waiting first while the pusher pushes it); drops the file when the
// safety valve (archive.queue-max) is open; otherwise pushes `walPath` with the configured
// repository and, when more files wait, starts the pusher (archive.push-ahead), which pushes them
// in parallel beside this call and after it.
// Throws the error of `walPath`'s push; the pusher's failures are in its log (PostgreSQL asks
// again, and that call reports them).
void archivePush(const Config& config, const std::string& walPath);

}  // namespace tidemark::archive
