// Unit tests of common/base/library.h: loading a library's functions at run time, and what the
// operator is told when the library is missing or too old.
#include "common/base/library.h"

#include <doctest/doctest.h>

#include <cstring>

#include "support/check.h"

using namespace tidemark;

// Declared only: a library older than tidemark expects lacks a function its header declares.
extern "C" int tidemark_test_function_no_library_has(int);

namespace {

#define TIDEMARK_TEST_LIBC_FUNCTIONS(X) \
  X(strlen)                             \
  X(strcmp)
struct LibcApi {
  TIDEMARK_TEST_LIBC_FUNCTIONS(TIDEMARK_LIBRARY_MEMBER)
};

#define TIDEMARK_TEST_TOO_OLD_FUNCTIONS(X) \
  X(strlen)                                \
  X(tidemark_test_function_no_library_has)
struct TooOldApi {
  TIDEMARK_TEST_TOO_OLD_FUNCTIONS(TIDEMARK_LIBRARY_MEMBER)
};

// As OpenSSL 3's header names EVP_MD_size for EVP_MD_get_size.
#define tidemark_test_old_name_of_strlen strlen
#define TIDEMARK_TEST_RENAMED_FUNCTIONS(X) X(tidemark_test_old_name_of_strlen)
struct RenamedApi {
  TIDEMARK_TEST_RENAMED_FUNCTIONS(TIDEMARK_LIBRARY_MEMBER)
};

constexpr RuntimeLibrary kLibc{.soname = "libc.so.6",
                               .what = "the C library",
                               .install = "install libc6",
                               .newer = "install a newer libc6"};

}  // namespace

TEST_CASE("TIDEMARK_LOAD_LIBRARY resolves every function of its list, typed as declared") {
  const LibcApi api = TIDEMARK_LOAD_LIBRARY(LibcApi, TIDEMARK_TEST_LIBC_FUNCTIONS, kLibc);
  CHECK(api.strlen("tidemark") == 8);
  CHECK(api.strcmp("a", "a") == 0);
}

TEST_CASE("a function the header renames by a macro is looked up by the name it stands for") {
  const RenamedApi api = TIDEMARK_LOAD_LIBRARY(RenamedApi, TIDEMARK_TEST_RENAMED_FUNCTIONS, kLibc);
  CHECK(api.strlen("tide") == 4);
}

TEST_CASE("a library that cannot be loaded is named, with the package to install") {
  const RuntimeLibrary missing{
      .soname = "libtidemark-no-such-library.so.1",
      .what = "libnothing (a test)",
      .install = "install libnothing (Debian: apt-get install libnothing1)",
      .newer = "install libnothing 2 or newer"};
  const Error e = test::thrownError(
      [&] { (void)TIDEMARK_LOAD_LIBRARY(LibcApi, TIDEMARK_TEST_LIBC_FUNCTIONS, missing); });
  CHECK(e.code() == ErrorCode::Unsupported);
  CHECK(std::string(e.what()).rfind("cannot load libnothing (a test): ", 0) == 0);
  CHECK(std::string(e.what()).find("libtidemark-no-such-library.so.1") != std::string::npos);
  CHECK(e.hint() == "install libnothing (Debian: apt-get install libnothing1)");
}

TEST_CASE("a library that lacks a function of the list is too old: the function and the fix") {
  const Error e = test::thrownError(
      [&] { (void)TIDEMARK_LOAD_LIBRARY(TooOldApi, TIDEMARK_TEST_TOO_OLD_FUNCTIONS, kLibc); });
  CHECK(e.code() == ErrorCode::Unsupported);
  CHECK(std::string(e.what()) ==
        "libc.so.6 has no 'tidemark_test_function_no_library_has': it is too old");
  CHECK(e.hint() == "install a newer libc6");
}
