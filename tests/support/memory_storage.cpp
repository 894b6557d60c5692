// The in-memory storage driver for tests.
#include "support/memory_storage.h"

#include <algorithm>
#include <atomic>
#include <ctime>
#include <map>
#include <mutex>
#include <set>

#include "common/base/error.h"

namespace tidemark::test {

struct MemoryStorage::State {
  mutable std::mutex mutex;
  MemoryStorageOptions options;
  std::string name;
  // Committed objects are immutable: a reader keeps its snapshot while the name is replaced.
  struct Object {
    std::shared_ptr<const io::Buffer> bytes;
    std::int64_t modified = 0;
  };
  std::map<std::string, Object> objects;
  std::map<std::string, std::string> locks;  // path -> owner
  std::size_t openWrites = 0;
  std::map<std::string, std::optional<std::uint64_t>> announced;  // path -> WriteOptions::size

  // Lock held. Throws Storage when a parent directory of `path` is an object.
  void checkParents(const std::string& path) const {
    for (std::size_t slash = path.find('/'); slash != std::string::npos;
         slash = path.find('/', slash + 1))
      if (objects.count(path.substr(0, slash)))
        throw error(ErrorCode::Storage, "'{}' is not a directory in {}", path.substr(0, slash),
                    name);
  }
  // Lock held. Throws Storage when `path` cannot name an object (it is a directory, or is below
  // an object).
  void checkShape(const std::string& path) const {
    if (hasChildren(path)) throw error(ErrorCode::Storage, "'{}' is a directory in {}", path, name);
    checkParents(path);
  }
  bool hasChildren(const std::string& dir) const {
    auto it = objects.lower_bound(dir + "/");
    return it != objects.end() && it->first.compare(0, dir.size() + 1, dir + "/") == 0;
  }
};

namespace {

using storage::checkPath;

class MemoryWrite final : public storage::Write {
 public:
  MemoryWrite(std::shared_ptr<MemoryStorage::State> state, std::string path,
              storage::WriteOptions options)
      : state_(std::move(state)), path_(std::move(path)), options_(options) {
    std::lock_guard lock(state_->mutex);
    ++state_->openWrites;
  }
  ~MemoryWrite() override {
    if (!done_) {
      std::lock_guard lock(state_->mutex);
      --state_->openWrites;
    }
  }

  void write(io::ByteView data) override {
    if (closed_) throw error(ErrorCode::Internal, "write to '{}' after close()", path_);
    if (options_.size && bytes_.size() + data.size() > *options_.size)
      throw error(ErrorCode::Internal, "write of '{}' was given more than the {} bytes announced",
                  path_, *options_.size);
    bytes_.insert(bytes_.end(), data.begin(), data.end());
  }
  void close() override {
    if (done_) throw error(ErrorCode::Internal, "close of '{}' after commit()", path_);
    if (options_.size && bytes_.size() != *options_.size)
      throw error(ErrorCode::Internal, "write of '{}' closed after {} bytes; {} were announced",
                  path_, bytes_.size(), *options_.size);
    closed_ = true;
  }
  bool commit() override {
    if (done_) throw error(ErrorCode::Internal, "second commit() of '{}'", path_);
    if (!closed_) close();
    std::lock_guard lock(state_->mutex);
    state_->checkShape(path_);
    bool exists = state_->objects.count(path_) > 0;
    done_ = true;
    --state_->openWrites;
    if (exists && options_.noReplace) return false;
    state_->objects[path_] = {std::make_shared<const io::Buffer>(std::move(bytes_)),
                              std::int64_t(std::time(nullptr))};
    return true;
  }
  std::uint64_t size() const override { return bytes_.size(); }

 private:
  std::shared_ptr<MemoryStorage::State> state_;
  std::string path_;
  storage::WriteOptions options_;
  io::Buffer bytes_;
  bool closed_ = false, done_ = false;
};

}  // namespace

MemoryStorage::MemoryStorage(MemoryStorageOptions options) : state_(std::make_shared<State>()) {
  static std::atomic<int> counter{0};
  state_->options = options;
  state_->name = fmt::format("memory:{}", ++counter);
  if (state_->options.readChunk == 0) state_->options.readChunk = 1;
}

MemoryStorage::~MemoryStorage() = default;

std::string MemoryStorage::describe() const {
  return state_->name;
}

std::unique_ptr<storage::Write> MemoryStorage::newWrite(const std::string& path,
                                                        storage::WriteOptions options) {
  checkPath(path);
  {
    // Like posix, which creates the parent directories here: a parent that is an object fails now.
    std::lock_guard lock(state_->mutex);
    state_->checkParents(path);
    state_->announced[path] = options.size;
  }
  return std::make_unique<MemoryWrite>(state_, path, options);
}

bool MemoryStorage::read(const std::string& path, io::Sink& out, storage::ReadOptions options) {
  checkPath(path);
  std::shared_ptr<const io::Buffer> bytes;
  {
    std::lock_guard lock(state_->mutex);
    auto it = state_->objects.find(path);
    if (it == state_->objects.end()) {
      if (state_->hasChildren(path))
        throw error(ErrorCode::Storage, "'{}' is a directory in {}", path, state_->name);
      return false;
    }
    bytes = it->second.bytes;
  }
  std::uint64_t begin = std::min<std::uint64_t>(options.offset, bytes->size());
  std::uint64_t end = bytes->size();
  if (options.length) end = std::min<std::uint64_t>(end, begin + *options.length);
  for (std::uint64_t at = begin; at < end;) {
    std::size_t n = std::size_t(std::min<std::uint64_t>(state_->options.readChunk, end - at));
    out.write({bytes->data() + at, n});
    at += n;
  }
  return true;
}

std::optional<storage::ObjectInfo> MemoryStorage::info(const std::string& path) {
  checkPath(path);
  std::lock_guard lock(state_->mutex);
  auto it = state_->objects.find(path);
  if (it == state_->objects.end()) {
    if (state_->hasChildren(path))
      throw error(ErrorCode::Storage, "'{}' is not a regular file in {}", path, state_->name);
    return std::nullopt;
  }
  return storage::ObjectInfo{it->second.bytes->size(), it->second.modified};
}

void MemoryStorage::list(const std::string& dir,
                         const std::function<void(const storage::ListEntry&)>& fn) {
  if (!dir.empty()) checkPath(dir);
  std::vector<storage::ListEntry> entries;
  {
    std::lock_guard lock(state_->mutex);
    if (!dir.empty() && state_->objects.count(dir))
      throw error(ErrorCode::Storage, "cannot list '{}' in {}: not a directory", dir, state_->name);
    std::string prefix = dir.empty() ? "" : dir + "/";
    std::set<std::string> directories;
    for (auto it = state_->objects.lower_bound(prefix);
         it != state_->objects.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      std::string rest = it->first.substr(prefix.size());
      auto slash = rest.find('/');
      if (slash == std::string::npos)
        entries.push_back({rest, false, it->second.bytes->size(), it->second.modified});
      else if (directories.insert(rest.substr(0, slash)).second)
        entries.push_back({rest.substr(0, slash), true, 0});
    }
  }
  // Outside the lock: `fn` may use this storage.
  for (const auto& entry : entries)
    fn(entry);
}

void MemoryStorage::remove(const std::string& path) {
  checkPath(path);
  std::lock_guard lock(state_->mutex);
  state_->objects.erase(path);
}

namespace {

class MemoryLock final : public storage::Lock {
 public:
  MemoryLock(std::shared_ptr<MemoryStorage::State> state, std::string path)
      : state_(std::move(state)), path_(std::move(path)) {}
  ~MemoryLock() override;

 private:
  std::shared_ptr<MemoryStorage::State> state_;
  std::string path_;
};

}  // namespace

std::unique_ptr<storage::Lock> MemoryStorage::tryLock(const std::string& path,
                                                      const std::string& owner,
                                                      std::string& holder) {
  checkPath(path);
  std::lock_guard lock(state_->mutex);
  auto [it, inserted] = state_->locks.emplace(path, owner);
  if (!inserted) {
    holder = it->second;
    return nullptr;
  }
  return std::make_unique<MemoryLock>(state_, path);
}

MemoryLock::~MemoryLock() {
  std::lock_guard lock(state_->mutex);
  state_->locks.erase(path_);
}

std::optional<io::Buffer> MemoryStorage::object(const std::string& path) const {
  std::lock_guard lock(state_->mutex);
  auto it = state_->objects.find(path);
  if (it == state_->objects.end()) return std::nullopt;
  return *it->second.bytes;
}

void MemoryStorage::setObject(const std::string& path, io::Buffer bytes) {
  checkPath(path);
  std::lock_guard lock(state_->mutex);
  auto& object = state_->objects[path];
  object.bytes = std::make_shared<const io::Buffer>(std::move(bytes));
  object.modified = std::int64_t(std::time(nullptr));
}

void MemoryStorage::setModified(const std::string& path, std::int64_t modified) {
  std::lock_guard lock(state_->mutex);
  state_->objects.at(path).modified = modified;
}

std::vector<std::string> MemoryStorage::paths() const {
  std::lock_guard lock(state_->mutex);
  std::vector<std::string> out;
  for (const auto& [path, object] : state_->objects)
    out.push_back(path);
  return out;
}

std::optional<std::uint64_t> MemoryStorage::announcedSize(const std::string& path) const {
  std::lock_guard lock(state_->mutex);
  auto it = state_->announced.find(path);
  return it == state_->announced.end() ? std::nullopt : it->second;
}

std::size_t MemoryStorage::openWrites() const {
  std::lock_guard lock(state_->mutex);
  return state_->openWrites;
}

}  // namespace tidemark::test
