// stanza.json: which PostgreSQL cluster a stanza belongs to. Created only by `tidemark
// stanza-create` (createStanza); every push and backup is checked against it, and none creates it:
// a repository path that is an unmounted mount point must fail, not become a new repository.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/base/error.h"
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
  // The stanza's own random identifier (32 hex digits), which state records and local spools
  // are tied to; "" in stanza.json files written before stanza-create existed (identity()).
  std::string id;
  // stanza-create found that the repository refuses to replace an object on a no-replace write
  // (S3: If-None-Match honoured): what "never overwrite WAL" and the locks rely on.
  bool noReplaceChecked = false;

  // The identifier: `id`, or for a stanza created before it existed one derived from what
  // stanza.json records ("legacy-" and 24 hex digits), which never changes either.
  std::string identity() const;

  std::string toJson() const;
  // Throws Error(Corrupt) naming `where` when the document is not a valid stanza.json.
  static StanzaInfo fromJson(const std::string& text, const std::string& where);
};

// nullopt when the stanza has no stanza.json yet. With `authenticate`, its MAC is checked first
// when the handle authenticates metadata (repo/metadata.h: Error(Corrupt) or Error(Config)).
std::optional<StanzaInfo> loadStanza(const Repository& repository, bool authenticate = false);

// The stanza's stanza.json. Throws Error(Config) when it has none, naming the repository and
// `tidemark stanza-create`: a missing stanza is a mistyped stanza or repository path, a repository
// that is not mounted, or one never created, never something to create on the fly.
StanzaInfo requireStanza(const Repository& repository);
// The error requireStanza throws, for readers that found no stanza.json on their own; its hint
// ends with `consequence` when one is given ("recovery stops here ...").
Error missingStanza(const Repository& repository, std::string_view consequence = {});

struct CreatedStanza {
  StanzaInfo info;
  bool created = false;  // false: it existed, for the same cluster
};

// `tidemark stanza-create`'s worker: first checks that the repository refuses to replace an
// object on a no-replace write (a probe object under <stanza>/probe/, written twice and removed;
// Error(Unsupported) naming the missing feature when the second write replaces the first), then
// creates stanza.json for `cluster` (system identifier, version, segment size, the handle's
// encryption) with a new random identifier, and with encryption its MAC record. Idempotent: a
// stanza that exists for the same cluster is returned as it is, once every metadata file is
// authenticated (with encryption: Error(Corrupt) naming those that are not, and
// --authenticate-existing); a cluster that is none of its generations is Error(ForeignCluster)
// (repo::requireGeneration). Of two processes
// creating it at once, one wins and the other checks its result.
CreatedStanza createStanza(const Repository& repository, const StanzaInfo& cluster);

// With encryption configured, why each metadata file of the stanza (stanza.json, every
// backup.json) is not authenticated; empty when all are, or without encryption.
std::vector<std::string> unauthenticatedMetadata(const Repository& repository,
                                                 const StanzaInfo& info);

// `tidemark stanza-create --authenticate-existing`: signs every metadata file of the stanza that
// has no record that could vouch for it (none, an earlier version's, or one made with a key no
// longer configured), and returns their paths. The operator's explicit trust decision: never done
// on the side. A file its current record contradicts (an edit) is never signed over: then nothing
// is signed, Error(Corrupt) naming each. Error(Config) without encryption.
std::vector<std::string> authenticateExisting(const Repository& repository);

// Refuses (Error(Config)) to write objects with the handle's encryption into a stanza whose
// stanza.json records another encryption type, unless the handle's policy allows mixing: then
// stanza.json is rewritten to record the new type, with a warning, and writers of the old type are
// refused from then on.
void checkEncryption(const Repository& repository, StanzaInfo& info);

// Authenticates stanza.json (as loadStanza with `authenticate`) for a writer that signs new
// metadata for it (tidemark-basebackup), and signs it again with the current key when an old one
// signed it: after a key rotation, archive-push (requireStanzaKey) then keeps working once the old
// key has left the configuration. Returns what it authenticated.
StanzaInfo authenticateStanzaForWriting(const Repository& repository);

// Refuses (Error(Config)) a writer that does not hold the key stanza.json was signed with (its MAC
// record names it): with a wrong encryption.key-file, archive-push would store WAL that no reader
// configured for the stanza can decrypt. A key rotation keeps the old key in
// encryption.old-key-files, and passes. Reads the MAC record only (requireKnownSigner), and
// returns the signing key's id (hex) when the record names one.
std::optional<std::string> requireStanzaKey(const Repository& repository);

}  // namespace tidemark::repo
