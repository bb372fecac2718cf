// What the search tests share: choice groups made up for the operators' tests, and a
// SearchSetup with hooks like the ones driver/run_setup.cpp gives the CLI's searches.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "compiler/analysis/space_stats.h"
#include "compiler/estimate/param_free.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/passes/genotype.h"
#include "compiler/passes/live_mask.h"
#include "compiler/pipeline/pipeline.h"
#include "runtime/search/search_config.h"
#include "runtime/search/searcher.h"

namespace nas::test {

// A choice `key` of n candidates named c0, c1, ..., picking k of them.
inline ArchSpec spec(const std::string& key, int n, int k = 1) {
  ArchSpec a;
  a.key = key;
  for (int i = 0; i < n; ++i) a.candidates.push_back("c" + std::to_string(i));
  a.k = k;
  return a;
}

// A search setup for `g` and `algorithm`: the plans the algorithm needs (an alpha plan for
// darts and darts2, an evaluation plan for random and evolution), and hooks that describe
// a path (names, arch file, params and MACs over `exec`, the execution graph), derive a
// genotype (counting its parameter-free operations per cell and capping them at
// darts.max_param_free, as the CLI's do), and give a path's live mask and cost.
inline SearchSetup make_search_setup(const Graph& g, const std::string& algorithm,
                                     const SearchConfig& cfg, std::shared_ptr<Graph> exec) {
  SearchSetup setup;
  setup.config = cfg;
  setup.algorithm = algorithm;
  PlanOptions w;
  w.batch = cfg.base.data.effective_mini_batch();
  w.training = true;
  setup.weight_plan = compile_plan(g, w);
  if (algorithm == "darts" || algorithm == "darts2") {
    PlanOptions a = w;
    a.arch_grads = true;
    a.weight_grads = algorithm == "darts2";
    setup.alpha_plan = compile_plan(g, a);
  }
  if (algorithm == "random" || algorithm == "evolution" || cfg.rerank > 0) {
    PlanOptions e;
    e.batch = w.batch;
    setup.eval_plan = compile_plan(g, e);
  }
  auto cost = [exec](const Selection& s) {
    NodeCosts c = node_costs(*exec);
    std::vector<char> mask = live_mask(*exec, s);
    return ArchCost{static_cast<double>(masked_sum(c.params, mask)),
                    static_cast<double>(masked_sum(c.macs, mask))};
  };
  auto describe = [&g, cost](const Selection& s) {
    GenotypeInfo info;
    for (size_t i = 0; i < g.arch.size(); ++i)
      info.names[g.arch[i].key] = g.arch[i].candidates[s.chosen[i][0]];
    info.arch = nlohmann::ordered_json::parse(arch_to_json(g, s));
    const ArchCost c = cost(s);
    info.params = c.params;
    info.macs = c.macs;
    return info;
  };
  auto cells = std::make_shared<ParamFreeCells>(param_free_cells(g));
  setup.hooks.derive = [&g, describe, cells, cap = cfg.darts.max_param_free](
                           const std::vector<std::vector<double>>& probs) {
    const CappedGenotype found = derive_capped_genotype(g, *cells, probs, cap);
    GenotypeInfo info = describe(found.selection);
    for (size_t c = 0; c < cells->names.size(); ++c)
      info.param_free[cells->names[c]] = found.param_free[c];
    for (int gi : found.replaced) info.param_free_replaced.push_back(g.arch[gi].key);
    return info;
  };
  setup.hooks.describe = [describe](const ChoiceSelection& p) { return describe(Selection{p}); };
  setup.hooks.live_mask = [exec](const ChoiceSelection& p) {
    return live_mask(*exec, Selection{p});
  };
  setup.hooks.cost = [cost](const ChoiceSelection& p) { return cost(Selection{p}); };
  return setup;
}

}  // namespace nas::test
