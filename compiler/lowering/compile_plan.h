// From a network graph to a ready-to-run execution plan, in one call: the training plan
// (autodiff, fwd+bwd memory plan, lowering) or the evaluation plan (forward + loss), at a
// given batch size. Batch size is a compile parameter: a training plan at batch B and an
// inference plan at batch 1 come from the same graph and bind to the same ParamStore.
#pragma once

#include <cstdint>

#include "compiler/ir/ir.h"
#include "runtime/exec/exec_plan.h"

namespace nas {

struct PlanOptions {
  int64_t batch = 1;
  bool training = false;     // forward + loss + backward; else forward + loss
  bool arch_grads = false;   // training a supernet in full mode: gradients for alpha
  bool weight_grads = true;  // false: an alpha-only plan (smaller: see AutodiffOptions)
};

// The passes between a network and autodiff: common-subexpression elimination (shared
// relu(h) in DARTS edges). `nasc ir --stage grad|plan|train-plan` and compile_plan use it.
Graph execution_graph(const Graph& network);

// Throws UserError, at the network's source, for networks the executor cannot run
// (several inputs, logits that are not a vector).
ExecPlan compile_plan(const Graph& network, const PlanOptions& options);

}  // namespace nas
