// A tmpfs of a fixed size for the tests of a full disk (fault_space_test.cpp,
// tidemark_expire_test.cpp). Mounting needs root (CAP_SYS_ADMIN): see canMount().
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <pwd.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "common/files/file.h"
#include "process.h"

namespace tidemark::test {

constexpr std::uint64_t kMiB = 1u << 20;

// A tmpfs of a fixed size mounted on an existing directory, owned by the test user; unmounted when
// destroyed (lazily, if something still uses it), also when the test fails.
class Tmpfs {
 public:
  Tmpfs(std::string dir, std::uint64_t bytes, unsigned mode) : dir_(std::move(dir)) {
    uid_t uid = ::geteuid();
    gid_t gid = ::getegid();
    if (auto user = testUser()) {
      passwd* pw = ::getpwnam(user->c_str());
      if (pw == nullptr) throw std::runtime_error("no such user: " + *user);
      uid = pw->pw_uid;
      gid = pw->pw_gid;
    }
    std::string options = fmt::format("size={},mode={:o},uid={},gid={}", bytes, mode, uid, gid);
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0)
      throw std::runtime_error("cannot mount a tmpfs on " + dir_ + ": " + std::strerror(errno));
  }
  ~Tmpfs() {
    if (::umount2(dir_.c_str(), 0) != 0) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;

  const std::string& path() const { return dir_; }
  // Grows (or shrinks) the filesystem in place: "making room".
  void resize(std::uint64_t bytes) {
    std::string options = fmt::format("size={}", bytes);
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT | MS_NOSUID | MS_NODEV,
                options.c_str()) != 0)
      throw std::runtime_error("cannot resize the tmpfs on " + dir_ + ": " + std::strerror(errno));
  }
  std::uint64_t available() const {
    struct statvfs st {};
    if (::statvfs(dir_.c_str(), &st) != 0) throw std::runtime_error("statvfs " + dir_);
    return std::uint64_t(st.f_bavail) * st.f_frsize;
  }
  // Takes all the space but `leave` bytes with a file named `name` (allocated, not written).
  std::string fillLeaving(std::uint64_t leave, const std::string& name = "filler") {
    std::string file = dir_ + "/" + name;
    std::uint64_t free = available();
    REQUIRE(free > leave);
    files::Fd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    REQUIRE(fd);
    REQUIRE(::fallocate(fd.get(), 0, 0, off_t(free - leave)) == 0);
    return file;
  }

 private:
  std::string dir_;
};

}  // namespace tidemark::test
