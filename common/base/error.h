// The one error type of tidemark: a code from a single table, a message and an optional hint.
//
// Library code throws Error; main() catches it and maps the code to an exit status. Expected
// negatives ("not found") are return values, never errors. Message style: lowercase, no
// trailing period, names quoted 'like this'; the hint says what to do.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tidemark {

// X(name, exit status, what it means). Exit statuses stay within 3..99: PostgreSQL treats a
// restore_command status above 125 as fatal and retries archive_command on anything non-zero;
// 1 is reserved for archive-get's "the repository does not hold that file". Statuses are a
// documented contract: --help and the man pages print this table, README.md ("Exit codes")
// repeats it (a unit test compares them): never renumber, only add.
#define TIDEMARK_ERRORS(X)                                                                   \
  X(Usage, 3, "the command line is wrong")                                                   \
  X(Config, 4, "the configuration is invalid")                                               \
  X(Storage, 5, "the repository could not be read or written")                               \
  X(Corrupt, 6, "a stored object failed verification")                                       \
  X(Conflict, 7, "the repository already holds different content under that name")           \
  X(ForeignCluster, 8, "the file belongs to a different PostgreSQL cluster than the stanza") \
  X(InvalidInput, 9, "an input file is not what it claims to be")                            \
  X(LocalIo, 10, "a local file could not be read or written")                                \
  X(Unsupported, 11, "the request needs a feature this build or server lacks")               \
  X(Database, 12, "PostgreSQL could not be reached or refused the request")                  \
  X(Timeout, 13, "something did not happen in the time allowed")                             \
  X(Interrupted, 14, "stopped by a signal (SIGINT, SIGTERM)")                                \
  X(Locked, 15, "another process holds the lock this command needs")                         \
  X(Unhealthy, 16, "verify, check or drill found a problem: the report names each")          \
  X(Internal, 99, "an internal error (a bug): please report it")

enum class ErrorCode {
#define TIDEMARK_ERROR_ENUM(name, status, what) name,
  TIDEMARK_ERRORS(TIDEMARK_ERROR_ENUM)
#undef TIDEMARK_ERROR_ENUM
};

// The process exit status for a code (2..125).
int exitStatus(ErrorCode code);
// Every code, in the order of the table (for --help and the man pages).
const std::vector<ErrorCode>& allErrorCodes();
// Stable lowercase name of a code ("storage", "corrupt", ...), used in JSON and tests.
std::string_view errorName(ErrorCode code);
// One line saying what the code means.
std::string_view errorMeaning(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string message, std::string hint = {})
      : std::runtime_error(std::move(message)), code_(code), hint_(std::move(hint)) {}

  ErrorCode code() const noexcept { return code_; }
  // What to do about it; empty when there is nothing useful to say.
  const std::string& hint() const noexcept { return hint_; }
  // Storage errors that may go away on their own (a timeout, a reset, a 503) are transient;
  // callers that can wait retry them.
  bool transient() const noexcept { return transient_; }
  Error& setTransient(bool value = true) noexcept {
    transient_ = value;
    return *this;
  }
  Error& setHint(std::string hint) {
    hint_ = std::move(hint);
    return *this;
  }
  // The errno of the failed system call behind the error (systemError), or 0: lets a caller that
  // knows more (the posix driver, about its repository) add a hint for EACCES.
  int systemErrno() const noexcept { return errno_; }
  Error& setSystemErrno(int err) noexcept {
    errno_ = err;
    return *this;
  }

 private:
  ErrorCode code_;
  std::string hint_;
  bool transient_ = false;
  int errno_ = 0;
};

// Builds an Error with a formatted message: throw error(ErrorCode::Storage, "cannot open '{}'", p);
template <typename... Args>
Error error(ErrorCode code, fmt::format_string<Args...> format, Args&&... args) {
  return Error(code, fmt::format(format, std::forward<Args>(args)...));
}

// The text of errno value `err`, for messages ("No such file or directory").
std::string errnoText(int err);

// Whether a failed system call may succeed if tried again (network filesystems time out, go
// stale or fail with EIO, and recover): EIO, ETIMEDOUT, ESTALE, EAGAIN, EINTR.
bool transientErrno(int err);

// An Error for a failed system call: "<message>: <strerror(err)>", transient when the errno is.
template <typename... Args>
Error systemError(ErrorCode code, int err, fmt::format_string<Args...> format, Args&&... args) {
  Error e(code, fmt::format(format, std::forward<Args>(args)...) + ": " + errnoText(err));
  e.setTransient(transientErrno(err));
  e.setSystemErrno(err);
  return e;
}

}  // namespace tidemark
