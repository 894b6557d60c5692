// A throwaway PostgreSQL 15 cluster for integration tests, and a tidemark installation beside
// it: initdb in a temporary folder, run as an unprivileged user on a free loopback port,
// stopped by its pid (also when the test fails).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/repo/repository.h"
#include "common/storage/storage.h"
#include "process.h"
#include "support/segment.h"

namespace tidemark::test {

// PostgreSQL's server binaries ($PG_BINDIR, else /usr/lib/postgresql/15/bin).
std::string pgBinDir();

class PgCluster {
 public:
  // `dir` is the data directory; the socket and the server log go beside it.
  PgCluster(std::string dir, std::string name = "pg");
  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // initdb (trust authentication, superuser 'postgres'); then the cluster's settings.
  void initdb();
  // Appends lines to postgresql.conf.
  void configure(const std::string& lines);
  // Starts the server with this configuration file (-c config_file=PATH) instead of the data
  // directory's postgresql.conf: a cluster configured from outside its data directory, as on
  // Debian.
  void setConfigFile(std::string path) { configFile_ = std::move(path); }
  // Starts the server and waits until it accepts connections.
  void start(std::chrono::seconds timeout = std::chrono::seconds(120));
  // Fast shutdown (SIGINT), SIGKILL if it does not stop within `timeout`.
  void stop(std::chrono::seconds timeout = std::chrono::seconds(60));
  bool running();

  // Runs SQL and returns the first column of each row.
  std::vector<std::string> column(const std::string& sql);
  // The first column of the first row ("" when there is none).
  std::string value(const std::string& sql);
  void exec(const std::string& sql) { column(sql); }

  // Switches to a new WAL file and waits (up to two minutes) until the archiver has archived it.
  void waitArchived();

  int port() const { return port_; }
  // What tidemark's [pg] conninfo needs to reach this server (TCP, user postgres).
  std::string conninfo() const;
  const std::string& dataDir() const { return dataDir_; }
  const std::string& socketDir() const { return socketDir_; }
  std::string logTail(std::size_t lines = 40) const;

 private:
  std::string dataDir_, socketDir_, logPath_, configFile_;
  int port_;
  std::unique_ptr<Process> server_;
};

// Where a test's repository lives, and whether what tidemark writes there is encrypted. Tests that
// run against several are TEST_CASE_TEMPLATEs over PosixRepo, S3Repo and their encrypted variants.
enum class Backend { Posix, S3 };
struct RepoKind {
  constexpr RepoKind(Backend backend, bool encrypted = false)
      : backend(backend), encrypted(encrypted) {}
  Backend backend;
  bool encrypted;
};
struct PosixRepo {
  static constexpr Backend value = Backend::Posix;
};
struct S3Repo {
  static constexpr Backend value = Backend::S3;
};
// A key made by 'tidemark keygen', and [encryption] type = "aes-256-gcm" in the configuration.
struct EncryptedPosixRepo {
  static constexpr RepoKind value{Backend::Posix, true};
};
struct EncryptedS3Repo {
  static constexpr RepoKind value{Backend::S3, true};
};

// The S3 server of this test run (scripts/s3-server, started by the CTest fixture 's3'):
// read from TIDEMARK_S3_ENV_FILE. Throws with instructions when it is not running.
struct S3Server {
  std::string endpoint, endpointTls, vhostEndpoint, caFile, region, accessKey, secretKey, bucket;
};
const S3Server& s3Server();

// A tidemark installation for a test: the binaries copied where the server's user can run them,
// a repository (a posix folder, or a fresh key prefix in the S3 test bucket) and a configuration
// file, all in one temporary folder owned by that user.
class Workspace {
 public:
  explicit Workspace(RepoKind kind = Backend::Posix, const std::string& extraToml = "");

  Backend backend() const { return backend_; }
  bool encrypted() const { return encrypted_; }
  // The master key file of an encrypted workspace (made by 'tidemark keygen').
  std::string keyFile() const { return dir_ / "repo.key"; }
  const std::string& root() const { return dir_.path(); }
  std::string path(const std::string& name) const { return dir_ / name; }
  const std::string& config() const { return config_; }
  std::string push() const { return bin_ + "/tidemark-archive-push"; }
  std::string get() const { return bin_ + "/tidemark-archive-get"; }
  std::string basebackup() const { return bin_ + "/tidemark-basebackup"; }
  std::string recover() const { return bin_ + "/tidemark-recover"; }
  std::string ctl() const { return bin_ + "/tidemark"; }
  // `tidemark stanza-create --pgdata` for the cluster (after initdb; archiving needs it), as the
  // server's user; and the same from the library for the cluster test segments come from.
  void stanzaCreate(const PgCluster& pg) const;
  void createStanza(const SegmentSpec& cluster = {}) const;
  // archive_command / restore_command values (unquoted) for postgresql.conf.
  std::string archiveCommand() const;
  std::string restoreCommand() const;
  // initdb, stanza-create, and starts `pg` as a primary that archives into the workspace and
  // serves base backups (archive_mode, archive_command, wal_level = replica, max_wal_senders),
  // with `extraConf` (postgresql.conf lines) too.
  void startArchivingPrimary(PgCluster& pg, const std::string& extraConf = "") const;
  // Makes a directory inside the workspace owned by the server's user.
  std::string makeDir(const std::string& name) const;

  // The repository through tidemark's own driver, configured like the binaries.
  // The configured repository (stanza "main"), and its storage alone.
  repo::Repository repository() const;
  std::shared_ptr<storage::Storage> storage() const;
  // Where a WAL file is stored in the repository (stanza "main", generation `generation`).
  static std::string walObject(const std::string& walName, int generation = 1);
  // Raw stored bytes of an object, and replacing them (to damage an object on purpose).
  io::Buffer readObject(const std::string& path) const;
  void replaceObject(const std::string& path, io::ByteView bytes) const;
  bool hasObject(const std::string& path) const;
  // The TOML lines that select this workspace's repository (for variants of the config).
  const std::string& repoToml() const { return repoToml_; }
  // The path of every object in the repository, for tests that look at all of them.
  std::vector<std::string> objects() const;

 private:
  Backend backend_;
  bool encrypted_;
  TempDir dir_;
  std::string bin_, config_, repoToml_;
};

// Merges TOML snippets that may repeat a section header (the later key wins when repeated).
std::string mergeToml(const std::string& base, const std::string& extra);

// The labels `tidemark info --output json` lists as backups, oldest first.
std::vector<std::string> infoLabels(const Workspace& ws);
// Root with CAP_SYS_ADMIN, which mount(2) needs (a container may take it away from root).
bool canMount();
// Names starting with '.' anywhere below `dir`: temporary files of unfinished writes.
std::vector<std::string> hiddenNames(const std::string& dir);

}  // namespace tidemark::test
