// How the JIT runs a depthwise convolution step with a generated body (depthwise_codegen.h):
// the body's slots filled from the run's state, the body run over the planes (forward, data
// gradient) or the channels (weight gradient) across the threads.
#pragma once

#include <cstdint>

#include "runtime/exec/backend.h"
#include "runtime/exec/exec_plan.h"
#include "runtime/jit/jit_runtime.h"

namespace nas {

// The slots of a body, by pass (null where absent):
//   forward:         reads X, W and B (the bias), writes Y;
//   data gradient:   reads Y (dy) and W, writes X (dx);
//   weight gradient: reads X and Y (dy), adds to W (dw) and B (db).
enum DepthwiseSlot { kDwX, kDwW, kDwB, kDwY, kDwSlots };

// The pass of a depthwise step: its StepKind's.
enum class DepthwisePass { Forward, Data, Weights };
DepthwisePass depthwise_pass(const Step& s);

class DepthwiseRun {
 public:
  DepthwiseRun(const Step& s, RegionBody body);
  // Runs the step on `st`; it always writes its output.
  bool run(RunState& st);

 private:
  RegionBody body_;
  DepthwisePass pass_;
  int64_t items_ = 0, elements_ = 0;  // what the body is run over (planes or channels), values
  // Values and parameters by their indices (exec_plan.h), -1 where absent.
  int x_ = -1, y_ = -1, weight_ = -1, bias_ = -1;
};

}  // namespace nas
