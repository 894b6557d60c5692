// libcurl wrapper for the S3 driver.
#include "common/storage/s3/http.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <ctime>
#include <exception>

#include "common/base/error.h"
#include "common/base/library.h"
#include "common/base/text.h"

// curl.h wraps these two in function-like macros that only count their arguments; as members of
// CurlApi they are called through pointers, where such a macro could only get in the way.
#undef curl_easy_setopt
#undef curl_easy_getinfo

namespace tidemark::storage::s3 {

namespace {

// libcurl is loaded on first use rather than linked: linked, it pulls some thirty shared
// libraries (GnuTLS, Kerberos, LDAP, ...) into every tidemark process, about 7 ms and 5 MiB per
// archive-push even with a posix repository (docs/benchmarks.md). Only processes that talk to S3
// load it. libcurl.so.4 is the OpenSSL build's stable soname (Debian: libcurl4).
#define TIDEMARK_CURL_FUNCTIONS(X) \
  X(curl_easy_cleanup)             \
  X(curl_easy_getinfo)             \
  X(curl_easy_init)                \
  X(curl_easy_perform)             \
  X(curl_easy_reset)               \
  X(curl_easy_setopt)              \
  X(curl_easy_strerror)            \
  X(curl_global_init)              \
  X(curl_slist_append)             \
  X(curl_slist_free_all)
struct CurlApi {
  TIDEMARK_CURL_FUNCTIONS(TIDEMARK_LIBRARY_MEMBER)
};

constexpr RuntimeLibrary kLibCurl{.soname = "libcurl.so.4",
                                  .what = "libcurl for the s3 repository",
                                  .install = "install libcurl (Debian: apt-get install libcurl4)",
                                  .newer = "install libcurl 7.62 or newer"};

const CurlApi& curl() {
  static const CurlApi api = [] {
    CurlApi loaded = TIDEMARK_LOAD_LIBRARY(CurlApi, TIDEMARK_CURL_FUNCTIONS, kLibCurl);
    loaded.curl_global_init(CURL_GLOBAL_DEFAULT);
    return loaded;
  }();
  return api;
}

constexpr std::size_t kMaxErrorBody = 64 * 1024;
// What libcurl asks the read callback for at a time, and sends per write to the socket (its
// default is 64 KiB).
constexpr long kUploadBuffer = 256 * 1024;
constexpr std::size_t kMaxDocument = 64u << 20;

struct Transfer {
  const HttpRequest* request;
  HttpResponse* response;
  CURL* curl;
  std::size_t uploaded = 0;
  std::exception_ptr failure;
  bool statusKnown = false;
};

std::size_t onHeader(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) {
    t->response->headers.clear();  // a new response (after 100 Continue or a redirect)
    t->statusKnown = false;
    return size * count;
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return char(std::tolower(c)); });
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
      value.remove_suffix(1);
    t->response->headers[name] = std::string(value);
  }
  return size * count;
}

// "bytes FIRST-LAST/TOTAL" (TOTAL may be '*'); nullopt for anything else.
std::optional<std::pair<std::uint64_t, std::uint64_t>> parseContentRange(const std::string& value) {
  std::string_view v = value;
  if (v.rfind("bytes ", 0) != 0) return std::nullopt;
  v.remove_prefix(6);
  auto dash = v.find('-'), slash = v.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash)
    return std::nullopt;
  auto first = parseDecimal(v.substr(0, dash)),
       last = parseDecimal(v.substr(dash + 1, slash - dash - 1));
  if (!first || !last || *last < *first) return std::nullopt;
  return std::make_pair(*first, *last);
}

// Where the body's bytes go in the range asked for, decided once the status is known: throws
// when a 206 answers another range than the one asked for.
void checkRange(Transfer& t) {
  const auto& range = t.request->range;
  if (!range || t.response->status != 206) return;
  std::string header = t.response->header("content-range");
  auto answered = parseContentRange(header);
  if (!answered || answered->first != range->first ||
      (range->last && answered->second != *range->last))
    throw error(ErrorCode::Storage,
                "{} answered a request for bytes {}-{} with 'Content-Range: {}': refusing bytes of "
                "another range",
                t.request->url, range->first, range->last ? std::to_string(*range->last) : "",
                header);
}

// Delivers a 2xx body's bytes to the sink: all of them, or with a range answered by a 200, only
// those inside it.
void deliver(Transfer& t, const char* data, std::size_t n) {
  std::uint64_t offset = t.response->received;  // of `data` in the body
  t.response->received += n;
  io::ByteView bytes(reinterpret_cast<const std::uint8_t*>(data), n);
  const auto& range = t.request->range;
  if (range && t.response->status == 200) {
    std::uint64_t begin = std::max(offset, range->first);
    std::uint64_t end = std::min(offset + n, range->last ? *range->last + 1 : offset + n);
    if (begin >= end) return;
    bytes = bytes.subspan(begin - offset, end - begin);
  }
  t.request->sink->write(bytes);
  t.response->delivered += bytes.size();
}

// libcurl calls it about once a second, and on every piece sent or received: non-zero ends the
// transfer.
int onProgress(void* abandon, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(abandon)->load() ? 1 : 0;
}

std::size_t onBody(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::size_t n = size * count;
  bool success = false;
  try {
    if (!t->statusKnown) {
      curl().curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->response->status);
      t->statusKnown = true;
      if (t->response->ok()) checkRange(*t);
    }
    success = t->response->ok();
    if (success && t->request->sink != nullptr) {
      deliver(*t, data, n);
      return n;
    }
  } catch (...) {
    t->failure = std::current_exception();
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  if (success) {
    // A document the caller parses (a listing: ~250 bytes per key, up to 1000 keys per page).
    if (t->response->body.size() + n > kMaxDocument) {
      t->failure = std::make_exception_ptr(error(ErrorCode::Storage,
                                                 "response to {} is larger than {} bytes",
                                                 t->request->url, kMaxDocument));
      return 0;
    }
    t->response->body.append(data, n);
    t->response->received += n;
  } else if (t->response->body.size() < kMaxErrorBody) {
    // An error document: only its first part matters (Code, Message).
    t->response->body.append(data, std::min(n, kMaxErrorBody - t->response->body.size()));
  }
  return n;
}

std::size_t onUpload(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (t->request->source != nullptr) {
    try {
      return t->request->source->read(reinterpret_cast<std::uint8_t*>(buffer), size * count);
    } catch (...) {
      t->failure = std::current_exception();
      return CURL_READFUNC_ABORT;
    }
  }
  io::ByteView body = t->request->body;
  std::size_t n = std::min(size * count, body.size() - t->uploaded);
  std::memcpy(buffer, body.data() + t->uploaded, n);
  t->uploaded += n;
  return n;
}

// libcurl rewinds the upload on a redirect or a retried connection.
int onSeek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (t->request->source != nullptr) {
    if (origin != SEEK_SET || offset != 0) return CURL_SEEKFUNC_CANTSEEK;
    try {
      t->request->source->rewind();
    } catch (...) {
      t->failure = std::current_exception();
      return CURL_SEEKFUNC_FAIL;
    }
    return CURL_SEEKFUNC_OK;
  }
  if (origin != SEEK_SET || offset < 0 || std::size_t(offset) > t->request->body.size())
    return CURL_SEEKFUNC_FAIL;
  t->uploaded = std::size_t(offset);
  return CURL_SEEKFUNC_OK;
}

}  // namespace

std::optional<std::int64_t> parseHttpDate(std::string_view text) {
  std::string copy(text);
  std::tm tm{};
  const char* end = ::strptime(copy.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return std::int64_t(::timegm(&tm));
}

std::string HttpResponse::header(const std::string& lowerName) const {
  auto it = headers.find(lowerName);
  return it == headers.end() ? std::string() : it->second;
}

HttpClient::HttpClient(HttpOptions options) : options_(std::move(options)) {
  curl_ = curl().curl_easy_init();
  if (curl_ == nullptr) throw Error(ErrorCode::Internal, "cannot create a libcurl handle");
}

HttpClient::~HttpClient() {
  curl().curl_easy_cleanup(curl_);
}

HttpResponse HttpClient::perform(const HttpRequest& request) {
  const CurlApi& c = curl();
  HttpResponse response;
  Transfer transfer{&request, &response, curl_};
  // Reset keeps live connections, the DNS cache and TLS sessions: only options are cleared.
  c.curl_easy_reset(curl_);
  c.curl_easy_setopt(curl_, CURLOPT_URL, request.url.c_str());
  c.curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
  c.curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS, options_.connectTimeoutMs);
  // A download below 1 KiB/s for the whole stall time is stalled too: a server or middlebox that
  // trickles a byte now and then would otherwise hold it (a restore_command) for hours. Other
  // requests only need a byte a second: a server that completes a multipart upload may keep the
  // connection open with a few blanks while it works, for minutes.
  c.curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_LIMIT,
                     request.method == "GET" ? kStalledGetBelowBytesPerSecond : 1L);
  c.curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_TIME, options_.stallTimeoutSeconds);
  if (options_.abandon != nullptr) {
    c.curl_easy_setopt(curl_, CURLOPT_NOPROGRESS, 0L);
    c.curl_easy_setopt(curl_, CURLOPT_XFERINFOFUNCTION, onProgress);
    c.curl_easy_setopt(curl_, CURLOPT_XFERINFODATA,
                       const_cast<std::atomic<bool>*>(options_.abandon));
  }
  c.curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, onHeader);
  c.curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &transfer);
  c.curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, onBody);
  c.curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &transfer);
  c.curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYPEER, options_.verifyTls ? 1L : 0L);
  c.curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYHOST, options_.verifyTls ? 2L : 0L);
  if (!options_.caFile.empty()) c.curl_easy_setopt(curl_, CURLOPT_CAINFO, options_.caFile.c_str());

  curl_slist* resolve = nullptr;
  for (const auto& entry : options_.resolve)
    resolve = c.curl_slist_append(resolve, entry.c_str());
  if (resolve != nullptr) c.curl_easy_setopt(curl_, CURLOPT_RESOLVE, resolve);

  curl_slist* headers = nullptr;
  for (const auto& h : request.headers)
    headers = c.curl_slist_append(headers, h.c_str());
  // No "Expect: 100-continue": it costs a round trip per upload.
  headers = c.curl_slist_append(headers, "Expect:");
  c.curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);

  if (request.method == "HEAD") {
    c.curl_easy_setopt(curl_, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT" || request.method == "POST") {
    c.curl_easy_setopt(curl_, CURLOPT_UPLOAD, 1L);  // PUT with a read callback...
    if (request.method == "POST") c.curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, "POST");
    c.curl_easy_setopt(curl_, CURLOPT_READFUNCTION, onUpload);
    c.curl_easy_setopt(curl_, CURLOPT_READDATA, &transfer);
    c.curl_easy_setopt(curl_, CURLOPT_SEEKFUNCTION, onSeek);
    c.curl_easy_setopt(curl_, CURLOPT_SEEKDATA, &transfer);
    // ...always with a Content-Length: S3 refuses chunked uploads.
    std::uint64_t length = request.source ? request.source->size() : request.body.size();
    c.curl_easy_setopt(curl_, CURLOPT_INFILESIZE_LARGE, curl_off_t(length));
    c.curl_easy_setopt(curl_, CURLOPT_UPLOAD_BUFFERSIZE, kUploadBuffer);
  } else if (request.method != "GET") {
    c.curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  char errorText[CURL_ERROR_SIZE] = "";
  c.curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, errorText);
  response.transport = c.curl_easy_perform(curl_);
  c.curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &response.status);
  c.curl_slist_free_all(headers);
  c.curl_slist_free_all(resolve);
  c.curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, nullptr);
  if (transfer.failure) std::rethrow_exception(transfer.failure);
  if (response.transport != CURLE_OK)
    response.transportError = *errorText ? errorText : c.curl_easy_strerror(response.transport);
  return response;
}

}  // namespace tidemark::storage::s3
