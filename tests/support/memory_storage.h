// An in-memory storage driver for tests: a fake (not a mock) that keeps every contract of
// common/storage/storage.h, so that code above the storage interface runs without a filesystem.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/storage/storage.h"

namespace tidemark::test {

struct MemoryStorageOptions {
  // read() delivers objects in chunks of this size, so that readers see data split at
  // arbitrary points (1 feeds them byte by byte).
  std::size_t readChunk = 64 * 1024;
};

// Objects live in a map shared with the writes in flight; a Write may outlive its storage.
// Thread-safe (every operation takes one lock). Path rules and failures are those of the posix
// driver: an invalid path throws Error(Internal); an object where a directory is expected, or
// the reverse, throws Error(Storage).
class MemoryStorage final : public storage::Storage {
 public:
  explicit MemoryStorage(MemoryStorageOptions options = {});
  ~MemoryStorage() override;

  std::string describe() const override;
  std::unique_ptr<storage::Write> newWrite(const std::string& path,
                                           storage::WriteOptions options) override;
  bool read(const std::string& path, io::Sink& out, storage::ReadOptions options) override;
  std::optional<storage::ObjectInfo> info(const std::string& path) override;
  void list(const std::string& dir,
            const std::function<void(const storage::ListEntry&)>& fn) override;
  void remove(const std::string& path) override;
  std::unique_ptr<storage::Lock> tryLock(const std::string& path, const std::string& owner,
                                         std::string& holder) override;

  // Test access that bypasses the contracts: the stored bytes (nullopt when absent), to inspect
  // them or to replace them with damaged ones.
  std::optional<io::Buffer> object(const std::string& path) const;
  void setObject(const std::string& path, io::Buffer bytes);
  // Sets when `path` was stored (seconds since the epoch; stored objects get the current time).
  void setModified(const std::string& path, std::int64_t modified);
  // Every stored object's path, sorted.
  std::vector<std::string> paths() const;
  // Writes created and not yet committed or destroyed.
  std::size_t openWrites() const;
  // The size the last write of `path` announced (storage::WriteOptions::size); nullopt when it
  // announced none or there was none.
  std::optional<std::uint64_t> announcedSize(const std::string& path) const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace tidemark::test
