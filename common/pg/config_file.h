// postgresql.conf's syntax, as far as tidemark needs it: the directives that name files (include,
// include_if_exists, include_dir, data_directory, hba_file, ident_file) and rewriting them in a
// restored copy. The grammar is PostgreSQL's (src/backend/utils/misc/guc-file.l): `name [=]
// value`, names case-insensitive, a value quoted with '...' ('' or \' for a quote, backslash
// escapes) or a bare word, '#' starting a comment.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tidemark::pg {

struct ConfigDirective {
  std::size_t line = 0;  // 0-based
  std::string name;      // lowercase
  std::string value;     // unquoted
};

// The directives of `text` whose name (lowercase) is one of `names`. Lines that are not a
// directive (comments, blank lines, syntax PostgreSQL itself would refuse) are skipped.
std::vector<ConfigDirective> configDirectives(std::string_view text,
                                              const std::vector<std::string>& names);

// What becomes of a directive in rewriteConfig.
struct ConfigReplacement {
  std::string value;
  bool commentOnly = false;  // comment the line out without a replacement
};
// `text` with each directive named in `names` replaced where `replace(directive)` says so: the
// line is kept, commented out, with `note` after it, and `name = 'value'` follows it (unless
// commentOnly). nullopt leaves the line as it is. Line endings and every other line are kept.
std::string rewriteConfig(
    std::string_view text, const std::vector<std::string>& names,
    const std::function<std::optional<ConfigReplacement>(const ConfigDirective&)>& replace,
    const std::string& note);

// A value quoted for postgresql.conf ('it''s').
std::string quoteConfigValue(const std::string& value);

}  // namespace tidemark::pg
