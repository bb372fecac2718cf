// Lowering: an IR graph and its memory plan become an execution plan (runtime/exec), the
// form the executor and backends run without knowing the front end. One step per node:
// its kind, the values it reads and writes, the attributes and shapes of its (forward)
// op, and the parameters it uses, named "<node name>.<role>" (weight, bias, scale, shift,
// running_mean, running_var). A gradient step carries its forward node's attributes,
// shapes and parameters, so a backend builds the matching backward kernel.
//
// With a fusion plan (the one `plan` was made with), each fused region becomes one
// ElementwiseRegion step at its root, carrying the region's program (RegionOp), and each
// other member a Fused step that does nothing: still one step per node, so value ids,
// node ids and step indices stay one numbering.
//
// Precondition: `plan` was made by plan_memory for `g` (any batch).
#pragma once

#include "compiler/ir/ir.h"
#include "compiler/passes/fusion.h"
#include "compiler/passes/memory_plan.h"
#include "runtime/exec/exec_plan.h"

namespace nas {

ExecPlan lower(const Graph& g, const MemoryPlan& plan, const FusionPlan* fusion = nullptr);

}  // namespace nas
