// Timeline history: which timeline a WAL location belongs to on the way to a target timeline
// (the <tli>.history files PostgreSQL writes at each promotion; xlog_internal.h, timeline.c).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tidemark::pg {

// One line of a history file: `timeline` ended (and its child began) at `switchpoint`.
struct TimelineSwitch {
  std::uint32_t timeline = 0;
  std::uint64_t switchpoint = 0;
  std::string reason;
};

// A timeline and its ancestry: parents oldest first, each with the location where it ended.
struct TimelineHistory {
  std::uint32_t timeline = 1;
  std::vector<TimelineSwitch> parents;

  // Whether `timeline` is this one or an ancestor.
  bool contains(std::uint32_t other) const;
  // Where the ancestor `other` ended on the way to this timeline (nullopt: this timeline itself,
  // which has not ended, or not an ancestor).
  std::optional<std::uint64_t> endOf(std::uint32_t other) const;
  // The timeline that a location belongs to on the way to this timeline.
  std::uint32_t timelineOf(std::uint64_t lsn) const;
};

// The timeline whose file PostgreSQL reads for `segment` on the way to history.timeline: the
// newest timeline on the path that began at or before the segment's end (XLogFileReadAnyTLI).
std::uint32_t fileTimeline(const TimelineHistory& history, std::uint64_t segment,
                           std::uint32_t segmentSize);

// Parses the content of `<timeline>.history`. Throws Error(Corrupt) naming `where` for a line
// that is not "parent<TAB>X/X<TAB>reason", or parents out of order.
TimelineHistory parseHistory(std::uint32_t timeline, const std::string& content,
                             const std::string& where);

// "00000002.history"
std::string historyFileName(std::uint32_t timeline);

}  // namespace tidemark::pg
