// Command lines of tidemark's binaries: a command's own options, the --section-key flags that
// override the configuration, --config, --help and --version.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tidemark {

// An option of one command (beside the --config and --section-key flags every command takes).
struct OptionSpec {
  std::string name;       // without the leading "--"
  std::string valueName;  // "" for a switch without a value
  std::string help;
  bool repeatable = false;
};

struct CommandSpec {
  std::string program;    // "tidemark-archive-push"
  std::string arguments;  // "WAL_PATH"
  std::string summary;    // one line
  std::vector<OptionSpec> options;
  std::size_t minPositional = 0, maxPositional = 0;
  // false: the command reads no configuration (runMain passes the built-in defaults), so that it
  // works while the configuration is still being written (tidemark keygen).
  bool readsConfig = true;
  // true: PostgreSQL runs the command (archive_command, restore_command), and a failure it cannot
  // fix by retrying would stop archiving or recovery: a secret in a configuration file others may
  // read is logged as an error on every call instead of refused.
  bool calledByPostgres = false;
};

struct CommandLine {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> options;     // command options, by name
  std::vector<std::pair<std::string, std::string>> overrides;  // flag name, value (in order)
  std::optional<std::string> configFile;
  bool help = false, version = false;

  bool has(const std::string& name) const { return options.count(name) > 0; }
  std::optional<std::string> value(const std::string& name) const;
};

// Parses argv. Throws Error(Usage) naming a wrong option and the closest right one.
CommandLine parseCommandLine(const CommandSpec& spec, int argc, const char* const* argv);

// The --help text: usage, summary, the command's options and every configuration flag.
std::string helpText(const CommandSpec& spec);

}  // namespace tidemark
