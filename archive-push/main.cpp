// tidemark-archive-push WAL_PATH: archive_command = 'tidemark-archive-push %p'.
#include "common/cli/main.h"

#include "archive-push/push.h"

int main(int argc, char** argv) {
  const tidemark::CommandSpec spec{
      .program = "tidemark-archive-push",
      .arguments = "WAL_PATH",
      .summary =
          "Stores one WAL file in the repository; exits 0 only once it is durable there.\n"
          "postgresql.conf: archive_command = 'tidemark-archive-push %p'",
      .keysOf = tidemark::kArchivePush,
      .exitStatuses = {{"0",
                        "the file is durable in the repository (or was already there with the "
                        "same SHA-256)"}},
      .failureStatuses =
          "a failure (PostgreSQL keeps the file and retries) exits with the status "
          "of its cause, never above 125",
      .minPositional = 1,
      .maxPositional = 1,
      .calledByPostgres = true,
  };
  return tidemark::runMain(spec, argc, argv,
                           [](const tidemark::Config& config, const tidemark::CommandLine& cl) {
                             tidemark::archive::archivePush(config, cl.positional[0]);
                             return 0;
                           });
}
