#include "support/did_you_mean.h"

#include <algorithm>

namespace nas {

size_t edit_distance(std::string_view a, std::string_view b) {
  // One row of the dynamic-programming table: names are short, but a row keeps memory
  // linear for the odd long one.
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string closest_name(std::string_view name, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(2, name.size() / 3) + 1;
  for (const std::string& c : candidates) {
    // A candidate whose length alone is too far off cannot be close: skip the table.
    size_t gap = c.size() > name.size() ? c.size() - name.size() : name.size() - c.size();
    if (gap >= best_d || c == name) continue;
    size_t d = edit_distance(name, c);
    if (d < best_d) best_d = d, best = c;
  }
  return best;
}

std::string did_you_mean(std::string_view name, const std::vector<std::string>& candidates) {
  std::string best = closest_name(name, candidates);
  return best.empty() ? std::string() : "; did you mean `" + best + "`?";
}

std::string did_you_mean_or_choices(std::string_view name,
                                    const std::vector<std::string>& candidates) {
  std::string best = closest_name(name, candidates);
  if (!best.empty()) return " (did you mean " + best + "?)";
  std::string all;
  for (const std::string& c : candidates) all += (all.empty() ? "" : ", ") + c;
  return " (expected one of: " + all + ")";
}

}  // namespace nas
