// Master keys: parsing, key files, key commands, key ids and new keys.
#include "common/repo/keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "common/base/error.h"
#include "common/base/process.h"
#include "common/base/version.h"
#include "common/files/file.h"
#include "common/io/hash.h"
#include "common/io/libcrypto.h"

namespace tidemark::repo {

namespace {

constexpr const char* kKeyForms = "32 raw bytes, 64 hex digits or 44 base64 characters";

std::string_view trim(std::string_view text) {
  auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && space(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && space(text.back()))
    text.remove_suffix(1);
  return text;
}

bool decodeBase64(std::string_view text, io::Key256& out) {
  // 32 bytes are 43 base64 characters and one '=' of padding.
  if (text.size() != 44 || text[43] != '=' || text[42] == '=') return false;
  std::array<unsigned char, 33> decoded{};
  int n = io::libcrypto().EVP_DecodeBlock(
      decoded.data(), reinterpret_cast<const unsigned char*>(text.data()), int(text.size()));
  bool ok = n == 33;
  if (ok) std::copy_n(decoded.begin(), out.size(), out.begin());
  io::wipe(decoded);
  return ok;
}

void wipeText(std::string& text) {
  io::wipe({reinterpret_cast<std::uint8_t*>(text.data()), text.size()});
}

}  // namespace

MasterKey::MasterKey(const io::Key256& bytes, std::string source)
    : bytes_(bytes), source_(std::move(source)) {
  io::hkdfSha256(bytes_, {}, kKeyIdInfo, id_);
}

MasterKey::~MasterKey() {
  io::wipe(bytes_);
}

std::string MasterKey::idHex() const {
  return io::toHex(id_);
}

io::Key256 MasterKey::metadataMacKey() const {
  io::Key256 key{};
  io::hkdfSha256(bytes_, {}, kMetadataMacInfo, key);
  return key;
}

io::Key256 MasterKey::objectKey(const std::array<std::uint8_t, kSaltSize>& salt) const {
  io::Key256 key{};
  io::hkdfSha256(bytes_, salt, kObjectKeyInfo, key);
  return key;
}

namespace {

// The current key, else the first old one, that `matches`.
template <class Match>
const MasterKey* findKey(const Keyring& keys, const Match& matches) {
  if (keys.current && matches(*keys.current)) return &*keys.current;
  for (const auto& key : keys.old)
    if (matches(key)) return &key;
  return nullptr;
}

}  // namespace

const MasterKey* Keyring::find(const KeyId& id) const {
  return findKey(*this, [&](const MasterKey& key) { return key.id() == id; });
}

const MasterKey* Keyring::findHex(std::string_view idHex) const {
  return findKey(*this, [&](const MasterKey& key) { return key.idHex() == idHex; });
}

const MasterKey& Keyring::require(const KeyId& id, std::string_view what) const {
  if (const MasterKey* key = find(id)) return *key;
  throw Error(
      ErrorCode::Config,
      fmt::format("{} with key {}; configured keys are {}", what, io::toHex(id), describe()),
      "set encryption.key-file (or key-command) to that key, or, after a key rotation, add "
      "its file to encryption.old-key-files; 'tidemark keygen' prints a key's id when it "
      "makes it");
}

std::string Keyring::describe() const {
  std::string out;
  auto add = [&](const MasterKey& key) {
    out += (out.empty() ? "" : ", ") + key.idHex() + " (" + key.source() + ")";
  };
  if (current) add(*current);
  for (const auto& key : old)
    add(key);
  return out.empty() ? "none" : out;
}

const Keyring& Keyring::none() {
  static const Keyring empty;
  return empty;
}

io::Key256 parseKey(std::string_view text, const std::string& source) {
  io::Key256 key{};
  // 32 raw bytes. Not 32 characters of text: a passphrase or a truncated hex key has nothing like
  // 256 bits of entropy (random bytes are all printable once in 10^14).
  bool text32 = text.size() == key.size() && std::all_of(text.begin(), text.end(), [](char c) {
                  return (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\t' || c == '\r';
                });
  if (text32)
    throw Error(
        ErrorCode::Config,
        fmt::format("{} holds 32 characters of text, not a key (expected {})", source, kKeyForms),
        "make a new key with 'tidemark keygen PATH'");
  if (text.size() == key.size()) {
    std::copy(text.begin(), text.end(), key.begin());
    return key;
  }
  std::string_view trimmed = trim(text);
  if (io::fromHex(trimmed, key) || decodeBase64(trimmed, key)) return key;
  throw Error(ErrorCode::Config,
              fmt::format("{} does not hold a key (expected {})", source, kKeyForms),
              "make a new key with 'tidemark keygen PATH'");
}

namespace {

// The key `text` holds; `text` is wiped whatever happens.
MasterKey keyFromText(io::Buffer& text, const std::string& source) {
  io::Key256 parsed{};
  try {
    parsed = parseKey(io::asText(text), source);
  } catch (...) {
    io::wipe(text);
    throw;
  }
  io::wipe(text);
  MasterKey master(parsed, source);
  io::wipe(parsed);
  return master;
}

}  // namespace

MasterKey readKeyFile(const std::string& path, const std::string& key) {
  std::string source = fmt::format("{} '{}'", key, path);
  auto fd = files::openForRead(path, ErrorCode::Config);
  if (!fd)
    throw Error(ErrorCode::Config, fmt::format("{} does not exist", source),
                "make one with 'tidemark keygen PATH', or fix the path");
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0)
    throw systemError(ErrorCode::Config, errno, "cannot stat {}", source);
  if (!S_ISREG(st.st_mode)) throw error(ErrorCode::Config, "{} is not a regular file", source);
  if ((st.st_mode & 077) != 0)
    throw Error(ErrorCode::Config,
                fmt::format("{} may be read or changed by group or others (mode {:04o})", source,
                            st.st_mode & 07777),
                fmt::format("run: chmod 600 '{}'", path));
  if (st.st_size > 4096)
    throw error(ErrorCode::Config, "{} is too large to hold a key (expected {})", source,
                kKeyForms);
  io::Buffer bytes(std::size_t(st.st_size));
  std::size_t got = files::preadFull(fd->get(), bytes.data(), bytes.size(), 0, path);
  bytes.resize(got);
  return keyFromText(bytes, source);
}

MasterKey runKeyCommand(const std::string& command, std::chrono::seconds timeout) {
  const std::string source = "encryption.key-command";
  // Through the shell (the setting is a command line); its standard error stays tidemark's.
  io::Buffer output;
  output.reserve(4096);  // never moved: no copy of the key left behind in freed memory
  bool tooLong = false;
  ChildEnd end;
  try {
    end = runChild({"/bin/sh", "-c", command},
                   {.timeout = timeout,
                    .errors = ChildOptions::Errors::Keep,
                    .failure = ErrorCode::Config,
                    .name = source},
                   [&](std::string_view piece) {
                     // Read to its end, kept only up to a key's size.
                     if (output.size() + piece.size() > 4096)
                       tooLong = true;
                     else
                       output.insert(output.end(), piece.begin(), piece.end());
                     return true;
                   });
  } catch (...) {
    io::wipe(output);
    throw;
  }
  const int status = end.status;
  std::string hint =
      "run the command by hand as the user running tidemark (for archive_command: postgres)";
  if (end.timedOut) {
    io::wipe(output);
    throw Error(
        ErrorCode::Config,
        fmt::format("{} did not finish within {} s and was stopped", source, timeout.count()),
        hint);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    io::wipe(output);
    throw Error(ErrorCode::Config,
                WIFEXITED(status)
                    ? fmt::format("{} failed (exit status {})", source, WEXITSTATUS(status))
                    : fmt::format("{} was killed by signal {}", source, WTERMSIG(status)),
                hint);
  }
  if (tooLong) {
    io::wipe(output);
    throw Error(ErrorCode::Config,
                fmt::format("{} printed more than a key (expected {})", source, kKeyForms), hint);
  }
  try {
    return keyFromText(output, source);
  } catch (const Error& e) {
    throw Error(
        e.code(),
        fmt::format("{} did not print a key (expected {} on standard output)", source, kKeyForms),
        hint);
  }
}

std::string writeNewKeyFile(const std::string& path) {
  io::Key256 key{};
  io::randomBytes(key);
  std::string text = io::toHex(key) + "\n";
  MasterKey master(key, path);
  io::wipe(key);
  // O_EXCL: a key file is never replaced (objects written with the old one would be lost).
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    int err = errno;
    wipeText(text);
    if (err == EEXIST)
      throw Error(ErrorCode::InvalidInput,
                  fmt::format("'{}' already exists; a key file is never replaced", path),
                  fmt::format("choose another path; to rotate keys, see {} (old-key-files)",
                              docPath("encryption.md")));
    throw systemError(ErrorCode::LocalIo, err, "cannot create key file '{}'", path);
  }
  files::Fd owned(fd);
  bool ok = ::fchmod(fd, 0600) == 0 &&
            ::write(fd, text.data(), text.size()) == ssize_t(text.size()) && ::fsync(fd) == 0;
  int err = errno;
  wipeText(text);
  if (!ok) {
    ::unlink(path.c_str());
    throw systemError(ErrorCode::LocalIo, err, "cannot write key file '{}'", path);
  }
  files::syncDirectory(files::dirName(path));
  return master.idHex();
}

}  // namespace tidemark::repo
