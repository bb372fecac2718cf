// A selection fixes every architecture choice: for each ArchGroup (by index in
// Graph::arch) the indices of the chosen candidates (one for a choice, k for a join).
#pragma once

#include <vector>

#include "compiler/ir/ir.h"

namespace nas {

struct Selection {
  std::vector<std::vector<int>> chosen;  // chosen[group index] = candidate indices
};

// The selection that picks, for every group, the first k candidates.
Selection first_candidates(const Graph& g);

}  // namespace nas
