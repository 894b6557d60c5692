// The recovery lease of a restore.
#include "common/restore/lease.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/pg/wal.h"

namespace tidemark::restore {

RecoveryLease::RecoveryLease(const repo::Repository& repository, std::string stanzaId,
                             const recovery::RecoveryPlan& plan, std::string holder,
                             std::int64_t timeoutSeconds)
    : repository_(repository), stanzaId_(std::move(stanzaId)) {
  lease_ = repo::Lease{.id = repo::newLeaseId(),
                       .holder = std::move(holder),
                       .backup = plan.backup.label,
                       .generation = plan.generation,
                       .timelines = {plan.history.timeline},
                       .firstSegment = plan.backup.firstSegment(),
                       .firstSegmentName = plan.backup.walStart(),
                       .timeoutSeconds = timeoutSeconds};
  for (const auto& parent : plan.history.parents)
    lease_.timelines.insert(parent.timeline);
  repo::writeLease(repository_, stanzaId_, lease_);
  try {
    bool ownWalOnly = plan.lastSegment <= plan.backup.lastSegment() &&
                      repo::keepMarks(repository_, stanzaId_).count(plan.backup.label);
    for (std::uint32_t timeline : lease_.timelines)
      if (auto mark = repo::lowWaterMark(repository_, stanzaId_, plan.generation, timeline);
          mark && *mark > lease_.firstSegment && !ownWalOnly)
        throw Error(
            ErrorCode::Conflict,
            fmt::format("'tidemark expire' deletes WAL of timeline {} before {}, which a "
                        "recovery from backup {} reads",
                        timeline, pg::segmentFileName(timeline, *mark, plan.backup.walSegmentSize),
                        plan.backup.label),
            "run the recovery again: it plans with what the repository holds now "
            "(a newer backup), or name a newer one with --backup");
  } catch (...) {
    release();
    throw;
  }
}

RecoveryLease::~RecoveryLease() {
  stopRenewal();
}

std::string RecoveryLease::marker() const {
  return repo::leaseMarker(lease_, repository_.stanza(), stanzaId_);
}

void RecoveryLease::startRenewal() {
  if (renewal_.joinable() || !repository_.canOpenAnother()) return;
  done_ = false;
  renewal_ = std::thread([this, handle = repository_.another()]() {
    const auto every = std::chrono::seconds(std::max<std::int64_t>(1, lease_.timeoutSeconds / 4));
    auto next = std::chrono::steady_clock::now() + every;
    while (!done_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (std::chrono::steady_clock::now() < next) continue;
      next += every;
      try {
        repo::writeLease(handle, stanzaId_, lease_);
      } catch (const std::exception& e) {
        spdlog::warn("could not renew recovery lease {}: {}", lease_.id, e.what());
      }
    }
  });
}

void RecoveryLease::stopRenewal() {
  done_ = true;
  if (renewal_.joinable()) renewal_.join();
}

void RecoveryLease::release() noexcept {
  stopRenewal();
  repo::Lease released = lease_;
  released.released = true;
  try {
    repo::writeLease(repository_, stanzaId_, released);
  } catch (const std::exception& e) {
    spdlog::warn("could not release recovery lease {}: {} (it lapses after {})", lease_.id,
                 e.what(), formatDuration(lease_.timeoutSeconds));
  }
}

}  // namespace tidemark::restore
