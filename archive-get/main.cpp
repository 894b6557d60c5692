// tidemark-archive-get WAL_NAME DEST_PATH: restore_command = 'tidemark-archive-get %f %p'.
#include "common/cli/main.h"

#include "archive-get/get.h"

int main(int argc, char** argv) {
  const tidemark::CommandSpec spec{
      .program = "tidemark-archive-get",
      .arguments = "WAL_NAME DEST_PATH",
      .summary =
          "Fetches one WAL file from the repository into DEST_PATH, verified.\n"
          "Exit 0: restored. Exit 1: the repository does not hold it. Other failures: 255\n"
          "(PostgreSQL stops recovery), or 2..125 when standby.signal is present (it retries).\n"
          "postgresql.conf: restore_command = 'tidemark-archive-get %f %p'",
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
