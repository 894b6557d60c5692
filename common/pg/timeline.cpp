// Timeline history files.
#include "common/pg/timeline.h"

#include <fmt/format.h>

#include <sstream>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/pg/lsn.h"

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

TimelineHistory parseHistory(std::uint32_t timeline, const std::string& content,
                             const std::string& where) {
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
    auto parent = parseDecimal(tli);
    if (!parent) bad(fmt::format("'{}' is not a timeline", tli));
    if (*parent == 0 || *parent >= timeline) bad(fmt::format("'{}' is not a parent timeline", tli));
    entry.timeline = std::uint32_t(*parent);
    auto switchpoint = parseLsn(lsn);
    if (!switchpoint) bad(fmt::format("'{}' is not a WAL location", lsn));
    entry.switchpoint = *switchpoint;
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

std::string historyFileName(std::uint32_t timeline) {
  return fmt::format("{:08X}.history", timeline);
}

std::uint32_t fileTimeline(const TimelineHistory& history, std::uint64_t segment,
                           std::uint32_t segmentSize) {
  std::uint64_t end = (segment + 1) * segmentSize - 1;
  std::uint32_t chosen =
      history.parents.empty() ? history.timeline : history.parents.front().timeline;
  std::uint64_t begin = 0;
  for (const auto& parent : history.parents) {
    if (begin <= end) chosen = parent.timeline;
    begin = parent.switchpoint;
  }
  if (begin <= end) chosen = history.timeline;
  return chosen;
}

}  // namespace tidemark::pg
