// The terms of DARTS' differentiable cost (runtime/search/expected_cost.h) for a graph:
// for each node, the candidate edges that every path from it to the output passes
// through — (arch group, candidate) pairs, outermost first — so that the node is live
// with probability prod q(g, c). Zero needs no input, so a path through a Zero is no
// path; a node with no path is never live and has no term. Nodes with equal edge lists
// are merged (their costs summed), so a DARTS supernet gives a few hundred terms.
//
// Precondition: g is topologically ordered (node ids increase along edges), and
// node_cost has one entry per node (params, MACs or latency of that node).
#pragma once

#include <vector>

#include "compiler/ir/ir.h"
#include "runtime/search/expected_cost.h"

namespace nas {

std::vector<CostTerm> expected_cost_terms(const Graph& g, const std::vector<double>& node_cost);

}  // namespace nas
