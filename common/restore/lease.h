// The recovery lease a restore holds on the WAL its replay reads (repo/marks.h): written before
// anything is restored, checked against expire's low-water marks, renewed while the restore runs,
// and released when the restore fails (or, for a drill, when it ends). Shared by tidemark-recover
// and tidemark drill.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "common/recovery/plan.h"
#include "common/repo/marks.h"
#include "common/repo/repository.h"

namespace tidemark::restore {

class RecoveryLease {
 public:
  // Writes a lease on the WAL `plan` replays (its backup's first segment on, on the plan's timeline
  // and its parents), held by `holder` (who and where, for `tidemark info` and expire's messages).
  // Then refuses (Error(Conflict), after releasing the lease) when an expire has written a
  // low-water mark above the backup's start on one of those timelines: it has deleted, or is
  // deleting, WAL the replay reads (unless a keep mark holds the backup's own WAL and the replay
  // reads no further).
  // `stanzaId`: the stanza's identifier (repo::StanzaInfo::identity()) the records are bound to.
  RecoveryLease(const repo::Repository& repository, std::string stanzaId,
                const recovery::RecoveryPlan& plan, std::string holder,
                std::int64_t timeoutSeconds);
  // Stops the renewal; the lease stays (the replay's archive-get renews it from the marker, and
  // it lapses after its timeout without renewals), unless release() ended it.
  ~RecoveryLease();
  RecoveryLease(const RecoveryLease&) = delete;
  RecoveryLease& operator=(const RecoveryLease&) = delete;

  // The content of the marker file (repo::kLeaseMarkerFile) for the restored data directory.
  std::string marker() const;
  // Renews the lease every quarter of its timeout from a thread of its own (with a storage
  // connection of its own) until stopRenewal() or the destructor; a failed renewal is a warning.
  // Does nothing when the handle cannot open another connection.
  void startRenewal();
  void stopRenewal();
  // Writes the lease's release; a failure is a warning (the lease lapses after its timeout).
  void release() noexcept;

  const repo::Lease& lease() const { return lease_; }

 private:
  const repo::Repository& repository_;
  std::string stanzaId_;
  repo::Lease lease_;
  std::atomic<bool> done_{false};
  std::thread renewal_;
};

}  // namespace tidemark::restore
