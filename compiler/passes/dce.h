// Dead-code elimination: drops every node the output does not depend on (Zero does not
// depend on its input), renumbers the rest in order, and drops architecture groups that
// lose all their choice nodes.
//
// Precondition: g is topologically ordered and g.output is set.
#pragma once

#include "compiler/ir/ir.h"

namespace nas {

Graph eliminate_dead_code(const Graph& g);

// Keeps the nodes with keep[id] != 0 (inputs of kept nodes must be kept, except the
// input of a kept Zero, which is dropped), renumbering ids. Shared by DCE and pruning.
Graph compact(const Graph& g, const std::vector<char>& keep);

}  // namespace nas
