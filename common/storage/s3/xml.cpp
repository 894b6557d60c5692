// Minimal XML element extraction for S3 responses.
#include "common/storage/s3/xml.h"

#include <cstdlib>

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
    if (entity == "amp") out.push_back('&');
    else if (entity == "lt") out.push_back('<');
    else if (entity == "gt") out.push_back('>');
    else if (entity == "quot") out.push_back('"');
    else if (entity == "apos") out.push_back('\'');
    else if (!entity.empty() && entity[0] == '#') {
      std::string number(entity.substr(1));
      unsigned long code = number.size() > 1 && (number[0] == 'x' || number[0] == 'X')
                               ? std::strtoul(number.c_str() + 1, nullptr, 16)
                               : std::strtoul(number.c_str(), nullptr, 10);
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
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

}  // namespace tidemark::storage::s3::xml
