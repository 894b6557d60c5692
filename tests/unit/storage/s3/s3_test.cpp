// Unit tests of common/storage/s3/s3.h against a lying S3 server in memory
// (tests/support/fake_s3.h): what the driver does when a server or proxy does not behave as S3 says
// it should. The driver against a real server is tests/integration/s3_server_test.cpp.
#include "common/storage/s3/s3.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "common/base/error.h"
#include "common/io/hash.h"
#include "common/repo/stanza.h"
#include "support/check.h"
#include "support/fake_s3.h"

using namespace tidemark;
using test::Containing;
using test::FakeS3;
using test::thrownError;
using test::what;

namespace {

// With 5 MiB parts (S3's minimum): a write of more is a multipart upload.
storage::S3Storage driver(const FakeS3& server) {
  return storage::S3Storage(storage::S3Options{.bucket = FakeS3::kBucket,
                                               .endpoint = server.endpoint(),
                                               .region = "us-east-1",
                                               .hostStyle = false,
                                               .credentials = {"AKIDEXAMPLE", "secret", ""},
                                               .partSize = 5u << 20,
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

TEST_CASE("a listing is complete or an error, never silently short") {
  FakeS3 server;
  for (int i = 0; i < 5; ++i)
    server.setObject("main/wal/f" + std::to_string(i), "x");
  auto s3 = driver(server);
  auto names = [&] {
    std::vector<std::string> out;
    s3.list("main/wal", [&](const storage::ListEntry& entry) { out.push_back(entry.name); });
    return out;
  };
  CHECK(names() == std::vector<std::string>{"f0", "f1", "f2", "f3", "f4"});
  SUBCASE("IsTruncated without a continuation token is an error, not the end of the listing") {
    server.lie({.listTruncatedWithoutToken = true});
    Error e = thrownError(names);
    CHECK(e.code() == ErrorCode::Storage);
    CHECK(what(e) == Containing("is truncated but names no continuation token"));
  }
}

TEST_CASE("a CompleteMultipartUpload answered 200 with an error document is retried") {
  FakeS3 server;
  auto s3 = driver(server);
  const std::string body = randomBytes(11u << 20);  // three parts of the 5 MiB minimum
  auto store = [&](const std::string& path) {
    auto write = s3.newWrite(path, {.noReplace = true});
    write->write(io::asBytes(body));
    return write->commit();
  };
  SUBCASE("an InternalError inside a 200: retried, and the object is whole") {
    server.lie({.completeWithError = 1});
    CHECK(store("main/backups/b/base.tar"));
    auto requests = server.requests();
    CHECK(std::count_if(requests.begin(), requests.end(), [](const std::string& r) {
            return r.rfind("POST", 0) == 0 && r.find("uploadId=") != std::string::npos;
          }) == 2);
    REQUIRE(server.object("main/backups/b/base.tar"));
    CHECK(server.object("main/backups/b/base.tar")->body == body);
  }
  SUBCASE("an error that persists fails the write; nothing is visible") {
    server.lie({.completeWithError = 100});
    Error e = thrownError([&] { store("main/backups/b/base.tar"); });
    CHECK(e.code() == ErrorCode::Storage);
    CHECK(what(e) == Containing("InternalError"));
    CHECK_FALSE(server.object("main/backups/b/base.tar"));
  }
}

TEST_CASE("a multipart upload abandoned mid-part is still aborted on the server, once") {
  FakeS3 server;
  std::atomic<bool> abandon{false};
  storage::S3Storage s3(storage::S3Options{.bucket = FakeS3::kBucket,
                                           .endpoint = server.endpoint(),
                                           .hostStyle = false,
                                           .credentials = {"AKIDEXAMPLE", "secret", ""},
                                           .partSize = 5u << 20,
                                           .retryMax = 3,
                                           .retryBaseDelay = std::chrono::milliseconds(1),
                                           .abandon = &abandon});
  server.lie({.stallPutsMs = 3000});  // the part's PUT hangs
  {
    auto write = s3.newWrite("main/backups/b/base.tar", {});
    write->write(io::asBytes(randomBytes(11u << 20)));  // the first parts go out
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    abandon = true;
  }  // destroyed without commit() after the abandon: the part's transfer ends, the upload goes
  auto requests = server.requests();
  CHECK(std::count_if(requests.begin(), requests.end(), [](const std::string& r) {
          return r.rfind("DELETE", 0) == 0 && r.find("uploadId=") != std::string::npos;
        }) == 1);
  // Any other request is abandoned still.
  CHECK(thrownError([&] { s3.info("main/x"); }).code() == ErrorCode::Storage);
}

TEST_CASE("S3 locks exclude each other, are refreshed, and are taken over only when stale") {
  FakeS3 server;
  auto options = [&](std::chrono::seconds timeout) {
    return storage::S3Options{.bucket = FakeS3::kBucket,
                              .endpoint = server.endpoint(),
                              .region = "us-east-1",
                              .hostStyle = false,
                              .credentials = {"AKIDEXAMPLE", "secret", ""},
                              .retryMax = 1,
                              .retryBaseDelay = std::chrono::milliseconds(1),
                              .lockTimeout = timeout};
  };
  storage::S3Storage a(options(std::chrono::seconds(10))), b(options(std::chrono::seconds(10)));
  std::string holder;
  SUBCASE("a held lock is refused to another, naming its holder; released, it can be taken") {
    auto lock = a.tryLock("main/backup.lock", "tidemark-basebackup pid 1 on db1", holder);
    REQUIRE(lock);
    CHECK(lock->held());
    CHECK_FALSE(b.tryLock("main/backup.lock", "pid 2", holder));
    CHECK(holder.starts_with("tidemark-basebackup pid 1 on db1 (lock last refreshed "));
    CHECK(
        holder.ends_with(" s ago; if that process is gone, the lock lapses after 10 s without "
                         "a refresh, s3.lock-timeout)"));
    lock.reset();
    CHECK_FALSE(server.object("main/backup.lock"));
    CHECK(b.tryLock("main/backup.lock", "pid 2", holder));
  }
  SUBCASE("a lock the server last saw changed longer ago than lock-timeout is taken over") {
    server.setObject("main/backup.lock", "pid 9 on db9\ntoken\n0\n", std::time(nullptr) - 11);
    auto lock = b.tryLock("main/backup.lock", "pid 2", holder);
    REQUIRE(lock);
    CHECK(holder == "pid 9 on db9");
    CHECK(server.object("main/backup.lock")->body.rfind("pid 2\n", 0) == 0);
  }
  SUBCASE("a fresh one is not, whatever this machine's clock says") {
    server.setObject("main/backup.lock", "pid 9 on db9\ntoken\n0\n", std::time(nullptr) - 5);
    CHECK_FALSE(b.tryLock("main/backup.lock", "pid 2", holder));
  }
  SUBCASE("a lock replaced behind its holder's back is lost at the next refresh") {
    server.lie({.ifMatchBareOnly = true});  // and with radosgw's way of comparing ETags
    auto lock = a.tryLock("main/backup.lock", "pid 1", holder);
    REQUIRE(lock);
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // two refreshes (every 1 s)
    CHECK(lock->held());
    CHECK(server.object("main/backup.lock")->body.rfind("pid 1\n", 0) == 0);
    server.setObject("main/backup.lock", "pid 3 took it over\nother\n0\n");
    for (int i = 0; i < 30 && lock->held(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK_FALSE(lock->held());
    lock.reset();  // not ours any more: left alone
    CHECK(server.object("main/backup.lock")->body.rfind("pid 3", 0) == 0);
  }
  SUBCASE("confirm() refreshes on the spot, and fails once the lock was taken over") {
    auto lock = a.tryLock("main/backup.lock", "pid 1", holder);
    REQUIRE(lock);
    std::string before = server.object("main/backup.lock")->etag;
    CHECK(lock->confirm());
    CHECK(server.object("main/backup.lock")->etag != before);  // a PUT now, not at the next beat
    CHECK(server.object("main/backup.lock")->body.rfind("pid 1\n", 0) == 0);
    server.setObject("main/backup.lock", "pid 3 took it over\nother\n0\n");
    CHECK_FALSE(lock->confirm());
    CHECK_FALSE(lock->held());
    CHECK(server.object("main/backup.lock")->body.rfind("pid 3", 0) == 0);
  }
  SUBCASE("a lock whose refresh has not got through for most of lock-timeout is not held") {
    // The holder may ask before its heartbeat has failed (or, after SIGSTOP, before it has run):
    // the answer comes from the time of the last refresh that got through.
    storage::S3Storage c(options(std::chrono::seconds(2)));  // refreshed every 1 s
    auto lock = c.tryLock("main/backup.lock", "pid 1", holder);
    REQUIRE(lock);
    server.lie({.stallPutsMs = 2500});  // the refresh at 1 s gets its answer at 3.5 s
    CHECK(lock->held());
    std::this_thread::sleep_for(std::chrono::milliseconds(2200));  // past the safe 1.6 s
    CHECK_FALSE(lock->held());
    server.lie({});
  }
}

TEST_CASE("stanza-create's probe finds an S3 server that ignores If-None-Match") {
  FakeS3 server;
  auto s3 = driver(server);
  repo::Repository repository(s3, "main");
  const repo::StanzaInfo cluster{.systemId = 1, .pgVersion = 15, .walSegmentSize = 16u << 20};
  SUBCASE("an honest server: the stanza is created, the probe removed") {
    CHECK(repo::createStanza(repository, cluster).created);
    CHECK(server.keys() == std::vector<std::string>{"main/stanza.json"});
  }
  SUBCASE("a server that replaces despite If-None-Match: refused, nothing created") {
    server.lie({.ignoreIfNoneMatch = true});
    Error e = thrownError([&] { repo::createStanza(repository, cluster); });
    CHECK(e.code() == ErrorCode::Unsupported);
    CHECK(what(e) == Containing("ignores 'If-None-Match: *'"));
    CHECK(server.keys().empty());
  }
  SUBCASE("a server that stores a streamed body undecoded: refused, nothing created") {
    server.lie({.keepChunkFraming = true});
    Error e = thrownError([&] { repo::createStanza(repository, cluster); });
    CHECK(e.code() == ErrorCode::Unsupported);
    CHECK(what(e) == Containing("stored other bytes than were written (177 bytes read back for 5 "
                                "written; S3: the server does not decode streamed"));
    CHECK(server.keys().empty());
  }
  SUBCASE("a server that refuses streamed bodies: the probe is sent in one piece") {
    server.lie({.refuseStreaming = true});
    CHECK(repo::createStanza(repository, cluster).created);
    CHECK(server.keys() == std::vector<std::string>{"main/stanza.json"});
  }
}

namespace {

// A write of `body` whose size is announced (so it is streamed), in pieces of `piece` bytes with
// a pause after each: the upload waits for the writer, as it does behind a slow disk.
std::unique_ptr<storage::Write> writeStreamed(storage::S3Storage& s3, const std::string& path,
                                              const std::string& body, std::size_t piece = 300000,
                                              std::chrono::milliseconds pause = {}) {
  auto write = s3.newWrite(path, {.noReplace = true, .size = body.size()});
  for (std::size_t at = 0; at < body.size(); at += piece) {
    write->write(io::asBytes(body).subspan(at, std::min(piece, body.size() - at)));
    if (pause.count() > 0) std::this_thread::sleep_for(pause);
  }
  return write;
}

std::size_t count(const std::vector<std::string>& values, const std::string& value) {
  return std::size_t(std::count(values.begin(), values.end(), value));
}

constexpr const char* kStreaming = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";

}  // namespace

TEST_CASE("a write whose size is announced is streamed while written, and published by commit") {
  FakeS3 server;
  auto s3 = driver(server);
  const std::string body = randomBytes(3u << 20);
  const std::string path = "main/wal/0000000100000000/000000010000000000000001";
  auto stored = [&] { return server.object(path) ? server.object(path)->body : "(none)"; };

  SUBCASE("one aws-chunked PutObject, whatever pieces the writer gives and however slowly") {
    for (std::size_t piece : {std::size_t(1000), std::size_t(65536), std::size_t(65537)}) {
      CAPTURE(piece);
      auto write = writeStreamed(s3, path + std::to_string(piece), body, piece);
      REQUIRE(write->commit());
      CHECK(server.object(path + std::to_string(piece))->body == body);
    }
    auto write = writeStreamed(s3, path, body, 300000, std::chrono::milliseconds(20));
    REQUIRE(write->commit());
    CHECK(stored() == body);
    CHECK(write->size() == body.size());
    CHECK(count(server.putPayloads(), kStreaming) == 4);
  }
  SUBCASE("nothing is visible before commit(), even once every byte was written and closed") {
    auto write = writeStreamed(s3, path, body);
    write->close();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK_FALSE(server.object(path));
    REQUIRE(write->commit());
    CHECK(stored() == body);
  }
  SUBCASE("destroyed without commit(): the upload is abandoned and nothing is stored") {
    for (bool closed : {false, true}) {
      CAPTURE(closed);
      auto write = writeStreamed(s3, path, body);
      if (closed) write->close();
      write.reset();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      CHECK_FALSE(server.object(path));
    }
    // The storage's connection came back and works.
    CHECK_FALSE(s3.info(path));
  }
  SUBCASE("more bytes than announced, or a close after fewer, is an internal error") {
    auto write = s3.newWrite(path, {.size = 10});
    write->write(io::asBytes("0123456789"));
    Error e = thrownError([&] { write->write(io::asBytes("!")); });
    CHECK(e.code() == ErrorCode::Internal);
    CHECK(what(e) == Containing("was given more than the 10 bytes announced"));
    write.reset();
    write = s3.newWrite(path, {.size = 10});
    write->write(io::asBytes("01234"));
    e = thrownError([&] { write->commit(); });
    CHECK(e.code() == ErrorCode::Internal);
    CHECK(what(e) == Containing("closed after 5 bytes; 10 were announced"));
    write.reset();
    CHECK_FALSE(server.object(path));
  }
  SUBCASE("a failed attempt is sent again from the bytes kept: 503s, a connection cut mid-body") {
    server.lie({.failPuts = 2});
    auto write = writeStreamed(s3, path, body);
    REQUIRE(write->commit());
    CHECK(stored() == body);
    CHECK(count(server.putPayloads(), kStreaming) == 3);
    server.setObject(path, "");
    server.lie({.cutPuts = 2, .cutPutsAfter = 1u << 20});
    auto again = writeStreamed(s3, path + "b", body, 65536, std::chrono::milliseconds(1));
    REQUIRE(again->commit());
    CHECK(server.object(path + "b")->body == body);
    auto requests = server.requests();
    CHECK(std::count_if(requests.begin(), requests.end(), [&](const std::string& r) {
            return r.find(path + "b HTTP/1.1 (cut)") != std::string::npos;
          }) == 2);
  }
  SUBCASE("no-replace: an existing name is refused and the object is left alone") {
    server.setObject(path, "first");
    auto write = writeStreamed(s3, path, body);
    CHECK_FALSE(write->commit());
    CHECK(stored() == "first");
  }
  SUBCASE("a server that does not take streamed bodies (501) gets the object in one piece") {
    server.lie({.refuseStreaming = true});
    auto write = writeStreamed(s3, path, body, 65536, std::chrono::milliseconds(1));
    REQUIRE(write->commit());
    CHECK(stored() == body);
    auto payloads = server.putPayloads();
    REQUIRE(payloads.size() == 2);  // no retry of the refused one
    CHECK(payloads[0] == kStreaming);
    CHECK(payloads[1] == io::toHex(io::Sha256::of(io::asBytes(body))));
  }
  SUBCASE("the storage answers other calls while a streamed write is open") {
    server.setObject("main/other", "x");
    auto write = s3.newWrite(path, {.size = body.size()});
    write->write(io::asBytes(body).subspan(0, 1000));
    CHECK(s3.info("main/other"));
    CHECK_FALSE(s3.info(path));
    write->write(io::asBytes(body).subspan(1000));
    REQUIRE(write->commit());
    CHECK(stored() == body);
  }
  SUBCASE("an object larger than one PutObject is a multipart upload, its size announced or not") {
    const std::string large = randomBytes((5u << 20) + (1u << 20) + 1);  // part + slack + 1
    auto write = s3.newWrite(path, {.size = large.size()});
    write->write(io::asBytes(large));
    REQUIRE(write->commit());
    CHECK(stored() == large);
    CHECK(count(server.putPayloads(), kStreaming) == 0);
  }
}
