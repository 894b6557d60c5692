// The repository handle: one stanza of one repository, opened once from the configuration, with
// everything a command needs to read and write its objects (the storage driver, the stanza's
// name, the encryption keys and how new objects are written).
//
// Every function of repo/ and recovery/ that reads or writes a stanza takes a Repository; only
// openRepository() turns a configuration into one (tests build them around a storage of their own).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "common/io/compress.h"
#include "common/io/encrypt.h"
#include "common/repo/keys.h"
#include "common/repo/object.h"
#include "common/storage/storage.h"

namespace tidemark {
struct Config;
}

namespace tidemark::repo {

// How objects written to the repository are made.
struct WritePolicy {
  io::CompressType compress = io::CompressType::Zstd;
  int level = 1;
  // What new objects are encrypted with (the keyring's current key). Keys may be loaded without it:
  // to read objects written before a switch to no encryption.
  io::EncryptType encryption = io::EncryptType::None;
  // Write although stanza.json records the other encryption type (and record this one).
  bool allowMixedEncryption = false;
};

// Not thread-safe, like the storage it holds: a thread of its own gets its own handle (another()).
// Movable; objectOptions() points into the handle, so take it again after a move.
class Repository {
 public:
  using StorageFactory = std::function<std::unique_ptr<storage::Storage>()>;

  // Owns `storage`. `openStorage`, when given, opens another connection to the same storage (for
  // another()).
  Repository(std::unique_ptr<storage::Storage> storage, std::string stanza, Keyring keys = {},
             WritePolicy policy = {}, StorageFactory openStorage = {});
  // Borrows `storage`, which must outlive the handle (tests; worker threads).
  Repository(storage::Storage& storage, std::string stanza, Keyring keys = {},
             WritePolicy policy = {});

  Repository(Repository&&) noexcept = default;
  Repository& operator=(Repository&&) noexcept = default;

  storage::Storage& storage() const { return *storage_; }
  const std::string& stanza() const { return stanza_; }
  const Keyring& keys() const { return keys_; }
  const WritePolicy& policy() const { return policy_; }
  // Where the repository is, for messages ("posix:/var/lib/tidemark/repo").
  std::string describe() const { return storage_->describe(); }

  // What new objects are written with: the policy's compression, and with its encryption the
  // current key (the options point to it: valid while this handle lives and is not moved). Throws
  // Error(Internal) when the policy encrypts and the keyring has no current key.
  ObjectOptions objectOptions() const;

  // Reads and verifies the object at `path` into `out` (see repo::readObject) with the handle's
  // keys; with encryption configured, an unencrypted object is refused unless the policy allows a
  // mixed stanza. nullopt when it does not exist. `maxPlainSize`: what the object may hold at most.
  std::optional<ObjectSummary> readObject(
      const std::string& path, io::Sink& out,
      std::optional<std::uint64_t> maxPlainSize = std::nullopt) const;
  // The same, discarding the content.
  std::optional<ObjectSummary> verifyObject(
      const std::string& path, std::optional<std::uint64_t> maxPlainSize = std::nullopt) const;

  // Whether another() can open a second connection.
  bool canOpenAnother() const { return static_cast<bool>(openStorage_); }
  // A handle on the same stanza with a storage connection of its own, for another thread. Throws
  // Error(Internal) when !canOpenAnother().
  Repository another() const;

 private:
  std::unique_ptr<storage::Storage> owned_;
  storage::Storage* storage_;
  std::string stanza_;
  Keyring keys_;
  WritePolicy policy_;
  StorageFactory openStorage_;
};

// The repository and stanza `config` names: the driver of repo.type with its options, the keys of
// [encryption] (read now: a key file or command that fails is Error(Config) here), the
// compression of [compress]. Connects to nothing yet: drivers connect on the first request.
// `abandon`, when given (for this handle and those another() opens): once it turns true, S3
// requests under way end within a second and no more start (Error(Storage)); posix writes, local
// and short, are not interrupted.
Repository openRepository(const Config& config, const std::atomic<bool>* abandon = nullptr);

// How the repository `config` names describes itself (Storage::describe(): "posix:/path",
// "s3://bucket/prefix (endpoint)"), without its keys; "<repo.type>:<repo.path>" when the driver's
// options are wrong. For labels that must not change when the repository cannot be opened.
std::string describeRepository(const Config& config);

}  // namespace tidemark::repo
