// Timeline history files.
#include "common/pg/timeline.h"

#include <fmt/format.h>

#include <sstream>

#include "common/error.h"
#include "common/pg/connection.h"

namespace tidemark::pg {

bool TimelineHistory::contains(std::uint32_t other) const {
  if (other == timeline) return true;
  for (const auto& p : parents)
    if (p.timeline == other) return true;
  return false;
}

std::optional<std::uint64_t> TimelineHistory::endOf(std::uint32_t other) const {
  for (const auto& p : parents)
    if (p.timeline == other) return p.switchpoint;
  return std::nullopt;
}

std::uint32_t TimelineHistory::timelineOf(std::uint64_t lsn) const {
  for (const auto& p : parents)
    if (lsn < p.switchpoint) return p.timeline;
  return timeline;
}

std::uint64_t TimelineHistory::beginOf(std::uint32_t other) const {
  std::uint64_t begin = 0;
  for (const auto& p : parents) {
    if (p.timeline == other) return begin;
    begin = p.switchpoint;
  }
  return begin;
}

TimelineHistory parseHistory(std::uint32_t timeline, const std::string& content, const std::string& where) {
  TimelineHistory history;
  history.timeline = timeline;
  std::istringstream in(content);
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    // Comments and blank lines are allowed (timeline.c skips them).
    std::size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    auto bad = [&](const std::string& why) {
      throw Error(ErrorCode::Corrupt, fmt::format("'{}' line {}: {}", where, number, why),
                  "the timeline history file is damaged; restore it from a copy");
    };
    std::istringstream fields(line);
    std::string tli, lsn;
    if (!(fields >> tli >> lsn)) bad("expected a parent timeline and a switch point");
    TimelineSwitch entry;
    try {
      std::size_t used = 0;
      unsigned long parsed = std::stoul(tli, &used, 10);
      if (used != tli.size() || parsed == 0 || parsed >= timeline) bad(fmt::format("'{}' is not a parent timeline", tli));
      entry.timeline = std::uint32_t(parsed);
    } catch (const std::logic_error&) {
      bad(fmt::format("'{}' is not a timeline", tli));
    }
    try {
      entry.switchpoint = parseLsn(lsn);
    } catch (const Error&) {
      bad(fmt::format("'{}' is not a WAL location", lsn));
    }
    std::getline(fields, entry.reason);
    auto first = entry.reason.find_first_not_of(" \t");
    entry.reason = first == std::string::npos ? "" : entry.reason.substr(first);
    if (!history.parents.empty() && (entry.timeline <= history.parents.back().timeline ||
                                     entry.switchpoint < history.parents.back().switchpoint))
      bad("timelines and switch points must increase from line to line");
    history.parents.push_back(entry);
  }
  return history;
}

std::string historyFileName(std::uint32_t timeline) { return fmt::format("{:08X}.history", timeline); }

}  // namespace tidemark::pg
