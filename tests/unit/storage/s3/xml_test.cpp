// Unit tests of common/storage/s3/xml.h: element extraction and entities on real S3 answers.
#include "common/storage/s3/xml.h"

#include <doctest/doctest.h>

using namespace tidemark::storage::s3;

namespace {

// A ListObjectsV2 answer as S3 writes it: <KeyCount> comes before the first <Key>, and the
// top-level <Prefix> before the ones inside <CommonPrefixes>.
constexpr std::string_view kListing = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>wal-bucket</Name>
  <Prefix>main/</Prefix>
  <KeyCount>3</KeyCount>
  <MaxKeys>3</MaxKeys>
  <Delimiter>/</Delimiter>
  <IsTruncated>true</IsTruncated>
  <ContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</ContinuationToken>
  <NextContinuationToken>1BXh+8zW3cF/3ey4vQx0Tg0mhw8Ffo7l7kNrPZ2i/JQ=</NextContinuationToken>
  <StartAfter/>
  <Contents>
    <Key>main/stanza.json</Key>
    <LastModified>2024-03-01T10:00:00.000Z</LastModified>
    <ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag>
    <Size>412</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents>
    <Key>main/notes/R&amp;D &lt;draft&gt;.txt</Key>
    <LastModified>2024-03-01T10:00:01.000Z</LastModified>
    <ETag>&quot;d41d8cd98f00b204e9800998ecf8427e-2&quot;</ETag>
    <Size>0</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents>
    <Key>main/caf&#233; &#x20AC;</Key>
    <LastModified>2024-03-01T10:00:02.000Z</LastModified>
    <ETag>&quot;1c1c96fd2cf8330db0bfa936ce82f3b9&quot;</ETag>
    <Size>16777216</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <CommonPrefixes>
    <Prefix>main/archive/</Prefix>
  </CommonPrefixes>
  <CommonPrefixes>
    <Prefix>main/wal/</Prefix>
  </CommonPrefixes>
</ListBucketResult>
)";

constexpr std::string_view kError = R"(<?xml version="1.0" encoding="UTF-8"?>
<Error>
  <Code>NoSuchKey</Code>
  <Message>The specified key does not exist.</Message>
  <Key>main/wal/000000010000000000000042</Key>
  <RequestId>tx00000b1a2c3d4e5f60000-0065e1f2a3-1234-default</RequestId>
  <HostId>1234-default-default</HostId>
</Error>)";

}  // namespace

TEST_CASE("xml::elements finds each element of a tag, in order, and nothing else") {
  SUBCASE("every <Contents> of a listing, and the keys inside each") {
    auto contents = xml::elements(kListing, "Contents");
    REQUIRE(contents.size() == 3);
    CHECK(xml::first(contents[0], "Key") == "main/stanza.json");
    CHECK(xml::first(contents[0], "Size") == "412");
    CHECK(xml::first(contents[2], "Size") == "16777216");
    CHECK(xml::first(contents[1], "ETag") == "\"d41d8cd98f00b204e9800998ecf8427e-2\"");
  }
  SUBCASE("<KeyCount> is not taken for <Key>") {
    auto keys = xml::elements(kListing, "Key");
    REQUIRE(keys.size() == 3);
    CHECK(keys[0] == "main/stanza.json");
    CHECK(xml::first(kListing, "Key") == "main/stanza.json");
    CHECK(xml::first(kListing, "KeyCount") == "3");
  }
  SUBCASE("raw text is returned undecoded") {
    CHECK(xml::elements(kListing, "Key")[1] == "main/notes/R&amp;D &lt;draft&gt;.txt");
  }
  SUBCASE("<CommonPrefixes> hold their own <Prefix>") {
    auto prefixes = xml::elements(kListing, "CommonPrefixes");
    REQUIRE(prefixes.size() == 2);
    CHECK(xml::first(prefixes[0], "Prefix") == "main/archive/");
    CHECK(xml::first(prefixes[1], "Prefix") == "main/wal/");
    // The listing's own prefix comes first in the document.
    CHECK(xml::first(kListing, "Prefix") == "main/");
    CHECK(xml::elements(kListing, "Prefix").size() == 3);
  }
  SUBCASE("truncation and the next continuation token, not the one sent") {
    CHECK(xml::first(kListing, "IsTruncated") == "true");
    CHECK(xml::first(kListing, "NextContinuationToken") ==
          "1BXh+8zW3cF/3ey4vQx0Tg0mhw8Ffo7l7kNrPZ2i/JQ=");
    CHECK(xml::first(kListing, "ContinuationToken") ==
          "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
  }
  SUBCASE("a self-closing element is present and empty") {
    CHECK(xml::elements(kListing, "StartAfter") == std::vector<std::string_view>{""});
    CHECK(xml::first(kListing, "StartAfter") == "");
    CHECK(xml::elements("<a><Prefix /><Prefix/><Prefix>x</Prefix></a>", "Prefix") ==
          std::vector<std::string_view>{"", "", "x"});
  }
  SUBCASE("an absent element gives nothing") {
    CHECK(xml::elements(kListing, "Owner").empty());
    CHECK_FALSE(xml::first(kListing, "Owner").has_value());
    CHECK_FALSE(xml::first(kListing, "Ke").has_value());
    CHECK(xml::elements("", "Key").empty());
  }
  SUBCASE("attributes and line breaks inside the opening tag are allowed") {
    CHECK(xml::first("<Key xml:space=\"preserve\"> a </Key>", "Key") == " a ");
    CHECK(xml::first("<Key\n>b</Key><Key\t>c</Key>", "Key") == "b");
    CHECK(xml::elements("<r><Key\r\n>b</Key><Key>c</Key></r>", "Key").size() == 2);
  }
  SUBCASE("an empty element is present and empty") {
    CHECK(xml::first("<Marker></Marker>", "Marker") == "");
  }
  SUBCASE("a document cut short gives the complete elements before the cut") {
    std::string_view cut = kListing.substr(0, kListing.find("<Key>main/caf") + 8);
    CHECK(xml::elements(cut, "Contents").size() == 2);
    CHECK(xml::elements(cut, "Key").size() == 2);
    CHECK(xml::elements("<Key", "Key").empty());
    CHECK(xml::elements("<Key>open", "Key").empty());
  }
}

TEST_CASE("xml::first reads S3 error documents and multipart answers") {
  SUBCASE("an <Error> document") {
    CHECK(xml::elements(kError, "Error").size() == 1);
    CHECK(xml::first(kError, "Code") == "NoSuchKey");
    CHECK(xml::first(kError, "Message") == "The specified key does not exist.");
    CHECK(xml::first(kError, "Key") == "main/wal/000000010000000000000042");
  }
  SUBCASE("the errors of a multi-object delete") {
    constexpr std::string_view deleted = R"(<?xml version="1.0" encoding="UTF-8"?>
<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Deleted><Key>main/a</Key></Deleted>
  <Error><Key>main/b</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>
  <Error><Key>main/c&amp;d</Key><Code>InternalError</Code><Message>try again</Message></Error>
</DeleteResult>)";
    auto errors = xml::elements(deleted, "Error");
    REQUIRE(errors.size() == 2);
    CHECK(xml::first(errors[0], "Code") == "AccessDenied");
    CHECK(xml::first(errors[1], "Key") == "main/c&d");
    CHECK(xml::elements(deleted, "Deleted").size() == 1);
  }
  SUBCASE("<Upload> is not confused with <UploadId> or <UploadIdMarker>") {
    constexpr std::string_view uploads = R"(<ListMultipartUploadsResult>
  <Bucket>wal-bucket</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>main/b</NextKeyMarker><NextUploadIdMarker>2~xyz</NextUploadIdMarker>
  <IsTruncated>false</IsTruncated>
  <Upload><Key>main/a</Key><UploadId>2~abc</UploadId></Upload>
  <Upload><Key>main/b</Key><UploadId>2~xyz</UploadId></Upload>
</ListMultipartUploadsResult>)";
    auto all = xml::elements(uploads, "Upload");
    REQUIRE(all.size() == 2);
    CHECK(xml::first(all[0], "UploadId") == "2~abc");
    CHECK(xml::first(all[1], "Key") == "main/b");
    CHECK(xml::first(uploads, "NextUploadIdMarker") == "2~xyz");
    CHECK(xml::first(uploads, "KeyMarker") == "");
  }
}

TEST_CASE("xml::decode resolves entities and character references") {
  SUBCASE("the five named entities") {
    CHECK(xml::decode("a &amp; b &lt;c&gt; &quot;q&quot; &apos;s&apos;") == "a & b <c> \"q\" 's'");
  }
  SUBCASE("decimal and hexadecimal references to '&'") {
    CHECK(xml::decode("R&#38;D") == "R&D");
    CHECK(xml::decode("R&#x26;D") == "R&D");
    CHECK(xml::decode("R&#X26;D") == "R&D");
  }
  SUBCASE("references beyond ASCII become UTF-8 of two, three and four bytes") {
    CHECK(xml::decode("caf&#233;") == "caf\xC3\xA9");
    CHECK(xml::decode("&#xE9;") == "\xC3\xA9");
    CHECK(xml::decode("&#x20AC;") == "\xE2\x82\xAC");
    CHECK(xml::decode("&#8364;") == "\xE2\x82\xAC");
    CHECK(xml::decode("&#x1F600;") == "\xF0\x9F\x98\x80");
    CHECK(xml::decode("&#x1f600;") == "\xF0\x9F\x98\x80");
    CHECK(xml::decode("&#x7FF;&#x800;&#xFFFF;&#x10000;&#x10FFFF;") ==
          "\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF\xF0\x90\x80\x80\xF4\x8F\xBF\xBF");
  }
  SUBCASE("decoding happens once") {
    CHECK(xml::decode("&amp;lt;") == "&lt;");
    CHECK(xml::decode("&#38;amp;") == "&amp;");
  }
  SUBCASE("text without entities, and UTF-8 text, is unchanged") {
    CHECK(xml::decode("") == "");
    CHECK(xml::decode("main/wal/000000010000000000000001") == "main/wal/000000010000000000000001");
    CHECK(xml::decode("caf\xC3\xA9 \xE2\x82\xAC") == "caf\xC3\xA9 \xE2\x82\xAC");
  }
  SUBCASE("an unknown entity or a lone '&' is kept as written") {
    CHECK(xml::decode("a&nbsp;b") == "a&nbsp;b");
    CHECK(xml::decode("AT&T") == "AT&T");
    CHECK(xml::decode("a & b; c") == "a & b; c");
    CHECK(xml::decode("&") == "&");
  }
  SUBCASE("a malformed or out-of-range character reference is kept as written") {
    // Never a NUL byte, nor a character made up from part of the digits.
    for (std::string bad : {"&#;", "&#x;", "&#xZZ;", "&#12a;", "&#0;", "&#x110000;", "&#xD800;",
                            "&#-38;", "&#99999999999999999999;"}) {
      CAPTURE(bad);
      CHECK(xml::decode("k" + bad + "k") == "k" + bad + "k");
    }
  }
}

TEST_CASE("xml::encode escapes what an element body cannot hold") {
  SUBCASE("markup characters become entities") {
    CHECK(xml::encode("a&b<c>\"d'e") == "a&amp;b&lt;c&gt;&quot;d&apos;e");
  }
  SUBCASE("other text, UTF-8 included, is unchanged") {
    CHECK(xml::encode("main/wal/caf\xC3\xA9") == "main/wal/caf\xC3\xA9");
    CHECK(xml::encode("") == "");
  }
  SUBCASE("decode undoes encode") {
    for (std::string key : {"main/R&D <x>.txt", "it's \"quoted\"", "&amp;", "caf\xC3\xA9"}) {
      CAPTURE(key);
      CHECK(xml::decode(xml::encode(key)) == key);
    }
  }
}
