// The live-node mask of a selection, computed over the supernet without rebuilding it:
// a node is live when the output needs it, where a choice needs only its selected
// candidates and Zero needs nothing (it cuts its input). O(nodes + edges); this is what
// PNAS evaluates every step to skip pruned branches.
//
// Precondition: g is topologically ordered (node ids increase along edges) and every
// group of `sel` is in range for its group.
#pragma once

#include <vector>

#include "compiler/ir/ir.h"
#include "compiler/passes/selection.h"

namespace nas {

// mask[id] != 0 when node id is live under `sel`. Input nodes are always live.
std::vector<char> live_mask(const Graph& g, const Selection& sel);

// Same, written into `mask` (resized to g.nodes.size()) to avoid allocating per step.
void live_mask_into(const Graph& g, const Selection& sel, std::vector<char>& mask);

// The mask when every candidate is live (the supernet in "full" mode).
std::vector<char> supernet_mask(const Graph& g);

}  // namespace nas
