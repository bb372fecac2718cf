// Shape inference and checking over a whole graph: recomputes every node's shape from
// its inputs with the op registry's rules, in topological order, and reports each
// broken rule at the node's source location. Elaboration checks shapes as it builds;
// this pass re-establishes them after a transformation or on IR read from text.
//
// Precondition: node ids are topologically ordered (inputs have smaller ids).
#pragma once

#include "compiler/ir/ir.h"

namespace nas {

// Returns false when any node breaks its op's rule (errors go to diags).
bool infer_shapes(Graph& g, Diagnostics& diags);

}  // namespace nas
