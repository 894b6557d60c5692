// S3's XML answers, read with a real parser (pugixml, Debian's libpugixml-dev): entities, CDATA,
// comments, namespace prefixes and attributes are handled as XML says, so an unusual or hostile
// answer cannot make a listing or an error read differently from what it says. Elements are
// found by local name (a "s3:" prefix is ignored). No DTD is processed and no entity beyond XML's
// own is expanded. docs/decisions.md has the choice.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pugi {
struct xml_node_struct;
class xml_document;
}  // namespace pugi

namespace tidemark::storage::s3::xml {

// An element of a parsed Document; valid while the Document lives.
class Element {
 public:
  explicit Element(pugi::xml_node_struct* node) : node_(node) {}
  // The local name ("Key" for <s3:Key>).
  std::string name() const;
  // The first child element with that local name.
  std::optional<Element> child(std::string_view name) const;
  // Every child element with that local name, in order.
  std::vector<Element> children(std::string_view name) const;
  // The element's text: its character data and CDATA sections, entities decoded, comments and
  // child elements left out.
  std::string text() const;
  // child(name)->text(), or nullopt without that child.
  std::optional<std::string> childText(std::string_view name) const;

 private:
  pugi::xml_node_struct* node_;
};

class Document {
 public:
  // nullopt when `text` is not a well-formed XML document with one root element (a body cut
  // short among them).
  static std::optional<Document> parse(std::string_view text);
  Document(Document&&) noexcept;
  Document& operator=(Document&&) noexcept;
  ~Document();
  // Not on a temporary: the element would outlive its document.
  Element root() const&;
  Element root() const&& = delete;

 private:
  Document();
  std::unique_ptr<pugi::xml_document> document_;
};

// The Code of an S3 <Error> document; nullopt when `body` is not one.
std::optional<std::string> errorCode(std::string_view body);

// Encodes text for an element body.
std::string encode(std::string_view text);

}  // namespace tidemark::storage::s3::xml
