// The posix storage driver: a repository in a local or network filesystem (NFS).
//
// Objects are files under the root; a write goes to an unnamed temporary inode (or a hidden
// temporary file where the filesystem has no O_TMPFILE) that is fsynced and then linked into
// place (no-replace) and the directory fsynced. The root must exist: it is never created, so an
// unmounted NFS repository fails instead of filling the local disk.
#pragma once

#include "common/files/file.h"
#include "common/storage/storage.h"

namespace tidemark::storage {

struct PosixOptions {
  bool sync = true;          // fsync files and directories (off only for tests and benchmarks)
  bool allowTmpfile = true;  // see files::AtomicWriteOptions
};

class PosixStorage final : public Storage {
 public:
  explicit PosixStorage(std::string root, PosixOptions options = {});

  std::string describe() const override;
  std::unique_ptr<Write> newWrite(const std::string& path, WriteOptions options) override;
  bool read(const std::string& path, io::Sink& out, ReadOptions options) override;
  std::optional<ObjectInfo> info(const std::string& path) override;
  void list(const std::string& dir, const std::function<void(const ListEntry&)>& fn) override;
  void remove(const std::string& path) override;
  bool removeEmptyDirectory(const std::string& dir) override;
  std::vector<Leftover> leftovers(const std::string& dir) override;
  void removeLeftover(const Leftover& leftover) override;
  std::unique_ptr<Lock> tryLock(const std::string& path, const std::string& owner,
                                std::string& holder) override;

  const std::string& root() const { return root_; }

 private:
  std::string full(const std::string& path) const;
  void checkRoot() const;
  // When root writes into a repository owned by another user (postgres), what it creates takes
  // that owner, so that archive_command can still write next to it.
  std::optional<files::Owner> owner() const;

  std::string root_;
  PosixOptions options_;
};

}  // namespace tidemark::storage
