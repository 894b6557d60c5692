// Command lines: options of a command, configuration flags, positional arguments, --help.
#include "common/config/command_line.h"

#include <fmt/format.h>

#include <algorithm>
#include <regex>

#include "common/base/error.h"
#include "common/base/text.h"
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
    known.push_back("--" + key.flag);

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
  if (!out.help && !out.version) {
    if (out.positional.size() < spec.minPositional)
      usageError(fmt::format("missing argument: {} {}", spec.program, spec.arguments));
    if (out.positional.size() > spec.maxPositional)
      usageError(fmt::format("unexpected argument '{}'", out.positional[spec.maxPositional]));
  }
  return out;
}

std::string helpText(const CommandSpec& spec) {
  std::string text = fmt::format("usage: {} [OPTIONS] {}\n\n{}\n\noptions:\n", spec.program,
                                 spec.arguments, spec.summary);
  auto line = [&](const std::string& flag, const std::string& help) {
    text += fmt::format("  {:<32} {}\n", flag, help);
  };
  for (const auto& o : spec.options)
    line("--" + o.name + (o.valueName.empty() ? "" : "=" + o.valueName), o.help);
  if (spec.readsConfig)
    line("--config=FILE",
         fmt::format("configuration file (default $TIDEMARK_CONFIG, else {})", kDefaultConfigFile));
  line("--help", "show this help");
  line("--version", "show the version");
  if (!spec.readsConfig) return text;
  text += "\nconfiguration flags (each also TIDEMARK_<SECTION>_<KEY>, or the key in the file):\n";
  for (const auto& key : configKeyInfo())
    if (!key.secret) line("--" + key.flag + "=VALUE", key.help);
  text +=
      "\nsecrets (s3.secret-access-key, s3.session-token) are read from the file or the "
      "environment only\n";
  return text;
}

}  // namespace tidemark
