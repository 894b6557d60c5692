// A fault-injecting HTTP/1.1 proxy for integration tests: sits on loopback between tidemark and
// an S3 server and fails, resets, truncates or stalls chosen exchanges.
//
// Exchanges pass through unchanged (byte for byte, so SigV4 signatures made for the proxy's
// host:port stay valid) unless a fault applies. Each client connection gets its own upstream
// connection, opened when its first request is forwarded (so a request answered or reset by the
// proxy never reaches the upstream) and reopened if the upstream closed it while idle. Request
// bodies are framed by Content-Length or chunked encoding; response bodies by Content-Length,
// chunked encoding or connection close, with none for HEAD and 1xx/204/304. A client that sends
// "Expect: 100-continue" gets its 100 Continue from the proxy; the upstream's interim (1xx)
// responses are not forwarded.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace tidemark::test {

namespace detail {
struct FaultProxyState;  // fault_proxy.cpp
}

// A proxy on 127.0.0.1 (a free port) in front of an HTTP/1.1 server, that injects faults into
// the exchanges passing through it. Controls are thread-safe; it runs on its own threads.
class FaultProxy {
 public:
  // Binds 127.0.0.1 on a free port and starts accepting. `upstreamHost` is a name or address
  // (resolved per upstream connection). Throws std::runtime_error when it cannot listen. An
  // upstream that cannot be reached is not an error here: those requests get a 502.
  FaultProxy(std::string upstreamHost, int upstreamPort);
  // Stops accepting, shuts every connection down (blocked reads and stalls return at once),
  // closes them and joins every thread; never blocks on a client or the upstream.
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  int port() const;
  std::string endpoint() const;  // "http://127.0.0.1:<port>"

  // Each fault applies to the next `count` requests whose request line ("PUT /b/k?x=1 HTTP/1.1")
  // contains `match` ("" matches every request); faults queue in the order they were added, and a
  // request takes the first queued fault that matches it (at most one). A fault is used up when a
  // matching request head arrives, whatever becomes of the exchange afterwards.

  // Answers `status` without forwarding (the request body is read and discarded), with an S3
  // <Error> XML body whose Code follows the status: 500 InternalError, 503 ServiceUnavailable,
  // 429 SlowDown, 404 NoSuchKey, 403 AccessDenied, 412 PreconditionFailed, 400 RequestTimeout
  // (a 400 S3 clients retry), other 5xx InternalError, other 4xx InvalidRequest. HEAD requests
  // get no body. The connection stays open for the next request.
  void failNext(int count, int status = 503, std::string match = "");
  // Forwards the request; sends the first `afterBytes` bytes of the upstream response (head
  // included; all of it when it is shorter), waits until the client has them, then resets the
  // connection (RST: SO_LINGER 0). The upstream did receive and handle the request.
  void resetResponseNext(int count, std::size_t afterBytes, std::string match = "");
  // Reads the request head and `afterBytes` bytes of its body (the whole body when it is shorter),
  // then resets the connection (RST); the upstream sees nothing of the request.
  void resetUploadNext(int count, std::size_t afterBytes, std::string match = "");
  // Forwards the request; sends the response head and only `bodyBytes` bytes of its body (as on
  // the wire: for a chunked body, bytes of the chunked encoding), then closes cleanly (FIN).
  void truncateNext(int count, std::size_t bodyBytes, std::string match = "");
  // Forwards the request, but holds the response for `delay` before sending any of it (the
  // request reaches the upstream at once). A client that gives up meanwhile just finds the
  // connection closed.
  void stallNext(int count, std::chrono::milliseconds delay, std::string match = "");
  // Forwards the request; sends the response head at once, then its body `bytes` at a time, one
  // piece every `every`: a server or middlebox that trickles (never quite stalls).
  void dripNext(int count, std::size_t bytes, std::chrono::milliseconds every,
                std::string match = "");

  // Forwards the request with one bit of its body flipped: the byte at `atByte` (counted as on the
  // wire, framing of a chunked body included; none when the body is shorter). What a faulty
  // network card or middlebox does; the server must refuse the body (its SHA-256, MD5 or chunk
  // signatures no longer match) and store nothing.
  void corruptUploadNext(int count, std::size_t atByte, std::string match = "");

  // Forwards the request without its `header` lines (any case): what a proxy that drops a
  // conditional header (If-None-Match) or a Range does. SigV4 signs every header tidemark sends,
  // so the server must refuse the altered request.
  void stripHeaderNext(int count, std::string header, std::string match = "");

  void clear();                               // drops faults not yet applied
  int faultsPending() const;                  // applications not yet made (sum of remaining counts)
  std::vector<std::string> requests() const;  // request lines seen (without CRLF), in arrival order
  int requestCount() const;

 private:
  std::unique_ptr<detail::FaultProxyState> state_;
};

}  // namespace tidemark::test
