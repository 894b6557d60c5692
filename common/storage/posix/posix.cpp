// The posix storage driver.
#include "common/storage/posix/posix.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>

#include "common/base/error.h"
#include "common/files/file.h"

namespace tidemark::storage {

namespace {

class PosixWrite final : public Write {
 public:
  PosixWrite(std::string path, files::AtomicWriteOptions options)
      : file_(std::move(path), options) {}
  void write(io::ByteView data) override { file_.write(data); }
  void close() override { file_.close(); }
  bool commit() override { return file_.commit(); }
  std::uint64_t size() const override { return file_.size(); }

 private:
  files::AtomicFile file_;
};

// Runs `fn`; a permission error from it (EACCES, EPERM) gets a hint naming the user tidemark runs
// as, the owner and mode of what refused it, and the chown or chmod of the repository that fixes
// it: archive_command running as postgres in a folder root made is the usual cause.
template <typename Fn>
auto withPermissionHint(const std::string& root, const std::string& path, Fn&& fn)
    -> decltype(fn()) {
  try {
    return fn();
  } catch (Error& e) {
    if (e.code() == ErrorCode::Storage && e.hint().empty() &&
        (e.systemErrno() == EACCES || e.systemErrno() == EPERM))
      e.setHint(files::permissionHint(path, root));
    throw;
  }
}

}  // namespace

PosixStorage::PosixStorage(std::string root, PosixOptions options)
    : root_(std::move(root)), options_(options) {
  while (root_.size() > 1 && root_.back() == '/')
    root_.pop_back();
  if (root_.empty() || root_.front() != '/')
    throw Error(ErrorCode::Config, fmt::format("repository path '{}' is not absolute", root_),
                "set repo.path to an absolute path, e.g. /var/lib/tidemark/repo");
}

std::string PosixStorage::describe() const {
  return "posix:" + root_;
}

void PosixStorage::checkRoot() const {
  // "Not found" must mean the repository answered: an unmounted or mistyped repository path
  // would otherwise make every object look missing (and archive-get report the end of WAL).
  struct stat st {};
  if (::stat(root_.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return;
  if (errno == EACCES)
    throw systemError(ErrorCode::Storage, errno, "cannot access repository path '{}'", root_)
        .setHint(files::permissionHint(root_, root_));
  throw Error(ErrorCode::Storage,
              fmt::format("repository path '{}' does not exist or is not a directory", root_),
              "mount or create it (owned by the user running tidemark), or fix repo.path");
}

std::string PosixStorage::full(const std::string& path) const {
  checkPath(path);
  return root_ == "/" ? "/" + path : root_ + "/" + path;
}

std::optional<files::Owner> PosixStorage::owner() const {
  return files::ownerForRoot(root_);
}

std::unique_ptr<Write> PosixStorage::newWrite(const std::string& path, WriteOptions options) {
  return withPermissionHint(root_, full(path), [&] {
    std::string file = full(path);
    auto owner = this->owner();
    files::makeDirectories(files::dirName(file), root_, ErrorCode::Storage, owner);
    return std::make_unique<PosixWrite>(
        file, files::AtomicWriteOptions{.noReplace = options.noReplace,
                                        .sync = options_.sync,
                                        .errorCode = ErrorCode::Storage,
                                        .allowTmpfile = options_.allowTmpfile,
                                        .owner = owner});
  });
}

bool PosixStorage::read(const std::string& path, io::Sink& out, ReadOptions options) {
  return withPermissionHint(root_, full(path), [&] {
    std::string file = full(path);
    // Only ENOENT means absent. ENOTDIR (a folder of the repository replaced by a file) is damage:
    // taken for "not found", archive-get would end a recovery early.
    files::Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      if (errno != ENOENT) throw systemError(ErrorCode::Storage, errno, "cannot open '{}'", file);
      checkRoot();
      return false;
    }
    // A buffer no larger than the object: small objects (stanza.json, read by every push) do not
    // pay for a 1 MiB allocation.
    struct stat st {};
    std::size_t chunk = 1 << 20;
    if (::fstat(fd.get(), &st) == 0 && std::uint64_t(st.st_size) > options.offset)
      chunk = std::size_t(
          std::clamp<std::uint64_t>(std::uint64_t(st.st_size) - options.offset, 1, chunk));
    files::streamFile(fd.get(), file, out, options.offset, options.length, chunk,
                      ErrorCode::Storage);
    return true;
  });
}

std::optional<ObjectInfo> PosixStorage::info(const std::string& path) {
  return withPermissionHint(root_, full(path), [&]() -> std::optional<ObjectInfo> {
    std::string file = full(path);
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) {
      if (errno == ENOENT) {
        checkRoot();
        return std::nullopt;
      }
      throw systemError(ErrorCode::Storage, errno, "cannot access '{}'", file);
    }
    if (!S_ISREG(st.st_mode)) throw error(ErrorCode::Storage, "'{}' is not a regular file", file);
    return ObjectInfo{std::uint64_t(st.st_size), std::int64_t(st.st_mtime)};
  });
}

namespace {

// Calls `fn` with the name and lstat() of every entry of the folder `path` but '.' and '..'
// (entries removed while listing are skipped). False, having called nothing, when the folder does
// not exist.
bool scanDirectory(const std::string& path,
                   const std::function<void(const char*, const struct stat&)>& fn) {
  DIR* handle = ::opendir(path.c_str());
  if (handle == nullptr) {
    if (errno == ENOENT) return false;
    throw systemError(ErrorCode::Storage, errno, "cannot list '{}'", path);
  }
  std::unique_ptr<DIR, int (*)(DIR*)> guard(handle, ::closedir);
  for (;;) {
    errno = 0;
    dirent* entry = ::readdir(handle);
    if (entry == nullptr) {
      if (errno != 0) throw systemError(ErrorCode::Storage, errno, "cannot list '{}'", path);
      return true;
    }
    if (std::strcmp(entry->d_name, ".") == 0 || std::strcmp(entry->d_name, "..") == 0) continue;
    struct stat st {};
    if (::fstatat(::dirfd(handle), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // removed while listing
      throw systemError(ErrorCode::Storage, errno, "cannot access '{}/{}'", path, entry->d_name);
    }
    fn(entry->d_name, st);
  }
}

}  // namespace

void PosixStorage::list(const std::string& dir, const std::function<void(const ListEntry&)>& fn) {
  withPermissionHint(root_, dir.empty() ? root_ : full(dir), [&] {
    bool found = scanDirectory(
        dir.empty() ? root_ : full(dir), [&](const char* name, const struct stat& st) {
          // Names starting with '.' are temporary files of unfinished writes.
          if (name[0] == '.' || (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))) return;
          bool directory = S_ISDIR(st.st_mode);
          fn(ListEntry{name, directory, directory ? 0 : std::uint64_t(st.st_size),
                       directory ? 0 : std::int64_t(st.st_mtime)});
        });
    if (!found) checkRoot();
  });
}

void PosixStorage::remove(const std::string& path) {
  withPermissionHint(root_, full(path), [&] {
    std::string file = full(path);
    if (::unlink(file.c_str()) == 0) return;
    if (errno == ENOENT) return checkRoot();
    throw systemError(ErrorCode::Storage, errno, "cannot remove '{}'", file);
  });
}

bool PosixStorage::removeEmptyDirectory(const std::string& dir) {
  return withPermissionHint(root_, full(dir), [&] {
    std::string path = full(dir);
    if (::rmdir(path.c_str()) == 0 || errno == ENOENT) return true;
    if (errno == ENOTEMPTY || errno == EEXIST) return false;
    throw systemError(ErrorCode::Storage, errno, "cannot remove the folder '{}'", path);
  });
}

std::vector<Leftover> PosixStorage::leftovers(const std::string& dir) {
  return withPermissionHint(root_, dir.empty() ? root_ : full(dir), [&] {
    std::vector<Leftover> out;
    std::vector<std::string> pending{dir};
    while (!pending.empty()) {
      std::string current = pending.back();
      pending.pop_back();
      scanDirectory(
          current.empty() ? root_ : full(current), [&](const char* name, const struct stat& st) {
            std::string child = joinPath(current, name);
            if (S_ISDIR(st.st_mode) && name[0] != '.')
              pending.push_back(child);
            else if (S_ISREG(st.st_mode) && name[0] == '.' && std::strstr(name, ".tmp-") != nullptr)
              out.push_back({.path = child, .started = std::int64_t(st.st_mtime)});
          });
    }
    return out;
  });
}

void PosixStorage::removeLeftover(const Leftover& leftover) {
  withPermissionHint(root_, full(leftover.path), [&] {
    std::string file = full(leftover.path);
    if (::unlink(file.c_str()) == 0 || errno == ENOENT) return;
    throw systemError(ErrorCode::Storage, errno, "cannot remove '{}'", file);
  });
}

namespace {

class PosixLock final : public Lock {
 public:
  explicit PosixLock(files::Fd fd) : fd_(std::move(fd)) {}
  ~PosixLock() override {
    // Leave the file: removing it would race with a process about to lock the same inode.
    if (::ftruncate(fd_.get(), 0) != 0) {
    }
  }

 private:
  files::Fd fd_;  // closing it releases the flock
};

}  // namespace

std::unique_ptr<Lock> PosixStorage::tryLock(const std::string& path, const std::string& owner,
                                            std::string& holder) {
  return withPermissionHint(root_, full(path), [&]() -> std::unique_ptr<Lock> {
    std::string file = full(path);
    auto fileOwner = this->owner();
    files::makeDirectories(files::dirName(file), root_, ErrorCode::Storage, fileOwner);
    // Not through a symlink: root would write into, and give away, whatever it names.
    files::Fd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640));
    if (!fd) throw systemError(ErrorCode::Storage, errno, "cannot open lock file '{}'", file);
    if (fileOwner && !files::giveTo(fd.get(), *fileOwner)) {
      const int err = errno;
      throw systemError(ErrorCode::Storage, err, "cannot give lock file '{}' to uid {}", file,
                        fileOwner->uid)
          .setHint(files::giveToHint(err));
    }
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK)
        throw systemError(ErrorCode::Storage, errno, "cannot lock '{}'", file);
      char buffer[512];
      ssize_t n = ::pread(fd.get(), buffer, sizeof buffer, 0);
      holder = n > 0 ? std::string(buffer, std::size_t(n)) : "another process";
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' '))
        holder.pop_back();
      return nullptr;
    }
    if (::ftruncate(fd.get(), 0) != 0 ||
        ::pwrite(fd.get(), owner.data(), owner.size(), 0) != ssize_t(owner.size()))
      throw systemError(ErrorCode::Storage, errno, "cannot write lock file '{}'", file);
    return std::make_unique<PosixLock>(std::move(fd));
  });
}

}  // namespace tidemark::storage
