// spdlog setup shared by every binary.
#include "common/log/log.h"

#include <fcntl.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <iterator>
#include <mutex>
#include <optional>
#include <string>

#include "common/files/file.h"

namespace tidemark::log {

namespace {

// "%*": the level in capitals, as PostgreSQL writes them (ERROR, WARNING, INFO, DEBUG). The
// "critical" level is only used for the HINT line that follows an error.
class LevelFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string_view text;
    switch (msg.level) {
      case spdlog::level::critical:
        text = "HINT";
        break;
      case spdlog::level::err:
        text = "ERROR";
        break;
      case spdlog::level::warn:
        text = "WARNING";
        break;
      case spdlog::level::info:
        text = "INFO";
        break;
      default:
        text = "DEBUG";
        break;
    }
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<LevelFlag>();
  }
};

// "%Q": the time zone's abbreviation, as PostgreSQL's log_line_prefix %m writes it ("UTC",
// "CET"); spdlog's %z only has the offset. `tm` is the local time spdlog formats the line with.
class ZoneFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm& tm,
              spdlog::memory_buf_t& dest) override {
    std::string_view zone = tm.tm_zone != nullptr ? std::string_view(tm.tm_zone) : "";
    if (zone.empty()) {
      // No abbreviation: the numeric offset, as PostgreSQL prints zones without one ("+0530").
      long offset = tm.tm_gmtoff;
      char sign = offset < 0 ? '-' : '+';
      offset = offset < 0 ? -offset : offset;
      fmt::format_to(std::back_inserter(dest), "{}{:02}{:02}", sign, offset / 3600,
                     offset % 3600 / 60);
      return;
    }
    dest.append(zone.data(), zone.data() + zone.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<ZoneFlag>();
  }
};

// Set by configure() when no configuration file was read.
std::optional<std::string> missingFileNote;

// The codes of errors a wrong or missing configuration can cause.
bool mayFollowFromConfiguration(ErrorCode code) {
  switch (code) {
    case ErrorCode::Config:
    case ErrorCode::Storage:
    case ErrorCode::Corrupt:
    case ErrorCode::ForeignCluster:
    case ErrorCode::Database:
    case ErrorCode::Timeout:
    case ErrorCode::Unhealthy:
      return true;
    default:
      return false;
  }
}

void applyPattern(spdlog::logger& logger) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<LevelFlag>('*').add_flag<ZoneFlag>('Q').set_pattern(
      "%Y-%m-%d %H:%M:%S.%e %Q %n[%P] %*: %v");
  logger.set_formatter(std::move(formatter));
}

spdlog::level::level_enum toSpdlog(LogLevel level) {
  switch (level) {
    case LogLevel::Error:
      return spdlog::level::err;
    case LogLevel::Warn:
      return spdlog::level::warn;
    case LogLevel::Info:
      return spdlog::level::info;
    case LogLevel::Debug:
      return spdlog::level::debug;
  }
  return spdlog::level::info;
}

// A sink that appends to a descriptor it owns (the log file as root opened it).
class DescriptorSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit DescriptorSink(int fd) : fd_(fd) {}
  ~DescriptorSink() override { ::close(fd_); }
  DescriptorSink(const DescriptorSink&) = delete;
  DescriptorSink& operator=(const DescriptorSink&) = delete;

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    const char* data = line.data();
    std::size_t left = line.size();
    while (left > 0) {
      const ssize_t n = ::write(fd_, data, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // a log line lost never stops the command
      data += n;
      left -= std::size_t(n);
    }
  }
  void flush_() override {}

 private:
  int fd_;
};

// The folders of `path`, in order.
std::deque<std::string> folderParts(const std::string& path) {
  std::deque<std::string> parts;
  std::size_t at = 0;
  while (at <= path.size()) {
    std::size_t end = path.find('/', at);
    if (end == std::string::npos) end = path.size();
    if (end > at) parts.push_back(path.substr(at, end - at));
    at = end + 1;
  }
  return parts;
}

// The folder `dir` opened one folder at a time, following only a symlink root owns (as the
// kernel's protected_symlinks reasons): one another user made or swapped in on the way fails
// (ELOOP) instead of leading root elsewhere. -1 with errno on failure.
int openFolderNoFollow(const std::string& dir) {
  constexpr int kFolder = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
  std::deque<std::string> parts = folderParts(dir);
  int fd = ::open(dir.starts_with('/') ? "/" : ".", kFolder);
  for (int links = 0; fd >= 0 && !parts.empty();) {
    const std::string part = std::move(parts.front());
    parts.pop_front();
    int next = ::openat(fd, part.c_str(), kFolder | O_NOFOLLOW);
    if (next < 0 && (errno == ELOOP || errno == ENOTDIR)) {
      const int openErr = errno;
      struct stat link {};
      char target[4096];
      ssize_t n = -1;
      if (::fstatat(fd, part.c_str(), &link, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(link.st_mode) &&
          link.st_uid == 0 && ++links <= 40)
        n = ::readlinkat(fd, part.c_str(), target, sizeof target);
      if (n > 0 && std::size_t(n) < sizeof target) {
        const std::string to(target, std::size_t(n));
        auto more = folderParts(to);
        parts.insert(parts.begin(), more.begin(), more.end());
        if (to.starts_with('/')) {
          ::close(fd);
          fd = ::open("/", kFolder);
        }
        continue;
      }
      errno = S_ISLNK(link.st_mode) ? ELOOP : openErr;
    }
    const int err = errno;
    ::close(fd);
    fd = next;
    errno = err;
  }
  return fd;
}

// The log file as root opens it (tidemark-recover, a run by hand): never through a symlink at its
// name or on the way (openFolderNoFollow), nor into a FIFO or a file with a second name, which the
// folder's owner could put there for root to block on or append to; a file it creates in a folder
// of another user's (looked at through the descriptor it was created in) is given to that user,
// whose runs (the server's archive_command) append to it later. Returns the descriptor; throws
// spdlog_ex.
int openAsRoot(const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  const int dirFd = openFolderNoFollow(dir);
  if (dirFd < 0) {
    const int err = errno;
    throw spdlog::spdlog_ex(err == ELOOP ? "a folder on its path is a symlink another user owns, "
                                           "which root does not follow: give its real path"
                                         : "cannot open its folder",
                            err);
  }
  constexpr int kFlags = O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
  bool created = true;
  int fd = ::openat(dirFd, name.c_str(), kFlags | O_CREAT | O_EXCL, 0640);
  if (fd < 0 && errno == EEXIST) {
    created = false;
    fd = ::openat(dirFd, name.c_str(), kFlags);
  }
  const int err = errno;
  struct stat folder {};
  struct stat file {};
  const bool seen = fd >= 0 && ::fstat(dirFd, &folder) == 0 && ::fstat(fd, &file) == 0;
  ::close(dirFd);
  if (fd < 0)
    throw spdlog::spdlog_ex(err == ELOOP   ? "it is a symlink, which root does not follow there: "
                                             "give its real path"
                            : err == ENXIO ? "it is a FIFO no process reads: remove it"
                                           : "cannot open it",
                            err);
  if (!seen || !files::oneNamedFile(file)) {
    ::close(fd);
    throw spdlog::spdlog_ex(
        "it is no regular file of one name (a FIFO, a hard link?): root appends to no file "
        "another user can point at; remove it");
  }
  ::fcntl(fd, F_SETFL, O_APPEND);  // O_NONBLOCK off
  const files::Owner owner{folder.st_uid, folder.st_gid};
  if (folder.st_uid != 0 && created && !files::giveTo(fd, owner)) {
    const int chownErr = errno;
    spdlog::warn("cannot give log file '{}' to uid {}: {}", path, folder.st_uid,
                 std::strerror(chownErr));
  } else if (folder.st_uid != 0 && !created && file.st_uid == 0) {
    spdlog::warn(
        "log file '{}' belongs to root: the server's own calls cannot append to it; "
        "chown it to uid {}",
        path, folder.st_uid);
  }
  return fd;
}

}  // namespace

void setup(std::string_view program) {
  auto logger = std::make_shared<spdlog::logger>(std::string(program),
                                                 std::make_shared<spdlog::sinks::stderr_sink_mt>());
  applyPattern(*logger);
  logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

void configure(const Config& config) {
  auto logger = spdlog::default_logger();
  logger->set_level(toSpdlog(config.log.level));
  missingFileNote = tidemark::missingFileNote(config);
  if (logger->should_log(spdlog::level::debug)) spdlog::debug("{}", describeSources(config));
  if (config.log.file.empty()) return;
  try {
    spdlog::sink_ptr file;
    if (::geteuid() == 0)
      file = std::make_shared<DescriptorSink>(openAsRoot(config.log.file));
    else
      file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(config.log.file, false);
    logger->sinks().push_back(file);
    applyPattern(*logger);
  } catch (const spdlog::spdlog_ex& e) {
    spdlog::warn("cannot open log file '{}': {}; logging to stderr only", config.log.file,
                 e.what());
  }
}

void reportError(const Error& error) {
  spdlog::error("{}", error.what());
  if (missingFileNote && mayFollowFromConfiguration(error.code()))
    spdlog::critical("{}", *missingFileNote);
  if (!error.hint().empty()) spdlog::critical("{}", error.hint());
}

void resetConfigured() {
  missingFileNote.reset();
}

}  // namespace tidemark::log
