// Unit tests of basebackup/server_config.h: which of the server's configuration files a backup
// stores, under which names, read through a fake of the server's filesystem.
#include "basebackup/server_config.h"

#include <doctest/doctest.h>

#include <map>
#include <set>

#include "common/base/error.h"
#include "common/files/tar.h"
#include "common/io/sink.h"
#include "support/check.h"

using namespace tidemark;

namespace {

// The server's files: path -> content; a directory is listed from the paths below it.
class FakeFiles final : public backup::ServerFileReader {
 public:
  std::map<std::string, std::string> files;
  std::set<std::string> unreadable;
  std::optional<std::string> read(const std::string& path) override {
    if (unreadable.count(path)) throw Error(ErrorCode::Database, "permission denied for " + path);
    auto it = files.find(path);
    if (it == files.end()) return std::nullopt;
    return it->second;
  }
  std::optional<std::vector<std::string>> list(const std::string& directory) override {
    std::vector<std::string> names;
    for (const auto& [path, content] : files)
      if (path.rfind(directory + "/", 0) == 0 &&
          path.find('/', directory.size() + 1) == std::string::npos)
        names.push_back(path.substr(directory.size() + 1));
    if (names.empty()) return std::nullopt;
    return names;
  }
  bool isDirectory(const std::string& path) override {
    for (const auto& [file, content] : files)
      if (file.rfind(path + "/", 0) == 0) return true;
    return false;
  }
  std::string describe() const override { return "the fake"; }
};

const backup::ServerPaths kDebian{
    "/var/lib/postgresql/15/main", "/etc/postgresql/15/main/postgresql.conf",
    "/etc/postgresql/15/main/pg_hba.conf", "/etc/postgresql/15/main/pg_ident.conf"};

std::map<std::string, std::string> namesOf(const backup::CollectedConfiguration& c) {
  std::map<std::string, std::string> out;
  for (const auto& f : c.record.files)
    out[f.name] = f.role + " " + f.path;
  return out;
}

}  // namespace

TEST_CASE(
    "a configuration in the data directory is not collected, and an hba_file elsewhere is noted") {
  FakeFiles files;
  auto c = backup::collectConfiguration(
      {"/data", "/data/postgresql.conf", "/etc/hba.conf", "/data/pg_ident.conf"}, files);
  CHECK(c.record.state == repo::BackupConfiguration::State::InDataDirectory);
  CHECK(c.record.files.empty());
  REQUIRE(c.record.notes.size() == 1);
  CHECK(c.record.notes[0].find("hba_file '/etc/hba.conf' lies outside the data directory") !=
        std::string::npos);
}

TEST_CASE("a Debian configuration is collected with its includes, as PostgreSQL resolves them") {
  FakeFiles files;
  files.files = {
      {"/etc/postgresql/15/main/postgresql.conf",
       "data_directory = '/var/lib/postgresql/15/main'\n"
       "include_dir = 'conf.d'\n"
       "include_if_exists = 'missing.conf'\n"
       "include = '/etc/postgresql-common/common.conf'\n"
       "include 'gone.conf'\n"},
      {"/etc/postgresql/15/main/conf.d/b.conf", "work_mem = '8MB'\n"},
      {"/etc/postgresql/15/main/conf.d/a.conf", "include 'nested/more.conf'\n"},
      {"/etc/postgresql/15/main/conf.d/nested/more.conf", "port = 5433\n"},
      {"/etc/postgresql/15/main/conf.d/.hidden.conf", "port = 1\n"},
      {"/etc/postgresql/15/main/conf.d/notes.txt", "port = 2\n"},
      // A directory named like a file: skipped, as PostgreSQL skips it.
      {"/etc/postgresql/15/main/conf.d/old.conf/x", "port = 3\n"},
      // Includes itself back: followed once.
      {"/etc/postgresql-common/common.conf", "include '/etc/postgresql/15/main/postgresql.conf'\n"},
      {"/etc/postgresql/15/main/pg_hba.conf", "local all all peer\n"},
      {"/etc/postgresql/15/main/pg_ident.conf", ""},
  };
  auto c = backup::collectConfiguration(kDebian, files);
  CHECK(c.record.state == repo::BackupConfiguration::State::Stored);
  CHECK(c.record.directory == "/etc/postgresql/15/main");
  CHECK(namesOf(c) ==
        std::map<std::string, std::string>{
            {"postgresql.conf", "config_file /etc/postgresql/15/main/postgresql.conf"},
            {"conf.d", "include_dir /etc/postgresql/15/main/conf.d"},
            {"conf.d/a.conf", "include /etc/postgresql/15/main/conf.d/a.conf"},
            {"conf.d/b.conf", "include /etc/postgresql/15/main/conf.d/b.conf"},
            {"conf.d/nested/more.conf", "include /etc/postgresql/15/main/conf.d/nested/more.conf"},
            {"included/etc/postgresql-common/common.conf",
             "include /etc/postgresql-common/common.conf"},
            {"pg_hba.conf", "hba_file /etc/postgresql/15/main/pg_hba.conf"},
            {"pg_ident.conf", "ident_file /etc/postgresql/15/main/pg_ident.conf"},
        });
  // The missing include is said; the missing include_if_exists is not.
  REQUIRE(c.record.notes.size() == 1);
  CHECK(c.record.notes[0].find("'/etc/postgresql/15/main/gone.conf', which does not exist") !=
        std::string::npos);
  // restoredName follows the recorded names, and the same rule for what was not stored.
  CHECK(c.record.restoredName("/etc/postgresql/15/main/missing.conf") == "missing.conf");
  CHECK(c.record.restoredName("/opt/x.conf") == "included/opt/x.conf");

  // config.tar holds every file under its name.
  std::string tar = backup::configArchive(c, 1700000000);
  struct Names final : files::TarReader::Handler {
    std::map<std::string, std::string> seen;
    std::string current;
    void begin(const files::TarEntry& e) override { current = e.path, seen[current] = ""; }
    void data(io::ByteView b) override { seen[current] += std::string(io::asText(b)); }
    void end() override {}
  } names;
  files::TarReader reader(names);
  reader.write(io::asBytes(tar));
  reader.close();
  CHECK(names.seen.size() == 7);
  CHECK(names.seen["conf.d/b.conf"] == "work_mem = '8MB'\n");
  CHECK(names.seen["pg_hba.conf"] == "local all all peer\n");
}

TEST_CASE("an unreadable configuration file fails the reader, so that another one is tried") {
  FakeFiles files;
  files.files = {{"/etc/postgresql/15/main/postgresql.conf", "include 'secret.conf'\n"}};
  files.unreadable = {"/etc/postgresql/15/main/secret.conf"};
  CHECK(test::thrownError([&] { backup::collectConfiguration(kDebian, files); }).code() ==
        ErrorCode::Database);
}

TEST_CASE(
    "TarWriter splits a long path into the header's prefix and refuses what it cannot store") {
  io::MemorySink sink;
  files::TarWriter tar(sink);
  const std::string longPath = "included/" + std::string(120, 'd') + "/file.conf";
  tar.addFile(longPath, io::asBytes("x"), 0600, 0);
  tar.finish();
  struct Paths final : files::TarReader::Handler {
    std::vector<std::string> paths;
    void begin(const files::TarEntry& e) override { paths.push_back(e.path); }
    void data(io::ByteView) override {}
    void end() override {}
  } paths;
  files::TarReader reader(paths);
  reader.write(sink.data());
  reader.close();
  CHECK(paths.paths == std::vector<std::string>{longPath});
  for (const std::string& bad :
       std::vector<std::string>{"/etc/passwd", "a/../b", "", "a//b", std::string(300, 'x')})
    CHECK(test::thrownError([&] { tar.addFile(bad, io::asBytes(""), 0600, 0); }).code() ==
          ErrorCode::InvalidInput);
}
