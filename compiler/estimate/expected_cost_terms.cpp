#include "compiler/estimate/expected_cost_terms.h"

#include <map>
#include <string>
#include <unordered_map>

namespace nas {

std::vector<CostTerm> expected_cost_terms(const Graph& g, const std::vector<double>& node_cost) {
  NAS_CHECK(node_cost.size() == g.nodes.size(), "expected_cost_terms: one cost per node");
  std::unordered_map<std::string, int> group_of_key;
  for (size_t i = 0; i < g.arch.size(); ++i) group_of_key[g.arch[i].key] = static_cast<int>(i);
  const int n = static_cast<int>(g.nodes.size());
  // consumers[id] = (consumer, input position)
  std::vector<std::vector<std::pair<int, int>>> consumers(n);
  for (const Node& node : g.nodes)
    for (size_t i = 0; i < node.inputs.size(); ++i)
      consumers[node.inputs[i]].push_back({node.id, static_cast<int>(i)});

  using Chain = std::vector<std::pair<int, int>>;  // outermost edge first
  std::vector<Chain> chain(n);
  std::vector<char> reachable(n, 0);  // some path to the output
  if (g.output >= 0) reachable[g.output] = 1;
  for (int id = n - 1; id >= 0; --id) {
    if (id == g.output) continue;
    bool first = true;
    Chain common;
    for (const auto& [user, pos] : consumers[id]) {
      const Node& u = g.nodes[user];
      if (!reachable[user] || is_zero(u)) continue;  // no path through it
      Chain via = chain[user];
      if (is_choice(u)) {
        auto it = group_of_key.find(u.string_attr("key"));
        NAS_CHECK(it != group_of_key.end(), "choice without arch group");
        via.push_back({it->second, pos});
      }
      if (first) {
        common = std::move(via);
        first = false;
        continue;
      }
      size_t k = 0;  // longest common prefix: the edges on every path
      while (k < common.size() && k < via.size() && common[k] == via[k]) ++k;
      common.resize(k);
    }
    if (first) continue;  // never live
    reachable[id] = 1;
    chain[id] = std::move(common);
  }

  std::map<Chain, double> merged;
  for (int id = 0; id < n; ++id)
    if (reachable[id] && node_cost[id] != 0) merged[chain[id]] += node_cost[id];
  std::vector<CostTerm> terms;
  for (auto& [factors, cost] : merged) terms.push_back({cost, factors});
  return terms;
}

}  // namespace nas
