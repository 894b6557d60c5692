// Unit tests of common/storage/s3/s3.h against a lying S3 server in memory
// (tests/support/fake_s3.h): what the driver does when a server or proxy does not behave as S3 says
// it should. The driver against a real server is tests/integration/s3_server_test.cpp.
#include "common/storage/s3/s3.h"

#include <doctest/doctest.h>

#include <random>

#include "common/base/error.h"
#include "support/check.h"
#include "support/fake_s3.h"

using namespace tidemark;
using test::Containing;
using test::FakeS3;
using test::thrownError;
using test::what;

namespace {

storage::S3Storage driver(const FakeS3& server) {
  return storage::S3Storage(storage::S3Options{.bucket = FakeS3::kBucket,
                                               .endpoint = server.endpoint(),
                                               .region = "us-east-1",
                                               .hostStyle = false,
                                               .credentials = {"AKIDEXAMPLE", "secret", ""},
                                               .retryMax = 3,
                                               .retryBaseDelay = std::chrono::milliseconds(1)});
}

std::string randomBytes(std::size_t size) {
  std::mt19937 random(7);
  std::string out(size, '\0');
  for (char& c : out)
    c = char(random());
  return out;
}

}  // namespace

TEST_CASE("a GET cut short resumes where it stopped, whatever the server answers the Range with") {
  FakeS3 server;
  const std::string body = randomBytes(200000);
  server.setObject("main/wal/x", body);
  auto s3 = driver(server);
  SUBCASE("206 with the range asked for: the rest is appended") {
    server.lie({.truncateGets = 1, .truncateAfter = 1000});
    io::MemorySink out;
    REQUIRE(s3.read("main/wal/x", out, {}));
    CHECK(std::string(out.text()) == body);
    CHECK(server.rangesAsked() == std::vector<std::string>{"bytes=1000-"});
  }
  SUBCASE(
      "200 and the whole object (the Range ignored): read from the start, each byte delivered "
      "once") {
    server.lie({.ignoreRange = true, .truncateGets = 1, .truncateAfter = 1000});
    io::MemorySink out;
    REQUIRE(s3.read("main/wal/x", out, {}));
    CHECK(out.data().size() == body.size());
    CHECK(std::string(out.text()) == body);
  }
  SUBCASE("a range read answered with 200 delivers exactly the range") {
    server.lie({.ignoreRange = true});
    io::MemorySink out;
    REQUIRE(s3.read("main/wal/x", out, {.offset = 5000, .length = 300}));
    CHECK(std::string(out.text()) == body.substr(5000, 300));
  }
  SUBCASE(
      "206 with another range than the one asked for: refused before a byte of it is delivered") {
    server.lie({.wrongContentRange = true, .truncateGets = 1, .truncateAfter = 1000});
    io::MemorySink out;
    Error e = thrownError([&] { s3.read("main/wal/x", out, {}); });
    CHECK(e.code() == ErrorCode::Storage);
    CHECK(what(e) ==
          Containing(
              "answered a request for bytes 1000- with 'Content-Range: bytes 1001-199999/200000'"));
    CHECK(out.data().size() == 1000);  // only what the first, honest answer carried
  }
}
