// When a step of a plan runs: the one rule the interpreter's loop (executor.cpp) and the
// JIT's generated plan function (runtime/jit/plan_codegen.cpp) both follow, so that the two
// skip exactly the same steps.
//
// A step runs when its region's guard is live (the executor's live mask), its kind of
// gradient is wanted, and the values it needs were computed in this run. A gradient sum, a
// choice and an elementwise region need none up front (they add what was computed, or
// decide from their operations); a Zero reads nothing of its input; an architecture
// gradient needs only its incoming gradient. A Fused step never runs: its region's step
// computes it.
#pragma once

#include <vector>

#include "runtime/exec/exec_plan.h"

namespace nas {

struct StepGate {
  bool never = false;              // a fused region's member
  bool weight_grad = false;        // skipped when weight gradients are off
  bool arch_grad = false;          // skipped when architecture gradients are off
  bool ends_forward_only = false;  // the loss: a forward-only run stops after it
  std::vector<int> needs;          // values that must have been computed in this run
};

StepGate step_gate(const Step& step);

// The regions a plan is gated by: its own, or one per step when it has none.
std::vector<Region> gated_regions(const ExecPlan& plan);

}  // namespace nas
