// Recovery targets.
#include "common/recovery/target.h"

#include <fmt/format.h>

#include "common/base/text.h"
#include "common/pg/lsn.h"

namespace tidemark::recovery {

std::string_view actionName(TargetAction action) {
  switch (action) {
    case TargetAction::Pause:
      return "pause";
    case TargetAction::Promote:
      return "promote";
    case TargetAction::Shutdown:
      return "shutdown";
  }
  return "?";
}

std::optional<TargetAction> parseAction(std::string_view text) {
  for (TargetAction action : {TargetAction::Pause, TargetAction::Promote, TargetAction::Shutdown})
    if (text == actionName(action)) return action;
  return std::nullopt;
}

std::string TimelineChoice::text() const {
  switch (kind) {
    case Kind::Latest:
      return "latest";
    case Kind::Current:
      return "current";
    case Kind::Number:
      return std::to_string(number);
  }
  return "?";
}

std::optional<TimelineChoice> TimelineChoice::parse(std::string_view text) {
  if (text == "latest") return TimelineChoice{Kind::Latest};
  if (text == "current") return TimelineChoice{Kind::Current};
  auto number = parseDecimal(text);
  if (!number || *number == 0 || *number > 0xFFFFFFFFu) return std::nullopt;
  return TimelineChoice{Kind::Number, std::uint32_t(*number)};
}

TimelineChoice parseTimelineChoice(std::string_view text, std::string_view what, ErrorCode code) {
  if (auto choice = TimelineChoice::parse(text)) return *choice;
  throw Error(code, fmt::format("{} '{}' is not latest, current or a timeline number", what, text),
              "latest: the one branch the backup leads to; current: the backup's own timeline; or "
              "a number in decimal (tidemark info shows the timeline tree)");
}

std::string Target::describe() const {
  switch (kind) {
    case TargetKind::Latest:
      return "the end of the archived WAL";
    case TargetKind::Time:
      // A named zone: the instant in UTC and in that zone, with the abbreviation and offset the
      // zone had then, so that a summer-time mistake shows.
      if (auto zone = timestampZoneName(text))
        return fmt::format("time {} UTC = {} in {}", formatTimestamp(time),
                           formatInZone(time, *zone), *zone);
      return fmt::format("time {} ({} UTC)", text, formatTimestamp(time));
    case TargetKind::Lsn:
      return fmt::format("WAL location {}", pg::formatLsn(lsn));
    case TargetKind::Xid:
      return fmt::format("transaction {}", text);
    case TargetKind::Name:
      return fmt::format("restore point '{}'", text);
    case TargetKind::Immediate:
      return "the end of the backup (immediate)";
  }
  return "?";
}

}  // namespace tidemark::recovery
