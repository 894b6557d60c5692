// Unit tests of common/storage/s3/sigv4.h: encoding, canonical forms and the AWS example vectors.
#include "common/storage/s3/sigv4.h"

#include <doctest/doctest.h>

#include <regex>
#include <string>

#include "common/io/hash.h"
#include "common/io/sink.h"
#include "support/check.h"

using namespace tidemark;
using namespace tidemark::storage::s3;
using test::Containing;

namespace {

// The examples in the AWS documentation, "Signature Calculations for the Authorization Header:
// Transferring Payload in a Single Chunk" (sig-v4-header-based-auth), section "Examples".
const Credentials kExampleCredentials{
    .accessKeyId = "AKIAIOSFODNN7EXAMPLE",
    .secretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"};
constexpr const char* kExampleDate = "20130524T000000Z";
constexpr const char* kExampleHost = "examplebucket.s3.amazonaws.com";
constexpr const char* kEmptyHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::string sha256Hex(std::string_view text) {
  return io::toHex(io::Sha256::of(io::asBytes(text)));
}

// The signature part of an Authorization header value.
std::string signatureOf(const std::string& authorization) {
  auto at = authorization.find("Signature=");
  return at == std::string::npos ? "" : authorization.substr(at + 10);
}

}  // namespace

TEST_CASE("uriEncode percent-encodes everything but the unreserved characters") {
  SUBCASE("letters, digits and - _ . ~ stay as they are") {
    std::string unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~";
    CHECK(uriEncode(unreserved, false) == unreserved);
    CHECK(uriEncode(unreserved, true) == unreserved);
  }
  SUBCASE("a space is %20, never '+'") {
    CHECK(uriEncode("a b", false) == "a%20b");
    CHECK(uriEncode("a+b", false) == "a%2Bb");
  }
  SUBCASE("'/' stays in paths and is encoded elsewhere") {
    CHECK(uriEncode("/stanza/wal/0000000100000001", true) == "/stanza/wal/0000000100000001");
    CHECK(uriEncode("/stanza/wal", false) == "%2Fstanza%2Fwal");
  }
  SUBCASE("reserved characters are encoded with upper-case hex") {
    CHECK(uriEncode("$&'()*+,;=:@?#[]!%", false) ==
          "%24%26%27%28%29%2A%2B%2C%3B%3D%3A%40%3F%23%5B%5D%21%25");
    CHECK(uriEncode("\x7f\x01", false) == "%7F%01");
  }
  SUBCASE("'%' is encoded, so an already encoded key is not taken for its decoded form") {
    CHECK(uriEncode("/a%20b", true) == "/a%2520b");
  }
  SUBCASE("UTF-8 text is encoded byte by byte") {
    CHECK(uriEncode("é", false) == "%C3%A9");
    CHECK(uriEncode("/€/ü", true) == "/%E2%82%AC/%C3%BC");
    CHECK(uriEncode("😀", false) == "%F0%9F%98%80");
  }
  SUBCASE("the empty string stays empty") {
    CHECK(uriEncode("", true).empty());
  }
}

TEST_CASE("canonicalQuery encodes names and values and sorts them") {
  SUBCASE("no parameters give the empty string") {
    CHECK(canonicalQuery({}).empty());
  }
  SUBCASE("parameters are sorted by name whatever order they come in") {
    CHECK(canonicalQuery({{"prefix", "J"}, {"max-keys", "2"}}) == "max-keys=2&prefix=J");
    CHECK(canonicalQuery({{"prefix", "wal/"}, {"list-type", "2"}, {"delimiter", "/"}}) ==
          "delimiter=%2F&list-type=2&prefix=wal%2F");
  }
  SUBCASE("sorting is by byte, so upper case comes before lower case") {
    CHECK(canonicalQuery({{"b", "1"}, {"a", "2"}, {"B", "3"}}) == "B=3&a=2&b=1");
  }
  SUBCASE("repeated names are sorted by value") {
    CHECK(canonicalQuery({{"k", "b"}, {"k", "a"}}) == "k=a&k=b");
  }
  SUBCASE("a parameter without a value is written 'name='") {
    CHECK(canonicalQuery({{"lifecycle", ""}}) == "lifecycle=");
    CHECK(canonicalQuery({{"uploads", ""}, {"prefix", "x"}}) == "prefix=x&uploads=");
  }
  SUBCASE("'/', '+' and '=' in values are encoded, as in continuation tokens") {
    CHECK(canonicalQuery({{"continuation-token", "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="},
                          {"list-type", "2"}}) ==
          "continuation-token=1ueGcxLPRx1Tr%2FXYExHnhbYLgveDs2J%2Fwm36Hy4vbOwM%3D&list-type=2");
    CHECK(canonicalQuery({{"token", "a+b=c d"}}) == "token=a%2Bb%3Dc%20d");
  }
  SUBCASE("names and values that need encoding are sorted as encoded") {
    // '%' (0x25) sorts before '-' (0x2D): "a%20b" before "a-b".
    CHECK(canonicalQuery({{"a-b", "1"}, {"a b", "2"}}) == "a%20b=2&a-b=1");
    CHECK(canonicalQuery({{"uploadId", "x/y"}, {"partNumber", "10"}}) ==
          "partNumber=10&uploadId=x%2Fy");
  }
}

TEST_CASE("canonicalRequest writes the method, path, query, headers and payload hash") {
  SigningInput input{.method = "GET",
                     .path = "/wal/a b",
                     .query = {{"versionId", "3/L4kqtJl"}},
                     .headers = {{"X-Amz-Date", kExampleDate},
                                 {"Host", "bucket.example"},
                                 {"X-Amz-Meta-Note", "  two   spaces  inside  "}},
                     .payloadHash = "UNSIGNED-PAYLOAD"};
  SUBCASE("header names are lower case and sorted; values are trimmed and runs of spaces shrunk") {
    CHECK(canonicalRequest(input) ==
          "GET\n"
          "/wal/a%20b\n"
          "versionId=3%2FL4kqtJl\n"
          "host:bucket.example\n"
          "x-amz-date:20130524T000000Z\n"
          "x-amz-meta-note:two spaces inside\n"
          "\n"
          "host;x-amz-date;x-amz-meta-note\n"
          "UNSIGNED-PAYLOAD");
  }
  SUBCASE("tabs count as spaces in header values") {
    input.headers = {{"host", "\tbucket.example\t"}, {"x-amz-meta-a", "a\t \tb"}};
    CHECK(canonicalRequest(input) ==
          "GET\n/wal/a%20b\nversionId=3%2FL4kqtJl\nhost:bucket.example\nx-amz-meta-a:a b\n\n"
          "host;x-amz-meta-a\nUNSIGNED-PAYLOAD");
  }
  SUBCASE("an empty path is the root '/'") {
    input.path = "";
    input.query.clear();
    input.headers = {{"host", "bucket.example"}};
    CHECK(canonicalRequest(input) == "GET\n/\n\nhost:bucket.example\n\nhost\nUNSIGNED-PAYLOAD");
  }
  SUBCASE("an empty header value is kept as an empty value") {
    input.headers = {{"host", "bucket.example"}, {"x-amz-meta-empty", "   "}};
    CHECK(canonicalRequest(input) ==
          "GET\n/wal/a%20b\nversionId=3%2FL4kqtJl\nhost:bucket.example\nx-amz-meta-empty:\n\n"
          "host;x-amz-meta-empty\nUNSIGNED-PAYLOAD");
  }
}

TEST_CASE("the signer reproduces the S3 examples of the AWS documentation") {
  // Each example's canonical request and string to sign as published, then the signature.
  SUBCASE("GET Object") {
    SigningInput input{.method = "GET",
                       .path = "/test.txt",
                       .headers = {{"Host", kExampleHost},
                                   {"Range", "bytes=0-9"},
                                   {"x-amz-content-sha256", kEmptyHash},
                                   {"x-amz-date", kExampleDate}},
                       .payloadHash = kEmptyHash};
    std::string canonical = canonicalRequest(input);
    CHECK(canonical ==
          "GET\n"
          "/test.txt\n"
          "\n"
          "host:examplebucket.s3.amazonaws.com\n"
          "range:bytes=0-9\n"
          "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
          "x-amz-date:20130524T000000Z\n"
          "\n"
          "host;range;x-amz-content-sha256;x-amz-date\n"
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(stringToSign(canonical, kExampleDate, "us-east-1", "s3") ==
          "AWS4-HMAC-SHA256\n"
          "20130524T000000Z\n"
          "20130524/us-east-1/s3/aws4_request\n"
          "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    CHECK(authorization(input, kExampleCredentials, "us-east-1", kExampleDate) ==
          "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
          "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
          "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  }
  SUBCASE("PUT Object") {
    std::string payloadHash = sha256Hex("Welcome to Amazon S3.");
    REQUIRE(payloadHash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    SigningInput input{.method = "PUT",
                       .path = "/test$file.text",
                       .headers = {{"Host", kExampleHost},
                                   {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                                   {"x-amz-date", kExampleDate},
                                   {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                                   {"x-amz-content-sha256", payloadHash}},
                       .payloadHash = payloadHash};
    std::string canonical = canonicalRequest(input);
    CHECK(canonical ==
          "PUT\n"
          "/test%24file.text\n"
          "\n"
          "date:Fri, 24 May 2013 00:00:00 GMT\n"
          "host:examplebucket.s3.amazonaws.com\n"
          "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
          "x-amz-date:20130524T000000Z\n"
          "x-amz-storage-class:REDUCED_REDUNDANCY\n"
          "\n"
          "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
          "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    CHECK(stringToSign(canonical, kExampleDate, "us-east-1", "s3") ==
          "AWS4-HMAC-SHA256\n"
          "20130524T000000Z\n"
          "20130524/us-east-1/s3/aws4_request\n"
          "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
    std::string header = authorization(input, kExampleCredentials, "us-east-1", kExampleDate);
    CHECK(
        header ==
        Containing("SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"));
    CHECK(signatureOf(header) ==
          "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
  }
  SUBCASE("GET Bucket Lifecycle") {
    SigningInput input{.method = "GET",
                       .path = "/",
                       .query = {{"lifecycle", ""}},
                       .headers = {{"Host", kExampleHost},
                                   {"x-amz-date", kExampleDate},
                                   {"x-amz-content-sha256", kEmptyHash}},
                       .payloadHash = kEmptyHash};
    std::string canonical = canonicalRequest(input);
    CHECK(canonical ==
          "GET\n"
          "/\n"
          "lifecycle=\n"
          "host:examplebucket.s3.amazonaws.com\n"
          "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
          "x-amz-date:20130524T000000Z\n"
          "\n"
          "host;x-amz-content-sha256;x-amz-date\n"
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(stringToSign(canonical, kExampleDate, "us-east-1", "s3") ==
          "AWS4-HMAC-SHA256\n"
          "20130524T000000Z\n"
          "20130524/us-east-1/s3/aws4_request\n"
          "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca");
    CHECK(signatureOf(authorization(input, kExampleCredentials, "us-east-1", kExampleDate)) ==
          "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
  }
  SUBCASE("Get Bucket (List Objects)") {
    SigningInput input{.method = "GET",
                       .path = "/",
                       .query = {{"max-keys", "2"}, {"prefix", "J"}},
                       .headers = {{"Host", kExampleHost},
                                   {"x-amz-date", kExampleDate},
                                   {"x-amz-content-sha256", kEmptyHash}},
                       .payloadHash = kEmptyHash};
    std::string canonical = canonicalRequest(input);
    CHECK(canonical ==
          "GET\n"
          "/\n"
          "max-keys=2&prefix=J\n"
          "host:examplebucket.s3.amazonaws.com\n"
          "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
          "x-amz-date:20130524T000000Z\n"
          "\n"
          "host;x-amz-content-sha256;x-amz-date\n"
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(stringToSign(canonical, kExampleDate, "us-east-1", "s3") ==
          "AWS4-HMAC-SHA256\n"
          "20130524T000000Z\n"
          "20130524/us-east-1/s3/aws4_request\n"
          "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7");
    CHECK(signatureOf(authorization(input, kExampleCredentials, "us-east-1", kExampleDate)) ==
          "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
    // The order the caller gives the parameters in does not matter.
    std::swap(input.query[0], input.query[1]);
    CHECK(signatureOf(authorization(input, kExampleCredentials, "us-east-1", kExampleDate)) ==
          "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
  }
}

TEST_CASE("authorization names the credential scope and the sorted signed headers") {
  SigningInput input{.method = "DELETE",
                     .path = "/bucket/key",
                     .headers = {{"X-Amz-Security-Token", "TOKEN"},
                                 {"x-amz-date", "20240229T235959Z"},
                                 {"Host", "s3.eu-west-3.amazonaws.com"},
                                 {"X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD"}},
                     .payloadHash = "UNSIGNED-PAYLOAD"};
  Credentials credentials{
      .accessKeyId = "AKID", .secretAccessKey = "SECRET", .sessionToken = "TOKEN"};
  std::string header = authorization(input, credentials, "eu-west-3", "20240229T235959Z");
  SUBCASE("the credential is key/date/region/s3/aws4_request") {
    CHECK(header.rfind("AWS4-HMAC-SHA256 Credential=AKID/20240229/eu-west-3/s3/aws4_request, ",
                       0) == 0);
  }
  SUBCASE("signed headers are the lower-case names, sorted, as in the canonical request") {
    CHECK(
        header ==
        Containing(", SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, "));
    CHECK(canonicalRequest(input) ==
          Containing("\nhost;x-amz-content-sha256;x-amz-date;x-amz-security-token\n"));
  }
  SUBCASE("the signature is 64 lower-case hex digits and never contains the secret") {
    CHECK(std::regex_match(signatureOf(header), std::regex("[0-9a-f]{64}")));
    CHECK_FALSE(header == Containing("SECRET"));
  }
  SUBCASE("another service goes into the scope") {
    CHECK(authorization(input, credentials, "eu-west-3", "20240229T235959Z", "sts") ==
          Containing("Credential=AKID/20240229/eu-west-3/sts/aws4_request, "));
  }
  SUBCASE("the signature depends on every input") {
    std::string base = signatureOf(header);
    SigningInput other = input;
    other.path = "/bucket/key2";
    CHECK(signatureOf(authorization(other, credentials, "eu-west-3", "20240229T235959Z")) != base);
    CHECK(signatureOf(authorization(input, credentials, "eu-west-2", "20240229T235959Z")) != base);
    CHECK(signatureOf(authorization(input, credentials, "eu-west-3", "20240229T235958Z")) != base);
    Credentials wrong = credentials;
    wrong.secretAccessKey = "SECRET2";
    CHECK(signatureOf(authorization(input, wrong, "eu-west-3", "20240229T235959Z")) != base);
  }
}

TEST_CASE("dateOf and amzNow use the yyyymmddThhmmssZ form") {
  CHECK(dateOf("20130524T000000Z") == "20130524");
  CHECK(std::regex_match(amzNow(), std::regex("20[0-9]{6}T[0-2][0-9][0-5][0-9][0-6][0-9]Z")));
}

TEST_CASE("chunk signatures reproduce the AWS streamed-upload example") {
  // AWS documentation, "Signature Calculations for the Authorization Header: Transferring Payload
  // in Multiple Chunks (Chunked Upload)", "Example: PUT Object": 66560 bytes of 'a' in a 64 KiB
  // chunk, a 1 KiB chunk and the empty final chunk.
  const std::string payload(66560, 'a');
  SigningInput input{.method = "PUT",
                     .path = "/examplebucket/chunkObject.txt",
                     .headers = {{"Host", "s3.amazonaws.com"},
                                 {"x-amz-date", kExampleDate},
                                 {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                                 {"x-amz-content-sha256", std::string(kStreamingPayload)},
                                 {"Content-Encoding", "aws-chunked"},
                                 {"x-amz-decoded-content-length", "66560"},
                                 {"Content-Length", "66824"}},
                     .payloadHash = std::string(kStreamingPayload)};
  SUBCASE("the seed: the request's own signature, over STREAMING-AWS4-HMAC-SHA256-PAYLOAD") {
    std::string canonical = canonicalRequest(input);
    CHECK(canonical ==
          "PUT\n"
          "/examplebucket/chunkObject.txt\n"
          "\n"
          "content-encoding:aws-chunked\n"
          "content-length:66824\n"
          "host:s3.amazonaws.com\n"
          "x-amz-content-sha256:STREAMING-AWS4-HMAC-SHA256-PAYLOAD\n"
          "x-amz-date:20130524T000000Z\n"
          "x-amz-decoded-content-length:66560\n"
          "x-amz-storage-class:REDUCED_REDUNDANCY\n"
          "\n"
          "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-"
          "content-length;x-amz-storage-class\n"
          "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    CHECK(stringToSign(canonical, kExampleDate, "us-east-1", "s3") ==
          "AWS4-HMAC-SHA256\n"
          "20130524T000000Z\n"
          "20130524/us-east-1/s3/aws4_request\n"
          "cee3fed04b70f867d036f722359b0b1f2f0e5dc0efadbc082b76c4c60e316455");
    Signed seed = sign(input, kExampleCredentials, "us-east-1", kExampleDate);
    CHECK(seed.signature == "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9");
    CHECK(signatureOf(seed.authorization) == seed.signature);
    CHECK(authorization(input, kExampleCredentials, "us-east-1", kExampleDate) ==
          seed.authorization);
  }
  SUBCASE("each chunk's string to sign chains the signature before it") {
    CHECK(chunkStringToSign(kExampleDate, "us-east-1",
                            "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
                            sha256Hex(std::string(65536, 'a'))) ==
          "AWS4-HMAC-SHA256-PAYLOAD\n"
          "20130524T000000Z\n"
          "20130524/us-east-1/s3/aws4_request\n"
          "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9\n"
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
          "bf718b6f653bebc184e1479f1935b8da974d701b893afcf49e701f3e2f9f9c5a");
  }
  SUBCASE("the chunk signatures and the body's framing and length") {
    ChunkSigner signer(kExampleCredentials, "us-east-1", kExampleDate,
                       "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9");
    const ChunkSigner fresh = signer;
    io::ByteView all = io::asBytes(payload);
    std::string first = signer.next(all.subspan(0, 65536));
    std::string second = signer.next(all.subspan(65536));
    std::string last = signer.next({});
    CHECK(first == "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648");
    CHECK(second == "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497");
    CHECK(last == "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9");
    CHECK(chunkHeader(65536, first) ==
          "10000;chunk-signature="
          "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n");
    CHECK(chunkHeader(1024, second) == Containing("400;chunk-signature="));
    CHECK(chunkHeader(0, last) == Containing("0;chunk-signature=b6c6ea"));
    std::size_t wire = chunkHeader(65536, first).size() + 65536 + 2 +
                       chunkHeader(1024, second).size() + 1024 + 2 + chunkHeader(0, last).size() +
                       2;
    CHECK(wire == 66824);
    CHECK(chunkedLength(66560, 65536) == 66824);
    // A copy made before the first chunk signs the same chunks again (a request sent anew).
    ChunkSigner again = fresh;
    CHECK(again.next(all.subspan(0, 65536)) == first);
  }
  SUBCASE("a chunk changed, moved or cut gets another signature") {
    ChunkSigner signer(kExampleCredentials, "us-east-1", kExampleDate,
                       "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9");
    std::string damaged(65536, 'a');
    damaged[1000] = 'b';
    ChunkSigner a = signer, b = signer, c = signer;
    CHECK(a.next(io::asBytes(damaged)) !=
          "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648");
    CHECK(b.next(io::asBytes(payload).subspan(0, 1024)) !=
          "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497");
    CHECK(c.next(io::asBytes(payload).subspan(0, 65535)) !=
          "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648");
  }
  SUBCASE("chunkedLength counts every chunk's framing") {
    CHECK(chunkedLength(0, 65536) == 86);  // the final chunk alone
    CHECK(chunkedLength(1, 65536) == 1 + 85 + 1 + 86);
    CHECK(chunkedLength(65536, 65536) == 5 + 85 + 65536 + 86);
    // A WAL segment stored without compression: 256 chunks of 64 KiB and one of 68 bytes.
    CHECK(chunkedLength((16u << 20) + 68, 65536) == 256 * 65626 + (2 + 85 + 68) + 86);
  }
}
