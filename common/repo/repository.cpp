// Opening the configured repository: the one place where configuration becomes a storage driver,
// keys and a write policy.
#include "common/repo/repository.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/config/config.h"
#include "common/storage/posix/posix.h"
#include "common/storage/s3/s3.h"

namespace tidemark::repo {

namespace {

// --log-level=debug: every repository request and its answer (operation, path, result or size,
// duration), whatever the driver. Only put in place at debug level: nothing is paid otherwise.
class LoggedStorage final : public storage::Storage {
 public:
  explicit LoggedStorage(std::unique_ptr<storage::Storage> inner) : inner_(std::move(inner)) {}

  std::string describe() const override { return inner_->describe(); }

  std::unique_ptr<storage::Write> newWrite(const std::string& path,
                                           storage::WriteOptions options) override {
    return logged("write", path, [&] {
      return std::make_unique<LoggedWrite>(inner_->newWrite(path, options), path);
    });
  }
  bool read(const std::string& path, io::Sink& out, storage::ReadOptions options) override {
    Counter counter(out);
    bool found = logged(
        "read", path, [&] { return inner_->read(path, counter, options); },
        [&](bool f) { return f ? humanBytes(counter.bytes) : std::string("not found"); });
    return found;
  }
  std::optional<storage::ObjectInfo> info(const std::string& path) override {
    return logged(
        "info", path, [&] { return inner_->info(path); },
        [](const std::optional<storage::ObjectInfo>& i) {
          return i ? humanBytes(i->size) : std::string("not found");
        });
  }
  void list(const std::string& dir,
            const std::function<void(const storage::ListEntry&)>& fn) override {
    std::size_t entries = 0;
    logged("list", dir.empty() ? "/" : dir, [&] {
      inner_->list(dir, [&](const storage::ListEntry& entry) {
        ++entries;
        fn(entry);
      });
      return entries;
    });
  }
  void remove(const std::string& path) override {
    logged("remove", path, [&] {
      inner_->remove(path);
      return true;
    });
  }
  void removeMany(const std::vector<std::string>& paths) override {
    logged("remove", fmt::format("{} object{}", paths.size(), paths.size() == 1 ? "" : "s"), [&] {
      inner_->removeMany(paths);
      return true;
    });
  }
  bool removeEmptyDirectory(const std::string& dir) override {
    return logged("remove folder", dir, [&] { return inner_->removeEmptyDirectory(dir); });
  }
  std::vector<storage::Leftover> leftovers(const std::string& dir) override {
    return logged("leftovers", dir, [&] { return inner_->leftovers(dir); });
  }
  void removeLeftover(const storage::Leftover& leftover) override {
    logged("remove leftover", leftover.path, [&] {
      inner_->removeLeftover(leftover);
      return true;
    });
  }
  std::unique_ptr<storage::Lock> tryLock(const std::string& path, const std::string& owner,
                                         std::string& holder) override {
    return logged(
        "lock", path, [&] { return inner_->tryLock(path, owner, holder); },
        [&](const std::unique_ptr<storage::Lock>& lock) {
          return lock ? std::string("taken") : "held by " + holder;
        });
  }

 private:
  // Counts what a read delivers.
  struct Counter final : io::Sink {
    explicit Counter(io::Sink& next) : next(next) {}
    void write(io::ByteView data) override {
      next.write(data);
      bytes += data.size();
    }
    void close() override { next.close(); }
    io::Sink& next;
    std::uint64_t bytes = 0;
  };

  class LoggedWrite final : public storage::Write {
   public:
    LoggedWrite(std::unique_ptr<storage::Write> inner, std::string path)
        : inner_(std::move(inner)), path_(std::move(path)) {}
    void write(io::ByteView data) override { inner_->write(data); }
    void close() override { inner_->close(); }
    bool commit() override {
      bool done = logged(
          "commit", path_, [&] { return inner_->commit(); },
          [&](bool c) {
            return c ? humanBytes(inner_->size()) + " stored" : std::string("exists: not replaced");
          });
      return done;
    }
    std::uint64_t size() const override { return inner_->size(); }

   private:
    std::unique_ptr<storage::Write> inner_;
    std::string path_;
  };

  static std::string defaultAnswer(std::size_t n) { return plural(n, "entry", "entries"); }
  static std::string defaultAnswer(bool) { return "done"; }
  template <typename T>
  static std::string defaultAnswer(const T&) {
    return "done";
  }

  // Runs `fn`, then logs the operation, its answer (`answer(result)`) and how long it took; a
  // failure is logged with its message and rethrown.
  template <typename Fn, typename Answer>
  static auto logged(std::string_view operation, const std::string& path, Fn&& fn, Answer&& answer)
      -> decltype(fn()) {
    auto started = std::chrono::steady_clock::now();
    auto took = [&] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now() - started)
          .count();
    };
    try {
      auto result = fn();
      spdlog::debug("repository {} '{}': {}, {} ms", operation, path, answer(result), took());
      return result;
    } catch (const std::exception& e) {
      spdlog::debug("repository {} '{}': failed ({}), {} ms", operation, path, e.what(), took());
      throw;
    }
  }
  template <typename Fn>
  static auto logged(std::string_view operation, const std::string& path, Fn&& fn)
      -> decltype(fn()) {
    return logged(operation, path, std::forward<Fn>(fn),
                  [](const auto& result) { return defaultAnswer(result); });
  }

  std::unique_ptr<storage::Storage> inner_;
};

std::unique_ptr<storage::Storage> openDriver(const Config& config,
                                             const std::atomic<bool>* abandon = nullptr);

// The configured driver; wrapped to log every request when the log level is debug.
std::unique_ptr<storage::Storage> openStorage(const Config& config,
                                              const std::atomic<bool>* abandon) {
  auto driver = openDriver(config, abandon);
  if (!spdlog::should_log(spdlog::level::debug)) return driver;
  return std::make_unique<LoggedStorage>(std::move(driver));
}

std::unique_ptr<storage::Storage> openDriver(const Config& config,
                                             const std::atomic<bool>* abandon) {
  if (config.repo.type == "posix") return std::make_unique<storage::PosixStorage>(config.repo.path);
  if (config.repo.type == "s3") {
    std::string prefix = config.repo.path;
    while (!prefix.empty() && prefix.front() == '/')
      prefix.erase(0, 1);
    while (!prefix.empty() && prefix.back() == '/')
      prefix.pop_back();
    const auto& s3 = config.s3;
    return std::make_unique<storage::S3Storage>(storage::S3Options{
        .bucket = s3.bucket,
        .endpoint = s3.endpoint,
        .region = s3.region,
        .hostStyle = s3.uriStyle == "host",
        .prefix = prefix,
        .credentials = {s3.accessKeyId, s3.secretAccessKey, s3.sessionToken},
        .caFile = s3.caFile,
        .verifyTls = s3.verifyTls,
        .partSize = s3.partSize,
        .uploadConcurrency = s3.uploadConcurrency,
        .retryMax = s3.retryMax,
        .retryTime = std::chrono::seconds(s3.retryTime),
        .stallTimeoutSeconds = s3.timeout,
        .lockTimeout = std::chrono::seconds(s3.lockTimeout),
        .abandon = abandon,
    });
  }
  throw Error(ErrorCode::Config, fmt::format("repo.type '{}' is not supported", config.repo.type),
              "set repo.type to 'posix' or 's3'");
}

}  // namespace

std::string describeRepository(const Config& config) {
  try {
    return openDriver(config)->describe();
  } catch (const Error&) {
    return config.repo.type + ":" + config.repo.path;
  }
}

namespace {

Keyring loadKeyring(const Config::Encryption& e) {
  Keyring keys;
  if (!e.keyFile.empty()) keys.current = readKeyFile(e.keyFile, "encryption.key-file");
  if (!e.keyCommand.empty()) keys.current = runKeyCommand(e.keyCommand);
  for (const auto& path : e.oldKeyFiles)
    keys.old.push_back(readKeyFile(path, "encryption.old-key-files"));
  return keys;
}

}  // namespace

Repository::Repository(std::unique_ptr<storage::Storage> storage, std::string stanza, Keyring keys,
                       WritePolicy policy, StorageFactory openStorage)
    : owned_(std::move(storage)),
      storage_(owned_.get()),
      stanza_(std::move(stanza)),
      keys_(std::move(keys)),
      policy_(policy),
      openStorage_(std::move(openStorage)) {}

Repository::Repository(storage::Storage& storage, std::string stanza, Keyring keys,
                       WritePolicy policy)
    : storage_(&storage), stanza_(std::move(stanza)), keys_(std::move(keys)), policy_(policy) {}

ObjectOptions Repository::objectOptions() const {
  ObjectOptions options{.compress = policy_.compress, .level = policy_.level};
  if (policy_.encryption != io::EncryptType::None) {
    if (!keys_.current)
      throw Error(ErrorCode::Internal, "encryption is configured but no key was loaded");
    options.key = &*keys_.current;
  }
  return options;
}

std::optional<ObjectSummary> Repository::readObject(
    const std::string& path, io::Sink& out, std::optional<std::uint64_t> maxPlainSize) const {
  return repo::readObject(*storage_, path, out, keys_,
                          {.maxPlainSize = maxPlainSize,
                           .requireEncrypted = policy_.encryption != io::EncryptType::None &&
                                               !policy_.allowMixedEncryption});
}

std::optional<ObjectSummary> Repository::verifyObject(
    const std::string& path, std::optional<std::uint64_t> maxPlainSize) const {
  io::NullSink discard;
  return readObject(path, discard, maxPlainSize);
}

Repository Repository::another() const {
  if (!openStorage_)
    throw Error(ErrorCode::Internal, "this repository handle cannot open another connection");
  return Repository(openStorage_(), stanza_, keys_, policy_, openStorage_);
}

Repository openRepository(const Config& config, const std::atomic<bool>* abandon) {
  // In this order: a repository that cannot work is said before a key command runs.
  std::unique_ptr<storage::Storage> storage = openStorage(config, abandon);
  Keyring keys = loadKeyring(config.encryption);
  return Repository(std::move(storage), config.stanza, std::move(keys),
                    WritePolicy{.compress = config.compress.type,
                                .level = config.compress.level,
                                .encryption = config.encryption.type,
                                .allowMixedEncryption = config.encryption.allowMixed},
                    [config, abandon] { return openStorage(config, abandon); });
}

}  // namespace tidemark::repo
