#include "compiler/estimate/param_free.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "compiler/analysis/space_stats.h"
#include "compiler/estimate/expected_cost_terms.h"
#include "compiler/passes/genotype.h"

namespace nas {

ParamFreeCells param_free_cells(const Graph& g) {
  const NodeCosts costs = node_costs(g);
  std::vector<double> params(costs.params.begin(), costs.params.end());
  // A node's term lists the candidates every path from it to the output passes through:
  // its parameters belong to each of them (a nested candidate's to its outer one too).
  std::vector<std::vector<double>> candidate_params(g.arch.size());
  for (size_t i = 0; i < g.arch.size(); ++i)
    candidate_params[i].assign(g.arch[i].candidates.size(), 0.0);
  for (const CostTerm& t : expected_cost_terms(g, params))
    for (const auto& [group, candidate] : t.factors) candidate_params[group][candidate] += t.cost;

  ParamFreeCells cells;
  std::map<std::string, int> cell_index;
  for (size_t i = 0; i < g.arch.size(); ++i) {
    const ArchGroup& a = g.arch[i];
    const int zero = zero_candidate(g, static_cast<int>(i));
    std::vector<char> free(a.candidates.size(), 0);
    for (size_t c = 0; c < free.size(); ++c)
      free[c] = static_cast<int>(c) != zero && candidate_params[i][c] == 0;
    cells.param_free.push_back(std::move(free));
    cells.zero.push_back(zero);
    if (a.k != 1) {
      cells.cell.push_back(-1);
      continue;
    }
    const size_t slash = a.key.rfind('/');
    const std::string name = slash == std::string::npos ? "" : a.key.substr(0, slash);
    auto [it, added] = cell_index.emplace(name, static_cast<int>(cells.names.size()));
    if (added) cells.names.push_back(name);
    cells.cell.push_back(it->second);
  }
  return cells;
}

std::vector<int64_t> count_param_free(const ParamFreeCells& cells, const Selection& sel) {
  NAS_CHECK(sel.chosen.size() == cells.cell.size(), "param_free: a selection of another space");
  std::vector<int64_t> counts(cells.names.size(), 0);
  for (size_t g = 0; g < cells.cell.size(); ++g)
    if (cells.cell[g] >= 0 && cells.param_free[g][sel.chosen[g].at(0)]) ++counts[cells.cell[g]];
  return counts;
}

std::vector<int> cap_param_free(const ParamFreeCells& cells,
                                const std::vector<std::vector<double>>& probs, int64_t cap,
                                Selection& sel) {
  NAS_CHECK(cap >= 0, "param_free: a negative cap");
  NAS_CHECK(probs.size() == cells.cell.size() && sel.chosen.size() == cells.cell.size(),
            "param_free: probabilities or a selection of another space");
  std::vector<int> changed;
  for (size_t cell = 0; cell < cells.names.size(); ++cell) {
    std::vector<int> picks;  // this cell's parameter-free picks, weakest first
    for (size_t g = 0; g < cells.cell.size(); ++g)
      if (cells.cell[g] == static_cast<int>(cell) && cells.param_free[g][sel.chosen[g][0]])
        picks.push_back(static_cast<int>(g));
    std::stable_sort(picks.begin(), picks.end(), [&](int a, int b) {
      return probs[a][sel.chosen[a][0]] < probs[b][sel.chosen[b][0]];
    });
    int64_t excess = static_cast<int64_t>(picks.size()) - cap;
    for (size_t i = 0; i < picks.size() && excess > 0; ++i) {
      const int g = picks[i];
      const int zero = cells.zero[g];
      int best = -1;
      for (int c = 0; c < static_cast<int>(probs[g].size()); ++c)
        if (c != zero && !cells.param_free[g][c] && (best < 0 || probs[g][c] > probs[g][best]))
          best = c;
      if (best < 0) continue;  // nothing with parameters on this edge
      sel.chosen[g] = {best};
      changed.push_back(g);
      --excess;
    }
  }
  std::sort(changed.begin(), changed.end());
  return changed;
}

CappedGenotype derive_capped_genotype(const Graph& g, const ParamFreeCells& cells,
                                      const std::vector<std::vector<double>>& probs, int64_t cap,
                                      const GenotypeOptions& options) {
  CappedGenotype out;
  out.selection = derive_genotype(g, probs, options);
  out.param_free = count_param_free(cells, out.selection);
  if (cap >= 0) out.replaced = cap_param_free(cells, probs, cap, out.selection);
  return out;
}

}  // namespace nas
