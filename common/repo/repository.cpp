// Opening the configured repository: the one place where configuration becomes a storage driver,
// keys and a write policy.
#include "common/repo/repository.h"

#include "common/base/error.h"
#include "common/config/config.h"
#include "common/storage/posix/posix.h"
#include "common/storage/s3/s3.h"

namespace tidemark::repo {

namespace {

std::unique_ptr<storage::Storage> openStorage(const Config& config) {
  if (config.repo.type == "posix") return std::make_unique<storage::PosixStorage>(config.repo.path);
  if (config.repo.type == "s3") {
    std::string prefix = config.repo.path;
    while (!prefix.empty() && prefix.front() == '/')
      prefix.erase(0, 1);
    while (!prefix.empty() && prefix.back() == '/')
      prefix.pop_back();
    const auto& s3 = config.s3;
    return std::make_unique<storage::S3Storage>(storage::S3Options{
        .bucket = s3.bucket,
        .endpoint = s3.endpoint,
        .region = s3.region,
        .hostStyle = s3.uriStyle == "host",
        .prefix = prefix,
        .credentials = {s3.accessKeyId, s3.secretAccessKey, s3.sessionToken},
        .caFile = s3.caFile,
        .verifyTls = s3.verifyTls,
        .partSize = s3.partSize,
        .uploadConcurrency = s3.uploadConcurrency,
        .retryMax = s3.retryMax,
        .retryTime = std::chrono::seconds(s3.retryTime),
        .stallTimeoutSeconds = s3.timeout,
        .lockTimeout = std::chrono::seconds(s3.lockTimeout),
    });
  }
  throw Error(ErrorCode::Config, fmt::format("repo.type '{}' is not supported", config.repo.type),
              "set repo.type to 'posix' or 's3'");
}

}  // namespace

std::string describeRepository(const Config& config) {
  try {
    return openStorage(config)->describe();
  } catch (const Error&) {
    return config.repo.type + ":" + config.repo.path;
  }
}

namespace {

Keyring loadKeyring(const Config::Encryption& e) {
  Keyring keys;
  if (!e.keyFile.empty()) keys.current = readKeyFile(e.keyFile, "encryption.key-file");
  if (!e.keyCommand.empty()) keys.current = runKeyCommand(e.keyCommand);
  for (const auto& path : e.oldKeyFiles)
    keys.old.push_back(readKeyFile(path, "encryption.old-key-files"));
  return keys;
}

}  // namespace

Repository::Repository(std::unique_ptr<storage::Storage> storage, std::string stanza, Keyring keys,
                       WritePolicy policy, StorageFactory openStorage)
    : owned_(std::move(storage)),
      storage_(owned_.get()),
      stanza_(std::move(stanza)),
      keys_(std::move(keys)),
      policy_(policy),
      openStorage_(std::move(openStorage)) {}

Repository::Repository(storage::Storage& storage, std::string stanza, Keyring keys,
                       WritePolicy policy)
    : storage_(&storage), stanza_(std::move(stanza)), keys_(std::move(keys)), policy_(policy) {}

ObjectOptions Repository::objectOptions() const {
  ObjectOptions options{.compress = policy_.compress, .level = policy_.level};
  if (policy_.encryption != io::EncryptType::None) {
    if (!keys_.current)
      throw Error(ErrorCode::Internal, "encryption is configured but no key was loaded");
    options.key = &*keys_.current;
  }
  return options;
}

std::optional<ObjectSummary> Repository::readObject(
    const std::string& path, io::Sink& out, std::optional<std::uint64_t> maxPlainSize) const {
  return repo::readObject(*storage_, path, out, keys_,
                          {.maxPlainSize = maxPlainSize,
                           .requireEncrypted = policy_.encryption != io::EncryptType::None &&
                                               !policy_.allowMixedEncryption});
}

std::optional<ObjectSummary> Repository::verifyObject(
    const std::string& path, std::optional<std::uint64_t> maxPlainSize) const {
  io::NullSink discard;
  return readObject(path, discard, maxPlainSize);
}

Repository Repository::another() const {
  if (!openStorage_)
    throw Error(ErrorCode::Internal, "this repository handle cannot open another connection");
  return Repository(openStorage_(), stanza_, keys_, policy_, openStorage_);
}

Repository openRepository(const Config& config) {
  // In this order: a repository that cannot work is said before a key command runs.
  std::unique_ptr<storage::Storage> storage = openStorage(config);
  Keyring keys = loadKeyring(config.encryption);
  return Repository(std::move(storage), config.stanza, std::move(keys),
                    WritePolicy{.compress = config.compress.type,
                                .level = config.compress.level,
                                .encryption = config.encryption.type,
                                .allowMixedEncryption = config.encryption.allowMixed},
                    [config] { return openStorage(config); });
}

}  // namespace tidemark::repo
