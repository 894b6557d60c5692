// Listing the stanza's WAL and reading history files.
#include "common/repo/wal_catalog.h"

#include <algorithm>

#include "common/base/error.h"
#include "common/pg/wal.h"
#include "common/repo/layout.h"
#include "common/repo/object.h"

namespace tidemark::repo {

bool WalCatalog::has(std::uint32_t timeline, std::uint64_t segment) const {
  auto it = segments.find(timeline);
  return it != segments.end() && it->second.count(segment) > 0;
}

std::uint64_t WalCatalog::newestSegment() const {
  std::uint64_t newest = 0;
  for (const auto& [timeline, files] : segments)
    if (!files.empty()) newest = std::max(newest, files.rbegin()->first);
  return newest;
}

std::set<std::uint32_t> WalCatalog::timelines() const {
  std::set<std::uint32_t> out(histories);
  for (const auto& [tli, files] : segments)
    out.insert(tli);
  for (const auto& [tli, files] : partials)
    out.insert(tli);
  return out;
}

WalCatalog scanWal(const Repository& repository, int generation, std::uint32_t segmentSize) {
  storage::Storage& storage = repository.storage();
  WalCatalog catalog;
  catalog.segmentSize = segmentSize;
  std::string wal = walDirectory(repository.stanza(), generation);
  std::vector<std::string> folders;
  storage.list(wal, [&](const storage::ListEntry& entry) {
    if (entry.directory) {
      folders.push_back(entry.name);
    } else if (auto name = pg::parseWalName(entry.name);
               name && name->kind == pg::WalKind::History) {
      catalog.histories.insert(name->timeline);
    }
  });
  for (const auto& folder : folders) {
    storage.list(wal + "/" + folder, [&](const storage::ListEntry& entry) {
      auto name = pg::parseWalName(entry.name);
      // Only where readers look for it (walObject): a file of that name in another folder is
      // not there for a recovery.
      if (!name || entry.directory || name->kind == pg::WalKind::History ||
          entry.name.compare(0, 16, folder) != 0)
        return;
      ArchivedFile file{entry.size, entry.modified};
      if (name->kind == pg::WalKind::Segment)
        catalog.segments[name->timeline][pg::segmentNumber(*name, segmentSize)] = file;
      else if (name->kind == pg::WalKind::Partial)
        catalog.partials[name->timeline][pg::segmentNumber(*name, segmentSize)] = file;
      else if (name->kind == pg::WalKind::Backup)
        catalog.backupFiles[name->timeline].emplace(pg::segmentNumber(*name, segmentSize),
                                                    entry.name);
    });
  }
  return catalog;
}

pg::TimelineHistory loadHistory(const Repository& repository, int generation,
                                std::uint32_t timeline) {
  if (timeline <= 1) return pg::TimelineHistory{timeline, {}};
  auto name = pg::parseWalName(pg::historyFileName(timeline));
  std::string path = walObject(repository.stanza(), generation, *name);
  io::MemorySink sink(pg::maxWalFileSize(*name, 0));
  auto summary = repository.readObject(path, sink, pg::maxWalFileSize(*name, 0));
  if (!summary)
    throw Error(
        ErrorCode::Corrupt,
        fmt::format("timeline {} has no history file '{}' in {}", timeline, path,
                    repository.describe()),
        "the repository is missing the history of that timeline; choose another target timeline");
  return pg::parseHistory(timeline, std::string(sink.text()), repository.describe() + "/" + path);
}

}  // namespace tidemark::repo
