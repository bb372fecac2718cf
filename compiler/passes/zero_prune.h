// Zero-pruning: specialises the supernet to one selection. Every choice is replaced by
// its selected candidate (a join by the sum of its k selected inputs); Zero cuts its
// input; zeros are propagated through ops that map zero to zero (activations, pooling,
// scaling, identity) and dropped from sums; finally everything the output no longer
// needs is removed. The result has no choice nodes and no architecture groups.
//
// Preconditions: g is shape-checked and topologically ordered; `sel` has one entry per
// group of g with that group's k candidate indices, each in range.
#pragma once

#include "compiler/ir/ir.h"
#include "compiler/passes/selection.h"

namespace nas {

Graph zero_prune(const Graph& g, const Selection& sel);

}  // namespace nas
