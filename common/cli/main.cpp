// The shared main() frame.
#include "common/cli/main.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "common/base/process.h"
#include "common/base/version.h"
#include "common/log/log.h"

namespace tidemark {

namespace {

int terminateStatus = 99;

// std::terminate's end: one line in the log, and the command's failure status.
[[noreturn]] void onTerminate() {
  std::string what = "no exception";
  if (auto current = std::current_exception()) {
    try {
      std::rethrow_exception(current);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
      what = "an exception of unknown type";
    }
  }
  spdlog::critical(
      "internal error: the process was terminated ({}); this is a bug in tidemark: please report "
      "it",
      what);
  spdlog::shutdown();
  std::_Exit(terminateStatus);
}

// Opens descriptors 0, 1 and 2 on /dev/null where they are closed: a binary started without them (a
// cron job's '2>&-') would give their numbers to the first files it opens, and its log (standard
// error) or a library's message would be written into a repository object.
// Three fcntl calls when they are open, as they nearly always are (archive-push runs per WAL file).
void openStandardDescriptors() {
  for (int fd = 0; fd <= 2; ++fd)
    if (::fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
      // The lowest free number: this one, the ones below are open by now.
      if (::open("/dev/null", O_RDWR) < 0) return;
    }
}

}  // namespace

int runMain(const CommandSpec& spec, int argc, const char* const* argv, const CommandBody& body,
            const std::function<int(ErrorCode)>& statusFor) {
  openStandardDescriptors();
  log::setup(spec.program);
  ::signal(SIGPIPE, SIG_IGN);
  // Started with SIGCHLD ignored (a parent's choice that exec keeps), the programs tidemark runs
  // would be reaped unseen and their exit statuses lost (runChild).
  ::signal(SIGCHLD, SIG_DFL);
  terminateStatus = statusFor(ErrorCode::Internal);
  std::set_terminate(onTerminate);
  try {
    CommandLine commandLine = parseCommandLine(spec, argc, argv);
    if (commandLine.helpMan) {
      std::fputs(manPage(spec).c_str(), stdout);
      return 0;
    }
    if (commandLine.help) {
      std::fputs(helpText(spec).c_str(), stdout);
      return 0;
    }
    if (commandLine.version) {
      std::printf("%s %s\n", spec.program.c_str(), kVersion);
      return 0;
    }
    Config config;
    if (spec.readsConfig) {
      config = loadConfig(commandLine, processEnvironment());
      log::configure(config);
      if (config.exposedSecret) {
        Error exposed = exposedSecretError(*config.exposedSecret);
        // Refusing in archive_command would stop archiving and fill pg_wal: a worse outage.
        if (!spec.calledByPostgres) throw exposed;
        log::reportError(exposed);
      }
    }
    return body(config, commandLine);
  } catch (const Error& e) {
    log::reportError(e);
    return statusFor(e.code());
  } catch (const std::exception& e) {
    Error internal(ErrorCode::Internal, fmt::format("unexpected failure: {}", e.what()),
                   "this is a bug in tidemark: please report it with the log lines above");
    log::reportError(internal);
    return statusFor(ErrorCode::Internal);
  }
}

namespace {
void onStopSignal(int signal) {
  noteStopSignal(signal);
}
}  // namespace

std::function<bool()> stopOnSignals() {
  struct sigaction action {};
  action.sa_handler = onStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  return [] { return stopSignalCaught() != 0; };
}

}  // namespace tidemark
