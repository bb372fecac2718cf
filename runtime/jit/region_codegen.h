// The operations of an elementwise region (exec_plan.h's RegionOp program: Activation,
// ActivationGrad, Scale, Add, Choice, Dropout, DropoutGrad, Crop, CropGrad) as LLVM IR over one
// element or one vector of elements, shared by the two code generators that run regions: the JIT's
// host loops (plan_codegen.h) and the CUDA backend's PTX kernels
// (runtime/cuda/region_ptx.h). Each activation is its registry entry's formula
// (formula_codegen.h); a dropout draws each element's mask as support/rng.h does.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "runtime/exec/exec_plan.h"
#include "runtime/exec/region_read_map.h"
#include "runtime/jit/formula_codegen.h"

namespace llvm {
class IRBuilderBase;
class Type;
class Value;
}  // namespace llvm

namespace nas {

// What a Dropout or DropoutGrad operation draws from (support/rng.h, dropout_keeps), as i64
// values: the region's element that lane 0 computes (lane j computes index + j), the
// elements per sample, the global batch index of the rank's sample 0 and, per operation,
// mix64(node seed) (null for the other operations; dropout_draws_seed_mix).
struct RegionDraws {
  llvm::Value* index = nullptr;
  llvm::Value* per_sample = nullptr;
  llvm::Value* first_sample = nullptr;
  std::vector<llvm::Value*> seed_mix;
};

// mix64(derive_seed(dropout_seed, node)): what RegionDraws::seed_mix holds for a dropout
// operation drawing node `node`'s mask, from the run's dropout seed (i64).
llvm::Value* dropout_draws_seed_mix(llvm::IRBuilderBase& b, llvm::Value* dropout_seed, int node);

// Whether a program has a Dropout or DropoutGrad operation (its code needs RegionDraws).
bool draws_dropout(const std::vector<RegionOp>& ops);

// The element, or vector of elements, of `type` that output element `index` (i64; lane j:
// index + j) reads from input `base` (float*) through `map` (region_read_map.h): one load
// when the input is read in place, else a gather, with 0 where a CropGrad's window leaves
// the input.
llvm::Value* load_region_input(llvm::IRBuilderBase& b, llvm::Type* type, llvm::Value* base,
                               llvm::Value* index, const RegionReadMap& map);

class RegionOpsEmitter {
 public:
  // The operations `ops` of region `name` (for messages) on one element or vector of `type`
  // (float or <N x float>): `inputs` are the loaded input operands; per operation and
  // operand, `present` (i1) says whether a sum or choice takes it and `weight` (float) is a
  // choice's weight; `draws` is read by dropout operations only. Returns the last
  // operation's value. An operation of another kind, or an activation without a formula, is
  // an InternalError.
  llvm::Value* emit(llvm::IRBuilderBase& b, const std::string& name,
                    const std::vector<RegionOp>& ops, llvm::Type* type,
                    const std::vector<llvm::Value*>& inputs,
                    const std::vector<std::vector<llvm::Value*>>& present,
                    const std::vector<std::vector<llvm::Value*>>& weight,
                    const RegionDraws& draws = {});

  // Activation (or ActivationGrad) `op`'s value f(x), and its slope f'(x), on an element or
  // vector x, by its registry entry's formulas; `name` is its region's, for messages.
  llvm::Value* activation(llvm::IRBuilderBase& b, const std::string& name, const RegionOp& op,
                          llvm::Value* x);
  llvm::Value* activation_slope(llvm::IRBuilderBase& b, const std::string& name, const RegionOp& op,
                                llvm::Value* x);

 private:
  const Formula& formula(const std::string& text);
  std::map<std::string, Formula> formulas_;  // parsed once per text
};

}  // namespace nas
