// Storage helpers and the driver factory.
#include "common/storage/storage.h"

#include "common/config/config.h"
#include "common/error.h"
#include "common/storage/posix/posix.h"
#include "common/storage/s3/s3.h"

namespace tidemark::storage {

std::unique_ptr<Storage> openStorage(const Config& config) {
  if (config.repo.type == "posix") return std::make_unique<PosixStorage>(config.repo.path);
  if (config.repo.type == "s3") {
    std::string prefix = config.repo.path;
    while (!prefix.empty() && prefix.front() == '/') prefix.erase(0, 1);
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    const auto& s3 = config.s3;
    return std::make_unique<S3Storage>(S3Options{
        .bucket = s3.bucket,
        .endpoint = s3.endpoint,
        .region = s3.region,
        .hostStyle = s3.uriStyle == "host",
        .prefix = prefix,
        .credentials = {s3.accessKeyId, s3.secretAccessKey, s3.sessionToken},
        .caFile = s3.caFile,
        .verifyTls = s3.verifyTls,
        .partSize = s3.partSize,
        .uploadConcurrency = s3.uploadConcurrency,
        .retryMax = s3.retryMax,
        .retryTime = std::chrono::seconds(s3.retryTime),
        .stallTimeoutSeconds = s3.timeout,
    });
  }
  throw Error(ErrorCode::Config, fmt::format("repo.type '{}' is not supported", config.repo.type),
              "set repo.type to 'posix' or 's3'");
}

std::optional<std::string> readSmall(Storage& storage, const std::string& path, std::size_t limit) {
  io::MemorySink sink(limit);
  if (!storage.read(path, sink)) return std::nullopt;
  return std::string(sink.text());
}

void checkPath(const std::string& path) {
  bool bad = path.empty() || path.front() == '/' || path.back() == '/';
  for (std::size_t start = 0; !bad && start <= path.size();) {
    std::size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view part(path.data() + start, end - start);
    bad = part.empty() || part == "." || part == "..";
    start = end + 1;
  }
  if (bad) throw error(ErrorCode::Internal, "invalid repository path '{}'", path);
}

std::string joinPath(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + "/" + b;
}

}  // namespace tidemark::storage
