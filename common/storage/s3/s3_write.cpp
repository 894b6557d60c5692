// The s3 driver's writes: one PutObject for small objects (streamed as they are written when
// their size is announced), multipart uploads for large ones.
#include <spdlog/spdlog.h>
#include <sys/mman.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
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

// The body of a streamed PutObject: the object's bytes as they are written, all of them kept
// until the request is over, because each attempt sends them from the first (the writer's source
// cannot be read twice). The last chunk waits for the writer's commit(): radosgw 16 completes,
// and so publishes, an aws-chunked object as soon as it holds x-amz-decoded-content-length bytes,
// without waiting for the empty final chunk (docs/decisions.md).
class StreamBuffer final : public S3Storage::BodyStream {
 public:
  explicit StreamBuffer(std::uint64_t size) : size_(size), bytes_(allocate(size)) {}

  std::uint64_t size() const override { return size_; }

  // The writer's side (the caller's thread). `data` fits: the writer checked.
  void append(io::ByteView data) {
    std::lock_guard lock(mutex_);
    std::memcpy(bytes_.get() + written_, data.data(), data.size());
    written_ += data.size();
    changed_.notify_all();
  }
  std::uint64_t written() const {
    std::lock_guard lock(mutex_);
    return written_;
  }
  // The object is committed: its last bytes may go.
  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }
  // The write is given up: the request ends without its last bytes.
  void abandon() {
    std::lock_guard lock(mutex_);
    abandoned_ = true;
    changed_.notify_all();
  }
  // Whether the request took the last bytes (after release()).
  bool lastTaken() const {
    std::lock_guard lock(mutex_);
    return lastTaken_;
  }

  // The request's side (the upload thread).
  std::optional<io::ByteView> get(std::uint64_t offset, std::size_t length, bool wait) override {
    const std::uint64_t end = offset + length;
    std::unique_lock lock(mutex_);
    auto ready = [&] { return abandoned_ || (written_ >= end && (end < size_ || released_)); };
    if (wait)
      changed_.wait(lock, ready);
    else if (!ready())
      return std::nullopt;
    if (abandoned_) throw Abandoned();
    if (end == size_) lastTaken_ = true;
    // Bytes below written_ never change again: read without the lock.
    return io::ByteView(bytes_.get() + offset, length);
  }

  // What get() throws once the write is given up: ends the request, without a retry.
  struct Abandoned : std::exception {
    const char* what() const noexcept override { return "the write was abandoned"; }
  };

 private:
  struct Free {
    void operator()(std::uint8_t* p) const { std::free(p); }
  };
  using Bytes = std::unique_ptr<std::uint8_t, Free>;

  // Untouched memory, in 2 MiB pages where the kernel has them (transparent huge pages in
  // "madvise" mode, Debian's default): the pages are faulted in as the bytes are written, and
  // 4 KiB pages cost one fault each (4096 for a WAL segment, a fifth of an S3 push's CPU time on
  // a virtual machine, docs/benchmarks.md).
  static Bytes allocate(std::uint64_t size) {
    constexpr std::size_t kHugePage = 2u << 20;
    std::size_t length = (std::size_t(size) + kHugePage - 1) / kHugePage * kHugePage;
    void* p = std::aligned_alloc(kHugePage, length);
    if (p == nullptr) throw std::bad_alloc();
    ::madvise(p, length, MADV_HUGEPAGE);  // a hint: without it, 4 KiB pages
    return Bytes(static_cast<std::uint8_t*>(p));
  }

  const std::uint64_t size_;
  const Bytes bytes_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::uint64_t written_ = 0;
  bool released_ = false, abandoned_ = false, lastTaken_ = false;
};

// A PutObject whose size is announced before its first byte, sent while it is written: the
// request runs on a thread of its own, with the storage's connection, from the first write(), so
// that reading and compressing overlap the upload. Signed in chunks (aws-chunked), so the server
// still checks every byte. Nothing is visible before commit(); destroyed without it, the request
// is abandoned mid-body and the server stores nothing.
class StreamedPut {
 public:
  StreamedPut(S3Storage& storage, std::string key, std::uint64_t size, bool noReplace)
      : storage_(storage), key_(std::move(key)), body_(size), noReplace_(noReplace) {}

  ~StreamedPut() {
    if (thread_.joinable()) body_.abandon();
    join();
  }

  void write(io::ByteView data) {
    if (finished_.load()) reportEarlyEnd();
    if (!thread_.joinable() && !finished_.load()) start();
    body_.append(data);
  }

  // Lets the last chunk go and waits for the answer: true once the object is stored, false when
  // the name exists and the write was no-replace.
  bool commit() {
    body_.release();
    join();
    if (failure_) std::rethrow_exception(failure_);
    if (streamingRefused()) return putWhole();
    // 412: the name exists. After a lost reply to our own successful PUT, a retry sees 412 too;
    // the caller then compares checksums and finds its own bytes.
    if (response_.status == 412 && noReplace_) return false;
    if (!response_.ok()) storage_.fail(request(), response_);
    if (!body_.lastTaken())
      throw error(ErrorCode::Storage,
                  "S3 PutObject of '{}' was answered HTTP {} before its last bytes were sent", key_,
                  response_.status);
    return true;
  }

 private:
  S3Storage::Request request(bool streamed = true) {
    S3Storage::Request request{.operation = "PutObject", .method = "PUT", .key = key_};
    if (streamed) request.stream = &body_;
    if (noReplace_) request.headers.emplace_back("if-none-match", "*");
    return request;
  }

  // Stores that do not take aws-chunked bodies answer 501 NotImplemented (OpenStack Swift's
  // s3api at OVH: "Transfering payloads in multiple chunks using aws-chunked is not supported").
  bool streamingRefused() const {
    return !failure_ &&
           (response_.status == 501 ||
            (response_.status == 400 && s3::xml::errorCode(response_.body) == "NotImplemented"));
  }

  // The object as one plain PutObject from the kept bytes, once they are all there.
  bool putWhole() {
    spdlog::info("{} does not take streamed uploads (HTTP {}): sending '{}' in one piece",
                 storage_.describe(), response_.status, key_);
    io::ByteView all = *body_.get(0, std::size_t(body_.size()), false);
    S3Storage::Request request = this->request(false);
    request.body = all;
    auto response = storage_.execute(request, storage_.client());
    if (response.status == 412 && noReplace_) return false;
    if (!response.ok()) storage_.fail(request, response);
    return true;
  }

  void start() {
    client_ = storage_.borrowClient();
    thread_ = std::thread([this] {
      // Never lets an exception out of the thread (that would end the process).
      try {
        response_ = storage_.execute(request(), *client_);
      } catch (const StreamBuffer::Abandoned&) {
      } catch (...) {
        failure_ = std::current_exception();
      }
      finished_.store(true);
    });
  }

  void join() {
    if (thread_.joinable()) thread_.join();
    if (client_) storage_.giveBack(std::move(client_));
  }

  // The request ended before the whole body was written: the server answered early, or the
  // retries ran out. A failure is thrown now rather than after the rest was produced; a 412
  // (no-replace) is for commit() to report, and a refused stream to send again in one piece.
  void reportEarlyEnd() {
    join();
    if (failure_) std::rethrow_exception(failure_);
    if (!response_.ok() && !(response_.status == 412 && noReplace_) && !streamingRefused())
      storage_.fail(request(), response_);
  }

  S3Storage& storage_;
  std::string key_;
  StreamBuffer body_;
  bool noReplace_;
  std::unique_ptr<s3::HttpClient> client_;  // borrowed from the storage while the request runs
  std::thread thread_;
  std::atomic<bool> finished_{false};
  s3::HttpResponse response_;  // set by the thread
  std::exception_ptr failure_;
};

class S3Write final : public Write {
 public:
  S3Write(S3Storage& storage, std::string path, WriteOptions options)
      : storage_(storage), path_(std::move(path)), key_(storage.key(path_)), options_(options) {
    const std::uint64_t singlePut = storage_.options().partSize + kSinglePutSlack;
    if (options_.size && *options_.size > 0 && *options_.size <= singlePut) {
      streamed_ = std::make_unique<StreamedPut>(storage_, key_, *options_.size, options_.noReplace);
      return;
    }
    // One allocation for the largest single object: growing a vector copies what it holds each
    // time it doubles. Pages not written are never touched, so small objects cost nothing.
    buffer_.reserve(singlePut);
  }

  ~S3Write() override {
    streamed_.reset();
    uploader_.reset();
    if (!uploadId_.empty() && !committed_) {
      try {
        abort();
      } catch (const std::exception& e) {
        spdlog::warn(
            "could not abort the multipart upload of '{}' (upload id {}): {}; tidemark expire "
            "aborts it once older than retention.sweep-age, as a lifecycle rule for incomplete "
            "uploads does",
            key_, uploadId_, e.what());
      }
    }
  }

  void write(io::ByteView data) override {
    if (options_.size && data.size() > *options_.size - size_)
      throw error(ErrorCode::Internal,
                  "S3 write of '{}' was given more than the {} bytes announced", key_,
                  *options_.size);
    if (streamed_) {
      streamed_->write(data);
      size_ += data.size();
      return;
    }
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
    if (options_.size && size_ != *options_.size)
      throw error(ErrorCode::Internal, "S3 write of '{}' closed after {} bytes; {} were announced",
                  key_, size_, *options_.size);
    if (!uploadId_.empty()) {
      if (!buffer_.empty()) sendPart();
      etags_ = uploader_->finish();
      uploader_.reset();
    }
    closed_ = true;
  }

  bool commit() override {
    close();
    bool published = streamed_           ? streamed_->commit()
                     : uploadId_.empty() ? putObject()
                                         : completeUpload();
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
      auto response = storage_.execute(request, storage_.client());
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
    auto response = storage_.execute(request, storage_.client());
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
      response = storage_.execute(request, storage_.client());
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
                               .query = {{"uploadId", uploadId_}},
                               .cleanup = true};
    auto response = storage_.execute(request, storage_.client());
    if (!response.ok() && response.status != 404) storage_.fail(request, response);
    uploadId_.clear();
  }

  S3Storage& storage_;
  std::string path_, key_;
  WriteOptions options_;
  std::unique_ptr<StreamedPut> streamed_;  // when the size is announced and fits one PutObject
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
  return std::make_unique<S3Write>(*this, path, options);
}

}  // namespace tidemark::storage
