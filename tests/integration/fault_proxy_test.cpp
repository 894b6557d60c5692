// FaultProxy against a real S3 server (radosgw): each fault as a raw client sees it on the wire,
// and through tidemark's S3 driver, which must retry or resume to exactly the stored bytes.
#include "fault_proxy.h"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/base/error.h"
#include "common/io/hash.h"
#include "common/io/sink.h"
#include "common/storage/s3/s3.h"
#include "common/storage/s3/sigv4.h"
#include "process.h"

using namespace std::chrono_literals;

namespace tidemark::test {

namespace {

using Clock = std::chrono::steady_clock;

// ---- the S3 server ------------------------------------------------------------------------

struct S3Server {
  std::string host;
  int port = 0;
  std::string endpoint, accessKey, secretKey, bucket, region;
};

// The server the test run started (scripts/s3-server's s3.env, named at build time).
const S3Server& s3Server() {
  static std::mutex mutex;
  static std::optional<S3Server> server;
  std::lock_guard lock(mutex);
  if (server) return *server;
#ifdef TIDEMARK_S3_ENV_FILE
  const std::string path = TIDEMARK_S3_ENV_FILE;
#else
  const std::string path;
#endif
  if (path.empty())
    throw std::runtime_error(
        "built without TIDEMARK_S3_ENV_FILE: the integration target must name the S3 server's "
        "s3.env");
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error("cannot read '" + path +
                             "': is the S3 server fixture (scripts/s3-server start) running?");
  std::map<std::string, std::string> values;
  for (std::string line; std::getline(in, line);) {
    auto equals = line.find('=');
    if (line.empty() || line[0] == '#' || equals == std::string::npos) continue;
    std::string value = line.substr(equals + 1);
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    values[line.substr(0, equals)] = value;
  }
  S3Server s;
  s.endpoint = values["S3_ENDPOINT"];
  s.accessKey = values["S3_ACCESS_KEY"];
  s.secretKey = values["S3_SECRET_KEY"];
  s.bucket = values["S3_BUCKET"];
  s.region = values.count("S3_REGION") ? values["S3_REGION"] : "us-east-1";
  const std::string scheme = "http://";
  auto colon = s.endpoint.rfind(':');
  if (!s.endpoint.starts_with(scheme) || colon < scheme.size() || s.accessKey.empty() ||
      s.bucket.empty())
    throw std::runtime_error(
        "'" + path + "' lacks an http:// S3_ENDPOINT with a port, S3_ACCESS_KEY or S3_BUCKET");
  s.host = s.endpoint.substr(scheme.size(), colon - scheme.size());
  s.port = std::stoi(s.endpoint.substr(colon + 1));
  server = s;
  return *server;
}

std::string randomHex(std::size_t digits) {
  static std::mt19937_64 random{std::random_device{}()};
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  std::string out;
  while (out.size() < digits)
    out += "0123456789abcdef"[random() % 16];
  return out;
}

std::string randomBytes(std::size_t size) {
  static std::mt19937_64 random{std::random_device{}()};
  std::string out(size, '\0');
  for (auto& c : out)
    c = char(random());
  return out;
}

// A fresh key prefix, so runs and test cases never see each other's objects.
std::string freshPrefix() {
  return "proxytest-" + randomHex(12);
}

storage::S3Options s3Options(const std::string& endpoint, const std::string& prefix) {
  const S3Server& s3 = s3Server();
  return {.bucket = s3.bucket,
          .endpoint = endpoint,
          .region = s3.region,
          .hostStyle = false,
          .prefix = prefix,
          .credentials = {.accessKeyId = s3.accessKey, .secretAccessKey = s3.secretKey},
          .partSize = 5u << 20,
          .uploadConcurrency = 2,
          .retryMax = 4,
          .retryTime = 20s,
          .retryBaseDelay = 10ms,
          .connectTimeoutMs = 2000,
          .stallTimeoutSeconds = 1};
}

// The driver, through the proxy.
storage::S3Storage viaProxy(const FaultProxy& proxy, const std::string& prefix) {
  return storage::S3Storage(s3Options(proxy.endpoint(), prefix));
}

// The driver, straight to the server: what is really stored.
storage::S3Storage direct(const std::string& prefix) {
  return storage::S3Storage(s3Options(s3Server().endpoint, prefix));
}

bool put(storage::Storage& storage, const std::string& path, const std::string& data,
         bool noReplace = true) {
  auto write = storage.newWrite(path, {.noReplace = noReplace});
  write->write(io::asBytes(data));
  return write->commit();
}

std::optional<std::string> get(storage::Storage& storage, const std::string& path) {
  io::MemorySink sink;
  if (!storage.read(path, sink)) return std::nullopt;
  return std::string(sink.text());
}

template <typename Fn>
Error thrownError(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e;
  }
  FAIL("expected a tidemark::Error, but nothing was thrown");
  return Error(ErrorCode::Internal, "unreachable");
}

// How many request lines the proxy saw that contain `part`.
int seen(const FaultProxy& proxy, const std::string& part) {
  int n = 0;
  for (const auto& line : proxy.requests())
    n += line.find(part) != std::string::npos;
  return n;
}

// ---- a raw client -------------------------------------------------------------------------

struct Wire {
  std::string received;
  bool reset = false;  // the connection ended with an RST (ECONNRESET), not a FIN
  int error = 0;       // another errno that ended the read (EAGAIN: nothing for 10 s)

  std::string head() const { return received.substr(0, received.find("\r\n\r\n") + 4); }
  std::string body() const {
    auto end = received.find("\r\n\r\n");
    return end == std::string::npos ? std::string() : received.substr(end + 4);
  }
  int status() const { return received.size() >= 12 ? std::stoi(received.substr(9, 3)) : 0; }
};

int connectTo(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(std::uint16_t(port));
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  timeval timeout{.tv_sec = 10, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  return fd;
}

// Sends `bytes` (stopping quietly if the peer resets), then reads until the connection ends.
// Asserts nothing, so that it can run on another thread; closes `fd`.
Wire talk(int fd, const std::string& bytes) {
  Wire wire;
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += std::size_t(n);
  }
  char buffer[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n > 0) {
      wire.received.append(buffer, std::size_t(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != ECONNRESET) wire.error = errno;
    wire.reset = n < 0 && errno == ECONNRESET;
    break;
  }
  ::close(fd);
  return wire;
}

// A request signed for 127.0.0.1:<port>, with "Connection: close" so that an untouched exchange
// ends with a FIN once the response is complete.
std::string signedRequest(int port, const std::string& method, const std::string& key,
                          const std::string& body) {
  const S3Server& s3 = s3Server();
  std::string host = "127.0.0.1:" + std::to_string(port);
  std::string path = "/" + s3.bucket + "/" + key;
  std::string amzDate = storage::s3::amzNow();
  std::string payloadHash = io::toHex(io::Sha256::of(io::asBytes(body)));
  storage::s3::SigningInput input{
      method,
      path,
      {},
      {{"host", host}, {"x-amz-content-sha256", payloadHash}, {"x-amz-date", amzDate}},
      payloadHash};
  std::string authorization = storage::s3::authorization(
      input, {.accessKeyId = s3.accessKey, .secretAccessKey = s3.secretKey}, s3.region, amzDate);
  return method + " " + storage::s3::uriEncode(path, true) + " HTTP/1.1\r\nHost: " + host +
         "\r\nx-amz-date: " + amzDate + "\r\nx-amz-content-sha256: " + payloadHash +
         "\r\nAuthorization: " + authorization +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
         body;
}

Wire exchange(int port, const std::string& method, const std::string& key,
              const std::string& body = "") {
  Wire wire = talk(connectTo(port), signedRequest(port, method, key, body));
  CHECK_MESSAGE(wire.error == 0, "recv: " << std::strerror(wire.error));
  return wire;
}

// ---- a scripted upstream ------------------------------------------------------------------

// An HTTP server that answers each request with the canned response for its path, for framings
// an S3 server does not produce on demand. Serves one connection at a time.
class ScriptedServer {
 public:
  struct Script {
    std::string response;
    bool closeAfter = false;     // close the connection after the response
    bool continueFirst = false;  // send "100 Continue" before reading the request body
  };

  explicit ScriptedServer(std::map<std::string, Script> scripts) : scripts_(std::move(scripts)) {
    listen_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    REQUIRE(::bind(listen_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(listen_, 16) == 0);
    REQUIRE(::getsockname(listen_, reinterpret_cast<sockaddr*>(&address), &size) == 0);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }

  ~ScriptedServer() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      ::shutdown(listen_, SHUT_RDWR);
      if (connection_ >= 0) ::shutdown(connection_, SHUT_RDWR);
    }
    thread_.join();
    ::close(listen_);
  }

  int port() const { return port_; }
  // Request heads received (whole heads, so tests can see what was forwarded).
  std::vector<std::string> heads() const {
    std::lock_guard lock(mutex_);
    return heads_;
  }

 private:
  void serve() {
    while (!stopping_) {
      pollfd readable{.fd = listen_, .events = POLLIN, .revents = 0};
      if (::poll(&readable, 1, 100) <= 0) continue;
      int fd = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      {
        std::lock_guard lock(mutex_);
        if (stopping_) {
          ::close(fd);
          return;
        }
        connection_ = fd;
      }
      serveConnection(fd);
      std::lock_guard lock(mutex_);
      ::close(fd);
      connection_ = -1;
    }
  }

  void serveConnection(int fd) {
    std::string buffer;
    char chunk[4096];
    auto fill = [&] {
      ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n > 0) buffer.append(chunk, std::size_t(n));
      return n > 0;
    };
    for (;;) {
      std::size_t end;
      while ((end = buffer.find("\r\n\r\n")) == std::string::npos)
        if (!fill()) return;
      std::string head = buffer.substr(0, end + 4);
      buffer.erase(0, end + 4);
      {
        std::lock_guard lock(mutex_);
        heads_.push_back(head);
      }
      std::string path = head.substr(head.find(' ') + 1);
      path = path.substr(0, path.find(' '));
      auto script = scripts_.find(path);
      if (script == scripts_.end()) return;
      if (script->second.continueFirst &&
          ::send(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25, MSG_NOSIGNAL) != 25)
        return;
      std::size_t length = 0;
      if (auto at = head.find("Content-Length: "); at != std::string::npos)
        length = std::stoul(head.substr(at + 16));
      while (buffer.size() < length)
        if (!fill()) return;
      buffer.erase(0, length);
      const std::string& response = script->second.response;
      if (::send(fd, response.data(), response.size(), MSG_NOSIGNAL) != ssize_t(response.size()))
        return;
      if (script->second.closeAfter) return;
    }
  }

  std::map<std::string, Script> scripts_;
  int listen_ = -1, port_ = 0, connection_ = -1;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::atomic<bool> stopping_{false};
  std::vector<std::string> heads_;
};

}  // namespace

// ---- tests --------------------------------------------------------------------------------

TEST_CASE("FaultProxy passes exchanges through unchanged") {
  const S3Server& s3 = s3Server();
  FaultProxy proxy(s3.host, s3.port);
  const std::string prefix = freshPrefix();
  auto server = direct(prefix);
  CHECK(proxy.endpoint() == "http://127.0.0.1:" + std::to_string(proxy.port()));

  SUBCASE("a raw request gets the server's response, its body byte for byte") {
    std::string data = randomBytes(100000);
    REQUIRE(put(server, "object", data));
    Wire wire = exchange(proxy.port(), "GET", prefix + "/object");
    CHECK(wire.status() == 200);
    CHECK(wire.head().find("Content-Length: 100000\r\n") != std::string::npos);
    CHECK(wire.body() == data);
    CHECK_FALSE(wire.reset);
    CHECK(proxy.requests() ==
          std::vector<std::string>{"GET /" + s3.bucket + "/" + prefix + "/object HTTP/1.1"});
    CHECK(proxy.requestCount() == 1);
  }

  SUBCASE("tidemark's driver writes, reads, lists and removes through it") {
    auto storage = viaProxy(proxy, prefix);
    std::string small = randomBytes(1000), large = randomBytes(11u << 20);  // large: 3 parts
    CHECK(put(storage, "dir/small", small));
    CHECK(put(storage, "dir/large", large));
    CHECK(get(storage, "dir/small") == small);
    CHECK(get(storage, "dir/large") == large);
    CHECK(storage.info("dir/large")->size == large.size());
    std::map<std::string, std::uint64_t> listed;
    storage.list(
        "dir", [&](const storage::ListEntry& e) { listed[e.name] = e.size; });  // a chunked answer
    CHECK(listed ==
          std::map<std::string, std::uint64_t>{{"large", large.size()}, {"small", small.size()}});
    storage.remove("dir/small");
    storage.remove("dir/large");
    CHECK_FALSE(server.info("dir/small"));
    CHECK_FALSE(server.info("dir/large"));
    CHECK(seen(proxy, "?uploads") == 1);
    CHECK(seen(proxy, "partNumber=") == 3);
    CHECK(seen(proxy, "GET /" + s3.bucket + "?") == 1);
    CHECK(proxy.requestCount() == int(proxy.requests().size()));
  }

  SUBCASE("bodiless answers (HEAD, 204) and error bodies keep the connection in step") {
    // A proxy that waited for a HEAD body, or lost a response boundary, would stall the driver
    // into its 1 s timeout and a retry: both show up as time and as extra requests.
    auto storage = viaProxy(proxy, prefix);
    REQUIRE(put(server, "present", "12345"));
    auto start = Clock::now();
    CHECK_FALSE(storage.info("missing"));            // HEAD 404
    CHECK(storage.info("present")->size == 5);       // HEAD 200, Content-Length 5, no body
    CHECK(get(storage, "missing") == std::nullopt);  // GET 404 with an XML body
    CHECK(get(storage, "present") == "12345");
    storage.remove("present");  // DELETE 204
    CHECK_FALSE(storage.info("present"));
    CHECK(Clock::now() - start < 900ms);
    CHECK(proxy.requestCount() == 6);
  }
  CHECK(proxy.faultsPending() == 0);
}

TEST_CASE(
    "FaultProxy frames bodies by chunked encoding and by connection close, and handles 100 "
    "Continue") {
  const std::string chunked =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=1\r\n "
      "world\r\n0\r\nX-Trailer: 1\r\n\r\n";
  const std::string sized = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  const std::string untilClose = "HTTP/1.1 200 OK\r\n\r\nuntil the end";
  ScriptedServer upstream({{"/chunked", {chunked}},
                           {"/sized", {sized}},
                           {"/sized-then-close", {sized, true}},
                           {"/close", {untilClose, true}},
                           {"/continue", {sized, false, true}}});
  FaultProxy proxy("127.0.0.1", upstream.port());

  SUBCASE("a chunked response, trailers included, then the next response on the same connection") {
    Wire wire = talk(connectTo(proxy.port()),
                     "GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /sized HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(wire.received == chunked + sized);
    CHECK_FALSE(wire.reset);
  }

  SUBCASE("the upstream closing an idle connection is invisible: the next request gets a new one") {
    int fd = connectTo(proxy.port());
    std::string first = "GET /sized-then-close HTTP/1.1\r\nHost: x\r\n\r\n";
    REQUIRE(::send(fd, first.data(), first.size(), MSG_NOSIGNAL) == ssize_t(first.size()));
    std::string answer(sized.size(), '\0');
    REQUIRE(::recv(fd, answer.data(), answer.size(), MSG_WAITALL) == ssize_t(answer.size()));
    CHECK(answer == sized);
    std::this_thread::sleep_for(100ms);  // the upstream's FIN arrives meanwhile
    Wire wire = talk(fd, "GET /sized HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(wire.received == sized);
    CHECK(upstream.heads().size() == 2);
  }

  SUBCASE("a response without a length ends the client's connection too") {
    Wire wire = talk(connectTo(proxy.port()), "GET /close HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(wire.received == untilClose);
    CHECK_FALSE(wire.reset);
  }

  SUBCASE(
      "Expect: 100-continue gets one 100 Continue, from the proxy; the upstream's is not passed "
      "on") {
    int fd = connectTo(proxy.port());
    std::string head =
        "PUT /continue HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
        "Connection: close\r\n\r\n";
    REQUIRE(::send(fd, head.data(), head.size(), MSG_NOSIGNAL) == ssize_t(head.size()));
    std::string interim(25, '\0');
    REQUIRE(::recv(fd, interim.data(), interim.size(), MSG_WAITALL) == 25);
    CHECK(interim == "HTTP/1.1 100 Continue\r\n\r\n");
    Wire wire = talk(fd, "hello");
    CHECK(wire.received == sized);
    REQUIRE(upstream.heads().size() == 1);
    CHECK(upstream.heads()[0] == head);  // forwarded unchanged
  }

  SUBCASE("truncation counts body bytes as on the wire") {
    proxy.truncateNext(1, 8);
    Wire wire = talk(connectTo(proxy.port()), "GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(wire.received == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello");
    CHECK_FALSE(wire.reset);
  }
}

TEST_CASE("failNext answers with an S3 error document and forwards nothing") {
  const S3Server& s3 = s3Server();
  FaultProxy proxy(s3.host, s3.port);
  const std::string prefix = freshPrefix();
  auto server = direct(prefix);
  auto storage = viaProxy(proxy, prefix);
  std::string data = randomBytes(200000);

  SUBCASE("the client gets the status and an S3 <Error>; the server never sees the request") {
    proxy.failNext(1, 503);
    Wire wire = exchange(proxy.port(), "PUT", prefix + "/object", data);
    CHECK(wire.status() == 503);
    CHECK(wire.head().find("Content-Type: application/xml\r\n") != std::string::npos);
    CHECK(wire.body().find("<Error><Code>ServiceUnavailable</Code>") != std::string::npos);
    CHECK(wire.body().find("<Resource>/" + s3.bucket + "/" + prefix + "/object</Resource>") !=
          std::string::npos);
    CHECK_FALSE(server.info("object"));

    proxy.failNext(1, 500);
    wire = exchange(proxy.port(), "GET", prefix + "/object");
    CHECK(wire.status() == 500);
    CHECK(wire.body().find("<Code>InternalError</Code>") != std::string::npos);
    CHECK(proxy.faultsPending() == 0);
  }

  SUBCASE("the driver retries 503s and the object arrives whole") {
    proxy.failNext(2, 503, "PUT ");
    CHECK(put(storage, "object", data));
    CHECK(proxy.faultsPending() == 0);
    CHECK(seen(proxy, "PUT ") == 3);
    CHECK(get(server, "object") == data);
  }

  SUBCASE("errors that outlast the retries fail the write, transiently, and leave no object") {
    proxy.failNext(5, 500, "PUT ");  // the first attempt and retry-max (4) retries
    Error e = thrownError([&] { put(storage, "object", data); });
    CHECK(e.code() == ErrorCode::Storage);
    CHECK(std::string(e.what()).find("HTTP 500 InternalError") != std::string::npos);
    CHECK(e.transient());
    CHECK(proxy.faultsPending() == 0);
    CHECK(seen(proxy, "PUT ") == 5);
    CHECK_FALSE(server.info("object"));
  }

  SUBCASE("the code follows the status: a 404 NoSuchKey reads as a missing object") {
    REQUIRE(put(server, "object", data));
    proxy.failNext(1, 404, "GET ");
    CHECK(get(storage, "object") == std::nullopt);
    CHECK(get(storage, "object") == data);
  }

  SUBCASE("a fault waits for a request that matches it") {
    proxy.failNext(1, 503, "GET ");
    CHECK(put(storage, "object", data));
    CHECK(proxy.faultsPending() == 1);
    CHECK(get(storage, "object") == data);  // retried once
    CHECK(proxy.faultsPending() == 0);
    CHECK(seen(proxy, "GET ") == 2);
  }
}

TEST_CASE("resetUploadNext resets a request mid-body and the server sees nothing of it") {
  const S3Server& s3 = s3Server();
  FaultProxy proxy(s3.host, s3.port);
  const std::string prefix = freshPrefix();
  auto server = direct(prefix);
  auto storage = viaProxy(proxy, prefix);

  SUBCASE("on the wire: an RST and no response") {
    proxy.resetUploadNext(1, 1000);
    Wire wire = exchange(proxy.port(), "PUT", prefix + "/object", randomBytes(256 << 10));
    CHECK(wire.reset);
    CHECK(wire.received.empty());
    CHECK_FALSE(server.info("object"));
  }

  SUBCASE("the driver retries a PutObject and the object arrives whole") {
    std::string data = randomBytes(1u << 20);
    proxy.resetUploadNext(2, 64 << 10, "PUT ");
    CHECK(put(storage, "object", data));
    CHECK(proxy.faultsPending() == 0);
    CHECK(seen(proxy, "PUT ") == 3);
    CHECK(get(server, "object") == data);
  }

  SUBCASE("the driver retries a multipart upload's part") {
    std::string data = randomBytes(11u << 20);
    proxy.resetUploadNext(1, 100 << 10, "partNumber=2");
    CHECK(put(storage, "object", data));
    CHECK(proxy.faultsPending() == 0);
    CHECK(seen(proxy, "partNumber=2") == 2);
    CHECK(get(server, "object") == data);
    CHECK(server.pendingUploads().empty());
  }

  SUBCASE("resets that outlast the retries fail the write and leave no object") {
    proxy.resetUploadNext(5, 0, "PUT ");
    Error e = thrownError([&] { put(storage, "object", randomBytes(1000)); });
    CHECK(e.code() == ErrorCode::Storage);
    CHECK(e.transient());
    CHECK(proxy.faultsPending() == 0);
    CHECK_FALSE(server.info("object"));
  }
}

TEST_CASE("corruptUploadNext flips one body bit: the server refuses the body, the driver resends") {
  const S3Server& s3 = s3Server();
  FaultProxy proxy(s3.host, s3.port);
  const std::string prefix = freshPrefix();
  auto server = direct(prefix);
  auto storage = viaProxy(proxy, prefix);

  SUBCASE("on the wire: 400 XAmzContentSHA256Mismatch and nothing stored") {
    proxy.corruptUploadNext(1, 500);
    Wire wire = exchange(proxy.port(), "PUT", prefix + "/object", randomBytes(1000));
    CHECK(wire.status() == 400);
    CHECK(wire.body().find("<Code>XAmzContentSHA256Mismatch</Code>") != std::string::npos);
    CHECK_FALSE(server.info("object"));
  }
  SUBCASE("a PutObject from memory is sent again and arrives whole") {
    std::string data = randomBytes(1u << 20);
    proxy.corruptUploadNext(1, 300000, "PUT ");
    CHECK(put(storage, "object", data));
    CHECK(proxy.faultsPending() == 0);
    CHECK(seen(proxy, "PUT ") == 2);
    CHECK(get(server, "object") == data);
  }
  SUBCASE("a streamed PutObject (its size announced) is sent again and arrives whole") {
    std::string data = randomBytes(3u << 20);
    proxy.corruptUploadNext(1, 1u << 20, "PUT ");
    auto write = storage.newWrite("object", {.noReplace = true, .size = data.size()});
    for (std::size_t at = 0; at < data.size(); at += 100000)
      write->write(io::asBytes(data).subspan(at, std::min<std::size_t>(100000, data.size() - at)));
    CHECK(write->commit());
    CHECK(proxy.faultsPending() == 0);
    CHECK(seen(proxy, "PUT ") == 2);
    CHECK(get(server, "object") == data);
  }
}

TEST_CASE("resetResponseNext forwards the request and resets the response after N bytes") {
  const S3Server& s3 = s3Server();
  FaultProxy proxy(s3.host, s3.port);
  const std::string prefix = freshPrefix();
  auto server = direct(prefix);
  auto storage = viaProxy(proxy, prefix);
  std::string data = randomBytes(1u << 20);
  REQUIRE(put(server, "object", data));

  SUBCASE("on the wire: exactly N bytes of the response, head included, then an RST") {
    proxy.resetResponseNext(1, 20000);
    Wire wire = exchange(proxy.port(), "GET", prefix + "/object");
    CHECK(wire.reset);
    REQUIRE(wire.received.size() == 20000);
    CHECK(wire.status() == 200);
    CHECK(wire.body() == data.substr(0, wire.body().size()));

    proxy.resetResponseNext(1, 10);
    wire = exchange(proxy.port(), "GET", prefix + "/object");
    CHECK(wire.reset);
    CHECK(wire.received == "HTTP/1.1 2");
  }

  SUBCASE("the driver resumes a GET cut short, twice, and delivers each byte once") {
    proxy.resetResponseNext(1, 300000, "GET ");
    proxy.resetResponseNext(1, 200000, "GET ");
    CHECK(get(storage, "object") == data);
    CHECK(proxy.faultsPending() == 0);
    CHECK(seen(proxy, "GET ") == 3);
  }

  SUBCASE("a PUT whose answer is lost was still stored") {
    std::string other = randomBytes(5000);
    proxy.resetResponseNext(1, 0, "PUT ");
    CHECK(put(storage, "replaceable", other, /*noReplace=*/false));
    CHECK(seen(proxy, "PUT ") == 2);
    CHECK(get(server, "replaceable") == other);

    // With no-replace the retry meets the stored object: the write reports the name as taken
    // (by its own bytes; callers compare checksums, see S3Write::putObject).
    proxy.resetResponseNext(1, 0, "PUT ");
    CHECK_FALSE(put(storage, "once", other));
    CHECK(get(server, "once") == other);
    CHECK(proxy.faultsPending() == 0);
  }
}

TEST_CASE("truncateNext forwards the head and part of the body, then closes cleanly") {
  const S3Server& s3 = s3Server();
  FaultProxy proxy(s3.host, s3.port);
  const std::string prefix = freshPrefix();
  auto server = direct(prefix);
  auto storage = viaProxy(proxy, prefix);
  std::string data = randomBytes(1u << 20);
  REQUIRE(put(server, "object", data));

  SUBCASE("on the wire: the whole head, N body bytes, then a FIN") {
    proxy.truncateNext(1, 1234);
    Wire wire = exchange(proxy.port(), "GET", prefix + "/object");
    CHECK_FALSE(wire.reset);
    CHECK(wire.status() == 200);
    CHECK(wire.head().find("Content-Length: " + std::to_string(data.size()) + "\r\n") !=
          std::string::npos);
    CHECK(wire.body() == data.substr(0, 1234));
  }

  SUBCASE("the driver resumes a GET cut short, even with no body at all") {
    proxy.truncateNext(1, 100000, "GET ");
    proxy.truncateNext(1, 0, "GET ");
    CHECK(get(storage, "object") == data);
    CHECK(proxy.faultsPending() == 0);
    CHECK(seen(proxy, "GET ") == 3);
  }
}

TEST_CASE("stallNext holds the response") {
  const S3Server& s3 = s3Server();
  FaultProxy proxy(s3.host, s3.port);
  const std::string prefix = freshPrefix();
  auto server = direct(prefix);
  auto storage = viaProxy(proxy, prefix);  // stall timeout: 1 s
  std::string data = randomBytes(100000);
  REQUIRE(put(server, "object", data));

  SUBCASE("on the wire: the whole response, late") {
    proxy.stallNext(1, 300ms);
    auto start = Clock::now();
    Wire wire = exchange(proxy.port(), "GET", prefix + "/object");
    CHECK(Clock::now() - start >= 300ms);
    CHECK(wire.status() == 200);
    CHECK(wire.body() == data);
  }

  SUBCASE("a stall within the driver's timeout is waited out") {
    proxy.stallNext(1, 400ms, "GET ");
    auto start = Clock::now();
    CHECK(get(storage, "object") == data);
    CHECK(Clock::now() - start >= 400ms);
    CHECK(seen(proxy, "GET ") == 1);
  }

  SUBCASE("a stall beyond the driver's timeout is abandoned and retried") {
    proxy.stallNext(1, 5s, "GET ");
    auto start = Clock::now();
    CHECK(get(storage, "object") == data);
    auto elapsed = Clock::now() - start;
    CHECK(elapsed >= 1s);
    CHECK(elapsed < 4s);
    CHECK(seen(proxy, "GET ") == 2);
    CHECK(proxy.faultsPending() == 0);
  }
}

TEST_CASE("FaultProxy controls: queue order, clear, counters, and a prompt shutdown") {
  const S3Server& s3 = s3Server();
  const std::string prefix = freshPrefix();

  SUBCASE("faults apply in the order they were added, each to its own requests") {
    FaultProxy proxy(s3.host, s3.port);
    proxy.failNext(1, 500, "GET ");
    proxy.failNext(2, 503);
    CHECK(proxy.faultsPending() == 3);
    CHECK(exchange(proxy.port(), "PUT", prefix + "/a", "x").status() ==
          503);  // skips the GET-only fault
    CHECK(exchange(proxy.port(), "GET", prefix + "/a").status() == 500);
    CHECK(exchange(proxy.port(), "GET", prefix + "/a").status() == 503);
    CHECK(proxy.faultsPending() == 0);
    CHECK(exchange(proxy.port(), "GET", prefix + "/a").status() == 404);  // forwarded: never stored
    CHECK(proxy.requests() == std::vector<std::string>{
                                  "PUT /" + s3.bucket + "/" + prefix + "/a HTTP/1.1",
                                  "GET /" + s3.bucket + "/" + prefix + "/a HTTP/1.1",
                                  "GET /" + s3.bucket + "/" + prefix + "/a HTTP/1.1",
                                  "GET /" + s3.bucket + "/" + prefix + "/a HTTP/1.1",
                              });
    CHECK(proxy.requestCount() == 4);
  }

  SUBCASE("clear drops the faults not yet applied") {
    FaultProxy proxy(s3.host, s3.port);
    proxy.failNext(3);
    proxy.resetUploadNext(2, 0);
    proxy.failNext(0);  // nothing to apply
    CHECK(proxy.faultsPending() == 5);
    proxy.clear();
    CHECK(proxy.faultsPending() == 0);
    CHECK(exchange(proxy.port(), "GET", prefix + "/a").status() == 404);
  }

  SUBCASE("an unreachable upstream answers 502") {
    FaultProxy proxy("127.0.0.1", freePort());
    Wire wire = talk(connectTo(proxy.port()), "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(wire.status() == 502);
  }

  SUBCASE("destruction during a stall and beside an idle connection returns at once") {
    auto proxy = std::make_unique<FaultProxy>(s3.host, s3.port);
    int idle = connectTo(proxy->port());
    proxy->stallNext(1, 60s);
    Wire wire;
    int port = proxy->port();
    std::string request = signedRequest(port, "GET", prefix + "/a", "");
    int fd = connectTo(port);
    std::thread client([&] { wire = talk(fd, request); });
    REQUIRE(waitUntil([&] { return proxy->requestCount() == 1; }, 5s));
    auto start = Clock::now();
    proxy.reset();
    CHECK(Clock::now() - start < 1s);
    client.join();
    CHECK(wire.received.empty());
    CHECK(wire.error == 0);
    CHECK(talk(idle, "").received.empty());
  }
}

}  // namespace tidemark::test
