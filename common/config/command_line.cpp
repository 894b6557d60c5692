// Command lines: options of a command, configuration flags, positional arguments, --help.
#include "common/config/command_line.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <regex>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/base/version.h"
#include "common/config/config.h"

namespace tidemark {

std::optional<std::string> CommandLine::value(const std::string& name) const {
  auto it = options.find(name);
  if (it == options.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

CommandLine parseCommandLine(const CommandSpec& spec, int argc, const char* const* argv) {
  CommandLine out;
  auto usageError = [&](const std::string& message, const std::string& hint = {}) {
    throw Error(ErrorCode::Usage, message,
                hint.empty() ? fmt::format("run '{} --help' for usage", spec.program) : hint);
  };
  std::vector<std::string> known = {"--config", "--help", "--version"};
  for (const auto& o : spec.options)
    known.push_back("--" + o.name);
  for (const auto& key : configKeyInfo())
    if (key.usedBy & spec.keysOf) known.push_back("--" + key.flag);

  bool optionsEnded = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (optionsEnded || arg.size() < 2 || arg[0] != '-') {
      out.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      optionsEnded = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      out.help = true;
      continue;
    }
    if (arg == "--version") {
      out.version = true;
      continue;
    }
    if (arg == "--help-man") {
      out.helpMan = true;
      continue;
    }
    std::string name = arg, value;
    bool hasValue = false;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      hasValue = true;
    }
    auto takeValue = [&]() {
      if (hasValue) return;
      if (i + 1 >= argc) usageError(fmt::format("option '{}' needs a value", name));
      value = argv[++i];
      hasValue = true;
    };
    // `name`, not `arg`: the value after '=' may be a secret given to a misspelt flag.
    if (name.rfind("--", 0) != 0) usageError(fmt::format("unknown option '{}'", name));
    std::string bare = name.substr(2);
    if (bare == "config") {
      takeValue();
      out.configFile = value;
      continue;
    }
    auto option = std::find_if(spec.options.begin(), spec.options.end(),
                               [&](const OptionSpec& o) { return o.name == bare; });
    if (option != spec.options.end()) {
      if (option->valueName.empty()) {
        if (hasValue) usageError(fmt::format("option '{}' takes no value", name));
      } else {
        takeValue();
      }
      auto& values = out.options[bare];
      if (!values.empty() && !option->repeatable)
        usageError(fmt::format("option '{}' is given more than once", name));
      values.push_back(value);
      continue;
    }
    const auto& keys = configKeyInfo();
    auto key = std::find_if(keys.begin(), keys.end(),
                            [&](const ConfigKeyInfo& k) { return k.flag == bare; });
    if (key != keys.end() && !(key->usedBy & spec.keysOf) && !key->secret) {
      std::vector<std::string> users = programNames(key->usedBy);
      std::string list;
      for (const auto& user : users)
        list += (list.empty() ? "" : ", ") + user;
      usageError(fmt::format("option '{}' does not apply to {}: {} is used by {}", name,
                             spec.program, key->key, list),
                 fmt::format("give it to {}; in the configuration file or the environment it may "
                             "stay, where each program reads only the keys it uses",
                             users.empty() ? std::string("them") : users.front()));
    }
    if (key != keys.end()) {
      if (key->secret)
        usageError(
            fmt::format("'{}' would show a secret to every user of this machine (the process list)",
                        name),
            fmt::format("put {} in the configuration file (mode 0600) or the environment",
                        key->key));
      takeValue();
      // A conninfo with a password is a secret too (key=value form, or a URI's user:password@), and
      // so is sslpassword, the passphrase of the client key.
      static const std::regex kPassword(R"((^|[\s?&])(ssl)?password\s*=|://[^/@:]*:[^/@]*@)");
      if (bare == "pg-conninfo" && std::regex_search(value, kPassword))
        usageError(fmt::format("'{}' holds a password, which every user of this machine could read "
                               "(the process list)",
                               name),
                   "put the password in ~/.pgpass (or PGPASSFILE) of the user running tidemark");
      out.overrides.emplace_back(bare, value);
      continue;
    }
    std::string hint = didYouMean(name, known);
    usageError(fmt::format("unknown option '{}'", name),
               hint.empty() ? fmt::format("run '{} --help' for usage", spec.program) : hint);
  }
  if (!out.help && !out.version && !out.helpMan) {
    if (out.positional.size() < spec.minPositional)
      usageError(fmt::format("missing argument: {} {}", spec.program, spec.arguments));
    if (out.positional.size() > spec.maxPositional)
      usageError(fmt::format("unexpected argument '{}'", out.positional[spec.maxPositional]));
  }
  return out;
}

namespace {

constexpr std::size_t kOptionColumn = 34;  // where an option's help starts in --help

std::string flagWithValue(const OptionSpec& o) {
  return "--" + o.name + (o.valueName.empty() ? "" : "=" + o.valueName);
}

std::string configHelpLine() {
  return fmt::format("configuration file (default $TIDEMARK_CONFIG, else {})", kDefaultConfigFile);
}

// The configuration keys whose flags `spec` accepts, secrets left out (never flags).
std::vector<ConfigKeyInfo> flagKeys(const CommandSpec& spec) {
  std::vector<ConfigKeyInfo> keys;
  if (!spec.readsConfig) return keys;
  for (const auto& key : configKeyInfo())
    if (!key.secret && (key.usedBy & spec.keysOf)) keys.push_back(key);
  return keys;
}

std::string secretsNote() {
  std::string secrets;
  for (const auto& key : configKeyInfo())
    if (key.secret) secrets += (secrets.empty() ? "" : ", ") + key.key;
  return fmt::format(
      "secrets ({}) are read from the configuration file or the environment only, never from the "
      "command line",
      secrets);
}

std::string exitStatusText(const CommandSpec& spec) {
  std::string text = "exit status:\n";
  for (const auto& line : spec.exitStatuses)
    text += wrapText(line.meaning, 8, "  " + line.status);
  text += wrapText(spec.failureStatuses + ":", 2);
  for (ErrorCode code : allErrorCodes())
    text += wrapText(errorMeaning(code), 8, fmt::format("  {}", exitStatus(code)));
  return text;
}

}  // namespace

std::string firstSentence(const std::string& summary) {
  std::size_t end = summary.size();
  for (std::size_t i = 0; i + 1 < summary.size(); ++i)
    if (summary[i] == '.' && (summary[i + 1] == ' ' || summary[i + 1] == '\n')) {
      end = i;
      break;
    }
  std::string sentence = summary.substr(0, end);
  if (!sentence.empty() && sentence.back() == '.') sentence.pop_back();
  for (auto& c : sentence)
    if (c == '\n') c = ' ';
  return sentence;
}

std::string helpText(const CommandSpec& spec) {
  std::string text = wrapText(fmt::format("{} [OPTIONS]{}{}", spec.program,
                                          spec.arguments.empty() ? "" : " ", spec.arguments),
                              7, "usage:") +
                     "\n" + wrapText(spec.summary) + "\n";
  text += "options:\n";
  auto line = [&](const std::string& flag, const std::string& help) {
    text += wrapText(help, kOptionColumn, "  " + flag);
  };
  for (const auto& o : spec.options)
    line(flagWithValue(o), o.help);
  if (spec.readsConfig) line("--config=FILE", configHelpLine());
  line("--help", "show this help");
  line("--version", "show the version");
  if (spec.readsConfig) {
    text += "\n" + wrapText(
                       "configuration flags (each also TIDEMARK_<SECTION>_<KEY>, or the key "
                       "in the configuration file):");
    for (const auto& key : flagKeys(spec))
      line("--" + key.flag + "=VALUE", key.help);
    text += "\n" + wrapText(secretsNote());
  }
  text += "\n" + exitStatusText(spec);
  text += "\n" + wrapText(fmt::format("documentation: {}", docPath("")));
  return text;
}

std::string commandsHelpText(const MultiCommandSpec& spec) {
  std::string text =
      wrapText(fmt::format("{} {}", spec.main.program, spec.main.arguments), 7, "usage:") + "\n" +
      wrapText(spec.main.summary) + "\ncommands:\n";
  for (const auto& c : spec.commands) {
    std::string name = c.program.substr(c.program.rfind(' ') + 1);
    text += wrapText(firstSentence(c.summary), 17, "  " + name);
  }
  text += "\n" + wrapText(fmt::format(
                     "global options, before or after the command: --config=FILE, --help, "
                     "--version and the configuration flags. Run '{} COMMAND --help' for a "
                     "command's options and the configuration flags it uses.",
                     spec.main.program));
  text += "\n" + wrapText(fmt::format("documentation: {}", docPath("")));
  return text;
}

// ---- man pages --------------------------------------------------------------------------------

namespace {

// Text for roff: backslashes escaped, a line never starting with a control character.
std::string roff(std::string_view text) {
  std::string out;
  bool lineStart = true;
  for (char c : text) {
    if (lineStart && (c == '.' || c == '\'')) out += "\\&";
    if (c == '\\')
      out += "\\e";
    else if (c == '-')
      out += "\\-";
    else
      out += c;
    lineStart = c == '\n';
  }
  return out;
}

std::string upper(std::string text) {
  for (auto& c : text)
    c = char(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

std::string manHeader(const std::string& program, const std::string& summary) {
  std::string name = program;
  std::replace(name.begin(), name.end(), ' ', '-');
  std::string brief = firstSentence(summary);
  if (!brief.empty()) brief[0] = char(std::tolower(static_cast<unsigned char>(brief[0])));
  return fmt::format(".TH {} 1 \"\" \"tidemark {}\" \"tidemark\"\n.SH NAME\n{} \\- {}\n",
                     roff(upper(name)), kVersion, roff(name), roff(brief));
}

std::string manParagraphs(const std::string& text) {
  std::string out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = std::min(text.find('\n', start), text.size());
    if (end > start)
      out += (out.empty() ? "" : ".PP\n") + roff(text.substr(start, end - start)) + "\n";
    start = end + 1;
  }
  return out;
}

std::string manItem(const std::string& term, const std::string& text) {
  return ".TP\n.B " + roff(term) + "\n" + roff(text) + "\n";
}

std::string manOptions(const CommandSpec& spec, bool globals) {
  std::string out;
  for (const auto& o : spec.options)
    out += manItem(flagWithValue(o), o.help);
  if (globals) {
    out += manItem("--config=FILE", configHelpLine());
    out += manItem("--help", "show the help");
    out += manItem("--version", "show the version");
  }
  return out;
}

std::string manFlags(const std::vector<ConfigKeyInfo>& keys, Programs commands) {
  std::string out =
      ".SH CONFIGURATION FLAGS\nEach flag overrides a key of the configuration file; each key is "
      "also an environment variable. A flag beats the environment, which beats the file.\n";
  for (const auto& key : keys) {
    std::string text =
        fmt::format("{} (key {}, environment {})", key.help, key.key, key.environment);
    // In the page of a program with commands: which of them use it.
    if (commands != 0 && (key.usedBy & commands) != commands) {
      std::string users;
      for (const auto& name : programNames(key.usedBy & commands))
        users += (users.empty() ? "" : ", ") + name;
      text += fmt::format("; used by {}", users);
    }
    out += manItem("--" + key.flag + "=VALUE", text);
  }
  out += ".PP\n" + roff(secretsNote()) + ".\n";
  return out;
}

std::string manExitStatus(const std::vector<CommandSpec>& specs) {
  std::string out = ".SH EXIT STATUS\n";
  for (const auto& spec : specs) {
    if (specs.size() > 1) out += ".SS " + roff(spec.program) + "\n";
    for (const auto& line : spec.exitStatuses)
      out += manItem(line.status, line.meaning);
    out += ".PP\n" + roff(spec.failureStatuses) + " (below).\n";
  }
  if (specs.size() > 1) out += ".SS the causes of a failure\n";
  for (ErrorCode code : allErrorCodes())
    out += manItem(std::to_string(exitStatus(code)), std::string(errorMeaning(code)));
  return out;
}

std::string manFooter(const std::string& program) {
  std::string seeAlso;
  for (const char* other : {"tidemark", "tidemark-archive-push", "tidemark-archive-get",
                            "tidemark-basebackup", "tidemark-recover"})
    if (program != other)
      seeAlso += fmt::format("{}.BR {} (1)", seeAlso.empty() ? "" : ",\n", roff(other));
  return fmt::format(
      ".SH ENVIRONMENT\n.TP\n.B TIDEMARK_CONFIG\nthe configuration file when \\-\\-config is not "
      "given\n.TP\n.B TIDEMARK_<SECTION>_<KEY>\na configuration key (see CONFIGURATION "
      "FLAGS)\n.SH FILES\n.TP\n.I {}\nthe configuration file (optional: without one, the "
      "defaults apply)\n.SH SEE ALSO\n{}\n.PP\nThe documentation in\n.IR {} :\nREADME.md, "
      "configuration.md, archiving.md, recovery.md and the others.\n",
      roff(kDefaultConfigFile), seeAlso, roff(docPath("")));
}

}  // namespace

std::string manPage(const CommandSpec& spec) {
  std::string out = manHeader(spec.program, spec.summary);
  out += ".SH SYNOPSIS\n.B " + roff(spec.program) + "\n[OPTIONS]" +
         (spec.arguments.empty() ? "" : " " + roff(spec.arguments)) + "\n";
  out += ".SH DESCRIPTION\n" + manParagraphs(spec.summary);
  out += ".SH OPTIONS\n" + manOptions(spec, spec.readsConfig);
  if (spec.readsConfig) out += manFlags(flagKeys(spec), 0);
  out += manExitStatus({spec});
  out += manFooter(spec.program);
  return out;
}

std::string manPage(const MultiCommandSpec& spec) {
  const std::string& program = spec.main.program;
  std::string out = manHeader(program, spec.main.summary);
  out += ".SH SYNOPSIS\n.B " + roff(program) + "\n[GLOBAL OPTIONS] COMMAND [OPTIONS]\n";
  out += ".SH DESCRIPTION\n" + manParagraphs(spec.main.summary);
  out +=
      ".PP\nGlobal options (\\-\\-config, \\-\\-help, \\-\\-version and the "
      "configuration flags) may come before the command or after it.\n";
  out += ".SH COMMANDS\n";
  Programs users = 0;
  for (const auto& c : spec.commands) {
    out += ".SS " + roff(c.program) + (c.arguments.empty() ? "" : " " + roff(c.arguments)) + "\n";
    out += manParagraphs(c.summary) + manOptions(c, false);
    if (c.readsConfig) users |= c.keysOf;
  }
  out += ".SH GLOBAL OPTIONS\n" + manOptions({}, true);
  CommandSpec all{.keysOf = users};
  out += manFlags(flagKeys(all), users);
  out += manExitStatus(spec.commands);
  out += manFooter(program);
  return out;
}

// ---- commands -----------------------------------------------------------------------------------

CommandCall splitCommand(int argc, const char* const* argv) {
  CommandCall call;
  call.args.push_back(argc > 0 ? argv[0] : "tidemark");
  std::vector<std::string> before;
  int i = 1;
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.size() < 2 || arg[0] != '-') break;
    if (arg == "--help" || arg == "-h") {
      call.help = true;
      before.push_back(arg);
      continue;
    }
    if (arg == "--version") {
      call.version = true;
      before.push_back(arg);
      continue;
    }
    std::string name = arg.substr(0, arg.find('='));
    bool global = name == "--config";
    for (const auto& key : configKeyInfo())
      global = global || name == "--" + key.flag;
    if (!global)
      throw Error(
          ErrorCode::Usage,
          fmt::format("option '{}' is not a global option: it goes after the command", name),
          "only --config, --help, --version and the configuration flags may come before "
          "the command: tidemark [GLOBAL OPTIONS] COMMAND [OPTIONS]");
    before.push_back(arg);
    if (name == arg && i + 1 < argc) before.push_back(argv[++i]);  // "--config FILE"
  }
  if (i < argc) call.command = argv[i++];
  call.args.insert(call.args.end(), before.begin(), before.end());
  for (; i < argc; ++i)
    call.args.emplace_back(argv[i]);
  return call;
}

}  // namespace tidemark
