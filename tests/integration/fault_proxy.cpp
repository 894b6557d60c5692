// The fault-injecting HTTP/1.1 proxy of the integration tests (see fault_proxy.h).
#include "fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <list>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>

namespace tidemark::test {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxHead = 64 * 1024;
constexpr std::size_t kChunk = 64 * 1024;
constexpr std::uint64_t kUnlimited = std::numeric_limits<std::uint64_t>::max();
// How long a faulted connection waits for the client to take what it was sent (reset) or to
// close its side (clean close) before closing anyway.
constexpr auto kCloseGrace = std::chrono::seconds(2);
constexpr auto kConnectTimeout = std::chrono::seconds(5);

enum class FaultKind {
  Fail,
  ResetResponse,
  ResetUpload,
  Truncate,
  Stall,
  Drip,
  StripHeader,
  CorruptUpload
};

struct Fault {
  FaultKind kind = FaultKind::Fail;
  int remaining = 0;
  std::string match;
  int status = 0;
  std::uint64_t bytes = 0;
  std::chrono::milliseconds delay{0};
  std::string header;  // StripHeader: lowercase name
};

// A request head without the lines of header `name` (lowercase).
std::string withoutHeader(const std::string& head, const std::string& name);

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return out;
}

std::string withoutHeader(const std::string& head, const std::string& name) {
  std::string out;
  for (std::size_t start = 0; start < head.size();) {
    std::size_t end = head.find("\r\n", start);
    end = end == std::string::npos ? head.size() : end + 2;
    std::string_view line(head.data() + start, end - start);
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || lower(line.substr(0, colon)) != name) out += line;
    start = end;
  }
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
    text.remove_suffix(1);
  return text;
}

// A message head as received: start line and headers, kept raw for forwarding.
struct Head {
  std::string raw;  // through the blank line
  std::string startLine;
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case

  const std::string* header(std::string_view lowerName) const {
    for (const auto& [name, value] : headers)
      if (name == lowerName) return &value;
    return nullptr;
  }
  // Whether a comma-separated header ("Connection", "Transfer-Encoding") lists `token`.
  bool hasToken(std::string_view lowerName, std::string_view lowerToken) const {
    for (const auto& [name, value] : headers) {
      if (name != lowerName) continue;
      std::string_view rest = value;
      while (!rest.empty()) {
        std::size_t comma = rest.find(',');
        if (lower(trim(rest.substr(0, comma))) == lowerToken) return true;
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      }
    }
    return false;
  }
};

std::optional<Head> parseHead(std::string raw) {
  Head head;
  std::string_view text(raw);
  text.remove_suffix(4);  // the blank line
  std::size_t end = text.find("\r\n");
  head.startLine = std::string(text.substr(0, end));
  text = end == std::string_view::npos ? std::string_view() : text.substr(end + 2);
  while (!text.empty()) {
    end = text.find("\r\n");
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 2);
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    head.headers.emplace_back(lower(line.substr(0, colon)),
                              std::string(trim(line.substr(colon + 1))));
  }
  if (head.startLine.empty()) return std::nullopt;
  head.raw = std::move(raw);
  return head;
}

// The Content-Length header's value: nullopt when absent, false in `valid` when malformed.
std::optional<std::uint64_t> contentLength(const Head& head, bool& valid) {
  valid = true;
  const std::string* value = head.header("content-length");
  if (value == nullptr) return std::nullopt;
  if (value->empty() || value->size() > 19 ||
      !std::all_of(value->begin(), value->end(), [](char c) { return c >= '0' && c <= '9'; })) {
    valid = false;
    return std::nullopt;
  }
  return std::stoull(*value);
}

bool sendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(std::size_t(n));
  }
  return true;
}

// Buffered reads from one socket.
class Input {
 public:
  void reset(int fd) {
    fd_ = fd;
    buffer_.clear();
  }

  // The next message head (through the blank line; leading empty lines skipped); nullopt at EOF,
  // on an error, or when the head grows beyond kMaxHead.
  std::optional<std::string> head() {
    for (;;) {
      while (buffer_.starts_with("\r\n"))
        buffer_.erase(0, 2);
      std::size_t end = buffer_.find("\r\n\r\n");
      if (end != std::string::npos) return take(end + 4);
      if (buffer_.size() > kMaxHead || !fill()) return std::nullopt;
    }
  }

  // One line, CRLF included; nullopt at EOF or for an overlong line.
  std::optional<std::string> line() {
    for (;;) {
      std::size_t end = buffer_.find("\r\n");
      if (end != std::string::npos) return take(end + 2);
      if (buffer_.size() > kMaxHead || !fill()) return std::nullopt;
    }
  }

  // Between 1 and `max` bytes; empty at EOF or on an error.
  std::string some(std::size_t max) {
    if (buffer_.empty() && !fill()) return {};
    return take(std::min(max, buffer_.size()));
  }

 private:
  bool fill() {
    char chunk[kChunk];
    for (;;) {
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n > 0) {
        buffer_.append(chunk, std::size_t(n));
        return true;
      }
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
  }

  std::string take(std::size_t n) {
    std::string out = buffer_.substr(0, n);
    buffer_.erase(0, n);
    return out;
  }

  int fd_ = -1;
  std::string buffer_;
};

// Sends to a socket within a byte budget (how reset and truncate faults cut a stream short).
class Output {
 public:
  explicit Output(int fd) : fd_(fd) {}
  void setBudget(std::uint64_t budget) { budget_ = budget; }
  // Sends what the budget allows of `data`; true when all of it went out.
  bool send(std::string_view data) {
    if (failed_) return false;
    std::size_t take = std::size_t(std::min<std::uint64_t>(data.size(), budget_));
    if (!sendAll(fd_, data.substr(0, take))) {
      failed_ = true;
      return false;
    }
    budget_ -= take;
    return take == data.size();
  }
  bool failed() const { return failed_; }

 private:
  int fd_;
  std::uint64_t budget_ = kUnlimited;
  bool failed_ = false;
};

enum class Framing { None, Length, Chunked, UntilClose };
enum class Relay { Complete, InputEnded, Stopped };
using Emit = std::function<bool(std::string_view)>;  // false stops the relay

Relay relayCount(Input& in, std::uint64_t count, const Emit& emit) {
  while (count > 0) {
    std::string data = in.some(std::size_t(std::min<std::uint64_t>(count, kChunk)));
    if (data.empty()) return Relay::InputEnded;
    count -= data.size();
    if (!emit(data)) return Relay::Stopped;
  }
  return Relay::Complete;
}

// Passes one message body from `in` to `emit` as it is on the wire.
Relay relayBody(Input& in, Framing framing, std::uint64_t length, const Emit& emit) {
  switch (framing) {
    case Framing::None:
      return Relay::Complete;
    case Framing::Length:
      return relayCount(in, length, emit);
    case Framing::UntilClose:
      for (;;) {
        std::string data = in.some(kChunk);
        if (data.empty()) return Relay::Complete;
        if (!emit(data)) return Relay::Stopped;
      }
    case Framing::Chunked:
      for (;;) {
        auto sizeLine = in.line();
        if (!sizeLine) return Relay::InputEnded;
        std::uint64_t size = 0;
        std::size_t digits = 0;
        for (char c : *sizeLine) {
          int value = c >= '0' && c <= '9'   ? c - '0'
                      : c >= 'a' && c <= 'f' ? c - 'a' + 10
                      : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                             : -1;
          if (value < 0) break;
          if (++digits > 15) return Relay::InputEnded;  // not a size any test sends
          size = size * 16 + std::uint64_t(value);
        }
        if (digits == 0) return Relay::InputEnded;
        if (!emit(*sizeLine)) return Relay::Stopped;
        if (size == 0) {  // trailers, up to the blank line
          for (;;) {
            auto trailer = in.line();
            if (!trailer) return Relay::InputEnded;
            if (!emit(*trailer)) return Relay::Stopped;
            if (*trailer == "\r\n") return Relay::Complete;
          }
        }
        Relay relay = relayCount(in, size + 2, emit);  // the data and its CRLF
        if (relay != Relay::Complete) return relay;
      }
  }
  return Relay::InputEnded;
}

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 412:
      return "Precondition Failed";
    case 416:
      return "Range Not Satisfiable";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return status >= 500 ? "Server Error" : "Client Error";
  }
}

// The S3 error code a server would send with `status`.
std::string_view s3Code(int status) {
  switch (status) {
    case 400:
      return "RequestTimeout";
    case 403:
      return "AccessDenied";
    case 404:
      return "NoSuchKey";
    case 409:
      return "OperationAborted";
    case 412:
      return "PreconditionFailed";
    case 416:
      return "InvalidRange";
    case 429:
      return "SlowDown";
    case 500:
      return "InternalError";
    case 501:
      return "NotImplemented";
    case 503:
      return "ServiceUnavailable";
    default:
      return status >= 500 ? "InternalError" : "InvalidRequest";
  }
}

std::string errorResponse(int status, const std::string& method, const std::string& target, int id,
                          bool close) {
  std::string resource = target.substr(0, target.find('?'));
  std::string requestId = "faultproxy-" + std::to_string(id);
  std::string body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" +
                     std::string(s3Code(status)) +
                     "</Code><Message>injected by FaultProxy</Message><Resource>" + resource +
                     "</Resource><RequestId>" + requestId + "</RequestId></Error>";
  if (method == "HEAD") body.clear();
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reasonPhrase(status)) +
         "\r\nContent-Type: application/xml\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nx-amz-request-id: " + requestId +
         "\r\nConnection: " + (close ? "close" : "keep-alive") + "\r\n\r\n" + body;
}

// Whether the sender of `head` (request or response, HTTP version at `version`) ends the
// connection after this message.
bool closesAfter(const Head& head, std::string_view version) {
  if (head.hasToken("connection", "close")) return true;
  return version == "HTTP/1.0" && !head.hasToken("connection", "keep-alive");
}

struct Connection {
  // Both are closed only under State::mutex, so that the destructor's shutdown() never reaches a
  // descriptor number reused by someone else.
  int client = -1;
  int upstream = -1;
  std::thread thread;
  std::atomic<bool> finished{false};
};

}  // namespace

namespace detail {

struct FaultProxyState {
  std::string upstreamHost;
  int upstreamPort = 0;
  int listenFd = -1;
  int port = 0;

  mutable std::mutex mutex;
  std::condition_variable wake;       // stalls wait on it; notified when stopping
  std::atomic<bool> stopping{false};  // written under `mutex`
  std::deque<Fault> faults;
  std::vector<std::string> requests;
  std::list<std::unique_ptr<Connection>> connections;
  std::thread acceptor;
  int errorsSent = 0;

  void addFault(Fault fault) {
    if (fault.remaining <= 0) return;
    std::lock_guard lock(mutex);
    faults.push_back(std::move(fault));
  }

  // Records a request line and takes the fault that applies to it, if any.
  std::optional<Fault> arrive(const std::string& requestLine) {
    std::lock_guard lock(mutex);
    requests.push_back(requestLine);
    for (auto it = faults.begin(); it != faults.end(); ++it) {
      if (requestLine.find(it->match) == std::string::npos) continue;
      Fault fault = *it;
      if (--it->remaining == 0) faults.erase(it);
      return fault;
    }
    return std::nullopt;
  }

  int nextErrorId() {
    std::lock_guard lock(mutex);
    return ++errorsSent;
  }

  // Waits for `delay`; false when the proxy is stopping.
  bool sleep(std::chrono::milliseconds delay) {
    std::unique_lock lock(mutex);
    return !wake.wait_for(lock, delay, [&] { return stopping.load(); });
  }

  // Takes `fd` as the connection's upstream socket; false (and `fd` closed) when stopping.
  bool adoptUpstream(Connection& connection, int fd) {
    std::lock_guard lock(mutex);
    if (stopping) {
      ::close(fd);
      return false;
    }
    connection.upstream = fd;
    return true;
  }

  // Closes one of a connection's sockets; `reset` sends an RST instead of a FIN.
  void closeSocket(int& fd, bool reset) {
    std::lock_guard lock(mutex);
    if (fd < 0) return;
    if (reset) {
      linger option{.l_onoff = 1, .l_linger = 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, sizeof option);
    }
    ::close(fd);
    fd = -1;
  }

  void acceptLoop();
};

}  // namespace detail

namespace {

// One client connection: requests in a keep-alive loop, each forwarded over this connection's
// own upstream socket unless a fault says otherwise.
class Session {
 public:
  using State = detail::FaultProxyState;
  Session(State& state, Connection& connection) : state_(state), connection_(connection) {
    client_.reset(connection.client);
  }

  void run() {
    try {
      while (!state_.stopping && exchange()) {
      }
    } catch (...) {  // out of memory, thread trouble: drop the connection, keep the proxy
    }
    state_.closeSocket(connection_.upstream, false);
    state_.closeSocket(connection_.client, false);
    connection_.finished = true;
  }

 private:
  // One request and its response; false ends the connection.
  bool exchange() {
    auto rawHead = client_.head();
    if (!rawHead) return false;
    auto request = parseHead(std::move(*rawHead));
    if (!request) return false;
    std::string_view line = request->startLine;
    std::size_t space1 = line.find(' '), space2 = line.rfind(' ');
    if (space1 == std::string_view::npos || space2 <= space1) return false;
    std::string method(line.substr(0, space1));
    std::string target(line.substr(space1 + 1, space2 - space1 - 1));
    std::string_view version = line.substr(space2 + 1);

    std::optional<Fault> fault = state_.arrive(request->startLine);
    auto is = [&](FaultKind kind) { return fault && fault->kind == kind; };

    bool valid = true;
    auto length = contentLength(*request, valid);
    if (!valid) return false;
    Framing framing = request->hasToken("transfer-encoding", "chunked") ? Framing::Chunked
                      : length                                          ? Framing::Length
                                                                        : Framing::None;
    bool expectContinue = request->hasToken("expect", "100-continue");
    bool clientCloses = closesAfter(*request, version);
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    auto discard = [](std::string_view) { return true; };

    if (is(FaultKind::Fail)) {
      // A client waiting for 100 Continue sends no body after a final answer: close after it.
      bool close = clientCloses || expectContinue;
      if (!expectContinue &&
          relayBody(client_, framing, length.value_or(0), discard) != Relay::Complete)
        return false;
      if (!sendAll(connection_.client,
                   errorResponse(fault->status, method, target, state_.nextErrorId(), close)))
        return false;
      if (close) closeClientCleanly();
      return !close;
    }

    if (is(FaultKind::ResetUpload)) {
      if (expectContinue && !sendAll(connection_.client, kContinue)) return false;
      std::uint64_t wanted = fault->bytes, got = 0;
      if (wanted > 0)
        relayBody(client_, framing, length.value_or(0), [&](std::string_view data) {
          got += data.size();
          return got < wanted;
        });
      resetClient();
      return false;
    }

    if (!connectUpstream()) {
      sendAll(connection_.client,
              "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      closeClientCleanly();
      return false;
    }
    if (expectContinue && !sendAll(connection_.client, kContinue)) return false;
    Output toUpstream(connection_.upstream);
    toUpstream.send(is(FaultKind::StripHeader) ? withoutHeader(request->raw, fault->header)
                                               : request->raw);
    std::uint64_t relayed = 0;  // body bytes forwarded so far
    Relay upload = relayBody(client_, framing, length.value_or(0), [&](std::string_view data) {
      std::uint64_t at = relayed;
      relayed += data.size();
      if (!is(FaultKind::CorruptUpload) || fault->bytes < at || fault->bytes >= relayed)
        return toUpstream.send(data);
      std::string damaged(data);
      damaged[std::size_t(fault->bytes - at)] ^= 0x01;
      return toUpstream.send(damaged);
    });
    if (upload == Relay::InputEnded) return false;  // the client went away mid-body
    // An upstream that stopped reading may still have answered; after that answer the rest of
    // the client's body would be taken for the next request, so the connection ends.
    bool mustClose = upload != Relay::Complete;

    if (is(FaultKind::Stall) && !state_.sleep(fault->delay)) return false;

    std::optional<Head> response;
    for (;;) {
      auto raw = upstream_.head();
      if (!raw) return false;  // the upstream closed or broke: so does the client's connection
      response = parseHead(std::move(*raw));
      if (!response) return false;
      int status = statusOf(*response);
      if (status < 100) return false;             // not HTTP
      if (status >= 200 || status == 101) break;  // interim answers are the proxy's business
    }
    int status = statusOf(*response);
    std::string_view responseVersion =
        std::string_view(response->startLine).substr(0, response->startLine.find(' '));
    auto responseLength = contentLength(*response, valid);
    if (!valid) return false;
    Framing responseFraming =
        method == "HEAD" || status < 200 || status == 204 || status == 304 ? Framing::None
        : response->hasToken("transfer-encoding", "chunked")               ? Framing::Chunked
        : responseLength                                                   ? Framing::Length
                                                                           : Framing::UntilClose;
    bool upstreamCloses =
        responseFraming == Framing::UntilClose || closesAfter(*response, responseVersion);

    Output toClient(connection_.client);
    if (is(FaultKind::ResetResponse)) toClient.setBudget(fault->bytes);
    Relay download = Relay::Stopped;
    if (toClient.send(response->raw)) {
      if (is(FaultKind::Truncate)) toClient.setBudget(fault->bytes);
      download = relayBody(
          upstream_, responseFraming, responseLength.value_or(0), [&](std::string_view data) {
            if (!is(FaultKind::Drip)) return toClient.send(data);
            for (std::size_t at = 0; at < data.size(); at += fault->bytes)
              if (!state_.sleep(fault->delay) || !toClient.send(data.substr(at, fault->bytes)))
                return false;
            return true;
          });
    }
    if (is(FaultKind::ResetResponse)) {
      if (!toClient.failed()) resetClient();
      return false;
    }
    if (is(FaultKind::Truncate)) {
      closeClientCleanly();
      return false;
    }
    if (download != Relay::Complete) return false;
    if (upstreamCloses) state_.closeSocket(connection_.upstream, false);
    if (upstreamCloses || clientCloses || mustClose) {
      closeClientCleanly();
      return false;
    }
    return true;
  }

  static int statusOf(const Head& response) {
    std::size_t space = response.startLine.find(' ');
    if (space == std::string::npos || response.startLine.size() < space + 4) return 0;
    int status = 0;
    for (std::size_t i = space + 1; i < space + 4; ++i) {
      char c = response.startLine[i];
      if (c < '0' || c > '9') return 0;
      status = status * 10 + (c - '0');
    }
    return status;
  }

  // Opens the upstream connection, or reopens it when the upstream closed it while idle.
  bool connectUpstream() {
    if (connection_.upstream >= 0) {
      pollfd idle{.fd = connection_.upstream, .events = POLLIN | POLLRDHUP, .revents = 0};
      if (::poll(&idle, 1, 0) == 0) return true;
      state_.closeSocket(connection_.upstream, false);  // closed, broken, or stray bytes
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    if (::getaddrinfo(state_.upstreamHost.c_str(), std::to_string(state_.upstreamPort).c_str(),
                      &hints, &found) != 0)
      return false;
    int fd = -1;
    for (addrinfo* ai = found; ai != nullptr && fd < 0; ai = ai->ai_next) {
      fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
      if (fd >= 0 && !connectWithin(fd, ai->ai_addr, ai->ai_addrlen)) {
        ::close(fd);
        fd = -1;
      }
    }
    ::freeaddrinfo(found);
    if (fd < 0) return false;
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!state_.adoptUpstream(connection_, fd)) return false;
    upstream_.reset(fd);
    return true;
  }

  // Connects a non-blocking socket in short waits, so that the destructor is never held up by
  // an upstream that does not answer (the socket is not registered for shutdown() yet).
  bool connectWithin(int fd, const sockaddr* address, socklen_t size) {
    if (::connect(fd, address, size) == 0) return true;
    if (errno != EINPROGRESS) return false;
    auto deadline = Clock::now() + kConnectTimeout;
    while (!state_.stopping && Clock::now() < deadline) {
      pollfd writable{.fd = fd, .events = POLLOUT, .revents = 0};
      if (::poll(&writable, 1, 100) == 0) continue;
      int error = 0;
      socklen_t length = sizeof error;
      return ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0;
    }
    return false;
  }

  // RST, once the client's kernel has acknowledged everything sent (an RST discards unsent data).
  void resetClient() {
    auto deadline = Clock::now() + kCloseGrace;
    while (!state_.stopping && Clock::now() < deadline) {
      int unacknowledged = 0;
      if (::ioctl(connection_.client, SIOCOUTQ, &unacknowledged) != 0 || unacknowledged == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    state_.closeSocket(connection_.upstream, false);
    state_.closeSocket(connection_.client, true);
  }

  // FIN; then reads whatever the client still sends until it closes too, because closing a
  // socket with unread data would send an RST instead.
  void closeClientCleanly() {
    int fd = connection_.client;
    ::shutdown(fd, SHUT_WR);
    auto deadline = Clock::now() + kCloseGrace;
    char scratch[kChunk];
    while (!state_.stopping) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      pollfd readable{.fd = fd, .events = POLLIN, .revents = 0};
      if (left <= 0 || ::poll(&readable, 1, int(left)) <= 0) break;
      if (::recv(fd, scratch, sizeof scratch, 0) <= 0) break;
    }
    state_.closeSocket(connection_.upstream, false);
    state_.closeSocket(connection_.client, false);
  }

  State& state_;
  Connection& connection_;
  Input client_, upstream_;
};

}  // namespace

void detail::FaultProxyState::acceptLoop() {
  while (!stopping) {
    // The destructor also shuts the listening socket down; the timeout is a second line of defence.
    pollfd readable{.fd = listenFd, .events = POLLIN, .revents = 0};
    if (::poll(&readable, 1, 200) <= 0) continue;
    int fd = ::accept4(listenFd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN && !stopping)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // out of descriptors: wait
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::lock_guard lock(mutex);
    if (stopping) {
      ::close(fd);
      return;
    }
    // Finished sessions set `finished` last, so these joins return at once.
    connections.remove_if([](const std::unique_ptr<Connection>& c) {
      if (!c->finished) return false;
      c->thread.join();
      return true;
    });
    auto connection = std::make_unique<Connection>();
    connection->client = fd;
    Connection* raw = connection.get();
    try {
      raw->thread = std::thread([this, raw] { Session(*this, *raw).run(); });
    } catch (const std::system_error&) {
      ::close(fd);
      continue;
    }
    connections.push_back(std::move(connection));
  }
}

FaultProxy::FaultProxy(std::string upstreamHost, int upstreamPort)
    : state_(std::make_unique<detail::FaultProxyState>()) {
  state_->upstreamHost = std::move(upstreamHost);
  state_->upstreamPort = upstreamPort;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) throw std::runtime_error(std::string("fault proxy: socket: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t size = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(fd, 128) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    int err = errno;
    ::close(fd);
    throw std::runtime_error(std::string("fault proxy: cannot listen on 127.0.0.1: ") +
                             std::strerror(err));
  }
  state_->listenFd = fd;
  state_->port = ntohs(address.sin_port);
  state_->acceptor = std::thread([state = state_.get()] { state->acceptLoop(); });
}

FaultProxy::~FaultProxy() {
  detail::FaultProxyState& s = *state_;
  {
    std::lock_guard lock(s.mutex);
    s.stopping = true;
    ::shutdown(s.listenFd, SHUT_RDWR);
    for (const auto& c : s.connections) {
      if (c->client >= 0) ::shutdown(c->client, SHUT_RDWR);
      if (c->upstream >= 0) ::shutdown(c->upstream, SHUT_RDWR);
    }
  }
  s.wake.notify_all();
  s.acceptor.join();
  // The acceptor is gone, so the list no longer changes; sessions take the mutex to close sockets.
  std::list<std::unique_ptr<Connection>> connections;
  {
    std::lock_guard lock(s.mutex);
    connections.swap(s.connections);
  }
  for (const auto& c : connections)
    c->thread.join();
  ::close(s.listenFd);
}

int FaultProxy::port() const {
  return state_->port;
}

std::string FaultProxy::endpoint() const {
  return "http://127.0.0.1:" + std::to_string(state_->port);
}

void FaultProxy::failNext(int count, int status, std::string match) {
  state_->addFault(
      {.kind = FaultKind::Fail, .remaining = count, .match = std::move(match), .status = status});
}

void FaultProxy::resetResponseNext(int count, std::size_t afterBytes, std::string match) {
  state_->addFault({.kind = FaultKind::ResetResponse,
                    .remaining = count,
                    .match = std::move(match),
                    .bytes = afterBytes});
}

void FaultProxy::resetUploadNext(int count, std::size_t afterBytes, std::string match) {
  state_->addFault({.kind = FaultKind::ResetUpload,
                    .remaining = count,
                    .match = std::move(match),
                    .bytes = afterBytes});
}

void FaultProxy::truncateNext(int count, std::size_t bodyBytes, std::string match) {
  state_->addFault({.kind = FaultKind::Truncate,
                    .remaining = count,
                    .match = std::move(match),
                    .bytes = bodyBytes});
}

void FaultProxy::stallNext(int count, std::chrono::milliseconds delay, std::string match) {
  state_->addFault(
      {.kind = FaultKind::Stall, .remaining = count, .match = std::move(match), .delay = delay});
}

void FaultProxy::dripNext(int count, std::size_t bytes, std::chrono::milliseconds every,
                          std::string match) {
  state_->addFault({.kind = FaultKind::Drip,
                    .remaining = count,
                    .match = std::move(match),
                    .bytes = std::max<std::size_t>(bytes, 1),
                    .delay = every});
}

void FaultProxy::corruptUploadNext(int count, std::size_t atByte, std::string match) {
  state_->addFault({.kind = FaultKind::CorruptUpload,
                    .remaining = count,
                    .match = std::move(match),
                    .bytes = atByte});
}

void FaultProxy::stripHeaderNext(int count, std::string header, std::string match) {
  state_->addFault({.kind = FaultKind::StripHeader,
                    .remaining = count,
                    .match = std::move(match),
                    .header = lower(header)});
}

void FaultProxy::clear() {
  std::lock_guard lock(state_->mutex);
  state_->faults.clear();
}

int FaultProxy::faultsPending() const {
  std::lock_guard lock(state_->mutex);
  int pending = 0;
  for (const auto& fault : state_->faults)
    pending += fault.remaining;
  return pending;
}

std::vector<std::string> FaultProxy::requests() const {
  std::lock_guard lock(state_->mutex);
  return state_->requests;
}

int FaultProxy::requestCount() const {
  std::lock_guard lock(state_->mutex);
  return int(state_->requests.size());
}

}  // namespace tidemark::test
