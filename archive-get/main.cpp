// tidemark-archive-get WAL_NAME DEST_PATH: restore_command = 'tidemark-archive-get %f %p'.
#include "common/cli/main.h"

#include "archive-get/get.h"

int main(int argc, char** argv) {
  const tidemark::CommandSpec spec{
      .program = "tidemark-archive-get",
      .arguments = "WAL_NAME DEST_PATH",
      .summary =
          "Fetches one WAL file from the repository into DEST_PATH, verified.\n"
          "postgresql.conf: restore_command = 'tidemark-archive-get %f %p'",
      .keysOf = tidemark::kArchiveGet,
      .exitStatuses = {{"0", "the file was fetched, verified and renamed into place"},
                       {"1",
                        "the repository answered and does not hold the file (PostgreSQL: end of "
                        "archive); never for a file tidemark expire deleted (below a low-water "
                        "mark: a failure)"},
                       {"255",
                        "any failure during recovery or by hand: PostgreSQL stops recovery "
                        "instead of promoting early with WAL missing"}},
      .failureStatuses =
          "with standby.signal present, a failure exits with the status of its "
          "cause instead (the standby keeps retrying)",
      .minPositional = 2,
      .maxPositional = 2,
      .calledByPostgres = true,
  };
  return tidemark::runMain(
      spec, argc, argv,
      [](const tidemark::Config& config, const tidemark::CommandLine& cl) {
        auto outcome = tidemark::archive::archiveGet(config, cl.positional[0], cl.positional[1]);
        return outcome == tidemark::archive::GetOutcome::Restored ? 0 : 1;
      },
      [](tidemark::ErrorCode code) { return tidemark::archive::failureStatus(code); });
}
