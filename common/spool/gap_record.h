// The safety valve's gap, from a stanza folder of the spool into the repository: what archive-push
// does before it stores anything after a drop, and tidemark-recover before --force removes a data
// directory whose spool holds a gap.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/repo/repository.h"
#include "common/repo/stanza.h"
#include "common/spool/spool.h"

namespace tidemark::spool {

// "'<folder>/gap' records WAL dropped from the archive of <repository> (system identifier <id>)".
std::string describeGap(const std::string& folder, const LocalGap& gap);

// Whether `gap` belongs in `repository`'s stanza: it names this repository and the cluster
// `systemId`, or an older generation of the stanza (the cluster before pg_upgrade).
bool gapBelongs(const LocalGap& gap, const repo::Repository& repository,
                const repo::StanzaInfo& stanza, std::uint64_t systemId);

// Records the gap `folder` holds in `repository` (a gap record per range, under GapLock), logs
// each range as an error, and removes the gap from `folder`, when it belongs there (gapBelongs).
// Returns the gap that stays: nullopt when there is none (any more), another repository's or
// cluster's otherwise (left as it is, for the caller to report). Throws when the records cannot be
// written (the gap stays) or the gap cannot be read or removed.
std::optional<LocalGap> recordGap(const std::string& folder, const repo::Repository& repository,
                                  const repo::StanzaInfo& stanza, std::uint64_t systemId);

}  // namespace tidemark::spool
