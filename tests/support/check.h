// doctest helpers for tidemark errors: catch the Error a call throws, and readable checks on it.
//
// Header-only and doctest-dependent: include it from tests/unit only.
#pragma once

#include <doctest/doctest.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <ostream>
#include <string>

#include "common/base/error.h"
#include "common/io/compress.h"

namespace tidemark::test {

// Runs `fn` and returns the tidemark::Error it throws. Fails the test case (REQUIRE-level)
// when it throws nothing or throws something else.
template <typename Fn>
Error thrownError(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e;
  } catch (const std::exception& e) {
    FAIL("expected a tidemark::Error, got another exception: " << e.what());
  }
  FAIL("expected a tidemark::Error, but nothing was thrown");
  return Error(ErrorCode::Internal, "unreachable");
}

// The Error `fn` throws when an unprivileged user runs it. Root reads every file whatever its
// mode, so under root `fn` runs in a child process switched to 'nobody' (uid 65534), which
// reports the error's code and message back through a pipe; otherwise it runs here.
inline Error thrownUnprivileged(const std::function<void()>& fn) {
  if (::geteuid() != 0) return thrownError(fn);
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string report = "-1\nthe child could not become 'nobody'";
    if (::setgroups(0, nullptr) == 0 && ::setgid(65534) == 0 && ::setuid(65534) == 0) {
      try {
        fn();
        report = "-1\nnothing was thrown";
      } catch (const Error& e) {
        report = std::to_string(int(e.code())) + "\n" + e.what() + "\n" + e.hint();
      } catch (const std::exception& e) {
        report = std::string("-1\nanother exception: ") + e.what();
      }
    }
    for (std::size_t done = 0; done < report.size();) {
      ssize_t n = ::write(fds[1], report.data() + done, report.size() - done);
      if (n <= 0) break;
      done += std::size_t(n);
    }
    ::_exit(0);  // no destructors: the temporary directories belong to the parent
  }
  ::close(fds[1]);
  std::string report;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    REQUIRE(n > 0);
    report.append(buffer, std::size_t(n));
  }
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  auto first = report.find('\n'), second = report.find('\n', first + 1);
  REQUIRE(first != std::string::npos);
  int code = std::stoi(report.substr(0, first));
  if (code < 0) FAIL(report.substr(first + 1));
  return Error(ErrorCode(code), report.substr(first + 1, second - first - 1),
               second == std::string::npos ? "" : report.substr(second + 1));
}

// `CHECK(what(e) == Containing("x"))`: prints both texts when it fails.
struct Containing {
  explicit Containing(std::string part) : part(std::move(part)) {}
  std::string part;
};
inline bool operator==(const std::string& text, const Containing& c) {
  return text.find(c.part) != std::string::npos;
}
inline std::ostream& operator<<(std::ostream& out, const Containing& c) {
  return out << "<a text containing \"" << c.part << "\">";
}

inline std::string what(const Error& e) {
  return e.what();
}

}  // namespace tidemark::test

namespace doctest {
template <>
struct StringMaker<tidemark::ErrorCode> {
  static String convert(tidemark::ErrorCode code) {
    return String(std::string(tidemark::errorName(code)).c_str());
  }
};
template <>
struct StringMaker<tidemark::io::CompressType> {
  static String convert(tidemark::io::CompressType type) {
    return String(std::string(tidemark::io::compressName(type)).c_str());
  }
};
}  // namespace doctest
