// The tar extractor that stays inside its root: every path opened from a descriptor of the root,
// never through a symlink.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>
#include <vector>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/files/tar.h"

namespace tidemark::files {

namespace {

constexpr const char* kConflictHint =
    "the archive holds two different kinds of entry under that name, or the extraction root was "
    "not empty: extract into an empty directory";

// The components of a normalised path ("" and "." dropped, should a Handler be fed other paths).
std::vector<std::string> components(std::string_view path) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= path.size()) {
    std::size_t slash = std::min(path.find('/', at), path.size());
    std::string_view part = path.substr(at, slash - at);
    if (!part.empty() && part != ".") out.emplace_back(part);
    at = slash + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& parts, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) {
    if (i) out += '/';
    out += parts[i];
  }
  return out;
}

std::string parentOf(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

const char* typeName(char flag) {
  switch (flag) {
    case '3':
      return "character device";
    case '4':
      return "block device";
    case '6':
      return "FIFO";
    default:
      return nullptr;
  }
}

timespec toTimespec(std::int64_t seconds) {
  timespec t{};
  t.tv_sec = time_t(seconds);
  return t;
}

}  // namespace

// --- TarExtractor ------------------------------------------------------------------------------

TarExtractor::TarExtractor(std::string root, ExtractOptions options)
    : root_(std::move(root)), options_(options) {
  rootFd_ = Fd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!rootFd_)
    throw systemError(ErrorCode::LocalIo, errno, "cannot open extraction root '{}'", root_);
}

std::string TarExtractor::full(const std::string& path) const {
  return path.empty() ? root_ : root_ + "/" + path;
}

void TarExtractor::refuse(const std::string& why, const char* hint) const {
  throw Error(ErrorCode::InvalidInput,
              fmt::format("refusing tar entry '{}': {}", printable(current_.path), why),
              hint ? hint
                   : "the archive tries to write outside the extraction root, or is not a backup "
                     "this tool made: check where it came from");
}

// Marks a directory as gaining an entry: finish() fsyncs it.
void TarExtractor::touched(const std::string& dir) {
  if (options_.sync) directories_.try_emplace(dir);
}

// Opens directory `dir` (below root), component by component, never following a symlink; with
// `create`, missing directories are made with directoryMode.
Fd TarExtractor::walk(const std::string& dir, bool create) {
  const auto parts = components(dir);
  Fd current(::dup(rootFd_.get()));
  if (!current) throw systemError(ErrorCode::LocalIo, errno, "cannot duplicate a descriptor");
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = ::openat(current.get(), parts[i].c_str(), flags);
    if (fd < 0 && errno == ENOENT && create) {
      const bool created = ::mkdirat(current.get(), parts[i].c_str(), 0700) == 0;
      if (!created && errno != EEXIST)
        throw systemError(ErrorCode::LocalIo, errno, "cannot create directory '{}'",
                          full(join(parts, i + 1)));
      fd = ::openat(current.get(), parts[i].c_str(), flags);
      // fchmod, not mkdirat's mode: the umask must not change what the caller asked for.
      if (fd >= 0 && created && ::fchmod(fd, options_.directoryMode) != 0) {
        int err = errno;
        ::close(fd);
        throw systemError(ErrorCode::LocalIo, err, "cannot set the mode of '{}'",
                          full(join(parts, i + 1)));
      }
      touched(join(parts, i));
    }
    if (fd < 0 && errno == ENOENT && !create) return Fd();
    if (fd < 0) {
      const int err = errno;
      const std::string sofar = join(parts, i + 1);
      struct stat st {};
      if ((err == ELOOP || err == ENOTDIR) &&
          ::fstatat(current.get(), parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(st.st_mode))
          refuse(fmt::format("'{}' is a symlink, and nothing is extracted through a symlink",
                             printable(sofar)));
        refuse(fmt::format("'{}' is not a directory", printable(sofar)));
      }
      throw systemError(ErrorCode::LocalIo, err, "cannot open directory '{}'", full(sofar));
    }
    current = Fd(fd);
  }
  return current;
}

// Opens the parent of `path` (creating it as needed; cached for the next entry) and returns its
// descriptor, with the last component in `leaf`.
int TarExtractor::openParent(const std::string& path, std::string& leaf) {
  std::string parent = parentOf(path);
  leaf = path.substr(parent.empty() ? 0 : parent.size() + 1);
  if (!parentFd_ || parent != parentPath_) {
    parentFd_.reset();
    parentFd_ = walk(parent, true);
    parentPath_ = parent;
  }
  return parentFd_.get();
}

// Makes room for a new non-directory at `leaf`: unlinks a file, symlink or other non-directory
// already there. Returns false when the name was free.
bool TarExtractor::clearPlace(int parent, const std::string& leaf, const std::string& path) {
  struct stat st {};
  if (::fstatat(parent, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return false;
    throw systemError(ErrorCode::LocalIo, errno, "cannot inspect '{}'", full(path));
  }
  if (S_ISDIR(st.st_mode)) refuse("a directory of that name is already there", kConflictHint);
  if (::unlinkat(parent, leaf.c_str(), 0) != 0 && errno != ENOENT)
    throw systemError(ErrorCode::LocalIo, errno, "cannot replace '{}'", full(path));
  return true;
}

// Refuses a symlink at `linkPath` whose `target` is absolute or climbs above root. '..' only as
// leading components: after a name it could be the parent of a symlink's target, not of the
// name, and a lexical check would be fooled.
bool TarExtractor::checkSymlinkTarget(const std::string& linkPath, const std::string& target,
                                      const char* what) const {
  if (target.empty()) refuse(fmt::format("{} '' is empty", what));
  const bool allowed = options_.allowOutsideSymlinks;
  if (target[0] == '/') {
    if (allowed) return true;
    refuse(fmt::format("{} '{}' is absolute", what, printable(target)));
  }
  std::size_t depth = components(parentOf(linkPath)).size();
  bool named = false;
  std::size_t at = 0;
  while (at <= target.size()) {
    std::size_t slash = std::min(target.find('/', at), target.size());
    std::string_view part = std::string_view(target).substr(at, slash - at);
    at = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part != "..") {
      named = true;
      continue;
    }
    if (named) {
      if (allowed) return true;
      refuse(
          fmt::format("{} '{}' has '..' after a name, which could climb out of the "
                      "extraction root through another symlink",
                      what, printable(target)));
    }
    if (depth == 0) {
      if (allowed) return true;
      refuse(fmt::format("{} '{}' climbs out of the extraction root", what, printable(target)));
    }
    --depth;
  }
  return false;
}

void TarExtractor::begin(const TarEntry& entry) {
  if (inEntry_) throw Error(ErrorCode::Internal, "tar extractor: begin() inside an entry");
  current_ = entry;
  written_ = 0;
  inEntry_ = true;
  if (!entry.path.empty() && entry.path[0] == '/') refuse("the path is absolute");
  const auto parts = components(entry.path);
  if (std::find(parts.begin(), parts.end(), "..") != parts.end())
    refuse("the path has a '..' component");
  if (parts.empty()) {
    if (entry.type == TarEntry::Type::Directory) return;  // the archive's root: root itself
    refuse("it names the extraction root itself");
  }
  current_.path = join(parts, parts.size());
  if (std::find(options_.skip.begin(), options_.skip.end(), current_.path) != options_.skip.end()) {
    skipping_ = true;
    return;
  }
  switch (entry.type) {
    case TarEntry::Type::File:
      return file(current_);
    case TarEntry::Type::Directory:
      return directory(current_);
    case TarEntry::Type::Symlink:
      return symlink(current_);
    case TarEntry::Type::HardLink:
      return hardLink(current_);
    case TarEntry::Type::Other:
      if (const char* name = typeName(entry.typeFlag))
        refuse(fmt::format("cannot extract a {}", name));
      refuse(fmt::format("cannot extract an entry of type '{}'", printable({&entry.typeFlag, 1})));
  }
}

void TarExtractor::file(const TarEntry& entry) {
  std::string leaf;
  const int parent = openParent(entry.path, leaf);
  const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  int fd = ::openat(parent, leaf.c_str(), flags, 0600);
  if (fd < 0 && errno == EEXIST && clearPlace(parent, leaf, entry.path))
    fd = ::openat(parent, leaf.c_str(), flags, 0600);
  if (fd < 0) throw systemError(ErrorCode::LocalIo, errno, "cannot create '{}'", full(entry.path));
  file_ = Fd(fd);
  touched(parentPath_);
}

void TarExtractor::directory(const TarEntry& entry) {
  std::string leaf;
  const int parent = openParent(entry.path, leaf);
  if (::mkdirat(parent, leaf.c_str(), 0700) == 0) {
    touched(parentPath_);
  } else if (errno != EEXIST) {
    throw systemError(ErrorCode::LocalIo, errno, "cannot create directory '{}'", full(entry.path));
  }
  // Created or already there: it must be a real directory, and its owner must be able to fill
  // it until finish() applies the archive's mode.
  Fd dir(::openat(parent, leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) {
    const int err = errno;
    struct stat st {};
    if ((err == ELOOP || err == ENOTDIR) &&
        ::fstatat(parent, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
      refuse(S_ISLNK(st.st_mode) ? "a symlink of that name is already there"
                                 : "a non-directory of that name is already there",
             kConflictHint);
    throw systemError(ErrorCode::LocalIo, err, "cannot open directory '{}'", full(entry.path));
  }
  struct stat st {};
  if (::fstat(dir.get(), &st) != 0)
    throw systemError(ErrorCode::LocalIo, errno, "cannot inspect '{}'", full(entry.path));
  if ((st.st_mode & 0700) != 0700 && ::fchmod(dir.get(), (st.st_mode & 07777) | 0700) != 0)
    throw systemError(ErrorCode::LocalIo, errno, "cannot set the mode of '{}'", full(entry.path));
  auto& record = directories_[entry.path];
  record.mode = options_.preserveMode ? entry.mode & 0777 : options_.directoryMode;
  record.mtime = entry.mtime;
  ++stats_.directories;
}

void TarExtractor::symlink(const TarEntry& entry) {
  if (checkSymlinkTarget(entry.path, entry.linkTarget, "symlink target"))
    stats_.outsideSymlinks.push_back(entry.path + " -> " + entry.linkTarget);
  std::string leaf;
  const int parent = openParent(entry.path, leaf);
  if (::symlinkat(entry.linkTarget.c_str(), parent, leaf.c_str()) != 0) {
    if (errno != EEXIST || !clearPlace(parent, leaf, entry.path) ||
        ::symlinkat(entry.linkTarget.c_str(), parent, leaf.c_str()) != 0)
      throw systemError(ErrorCode::LocalIo, errno, "cannot create symlink '{}'", full(entry.path));
  }
  const timespec times[2] = {toTimespec(entry.mtime), toTimespec(entry.mtime)};
  if (::utimensat(parent, leaf.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
    throw systemError(ErrorCode::LocalIo, errno, "cannot set the mtime of '{}'", full(entry.path));
  touched(parentPath_);
  ++stats_.links;
}

void TarExtractor::hardLink(const TarEntry& entry) {
  const std::string& target = entry.linkTarget;
  const auto targetParts = components(target);
  if (!target.empty() && target[0] == '/')
    refuse(fmt::format("hard link target '{}' is absolute", printable(target)));
  if (std::find(targetParts.begin(), targetParts.end(), "..") != targetParts.end())
    refuse(fmt::format("hard link target '{}' has a '..' component", printable(target)));
  if (targetParts.empty()) refuse("hard link to the extraction root");

  const std::string targetPath = join(targetParts, targetParts.size());
  const std::string targetLeaf = targetParts.back();
  Fd targetParent = walk(parentOf(targetPath), false);
  struct stat st {};
  if (!targetParent ||
      ::fstatat(targetParent.get(), targetLeaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (!targetParent || errno == ENOENT)
      refuse(
          fmt::format("hard link target '{}' has not been extracted (a hard link must "
                      "follow its target in the archive)",
                      printable(target)));
    throw systemError(ErrorCode::LocalIo, errno, "cannot inspect '{}'", full(targetPath));
  }
  if (S_ISDIR(st.st_mode))
    refuse(fmt::format("hard link target '{}' is a directory", printable(target)));
  if (S_ISLNK(st.st_mode)) {
    // The new name is a second link to the same symlink inode: its relative target is then
    // resolved from the new name's directory, which must keep it inside root.
    char buffer[4096];
    ssize_t n = ::readlinkat(targetParent.get(), targetLeaf.c_str(), buffer, sizeof buffer);
    if (n < 0) throw systemError(ErrorCode::LocalIo, errno, "cannot read '{}'", full(targetPath));
    checkSymlinkTarget(entry.path, std::string(buffer, std::size_t(n)),
                       "the target of the symlink it links to,");
  }

  std::string leaf;
  const int parent = openParent(entry.path, leaf);
  struct stat there {};
  if (::fstatat(parent, leaf.c_str(), &there, AT_SYMLINK_NOFOLLOW) == 0 &&
      there.st_dev == st.st_dev && there.st_ino == st.st_ino)
    return;  // already that file (GNU tar stores a file named twice as a link to itself)
  if (::linkat(targetParent.get(), targetLeaf.c_str(), parent, leaf.c_str(), 0) != 0) {
    if (errno != EEXIST || !clearPlace(parent, leaf, entry.path) ||
        ::linkat(targetParent.get(), targetLeaf.c_str(), parent, leaf.c_str(), 0) != 0)
      throw systemError(ErrorCode::LocalIo, errno, "cannot create hard link '{}'",
                        full(entry.path));
  }
  touched(parentPath_);
  ++stats_.links;
}

void TarExtractor::data(io::ByteView bytes) {
  if (skipping_) return;
  if (!file_) throw Error(ErrorCode::Internal, "tar extractor: data() outside a file");
  written_ += bytes.size();
  if (written_ > current_.size)
    throw error(ErrorCode::Internal, "tar extractor: more data than the size of '{}'",
                current_.path);
  while (!bytes.empty()) {
    ssize_t n = ::write(file_.get(), bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw systemError(ErrorCode::LocalIo, errno, "cannot write '{}'", full(current_.path));
    }
    bytes = bytes.subspan(std::size_t(n));
  }
}

void TarExtractor::end() {
  if (!inEntry_) throw Error(ErrorCode::Internal, "tar extractor: end() outside an entry");
  inEntry_ = false;
  if (std::exchange(skipping_, false)) return;
  if (!file_) return;
  const std::string path = full(current_.path);
  if (written_ != current_.size)
    throw error(ErrorCode::Internal, "tar extractor: '{}' ended after {} of {} bytes",
                current_.path, written_, current_.size);
  const mode_t mode = options_.preserveMode ? current_.mode & 0777 : 0600;
  if (::fchmod(file_.get(), mode) != 0)
    throw systemError(ErrorCode::LocalIo, errno, "cannot set the mode of '{}'", path);
  const timespec times[2] = {toTimespec(current_.mtime), toTimespec(current_.mtime)};
  if (::futimens(file_.get(), times) != 0)
    throw systemError(ErrorCode::LocalIo, errno, "cannot set the mtime of '{}'", path);
  if (options_.sync && ::fsync(file_.get()) != 0)
    throw systemError(ErrorCode::LocalIo, errno, "cannot sync '{}'", path);
  // close() may report a delayed write error (NFS).
  if (::close(file_.release()) != 0 && errno != EINTR)
    throw systemError(ErrorCode::LocalIo, errno, "cannot write '{}'", path);
  ++stats_.files;
  stats_.bytes += current_.size;
}

ExtractStats TarExtractor::finish() {
  if (inEntry_) throw Error(ErrorCode::Internal, "tar extractor: finish() inside an entry");
  parentFd_.reset();
  // Children before parents (a parent sorts before its children): a parent's final mode may
  // deny what opening its children needs.
  for (auto it = directories_.rbegin(); it != directories_.rend(); ++it) {
    const std::string& path = it->first;
    const DirectoryRecord& record = it->second;
    Fd dir = path.empty() ? Fd(::dup(rootFd_.get())) : walk(path, false);
    if (!dir)
      throw systemError(ErrorCode::LocalIo, errno, "cannot open directory '{}'", full(path));
    if (record.mode && ::fchmod(dir.get(), *record.mode) != 0)
      throw systemError(ErrorCode::LocalIo, errno, "cannot set the mode of '{}'", full(path));
    if (record.mtime) {
      const timespec times[2] = {toTimespec(*record.mtime), toTimespec(*record.mtime)};
      if (::futimens(dir.get(), times) != 0)
        throw systemError(ErrorCode::LocalIo, errno, "cannot set the mtime of '{}'", full(path));
    }
    if (options_.sync && ::fsync(dir.get()) != 0 && errno != EINVAL)
      throw systemError(ErrorCode::LocalIo, errno, "cannot sync directory '{}'", full(path));
  }
  directories_.clear();
  return stats_;
}

ExtractStats extractTarFile(const std::string& archive, const std::string& root,
                            ExtractOptions options) {
  auto fd = openForRead(archive);
  if (!fd) throw error(ErrorCode::LocalIo, "tar archive '{}' does not exist", archive);
  TarExtractor extractor(root, options);
  TarReader reader(extractor);
  streamFile(fd->get(), archive, reader, 0, std::nullopt, 256 << 10);
  reader.close();
  return extractor.finish();
}

}  // namespace tidemark::files
