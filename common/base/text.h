// Small text helpers shared by messages: sizes, durations, suggestions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tidemark {

// "1 segment", "2 segments", "0 segments": a count and its noun, for every message that counts.
std::string plural(std::uint64_t count, std::string_view one, std::string_view many);

// "A to B (3 files)" for a run of consecutive files, "A" for one (first == last): how a gap in the
// archive, what the safety valve dropped and what expire deletes are named.
std::string describeRun(std::string_view first, std::string_view last, std::uint64_t files);

// "512 B", "16.0 MiB", "1.5 GiB".
std::string humanBytes(std::uint64_t bytes);

// Quotes a word for /bin/sh when it needs it ('it'\''s'); a plain word stays as it is.
std::string shellQuote(const std::string& word);

// The candidate closest to `word` by edit distance, or "" when none is plausibly meant.
std::string closestMatch(std::string_view word, const std::vector<std::string>& candidates);

// "did you mean 'x'?" for the closest candidate ("" when there is no close match); used as a hint.
std::string didYouMean(std::string_view word, const std::vector<std::string>& candidates);

// Untrusted text (a file name from an archive, a key from a server) made safe for a one-line
// message: control bytes shown as '?', at most `limit` bytes, then "...".
std::string printable(std::string_view text, std::size_t limit = 200);

// A decimal number written with digits only (no sign, space, "0x" or trailing text, which
// std::stoull would take); nullopt otherwise or beyond 2^64-1.
std::optional<std::uint64_t> parseDecimal(std::string_view text);

// This machine's name ("?" when it cannot be read), for lock owners and lease holders.
std::string hostName();

// Parses durations such as "14d", "36h", "2w", "90m", "30s" or "3600" (seconds); one number and
// one unit (s, m, h, d, w). nullopt for anything else or beyond 100 years.
std::optional<std::int64_t> parseDurationSeconds(std::string_view text);

// "14d", "36h", "90m", "45s": the largest unit that divides the duration exactly.
std::string formatDuration(std::int64_t seconds);

// `text` broken into lines of at most `width` columns at spaces, for --help: the first line
// starts with `lead` (an option's name, say) and the text follows it in column `indent` (on the
// next line when `lead` reaches that column), the next lines are indented by `indent` spaces (a
// hanging indent). A word longer than a line stays whole; "\n" in `text` starts a new line. Every
// line ends with "\n"; no line ends with a space.
std::string wrapText(std::string_view text, std::size_t indent = 0, std::string_view lead = {},
                     std::size_t width = 80);

// Parses sizes such as "16MiB", "5 MB", "1048576" (binary and decimal units, case-insensitive).
bool parseByteSize(std::string_view text, std::uint64_t& out);

}  // namespace tidemark
