// The s3 driver against a real S3 server (radosgw): both URI styles, HTTP and HTTPS, and the
// configuration mistakes operators make, each failing fast with its own message.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "cluster.h"
#include "common/storage/s3/s3.h"

namespace tidemark::test {

namespace {

struct Outcome {
  int status;
  std::string log;
  long milliseconds;
};

// Runs archive-push (or archive-get) with extra configuration lines and captures its log.
Outcome runWith(const Workspace& ws, const std::string& extraToml, std::vector<std::string> args) {
  static int counter = 0;
  std::string config = ws.path("variant-" + std::to_string(++counter) + ".toml");
  writeFile(config, mergeToml(ws.repoToml(), extraToml));
  std::string log = ws.path("variant-" + std::to_string(counter) + ".log");
  std::vector<std::string> argv{args.front(), "--config", config};
  argv.insert(argv.end(), args.begin() + 1, args.end());
  auto started = std::chrono::steady_clock::now();
  int status = run(argv, {.cwd = ws.root(), .stderrPath = log});
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  started)
                .count();
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  return {status, text.str(), long(ms)};
}

std::string portOf(const std::string& endpoint) {
  return endpoint.substr(endpoint.rfind(':') + 1);
}

}  // namespace

TEST_CASE("the s3 driver works in both URI styles over HTTP and HTTPS") {
  const S3Server& s3 = s3Server();
  Workspace ws(Backend::S3);
  ws.createStanza();
  std::string source = ws.makeDir("source");
  REQUIRE_FALSE(s3.endpointTls.empty());

  struct Variant {
    std::string name, toml;
  };
  const std::string https = "https://127.0.0.1:" + portOf(s3.endpointTls);
  const std::string httpsHost = "https://s3.localhost:" + portOf(s3.endpointTls);
  std::vector<Variant> variants = {
      {"http, path style", "[s3]\nendpoint = \"" + s3.endpoint + "\"\nuri-style = \"path\"\n"},
      {"http, host style", "[s3]\nendpoint = \"" + s3.vhostEndpoint + "\"\nuri-style = \"host\"\n"},
      {"https, path style", "[s3]\nendpoint = \"" + https +
                                "\"\nuri-style = \"path\"\nca-file = \"" + s3.caFile + "\"\n"},
      {"https, host style", "[s3]\nendpoint = \"" + httpsHost +
                                "\"\nuri-style = \"host\"\nca-file = \"" + s3.caFile + "\"\n"},
  };
  std::uint64_t segment = 1;
  for (const auto& variant : variants) {
    CAPTURE(variant.name);
    SegmentSpec spec{.segmentNumber = segment++};
    std::string file = writeSegment(source, spec);
    Outcome pushed = runWith(ws, variant.toml, {ws.push(), file});
    INFO(pushed.log);
    CHECK(pushed.status == 0);
    std::string restored = ws.path("restored-" + segmentName(spec));
    Outcome got = runWith(ws, variant.toml, {ws.get(), segmentName(spec), restored});
    INFO(got.log);
    CHECK(got.status == 0);
    CHECK(readFile(restored) == makeSegment(spec));
  }
  // Every variant wrote into the same repository: the objects are where the others look.
  CHECK(ws.hasObject(Workspace::walObject(segmentName({.segmentNumber = 1}))));
  CHECK(ws.hasObject(Workspace::walObject(segmentName({.segmentNumber = 4}))));
}

TEST_CASE("S3 configuration mistakes fail fast, each with its own message") {
  const S3Server& s3 = s3Server();
  Workspace ws(Backend::S3);
  ws.createStanza();
  std::string file = writeSegment(ws.makeDir("source"), {.segmentNumber = 7});
  auto push = [&](const std::string& toml) { return runWith(ws, toml, {ws.push(), file}); };
  auto failsWith = [](const Outcome& outcome, const std::string& message, const std::string& hint) {
    INFO(outcome.log);
    CHECK(outcome.status >= 1);
    CHECK(outcome.status <= 125);
    CHECK(outcome.log.find(message) != std::string::npos);
    CHECK(outcome.log.find(hint) != std::string::npos);
  };

  SUBCASE("a wrong secret key: signature refused, not retried") {
    Outcome o = push("[s3]\nsecret-access-key = \"not-the-secret\"\n");
    failsWith(o, "SignatureDoesNotMatch", "check s3.secret-access-key");
    CHECK(o.log.find("retrying") == std::string::npos);
    CHECK(o.log.find("not-the-secret") == std::string::npos);  // secrets never appear in logs
  }
  SUBCASE("an unknown access key") {
    Outcome o = push("[s3]\naccess-key-id = \"AKIANOSUCHKEY\"\n");
    failsWith(o, "InvalidAccessKeyId", "check s3.access-key-id");
    CHECK(o.log.find("retrying") == std::string::npos);
  }
  SUBCASE("a bucket that does not exist") {
    Outcome o = push("[s3]\nbucket = \"no-such-bucket-here\"\n");
    failsWith(o, "NoSuchBucket", "create bucket 'no-such-bucket-here'");
    CHECK(o.log.find("retrying") == std::string::npos);
  }
  SUBCASE("an endpoint where nothing listens") {
    Outcome o = push("[s3]\nendpoint = \"http://127.0.0.1:" + std::to_string(freePort()) +
                     "\"\nretry-max = 2\n");
    failsWith(o, "Couldn't connect", "check s3.endpoint");
    CHECK(o.milliseconds < 10000);
  }
  SUBCASE("an endpoint host that does not resolve") {
    Outcome o = push("[s3]\nendpoint = \"http://s3.invalid:9000\"\n");
    failsWith(o, "resolve", "check the host name in s3.endpoint");
    CHECK(o.log.find("retrying") == std::string::npos);
  }
  SUBCASE("host style against an endpoint that only serves path style") {
    // radosgw here serves virtual hosts under s3.localhost only: bucket.localhost is taken for a
    // path-style request whose first path segment (the key prefix) is the bucket.
    Outcome o = push("[s3]\nendpoint = \"http://localhost:" + portOf(s3.endpoint) +
                     "\"\nuri-style = \"host\"\n");
    failsWith(o, "NoSuchBucket", "s3.uri-style = \"path\"");
  }
  SUBCASE("host style with an IP address endpoint is refused before any request") {
    Outcome o = push("[s3]\nuri-style = \"host\"\n");
    failsWith(o, "cannot work with an IP address endpoint", "set s3.uri-style = \"path\"");
    CHECK(o.status == 4);
  }
  SUBCASE("HTTPS with a self-signed certificate and no ca-file") {
    Outcome o = push("[s3]\nendpoint = \"https://127.0.0.1:" + portOf(s3.endpointTls) + "\"\n");
    failsWith(o, "certificate", "set s3.ca-file");
    CHECK(o.log.find("retrying") == std::string::npos);
  }
  SUBCASE("a part size below S3's minimum is a configuration error") {
    Outcome o = push("[s3]\npart-size = \"1MiB\"\n");
    failsWith(o, "part-size", "5.0 MiB");
    CHECK(o.status == 4);
  }
  // Nothing was stored by any of the failed attempts.
  CHECK_FALSE(ws.hasObject(Workspace::walObject(segmentName({.segmentNumber = 7}))));
}

}  // namespace tidemark::test

namespace tidemark::test {

TEST_CASE("an S3 listing returns every object of a folder, across pages and past 64 KiB") {
  Workspace ws(Backend::S3);
  ws.createStanza();
  auto storage = ws.storage();
  constexpr int kObjects = 1005;  // more than one ListObjectsV2 page of 1000 keys
  for (int i = 0; i < kObjects; ++i) {
    auto write =
        storage->newWrite(fmt::format("main/many/object-with-a-rather-long-name-{:05}", i));
    write->write(io::asBytes("x"));
    REQUIRE(write->commit());
  }
  auto write = storage->newWrite("main/many/sub/inner");
  write->write(io::asBytes("y"));
  REQUIRE(write->commit());
  std::set<std::string> files, directories;
  storage->list("main/many", [&](const storage::ListEntry& entry) {
    (entry.directory ? directories : files).insert(entry.name);
    if (!entry.directory) CHECK(entry.size == 1);
  });
  CHECK(files.size() == std::size_t(kObjects));
  CHECK(files.count("object-with-a-rather-long-name-01004") == 1);
  CHECK(directories == std::set<std::string>{"sub"});

  // DeleteObjects takes at most 1000 keys a request: removeMany batches them.
  std::vector<std::string> paths;
  for (const auto& name : files)
    paths.push_back("main/many/" + name);
  paths.push_back("main/many/sub/inner");
  paths.push_back("main/many/never-existed");  // deleting a missing key is not an error
  dynamic_cast<storage::S3Storage&>(*storage).removeMany(paths);
  std::size_t left = 0;
  storage->list("main/many", [&](const storage::ListEntry&) { ++left; });
  CHECK(left == 0);
}

}  // namespace tidemark::test

namespace tidemark::test {

TEST_CASE("a streamed write appears only at commit(), and a write given up leaves nothing") {
  // radosgw 16 completes an aws-chunked object as soon as it holds x-amz-decoded-content-length
  // bytes, without waiting for the empty final chunk: the driver holds the last data chunk back
  // until commit().
  Workspace ws(Backend::S3);
  auto storage = ws.storage();
  std::string body(3u << 20, '\0');
  for (std::size_t i = 0; i < body.size(); ++i)
    body[i] = char((i * 2654435761u) >> 13);
  auto written = [&](const std::string& path) {
    auto write = storage->newWrite(path, {.noReplace = true, .size = body.size()});
    for (std::size_t at = 0; at < body.size(); at += 65536)
      write->write(io::asBytes(body).subspan(at, 65536));
    write->close();
    return write;
  };
  SUBCASE("every byte written and closed: invisible until commit()") {
    auto write = written("main/streamed/a");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    CHECK_FALSE(storage->info("main/streamed/a"));
    REQUIRE(write->commit());
    CHECK(ws.readObject("main/streamed/a") == io::Buffer(body.begin(), body.end()));
  }
  SUBCASE("destroyed without commit(): nothing, then or later") {
    written("main/streamed/b").reset();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    CHECK_FALSE(storage->info("main/streamed/b"));
    CHECK_FALSE(ws.hasObject("main/streamed/b"));
  }
  SUBCASE("a no-replace write of an existing name: refused, the object left alone") {
    REQUIRE(written("main/streamed/c")->commit());
    std::string other = body;
    other[0] = char(~other[0]);
    auto write = storage->newWrite("main/streamed/c", {.noReplace = true, .size = other.size()});
    write->write(io::asBytes(other));
    CHECK_FALSE(write->commit());
    CHECK(ws.readObject("main/streamed/c") == io::Buffer(body.begin(), body.end()));
  }
}

TEST_CASE("uncompressed WAL, plain or encrypted, is streamed to S3 and comes back byte-identical") {
  for (bool encrypted : {false, true}) {
    CAPTURE(encrypted);
    Workspace ws(RepoKind{Backend::S3, encrypted});
    ws.createStanza();
    SegmentSpec spec{.segmentNumber = 31, .randomFraction = 0.5};
    std::string file = writeSegment(ws.makeDir("source"), spec);
    Outcome pushed = runWith(ws, "[compress]\ntype = \"none\"\n", {ws.push(), file});
    INFO(pushed.log);
    REQUIRE(pushed.status == 0);
    // The stored object is exactly the size announced before its first byte was sent.
    const std::size_t tags = encrypted ? (16u << 20) / (64u << 10) * 16 : 0;
    const std::size_t header = encrypted ? 71 : 20;
    CHECK(ws.readObject(Workspace::walObject(segmentName(spec))).size() ==
          header + (16u << 20) + tags + 48);
    std::string restored = ws.path("restored");
    Outcome got = runWith(ws, "", {ws.get(), segmentName(spec), restored});
    INFO(got.log);
    CHECK(got.status == 0);
    CHECK(readFile(restored) == makeSegment(spec));
  }
}

}  // namespace tidemark::test
