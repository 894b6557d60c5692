// Recovery target parsing.
#include "recover/target.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <ctime>
#include <regex>

#include "common/error.h"
#include "common/pg/connection.h"
#include "common/repo/stanza.h"

namespace tidemark::recover {

namespace {

[[noreturn]] void badTime(const std::string& text, const std::string& why) {
  throw Error(ErrorCode::Usage, fmt::format("--target-time '{}' {}", text, why),
              "write the time with its zone, e.g. '2026-11-22 10:42:07+01', '2026-11-22T09:42:07Z' or "
              "'2026-11-22 09:42:07 UTC' (a time without a zone would be read in the server's time zone)");
}

}  // namespace

double parseTimestamp(const std::string& text) {
  static const std::regex kPattern(
      R"(^\s*(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?\s*(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?\s*$)",
      std::regex::icase);
  std::smatch m;
  if (!std::regex_match(text, m, kPattern)) badTime(text, "is not a timestamp");
  if (!m[8].matched) badTime(text, "has no time zone");
  std::tm tm{};
  tm.tm_year = std::stoi(m[1]) - 1900;
  tm.tm_mon = std::stoi(m[2]) - 1;
  tm.tm_mday = std::stoi(m[3]);
  tm.tm_hour = std::stoi(m[4]);
  tm.tm_min = std::stoi(m[5]);
  tm.tm_sec = m[6].matched ? std::stoi(m[6]) : 0;
  std::tm check = tm;
  std::time_t seconds = ::timegm(&tm);
  // timegm normalises 2026-02-30 into March: refuse impossible dates instead.
  if (tm.tm_year != check.tm_year || tm.tm_mon != check.tm_mon || tm.tm_mday != check.tm_mday ||
      tm.tm_hour != check.tm_hour || tm.tm_min != check.tm_min || tm.tm_sec != check.tm_sec)
    badTime(text, "is not a valid date and time");
  double fraction = 0;
  if (m[7].matched) fraction = std::stod("0." + m[7].str());
  std::string zone = m[8];
  int offset = 0;
  if (zone[0] == '+' || zone[0] == '-') {
    std::string digits;
    for (char c : zone)
      if (std::isdigit(static_cast<unsigned char>(c))) digits.push_back(c);
    int hours = std::stoi(digits.substr(0, 2));
    int minutes = digits.size() > 2 ? std::stoi(digits.substr(2, 2)) : 0;
    if (hours > 15 || minutes > 59) badTime(text, "has an impossible zone offset");
    offset = (hours * 3600 + minutes * 60) * (zone[0] == '-' ? -1 : 1);
  }
  return double(seconds - offset) + fraction;
}

std::string formatTimestamp(double seconds) {
  double whole = std::floor(seconds);
  auto micros = std::int64_t(std::llround((seconds - whole) * 1e6));
  std::time_t t = std::time_t(whole);
  if (micros >= 1000000) {
    ++t;
    micros -= 1000000;
  }
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buffer[40];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S", &tm);
  return fmt::format("{}.{:06}+00", buffer, micros);
}

double parseIsoUtc(const std::string& text) {
  auto seconds = repo::parseUtc(text);
  if (!seconds) throw error(ErrorCode::Corrupt, "'{}' is not an ISO 8601 UTC time", text);
  return double(*seconds);
}

std::string Target::describe() const {
  switch (kind) {
    case TargetKind::Latest: return "the end of the archived WAL";
    case TargetKind::Time: return fmt::format("time {} ({} UTC)", text, formatTimestamp(time));
    case TargetKind::Lsn: return fmt::format("WAL location {}", pg::formatLsn(lsn));
    case TargetKind::Xid: return fmt::format("transaction {}", text);
    case TargetKind::Name: return fmt::format("restore point '{}'", text);
    case TargetKind::Immediate: return "the end of the backup (immediate)";
  }
  return "?";
}

}  // namespace tidemark::recover
