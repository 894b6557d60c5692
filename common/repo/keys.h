// Master keys for encryption at rest: reading them (key-file, key-command, old-key-files), naming
// them by key id, deriving each object's key, and making new ones (tidemark keygen).
// docs/encryption.md is the operator's side of this; docs/repository-format.md has the derivations.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/io/encrypt.h"
#include "common/repo/envelope.h"

namespace tidemark::repo {

// HKDF-SHA256 info strings: part of the format, never change them.
inline constexpr std::string_view kKeyIdInfo = "tidemark key id v1";
inline constexpr std::string_view kObjectKeyInfo = "tidemark object key v1 aes-256-gcm";
inline constexpr std::string_view kMetadataMacInfo = "tidemark metadata mac v1";

// A 32-byte master key; its bytes are wiped when it is destroyed. Never printed: messages name it
// by its id (16 hex digits) and where it came from.
class MasterKey {
 public:
  // `source` names where the key came from, for messages ("key-file '/etc/tidemark/key'").
  MasterKey(const io::Key256& bytes, std::string source);
  MasterKey(const MasterKey& other) = default;
  MasterKey& operator=(const MasterKey& other) = default;
  ~MasterKey();

  const KeyId& id() const { return id_; }
  std::string idHex() const;
  const std::string& source() const { return source_; }
  // The key of one object: HKDF-SHA256(master key, salt, kObjectKeyInfo).
  io::Key256 objectKey(const std::array<std::uint8_t, kSaltSize>& salt) const;
  // The key of metadata MACs (repo/metadata.h): HKDF-SHA256(master key, no salt, kMetadataMacInfo).
  io::Key256 metadataMacKey() const;

 private:
  io::Key256 bytes_;
  KeyId id_;
  std::string source_;
};

// The keys a process holds: the current one (writes use it; reads too) and old ones (reads only).
struct Keyring {
  std::optional<MasterKey> current;
  std::vector<MasterKey> old;

  // The key with that id, or nullptr; findHex takes the id as MasterKey::idHex() writes it.
  const MasterKey* find(const KeyId& id) const;
  const MasterKey* findHex(std::string_view idHex) const;
  // The key with that id; Error(Config) when there is none, starting with `what` ("object 'x' was
  // written", "'main/stanza.json' was authenticated") and saying how to configure it.
  const MasterKey& require(const KeyId& id, std::string_view what) const;
  // "0123456789abcdef (key-file '/k'), ..." or "none".
  std::string describe() const;
  // A keyring without keys (for repositories without encryption).
  static const Keyring& none();
};

// Reads a key: exactly 32 raw bytes, or 64 hex digits, or 44 base64 characters (both with optional
// surrounding white space). Throws Error(Config) naming `source` and the accepted forms; the text
// is never echoed.
io::Key256 parseKey(std::string_view text, const std::string& source);

// Reads a key file: it must be a regular file that neither group nor others may access
// (Error(Config) with the chmod to run otherwise).
MasterKey readKeyFile(const std::string& path, const std::string& key);

// Runs `command` with /bin/sh and reads the key from its standard output (standard error passes
// through). Throws Error(Config) when it cannot start, fails, takes longer than `timeout`, or
// prints something that is not a key; its output is never echoed.
MasterKey runKeyCommand(const std::string& command,
                        std::chrono::seconds timeout = std::chrono::seconds(60));

// Makes a new random key in `path` (64 hex digits and a newline, mode 0600), refusing to replace an
// existing file. Returns its id. Throws Error(LocalIo) or Error(InvalidInput) for an existing file.
std::string writeNewKeyFile(const std::string& path);

}  // namespace tidemark::repo
