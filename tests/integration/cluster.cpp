// Throwaway PostgreSQL clusters and tidemark workspaces for integration tests.
#include "cluster.h"

#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "common/config/config.h"
#include "common/repo/layout.h"
#include "common/repo/stanza.h"

namespace tidemark::test {

std::string pgBinDir() {
  const char* dir = std::getenv("PG_BINDIR");
  return dir && *dir ? dir : "/usr/lib/postgresql/15/bin";
}

PgCluster::PgCluster(std::string dir, std::string name)
    : dataDir_(std::move(dir)), port_(freePort()) {
  std::string parent = std::filesystem::path(dataDir_).parent_path().string();
  socketDir_ = parent;
  logPath_ = parent + "/" + name + ".log";
}

PgCluster::~PgCluster() {
  try {
    stop(std::chrono::seconds(20));
  } catch (...) {
  }
}

void PgCluster::initdb() {
  ProcessOptions options{.user = testUser(), .stdoutPath = logPath_, .stderrPath = logPath_};
  int status = run({pgBinDir() + "/initdb", "-D", dataDir_, "-A", "trust", "-U", "postgres",
                    "--no-sync", "-E", "UTF8", "--locale=C"},
                   options);
  if (status != 0)
    throw std::runtime_error("initdb failed (" + std::to_string(status) + "):\n" + logTail());
  configure(
      "listen_addresses = '127.0.0.1'\n"
      "port = " +
      std::to_string(port_) +
      "\n"
      "unix_socket_directories = '" +
      socketDir_ +
      "'\n"
      "max_connections = 20\n"
      "shared_buffers = 32MB\n"
      "fsync = off\n"
      "logging_collector = off\n"
      "log_min_messages = info\n");
}

void PgCluster::configure(const std::string& lines) {
  std::ofstream out(dataDir_ + "/postgresql.conf", std::ios::app);
  out << "\n" << lines << "\n";
  if (!out) throw std::runtime_error("cannot write postgresql.conf in " + dataDir_);
}

void PgCluster::start(std::chrono::seconds timeout) {
  ProcessOptions options{.user = testUser(), .stdoutPath = logPath_, .stderrPath = logPath_};
  // Port and socket on the command line: a restored copy of another cluster keeps its settings.
  std::vector<std::string> argv{pgBinDir() + "/postgres", "-D", dataDir_,  "-p",
                                std::to_string(port_),    "-k", socketDir_};
  if (!configFile_.empty()) {
    argv.push_back("-c");
    argv.push_back("config_file=" + configFile_);
  }
  server_ = std::make_unique<Process>(argv, options);
  std::string conninfo =
      "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=postgres";
  bool up = waitUntil([&] { return !server_->running() || PQping(conninfo.c_str()) == PQPING_OK; },
                      timeout);
  if (!server_->running())
    throw std::runtime_error("postgres exited with status " + std::to_string(server_->wait()) +
                             ":\n" + logTail());
  if (!up) throw std::runtime_error("postgres did not accept connections in time:\n" + logTail());
}

void PgCluster::stop(std::chrono::seconds timeout) {
  if (!server_) return;
  server_->signal(SIGINT);
  if (!server_->waitFor(timeout)) {
    server_->signal(SIGKILL);
    server_->wait();
  }
  server_.reset();
}

bool PgCluster::running() {
  return server_ && server_->running();
}

std::vector<std::string> PgCluster::column(const std::string& sql) {
  std::string conninfo = "host=127.0.0.1 port=" + std::to_string(port_) +
                         " user=postgres dbname=postgres connect_timeout=20";
  std::unique_ptr<PGconn, void (*)(PGconn*)> conn(PQconnectdb(conninfo.c_str()), PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK)
    throw std::runtime_error(std::string("cannot connect: ") + PQerrorMessage(conn.get()));
  std::unique_ptr<PGresult, void (*)(PGresult*)> result(PQexec(conn.get(), sql.c_str()), PQclear);
  auto status = PQresultStatus(result.get());
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK)
    throw std::runtime_error("query failed: " + sql + ": " + PQerrorMessage(conn.get()));
  std::vector<std::string> out;
  for (int row = 0; row < PQntuples(result.get()); ++row)
    out.emplace_back(PQgetvalue(result.get(), row, 0));
  return out;
}

std::string PgCluster::value(const std::string& sql) {
  auto rows = column(sql);
  return rows.empty() ? std::string() : rows.front();
}

void PgCluster::waitArchived() {
  std::string last = value("select pg_walfile_name(pg_switch_wal())");
  bool archived = waitUntil(
      [&] {
        return value("select coalesce(last_archived_wal, '') >= '" + last +
                     "' from pg_stat_archiver") == "t";
      },
      std::chrono::seconds(120));
  INFO(logTail());
  REQUIRE(archived);
}

std::string PgCluster::conninfo() const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres";
}

std::string PgCluster::logTail(std::size_t lines) const {
  std::ifstream in(logPath_);
  std::deque<std::string> tail;
  for (std::string line; std::getline(in, line);) {
    tail.push_back(line);
    if (tail.size() > lines) tail.pop_front();
  }
  std::string out;
  for (const auto& line : tail)
    out += line + "\n";
  return out;
}

const S3Server& s3Server() {
  static const S3Server server = [] {
    std::ifstream in(TIDEMARK_S3_ENV_FILE);
    if (!in)
      throw std::runtime_error(
          std::string("no S3 test server: ") + TIDEMARK_S3_ENV_FILE +
          " is missing; ctest starts one (fixture 's3'), or run scripts/s3-server start -d " +
          std::filesystem::path(TIDEMARK_S3_ENV_FILE).parent_path().string() + " --tls");
    std::map<std::string, std::string> env;
    for (std::string line; std::getline(in, line);) {
      auto eq = line.find('=');
      if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return S3Server{env["S3_ENDPOINT"],   env["S3_ENDPOINT_TLS"], env["S3_VHOST_ENDPOINT"],
                    env["S3_CA_FILE"],    env["S3_REGION"],       env["S3_ACCESS_KEY"],
                    env["S3_SECRET_KEY"], env["S3_BUCKET"]};
  }();
  return server;
}

Workspace::Workspace(RepoKind kind, const std::string& extraToml)
    : backend_(kind.backend), encrypted_(kind.encrypted), dir_("tidemark-it") {
  Backend backend = kind.backend;
  bin_ = dir_ / "bin";
  config_ = dir_ / "tidemark.toml";
  std::filesystem::create_directories(bin_);
  for (const char* binary :
       {TIDEMARK_ARCHIVE_PUSH_BINARY, TIDEMARK_ARCHIVE_GET_BINARY, TIDEMARK_BASEBACKUP_BINARY,
        TIDEMARK_RECOVER_BINARY, TIDEMARK_CTL_BINARY})
    std::filesystem::copy_file(binary,
                               bin_ + "/" + std::filesystem::path(binary).filename().string());
  if (backend == Backend::Posix) {
    std::string repo = dir_ / "repo";
    std::filesystem::create_directories(repo);
    repoToml_ = "[repo]\npath = \"" + repo + "\"\n";
  } else {
    const S3Server& s3 = s3Server();
    // A fresh prefix per workspace: tests share the bucket, never their objects.
    std::string prefix = "/it/" + std::filesystem::path(dir_.path()).filename().string();
    repoToml_ = "[repo]\ntype = \"s3\"\npath = \"" + prefix + "\"\n[s3]\nbucket = \"" + s3.bucket +
                "\"\nendpoint = \"" + s3.endpoint + "\"\nregion = \"" + s3.region +
                "\"\nuri-style = \"path\"\naccess-key-id = \"" + s3.accessKey +
                "\"\nsecret-access-key = \"" + s3.secretKey + "\"\n";
  }
  if (encrypted_) {
    runOutput({ctl(), "keygen", keyFile()});
    repoToml_ += "[encryption]\ntype = \"aes-256-gcm\"\nkey-file = \"" + keyFile() + "\"\n";
  }
  // extraToml may add keys to [repo] or [s3] sections: TOML allows a table only once, so it is
  // merged by appending its lines under the right header.
  writeFile(config_, mergeToml(repoToml_, extraToml));
  ::chmod(config_.c_str(), 0600);
  giveToTestUser(dir_.path());
}

std::string Workspace::archiveCommand() const {
  return push() + " --config " + config_ + " %p";
}

void Workspace::startArchivingPrimary(PgCluster& pg, const std::string& extraConf) const {
  pg.initdb();
  stanzaCreate(pg);
  pg.configure("archive_mode = on\narchive_command = '" + archiveCommand() +
               "'\nwal_level = replica\nmax_wal_senders = 5\n" + extraConf);
  pg.start();
}

void Workspace::stanzaCreate(const PgCluster& pg) const {
  std::string log = dir_ / "stanza-create.log";
  int status = run({ctl(), "stanza-create", "--config", config_, "--pgdata", pg.dataDir()},
                   {.user = testUser(), .stdoutPath = log, .stderrPath = log});
  INFO(readText(log));
  REQUIRE(status == 0);
}

void Workspace::createStanza(const SegmentSpec& cluster) const {
  repo::createStanza(
      repository(),
      {.systemId = cluster.systemId, .pgVersion = 15, .walSegmentSize = cluster.segmentSize});
}

std::string Workspace::restoreCommand() const {
  return get() + " --config " + config_ + " %f %p";
}

std::string Workspace::makeDir(const std::string& name) const {
  std::string p = dir_ / name;
  std::filesystem::create_directories(p);
  giveToTestUser(p);
  return p;
}

repo::Repository Workspace::repository() const {
  CommandLine commandLine;
  commandLine.configFile = config_;
  return repo::openRepository(loadConfig(commandLine, Environment{}));
}

std::shared_ptr<storage::Storage> Workspace::storage() const {
  auto owner = std::make_shared<repo::Repository>(repository());
  return std::shared_ptr<storage::Storage>(owner, &owner->storage());
}

std::string Workspace::walObject(const std::string& walName, int generation) {
  return repo::walObject("main", generation, *pg::parseWalName(walName));
}

io::Buffer Workspace::readObject(const std::string& path) const {
  io::MemorySink sink(std::size_t(1) << 31);
  if (!storage()->read(path, sink)) throw std::runtime_error("no object " + path);
  return sink.data();
}

void Workspace::replaceObject(const std::string& path, io::ByteView bytes) const {
  auto repository = storage();  // a Write must not outlive its Storage
  auto write = repository->newWrite(path, {.noReplace = false});
  write->write(bytes);
  if (!write->commit()) throw std::runtime_error("cannot replace " + path);
}

bool Workspace::hasObject(const std::string& path) const {
  return storage()->info(path).has_value();
}

std::vector<std::string> Workspace::objects() const {
  auto repository = storage();
  std::vector<std::string> out;
  std::function<void(const std::string&)> walk = [&](const std::string& dir) {
    std::vector<storage::ListEntry> entries;
    repository->list(dir, [&](const storage::ListEntry& entry) { entries.push_back(entry); });
    for (const auto& entry : entries) {
      std::string path = dir.empty() ? entry.name : dir + "/" + entry.name;
      if (entry.directory)
        walk(path);
      else
        out.push_back(path);
    }
  };
  walk("");
  return out;
}

std::string mergeToml(const std::string& base, const std::string& extra) {
  // Sections in order of first appearance, each with its lines; top-level lines first.
  std::vector<std::pair<std::string, std::vector<std::string>>> sections{{"", {}}};
  auto add = [&](const std::string& text) {
    std::string current;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      if (line.front() == '[') {
        current = line;
        continue;
      }
      auto it = std::find_if(sections.begin(), sections.end(),
                             [&](const auto& s) { return s.first == current; });
      if (it == sections.end()) it = sections.insert(sections.end(), {current, {}});
      auto keyOf = [](const std::string& l) { return l.substr(0, l.find_first_of(" =")); };
      auto same = std::find_if(it->second.begin(), it->second.end(),
                               [&](const std::string& l) { return keyOf(l) == keyOf(line); });
      if (same != it->second.end())
        *same = line;
      else
        it->second.push_back(line);
    }
  };
  add(base);
  add(extra);
  std::string out;
  for (const auto& [header, lines] : sections) {
    if (lines.empty()) continue;
    if (!header.empty()) out += header + "\n";
    for (const auto& line : lines)
      out += line + "\n";
  }
  return out;
}

std::vector<std::string> infoLabels(const Workspace& ws) {
  std::string out = ws.path("info-labels.json"), err = ws.path("info-labels.err");
  std::filesystem::remove(out);
  int status = run({ws.ctl(), "info", "--config", ws.config(), "--output", "json"},
                   {.stdoutPath = out, .stderrPath = err});
  INFO(readText(err));
  REQUIRE(status == 0);
  const auto doc = nlohmann::json::parse(readText(out));
  std::vector<std::string> labels;
  for (const auto& backup : doc.at("backups"))
    labels.push_back(backup.at("label").get<std::string>());
  return labels;
}

bool canMount() {
  if (::geteuid() != 0) return false;
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("CapEff:", 0) == 0)
      return (std::stoull(line.substr(7), nullptr, 16) >> 21) & 1;  // CAP_SYS_ADMIN
  return false;
}

std::vector<std::string> hiddenNames(const std::string& dir) {
  std::vector<std::string> hidden;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir))
    if (entry.path().filename().string().front() == '.') hidden.push_back(entry.path().string());
  return hidden;
}

}  // namespace tidemark::test
