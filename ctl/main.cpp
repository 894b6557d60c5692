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
                   ".partial and\n"
                   ".history files) and the recoverable window of each timeline.",
        .options = tidemark::ctl::infoOptionSpecs()},
       [](const tidemark::Config& config, const tidemark::CommandLine& cl) {
         return tidemark::ctl::info(config, cl);
       }},
      {"stanza-create",
       {.program = "tidemark stanza-create",
        .summary =
            "Creates the stanza for this cluster: reads its identity (pg.conninfo, or --pgdata),\n"
            "checks that the repository never replaces an object on a write that must not,\n"
            "and writes stanza.json. Run it once, before archiving starts; again, it only checks\n"
            "(with encryption, that every metadata file is authenticated).",
        .options = tidemark::ctl::stanzaCreateOptionSpecs()},
       [](const tidemark::Config& config, const tidemark::CommandLine& cl) {
         return tidemark::ctl::stanzaCreate(config, cl);
       }},
      {"stanza-upgrade",
       {.program = "tidemark stanza-upgrade",
        .summary =
            "After pg_upgrade: starts a new generation of the stanza for the upgraded cluster\n"
            "(read through pg.conninfo, or --pgdata), so that archiving resumes. The WAL and\n"
            "backups of earlier generations stay recoverable (docs/upgrade.md).",
        .options = tidemark::ctl::stanzaUpgradeOptionSpecs()},
       [](const tidemark::Config& config, const tidemark::CommandLine& cl) {
         return tidemark::ctl::stanzaUpgrade(config, cl);
       }},
      {"check",
       {.program = "tidemark check",
        .summary = "Checks that archiving works, end to end, right now: the configuration, the "
                   "repository,\n"
                   "the stanza, the server's archiving settings and rights, then a WAL switch "
                   "whose segment\n"
                   "must reach the repository and verify (docs/check.md).",
        .options = tidemark::ctl::checkOptionSpecs()},
       [](const tidemark::Config& config, const tidemark::CommandLine& cl) {
         return tidemark::ctl::check(config, cl);
       }},
      {"verify",
       {.program = "tidemark verify",
        .summary = "Reads the repository back and reports everything that would make a recovery "
                   "fail: damaged\n"
                   "objects, backups that disagree with their manifest, gaps in the WAL, missing "
                   "history files\n"
                   "(docs/verify.md).",
        .options = tidemark::ctl::verifyOptionSpecs()},
       [](const tidemark::Config& config, const tidemark::CommandLine& cl) {
         return tidemark::ctl::verify(config, cl);
       }},
      {"expire",
       {.program = "tidemark expire",
        .summary = "Deletes the backups and WAL that the [retention] policy no longer keeps, "
                   "never what a\n"
                   "running backup or recovery needs; --dry-run prints what would go and why "
                   "(docs/expire.md).",
        .options = tidemark::ctl::expireOptionSpecs()},
       [](const tidemark::Config& config, const tidemark::CommandLine& cl) {
         return tidemark::ctl::expire(config, cl);
       }},
      {"keep",
       {.program = "tidemark keep",
        .arguments = "LABEL",
        .summary = "Marks a backup permanent: every retention rule keeps it, with the WAL that "
                   "makes it\n"
                   "consistent; --release undoes it (docs/expire.md).",
        .options = tidemark::ctl::keepOptionSpecs(),
        .minPositional = 1,
        .maxPositional = 1},
       [](const tidemark::Config& config, const tidemark::CommandLine& cl) {
         return tidemark::ctl::keep(config, cl);
       }},
      {"drill",
       {.program = "tidemark drill",
        .summary =
            "A restore test: restores the newest backup (or --backup, or for --target-time) into "
            "a\n"
            "scratch directory, starts PostgreSQL on it (no archiving, loopback only), waits for\n"
            "the replay to reach its target, runs the checks, stops the server, removes the\n"
            "directory, records the result and reports RTO and RPO (docs/drill.md).",
        .options = tidemark::ctl::drillOptionSpecs()},
       [](const tidemark::Config& config, const tidemark::CommandLine& cl) {
         // SIGINT and SIGTERM stop the drill: its server is stopped, its directory removed.
         return tidemark::ctl::drill(config, cl, tidemark::stopOnSignals());
       }},
      {"metrics",
       {.program = "tidemark metrics",
        .summary =
            "Prints the stanza's metrics in the Prometheus text format (or writes them atomically\n"
            "to --textfile for node_exporter): archiving, backups, recoverable windows, the last\n"
            "verify and drill (docs/metrics.md).",
        .options = tidemark::ctl::metricsOptionSpecs()},
       [](const tidemark::Config& config, const tidemark::CommandLine& cl) {
         return tidemark::ctl::metrics(config, cl);
       }},
      {"keygen",
       {.program = "tidemark keygen",
        .arguments = "PATH",
        .summary =
            "Makes a new random 32-byte master key for encryption at rest in PATH (mode 0600; an\n"
            "existing file is never replaced) and prints its key id.",
        .minPositional = 1,
        .maxPositional = 1,
        .readsConfig = false},
       [](const tidemark::Config& config, const tidemark::CommandLine& cl) {
         return tidemark::ctl::keygen(config, cl);
       }},
  };
}

std::string commandNames(const std::vector<Command>& list) {
  std::string out;
  for (const auto& c : list)
    out += (out.empty() ? "" : ", ") + c.name;
  return out;
}

std::string overview(const std::vector<Command>& list) {
  std::string text =
      "usage: tidemark COMMAND [OPTIONS]\n\nRepository administration.\n\ncommands:\n";
  for (const auto& c : list) {
    std::string summary = c.spec.summary.substr(0, c.spec.summary.find('\n'));
    text += "  " + c.name + std::string(c.name.size() < 15 ? 15 - c.name.size() : 1, ' ') +
            summary + "\n";
  }
  text += "\nrun 'tidemark COMMAND --help' for a command's options and the configuration flags\n";
  return text;
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
  if (argc < 2)
    return usage(tidemark::Error(
        tidemark::ErrorCode::Usage,
        fmt::format("missing command: tidemark COMMAND (commands: {})", commandNames(list)),
        "run 'tidemark --help' for usage"));
  std::string first = argv[1];
  if (first == "--help" || first == "-h" || first == "help") {
    std::fputs(overview(list).c_str(), stdout);
    return 0;
  }
  if (first == "--version") {
    std::printf("tidemark %s\n", tidemark::kVersion);
    return 0;
  }
  for (const auto& c : list)
    if (c.name == first) return tidemark::runMain(c.spec, argc - 1, argv + 1, c.body);
  std::string hint = tidemark::didYouMean(first, names);
  if (first.rfind("-", 0) == 0)
    return usage(tidemark::Error(
        tidemark::ErrorCode::Usage,
        fmt::format("the command comes first: tidemark COMMAND [OPTIONS] (commands: {})",
                    commandNames(list)),
        "for example: tidemark info --output=json"));
  return usage(
      tidemark::Error(tidemark::ErrorCode::Usage,
                      fmt::format("unknown command '{}' (commands: {})", first, commandNames(list)),
                      hint.empty() ? "run 'tidemark --help' for usage" : hint));
}
