// Lowering: an IR graph and its memory plan become an execution plan (runtime/exec), the
// form the executor and backends run without knowing the front end. One step per node:
// its kind, the values it reads and writes, the attributes and shapes of its (forward)
// op, and the parameters it uses, named "<node name>.<role>" (weight, bias, scale, shift,
// running_mean, running_var). A gradient step carries its forward node's attributes,
// shapes and parameters, so a backend builds the matching backward kernel.
//
// Precondition: `plan` was made by plan_memory for `g` (any batch).
#pragma once

#include "compiler/ir/ir.h"
#include "compiler/passes/memory_plan.h"
#include "runtime/exec/exec_plan.h"

namespace nas {

ExecPlan lower(const Graph& g, const MemoryPlan& plan);

}  // namespace nas
