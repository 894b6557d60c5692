// Restoring a base backup from the repository.
#include "common/restore/restore.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/cli/progress.h"
#include "common/files/file.h"
#include "common/files/tar.h"
#include "common/repo/layout.h"
#include "common/repo/object.h"

namespace tidemark::restore {

namespace fs = std::filesystem;

namespace {

// Counts restored bytes for the progress display (shared by the fetching threads) and honours a
// stop request.
class Meter final : public io::Filter {
 public:
  Meter(io::Sink& next, Progress& progress, std::mutex& mutex,
        const std::function<bool()>& stopRequested)
      : Filter(next), progress_(progress), mutex_(mutex), stopRequested_(stopRequested) {}
  void write(io::ByteView data) override {
    if (stopRequested_ && stopRequested_())
      throw Error(ErrorCode::Interrupted,
                  "the restore was interrupted; the data directory is incomplete");
    next_.write(data);
    std::lock_guard lock(mutex_);
    progress_.add(data.size());
  }
  void close() override { next_.close(); }

 private:
  Progress& progress_;
  std::mutex& mutex_;
  const std::function<bool()>& stopRequested_;
};

// A location as PostgreSQL writes it into tablespace_map, and reads it back at startup: '\\',
// '\n' and '\r' are escaped with a backslash (do_pg_backup_start, read_tablespace_map).
std::string escapeTablespacePath(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c == '\\' || c == '\n' || c == '\r') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

bool isEmptyDirectory(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr)
    throw systemError(ErrorCode::LocalIo, errno, "cannot open directory '{}'", path);
  bool empty = true;
  while (dirent* entry = ::readdir(dir)) {
    std::string_view name = entry->d_name;
    if (name != "." && name != "..") empty = false;
  }
  ::closedir(dir);
  return empty;
}

// A directory that exists and is empty, created (0700) when absent. One that existed keeps its
// mode and owner: its path may come from backup.json, and root must not hand a directory someone
// else chose to the server's user.
void prepareDirectory(const std::string& path, const std::string& what) {
  if (path.empty() || path.front() != '/')
    throw error(ErrorCode::InvalidInput, "{} '{}' is not an absolute path", what, path);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT)
      throw systemError(ErrorCode::LocalIo, errno, "cannot access {} '{}'", what, path);
    files::makeDirectories(path, "/", ErrorCode::LocalIo);
    if (::chmod(path.c_str(), 0700) != 0)
      throw systemError(ErrorCode::LocalIo, errno, "cannot chmod '{}'", path);
  } else if (!S_ISDIR(st.st_mode)) {
    throw error(ErrorCode::InvalidInput, "{} '{}' exists and is not a directory", what, path);
  } else if (!isEmptyDirectory(path)) {
    throw Error(ErrorCode::InvalidInput, fmt::format("{} '{}' is not empty", what, path),
                "restore into an empty directory, or map the tablespace elsewhere");
  }
}

}  // namespace

void readBackupObject(const repo::Repository& repository, const std::string& label,
                      const repo::BackupObject& expected, io::Sink& sink) {
  std::string path = repo::backupObject(repository.stanza(), label, expected.name);
  auto summary = repository.readObject(path, sink, expected.size);
  if (!summary)
    throw Error(
        ErrorCode::Corrupt,
        fmt::format("backup object '{}' is missing from {}", path, repository.describe()),
        "the backup is damaged: choose another one with --backup=LABEL (tidemark info lists "
        "them)");
  if (summary->plainSize != expected.size || summary->plainSha256 != expected.sha256)
    throw Error(
        ErrorCode::Corrupt,
        fmt::format(
            "backup object '{}' is not the one its backup.json records (SHA-256 {}, {} bytes; "
            "expected {}, {} bytes)",
            path, io::toHex(summary->plainSha256), summary->plainSize, io::toHex(expected.sha256),
            expected.size),
        "the backup is damaged or was tampered with: choose another one with --backup=LABEL "
        "(tidemark info lists them)");
}

namespace {

// Opens the directory `name` (relative to `at`, or AT_FDCWD) without following a link.
files::Fd openDirectoryNoFollow(int at, const std::string& name, const std::string& shown) {
  int fd = ::openat(at, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    throw systemError(ErrorCode::LocalIo, errno,
                      "cannot open '{}' (a directory replaced by a link during the restore is "
                      "not followed)",
                      shown);
  return files::Fd(fd);
}

// Gives what is below the directory `dirFd` (shown as `shown`) to uid:gid, never following a
// symbolic link: each entry is changed by name relative to its directory, and each subdirectory
// opened with O_NOFOLLOW, so that a directory swapped for a link while root walks the tree (by
// the user the tree is being given to) is refused instead of followed.
void chownBelow(int dirFd, const std::string& shown, uid_t uid, gid_t gid) {
  int listFd = ::dup(dirFd);
  DIR* dir = listFd < 0 ? nullptr : ::fdopendir(listFd);
  if (dir == nullptr) {
    if (listFd >= 0) ::close(listFd);
    throw systemError(ErrorCode::LocalIo, errno, "cannot list '{}'", shown);
  }
  std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, ::closedir);
  std::vector<std::pair<std::string, bool>> entries;  // name, is a directory
  errno = 0;
  while (dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    bool directory = entry->d_type == DT_DIR;
    if (entry->d_type == DT_UNKNOWN) {
      struct stat st {};
      directory =
          ::fstatat(dirFd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    }
    entries.emplace_back(std::move(name), directory);
    errno = 0;
  }
  if (errno != 0) throw systemError(ErrorCode::LocalIo, errno, "cannot list '{}'", shown);
  for (const auto& [name, directory] : entries) {
    std::string path = shown + "/" + name;
    // A second name of a file elsewhere (a hard link planted by the owner to be, where
    // fs.protected_hardlinks is off) would give that file away: a restore holds none.
    struct stat st {};
    if (!directory && ::fstatat(dirFd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        !S_ISDIR(st.st_mode) && st.st_nlink > 1)
      throw Error(ErrorCode::LocalIo,
                  fmt::format("'{}' has {} names (hard links), which a restored file does not: "
                              "not giving it away",
                              path, st.st_nlink),
                  "someone linked another file into the restore: find out who, then run "
                  "tidemark-recover again with --force");
    if (::fchownat(dirFd, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
      throw systemError(ErrorCode::LocalIo, errno, "cannot chown '{}'", path);
    if (!directory) continue;
    files::Fd sub = openDirectoryNoFollow(dirFd, name, path);
    chownBelow(sub.get(), path, uid, gid);
  }
}

}  // namespace

void chownTree(const std::string& root, bool created, uid_t uid, gid_t gid) {
  files::Fd fd = openDirectoryNoFollow(AT_FDCWD, root, root);
  if (created && ::fchown(fd.get(), uid, gid) != 0)
    throw systemError(ErrorCode::LocalIo, errno, "cannot chown '{}'", root);
  chownBelow(fd.get(), root, uid, gid);
}

void checkTablespaceLocation(std::uint32_t oid, const std::string& location) {
  if (location.empty() || location.front() != '/')
    throw Error(
        ErrorCode::InvalidInput,
        fmt::format("the location of tablespace {} '{}' is not an absolute path", oid, location),
        fmt::format("restore it elsewhere: --tablespace-map {}=DIR", oid));
  // As written and with its symbolic links resolved (/lib is /usr/lib on Debian).
  std::error_code ec;
  fs::path resolved = fs::weakly_canonical(location, ec);
  for (const fs::path& path : {fs::path(location).lexically_normal(), resolved}) {
    if (path.empty()) continue;
    auto first = std::next(path.begin());  // the component after "/"
    std::string top = first == path.end() ? std::string() : first->string();
    bool system =
        top.empty() || top.rfind("lib", 0) == 0 ||
        std::set<std::string>{"bin", "boot", "dev", "etc", "proc", "root", "sbin", "sys", "usr"}
                .count(top) > 0;
    if (system)
      throw Error(ErrorCode::InvalidInput,
                  fmt::format("the location of tablespace {} '{}' is {} system directory /{}: "
                              "tidemark does not create or restore into one",
                              oid, location, top.empty() ? "the" : "or lies under the", top),
                  fmt::format("restore it elsewhere: --tablespace-map {}=DIR", oid));
  }
}

void checkDataDirectoryMode(const std::string& dataDirectory) {
  struct stat st {};
  if (::stat(dataDirectory.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return;
  if ((st.st_mode & 0027) != 0)
    throw Error(ErrorCode::InvalidInput,
                fmt::format("data directory '{}' has mode {:04o}: PostgreSQL refuses to start in "
                            "one that others can read or the group can write",
                            dataDirectory, st.st_mode & 07777),
                fmt::format("chmod 0700 {} (tidemark never changes a directory it did not create), "
                            "or give a directory that does not exist yet",
                            dataDirectory));
}

RestoreStats restoreBackup(const repo::Repository& repository, const repo::BackupInfo& backup,
                           const std::string& dataDirectory, const RestoreOptions& options) {
  auto started = std::chrono::steady_clock::now();
  for (const auto& object : backup.objects)
    if (object.tablespaceOid != 0 && !options.tablespaceMap.count(object.tablespaceOid))
      checkTablespaceLocation(object.tablespaceOid, object.tablespaceLocation);
  for (const auto& [oid, location] : options.tablespaceMap)
    checkTablespaceLocation(oid, location);
  prepareDirectory(dataDirectory, "data directory");
  checkDataDirectoryMode(dataDirectory);
  Progress progress(fmt::format("restore of backup {}", backup.label), backup.size(),
                    options.terminal);
  RestoreStats stats;
  std::string tablespaceMap;

  std::mutex progressMutex;
  std::mutex statsMutex;
  // The first failure of any archive stops the others at their next write (a multi-terabyte
  // tablespace must not keep extracting for hours after base.tar failed) and is the one reported.
  std::atomic<bool> failed{false};
  std::mutex failureMutex;
  std::exception_ptr firstFailure;
  auto fail = [&](std::exception_ptr failure) {
    std::lock_guard lock(failureMutex);
    if (!firstFailure) firstFailure = failure;
    failed = true;
  };
  const std::function<bool()> stopRequested = [&] {
    return failed.load() || (options.stopRequested && options.stopRequested());
  };
  // Extracts one tar object into its place.
  auto extract = [&](const repo::Repository& from, const repo::BackupObject& object,
                     const std::string& target) {
    spdlog::debug("restoring {} into {}", object.name, target);
    // No fsync per file: syncTree() makes everything durable at the end, far faster.
    // A data directory's own symlinks leading elsewhere (log -> /var/log/...) come back as they
    // were on the server; the extractor never follows them.
    // A backup of a standby holds its standby.signal: tidemark-recover writes the signal file
    // itself, last, once the whole restore is on disk. One extracted on the way would make a
    // directory cut short by a kill or a crash start as a recovery.
    files::TarExtractor extractor(target, {.sync = false,
                                           .allowOutsideSymlinks = true,
                                           .skip = {"standby.signal", "recovery.signal"}});
    files::TarReader reader(extractor);
    Meter meter(reader, progress, progressMutex, stopRequested);
    readBackupObject(from, backup.label, object, meter);
    files::ExtractStats extracted = extractor.finish();
    for (const auto& link : extracted.outsideSymlinks)
      spdlog::warn(
          "{} holds the symlink {}, which leads outside the directory restored: restored as it was "
          "on "
          "the server; check that its target exists here",
          object.name, link);
    std::lock_guard lock(statsMutex);
    stats.files += extracted.files;
    stats.bytes += object.size;
  };

  std::vector<std::pair<const repo::BackupObject*, std::string>> tablespaces;
  for (const auto& object : backup.objects) {
    if (object.name == "backup_manifest") {
      files::AtomicFile file(dataDirectory + "/backup_manifest",
                             {.mode = 0600, .sync = options.sync});
      readBackupObject(repository, backup.label, object, file);
      file.commit();
    } else if (!repo::isDataArchive(object)) {
      throw Error(ErrorCode::Unsupported,
                  fmt::format("backup {} holds '{}', which this tidemark does not know how to "
                              "restore",
                              backup.label, object.name),
                  "restore it with the tidemark version that took the backup, or a newer one");
    } else if (object.tablespaceOid != 0) {
      auto mapped = options.tablespaceMap.find(object.tablespaceOid);
      std::string target =
          mapped != options.tablespaceMap.end() ? mapped->second : object.tablespaceLocation;
      prepareDirectory(target, fmt::format("the location of tablespace {}", object.tablespaceOid));
      tablespaceMap += fmt::format("{} {}\n", object.tablespaceOid, escapeTablespacePath(target));
      tablespaces.emplace_back(&object, target);
    }
  }

  // Tablespace archives on their own threads (bounded), base.tar here.
  std::vector<std::thread> workers;
  std::atomic<std::size_t> next{0};
  std::size_t threads = repository.canOpenAnother()
                            ? std::min<std::size_t>(tablespaces.size(),
                                                    std::size_t(std::max(1, options.parallel - 1)))
                            : 0;
  // The workers start fetching once all of them exist (or a creation failed): whether a thread
  // limit is hit then never depends on how fast the first ones finish, and a restore that cannot
  // start its threads stops them before they extract anything.
  std::atomic<bool> created{false};
  auto startWorkers = [&] {
    created = true;
    created.notify_all();
  };
  try {
    // Inside the try: a thread that cannot be created fails the restore after the others are
    // joined, instead of destroying them joinable (std::terminate).
    for (std::size_t w = 0; w < threads; ++w)
      workers.emplace_back([&] {
        created.wait(false);
        try {
          repo::Repository own = repository.another();
          for (std::size_t i; !failed && (i = next++) < tablespaces.size();)
            extract(own, *tablespaces[i].first, tablespaces[i].second);
        } catch (...) {
          fail(std::current_exception());
        }
      });
    startWorkers();
    for (const auto& object : backup.objects)
      if (object.tablespaceOid == 0 && repo::isDataArchive(object))
        extract(repository, object, dataDirectory);
    if (threads == 0)
      for (const auto& [object, target] : tablespaces)
        extract(repository, *object, target);
  } catch (...) {
    fail(std::current_exception());
  }
  startWorkers();
  for (auto& worker : workers)
    worker.join();
  if (firstFailure) std::rethrow_exception(firstFailure);
  progress.finish();

  // Tablespaces: PostgreSQL reads tablespace_map at startup and links pg_tblspc/<oid> to each
  // location; the links are made now as well, so that pg_verifybackup can check the directory
  // before the server starts. The file is rewritten only when a location was mapped.
  if (!tablespaceMap.empty()) {
    std::string links = dataDirectory + "/pg_tblspc";
    files::makeDirectories(links, dataDirectory, ErrorCode::LocalIo);
    for (const auto& [object, location] : tablespaces) {
      std::string link = fmt::format("{}/{}", links, object->tablespaceOid);
      ::unlink(link.c_str());
      if (::symlink(location.c_str(), link.c_str()) != 0)
        throw systemError(ErrorCode::LocalIo, errno, "cannot link '{}' to '{}'", link, location);
    }
    if (!options.tablespaceMap.empty()) {
      files::AtomicFile file(dataDirectory + "/tablespace_map",
                             {.mode = 0600, .sync = options.sync});
      file.write(io::asBytes(tablespaceMap));
      file.commit();
    }
    if (options.sync) files::syncDirectory(links);
  }
  if (options.sync) {
    files::syncTree(dataDirectory);
    for (const auto& [object, location] : tablespaces)
      files::syncTree(location);
  }
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return stats;
}

}  // namespace tidemark::restore
