// bench/fork-cost's timer: runs commands through system(3), as PostgreSQL's archiver runs
// archive_command, and writes each call's wall time in microseconds to a file per command.
//
// system() is the measured path on purpose: glibc spawns /bin/sh -c COMMAND with
// clone(CLONE_VM | CLONE_VFORK), unlike a shell's fork(), and the archiver pays exactly that.
// The commands take turns call by call, in an order rotated each time, so that a burst of load
// elsewhere on the machine lands on all of them alike. Their stdout and stderr are the timer's
// (the archiver's are the server log). Built and run by bench/fork-cost only.
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

struct Command {
  std::string removed;  // removed after each call, untimed ("" for none)
  std::string line;     // given to system()
  std::string after;    // given to system() after each call, untimed ("" for none)
  std::FILE* times = nullptr;
};

int usage() {
  std::fprintf(stderr,
               "usage: system_timer CALLS OFFSET SPEC OUTDIR\n"
               "SPEC: one command a line, 'FILE<TAB>COMMAND[<TAB>AFTER]' ('-' for no FILE); FILE\n"
               "is removed and AFTER run (through system()) after each call of COMMAND, untimed.\n"
               "Each call's microseconds go to OUTDIR/<n>, n the command's line number from 0;\n"
               "OFFSET rotates the order of the first call.\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) return usage();
  char* end = nullptr;
  long calls = std::strtol(argv[1], &end, 10);
  if (*end != '\0' || calls < 1) return usage();
  long offset = std::strtol(argv[2], &end, 10);
  if (*end != '\0' || offset < 0) return usage();
  std::vector<Command> commands;
  std::ifstream spec(argv[3]);
  for (std::string line; std::getline(spec, line);) {
    auto tab = line.find('\t');
    if (tab == std::string::npos) return usage();
    std::string removed = line.substr(0, tab);
    std::string rest = line.substr(tab + 1);
    auto second = rest.find('\t');
    std::string after = second == std::string::npos ? "" : rest.substr(second + 1);
    commands.push_back({removed == "-" ? "" : removed, rest.substr(0, second), after});
  }
  if (commands.empty()) return usage();
  for (std::size_t n = 0; n < commands.size(); ++n) {
    std::string path = std::string(argv[4]) + "/" + std::to_string(n);
    commands[n].times = std::fopen(path.c_str(), "w");
    if (commands[n].times == nullptr) {
      std::fprintf(stderr, "system_timer: cannot create '%s': %s\n", path.c_str(),
                   std::strerror(errno));
      return 1;
    }
  }
  for (long call = 0; call < calls; ++call) {
    for (std::size_t k = 0; k < commands.size(); ++k) {
      Command& command = commands[(std::size_t(call + offset) + k) % commands.size()];
      auto start = std::chrono::steady_clock::now();
      int status = std::system(command.line.c_str());
      auto elapsed = std::chrono::steady_clock::now() - start;
      if (status != 0) {
        std::fprintf(stderr, "system_timer: '%s' failed (wait status %d)\n", command.line.c_str(),
                     status);
        return 1;
      }
      if (!command.removed.empty() && ::unlink(command.removed.c_str()) != 0) {
        std::fprintf(stderr, "system_timer: cannot remove '%s': %s\n", command.removed.c_str(),
                     std::strerror(errno));
        return 1;
      }
      if (!command.after.empty() && std::system(command.after.c_str()) != 0) {
        std::fprintf(stderr, "system_timer: '%s' (after '%s') failed\n", command.after.c_str(),
                     command.line.c_str());
        return 1;
      }
      // Buffered: written out between calls, a few kilobytes at a time.
      std::fprintf(command.times, "%lld\n",
                   static_cast<long long>(
                       std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count()));
    }
  }
  for (auto& command : commands)
    if (std::fclose(command.times) != 0) {
      std::fprintf(stderr, "system_timer: cannot write the times: %s\n", std::strerror(errno));
      return 1;
    }
  return 0;
}
