// The text form of a lowered ExecPlan (`nasc ir --stage lower`, `nasc opt --passes
// ...,lower`, the FileCheck tests): the plan's header (batch, mode, arena size, the
// values' element type and layout, input and output values), its parameters,
// architecture groups and regions (when lowering made any), then one line per step:
//
//   %5 conv  conv(%4:[2,8,16,16]) -> [2,8,16,16]  arena 16384+16384  guard %5
//      weight #1  attrs{bias=0, dilation=1, groups=1, kernel=3, out=8, pad=1, stride=1}
//      # zero_join/conv_1
//
// (on one line): the step kind, the IR op and its inputs with their batched shapes, the
// output shape and where the value lives (arena offset+bytes, the caller's input or
// output, a view of another value, or nothing for an effect step; its dtype/layout when
// not the header's), the guard, the
// parameters, saved state, architecture group and input index when present, the forward
// op's attributes (sorted by name), and for a gradient step its forward op and shapes.
// Deterministic: the same plan prints the same text.
#pragma once

#include <string>

#include "runtime/exec/exec_plan.h"

namespace nas {

const char* step_kind_name(StepKind kind);

std::string print_exec_plan(const ExecPlan& plan);

}  // namespace nas
