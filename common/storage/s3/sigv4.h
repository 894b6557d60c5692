// AWS Signature Version 4 for S3 requests (header-based authorization).
//
// We sign ourselves rather than through curl's CURLOPT_AWS_SIGV4: curl 7.88 neither adds
// x-amz-content-sha256 nor sorts and encodes the query string, and a signer of our own can be
// tested against the AWS documentation's example vectors. Secrets never leave this module
// except as the derived signature.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

// The Authorization header value for `input`, signed at `amzDate` (yyyymmddThhmmssZ, UTC).
std::string authorization(const SigningInput& input, const Credentials& credentials,
                          std::string_view region, std::string_view amzDate,
                          std::string_view service = "s3");

// The current time as yyyymmddThhmmssZ.
std::string amzNow();

}  // namespace tidemark::storage::s3
