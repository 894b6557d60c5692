// Unit tests of common/cli/main.h: the frame of every binary. What it promises is about how the
// process ends, so each case runs in a child process and looks at its exit status.
#include "common/cli/main.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <thread>

#include "common/base/process.h"
#include "support/check.h"
#include "support/segment.h"

using namespace tidemark;

namespace {

// Runs runMain(spec, body, statusFor) in a child process, its standard error going to `log`
// (default: nowhere); its wait status.
int statusOfChild(const CommandBody& body,
                  const std::function<int(ErrorCode)>& statusFor = exitStatus,
                  const CommandSpec& spec = {.program = "tidemark-test", .readsConfig = false},
                  std::vector<const char*> argv = {"tidemark-test"},
                  const std::string& log = "/dev/null") {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) ::dup2(fd, 2);
    std::_Exit(runMain(spec, int(argv.size()), argv.data(), body, statusFor));
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
  SUBCASE("a secret in a configuration file others may read: refused, unless PostgreSQL calls") {
    test::TempDir dir;
    const std::string config = dir / "tidemark.toml", log = dir / "log";
    test::writeFile(config, "[pg]\nconninfo = 'host=db password=hunter2'\n");
    REQUIRE(::chmod(config.c_str(), 0644) == 0);
    auto ran = [](const Config&, const CommandLine&) { return 7; };
    CommandSpec admin{.program = "tidemark-test"};
    int refused =
        statusOfChild(ran, exitStatus, admin, {"tidemark-test", "--config", config.c_str()}, log);
    REQUIRE(WIFEXITED(refused));
    CHECK(WEXITSTATUS(refused) == exitStatus(ErrorCode::Config));
    CommandSpec archiver{.program = "tidemark-test", .calledByPostgres = true};
    int logged = statusOfChild(ran, exitStatus, archiver,
                               {"tidemark-test", "--config", config.c_str()}, log);
    REQUIRE(WIFEXITED(logged));
    CHECK(WEXITSTATUS(logged) == 7);
    std::string text = test::readText(log);
    const std::string message = "ERROR: configuration file '" + config +
                                "' holds pg.conninfo (its password) and its group or others may "
                                "read it (mode 0644)";
    auto first = text.find(message);
    REQUIRE(first != std::string::npos);
    CHECK(text.find(message, first + 1) != std::string::npos);  // logged by both
    CHECK(text.find("hunter2") == std::string::npos);
    REQUIRE(::chmod(config.c_str(), 0600) == 0);
    int privateFile =
        statusOfChild(ran, exitStatus, admin, {"tidemark-test", "--config", config.c_str()});
    REQUIRE(WIFEXITED(privateFile));
    CHECK(WEXITSTATUS(privateFile) == 7);
  }
  SUBCASE("an Error is its code's status") {
    int status = statusOfChild([](const Config&, const CommandLine&) -> int {
      throw Error(ErrorCode::Conflict, "different content");
    });
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == exitStatus(ErrorCode::Conflict));
  }
}

TEST_CASE("Ctrl-C stops a command that stops on signals while a program it waits for runs") {
  // The program has a process group of its own: the terminal's SIGINT reaches tidemark only.
  const auto started = std::chrono::steady_clock::now();
  int status = statusOfChild([](const Config&, const CommandLine&) {
    const auto stopRequested = stopOnSignals();
    std::jthread signaller([] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      ::kill(::getpid(), SIGINT);
    });
    runChild({"/bin/sleep", "30"}, {.timeout = std::chrono::seconds(60)},
             [](std::string_view) { return true; });
    return stopRequested() ? 0 : 1;
  });
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == exitStatus(ErrorCode::Interrupted));
  CHECK(test::secondsSince(started) < 20);
}

TEST_CASE("runMain opens closed standard descriptors on /dev/null: no file opened takes them") {
  // Started with them closed (a cron job's '2>&-'), the first file opened would take number 0, 1
  // or 2, and the log (standard error) would be written into it.
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(0);
    ::close(1);
    ::close(2);
    CommandSpec spec{.program = "tidemark-test", .readsConfig = false};
    const char* argv[] = {"tidemark-test"};
    std::_Exit(runMain(spec, 1, argv, [](const Config&, const CommandLine&) {
      int fd = ::open("/dev/null", O_RDONLY);
      return fd > 2 ? 7 : 50 + fd;
    }));
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 7);
}
