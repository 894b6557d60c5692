// A thread that asks, every so often, whether work under way must be abandoned: for the
// background processes (the pusher, the prefetcher), whose stop conditions are otherwise looked at
// only between files, while a transfer can last as long as a slow server keeps it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace tidemark {

class Watchdog {
 public:
  // Calls `mustStop` every `every` until it returns true (or throws), then sets `abandon` and ends;
  // or until the watchdog is destroyed. When no thread can be started, nothing is watched.
  Watchdog(std::function<bool()> mustStop, std::atomic<bool>& abandon,
           std::chrono::milliseconds every)
      : mustStop_(std::move(mustStop)), abandon_(abandon), every_(every) {
    try {
      thread_ = std::thread([this] { run(); });
    } catch (const std::system_error&) {
    }
  }
  ~Watchdog() {
    {
      std::lock_guard guard(mutex_);
      done_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Whether it runs (false: a thread could not be started).
  bool watching() const { return thread_.joinable(); }

 private:
  void run() {
    std::unique_lock guard(mutex_);
    while (!done_) {
      guard.unlock();
      bool stop = true;  // a check that fails: the work may not go on unwatched
      try {
        stop = mustStop_();
      } catch (...) {
      }
      if (stop) {
        abandon_ = true;
        return;
      }
      guard.lock();
      wake_.wait_for(guard, every_, [this] { return done_; });
    }
  }

  std::function<bool()> mustStop_;
  std::atomic<bool>& abandon_;
  const std::chrono::milliseconds every_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace tidemark
