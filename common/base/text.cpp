// Small text helpers shared by messages.
#include "common/base/text.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

namespace tidemark {

std::string printable(std::string_view text, std::size_t limit) {
  std::string out(text.substr(0, limit));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  if (text.size() > limit) out += "...";
  return out;
}

std::string plural(std::uint64_t count, std::string_view one, std::string_view many) {
  return fmt::format("{} {}", count, count == 1 ? one : many);
}

std::string describeRun(std::string_view first, std::string_view last, std::uint64_t files) {
  if (first == last) return std::string(first);
  return fmt::format("{} to {} ({} files)", first, last, files);
}

std::string shellQuote(const std::string& word) {
  bool plain = !word.empty();
  for (unsigned char c : word)
    if (!std::isalnum(c) && std::string_view("/._-=:,+@%").find(char(c)) == std::string_view::npos)
      plain = false;
  if (plain) return word;
  std::string out = "'";
  for (char c : word) {
    if (c == '\'')
      out += "'\\''";
    else
      out.push_back(c);
  }
  return out + "'";
}

std::string humanBytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double value = double(bytes) / 1024;
  int unit = 0;
  // 1023.95 and up would print as "1024.0": show it as 1.0 of the next unit instead.
  while (value >= 1023.95 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, kUnits[unit]);
}

namespace {

std::size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                  std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string closestMatch(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t bestDistance = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const auto& candidate : candidates) {
    std::size_t d = editDistance(word, candidate);
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return best;
}

std::string didYouMean(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best = closestMatch(word, candidates);
  return best.empty() ? std::string() : fmt::format("did you mean '{}'?", best);
}

std::optional<std::uint64_t> parseDecimal(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    std::uint64_t digit = std::uint64_t(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

bool parseByteSize(std::string_view text, std::uint64_t& out) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
      s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
      s.remove_suffix(1);
    return s;
  };
  text = trim(text);
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])))
    ++digits;
  if (digits == 0 || digits > 20) return false;
  errno = 0;
  std::uint64_t number = std::strtoull(std::string(text.substr(0, digits)).c_str(), nullptr, 10);
  if (errno == ERANGE) return false;
  std::string unit(trim(text.substr(digits)));
  std::transform(unit.begin(), unit.end(), unit.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  std::uint64_t multiplier;
  if (unit.empty() || unit == "b")
    multiplier = 1;
  else if (unit == "k" || unit == "kib")
    multiplier = 1ULL << 10;
  else if (unit == "m" || unit == "mib")
    multiplier = 1ULL << 20;
  else if (unit == "g" || unit == "gib")
    multiplier = 1ULL << 30;
  else if (unit == "t" || unit == "tib")
    multiplier = 1ULL << 40;
  else if (unit == "kb")
    multiplier = 1000ULL;
  else if (unit == "mb")
    multiplier = 1000ULL * 1000;
  else if (unit == "gb")
    multiplier = 1000ULL * 1000 * 1000;
  else if (unit == "tb")
    multiplier = 1000ULL * 1000 * 1000 * 1000;
  else
    return false;
  if (number > UINT64_MAX / multiplier) return false;
  out = number * multiplier;
  return true;
}

std::optional<std::int64_t> parseDurationSeconds(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
    ++digits;
  auto number = parseDecimal(text.substr(0, digits));
  if (!number) return std::nullopt;
  std::string_view unit = text.substr(digits);
  std::int64_t scale = unit.empty() || unit == "s" ? 1
                       : unit == "m"               ? 60
                       : unit == "h"               ? 3600
                       : unit == "d"               ? 86400
                       : unit == "w"               ? 7 * 86400
                                                   : 0;
  constexpr std::uint64_t kLimit = 100ULL * 366 * 86400;
  if (scale == 0 || *number > kLimit / std::uint64_t(scale)) return std::nullopt;
  return std::int64_t(*number) * scale;
}

std::string formatDuration(std::int64_t seconds) {
  for (auto [unit, scale] : {std::pair{'w', 7 * 86400}, {'d', 86400}, {'h', 3600}, {'m', 60}})
    if (seconds != 0 && seconds % scale == 0) return fmt::format("{}{}", seconds / scale, unit);
  return fmt::format("{}s", seconds);
}

std::string hostName() {
  char name[256] = "";
  if (::gethostname(name, sizeof name - 1) != 0) return "?";
  return name;
}

std::string wrapText(std::string_view text, std::size_t indent, std::string_view lead,
                     std::size_t width) {
  std::string out, line(lead);
  const std::string margin(indent, ' ');
  if (line.size() < indent)
    line.append(indent - line.size(), ' ');
  else if (!line.empty() && !text.empty()) {
    out += line + "\n";
    line = margin;
  }
  bool started = false;  // whether `line` holds a word after its margin
  auto flush = [&] {
    while (!line.empty() && line.back() == ' ')
      line.pop_back();
    out += line + "\n";
    line = margin;
    started = false;
  };
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = std::min(text.find('\n', start), text.size());
    std::string_view paragraph = text.substr(start, end - start);
    for (std::size_t at = 0; at < paragraph.size();) {
      if (paragraph[at] == ' ') {
        ++at;
        continue;
      }
      std::size_t stop = std::min(paragraph.find(' ', at), paragraph.size());
      std::string_view word = paragraph.substr(at, stop - at);
      if (started && line.size() + 1 + word.size() > width) flush();
      if (started) line += ' ';
      line += word;
      started = true;
      at = stop;
    }
    flush();
    start = end + 1;
  }
  return out;
}

}  // namespace tidemark
