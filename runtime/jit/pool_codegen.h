// Code generation for global average pooling (`global_avg_pool` steps, and the
// GlobalAvgPool regions of compiler/passes/fusion.h, whose activations run inside the pool):
// an entry per step, which the plan function calls directly like an elementwise region's
// (plan_codegen.h), and a body per signature over a range of planes: each plane's values,
// through the region's activation formulas inline, summed in vectors (row_loops.h) and
// averaged in double. The library's loop (runtime/cpu/plain_kernels.cpp) is the reference;
// it sums in double one value after another, so the two agree within float rounding.
#pragma once

#include <map>
#include <string>

#include "runtime/exec/exec_plan.h"
#include "runtime/jit/ir_helpers.h"
#include "runtime/jit/region_codegen.h"

namespace nas {

class GlobalAvgPoolCodegen : IrHelpers {
 public:
  // Loops `vector_floats` wide, in `module`; activations through `ops`.
  GlobalAvgPoolCodegen(int vector_floats, llvm::LLVMContext& context, llvm::Module& module,
                       RegionOpsEmitter& ops);

  // Whether step `s` is a global average pooling forward this generator makes code for.
  static bool generates(const Step& s);

  // Step `index`'s entry, `int32_t fn(void** args)` (plan_codegen.h's PlanArg): returns 1.
  llvm::Function* entry(const Step& s, int index);

 private:
  llvm::Function* body(const Step& s);

  int width_;
  llvm::Module& m_;
  RegionOpsEmitter& ops_;
  std::map<std::string, llvm::Function*> bodies_;  // by signature: area and activations
};

}  // namespace nas
