#include "compiler/analysis/space_stats.h"

#include <cmath>
#include <functional>

#include "compiler/ir/op_registry.h"
#include "compiler/passes/live_mask.h"

namespace nas {

NodeCosts node_costs(const Graph& g) {
  NodeCosts c;
  for (const Node& n : g.nodes) {
    OpCost cost = node_cost(g, n);
    c.params.push_back(cost.params);
    c.macs.push_back(cost.macs);
  }
  return c;
}

int64_t masked_sum(const std::vector<int64_t>& per_node, const std::vector<char>& mask) {
  int64_t total = 0;
  for (size_t i = 0; i < per_node.size(); ++i)
    if (mask[i]) total += per_node[i];
  return total;
}

NetworkCost fixed_network_cost(const Graph& fixed) {
  const NodeCosts costs = node_costs(fixed);
  const std::vector<char> all(fixed.nodes.size(), 1);
  return {masked_sum(costs.params, all), masked_sum(costs.macs, all)};
}

namespace {

double log10_binomial(int n, int k) {
  return (std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0)) / std::log(10.0);
}

// The k-subsets of {0..n-1} in lexicographic order, at most `limit` of them (a join of
// k of many inputs has too many to list; the search then sees the first `limit`).
std::vector<std::vector<int>> subsets(int n, int k, size_t limit = 4096) {
  std::vector<std::vector<int>> out;
  std::vector<int> cur;
  std::function<void(int)> rec = [&](int start) {
    if (static_cast<int>(cur.size()) == k) {
      out.push_back(cur);
      return;
    }
    for (int i = start; i < n && out.size() < limit; ++i) {
      cur.push_back(i);
      rec(i + 1);
      cur.pop_back();
    }
  };
  rec(0);
  return out;
}

}  // namespace

SpaceStats space_stats(const Graph& g, int64_t max_enumerate) {
  SpaceStats s;
  s.num_choices = static_cast<int>(g.arch.size());
  for (const auto& group : g.arch) {
    s.num_choice_nodes += static_cast<int>(group.nodes.size());
    s.log10_space_size += log10_binomial(static_cast<int>(group.candidates.size()), group.k);
  }
  NodeCosts costs = node_costs(g);
  std::vector<char> full = supernet_mask(g);
  s.supernet_params = masked_sum(costs.params, full);
  s.supernet_macs = masked_sum(costs.macs, full);

  // The options of each group: its k-subsets (a join of k <= n is small in practice).
  std::vector<std::vector<std::vector<int>>> options;
  for (const auto& group : g.arch)
    options.push_back(subsets(static_cast<int>(group.candidates.size()), group.k));

  std::vector<char> mask;
  LiveMasker masker(g);
  // Each evaluation walks the whole graph; cap the total work so that a huge space
  // (thousands of chained choices) gets a best-effort answer instead of a hang.
  constexpr int64_t kMaxNodeVisits = 100'000'000;
  const int64_t max_evaluations =
      std::max<int64_t>(1, kMaxNodeVisits / std::max<size_t>(1, g.nodes.size()));
  int64_t evaluations = 0;
  auto params_of = [&](const Selection& sel) {
    ++evaluations;
    masker.compute(sel, mask);
    return masked_sum(costs.params, mask);
  };

  Selection sel = first_candidates(g);
  s.largest = {params_of(sel), sel};
  s.smallest = s.largest;
  if (g.arch.empty()) {
    s.extremes_exact = true;
    return s;
  }
  if (s.log10_space_size <= std::log10(static_cast<double>(max_enumerate)) + 1e-9) {
    // Odometer over all architectures.
    std::vector<size_t> idx(g.arch.size(), 0);
    while (true) {
      for (size_t i = 0; i < idx.size(); ++i) sel.chosen[i] = options[i][idx[i]];
      int64_t p = params_of(sel);
      if (p > s.largest.params) s.largest = {p, sel};
      if (p < s.smallest.params) s.smallest = {p, sel};
      size_t i = 0;
      while (i < idx.size() && ++idx[i] == options[i].size()) idx[i++] = 0;
      if (i == idx.size()) break;
    }
    s.extremes_exact = true;
    return s;
  }
  // Coordinate search: improve one group at a time until no group changes.
  for (int direction : {+1, -1}) {
    ExtremeArch& best = direction > 0 ? s.largest : s.smallest;
    Selection cur = best.selection;
    int64_t cur_params = best.params;
    for (int round = 0; round < 20 && evaluations < max_evaluations; ++round) {
      bool changed = false;
      for (size_t gi = 0; gi < g.arch.size(); ++gi) {
        if (evaluations >= (direction > 0 ? max_evaluations / 2 : max_evaluations)) break;
        std::vector<int> keep = cur.chosen[gi];
        for (const auto& option : options[gi]) {
          cur.chosen[gi] = option;
          int64_t p = params_of(cur);
          if ((p - cur_params) * direction > 0) {
            cur_params = p;
            keep = option;
            changed = true;
          }
        }
        cur.chosen[gi] = keep;
      }
      if (!changed) break;
    }
    best = {cur_params, cur};
  }
  s.search_truncated = evaluations >= max_evaluations / 2;
  return s;
}

}  // namespace nas
