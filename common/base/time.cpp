// Time formatting and parsing.
#include "common/base/time.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <mutex>
#include <regex>
#include <set>
#include <vector>

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
      "write the time with its zone, e.g. '2026-11-22 10:42:07+01', '2026-11-22T09:42:07Z', "
      "'2026-11-22 09:42:07 UTC' or '2026-11-22 10:42:07 Europe/Paris' (a time without a zone "
      "would be read in the server's time zone; abbreviations such as CET or EST are ambiguous)");
}

// ---- IANA zones, through the C library -------------------------------------------------------
//
// libstdc++ 12 has no std::chrono::locate_zone, so a zone is read by glibc: TZ=":Europe/Paris"
// and localtime_r, under a lock, with the previous TZ put back after (docs/decisions.md).

std::mutex zoneMutex;

std::string zoneDirectory() {
  const char* dir = std::getenv("TZDIR");
  return dir != nullptr && *dir != '\0' ? dir : "/usr/share/zoneinfo";
}

// Whether the zone database holds `zone` (glibc silently takes an unknown TZ for UTC).
bool knownZone(const std::string& zone) {
  static const std::regex kName(R"([A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)+)");
  if (!std::regex_match(zone, kName)) return false;
  std::ifstream file(zoneDirectory() + "/" + zone, std::ios::binary);
  char magic[4] = {};
  return file.read(magic, 4) && std::string_view(magic, 4) == "TZif";
}

// TZ set to a zone while it lives, under zoneMutex.
class ZoneScope {
 public:
  explicit ZoneScope(const std::string& zone) : lock_(zoneMutex) {
    if (const char* old = std::getenv("TZ")) saved_ = old;
    ::setenv("TZ", (":" + zone).c_str(), 1);
    ::tzset();
  }
  ~ZoneScope() {
    if (saved_)
      ::setenv("TZ", saved_->c_str(), 1);
    else
      ::unsetenv("TZ");
    ::tzset();
  }
  ZoneScope(const ZoneScope&) = delete;
  ZoneScope& operator=(const ZoneScope&) = delete;

  struct Local {
    long offset = 0;     // seconds east of UTC
    std::string abbrev;  // "CET"
    std::tm tm{};
  };
  Local at(std::int64_t seconds) const {
    std::time_t t = std::time_t(seconds);
    Local local;
    ::localtime_r(&t, &local.tm);
    local.offset = local.tm.tm_gmtoff;
    local.abbrev = local.tm.tm_zone != nullptr ? local.tm.tm_zone : "";
    return local;
  }

 private:
  std::lock_guard<std::mutex> lock_;
  std::optional<std::string> saved_;
};

std::string offsetText(long offset) {
  long magnitude = offset < 0 ? -offset : offset;
  return fmt::format("{}{:02}:{:02}", offset < 0 ? '-' : '+', magnitude / 3600,
                     magnitude % 3600 / 60);
}

std::string utcText(std::int64_t seconds) {
  return formatUtcText(UtcSeconds(std::chrono::seconds(seconds)));
}

std::string localText(const std::tm& tm) {
  char buffer[64];
  std::size_t n = std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S", &tm);
  return std::string(buffer, n);
}

[[noreturn]] void unknownZone(const std::string& text, std::string_view what,
                              const std::string& zone) {
  throw Error(ErrorCode::Usage,
              fmt::format("{} '{}' names the time zone '{}', which the time zone database ({}) "
                          "does not hold",
                          what, text, zone, zoneDirectory()),
              "give an IANA zone name as in 'timedatectl list-timezones' (e.g. Europe/Paris; the "
              "tzdata package installs them) or an offset, e.g. '2026-11-22 10:42:07+01'");
}

// The UTC second the wall-clock time `local` (its fields read as if UTC) of `zone` is; refused
// when that local time happened twice or never.
std::int64_t resolveLocal(std::int64_t local, const std::string& zone, const std::string& text,
                          std::string_view what) {
  ZoneScope scope(zone);
  // The offsets in force around that wall-clock time (any instant it can be lies within 16 h).
  std::set<long> offsets;
  for (std::int64_t probe : {-86400, -43200, 0, 43200, 86400})
    offsets.insert(scope.at(local + probe).offset);
  std::vector<std::int64_t> instants;
  for (long offset : offsets)
    if (scope.at(local - offset).offset == offset) instants.push_back(local - offset);
  std::sort(instants.begin(), instants.end());
  if (instants.size() == 1) return instants.front();
  std::tm shown{};
  std::time_t asUtc = std::time_t(local);
  ::gmtime_r(&asUtc, &shown);
  const std::string wall = localText(shown);
  if (instants.size() > 1) {
    auto first = scope.at(instants.front()), second = scope.at(instants.back());
    throw Error(
        ErrorCode::Usage,
        fmt::format("{} '{}' happened twice in {}: at {} ({}, {}) and at {} ({}, {})", what, text,
                    zone, utcText(instants.front()), first.abbrev, offsetText(first.offset),
                    utcText(instants.back()), second.abbrev, offsetText(second.offset)),
        fmt::format("give the offset of the one you mean: '{}{}' or '{}{}'", wall,
                    offsetText(first.offset), wall, offsetText(second.offset)));
  }
  // In a gap: find the change of offset around it, to name the wall-clock times that were skipped.
  std::int64_t low = local - 86400, high = local + 86400;
  const long before = scope.at(low).offset;
  while (high - low > 1) {
    std::int64_t middle = low + (high - low) / 2;
    (scope.at(middle).offset == before ? low : high) = middle;
  }
  auto from = scope.at(high - 1), to = scope.at(high);
  std::tm gapStart{}, gapEnd{};
  std::time_t start = std::time_t(high + before), end = std::time_t(high + to.offset);
  ::gmtime_r(&start, &gapStart);
  ::gmtime_r(&end, &gapEnd);
  throw Error(
      ErrorCode::Usage,
      fmt::format("{} '{}' never happened in {}: its clocks went from {} ({}, {}) to {} "
                  "({}, {}) at {}",
                  what, text, zone, localText(gapStart), from.abbrev, offsetText(from.offset),
                  localText(gapEnd), to.abbrev, offsetText(to.offset), utcText(high)),
      fmt::format("give a time outside that gap, or an offset: '{}{}' is {}", wall,
                  offsetText(from.offset), utcText(local - from.offset)));
}

const std::regex& timestampPattern() {
  static const std::regex kPattern(
      R"(^\s*(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?\s*(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?|[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)+)?\s*$)",
      std::regex::icase);
  return kPattern;
}

bool namedZone(const std::string& zone) {
  if (zone.empty() || zone[0] == '+' || zone[0] == '-') return false;
  std::string upper;
  for (char c : zone)
    upper.push_back(char(std::toupper(static_cast<unsigned char>(c))));
  return upper != "Z" && upper != "UTC" && upper != "GMT";
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
  std::smatch m;
  if (!std::regex_match(text, m, timestampPattern()))
    badTimestamp(text, what, "is not a timestamp");
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
  std::int64_t offset = 0;
  if (namedZone(zone)) {
    if (!knownZone(zone)) unknownZone(text, what, zone);
    offset = *seconds - resolveLocal(*seconds, zone, text, what);
  } else if (zone[0] == '+' || zone[0] == '-') {
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

std::optional<std::string> timestampZoneName(const std::string& text) {
  std::smatch m;
  if (!std::regex_match(text, m, timestampPattern()) || !m[8].matched || !namedZone(m[8]))
    return std::nullopt;
  return m[8].str();
}

std::string formatInZone(UtcMicros time, const std::string& zone) {
  if (!knownZone(zone)) unknownZone(formatTimestamp(time), "the time", zone);
  auto seconds = std::chrono::floor<std::chrono::seconds>(time);
  auto micros = (time - seconds).count();
  ZoneScope scope(zone);
  auto local = scope.at(seconds.time_since_epoch().count());
  std::string fraction;
  if (micros != 0) {
    fraction = fmt::format(".{:06}", micros);
    while (fraction.back() == '0')
      fraction.pop_back();
  }
  return fmt::format("{}{} {} ({})", localText(local.tm), fraction, local.abbrev,
                     offsetText(local.offset));
}

std::string formatTimestamp(UtcMicros time) {
  auto seconds = std::chrono::floor<std::chrono::seconds>(time);
  auto micros = (time - seconds).count();
  return fmt::format("{}.{:06}+00", strftimeUtc(seconds, "%Y-%m-%d %H:%M:%S"), micros);
}

}  // namespace tidemark
