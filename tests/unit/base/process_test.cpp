// Unit tests of common/base/process.h: running a program tidemark waits for, whatever it does.
#include "common/base/process.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "support/check.h"
#include "support/segment.h"

using namespace tidemark;
using std::chrono::milliseconds;

namespace {

// What `args` prints (standard output), and how it ended.
struct Output {
  std::string text;
  ChildEnd end;
};
Output run(std::vector<std::string> args, ChildOptions options = {}) {
  Output out;
  out.end = runChild(std::move(args), options, [&](std::string_view piece) {
    out.text.append(piece);
    return true;
  });
  return out;
}

int exitStatus(const ChildEnd& end) {
  return WIFEXITED(end.status) ? WEXITSTATUS(end.status) : -1;
}

void makeScript(const std::string& path, const std::string& text) {
  test::writeFile(path, text);
  REQUIRE(::chmod(path.c_str(), 0755) == 0);
}

// Whether process `pid` is gone (or a zombie nobody has reaped yet: it runs no more).
bool gone(pid_t pid) {
  const std::string stat = test::readText("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  return stat.empty() || (close != std::string::npos && stat.substr(close + 2, 1) == "Z");
}

// Whether process `pid` is gone within 20 s.
bool goesAway(pid_t pid) {
  const auto started = std::chrono::steady_clock::now();
  while (!gone(pid) && test::secondsSince(started) < 20)
    std::this_thread::sleep_for(milliseconds(10));
  return gone(pid);
}

// A thread that notes `signal` once `ready` is set (or after 20 s), as a handler running on
// another thread would.
std::jthread noteWhenSet(const std::atomic<bool>& ready, int signal) {
  return std::jthread([&ready, signal, started = std::chrono::steady_clock::now()] {
    while (!ready && test::secondsSince(started) < 20)
      std::this_thread::sleep_for(milliseconds(10));
    noteStopSignal(signal);
  });
}

}  // namespace

TEST_CASE("runChild hands over what a program prints and how it ended") {
  auto out = run({"/bin/sh", "-c", "echo hello; echo oops >&2; exit 3"});
  CHECK(out.text == "hello\n");
  CHECK(exitStatus(out.end) == 3);
  CHECK_FALSE(out.end.timedOut);
  CHECK_FALSE(out.end.stopped);
  // Standard error merged, or left out.
  CHECK(run({"/bin/sh", "-c", "echo oops >&2"}, {.errors = ChildOptions::Errors::Merge}).text ==
        "oops\n");
  // The environment given, and only that.
  CHECK(run({"/usr/bin/env"}, {.environment = std::vector<std::string>{"ONLY=this"}}).text ==
        "ONLY=this\n");
  // Killed by a signal: its status says so.
  auto killed = run({"/bin/sh", "-c", "kill -9 $$"});
  CHECK(WIFSIGNALED(killed.end.status));
}

TEST_CASE(
    "runChild looks a name up in PATH's absolute directories, and runs nothing it did not find") {
  test::TempDir first, second, here;
  // A directory of that name first in PATH is passed over; a script without "#!" runs through sh.
  REQUIRE(::mkdir((first / "tool").c_str(), 0755) == 0);
  makeScript(second / "tool", "echo found \"$1\"\n");
  {
    test::ScopedEnv path("PATH", first.path() + ":" + second.path());
    auto out = run({"tool", "it"});
    CHECK(out.text == "found it\n");
    CHECK(exitStatus(out.end) == 0);
  }
  // A program the kernel refuses (a NUL in its start: another architecture, cut short) is not
  // read by the shell as a script; nor is a script without "#!" given by its path.
  const std::string elf(
      "\x7f"
      "ELF\0\0\n",
      7);
  makeScript(second / "binary", elf + "/usr/bin/touch " + (second / "ran") + "\n");
  makeScript(second / "script", "/usr/bin/touch " + (second / "ran") + "\n");
  {
    test::ScopedEnv path("PATH", second.path());
    CHECK(exitStatus(run({"binary"}).end) == 127);
    CHECK(exitStatus(run({second / "script"}).end) == 127);
    CHECK_FALSE(test::exists(second / "ran"));
  }
  // Found nowhere: status 127, and a program of that name in the working directory is not run.
  makeScript(here / "tool", "#!/bin/sh\ntouch ran\n");
  test::ChangeDirectory into(here.path());
  test::ScopedEnv path("PATH", "/nonexistent");
  auto out = run({"tool"});
  CHECK(exitStatus(out.end) == 127);
  CHECK_FALSE(test::exists(here / "ran"));
  // Nor through an empty or relative entry of PATH (the shell's "working directory").
  test::ScopedEnv relative("PATH", ":.:/nonexistent");
  CHECK(exitStatus(run({"tool"}).end) == 127);
  CHECK_FALSE(test::exists(here / "ran"));
  CHECK_FALSE(findInPath("tool"));
}

TEST_CASE("runChild's timeout holds whatever the program does") {
  const auto started = std::chrono::steady_clock::now();
  SUBCASE("it closes its output and goes on running") {
    auto out = run({"/bin/sh", "-c", "exec >/dev/null; sleep 30"}, {.timeout = milliseconds(300)});
    CHECK(out.end.timedOut);
    CHECK(test::secondsSince(started) < 20);
  }
  SUBCASE("something it started holds its output: that is killed too") {
    auto out = run({"/bin/sh", "-c", "sleep 30 & echo $!"}, {.timeout = milliseconds(2000)});
    CHECK(out.end.timedOut);
    CHECK(test::secondsSince(started) < 20);
    REQUIRE_FALSE(out.text.empty());
    const pid_t sleeper = std::stoi(out.text);
    CHECK(goesAway(sleeper));
  }
  SUBCASE("the caller stops reading: it is killed at once, not at the timeout") {
    std::string seen;
    auto end = runChild({"/bin/sh", "-c", "echo first; sleep 30"}, {.timeout = milliseconds(60000)},
                        [&](std::string_view piece) {
                          seen.append(piece);
                          return false;
                        });
    CHECK(end.stopped);
    CHECK(seen == "first\n");
    CHECK(test::secondsSince(started) < 20);
  }
}

TEST_CASE("a stop signal stops runChild at once, the program's group killed") {
  const auto started = std::chrono::steady_clock::now();
  SUBCASE("noted while it runs (by another thread, as a handler may run on any)") {
    const test::StopNoted forget(0);  // forgotten at the end, after the signaller has ended
    std::string seen;
    std::atomic<bool> printed{false};
    const std::jthread signaller = noteWhenSet(printed, SIGINT);
    const Error e = test::thrownError([&] {
      runChild({"/bin/sh", "-c", "sleep 30 & echo $!; wait"}, {.timeout = milliseconds(60000)},
               [&](std::string_view piece) {
                 seen.append(piece);
                 if (seen.find('\n') != std::string::npos) printed = true;
                 return true;
               });
    });
    CHECK(e.code() == ErrorCode::Interrupted);
    CHECK(std::string(e.what()) == "stopped by SIGINT while running '/bin/sh'");
    CHECK(test::secondsSince(started) < 20);
    REQUIRE(printed);
    const pid_t sleeper = std::stoi(seen);
    CHECK(goesAway(sleeper));
  }
  SUBCASE("noted while it waits for a program that closed its output") {
    const test::StopNoted forget(0);
    std::jthread signaller([] {
      std::this_thread::sleep_for(milliseconds(300));
      noteStopSignal(SIGTERM);
    });
    const Error e = test::thrownError([&] {
      run({"/bin/sh", "-c", "exec >/dev/null; sleep 30"}, {.timeout = milliseconds(60000)});
    });
    CHECK(e.code() == ErrorCode::Interrupted);
    CHECK(test::secondsSince(started) < 20);
  }
  SUBCASE("noted before: nothing is started") {
    test::TempDir dir;
    const test::StopNoted noted(SIGTERM);
    const Error e = test::thrownError([&] { run({"/bin/sh", "-c", "touch " + (dir / "ran")}); });
    CHECK(std::string(e.what()) == "stopped by SIGTERM before running '/bin/sh'");
    CHECK_FALSE(test::exists(dir / "ran"));
  }
  CHECK(stopSignalCaught() == 0);
}

TEST_CASE("a program killed before its end gets SIGTERM first, and SIGKILL after the grace") {
  test::TempDir dir;
  const std::string cleaned = dir / "cleaned";
  // A program that cleans up at SIGTERM (as a key command removing a temporary file would); `wait`
  // returns at a signal the shell traps, so the trap runs at once.
  const std::vector<std::string> cleaner{
      "/bin/sh", "-c",
      "trap 'echo done > " + cleaned + "; exit 1' TERM; echo started; sleep 30 & wait"};
  const auto started = std::chrono::steady_clock::now();
  SUBCASE("at the timeout") {
    auto out = run(cleaner, {.timeout = milliseconds(500)});
    CHECK(out.end.timedOut);
    CHECK(out.text == "started\n");
  }
  SUBCASE("when the caller stops reading") {
    auto end =
        runChild(cleaner, {.timeout = milliseconds(60000)}, [](std::string_view) { return false; });
    CHECK(end.stopped);
  }
  SUBCASE("at a stop signal") {
    const test::StopNoted forget(0);
    std::atomic<bool> printed{false};
    const std::jthread signaller = noteWhenSet(printed, SIGTERM);
    const Error e = test::thrownError([&] {
      runChild(cleaner, {.timeout = milliseconds(60000)}, [&](std::string_view) {
        printed = true;
        return true;
      });
    });
    CHECK(e.code() == ErrorCode::Interrupted);
  }
  CHECK(test::readText(cleaned) == "done\n");
  CHECK(test::secondsSince(started) < 20);
}

TEST_CASE("the grace lasts while anything in the group runs, and ends when nothing does") {
  test::TempDir dir;
  const std::string cleaned = dir / "cleaned";
  const auto started = std::chrono::steady_clock::now();
  SUBCASE("a command the shell forked (as sh -c runs a key command) cleans up after the shell") {
    // dash forks even a single command: the shell dies at SIGTERM at once, the script's slow
    // cleanup (a token revoked) goes on without it.
    const std::string script = dir / "key.sh";
    makeScript(script, "#!/bin/sh\ntrap 'sleep 0.5; echo done > " + cleaned +
                           "; exit 1' TERM\necho started\nsleep 30 &\nwait\n");
    auto out = run({"/bin/sh", "-c", script},
                   {.timeout = milliseconds(500), .termGrace = milliseconds(10000)});
    CHECK(out.end.timedOut);
  }
  SUBCASE("a stopped program is continued, and its handler runs") {
    auto out = run({"/bin/sh", "-c",
                    "trap 'echo done > " + cleaned + "; exit 1' TERM; echo started; kill -STOP $$"},
                   {.timeout = milliseconds(500), .termGrace = milliseconds(10000)});
    CHECK(out.end.timedOut);
    CHECK(out.text == "started\n");
  }
  CHECK(test::readText(cleaned) == "done\n");
  // Not the whole grace: it ended when nothing in the group ran any more.
  CHECK(test::secondsSince(started) < 8);
}

TEST_CASE("a program that ignores SIGTERM is killed once the grace has passed") {
  // SIGTERM ignored by the shell is ignored by the sleep it starts too (kept across exec).
  const auto started = std::chrono::steady_clock::now();
  auto out = run({"/bin/sh", "-c", "trap '' TERM; sleep 30 & echo $!; wait"},
                 {.timeout = milliseconds(300), .termGrace = milliseconds(700)});
  CHECK(out.end.timedOut);
  CHECK(WIFSIGNALED(out.end.status));
  CHECK(WTERMSIG(out.end.status) == SIGKILL);
  // Not before the grace: the program had all of it.
  CHECK(test::secondsSince(started) >= 1.0);
  CHECK(test::secondsSince(started) < 20);
  REQUIRE_FALSE(out.text.empty());
  const pid_t sleeper = std::stoi(out.text);
  CHECK(goesAway(sleeper));
}

TEST_CASE("a program runChild runs dies with tidemark, even by kill -9") {
  test::TempDir dir;
  const std::string pidFile = dir / "pid";
  const pid_t tidemark = ::fork();
  REQUIRE(tidemark >= 0);
  if (tidemark == 0) {
    try {
      run({"/bin/sh", "-c",
           "echo $$ > " + pidFile + ".part && mv " + pidFile + ".part " + pidFile +
               " && exec sleep 30"},
          {.timeout = milliseconds(60000)});
    } catch (...) {
    }
    std::_Exit(0);
  }
  const auto started = std::chrono::steady_clock::now();
  while (!test::exists(pidFile) && test::secondsSince(started) < 20)
    std::this_thread::sleep_for(milliseconds(10));
  ::kill(tidemark, SIGKILL);
  int status = 0;
  REQUIRE(::waitpid(tidemark, &status, 0) == tidemark);
  REQUIRE(test::exists(pidFile));
  const pid_t sleeper = std::stoi(test::readText(pidFile));
  CHECK(goesAway(sleeper));
}

TEST_CASE("runChild gives the program none of tidemark's descriptors above 2") {
  test::TempDir dir;
  const int fd = ::open((dir / "kept").c_str(), O_CREAT | O_WRONLY, 0600);  // no O_CLOEXEC
  REQUIRE(fd >= 0);
  REQUIRE(::dup2(fd, 77) == 77);
  auto out = run({"/bin/ls", "-1", "/proc/self/fd"});
  ::close(77);
  ::close(fd);
  // ls's own descriptor of the folder it lists is 3; 77 would be tidemark's.
  CHECK(out.text.find("77\n") == std::string::npos);
  CHECK(out.text.find("0\n1\n2\n") == 0);
}

TEST_CASE("runChild refuses to guess how a program ended when SIGCHLD is ignored") {
  struct sigaction ignore {
  }, saved{};
  ignore.sa_handler = SIG_IGN;
  REQUIRE(::sigaction(SIGCHLD, &ignore, &saved) == 0);
  Error e = test::thrownError([] { run({"/bin/sh", "-c", "exit 3"}); });
  ::sigaction(SIGCHLD, &saved, nullptr);
  CHECK(e.code() == ErrorCode::LocalIo);
  CHECK(test::what(e) == test::Containing("cannot learn how '/bin/sh' ended"));
}

TEST_CASE("LineSplitter cuts pieces into lines, and a line without end to maxLine bytes") {
  std::vector<std::string> lines;
  LineSplitter split(
      [&](std::string_view line) {
        lines.emplace_back(line);
        return true;
      },
      8);
  CHECK(split.feed("ab"));
  CHECK(split.feed("c\nde"));
  CHECK(split.feed("f\n\n0123456789abc"));
  CHECK(split.feed("def\ng"));
  CHECK(split.finish());
  CHECK(lines == std::vector<std::string>{"abc", "def", "", "01234567", "g"});
  // Stopping: what the callback says is passed on.
  LineSplitter first([](std::string_view) { return false; });
  CHECK_FALSE(first.feed("a\nb\n"));
  // A program that prints endlessly without a line break holds no more than maxLine.
  std::size_t longest = 0;
  LineSplitter bounded(
      [&](std::string_view line) {
        longest = std::max(longest, line.size());
        return true;
      },
      1000);
  auto end = runChild({"/usr/bin/head", "-c", "20000000", "/dev/zero"}, {},
                      [&](std::string_view piece) { return bounded.feed(piece); });
  CHECK(bounded.finish());
  CHECK(exitStatus(end) == 0);
  CHECK(longest == 1000);
}
