#include "runtime/search/choice_modes.h"

#include <algorithm>
#include <numeric>

#include "support/errors.h"
#include "support/rng.h"

namespace nas {

ChoiceMode parse_choice_mode(const std::string& name) {
  if (name == "full") return ChoiceMode::Full;
  if (name == "sample") return ChoiceMode::Sample;
  if (name == "max") return ChoiceMode::Max;
  if (name == "fair") return ChoiceMode::Fair;
  // The config parser allows only known modes (pnas.path).
  internal_error(__FILE__, __LINE__,
                 "unknown choice mode \"" + name + "\" (expected one of: full, sample, max, fair)");
}

const char* choice_mode_name(ChoiceMode mode) {
  switch (mode) {
    case ChoiceMode::Full:
      return "full";
    case ChoiceMode::Sample:
      return "sample";
    case ChoiceMode::Max:
      return "max";
    case ChoiceMode::Fair:
      return "fair";
  }
  return "?";
}

std::vector<int> sample_candidates(const std::vector<double>& probs, int k, uint64_t seed) {
  const int n = static_cast<int>(probs.size());
  NAS_CHECK(k >= 1 && k <= n,
            "cannot draw " + std::to_string(k) + " of " + std::to_string(n) + " candidates");
  Rng rng(seed);
  std::vector<double> left = probs;
  std::vector<int> picks;
  for (int t = 0; t < k; ++t) {
    double total = 0;
    for (int c = 0; c < n; ++c) total += left[c];
    // A float in [0, total): walk the cumulative sum. With every remaining probability 0
    // (all mass already drawn) fall back to the first candidate not picked yet.
    const double u = static_cast<double>(rng.uniform_float()) * total;
    int pick = -1;
    double acc = 0;
    for (int c = 0; c < n; ++c) {
      if (left[c] <= 0) continue;
      acc += left[c];
      if (u < acc) {
        pick = c;
        break;
      }
      pick = c;  // rounding: the last positive candidate
    }
    if (pick < 0)
      for (int c = 0; c < n && pick < 0; ++c)
        if (std::find(picks.begin(), picks.end(), c) == picks.end()) pick = c;
    picks.push_back(pick);
    left[pick] = 0;
  }
  return picks;
}

std::vector<double> log_prob_gradient(const std::vector<double>& probs,
                                      const std::vector<int>& picks) {
  std::vector<double> grad(probs.size(), 0.0);
  std::vector<double> left = probs;
  for (int pick : picks) {
    double total = 0;
    for (double p : left) total += p;
    // log P(pick | remaining) = alpha_pick - log sum_{c remaining} exp(alpha_c); its
    // gradient is one-hot(pick) minus the remaining candidates' renormalised probs.
    grad[pick] += 1.0;
    if (total > 0)
      for (size_t c = 0; c < left.size(); ++c) grad[c] -= left[c] / total;
    left[pick] = 0;
  }
  return grad;
}

ChoiceSelection select_path(ChoiceMode mode, const std::vector<ArchSpec>& groups,
                            const std::vector<std::vector<double>>& probs, uint64_t seed,
                            int64_t step) {
  NAS_CHECK(mode != ChoiceMode::Full, "the full choice mode runs every candidate: it has no path");
  NAS_CHECK(mode == ChoiceMode::Fair || probs.size() == groups.size(),
            "select_path: " + std::to_string(probs.size()) + " probability vectors for " +
                std::to_string(groups.size()) + " choices");
  ChoiceSelection out(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    const int n = static_cast<int>(groups[g].candidates.size());
    const int k = std::min(groups[g].k, n);
    NAS_CHECK(mode == ChoiceMode::Fair || probs[g].size() == static_cast<size_t>(n),
              "select_path: choice `" + groups[g].key + "` has " + std::to_string(n) +
                  " candidates, " + std::to_string(probs[g].size()) + " probabilities");
    const uint64_t group_seed = derive_seed(seed, g);
    switch (mode) {
      case ChoiceMode::Sample:
        out[g] =
            sample_candidates(probs[g], k, derive_seed(group_seed, static_cast<uint64_t>(step)));
        break;
      case ChoiceMode::Max: {
        std::vector<int> order(n);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(),
                         [&](int a, int b) { return probs[g][a] > probs[g][b]; });
        out[g].assign(order.begin(), order.begin() + k);
        break;
      }
      case ChoiceMode::Fair: {
        // Cycle c = step / m covers steps [c*m, (c+1)*m) with m = ceil(n / k) picks of k;
        // its permutation comes from (seed, group, c), so every candidate appears once.
        const int64_t per_cycle = (n + k - 1) / k;
        const int64_t cycle = step / per_cycle, slot = step % per_cycle;
        std::vector<int> perm(n);
        std::iota(perm.begin(), perm.end(), 0);
        Rng rng(derive_seed(group_seed, static_cast<uint64_t>(cycle)));
        rng.shuffle(perm);
        for (int t = 0; t < k; ++t) out[g].push_back(perm[(slot * k + t) % n]);
        break;
      }
      case ChoiceMode::Full:
        break;
    }
  }
  return out;
}

}  // namespace nas
