// libcurl wrapper for the S3 driver.
#include "common/storage/s3/http.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <exception>
#include <mutex>

#include "common/error.h"

namespace tidemark::storage::s3 {

namespace {

constexpr std::size_t kMaxErrorBody = 64 * 1024;
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
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.remove_suffix(1);
    t->response->headers[name] = std::string(value);
  }
  return size * count;
}

std::size_t onBody(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::size_t n = size * count;
  if (!t->statusKnown) {
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->response->status);
    t->statusKnown = true;
  }
  bool success = t->response->status >= 200 && t->response->status < 300;
  if (success && t->request->sink != nullptr) {
    try {
      t->request->sink->write({reinterpret_cast<const std::uint8_t*>(data), n});
      t->response->delivered += n;
    } catch (...) {
      t->failure = std::current_exception();
      return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
  } else if (success) {
    // A document the caller parses (a listing: ~250 bytes per key, up to 1000 keys per page).
    if (t->response->body.size() + n > kMaxDocument) {
      t->failure = std::make_exception_ptr(
          error(ErrorCode::Storage, "response to {} is larger than {} bytes", t->request->url, kMaxDocument));
      return 0;
    }
    t->response->body.append(data, n);
  } else if (t->response->body.size() < kMaxErrorBody) {
    // An error document: only its first part matters (Code, Message).
    t->response->body.append(data, std::min(n, kMaxErrorBody - t->response->body.size()));
  }
  return n;
}

std::size_t onUpload(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  io::ByteView body = t->request->body;
  std::size_t n = std::min(size * count, body.size() - t->uploaded);
  std::memcpy(buffer, body.data() + t->uploaded, n);
  t->uploaded += n;
  return n;
}

// libcurl rewinds the upload on a redirect or a retried connection.
int onSeek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (origin != SEEK_SET || offset < 0 || std::size_t(offset) > t->request->body.size()) return CURL_SEEKFUNC_FAIL;
  t->uploaded = std::size_t(offset);
  return CURL_SEEKFUNC_OK;
}

}  // namespace

std::string HttpResponse::header(const std::string& lowerName) const {
  auto it = headers.find(lowerName);
  return it == headers.end() ? std::string() : it->second;
}

HttpClient::HttpClient(HttpOptions options) : options_(std::move(options)) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  curl_ = curl_easy_init();
  if (curl_ == nullptr) throw Error(ErrorCode::Internal, "cannot create a libcurl handle");
}

HttpClient::~HttpClient() { curl_easy_cleanup(curl_); }

HttpResponse HttpClient::perform(const HttpRequest& request) {
  HttpResponse response;
  Transfer transfer{&request, &response, curl_};
  // Reset keeps live connections, the DNS cache and TLS sessions: only options are cleared.
  curl_easy_reset(curl_);
  curl_easy_setopt(curl_, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS, options_.connectTimeoutMs);
  curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_TIME, options_.stallTimeoutSeconds);
  curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, onHeader);
  curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, onBody);
  curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYPEER, options_.verifyTls ? 1L : 0L);
  curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYHOST, options_.verifyTls ? 2L : 0L);
  if (!options_.caFile.empty()) curl_easy_setopt(curl_, CURLOPT_CAINFO, options_.caFile.c_str());

  curl_slist* resolve = nullptr;
  for (const auto& entry : options_.resolve) resolve = curl_slist_append(resolve, entry.c_str());
  if (resolve != nullptr) curl_easy_setopt(curl_, CURLOPT_RESOLVE, resolve);

  curl_slist* headers = nullptr;
  for (const auto& h : request.headers) headers = curl_slist_append(headers, h.c_str());
  // No "Expect: 100-continue": it costs a round trip per upload and the body is in memory.
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);

  if (request.method == "HEAD") {
    curl_easy_setopt(curl_, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT" || request.method == "POST") {
    curl_easy_setopt(curl_, CURLOPT_UPLOAD, 1L);  // PUT with a read callback...
    if (request.method == "POST") curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, "POST");
    curl_easy_setopt(curl_, CURLOPT_READFUNCTION, onUpload);
    curl_easy_setopt(curl_, CURLOPT_READDATA, &transfer);
    curl_easy_setopt(curl_, CURLOPT_SEEKFUNCTION, onSeek);
    curl_easy_setopt(curl_, CURLOPT_SEEKDATA, &transfer);
    // ...always with a Content-Length: S3 refuses chunked uploads.
    curl_easy_setopt(curl_, CURLOPT_INFILESIZE_LARGE, curl_off_t(request.body.size()));
  } else if (request.method != "GET") {
    curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  char errorText[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, errorText);
  response.transport = curl_easy_perform(curl_);
  curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &response.status);
  curl_slist_free_all(headers);
  curl_slist_free_all(resolve);
  curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, nullptr);
  if (transfer.failure) std::rethrow_exception(transfer.failure);
  if (response.transport != CURLE_OK)
    response.transportError = *errorText ? errorText : curl_easy_strerror(response.transport);
  return response;
}

}  // namespace tidemark::storage::s3
