// Common-subexpression elimination for execution: a parameter-free, deterministic node
// whose op, inputs and attributes equal an earlier node's is replaced by that node, and
// what only it fed is dropped (DCE). In DARTS every candidate of an edge starts with its
// own relu(h); after CSE the four convolution candidates share one, which saves three
// activations per edge in memory and three ReLUs forward and backward.
//
// Nodes with weights (conv, dwconv, linear, batchnorm) are never merged (equal attributes
// do not mean equal weights), nor is dropout (its mask is random). Merged nodes keep the
// name of the first one. The result has the same output and architecture groups.
//
// Precondition: g is topologically ordered and shape-checked.
#pragma once

#include "compiler/ir/ir.h"

namespace nas {

Graph eliminate_common_subexpressions(const Graph& g);

}  // namespace nas
