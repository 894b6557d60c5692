// Durability orders that no kill test can see (they matter only when the machine loses power),
// checked on the system calls themselves, recorded by strace: a directory another pusher made is
// fsynced into its parent before an object is published below it, and tidemark-recover gives the
// restored tree to its owner before it syncs it (an ownership change made after the sync could be
// lost in a crash, leaving files PostgreSQL cannot open). strace also times a signal into the one
// moment no other test can reach: tidemark-recover's sync of a restored tree.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "cluster.h"
#include "common/base/error.h"
#include "common/repo/layout.h"
#include "tidemark_runner.h"

namespace fs = std::filesystem;

namespace tidemark::test {

namespace {

bool haveStrace() {
  return ::access("/usr/bin/strace", X_OK) == 0;
}

// Runs `argv` under strace (following threads, fds shown with their paths) and returns the
// traced calls, one a line, in the order they were made.
std::vector<std::string> traced(const Workspace& ws, const std::string& name,
                                const std::string& calls, const std::vector<std::string>& argv,
                                std::string& output) {
  std::string trace = ws.path(name + ".strace"), log = ws.path(name + ".log");
  std::vector<std::string> command{"/usr/bin/strace", "-f", "-qq", "-y", "-e",
                                   "trace=" + calls,  "-o", trace};
  command.insert(command.end(), argv.begin(), argv.end());
  int status = run(command, {.stdoutPath = log, .stderrPath = log});
  output = readText(log);
  INFO(output);
  REQUIRE(status == 0);
  std::vector<std::string> lines;
  std::istringstream in(readText(trace));
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

// The first line at or after `from` containing every one of `parts`, or lines.size().
std::size_t findLine(const std::vector<std::string>& lines, std::size_t from,
                     std::initializer_list<std::string> parts) {
  for (std::size_t i = from; i < lines.size(); ++i) {
    bool all = true;
    for (const auto& part : parts)
      all = all && lines[i].find(part) != std::string::npos;
    if (all) return i;
  }
  return lines.size();
}

// A primary archiving into the workspace's stanza, with one backup and its WAL archived; stopped
// again, so that the stanza can be restored from.
void backedUpPrimary(const Workspace& ws) {
  PgCluster pg(ws.path("primary"), "primary");
  ws.startArchivingPrimary(pg);
  takeBackup(ws, pg);
  pg.waitArchived();
}

}  // namespace

TEST_CASE("archive-push fsyncs a directory another pusher made into its parent before using it" *
          doctest::skip(!haveStrace())) {
  Workspace ws(Backend::Posix);
  ws.createStanza();
  std::string source = ws.makeDir("source");
  SegmentSpec spec{.segmentNumber = 1, .seed = 5};
  std::string segment = writeSegment(source, spec);
  // The WAL folder of this segment, as a concurrent pusher leaves it between its mkdir and its
  // parent's fsync.
  const std::string object = ws.path("repo") + "/" + Workspace::walObject(segmentName(spec));
  const std::string folder = fs::path(object).parent_path().string();
  const std::string parent = fs::path(folder).parent_path().string();
  REQUIRE(fs::create_directories(folder));

  std::string output;
  auto lines = traced(ws, "push", "mkdir,mkdirat,fsync,fdatasync",
                      {ws.push(), "--config", ws.config(), segment}, output);
  std::string all;
  for (const auto& line : lines)
    all += line + "\n";
  INFO(all);
  std::size_t exists = findLine(lines, 0, {"mkdir", "\"" + folder + "\"", "EEXIST"});
  REQUIRE(exists < lines.size());
  CHECK(findLine(lines, exists, {"fsync(", "<" + parent + ">", "= 0"}) < lines.size());
  CHECK(ws.hasObject(Workspace::walObject(segmentName(spec))));
}

TEST_CASE("tidemark-recover gives the restored tree to its owner before it syncs it" *
          doctest::skip(!haveStrace() || ::geteuid() != 0)) {
  Workspace ws(Backend::Posix);
  backedUpPrimary(ws);
  // Root restores into a directory of the server's user: what it writes is given to that user.
  std::string dir = ws.makeDir("restored");
  fs::permissions(dir, fs::perms::owner_all);
  std::string output;
  auto lines = traced(ws, "recover", "fchownat,fchown,fsync,fdatasync",
                      {ws.recover(), "--config", ws.config(), "--archiving=preserve",
                       "--pgdata=" + dir, "--target=immediate"},
                      output);
  // The first sync in the restored tree (the repository gets one for the recovery's lease).
  std::size_t firstSync = findLine(lines, 0, {"fsync(", "/restored"});
  std::size_t lastChown = lines.size();
  for (std::size_t i = 0; i < lines.size(); ++i)
    if (lines[i].find("fchownat(") != std::string::npos) lastChown = i;
  REQUIRE(lastChown < lines.size());  // the tree was given away
  REQUIRE(firstSync < lines.size());  // and synced
  INFO("first fsync: " << lines[firstSync] << "\nlast fchownat: " << lines[lastChown]);
  CHECK(lastChown < firstSync);
  // The files written after the sync (the recovery settings) are the owner's too.
  struct stat st {};
  REQUIRE(::stat((dir + "/recovery.signal").c_str(), &st) == 0);
  struct stat top {};
  REQUIRE(::stat(dir.c_str(), &top) == 0);
  CHECK(st.st_uid == top.st_uid);
  CHECK(st.st_uid != 0);
}

TEST_CASE("a stop signal while tidemark-recover syncs the restored tree still removes it" *
          doctest::skip(!haveStrace())) {
  Workspace ws(Backend::Posix);
  backedUpPrimary(ws);
  // Every file is restored when the sync starts (its first sync_file_range, made nowhere else):
  // SIGINT then, as Ctrl-C would come, delivered by strace.
  std::string dir = ws.makeDir("restored");
  fs::permissions(dir, fs::perms::owner_all);
  std::string log = ws.path("recover.log");
  int status = run(
      {"/usr/bin/strace", "-f", "-qq", "-o", ws.path("recover.strace"), "-e",
       "trace=sync_file_range", "-e", "inject=sync_file_range:signal=SIGINT:when=1", ws.recover(),
       "--config", ws.config(), "--archiving=preserve", "--pgdata=" + dir, "--target=immediate"},
      {.stdoutPath = log, .stderrPath = log});
  const std::string output = readText(log);
  INFO(output);
  INFO(readText(ws.path("recover.strace")));
  REQUIRE(readText(ws.path("recover.strace")).find("SIGINT") != std::string::npos);
  CHECK(status == exitStatus(ErrorCode::Interrupted));
  CHECK(output.find("the restore was interrupted before its recovery settings were written") !=
        std::string::npos);
  // The directory existed: it is left empty, as it was, not restored without its settings.
  CHECK(fs::is_empty(dir));
}

}  // namespace tidemark::test
