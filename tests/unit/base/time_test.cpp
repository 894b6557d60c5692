// Unit tests of common/base/time.h: the UTC form tidemark stores, and the timestamps operators
// type as recovery targets.
#include "common/base/time.h"

#include <doctest/doctest.h>

#include "common/base/error.h"
#include "support/check.h"

using namespace tidemark;
using test::Containing;
using test::thrownError;
using test::what;

namespace {

UtcSeconds seconds(std::int64_t n) {
  return UtcSeconds(std::chrono::seconds(n));
}

// Microseconds since the epoch of a parsed --target-time.
std::int64_t micros(const std::string& text) {
  return parseTimestamp(text, "--target-time").time_since_epoch().count();
}

Error refused(const std::string& text) {
  return thrownError([&] { parseTimestamp(text, "--target-time"); });
}

constexpr std::int64_t k0942 = 1795340527;  // 2026-11-22 09:42:07 UTC

}  // namespace

TEST_CASE("formatUtc and parseUtc read back what tidemark stores, and nothing else") {
  CHECK(formatUtc(seconds(1795000000)) == "2026-11-18T11:06:40Z");
  CHECK(formatUtc(seconds(0)) == "1970-01-01T00:00:00Z");
  CHECK(parseUtc("2026-11-18T11:06:40Z") == seconds(1795000000));
  UtcSeconds now = utcNow();
  CHECK(parseUtc(formatUtc(now)) == now);
  for (const char* bad :
       {"", "2026-11-18 09:06:40Z", "2026-11-18T09:06:40", "2026-11-18T09:06:40Z+1",
        "2026-11-18T09:06:40.5Z", "2026-1-18T09:06:40Z", " 2026-11-18T09:06:40Z",
        "2026-02-30T00:00:00Z", "2026-11-18T24:00:00Z", "2026-12-31T23:59:60Z",
        "2026-13-01T00:00:00Z", "2026-11-18T09:06:40z", "2026-11-18t09:06:40Z"})
    CHECK_MESSAGE(!parseUtc(bad), bad);
  CHECK(formatUtcText(seconds(1795000000)) == "2026-11-18 11:06:40 UTC");
}

TEST_CASE("utcNow is the current second, and rounds up only when asked and not on a second") {
  timespec before{};
  ::clock_gettime(CLOCK_REALTIME, &before);
  UtcSeconds now = utcNow();
  UtcSeconds up = utcNow(true);
  timespec after{};
  ::clock_gettime(CLOCK_REALTIME, &after);
  CHECK(now.time_since_epoch().count() >= before.tv_sec);
  CHECK(now.time_since_epoch().count() <= after.tv_sec);
  // Rounded up: never before the moment it was taken.
  CHECK(up.time_since_epoch().count() >= before.tv_sec);
  CHECK(up.time_since_epoch().count() <= after.tv_sec + 1);
  CHECK(up >= now);
}

TEST_CASE("parseTimestamp reads a timestamp with its zone, to the microsecond") {
  SUBCASE("zones: Z, UTC, GMT, in any case") {
    for (const char* text :
         {"2026-11-22T09:42:07Z", "2026-11-22 09:42:07Z", "2026-11-22 09:42:07 UTC",
          "2026-11-22 09:42:07 utc", "2026-11-22 09:42:07 GMT", "2026-11-22t09:42:07z"}) {
      CAPTURE(text);
      CHECK(micros(text) == k0942 * 1000000);
    }
  }
  SUBCASE("offsets: hours, hours and minutes, with or without a colon, either sign") {
    CHECK(micros("2026-11-22 10:42:07+01") == k0942 * 1000000);
    CHECK(micros("2026-11-22 10:42:07 +01") == k0942 * 1000000);
    CHECK(micros("2026-11-22 11:12:07+01:30") == k0942 * 1000000);
    CHECK(micros("2026-11-22 11:12:07+0130") == k0942 * 1000000);
    CHECK(micros("2026-11-22 04:42:07-05") == k0942 * 1000000);
    CHECK(micros("2026-11-22 04:12:07-05:30") == k0942 * 1000000);
    CHECK(micros("2026-11-23 00:42:07+15") == k0942 * 1000000);
  }
  SUBCASE("an offset that crosses midnight, a month and a year") {
    CHECK(micros("2027-01-01 00:30:00+01") == micros("2026-12-31 23:30:00Z"));
    CHECK(micros("2026-02-28 23:00:00-02") == micros("2026-03-01 01:00:00Z"));
  }
  SUBCASE("fractional seconds, up to six digits, exactly") {
    CHECK(micros("2026-11-22 09:42:07.5Z") == k0942 * 1000000 + 500000);
    CHECK(micros("2026-11-22 09:42:07.25 UTC") == k0942 * 1000000 + 250000);
    CHECK(micros("2026-11-22 09:42:07.000001Z") == k0942 * 1000000 + 1);
    CHECK(micros("2026-11-22 09:42:07.999999Z") == k0942 * 1000000 + 999999);
    CHECK(micros("2026-11-22 10:42:07.123456+01") == k0942 * 1000000 + 123456);
  }
  SUBCASE("seconds may be left out; surrounding spaces are ignored") {
    CHECK(micros("2026-11-22 09:42Z") == (k0942 - 7) * 1000000);
    CHECK(micros("  2026-11-22 09:42:07Z  ") == k0942 * 1000000);
  }
  SUBCASE("February 29 of a leap year") {
    CHECK(micros("2028-02-29 12:00:00Z") == micros("2028-03-01 12:00:00Z") - 86400LL * 1000000);
  }
}

TEST_CASE("parseTimestamp refuses what it cannot read exactly, naming the option and the text") {
  SUBCASE("no zone: it would be read in the server's time zone") {
    Error e = refused("2026-11-22 10:42:07");
    CHECK(e.code() == ErrorCode::Usage);
    CHECK(what(e) == "--target-time '2026-11-22 10:42:07' has no time zone");
    CHECK(e.hint() == Containing("'2026-11-22 10:42:07+01'"));
  }
  SUBCASE("impossible dates and times, leap seconds included") {
    for (const char* text : {"2026-02-30 00:00:00Z", "2027-02-29 00:00:00Z", "2026-04-31 12:00:00Z",
                             "2026-13-01 00:00:00Z", "2026-00-10 00:00:00Z", "2026-11-00 00:00:00Z",
                             "2026-11-22 24:00:00Z", "2026-11-22 23:60:00Z", "2026-12-31 23:59:60Z",
                             "2016-12-31 23:59:60Z"}) {
      CAPTURE(text);
      Error e = refused(text);
      CHECK(e.code() == ErrorCode::Usage);
      CHECK(what(e) == std::string("--target-time '") + text + "' is not a valid date and time");
    }
  }
  SUBCASE("impossible offsets") {
    for (const char* text :
         {"2026-11-22 10:42:07+16", "2026-11-22 10:42:07+01:60", "2026-11-22 10:42:07-99"}) {
      CAPTURE(text);
      CHECK(what(refused(text)) ==
            std::string("--target-time '") + text + "' has an impossible zone offset");
    }
  }
  SUBCASE("anything else is not a timestamp") {
    for (const char* text :
         {"", "yesterday", "2026-11-22", "10:42:07Z", "2026/11/22 10:42:07Z",
          "2026-11-22 10:42:07.1234567Z", "2026-11-22 10:42:07 CET", "2026-11-22 10:42:07+1",
          "2026-11-22 10:42:07Z trailing", "1795340527", "2026-11-22T10:42:07+01:00:00"}) {
      CAPTURE(text);
      Error e = refused(text);
      CHECK(e.code() == ErrorCode::Usage);
      CHECK(what(e) == std::string("--target-time '") + text + "' is not a timestamp");
    }
  }
}

TEST_CASE("formatTimestamp writes what PostgreSQL reads in recovery_target_time, and back") {
  CHECK(formatTimestamp(UtcMicros(std::chrono::seconds(k0942))) == "2026-11-22 09:42:07.000000+00");
  CHECK(formatTimestamp(UtcMicros(std::chrono::microseconds(k0942 * 1000000 + 250000))) ==
        "2026-11-22 09:42:07.250000+00");
  CHECK(formatTimestamp(UtcMicros(std::chrono::microseconds(k0942 * 1000000 + 999999))) ==
        "2026-11-22 09:42:07.999999+00");
  for (const char* text :
       {"2026-11-22 10:42:07.123456+01", "2000-01-01 00:00:00Z", "2026-11-22 09:42:07.000001Z"}) {
    CAPTURE(text);
    UtcMicros t = parseTimestamp(text, "t");
    CHECK(parseTimestamp(formatTimestamp(t), "t") == t);
  }
}

TEST_CASE("parseTimestamp reads IANA zone names through the system's time zone database") {
  SUBCASE("a named zone lands on the same instant as its UTC offset, in winter and in summer") {
    CHECK(micros("2026-11-22 10:42:07 Europe/Paris") == micros("2026-11-22 10:42:07+01"));
    CHECK(micros("2026-11-22 10:42:07 Europe/Paris") == k0942 * 1000000);
    CHECK(micros("2026-07-01 12:00:00 Europe/Paris") == micros("2026-07-01 12:00:00+02"));
    CHECK(micros("2026-11-22 04:42:07 America/New_York") == k0942 * 1000000);
    CHECK(micros("2026-07-01 12:00:00 America/New_York") == micros("2026-07-01 12:00:00-04"));
    CHECK(micros("2026-11-22 15:12:07 Asia/Kolkata") == k0942 * 1000000);
    CHECK(micros("2026-11-22T10:42:07.25 Europe/Paris") == k0942 * 1000000 + 250000);
    CHECK(micros("2026-11-22 09:42:07 Etc/UTC") == k0942 * 1000000);
  }
  SUBCASE("just outside a change of offset, each side has its own offset") {
    CHECK(micros("2026-03-29 01:59:59 Europe/Paris") == micros("2026-03-29 01:59:59+01"));
    CHECK(micros("2026-03-29 03:00:00 Europe/Paris") == micros("2026-03-29 03:00:00+02"));
    CHECK(micros("2026-10-25 01:59:59 Europe/Paris") == micros("2026-10-25 01:59:59+02"));
    CHECK(micros("2026-10-25 03:00:00 Europe/Paris") == micros("2026-10-25 03:00:00+01"));
  }
  SUBCASE("a local time that happened twice is refused, naming both instants") {
    Error e = refused("2026-10-25 02:30:00 Europe/Paris");
    CHECK(e.code() == ErrorCode::Usage);
    CHECK(what(e) ==
          "--target-time '2026-10-25 02:30:00 Europe/Paris' happened twice in Europe/Paris: at "
          "2026-10-25 00:30:00 UTC (CEST, +02:00) and at 2026-10-25 01:30:00 UTC (CET, +01:00)");
    CHECK(e.hint() ==
          "give the offset of the one you mean: '2026-10-25 02:30:00+02:00' or "
          "'2026-10-25 02:30:00+01:00'");
  }
  SUBCASE("a local time that never happened is refused, naming the gap") {
    Error e = refused("2026-03-29 02:30:00 Europe/Paris");
    CHECK(e.code() == ErrorCode::Usage);
    CHECK(what(e) ==
          "--target-time '2026-03-29 02:30:00 Europe/Paris' never happened in Europe/Paris: its "
          "clocks went from 2026-03-29 02:00:00 (CET, +01:00) to 2026-03-29 03:00:00 (CEST, "
          "+02:00) at 2026-03-29 01:00:00 UTC");
    CHECK(e.hint() ==
          "give a time outside that gap, or an offset: '2026-03-29 02:30:00+01:00' is "
          "2026-03-29 01:30:00 UTC");
  }
  SUBCASE("a zone the database does not hold is refused; abbreviations are not zones") {
    Error e = refused("2026-11-22 10:42:07 Europe/Atlantis");
    CHECK(e.code() == ErrorCode::Usage);
    CHECK(what(e) ==
          "--target-time '2026-11-22 10:42:07 Europe/Atlantis' names the time zone "
          "'Europe/Atlantis', which the time zone database (/usr/share/zoneinfo) does "
          "not hold");
    CHECK(e.hint() == Containing("Europe/Paris"));
    for (const char* text : {"2026-11-22 10:42:07 CET", "2026-11-22 10:42:07 EST",
                             "2026-11-22 10:42:07 Europe/../../etc/passwd"}) {
      CAPTURE(text);
      CHECK(what(refused(text)) == std::string("--target-time '") + text + "' is not a timestamp");
    }
  }
  SUBCASE("the process's TZ is put back") {
    ::setenv("TZ", "Asia/Tokyo", 1);
    micros("2026-11-22 10:42:07 Europe/Paris");
    CHECK(std::string(std::getenv("TZ")) == "Asia/Tokyo");
    ::unsetenv("TZ");
    micros("2026-11-22 10:42:07 Europe/Paris");
    CHECK(std::getenv("TZ") == nullptr);
  }
}

TEST_CASE("formatInZone and timestampZoneName show a target in the zone it was given in") {
  UtcMicros t{std::chrono::seconds(k0942)};
  CHECK(formatInZone(t, "Europe/Paris") == "2026-11-22 10:42:07 CET (+01:00)");
  CHECK(formatInZone(t + std::chrono::microseconds(250000), "Asia/Kolkata") ==
        "2026-11-22 15:12:07.25 IST (+05:30)");
  CHECK(formatInZone(UtcMicros(std::chrono::seconds(1782900000)), "Europe/Paris") ==
        "2026-07-01 12:00:00 CEST (+02:00)");
  CHECK(timestampZoneName("2026-11-22 10:42:07 Europe/Paris") == "Europe/Paris");
  CHECK_FALSE(timestampZoneName("2026-11-22 10:42:07+01"));
  CHECK_FALSE(timestampZoneName("2026-11-22 10:42:07 UTC"));
  CHECK_FALSE(timestampZoneName("2026-11-22T09:42:07Z"));
}
