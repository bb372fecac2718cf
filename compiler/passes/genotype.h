// Genotype derivation (DARTS, Liu et al. 2019, section 2.4): from per-choice candidate
// probabilities (softmax(alpha), or PNAS' sampling probabilities) to one architecture.
//
//   - A "node" is an `add` whose inputs are all single-pick choices of distinct keys (a
//     DARTS intermediate node summing its incoming edges). Each of its edges is scored by
//     the largest probability of a non-zero candidate; the `k` strongest edges keep their
//     argmax non-zero candidate, the others select their Zero candidate (dropped edges).
//     A key shared by several cells is decided at its first node, in graph order.
//   - Every other single-pick choice takes its argmax non-zero candidate (Zero only if
//     it is the only candidate); a join (k > 1) takes its k most probable candidates.
//   - Ties go to the lower candidate index.
//
// Precondition: probs[g] has one entry per candidate of group g, for every group.
#pragma once

#include <vector>

#include "compiler/ir/ir.h"
#include "compiler/passes/selection.h"

namespace nas {

struct GenotypeOptions {
  int edges_per_node = 2;  // DARTS keeps the 2 strongest incoming edges per node
};

Selection derive_genotype(const Graph& supernet, const std::vector<std::vector<double>>& probs,
                          const GenotypeOptions& options = {});

// Index of group g's Zero candidate (the candidate input that is a `zero` node in every
// choice of the group), or -1.
int zero_candidate(const Graph& supernet, int group);

}  // namespace nas
