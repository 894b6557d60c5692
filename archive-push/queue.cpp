// What waits to be archived.
#include "archive-push/queue.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>

#include "common/base/error.h"

namespace tidemark::archive {

std::vector<ReadyFile> readyFiles(const std::string& walDirectory) {
  const std::string status = walDirectory + "/archive_status";
  DIR* d = ::opendir(status.c_str());
  if (!d) throw systemError(ErrorCode::LocalIo, errno, "cannot read '{}'", status);
  constexpr std::string_view kSuffix = ".ready";
  std::vector<ReadyFile> ready;
  while (dirent* e = ::readdir(d)) {
    std::string_view entry = e->d_name;
    if (entry.size() <= kSuffix.size() || entry.substr(entry.size() - kSuffix.size()) != kSuffix)
      continue;
    auto name = pg::parseWalName(entry.substr(0, entry.size() - kSuffix.size()));
    if (!name) continue;
    struct stat st {};
    std::uint64_t size = 0;
    if (::stat((walDirectory + "/" + name->name).c_str(), &st) == 0)
      size = std::uint64_t(st.st_size);
    ready.push_back({*name, size});
  }
  ::closedir(d);
  std::sort(ready.begin(), ready.end(), [](const ReadyFile& a, const ReadyFile& b) {
    bool ah = a.name.kind == pg::WalKind::History, bh = b.name.kind == pg::WalKind::History;
    if (ah != bh) return ah;
    return a.name.name < b.name.name;
  });
  return ready;
}

std::uint64_t waitingBytes(const std::vector<ReadyFile>& ready,
                           const std::set<std::string>& stored) {
  std::uint64_t bytes = 0;
  for (const auto& file : ready)
    if (!stored.count(file.name.name)) bytes += file.size;
  return bytes;
}

std::vector<std::string> chooseAhead(const std::vector<ReadyFile>& ready, const std::string& asked,
                                     int count, const std::set<std::string>& skip) {
  std::vector<std::string> chosen;
  for (const auto& file : ready) {
    if (int(chosen.size()) >= count) break;
    if (file.name.name != asked && !skip.count(file.name.name)) chosen.push_back(file.name.name);
  }
  return chosen;
}

}  // namespace tidemark::archive
