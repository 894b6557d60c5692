// Child processes for integration tests: run a command (optionally as another user), wait for
// it, or keep it running and stop it by its pid.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace tidemark::test {

struct ProcessOptions {
  std::string cwd;                       // "" = inherit
  std::vector<std::string> env;          // extra KEY=VALUE entries (override inherited ones)
  std::vector<std::string> unsetEnv;     // names removed from the inherited environment
  std::optional<std::string> user;       // run as this user (needs root); see testUser()
  std::string stdoutPath = "/dev/null";  // appended to
  std::string stderrPath = "/dev/null";  // appended to
};

// A running child. The destructor kills it (SIGKILL) and reaps it if it is still running, so a
// failing test never leaves processes behind.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const ProcessOptions& options = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // Waits for the exit and returns the status as a shell reports it: the exit code, or
  // 128 + the signal number.
  int wait();
  // Like wait(), but gives up after `timeout` (returns nullopt, the process still running).
  std::optional<int> waitFor(std::chrono::milliseconds timeout);
  // Peak resident set size of the exited process, in KiB (getrusage through wait4).
  long maxRssKiB() const { return maxRssKiB_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  long maxRssKiB_ = 0;
};

// Runs to completion and returns the shell-style status.
int run(const std::vector<std::string>& argv, const ProcessOptions& options = {});

// Runs and returns stdout (stderr goes to options.stderrPath); throws when the status is not 0.
std::string runOutput(const std::vector<std::string>& argv, ProcessOptions options = {});

// The unprivileged user PostgreSQL runs as when the tests run as root ("postgres"), or nullopt
// when the tests already run unprivileged.
std::optional<std::string> testUser();

// chown -R to the test user (no-op when not root).
void giveToTestUser(const std::string& path);

// Polls `condition` every 100 ms until it holds or `timeout` passes; returns whether it held.
bool waitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// A TCP port on 127.0.0.1 that was free a moment ago.
int freePort();

}  // namespace tidemark::test
