// tidemark-basebackup: take a base backup into the repository (cron, a systemd timer, by hand).
#include "common/cli/main.h"

#include "basebackup/basebackup.h"

int main(int argc, char** argv) {
  const tidemark::CommandSpec spec{
      .program = "tidemark-basebackup",
      .arguments = "",
      .summary =
          "Takes a base backup over the replication protocol into the repository. The backup is "
          "complete (and offered for recovery) only once the archive holds every WAL file it "
          "needs.",
      .keysOf = tidemark::kBasebackup,
      .exitStatuses = {{"0", "the backup is complete: its backup.json is written"}},
      .failureStatuses = "a failure records nothing and exits with the status of its cause",
      .minPositional = 0,
      .maxPositional = 0,
  };
  // SIGINT and SIGTERM stop the backup cleanly: what was stored is removed, nothing is recorded.
  auto stopRequested = tidemark::stopOnSignals();
  return tidemark::runMain(spec, argc, argv,
                           [&](const tidemark::Config& config, const tidemark::CommandLine&) {
                             tidemark::backup::basebackup(config, stopRequested);
                             return 0;
                           });
}
