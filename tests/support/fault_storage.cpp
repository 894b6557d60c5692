// The fault-injecting storage wrapper.
#include "support/fault_storage.h"

#include <algorithm>

#include "common/base/error.h"

namespace tidemark::test {

namespace {

class FaultWrite final : public storage::Write {
 public:
  FaultWrite(FaultStorage& owner, std::unique_ptr<storage::Write> inner, std::string path)
      : owner_(owner), inner_(std::move(inner)), path_(std::move(path)) {}

  void write(io::ByteView data) override {
    int call = owner_.countWriteCall();
    if (call == owner_.plan().failWriteCall)
      owner_.inject(fmt::format("write #{} to '{}' failed", call, path_));
    inner_->write(data);
  }
  void close() override { inner_->close(); }
  bool commit() override {
    int call = owner_.countCommit();
    if (call == owner_.plan().failCommit)
      owner_.inject(fmt::format("commit #{} of '{}' failed", call, path_));
    bool published = inner_->commit();
    if (call == owner_.plan().loseCommitAck)
      owner_.inject(fmt::format("the reply to commit #{} of '{}' was lost", call, path_));
    return published;
  }
  std::uint64_t size() const override { return inner_->size(); }

 private:
  FaultStorage& owner_;
  std::unique_ptr<storage::Write> inner_;
  std::string path_;
};

// Passes the first `limit` bytes on; then throws (fail) or drops the rest (truncate).
class LimitSink final : public io::Sink {
 public:
  LimitSink(FaultStorage& owner, io::Sink& next, std::uint64_t limit, bool fail, std::string path)
      : owner_(owner), next_(next), limit_(limit), fail_(fail), path_(std::move(path)) {}
  void write(io::ByteView data) override {
    std::uint64_t room = limit_ - passed_;
    std::size_t n = std::size_t(std::min<std::uint64_t>(room, data.size()));
    if (n > 0) next_.write(data.subspan(0, n));
    passed_ += n;
    if (n < data.size() && fail_)
      owner_.inject(fmt::format("read of '{}' failed after {} bytes", path_, passed_));
  }
  void close() override { next_.close(); }

 private:
  FaultStorage& owner_;
  io::Sink& next_;
  std::uint64_t limit_, passed_ = 0;
  bool fail_;
  std::string path_;
};

}  // namespace

FaultStorage::FaultStorage(storage::Storage& inner, FaultPlan plan) : inner_(inner), plan_(plan) {}

void FaultStorage::inject(const std::string& what) {
  ++injected_;
  Error e(ErrorCode::Storage, "injected fault: " + what);
  e.setTransient(plan_.transient);
  throw e;
}

std::string FaultStorage::describe() const {
  return "faulty " + inner_.describe();
}

std::unique_ptr<storage::Write> FaultStorage::newWrite(const std::string& path,
                                                       storage::WriteOptions options) {
  int call = ++counts_.newWrites;
  if (call == plan_.failNewWrite)
    inject(fmt::format("creating write #{} of '{}' failed", call, path));
  return std::make_unique<FaultWrite>(*this, inner_.newWrite(path, options), path);
}

bool FaultStorage::read(const std::string& path, io::Sink& out, storage::ReadOptions options) {
  ++counts_.reads;
  if (plan_.failReads ||
      (!plan_.failReadsOf.empty() && path.find(plan_.failReadsOf) != std::string::npos))
    inject(fmt::format("read of '{}' failed", path));
  if (plan_.failReadAfter) {
    LimitSink limited(*this, out, *plan_.failReadAfter, true, path);
    return inner_.read(path, limited, options);
  }
  if (plan_.truncateReadAfter) {
    LimitSink limited(*this, out, *plan_.truncateReadAfter, false, path);
    return inner_.read(path, limited, options);
  }
  return inner_.read(path, out, options);
}

std::optional<storage::ObjectInfo> FaultStorage::info(const std::string& path) {
  if (plan_.failInfo) inject(fmt::format("info of '{}' failed", path));
  return inner_.info(path);
}

void FaultStorage::list(const std::string& dir,
                        const std::function<void(const storage::ListEntry&)>& fn) {
  if (plan_.failList) inject(fmt::format("list of '{}' failed", dir));
  inner_.list(dir, fn);
}

void FaultStorage::remove(const std::string& path) {
  if (plan_.failRemove) inject(fmt::format("remove of '{}' failed", path));
  inner_.remove(path);
}

std::unique_ptr<storage::Lock> FaultStorage::tryLock(const std::string& path,
                                                     const std::string& owner,
                                                     std::string& holder) {
  return inner_.tryLock(path, owner, holder);
}

}  // namespace tidemark::test
