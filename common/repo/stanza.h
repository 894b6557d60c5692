// stanza.json: which PostgreSQL cluster a stanza belongs to. Created by the first WAL segment
// pushed; every later push and backup is checked against it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/io/encrypt.h"
#include "common/storage/storage.h"

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
  std::string created;          // ISO 8601 UTC
  std::string tidemarkVersion;  // of the tidemark that created the stanza

  std::string toJson() const;
  // Throws Error(Corrupt) naming `where` when the document is not a valid stanza.json.
  static StanzaInfo fromJson(const std::string& text, const std::string& where);
};

// nullopt when the stanza has no stanza.json yet.
std::optional<StanzaInfo> loadStanza(storage::Storage& storage, const std::string& stanza);

// Returns the stanza's identity, creating stanza.json from `candidate` when there is none yet
// (atomically: of two processes creating it at once, one wins and the other reads its result).
// Throws Error(ForeignCluster) when the stanza belongs to another cluster (system identifier or
// WAL segment size differ), naming both identifiers.
StanzaInfo ensureStanza(storage::Storage& storage, const std::string& stanza, const StanzaInfo& candidate,
                        const std::string& what);

// Throws Error(ForeignCluster) unless `systemId` is the stanza's; `what` names the file.
void checkSystemId(const StanzaInfo& info, const std::string& stanza, std::uint64_t systemId,
                   const std::string& what);

// Refuses (Error(Config)) to write objects encrypted with `configured` into a stanza whose
// stanza.json records another encryption type, unless `allowMixed`: then stanza.json is rewritten to
// record `configured`, with a warning, and writers of the old type are refused from then on.
void checkEncryption(storage::Storage& storage, const std::string& stanza, StanzaInfo& info,
                     io::EncryptType configured, bool allowMixed);

// Current UTC time as "2026-11-22T10:15:00Z": the second it is in, or with `roundUp` the next
// one unless it is exactly on a second (a time no earlier than now: a backup's stop time, which
// recovery compares with targets).
std::string utcNow(bool roundUp = false);

// Seconds since the epoch as "2026-11-22T10:15:00Z" (the form of every time tidemark stores), and
// back: nullopt for anything else.
std::string formatUtc(std::int64_t seconds);
std::optional<std::int64_t> parseUtc(const std::string& text);

}  // namespace tidemark::repo
