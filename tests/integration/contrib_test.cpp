// The operator's files in contrib/: the systemd units pass `systemd-analyze verify` (with their
// ExecStart= pointing at the binaries just built), the Prometheus alerting rules pass
// `promtool check rules` and their own unit tests (`promtool test rules`). Both tools come from
// the test packages (scripts/lib/common.sh), so a missing one fails the test instead of skipping.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "process.h"
#include "support/segment.h"

namespace fs = std::filesystem;

namespace tidemark::test {

namespace {

const std::string kSourceDir = TIDEMARK_SOURCE_DIR;

std::string replaceAll(std::string text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The program's path in $PATH (or the sbin folders a non-root PATH may lack); "" when absent.
std::string findProgram(const std::string& name) {
  std::string path = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
  path += ":/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";
  std::istringstream dirs(path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// A test package's program; fails the test when it is not installed.
std::string requireProgram(const std::string& name, const std::string& package) {
  std::string path = findProgram(name);
  REQUIRE_MESSAGE(!path.empty(), name << " is not installed: install the Debian package '"
                                      << package << "' (scripts/test installs the test packages)");
  return path;
}

struct Ran {
  int status = -1;
  std::string output;  // stdout and stderr, as they came
};

Ran runCapturing(const TempDir& dir, const std::vector<std::string>& argv,
                 const std::vector<std::string>& env = {}) {
  static int count = 0;
  std::string outputPath = dir / ("output-" + std::to_string(++count));
  Ran ran;
  ran.status = run(argv, {.env = env, .stdoutPath = outputPath, .stderrPath = outputPath});
  ran.output = readText(outputPath);  // "" when nothing was written
  return ran;
}

// Output lines that mention `part`.
std::vector<std::string> linesWith(const std::string& output, const std::string& part) {
  std::vector<std::string> lines;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);)
    if (contains(line, part)) lines.push_back(line);
  return lines;
}

// systemd-analyze verify on `units` in `dir`: only the named units' own problems count
// (--recursive-errors=no: not those of units they name, such as the host's postgresql.service),
// and --man=no: Documentation= names a file, no man page.
Ran verifyUnits(const TempDir& dir, const std::string& systemdAnalyze,
                const std::vector<std::string>& units) {
  std::vector<std::string> argv{systemdAnalyze, "verify", "--man=no", "--recursive-errors=no"};
  for (const auto& unit : units)
    argv.push_back(dir / unit);
  return runCapturing(dir, argv, {"SYSTEMD_LOG_COLOR=0", "SYSTEMD_PAGER=cat"});
}

}  // namespace

TEST_CASE("contrib: systemd units pass systemd-analyze verify") {
  const std::string systemdAnalyze = requireProgram("systemd-analyze", "systemd");
  TempDir dir("tidemark-contrib");
  std::vector<std::string> units;
  for (const auto& entry : fs::directory_iterator(kSourceDir + "/contrib/systemd")) {
    std::string name = entry.path().filename();
    if (entry.path().extension() != ".service" && entry.path().extension() != ".timer") continue;
    // ExecStart= must name an existing program: the binaries of this build.
    std::string text = readText(entry.path().string());
    text = replaceAll(text, "/usr/local/bin/tidemark-basebackup", TIDEMARK_BASEBACKUP_BINARY);
    text = replaceAll(text, "/usr/local/bin/tidemark ", std::string(TIDEMARK_CTL_BINARY) + " ");
    INFO(name);
    CHECK_FALSE(contains(text, "/usr/local/bin/"));
    CHECK(contains(text, "\nDocumentation=file:///usr/local/share/doc/tidemark/"));
    if (entry.path().extension() == ".service") {
      // What contrib/systemd/README.md promises of every service.
      CHECK(contains(text, "\nUser=postgres\n"));
      CHECK(contains(text, "\nEnvironmentFile=-/etc/default/tidemark\n"));
      CHECK(contains(text, "\nProtectSystem=strict\n"));
      CHECK(contains(text, "\nNoNewPrivileges=yes\n"));
      CHECK(contains(text, "\nPrivateTmp=yes\n"));
      CHECK_FALSE(contains(text, "\nRemoveIPC="));  // it would remove the production server's IPC
    }
    writeFile(dir / name, text);
    units.push_back(name);
  }
  std::sort(units.begin(), units.end());
  CHECK(units == std::vector<std::string>{
                     "tidemark-backup.service", "tidemark-backup.timer", "tidemark-drill.service",
                     "tidemark-drill.timer", "tidemark-expire.service", "tidemark-metrics.service",
                     "tidemark-metrics.timer", "tidemark-verify.service", "tidemark-verify.timer"});
  // The drill's server must be able to JIT, and tidemark must stop it itself.
  std::string drill = readText(dir / "tidemark-drill.service");
  CHECK_FALSE(contains(drill, "\nMemoryDenyWriteExecute="));
  CHECK(contains(drill, "\nKillMode=mixed\n"));
  CHECK(
      contains(readText(dir / "tidemark-backup.service"), "\nOnSuccess=tidemark-expire.service\n"));

  SUBCASE("every unit verifies without a warning") {
    Ran verified = verifyUnits(dir, systemdAnalyze, units);
    INFO(verified.output);
    CHECK(verified.status == 0);
    // systemd-analyze exits 0 on an unknown key in a service (it only warns): any line naming
    // one of our units (or a binary of this build, in a line about ExecStart=) is a problem.
    CHECK(linesWith(verified.output, "tidemark") == std::vector<std::string>{});
  }

  SUBCASE("a broken unit is reported (the check above is not blind here)") {
    std::string broken = replaceAll(readText(dir / "tidemark-expire.service"), "\nUMask=0077\n",
                                    "\nUMask=0077\nProtectSytem=strict\n");
    broken = replaceAll(broken, std::string("ExecStart=") + TIDEMARK_CTL_BINARY,
                        "ExecStart=" + (dir / "absent"));
    const auto misspelt = broken.find("ProtectSytem=");
    const auto line = std::count(broken.begin(), broken.begin() + long(misspelt), '\n') + 1;
    writeFile(dir / "tidemark-broken.service", broken);
    Ran verified = verifyUnits(dir, systemdAnalyze, {"tidemark-broken.service"});
    INFO(verified.output);
    CHECK(verified.status != 0);
    CHECK(
        linesWith(verified.output, "tidemark-broken.service") ==
        std::vector<std::string>{dir / "tidemark-broken.service:" + std::to_string(line) +
                                     ": Unknown key 'ProtectSytem' in section [Service], ignoring.",
                                 "tidemark-broken.service: Command " + (dir / "absent") +
                                     " is not executable: No such file or directory"});
  }
}

TEST_CASE("contrib: alert rules pass promtool check rules and promtool test rules") {
  const std::string promtool = requireProgram("promtool", "prometheus");
  TempDir dir("tidemark-contrib");
  const std::string rules = kSourceDir + "/contrib/prometheus/alerts.yml";
  const std::string tests = kSourceDir + "/contrib/prometheus/alerts_test.yml";

  Ran checked = runCapturing(dir, {promtool, "check", "rules", rules});
  INFO(checked.output);
  CHECK(checked.status == 0);
  CHECK(contains(checked.output, "SUCCESS: 17 rules found"));

  // The test file names alerts.yml relative to itself.
  Ran tested = runCapturing(dir, {promtool, "test", "rules", tests});
  INFO(tested.output);
  CHECK(tested.status == 0);
  CHECK(contains(tested.output, "SUCCESS"));

  // Every alert has a severity and says what it means and what to do.
  std::string text = readText(rules);
  const auto alerts = linesWith(text, "- alert: ");
  CHECK(alerts.size() == 17);
  CHECK(linesWith(text, "severity: critical").size() +
            linesWith(text, "severity: warning").size() ==
        alerts.size());
  CHECK(linesWith(text, "summary: ").size() == alerts.size());
  CHECK(linesWith(text, "description: >-").size() == alerts.size());
  CHECK(linesWith(text, "docs/operations.md.").size() >= alerts.size());
}

}  // namespace tidemark::test
