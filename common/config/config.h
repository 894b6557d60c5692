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
    std::string keyFile;                  // the current master key (absolute path)
    std::string keyCommand;               // or: a command printing it (run with /bin/sh)
    std::vector<std::string> oldKeyFiles;  // earlier keys, for reading only
    bool allowMixed = false;              // write despite stanza.json recording another type
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
    int retryTime = 60;  // seconds
    int timeout = 30;    // seconds without progress
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

  // The configuration file that was read (absolute), or "" when none was.
  std::string file;
};

inline constexpr const char* kDefaultConfigFile = "/etc/tidemark/tidemark.toml";

// ---- command line -------------------------------------------------------------------------

// An option of one command (beside the --config and --section-key flags every command takes).
struct OptionSpec {
  std::string name;  // without the leading "--"
  std::string valueName;  // "" for a switch without a value
  std::string help;
  bool repeatable = false;
};

struct CommandSpec {
  std::string program;     // "tidemark-archive-push"
  std::string arguments;   // "WAL_PATH"
  std::string summary;     // one line
  std::vector<OptionSpec> options;
  std::size_t minPositional = 0, maxPositional = 0;
  // false: the command reads no configuration (runMain passes the built-in defaults), so that it
  // works while the configuration is still being written (tidemark keygen).
  bool readsConfig = true;
};

struct CommandLine {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> options;   // command options, by name
  std::vector<std::pair<std::string, std::string>> overrides; // flag name, value (in order)
  std::optional<std::string> configFile;
  bool help = false, version = false;

  bool has(const std::string& name) const { return options.count(name) > 0; }
  std::optional<std::string> value(const std::string& name) const;
};

// Parses argv. Throws Error(Usage) naming a wrong option and the closest right one.
CommandLine parseCommandLine(const CommandSpec& spec, int argc, const char* const* argv);

// The --help text: usage, summary, the command's options and every configuration flag.
std::string helpText(const CommandSpec& spec);

// ---- loading ------------------------------------------------------------------------------

using Environment = std::map<std::string, std::string>;
Environment processEnvironment();

// Reads the file, the environment and the flags, in that order of increasing precedence, and
// validates the result. Throws Error(Config) naming the key, where the value came from and
// what is allowed.
Config loadConfig(const CommandLine& commandLine, const Environment& environment);

// Every configuration key as "section.key" (or "stanza"), for documentation and tests.
std::vector<std::string> configKeys();

// The key's environment variable and flag names.
std::string environmentName(const std::string& key);
std::string flagName(const std::string& key);

std::string_view logLevelName(LogLevel level);

}  // namespace tidemark
