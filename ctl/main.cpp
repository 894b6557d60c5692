// tidemark COMMAND [OPTIONS]: repository administration (stanza-create, info, check, verify,
// expire, keep, drill, metrics, keygen).
#include "common/cli/main.h"

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/base/version.h"
#include "common/log/log.h"
#include "ctl/check.h"
#include "ctl/drill.h"
#include "ctl/expire.h"
#include "ctl/info.h"
#include "ctl/keygen.h"
#include "ctl/metrics.h"
#include "ctl/stanza_create.h"
#include "ctl/verify.h"

namespace {

struct Command {
  std::string name;
  tidemark::CommandSpec spec;
  tidemark::CommandBody body;
};

std::vector<Command> commands() {
  return {
      {"info",
       {.program = "tidemark info",
        .summary = "Shows what the stanza holds: its backups, the WAL of each timeline (gaps, "
                   ".partial and .history files) and the recoverable window of each timeline.",
        .options = tidemark::ctl::infoOptionSpecs(),
        .keysOf = tidemark::kInfo,
        .exitStatuses = {{"0",
                          "the report was printed (gaps, incomplete backups and timelines "
                          "without a window are reported, not failures)"}},
        .failureStatuses = "when it cannot tell, it exits with the status of the cause (4: the "
                           "stanza has no stanza.json)"},
       tidemark::ctl::info},
      {"stanza-create",
       {.program = "tidemark stanza-create",
        .summary =
            "Creates the stanza for this cluster: reads its identity (pg.conninfo, or --pgdata), "
            "checks that the repository never replaces an object on a write that must not, and "
            "writes stanza.json. Run it once, before archiving starts; again, it only checks "
            "(with encryption, that every metadata file is authenticated).",
        .options = tidemark::ctl::stanzaCreateOptionSpecs(),
        .keysOf = tidemark::kStanzaCreate,
        .exitStatuses = {{"0", "the stanza exists for this cluster (created now, or already)"}},
        .failureStatuses = "a failure exits with the status of its cause: 8 when the stanza "
                           "belongs to another cluster, 11 when the repository replaces objects it "
                           "must not, 6 when (with encryption) metadata is not authenticated"},
       tidemark::ctl::stanzaCreate},
      {"stanza-upgrade",
       {.program = "tidemark stanza-upgrade",
        .summary =
            "Starts a new generation of the stanza after pg_upgrade, for the upgraded cluster "
            "(read through pg.conninfo, or --pgdata), so that archiving resumes. The WAL and "
            "backups of earlier generations stay recoverable (upgrade.md).",
        .options = tidemark::ctl::stanzaUpgradeOptionSpecs(),
        .keysOf = tidemark::kStanzaUpgrade,
        .exitStatuses = {{"0",
                          "the cluster is a generation of the stanza (recorded now, or "
                          "already)"}},
        .failureStatuses = "a failure exits with the status of its cause: 4 no stanza, or a "
                           "cluster older than the current one (version, or initdb time without "
                           "--force); 8 a known cluster with another segment size; 15 a backup or "
                           "expire is running; 7 another writer recorded the generation "
                           "meanwhile"},
       tidemark::ctl::stanzaUpgrade},
      {"check",
       {.program = "tidemark check",
        .summary = "Checks that archiving works, end to end, right now: the configuration, the "
                   "repository, the stanza, the server's archiving settings and rights, then a "
                   "WAL switch whose segment must reach the repository and verify (check.md).",
        .options = tidemark::ctl::checkOptionSpecs(),
        .keysOf = tidemark::kCheck,
        .exitStatuses = {{"0", "every check passed, the proof segment included"},
                         {"16", "a check failed: its line says what and how to fix it"}}},
       tidemark::ctl::check},
      {"verify",
       {.program = "tidemark verify",
        .summary = "Reads the repository back and reports everything that would make a recovery "
                   "fail: damaged objects, backups that disagree with their manifest, gaps in the "
                   "WAL, missing history files (verify.md).",
        .options = tidemark::ctl::verifyOptionSpecs(),
        .keysOf = tidemark::kVerify,
        .exitStatuses = {{"0", "everything verifies"},
                         {"16",
                          "a finding: a damaged or missing object, a backup that disagrees with "
                          "its manifest, a gap, a history problem"}}},
       tidemark::ctl::verify},
      {"expire",
       {.program = "tidemark expire",
        .summary = "Deletes the backups and WAL that the [retention] policy no longer keeps, "
                   "never what a running backup or recovery needs; --dry-run prints what would go "
                   "and why (expire.md).",
        .options = tidemark::ctl::expireOptionSpecs(),
        .keysOf = tidemark::kExpire,
        .exitStatuses = {{"0", "what the policy lets go is gone (or, with --dry-run, printed)"}},
        .failureStatuses = "a failure exits with the status of its cause: 4 no retention "
                           "policy, 5 the repository failed (run again: it finishes), 15 a backup "
                           "is running"},
       tidemark::ctl::expire},
      {"keep",
       {.program = "tidemark keep",
        .arguments = "LABEL",
        .summary = "Marks a backup permanent: every retention rule keeps it, with the WAL that "
                   "makes it consistent; --release undoes it (expire.md).",
        .options = tidemark::ctl::keepOptionSpecs(),
        .keysOf = tidemark::kKeep,
        .minPositional = 1,
        .maxPositional = 1},
       tidemark::ctl::keep},
      {"drill",
       {.program = "tidemark drill",
        .summary =
            "Runs a restore test: restores the newest backup (or --backup, or for "
            "--target-time) into a scratch directory, starts PostgreSQL on it (no archiving, "
            "loopback only), waits for the replay to reach its target, runs the checks, stops "
            "the server, removes the directory, records the result and reports RTO and RPO "
            "(drill.md).",
        .options = tidemark::ctl::drillOptionSpecs(),
        .keysOf = tidemark::kDrill,
        .exitStatuses = {{"0", "every step passed"},
                         {"16", "the drill failed: the report says which step"}}},
       [](const tidemark::Config& config, const tidemark::CommandLine& cl) {
         // SIGINT and SIGTERM stop the drill: its server is stopped, its directory removed.
         return tidemark::ctl::drill(config, cl, tidemark::stopOnSignals());
       }},
      {"metrics",
       {.program = "tidemark metrics",
        .summary =
            "Prints the stanza's metrics in the Prometheus text format (or writes them atomically "
            "to --textfile for node_exporter): archiving, backups, recoverable windows, the last "
            "verify and drill (metrics.md).",
        .options = tidemark::ctl::metricsOptionSpecs(),
        .keysOf = tidemark::kMetrics},
       tidemark::ctl::metrics},
      {"keygen",
       {.program = "tidemark keygen",
        .arguments = "PATH",
        .summary =
            "Makes a new random 32-byte master key for encryption at rest in PATH (mode 0600; an "
            "existing file is never replaced) and prints its key id.",
        .keysOf = 0,
        .exitStatuses = {{"0", "the key file was written (mode 0600) and its key id printed"},
                         {"9", "the file exists (never replaced)"},
                         {"10", "it could not be written"}},
        .minPositional = 1,
        .maxPositional = 1,
        .readsConfig = false},
       tidemark::ctl::keygen},
  };
}

std::string commandNames(const std::vector<Command>& list) {
  std::string out;
  for (const auto& c : list)
    out += (out.empty() ? "" : ", ") + c.name;
  return out;
}

tidemark::MultiCommandSpec programSpec(const std::vector<Command>& list) {
  tidemark::MultiCommandSpec spec{
      .main = {.program = "tidemark",
               .arguments = "[GLOBAL OPTIONS] COMMAND [OPTIONS]",
               .summary = "Administers the repository: creates and upgrades stanzas, reports what "
                          "it holds, checks archiving, verifies, expires, runs restore drills and "
                          "prints metrics."}};
  for (const auto& c : list)
    spec.commands.push_back(c.spec);
  return spec;
}

int usage(const tidemark::Error& error) {
  tidemark::log::setup("tidemark");
  tidemark::log::reportError(error);
  return tidemark::exitStatus(error.code());
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<Command> list = commands();
  std::vector<std::string> names;
  for (const auto& c : list)
    names.push_back(c.name);
  if (argc == 2 && std::strcmp(argv[1], "--help-man") == 0) {
    std::fputs(tidemark::manPage(programSpec(list)).c_str(), stdout);
    return 0;
  }
  tidemark::CommandCall call;
  try {
    call = tidemark::splitCommand(argc, argv);
  } catch (const tidemark::Error& e) {
    return usage(e);
  }
  // "tidemark help COMMAND" is "tidemark COMMAND --help".
  if (call.command == "help" && call.args.size() > 1 && call.args.back().rfind('-', 0) != 0) {
    call.command = call.args.back();
    call.args.back() = "--help";
  }
  if (call.command.empty() || call.command == "help") {
    if (call.help || call.command == "help") {
      std::fputs(tidemark::commandsHelpText(programSpec(list)).c_str(), stdout);
      return 0;
    }
    if (call.version) {
      std::printf("tidemark %s\n", tidemark::kVersion);
      return 0;
    }
    return usage(tidemark::Error(
        tidemark::ErrorCode::Usage,
        fmt::format("missing command: tidemark COMMAND (commands: {})", commandNames(list)),
        "run 'tidemark --help' for usage"));
  }
  std::vector<const char*> args;
  for (const auto& a : call.args)
    args.push_back(a.c_str());
  for (const auto& c : list)
    if (c.name == call.command)
      return tidemark::runMain(c.spec, int(args.size()), args.data(), c.body);
  std::string hint = tidemark::didYouMean(call.command, names);
  return usage(tidemark::Error(
      tidemark::ErrorCode::Usage,
      fmt::format("unknown command '{}' (commands: {})", call.command, commandNames(list)),
      hint.empty() ? "run 'tidemark --help' for usage" : hint));
}
