// Times: the UTC form every time tidemark stores ("2026-11-22T10:15:00Z"), the form people read,
// and the timestamps operators type (recovery targets), which must carry their zone.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace tidemark {

// A moment to the second: what tidemark stores (backup and stanza times).
using UtcSeconds = std::chrono::sys_seconds;
// A moment to the microsecond: what PostgreSQL compares recovery targets with.
using UtcMicros = std::chrono::sys_time<std::chrono::microseconds>;

// The current time: the second it is in, or with `roundUp` the next one unless it is exactly on a
// second (a time no earlier than now: a backup's stop time, which recovery compares with targets).
UtcSeconds utcNow(bool roundUp = false);

// "2026-11-22T10:15:00Z", the form of every time tidemark stores, and back: nullopt for anything
// else (no other form, no fraction, no zone but Z).
std::string formatUtc(UtcSeconds time);
std::optional<UtcSeconds> parseUtc(std::string_view text);

// For people: "2026-11-22 10:15:00 UTC", whatever the local time zone.
std::string formatUtcText(UtcSeconds time);

// Parses an ISO 8601 / PostgreSQL timestamp with an explicit zone: "2026-11-22 10:42:07+01",
// "2026-11-22T09:42:07Z", "2026-11-22 10:42:07.250 +01:00", "... UTC", or an IANA zone name of
// the system's time zone database ("2026-12-03 10:42:07 Europe/Paris", $TZDIR or
// /usr/share/zoneinfo), with up to 6 fraction digits. Throws Error(Usage) naming `what`
// ("--target-time") for anything else, and in particular for a time without a zone (read in the
// server's time zone, it could silently restore the wrong moment), an impossible date or time
// (February 30, 24:00, a leap second), an offset beyond 15:59, a zone the database does not know,
// a local time that happened twice (the end of summer time: both instants are named) and one that
// never happened (the gap at its start).
//
// A named zone is read through the C library (TZ and localtime_r, under a lock, TZ restored
// after): call it before starting threads that format local times or read the environment.
UtcMicros parseTimestamp(const std::string& text, std::string_view what);

// The IANA zone name a timestamp that parseTimestamp() accepts was given in ("Europe/Paris"), or
// nullopt for an offset, Z, UTC or GMT.
std::optional<std::string> timestampZoneName(const std::string& text);

// `time` as the local time of the IANA zone `zone` with its abbreviation and offset:
// "2026-12-03 10:42:07 CET (+01:00)" (fraction digits when it has any). Same caveat as
// parseTimestamp() about threads; throws Error(Usage) for a zone the database does not know.
std::string formatInZone(UtcMicros time, const std::string& zone);

// "2026-11-22 09:42:07.250000+00": the form PostgreSQL reads in recovery_target_time.
std::string formatTimestamp(UtcMicros time);

}  // namespace tidemark
