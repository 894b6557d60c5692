// What waits to be archived.
#include "archive-push/queue.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "common/base/error.h"

namespace tidemark::archive {

std::vector<ReadyFile> readyFiles(const std::string& walDirectory) {
  const std::string status = walDirectory + "/archive_status";
  DIR* d = ::opendir(status.c_str());
  if (!d) throw systemError(ErrorCode::LocalIo, errno, "cannot read '{}'", status);
  const std::unique_ptr<DIR, int (*)(DIR*)> closer(d, ::closedir);
  constexpr std::string_view kSuffix = ".ready";
  std::vector<ReadyFile> ready;
  // A listing cut short by an error must not pass for a whole one: the safety valve would measure
  // too little, and the pusher forget acknowledgements of files it did not see.
  for (;;) {
    errno = 0;
    dirent* e = ::readdir(d);
    if (!e) {
      if (errno == 0) break;
      throw systemError(ErrorCode::LocalIo, errno, "cannot read '{}'", status);
    }
    std::string_view entry = e->d_name;
    if (entry.size() <= kSuffix.size() || entry.substr(entry.size() - kSuffix.size()) != kSuffix)
      continue;
    auto name = pg::parseWalName(entry.substr(0, entry.size() - kSuffix.size()));
    if (!name) continue;
    // Gone (archived and recycled since the listing): 0 bytes. Not looked at: not 0.
    struct stat st {};
    const std::string path = walDirectory + "/" + name->name;
    std::uint64_t size = 0;
    if (::stat(path.c_str(), &st) == 0) {
      size = std::uint64_t(st.st_size);
    } else if (errno != ENOENT) {
      throw systemError(ErrorCode::LocalIo, errno, "cannot look at '{}'", path);
    }
    ready.push_back({*name, size});
  }
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
