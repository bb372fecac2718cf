// Numbers for people, written the same way by the CLI and the runtime's progress lines:
// exact counts with thousands separators (1,234,567) and short counts with three
// significant digits and a suffix (1.23M), so that "268K MACs" on a search's epoch line
// and on its final line read alike.
#pragma once

#include <cstdint>
#include <string>

namespace nas {

// 1234567 -> "1,234,567"; -1234 -> "-1,234".
std::string with_commas(int64_t v);

// Three significant digits and K, M, G or T from a thousand up: 999 -> "999",
// 1234 -> "1.23K", 56528 -> "56.5K", 268160 -> "268K", 1624224 -> "1.62M". A fraction
// below a thousand is rounded to a whole number.
std::string human_count(double v);

}  // namespace nas
