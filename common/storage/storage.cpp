// Storage helpers and the driver factory.
#include "common/storage/storage.h"

#include "common/config/config.h"
#include "common/error.h"
#include "common/storage/posix/posix.h"

namespace tidemark::storage {

std::unique_ptr<Storage> openStorage(const Config& config) {
  if (config.repo.type == "posix") return std::make_unique<PosixStorage>(config.repo.path);
  throw Error(ErrorCode::Config, fmt::format("repo.type '{}' is not supported", config.repo.type),
              "set repo.type to 'posix'");
}

std::optional<std::string> readSmall(Storage& storage, const std::string& path, std::size_t limit) {
  io::MemorySink sink(limit);
  if (!storage.read(path, sink)) return std::nullopt;
  return std::string(sink.text());
}

std::string joinPath(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + "/" + b;
}

}  // namespace tidemark::storage
