#include "support/format.h"

#include <cmath>
#include <cstdio>

namespace nas {

std::string with_commas(int64_t v) {
  // Digits of the magnitude, taken without negating v (which overflows for INT64_MIN).
  uint64_t magnitude = v < 0 ? uint64_t{0} - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  std::string digits = std::to_string(magnitude), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return (v < 0 ? "-" : "") + out;
}

std::string human_count(double v) {
  if (!std::isfinite(v)) return std::to_string(v);
  const char* sign = v < 0 ? "-" : "";
  double a = std::fabs(v);
  char buf[48];
  if (std::round(a) < 1000) {
    std::snprintf(buf, sizeof buf, "%s%.0f", sign, a);
    return buf;
  }
  static const char kSuffix[] = {'K', 'M', 'G', 'T'};
  int s = 0;
  a /= 1000;
  while (s + 1 < 4 && a >= 1000) {
    a /= 1000;
    ++s;
  }
  // Decimals for three significant digits; a value that rounds up to the next power of
  // ten loses one (9.996K is "10.0K", 999.6K is "1.00M").
  int decimals = a < 10 ? 2 : a < 100 ? 1 : 0;
  double rounded = std::round(a * std::pow(10, decimals)) / std::pow(10, decimals);
  if (rounded >= 1000 && s + 1 < 4) {
    a /= 1000;
    ++s;
    decimals = 2;
  } else if (decimals > 0 && rounded >= std::pow(10, 3 - decimals)) {
    --decimals;
  }
  std::snprintf(buf, sizeof buf, "%s%.*f%c", sign, decimals, a, kSuffix[s]);
  return buf;
}

}  // namespace nas
