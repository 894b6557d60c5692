// The storage interface every repository driver implements (posix/, s3/). Drivers receive explicit
// option structs and know nothing of the configuration, the repository layout or PostgreSQL.
//
// Paths are relative to the repository root, '/'-separated, without '.' or '..' components;
// only repo/ builds them. Drivers are used from one thread at a time unless stated otherwise.
// Failures throw Error(Storage) (or Error(Config) for a repository that cannot work at all);
// "not found" is a return value, never an error.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/io/sink.h"

namespace tidemark::storage {

struct ObjectInfo {
  std::uint64_t size = 0;
  std::int64_t modified = 0;  // seconds since the epoch
};

struct WriteOptions {
  // The publish refuses to replace an existing object, atomically: two writers racing for one
  // name cannot both succeed, and the existing object is never touched.
  bool noReplace = true;
  // The exact number of bytes the writer will be given, when the caller knows it before the first
  // one (an uncompressed object: repo::storedSize). A driver may then send the object while it is
  // written (s3: a streamed PutObject); one that reads it refuses more bytes, or a close() after
  // fewer, with Error(Internal). posix ignores it.
  std::optional<std::uint64_t> size;
};

struct ReadOptions {
  std::uint64_t offset = 0;
  std::optional<std::uint64_t> length;  // to the end when unset
};

// An object being written. Nothing is visible until commit(); destroyed without a successful
// commit(), the write leaves nothing behind (posix: temporary file removed; s3: upload aborted).
class Write : public io::Sink {
 public:
  // write(): the object's bytes. close(): every byte is stored durably but still invisible.
  // Publishes the object. Returns false when noReplace is set and the name already exists
  // (the existing object is untouched). Calls close() first if it was not called.
  virtual bool commit() = 0;
  // Stored bytes so far.
  virtual std::uint64_t size() const = 0;
};

// An exclusive lock, released when destroyed (and, for posix, by the kernel when its process dies).
class Lock {
 public:
  virtual ~Lock() = default;
  // False once the lock is lost: s3, when the holder could not refresh it in time (another process
  // may have taken it over as stale) or found it replaced. Whoever holds a lock checks this before
  // each step that needs it, and stops. Thread-safe.
  virtual bool held() const { return true; }
  // Makes sure now, before a write only the holder may make, that the lock is still this holder's
  // (s3: a conditional refresh on the spot, after which nobody can take it over for a whole
  // lock-timeout); false when it is lost or could not be refreshed. Thread-safe.
  virtual bool confirm() { return held(); }
};

struct ListEntry {
  std::string name;  // relative to the listed directory; for a directory, its name without '/'
  bool directory = false;
  std::uint64_t size = 0;
  std::int64_t modified = 0;  // seconds since the epoch (0 for directories)
};

// Something an unfinished write left behind (Storage::leftovers).
struct Leftover {
  std::string path;          // the temporary file, or the key of the upload
  std::string uploadId;      // s3: the multipart upload; "" for a file
  std::int64_t started = 0;  // when the write began (last modified), seconds since the epoch
};

class Storage {
 public:
  virtual ~Storage() = default;

  // Where this storage is, for messages ("posix:/var/lib/tidemark/repo").
  virtual std::string describe() const = 0;

  // The Write must be destroyed before this Storage (it may use its connection).
  virtual std::unique_ptr<Write> newWrite(const std::string& path, WriteOptions options = {}) = 0;

  // Streams the object (or the requested range) into `out` without closing it. Returns false,
  // having written nothing, when the object does not exist. A failure after some bytes were
  // delivered throws; drivers that retry internally resume where they stopped, so `out` sees
  // each byte once.
  virtual bool read(const std::string& path, io::Sink& out, ReadOptions options = {}) = 0;

  virtual std::optional<ObjectInfo> info(const std::string& path) = 0;

  // Calls `fn` for each entry directly inside `dir` ("" is the root), in no particular order.
  // Temporary files of unfinished writes are never listed. A missing directory lists nothing.
  virtual void list(const std::string& dir, const std::function<void(const ListEntry&)>& fn) = 0;

  // Removes an object; a missing one is not an error.
  virtual void remove(const std::string& path) = 0;

  // Removes objects, as many per request as the storage allows (s3: DeleteObjects of up to 1000
  // keys, retried); missing ones are not an error. By default one remove() each.
  virtual void removeMany(const std::vector<std::string>& paths);

  // Removes the folder `dir` when it is empty (posix: rmdir; a folder that is not empty is left
  // alone, without an error). Returns whether no folder of that name is left: false when it was
  // not empty, and always for storages without folders, which remove none (an S3 "folder" is a
  // prefix, or a marker object, that stays listed).
  virtual bool removeEmptyDirectory(const std::string& dir) {
    (void)dir;
    return false;
  }

  // What unfinished writes left under `dir` (recursively): posix, the hidden temporary files of
  // writes whose process died; s3, multipart uploads never completed nor aborted. Never objects.
  virtual std::vector<Leftover> leftovers(const std::string& dir) {
    (void)dir;
    return {};
  }
  // Removes one (posix: unlink; s3: AbortMultipartUpload). A missing one is not an error.
  virtual void removeLeftover(const Leftover& leftover) { (void)leftover; }

  // Takes the exclusive lock `path` for `owner` (one line: who, where, what), or returns nullptr
  // and sets `holder` to the owner line of whoever holds it. posix: flock() on a file, released
  // by the kernel when the holder dies. s3: a lock object that the holder refreshes while it
  // holds it; one the server saw unchanged for s3.lock-timeout (five minutes) is stale and taken
  // over, with a warning, by replacing it on condition that it is still the stale one.
  virtual std::unique_ptr<Lock> tryLock(const std::string& path, const std::string& owner,
                                        std::string& holder) = 0;
};

// Reads a whole small object into memory; nullopt when it does not exist.
std::optional<std::string> readSmall(Storage& storage, const std::string& path,
                                     std::size_t limit = 16u << 20);

// Joins repository path parts with '/'.
std::string joinPath(const std::string& a, const std::string& b);

// Throws Error(Internal) unless `path` follows the rules above: relative, '/'-separated, no empty,
// '.' or '..' parts. Every driver checks the paths it is given (a bug must not escape the root).
void checkPath(const std::string& path);

}  // namespace tidemark::storage
