// Recovery targets: where a recovery stops, what the server does there, and which timeline it
// follows. Checked when parsed (tidemark-recover's and tidemark drill's options), typed from then
// on.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/base/error.h"
#include "common/base/time.h"

namespace tidemark::recovery {

enum class TargetKind {
  Latest,     // no target: replay every archived WAL file
  Time,       // --target-time
  Lsn,        // --target-lsn
  Xid,        // --target-xid
  Name,       // --target-name (a restore point)
  Immediate,  // --target immediate: stop as soon as the backup is consistent
};

// recovery_target_action: what the server does once the target is reached.
enum class TargetAction { Pause, Promote, Shutdown };

std::string_view actionName(TargetAction action);
std::optional<TargetAction> parseAction(std::string_view text);

// recovery_target_timeline: latest, current (the backup's own) or a timeline number.
struct TimelineChoice {
  enum class Kind { Latest, Current, Number };
  Kind kind = Kind::Latest;
  std::uint32_t number = 0;  // Number only

  // "latest", "current" or the number in decimal (PostgreSQL reads a leading 0 as octal).
  std::string text() const;
  // Parses what an operator types; nullopt for anything but latest, current or 1..2^32-1 in
  // decimal.
  static std::optional<TimelineChoice> parse(std::string_view text);
};

// Parses the value of --target-timeline (tidemark-recover, tidemark drill) or of a configuration
// key holding one (drill.target-timeline), as TimelineChoice::parse does. Throws Error(`code`)
// naming `what` (the option or the key) and the values allowed for anything else: Usage for an
// option, Config for a key.
TimelineChoice parseTimelineChoice(std::string_view text, std::string_view what,
                                   ErrorCode code = ErrorCode::Usage);

struct Target {
  TargetKind kind = TargetKind::Latest;
  // As given for Name; canonical for Xid (decimal, no leading zeros); as typed for the others
  // (messages quote it).
  std::string text;
  UtcMicros time{};        // Time
  std::uint64_t lsn = 0;   // Lsn
  std::uint64_t xid = 0;   // Xid
  bool exclusive = false;  // stop just before the target instead of just after it
  TargetAction action = TargetAction::Pause;
  TimelineChoice timeline;

  // For messages: "time 2026-11-22 10:42:07+01 (2026-11-22 09:42:07.000000+00 UTC)"; a time
  // given in a named zone shows the instant in UTC and in that zone: "time 2026-11-22
  // 09:42:07.000000+00 UTC = 2026-11-22 10:42:07 CET (+01:00) in Europe/Paris".
  std::string describe() const;
};

}  // namespace tidemark::recovery
