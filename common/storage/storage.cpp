// Storage helpers shared by every driver and its users.
#include "common/storage/storage.h"

#include "common/base/error.h"

namespace tidemark::storage {

std::optional<std::string> readSmall(Storage& storage, const std::string& path, std::size_t limit) {
  io::MemorySink sink(limit);
  if (!storage.read(path, sink)) return std::nullopt;
  return std::string(sink.text());
}

void Storage::removeMany(const std::vector<std::string>& paths) {
  for (const auto& path : paths)
    remove(path);
}

void checkPath(const std::string& path) {
  bool bad = path.empty() || path.front() == '/' || path.back() == '/';
  for (std::size_t start = 0; !bad && start <= path.size();) {
    std::size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view part(path.data() + start, end - start);
    bad = part.empty() || part == "." || part == "..";
    start = end + 1;
  }
  if (bad) throw error(ErrorCode::Internal, "invalid repository path '{}'", path);
}

std::string joinPath(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + "/" + b;
}

}  // namespace tidemark::storage
