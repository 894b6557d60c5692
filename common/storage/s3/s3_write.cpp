// The s3 driver's writes: one PutObject for small objects, multipart uploads for large ones.
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "common/base/error.h"
#include "common/io/hash.h"
#include "common/storage/s3/s3.h"
#include "common/storage/s3/xml.h"

namespace tidemark::storage {

namespace {

// Uploads parts on worker threads, each with its own connection; at most `concurrency` parts
// are queued or in flight, so memory stays within part-size x (concurrency + 1).
class PartUploader {
 public:
  PartUploader(const S3Storage& storage, std::string key, std::string uploadId)
      : storage_(storage), key_(std::move(key)), uploadId_(std::move(uploadId)) {}
  ~PartUploader() { stop(); }

  void submit(int number, io::Buffer part) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock,
                  [&] { return pending_ < storage_.options().uploadConcurrency || failure_; });
    rethrow();
    ++pending_;
    queue_.emplace_back(number, std::move(part));
    if (int(workers_.size()) < storage_.options().uploadConcurrency &&
        int(workers_.size()) < pending_)
      workers_.emplace_back([this] { work(); });
    changed_.notify_all();
  }

  // Waits for every submitted part; returns their ETags by part number.
  std::map<int, std::string> finish() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return pending_ == 0 || failure_; });
    rethrow();
    return etags_;
  }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      queue_.clear();
    }
    changed_.notify_all();
    for (auto& worker : workers_)
      worker.join();
    workers_.clear();
  }

 private:
  void rethrow() {
    if (failure_) std::rethrow_exception(failure_);
  }

  // Never lets an exception out of the thread (that would end the process): a failure is kept
  // for submit() and finish() to rethrow.
  void work() {
    std::unique_ptr<s3::HttpClient> client;
    try {
      client = std::make_unique<s3::HttpClient>(storage_.httpOptions());
    } catch (...) {
      std::lock_guard lock(mutex_);
      if (!failure_) failure_ = std::current_exception();
      changed_.notify_all();
      return;
    }
    for (;;) {
      std::pair<int, io::Buffer> job;
      {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      try {
        S3Storage::Request request{
            .operation = fmt::format("UploadPart {}", job.first),
            .method = "PUT",
            .key = key_,
            .query = {{"partNumber", std::to_string(job.first)}, {"uploadId", uploadId_}},
            .body = job.second};
        auto response = storage_.execute(request, *client);
        if (!response.ok()) storage_.fail(request, response);
        std::string etag = response.header("etag");
        if (etag.empty())
          throw error(ErrorCode::Storage, "S3 UploadPart {} of '{}' returned no ETag", job.first,
                      key_);
        std::lock_guard lock(mutex_);
        etags_[job.first] = etag;
        --pending_;
      } catch (...) {
        std::lock_guard lock(mutex_);
        if (!failure_) failure_ = std::current_exception();
      }
      changed_.notify_all();
    }
  }

  const S3Storage& storage_;
  std::string key_, uploadId_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::pair<int, io::Buffer>> queue_;
  std::vector<std::thread> workers_;
  std::map<int, std::string> etags_;
  int pending_ = 0;
  bool stopping_ = false;
  std::exception_ptr failure_;
};

// An object up to part-size plus this much is one PutObject: a WAL segment stored without
// compression is the segment plus the envelope's 68 bytes, and must not become a two-part upload.
constexpr std::uint64_t kSinglePutSlack = 1u << 20;

class S3Write final : public Write {
 public:
  S3Write(S3Storage& storage, s3::HttpClient& client, std::string path, WriteOptions options)
      : storage_(storage),
        client_(client),
        path_(std::move(path)),
        key_(storage.key(path_)),
        options_(options) {
    // One allocation for the largest single object: growing a vector copies what it holds each
    // time it doubles. Pages not written are never touched, so small objects cost nothing.
    buffer_.reserve(storage_.options().partSize + kSinglePutSlack);
  }

  ~S3Write() override {
    uploader_.reset();
    if (!uploadId_.empty() && !committed_) {
      try {
        abort();
      } catch (const std::exception& e) {
        spdlog::warn(
            "could not abort the multipart upload of '{}' (upload id {}): {}; a lifecycle rule for "
            "incomplete uploads reclaims it",
            key_, uploadId_, e.what());
      }
    }
  }

  void write(io::ByteView data) override {
    const std::uint64_t partSize = storage_.options().partSize;
    while (!data.empty()) {
      std::uint64_t limit = uploadId_.empty() ? partSize + kSinglePutSlack : partSize;
      if (buffer_.size() == limit) sendPart();
      limit = uploadId_.empty() ? partSize + kSinglePutSlack : partSize;
      std::size_t take = std::size_t(std::min<std::uint64_t>(data.size(), limit - buffer_.size()));
      io::ByteView piece = data.subspan(0, take);
      buffer_.insert(buffer_.end(), piece.begin(), piece.end());
      // While the object may still be one PutObject, hash as the bytes arrive (the PUT needs the
      // body's SHA-256 before it starts); parts are hashed by the upload workers instead.
      if (uploadId_.empty()) hash_.update(piece);
      data = data.subspan(take);
      size_ += take;
    }
  }

  void close() override {
    if (closed_) return;
    if (!uploadId_.empty()) {
      if (!buffer_.empty()) sendPart();
      etags_ = uploader_->finish();
      uploader_.reset();
    }
    closed_ = true;
  }

  bool commit() override {
    close();
    bool published = uploadId_.empty() ? putObject() : completeUpload();
    committed_ = published;
    return published;
  }

  std::uint64_t size() const override { return size_; }

 private:
  void sendPart() {
    if (uploadId_.empty()) {
      S3Storage::Request request{.operation = "CreateMultipartUpload",
                                 .method = "POST",
                                 .key = key_,
                                 .query = {{"uploads", ""}}};
      auto response = storage_.execute(request, client_);
      if (!response.ok()) storage_.fail(request, response);
      s3::xml::Document initiated =
          storage_.document(request, response, "InitiateMultipartUploadResult");
      uploadId_ = initiated.root().childText("UploadId").value_or("");
      if (uploadId_.empty())
        throw error(ErrorCode::Storage, "S3 CreateMultipartUpload of '{}' returned no UploadId",
                    key_);
      uploader_ = std::make_unique<PartUploader>(storage_, key_, uploadId_);
    }
    // The first part may hold up to kSinglePutSlack bytes more than a part: they start the next.
    const std::uint64_t partSize = storage_.options().partSize;
    io::Buffer part;
    part.swap(buffer_);
    buffer_.reserve(partSize);
    if (part.size() > partSize) {
      buffer_.assign(part.begin() + std::ptrdiff_t(partSize), part.end());
      part.resize(partSize);
    }
    uploader_->submit(++parts_, std::move(part));
  }

  bool putObject() {
    S3Storage::Request request{.operation = "PutObject",
                               .method = "PUT",
                               .key = key_,
                               .body = buffer_,
                               .payloadHash = io::toHex(hash_.finish())};
    if (options_.noReplace) request.headers.emplace_back("if-none-match", "*");
    auto response = storage_.execute(request, client_);
    // 412: the name exists. After a lost reply to our own successful PUT, a retry sees 412 too;
    // the caller then compares checksums and finds its own bytes.
    if (response.status == 412 && options_.noReplace) return false;
    if (!response.ok()) storage_.fail(request, response);
    return true;
  }

  bool completeUpload() {
    // CompleteMultipartUpload honours If-None-Match only on recent servers: check first as well
    // (a race with another writer completing in between remains possible there).
    if (options_.noReplace && storage_.info(path_).has_value()) {
      abort();
      return false;
    }
    std::string body = "<CompleteMultipartUpload>";
    for (const auto& [number, etag] : etags_)
      body += fmt::format("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>", number,
                          s3::xml::encode(etag));
    body += "</CompleteMultipartUpload>";
    S3Storage::Request request{.operation = "CompleteMultipartUpload",
                               .method = "POST",
                               .key = key_,
                               .query = {{"uploadId", uploadId_}},
                               .body = io::asBytes(body)};
    if (options_.noReplace) request.headers.emplace_back("if-none-match", "*");
    s3::HttpResponse response;
    for (int attempt = 0;; ++attempt) {
      response = storage_.execute(request, client_);
      // CompleteMultipartUpload may answer 200 and then an <Error> document, as the server
      // finds trouble after the status went out: retried like a 5xx when the error is the
      // server's.
      auto code = response.ok() ? s3::xml::errorCode(response.body) : std::nullopt;
      if (!code) break;
      bool retryable =
          *code == "InternalError" || *code == "SlowDown" || *code == "ServiceUnavailable";
      if (!retryable || attempt >= storage_.options().retryMax) storage_.fail(request, response);
      auto delay = storage_.options().retryBaseDelay * (1 << std::min(attempt, 10));
      spdlog::warn(
          "S3 CompleteMultipartUpload of '{}' answered 200 with error {}; retrying in {} ms", key_,
          *code, delay.count());
      std::this_thread::sleep_for(delay);
    }
    if (response.status == 412 && options_.noReplace) {
      abort();
      return false;
    }
    bool lostReply = response.status == 404 && s3::xml::errorCode(response.body) == "NoSuchUpload";
    if (!lostReply && !response.ok()) storage_.fail(request, response);
    uploadId_.clear();
    // The object must be exactly what was streamed. (After a retried request whose first reply was
    // lost, the upload is gone and the object, if complete, is ours.)
    auto stored = storage_.info(path_);
    if (!stored || stored->size != size_)
      throw error(ErrorCode::Storage,
                  "S3 object '{}' is {} bytes after CompleteMultipartUpload, {} were uploaded",
                  key_, stored ? stored->size : 0, size_);
    return true;
  }

  void abort() {
    S3Storage::Request request{.operation = "AbortMultipartUpload",
                               .method = "DELETE",
                               .key = key_,
                               .query = {{"uploadId", uploadId_}}};
    auto response = storage_.execute(request, client_);
    if (!response.ok() && response.status != 404) storage_.fail(request, response);
    uploadId_.clear();
  }

  S3Storage& storage_;
  s3::HttpClient& client_;
  std::string path_, key_;
  WriteOptions options_;
  io::Buffer buffer_;
  io::Sha256 hash_;  // of buffer_, while the object is a single PutObject
  std::uint64_t size_ = 0;
  std::string uploadId_;
  std::unique_ptr<PartUploader> uploader_;
  std::map<int, std::string> etags_;
  int parts_ = 0;
  bool closed_ = false, committed_ = false;
};

}  // namespace

std::unique_ptr<Write> S3Storage::newWrite(const std::string& path, WriteOptions options) {
  return std::make_unique<S3Write>(*this, *client_, path, options);
}

}  // namespace tidemark::storage
