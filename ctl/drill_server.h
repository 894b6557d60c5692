// The throwaway PostgreSQL server of a drill: started from a restored data directory with the
// settings that keep it away from production (no archiving, no replication, no logical
// replication workers, loopback and a private socket only), watched by its pid and stopped by it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/files/file.h"

namespace tidemark::ctl {

struct ServerOptions {
  std::string binDirectory;     // holds `postgres`
  std::string dataDirectory;    // restored, with its recovery settings
  std::string socketDirectory;  // private to the drill (mode 0700)
  std::string logFile;          // the server's stderr
  int port = 0;
  // -c name=value settings (drillSettings), which beat postgresql.conf and postgresql.auto.conf.
  std::vector<std::pair<std::string, std::string>> settings;
  std::optional<files::Owner> owner;  // run as this user (when tidemark runs as root)
  // When set (tidemark runs as root): the server runs in a mount namespace of its own where every
  // filesystem is read-only but these paths (the scratch directory, the repository, /dev/shm):
  // WAL replayed from production (a CREATE TABLESPACE after the backup, a symbolic link in the
  // data directory) can then never write into production's files.
  std::optional<std::vector<std::string>> writablePaths;
};

// The settings every drill server gets on its command line (they beat postgresql.conf and
// postgresql.auto.conf): the port and sockets, archive_mode = off, no primary_conninfo, no
// archive_cleanup_command or recovery_end_command (a standby's could delete from an archive), no
// logical replication workers, no synchronous standbys, ssl off, PostgreSQL's default memory
// sizes, the log on stderr, and the hba_file and ident_file given (written by the caller: local
// connections only).
std::vector<std::pair<std::string, std::string>> drillSettings(const ServerOptions& options,
                                                               const std::string& hbaFile,
                                                               const std::string& identFile);

// The directory of the server binaries: `configured` when given (it must hold an executable
// `postgres`, not one that says it is of another version), else where pg::findPgProgram finds
// it. Throws Error(Config) naming drill.pg-bin when none holds a fitting `postgres`.
std::string findServerBinaries(const std::string& configured, int pgVersion);

// A TCP port on 127.0.0.1 that nothing listens on now.
int freePort();

class DrillServer {
 public:
  // Starts `postgres -D ...` with `options` (as options.owner when given), its stdout and stderr
  // appended to options.logFile, in a process group of its own, with SIGQUIT (immediate shutdown)
  // as its parent-death signal, so that a drill killed by SIGKILL leaves no server behind either.
  // Throws Error(LocalIo) when it cannot be started.
  explicit DrillServer(const ServerOptions& options);
  // Stops the server (stop()) if it still runs.
  ~DrillServer();
  DrillServer(const DrillServer&) = delete;
  DrillServer& operator=(const DrillServer&) = delete;

  pid_t pid() const { return pid_; }
  // Whether the process still runs (reaps it when it has exited).
  bool running();
  // Whether the server runs in its read-only mount namespace (false when writablePaths was not
  // given, or the namespace could not be made).
  bool isolated() const { return isolated_; }
  // How it ended ("exited with status 1", "killed by signal 9"); "" while it runs.
  const std::string& ended() const { return ended_; }
  // Fast shutdown (SIGINT), then after `grace` an immediate one (SIGQUIT), then SIGKILL; returns
  // once the process is gone.
  void stop(std::chrono::seconds grace = std::chrono::seconds(60));
  // A libpq conninfo for the server: its socket directory and port, as `user`, to `database`.
  std::string conninfo(const std::string& user, const std::string& database) const;

 private:
  void reaped(int status);
  pid_t pid_ = -1;
  std::string socketDirectory_;
  int port_ = 0;
  std::string ended_;
  bool isolated_ = false;
};

}  // namespace tidemark::ctl
