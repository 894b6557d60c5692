// Creating a stanza in a test's storage, as `tidemark stanza-create` does (writers never create
// one): for the cluster that test segments come from (SegmentSpec's defaults) unless told
// otherwise.
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "common/repo/repository.h"
#include "common/repo/stanza.h"
#include "support/segment.h"

namespace tidemark::test {

struct StanzaSpec {
  std::string stanza = "main";
  std::uint64_t systemId = SegmentSpec{}.systemId;
  std::uint32_t segmentSize = 16u << 20;
  io::EncryptType encryption = io::EncryptType::None;
};

inline repo::StanzaInfo createStanza(storage::Storage& storage, const StanzaSpec& spec = {}) {
  repo::Repository repository(storage, spec.stanza, {}, {.encryption = spec.encryption});
  auto result = repo::createStanza(
      repository, {.systemId = spec.systemId, .pgVersion = 15, .walSegmentSize = spec.segmentSize});
  REQUIRE(result.created);
  return result.info;
}

}  // namespace tidemark::test
