// Recording a spool's gap in the repository (gap_record.h).
#include "common/spool/gap_record.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/base/text.h"
#include "common/repo/generation.h"
#include "common/repo/marks.h"

namespace tidemark::spool {

std::string describeGap(const std::string& folder, const LocalGap& gap) {
  return fmt::format("'{}/{}' records WAL dropped from the archive of {} (system identifier {})",
                     folder, kGapFile, gap.repository, gap.systemId);
}

bool gapBelongs(const LocalGap& gap, const repo::Repository& repository,
                const repo::StanzaInfo& stanza, std::uint64_t systemId) {
  return gap.repository == repository.describe() &&
         (gap.systemId == systemId ||
          repo::findGeneration(repo::loadGenerations(repository, stanza), gap.systemId));
}

std::optional<LocalGap> recordGap(const std::string& folder, const repo::Repository& repository,
                                  const repo::StanzaInfo& stanza, std::uint64_t systemId) {
  if (!hasGap(folder)) return std::nullopt;
  GapLock lock(folder);
  auto gap = readGap(folder);
  if (!gap) return std::nullopt;
  if (!gapBelongs(*gap, repository, stanza, systemId)) return gap;
  for (const auto& range : gap->ranges)
    repo::writeGapRecord(repository, stanza.identity(),
                         {.systemId = gap->systemId,
                          .first = range.first,
                          .last = range.last,
                          .files = range.files,
                          .firstDroppedMs = range.firstMs,
                          .lastDroppedMs = range.lastMs,
                          .firstWrittenMs = range.writtenMs});
  removeGap(folder);
  for (const auto& range : gap->ranges)
    spdlog::error("recorded in {} that the safety valve dropped {}", repository.describe(),
                  describeRun(range.first, range.last, range.files));
  return std::nullopt;
}

}  // namespace tidemark::spool
