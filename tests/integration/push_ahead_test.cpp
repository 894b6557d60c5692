// Push-ahead (archive.push-ahead): a real PostgreSQL 15 archiver drains a backlog of .ready files
// through tidemark-archive-push, which pushes the next files in parallel and acknowledges them in
// the spool; killed at random moments, and with a spool made for another repository.
#include <dirent.h>
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <thread>

#include "cluster.h"
#include "tidemark_runner.h"
#include "tmpfs.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace tidemark::test {

namespace {

const std::string kPushAhead = "[archive]\npush-ahead = 4\n";

// Starts `pg` archiving nothing yet (archive_command = '': PostgreSQL keeps every .ready file),
// writes `count` WAL segments and copies each into `reference` as PostgreSQL wrote it. Returns
// their names, in order.
std::vector<std::string> makeBacklog(PgCluster& pg, int count, const std::string& reference) {
  pg.configure("archive_mode = on\narchive_command = ''\nwal_level = replica\n");
  pg.start();
  pg.exec("create table t (i int, pad text)");
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i) {
    pg.exec("insert into t select g, repeat('x', 100) from generate_series(1, 1500) g");
    names.push_back(pg.value("select pg_walfile_name(pg_switch_wal())"));
  }
  for (const auto& name : names)
    fs::copy_file(pg.dataDir() + "/pg_wal/" + name, reference + "/" + name);
  return names;
}

void setArchiveCommand(PgCluster& pg, const std::string& command) {
  pg.exec("alter system set archive_command = '" + command + "'");
  pg.exec("select pg_reload_conf()");
}

bool archivedThrough(PgCluster& pg, const std::string& name) {
  return pg.value("select coalesce(last_archived_wal, '') >= '" + name +
                  "' from pg_stat_archiver") == "t";
}

// Every file of `reference` comes back from the workspace's repository byte-identical.
void checkArchived(const Workspace& ws, const std::string& reference,
                   const std::vector<std::string>& names) {
  for (const auto& name : names) {
    CAPTURE(name);
    std::string restored = ws.path("restored-" + name);
    auto got = runTidemark(ws, ws.get(), {name, restored});
    INFO(got.output());
    REQUIRE(got.status == 0);
    CHECK(readFile(restored) == readFile(reference + "/" + name));
    fs::remove(restored);
  }
}

// The pids of running processes whose executable is `exe` (this test's copy of a binary).
std::vector<pid_t> processesOf(const std::string& exe) {
  std::vector<pid_t> pids;
  DIR* proc = ::opendir("/proc");
  if (!proc) return pids;
  while (dirent* e = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    std::error_code ec;
    auto target = fs::read_symlink(fs::path("/proc") / e->d_name / "exe", ec);
    if (!ec && target == exe) pids.push_back(pid_t(pid));
  }
  ::closedir(proc);
  return pids;
}

// Waits until no pusher runs any more (it ends once nothing waits for two seconds).
bool pusherEnded(const Workspace& ws) {
  return waitUntil([&] { return processesOf(ws.push()).empty(); }, 60s);
}

// What the pusher of `pg` logged.
std::string pusherLog(const PgCluster& pg) {
  return readText(pg.dataDir() + "/pg_wal/tidemark/main/push.log");
}

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
    ++n;
  return n;
}

}  // namespace

TEST_CASE_TEMPLATE("push-ahead drains a backlog of 36 files, every one byte-identical", Repo,
                   PosixRepo, S3Repo) {
  Workspace ws(Repo::value, kPushAhead);
  PgCluster pg(ws.path("pg"));
  pg.initdb();
  ws.stanzaCreate(pg);
  const std::string reference = ws.makeDir("reference");
  auto names = makeBacklog(pg, 36, reference);

  // The dynamic loader reports what each call loads.
  const std::string loads = ws.makeDir("ld-debug");
  setArchiveCommand(pg, withLoaderReports(ws.archiveCommand(), loads));
  bool drained = waitUntil([&] { return archivedThrough(pg, names.back()); }, 300s);
  std::string log = pg.logTail(100000);
  INFO(log);
  REQUIRE(drained);
  CHECK(pg.value("select failed_count from pg_stat_archiver") == "0");
  // Most calls found their file pushed ahead already, by the pusher in the background.
  CHECK(count(log, "acknowledged") >= 20);
  // Those calls need no cryptography and no compressor, and do not pay for loading them
  // (docs/decisions.md, "Few shared libraries at start"). Only the fast path logs ", acknowledged":
  // a call that found its file pushed after it opened the repository (signed requests on S3) logs
  // another line.
  for (const char* library : {"libcrypto.so", "liblz4.so", "libzstd.so"}) {
    CAPTURE(library);
    auto calls = callsThatLoaded(log, loads, "tidemark-archive-push", ", acknowledged", library);
    INFO(calls.loaded);
    CHECK(calls.loaded.empty());
    CHECK(calls.checked >= 20);
  }
  REQUIRE(pusherEnded(ws));
  std::string pushed = pusherLog(pg);
  INFO(pushed);
  CHECK(count(pushed, "pushed ahead ") >= 20);
  CHECK(count(pushed, "pusher stopped: nothing more waits") >= 1);
  checkArchived(ws, reference, names);
  // Every acknowledgement was used and every claim let go: nothing waits, nothing is left.
  CHECK(fs::is_empty(pg.dataDir() + "/pg_wal/tidemark/main/push"));
}

TEST_CASE_TEMPLATE(
    "push-ahead killed at random moments: every file PostgreSQL marked done is archived intact",
    Repo, PosixRepo, S3Repo) {
  Workspace ws(Repo::value, kPushAhead);
  PgCluster pg(ws.path("pg"));
  pg.initdb();
  ws.stanzaCreate(pg);
  const std::string reference = ws.makeDir("reference");
  auto names = makeBacklog(pg, 48, reference);

  // Both kinds are killed: the pusher (the same binary, in a session of its own, whose leader has
  // exited) at least 8 times, and the calls PostgreSQL makes (in the archiver's session: every
  // child of the postmaster makes one) 4 times. Each call killed makes PostgreSQL's archiver exit
  // (a command killed by a signal is FATAL for it), and the postmaster starts a new one after up
  // to 10 s: four take about a minute. A killed pusher is started again by the next call.
  std::atomic<bool> stop{false};
  std::atomic<int> callKills{0}, pusherKills{0};
  const unsigned seed = std::random_device{}();
  CAPTURE(seed);
  std::thread killer([&] {
    std::mt19937 random(seed);
    while (!stop && (callKills < 4 || pusherKills < 8)) {
      for (pid_t pid : processesOf(ws.push())) {
        const pid_t session = ::getsid(pid);
        if (session < 0) continue;  // gone
        std::error_code ec;
        const bool pusher =
            fs::read_symlink("/proc/" + std::to_string(session) + "/exe", ec).filename() !=
            "postgres";
        if (pusher ? pusherKills >= 8 : callKills >= 4) continue;
        // A call that finds its file acknowledged lasts a few milliseconds.
        std::this_thread::sleep_for(std::chrono::milliseconds(random() % (pusher ? 60 : 8)));
        if (::kill(pid, SIGKILL) == 0) ++(pusher ? pusherKills : callKills);
      }
      std::this_thread::sleep_for(2ms);
    }
  });
  setArchiveCommand(pg, ws.archiveCommand());
  bool drained = waitUntil([&] { return archivedThrough(pg, names.back()); }, 600s);
  stop = true;
  killer.join();
  INFO(pg.logTail(400));
  REQUIRE(drained);
  MESSAGE("killed " << callKills.load() << " calls and " << pusherKills.load() << " pushers");
  CHECK(callKills >= 4);
  CHECK(pusherKills >= 8);
  for (const auto& name : names) {
    // Done, or recycled after it was done.
    bool done = fs::exists(pg.dataDir() + "/pg_wal/archive_status/" + name + ".done") ||
                !fs::exists(pg.dataDir() + "/pg_wal/" + name);
    CHECK_MESSAGE(done, name);
  }
  checkArchived(ws, reference, names);
  // No temporary file of an acknowledgement is left behind by a kill.
  CHECK(hiddenNames(pg.dataDir() + "/pg_wal/tidemark").empty());
}

TEST_CASE("acknowledgements made for another repository are discarded and every file is pushed") {
  Workspace first(Backend::Posix, kPushAhead), second(Backend::Posix, kPushAhead);
  PgCluster pg(first.path("pg"));
  pg.initdb();
  first.stanzaCreate(pg);
  second.stanzaCreate(pg);
  const std::string reference = first.makeDir("reference");
  auto names = makeBacklog(pg, 8, reference);

  // One call as the archiver makes it, into the first repository: its pusher acknowledges the
  // seven others.
  auto pushed = runTidemark(first, first.push(), {"pg_wal/" + names[0]},
                            {.cwd = pg.dataDir(), .user = testUser()});
  INFO(pushed.output());
  REQUIRE(pushed.status == 0);
  REQUIRE(pusherEnded(first));
  for (std::size_t i = 1; i < names.size(); ++i)
    CHECK(fs::exists(pg.dataDir() + "/pg_wal/tidemark/main/push/" + names[i] + ".ok"));

  // The configuration now names another repository (a changed repo.path): the spool of the first
  // is not trusted, and the second receives every file.
  setArchiveCommand(pg, second.archiveCommand());
  bool drained = waitUntil([&] { return archivedThrough(pg, names.back()); }, 300s);
  std::string log = pg.logTail(100000);
  INFO(log);
  REQUIRE(drained);
  CHECK(count(log, "discarded the spool") == 1);
  checkArchived(second, reference, names);
}

TEST_CASE("a data directory cloned with its pg_wal and spool does not trust the acknowledgements") {
  Workspace ws(Backend::Posix, kPushAhead);
  PgCluster pg(ws.path("pg"));
  pg.initdb();
  ws.stanzaCreate(pg);
  const std::string reference = ws.makeDir("reference");
  auto names = makeBacklog(pg, 6, reference);
  auto pushed =
      runTidemark(ws, ws.push(), {"pg_wal/" + names[0]}, {.cwd = pg.dataDir(), .user = testUser()});
  INFO(pushed.output());
  REQUIRE(pushed.status == 0);
  REQUIRE(pusherEnded(ws));
  REQUIRE(fs::exists(pg.dataDir() + "/pg_wal/tidemark/main/push/" + names[5] + ".ok"));
  pg.stop();

  // The copy has the same cluster, repository and stanza, but not the same files.
  const std::string clone = ws.path("clone");
  REQUIRE(run({"/bin/cp", "-a", pg.dataDir(), clone}) == 0);
  PgCluster copy(clone, "clone");
  copy.start();
  setArchiveCommand(copy, ws.archiveCommand());
  bool drained = waitUntil([&] { return archivedThrough(copy, names.back()); }, 120s);
  std::string log = copy.logTail(100000);
  INFO(log);
  REQUIRE(drained);
  // The five acknowledgements the original wrote are each ignored, and the files pushed again.
  CHECK(count(log, "is not the one that was pushed") == 5);
  checkArchived(ws, reference, names);
  copy.stop();
}

TEST_CASE(
    "a full spool costs push-ahead, never a push, and the safety valve drops nothing unrecorded") {
  if (!canMount()) {
    MESSAGE("[tidemark] skipped: mounting a tmpfs needs CAP_SYS_ADMIN");
    return;
  }
  Workspace probe(Backend::Posix);
  const std::string spool = probe.makeDir("spool");
  Tmpfs space(spool, 1 * kMiB, 0700);
  Workspace ws(Backend::Posix, kPushAhead + "spool-path = \"" + spool + "\"\n");
  PgCluster pg(ws.path("pg"));
  pg.initdb();
  ws.stanzaCreate(pg);
  const std::string reference = ws.makeDir("reference");
  auto names = makeBacklog(pg, 6, reference);
  space.fillLeaving(0);

  auto pushed =
      runTidemark(ws, ws.push(), {"pg_wal/" + names[0]}, {.cwd = pg.dataDir(), .user = testUser()});
  INFO(pushed.output());
  CHECK(pushed.status == 0);
  CHECK(pushed.output().find("No space left on device") != std::string::npos);
  CHECK(ws.hasObject(Workspace::walObject(names[0])));

  // With the repository away and the valve open, a drop that cannot be recorded is no drop.
  fs::rename(ws.path("repo"), ws.path("repo-away"));
  auto valve = runTidemark(ws, ws.push(), {"--archive-queue-max=1MiB", "pg_wal/" + names[1]},
                           {.cwd = pg.dataDir(), .user = testUser()});
  INFO(valve.output());
  CHECK(valve.status != 0);
  CHECK(valve.output().find("WITHOUT being stored") == std::string::npos);
  CHECK_FALSE(fs::exists(spool + "/main/gap"));
  fs::rename(ws.path("repo-away"), ws.path("repo"));

  // Room again: the archiver drains everything.
  space.resize(64 * kMiB);
  setArchiveCommand(pg, ws.archiveCommand());
  bool drained = waitUntil([&] { return archivedThrough(pg, names.back()); }, 120s);
  INFO(pg.logTail(200));
  REQUIRE(drained);
  checkArchived(ws, reference, names);
}

}  // namespace tidemark::test
