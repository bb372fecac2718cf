// What the fused steps whose program a backend runs as one kernel compute (a training batch
// norm, a global average pool), read from their Step and checked once, for every backend
// that runs them (the CPU backend's kernels, the JIT's generated code). Free of oneDNN and
// LLVM.
//
// A batch norm step is a batch norm of its own (BatchNorm: (x); BatchNormGrad: (dy, x) or, from the
// output, (dy, y)) or a fused region (compiler/passes/fusion.h, exec_plan.h):
//   - BatchNorm: region[0] the batchnorm, then the activations applied after it
//     (region[1..], each an Activation). The step's output is the last activation's; the
//     batch norm's own output is written too when the backward pass reads it (stored).
//   - BatchNormGrad: region[0] the incoming gradient's operation, an ActivationGrad
//     (g, x of the activation) or a ChoiceGradInput (a mixed op candidate's share of g,
//     scaled by its weight); region[1] the batchnorm_grad (operand 1: x, or y from the
//     output); region[2], optional, the candidate's d/dw (a ChoiceGradArch: sum(g * y),
//     from the output only).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "runtime/exec/exec_plan.h"

namespace nas {

struct BatchNormProgram {
  bool forward = true;       // BatchNorm; else BatchNormGrad
  bool fused = false;        // a region (see above), else a batch norm of its own
  bool from_output = false;  // BatchNormGrad: its gradient reads y, not x

  // Values (ExecPlan::values) by index, -1 where absent.
  int x = -1;                 // forward: the batch norm's input
  int y = -1;                 // forward, fused: the batch norm's own output when stored, else -1
  int g = -1;                 // backward: the incoming gradient (before the prologue)
  int saved = -1;             // backward: what the gradient reads saved, x or y (from_output)
  int activation_input = -1;  // backward: the prologue activation's input (an ActivationGrad)

  // Forward: the activations after the batch norm, in order (op name, formula attribute).
  std::vector<std::pair<std::string, double>> epilogue;
  // Backward: the prologue's activation (empty op: none).
  std::string prologue_op;
  double prologue_param = 0.0;
  // Backward: a ChoiceGradInput prologue's candidate (its weight scales g), and the d/dw
  // a region takes (ChoiceGradArch), as (group, index) into the choice weights; -1: none.
  int share_group = -1, share_index = -1;
  int product_group = -1, product_index = -1;

  // Step `s` of `plan` (a BatchNorm or BatchNormGrad step); an InternalError naming the
  // step when its region is not one of the shapes above or an operand is out of range.
  static BatchNormProgram of(const ExecPlan& plan, const Step& s);
};

// A GlobalAvgPool step's activations before the mean, in order: its region's operations
// but the last (the pool; fusion.h), none for a pool of its own. An InternalError naming
// the step when one is not an Activation.
std::vector<const RegionOp*> pooled_activations(const Step& s);

}  // namespace nas
