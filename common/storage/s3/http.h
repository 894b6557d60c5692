// A small HTTP client over libcurl for the S3 driver: one easy handle reused for every request
// (keep-alive: PostgreSQL starts one process per WAL file, so connection setup matters),
// request bodies from memory or produced while they are sent, response bodies streamed into a
// Sink.
#pragma once

#include <curl/curl.h>

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/io/sink.h"

namespace tidemark::storage::s3 {

// A GET slower than this for HttpOptions::stallTimeoutSeconds is abandoned (and retried); other
// requests, when they move no byte for that long.
inline constexpr long kStalledGetBelowBytesPerSecond = 1024;

struct HttpOptions {
  std::string caFile;  // extra CA bundle; system CAs when empty
  bool verifyTls = true;
  std::vector<std::string> resolve;  // CURLOPT_RESOLVE entries ("host:port:address")
  long connectTimeoutMs = 10000;
  // Abort a transfer that stalls for this long (kStalledGetBelowBytesPerSecond).
  long stallTimeoutSeconds = 30;
  // When set and it turns true, a transfer under way ends within a second (CURLE_ABORTED_BY_
  // CALLBACK): a process that must stop does not wait for a slow upload.
  const std::atomic<bool>* abandon = nullptr;
};

// A request body produced while it is sent. Used by one transfer at a time, on the thread that
// performs it.
class BodySource {
 public:
  virtual ~BodySource() = default;
  // The body's exact length (sent as Content-Length).
  virtual std::uint64_t size() const = 0;
  // Copies the next bytes into `out`, at most `max` of them, and returns how many: 0 only once all
  // size() bytes were given. May block until bytes are there. An exception abandons the transfer
  // (the connection is closed mid-body; perform() rethrows it).
  virtual std::size_t read(std::uint8_t* out, std::size_t max) = 0;
  // Starts again from the first byte (libcurl rewinds on a redirect or a retried connection).
  virtual void rewind() = 0;
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  io::ByteView body;                 // sent with a Content-Length (never chunked)
  BodySource* source = nullptr;      // instead of `body` (also with a Content-Length)
  // 2xx response bodies are streamed here; other bodies (errors) are kept in HttpResponse::body.
  io::Sink* sink = nullptr;
  // The bytes a GET with a Range header asks for (first, last inclusive; to the end without a
  // last). The sink then receives exactly those bytes: a 206 must announce them in its
  // Content-Range (anything else is an error before a byte is delivered), and a 200 (a server or
  // proxy that ignored the Range) is read from the start, its bytes outside the range dropped.
  struct Range {
    std::uint64_t first = 0;
    std::optional<std::uint64_t> last;
  };
  std::optional<Range> range;
};

struct HttpResponse {
  CURLcode transport = CURLE_OK;  // not CURLE_OK: no complete response (see transportError)
  std::string transportError;
  long status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;  // 2xx bodies without a sink (up to 64 MiB), or the first 64 KiB of an error
  std::uint64_t received = 0;   // bytes of a 2xx body received
  std::uint64_t delivered = 0;  // bytes given to the sink

  std::string header(const std::string& lowerName) const;
  // A 2xx status.
  bool ok() const { return status >= 200 && status < 300; }
};

// An HTTP-date ("Thu, 03 Dec 2026 15:53:19 GMT") as seconds since the epoch; nullopt otherwise.
std::optional<std::int64_t> parseHttpDate(std::string_view text);

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Performs one request. Transport failures are reported in the response, not thrown; an
  // exception thrown by the sink stops the transfer and is rethrown. Not thread-safe: use one
  // client per thread.
  HttpResponse perform(const HttpRequest& request);

 private:
  HttpOptions options_;
  CURL* curl_;
};

}  // namespace tidemark::storage::s3
