// S3's XML answers through pugixml.
#include "common/storage/s3/xml.h"

#include <pugixml.hpp>

namespace tidemark::storage::s3::xml {

namespace {

std::string_view localName(const char* name) {
  std::string_view n = name;
  auto colon = n.find(':');
  return colon == std::string_view::npos ? n : n.substr(colon + 1);
}

}  // namespace

std::string Element::name() const {
  return std::string(localName(pugi::xml_node(node_).name()));
}

std::optional<Element> Element::child(std::string_view name) const {
  for (pugi::xml_node c : pugi::xml_node(node_).children())
    if (c.type() == pugi::node_element && localName(c.name()) == name)
      return Element(c.internal_object());
  return std::nullopt;
}

std::vector<Element> Element::children(std::string_view name) const {
  std::vector<Element> out;
  for (pugi::xml_node c : pugi::xml_node(node_).children())
    if (c.type() == pugi::node_element && localName(c.name()) == name)
      out.emplace_back(c.internal_object());
  return out;
}

std::string Element::text() const {
  std::string out;
  for (pugi::xml_node c : pugi::xml_node(node_).children())
    if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) out += c.value();
  return out;
}

std::optional<std::string> Element::childText(std::string_view name) const {
  auto c = child(name);
  if (!c) return std::nullopt;
  return c->text();
}

Document::Document() : document_(std::make_unique<pugi::xml_document>()) {}
Document::Document(Document&&) noexcept = default;
Document& Document::operator=(Document&&) noexcept = default;
Document::~Document() = default;

std::optional<Document> Document::parse(std::string_view text) {
  Document document;
  // parse_default: entities and character references decoded, CDATA kept; no DOCTYPE, no
  // processing instructions, no custom entities.
  pugi::xml_parse_result result = document.document_->load_buffer(
      text.data(), text.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!result || !document.document_->document_element()) return std::nullopt;
  return document;
}

Element Document::root() const& {
  return Element(document_->document_element().internal_object());
}

std::optional<std::string> errorCode(std::string_view body) {
  auto document = Document::parse(body);
  if (!document || document->root().name() != "Error") return std::nullopt;
  return document->root().childText("Code");
}

std::string encode(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

}  // namespace tidemark::storage::s3::xml
