// Authenticated metadata: stanza.json, backup.json (and the state records later commands add)
// carry a MAC when encryption is configured, so that someone who can write to the repository but
// holds no key cannot steer a recovery by editing them (docs/encryption.md, "What an attacker
// can do").
//
// The MAC of a metadata object `<path>` is a record of its own, `<path>.mac`, written before the
// object (a new object is never visible without its record), so that the metadata of an existing
// stanza gains MACs as new records, without rewriting objects:
//   {"format": 2, "key-id": "<16 hex>", "hmac-sha256": "<64 hex>"}
// HMAC-SHA256 under MasterKey::metadataMacKey() of the key named, over
//   "tidemark metadata v2" 0x00, the object's path (with the stanza's name) and the stanza's
//   identifier (StanzaInfo::identity()), each as a u16 little-endian length and its bytes, then
//   the object's bytes,
// so a record vouches for one content at one name in one stanza: moved to another label, or
// copied with its file from another stanza that shares the key, it fails.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/repo/repository.h"

namespace tidemark::repo {

// "<path>.mac".
std::string macRecordPath(const std::string& path);

// Whether this handle writes and requires metadata MACs: encryption is configured (the policy
// encrypts, with a current key).
bool authenticatesMetadata(const Repository& repository);

// Stores the MAC record of metadata object `path` holding `content`, under the current key, when
// the handle authenticates metadata (nothing otherwise). Call it before writing the object.
// `replace`: for an object that is rewritten (stanza.json on an encryption switch); otherwise a
// record that exists must hold the same MAC (a retry), or it is Error(Conflict).
void writeMetadataMac(const Repository& repository, const std::string& path,
                      std::string_view content, const std::string& stanzaId, bool replace = false);

enum class MetadataTrust {
  Authenticated,    // its MAC was checked
  Unauthenticated,  // the handle has no key to check with (encryption not configured)
};

// Checks `content` of metadata object `path` of stanza `stanzaId` against its MAC record, when the
// handle authenticates metadata; Unauthenticated (nothing read) otherwise. Throws Error(Corrupt)
// naming the object when the record is missing, damaged or does not match, and Error(Config) when
// it was made with a key the handle does not hold.
MetadataTrust verifyMetadata(const Repository& repository, const std::string& path,
                             std::string_view content, const std::string& stanzaId);

// Checks `content` of `path` as verifyMetadata does, then, when its record was made with an old
// key (encryption.old-key-files), signs it again with the current key (the record replaced).
// Returns whether it did. After a key rotation, the old key can leave the configuration only once
// the records writers check (stanza.json: requireKnownSigner) name the new one.
bool signWithCurrentKey(const Repository& repository, const std::string& path,
                        std::string_view content, const std::string& stanzaId);

// Refuses (Error(Config), as verifyMetadata) a handle that does not hold the key `path`'s MAC
// record names: a writer with a wrong encryption.key-file would store what the stanza's readers
// cannot read. Reads the record only: a missing, damaged or earlier record is for verifyMetadata,
// which writers that must go on without it (archive-push) do not call.
// Returns the signing key's id (hex) when a record of this version named it.
std::optional<std::string> requireKnownSigner(const Repository& repository,
                                              const std::string& path);

// Whether a record that could vouch for `path` stands beside it: one of this version's format made
// with a key the handle holds, or a damaged one. Such a record that fails to verify is evidence of
// an edit. A missing record, one made by an earlier version or with a key no longer configured
// (after a leaked key was removed) vouches for nothing: the operator may sign over it.
bool hasVouchingRecord(const Repository& repository, const std::string& path);

}  // namespace tidemark::repo
