// Unit tests of common/cli/main.h: the frame of every binary. What it promises is about how the
// process ends, so each case runs in a child process and looks at its exit status.
#include "common/cli/main.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>
#include <thread>

using namespace tidemark;

namespace {

// Runs runMain(spec, body, statusFor) in a child process; its wait status.
int statusOfChild(const CommandBody& body,
                  const std::function<int(ErrorCode)>& statusFor = exitStatus) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const CommandSpec spec{.program = "tidemark-test", .readsConfig = false};
    const char* argv[] = {"tidemark-test"};
    int null = ::open("/dev/null", O_WRONLY);  // the log lines are not this test's output
    if (null >= 0) ::dup2(null, 2);
    std::_Exit(runMain(spec, 1, argv, body, statusFor));
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return status;
}

}  // namespace

TEST_CASE("runMain ends the process with a status of its own, never by a signal") {
  SUBCASE("an exception that escapes a thread ends with the internal error's status, not SIGABRT") {
    int status = statusOfChild([](const Config&, const CommandLine&) {
      std::thread([] { throw std::runtime_error("escaped"); }).join();
      return 0;
    });
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == exitStatus(ErrorCode::Internal));
  }
  SUBCASE("with the command's own mapping (archive-get in recovery: 255)") {
    int status = statusOfChild(
        [](const Config&, const CommandLine&) {
          std::thread([] { throw std::runtime_error("escaped"); }).join();
          return 0;
        },
        [](ErrorCode) { return 255; });
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 255);
  }
  SUBCASE("a write to a pipe nobody reads fails with EPIPE instead of killing the process") {
    int status = statusOfChild([](const Config&, const CommandLine&) {
      int fds[2];
      if (::pipe(fds) != 0) return 50;
      ::close(fds[0]);
      return ::write(fds[1], "x", 1) < 0 && errno == EPIPE ? 7 : 51;
    });
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 7);
  }
  SUBCASE("an Error is its code's status") {
    int status = statusOfChild([](const Config&, const CommandLine&) -> int {
      throw Error(ErrorCode::Conflict, "different content");
    });
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == exitStatus(ErrorCode::Conflict));
  }
}
