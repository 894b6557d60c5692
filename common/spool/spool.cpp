// tidemark's local state on the database host.
#include "common/spool/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

#include "common/base/error.h"
#include "common/files/file.h"
#include "common/log/log.h"
#include "common/pg/control.h"
#include "common/pg/wal_records.h"

namespace tidemark::spool {

namespace {

constexpr const char* kPushFolder = "push";
constexpr const char* kGetFolder = "get";
constexpr const char* kAckSuffix = ".ok";
constexpr const char* kWantedFile = "wanted";
constexpr const char* kSignerFile = "stanza-signer";
constexpr std::string_view kInflightSuffix = ".inflight";
constexpr std::size_t kMaxSmallFile = 64 * 1024;
// When a spool cannot be looked into for a gap: what the operator mends (a gap there must never be
// passed over).
constexpr const char* kSpoolFaultHint =
    "check the disk the spool is on (the system log) and its folders' permissions and links";

// A small file's text; nullopt when it cannot be read (whole) or is larger than a spool file
// ever is. A read that fails part-way is no text: a prefix cut at a piece's end could still
// parse, with a wrong last value.
std::optional<std::string> readSmall(const std::string& path) {
  try {
    auto fd = files::openForRead(path);
    if (!fd) return std::nullopt;
    // Grown as it is read: these files hold a few hundred bytes, and a buffer the size of the
    // bound, zero-filled, cost every archive-push and archive-get 16 page faults of its start.
    std::string text;
    std::uint8_t piece[4096];
    for (;;) {
      std::size_t n = files::preadFull(fd->get(), piece, sizeof piece, text.size(), path);
      text.append(reinterpret_cast<const char*>(piece), n);
      if (text.size() > kMaxSmallFile) return std::nullopt;
      if (n < sizeof piece) return text;
    }
  } catch (const Error&) {
    return std::nullopt;
  }
}

// "key value" lines (the value is the rest of the line) after a first line that must be `magic`.
std::optional<std::map<std::string, std::string>> parseFields(const std::string& text,
                                                              std::string_view magic) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != magic) return std::nullopt;
  std::map<std::string, std::string> fields;
  while (std::getline(in, line)) {
    auto space = line.find(' ');
    if (space == std::string::npos || space == 0) return std::nullopt;
    if (!fields.emplace(line.substr(0, space), line.substr(space + 1)).second) return std::nullopt;
  }
  return fields;
}

template <typename T>
bool parseNumber(const std::string& text, T& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

// One line: a value never carries a line break into the file.
std::string oneLine(std::string s) {
  for (char& ch : s)
    if (ch == '\n' || ch == '\r') ch = ' ';
  return s;
}

// Whether `fd` is still the file at `path` (a lock on a file removed since is nobody's).
bool sameFile(int fd, const std::string& path) {
  struct stat held {};
  struct stat current {};
  return ::fstat(fd, &held) == 0 && ::stat(path.c_str(), &current) == 0 &&
         held.st_dev == current.st_dev && held.st_ino == current.st_ino;
}

// Waits up to `timeout` (looking every `pollUs` microseconds) until no process holds a flock on
// `path`: true when none does, or the file does not exist.
bool waitUnlocked(const std::string& path, std::chrono::milliseconds timeout, useconds_t pollUs) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return true;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool free = false;
  while (!(free = ::flock(fd, LOCK_SH | LOCK_NB) == 0) &&
         std::chrono::steady_clock::now() < deadline)
    ::usleep(pollUs);
  ::close(fd);
  return free;
}

void makeFolder(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
    throw systemError(ErrorCode::LocalIo, errno, "cannot create the spool folder '{}'", path);
}

// The stanza folder, and the spool folder above it when missing.
void makeStanzaFolder(const std::string& folder) {
  makeFolder(files::dirName(folder));
  makeFolder(folder);
}

void writeSmall(const std::string& path, const std::string& text) {
  files::AtomicFile file(path, {.mode = 0600, .errorCode = ErrorCode::LocalIo});
  file.write({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
  file.commit();
}

// Removes the entries of `dir` that `ours` accepts (recursively for folders); returns how many.
std::size_t removeEntries(const std::string& dir,
                          const std::function<bool(const std::string&)>& ours) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) return 0;
    throw systemError(ErrorCode::LocalIo, errno, "cannot read the spool folder '{}'", dir);
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != ".." && ours(name)) names.push_back(name);
  }
  ::closedir(d);
  std::size_t removed = 0;
  for (const auto& name : names) {
    std::string path = dir + "/" + name;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      removed += removeEntries(path, [](const std::string&) { return true; });
      if (::rmdir(path.c_str()) != 0 && errno != ENOENT)
        throw systemError(ErrorCode::LocalIo, errno, "cannot remove '{}'", path);
    } else if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      throw systemError(ErrorCode::LocalIo, errno, "cannot remove '{}'", path);
    }
    ++removed;
  }
  return removed;
}

std::string describe(const Identity& id) {
  return fmt::format("repository {}, stanza id {}, system identifier {}", id.repository,
                     id.stanzaId.empty() ? "(none)" : id.stanzaId, id.systemId);
}

}  // namespace

std::string dataDirectorySpool(const std::string& dataDirectory) {
  return dataDirectory + "/pg_wal/tidemark";
}

std::optional<std::string> spoolDirectory(const Config& config,
                                          const std::optional<std::string>& dataDirectory) {
  if (!config.archive.spoolPath.empty()) return config.archive.spoolPath;
  if (dataDirectory && !dataDirectory->empty()) return dataDirectorySpool(*dataDirectory);
  return std::nullopt;
}

std::vector<std::string> spoolDirectories(const Config& config,
                                          const std::optional<std::string>& dataDirectory) {
  std::vector<std::string> spools;
  if (auto spool = spoolDirectory(config, dataDirectory)) spools.push_back(*spool);
  if (dataDirectory && !dataDirectory->empty() &&
      spools.front() != dataDirectorySpool(*dataDirectory))
    spools.push_back(dataDirectorySpool(*dataDirectory));
  return spools;
}

std::optional<std::string> stanzaSpool(const Config& config,
                                       const std::optional<std::string>& dataDirectory) {
  auto root = spoolDirectory(config, dataDirectory);
  if (!root) return std::nullopt;
  return *root + "/" + config.stanza;
}

// ---- identity -------------------------------------------------------------------------------

namespace {
constexpr std::string_view kIdentityMagic = "tidemark spool 1";
}

std::optional<Identity> recordedIdentity(const std::string& folder) {
  auto text = readSmall(folder + "/" + kIdentityFile);
  if (!text) return std::nullopt;
  auto fields = parseFields(*text, kIdentityMagic);
  if (!fields || !fields->count("repository") || !fields->count("stanza-id") ||
      !fields->count("system-id"))
    return std::nullopt;
  Identity id{.repository = fields->at("repository"), .stanzaId = fields->at("stanza-id")};
  if (!parseNumber(fields->at("system-id"), id.systemId)) return std::nullopt;
  return id;
}

namespace {

// What claim() and discard() remove: everything tidemark puts in a stanza folder but the gap (and
// the temporary files of its own writes; no other name, so that a spool-path set to a folder
// holding other things loses none of them).
bool discardable(const std::string& name) {
  if (name == kPushFolder || name == kGetFolder || name == kIdentityFile ||
      name == kPushStatsFile || name == std::string(kPushStatsFile) + ".1" || name == kSignerFile)
    return true;
  for (const std::string own : {kIdentityFile, kGapFile, kWantedFile, kSignerFile})
    if (name.rfind("." + own + ".tmp-", 0) == 0) return true;
  return false;
}

}  // namespace

void discard(const std::string& folder) noexcept {
  try {
    if (removeEntries(folder, discardable))
      spdlog::info("removed the spool '{}' of the data directory's former life", folder);
  } catch (const std::exception& e) {
    spdlog::warn("{}", e.what());
  }
}

bool claim(const std::string& folder, const Identity& identity) {
  const auto recorded = recordedIdentity(folder);
  if (recorded && *recorded == identity) return false;
  makeStanzaFolder(folder);
  // Only what tidemark puts here goes: a spool-path set to a folder that holds other things
  // loses none of them.
  // The gap stays: it names its own repository and cluster, and archive-push records it in that
  // repository or reports it (a drop must never be forgotten with a discarded spool).
  std::size_t removed = removeEntries(folder, discardable);
  if (recorded)
    spdlog::warn(
        "discarded the spool '{}': it was made for {}, and the configuration now names {}; "
        "nothing in it is trusted",
        folder, describe(*recorded), describe(identity));
  else if (removed)
    spdlog::warn("discarded the spool '{}': it records no identity; nothing in it is trusted",
                 folder);
  writeSmall(
      folder + "/" + kIdentityFile,
      fmt::format("{}\nrepository {}\nstanza-id {}\nsystem-id {}\n", kIdentityMagic,
                  oneLine(identity.repository), oneLine(identity.stanzaId), identity.systemId));
  return removed > 0;
}

// ---- push acknowledgements and prefetched segments ------------------------------------------

namespace {

constexpr std::string_view kRecordMagic = "tidemark file record 1";

Fingerprint fromStat(const struct stat& st) {
  return {.device = std::uint64_t(st.st_dev),
          .inode = std::uint64_t(st.st_ino),
          .size = std::uint64_t(st.st_size),
          .mtimeNs = std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
          .ctimeNs = std::int64_t(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec};
}

// Records live in <folder>/<sub>/<file>.ok.
std::string recordPath(const std::string& folder, const char* sub, const std::string& file) {
  return fmt::format("{}/{}/{}{}", folder, sub, file, kAckSuffix);
}

void writeRecord(const std::string& folder, const char* sub, const FileRecord& record) {
  makeStanzaFolder(folder);
  makeFolder(folder + "/" + sub);
  writeSmall(recordPath(folder, sub, record.file), formatRecord(record));
}

std::optional<FileRecord> readRecord(const std::string& folder, const char* sub,
                                     const std::string& file) {
  auto text = readSmall(recordPath(folder, sub, file));
  if (!text) return std::nullopt;
  auto record = parseRecord(*text);
  if (!record || record->file != file) return std::nullopt;
  return record;
}

std::vector<std::string> listRecords(const std::string& folder, const char* sub) {
  std::vector<std::string> files;
  DIR* d = ::opendir((folder + "/" + sub).c_str());
  if (!d) return files;
  const std::string_view suffix = kAckSuffix;
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name.size() > suffix.size() && name.front() != '.' &&
        name.substr(name.size() - suffix.size()) == suffix)
      files.emplace_back(name.substr(0, name.size() - suffix.size()));
  }
  ::closedir(d);
  return files;
}

}  // namespace

Fingerprint fingerprintOf(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw systemError(ErrorCode::LocalIo, errno, "cannot stat '{}'", path);
  return fromStat(st);
}

std::optional<Fingerprint> fingerprintOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    throw systemError(ErrorCode::LocalIo, errno, "cannot stat '{}'", path);
  }
  return fromStat(st);
}

std::optional<std::string> untrusted(const std::string& folder, const FileRecord& record,
                                     const std::string& repository, std::uint64_t systemId,
                                     const std::string& path) {
  const auto identity = recordedIdentity(folder);
  if (!identity || record.identity != *identity)
    return "it was written under another identity of the spool";
  if (identity->repository != repository)
    return fmt::format("it names repository {}", identity->repository);
  if (identity->systemId != systemId)
    return fmt::format("it names the cluster with system identifier {}", identity->systemId);
  if (fingerprintOf(path) != record.local || record.local.size != record.size)
    return std::string(
        "the file is not the one that was pushed or fetched (copied, restored or "
        "changed since)");
  return std::nullopt;
}

namespace {

// The count of CREATE TABLESPACE records, under a name of the walk's version: another version's is
// not read.
std::string tablespaceRecordsKey() {
  return fmt::format("tablespace-records-v{}", pg::kTablespaceScanVersion);
}

}  // namespace

std::string formatRecord(const FileRecord& record) {
  const auto& l = record.local;
  return fmt::format(
             "{}\nfile {}\nrepository {}\nstanza-id {}\nsystem-id {}\nsize {}\nsha256 {}\n"
             "local {} {} {} {} {}\nat {}\n",
             kRecordMagic, record.file, oneLine(record.identity.repository),
             oneLine(record.identity.stanzaId), record.identity.systemId, record.size,
             record.sha256, l.device, l.inode, l.size, l.mtimeNs, l.ctimeNs, record.atMs) +
         (record.tablespaceRecords
              ? fmt::format("{} {}\n", tablespaceRecordsKey(), *record.tablespaceRecords)
              : std::string());
}

std::optional<FileRecord> parseRecord(const std::string& text) {
  auto fields = parseFields(text, kRecordMagic);
  if (!fields) return std::nullopt;
  for (const char* key :
       {"file", "repository", "stanza-id", "system-id", "size", "sha256", "local", "at"})
    if (!fields->count(key)) return std::nullopt;
  FileRecord record;
  record.file = fields->at("file");
  record.identity.repository = fields->at("repository");
  record.identity.stanzaId = fields->at("stanza-id");
  record.sha256 = fields->at("sha256");
  if (!parseNumber(fields->at("system-id"), record.identity.systemId) ||
      !parseNumber(fields->at("size"), record.size) ||
      !parseNumber(fields->at("at"), record.atMs) || record.sha256.size() != 64)
    return std::nullopt;
  std::istringstream local(fields->at("local"));
  auto& l = record.local;
  std::string extra;
  if (!(local >> l.device >> l.inode >> l.size >> l.mtimeNs >> l.ctimeNs) || (local >> extra))
    return std::nullopt;
  if (auto count = fields->find(tablespaceRecordsKey()); count != fields->end()) {
    std::uint32_t n = 0;
    if (!parseNumber(count->second, n)) return std::nullopt;
    record.tablespaceRecords = n;
  }
  return record;
}

void writePushAck(const std::string& folder, const FileRecord& ack) {
  writeRecord(folder, kPushFolder, ack);
}

std::optional<FileRecord> readPushAck(const std::string& folder, const std::string& file) {
  return readRecord(folder, kPushFolder, file);
}

void removePushAck(const std::string& folder, const std::string& file) noexcept {
  ::unlink(recordPath(folder, kPushFolder, file).c_str());
}

std::vector<std::string> listPushAcks(const std::string& folder) {
  return listRecords(folder, kPushFolder);
}

namespace {
constexpr std::string_view kPushingSuffix = ".pushing";
std::string pushingPath(const std::string& folder, const std::string& file) {
  return folder + "/" + kPushFolder + "/" + file + std::string(kPushingSuffix);
}
}  // namespace

std::optional<PushClaim> PushClaim::take(const std::string& folder, const std::string& file) {
  makeStanzaFolder(folder);
  makeFolder(folder + "/" + kPushFolder);
  const std::string path = pushingPath(folder, file);
  for (int attempt = 0;; ++attempt) {
    if (attempt == 100)
      throw error(ErrorCode::LocalIo, "cannot take '{}': it keeps being replaced", path);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) throw systemError(ErrorCode::LocalIo, errno, "cannot create '{}'", path);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return std::nullopt;
    }
    // The holder before us may have removed the marker between our open and our lock: a lock on
    // a removed file is nobody's business, so take the one at the path.
    if (sameFile(fd, path)) return PushClaim(path, fd);
    ::close(fd);
  }
}

PushClaim::PushClaim(PushClaim&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

PushClaim& PushClaim::operator=(PushClaim&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

PushClaim::~PushClaim() {
  release();
}

void PushClaim::release() noexcept {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());
  ::close(fd_);
  fd_ = -1;
}

bool waitWhilePushed(const std::string& folder, const std::string& file,
                     std::chrono::milliseconds timeout) {
  return waitUnlocked(pushingPath(folder, file), timeout, 2000);
}

void removeStalePushClaims(const std::string& folder) noexcept {
  DIR* d = ::opendir((folder + "/" + kPushFolder).c_str());
  if (!d) return;
  std::vector<std::string> files;
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name.size() > kPushingSuffix.size() && name.ends_with(kPushingSuffix))
      files.emplace_back(name.substr(0, name.size() - kPushingSuffix.size()));
  }
  ::closedir(d);
  for (const auto& file : files)
    try {
      PushClaim::take(folder, file);  // taken and released at once: removed
    } catch (const std::exception& e) {
      spdlog::debug("{}", e.what());
    }
}

std::string fetchedFolder(const std::string& folder) {
  return folder + "/" + kGetFolder;
}

std::string fetchedPath(const std::string& folder, const std::string& file) {
  return fetchedFolder(folder) + "/" + file;
}

void writeFetched(const std::string& folder, const FileRecord& record) {
  writeRecord(folder, kGetFolder, record);
}

std::optional<FileRecord> readFetched(const std::string& folder, const std::string& file) {
  return readRecord(folder, kGetFolder, file);
}

void removeFetched(const std::string& folder, const std::string& file) noexcept {
  // The record first: a segment without one is never handed over.
  ::unlink(recordPath(folder, kGetFolder, file).c_str());
  ::unlink(fetchedPath(folder, file).c_str());
}

std::vector<std::string> listFetched(const std::string& folder) {
  return listRecords(folder, kGetFolder);
}

void writeWanted(const std::string& folder, const std::string& file,
                 const std::string& repository) {
  // No fsync: a hint for the prefetcher, worth nothing after a crash. Beside get/, not in it:
  // claiming the spool keeps it.
  makeStanzaFolder(folder);
  files::AtomicFile out(folder + "/" + kWantedFile,
                        {.mode = 0600, .sync = false, .errorCode = ErrorCode::LocalIo});
  timespec boot{};
  ::clock_gettime(CLOCK_BOOTTIME, &boot);
  std::string text = fmt::format("{}\n{}\n{}-{}.{:09}\n", file, oneLine(repository), ::getpid(),
                                 boot.tv_sec, boot.tv_nsec);
  out.write({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
  out.commit();
}

void writeStanzaSigner(const std::string& folder, const std::string& stanzaId,
                       const std::string& keyId, std::int64_t now) {
  // No fsync: a cache, read again from the repository when lost.
  files::AtomicFile out(folder + "/" + kSignerFile,
                        {.mode = 0600, .sync = false, .errorCode = ErrorCode::LocalIo});
  std::string text = fmt::format("{}\n{}\n{}\n", oneLine(stanzaId), oneLine(keyId), now);
  out.write({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
  out.commit();
}

std::optional<std::string> readStanzaSigner(const std::string& folder, const std::string& stanzaId,
                                            std::int64_t now) {
  auto text = readSmall(folder + "/" + kSignerFile);
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  std::string id, key, when;
  if (!std::getline(in, id) || id != stanzaId || !std::getline(in, key) || key.empty() ||
      !std::getline(in, when))
    return std::nullopt;
  std::int64_t read = 0;
  auto [end, ec] = std::from_chars(when.data(), when.data() + when.size(), read);
  if (ec != std::errc() || end != when.data() + when.size()) return std::nullopt;
  // A clock set back counts as expired too.
  if (now < read || now - read >= kStanzaSignerTtl) return std::nullopt;
  return key;
}

std::optional<Wanted> readWanted(const std::string& folder) {
  const std::string path = folder + "/" + kWantedFile;
  auto text = readSmall(path);
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  Wanted wanted;
  if (!std::getline(in, wanted.file) || wanted.file.empty() || !std::getline(in, wanted.repository))
    return std::nullopt;
  std::getline(in, wanted.stamp);  // none in a file an older tidemark wrote: "" on every read
  return wanted;
}

int takeLock(const std::string& folder, const char* name, std::chrono::milliseconds timeout) {
  const std::string path = folder + "/" + name;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (int attempt = 0;; ++attempt) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return -1;
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      if (sameFile(fd, path)) return fd;
      ::close(fd);  // removed (a claimed spool) between our open and our lock: take the new one
      if (attempt < 100) continue;
    } else {
      ::close(fd);
      if (std::chrono::steady_clock::now() < deadline) {
        ::usleep(10000);
        continue;
      }
    }
    errno = EWOULDBLOCK;
    return -1;
  }
}

bool waitForLock(const std::string& folder, const char* name, std::chrono::milliseconds timeout) {
  return waitUnlocked(folder + "/" + name, timeout, 20000);
}

bool waitForWorkers(const std::string& folder, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool prefetcher = waitForLock(folder, kPrefetchLockFile, timeout);
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return waitForLock(folder, kPushLockFile, std::max(left, std::chrono::milliseconds(0))) &&
         prefetcher;
}

namespace {

// Points every descriptor above standard error but `keep` and `park` at `park` (/dev/null, or the
// log), close-on-exec. What it was (a socket, a pipe, a file of PostgreSQL's) is let go as a close
// would, but its number stays taken: closed, the number goes to the next file this process opens,
// and whatever still holds it writes there. The dynamic loader wrote its LD_DEBUG_OUTPUT report
// ("calling init: ...", at a dlopen) into the repository object that got its number.
void parkInheritedDescriptors(int park, int keep) {
  std::vector<int> open;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (dirent* entry = ::readdir(dir)) {
      int fd = -1;
      const char* end = entry->d_name + std::strlen(entry->d_name);
      if (std::from_chars(entry->d_name, end, fd).ptr == end && fd != ::dirfd(dir))
        open.push_back(fd);
    }
    ::closedir(dir);
  } else {
    // No /proc (a chroot): ask every number up to the limit.
    struct rlimit limit {};
    const int top = ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                        ? int(std::min<rlim_t>(limit.rlim_cur, 1 << 20))
                        : 1 << 16;
    for (int fd = 3; fd < top; ++fd)
      if (::fcntl(fd, F_GETFD) >= 0) open.push_back(fd);
  }
  for (int fd : open) {
    if (fd <= 2 || fd == keep || fd == park) continue;
    // dup3 fails only for a number above the limit, which no open can be given: closed, then.
    if (::dup3(park, fd, O_CLOEXEC) < 0) ::close(fd);
  }
  if (park > 2) ::fcntl(park, F_SETFD, FD_CLOEXEC);
}

}  // namespace

void startDetached(const std::string& folder, const char* logFile, const char* program,
                   const Config& config, const std::function<int(int)>& body, int keep) {
  constexpr off_t kLogMax = 1 << 20;
  const std::string log = folder + "/" + logFile;
  pid_t child = ::fork();
  if (child < 0) throw systemError(ErrorCode::LocalIo, errno, "cannot start {}", program);
  if (child > 0) {
    while (::waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
    }
    return;
  }
  // From here on this is another process: nothing may return into the caller's stack.
  int status = 1;
  try {
    // The intermediate child: a new session, so that the background process belongs to no
    // terminal and not to PostgreSQL's process group; its child is that process, adopted by init.
    ::setsid();
    if (::fork() != 0) ::_exit(0);
    int null = ::open("/dev/null", O_RDWR);
    struct stat st {};
    int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW;
    if (::stat(log.c_str(), &st) == 0 && st.st_size > kLogMax) flags |= O_TRUNC;
    int err = ::open(log.c_str(), flags, 0600);
    if (null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 1);
    }
    ::dup2(err >= 0 ? err : null, 2);
    // Nothing of PostgreSQL's (its sockets, its pipes) stays open in a process it does not own,
    // nor the parent's log file: the logger is made anew on what is left. With neither /dev/null
    // nor the log to park them on, no background process (the calls work without one).
    const int park = null >= 0 ? null : err;
    if (park < 0) ::_exit(1);
    parkInheritedDescriptors(park, keep);
    log::setup(program);
    try {
      log::configure(config);
    } catch (const std::exception& e) {
      spdlog::warn("{}", e.what());
    }
    try {
      status = body(keep);
    } catch (const std::exception& e) {
      spdlog::error("{} stopped: {}", program, e.what());
    }
    spdlog::shutdown();
  } catch (...) {
  }
  ::_exit(status);
}

std::string inflightPath(const std::string& folder, const std::string& file) {
  return fetchedPath(folder, "." + file + std::string(kInflightSuffix));
}

void sweepFetched(const std::string& folder) {
  const auto recorded = listFetched(folder);
  const std::set<std::string> kept(recorded.begin(), recorded.end());
  const std::string_view suffix = kAckSuffix;
  removeEntries(fetchedFolder(folder), [&](const std::string& name) {
    const bool record =
        name.ends_with(suffix) && kept.count(name.substr(0, name.size() - suffix.size()));
    return !record && !kept.count(name);
  });
}

void removeFetchedFolder(const std::string& folder) noexcept {
  try {
    removeEntries(folder, [](const std::string& name) { return name == kGetFolder; });
  } catch (const std::exception& e) {
    spdlog::warn("{}", e.what());
  }
}

// ---- the safety valve's gap -----------------------------------------------------------------

namespace {
constexpr std::string_view kGapMagic = "tidemark dropped wal 1";
}

std::string formatGap(const LocalGap& gap) {
  std::string text = fmt::format("{}\nrepository {}\nsystem-id {}\n", kGapMagic,
                                 oneLine(gap.repository), gap.systemId);
  for (const auto& r : gap.ranges)
    text += fmt::format("range {} {} {} {} {} {}\n", r.first, r.last, r.files, r.firstMs, r.lastMs,
                        r.writtenMs);
  return text;
}

std::optional<LocalGap> parseGap(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != kGapMagic) return std::nullopt;
  LocalGap gap;
  bool repository = false, systemId = false;
  while (std::getline(in, line)) {
    auto space = line.find(' ');
    if (space == std::string::npos) return std::nullopt;
    std::string key = line.substr(0, space), value = line.substr(space + 1);
    if (key == "repository") {
      gap.repository = value;
      repository = true;
    } else if (key == "system-id") {
      if (!parseNumber(value, gap.systemId)) return std::nullopt;
      systemId = true;
    } else if (key == "range") {
      std::istringstream fields(value);
      DroppedRange r;
      std::string extra;
      if (!(fields >> r.first >> r.last >> r.files >> r.firstMs >> r.lastMs >> r.writtenMs) ||
          (fields >> extra) || r.files == 0)
        return std::nullopt;
      gap.ranges.push_back(r);
    } else {
      return std::nullopt;
    }
  }
  if (!repository || !systemId || gap.ranges.empty()) return std::nullopt;
  return gap;
}

bool hasGap(const std::string& folder) {
  struct stat st {};
  // Only "no such file" is no gap: one that cannot be looked at may be there (readGap says why).
  return ::lstat((folder + "/" + kGapFile).c_str(), &st) == 0 ||
         (errno != ENOENT && errno != ENOTDIR);
}

std::vector<FoundGap> findGaps(const std::string& spool, std::vector<std::string>* denied) {
  std::vector<FoundGap> found;
  DIR* dir = ::opendir(spool.c_str());
  if (!dir) {
    if (errno == ENOENT || errno == ENOTDIR) return found;
    if (errno == EACCES && denied) {
      denied->push_back(spool);
      return found;
    }
    throw systemError(ErrorCode::LocalIo, errno,
                      "cannot look for WAL the safety valve dropped in '{}'", spool)
        .setHint(kSpoolFaultHint);
  }
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    // lost+found: a filesystem's own, where a spool is the root of a mount.
    if (name != "." && name != ".." && name != "lost+found") names.push_back(std::move(name));
    errno = 0;
  }
  const int error = errno;
  ::closedir(dir);
  if (error != 0)
    throw systemError(ErrorCode::LocalIo, error,
                      "cannot look for WAL the safety valve dropped in '{}'", spool)
        .setHint(kSpoolFaultHint);
  std::sort(names.begin(), names.end());
  for (auto& name : names) {
    std::string folder = spool + "/" + name;
    struct stat st {};
    // ENOTDIR: a file, not a stanza folder; ENOENT: no gap (or removed meanwhile). A stanza
    // folder that is a link is followed, as archive-push follows it.
    if (::lstat((folder + "/" + kGapFile).c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) continue;
      if (errno == EACCES && denied) {
        denied->push_back(folder);
        continue;
      }
      throw systemError(ErrorCode::LocalIo, errno,
                        "cannot tell whether '{}' records WAL the safety valve dropped", folder)
          .setHint(kSpoolFaultHint);
    }
    if (auto gap = readGap(folder)) found.push_back({folder, std::move(name), std::move(*gap)});
  }
  return found;
}

HostGaps findHostGaps(const Config& config, const std::optional<std::string>& dataDirectory,
                      std::optional<std::uint64_t> systemId) {
  if (!systemId) systemId = dataDirectory ? pg::controlSystemId(*dataDirectory).value_or(0) : 0;
  HostGaps host;
  std::set<std::pair<dev_t, ino_t>> seen;
  for (const auto& spool : spoolDirectories(config, dataDirectory)) {
    struct stat st {};
    if (::stat(spool.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) continue;
      if (errno != EACCES)
        throw systemError(ErrorCode::LocalIo, errno,
                          "cannot look for WAL the safety valve dropped in '{}'", spool)
            .setHint(kSpoolFaultHint);
      host.denied.push_back(spool);
      continue;
    }
    if (!seen.insert({st.st_dev, st.st_ino}).second) continue;  // the same folder, named twice
    const std::size_t denied = host.denied.size();
    for (auto& found : findGaps(spool, &host.denied))
      if (found.stanza == config.stanza || *systemId == 0 || found.gap.systemId == *systemId)
        host.gaps.push_back(std::move(found));
    if (host.denied.size() == denied || host.denied.back() != spool) host.spools.push_back(spool);
  }
  return host;
}

GapLock::GapLock(const std::string& folder) {
  makeStanzaFolder(folder);
  const std::string path = folder + "/gap.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd_ < 0) throw systemError(ErrorCode::LocalIo, errno, "cannot open '{}'", path);
  // Root (tidemark-recover) gives it to the folder's owner: the PostgreSQL user's archive-push
  // opens it later, and the safety valve cannot drop anything without it.
  if (auto owner = files::ownerForRoot(folder); owner && !files::giveTo(fd_, *owner)) {
    const int err = errno;
    spdlog::warn("cannot give '{}' to uid {}: {}; archive-push cannot take it then: {}", path,
                 owner->uid, errnoText(err),
                 err == EMLINK ? files::giveToHint(err) : "chown it to that user");
  }
  if (::flock(fd_, LOCK_EX) != 0) {
    int err = errno;
    ::close(fd_);
    throw systemError(ErrorCode::LocalIo, err, "cannot lock '{}'", path);
  }
}

GapLock::~GapLock() {
  ::close(fd_);
}

std::optional<LocalGap> readGap(const std::string& folder) {
  const std::string path = folder + "/" + kGapFile;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    // A gap written before the fault may be there: nothing may be stored until it is known.
    throw systemError(ErrorCode::LocalIo, errno,
                      "cannot tell whether the spool records WAL the safety valve dropped ('{}')",
                      path)
        .setHint(kSpoolFaultHint);
  }
  auto text = readSmall(path);
  auto gap = text ? parseGap(*text) : std::nullopt;
  if (!gap)
    throw Error(ErrorCode::LocalIo,
                fmt::format("'{}' records WAL the safety valve dropped, and cannot be read", path),
                "read it, record what it says (the archive lacks those files: take a new base "
                "backup), then move it aside");
  return gap;
}

void writeGap(const std::string& folder, const LocalGap& gap) {
  makeStanzaFolder(folder);
  writeSmall(folder + "/" + kGapFile, formatGap(gap));
}

void removeGap(const std::string& folder) {
  const std::string path = folder + "/" + kGapFile;
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    throw systemError(ErrorCode::LocalIo, errno, "cannot remove '{}'", path);
  files::syncDirectory(folder);
}

// ---- push statistics ------------------------------------------------------------------------

std::string formatPushStat(const PushStat& stat) {
  return fmt::format("{} {} {} {} {}\n", stat.finishedMs, stat.durationMs, stat.ok ? "ok" : "fail",
                     stat.file, stat.stanza);
}

std::optional<PushStat> parsePushStat(const std::string& line) {
  std::istringstream in(line);
  PushStat stat;
  std::string result;
  if (!(in >> stat.finishedMs >> stat.durationMs >> result >> stat.file >> stat.stanza))
    return std::nullopt;
  if (result != "ok" && result != "fail") return std::nullopt;
  if (stat.durationMs < 0 || stat.finishedMs < 0) return std::nullopt;
  std::string extra;
  if (in >> extra) return std::nullopt;
  stat.ok = result == "ok";
  return stat;
}

void recordPush(const std::string& folder, const PushStat& stat) noexcept {
  try {
    // Once per WAL file: open, write, fstat, close; the folders are made only when missing.
    const std::string path = folder + "/" + kPushStatsFile;
    auto open = [&] {
      return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    };
    int fd = open();
    if (fd < 0 && errno == ENOENT) {
      ::mkdir(files::dirName(folder).c_str(), 0700);
      if (::mkdir(folder.c_str(), 0700) == 0 || errno == EEXIST) fd = open();
    }
    if (fd < 0) {
      spdlog::debug("push statistics: cannot open '{}': {}", path, errnoText(errno));
      return;
    }
    std::string line = formatPushStat(stat);
    struct stat st {};
    if (::write(fd, line.data(), line.size()) != ssize_t(line.size()))
      spdlog::debug("push statistics: cannot write '{}': {}", path, errnoText(errno));
    else if (::fstat(fd, &st) == 0 && std::uint64_t(st.st_size) > kPushStatsRotateBytes)
      ::rename(path.c_str(), (path + ".1").c_str());
    ::close(fd);
  } catch (const std::exception& e) {
    spdlog::debug("push statistics: {}", e.what());
  }
}

std::vector<PushStat> readPushStats(const std::string& folder, const std::string& stanza,
                                    std::size_t count) {
  std::deque<PushStat> last;
  const std::string path = folder + "/" + kPushStatsFile;
  for (const std::string& file : {path + ".1", path}) {
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) {
      auto stat = parsePushStat(line);
      if (!stat || stat->stanza != stanza) continue;
      last.push_back(*stat);
      if (last.size() > count) last.pop_front();
    }
  }
  return {last.begin(), last.end()};
}

}  // namespace tidemark::spool
