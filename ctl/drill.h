// tidemark drill: a restore test. Plans a recovery as tidemark-recover would, restores it into a
// scratch directory, starts PostgreSQL on it (away from production: no archiving, loopback only),
// waits until the replay reached its target, runs the checks, stops the server, removes the
// scratch directory, records the result in the repository (state kind "drill") and reports the
// restore's RTO and RPO. docs/drill.md.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/base/time.h"
#include "common/config/config.h"
#include "common/recovery/target.h"
#include "common/repo/repository.h"

namespace tidemark::ctl {

struct DrillOptions {
  std::optional<std::string> backup;      // --backup
  std::optional<std::string> targetTime;  // --target-time, as given
  std::string scratch;                    // "" = a fresh folder under /var/tmp
  std::vector<std::string> queries;       // --query, else drill.queries
  std::string pgBin;                      // drill.pg-bin
  bool keep = false;                      // --keep
  std::function<bool()> stopRequested;    // SIGINT, SIGTERM
  std::string restoreCommand;             // restore_command for the server
  std::int64_t leaseTimeout = 6 * 3600;   // retention.lease-timeout
  std::int64_t timeoutSeconds = 0;        // --timeout: fail when the target is not reached in time
  // --target-timeline, else drill.target-timeline
  recovery::TimelineChoice targetTimeline;
  // Besides the scratch directory and /dev/shm, what the server's restore_command writes to when
  // the server runs in its read-only namespace: the repository (posix) and the log file's folder.
  std::vector<std::string> writablePaths;
};

// One check run on the restored server.
struct DrillCheck {
  std::string name;       // "connect", "query 1", ...
  std::string statement;  // the SQL
  bool ok = false;
  double seconds = 0;
  int rows = 0;
  std::vector<std::string> firstRow;  // its values as text ("" for NULL)
  std::string error;                  // when not ok
};

struct DrillReport {
  std::string stanza, repository;
  std::string started, finished;  // UTC, ISO 8601
  bool ok = false;
  std::string failedStep;  // "", "plan", "restore", "start", "replay", "query", "stop"
  std::string error;       // why, when not ok
  std::string backup;      // the label
  std::string target;      // "latest" or the target's description
  // The timeline asked for (latest, current or a number), and the one the plan resolved, with its
  // path from the backup's timeline ("1 (until 0/5000158) -> 2"); none when the plan failed.
  std::string targetTimeline = "latest";
  std::optional<std::uint32_t> timeline;
  std::string timelinePath;
  int generation = 0;
  std::string pgBin;
  long serverPid = 0;  // the drill's server, once started (stopped before the report)
  std::string scratch;
  bool kept = false;
  double restoreSeconds = 0, replaySeconds = 0, querySeconds = 0, rtoSeconds = 0;
  std::uint64_t restoredBytes = 0;
  std::optional<double> rpoSeconds;
  std::string rpoBasis;                           // "last-replayed-commit" or "backup-end"
  std::optional<std::string> lastReplayedCommit;  // pg_last_xact_replay_timestamp(), UTC
  std::optional<std::string> replayLsn;
  std::uint64_t segmentsReplayed = 0;
  std::vector<DrillCheck> checks;
  std::vector<std::string> warnings;
  std::string serverLog;              // the last lines of the server's log, when not ok
  std::optional<std::string> record;  // the drill record written in the repository
};

// Runs the drill. Never throws for a failure of the drill itself (it is reported, and recorded);
// throws Error for what keeps the drill from running at all (bad options, a scratch directory
// that is not empty, no server binaries) and Error(Interrupted) on a signal, after stopping the
// server and removing the scratch directory.
DrillReport runDrill(const repo::Repository& repository, const DrillOptions& options);

// The report as JSON (docs/drill.md: stable field names), ending with a newline.
std::string drillJson(const DrillReport& report);
// The report for an operator.
std::string drillText(const DrillReport& report);

// The last drill recorded in the repository (its record's JSON as written), nullopt when none.
struct DrillRecord {
  std::string finished;  // UTC, ISO 8601
  bool ok = false;
  std::string failedStep;
  std::string backup;
  std::optional<double> rtoSeconds, rpoSeconds;
  std::string path;
};
std::optional<DrillRecord> lastDrill(const repo::Repository& repository,
                                     const std::string& stanzaId);

std::vector<OptionSpec> drillOptionSpecs();

// The command: runs the drill, prints the report (text, or JSON with --output json) on stdout.
// Returns 0 when every step passed; throws Error(Unhealthy) naming the failed step otherwise.
int drill(const Config& config, const CommandLine& commandLine,
          const std::function<bool()>& stopRequested);

}  // namespace tidemark::ctl
