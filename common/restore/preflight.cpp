// Verifying what a recovery plan reads, before restoring.
#include "common/restore/preflight.h"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/base/error.h"
#include "common/io/hash.h"
#include "common/io/sink.h"
#include "common/pg/timeline.h"
#include "common/pg/wal.h"
#include "common/repo/layout.h"

namespace tidemark::restore {

namespace {

// What one object must be.
struct Expected {
  std::string path;
  std::uint64_t maxPlainSize = 0;
  std::optional<std::uint64_t> size;  // exact plain size (archives, segments)
  std::optional<io::Sha256Digest> sha256;
  std::optional<pg::WalName> segment;  // a segment: its header must be the one its name says
};

std::vector<Expected> expectedObjects(const repo::Repository& repository,
                                      const recovery::RecoveryPlan& plan) {
  std::vector<Expected> out;
  const repo::BackupInfo& b = plan.backup;
  for (const auto& object : b.storedObjects())
    out.push_back(Expected{repo::backupObject(repository.stanza(), b.label, object.name),
                           object.size, object.size, object.sha256});
  const std::uint32_t size = b.walSegmentSize;
  std::set<std::uint32_t> timelines;
  for (const auto& parent : plan.history.parents)
    if (parent.timeline >= b.timeline) timelines.insert(parent.timeline);
  timelines.insert(plan.history.timeline);
  for (std::uint32_t timeline : timelines)
    if (timeline > b.timeline) {
      const pg::WalName history = *pg::parseWalName(pg::historyFileName(timeline));
      out.push_back(Expected{repo::walObject(repository.stanza(), plan.generation, history),
                             pg::maxWalFileSize(history, size)});
    }
  std::set<std::uint64_t> missing;
  for (const auto& gap : plan.gaps) {
    std::uint64_t first = pg::segmentNumber(*pg::parseWalName(gap.first), size);
    std::uint64_t last = pg::segmentNumber(*pg::parseWalName(gap.last), size);
    for (std::uint64_t s = first; s <= last; ++s)
      missing.insert(s);
  }
  for (std::uint64_t segment = plan.firstSegment; segment <= plan.lastSegment; ++segment) {
    if (missing.count(segment)) continue;
    const std::string name =
        pg::segmentFileName(pg::fileTimeline(plan.history, segment, size), segment, size);
    const pg::WalName wal = *pg::parseWalName(name);
    out.push_back(Expected{.path = repo::walObject(repository.stanza(), plan.generation, wal),
                           .maxPlainSize = size,
                           .size = size,
                           .segment = wal});
  }
  return out;
}

}  // namespace

std::vector<std::string> planObjects(const repo::Repository& repository,
                                     const recovery::RecoveryPlan& plan) {
  std::vector<std::string> out;
  for (auto& expected : expectedObjects(repository, plan))
    out.push_back(std::move(expected.path));
  return out;
}

void checkBackupObjectsListed(const repo::Repository& repository, const repo::BackupInfo& backup) {
  std::map<std::string, std::uint64_t> listed;  // name -> stored size
  repository.storage().list(repo::backupDirectory(repository.stanza(), backup.label),
                            [&](const storage::ListEntry& entry) {
                              if (!entry.directory) listed[entry.name] = entry.size;
                            });
  std::string problems;
  for (const auto& object : backup.storedObjects()) {
    auto it = listed.find(object.name);
    std::string problem;
    if (it == listed.end())
      problem = fmt::format("'{}' is missing", object.name);
    else if (object.storedSize != 0 && it->second != object.storedSize)
      problem = fmt::format("'{}' holds {} stored bytes, backup.json records {}", object.name,
                            it->second, object.storedSize);
    if (problem.empty()) continue;
    problems += (problems.empty() ? "" : "; ") + problem;
  }
  if (problems.empty()) return;
  throw Error(ErrorCode::Corrupt,
              fmt::format("backup {} cannot be restored from {}: {}", backup.label,
                          repository.describe(), problems),
              "choose another backup with --backup=LABEL (tidemark info lists them; tidemark "
              "verify names everything damaged)");
}

PreflightResult verifyPlanObjects(const repo::Repository& repository,
                                  const recovery::RecoveryPlan& plan, int parallel,
                                  const std::function<bool()>& stopRequested) {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<Expected> objects = expectedObjects(repository, plan);
  PreflightResult result;
  std::map<std::size_t, std::string> problems;  // by position: reported in plan order
  std::mutex mutex;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::exception_ptr failure;
  auto work = [&](const repo::Repository& handle) {
    for (std::size_t i; !stop && (i = next++) < objects.size();) {
      if (stopRequested && stopRequested()) {
        stop = true;
        throw Error(ErrorCode::Interrupted, "stopped by a signal while verifying the plan");
      }
      const Expected& e = objects[i];
      std::string problem;
      std::uint64_t bytes = 0;
      try {
        io::NullSink discard;
        pg::HeaderCapture header(discard);
        auto summary = handle.readObject(e.path, header, e.maxPlainSize);
        std::optional<pg::LongPageHeader> page;
        if (summary && e.segment && summary->plainSize == e.size)
          page = pg::checkSegmentHeader(header.header(), *e.segment, summary->plainSize, e.path,
                                        pg::kStoredSegmentHint);
        if (!summary)
          problem = fmt::format("'{}' is missing", e.path);
        else if (e.size && summary->plainSize != *e.size)
          problem = fmt::format("'{}' holds {} bytes, not {}", e.path, summary->plainSize, *e.size);
        else if (e.sha256 && summary->plainSha256 != *e.sha256)
          problem =
              fmt::format("'{}' is not the one its backup.json records (SHA-256 {}, expected {})",
                          e.path, io::toHex(summary->plainSha256), io::toHex(*e.sha256));
        else if (page && page->systemId != plan.backup.systemId)
          problem = fmt::format("'{}' holds WAL of the cluster with system identifier {}, not {}",
                                e.path, page->systemId, plan.backup.systemId);
        else
          bytes = summary->plainSize;
      } catch (const Error& error) {
        // A damaged object is a finding, as is one written with a key the configured keys do not
        // include (Config, when there are keys: the metadata the plan was made from was
        // authenticated with them); a repository that cannot be read stops the check.
        const bool foreignKey =
            error.code() == ErrorCode::Config && handle.keys().current.has_value();
        if (error.code() != ErrorCode::Corrupt && error.code() != ErrorCode::ForeignCluster &&
            error.code() != ErrorCode::InvalidInput && !foreignKey)
          throw;
        problem = error.what();
      }
      std::lock_guard lock(mutex);
      if (problem.empty()) {
        ++result.objects;
        result.bytes += bytes;
      } else {
        problems.emplace(i, std::move(problem));
      }
    }
  };
  const std::size_t threads =
      repository.canOpenAnother()
          ? std::min<std::size_t>(objects.size(), std::size_t(std::max(1, parallel)))
          : 0;
  std::vector<std::thread> workers;
  auto fail = [&](std::exception_ptr e) {
    std::lock_guard lock(mutex);
    if (!failure) failure = e;
    stop = true;
  };
  try {
    for (std::size_t w = 1; w < threads; ++w)
      workers.emplace_back([&] {
        try {
          repo::Repository own = repository.another();
          work(own);
        } catch (...) {
          fail(std::current_exception());
        }
      });
    work(repository);
  } catch (...) {
    fail(std::current_exception());
  }
  for (auto& worker : workers)
    worker.join();
  if (failure) std::rethrow_exception(failure);
  for (auto& [index, problem] : problems)
    result.problems.push_back(std::move(problem));
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace tidemark::restore
