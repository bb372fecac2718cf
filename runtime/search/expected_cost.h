// The differentiable cost of a supernet in DARTS' full mode: the expectation of a cost
// (params, MACs, latency) over architectures drawn from softmax(alpha), as a polynomial
// in the candidate probabilities that the compiler derives from the graph
// (compiler/estimate/expected_cost_terms.h):
//
//   E[cost] = sum over terms t of cost_t * prod over (g, c) in t.factors of q(g, c),
//
// where q(g, c) = k_g * p_g[c] is the chance that candidate c of group g is picked (k_g
// picks of a join counted as k independent draws). A node's term lists the candidate
// edges every path from it to the output goes through, so Zero contributes 0 and cuts its
// branch, and a shared stem costs in full. The expectation is exact for nested choices
// whose candidates share nothing but always-needed inputs; a node that several candidate
// edges need is counted by the edges common to all its paths, which over-counts it (an
// upper bound) when it can be dead under some selections.
#pragma once

#include <utility>
#include <vector>

#include "runtime/exec/exec_plan.h"

namespace nas {

struct CostTerm {
  double cost = 0;
  std::vector<std::pair<int, int>> factors;  // (arch group, candidate)
};

// E[cost] at `probs` (softmax(alpha) per group). With `dalpha`, also its gradient with
// respect to the logits alpha (the softmax Jacobian applied), one vector per group.
double expected_cost(const std::vector<CostTerm>& terms, const std::vector<ArchSpec>& groups,
                     const std::vector<std::vector<double>>& probs,
                     std::vector<std::vector<double>>* dalpha = nullptr);

}  // namespace nas
