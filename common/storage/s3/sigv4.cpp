// AWS Signature Version 4.
#include "common/storage/s3/sigv4.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <ctime>

#include "common/base/error.h"
#include "common/io/hash.h"

namespace tidemark::storage::s3 {

namespace {

using Digest = io::Sha256Digest;

Digest hmac(std::string_view key, std::string_view data) {
  return io::hmacSha256(io::asBytes(key), io::asBytes(data));
}

std::string_view view(const Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

// Header values: leading and trailing spaces removed, inner runs of spaces collapsed.
std::string trimValue(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

// "20130524/us-east-1/s3/aws4_request"
std::string scopeOf(std::string_view amzDate, std::string_view region, std::string_view service) {
  return std::string(amzDate.substr(0, 8)) + "/" + std::string(region) + "/" +
         std::string(service) + "/aws4_request";
}

Digest signingKey(const Credentials& credentials, std::string_view amzDate, std::string_view region,
                  std::string_view service) {
  Digest key = hmac("AWS4" + credentials.secretAccessKey, amzDate.substr(0, 8));
  key = hmac(view(key), region);
  key = hmac(view(key), service);
  return hmac(view(key), "aws4_request");
}

// SHA-256 of the empty string: what a chunk's string to sign holds in place of headers.
constexpr const char* kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

}  // namespace

std::string uriEncode(std::string_view text, bool keepSlash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.' ||
                      c == '~';  // ASCII only, whatever the locale
    if (unreserved || (keepSlash && c == '/')) {
      out.push_back(char(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string canonicalQuery(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  for (const auto& [name, value] : query)
    encoded.emplace_back(uriEncode(name, false), uriEncode(value, false));
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out.push_back('&');
    out += name + "=" + value;
  }
  return out;
}

std::string canonicalRequest(const SigningInput& input) {
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& [name, value] : input.headers)
    headers.emplace_back(lower(name), trimValue(value));
  std::sort(headers.begin(), headers.end());
  std::string canonicalHeaders, signedHeaders;
  for (const auto& [name, value] : headers) {
    canonicalHeaders += name + ":" + value + "\n";
    signedHeaders += (signedHeaders.empty() ? "" : ";") + name;
  }
  return input.method + "\n" + uriEncode(input.path.empty() ? "/" : input.path, true) + "\n" +
         canonicalQuery(input.query) + "\n" + canonicalHeaders + "\n" + signedHeaders + "\n" +
         input.payloadHash;
}

std::string_view dateOf(std::string_view amzDate) {
  return amzDate.substr(0, 8);
}

std::string stringToSign(std::string_view canonical, std::string_view amzDate,
                         std::string_view region, std::string_view service) {
  return "AWS4-HMAC-SHA256\n" + std::string(amzDate) + "\n" + scopeOf(amzDate, region, service) +
         "\n" + io::toHex(io::Sha256::of(io::asBytes(canonical)));
}

Signed sign(const SigningInput& input, const Credentials& credentials, std::string_view region,
            std::string_view amzDate, std::string_view service) {
  std::string canonical = canonicalRequest(input);
  std::string toSign = stringToSign(canonical, amzDate, region, service);
  std::string signature =
      io::toHex(hmac(view(signingKey(credentials, amzDate, region, service)), toSign));

  std::vector<std::string> names;
  for (const auto& header : input.headers)
    names.push_back(lower(header.first));
  std::sort(names.begin(), names.end());
  std::string signedHeaders;
  for (const auto& name : names)
    signedHeaders += (signedHeaders.empty() ? "" : ";") + name;
  return {"AWS4-HMAC-SHA256 Credential=" + credentials.accessKeyId + "/" +
              std::string(dateOf(amzDate)) + "/" + std::string(region) + "/" +
              std::string(service) + "/aws4_request, SignedHeaders=" + signedHeaders +
              ", Signature=" + signature,
          signature};
}

std::string authorization(const SigningInput& input, const Credentials& credentials,
                          std::string_view region, std::string_view amzDate,
                          std::string_view service) {
  return sign(input, credentials, region, amzDate, service).authorization;
}

std::string chunkStringToSign(std::string_view amzDate, std::string_view region,
                              std::string_view previousSignature, std::string_view chunkSha256Hex,
                              std::string_view service) {
  return "AWS4-HMAC-SHA256-PAYLOAD\n" + std::string(amzDate) + "\n" +
         scopeOf(amzDate, region, service) + "\n" + std::string(previousSignature) + "\n" +
         kEmptySha256 + "\n" + std::string(chunkSha256Hex);
}

ChunkSigner::ChunkSigner(const Credentials& credentials, std::string_view region,
                         std::string_view amzDate, std::string seedSignature,
                         std::string_view service)
    : key_(signingKey(credentials, amzDate, region, service)),
      amzDate_(amzDate),
      region_(region),
      service_(service),
      previous_(std::move(seedSignature)) {}

std::string ChunkSigner::next(io::ByteView data) {
  std::string toSign =
      chunkStringToSign(amzDate_, region_, previous_, io::toHex(io::Sha256::of(data)), service_);
  previous_ = io::toHex(hmac(view(key_), toSign));
  return previous_;
}

std::string chunkHeader(std::size_t length, std::string_view signature) {
  return fmt::format("{:x};chunk-signature={}\r\n", length, signature);
}

std::uint64_t chunkedLength(std::uint64_t payloadLength, std::size_t chunkSize) {
  // Each chunk: hex length, ";chunk-signature=" (17), 64 hex digits, CRLF, data, CRLF.
  auto framed = [](std::uint64_t length) {
    return std::uint64_t(fmt::format("{:x}", length).size()) + 17 + 64 + 2 + length + 2;
  };
  std::uint64_t full = payloadLength / chunkSize, rest = payloadLength % chunkSize;
  return full * framed(chunkSize) + (rest > 0 ? framed(rest) : 0) + framed(0);
}

std::string amzNow() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buffer[20];
  std::strftime(buffer, sizeof buffer, "%Y%m%dT%H%M%SZ", &tm);
  return buffer;
}

}  // namespace tidemark::storage::s3
