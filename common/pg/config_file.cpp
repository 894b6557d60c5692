// postgresql.conf directives that name files, read and rewritten.
#include "common/pg/config_file.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/base/error.h"
#include "common/base/text.h"

namespace tidemark::pg {

namespace {

bool isLetter(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool isDigit(char c) {
  return c >= '0' && c <= '9';
}
bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

// One line as guc-file.l reads it: `name [=] value [# comment]`. nullopt for anything else.
std::optional<std::pair<std::string, std::string>> parseLine(std::string_view line) {
  std::size_t i = 0;
  auto skipSpace = [&] {
    while (i < line.size() && isSpace(line[i]))
      ++i;
  };
  skipSpace();
  if (i >= line.size() || !isLetter(line[i])) return std::nullopt;
  std::size_t start = i;
  while (i < line.size() && (isLetter(line[i]) || isDigit(line[i]) || line[i] == '.'))
    ++i;
  std::string name(line.substr(start, i - start));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; });
  skipSpace();
  if (i < line.size() && line[i] == '=') ++i;
  skipSpace();
  if (i >= line.size()) return std::nullopt;
  std::string value;
  if (line[i] == '\'') {
    // DeescapeQuotedString: '' and \' are quotes, \b \f \n \r \t and \ooo escapes, \x is x.
    ++i;
    bool closed = false;
    while (i < line.size()) {
      char c = line[i++];
      if (c == '\'') {
        if (i < line.size() && line[i] == '\'') {
          value.push_back('\'');
          ++i;
          continue;
        }
        closed = true;
        break;
      }
      if (c != '\\' || i >= line.size()) {
        value.push_back(c);
        continue;
      }
      char e = line[i++];
      switch (e) {
        case 'b':
          value.push_back('\b');
          break;
        case 'f':
          value.push_back('\f');
          break;
        case 'n':
          value.push_back('\n');
          break;
        case 'r':
          value.push_back('\r');
          break;
        case 't':
          value.push_back('\t');
          break;
        default:
          if (e >= '0' && e <= '7') {
            int octal = e - '0';
            for (int k = 0; k < 2 && i < line.size() && line[i] >= '0' && line[i] <= '7'; ++k)
              octal = octal * 8 + (line[i++] - '0');
            value.push_back(char(octal));
          } else {
            value.push_back(e);
          }
      }
    }
    if (!closed) return std::nullopt;
  } else {
    // A bare word: an identifier, a number or an unquoted string (letters, digits, - . _ : /).
    std::size_t begin = i;
    while (i < line.size() && !isSpace(line[i]) && line[i] != '#')
      ++i;
    value = std::string(line.substr(begin, i - begin));
  }
  skipSpace();
  if (i < line.size() && line[i] != '#') return std::nullopt;
  return std::make_pair(std::move(name), std::move(value));
}

// Calls `each(lineNumber, line)` for every line, without its '\n'.
template <typename Each>
void forEachLine(std::string_view text, Each each) {
  std::size_t number = 0;
  while (!text.empty()) {
    std::size_t end = text.find('\n');
    each(number++, text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
}

}  // namespace

std::vector<ConfigDirective> configDirectives(std::string_view text,
                                              const std::vector<std::string>& names) {
  std::vector<ConfigDirective> out;
  forEachLine(text, [&](std::size_t number, std::string_view line) {
    auto parsed = parseLine(line);
    if (parsed && std::find(names.begin(), names.end(), parsed->first) != names.end())
      out.push_back({number, std::move(parsed->first), std::move(parsed->second)});
  });
  return out;
}

std::string rewriteConfig(
    std::string_view text, const std::vector<std::string>& names,
    const std::function<std::optional<ConfigReplacement>(const ConfigDirective&)>& replace,
    const std::string& note) {
  std::string out;
  out.reserve(text.size() + 256);
  forEachLine(text, [&](std::size_t number, std::string_view line) {
    auto parsed = parseLine(line);
    std::optional<ConfigReplacement> replacement;
    ConfigDirective directive;
    if (parsed && std::find(names.begin(), names.end(), parsed->first) != names.end()) {
      directive = {number, std::move(parsed->first), std::move(parsed->second)};
      replacement = replace(directive);
    }
    if (!replacement) {
      out.append(line);
    } else {
      std::string_view kept = line;
      if (!kept.empty() && kept.back() == '\r') kept.remove_suffix(1);
      out += "#";
      out.append(kept);
      out += "    # " + note;
      if (!replacement->commentOnly)
        out += "\n" + directive.name + " = " + quoteConfigValue(replacement->value);
    }
    out += "\n";
  });
  // The last line had no line break: keep it so.
  if (!text.empty() && text.back() != '\n' && !out.empty()) out.pop_back();
  return out;
}

std::string quoteConfigValue(const std::string& value) {
  // PostgreSQL's lexer ends a quoted value at a line break and reads what follows as a line of its
  // own; ALTER SYSTEM writes an escaped one back raw. No value tidemark writes may hold one.
  if (value.find_first_of("\r\n") != std::string::npos)
    throw Error(ErrorCode::InvalidInput,
                fmt::format("'{}' holds a line break, and a PostgreSQL setting is one line",
                            printable(value)),
                "give a value (a path, a flag, an environment variable) without a line break");
  std::string out = "'";
  for (char c : value) {
    if (c == '\'')
      out += "''";
    else if (c == '\\')
      out += "\\\\";
    else
      out.push_back(c);
  }
  return out + "'";
}

}  // namespace tidemark::pg
