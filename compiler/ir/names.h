// Helpers for text in messages and in the IR text, shared by the front end and the IR:
// UTF-8 validation and JSON string quoting (the IR header and `nasc check --json` print
// values as JSON). "Did you mean" suggestions live in support/did_you_mean.h.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace nas {

// Length of the well-formed UTF-8 sequence at text[i] (RFC 3629: no overlong forms,
// surrogates or code points above U+10FFFF), or 0 when the bytes there are not one.
size_t utf8_length(std::string_view text, size_t i);

// `text` as a JSON string literal, quotes included: `"`, `\` and control characters are
// escaped, and bytes that are not valid UTF-8 become U+FFFD, so that the result is valid
// JSON whatever `text` holds (--set values come from the command line, unchecked).
std::string json_quote(std::string_view text);

}  // namespace nas
