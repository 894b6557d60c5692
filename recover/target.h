// Recovery targets as an operator types them, checked before anything is written.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace tidemark::recover {

enum class TargetKind {
  Latest,     // no target: replay every archived WAL file
  Time,       // --target-time
  Lsn,        // --target-lsn
  Xid,        // --target-xid
  Name,       // --target-name (a restore point)
  Immediate,  // --target immediate: stop as soon as the backup is consistent
};

struct Target {
  TargetKind kind = TargetKind::Latest;
  std::string text;       // as given
  double time = 0;        // Time: seconds since the epoch (UTC)
  std::uint64_t lsn = 0;  // Lsn
  bool exclusive = false; // stop just before the target instead of just after it
  std::string action = "pause";  // pause | promote | shutdown
  // latest | current | a timeline number
  std::string timeline = "latest";

  // For messages: "time 2026-11-22 10:42:07+01 (2026-11-22 09:42:07.000000+00 UTC)".
  std::string describe() const;
};

// Parses an ISO 8601 / PostgreSQL timestamp with an explicit zone: "2026-11-22 10:42:07+01",
// "2026-11-22T09:42:07Z", "2026-11-22 10:42:07.250 +01:00", "... UTC". Throws Error(Usage) for
// anything else, and in particular for a time without a zone (read in the server's time zone, it
// could silently restore the wrong moment).
double parseTimestamp(const std::string& text);

// "2026-11-22 09:42:07.250000+00": the form written to recovery_target_time.
std::string formatTimestamp(double seconds);

// "2026-11-22T09:42:07Z" (ISO 8601, as backup.json records times) -> seconds since the epoch.
double parseIsoUtc(const std::string& text);

}  // namespace tidemark::recover
