// Authenticated metadata: MAC records beside stanza.json and backup.json.
#include "common/repo/metadata.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <span>

#include "common/base/error.h"
#include "common/base/version.h"
#include "common/io/hash.h"
#include "common/io/sink.h"

namespace tidemark::repo {

namespace {

// v1 (records of format 1) bound the path but not the stanza's identifier: such a record is
// "made by an earlier version", never a match.
constexpr std::string_view kDomain = "tidemark metadata v2";
constexpr int kFormat = 2;

io::Sha256Digest macOf(const MasterKey& key, const std::string& path, std::string_view stanzaId,
                       std::string_view content) {
  io::Buffer input;
  input.reserve(kDomain.size() + 5 + path.size() + stanzaId.size() + content.size());
  input.insert(input.end(), kDomain.begin(), kDomain.end());
  input.push_back(0);
  for (std::string_view field : {std::string_view(path), stanzaId}) {
    input.push_back(std::uint8_t(field.size() & 0xff));
    input.push_back(std::uint8_t(field.size() >> 8));
    input.insert(input.end(), field.begin(), field.end());
  }
  input.insert(input.end(), content.begin(), content.end());
  io::Key256 macKey = key.metadataMacKey();
  io::Sha256Digest mac = io::hmacSha256(macKey, input);
  io::wipe(macKey);
  return mac;
}

// Exactly 2 * out.size() hex digits.
bool parseHex(std::string_view hex, std::span<std::uint8_t> out) {
  if (hex.size() != 2 * out.size()) return false;
  auto digit = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < out.size(); ++i) {
    int high = digit(hex[2 * i]), low = digit(hex[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    out[i] = std::uint8_t(high * 16 + low);
  }
  return true;
}

std::string recordText(const MasterKey& key, const io::Sha256Digest& mac) {
  nlohmann::ordered_json doc;
  doc["format"] = kFormat;
  doc["key-id"] = key.idHex();
  doc["hmac-sha256"] = io::toHex(mac);
  return doc.dump(2) + "\n";
}

struct Record {
  int format = 0;
  KeyId keyId{};
  io::Sha256Digest mac{};
};

// The record's fields; std::nullopt when it is damaged.
std::optional<Record> parseRecord(const std::string& text) {
  try {
    auto doc = nlohmann::json::parse(text);
    Record record;
    record.format = doc.at("format").get<int>();
    if (record.format != kFormat) return record;
    if (!parseHex(doc.at("key-id").get<std::string>(), record.keyId)) return std::nullopt;
    if (!io::fromHex(doc.at("hmac-sha256").get<std::string>(), record.mac)) return std::nullopt;
    return record;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

Error unauthenticated(const Repository& repository, const std::string& path,
                      const std::string& why) {
  return Error(ErrorCode::Corrupt,
               fmt::format("'{}' in {} is not authenticated: {}", path, repository.describe(), why),
               "someone without the key may have written or edited it, or a write was "
               "interrupted: do not use it until you have checked it; metadata written before "
               "MACs existed, or checked by you, is signed with 'tidemark stanza-create "
               "--authenticate-existing' (" +
                   docPath("encryption.md") + ")");
}

}  // namespace

std::string macRecordPath(const std::string& path) {
  return path + ".mac";
}

bool authenticatesMetadata(const Repository& repository) {
  // A handle from openRepository() that encrypts always holds a current key; handles tests build
  // around a policy alone do not authenticate.
  return repository.policy().encryption != io::EncryptType::None &&
         repository.keys().current.has_value();
}

void writeMetadataMac(const Repository& repository, const std::string& path,
                      std::string_view content, const std::string& stanzaId, bool replace) {
  if (!authenticatesMetadata(repository)) return;
  const MasterKey& key = *repository.keys().current;
  std::string text = recordText(key, macOf(key, path, stanzaId, content));
  std::string record = macRecordPath(path);
  auto write = repository.storage().newWrite(record, {.noReplace = !replace});
  write->write(io::asBytes(text));
  if (write->commit()) return;
  // A record exists: a retry of this write is fine, another MAC is not.
  try {
    verifyMetadata(repository, path, content, stanzaId);
  } catch (const Error& e) {
    throw Error(ErrorCode::Conflict,
                fmt::format("'{}' already exists, for other content ({})", record, e.what()),
                fmt::format("a record left by an interrupted write, or written by someone else: "
                            "check that nothing uses '{}', move '{}' aside and try again",
                            path, record));
  }
}

MetadataTrust verifyMetadata(const Repository& repository, const std::string& path,
                             std::string_view content, const std::string& stanzaId) {
  if (!authenticatesMetadata(repository)) return MetadataTrust::Unauthenticated;
  std::string record = macRecordPath(path);
  auto text = storage::readSmall(repository.storage(), record, 4096);
  if (!text) throw unauthenticated(repository, path, fmt::format("'{}' is missing", record));
  auto parsed = parseRecord(*text);
  if (!parsed)
    throw unauthenticated(repository, path, fmt::format("its MAC record '{}' is damaged", record));
  if (parsed->format != kFormat)
    throw unauthenticated(
        repository, path,
        fmt::format("its MAC record '{}' was made by an earlier version of tidemark", record));
  const MasterKey& key =
      repository.keys().require(parsed->keyId, fmt::format("'{}' was authenticated", path));
  if (!io::sameDigest(macOf(key, path, stanzaId, content), parsed->mac))
    throw unauthenticated(repository, path, "its MAC does not match its content");
  return MetadataTrust::Authenticated;
}

bool signWithCurrentKey(const Repository& repository, const std::string& path,
                        std::string_view content, const std::string& stanzaId) {
  if (verifyMetadata(repository, path, content, stanzaId) != MetadataTrust::Authenticated)
    return false;
  auto text = storage::readSmall(repository.storage(), macRecordPath(path), 4096);
  auto parsed = text ? parseRecord(*text) : std::nullopt;
  if (!parsed || parsed->keyId == repository.keys().current->id()) return false;
  writeMetadataMac(repository, path, content, stanzaId, true);
  // A writer that replaced the object meanwhile (its record first) had its record replaced by
  // ours, for the content before: say so, rather than leave a pair every reader refuses unnamed.
  if (storage::readSmall(repository.storage(), path, 1 << 20) != content)
    throw Error(ErrorCode::Conflict,
                fmt::format("'{}' changed while it was signed again with the current key: its "
                            "MAC record is now for the content before",
                            path),
                "check the file, then sign it with 'tidemark stanza-create "
                "--authenticate-existing'");
  return true;
}

std::optional<std::string> requireKnownSigner(const Repository& repository,
                                              const std::string& path) {
  if (!authenticatesMetadata(repository)) return std::nullopt;
  auto text = storage::readSmall(repository.storage(), macRecordPath(path), 4096);
  if (!text) return std::nullopt;
  auto parsed = parseRecord(*text);
  if (!parsed || parsed->format != kFormat) return std::nullopt;
  return repository.keys()
      .require(parsed->keyId, fmt::format("'{}' was authenticated", path))
      .idHex();
}

bool hasVouchingRecord(const Repository& repository, const std::string& path) {
  auto text = storage::readSmall(repository.storage(), macRecordPath(path), 4096);
  if (!text) return false;
  auto parsed = parseRecord(*text);
  if (!parsed) return true;  // damaged: nothing to sign over
  return parsed->format == kFormat && repository.keys().find(parsed->keyId) != nullptr;
}

}  // namespace tidemark::repo
