// The structural invariants of an IR graph that every pass relies on (ir.h, live_mask.h),
// checked by the harnesses that produce graphs (fuzz_frontend, fuzz_arch, fuzz_ir) so that
// a broken graph is reported as such in any build, not only when a later index traps.
#pragma once

#include "compiler/ir/ir.h"

namespace nas_fuzz {

// Ids match positions, edges go from lower to higher ids, the output and the inputs are
// nodes, every node has an op, and every group's k and choice nodes are valid.
// `which` names the graph in the finding.
void check_graph(const nas::Graph& g, const char* which);

}  // namespace nas_fuzz
