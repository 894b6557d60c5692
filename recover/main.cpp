// tidemark-recover --pgdata DIR [target]: restore to a point in time.
#include <signal.h>

#include "common/main.h"
#include "recover/recover.h"

namespace {
volatile sig_atomic_t stopSignal = 0;
void onSignal(int signal) { stopSignal = signal; }
}  // namespace

int main(int argc, char** argv) {
  const tidemark::CommandSpec spec{
      .program = "tidemark-recover",
      .arguments = "--pgdata=DIR [TARGET]",
      .summary = "Restores the right base backup into DIR and sets PostgreSQL up to replay the archived WAL\n"
                 "to the target (by default: to the end of the archive). Checks everything first; --dry-run\n"
                 "stops there.",
      .options = tidemark::recover::recoverOptionSpecs(),
      .minPositional = 0,
      .maxPositional = 0,
  };
  struct sigaction action {};
  action.sa_handler = onSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  return tidemark::runMain(spec, argc, argv, [](const tidemark::Config& config, const tidemark::CommandLine& cl) {
    auto options = tidemark::recover::parseRecoverOptions(cl);
    tidemark::recover::recover(config, cl, options, [] { return stopSignal != 0; });
    return 0;
  });
}
