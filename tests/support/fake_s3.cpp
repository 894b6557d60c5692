// The lying S3 server of the unit tests.
#include "support/fake_s3.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <stdexcept>

namespace tidemark::test {

namespace {

std::string lower(std::string s) {
  for (char& c : s)
    c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string percentDecode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out.push_back(char(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::map<std::string, std::string> parseQuery(const std::string& query) {
  std::map<std::string, std::string> out;
  std::size_t at = 0;
  while (at < query.size()) {
    std::size_t end = query.find('&', at);
    if (end == std::string::npos) end = query.size();
    std::string pair = query.substr(at, end - at);
    std::size_t eq = pair.find('=');
    out[percentDecode(pair.substr(0, eq))] =
        eq == std::string::npos ? "" : percentDecode(pair.substr(eq + 1));
    at = end + 1;
  }
  return out;
}

std::string httpDate(std::int64_t seconds) {
  std::time_t t = std::time_t(seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buffer[64];
  std::strftime(buffer, sizeof buffer, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buffer;
}

std::string isoDate(std::int64_t seconds) {
  std::time_t t = std::time_t(seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buffer[64];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
  return buffer;
}

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 404:
      return "Not Found";
    case 412:
      return "Precondition Failed";
    case 416:
      return "Range Not Satisfiable";
    default:
      return "Status";
  }
}

// The payload of an aws-chunked body ("<hex size>;chunk-signature=<64 hex>\r\n<data>\r\n"...,
// ending with an empty chunk); nullopt when its framing is broken or it ends early.
std::optional<std::string> decodeAwsChunked(const std::string& body) {
  std::string out;
  std::size_t at = 0;
  for (;;) {
    std::size_t lineEnd = body.find("\r\n", at);
    if (lineEnd == std::string::npos) return std::nullopt;
    std::string line = body.substr(at, lineEnd - at);
    std::size_t semicolon = line.find(";chunk-signature=");
    if (semicolon == std::string::npos || semicolon == 0 || line.size() != semicolon + 17 + 64)
      return std::nullopt;
    std::size_t size = std::stoul(line.substr(0, semicolon), nullptr, 16);
    at = lineEnd + 2;
    if (body.size() < at + size + 2 || body.compare(at + size, 2, "\r\n") != 0) return std::nullopt;
    out.append(body, at, size);
    at += size + 2;
    if (size == 0) return at == body.size() ? std::optional(out) : std::nullopt;
  }
}

bool sendAll(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) return false;
    data += n;
    size -= std::size_t(n);
  }
  return true;
}

}  // namespace

FakeS3::FakeS3() {
  listen_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  if (::bind(listen_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listen_, 64) != 0 ||
      ::getsockname(listen_, reinterpret_cast<sockaddr*>(&address), &size) != 0)
    throw std::runtime_error("FakeS3: cannot listen on 127.0.0.1");
  port_ = ntohs(address.sin_port);
  acceptor_ = std::thread([this] { acceptLoop(); });
}

FakeS3::~FakeS3() {
  stopping_ = true;
  ::shutdown(listen_, SHUT_RDWR);
  acceptor_.join();
  {
    std::lock_guard lock(mutex_);
    for (int fd : fds_)
      ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : connections_)
    t.join();
  ::close(listen_);
}

std::string FakeS3::endpoint() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

void FakeS3::lie(const Lies& lies) {
  std::lock_guard lock(mutex_);
  lies_ = lies;
}

std::optional<FakeS3::Object> FakeS3::object(const std::string& key) const {
  std::lock_guard lock(mutex_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return std::nullopt;
  return it->second;
}

void FakeS3::setObject(const std::string& key, std::string body, std::int64_t modified) {
  std::lock_guard lock(mutex_);
  objects_[key] = Object{std::move(body), "\"e" + std::to_string(nextEtag_++) + "\"",
                         modified ? modified : std::int64_t(std::time(nullptr))};
}

std::vector<std::string> FakeS3::keys() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [key, object] : objects_)
    out.push_back(key);
  return out;
}

std::vector<std::string> FakeS3::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

std::vector<std::string> FakeS3::putPayloads() const {
  std::lock_guard lock(mutex_);
  return putPayloads_;
}

std::vector<std::string> FakeS3::rangesAsked() const {
  std::lock_guard lock(mutex_);
  return ranges_;
}

void FakeS3::acceptLoop() {
  while (!stopping_) {
    pollfd readable{.fd = listen_, .events = POLLIN, .revents = 0};
    if (::poll(&readable, 1, 100) <= 0) continue;
    int fd = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard lock(mutex_);
    fds_.push_back(fd);
    connections_.emplace_back([this, fd] {
      serve(fd);
      ::close(fd);
    });
  }
}

void FakeS3::serve(int fd) {
  std::string buffer;
  char chunk[65536];
  auto fill = [&] {
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n > 0) buffer.append(chunk, std::size_t(n));
    return n > 0;
  };
  while (!stopping_) {
    std::size_t end;
    while ((end = buffer.find("\r\n\r\n")) == std::string::npos)
      if (!fill()) return;
    Request request;
    request.head = buffer.substr(0, end + 4);
    buffer.erase(0, end + 4);
    std::size_t lineEnd = request.head.find("\r\n");
    std::string line = request.head.substr(0, lineEnd);
    request.method = line.substr(0, line.find(' '));
    std::string target = line.substr(line.find(' ') + 1);
    target = target.substr(0, target.rfind(' '));
    std::size_t question = target.find('?');
    request.path = percentDecode(target.substr(0, question));
    request.query = question == std::string::npos ? "" : target.substr(question + 1);
    for (std::size_t at = lineEnd + 2; at < end;) {
      std::size_t next = request.head.find("\r\n", at);
      std::string header = request.head.substr(at, next - at);
      std::size_t colon = header.find(':');
      if (colon != std::string::npos) {
        std::string value = header.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        request.headers[lower(header.substr(0, colon))] = value;
      }
      at = next + 2;
    }
    std::size_t length = 0;
    if (auto it = request.headers.find("content-length"); it != request.headers.end())
      length = std::stoul(it->second);
    std::optional<std::size_t> cutAt;
    bool refuse = false;
    if (request.method == "PUT") {
      std::lock_guard lock(mutex_);
      putPayloads_.push_back(request.headers["x-amz-content-sha256"]);
      if (lies_.refuseStreaming &&
          request.headers["x-amz-content-sha256"] == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") {
        refuse = true;
        requests_.push_back(line + " (refused)");
      } else if (lies_.cutPuts > 0) {
        --lies_.cutPuts;
        cutAt = std::min(length, lies_.cutPutsAfter);
        requests_.push_back(line + " (cut)");
      }
    }
    if (refuse) {  // at once, before the body, as a server that does not take streamed bodies
      Response refused = error(501, "NotImplemented");
      std::string answer =
          "HTTP/1.1 501 Not Implemented\r\nContent-Length: " + std::to_string(refused.body.size()) +
          "\r\nConnection: close\r\n\r\n" + refused.body;
      sendAll(fd, answer.data(), answer.size());
      // Closed with unread bytes, the socket would send an RST that the client may see before
      // the answer: take what it still sends until it closes too.
      ::shutdown(fd, SHUT_WR);
      pollfd readable{.fd = fd, .events = POLLIN, .revents = 0};
      while (!stopping_ && ::poll(&readable, 1, 2000) > 0 &&
             ::recv(fd, chunk, sizeof chunk, 0) > 0) {
      }
      return;
    }
    if (cutAt) {  // read that much, then close: the connection breaks mid-body
      while (buffer.size() < *cutAt)
        if (!fill()) return;
      return;
    }
    while (buffer.size() < length)
      if (!fill()) return;
    request.body = buffer.substr(0, length);
    buffer.erase(0, length);

    int stall = 0;
    {
      std::lock_guard lock(mutex_);
      if (request.method == "PUT") stall = lies_.stallPutsMs;
      if (request.method == "GET" && !lies_.stallGetsOf.empty() &&
          request.path.find(lies_.stallGetsOf) != std::string::npos)
        stall = lies_.stallGetsMs;
    }
    for (int waited = 0; waited < stall && !stopping_; waited += 10)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    Response response;
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(line);
      if (request.method == "GET" && request.headers.count("range"))
        ranges_.push_back(request.headers["range"]);
      response = handle(request);
    }
    std::string body = request.method == "HEAD" ? "" : response.body;
    std::string head =
        "HTTP/1.1 " + std::to_string(response.status) + " " + reason(response.status) + "\r\n";
    if (!response.headers.count("Content-Length"))
      response.headers["Content-Length"] = std::to_string(response.body.size());
    for (const auto& [name, value] : response.headers)
      head += name + ": " + value + "\r\n";
    head += "\r\n";
    if (!sendAll(fd, head.data(), head.size())) return;
    std::size_t send = response.cutAfter ? std::min(*response.cutAfter, body.size()) : body.size();
    if (!sendAll(fd, body.data(), send)) return;
    if (response.cutAfter) return;
  }
}

FakeS3::Response FakeS3::error(int status, const std::string& code) {
  Response r;
  r.status = status;
  r.headers["Content-Type"] = "application/xml";
  r.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + code + "</Code><Message>" +
           code + "</Message></Error>";
  return r;
}

FakeS3::Response FakeS3::handle(const Request& request) {
  std::string prefix = std::string("/") + kBucket;
  if (request.path.rfind(prefix, 0) != 0) return error(404, "NoSuchBucket");
  std::string key =
      request.path.size() > prefix.size() + 1 ? request.path.substr(prefix.size() + 1) : "";
  auto query = parseQuery(request.query);
  if (query.count("uploads") || query.count("uploadId")) return multipart(request, key);
  if (key.empty() && request.method == "GET") return list(request);
  if (request.method == "GET" || request.method == "HEAD") return getObject(request, key);
  if (request.method == "PUT") return putObject(request, key);
  if (request.method == "DELETE") {
    auto it = objects_.find(key);
    if (auto match = request.headers.find("if-match");
        match != request.headers.end() && !lies_.ignoreIfMatch &&
        (it == objects_.end() || it->second.etag != match->second))
      return error(412, "PreconditionFailed");
    if (it != objects_.end()) objects_.erase(it);
    Response r;
    r.status = 204;
    return r;
  }
  return error(400, "InvalidRequest");
}

FakeS3::Response FakeS3::getObject(const Request& request, const std::string& key) {
  auto it = objects_.find(key);
  if (it == objects_.end()) {
    Response r = error(404, "NoSuchKey");
    if (request.method == "HEAD") r.body.clear();
    return r;
  }
  const Object& object = it->second;
  if (auto match = request.headers.find("if-match");
      match != request.headers.end() && match->second != object.etag)
    return error(412, "PreconditionFailed");
  Response r;
  r.headers["ETag"] = object.etag;
  r.headers["Last-Modified"] = httpDate(object.modified);
  r.headers["Date"] = httpDate(std::time(nullptr));
  r.body = object.body;
  auto range = request.headers.find("range");
  if (range != request.headers.end() && !lies_.ignoreRange && request.method == "GET") {
    std::string spec = range->second.substr(std::string("bytes=").size());
    std::uint64_t first = std::stoull(spec.substr(0, spec.find('-')));
    std::string lastText = spec.substr(spec.find('-') + 1);
    std::uint64_t last = lastText.empty() ? object.body.size() - 1 : std::stoull(lastText);
    if (first >= object.body.size()) return error(416, "InvalidRange");
    last = std::min<std::uint64_t>(last, object.body.size() - 1);
    r.status = 206;
    r.body = object.body.substr(first, last - first + 1);
    std::uint64_t shown = lies_.wrongContentRange ? first + 1 : first;
    r.headers["Content-Range"] = "bytes " + std::to_string(shown) + "-" + std::to_string(last) +
                                 "/" + std::to_string(object.body.size());
  }
  if (request.method == "GET" && lies_.truncateGets > 0) {
    --lies_.truncateGets;
    r.cutAfter = lies_.truncateAfter;
  }
  return r;
}

FakeS3::Response FakeS3::putObject(const Request& request, const std::string& key) {
  if (lies_.failPuts > 0) {
    --lies_.failPuts;
    return error(503, "SlowDown");
  }
  std::string body = request.body;
  if (auto payload = request.headers.find("x-amz-content-sha256");
      payload != request.headers.end() && payload->second == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" &&
      !lies_.keepChunkFraming) {
    auto decoded = decodeAwsChunked(request.body);
    auto declared = request.headers.find("x-amz-decoded-content-length");
    if (!decoded || declared == request.headers.end() ||
        declared->second != std::to_string(decoded->size()) ||
        request.headers.count("content-encoding") == 0 ||
        request.headers.at("content-encoding") != "aws-chunked")
      return error(400, "IncompleteBody");
    body = std::move(*decoded);
  }
  auto it = objects_.find(key);
  if (request.headers.count("if-none-match") && it != objects_.end() && !lies_.ignoreIfNoneMatch)
    return error(412, "PreconditionFailed");
  if (auto match = request.headers.find("if-match");
      match != request.headers.end() && !lies_.ignoreIfMatch) {
    std::string expected = it == objects_.end() ? "" : it->second.etag;
    if (lies_.ifMatchBareOnly && expected.size() >= 2)
      expected = expected.substr(1, expected.size() - 2);
    if (it == objects_.end() || expected != match->second) return error(412, "PreconditionFailed");
  }
  Object object{body, "\"e" + std::to_string(nextEtag_++) + "\"", std::int64_t(std::time(nullptr))};
  objects_[key] = object;
  Response r;
  r.headers["ETag"] = object.etag;
  return r;
}

FakeS3::Response FakeS3::list(const Request& request) {
  auto query = parseQuery(request.query);
  std::string prefix = query["prefix"], delimiter = query["delimiter"],
              after = query["continuation-token"];
  std::size_t maxKeys = query.count("max-keys") ? std::stoul(query["max-keys"]) : 1000;
  std::string contents, common;
  std::vector<std::string> prefixes;
  std::size_t count = 0;
  std::string last;
  bool truncated = false;
  for (auto it = objects_.upper_bound(after); it != objects_.end(); ++it) {
    const std::string& key = it->first;
    if (key.rfind(prefix, 0) != 0) continue;
    if (count == maxKeys) {
      truncated = true;
      break;
    }
    std::string rest = key.substr(prefix.size());
    if (!delimiter.empty() && rest.find(delimiter) != std::string::npos) {
      std::string p = prefix + rest.substr(0, rest.find(delimiter) + 1);
      if (std::find(prefixes.begin(), prefixes.end(), p) == prefixes.end()) {
        prefixes.push_back(p);
        common += "<CommonPrefixes><Prefix>" + p + "</Prefix></CommonPrefixes>";
        ++count;
      }
    } else {
      contents += "<Contents><Key>" + key + "</Key><LastModified>" + isoDate(it->second.modified) +
                  "</LastModified><ETag>" + it->second.etag + "</ETag><Size>" +
                  std::to_string(it->second.body.size()) + "</Size></Contents>";
      ++count;
    }
    last = key;
  }
  Response r;
  r.headers["Content-Type"] = "application/xml";
  r.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>" +
           std::string(kBucket) + "</Name><Prefix>" + prefix + "</Prefix><KeyCount>" +
           std::to_string(count) + "</KeyCount>" + "<IsTruncated>" +
           (truncated || lies_.listTruncatedWithoutToken ? "true" : "false") + "</IsTruncated>" +
           (truncated && !lies_.listTruncatedWithoutToken
                ? "<NextContinuationToken>" + last + "</NextContinuationToken>"
                : "") +
           contents + common + "</ListBucketResult>";
  return r;
}

FakeS3::Response FakeS3::multipart(const Request& request, const std::string& key) {
  auto query = parseQuery(request.query);
  Response r;
  r.headers["Content-Type"] = "application/xml";
  if (request.method == "POST" && query.count("uploads")) {
    std::string id = std::to_string(nextUpload_++);
    uploads_[id];
    r.body = "<InitiateMultipartUploadResult><Bucket>bucket</Bucket><Key>" + key +
             "</Key><UploadId>" + id + "</UploadId></InitiateMultipartUploadResult>";
    return r;
  }
  if (request.method == "GET" && query.count("uploads")) {
    r.body = "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>";
    for (const auto& [id, parts] : uploads_)
      r.body += "<Upload><Key>k</Key><UploadId>" + id + "</UploadId></Upload>";
    r.body += "</ListMultipartUploadsResult>";
    return r;
  }
  auto upload = uploads_.find(query["uploadId"]);
  if (upload == uploads_.end()) return error(404, "NoSuchUpload");
  if (request.method == "PUT") {
    upload->second[std::stoi(query["partNumber"])] = request.body;
    r.headers["ETag"] = "\"p" + query["partNumber"] + "\"";
    r.body.clear();
    return r;
  }
  if (request.method == "DELETE") {
    uploads_.erase(upload);
    r.status = 204;
    r.body.clear();
    return r;
  }
  if (lies_.completeWithError > 0) {
    --lies_.completeWithError;
    r.body =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code><Message>We "
        "encountered "
        "an internal error. Please try again.</Message></Error>";
    return r;
  }
  if (request.headers.count("if-none-match") && objects_.count(key) && !lies_.ignoreIfNoneMatch)
    return error(412, "PreconditionFailed");
  std::string body;
  for (const auto& [number, part] : upload->second)
    body += part;
  uploads_.erase(upload);
  objects_[key] =
      Object{body, "\"m" + std::to_string(nextEtag_++) + "\"", std::int64_t(std::time(nullptr))};
  r.body = "<CompleteMultipartUploadResult><Key>" + key + "</Key><ETag>" + objects_[key].etag +
           "</ETag></CompleteMultipartUploadResult>";
  return r;
}

void useFakeS3(Config& config, const FakeS3& server) {
  config.repo.type = "s3";
  config.s3.bucket = FakeS3::kBucket;
  config.s3.endpoint = server.endpoint();
  config.s3.region = "us-east-1";
  config.s3.uriStyle = "path";
  config.s3.accessKeyId = "AKIDEXAMPLE";
  config.s3.secretAccessKey = "secret";
  config.s3.retryMax = 0;
}

}  // namespace tidemark::test
