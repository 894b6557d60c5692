// One validated configuration from a TOML file, TIDEMARK_* environment variables and flags.
//
// Precedence: a command-line flag (--section-key=value) beats the environment
// (TIDEMARK_SECTION_KEY), which beats the file. The file is --config FILE, else $TIDEMARK_CONFIG,
// else /etc/tidemark/tidemark.toml (optional: a missing default file means built-in defaults).
// Every key is documented in docs/configuration.md; unknown keys are errors, so that a typo
// never silently falls back to a default.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/base/error.h"
#include "common/config/command_line.h"
#include "common/io/compress.h"
#include "common/io/encrypt.h"

namespace tidemark {

enum class LogLevel { Error, Warn, Info, Debug };

struct Config {
  std::string stanza = "main";
  struct Repo {
    std::string type = "posix";
    std::string path = "/var/lib/tidemark/repo";
  } repo;
  struct Compress {
    io::CompressType type = io::CompressType::Zstd;
    int level = 1;
  } compress;
  struct Encryption {
    io::EncryptType type = io::EncryptType::None;
    std::string keyFile;                   // the current master key (absolute path)
    std::string keyCommand;                // or: a command printing it (run with /bin/sh)
    std::vector<std::string> oldKeyFiles;  // earlier keys, for reading only
    bool allowMixed = false;               // write despite stanza.json recording another type
  } encryption;
  struct Log {
    LogLevel level = LogLevel::Info;
    std::string file;
  } log;
  struct S3 {
    std::string bucket;
    std::string endpoint;  // after loading: never empty for repo.type = "s3"
    std::string region;    // likewise
    std::string uriStyle = "host";
    std::string caFile;
    bool verifyTls = true;
    std::uint64_t partSize = 16ULL << 20;
    int uploadConcurrency = 4;
    std::string accessKeyId;
    std::string secretAccessKey;  // secret: never printed
    std::string sessionToken;     // secret: never printed
    int retryMax = 4;
    int retryTime = 60;     // seconds
    int timeout = 30;       // seconds without progress
    int lockTimeout = 300;  // seconds without a heartbeat before a lock is stale
  } s3;
  struct Pg {
    std::string conninfo;  // libpq conninfo string or URI; "" = libpq defaults (PGHOST, ...)
  } pg;
  struct Backup {
    bool fastCheckpoint = true;
    std::uint64_t maxRate = 0;  // bytes per second; 0 = unlimited
    int walTimeout = 300;       // seconds to wait for the archive to receive the backup's WAL
    std::string manifestChecksums = "CRC32C";  // the backup_manifest's file checksums
  } backup;

  struct Retention {
    int full = 0;             // keep the newest N complete backups; 0 = no count rule
    std::int64_t window = 0;  // seconds; keep what recovers any moment of the last window; 0 = none
    std::int64_t sweepAge = 86400;  // leftovers (incomplete backups, temporary files) older go
    std::int64_t leaseTimeout = 6 * 3600;  // a recovery lease not renewed for this long lapses
  } retention;

  struct Archive {
    // Where tidemark keeps its local state on the database host (push acknowledgements, the
    // prefetched segments, push statistics); "" = pg_wal/tidemark in the data directory.
    std::string spoolPath;
    int pushAhead = 4;           // .ready files pushed in parallel ahead of the asked one; 0 = off
    std::uint64_t queueMax = 0;  // bytes of waiting WAL past which pushes are dropped; 0 = never
    int getAhead = 16;           // segments prefetched while PostgreSQL replays; 0 = off
  } archive;

  struct Drill {
    std::vector<std::string> queries;  // statements each drill runs on the restored copy
    std::string pgBin;                 // the server binaries; "" = found (docs/drill.md)
    std::string scratch;               // where to restore; "" = a fresh folder under /var/tmp
    // The timeline the replay follows, as --target-timeline takes it (checked by the drill).
    std::string targetTimeline = "latest";
  } drill;

  // The configuration file that was read (absolute), or "" when none was.
  std::string file;
  // Where the rest came from, for the debug log and for messages: the files looked for when none
  // was read (the default path), the TIDEMARK_* variables and the flags that set a key.
  struct Sources {
    std::vector<std::string> triedFiles;
    std::vector<std::string> environment;  // "TIDEMARK_STANZA"
    std::vector<std::string> flags;        // "--stanza"
    // The values the environment and the flags set, secrets left out: flag name ("stanza") and
    // value, a flag replacing its key's environment variable. What a command PostgreSQL runs for
    // this configuration repeats (serverCommand): it sees neither this command line nor, for
    // archive_command, the operator's environment.
    std::vector<std::pair<std::string, std::string>> overrides;
    // Secrets the environment gave, which no command PostgreSQL runs can repeat (a secret is never
    // a flag): "TIDEMARK_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN".
    std::vector<std::string> environmentSecrets;
    // The AWS shared credentials file the S3 credentials came from, when they did.
    std::string credentialsFile;
  } sources;

  // A secret (a secret key, or a password in pg.conninfo) found in a configuration file that its
  // group or others may read. Commands PostgreSQL does not call refuse to run; archive-push and
  // archive-get log it as an error on every call and go on (runMain decides).
  struct ExposedSecret {
    std::string key;   // "s3.secret-access-key"
    std::string file;  // the configuration file
    unsigned mode = 0;
  };
  std::optional<ExposedSecret> exposedSecret;
};

// When no configuration file was read: one line saying so, the paths that were tried and the
// repository the defaults name, for every error that may follow from it (a forgotten --config in
// archive_command is the usual cause). nullopt when a file was read.
std::optional<std::string> missingFileNote(const Config& config);

// One line naming where the configuration came from (file, variables, flags), for the debug log.
std::string describeSources(const Config& config);

// The error for an exposed secret: names the file, the key and its mode, and the chmod to run.
Error exposedSecretError(const Config::ExposedSecret& exposed);

inline constexpr const char* kDefaultConfigFile = "/etc/tidemark/tidemark.toml";

// Whether `name` may name a stanza: 1 to 64 letters, digits, '-', '_' or '.', not starting with
// '.', and not "_probe" (tidemark check's folder).
bool validStanzaName(std::string_view name);

// The command PostgreSQL runs to archive (program kArchivePush: archive_command) or restore
// (kArchiveGet: restore_command) with `config`: `executable`, --config FILE when a file was read,
// and the overrides (Config::Sources) of keys `program` uses as --flag=value; each word
// shell-quoted and each '%' doubled (PostgreSQL reads %% as %), then " %p" or " %f %p".
std::string serverCommand(Program program, const std::string& executable, const Config& config);

// The archive_command to suggest: serverCommand(kArchivePush, "tidemark-archive-push", config).
std::string suggestedArchiveCommand(const Config& config);

// ---- loading ------------------------------------------------------------------------------

using Environment = std::map<std::string, std::string>;
Environment processEnvironment();

// Reads the file, the environment and the flags, in that order of increasing precedence, and
// validates the result. Throws Error(Config) naming the key, where the value came from and
// what is allowed.
Config loadConfig(const CommandLine& commandLine, const Environment& environment);

// A configuration key as the command line and the documentation know it.
struct ConfigKeyInfo {
  std::string key;          // "s3.bucket"
  std::string flag;         // "s3-bucket"
  std::string environment;  // "TIDEMARK_S3_BUCKET"
  std::string help;
  bool secret = false;  // never a flag, never echoed
  Programs usedBy = 0;  // the programs that use it (programs.h)
};
const std::vector<ConfigKeyInfo>& configKeyInfo();

// Every configuration key as "section.key" (or "stanza"), for documentation and tests.
std::vector<std::string> configKeys();

// The key's environment variable and flag names.
std::string environmentName(const std::string& key);
std::string flagName(const std::string& key);

std::string_view logLevelName(LogLevel level);

}  // namespace tidemark
