// doctest helpers for tidemark errors: catch the Error a call throws, and readable checks on it.
//
// Header-only and doctest-dependent: include it from tests/unit only.
#pragma once

#include <doctest/doctest.h>

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
