// A cluster configured from outside its data directory, as Debian does (/etc/postgresql/...):
// tidemark-basebackup stores postgresql.conf, what it includes, pg_hba.conf and pg_ident.conf, and
// tidemark-recover restores them, into the data directory or --config-dir, pointed at the restore.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "cluster.h"
#include "common/repo/backup.h"
#include "tidemark_runner.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace tidemark::test {

namespace {

void writeText(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::trunc);
  out << text;
  REQUIRE(out.good());
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("a cluster whose configuration lives outside its data directory is restored and starts") {
  Workspace ws(Backend::Posix);
  PgCluster source(ws.path("source"), "source");
  ws.startArchivingPrimary(source);
  source.stop();

  // Debian's layout: the configuration in an etc directory, an include_dir, an include elsewhere,
  // an include_if_exists of nothing, and data_directory, hba_file and ident_file naming the rest.
  const std::string etc = ws.path("etc/15/main");
  const std::string common = ws.path("etc/common/common.conf");
  fs::create_directories(etc);
  for (const char* name : {"postgresql.conf", "pg_hba.conf", "pg_ident.conf"})
    fs::rename(source.dataDir() + "/" + name, etc + "/" + name);
  {
    std::ofstream conf(etc + "/postgresql.conf", std::ios::app);
    conf << "\ndata_directory = '" << source.dataDir() << "'\n"
         << "hba_file = '" << etc << "/pg_hba.conf'\n"
         << "ident_file = '" << etc << "/pg_ident.conf'\n"
         << "include_dir = 'conf.d'\n"
         << "include_if_exists = 'not-there.conf'\n"
         << "include '" << common << "'\n";
  }
  writeText(etc + "/conf.d/50-memory.conf", "work_mem = '7MB'\n");
  writeText(common, "cluster_name = 'outside'\n");
  giveToTestUser(ws.path("etc"));
  source.setConfigFile(etc + "/postgresql.conf");
  source.start();
  REQUIRE(source.value("show config_file") == etc + "/postgresql.conf");
  REQUIRE(source.value("show work_mem") == "7MB");

  source.exec("create table kept (n int)");
  source.exec("insert into kept select generate_series(1, 100)");
  {
    Outcome o = runTidemark(ws, ws.basebackup(), {"--pg-conninfo=" + source.conninfo()});
    INFO(o.output());
    REQUIRE(o.status == 0);
    CHECK(contains(o.output(),
                   "storing 5 files with the backup (read through the server "
                   "(pg_read_binary_file))"));
  }
  {
    // A role that may not read the server's files through SQL: the files are read from this
    // host, where the data directory the server names holds the cluster's pg_control.
    source.exec("create role backuprole login replication");
    source.exec("grant pg_read_all_settings to backuprole");
    Outcome o = runTidemark(ws, ws.basebackup(),
                            {"--pg-conninfo=host=127.0.0.1 port=" + std::to_string(source.port()) +
                             " user=backuprole dbname=postgres"});
    INFO(o.output());
    REQUIRE(o.status == 0);
    CHECK(contains(o.output(),
                   "storing 5 files with the backup (read through this host's "
                   "filesystem)"));
  }
  source.exec("insert into kept select generate_series(101, 150)");
  source.waitArchived();
  source.stop();  // a restored copy that followed data_directory would start on it, unnoticed

  auto backups = repo::listBackups(ws.repository());
  REQUIRE(backups.size() == 2);
  CHECK(backups[0].configuration.files.size() == backups[1].configuration.files.size());
  const repo::BackupConfiguration& recorded = backups[1].configuration;
  CHECK(recorded.state == repo::BackupConfiguration::State::Stored);
  CHECK(recorded.directory == etc);
  CHECK(recorded.files.size() == 6);  // postgresql.conf, conf.d, its file, common, hba, ident
  Outcome info = ctl(ws, {"info"});
  CHECK(contains(info.output(), "5 files from " + etc + ", stored"));
  // config.tar is read and checked, and not taken for a data archive the manifest must list.
  Outcome verify = ctl(ws, {"verify"});
  INFO(verify.output());
  CHECK(verify.status == 0);

  SUBCASE("into the data directory") {
    const std::string dir = ws.path("restored");
    Outcome o = recoverWith(ws, {"--pgdata=" + dir, "--archiving=off"});
    INFO(o.output());
    REQUIRE(o.status == 0);
    CHECK(contains(o.output(),
                   "configuration: 5 files kept outside the data directory on the "
                   "server (in " +
                       etc + "), restored into " + dir));
    CHECK(fs::exists(dir + "/conf.d/50-memory.conf"));
    CHECK(fs::exists(dir + "/included" + common));
    const std::string conf = readText(dir + "/postgresql.conf");
    CHECK(contains(conf, "\ndata_directory = '" + dir + "'"));
    CHECK(contains(conf, "\ninclude = '" + dir + "/included" + common + "'"));
    CHECK(contains(conf, "\ninclude_dir = 'conf.d'"));  // still right as written
    CHECK(contains(conf, "# --- tidemark (backup "));   // and the places again, last

    PgCluster restored(dir, "restored");
    giveToTestUser(dir);
    restored.start();
    CHECK(waitUntil([&] { return restored.value("select pg_is_in_recovery()") == "f"; }, 300s));
    CHECK(restored.value("show data_directory") == dir);
    CHECK(restored.value("show config_file") == dir + "/postgresql.conf");
    CHECK(restored.value("show hba_file") == dir + "/pg_hba.conf");
    CHECK(restored.value("show work_mem") == "7MB");
    CHECK(restored.value("show cluster_name") == "outside");
    CHECK(restored.value("select count(*) from kept") == "150");
    restored.stop();
  }

  SUBCASE("in a drill") {
    Outcome o = ctl(ws, {"drill", "--scratch", ws.makeDir("drill")});
    INFO(o.output());
    CHECK(o.status == 0);
    CHECK(contains(o.output(), "restored the server's configuration: 5 files"));
    CHECK_FALSE(contains(o.output(), "the backup has no postgresql.conf"));
  }

  SUBCASE("into --config-dir, which must not already hold the files") {
    const std::string dir = ws.path("restored2");
    const std::string configDir = ws.path("etc2/15/main");
    Outcome o =
        recoverWith(ws, {"--pgdata=" + dir, "--config-dir=" + configDir, "--archiving=off"});
    INFO(o.output());
    REQUIRE(o.status == 0);
    CHECK(contains(o.output(), "-D " + configDir));
    CHECK(fs::exists(configDir + "/pg_ident.conf"));
    CHECK_FALSE(fs::exists(dir + "/postgresql.conf"));

    PgCluster restored(dir, "restored2");
    giveToTestUser(dir);
    giveToTestUser(ws.path("etc2"));
    restored.setConfigFile(configDir + "/postgresql.conf");
    restored.start();
    CHECK(waitUntil([&] { return restored.value("select pg_is_in_recovery()") == "f"; }, 300s));
    CHECK(restored.value("show data_directory") == dir);
    CHECK(restored.value("show ident_file") == configDir + "/pg_ident.conf");
    CHECK(restored.value("show work_mem") == "7MB");

    // Not even --force replaces the configuration of a running server.
    o = recoverWith(ws, {"--pgdata=" + ws.path("restored4"), "--config-dir=" + configDir,
                         "--archiving=off", "--force"});
    INFO(o.output());
    CHECK(o.status == 9);
    CHECK(contains(o.output(), "holds the configuration of a running server"));
    CHECK(readText(configDir + "/postgresql.conf").find(ws.path("restored4")) == std::string::npos);
    restored.stop();

    // Another restore into the same --config-dir is refused before anything is written.
    const std::string third = ws.path("restored3");
    o = recoverWith(ws, {"--pgdata=" + third, "--config-dir=" + configDir, "--archiving=off"});
    INFO(o.output());
    CHECK(o.status == 9);  // InvalidInput
    CHECK(contains(o.output(), "already holds a configuration file the backup restores"));
    CHECK_FALSE(fs::exists(third));
  }
}

}  // namespace tidemark::test
