// A storage wrapper for tests that injects faults into any driver: failed writes and commits,
// lost commit acknowledgements, failed and cut-short reads. Every injected failure is an
// Error(Storage) whose message starts with "injected fault:".
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/storage/storage.h"

namespace tidemark::test {

// Call counts are 1-based over the life of the FaultStorage, across all objects; 0 means never.
struct FaultPlan {
  int failNewWrite = 0;    // the Nth newWrite() throws
  int failWriteCall = 0;   // the Nth Write::write() call throws; its bytes are not stored
  int failCommit = 0;      // the Nth commit() throws without publishing
  int loseCommitAck = 0;   // the Nth commit() publishes, then throws (a reply lost on the way back)
  bool failReads = false;  // every read() throws before delivering anything
  std::string failReadsOf;  // every read() of a path containing this throws likewise ("" = none)
  // Every read() delivers this many bytes, then throws.
  std::optional<std::uint64_t> failReadAfter;
  // Every read() delivers this many bytes, then silently drops the rest and reports success
  // (a short response body that the transport did not notice).
  std::optional<std::uint64_t> truncateReadAfter;
  bool failInfo = false;
  bool failList = false;
  bool failRemove = false;
  bool transient = false;  // mark injected errors transient
};

// Wraps `inner` (not owned, must outlive this). Single-threaded, like the drivers it wraps.
class FaultStorage final : public storage::Storage {
 public:
  explicit FaultStorage(storage::Storage& inner, FaultPlan plan = {});

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

  // The plan may be changed between calls.
  FaultPlan& plan() { return plan_; }

  struct Counts {
    int newWrites = 0, writeCalls = 0, commits = 0, reads = 0;
  };
  const Counts& counts() const { return counts_; }
  // Faults injected so far.
  int injected() const { return injected_; }

  // Used by the wrapped writes: count a call, and throw the injected Error(Storage) for `what`.
  int countWriteCall() { return ++counts_.writeCalls; }
  int countCommit() { return ++counts_.commits; }
  [[noreturn]] void inject(const std::string& what);

 private:
  storage::Storage& inner_;
  FaultPlan plan_;
  Counts counts_;
  int injected_ = 0;
};

}  // namespace tidemark::test
