// tidemark's local state on the database host, under one folder (`archive.spool-path`, by default
// pg_wal/tidemark in the data directory), one subfolder per stanza:
//
//   <spool>/<stanza>/identity              whose state this is: repository, stanza id, system id
//   <spool>/<stanza>/push/<file>.ok        push-ahead's acknowledgements (archive-push)
//   <spool>/<stanza>/push/<file>.pushing   held (flock) while a process pushes the file
//   <spool>/<stanza>/push.lock, push.log   the pusher's lock and log (archive-push)
//   <spool>/<stanza>/get/                  the prefetched segments (archive-get)
//   <spool>/<stanza>/prefetch.lock, .log   the prefetcher's lock and log (archive-get)
//   <spool>/<stanza>/gap                   WAL the safety valve dropped, not yet recorded in
//                                          the repository
//   <spool>/<stanza>/push-stats            the statistics of the last pushes (tidemark metrics)
//
// A stanza folder whose identity differs from the configuration's (another repository, a
// re-created stanza, a data directory cloned with its pg_wal) is emptied before use, never
// trusted (claim()). Nothing here is ever read as the truth about the repository without that.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/config/config.h"

namespace tidemark::spool {

// A data directory's own spool, the default: <dataDirectory>/pg_wal/tidemark.
std::string dataDirectorySpool(const std::string& dataDirectory);
// The spool folder: archive.spool-path when set, else dataDirectorySpool(dataDirectory). nullopt
// when neither is known (no spool-path and no data directory).
std::optional<std::string> spoolDirectory(const Config& config,
                                          const std::optional<std::string>& dataDirectory);
// Every spool of this host that may hold state of the cluster: spoolDirectory(), and the data
// directory's own spool too when archive.spool-path names another (the setting may have come
// after a drop recorded there). Empty when neither is known.
std::vector<std::string> spoolDirectories(const Config& config,
                                          const std::optional<std::string>& dataDirectory);
// The folder of `config.stanza` in that spool.
std::optional<std::string> stanzaSpool(const Config& config,
                                       const std::optional<std::string>& dataDirectory);

// ---- identity -------------------------------------------------------------------------------

// Whose state a stanza folder holds.
struct Identity {
  std::string repository;  // repo::describeRepository(config): the type and location
  std::string stanzaId;    // the stanza's own identifier (StanzaInfo::identity())
  std::uint64_t systemId = 0;
  bool operator==(const Identity&) const = default;
};

inline constexpr const char* kIdentityFile = "identity";
inline constexpr const char* kGapFile = "gap";

// The identity recorded in `folder`; nullopt when there is none or it does not parse.
std::optional<Identity> recordedIdentity(const std::string& folder);

// Makes `folder` (created with mode 0700, its parent too when missing) the state of `identity`:
// when it records another identity, or none, everything in it is removed first (a warning names
// what it belonged to), then the identity is written durably. Returns whether anything was
// discarded. Throws Error(LocalIo) when the folder cannot be made, emptied or claimed.
bool claim(const std::string& folder, const Identity& identity);

// Removes what tidemark keeps in `folder` but the gap (which names its own repository): for a data
// directory that starts a new life (tidemark-recover). Never throws: what cannot be removed is a
// warning, and claim() discards it later anyway.
void discard(const std::string& folder) noexcept;

// ---- push acknowledgements and prefetched segments
// ------------------------------------------------------------------

// What makes a local file the one an acknowledgement was written for: any write, rename or copy
// changes one of these.
struct Fingerprint {
  std::uint64_t device = 0, inode = 0, size = 0;
  std::int64_t mtimeNs = 0, ctimeNs = 0;
  bool operator==(const Fingerprint&) const = default;
};
// The fingerprint of an open file (Error(LocalIo) when fstat fails) or of a path (nullopt when it
// does not exist).
Fingerprint fingerprintOf(int fd, const std::string& path);
std::optional<Fingerprint> fingerprintOf(const std::string& path);

// What the spool vouches for about one WAL file: a push acknowledgement (`file` is committed in
// the repository of `identity`, with this size and plain SHA-256, pushed from the local file with
// fingerprint `local`) or a prefetched segment (verified from that repository and written to the
// spool file with fingerprint `local`).
struct FileRecord {
  std::string file;
  Identity identity;
  std::uint64_t size = 0;
  std::string sha256;  // hex
  Fingerprint local;
  std::int64_t atMs = 0;  // when it was pushed or fetched (UTC, milliseconds since the epoch)
  // A prefetched segment: how many CREATE TABLESPACE records begin and end in it, whatever the
  // recovery's target (archive::tablespaceRecords), counted by the prefetcher so that the
  // hand-over need not walk the segment again; nullopt when not counted, or counted by another
  // version of the walk (pg::kTablespaceScanVersion).
  std::optional<std::uint32_t> tablespaceRecords;
};

// Writes the acknowledgement into <folder>/push/ (atomically, fsynced, its folder fsynced): only
// ever after the object is committed. Throws Error(LocalIo).
void writePushAck(const std::string& folder, const FileRecord& ack);
// The acknowledgement of `file`; nullopt when there is none or it does not parse.
std::optional<FileRecord> readPushAck(const std::string& folder, const std::string& file);
// Removes the acknowledgement of `file` (no error when it is gone).
void removePushAck(const std::string& folder, const std::string& file) noexcept;
// The files that have acknowledgements.
std::vector<std::string> listPushAcks(const std::string& folder);

// Why `record` must not be trusted for the local file at `path` under the configuration's
// `repository` and the cluster `systemId`: it was written under another identity than the
// spool's, names another repository or cluster, or the file is not the one it was written for
// (its fingerprint); nullopt when it holds.
std::optional<std::string> untrusted(const std::string& folder, const FileRecord& record,
                                     const std::string& repository, std::uint64_t systemId,
                                     const std::string& path);

// The text of a record, and back (nullopt: not a record).
std::string formatRecord(const FileRecord& record);
std::optional<FileRecord> parseRecord(const std::string& text);

// ---- the safety valve's gap -----------------------------------------------------------------

// WAL files the safety valve acknowledged without storing them, one run of consecutive files.
struct DroppedRange {
  std::string first, last;  // WAL file names
  std::uint64_t files = 0;
  std::int64_t firstMs = 0, lastMs = 0;  // when the first and the last were dropped (UTC ms)
  // When the first was last written (its modification time, UTC ms): it holds nothing later.
  std::int64_t writtenMs = 0;
  bool operator==(const DroppedRange&) const = default;
};
// What the safety valve dropped and the repository does not know yet: written before each drop,
// recorded in the repository (and removed here) before the next push that stores a file.
struct LocalGap {
  std::string repository;  // the repository whose archive lacks them
  std::uint64_t systemId = 0;
  std::vector<DroppedRange> ranges;
  bool operator==(const LocalGap&) const = default;
};

// The gap recorded in `folder`; nullopt when there is none (no such file). Error(LocalIo) when
// the file is there but cannot be read or parsed, or cannot be looked at (EIO, EACCES): a gap must
// never be forgotten silently.
std::optional<LocalGap> readGap(const std::string& folder);
// Whether `folder` holds a gap file, or may (it cannot be looked at): cheap, for archive-push's
// fast path; readGap tells.
bool hasGap(const std::string& folder);
// A gap in one stanza folder of a spool.
struct FoundGap {
  std::string folder;  // <spool>/<stanza>
  std::string stanza;
  LocalGap gap;
};
// The gaps in every stanza folder of `spool` (a folder left by another stanza name too), by
// stanza name; none when `spool` does not exist. Error(LocalIo) when it cannot be listed or a gap
// cannot be looked at or read (readGap); with `denied`, a spool or folder this user may not look
// into (EACCES) is added there instead.
std::vector<FoundGap> findGaps(const std::string& spool,
                               std::vector<std::string>* denied = nullptr);
// What the spools of this host hold that no repository records yet (tidemark check, metrics).
struct HostGaps {
  std::vector<std::string> spools;  // looked into, each once (by device and inode)
  std::vector<std::string> denied;  // spools or stanza folders this user may not look into
  std::vector<FoundGap> gaps;       // config.stanza's, and other folders' that name `systemId`
};
// Over spoolDirectories(config, dataDirectory). Another stanza folder's gap counts only when it
// names the cluster `systemId` (a former stanza name's), not another cluster's that shares the
// spool-path; `systemId` 0 (unknown): every gap counts; nullopt: the data directory's own, read
// from its pg_control (0 without a data directory or a readable pg_control). Error(LocalIo) as
// findGaps.
HostGaps findHostGaps(const Config& config, const std::optional<std::string>& dataDirectory,
                      std::optional<std::uint64_t> systemId = std::nullopt);

// Held while the gap file is read, changed and written (or recorded and removed): two
// archive-push processes never lose each other's drops. Error(LocalIo) when it cannot be taken.
class GapLock {
 public:
  explicit GapLock(const std::string& folder);
  ~GapLock();
  GapLock(const GapLock&) = delete;
  GapLock& operator=(const GapLock&) = delete;

 private:
  int fd_ = -1;
};
// Writes it durably (creating `folder`, mode 0700, and its parent when missing). Error(LocalIo).
void writeGap(const std::string& folder, const LocalGap& gap);
// Removes it durably. Error(LocalIo).
void removeGap(const std::string& folder);

std::string formatGap(const LocalGap& gap);
std::optional<LocalGap> parseGap(const std::string& text);

// ---- prefetched segments ---------------------------------------------------------------------

// The folder prefetched segments are written to (<folder>/get), and a segment's path in it.
std::string fetchedFolder(const std::string& folder);
std::string fetchedPath(const std::string& folder, const std::string& file);
// The record of a prefetched segment, written durably after the segment (Error(LocalIo)); read
// back (nullopt: none, or damaged); removed with its segment.
void writeFetched(const std::string& folder, const FileRecord& record);
std::optional<FileRecord> readFetched(const std::string& folder, const std::string& file);
void removeFetched(const std::string& folder, const std::string& file) noexcept;
// The segments with a record.
std::vector<std::string> listFetched(const std::string& folder);

// The segment PostgreSQL asked for last, and from which repository (archive-get writes it into
// <folder>/wanted, the prefetcher follows it), and a stamp that is new with every request written,
// the same segment asked for again included (the writer's process id and the boot clock). The
// prefetcher times the requests by their stamps on its own monotonic clock: no step of the wall
// clock, and nothing that touches the file (a backup restoring its times, a chmod), makes it stop
// early or run on.
void writeWanted(const std::string& folder, const std::string& file, const std::string& repository);

// The id of the key stanza `stanzaId`'s stanza.json was signed with, as archive-push read it from
// its MAC record (hex) at `now` (seconds since the epoch): for kStanzaSignerTtl after that, a call
// whose keys include it need not read the record again (one S3 request per call less). After it,
// the record is read again: a host whose keys a rotation missed is refused within that time of
// the backup that signs stanza.json with the new key. nullopt when none is recorded for that
// stanza, or it is older (or cannot be read: never an error). Writes are not synced: a lost one
// costs one read.
inline constexpr std::int64_t kStanzaSignerTtl = 300;
void writeStanzaSigner(const std::string& folder, const std::string& stanzaId,
                       const std::string& keyId, std::int64_t now);
std::optional<std::string> readStanzaSigner(const std::string& folder, const std::string& stanzaId,
                                            std::int64_t now);
struct Wanted {
  std::string file, repository, stamp;
};
std::optional<Wanted> readWanted(const std::string& folder);
// The locks a running prefetcher and a running pusher hold in `folder`.
inline constexpr const char* kPrefetchLockFile = "prefetch.lock";
inline constexpr const char* kPushLockFile = "push.lock";
// Takes the lock `name` of `folder` (created when missing): its descriptor, or -1 when another
// process holds it (errno EWOULDBLOCK) or it cannot be made (errno says why). Waits up to
// `timeout` for it.
int takeLock(const std::string& folder, const char* name,
             std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
// Waits (up to `timeout`) until no process holds the lock `name` of `folder`: true when none does.
bool waitForLock(const std::string& folder, const char* name, std::chrono::milliseconds timeout);
// Both, for whoever removes a data directory (a drill's scratch): the prefetcher and the pusher
// end with the server; true when neither runs any more.
bool waitForWorkers(const std::string& folder, std::chrono::milliseconds timeout);

// Starts `body` in a background process of its own (fork, new session, fork: adopted by init)
// that holds no descriptor of the caller's (PostgreSQL's sockets and pipes among them) but `keep`
// (when >= 0: a lock handed over, given to `body`; -1 otherwise). Their numbers stay taken (by
// /dev/null): no file it opens gets one that a library of the caller's still writes to. Its
// standard error is `<folder>/<logFile>` (emptied past 1 MiB), and tidemark's logging is set up
// anew there as `program` under `config`. Returns once the intermediate process has exited; the
// background process exits with `body`'s status (1 when it throws). Call it while the caller has
// no other thread. Error(LocalIo) when fork fails.
void startDetached(const std::string& folder, const char* logFile, const char* program,
                   const Config& config, const std::function<int(int)>& body, int keep = -1);

// Removes the prefetch folder and everything in it (no error when it is gone).
void removeFetchedFolder(const std::string& folder) noexcept;
// The marker the prefetcher leaves in the prefetch folder while it fetches `file` (archive-get
// waits for it rather than fetch the file too).
std::string inflightPath(const std::string& folder, const std::string& file);
// Removes from the prefetch folder everything but the recorded segments and their records: what a
// prefetcher that was killed left (for a prefetcher that starts). Markers would make archive-get
// wait for nothing; a segment written but never recorded, or a temporary file, would take room
// the count of segments does not see.
void sweepFetched(const std::string& folder);

// ---- files being pushed -----------------------------------------------------------------------

// Held by the process that pushes `file` now (a call of archive-push, or the pusher), as a flock
// on <folder>/push/<file>.pushing: the others wait for it rather than push the file too. A kill
// releases it; the marker file of a killed holder is reused or removed by the next taker.
class PushClaim {
 public:
  // Takes it; nullopt when another process holds it. Error(LocalIo) when it cannot be made.
  static std::optional<PushClaim> take(const std::string& folder, const std::string& file);
  PushClaim(PushClaim&& other) noexcept;
  PushClaim& operator=(PushClaim&& other) noexcept;
  ~PushClaim();  // removes the marker, then releases it

 private:
  PushClaim(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  void release() noexcept;
  std::string path_;
  int fd_ = -1;
};
// Waits up to `timeout` while another process pushes `file`: true when none does (any more).
bool waitWhilePushed(const std::string& folder, const std::string& file,
                     std::chrono::milliseconds timeout);
// Removes the markers no process holds (left by killed processes).
void removeStalePushClaims(const std::string& folder) noexcept;

// ---- push statistics ------------------------------------------------------------------------

// One push, as archive-push records it.
struct PushStat {
  std::int64_t finishedMs = 0;  // UTC, milliseconds since the epoch
  std::int64_t durationMs = 0;
  bool ok = false;
  std::string file;    // the WAL file name
  std::string stanza;  // the stanza it was pushed to
};

// The file in the stanza folder that push statistics are appended to (and its predecessor,
// rotated).
inline constexpr const char* kPushStatsFile = "push-stats";
inline constexpr std::uint64_t kPushStatsRotateBytes = 64 * 1024;

// Appends one line for `stat` to the statistics in `folder` (creating it and its parent, mode
// 0700, when they are missing), and rotates the file once it has grown past
// kPushStatsRotateBytes. One O_APPEND write of a short line (atomic among concurrent pushers), no
// fsync: statistics may be lost in a crash. Never throws: a statistic that cannot be written is a
// debug line, never a failed push.
void recordPush(const std::string& folder, const PushStat& stat) noexcept;

// The last `count` statistics of `stanza` (oldest first), from the rotated file and the current
// one. Lines that do not parse are skipped.
std::vector<PushStat> readPushStats(const std::string& folder, const std::string& stanza,
                                    std::size_t count);

// The line format, for tests: "<finishedMs> <durationMs> ok|fail <file> <stanza>\n".
std::string formatPushStat(const PushStat& stat);
std::optional<PushStat> parsePushStat(const std::string& line);

}  // namespace tidemark::spool
