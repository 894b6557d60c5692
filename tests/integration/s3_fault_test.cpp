// archive-push and archive-get against an S3 server behind a fault-injecting proxy: transient
// faults are retried and succeed; persistent ones fail cleanly, never with a false success, never
// with a file at %p, and never leaving a multipart upload behind.
#include <doctest/doctest.h>

#include <filesystem>

#include "cluster.h"
#include "common/repo/object.h"
#include "common/storage/s3/s3.h"
#include "common/storage/s3/sigv4.h"
#include "fault_proxy.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace tidemark::test {

namespace {

// A workspace whose repository is the S3 test bucket reached through `proxy`, with short
// retry budgets so persistent faults fail in seconds.
struct FaultyS3 {
  FaultProxy proxy;
  Workspace ws;
  Workspace direct;  // the same repository without the proxy, to check what the server holds

  static std::pair<std::string, int> upstream() {
    const std::string& endpoint = s3Server().endpoint;  // http://127.0.0.1:PORT
    auto colon = endpoint.rfind(':');
    return {endpoint.substr(7, colon - 7), std::stoi(endpoint.substr(colon + 1))};
  }

  explicit FaultyS3(const std::string& extraToml = "")
      : proxy(upstream().first, upstream().second),
        ws(Backend::S3, "[s3]\nendpoint = \"" + proxy.endpoint() +
                            "\"\nretry-max = 3\nretry-time = 30\ntimeout = 2\n" + extraToml),
        direct(Backend::S3, "[repo]\npath = \"" + prefix() + "\"\n") {
    direct.createStanza();
  }

  // The key prefix of `ws` (each workspace makes its own; `direct` reuses it).
  std::string prefix() const {
    std::string toml = ws.repoToml();
    auto start = toml.find("path = \"") + 8;
    return toml.substr(start, toml.find('"', start) - start);
  }

  int push(const std::string& file, const std::string& log = "push.log") {
    return run({ws.push(), "--config", ws.config(), file}, {.stderrPath = ws.path(log)});
  }
  int get(const std::string& name, const std::string& dest, const std::string& cwd) {
    return run({ws.get(), "--config", ws.config(), name, dest},
               {.cwd = cwd, .stderrPath = ws.path("get.log")});
  }
  // Multipart uploads still open under this workspace's prefix, seen directly on the server.
  std::size_t pendingUploads() {
    auto storage = direct.storage();
    auto uploads = dynamic_cast<storage::S3Storage&>(*storage).pendingUploads();
    return uploads.size();
  }
};

std::size_t entriesIn(const std::string& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir))
    ++n;
  return n;
}

}  // namespace

TEST_CASE(
    "archive-push over a faulty S3 connection succeeds after transient faults and never falsely") {
  SUBCASE("503s on the upload are retried") {
    FaultyS3 s3;
    std::string file = writeSegment(s3.ws.makeDir("source"), {.segmentNumber = 1});
    s3.proxy.failNext(2, 503, "PUT ");
    CHECK(s3.push(file) == 0);
    CHECK(s3.proxy.faultsPending() == 0);
    CHECK(repo::verifyObject(*s3.direct.storage(),
                             Workspace::walObject(segmentName({.segmentNumber = 1}))));
  }
  SUBCASE("a reply lost after the object was stored: the retry finds its own bytes") {
    FaultyS3 s3;
    std::string file = writeSegment(s3.ws.makeDir("source"), {.segmentNumber = 2});
    s3.proxy.resetResponseNext(1, 0, "PUT ");
    CHECK(s3.push(file) == 0);
    CHECK(s3.proxy.faultsPending() == 0);
    CHECK(repo::verifyObject(*s3.direct.storage(),
                             Workspace::walObject(segmentName({.segmentNumber = 2}))));
  }
  SUBCASE("uploads that keep failing exit non-zero and store nothing") {
    FaultyS3 s3;
    std::string file = writeSegment(s3.ws.makeDir("source"), {.segmentNumber = 3});
    s3.proxy.failNext(100, 503, "PUT ");
    int status = s3.push(file);
    CHECK(status >= 1);
    CHECK(status <= 125);
    CHECK_FALSE(s3.direct.hasObject(Workspace::walObject(segmentName({.segmentNumber = 3}))));
  }
  SUBCASE("a multipart upload whose part keeps failing is aborted: no object, no upload left") {
    FaultyS3 s3("[compress]\ntype = \"none\"\n[s3]\npart-size = \"5MiB\"\n");
    std::string file = writeSegment(s3.ws.makeDir("source"), {.segmentNumber = 4});
    s3.proxy.resetUploadNext(100, 1000, "partNumber=2&");
    int status = s3.push(file);
    CHECK(status >= 1);
    CHECK(status <= 125);
    CHECK_FALSE(s3.direct.hasObject(Workspace::walObject(segmentName({.segmentNumber = 4}))));
    CHECK(s3.pendingUploads() == 0);
  }
  SUBCASE("a multipart upload survives a reset part and a failed completion") {
    FaultyS3 s3("[compress]\ntype = \"none\"\n[s3]\npart-size = \"5MiB\"\n");
    std::string file = writeSegment(s3.ws.makeDir("source"), {.segmentNumber = 5});
    s3.proxy.resetUploadNext(1, 1000, "partNumber=3&");
    s3.proxy.failNext(1, 500, "?uploadId=");  // CompleteMultipartUpload
    CHECK(s3.push(file) == 0);
    auto summary = repo::verifyObject(*s3.direct.storage(),
                                      Workspace::walObject(segmentName({.segmentNumber = 5})));
    REQUIRE(summary);
    CHECK(summary->plainSize == 16u << 20);
    CHECK(s3.pendingUploads() == 0);
  }
}

TEST_CASE("a proxy that drops If-None-Match cannot make archive-push overwrite WAL") {
  // SigV4 signs every header tidemark sends: a request altered on the way is refused by the
  // server (403), so the write fails instead of replacing the archived segment. (A server that
  // ignores If-None-Match itself is refused by stanza-create's probe: unit-tested with a lying
  // in-memory server, tests/unit/storage/s3.)
  FaultyS3 s3;
  SegmentSpec spec{.segmentNumber = 4};
  std::string source = s3.ws.makeDir("source");
  std::string file = writeSegment(source, spec);
  REQUIRE(s3.push(file) == 0);
  const std::string object = Workspace::walObject(segmentName(spec));
  io::Buffer stored = s3.direct.readObject(object);
  SegmentSpec other = spec;
  other.seed = 2;
  writeFile(file, io::ByteView(makeSegment(other)));
  s3.proxy.stripHeaderNext(1000, "if-none-match", "PUT ");
  int status = s3.push(file);
  CHECK(status >= 1);
  CHECK(status <= 125);
  CHECK(s3.direct.readObject(object) == stored);
  CHECK(readText(s3.ws.path("push.log")).find("403") != std::string::npos);
}

TEST_CASE(
    "an uncompressed push, streamed as it is read, is sent again when damaged or cut, never "
    "stored damaged") {
  // Without compression the object's size is known before the first byte (the segment plus 68
  // bytes): it goes out in signed chunks (aws-chunked) while the file is read.
  FaultyS3 s3("[compress]\ntype = \"none\"\n");
  SegmentSpec spec{.segmentNumber = 21, .randomFraction = 0.9};
  const std::string object = Workspace::walObject(segmentName(spec));
  std::string file = writeSegment(s3.ws.makeDir("source"), spec);
  // The body on the wire: 16 chunks of 1 MiB, one of 68 bytes, the empty final chunk (86 bytes).
  const std::uint64_t wire = storage::s3::chunkedLength((16u << 20) + 68, storage::kS3StreamChunk);
  auto stored = [&] {
    auto summary = repo::verifyObject(*s3.direct.storage(), object);
    return summary && summary->plainSize == (16u << 20) &&
           s3.direct.readObject(object).size() == (16u << 20) + 68;
  };
  auto log = [&] { return readText(s3.ws.path("push.log")); };

  SUBCASE("a bit flipped in a chunk: the server refuses its signature; sent again, stored whole") {
    s3.proxy.corruptUploadNext(1, 5u << 20, "PUT ");
    CHECK(s3.push(file) == 0);
    CHECK(s3.proxy.faultsPending() == 0);
    CHECK(stored());
    INFO(log());
    CHECK(log().find("retrying") != std::string::npos);
  }
  SUBCASE("a bit flipped in the last chunk: XAmzContentSHA256Mismatch; sent again, stored whole") {
    s3.proxy.corruptUploadNext(1, wire - 100, "PUT ");  // inside the 68-byte chunk
    CHECK(s3.push(file) == 0);
    CHECK(stored());
    INFO(log());
    CHECK(log().find("XAmzContentSHA256Mismatch; retrying") != std::string::npos);
  }
  SUBCASE("damaged on every attempt: the push fails loudly and nothing is stored") {
    s3.proxy.corruptUploadNext(1000, 5u << 20, "PUT ");
    int status = s3.push(file);
    CHECK(status >= 1);
    CHECK(status <= 125);
    CHECK_FALSE(s3.direct.hasObject(object));
    INFO(log());
    CHECK(log().find("was altered on the way; nothing was stored") != std::string::npos);
  }
  SUBCASE("the connection cut mid-body: sent again from the bytes kept, stored whole") {
    s3.proxy.resetUploadNext(1, 8u << 20, "PUT ");
    CHECK(s3.push(file) == 0);
    CHECK(s3.proxy.faultsPending() == 0);
    CHECK(stored());
  }
  SUBCASE("the reply lost after the object was stored: the retry finds its own bytes") {
    s3.proxy.resetResponseNext(1, 0, "PUT ");
    CHECK(s3.push(file) == 0);
    CHECK(s3.proxy.faultsPending() == 0);
    CHECK(stored());
  }
  SUBCASE("the server answering 503 to the end of the body: sent again") {
    s3.proxy.failNext(2, 503, "PUT ");
    CHECK(s3.push(file) == 0);
    CHECK(stored());
  }
  SUBCASE("a streamed push never replaces an archived segment") {
    REQUIRE(s3.push(file) == 0);
    io::Buffer first = s3.direct.readObject(object);
    SegmentSpec other = spec;
    other.seed = 2;
    writeFile(file, io::ByteView(makeSegment(other)));
    int status = s3.push(file, "conflict.log");
    CHECK(status >= 1);
    CHECK(status <= 125);
    CHECK(readText(s3.ws.path("conflict.log")).find("already archived with different content") !=
          std::string::npos);
    CHECK(s3.direct.readObject(object) == first);
    writeFile(file, io::ByteView(makeSegment(spec)));
    CHECK(s3.push(file, "again.log") == 0);  // the same bytes again: already archived
    CHECK(readText(s3.ws.path("again.log")).find("already archived with the same content") !=
          std::string::npos);
    // Nor through a proxy that drops If-None-Match: the signed header is missed, the request
    // refused, and the push fails without touching the archived segment.
    writeFile(file, io::ByteView(makeSegment(other)));
    s3.proxy.stripHeaderNext(1000, "if-none-match", "PUT ");
    status = s3.push(file, "stripped.log");
    CHECK(status >= 1);
    CHECK(status <= 125);
    CHECK(s3.direct.readObject(object) == first);
  }
}

TEST_CASE("archive-get over a faulty S3 connection never leaves a file from a faulty response") {
  FaultyS3 s3;
  SegmentSpec spec{.segmentNumber = 9, .randomFraction = 0.9};  // little compression: a long body
  std::string name = segmentName(spec);
  REQUIRE(s3.push(writeSegment(s3.ws.makeDir("source"), spec)) == 0);
  std::string recovering = s3.ws.makeDir("recovering");
  writeFile(recovering + "/recovery.signal", "");
  fs::create_directories(recovering + "/pg_wal");
  std::string standby = s3.ws.makeDir("standby");
  writeFile(standby + "/standby.signal", "");
  fs::create_directories(standby + "/pg_wal");

  SUBCASE("a transfer reset mid-body resumes and the file is byte-identical") {
    s3.proxy.resetResponseNext(2, 100000, name);  // the segment's GET, not stanza.json's
    CHECK(s3.get(name, "pg_wal/RECOVERYXLOG", recovering) == 0);
    CHECK(s3.proxy.faultsPending() == 0);
    CHECK(readFile(recovering + "/pg_wal/RECOVERYXLOG") == makeSegment(spec));
  }
  SUBCASE("a stalled transfer is abandoned after s3.timeout and retried") {
    s3.proxy.stallNext(1, 8s, "GET ");
    CHECK(s3.get(name, "pg_wal/RECOVERYXLOG", recovering) == 0);
    CHECK(readFile(recovering + "/pg_wal/RECOVERYXLOG") == makeSegment(spec));
  }
  SUBCASE("a transfer that trickles is abandoned after s3.timeout and retried") {
    // 500 bytes a second never stalls (libcurl's "no progress"), yet would take hours for the
    // segment: below 1 KiB/s for s3.timeout (2 s here) counts as stalled.
    s3.proxy.dripNext(1, 500, 1s, name);  // the segment's GET, not stanza.json's
    const auto start = std::chrono::steady_clock::now();
    CHECK(s3.get(name, "pg_wal/RECOVERYXLOG", recovering) == 0);
    CHECK(std::chrono::steady_clock::now() - start < 60s);
    CHECK(s3.proxy.faultsPending() == 0);
    CHECK(readFile(recovering + "/pg_wal/RECOVERYXLOG") == makeSegment(spec));
  }
  SUBCASE(
      "responses that keep being cut short fail: 255 in recovery, 2..125 on a standby, no file") {
    s3.proxy.truncateNext(1000, 5000, "GET ");
    CHECK(s3.get(name, "pg_wal/RECOVERYXLOG", recovering) == 255);
    int status = s3.get(name, "pg_wal/RECOVERYXLOG", standby);
    CHECK(status >= 2);
    CHECK(status <= 125);
    CHECK(entriesIn(recovering + "/pg_wal") == 0);
    CHECK(entriesIn(standby + "/pg_wal") == 0);
  }
  SUBCASE("a proxy that drops the Range of a resumed read: refused (signed), never misread") {
    // The reset makes archive-get resume with a Range; the proxy drops it. A server would send the
    // whole object again with 200, but SigV4 signs the header, so it refuses the request instead.
    s3.proxy.resetResponseNext(1, 100000, name);
    s3.proxy.stripHeaderNext(1000, "range", name);
    CHECK(s3.get(name, "pg_wal/RECOVERYXLOG", recovering) == 255);
    CHECK(entriesIn(recovering + "/pg_wal") == 0);
    INFO(readText(s3.ws.path("get.log")));
    CHECK(readText(s3.ws.path("get.log")).find("403") != std::string::npos);
    s3.proxy.clear();
    CHECK(s3.get(name, "pg_wal/RECOVERYXLOG", recovering) == 0);
    CHECK(readFile(recovering + "/pg_wal/RECOVERYXLOG") == makeSegment(spec));
  }
  SUBCASE("storage that stays down: 255 in recovery, 2..125 on a standby, never 'not found'") {
    s3.proxy.failNext(1000, 503);
    CHECK(s3.get(name, "pg_wal/RECOVERYXLOG", recovering) == 255);
    CHECK(s3.get("000000010000000000000077", "pg_wal/RECOVERYXLOG", recovering) == 255);
    int status = s3.get(name, "pg_wal/RECOVERYXLOG", standby);
    CHECK(status >= 2);
    CHECK(status <= 125);
    CHECK(entriesIn(recovering + "/pg_wal") == 0);
    CHECK(entriesIn(standby + "/pg_wal") == 0);
  }
}

}  // namespace tidemark::test
