// The doctest runner of the unit and integration tests.
//
// CTest learns the tests from --list-test-cases (doctest_discover_tests) and runs each one alone
// with --test-case=NAME. Three things keep that honest:
// - A test that cannot run here (one that needs root, run without it) is marked
//   `* doctest::skip(condition)`. doctest leaves skipped tests out of the listing: they are listed
//   anyway, and when run, say "[tidemark] skipped: NAME", which CTest reports as skipped
//   (tests/CMakeLists.txt, SKIP_REGULAR_EXPRESSION) instead of passed.
// - A --test-case run in which no test ran and none was skipped fails: a name CTest has but
//   doctest does not match would otherwise pass silently.
// - A test name with ';' (CTest splits names there, and runs the pieces) fails the listing.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

int ran = 0, skippedByDecorator = 0;

struct Honesty final : doctest::IReporter {
  explicit Honesty(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData& query) override {
    for (unsigned i = 0; query.data != nullptr && i < query.num_data; ++i) {
      std::string_view name = query.data[i]->m_name;
      if (name.find(';') != std::string_view::npos) {
        std::fprintf(stderr, "test name with ';' (CTest would split it): %s\n",
                     query.data[i]->m_name);
        std::exit(2);
      }
    }
  }
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData&) override { ++ran; }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData& test) override {
    if (!test.m_skip) return;  // filtered out, not skipped
    ++skippedByDecorator;
    std::printf("[tidemark] skipped: %s (it needs what this machine or user lacks)\n", test.m_name);
  }
};

REGISTER_LISTENER("honesty", 1, Honesty);

}  // namespace

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  bool filtered = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--list-test-cases" || arg == "-ltc") context.setOption("no-skip", true);
    if (arg.rfind("--test-case=", 0) == 0 || arg.rfind("-tc=", 0) == 0) filtered = true;
  }
  int status = context.run();
  if (status == 0 && filtered && ran == 0 && skippedByDecorator == 0 && !context.shouldExit()) {
    std::fprintf(stderr, "no test case matched the --test-case filter\n");
    return 1;
  }
  return status;
}
