// How the JIT runs a batch norm region of a training plan: its generated body
// (batchnorm_codegen.h) over the channels, across the threads (nasc_jit_parallel_channels),
// with the body's slots filled from the run's state, and the rest of the step here: the
// batch norm output marked computed for the backward pass, the channels' d/dw summed in
// order into the mixed op's weight gradient. Two runs go to the library step instead,
// which does them differently: batch norm synchronised across ranks (its statistics over
// the global batch), and a candidate's gradient whose weight is 0 (it does not run, though
// its d/dw is still taken).
#pragma once

#include <vector>

#include "runtime/exec/backend.h"
#include "runtime/exec/exec_plan.h"
#include "runtime/exec/region_programs.h"
#include "runtime/jit/jit_runtime.h"

namespace nas {

// The slots of a forward body, null where absent: the batch norm's input, its output
// (stored only when the backward pass reads it), the region's output, scale and shift, the
// saved batch mean and variance (written), the running mean and variance (updated).
enum BatchNormForwardSlot {
  kFwdX,
  kFwdY,
  kFwdOut,
  kFwdScale,
  kFwdShift,
  kFwdMean,
  kFwdVar,
  kFwdRunningMean,
  kFwdRunningVar,
  kFwdSlots
};

// A backward body's: the incoming g, the activation's input (an ActivationGrad prologue),
// what the gradient reads saved (the batch norm's input x, or its output y from the output),
// dx, scale, the saved mean and variance, the gradients of scale and shift (added to; null:
// none), the candidate's weight (float*; a ChoiceGradInput prologue) and each channel's d/dw
// (double*, written; null: not taken in this run).
enum BatchNormBackwardSlot {
  kBwdG,
  kBwdActivationInput,
  kBwdSaved,
  kBwdDx,
  kBwdScale,
  kBwdMean,
  kBwdVar,
  kBwdGradScale,
  kBwdGradShift,
  kBwdWeight,
  kBwdProducts,
  kBwdSlots
};

class BatchNormRegionRun {
 public:
  // Step `s` of `plan`, run by `body`, its statistics (mean, then variance, c floats each)
  // at `stats`, which the library's steps share.
  BatchNormRegionRun(const ExecPlan& plan, const Step& s, RegionBody body, float* stats);

  // Runs step `index` on `st` (the library's own step where it must, see above); returns
  // whether it wrote its output.
  bool run(size_t index, RunState& st, PreparedPlan& library);

 private:
  bool run_forward(RunState& st);
  bool run_backward(RunState& st, float weight);

  RegionBody body_;
  float* stats_;
  BatchNormProgram program_;
  int64_t channels_, elements_;
  int out_ = -1;  // the step's output value (exec_plan.h)
  // Parameters by their indices (exec_plan.h), -1 where absent.
  int scale_ = -1, shift_ = -1, running_mean_ = -1, running_var_ = -1;
  std::vector<double> products_;  // per channel: the d/dw, when the region takes it
};

}  // namespace nas
