#include "runtime/search/expected_cost.h"

#include <string>

#include "support/errors.h"

namespace nas {

double expected_cost(const std::vector<CostTerm>& terms, const std::vector<ArchSpec>& groups,
                     const std::vector<std::vector<double>>& probs,
                     std::vector<std::vector<double>>* dalpha) {
  NAS_CHECK(probs.size() == groups.size(), "expected_cost: " + std::to_string(probs.size()) +
                                               " probability vectors for " +
                                               std::to_string(groups.size()) + " choices");
  auto q = [&](const std::pair<int, int>& f) {
    return std::max(1, groups[f.first].k) * probs[f.first][f.second];
  };
  std::vector<std::vector<double>> dprobs(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) dprobs[g].assign(probs[g].size(), 0.0);
  double total = 0;
  for (const CostTerm& t : terms) {
    double prod = t.cost;
    for (const auto& f : t.factors) prod *= q(f);
    total += prod;
    if (dalpha == nullptr) continue;
    // d/dp of cost * prod q: the product of the other factors, times k.
    for (size_t j = 0; j < t.factors.size(); ++j) {
      double others = t.cost * std::max(1, groups[t.factors[j].first].k);
      for (size_t i = 0; i < t.factors.size(); ++i)
        if (i != j) others *= q(t.factors[i]);
      dprobs[t.factors[j].first][t.factors[j].second] += others;
    }
  }
  if (dalpha != nullptr) {
    dalpha->assign(groups.size(), {});
    for (size_t g = 0; g < groups.size(); ++g) {
      // softmax Jacobian: d/dalpha_j = p_j * (dp_j - sum_c p_c dp_c).
      double dot = 0;
      for (size_t c = 0; c < probs[g].size(); ++c) dot += probs[g][c] * dprobs[g][c];
      (*dalpha)[g].resize(probs[g].size());
      for (size_t c = 0; c < probs[g].size(); ++c)
        (*dalpha)[g][c] = probs[g][c] * (dprobs[g][c] - dot);
    }
  }
  return total;
}

}  // namespace nas
