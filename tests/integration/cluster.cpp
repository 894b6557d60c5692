// Throwaway PostgreSQL clusters and tidemark workspaces for integration tests.
#include "cluster.h"

#include <libpq-fe.h>
#include <signal.h>

#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <stdexcept>

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
  int status = run({pgBinDir() + "/initdb", "-D", dataDir_, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8",
                    "--locale=C"},
                   options);
  if (status != 0) throw std::runtime_error("initdb failed (" + std::to_string(status) + "):\n" + logTail());
  configure("listen_addresses = '127.0.0.1'\n"
            "port = " + std::to_string(port_) + "\n"
            "unix_socket_directories = '" + socketDir_ + "'\n"
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
  server_ = std::make_unique<Process>(std::vector<std::string>{pgBinDir() + "/postgres", "-D", dataDir_, "-p",
                                                               std::to_string(port_), "-k", socketDir_},
                                      options);
  std::string conninfo = "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=postgres";
  bool up = waitUntil([&] { return !server_->running() || PQping(conninfo.c_str()) == PQPING_OK; }, timeout);
  if (!server_->running())
    throw std::runtime_error("postgres exited with status " + std::to_string(server_->wait()) + ":\n" + logTail());
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

bool PgCluster::running() { return server_ && server_->running(); }

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
  for (int row = 0; row < PQntuples(result.get()); ++row) out.emplace_back(PQgetvalue(result.get(), row, 0));
  return out;
}

std::string PgCluster::value(const std::string& sql) {
  auto rows = column(sql);
  return rows.empty() ? std::string() : rows.front();
}

std::string PgCluster::logTail(std::size_t lines) const {
  std::ifstream in(logPath_);
  std::deque<std::string> tail;
  for (std::string line; std::getline(in, line);) {
    tail.push_back(line);
    if (tail.size() > lines) tail.pop_front();
  }
  std::string out;
  for (const auto& line : tail) out += line + "\n";
  return out;
}

Workspace::Workspace(const std::string& extraToml) : dir_("tidemark-it") {
  bin_ = dir_ / "bin";
  repo_ = dir_ / "repo";
  config_ = dir_ / "tidemark.toml";
  std::filesystem::create_directories(bin_);
  std::filesystem::create_directories(repo_);
  for (const char* binary : {TIDEMARK_ARCHIVE_PUSH_BINARY, TIDEMARK_ARCHIVE_GET_BINARY})
    std::filesystem::copy_file(binary, bin_ + "/" + std::filesystem::path(binary).filename().string());
  writeFile(config_, "[repo]\npath = \"" + repo_ + "\"\n" + extraToml);
  giveToTestUser(dir_.path());
}

std::string Workspace::archiveCommand() const { return push() + " --config " + config_ + " %p"; }

std::string Workspace::restoreCommand() const { return get() + " --config " + config_ + " %f %p"; }

std::string Workspace::makeDir(const std::string& name) const {
  std::string p = dir_ / name;
  std::filesystem::create_directories(p);
  giveToTestUser(p);
  return p;
}

}  // namespace tidemark::test
