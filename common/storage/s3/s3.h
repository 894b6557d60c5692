// The s3 driver: a repository in an S3-compatible bucket (AWS S3, Ceph RGW, MinIO, ...).
//
// Objects are keys under a prefix. An object up to part-size plus 1 MiB is one PutObject. When
// its writer announces its size (WriteOptions::size: an uncompressed WAL file), it is sent while
// it is written, from a thread of its own, in chunks signed one by one
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, "aws-chunked"); its bytes are kept until the request is
// over, for retries (memory: the object's size), and its last chunk goes only at commit(), so the
// object appears only then. Otherwise it is sent from memory at commit(), with the SHA-256 of the
// whole body (x-amz-content-sha256). Either way the server refuses a body damaged on the way.
// Larger objects are multipart uploads whose parts go out while the stream is written (memory:
// part-size x (upload-concurrency + 1)) and which appear only on CompleteMultipartUpload. A write
// destroyed without commit abandons its request mid-body or aborts its upload. No-replace
// publishes use If-None-Match: * and, for multipart uploads, a check just before completing (see
// docs/decisions.md). A server that does not take streamed bodies (501) gets the object in one
// piece.
//
// Requests are retried with exponential backoff and jitter on 5xx, 429/SlowDown, timeouts,
// connection resets, truncated bodies and bodies the server refused as damaged on the way
// (XAmzContentSHA256Mismatch, BadDigest, or a chunk signature while the server accepts this
// client's signatures), within retry-max attempts and retry-time seconds; never on 4xx answers
// that cannot change. Downloads cut short resume where they stopped.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/storage/s3/http.h"
#include "common/storage/s3/sigv4.h"
#include "common/storage/s3/xml.h"
#include "common/storage/storage.h"

namespace tidemark::storage {

// The data bytes per chunk of a streamed (aws-chunked) body: AWS wants 8 KiB at least (all but
// the last) and suggests 64 KiB or more. radosgw takes a WAL segment 5 to 10% faster in 1 MiB
// chunks than in 64 KiB ones (docs/decisions.md); the last chunk waits for the writer's commit(),
// and of an uncompressed segment it is the envelope's last 68 bytes.
inline constexpr std::size_t kS3StreamChunk = 1u << 20;

struct S3Options {
  std::string bucket;
  std::string endpoint;  // scheme://host[:port]
  std::string region = "us-east-1";
  bool hostStyle = true;  // bucket.host/key (virtual-hosted) rather than host/bucket/key (path)
  std::string prefix;     // key prefix without leading or trailing '/'
  s3::Credentials credentials;
  std::string caFile;
  bool verifyTls = true;
  std::uint64_t partSize = 16u << 20;
  int uploadConcurrency = 4;
  int retryMax = 4;  // retries after the first attempt
  std::chrono::milliseconds retryTime{60000};
  std::chrono::milliseconds retryBaseDelay{200};
  long connectTimeoutMs = 10000;
  long stallTimeoutSeconds = 30;
  // A lock whose object the server last saw changed this long ago is stale; its holder refreshes
  // it every tenth of that.
  std::chrono::seconds lockTimeout{300};
  // When set and it turns true, requests under way end within a second and no more start (each
  // throws Error(Storage)): a process that must stop does not wait for a slow upload. Only the
  // abort of a multipart upload left incomplete still goes out, once (Request::cleanup).
  const std::atomic<bool>* abandon = nullptr;
};

class S3Storage final : public Storage {
 public:
  // Throws Error(Config) for an endpoint or style that cannot work.
  explicit S3Storage(S3Options options);
  ~S3Storage() override;

  std::string describe() const override;
  std::unique_ptr<Write> newWrite(const std::string& path, WriteOptions options) override;
  bool read(const std::string& path, io::Sink& out, ReadOptions options) override;
  std::optional<ObjectInfo> info(const std::string& path) override;
  void list(const std::string& dir, const std::function<void(const ListEntry&)>& fn) override;
  void remove(const std::string& path) override;
  std::unique_ptr<Lock> tryLock(const std::string& path, const std::string& owner,
                                std::string& holder) override;

  // Removes objects with DeleteObjects, up to 1000 per request.
  void removeMany(const std::vector<std::string>& paths) override;
  // Multipart uploads started under `dir` and neither completed nor aborted.
  std::vector<Leftover> leftovers(const std::string& dir) override;
  // AbortMultipartUpload.
  void removeLeftover(const Leftover& leftover) override;
  // Multipart uploads started under the prefix and neither completed nor aborted (key, id).
  std::vector<std::pair<std::string, std::string>> pendingUploads();

  // A request body written while it is sent (a streamed PutObject): size() bytes, which every
  // attempt of the request reads from the first one on, so all of them stay available until the
  // request is over. Thread-safe: written on the caller's thread, read on the upload's.
  class BodyStream {
   public:
    virtual ~BodyStream() = default;
    virtual std::uint64_t size() const = 0;
    // The bytes [offset, offset + length) once they are all there: waits for them when `wait` is
    // set, else returns nullopt at once while they are not. Throws to abandon the request (it is
    // not retried).
    virtual std::optional<io::ByteView> get(std::uint64_t offset, std::size_t length,
                                            bool wait) = 0;
  };

  // One request, signed and retried (public for the writer's part workers and for tests).
  struct Request {
    std::string operation;  // "GetObject", ... (for messages)
    std::string method = "GET";
    std::string key;  // the full key; "" for bucket-level requests
    std::vector<std::pair<std::string, std::string>> query;
    std::vector<std::pair<std::string, std::string>> headers;
    io::ByteView body;
    // Instead of `body`: sent in signed chunks (aws-chunked) as it is written.
    BodyStream* stream = nullptr;
    io::Sink* sink = nullptr;
    // GET into a sink: a transfer cut short is resumed from where it stopped (with a Range).
    bool resumable = false;
    std::string payloadHash;  // hex SHA-256 of body when the caller has it already ("" = computed)
    std::uint64_t rangeStart = 0;
    std::optional<std::uint64_t> rangeEnd;  // inclusive
    // A clean-up (AbortMultipartUpload): once the requests were abandoned (S3Options::abandon) it
    // is still sent, once, on a connection of its own that the abandon does not end and that
    // gives up within seconds (kCleanupTimeoutSeconds); before that, as any request.
    bool cleanup = false;
  };
  static constexpr long kCleanupTimeoutSeconds = 5;
  // Performs `request` with `client`, retrying transient failures. Returns the final response
  // for the caller to interpret (a 404, a 412); throws Error(Storage) for transport failures that
  // outlast the retries and for retryable statuses that persist.
  s3::HttpResponse execute(const Request& request, s3::HttpClient& client) const;
  // Throws the Error that describes an unexpected response.
  [[noreturn]] void fail(const Request& request, const s3::HttpResponse& response) const;

  const S3Options& options() const { return options_; }
  std::string key(const std::string& path) const;
  s3::HttpOptions httpOptions() const;

  // The storage's connection (kept alive from request to request), for requests made on the
  // caller's thread.
  s3::HttpClient& client();
  // Takes that connection for a request on another thread (a streamed upload); requests made
  // meanwhile open another. Give it back with giveBack(), both on the caller's thread.
  std::unique_ptr<s3::HttpClient> borrowClient();
  void giveBack(std::unique_ptr<s3::HttpClient> client);

  // The response's XML document, whose root element must be `rootName`: Error(Storage) otherwise
  // (a body that is not XML, cut short, or another document).
  s3::xml::Document document(const Request& request, const s3::HttpResponse& response,
                             std::string_view rootName) const;

 private:
  std::string url(const Request& request, std::string& host, std::string& canonicalPath) const;
  // Whether the server accepts a plain signed request (HEAD `key`) from this client.
  bool signaturesAccepted(const std::string& key, s3::HttpClient& client) const;

  S3Options options_;
  std::string scheme_, hostPort_;
  // The server compares If-Match only with the bare ETag (radosgw 16), found out by the first lock.
  std::atomic<bool> bareEtag_{false};
  std::unique_ptr<s3::HttpClient> client_;  // null until the first request, and while borrowed
};

}  // namespace tidemark::storage
