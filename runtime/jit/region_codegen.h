// The operations of an elementwise region (exec_plan.h's RegionOp program: Activation,
// ActivationGrad, Scale, Add, Choice) as LLVM IR over one element or one vector of
// elements, shared by the two code generators that run regions: the JIT's host loops
// (plan_codegen.h) and the CUDA backend's PTX kernels (runtime/cuda/region_ptx.h). Each
// activation is its registry entry's formula (formula_codegen.h).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "runtime/exec/exec_plan.h"
#include "runtime/jit/formula_codegen.h"

namespace llvm {
class IRBuilderBase;
class Type;
class Value;
}  // namespace llvm

namespace nas {

class RegionOpsEmitter {
 public:
  // The operations `ops` of region `name` (for messages) on one element or vector of `type`
  // (float or <N x float>): `inputs` are the loaded input operands; per operation and
  // operand, `present` (i1) says whether a sum or choice takes it and `weight` (float) is a
  // choice's weight. Returns the last operation's value. An operation of another kind, or
  // an activation without a formula, is an InternalError.
  llvm::Value* emit(llvm::IRBuilderBase& b, const std::string& name,
                    const std::vector<RegionOp>& ops, llvm::Type* type,
                    const std::vector<llvm::Value*>& inputs,
                    const std::vector<std::vector<llvm::Value*>>& present,
                    const std::vector<std::vector<llvm::Value*>>& weight);

 private:
  const Formula& formula(const std::string& text);
  std::map<std::string, Formula> formulas_;  // parsed once per text
};

}  // namespace nas
