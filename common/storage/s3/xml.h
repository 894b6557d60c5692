// Just enough XML for S3 responses: the text of named elements, in order, entity-decoded.
// S3 answers are flat, predictable documents (ListObjectsV2, errors, multipart); a general
// parser would be more code to get wrong.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tidemark::storage::s3::xml {

// The raw inner text of each <tag>...</tag> (or <tag attr="..">...</tag>) in `document`, in order.
// Self-closing <tag/> elements give "".
std::vector<std::string_view> elements(std::string_view document, std::string_view tag);

// The decoded text of the first <tag> element, if any.
std::optional<std::string> first(std::string_view document, std::string_view tag);

// Decodes &amp; &lt; &gt; &quot; &apos; &#N; &#xN;.
std::string decode(std::string_view text);

// Encodes text for an element body.
std::string encode(std::string_view text);

}  // namespace tidemark::storage::s3::xml
