// Command lines of tidemark's binaries: a command's own options, the --section-key flags that
// override the configuration, --config, --help and --version.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/config/programs.h"

namespace tidemark {

// An option of one command (beside the --config and --section-key flags every command takes).
struct OptionSpec {
  std::string name;       // without the leading "--"
  std::string valueName;  // "" for a switch without a value
  std::string help;
  bool repeatable = false;
};

// An exit status of a command and what it means ("0", "the file is durable in the repository").
struct ExitStatusSpec {
  std::string status;
  std::string meaning;
};

struct CommandSpec {
  std::string program;    // "tidemark-archive-push"
  std::string arguments;  // "WAL_PATH"
  // What it does, in sentences: --help wraps it ("\n" starts a new line); its first sentence is
  // the one-line description (tidemark's list of commands, the man page's NAME).
  std::string summary;
  std::vector<OptionSpec> options;
  // The configuration flags it accepts and lists: those of the keys these programs use
  // (programs.h). A flag of a key it does not use is a usage error naming the programs that do.
  Programs keysOf = kEveryProgram;
  // Its exit statuses of its own (0 first), listed before the failure statuses of the error table
  // (common/base/error.h), which `failureStatuses` introduces.
  std::vector<ExitStatusSpec> exitStatuses = {{"0", "success"}};
  std::string failureStatuses = "a failure exits with the status of its cause";
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
  bool helpMan = false;  // --help-man (hidden): print the man page, for the build

  bool has(const std::string& name) const { return options.count(name) > 0; }
  std::optional<std::string> value(const std::string& name) const;
};

// Parses argv. Throws Error(Usage) naming a wrong option and the closest right one.
CommandLine parseCommandLine(const CommandSpec& spec, int argc, const char* const* argv);

// The --help text, wrapped at 80 columns: usage, summary, the command's options, the
// configuration flags of the keys it uses, and its exit statuses.
std::string helpText(const CommandSpec& spec);

// The first sentence of a summary, without its period: "Stores one WAL file in the repository".
std::string firstSentence(const std::string& summary);

// A program whose first argument is a command (tidemark): `main` describes the program (its
// program, arguments and summary), `commands` each command (program "tidemark info").
struct MultiCommandSpec {
  CommandSpec main;
  std::vector<CommandSpec> commands;
};

// `tidemark --help`: usage, summary, one line per command.
std::string commandsHelpText(const MultiCommandSpec& spec);

// The man page (roff, section 1) of a program: the same options, configuration flags and exit
// statuses as its --help, from the same specs. For a program with commands, every command's.
std::string manPage(const CommandSpec& spec);
std::string manPage(const MultiCommandSpec& spec);

// The command line of a program with commands, with the global options (--config, --help,
// --version and the configuration flags) allowed before the command as after it
// ("tidemark --config FILE info" is "tidemark info --config FILE").
struct CommandCall {
  std::string command;  // the first argument that is not a global option or its value; "" if none
  // What the command's parser gets: the program, then the global options given before the
  // command, then the arguments after it.
  std::vector<std::string> args;
  bool help = false, version = false;  // given before the command
};
// Throws Error(Usage) for an option before the command that is not a global one.
CommandCall splitCommand(int argc, const char* const* argv);

}  // namespace tidemark
