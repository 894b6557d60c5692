// A small S3 server in memory, on loopback, that can lie: it ignores Range or If-None-Match,
// answers the wrong range, cuts a body short, hides a listing's continuation token, or reports an
// error inside a 200. For unit tests of the S3 driver against behaviours a real server (radosgw)
// does not produce on demand. Path-style requests only; signatures are not checked, but an
// aws-chunked (streamed) body's framing and decoded length are, and it is stored decoded.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/config/config.h"

namespace tidemark::test {

class FakeS3 {
 public:
  // What the server does wrong. Counts are used up one request at a time.
  struct Lies {
    bool ignoreRange = false;  // answer a Range request with 200 and the whole object
    bool wrongContentRange =
        false;  // answer a Range request with 206 and a Content-Range one byte off
    bool ignoreIfNoneMatch = false;  // replace existing objects despite If-None-Match: *
    bool ignoreIfMatch = false;      // replace and delete despite an If-Match that does not match
    bool ifMatchBareOnly = false;  // as radosgw 16: a PUT's If-Match matches only the unquoted ETag
    int truncateGets = 0;  // cut the next N GET bodies after truncateAfter bytes (then close)
    std::size_t truncateAfter = 1000;
    int completeWithError = 0;  // answer the next N CompleteMultipartUpload with 200 + <Error>
    bool listTruncatedWithoutToken = false;  // IsTruncated true and no NextContinuationToken
    int stallPutsMs = 0;  // answer each PUT only after this long (a holder that cannot get through)
    int stallGetsMs = 0;  // answer each GET whose path holds stallGetsOf only after this long
    std::string stallGetsOf;
    int failPuts = 0;  // answer the next N PUTs 503 SlowDown, once their body is read
    int cutPuts = 0;   // close the connection of the next N PUTs after cutPutsAfter body bytes
    std::size_t cutPutsAfter = 100000;
    // Answer an aws-chunked (streamed) PUT 501 NotImplemented at once, and close.
    bool refuseStreaming = false;
    // Store an aws-chunked body as received, without decoding it.
    bool keepChunkFraming = false;
  };

  struct Object {
    std::string body;
    std::string etag;           // quoted
    std::int64_t modified = 0;  // seconds since the epoch (settable, to age a lock)
  };

  FakeS3();
  ~FakeS3();
  FakeS3(const FakeS3&) = delete;
  FakeS3& operator=(const FakeS3&) = delete;

  // "http://127.0.0.1:PORT"; the bucket is "bucket", requests path-style.
  std::string endpoint() const;
  static constexpr const char* kBucket = "bucket";

  // Changes what the server gets wrong; thread-safe.
  void lie(const Lies& lies);
  // Objects by key (without the bucket).
  std::optional<Object> object(const std::string& key) const;
  void setObject(const std::string& key, std::string body, std::int64_t modified = 0);
  std::vector<std::string> keys() const;
  // Request lines received ("GET /bucket/key HTTP/1.1"), and the Range headers of GETs.
  std::vector<std::string> requests() const;
  std::vector<std::string> rangesAsked() const;
  // The x-amz-content-sha256 of every PUT received (the payload's hash, or
  // STREAMING-AWS4-HMAC-SHA256-PAYLOAD for a streamed body), a cut one included.
  std::vector<std::string> putPayloads() const;

 private:
  struct Request {
    std::string method, path, query, head;
    std::map<std::string, std::string> headers;  // names in lower case
    std::string body;
  };
  struct Response {
    int status = 200;
    std::map<std::string, std::string> headers;
    std::string body;
    std::optional<std::size_t> cutAfter;  // send the head and this many body bytes, then close
  };

  void acceptLoop();
  void serve(int fd);
  Response handle(const Request& request);
  Response getObject(const Request& request, const std::string& key);
  Response putObject(const Request& request, const std::string& key);
  Response list(const Request& request);
  Response multipart(const Request& request, const std::string& key);
  static Response error(int status, const std::string& code);

  int listen_ = -1, port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mutex_;
  std::vector<std::thread> connections_;
  std::vector<int> fds_;
  Lies lies_;
  std::map<std::string, Object> objects_;
  std::map<std::string, std::map<int, std::string>> uploads_;  // upload id -> parts
  int nextUpload_ = 1, nextEtag_ = 1;
  std::vector<std::string> requests_, ranges_, putPayloads_;
};

// Points `config` at `server` (repo.type "s3", path-style, test credentials, no retries), for
// tests of the programs' code on a server that can lie.
void useFakeS3(Config& config, const FakeS3& server);

}  // namespace tidemark::test
