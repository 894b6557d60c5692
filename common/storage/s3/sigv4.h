// AWS Signature Version 4 for S3 requests (header-based authorization), and the chunk
// signatures of a body streamed as STREAMING-AWS4-HMAC-SHA256-PAYLOAD ("aws-chunked").
//
// We sign ourselves rather than through curl's CURLOPT_AWS_SIGV4: curl 7.88 neither adds
// x-amz-content-sha256 nor sorts and encodes the query string, and a signer of our own can be
// tested against the AWS documentation's example vectors. Secrets never leave this module
// except as the derived signature (or the signing key a ChunkSigner keeps).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/io/hash.h"
#include "common/io/sink.h"

namespace tidemark::storage::s3 {

struct Credentials {
  std::string accessKeyId;
  std::string secretAccessKey;
  std::string sessionToken;  // optional (temporary credentials)
};

struct SigningInput {
  std::string method;                                        // "GET", "PUT", ...
  std::string path;                                          // "/bucket/key", not yet encoded
  std::vector<std::pair<std::string, std::string>> query;    // decoded names and values
  std::vector<std::pair<std::string, std::string>> headers;  // every header to sign, incl. host
  std::string payloadHash;                                   // hex SHA-256 or "UNSIGNED-PAYLOAD"
};

// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters stay, everything else is
// %XX (upper case); '/' stays only when `keepSlash`.
std::string uriEncode(std::string_view text, bool keepSlash);

// The query string in canonical form: names and values encoded, sorted, "a=1&b=&c=3". Send this
// exact string on the wire too, so that what is signed is what the server sees.
std::string canonicalQuery(const std::vector<std::pair<std::string, std::string>>& query);

std::string canonicalRequest(const SigningInput& input);

// "20130524" from "20130524T000000Z".
std::string_view dateOf(std::string_view amzDate);

std::string stringToSign(std::string_view canonicalRequest, std::string_view amzDate,
                         std::string_view region, std::string_view service);

struct Signed {
  std::string authorization;  // the Authorization header value
  std::string signature;      // its signature (64 hex digits): a streamed body's seed signature
};

// Signs `input` at `amzDate` (yyyymmddThhmmssZ, UTC).
Signed sign(const SigningInput& input, const Credentials& credentials, std::string_view region,
            std::string_view amzDate, std::string_view service = "s3");

// The Authorization header value for `input`, signed at `amzDate` (yyyymmddThhmmssZ, UTC).
std::string authorization(const SigningInput& input, const Credentials& credentials,
                          std::string_view region, std::string_view amzDate,
                          std::string_view service = "s3");

// ---- streamed bodies (AWS: "Transferring Payload in Multiple Chunks (Chunked Upload)") ----------
//
// The request's x-amz-content-sha256 is kStreamingPayload, its Content-Encoding "aws-chunked" and
// x-amz-decoded-content-length the payload's length; its body is the payload in chunks, each
// "<hex length>;chunk-signature=<signature>\r\n<data>\r\n", then an empty final chunk. A chunk's
// signature covers its data's SHA-256 and the signature before it (the first: the request's own,
// the seed), so the server refuses a body whose bytes, order or length changed on the way.

inline constexpr std::string_view kStreamingPayload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";

// The string a chunk's signature signs: previous signature, the empty string's SHA-256, the
// chunk data's SHA-256 (hex).
std::string chunkStringToSign(std::string_view amzDate, std::string_view region,
                              std::string_view previousSignature, std::string_view chunkSha256Hex,
                              std::string_view service = "s3");

// Signs the chunks of one request in order. Copyable: a copy made before the first chunk signs the
// same chunks again (a request sent anew).
class ChunkSigner {
 public:
  ChunkSigner(const Credentials& credentials, std::string_view region, std::string_view amzDate,
              std::string seedSignature, std::string_view service = "s3");
  // The signature of the next chunk, whose data is `data` (empty for the final chunk).
  std::string next(io::ByteView data);

 private:
  io::Sha256Digest key_;
  std::string amzDate_, region_, service_, previous_;
};

// A chunk's framing before its data: "<hex length>;chunk-signature=<signature>\r\n".
std::string chunkHeader(std::size_t length, std::string_view signature);

// The length on the wire (Content-Length) of `payloadLength` bytes sent in chunks of `chunkSize`
// (the last one shorter), followed by the empty final chunk.
std::uint64_t chunkedLength(std::uint64_t payloadLength, std::size_t chunkSize);

// The current time as yyyymmddThhmmssZ.
std::string amzNow();

}  // namespace tidemark::storage::s3
