// tidemark-recover --pgdata DIR [target]: restore to a point in time.
#include "common/cli/main.h"

#include "recover/recover.h"

int main(int argc, char** argv) {
  const tidemark::CommandSpec spec{
      .program = "tidemark-recover",
      .arguments = "--pgdata=DIR [TARGET]",
      .summary =
          "Restores the right base backup into DIR and sets PostgreSQL up to replay the archived "
          "WAL to the target (by default: to the end of the archive). Checks everything first; "
          "--dry-run stops there.",
      .options = tidemark::recover::recoverOptionSpecs(),
      .keysOf = tidemark::kRecover,
      .exitStatuses = {{"0",
                        "the data directory is ready (or, with --dry-run, the plan is possible)"}},
      .failureStatuses =
          "a failure leaves nothing usable written and exits with the status of "
          "its cause (3: a wrong option; 4: a setting given by a TIDEMARK_* "
          "variable, which restore_command would not see; 9: no backup or WAL for "
          "the target, a non-empty directory, a hostile archive)",
      .minPositional = 0,
      .maxPositional = 0,
  };
  // SIGINT and SIGTERM stop the restore cleanly: what was written is removed.
  auto stopRequested = tidemark::stopOnSignals();
  return tidemark::runMain(spec, argc, argv,
                           [&](const tidemark::Config& config, const tidemark::CommandLine& cl) {
                             auto options = tidemark::recover::parseRecoverOptions(cl);
                             tidemark::recover::recover(config, options, stopRequested);
                             return 0;
                           });
}
