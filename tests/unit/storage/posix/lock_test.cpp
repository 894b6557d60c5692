// Unit tests of posix storage locks (PosixStorage::tryLock, flock) across processes: what the
// shared storage contract in memory_storage_test.cpp cannot show from one process.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "common/files/file.h"
#include "common/repo/layout.h"
#include "common/storage/posix/posix.h"
#include "support/segment.h"

using namespace tidemark;

namespace {

// A child process that takes a lock in its own PosixStorage, reports whether it got it, and then
// holds it until it is killed.
class LockHolder {
 public:
  LockHolder(const std::string& root, const std::string& path, const std::string& owner) {
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::close(ready[0]);
      char got = '0';
      std::unique_ptr<storage::Lock> lock;
      try {
        storage::PosixStorage s(root, {.sync = false});
        std::string holder;
        lock = s.tryLock(path, owner, holder);
        if (lock) got = '1';
      } catch (...) {
        got = 'E';
      }
      if (::write(ready[1], &got, 1) != 1) ::_exit(1);
      for (;;)
        ::pause();  // until SIGKILL; no destructor ever runs
    }
    ::close(ready[1]);
    char got = 0;
    ssize_t n;
    do {
      n = ::read(ready[0], &got, 1);
    } while (n < 0 && errno == EINTR);
    ::close(ready[0]);
    REQUIRE(n == 1);
    got_ = got == '1';
  }
  ~LockHolder() { kill(); }
  LockHolder(const LockHolder&) = delete;
  LockHolder& operator=(const LockHolder&) = delete;

  bool got() const { return got_; }
  // SIGKILL: the process cannot release anything itself; the kernel closes its descriptors.
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  bool got_ = false;
};

}  // namespace

TEST_CASE("a posix lock held by another process is refused, and freed when that process dies") {
  test::TempDir repoDir("tidemark-repo");
  storage::PosixStorage s(repoDir.path(), {.sync = false});
  const std::string path = repo::backupLockFile("main");
  const std::string childOwner =
      "tidemark-basebackup pid 1234 on db1, started 2026-11-22T10:15:00Z";
  std::string holder;

  SUBCASE("another process's lock is refused, naming the owner it wrote, until it is killed") {
    LockHolder child(repoDir.path(), path, childOwner);
    REQUIRE(child.got());
    CHECK(s.tryLock(path, "parent", holder) == nullptr);
    CHECK(holder == childOwner);
    child.kill();
    holder.clear();
    auto lock = s.tryLock(path, "parent", holder);
    CHECK(lock != nullptr);
    CHECK(holder.empty());
    CHECK(std::string(io::asText(test::readFile(repoDir / path))) == "parent");
  }
  SUBCASE("a lock this process holds is refused to another process") {
    auto lock = s.tryLock(path, "parent", holder);
    REQUIRE(lock != nullptr);
    LockHolder child(repoDir.path(), path, childOwner);
    CHECK_FALSE(child.got());
    // The child shares our lock's open file description (fork copies descriptors; O_CLOEXEC acts
    // on exec only): the flock stays until both have closed it.
    child.kill();
    lock.reset();
    LockHolder later(repoDir.path(), path, childOwner);
    CHECK(later.got());
  }
  SUBCASE("a process forked while the lock is held keeps it held after the lock is destroyed") {
    auto lock = s.tryLock(path, "parent", holder);
    REQUIRE(lock != nullptr);
    LockHolder child(repoDir.path(), path, childOwner);  // refused, but inherits our descriptor
    CHECK_FALSE(child.got());
    lock.reset();
    CHECK(s.tryLock(path, "parent again", holder) == nullptr);
    CHECK(holder == "another process");  // the owner line was cleared on release
    child.kill();
    CHECK(s.tryLock(path, "parent again", holder) != nullptr);
  }
  SUBCASE("the lock file stays, emptied, when its lock is released") {
    {
      auto lock = s.tryLock(path, "parent", holder);
      REQUIRE(lock != nullptr);
      CHECK(std::string(io::asText(test::readFile(repoDir / path))) == "parent");
    }
    CHECK(test::exists(repoDir / path));
    CHECK(test::readFile(repoDir / path).empty());
  }
  SUBCASE("a holder that has not written its owner line yet is 'another process'") {
    REQUIRE(s.tryLock(path, "create the file", holder) != nullptr);
    files::Fd fd(::open((repoDir / path).c_str(), O_RDWR | O_CLOEXEC));
    REQUIRE(fd);
    REQUIRE(::flock(fd.get(), LOCK_EX | LOCK_NB) == 0);
    CHECK(s.tryLock(path, "parent", holder) == nullptr);
    CHECK(holder == "another process");
  }
}
