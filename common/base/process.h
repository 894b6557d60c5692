// Running a program tidemark waits for and reads (pg_waldump, pg_config, a PostgreSQL program's
// --version, encryption.key-command): no shell of tidemark's own, a time limit that holds whatever
// the program does, and nothing of tidemark's handed to it but what it is given.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.h"

namespace tidemark {

// Whether `path` is a file a program can be run from: regular and executable (a directory of
// that name is not).
bool isRunnable(const std::string& path);
// The first runnable file `name` in the directories of tidemark's PATH ("/usr/local/bin:/usr/bin:
// /bin" when unset); nullopt when none holds one. Entries that are not absolute paths (the empty
// one: the working directory, for the shell) are passed over: what tidemark runs, or writes into
// restore_command, never depends on the directory it was started in.
std::optional<std::string> findInPath(const std::string& name);

// A stop signal (SIGINT, SIGTERM) a command that stops cleanly has caught: cli's stopOnSignals
// notes it from its handler (async-signal-safe), and runChild waits for no program past it.
// noteStopSignal(0) forgets it (tests).
void noteStopSignal(int signal) noexcept;
// The stop signal noted, 0 when none.
int stopSignalCaught() noexcept;

struct ChildOptions {
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};
  // Its standard error: tidemark's own, /dev/null, or merged into the output read.
  enum class Errors { Keep, Discard, Merge } errors = Errors::Discard;
  // Its environment ("NAME=value" each); nullopt: tidemark's own.
  std::optional<std::vector<std::string>> environment;
  // The code of the Error thrown when it cannot be started, and what that error calls it ("":
  // args[0], quoted).
  ErrorCode failure = ErrorCode::LocalIo;
  std::string name;
  // How long a program killed before its end (a timeout, a stop signal, the caller done) and what
  // it started have between SIGTERM and SIGKILL to clean up: a key command removing what it wrote.
  std::chrono::milliseconds termGrace{std::chrono::seconds(2)};
};

// How it ended.
struct ChildEnd {
  int status = 0;         // waitpid's status (exit status 127: it could not be run)
  bool timedOut = false;  // still running at the timeout: killed
  bool stopped = false;   // the caller had what it needed before the end: killed
};

// Runs `args` and hands its standard output to `onOutput` piece by piece as it comes (return false
// to stop reading: the program is then killed). args[0] is a path, or a name looked up with
// findInPath (a script without "#!" found so runs through /bin/sh, as the shell would run it). The
// program gets /dev/null as standard input, no other descriptor of tidemark's than 0 to 2, the
// default signal dispositions and no blocked signal, and a process group of its own: at the
// timeout, or when stopped, the whole group is killed, and the timeout holds until the program has
// ended, not only until it closes its output. The buffer the output is read into is wiped after
// each piece (a key command prints a secret). A name found nowhere ends with status 127 without
// running anything. Throws Error(options.failure) when it cannot be started or its end cannot be
// learned, and Error(Interrupted) once a stop signal is noted (within a tenth of a second), the
// group killed: Ctrl-C at a terminal reaches tidemark, not the program in its group of its own.
// Killing the group is SIGTERM (and SIGCONT, for a stopped program), then SIGKILL once nothing in
// the group runs any more (the program and what it started: a shell's command may outlive the
// shell while it cleans up) or options.termGrace has passed (what ignores SIGTERM gets the
// SIGKILL). A program no longer ours to wait for (reaped elsewhere: SIGCHLD ignored) gets no
// signal, its number possibly another's. The program is killed (SIGKILL, at once) when tidemark
// dies, by kill -9 too.
ChildEnd runChild(std::vector<std::string> args, const ChildOptions& options,
                  const std::function<bool(std::string_view)>& onOutput);

// Cuts output into lines (without their '\n') for `onLine` (return false to stop): the pieces
// runChild hands over go to feed(), then finish() gives the last line if it has no '\n'. A line
// longer than `maxLine` is cut to its first `maxLine` bytes, so that no output holds more memory
// than that.
class LineSplitter {
 public:
  explicit LineSplitter(std::function<bool(std::string_view)> onLine,
                        std::size_t maxLine = std::size_t(1) << 20)
      : onLine_(std::move(onLine)), maxLine_(maxLine) {}
  bool feed(std::string_view piece);
  bool finish();

 private:
  std::function<bool(std::string_view)> onLine_;
  std::size_t maxLine_;
  std::string pending_;
};

}  // namespace tidemark
