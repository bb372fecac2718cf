// Genotype derivation (DARTS, Liu et al. 2019, section 2.4): from per-choice candidate
// probabilities (softmax(alpha), or PNAS' sampling probabilities) to one architecture.
//
//   - A "node" is an `add` whose inputs are all single-pick choices of distinct keys (a
//     DARTS intermediate node summing its incoming edges). Each of its edges is scored by
//     the largest probability of a non-zero candidate; the `k` strongest edges keep their
//     argmax non-zero candidate, the others select their Zero candidate (dropped edges).
//     A key shared by several cells is decided at its first node, in graph order.
//     With PC-DARTS' edge normalisation (compiler/passes/partial_channels.h), an edge's
//     score is its best non-zero probability times its node's edge weight
//     (GenotypeOptions::edge_weights).
//   - Every other single-pick choice takes its argmax non-zero candidate (Zero only if
//     it is the only candidate); a join (k > 1) takes its k most probable candidates.
//   - Ties go to the lower candidate index.
//
// Precondition: probs[g] has one entry per candidate of group g, for every group.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "compiler/ir/ir.h"
#include "compiler/passes/selection.h"

namespace nas {

struct GenotypeOptions {
  int edges_per_node = 2;  // DARTS keeps the 2 strongest incoming edges per node
  // PC-DARTS: edge_weights_key(a node's edge keys) -> softmax(beta), one weight per edge in
  // the node's input order. Nodes without an entry rank their edges by probability alone.
  std::map<std::string, std::vector<double>> edge_weights;
};

// The architecture groups of a DARTS node's edges, in input order: for an `add` of two or
// more single-pick choices of distinct keys; otherwise empty. `group_of_node[id]` is the
// group of choice node id, -1 for other nodes.
std::vector<int> darts_node_edges(const Graph& g, const Node& n,
                                  const std::vector<int>& group_of_node);
// Per node id, the index of the architecture group of a choice node; -1 for other nodes.
std::vector<int> group_of_nodes(const Graph& g);
// The key of the edge-weight group (PC-DARTS' beta) of a node whose edges have these keys:
// "edges:" and the keys joined by ",".
std::string edge_weights_key(const std::vector<std::string>& edge_keys);

Selection derive_genotype(const Graph& supernet, const std::vector<std::vector<double>>& probs,
                          const GenotypeOptions& options = {});

// Index of group g's Zero candidate (the candidate input that is a `zero` node in every
// choice of the group), or -1.
int zero_candidate(const Graph& supernet, int group);

}  // namespace nas
