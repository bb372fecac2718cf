// The units the fusion-aware latency estimate measures as one piece, in context. The
// executor has no fused kernels yet, so a unit is a maximal run of consecutive plan steps
// that belong to the same place between choice points: one candidate of one choice (a
// candidate block, e.g. a whole inverted residual block of MobileNetV2), or a fixed chain
// outside every choice (a stem, a head). `nasc profile` times each unit inside whole
// sub-network runs (runtime/estimate/profiler.h), so its entry includes what a sum of
// isolated step measurements misses: weights and kernel code no longer hot in cache
// when the step comes round again, the executor's per-step work.
//
// "Belongs to" is ownership on the graph: a node is owned by candidate j of choice x when
// everything that reads it leads only into input j of x; a node read from several places
// is owned by the innermost context enclosing all of them (a lowest common ancestor in
// the tree of choice contexts); the output and what it needs outside every choice are
// owned by the root. Zero consumers do not count (Zero does not read its input). Choice
// and input steps are never inside a unit (choices are the choice points), and a run with
// no step that costs something (a lone view) is not a unit.
#pragma once

#include <vector>

#include "compiler/ir/ir.h"

namespace nas {

// g: the execution graph the plan was lowered from (execution_graph(network)); steps:
// the plan's step count (the loss step after g's nodes belongs to the root). Returns, per
// step, its unit (numbered from 0 in step order) or -1.
std::vector<int> latency_units(const Graph& g, size_t steps);

}  // namespace nas
