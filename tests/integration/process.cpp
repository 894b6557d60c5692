// Child processes for integration tests.
#include "process.h"

#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace tidemark::test {

namespace {

int shellStatus(int raw) {
  if (WIFEXITED(raw)) return WEXITSTATUS(raw);
  if (WIFSIGNALED(raw)) return 128 + WTERMSIG(raw);
  return -1;
}

[[noreturn]] void childFail(const char* what) {
  const char* text = std::strerror(errno);
  (void)!::write(2, what, std::strlen(what));
  (void)!::write(2, ": ", 2);
  (void)!::write(2, text, std::strlen(text));
  (void)!::write(2, "\n", 1);
  ::_exit(127);
}

}  // namespace

Process::Process(const std::vector<std::string>& argv, const ProcessOptions& options) {
  // Everything the child needs is prepared before fork(): after it, only async-signal-safe calls.
  std::vector<std::string> envStrings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    std::string name = entry.substr(0, entry.find('='));
    bool drop = false;
    for (const auto& u : options.unsetEnv)
      drop = drop || u == name;
    for (const auto& extra : options.env)
      drop = drop || extra.substr(0, extra.find('=')) == name;
    if (!drop) envStrings.push_back(entry);
  }
  envStrings.insert(envStrings.end(), options.env.begin(), options.env.end());
  std::vector<char*> envp, args;
  for (auto& s : envStrings)
    envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argvCopy = argv;
  for (auto& s : argvCopy)
    args.push_back(s.data());
  args.push_back(nullptr);

  uid_t uid = 0;
  gid_t gid = 0;
  bool switchUser = false;
  if (options.user) {
    passwd* pw = ::getpwnam(options.user->c_str());
    if (pw == nullptr) throw std::runtime_error("no such user: " + *options.user);
    uid = pw->pw_uid;
    gid = pw->pw_gid;
    switchUser = ::geteuid() != uid;
  }
  pid_t parent = ::getpid();

  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::setpgid(0, 0);  // its own process group, so signals to the test do not reach it
    int out = ::open(options.stdoutPath.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int err = ::open(options.stderrPath.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int in = ::open("/dev/null", O_RDONLY);
    if (out < 0 || err < 0 || in < 0) childFail("cannot open output files");
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    if (switchUser) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0)
        childFail("cannot switch user");
    }
    // After setuid (which clears it): if the test process dies, the child gets SIGKILL.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    if (!options.cwd.empty() && ::chdir(options.cwd.c_str()) != 0) childFail("cannot chdir");
    ::execve(args[0], args.data(), envp.data());
    childFail(args[0]);
  }
}

Process::~Process() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    wait();
  }
}

bool Process::running() {
  if (status_) return false;
  int raw = 0;
  rusage usage{};
  pid_t r = ::wait4(pid_, &raw, WNOHANG, &usage);
  if (r == pid_) {
    status_ = shellStatus(raw);
    maxRssKiB_ = usage.ru_maxrss;
    return false;
  }
  return true;
}

void Process::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

int Process::wait() {
  if (status_) return *status_;
  int raw = 0;
  rusage usage{};
  while (::wait4(pid_, &raw, 0, &usage) < 0) {
    if (errno != EINTR) throw std::runtime_error("wait4 failed");
  }
  status_ = shellStatus(raw);
  maxRssKiB_ = usage.ru_maxrss;
  return *status_;
}

std::optional<int> Process::waitFor(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status_;
}

int run(const std::vector<std::string>& argv, const ProcessOptions& options) {
  Process process(argv, options);
  return process.wait();
}

std::string runOutput(const std::vector<std::string>& argv, ProcessOptions options) {
  char pattern[] = "/tmp/tidemark-out-XXXXXX";
  int fd = ::mkstemp(pattern);
  if (fd < 0) throw std::runtime_error("mkstemp failed");
  ::close(fd);
  options.stdoutPath = pattern;
  int status = run(argv, options);
  std::ifstream in(pattern);
  std::stringstream text;
  text << in.rdbuf();
  ::unlink(pattern);
  if (status != 0)
    throw std::runtime_error(argv[0] + " exited with " + std::to_string(status) + ": " +
                             text.str());
  return text.str();
}

std::optional<std::string> testUser() {
  if (::geteuid() != 0) return std::nullopt;
  return std::string("postgres");
}

void giveToTestUser(const std::string& path) {
  auto user = testUser();
  if (!user) return;
  passwd* pw = ::getpwnam(user->c_str());
  if (pw == nullptr)
    throw std::runtime_error("no such user: " + *user + " (scripts/test creates it)");
  auto change = [&](const std::filesystem::path& p) {
    if (::lchown(p.c_str(), pw->pw_uid, pw->pw_gid) != 0)
      throw std::runtime_error("chown failed: " + p.string());
  };
  change(path);
  if (std::filesystem::is_directory(path))
    for (const auto& entry : std::filesystem::recursive_directory_iterator(path))
      change(entry.path());
}

bool waitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t length = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0)
    throw std::runtime_error("cannot find a free port");
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace tidemark::test
