// Unit tests of common/storage/s3/xml.h: S3 answers as a real XML parser reads them, including
// the unusual and hostile ones (entities, CDATA, comments, namespace prefixes, cut documents).
#include "common/storage/s3/xml.h"

#include <doctest/doctest.h>

using namespace tidemark::storage::s3;

namespace {

xml::Document parsed(std::string_view text) {
  auto document = xml::Document::parse(text);
  REQUIRE(document.has_value());
  return std::move(*document);
}

std::vector<std::string> texts(const std::vector<xml::Element>& elements, std::string_view child) {
  std::vector<std::string> out;
  for (const auto& e : elements)
    out.push_back(e.childText(child).value_or("?"));
  return out;
}

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

TEST_CASE("a ListObjectsV2 answer reads as S3 wrote it") {
  xml::Document listing = parsed(kListing);
  xml::Element root = listing.root();
  CHECK(root.name() == "ListBucketResult");
  SUBCASE("every <Contents>, in order, with its key, size and ETag decoded") {
    auto contents = root.children("Contents");
    REQUIRE(contents.size() == 3);
    CHECK(texts(contents, "Key") == std::vector<std::string>{"main/stanza.json",
                                                             "main/notes/R&D <draft>.txt",
                                                             "main/caf\xC3\xA9 \xE2\x82\xAC"});
    CHECK(contents[0].childText("Size") == "412");
    CHECK(contents[2].childText("Size") == "16777216");
    CHECK(contents[1].childText("ETag") == "\"d41d8cd98f00b204e9800998ecf8427e-2\"");
  }
  SUBCASE(
      "children only: <KeyCount> is not <Key>, and the listing's <Prefix> is not a common "
      "prefix's") {
    CHECK_FALSE(root.child("Key").has_value());
    CHECK(root.childText("KeyCount") == "3");
    CHECK(root.childText("Prefix") == "main/");
    CHECK(texts(root.children("CommonPrefixes"), "Prefix") ==
          std::vector<std::string>{"main/archive/", "main/wal/"});
  }
  SUBCASE("truncation and the next continuation token, not the one sent") {
    CHECK(root.childText("IsTruncated") == "true");
    CHECK(root.childText("NextContinuationToken") ==
          "1BXh+8zW3cF/3ey4vQx0Tg0mhw8Ffo7l7kNrPZ2i/JQ=");
    CHECK(root.childText("ContinuationToken") == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
  }
  SUBCASE("a self-closing or empty element is present and empty; an absent one is absent") {
    CHECK(root.childText("StartAfter") == "");
    xml::Document marker = parsed("<a><Marker></Marker></a>");
    CHECK(marker.root().childText("Marker") == "");
    CHECK_FALSE(root.childText("Owner").has_value());
  }
}

TEST_CASE("S3 error documents and multipart answers") {
  SUBCASE("an <Error> document, and errorCode") {
    xml::Document document = parsed(kError);
    xml::Element root = document.root();
    CHECK(root.name() == "Error");
    CHECK(root.childText("Message") == "The specified key does not exist.");
    CHECK(xml::errorCode(kError) == "NoSuchKey");
    CHECK_FALSE(xml::errorCode(kListing).has_value());
    CHECK_FALSE(xml::errorCode("").has_value());
    CHECK_FALSE(xml::errorCode("<Error><Code>NoSuchKey</Code>").has_value());  // cut short
  }
  SUBCASE("the errors of a multi-object delete") {
    constexpr std::string_view deleted = R"(<?xml version="1.0" encoding="UTF-8"?>
<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Deleted><Key>main/a</Key></Deleted>
  <Error><Key>main/b</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>
  <Error><Key>main/c&amp;d</Key><Code>InternalError</Code><Message>try again</Message></Error>
</DeleteResult>)";
    xml::Document document = parsed(deleted);
    xml::Element root = document.root();
    auto errors = root.children("Error");
    REQUIRE(errors.size() == 2);
    CHECK(errors[0].childText("Code") == "AccessDenied");
    CHECK(errors[1].childText("Key") == "main/c&d");
    CHECK(root.children("Deleted").size() == 1);
  }
  SUBCASE("<Upload> is not confused with <UploadId> or <UploadIdMarker>") {
    constexpr std::string_view uploads = R"(<ListMultipartUploadsResult>
  <Bucket>wal-bucket</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>main/b</NextKeyMarker><NextUploadIdMarker>2~xyz</NextUploadIdMarker>
  <IsTruncated>false</IsTruncated>
  <Upload><Key>main/a</Key><UploadId>2~abc</UploadId></Upload>
  <Upload><Key>main/b</Key><UploadId>2~xyz</UploadId></Upload>
</ListMultipartUploadsResult>)";
    xml::Document document = parsed(uploads);
    xml::Element root = document.root();
    CHECK(texts(root.children("Upload"), "UploadId") == std::vector<std::string>{"2~abc", "2~xyz"});
    CHECK(root.childText("NextUploadIdMarker") == "2~xyz");
    CHECK(root.childText("KeyMarker") == "");
  }
  SUBCASE("a 200 to CompleteMultipartUpload that carries an error") {
    CHECK(xml::errorCode("<?xml version=\"1.0\" "
                         "encoding=\"UTF-8\"?>\n\n<Error><Code>InternalError</Code></Error>") ==
          "InternalError");
  }
}

TEST_CASE("unusual and hostile answers read as XML says, not as a scanner guesses") {
  SUBCASE("entities and character references are decoded once") {
    xml::Document document = parsed("<r><Key>a &amp;lt; &#38;amp; caf&#233; &#x1F600;</Key></r>");
    xml::Element root = document.root();
    CHECK(root.childText("Key") == "a &lt; &amp; caf\xC3\xA9 \xF0\x9F\x98\x80");
  }
  SUBCASE("an entity XML does not define is kept as written, never expanded") {
    xml::Document document = parsed("<a><Key>x&bogus;y</Key></a>");
    CHECK(document.root().childText("Key") == "x&bogus;y");
  }
  SUBCASE("CDATA is text, and markup inside it is not an element") {
    xml::Document document = parsed("<r><Key><![CDATA[main/<Key>x</Key>&amp;]]></Key></r>");
    xml::Element root = document.root();
    CHECK(root.childText("Key") == "main/<Key>x</Key>&amp;");
    CHECK(root.children("Key").size() == 1);
  }
  SUBCASE("comments are neither text nor elements") {
    xml::Document document = parsed("<r><!-- <Key>fake</Key> --><Key>main/<!-- x -->a</Key></r>");
    xml::Element root = document.root();
    CHECK(root.children("Key").size() == 1);
    CHECK(root.childText("Key") == "main/a");
  }
  SUBCASE("namespace prefixes are ignored, attributes do not matter") {
    xml::Document document = parsed(
        "<s3:ListBucketResult xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\"><s3:IsTruncated "
        "a=\"1\">"
        "true</s3:IsTruncated><s3:Contents><s3:Key>k</s3:Key></s3:Contents></s3:ListBucketResult>");
    xml::Element root = document.root();
    CHECK(root.name() == "ListBucketResult");
    CHECK(root.childText("IsTruncated") == "true");
    CHECK(texts(root.children("Contents"), "Key") == std::vector<std::string>{"k"});
  }
  SUBCASE(
      "a DOCTYPE does not define entities: nothing is expanded, billions of laughs or otherwise") {
    constexpr std::string_view laughs = R"(<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY a "AAAAAAAAAA"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>
<r><Key>&c;</Key></r>)";
    auto document = xml::Document::parse(laughs);
    if (document) CHECK(document->root().childText("Key").value_or("").size() < 100);
  }
  SUBCASE("what is not one well-formed document is refused, a document cut short among them") {
    std::string_view cut = kListing.substr(0, kListing.find("<Key>main/caf") + 8);
    for (std::string_view bad :
         {cut, std::string_view(""), std::string_view("<Key"), std::string_view("<Key>open"),
          std::string_view("not xml"), std::string_view("<a></b>")}) {
      CAPTURE(bad);
      CHECK_FALSE(xml::Document::parse(bad).has_value());
    }
  }
}

TEST_CASE("xml::encode escapes what an element body cannot hold, and the parser reads it back") {
  CHECK(xml::encode("a&b<c>\"d'e") == "a&amp;b&lt;c&gt;&quot;d&apos;e");
  CHECK(xml::encode("main/wal/caf\xC3\xA9") == "main/wal/caf\xC3\xA9");
  CHECK(xml::encode("") == "");
  for (std::string key : {"main/R&D <x>.txt", "it's \"quoted\"", "&amp;", "caf\xC3\xA9"}) {
    CAPTURE(key);
    xml::Document document = parsed("<Key>" + xml::encode(key) + "</Key>");
    CHECK(document.root().text() == key);
  }
}
