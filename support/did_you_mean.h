// "Did you mean" suggestions for misspelt names, shared by the compiler's diagnostics
// (attributes, modules, names in scope) and the runtime's strict config readers (keys,
// data set names), so that both suggest the same near misses.
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

// "; did you mean `x`?" for the closest candidate, or "" when none is close: the
// compiler's diagnostics append it to their message.
std::string did_you_mean(std::string_view name, const std::vector<std::string>& candidates);

// " (did you mean x?)" for a near miss, else " (expected one of: a, b, c)" so that the
// user sees the choice: the suffix of every unknown-key message of the strict configs.
std::string did_you_mean_or_choices(std::string_view name,
                                    const std::vector<std::string>& candidates);

}  // namespace nas
