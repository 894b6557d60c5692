// The archive's last commit, read with pg_waldump.
#include "common/recovery/last_commit.h"

#include <fmt/format.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/files/file.h"
#include "common/pg/lsn.h"
#include "common/pg/wal.h"
#include "common/pg/waldump.h"
#include "common/repo/layout.h"

namespace tidemark::recovery {

namespace {

// A private temporary directory, removed with what it holds.
class TempDirectory {
 public:
  TempDirectory() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/tidemark-waldump-XXXXXX";
    if (!::mkdtemp(pattern.data()))
      throw systemError(ErrorCode::LocalIo, errno, "cannot make a temporary directory '{}'",
                        pattern);
    path_ = pattern;
  }
  ~TempDirectory() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDirectory(const TempDirectory&) = delete;
  TempDirectory& operator=(const TempDirectory&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

ArchiveEnd lastCommit(const repo::Repository& repository, const Catalog& catalog,
                      const pg::TimelineHistory& history, std::uint64_t first, std::uint64_t last,
                      const std::string& walDump) {
  ArchiveEnd end;
  try {
    TempDirectory temp;
    const std::uint32_t size = catalog.segmentSize();
    const int generation = catalog.generation().number;
    // Fetches one segment into the directory; false when the repository lacks it.
    auto fetch = [&](std::uint64_t segment) {
      const std::string name = catalog.fileName(history, segment);
      files::AtomicFile file(temp.path() + "/" + name, {.mode = 0600, .sync = false});
      const pg::WalName wal = *pg::parseWalName(name);
      if (!repository.readObject(repo::walObject(repository.stanza(), generation, wal), file,
                                 pg::maxWalFileSize(wal, size)))
        return false;
      file.commit();
      return true;
    };
    std::optional<std::uint64_t> fetched;  // the lowest segment fetched so far
    std::uint64_t read = 0;
    for (std::uint64_t segment = last; segment + kLastCommitSegments > last && segment >= first;
         --segment) {
      if (!fetch(segment)) {
        if (segment == last) {
          end.unknown = fmt::format("{} is not in the repository", catalog.fileName(history, last));
          return end;
        }
        break;
      }
      // This segment and the next (a record that begins here may end there), when they are files
      // of one timeline.
      const std::string name = catalog.fileName(history, segment);
      std::string upTo = name;
      if (fetched && *fetched == segment + 1 &&
          catalog.fileTimeline(history, segment + 1) == catalog.fileTimeline(history, segment))
        upTo = catalog.fileName(history, segment + 1);
      fetched = segment;
      std::vector<pg::XactTime> records =
          pg::xactTimes(walDump, temp.path(), name, upTo, segment * std::uint64_t(size),
                        (segment + 1) * std::uint64_t(size));
      // The next step reads this segment and the one before it: the one after goes.
      if (upTo != name) ::unlink((temp.path() + "/" + upTo).c_str());
      ++read;
      if (!records.empty()) {
        auto newest =
            std::max_element(records.begin(), records.end(),
                             [](const auto& a, const auto& b) { return a.time < b.time; });
        end.commit = LastCommit{newest->time, newest->lsn, newest->kind, name};
        return end;
      }
      if (segment == 0) break;
    }
    end.unknown = fmt::format("no commit or abort in the newest {} (to {})",
                              plural(read, "segment", "segments"), catalog.fileName(history, last));
  } catch (const Error& e) {
    if (e.code() == ErrorCode::Interrupted) throw;  // a stop signal: the command stops
    end.unknown = e.what();
  }
  return end;
}

ArchiveEnd lastCommit(const repo::Repository& repository, const Catalog& catalog,
                      const pg::TimelineHistory& history, std::uint64_t first, std::uint64_t last,
                      int pgVersion, const std::string& binDirectory) {
  std::optional<std::string> walDump;
  // The directory's, unless it says it is of another version (one of another version cannot
  // read this cluster's WAL).
  if (!binDirectory.empty()) walDump = pg::findPgProgram("pg_waldump", pgVersion, binDirectory);
  if (walDump) {
    const std::optional<int> version = pg::programVersion(*walDump);
    if (version && *version != pgVersion) walDump.reset();
  }
  if (!walDump) walDump = pg::findPgProgram("pg_waldump", pgVersion);
  if (!walDump)
    return ArchiveEnd{std::nullopt,
                      fmt::format("pg_waldump of PostgreSQL {} is not installed here (looked in "
                                  "{}/usr/lib/postgresql/{}/bin, /usr/pgsql-{}/bin and pg_config "
                                  "--bindir)",
                                  pgVersion, binDirectory.empty() ? "" : "'" + binDirectory + "', ",
                                  pgVersion, pgVersion)};
  return lastCommit(repository, catalog, history, first, last, *walDump);
}

bool reaches(const LastCommit& commit, const Target& target) {
  return target.exclusive ? commit.time >= target.time : commit.time > target.time;
}

void refuseUnreachableTime(const ArchiveEnd& end, const Target& target, const std::string& gap) {
  if (target.kind != TargetKind::Time || !end.commit || reaches(*end.commit, target)) return;
  const LastCommit& last = *end.commit;
  const std::string commit = fmt::format("{} at {} in {}, {}", formatTimestamp(last.time),
                                         pg::formatLsn(last.lsn), last.segment, last.kind);
  if (gap.empty())
    throw Error(ErrorCode::InvalidInput,
                fmt::format("the target {} is at or after the last commit in the archive ({}): "
                            "PostgreSQL would replay everything and then fail with \"recovery "
                            "ended before configured recovery target was reached\"",
                            target.describe(), commit),
                fmt::format("choose a target before {}, or give no target to replay everything "
                            "archived",
                            formatTimestamp(last.time)));
  // The archive goes on after a hole: what lies beyond it cannot be replayed, whatever it holds.
  throw Error(ErrorCode::InvalidInput,
              fmt::format("the target {} is at or after the last commit before a gap in the "
                          "archived WAL ({}; missing: {}): the replay stops at the gap, and "
                          "PostgreSQL would fail there with \"recovery ended before configured "
                          "recovery target was reached\"",
                          target.describe(), commit, gap),
              fmt::format("choose a target before {}, or put the missing WAL back into the "
                          "archive where a copy exists (the server's pg_wal, another copy; WAL "
                          "the safety valve dropped has none); 'tidemark verify' names every gap",
                          formatTimestamp(last.time)));
}

}  // namespace tidemark::recovery
