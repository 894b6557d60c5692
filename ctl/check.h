// tidemark check: does archiving work, end to end, right now? The configuration, the repository
// (reachable, writable), the stanza (exists, belongs to this cluster), the server's archiving
// settings and pg_stat_archiver, the conninfo role's replication rights, then the proof: a WAL
// switch whose segment must reach the repository and verify; last, WAL the safety valve dropped
// that only a spool on this host records. One line per check; docs/check.md.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/config/config.h"

namespace tidemark::ctl {

// ---- the report ------------------------------------------------------------------------------

enum class CheckStatus {
  Ok,       // passed
  Failed,   // a problem: `fix` says what to do
  Skipped,  // could not run because an earlier check failed (`detail` says which)
  Note,     // not a failure, not a pass: a fact the operator should know (a standby's WAL switch)
};
std::string_view checkStatusName(CheckStatus status);  // "ok", "failed", "skipped", "note"

struct CheckResult {
  std::string name;  // stable, for monitors: "repository", "archive-command", "wal-archived", ...
  CheckStatus status = CheckStatus::Skipped;
  std::string detail;  // what was found (never a secret)
  std::string fix;     // for a failure: what to run or change; "" otherwise
};

struct CheckReport {
  std::string stanza;
  std::string repository;  // where (Storage::describe(), or the configured place when unopened)
  std::vector<CheckResult> checks;  // in the order they are printed
  // SIGINT or SIGTERM ended the wait for the switched segment (wal-archived skipped, saying so).
  bool interrupted = false;

  // No check failed and the proof was not interrupted (skipped checks are always caused by a
  // failed one, by a standby, or by the interruption).
  bool ok() const;
  std::vector<std::string> failedNames() const;
};

// One line per check: "ok       repository: ...", a failure's fix on the same line after "fix:".
std::string renderCheckText(const CheckReport& report);
// {"stanza", "repository", "ok", "checks": [{"name", "status", "ok", "detail", "fix"}]}, ending
// with a newline (docs/check.md). "ok" of a check: true (ok, note), false (failed), null (skipped).
std::string renderCheckJson(const CheckReport& report);

// ---- archive_command ---------------------------------------------------------------------------

// What archive_command runs, as /bin/sh would split it (after PostgreSQL's "%%" -> "%").
struct ArchiveCommandCall {
  bool callsPush = false;         // a word whose file name is tidemark-archive-push
  std::vector<std::string> argv;  // that word and its arguments (redirections left out)
  Environment environment;        // TIDEMARK_* and AWS_* assignments in force for it
  // Why PostgreSQL would not see the push's exit status ("" when it does): the push is not the
  // last command, follows '||' or '|', runs in the background ('&', '&>' in dash), or is an
  // argument of another program ('echo tidemark-archive-push ...').
  std::string hidesStatus;
};

// Splits archive_command like /bin/sh (quotes, backslashes, ; && || | &, redirections, `export
// NAME=VALUE` before it, NAME=VALUE and `env`/`exec` in front of it). Variables are not expanded.
// Throws Error(Config) for an unterminated quote.
ArchiveCommandCall parseArchiveCommand(std::string_view archiveCommand);

// archive_command with the values of secret-looking assignments (NAME containing SECRET, PASSWORD,
// TOKEN or KEY, and conninfo's password=) replaced by "***", shortened to 200 characters.
std::string maskedCommand(std::string_view archiveCommand);

// Where a configuration sends WAL: what must agree between archive_command's configuration and
// the one tidemark check runs with.
struct RepositoryTarget {
  std::string type;      // "posix", "s3"
  std::string path;      // posix: lexically normal, no trailing '/'; s3: the prefix, no '/' around
  std::string bucket;    // s3 only
  std::string endpoint;  // s3 only, no trailing '/'
  std::string stanza;
};
RepositoryTarget repositoryTarget(const Config& config);
// "stanza 'main' in posix:/var/lib/tidemark/repo", "stanza 'main' in s3://bucket/prefix (endpoint)"
std::string describeTarget(const RepositoryTarget& target);
// What differs, one phrase each ("repo.path '/a' (this configuration: '/b')"); empty when none.
std::vector<std::string> targetDifferences(const RepositoryTarget& archived,
                                           const RepositoryTarget& checked);

// The archive-command check of `archiveCommand` (the server's value) against `config`: it must call
// tidemark-archive-push with a configuration (loaded with loadConfig from its flags, its --config
// or TIDEMARK_CONFIG, relative to `dataDirectory` when that is not empty, and its TIDEMARK_*/AWS_*
// assignments) naming the same repository and stanza. Returns Ok or Failed; never throws.
CheckResult checkArchiveCommand(const std::string& archiveCommand, const Config& config,
                                const std::string& dataDirectory = {});

// ---- dropped WAL -------------------------------------------------------------------------------

// The dropped-wal check: WAL the safety valve dropped that only a spool on this host records
// (spool::findHostGaps over the spools of `config` and `dataDirectory`, "" when unknown; the
// cluster's system identifier read from its pg_control): a drop of this stanza that archive-push
// has not recorded in the repository yet, or one left under a former stanza name, or another
// repository's, that no archive-push of this configuration records. `archivesHere`: archive-push
// runs on this server (not a standby with archive_mode 'on'), so it records this stanza's.
// Failed when there is any (each file with its fix) or the spool cannot be read; Ok when none;
// Note when no spool is on this host or this user may not look into part of it. Never throws.
CheckResult checkDroppedWal(const Config& config, const std::string& dataDirectory,
                            bool archivesHere);

// ---- the checks --------------------------------------------------------------------------------

struct CheckOptions {
  std::chrono::seconds timeout{60};  // how long the switched segment may take to arrive
  std::chrono::milliseconds poll{250};
  // SIGINT and SIGTERM during the wait for the switched segment end the wait instead of the
  // process (report.interrupted), so that the report is printed; before and after the wait they
  // end the command as always. Off for callers that handle signals themselves.
  bool interruptibleWait = false;
};

// Runs every check against the repository and the server `config` names, in order, and returns
// the report; a check that cannot run is reported skipped, saying why. Writes only a probe object
// (repo::outsideProbeObject, removed at once) and, on a primary, a WAL switch (and a restore point
// 'tidemark check' when the server is idle). Never throws for what it checks (that is a failed
// line); throws only Error(Interrupted)-like conditions from below it.
CheckReport runChecks(const Config& config, const CheckOptions& options = {});

// The options of `tidemark check`, for its CommandSpec.
std::vector<OptionSpec> checkOptionSpecs();

// The command: runs every check, prints one line each (or --output json) and returns 0 when all
// pass; throws Error(Unhealthy) naming the failed checks when one failed, else Error(Interrupted)
// when a signal ended the wait for the switched segment (after printing the report).
int check(const Config& config, const CommandLine& commandLine);

}  // namespace tidemark::ctl
