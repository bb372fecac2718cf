// Summary statistics of a search space, for `nasc check`: choices and their sizes, the
// number of distinct architectures (log10), and parameter/MAC counts of the supernet and
// of the largest and smallest sub-networks. Costs are summed over live-node masks, so
// Zero-pruning is respected and nothing is rebuilt per architecture.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/ir/ir.h"
#include "compiler/passes/selection.h"

namespace nas {

struct NodeCosts {
  std::vector<int64_t> params, macs;  // per node id
};
NodeCosts node_costs(const Graph& g);

// Sums over nodes with mask[id] != 0.
int64_t masked_sum(const std::vector<int64_t>& per_node, const std::vector<char>& mask);

// The params and MACs of a fixed network (a specialised one: every node counts).
struct NetworkCost {
  int64_t params = 0, macs = 0;
};
NetworkCost fixed_network_cost(const Graph& fixed);

struct ExtremeArch {
  int64_t params = 0;
  Selection selection;
};

struct SpaceStats {
  int num_choices = 0;  // architecture groups (shared keys count once)
  int num_choice_nodes = 0;
  double log10_space_size = 0;  // sum over groups of log10(C(n, k))
  int64_t supernet_params = 0, supernet_macs = 0;
  ExtremeArch largest, smallest;
  bool extremes_exact = false;    // enumerated every architecture
  bool search_truncated = false;  // coordinate search stopped at its work limit
};

// Largest/smallest are exact when the space has at most `max_enumerate` architectures;
// otherwise they come from coordinate ascent/descent over the choices, which is exact
// whenever the candidates' costs are independent (the usual case) and a bound otherwise.
SpaceStats space_stats(const Graph& g, int64_t max_enumerate = 4096);

}  // namespace nas
