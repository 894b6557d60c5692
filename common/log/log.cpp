// spdlog setup shared by every binary.
#include "common/log/log.h"

#include <fcntl.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>
#include <optional>
#include <string>

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

// The log file as root opens it (tidemark-recover, a run by hand): never through a symlink at its
// name nor into a file with a second name, which the folder's owner could point at a file for root
// to append to; given to that folder's owner (the one it is created in, looked at through the same
// descriptor), whose runs (the server's archive_command) append to it later. The name spdlog
// opens is the descriptor's, `fd` kept open until it has.
std::string openAsRoot(const std::string& path, int& fd) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  const int dirFd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirFd < 0) throw spdlog::spdlog_ex("cannot open its folder", errno);
  fd = ::openat(dirFd, name.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  const int err = errno;
  struct stat folder {
  }, file{};
  const bool seen = fd >= 0 && ::fstat(dirFd, &folder) == 0 && ::fstat(fd, &file) == 0;
  ::close(dirFd);
  if (fd < 0) throw spdlog::spdlog_ex("cannot open it (a symlink is not followed)", err);
  if (!seen || !S_ISREG(file.st_mode) || file.st_nlink != 1) {
    ::close(fd);
    throw spdlog::spdlog_ex(
        "it is no regular file of one name: root appends to no file another user can point at");
  }
  if (folder.st_uid != 0 && (file.st_uid != folder.st_uid || file.st_gid != folder.st_gid) &&
      ::fchown(fd, folder.st_uid, folder.st_gid) != 0)
    spdlog::warn("cannot give log file '{}' to uid {}: {}", path, folder.st_uid,
                 std::strerror(errno));
  return "/proc/self/fd/" + std::to_string(fd);
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
  int fd = -1;
  try {
    const std::string name = ::geteuid() == 0 ? openAsRoot(config.log.file, fd) : config.log.file;
    auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(name, false);
    if (fd >= 0) ::close(fd);
    logger->sinks().push_back(file);
    applyPattern(*logger);
  } catch (const spdlog::spdlog_ex& e) {
    if (fd >= 0) ::close(fd);
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
