// Unit tests of common/log/log.h: the line prefix (with the time zone), the note that no
// configuration file was found, and where the configuration came from at debug level.
#include "common/log/log.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <regex>

#include "support/check.h"
#include "support/segment.h"

using namespace tidemark;
using test::Containing;

namespace {

// What the logger writes to stderr while `fn` runs, with the logger set up anew for
// "tidemark-test" and put back after.
std::string capturedStderr(const std::function<void()>& fn) {
  test::TempDir dir;
  std::string path = dir / "stderr";
  auto previous = spdlog::default_logger();
  std::fflush(stderr);
  int saved = ::dup(2);
  int file = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  REQUIRE(saved >= 0);
  REQUIRE(file >= 0);
  ::dup2(file, 2);
  ::close(file);
  try {
    log::setup("tidemark-test");
    fn();
  } catch (...) {
    std::fflush(stderr);
    ::dup2(saved, 2);
    ::close(saved);
    log::resetConfigured();
    spdlog::set_default_logger(previous);
    throw;
  }
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  log::resetConfigured();
  spdlog::set_default_logger(previous);
  return test::readText(path);
}

Config withoutFile() {
  Config config;
  config.sources.triedFiles = {kDefaultConfigFile};
  return config;
}

}  // namespace

TEST_CASE("log lines carry the time zone, as PostgreSQL's do") {
  std::string text = capturedStderr([] { spdlog::info("hello"); });
  CAPTURE(text);
  // "2026-12-04 10:42:07.123 UTC tidemark-test[123] INFO: hello": the zone's abbreviation, or
  // its offset when it has none.
  CHECK(std::regex_match(
      text, std::regex(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} ([A-Za-z]{2,6}|[+-]\d{4}) )"
                       R"(tidemark-test\[\d+\] INFO: hello\n)")));
  SUBCASE("in the local zone: TZ names it") {
    const char* old = std::getenv("TZ");
    std::string saved = old ? old : "";
    ::setenv("TZ", "Asia/Kolkata", 1);
    ::tzset();
    std::string local = capturedStderr([] { spdlog::info("hello"); });
    if (old)
      ::setenv("TZ", saved.c_str(), 1);
    else
      ::unsetenv("TZ");
    ::tzset();
    CHECK(local == Containing(" IST tidemark-test["));
  }
}

TEST_CASE("without a configuration file, errors that may follow from the defaults say so") {
  SUBCASE("a repository error gets the note before its own hint") {
    std::string text = capturedStderr([] {
      log::configure(withoutFile());
      log::reportError(Error(ErrorCode::Storage,
                             "repository path '/var/lib/tidemark/repo' does "
                             "not exist",
                             "mount or create it"));
    });
    CAPTURE(text);
    auto note = text.find(
        "HINT: no configuration file was found (no --config, no "
        "TIDEMARK_CONFIG, and '/etc/tidemark/tidemark.toml' does not exist)");
    auto hint = text.find("HINT: mount or create it");
    CHECK(text.find("ERROR: repository path '/var/lib/tidemark/repo' does not exist") < note);
    REQUIRE(note != std::string::npos);
    REQUIRE(hint != std::string::npos);
    CHECK(note < hint);
    CHECK(text == Containing("repository 'posix:/var/lib/tidemark/repo', stanza 'main'"));
  }
  SUBCASE("errors the configuration cannot cause get no note") {
    std::string text = capturedStderr([] {
      log::configure(withoutFile());
      log::reportError(Error(ErrorCode::Usage, "--pgdata is required"));
      log::reportError(Error(ErrorCode::InvalidInput, "'x' is not a WAL file"));
    });
    CHECK(text.find("no configuration file") == std::string::npos);
  }
  SUBCASE("with a file, no note") {
    std::string text = capturedStderr([] {
      Config config;
      config.file = "/etc/tidemark/other.toml";
      log::configure(config);
      log::reportError(Error(ErrorCode::Storage, "cannot open"));
    });
    CHECK(text.find("no configuration file") == std::string::npos);
  }
}

TEST_CASE("at debug level the configuration's sources are logged, and not at info") {
  Config config = withoutFile();
  config.sources.environment = {"TIDEMARK_STANZA"};
  config.sources.flags = {"--repo-path"};
  config.log.level = LogLevel::Debug;
  std::string debug = capturedStderr([&] { log::configure(config); });
  CHECK(debug == Containing("DEBUG: configuration: file none ('/etc/tidemark/tidemark.toml' does "
                            "not exist: built-in defaults); environment TIDEMARK_STANZA; flags "
                            "--repo-path\n"));
  config.log.level = LogLevel::Info;
  CHECK(capturedStderr([&] { log::configure(config); }).empty());
}

TEST_CASE("root's log file is its folder's owner's, and never a file a link there names") {
  if (::geteuid() != 0) {
    MESSAGE("skipped: not root");
    return;
  }
  test::TempDir dir;
  const std::string folder = dir / "log";
  REQUIRE(::mkdir(folder.c_str(), 0750) == 0);
  REQUIRE(::chown(folder.c_str(), 4321, 4322) == 0);  // the PostgreSQL user's, say
  Config config = withoutFile();
  SUBCASE("made by root, it is that user's: the server's archive_command appends to it later") {
    config.log.file = folder + "/tidemark.log";
    capturedStderr([&] {
      log::configure(config);
      spdlog::info("a line");
    });
    struct stat st {};
    REQUIRE(::stat(config.log.file.c_str(), &st) == 0);
    CHECK(st.st_uid == 4321);
    CHECK(st.st_gid == 4322);
    CHECK(test::readText(config.log.file).find("a line") != std::string::npos);
  }
  SUBCASE("a symlink or a second name there: refused, logged to stderr, the file untouched") {
    test::writeFile(dir / "secret", "root's");
    REQUIRE(::symlink((dir / "secret").c_str(), (folder + "/link.log").c_str()) == 0);
    REQUIRE(::link((dir / "secret").c_str(), (folder + "/hard.log").c_str()) == 0);
    for (const char* name : {"/link.log", "/hard.log"}) {
      CAPTURE(name);
      config.log.file = folder + name;
      const std::string err = capturedStderr([&] {
        log::configure(config);
        spdlog::info("a line");
      });
      CHECK(err.find("cannot open log file") != std::string::npos);
      CHECK(err.find("a line") != std::string::npos);
    }
    CHECK(test::readText(dir / "secret") == "root's");
    struct stat st {};
    REQUIRE(::stat((dir / "secret").c_str(), &st) == 0);
    CHECK(st.st_uid == 0);
  }
  SUBCASE("a folder on the way that is another user's symlink: refused; root's own: followed") {
    const std::string target = dir / "roots";
    REQUIRE(::mkdir(target.c_str(), 0755) == 0);
    REQUIRE(::symlink(target.c_str(), (folder + "/theirs").c_str()) == 0);
    REQUIRE(::lchown((folder + "/theirs").c_str(), 4321, 4322) == 0);
    config.log.file = folder + "/theirs/tidemark.log";
    std::string err = capturedStderr([&] { log::configure(config); });
    CHECK(err.find("cannot open log file") != std::string::npos);
    CHECK_FALSE(test::exists(target + "/tidemark.log"));
    REQUIRE(::symlink(target.c_str(), (folder + "/mine").c_str()) == 0);  // root's
    config.log.file = folder + "/mine/tidemark.log";
    err = capturedStderr([&] {
      log::configure(config);
      spdlog::info("a line");
    });
    CHECK(err.find("cannot open log file") == std::string::npos);
    CHECK(test::readText(target + "/tidemark.log").find("a line") != std::string::npos);
  }
  SUBCASE("a FIFO there: refused at once, never waited on") {
    config.log.file = folder + "/fifo.log";
    REQUIRE(::mkfifo(config.log.file.c_str(), 0600) == 0);
    const std::string err = capturedStderr([&] { log::configure(config); });
    CHECK(err.find("cannot open log file") != std::string::npos);
  }
  SUBCASE("a file of root's already there is appended to, not given away, and said to be root's") {
    config.log.file = folder + "/old.log";
    test::writeFile(config.log.file, "old\n");
    const std::string err = capturedStderr([&] {
      log::configure(config);
      spdlog::info("a line");
    });
    CHECK(err.find("belongs to root") != std::string::npos);
    CHECK(test::readText(config.log.file).find("old\n") == 0);
    CHECK(test::readText(config.log.file).find("a line") != std::string::npos);
    struct stat st {};
    REQUIRE(::stat(config.log.file.c_str(), &st) == 0);
    CHECK(st.st_uid == 0);
  }
}
