// A storage that hands every call to another one (not owned, must outlive it): the base of test
// wrappers that change one or two calls.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/storage/storage.h"

namespace tidemark::test {

class ForwardingStorage : public storage::Storage {
 public:
  explicit ForwardingStorage(storage::Storage& inner) : inner_(inner) {}
  std::string describe() const override { return inner_.describe(); }
  std::unique_ptr<storage::Write> newWrite(const std::string& path,
                                           storage::WriteOptions options) override {
    return inner_.newWrite(path, options);
  }
  bool read(const std::string& path, io::Sink& out, storage::ReadOptions options) override {
    return inner_.read(path, out, options);
  }
  std::optional<storage::ObjectInfo> info(const std::string& path) override {
    return inner_.info(path);
  }
  void list(const std::string& dir,
            const std::function<void(const storage::ListEntry&)>& fn) override {
    inner_.list(dir, fn);
  }
  void remove(const std::string& path) override { inner_.remove(path); }
  void removeMany(const std::vector<std::string>& paths) override { inner_.removeMany(paths); }
  bool removeEmptyDirectory(const std::string& dir) override {
    return inner_.removeEmptyDirectory(dir);
  }
  std::vector<storage::Leftover> leftovers(const std::string& dir) override {
    return inner_.leftovers(dir);
  }
  void removeLeftover(const storage::Leftover& leftover) override {
    inner_.removeLeftover(leftover);
  }
  std::unique_ptr<storage::Lock> tryLock(const std::string& path, const std::string& owner,
                                         std::string& holder) override {
    return inner_.tryLock(path, owner, holder);
  }

 private:
  storage::Storage& inner_;
};

}  // namespace tidemark::test
