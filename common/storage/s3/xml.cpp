// Minimal XML element extraction for S3 responses.
#include "common/storage/s3/xml.h"

#include <charconv>

namespace tidemark::storage::s3::xml {

std::vector<std::string_view> elements(std::string_view doc, std::string_view tag) {
  std::vector<std::string_view> out;
  std::string open = "<" + std::string(tag);
  std::string close = "</" + std::string(tag) + ">";
  std::size_t pos = 0;
  while ((pos = doc.find(open, pos)) != std::string_view::npos) {
    std::size_t after = pos + open.size();
    if (after >= doc.size()) break;
    char c = doc[after];
    if (c != '>' && c != ' ' && c != '/' && c != '\t' && c != '\n' && c != '\r') {
      pos = after;  // a longer tag name with the same prefix (<Key> vs <KeyCount>)
      continue;
    }
    std::size_t end = doc.find('>', after);
    if (end == std::string_view::npos) break;
    if (doc[end - 1] == '/') {
      out.emplace_back();
      pos = end + 1;
      continue;
    }
    std::size_t closeAt = doc.find(close, end + 1);
    if (closeAt == std::string_view::npos) break;
    out.push_back(doc.substr(end + 1, closeAt - end - 1));
    pos = closeAt + close.size();
  }
  return out;
}

std::optional<std::string> first(std::string_view doc, std::string_view tag) {
  auto all = elements(doc, tag);
  if (all.empty()) return std::nullopt;
  return decode(all.front());
}

std::string decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      out.push_back(text[i]);
      continue;
    }
    std::size_t semi = text.find(';', i);
    if (semi == std::string_view::npos) {
      out.push_back('&');
      continue;
    }
    std::string_view entity = text.substr(i + 1, semi - i - 1);
    if (entity == "amp")
      out.push_back('&');
    else if (entity == "lt")
      out.push_back('<');
    else if (entity == "gt")
      out.push_back('>');
    else if (entity == "quot")
      out.push_back('"');
    else if (entity == "apos")
      out.push_back('\'');
    else if (!entity.empty() && entity[0] == '#') {
      bool hex = entity.size() > 1 && (entity[1] == 'x' || entity[1] == 'X');
      std::string_view digits = entity.substr(hex ? 2 : 1);
      unsigned long code = 0;
      auto [end, problem] =
          std::from_chars(digits.data(), digits.data() + digits.size(), code, hex ? 16 : 10);
      // Not a character XML allows (bad digits, NUL, a surrogate, beyond U+10FFFF): keep the text
      // as written rather than make up a character, a NUL byte above all.
      if (digits.empty() || problem != std::errc() || end != digits.data() + digits.size() ||
          code == 0 || (code >= 0xD800 && code <= 0xDFFF) || code > 0x10FFFF) {
        out.append(text.substr(i, semi - i + 1));
        i = semi;
        continue;
      }
      // UTF-8 encode.
      if (code < 0x80) {
        out.push_back(char(code));
      } else if (code < 0x800) {
        out.push_back(char(0xC0 | (code >> 6)));
        out.push_back(char(0x80 | (code & 0x3F)));
      } else if (code < 0x10000) {
        out.push_back(char(0xE0 | (code >> 12)));
        out.push_back(char(0x80 | ((code >> 6) & 0x3F)));
        out.push_back(char(0x80 | (code & 0x3F)));
      } else {
        out.push_back(char(0xF0 | (code >> 18)));
        out.push_back(char(0x80 | ((code >> 12) & 0x3F)));
        out.push_back(char(0x80 | ((code >> 6) & 0x3F)));
        out.push_back(char(0x80 | (code & 0x3F)));
      }
    } else {
      out.append(text.substr(i, semi - i + 1));
    }
    i = semi;
  }
  return out;
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
