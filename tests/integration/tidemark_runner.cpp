// Running tidemark's binaries from integration tests (see tidemark_runner.h).
#include "tidemark_runner.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <utility>

#include "common/base/time.h"

namespace tidemark::test {

Outcome runLogged(const Workspace& ws, const std::string& name, std::vector<std::string> argv,
                  ProcessOptions options) {
  static std::atomic<int> counter = 0;
  std::string stem = ws.path(name + "-" + std::to_string(++counter));
  options.stdoutPath = stem + ".out";
  options.stderrPath = stem + ".err";
  int status = run(argv, options);
  return {status, readText(stem + ".out"), readText(stem + ".err")};
}

Outcome runTidemark(const Workspace& ws, const std::string& binary, std::vector<std::string> args,
                    ProcessOptions options) {
  std::string name = std::filesystem::path(binary).filename().string();
  std::vector<std::string> argv{binary};
  std::size_t first = 0;  // the tidemark binary's command comes before its options
  if (binary == ws.ctl() && !args.empty()) {
    name += "-" + args[0];
    argv.push_back(args[0]);
    first = 1;
  }
  argv.insert(argv.end(), {"--config", ws.config()});
  argv.insert(argv.end(), args.begin() + first, args.end());
  return runLogged(ws, name, std::move(argv), std::move(options));
}

Outcome ctl(const Workspace& ws, std::vector<std::string> args, ProcessOptions options) {
  return runTidemark(ws, ws.ctl(), std::move(args), std::move(options));
}

Outcome recoverWith(const Workspace& ws, std::vector<std::string> args,
                    std::vector<std::string> env) {
  // The tests written before --archiving keep the server's own setting; a test of --archiving
  // gives it (or runs tidemark-recover without this helper).
  if (std::none_of(args.begin(), args.end(),
                   [](const std::string& a) { return a.rfind("--archiving", 0) == 0; }))
    args.push_back("--archiving=preserve");
  return runTidemark(ws, ws.recover(), std::move(args), {.env = std::move(env)});
}

void takeBackup(const Workspace& ws, const PgCluster& pg) {
  Outcome o = runTidemark(ws, ws.basebackup(), {"--pg-conninfo=" + pg.conninfo()});
  INFO(o.output());
  REQUIRE(o.status == 0);
}

void archiveTwoBranches(const Workspace& ws, PgCluster& source) {
  using namespace std::chrono_literals;
  ws.startArchivingPrimary(source);
  source.exec("create table rows (n int primary key)");
  takeBackup(ws, source);
  source.exec("insert into rows values (1)");
  source.waitArchived();
  const std::string copyDir = ws.path("copy");
  Outcome restored = recoverWith(ws, {"--pgdata=" + copyDir, "--archiving=on"});
  INFO(restored.output());
  REQUIRE(restored.status == 0);
  {
    giveToTestUser(copyDir);
    PgCluster copy(copyDir, "copy");
    copy.start();
    bool promoted =
        waitUntil([&] { return copy.value("select pg_is_in_recovery()") == "f"; }, 300s);
    INFO(copy.logTail());
    REQUIRE(promoted);
    copy.exec("insert into rows values (100)");
    copy.waitArchived();
    copy.stop();
  }
  REQUIRE(ws.hasObject("main/wal/00000002.history"));
  source.exec("insert into rows values (2)");
  source.waitArchived();
  REQUIRE(source.value("select failed_count from pg_stat_archiver") == "0");
  source.stop();
}

double serverNow(PgCluster& pg) {
  return std::stod(pg.value("select extract(epoch from clock_timestamp())"));
}

std::string isoTarget(double seconds) {
  return formatTimestamp(UtcMicros(std::chrono::microseconds(std::llround(seconds * 1e6))));
}

void flipByte(const Workspace& ws, const std::string& path, std::size_t at) {
  io::Buffer bytes = ws.readObject(path);
  REQUIRE(at < bytes.size());
  for (std::size_t i = at; i < std::min(at + 3, bytes.size()); ++i)
    bytes[i] ^= 0x20;
  ws.replaceObject(path, bytes);
}

std::string withLoaderReports(const std::string& command, const std::string& folder) {
  return "env LD_DEBUG=libs LD_DEBUG_OUTPUT=" + folder + "/call " + command;
}

LoadedBy callsThatLoaded(const std::string& log, const std::string& folder,
                         const std::string& program, const std::string& marker,
                         const std::string& library) {
  LoadedBy found;
  std::istringstream lines(log);
  const std::string prefix = program + "[";
  for (std::string line; std::getline(lines, line);) {
    auto at = line.find(prefix);
    if (at == std::string::npos || line.find(marker) == std::string::npos) continue;
    std::string pid = line.substr(at + prefix.size());
    pid = pid.substr(0, pid.find(']'));
    std::string report = folder + "/call." + pid;
    if (!std::filesystem::exists(report)) continue;
    ++found.checked;
    std::istringstream reported(readText(report));
    for (std::string entry; std::getline(reported, entry);) {
      auto first = entry.find_first_not_of(' ');
      if (first != std::string::npos && entry.compare(first, pid.size() + 1, pid + ":") == 0 &&
          entry.find(library) != std::string::npos)
        found.loaded += line + "\n  " + entry + "\n";
    }
  }
  return found;
}

}  // namespace tidemark::test
