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

// Precomputes, once per graph, which architecture group each choice node reads, so that
// each mask costs O(nodes + edges) with no lookups. Holds a reference to `g`, which must
// outlive it and stay unchanged.
class LiveMasker {
 public:
  explicit LiveMasker(const Graph& g);
  // mask[id] != 0 when node id is live under `sel`; `mask` is resized to the graph.
  void compute(const Selection& sel, std::vector<char>& mask) const;

 private:
  const Graph& graph_;
  std::vector<int> group_;  // per node: its ArchGroup index, or -1 for non-choices
};

// mask[id] != 0 when node id is live under `sel`. Input nodes are always live.
// (Convenience wrappers that build a LiveMasker per call.)
std::vector<char> live_mask(const Graph& g, const Selection& sel);

// Same, written into `mask` (resized to g.nodes.size()) to avoid allocating per step.
void live_mask_into(const Graph& g, const Selection& sel, std::vector<char>& mask);

// The mask when every candidate is live (the supernet in "full" mode).
std::vector<char> supernet_mask(const Graph& g);

}  // namespace nas
