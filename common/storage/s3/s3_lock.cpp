// The s3 driver's locks: an object created with If-None-Match and refreshed by its holder.
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <ctime>
#include <mutex>
#include <random>
#include <thread>

#include "common/base/error.h"
#include "common/storage/s3/s3.h"
#include "common/storage/s3/xml.h"

namespace tidemark::storage {

namespace {

// S3 has no locks: a lock is an object created with If-None-Match, holding its owner, a random
// token and a heartbeat the holder refreshes. One whose heartbeat stopped is stale.
constexpr std::chrono::seconds kLockRefresh{30};
constexpr std::chrono::seconds kLockStale{300};

std::string lockDocument(const std::string& owner, const std::string& token) {
  return fmt::format("{{\"owner\": \"{}\", \"token\": \"{}\", \"heartbeat\": {}}}\n",
                     s3::xml::encode(owner), token, std::time(nullptr));
}

class S3Lock final : public Lock {
 public:
  S3Lock(S3Storage& storage, std::string path, std::string owner, std::string token)
      : storage_(storage),
        path_(std::move(path)),
        owner_(std::move(owner)),
        token_(std::move(token)) {
    heartbeat_ = std::thread([this] { beat(); });
  }

  ~S3Lock() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    heartbeat_.join();
    try {
      // Release only what is still ours (a lock taken over as stale belongs to someone else).
      auto text = readSmall(storage_, path_, 4096);
      if (text && text->find(token_) != std::string::npos) storage_.remove(path_);
    } catch (const std::exception& e) {
      spdlog::warn("could not release lock '{}': {}; it becomes stale in {} s", path_, e.what(),
                   kLockStale.count());
    }
  }

 private:
  void beat() {
    s3::HttpClient client(storage_.httpOptions());
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, kLockRefresh, [&] { return stopping_; })) {
      std::string document = lockDocument(owner_, token_);
      S3Storage::Request request{.operation = "PutObject",
                                 .method = "PUT",
                                 .key = storage_.key(path_),
                                 .body = io::asBytes(document)};
      try {
        auto response = storage_.execute(request, client);
        if (response.status < 200 || response.status >= 300) storage_.fail(request, response);
      } catch (const std::exception& e) {
        spdlog::warn("could not refresh lock '{}': {}", path_, e.what());
      }
    }
  }

  S3Storage& storage_;
  std::string path_, owner_, token_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread heartbeat_;
};

}  // namespace

std::unique_ptr<Lock> S3Storage::tryLock(const std::string& path, const std::string& owner,
                                         std::string& holder) {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  std::string token = fmt::format("{:016x}", random());
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto write = newWrite(path, {.noReplace = true});
    std::string document = lockDocument(owner, token);
    write->write(io::asBytes(document));
    if (write->commit()) return std::make_unique<S3Lock>(*this, path, owner, token);
    auto existing = readSmall(*this, path, 4096);
    if (!existing) continue;  // released in between
    std::int64_t heartbeat = 0;
    if (auto at = existing->find("\"heartbeat\": "); at != std::string::npos)
      heartbeat = std::atoll(existing->c_str() + at + 13);
    if (auto at = existing->find("\"owner\": \""); at != std::string::npos)
      holder = s3::xml::decode(existing->substr(at + 10, existing->find('"', at + 10) - at - 10));
    else
      holder = "another process";
    if (std::time(nullptr) - heartbeat <= kLockStale.count()) return nullptr;
    spdlog::warn("taking over lock '{}': its holder ({}) stopped refreshing it {} s ago", path,
                 holder, std::time(nullptr) - heartbeat);
    remove(path);
  }
  holder = "another process (the lock changed hands while it was being taken)";
  return nullptr;
}

}  // namespace tidemark::storage
