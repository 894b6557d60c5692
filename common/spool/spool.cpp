// tidemark's local state on the database host.
#include "common/spool/spool.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <fstream>
#include <sstream>

#include "common/base/error.h"

namespace tidemark::spool {

std::optional<std::string> spoolDirectory(const Config& config,
                                          const std::optional<std::string>& dataDirectory) {
  if (!config.archive.spoolPath.empty()) return config.archive.spoolPath;
  if (dataDirectory && !dataDirectory->empty()) return *dataDirectory + "/pg_wal/tidemark";
  return std::nullopt;
}

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

void recordPush(const std::string& spool, const PushStat& stat) noexcept {
  try {
    // Once per WAL file: open, write, fstat, close; the folder is made only when it is missing.
    const std::string path = spool + "/" + kPushStatsFile;
    auto open = [&] {
      return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    };
    int fd = open();
    if (fd < 0 && errno == ENOENT && ::mkdir(spool.c_str(), 0700) == 0) fd = open();
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

std::vector<PushStat> readPushStats(const std::string& spool, const std::string& stanza,
                                    std::size_t count) {
  std::deque<PushStat> last;
  const std::string path = spool + "/" + kPushStatsFile;
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
