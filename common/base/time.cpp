// Time formatting and parsing.
#include "common/base/time.h"

#include <fmt/format.h>

#include <cctype>
#include <ctime>
#include <regex>

#include "common/base/error.h"

namespace tidemark {

namespace {

std::string strftimeUtc(std::chrono::sys_seconds time, const char* format) {
  std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buffer[64];
  std::size_t n = std::strftime(buffer, sizeof buffer, format, &tm);
  return std::string(buffer, n);
}

// Seconds since the epoch of a broken-down UTC time; nullopt when a field is out of range
// (timegm would quietly normalise February 30 into March).
std::optional<std::int64_t> checkedTimegm(std::tm tm) {
  std::tm check = tm;
  std::time_t seconds = ::timegm(&tm);
  if (tm.tm_year != check.tm_year || tm.tm_mon != check.tm_mon || tm.tm_mday != check.tm_mday ||
      tm.tm_hour != check.tm_hour || tm.tm_min != check.tm_min || tm.tm_sec != check.tm_sec)
    return std::nullopt;
  return std::int64_t(seconds);
}

[[noreturn]] void badTimestamp(const std::string& text, std::string_view what,
                               const std::string& why) {
  throw Error(
      ErrorCode::Usage, fmt::format("{} '{}' {}", what, text, why),
      "write the time with its zone, e.g. '2026-11-22 10:42:07+01', '2026-11-22T09:42:07Z' or "
      "'2026-11-22 09:42:07 UTC' (a time without a zone would be read in the server's time zone)");
}

}  // namespace

UtcSeconds utcNow(bool roundUp) {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return UtcSeconds(std::chrono::seconds(now.tv_sec + (roundUp && now.tv_nsec > 0 ? 1 : 0)));
}

std::string formatUtc(UtcSeconds time) {
  return strftimeUtc(time, "%Y-%m-%dT%H:%M:%SZ");
}

std::string formatUtcText(UtcSeconds time) {
  return strftimeUtc(time, "%Y-%m-%d %H:%M:%S UTC");
}

std::optional<UtcSeconds> parseUtc(std::string_view text) {
  // Exactly "YYYY-MM-DDTHH:MM:SSZ": strptime alone would take spaces and one-digit fields.
  static constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:ddZ";
  if (text.size() != kShape.size()) return std::nullopt;
  for (std::size_t i = 0; i < kShape.size(); ++i) {
    bool digit = std::isdigit(static_cast<unsigned char>(text[i])) != 0;
    if (kShape[i] == 'd' ? !digit : text[i] != kShape[i]) return std::nullopt;
  }
  auto number = [&](std::size_t at, std::size_t length) {
    int n = 0;
    for (std::size_t i = at; i < at + length; ++i)
      n = n * 10 + (text[i] - '0');
    return n;
  };
  std::tm tm{};
  tm.tm_year = number(0, 4) - 1900;
  tm.tm_mon = number(5, 2) - 1;
  tm.tm_mday = number(8, 2);
  tm.tm_hour = number(11, 2);
  tm.tm_min = number(14, 2);
  tm.tm_sec = number(17, 2);
  auto seconds = checkedTimegm(tm);
  if (!seconds) return std::nullopt;
  return UtcSeconds(std::chrono::seconds(*seconds));
}

UtcMicros parseTimestamp(const std::string& text, std::string_view what) {
  static const std::regex kPattern(
      R"(^\s*(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?\s*(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?\s*$)",
      std::regex::icase);
  std::smatch m;
  if (!std::regex_match(text, m, kPattern)) badTimestamp(text, what, "is not a timestamp");
  if (!m[8].matched) badTimestamp(text, what, "has no time zone");
  std::tm tm{};
  tm.tm_year = std::stoi(m[1]) - 1900;
  tm.tm_mon = std::stoi(m[2]) - 1;
  tm.tm_mday = std::stoi(m[3]);
  tm.tm_hour = std::stoi(m[4]);
  tm.tm_min = std::stoi(m[5]);
  tm.tm_sec = m[6].matched ? std::stoi(m[6]) : 0;
  auto seconds = checkedTimegm(tm);
  if (!seconds) badTimestamp(text, what, "is not a valid date and time");
  std::int64_t micros = 0;
  if (m[7].matched) {
    std::string digits = m[7].str();
    digits.resize(6, '0');
    micros = std::stoll(digits);
  }
  std::string zone = m[8];
  int offset = 0;
  if (zone[0] == '+' || zone[0] == '-') {
    std::string digits;
    for (char c : zone)
      if (std::isdigit(static_cast<unsigned char>(c))) digits.push_back(c);
    int hours = std::stoi(digits.substr(0, 2));
    int minutes = digits.size() > 2 ? std::stoi(digits.substr(2, 2)) : 0;
    if (hours > 15 || minutes > 59) badTimestamp(text, what, "has an impossible zone offset");
    offset = (hours * 3600 + minutes * 60) * (zone[0] == '-' ? -1 : 1);
  }
  return UtcMicros(std::chrono::microseconds((*seconds - offset) * 1000000 + micros));
}

std::string formatTimestamp(UtcMicros time) {
  auto seconds = std::chrono::floor<std::chrono::seconds>(time);
  auto micros = (time - seconds).count();
  return fmt::format("{}.{:06}+00", strftimeUtc(seconds, "%Y-%m-%d %H:%M:%S"), micros);
}

}  // namespace tidemark
