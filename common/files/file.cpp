// Local file helpers and the atomic, durable file publish.
#include "common/files/file.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <vector>

namespace tidemark::files {

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = other.release();
  }
  return *this;
}

void Fd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool exists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

std::optional<Fd> openForRead(const std::string& path, ErrorCode code) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    throw systemError(code, errno, "cannot open '{}'", path);
  }
  return Fd(fd);
}

std::size_t preadFull(int fd, std::uint8_t* out, std::size_t size, std::uint64_t offset,
                      const std::string& path, ErrorCode code) {
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, out + done, size - done, off_t(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw systemError(code, errno, "cannot read '{}'", path);
    }
    if (n == 0) break;
    done += std::size_t(n);
  }
  return done;
}

std::uint64_t streamFile(int fd, const std::string& path, io::Sink& sink, std::uint64_t offset,
                         std::optional<std::uint64_t> length, std::size_t chunk, ErrorCode code) {
  io::Buffer buffer(chunk);
  std::uint64_t delivered = 0;
  for (;;) {
    std::size_t want = chunk;
    if (length) {
      if (delivered == *length) break;
      want = std::size_t(std::min<std::uint64_t>(chunk, *length - delivered));
    }
    std::size_t got = preadFull(fd, buffer.data(), want, offset + delivered, path, code);
    if (got > 0) sink.write({buffer.data(), got});
    delivered += got;
    if (got < want) break;
  }
  return delivered;
}

void syncDirectory(const std::string& dir, ErrorCode code) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throw systemError(code, errno, "cannot open directory '{}'", dir);
  if (::fsync(fd.get()) != 0 && errno != EINVAL)  // EINVAL: the filesystem cannot sync directories
    throw systemError(code, errno, "cannot sync directory '{}'", dir);
}

namespace {

std::string userName(uid_t uid) {
  passwd entry{}, *found = nullptr;
  char buffer[4096];
  if (::getpwuid_r(uid, &entry, buffer, sizeof buffer, &found) == 0 && found != nullptr)
    return found->pw_name;
  return std::to_string(uid);
}

std::string groupName(gid_t gid) {
  group entry{}, *found = nullptr;
  char buffer[4096];
  if (::getgrgid_r(gid, &entry, buffer, sizeof buffer, &found) == 0 && found != nullptr)
    return found->gr_name;
  return std::to_string(gid);
}

}  // namespace

std::optional<Owner> ownerForRoot(const std::string& folder) {
  if (::geteuid() != 0) return std::nullopt;
  struct stat st {};
  if (::stat(folder.c_str(), &st) != 0 || st.st_uid == 0) return std::nullopt;
  return Owner{st.st_uid, st.st_gid};
}

bool oneNamedFile(const struct stat& st) {
  return S_ISREG(st.st_mode) && st.st_nlink == 1;
}

bool giveTo(int fd, const Owner& owner) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  if (!oneNamedFile(st)) {
    errno = EMLINK;
    return false;
  }
  return (st.st_uid == owner.uid && st.st_gid == owner.gid) ||
         ::fchown(fd, owner.uid, owner.gid) == 0;
}

std::string giveToHint(int err) {
  if (err != EMLINK) return {};
  return "it has a second name (a hard link) or is no regular file: root writes into no file "
         "another user can point at; remove it while no tidemark runs (it is made again)";
}

void refuseRootIn(const std::string& folder, std::string_view what, std::string_view program) {
  auto owner = ownerForRoot(folder);
  if (!owner) return;
  char* real = ::realpath(folder.c_str(), nullptr);
  const std::string shown = real ? real : folder;
  std::free(real);
  const std::string user = userName(owner->uid);
  // sudo takes a user without a name as '#uid'.
  const std::string sudoUser = user == std::to_string(owner->uid) ? "'#" + user + "'" : user;
  throw Error(
      ErrorCode::Usage,
      fmt::format("{} runs as root, and {} '{}' belongs to '{}'", program, what, shown, user),
      fmt::format("run it as that user, as the server does: sudo -u {} {} ... (what root "
                  "writes there would be root's, and the server's own calls could not "
                  "open it)",
                  sudoUser, program));
}

std::string permissionHint(const std::string& path, const std::string& tree) {
  // The nearest part of the path that can be looked at, then the first folder above it that this
  // user may not enter: that one refused, whatever lies below it.
  std::string refused = path;
  struct stat st {};
  while (::stat(refused.c_str(), &st) != 0) {
    if (refused == "/" || refused == ".") return {};
    refused = dirName(refused);
  }
  bool aboveTree = false;
  for (std::size_t slash = refused.find('/', 1); slash != std::string::npos;
       slash = refused.find('/', slash + 1)) {
    std::string parent = refused.substr(0, slash);
    if (::access(parent.c_str(), X_OK) != 0 && ::stat(parent.c_str(), &st) == 0) {
      refused = parent;
      break;
    }
  }
  aboveTree = !tree.empty() && !within(refused, tree);
  if (::stat(refused.c_str(), &st) != 0) return {};
  const uid_t me = ::geteuid();
  const std::string user = userName(me);
  std::string text = fmt::format(
      "tidemark runs as '{}' (uid {}); '{}' belongs to '{}' (group '{}', mode {:04o}); ", user, me,
      refused, userName(st.st_uid), groupName(st.st_gid), unsigned(st.st_mode & 07777));
  const std::string target = tree.empty() || aboveTree ? refused : tree;
  if (aboveTree)
    return text +
           fmt::format("let '{}' enter it: chmod o+x '{}', or move the repository", user, refused);
  if (me == 0)
    return text +
           "root is refused there (an NFS export with root_squash, a read-only or immutable "
           "file?): run tidemark as the owner of the repository, e.g. sudo -u postgres";
  if (st.st_uid == me) return text + fmt::format("run: chmod -R u+rwX '{}'", target);
  if (st.st_uid == 0)
    return text + fmt::format(
                      "as root, run: chown -R {}: '{}' (the repository belongs to the user the "
                      "server's archive_command runs as, usually postgres)",
                      user, target);
  // Another user's: often the server's user, which archives into it. Giving it away would lock
  // out whoever writes there as its owner, so the advice is to run as that user, not a chown.
  return text + fmt::format(
                    "run tidemark as '{}', its owner (sudo -u {} ...): a chown to '{}' would lock "
                    "out what writes there as '{}' (the server's archive_command, when that is the "
                    "server's user)",
                    userName(st.st_uid), userName(st.st_uid), user, userName(st.st_uid));
}

void makeDirectories(const std::string& dir, const std::string& stopAt, ErrorCode code,
                     std::optional<Owner> owner) {
  struct stat st {};
  if (::stat(stopAt.c_str(), &st) != 0) {
    if (errno == ENOENT)
      throw Error(
          code, fmt::format("'{}' does not exist", stopAt),
          "create it (and mount the storage there, if it is a mount point), or fix the path");
    throw systemError(code, errno, "cannot access '{}'", stopAt);
  }
  if (!S_ISDIR(st.st_mode)) throw error(code, "'{}' is not a directory", stopAt);
  if (dir.size() <= stopAt.size()) return;

  std::string parent = stopAt;
  std::size_t pos = stopAt.size();
  while (pos < dir.size()) {
    std::size_t next = dir.find('/', pos + 1);
    if (next == std::string::npos) next = dir.size();
    std::string current = dir.substr(0, next);
    if (current.size() > parent.size() && current.back() != '/') {
      if (::mkdir(current.c_str(), 0750) == 0) {
        if (owner && ::lchown(current.c_str(), owner->uid, owner->gid) != 0)
          throw systemError(code, errno, "cannot give directory '{}' to uid {}", current,
                            owner->uid);
        syncDirectory(parent, code);
      } else if (errno != EEXIST) {
        throw systemError(code, errno, "cannot create directory '{}'", current);
      } else if (::stat(current.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        throw error(code, "'{}' exists and is not a directory", current);
      } else {
        // Made by a concurrent writer, which may not have synced its entry yet: an object
        // published below it must not vanish with the directory in a crash.
        syncDirectory(parent, code);
      }
      parent = current;
    }
    pos = next;
  }
}

void syncTree(const std::string& root, ErrorCode code) {
  std::vector<std::string> files, directories{root};
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_symlink(ec)) continue;
    if (it->is_directory(ec))
      directories.push_back(it->path().string());
    else if (it->is_regular_file(ec))
      files.push_back(it->path().string());
  }
  if (ec) throw systemError(code, ec.value(), "cannot walk '{}'", root);
  auto open = [&](const std::string& path, int flags) {
    Fd fd(::open(path.c_str(), flags | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) throw systemError(code, errno, "cannot open '{}'", path);
    return fd;
  };
  // O_NONBLOCK: a file swapped for a FIFO meanwhile fails its fsync instead of blocking the open.
  for (const auto& file : files) {
    Fd fd = open(file, O_RDONLY | O_NONBLOCK);
    ::sync_file_range(fd.get(), 0, 0, SYNC_FILE_RANGE_WRITE);  // a hint: failures show in the fsync
  }
  for (const auto& file : files) {
    Fd fd = open(file, O_RDONLY | O_NONBLOCK);
    if (::fsync(fd.get()) != 0) throw systemError(code, errno, "cannot sync '{}'", file);
  }
  for (auto it = directories.rbegin(); it != directories.rend(); ++it) {
    Fd fd = open(*it, O_RDONLY | O_DIRECTORY);
    if (::fsync(fd.get()) != 0 && errno != EINVAL)
      throw systemError(code, errno, "cannot sync directory '{}'", *it);
  }
}

std::string baseName(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string dirName(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string normalPath(const std::string& path) {
  std::string out = std::filesystem::path(path).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/')
    out.pop_back();
  return out;
}

bool within(const std::string& inner, const std::string& outer) {
  return inner == outer ||
         (inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 &&
          (outer == "/" || inner[outer.size()] == '/'));
}

namespace {

std::string tempName(const std::string& dir, const std::string& base) {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  return fmt::format("{}/.{}.tmp-{}-{:012x}", dir, base, ::getpid(), random() & 0xffffffffffffULL);
}

// Whether `path` names a regular file (not following a symbolic link).
bool replacesRegularFile(const std::string& path) {
  struct stat st {};
  return ::fstatat(AT_FDCWD, path.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

AtomicFile::AtomicFile(std::string path, AtomicWriteOptions options)
    : path_(std::move(path)), dir_(dirName(path_)), options_(options) {
  // An unnamed inode is published through /proc/self/fd: without /proc (a chroot, a container
  // that does not mount it), a named temporary file is used from the start.
  const bool procMounted = ::access("/proc/self/fd", X_OK) == 0;
  if (options_.allowTmpfile && procMounted) {
    int fd = ::open(dir_.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, options_.mode);
    if (fd >= 0) {
      fd_ = Fd(fd);
      return;
    }
    // EOPNOTSUPP/EISDIR/EINVAL: no O_TMPFILE on this filesystem (NFS, older kernels).
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
      fail("create a file in", dir_, errno);
  }
  tempPath_ = tempName(dir_, baseName(path_));
  int fd = ::open(tempPath_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, options_.mode);
  if (fd < 0) {
    int err = errno;
    tempPath_.clear();
    fail("create a file in", dir_, err);
  }
  fd_ = Fd(fd);
}

AtomicFile::~AtomicFile() {
  if (!committed_ && !tempPath_.empty()) ::unlink(tempPath_.c_str());
}

void AtomicFile::fail(std::string_view action, const std::string& where, int err) const {
  throw systemError(options_.errorCode, err, "cannot {} '{}'", action, where);
}

void AtomicFile::write(io::ByteView data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd_.get(), data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write", path_, errno);
    }
    data = data.subspan(std::size_t(n));
    size_ += std::size_t(n);
  }
}

void AtomicFile::close() {
  if (closed_) return;
  if (options_.sync && ::fdatasync(fd_.get()) != 0) fail("sync", path_, errno);
  closed_ = true;
}

bool AtomicFile::commit() {
  close();
  if (options_.owner && ::fchown(fd_.get(), options_.owner->uid, options_.owner->gid) != 0)
    fail("give an owner to", path_, errno);
  if (tempPath_.empty()) {
    // Unnamed inode: give it a name. linkat() never replaces, so for noReplace this is the
    // publish; so it is too when nothing has the name yet (archive-get's %p: PostgreSQL removes
    // it before each call), and then no named temporary file exists at any moment, that a kill
    // between the link and a rename would leave behind. Only a name that exists is replaced
    // through a temporary name and rename().
    std::string procPath = fmt::format("/proc/self/fd/{}", fd_.get());
    bool linked =
        ::linkat(AT_FDCWD, procPath.c_str(), AT_FDCWD, path_.c_str(), AT_SYMLINK_FOLLOW) == 0;
    if (!linked) {
      int err = errno;
      if (err == EEXIST && options_.noReplace) return false;
      if (err != EEXIST) fail("publish", path_, err);
      tempPath_ = tempName(dir_, baseName(path_));
      if (::linkat(AT_FDCWD, procPath.c_str(), AT_FDCWD, tempPath_.c_str(), AT_SYMLINK_FOLLOW) !=
          0) {
        err = errno;
        tempPath_.clear();
        fail("publish", path_, err);
      }
    }
  }
  if (!tempPath_.empty()) {
    if (options_.noReplace) {
      if (::renameat2(AT_FDCWD, tempPath_.c_str(), AT_FDCWD, path_.c_str(), RENAME_NOREPLACE) !=
          0) {
        int err = errno;
        if (err == EEXIST) return false;  // destructor removes the temporary file
        if (err != EINVAL && err != ENOSYS) fail("publish", path_, err);
        // No RENAME_NOREPLACE here (NFS): link() refuses to replace as well.
        if (::link(tempPath_.c_str(), path_.c_str()) != 0) {
          if (errno == EEXIST) return false;
          fail("publish", path_, errno);
        }
        ::unlink(tempPath_.c_str());
      }
    } else if (!options_.sync && replacesRegularFile(path_) &&
               ::renameat2(AT_FDCWD, tempPath_.c_str(), AT_FDCWD, path_.c_str(), RENAME_EXCHANGE) ==
                   0) {
      // Unsynced (a hint, a statistic) over a regular file: the names are swapped and the old
      // file removed, rather than the old one replaced by rename(), which makes ext4 write the
      // new file's data out first (auto_da_alloc, for files that are not fsynced): 0.3 to 0.7
      // ms here on each archive-get's request record. Readers still see the old file or the
      // new one, whole. Anything else at the name (a directory, nothing) goes through rename(),
      // which refuses or publishes it as before.
      if (::unlink(tempPath_.c_str()) != 0 && errno != ENOENT) {
        // Replaced by a directory between the look and the swap: swapped back, and refused.
        int err = errno;
        ::renameat2(AT_FDCWD, tempPath_.c_str(), AT_FDCWD, path_.c_str(), RENAME_EXCHANGE);
        fail("publish", path_, err);
      }
    } else if (::rename(tempPath_.c_str(), path_.c_str()) != 0) {
      fail("publish", path_, errno);
    }
    tempPath_.clear();
  }
  fd_.reset();
  committed_ = true;
  if (options_.sync) syncDirectory(dir_, options_.errorCode);
  return true;
}

}  // namespace tidemark::files
