// Tar archives: a streaming reader (a pipeline's last stage) and an extractor that never writes
// outside its root, for restoring PostgreSQL base backups (base.tar, <tablespace oid>.tar).
//
// Formats read: POSIX ustar (name + prefix), GNU (long names and link names in 'L'/'K' entries,
// base-256 numbers, which PostgreSQL also writes for files of 8 GiB and more), pax ('x' headers
// for path, linkpath, size and mtime; 'g' headers are ignored), and old v7 headers. References:
// POSIX.1-2017 "pax" (ustar and pax interchange formats) and GNU tar's "Basic Tar Format".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "common/files/file.h"
#include "common/io/sink.h"

namespace tidemark::files {

struct TarEntry {
  enum class Type { File, Directory, Symlink, HardLink, Other };
  // As in the archive, normalised: no leading "./", no "." or empty components, no trailing '/'.
  // A leading '/' and ".." components are kept (the extractor refuses them). "" is the archive's
  // own root ("./" in `tar -C dir .`).
  std::string path;
  Type type = Type::File;
  std::uint64_t size = 0;  // bytes of data that follow (File only; 0 for every other type)
  std::uint32_t mode = 0;  // permission bits (07777) as stored
  std::int64_t mtime = 0;  // seconds since the epoch
  // Symlink: the target exactly as stored. HardLink: the archive path of the entry it links to,
  // normalised like `path`.
  std::string linkTarget;
  char typeFlag = '0';  // the header's type flag, for messages about Other entries
};

// Parses a tar stream pushed through write() in chunks of any size and reports each entry and
// its data to a Handler, as the bytes arrive. Memory: one 512-byte block, plus up to 64 KiB for
// a GNU long name or a pax header while it is read, whatever the archive size.
//
// Errors (thrown by write() or close()): Error(Corrupt) naming the entry and the offset, for a
// bad header checksum, an unknown header format, a malformed number, pax record or long name,
// an impossible size, non-zero bytes after the end-of-archive marker, or a stream that ends
// inside a header, an entry's data or its padding, or between an extended header and the entry
// it describes. Error(Unsupported) for GNU sparse files and multi-volume continuations
// (PostgreSQL writes neither). Errors the Handler throws pass through unchanged. After a throw
// the only valid call is destruction.
//
// End of archive: a zero block. The second zero block and GNU tar's record padding are
// optional, but every byte after the first zero block must be zero (a zeroed block inside a
// damaged archive must not silently end it early). An archive that simply stops at an entry
// boundary, without zero blocks, is accepted too (and an empty stream is an empty archive):
// callers that need particular entries (backup_label, PG_VERSION) check that they came.
//
// Not thread-safe: one thread feeds it at a time.
class TarReader final : public io::Sink {
 public:
  // Receives the entries, in archive order. Every begin() is followed by data() calls (File
  // only, with exactly `size` bytes in all, in order, in chunks of any size) and then end(),
  // which comes once the entry's padding has been read too, before the next begin().
  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void begin(const TarEntry& entry) = 0;
    virtual void data(io::ByteView bytes) = 0;
    virtual void end() = 0;
  };

  // `handler` is not owned and must outlive the reader.
  explicit TarReader(Handler& handler);

  void write(io::ByteView data) override;
  // Checks that the archive ended at an entry boundary. Does not close anything downstream: a
  // TarReader is a final stage. Call once.
  void close() override;

  // Entries reported to the handler so far (extended headers not counted).
  std::uint64_t entries() const { return entries_; }
  // Whether the end-of-archive marker (a zero block) was read.
  bool endMarkerSeen() const { return state_ == State::End; }

 private:
  enum class State { Header, Body, End };
  // What an entry's data is: a file's content, an extended header to parse, data of another
  // entry type to skip, or a global pax header (skipped, and not an entry).
  enum class Body { File, Extended, Skip, Global };

  // A header's numeric fields and type flag.
  struct Fields {
    char flag;
    std::uint64_t size;
    std::uint32_t mode;
    std::int64_t mtime;
  };

  // Reading a header block: the end marker, or checks, then an extended header or an entry.
  void header();
  void endOfArchive();
  void checkChecksum() const;
  void checkFormat();
  Fields numericFields() const;
  std::uint64_t startExtended(const Fields& fields);
  std::uint64_t startEntry(const Fields& fields);
  void startBody(std::uint64_t size);
  void extendedHeader();
  void paxRecords();
  void bodyDone();
  std::string where() const;

  Handler& handler_;
  State state_ = State::Header;
  std::uint8_t block_[512] = {};
  std::size_t blockFill_ = 0;
  std::uint64_t offset_ = 0;        // stream offset of the next byte
  std::uint64_t headerOffset_ = 0;  // of the last header read
  Body body_ = Body::Skip;
  std::uint64_t dataLeft_ = 0, padLeft_ = 0, size_ = 0;
  char extendedType_ = 0;
  std::string extended_;  // the extended header being read ('L', 'K' or 'x')
  std::string name_;      // the entry being read, or the last header's name, for messages
  // What extended headers said about the next entry.
  std::optional<std::string> longName_, longLink_, paxPath_, paxLinkpath_;
  std::optional<std::uint64_t> paxSize_;
  std::optional<std::int64_t> paxMtime_;
  std::uint64_t entries_ = 0;
  bool closed_ = false;
};

struct ExtractOptions {
  std::uint32_t directoryMode = 0700;  // for directories the archive creates implicitly
  bool sync = true;                    // fsync every file and directory written before finish()
  bool preserveMode = true;            // apply the archive's permission bits (masked with 0777)
  // Keep symlinks whose target is absolute or climbs above root as they are (PostgreSQL sends a
  // data directory's symlinks, e.g. log -> /var/log/postgresql, with their targets), listed in
  // ExtractStats::outsideSymlinks. Extraction itself never follows a symlink either way.
  bool allowOutsideSymlinks = false;
  // Entries (paths below root, as normalised: "standby.signal") read and dropped, not written.
  std::vector<std::string> skip;
};

// Counts of archive entries extracted; `bytes` is the files' data. Directories created
// implicitly, the archive's root entry ("./") and hard links that were already in place (a
// file linked to itself) are not counted.
struct ExtractStats {
  std::uint64_t files = 0, directories = 0, links = 0, bytes = 0;
  std::vector<std::string> outsideSymlinks;  // "path -> target", with allowOutsideSymlinks
};

// A TarReader::Handler that extracts into an existing directory `root`, refusing, with
// Error(InvalidInput) naming the entry and why, anything that would write outside it:
// - absolute paths and '..' components (in entry paths and hard link targets);
// - any entry whose path goes through a symlink: every component is opened from a descriptor of
//   root with O_NOFOLLOW | O_DIRECTORY, so a symlink "a" -> "/etc" followed by "a/passwd" is
//   refused, as is a symlink that was in root before extraction;
// - symlinks whose target is absolute or climbs out of root. The target is resolved lexically
//   from the link's directory; '..' is allowed only at the start of the target, because after a
//   name it could climb out through another symlink ("l" -> "." then "d/x" -> "../l/..");
// - hard links whose target is not a file or symlink already present below root (a hard link
//   must follow its target in the archive), or is a symlink whose target would escape from the
//   hard link's place;
// - devices, FIFOs and other types (PostgreSQL's base backups hold none);
// - an entry whose place holds a directory when the entry is not one, or holds a non-directory
//   when the entry is a directory.
//
// Replacing: a file, symlink or hard link whose name already exists below root (a file listed
// twice in the archive, or left from before) replaces it: the old name is unlinked (never
// followed) and the new file created with O_CREAT | O_EXCL | O_NOFOLLOW. Directories are never
// replaced, and existing directories are reused.
//
// Metadata: files get the archive's mode (masked with 0777; 0600 without preserveMode) and
// mtime; symlinks their mtime; directory entries their mode (directoryMode without
// preserveMode) and mtime, applied by finish() once nothing more is written inside them. Owners
// are not applied: everything belongs to the extracting user. The archive's root entry ("./")
// is ignored: root keeps its own mode.
//
// PostgreSQL: base.tar may hold pg_tblspc/<oid> symlinks with absolute targets (when the backup
// was taken without TABLESPACE_MAP), which this class refuses: a caller restoring tablespaces
// puts a Handler in front that handles those entries itself and forwards the rest here.
//
// Memory: one record per directory written (for its final mode, mtime and fsync), nothing per
// file. Failure: a failed extraction leaves what it wrote so far; the caller removes root's
// content. LocalIo errors for system call failures. Not thread-safe.
class TarExtractor final : public TarReader::Handler {
 public:
  // Opens `root` (following a symlink there: root is the caller's choice). Throws LocalIo
  // when it is not an accessible directory.
  TarExtractor(std::string root, ExtractOptions options = {});

  void begin(const TarEntry& entry) override;
  void data(io::ByteView bytes) override;
  void end() override;

  // Applies the directories' modes and mtimes, fsyncs every directory written (with
  // options.sync; files are fsynced as each ends) and returns the counts. Call after the
  // TarReader's close() succeeded. Throws LocalIo.
  ExtractStats finish();

 private:
  struct DirectoryRecord {
    std::optional<std::uint32_t> mode;
    std::optional<std::int64_t> mtime;
  };

  std::string full(const std::string& path) const;
  [[noreturn]] void refuse(const std::string& why, const char* hint = nullptr) const;
  int openParent(const std::string& path, std::string& leaf);
  Fd walk(const std::string& dir, bool create);
  void touched(const std::string& dir);
  bool clearPlace(int parent, const std::string& leaf, const std::string& path);
  // Whether the symlink target leads outside root (allowed only with allowOutsideSymlinks).
  bool checkSymlinkTarget(const std::string& linkPath, const std::string& target,
                          const char* what) const;
  void file(const TarEntry& entry);
  void directory(const TarEntry& entry);
  void symlink(const TarEntry& entry);
  void hardLink(const TarEntry& entry);

  std::string root_;
  ExtractOptions options_;
  bool skipping_ = false;  // the current entry is one of options_.skip
  Fd rootFd_;
  // The parent directory of the last entry: consecutive entries mostly share it.
  std::string parentPath_;
  Fd parentFd_;
  // Directories to sync and to give a mode and mtime in finish(), by path below root.
  std::map<std::string, DirectoryRecord> directories_;
  // The entry being extracted.
  TarEntry current_;
  Fd file_;
  std::uint64_t written_ = 0;
  bool inEntry_ = false;
  ExtractStats stats_;
};

// Extracts the tar file at `archive` into `root` (a TarReader feeding a TarExtractor, then
// finish()), reading 256 KiB at a time. Throws what they throw, and LocalIo when `archive`
// cannot be read.
ExtractStats extractTarFile(const std::string& archive, const std::string& root,
                            ExtractOptions options = {});

// Writes a POSIX ustar archive of regular files into `sink` (the small archives tidemark makes
// itself, such as the server's configuration files stored with a backup): paths relative, at most
// 255 bytes (split into the header's prefix and name at a '/'), owned by uid and gid 0, names
// "root". Throws Error(InvalidInput) for a path it cannot store; what the sink throws passes
// through.
class TarWriter {
 public:
  explicit TarWriter(io::Sink& sink) : sink_(sink) {}
  void addFile(const std::string& path, io::ByteView content, std::uint32_t mode,
               std::int64_t mtime);
  // The end-of-archive marker (two zero blocks). Does not close the sink.
  void finish();

 private:
  io::Sink& sink_;
};

}  // namespace tidemark::files
