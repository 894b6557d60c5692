// stanza.json: which PostgreSQL cluster a stanza belongs to. Created by the first WAL segment
// pushed; every later push and backup is checked against it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/base/time.h"
#include "common/io/encrypt.h"
#include "common/repo/repository.h"

namespace tidemark::repo {

inline constexpr int kRepositoryFormat = 1;

struct StanzaInfo {
  std::uint64_t systemId = 0;
  int pgVersion = 0;
  std::uint32_t walSegmentSize = 0;
  // What every object written to the stanza uses (docs/encryption.md): a stanza.json without the
  // field predates encryption, so its objects are unencrypted.
  io::EncryptType encryption = io::EncryptType::None;
  int format = kRepositoryFormat;
  std::optional<UtcSeconds> created;  // absent in stanza.json files of early versions
  std::string tidemarkVersion;        // of the tidemark that created the stanza

  std::string toJson() const;
  // Throws Error(Corrupt) naming `where` when the document is not a valid stanza.json.
  static StanzaInfo fromJson(const std::string& text, const std::string& where);
};

// nullopt when the stanza has no stanza.json yet.
std::optional<StanzaInfo> loadStanza(const Repository& repository);

// Returns the stanza's identity, creating stanza.json from `candidate` when there is none yet
// (atomically: of two processes creating it at once, one wins and the other reads its result).
// Throws Error(ForeignCluster) when the stanza belongs to another cluster (system identifier or
// WAL segment size differ), naming both identifiers.
StanzaInfo ensureStanza(const Repository& repository, const StanzaInfo& candidate,
                        const std::string& what);

// Throws Error(ForeignCluster) unless `systemId` is the stanza's; `what` names the file.
void checkSystemId(const StanzaInfo& info, const std::string& stanza, std::uint64_t systemId,
                   const std::string& what);

// Refuses (Error(Config)) to write objects with the handle's encryption into a stanza whose
// stanza.json records another encryption type, unless the handle's policy allows mixing: then
// stanza.json is rewritten to record the new type, with a warning, and writers of the old type are
// refused from then on.
void checkEncryption(const Repository& repository, StanzaInfo& info);

}  // namespace tidemark::repo
