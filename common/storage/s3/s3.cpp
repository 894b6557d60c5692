// The s3 storage driver.
#include "common/storage/s3/s3.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "common/base/error.h"
#include "common/base/text.h"
#include "common/base/time.h"
#include "common/io/hash.h"
#include "common/io/libcrypto.h"
#include "common/storage/s3/xml.h"

namespace tidemark::storage {

namespace {

using s3::HttpResponse;

// Statuses worth another try: the server's trouble, not the request's (501 Not Implemented is
// neither); and a body the server received damaged (its SHA-256 or MD5 not the one signed or
// sent): refused, nothing stored.
bool retryableStatus(long status, const std::string& body) {
  if ((status >= 500 && status != 501) || status == 429 || status == 408) return true;
  if (status == 400) {
    auto code = s3::xml::errorCode(body);
    return code && (*code == "RequestTimeout" || *code == "SlowDown" ||
                    *code == "XAmzContentSHA256Mismatch" || *code == "BadDigest");
  }
  return false;
}

// One attempt's body of a streamed request: the stream's bytes in chunks, each framed with its
// signature, then the empty final chunk.
class ChunkedBody final : public s3::BodySource {
 public:
  ChunkedBody(S3Storage::BodyStream& stream, s3::ChunkSigner signer)
      : stream_(stream), seed_(signer), signer_(std::move(signer)) {}

  std::uint64_t size() const override { return s3::chunkedLength(stream_.size(), kS3StreamChunk); }

  std::size_t read(std::uint8_t* out, std::size_t max) override {
    std::size_t n = 0;
    while (n < max && !ended_) {
      io::ByteView piece = part_ == Part::Head   ? io::asBytes(head_)
                           : part_ == Part::Data ? data_
                                                 : io::asBytes("\r\n");
      if (at_ < piece.size()) {
        std::size_t take = std::min(max - n, piece.size() - at_);
        std::memcpy(out + n, piece.data() + at_, take);
        at_ += take;
        n += take;
        continue;
      }
      if (part_ != Part::End) {
        part_ = part_ == Part::Head ? Part::Data : Part::End;
        at_ = 0;
        continue;
      }
      if (final_) {
        ended_ = true;
        break;
      }
      // The next chunk: waited for only when nothing is ready to go (curl sends what it gets).
      if (!frame(n == 0)) break;
    }
    return n;
  }

  void rewind() override {
    signer_ = seed_;
    offset_ = 0;
    part_ = Part::End;
    at_ = 2;
    final_ = ended_ = false;
  }

 private:
  enum class Part { Head, Data, End };  // a chunk: its framing, its data, CRLF

  bool frame(bool wait) {
    std::size_t length =
        std::size_t(std::min<std::uint64_t>(kS3StreamChunk, stream_.size() - offset_));
    io::ByteView data;
    if (length > 0) {
      auto ready = stream_.get(offset_, length, wait);
      if (!ready) return false;
      data = *ready;
    }
    data_ = data;
    head_ = s3::chunkHeader(length, signer_.next(data));
    offset_ += length;
    final_ = length == 0;
    part_ = Part::Head;
    at_ = 0;
    return true;
  }

  S3Storage::BodyStream& stream_;
  const s3::ChunkSigner seed_;
  s3::ChunkSigner signer_;
  std::uint64_t offset_ = 0;  // of the next chunk's data in the stream
  std::string head_;
  io::ByteView data_;
  Part part_ = Part::End;
  std::size_t at_ = 2;  // in the current part: as if after a chunk's CRLF
  bool final_ = false, ended_ = false;
};

bool retryableTransport(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_WRITE_ERROR:
    case CURLE_OUT_OF_MEMORY:
      return false;
    default:
      return true;  // connection refused or reset, timeouts, stalls, truncated transfers
  }
}

std::string transportHint(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
      return "check the host name in s3.endpoint (and s3.uri-style: host style prepends the bucket "
             "name)";
    case CURLE_COULDNT_CONNECT:
      return "check s3.endpoint (scheme, host and port) and that the S3 server is up and reachable";
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CONNECT_ERROR:
      return "the server's TLS certificate was not accepted: set s3.ca-file to the CA that signed "
             "it "
             "(s3.verify-tls = false only for tests)";
    case CURLE_OPERATION_TIMEDOUT:
      return "the server stopped answering (or sent less than 1 KiB a second): check the "
             "network, or raise s3.timeout";
    default:
      return "check the network path to s3.endpoint; transient failures were retried";
  }
}

// What to do about an S3 error code.
std::string errorHint(const std::string& code, const HttpResponse& response,
                      const S3Options& options) {
  if (code == "AccessDenied" || code == "Forbidden")
    return fmt::format(
        "the credentials may not do this on bucket '{}': check the access key's permissions "
        "(s3:GetObject, s3:PutObject, s3:ListBucket, s3:DeleteObject)",
        options.bucket);
  if (code == "InvalidAccessKeyId")
    return "the access key id is unknown to this endpoint: check s3.access-key-id (or "
           "AWS_ACCESS_KEY_ID) "
           "and s3.endpoint";
  if (code == "SignatureDoesNotMatch")
    return "the signature was refused: check s3.secret-access-key (or AWS_SECRET_ACCESS_KEY)";
  if (code == "RequestTimeTooSkewed")
    return "this machine's clock differs from the server's by more than 15 minutes: fix the clock "
           "(NTP)";
  if (code == "NoSuchBucket")
    return fmt::format(
        "create bucket '{}' or fix s3.bucket; self-hosted stores (MinIO, Ceph) usually need "
        "s3.uri-style = \"path\"",
        options.bucket);
  if (code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" ||
      code == "IllegalLocationConstraintException") {
    std::string region = response.header("x-amz-bucket-region");
    if (auto document = s3::xml::Document::parse(response.body))
      if (auto expected = document->root().childText("Region")) region = *expected;
    return region.empty() ? "the bucket is in another region: set s3.region to the bucket's region"
                          : fmt::format("the bucket is in region '{}': set s3.region = \"{}\"",
                                        region, region);
  }
  if (code == "XAmzContentSHA256Mismatch" || code == "BadDigest")
    return "the body the server received is not the one sent (it refused it and stored nothing): "
           "check the network path to s3.endpoint for a proxy or middlebox that alters requests, "
           "or use https";
  if (code == "InvalidBucketName")
    return "check s3.bucket; with s3.uri-style = \"host\" the endpoint must accept bucket.host "
           "names";
  return {};
}

std::string base64(io::ByteView data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = io::libcrypto().EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data.data(),
                                          int(data.size()));
  out.resize(std::size_t(n));
  return out;
}

std::string md5Base64(io::ByteView data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (io::libcrypto().EVP_Digest(data.data(), data.size(), digest, &length,
                                 io::libcrypto().EVP_md5(), nullptr) != 1)
    throw Error(ErrorCode::Internal, "MD5 failed in OpenSSL");
  return base64({digest, length});
}

// How often a wait between attempts looks whether the requests were abandoned (S3Options::abandon).
constexpr std::chrono::milliseconds kAbandonCheck{200};

std::chrono::milliseconds backoff(std::chrono::milliseconds base, int attempt) {
  static thread_local std::mt19937 random{std::random_device{}()};
  auto ceiling = base * (1LL << std::min(attempt, 10));
  std::uniform_int_distribution<long long> jitter(ceiling.count() / 2,
                                                  ceiling.count());  // "equal jitter"
  return std::chrono::milliseconds(jitter(random));
}

std::string describeRequest(const S3Storage::Request& request, const S3Options& options) {
  if (request.key.empty())
    return fmt::format("S3 {} on bucket '{}'", request.operation, options.bucket);
  return fmt::format("S3 {} of '{}' in bucket '{}'", request.operation, request.key,
                     options.bucket);
}

}  // namespace

// ---- the storage --------------------------------------------------------------------------

S3Storage::S3Storage(S3Options options) : options_(std::move(options)) {
  auto bad = [&](const std::string& message, const std::string& hint) {
    throw Error(ErrorCode::Config, message, hint);
  };
  if (options_.bucket.empty())
    bad("s3.bucket is not set", "set s3.bucket to the bucket holding the repository");
  auto schemeEnd = options_.endpoint.find("://");
  if (schemeEnd == std::string::npos)
    bad(fmt::format("s3.endpoint '{}' has no scheme", options_.endpoint),
        "write it as https://host[:port] (http:// only on a trusted network)");
  scheme_ = options_.endpoint.substr(0, schemeEnd);
  hostPort_ = options_.endpoint.substr(schemeEnd + 3);
  while (!hostPort_.empty() && hostPort_.back() == '/')
    hostPort_.pop_back();
  if (scheme_ != "http" && scheme_ != "https")
    bad(fmt::format("s3.endpoint '{}' is neither http:// nor https://", options_.endpoint),
        "use https://host[:port]");
  if (hostPort_.empty() || hostPort_.find('/') != std::string::npos)
    bad(fmt::format("s3.endpoint '{}' must be scheme://host[:port] without a path",
                    options_.endpoint),
        "put a key prefix in repo.path instead");
  std::string host = hostPort_.substr(
      0, hostPort_.rfind(':') == std::string::npos ? hostPort_.size() : hostPort_.rfind(':'));
  bool isIp =
      !host.empty() && (host.front() == '[' || std::all_of(host.begin(), host.end(), [](char c) {
                          return std::isdigit(static_cast<unsigned char>(c)) || c == '.';
                        }));
  if (options_.hostStyle && isIp)
    bad(fmt::format("s3.uri-style = \"host\" cannot work with an IP address endpoint ('{}')",
                    options_.endpoint),
        "set s3.uri-style = \"path\", or use the endpoint's DNS name");
  if (options_.credentials.accessKeyId.empty() || options_.credentials.secretAccessKey.empty())
    bad("no S3 credentials",
        "set s3.access-key-id and s3.secret-access-key, or AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws/credentials");
  if (options_.partSize < (5u << 20))
    bad(fmt::format("s3.part-size {} is below S3's 5 MiB minimum", options_.partSize),
        "set s3.part-size to 5MiB or more");
  // The connection (and libcurl with it) comes with the first request: a handle that makes
  // none (describe(), an archive-push that push-ahead acknowledged) loads nothing.
}

S3Storage::~S3Storage() = default;

s3::HttpClient& S3Storage::client() {
  if (!client_) client_ = std::make_unique<s3::HttpClient>(httpOptions());
  return *client_;
}

std::unique_ptr<s3::HttpClient> S3Storage::borrowClient() {
  if (!client_) return std::make_unique<s3::HttpClient>(httpOptions());
  return std::move(client_);
}

void S3Storage::giveBack(std::unique_ptr<s3::HttpClient> client) {
  if (!client_) client_ = std::move(client);
}

s3::HttpOptions S3Storage::httpOptions() const {
  s3::HttpOptions http{.caFile = options_.caFile,
                       .verifyTls = options_.verifyTls,
                       .connectTimeoutMs = options_.connectTimeoutMs,
                       .stallTimeoutSeconds = options_.stallTimeoutSeconds,
                       .abandon = options_.abandon};
  // *.localhost is loopback (RFC 6761), but neither glibc nor curl 7.88 resolve bucket.localhost.
  std::string host = hostPort_.substr(
      0, hostPort_.rfind(':') == std::string::npos ? hostPort_.size() : hostPort_.rfind(':'));
  bool loopbackName = host == "localhost" || (host.size() > 10 && host.ends_with(".localhost"));
  if (options_.hostStyle && loopbackName) {
    std::string port = hostPort_.rfind(':') == std::string::npos
                           ? (scheme_ == "https" ? "443" : "80")
                           : hostPort_.substr(hostPort_.rfind(':') + 1);
    http.resolve.push_back(options_.bucket + "." + host + ":" + port + ":127.0.0.1");
  }
  return http;
}

std::string S3Storage::describe() const {
  return fmt::format("s3://{}/{} ({})", options_.bucket, options_.prefix, options_.endpoint);
}

std::string S3Storage::key(const std::string& path) const {
  if (!path.empty()) checkPath(path);
  if (options_.prefix.empty()) return path;
  return path.empty() ? options_.prefix : options_.prefix + "/" + path;
}

std::string S3Storage::url(const Request& request, std::string& host,
                           std::string& canonicalPath) const {
  if (options_.hostStyle) {
    host = options_.bucket + "." + hostPort_;
    canonicalPath = "/" + request.key;
  } else {
    host = hostPort_;
    canonicalPath = "/" + options_.bucket + (request.key.empty() ? "" : "/" + request.key);
  }
  std::string query = s3::canonicalQuery(request.query);
  return scheme_ + "://" + host + s3::uriEncode(canonicalPath, true) +
         (query.empty() ? "" : "?" + query);
}

HttpResponse S3Storage::execute(const Request& request, s3::HttpClient& client) const {
  const bool streamed = request.stream != nullptr;
  const std::string payloadHash = streamed ? std::string(s3::kStreamingPayload)
                                  : request.payloadHash.empty()
                                      ? io::toHex(io::Sha256::of(request.body))
                                      : request.payloadHash;
  const auto deadline = std::chrono::steady_clock::now() + options_.retryTime;
  std::uint64_t delivered = 0;
  std::string etag;      // of the first partial response, so a resumed GET reads the same object
  bool altered = false;  // a signature refused although the server accepts ours: see below
  // A clean-up after an abandon: one attempt on a connection the abandon does not end.
  const bool afterAbandon =
      request.cleanup && options_.abandon != nullptr && options_.abandon->load();
  std::unique_ptr<s3::HttpClient> ownClient;
  if (afterAbandon) {
    s3::HttpOptions http = httpOptions();
    http.abandon = nullptr;
    http.connectTimeoutMs = std::min(http.connectTimeoutMs, kCleanupTimeoutSeconds * 1000);
    http.stallTimeoutSeconds = std::min(http.stallTimeoutSeconds, kCleanupTimeoutSeconds);
    ownClient = std::make_unique<s3::HttpClient>(http);
  }
  s3::HttpClient& connection = afterAbandon ? *ownClient : client;
  const int retryMax = afterAbandon ? 0 : options_.retryMax;
  // Before each attempt, and after one that did not complete (ended by it, or not).
  auto checkAbandoned = [&] {
    if (!afterAbandon && options_.abandon != nullptr && options_.abandon->load())
      throw Error(ErrorCode::Storage, fmt::format("{}: abandoned, this process stops",
                                                  describeRequest(request, options_)));
  };
  for (int attempt = 0;; ++attempt) {
    checkAbandoned();
    std::string host, canonicalPath;
    std::string target = url(request, host, canonicalPath);
    std::vector<std::pair<std::string, std::string>> headers = request.headers;
    std::uint64_t start = request.rangeStart + delivered;
    std::optional<s3::HttpRequest::Range> range;
    if (request.resumable && (start > 0 || request.rangeEnd)) {
      range = s3::HttpRequest::Range{start, request.rangeEnd};
      headers.emplace_back("range",
                           fmt::format("bytes={}-{}", start,
                                       request.rangeEnd ? std::to_string(*request.rangeEnd) : ""));
    }
    if (!etag.empty()) headers.emplace_back("if-match", etag);
    std::string amzDate = s3::amzNow();
    headers.emplace_back("host", host);
    headers.emplace_back("x-amz-date", amzDate);
    headers.emplace_back("x-amz-content-sha256", payloadHash);
    if (streamed) {
      headers.emplace_back("content-encoding", "aws-chunked");
      headers.emplace_back("x-amz-decoded-content-length", std::to_string(request.stream->size()));
    }
    if (!options_.credentials.sessionToken.empty())
      headers.emplace_back("x-amz-security-token", options_.credentials.sessionToken);
    s3::SigningInput signing{request.method, canonicalPath, request.query, headers, payloadHash};
    s3::Signed signature = s3::sign(signing, options_.credentials, options_.region, amzDate);
    // A streamed body is signed chunk by chunk from this attempt's signature: a new one each time.
    std::optional<ChunkedBody> chunked;
    if (streamed)
      chunked.emplace(*request.stream, s3::ChunkSigner(options_.credentials, options_.region,
                                                       amzDate, signature.signature));

    s3::HttpRequest http{.method = request.method,
                         .url = target,
                         .body = request.body,
                         .source = chunked ? &*chunked : nullptr,
                         .sink = request.sink,
                         .range = range};
    for (const auto& [name, value] : headers)
      if (name != "host") http.headers.push_back(name + ": " + value);
    http.headers.push_back("Authorization: " + signature.authorization);
    if (request.method == "PUT" || request.method == "POST")
      http.headers.push_back("Content-Type: application/octet-stream");

    spdlog::debug("{} {} (attempt {})", request.method, target, attempt + 1);
    auto sent = std::chrono::steady_clock::now();
    // The exception of a sink, or of a stream that was abandoned, propagates: no retry.
    HttpResponse response = connection.perform(http);
    if (response.transport != CURLE_OK) checkAbandoned();
    delivered += response.delivered;
    if (spdlog::should_log(spdlog::level::debug))
      spdlog::debug("{} {}: {}, {} bytes received, {} ms", request.method, target,
                    response.transport == CURLE_OK ? fmt::format("HTTP {}", response.status)
                                                   : response.transportError,
                    response.received,
                    std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - sent)
                        .count());

    bool complete = response.transport == CURLE_OK;
    if (complete && response.ok() && request.sink != nullptr && request.method == "GET") {
      // A body shorter than announced is a truncated transfer, even if the connection closed
      // cleanly.
      std::string length = response.header("content-length");
      if (!length.empty() && parseDecimal(length) != response.received) complete = false;
    }
    bool retryable = complete && retryableStatus(response.status, response.body);
    // SignatureDoesNotMatch is a wrong secret, or a request altered on the way: for a streamed
    // body, a chunk (a wrong secret fails the seed signature before any chunk is read). When the
    // server accepts a plain signed request of ours, the credentials are right: the request was
    // altered on the way, stored nothing, and may be sent again.
    if (complete && !retryable && streamed && response.status == 403 &&
        s3::xml::errorCode(response.body) == "SignatureDoesNotMatch" &&
        signaturesAccepted(request.key, connection))
      altered = retryable = true;
    if (complete && !retryable) return response;

    bool canRetry = complete || retryableTransport(response.transport);
    if (!complete && response.delivered > 0) {
      if (!request.resumable) canRetry = false;
      if (etag.empty()) etag = response.header("etag");
    }
    auto delay = backoff(options_.retryBaseDelay, attempt);
    bool timeLeft = std::chrono::steady_clock::now() + delay < deadline;
    if (canRetry && attempt < retryMax && timeLeft) {
      spdlog::warn("{}: {}; retrying in {} ms (attempt {} of {})",
                   describeRequest(request, options_),
                   complete ? fmt::format("HTTP {} {}", response.status,
                                          s3::xml::errorCode(response.body).value_or(""))
                            : response.transportError,
                   delay.count(), attempt + 2, retryMax + 1);
      // In slices: an abandon ends the wait too.
      for (auto left = delay; left.count() > 0; left -= kAbandonCheck) {
        checkAbandoned();
        std::this_thread::sleep_for(std::min(left, kAbandonCheck));
      }
      continue;
    }
    if (complete && altered) {
      Error e(ErrorCode::Storage,
              fmt::format("{}: the server refused the request's signature {} time{} (HTTP 403 "
                          "SignatureDoesNotMatch) while it accepts this client's signatures: the "
                          "request (its body or a signed header) was altered on the way; nothing "
                          "was stored",
                          describeRequest(request, options_), attempt + 1, attempt ? "s" : ""),
              "check the network path to s3.endpoint for a proxy or middlebox that alters "
              "requests, or use https");
      e.setTransient(true);
      throw e;
    }
    if (complete) fail(request, response);
    Error e(
        ErrorCode::Storage,
        fmt::format("{} at '{}' failed after {} attempt{}: {}", describeRequest(request, options_),
                    options_.endpoint, attempt + 1, attempt ? "s" : "", response.transportError),
        transportHint(response.transport));
    e.setTransient(retryableTransport(response.transport));
    throw e;
  }
}

bool S3Storage::signaturesAccepted(const std::string& key, s3::HttpClient& client) const {
  Request probe{.operation = "HeadObject", .method = "HEAD", .key = key};
  try {
    return execute(probe, client).status != 403;
  } catch (const Error&) {
    return false;
  }
}

void S3Storage::fail(const Request& request, const HttpResponse& response) const {
  std::string code, message;
  if (auto document = s3::xml::Document::parse(response.body);
      document && document->root().name() == "Error") {
    code = printable(document->root().childText("Code").value_or(""), 100);
    message = printable(document->root().childText("Message").value_or(""), 300);
  }
  if (code.empty()) {  // HEAD answers have no body
    switch (response.status) {
      case 301:
        code = "PermanentRedirect";
        break;
      case 400:
        code = "BadRequest";
        break;
      case 403:
        code = "Forbidden";
        break;
      case 404:
        code = "NotFound";
        break;
      default:
        code = "HTTP" + std::to_string(response.status);
    }
  }
  Error e(ErrorCode::Storage,
          fmt::format("{}: HTTP {} {}{}", describeRequest(request, options_), response.status, code,
                      message.empty() ? "" : ": " + message),
          errorHint(code, response, options_));
  e.setTransient(retryableStatus(response.status, response.body));
  throw e;
}

bool S3Storage::read(const std::string& path, io::Sink& out, ReadOptions options) {
  Request request{.operation = "GetObject",
                  .key = key(path),
                  .sink = &out,
                  .resumable = true,
                  .rangeStart = options.offset};
  if (options.length) {
    if (*options.length == 0) return info(path).has_value();
    request.rangeEnd = options.offset + *options.length - 1;
  }
  HttpResponse response = execute(request, client());
  if (response.ok()) return true;
  // "Not found" only when the server says so in S3's words: a 404 page from something that is not
  // an S3 server (a wrong endpoint) must not pass for a missing WAL file.
  if (response.status == 404 && s3::xml::errorCode(response.body) == "NoSuchKey") return false;
  if (response.status == 416 && options.offset > 0)
    return true;  // a range past the end: nothing to deliver
  fail(request, response);
}

std::optional<ObjectInfo> S3Storage::info(const std::string& path) {
  Request request{.operation = "HeadObject", .method = "HEAD", .key = key(path)};
  HttpResponse response = execute(request, client());
  if (response.status == 404) return std::nullopt;
  if (!response.ok()) fail(request, response);
  ObjectInfo info;
  std::string length = response.header("content-length");
  auto size = parseDecimal(length);
  if (!size)
    throw error(ErrorCode::Storage, "{}: no valid Content-Length",
                describeRequest(request, options_));
  info.size = *size;
  info.modified = s3::parseHttpDate(response.header("last-modified")).value_or(0);
  return info;
}

s3::xml::Document S3Storage::document(const Request& request, const HttpResponse& response,
                                      std::string_view rootName) const {
  auto document = s3::xml::Document::parse(response.body);
  if (!document || document->root().name() != rootName)
    throw error(ErrorCode::Storage, "{}: the server's answer is not a <{}> XML document: {}",
                describeRequest(request, options_), rootName, printable(response.body, 200));
  return std::move(*document);
}

void S3Storage::list(const std::string& dir, const std::function<void(const ListEntry&)>& fn) {
  std::string prefix = key(dir);
  if (!prefix.empty()) prefix += "/";
  std::string token;
  bool truncated = false;
  do {
    Request request{.operation = "ListObjectsV2",
                    .key = "",
                    .query = {{"list-type", "2"}, {"prefix", prefix}, {"delimiter", "/"}}};
    if (!token.empty()) request.query.emplace_back("continuation-token", token);
    HttpResponse response = execute(request, client());
    if (!response.ok()) fail(request, response);
    s3::xml::Document listing = document(request, response, "ListBucketResult");
    s3::xml::Element root = listing.root();
    for (const auto& contents : root.children("Contents")) {
      std::string name = contents.childText("Key").value_or("");
      if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
      name = name.substr(prefix.size());
      auto size = parseDecimal(contents.childText("Size").value_or(""));
      if (!size)
        throw error(ErrorCode::Storage, "{}: the listing gives '{}' no valid <Size>",
                    describeRequest(request, options_), printable(name));
      std::int64_t modified = 0;
      std::tm tm{};  // 2026-11-22T10:15:00.000Z
      std::string when = contents.childText("LastModified").value_or("");
      if (::strptime(when.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) != nullptr) modified = ::timegm(&tm);
      fn(ListEntry{name, false, *size, modified});
    }
    for (const auto& common : root.children("CommonPrefixes")) {
      std::string name = common.childText("Prefix").value_or("");
      if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
      name = name.substr(prefix.size());
      if (!name.empty() && name.back() == '/') name.pop_back();
      fn(ListEntry{name, true, 0});
    }
    truncated = root.childText("IsTruncated").value_or("false") == "true";
    token = root.childText("NextContinuationToken").value_or("");
    // A truncated listing without a way to go on would be taken for the whole listing: a WAL
    // folder that looks shorter than it is.
    if (truncated && token.empty())
      throw error(
          ErrorCode::Storage,
          "{}: the listing of '{}' is truncated but names no continuation token; refusing a "
          "partial listing",
          describeRequest(request, options_), prefix);
  } while (truncated);
}

void S3Storage::remove(const std::string& path) {
  Request request{.operation = "DeleteObject", .method = "DELETE", .key = key(path)};
  HttpResponse response = execute(request, client());
  if (!response.ok()) fail(request, response);  // S3 answers 204 for a missing key too
}

void S3Storage::removeMany(const std::vector<std::string>& paths) {
  for (std::size_t begin = 0; begin < paths.size(); begin += 1000) {
    std::string body = "<Delete><Quiet>true</Quiet>";
    for (std::size_t i = begin; i < std::min(paths.size(), begin + 1000); ++i)
      body += "<Object><Key>" + s3::xml::encode(key(paths[i])) + "</Key></Object>";
    body += "</Delete>";
    Request request{.operation = "DeleteObjects",
                    .method = "POST",
                    .key = "",
                    .query = {{"delete", ""}},
                    .headers = {{"content-md5", md5Base64(io::asBytes(body))}},
                    .body = io::asBytes(body)};
    HttpResponse response = execute(request, client());
    if (!response.ok()) fail(request, response);
    s3::xml::Document result = document(request, response, "DeleteResult");
    auto errors = result.root().children("Error");
    if (!errors.empty())
      throw error(ErrorCode::Storage,
                  "S3 DeleteObjects in bucket '{}': {} not deleted, e.g. '{}': {}", options_.bucket,
                  plural(errors.size(), "object", "objects"),
                  printable(errors.front().childText("Key").value_or("?")),
                  printable(errors.front().childText("Message").value_or("?")));
  }
}

std::vector<Leftover> S3Storage::leftovers(const std::string& dir) {
  std::vector<Leftover> out;
  std::string keyPrefix =
      dir.empty() ? (options_.prefix.empty() ? "" : options_.prefix + "/") : key(dir) + "/";
  std::string keyMarker, idMarker;
  for (;;) {
    Request request{.operation = "ListMultipartUploads",
                    .key = "",
                    .query = {{"uploads", ""}, {"prefix", keyPrefix}}};
    if (!keyMarker.empty()) {
      request.query.emplace_back("key-marker", keyMarker);
      request.query.emplace_back("upload-id-marker", idMarker);
    }
    HttpResponse response = execute(request, client());
    if (!response.ok()) fail(request, response);
    s3::xml::Document uploads = document(request, response, "ListMultipartUploadsResult");
    for (const auto& upload : uploads.root().children("Upload")) {
      std::string fullKey = upload.childText("Key").value_or("");
      std::string path = fullKey;
      if (!options_.prefix.empty() && path.rfind(options_.prefix + "/", 0) == 0)
        path = path.substr(options_.prefix.size() + 1);
      // "2026-12-03T22:45:00.000Z": the second is enough.
      std::string initiated = upload.childText("Initiated").value_or("");
      if (auto dot = initiated.find('.'), zone = initiated.find('Z');
          dot != std::string::npos && zone != std::string::npos && zone > dot)
        initiated.erase(dot, zone - dot);
      auto started = parseUtc(initiated);
      // An upload of unknown age may be a running push's: never taken for an old one.
      out.push_back({.path = path,
                     .uploadId = upload.childText("UploadId").value_or(""),
                     .started = started ? started->time_since_epoch().count()
                                        : std::numeric_limits<std::int64_t>::max()});
    }
    if (uploads.root().childText("IsTruncated").value_or("false") != "true") break;
    keyMarker = uploads.root().childText("NextKeyMarker").value_or("");
    idMarker = uploads.root().childText("NextUploadIdMarker").value_or("");
    if (keyMarker.empty())
      throw error(
          ErrorCode::Storage,
          "{}: the list of uploads is truncated but names no next marker; refusing a partial list",
          describeRequest(request, options_));
  }
  return out;
}

void S3Storage::removeLeftover(const Leftover& leftover) {
  Request request{.operation = "AbortMultipartUpload",
                  .method = "DELETE",
                  .key = key(leftover.path),
                  .query = {{"uploadId", leftover.uploadId}}};
  auto response = execute(request, client());
  if (!response.ok() && response.status != 404) fail(request, response);
}

std::vector<std::pair<std::string, std::string>> S3Storage::pendingUploads() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& upload : leftovers(""))
    out.emplace_back(key(upload.path), upload.uploadId);
  return out;
}

}  // namespace tidemark::storage
