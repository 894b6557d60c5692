// The s3 driver's locks: an object created with If-None-Match, refreshed by its holder with
// If-Match on its own ETag, and taken over when stale with If-Match on the stale one's ETag.
// Staleness is the server's own measure (Date minus Last-Modified of one answer): no two clocks
// are compared.
#include <spdlog/spdlog.h>
#include <time.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/storage/s3/s3.h"

namespace tidemark::storage {

namespace {

// The lock object's text: the owner (one printable line), a random token, a beat counter (so that
// every refresh changes the ETag).
std::string lockDocument(const std::string& owner, const std::string& token, std::uint64_t beat) {
  return fmt::format("{}\n{}\n{}\n", printable(owner, 500), token, beat);
}

// What the server says of the lock object now.
struct Seen {
  std::string etag, owner, body;
  std::int64_t age = 0;  // seconds between its Last-Modified and the answer's Date
};

std::optional<Seen> look(const S3Storage& storage, s3::HttpClient& client, const std::string& key) {
  S3Storage::Request request{.operation = "GetObject", .key = key};
  auto response = storage.execute(request, client);
  if (response.status == 404) return std::nullopt;
  if (!response.ok()) storage.fail(request, response);
  Seen seen{response.header("etag"), response.body.substr(0, response.body.find('\n')),
            response.body};
  auto modified = s3::parseHttpDate(response.header("last-modified"));
  auto now = s3::parseHttpDate(response.header("date"));
  if (!modified || !now)
    throw error(ErrorCode::Storage,
                "S3 GetObject of lock '{}' answered without Last-Modified and Date", key);
  seen.age = *now - *modified;
  if (seen.owner.empty()) seen.owner = "another process";
  return seen;
}

// PUT of `document` on condition that the object's ETag is `etag`: its new ETag, or nullopt when
// the object is another (412). Servers differ in how they compare the quoted ETag (radosgw 16
// matches only the bare one): a 412 for the ETag the object still has is retried with the bare
// form, and that form kept for later requests.
std::optional<std::string> replaceIf(const S3Storage& storage, s3::HttpClient& client,
                                     const std::string& key, const std::string& etag,
                                     const std::string& document, std::atomic<bool>& bareEtag) {
  auto put = [&](const std::string& condition) {
    S3Storage::Request request{.operation = "PutObject",
                               .method = "PUT",
                               .key = key,
                               .headers = {{"if-match", condition}},
                               .body = io::asBytes(document)};
    auto response = storage.execute(request, client);
    if (response.status != 412 && !response.ok()) storage.fail(request, response);
    return response;
  };
  std::string bare =
      etag.size() >= 2 && etag.front() == '"' ? etag.substr(1, etag.size() - 2) : etag;
  auto response = put(bareEtag ? bare : etag);
  if (response.status == 412 && !bareEtag) {
    auto seen = look(storage, client, key);
    if (!seen || seen->etag != etag) return std::nullopt;
    bareEtag = true;
    response = put(bare);
  }
  if (response.status == 412) return std::nullopt;
  return response.header("etag");
}

// The time since boot, counting time suspended (CLOCK_BOOTTIME): a host that slept or a paused VM
// must not come back believing its lock fresh; the server's clock went on meanwhile.
std::chrono::nanoseconds bootClock() {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

class S3Lock final : public Lock {
 public:
  // `sent`: bootClock() when the request that created or took over the lock was sent.
  S3Lock(S3Storage& storage, std::string key, std::string owner, std::string token,
         std::string etag, std::atomic<bool>& bareEtag, std::chrono::nanoseconds sent)
      : storage_(storage),
        key_(std::move(key)),
        owner_(std::move(owner)),
        token_(std::move(token)),
        etag_(std::move(etag)),
        bareEtag_(bareEtag),
        lastRefresh_(sent) {
    heartbeat_ = std::thread([this] { beat(); });
  }

  ~S3Lock() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    heartbeat_.join();
    if (!held_) return;  // another process's now
    try {
      // Release only what is still ours. (DELETE If-Match is ignored by some servers: the check
      // and the delete race only with a takeover of a lock that was stale, which a held one is
      // not.)
      s3::HttpClient client(storage_.httpOptions());
      auto seen = look(storage_, client, key_);
      if (seen && seen->body.find(token_) != std::string::npos) {
        S3Storage::Request request{.operation = "DeleteObject", .method = "DELETE", .key = key_};
        auto response = storage_.execute(request, client);
        if (!response.ok()) storage_.fail(request, response);
      }
    } catch (const std::exception& e) {
      spdlog::warn("could not release lock '{}': {}; it becomes stale in {} s", key_, e.what(),
                   storage_.options().lockTimeout.count());
    }
  }

  // Lost, or not refreshed for long enough that another process may have taken it over: the
  // heartbeat may not have run yet (a process stopped with SIGSTOP, a paused VM) when its holder
  // asks, and the boot clock, like the server's, went on meanwhile.
  bool held() const override { return held_ && bootClock() - lastRefresh_.load() < safeWindow(); }

  // A refresh now, from the caller's thread: once it got through, nobody can take the lock over
  // for a whole lock-timeout.
  bool confirm() override {
    if (!held()) return false;
    s3::HttpClient client(storage_.httpOptions());
    return refreshOnce(client) && held();
  }

 private:
  void beat() {
    try {
      s3::HttpClient client(storage_.httpOptions());
      const auto refresh = std::max<std::chrono::seconds>(std::chrono::seconds(1),
                                                          storage_.options().lockTimeout / 10);
      std::unique_lock lock(mutex_);
      while (held_ && !wake_.wait_for(lock, refresh, [&] { return stopping_; })) {
        lock.unlock();
        refreshOnce(client);
        lock.lock();
      }
    } catch (const std::exception& e) {  // not even a client: the lock cannot be kept
      lose(fmt::format("its heartbeat failed: {}", e.what()));
    }
  }

  // One conditional refresh (heartbeat and confirm() take turns: both change etag_); whether it
  // got through.
  bool refreshOnce(s3::HttpClient& client) {
    std::lock_guard turn(refreshing_);
    try {
      auto sent = bootClock();  // the server's Last-Modified is later
      auto etag = replaceIf(storage_, client, key_, etag_, lockDocument(owner_, token_, ++beats_),
                            bareEtag_);
      if (!etag) {
        lose("another process replaced it (it took the lock over as stale)");
        return false;
      }
      etag_ = *etag;
      lastRefresh_ = sent;
      return true;
    } catch (const std::exception& e) {
      // After a lock-timeout without a refresh, another process may take it over: stop first.
      auto since = bootClock() - lastRefresh_.load();
      if (since >= safeWindow())
        lose(fmt::format("it could not be refreshed for {} s: {}",
                         std::chrono::duration_cast<std::chrono::seconds>(since).count(),
                         e.what()));
      else
        spdlog::warn("could not refresh lock '{}': {}", key_, e.what());
      return false;
    }
  }

  // How long after its last refresh the lock is surely still ours: a takeover needs a whole
  // lock-timeout on the server's clock; a fifth of it is left for the clocks' rates and the
  // request's own time.
  std::chrono::nanoseconds safeWindow() const {
    return storage_.options().lockTimeout - storage_.options().lockTimeout / 5;
  }

  void lose(const std::string& why) {
    spdlog::error("lost lock '{}': {}", key_, why);
    held_ = false;
  }

  S3Storage& storage_;
  std::string key_, owner_, token_, etag_;
  std::atomic<bool>& bareEtag_;
  std::atomic<std::chrono::nanoseconds> lastRefresh_;  // bootClock() of the last refresh sent
  std::atomic<bool> held_{true};
  std::mutex refreshing_;    // one refresh at a time
  std::uint64_t beats_ = 0;  // refreshes sent (under refreshing_)
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread heartbeat_;
};

}  // namespace

std::unique_ptr<Lock> S3Storage::tryLock(const std::string& path, const std::string& owner,
                                         std::string& holder) {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  const std::string token = fmt::format("{:016x}{:016x}", random(), random());
  const std::string document = lockDocument(owner, token, 0);
  const std::string lockKey = key(path);
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto sent = bootClock();
    Request create{.operation = "PutObject",
                   .method = "PUT",
                   .key = lockKey,
                   .headers = {{"if-none-match", "*"}},
                   .body = io::asBytes(document)};
    auto response = execute(create, client());
    if (response.ok())
      return std::make_unique<S3Lock>(*this, lockKey, owner, token, response.header("etag"),
                                      bareEtag_, sent);
    if (response.status != 412) fail(create, response);
    auto seen = look(*this, client(), lockKey);
    if (!seen) continue;  // released in between
    holder = seen->owner;
    if (seen->age <= options_.lockTimeout.count()) {
      // A holder that died (a lost connection, kill -9) leaves its lock in the bucket: say when
      // it lapses, which its owner line alone does not.
      holder += fmt::format(
          " (lock last refreshed {} s ago; if that process is gone, the lock lapses after {} s "
          "without a refresh, s3.lock-timeout)",
          seen->age, options_.lockTimeout.count());
      return nullptr;
    }
    // Stale: replace exactly that object. Of two processes taking it over at once, one wins.
    sent = bootClock();
    auto etag = replaceIf(*this, client(), lockKey, seen->etag, document, bareEtag_);
    if (!etag) continue;
    spdlog::warn("took over lock '{}': its holder ({}) stopped refreshing it {} s ago", path,
                 holder, seen->age);
    return std::make_unique<S3Lock>(*this, lockKey, owner, token, *etag, bareEtag_, sent);
  }
  holder = "another process (the lock changed hands while it was being taken)";
  return nullptr;
}

}  // namespace tidemark::storage
