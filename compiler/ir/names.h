// Helpers for names and text in messages and in the IR text, shared by the front end and
// the IR: "did you mean" suggestions for misspelt names, UTF-8 validation, and JSON
// string quoting (the IR header and `nasc check --json` print values as JSON).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace nas {

// Levenshtein distance (insertions, deletions, substitutions, each costing 1).
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `name`, if it is a near miss: at most max(2, |name| / 3) edits
// away, so that short names get a suggestion for a typo or two and long names for a few
// more, but unrelated names get none. The first of equally close candidates wins; `name`
// itself is never suggested. Empty when none is close.
std::string closest_name(std::string_view name, const std::vector<std::string>& candidates);

// "; did you mean `x`?" for the closest candidate, or "" when none is close.
std::string did_you_mean(std::string_view name, const std::vector<std::string>& candidates);

// Length of the well-formed UTF-8 sequence at text[i] (RFC 3629: no overlong forms,
// surrogates or code points above U+10FFFF), or 0 when the bytes there are not one.
size_t utf8_length(std::string_view text, size_t i);

// `text` as a JSON string literal, quotes included: `"`, `\` and control characters are
// escaped, and bytes that are not valid UTF-8 become U+FFFD, so that the result is valid
// JSON whatever `text` holds (--set values come from the command line, unchecked).
std::string json_quote(std::string_view text);

}  // namespace nas
