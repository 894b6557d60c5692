// Local files: reading into a pipeline, and writing with an atomic, durable publish.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "common/base/error.h"
#include "common/io/sink.h"

namespace tidemark::files {

// An owned file descriptor, closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset();

 private:
  int fd_ = -1;
};

// Whether something exists at `path` (a file, folder or link; false too when it cannot be looked
// at).
bool exists(const std::string& path);

// Opens `path` for reading; nullopt when it does not exist. Other failures throw `code`.
std::optional<Fd> openForRead(const std::string& path, ErrorCode code = ErrorCode::LocalIo);

// Reads up to `size` bytes at `offset` (fewer only at end of file). Throws `code` on failure.
std::size_t preadFull(int fd, std::uint8_t* out, std::size_t size, std::uint64_t offset,
                      const std::string& path, ErrorCode code = ErrorCode::LocalIo);

// Streams an open file from `offset` (to the end, or `length` bytes) into `sink` in chunks of
// `chunk` bytes. Does not close `sink`. Returns the bytes delivered.
std::uint64_t streamFile(int fd, const std::string& path, io::Sink& sink, std::uint64_t offset = 0,
                         std::optional<std::uint64_t> length = std::nullopt,
                         std::size_t chunk = 1 << 20, ErrorCode code = ErrorCode::LocalIo);

// fsync()s a directory, so that a rename or link inside it survives a crash.
void syncDirectory(const std::string& dir, ErrorCode code = ErrorCode::LocalIo);

// A file owner to give what is created (root running tidemark in a repository owned by postgres).
struct Owner {
  uid_t uid;
  gid_t gid;
};

// The owner root gives what it creates in `folder`: the folder's, when this process runs as root
// and the folder belongs to another user (postgres, whose archive_command opens it later: docs/
// decisions.md "root keeps a posix repository owned by its owner"); nullopt otherwise.
std::optional<Owner> ownerForRoot(const std::string& folder);

// Gives the file open as `fd`, which this process created in a folder `owner` owns, to `owner`
// (nothing to do when it is already its). Refused (false, errno EMLINK) for a file with more than
// one name, which no writer of tidemark's makes: a hard link the folder's owner made to a file
// root must neither write nor give away (open with O_NOFOLLOW, for a symlink); false, with errno,
// when fchown fails.
bool giveTo(int fd, const Owner& owner);
// Whether `st` is a regular file with one name: the only kind root writes into, or gives away, in
// a folder another user owns (a hard link there may name a file of root's, a FIFO would block).
bool oneNamedFile(const struct stat& st);
// The hint for a file giveTo refused (errno `err`, EMLINK), else "".
std::string giveToHint(int err);

// Refuses (Error(Usage)) `program` run by root where it would write into `folder` (`what` names it:
// "the data directory") when another user owns that folder: the server runs archive_command and
// restore_command as that user, so this is a run by hand, and what root would write there (the
// spool, %p) would be root's, which the server's own calls cannot open; that user, owning the
// folders, could also lead root to write where it names.
void refuseRootIn(const std::string& folder, std::string_view what, std::string_view program);

// What to do about a permission error (EACCES, EPERM) on `path`, for a hint: the user this process
// runs as, the owner, group and mode of what refused it (the nearest existing part of `path`, or a
// parent folder this user may not enter) and the chown or chmod that fixes it. `tree`, when given,
// is a folder `path` lies in whose files must all belong to one user (a repository): the command
// then fixes all of it (chown -R). Never throws.
std::string permissionHint(const std::string& path, const std::string& tree = {});

// Creates `dir` and any missing parents (mode 0750), fsyncing each parent that gained an entry.
// `stopAt` (a prefix of `dir`) must already exist: it is never created, so that an unmounted
// repository fails loudly instead of filling the root disk. New directories get `owner`.
void makeDirectories(const std::string& dir, const std::string& stopAt,
                     ErrorCode code = ErrorCode::LocalIo,
                     std::optional<Owner> owner = std::nullopt);

// Makes everything below `root` durable, the way PostgreSQL's fsync_pgdata does: a first pass
// starts the write-back of every file (sync_file_range), a second fsyncs files and then
// directories. Much faster than fsyncing each file as it is written. Symlinks are not followed.
void syncTree(const std::string& root, ErrorCode code = ErrorCode::LocalIo);

// The part after the last '/', and the part before it ("." when there is none).
std::string baseName(const std::string& path);
std::string dirName(const std::string& path);
// `path` without '.' and '..' components or repeated and trailing '/' (lexically: links are not
// followed), as within() wants it.
std::string normalPath(const std::string& path);
// Whether `inner` is `outer` or lies below it (normalised absolute paths, no trailing '/').
bool within(const std::string& inner, const std::string& outer);

struct AtomicWriteOptions {
  // Publish refuses (commit() returns false) when the name already exists, atomically, even
  // against another process publishing the same name at the same moment.
  bool noReplace = false;
  mode_t mode = 0640;
  // fsync the file before publishing and the directory after. Without it, for hints and
  // scratch files only: after a power loss the name may hold the new file empty or cut, and a
  // file replaced at the moment of a kill may be left under a hidden temporary name (beside the
  // name, `.<name>.tmp-*`).
  bool sync = true;
  // The code errors are thrown with (Storage inside a repository, LocalIo elsewhere).
  ErrorCode errorCode = ErrorCode::LocalIo;
  // Use an unnamed O_TMPFILE inode when the filesystem supports it (nothing is left behind if
  // the process dies); tests turn it off to exercise the named temporary file used otherwise.
  bool allowTmpfile = true;
  // Give the file this owner before publishing it.
  std::optional<Owner> owner;
};

// A file that becomes visible under its name only by commit(): written into an unnamed temporary
// inode (or a hidden temporary name in the same directory), fsynced, then linked or renamed into
// place and the directory fsynced. Destroyed without commit(), it leaves nothing.
class AtomicFile final : public io::Sink {
 public:
  AtomicFile(std::string path, AtomicWriteOptions options = {});
  ~AtomicFile() override;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(io::ByteView data) override;
  // All bytes written and (with sync) on disk; nothing visible yet.
  void close() override;
  // Publishes; returns false (and leaves nothing) when noReplace is set and the name exists.
  // Calls close() first if needed.
  bool commit();

  std::uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail(std::string_view action, const std::string& where, int err) const;

  std::string path_, dir_;
  AtomicWriteOptions options_;
  Fd fd_;
  std::string tempPath_;  // empty when the file is an unnamed O_TMPFILE inode
  std::uint64_t size_ = 0;
  bool closed_ = false, committed_ = false;
};

}  // namespace tidemark::files
