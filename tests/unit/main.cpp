// The doctest runner of the unit and integration tests.
//
// A test that cannot run here (one that needs root, run without it) is marked
// `* doctest::skip(condition)`. doctest leaves skipped tests out of --list-test-cases, which is
// how CTest learns the tests (doctest_discover_tests): they are listed here anyway, so that CTest
// runs each one alone, doctest reports "1 skipped", and CTest shows it as skipped
// (tests/CMakeLists.txt, SKIP_REGULAR_EXPRESSION) instead of not at all.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <string_view>

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) == "--list-test-cases" || std::string_view(argv[i]) == "-ltc")
      context.setOption("no-skip", true);
  return context.run();
}
