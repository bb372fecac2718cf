// Code generation for the batch norm regions of training plans (compiler/passes/fusion.h;
// exec_plan.h says what their steps hold):
//   - BatchNorm: the batch statistics, the normalisation and the activations after it, which
//     write the region's output (and the batch norm's own, when the backward pass reads it)
//     while each row is in cache;
//   - BatchNormGrad: the gradient with its incoming gradient read inline (an activation's
//     gradient, or a mixed op candidate's share w * g) and, when the region takes it, each
//     channel's part of the mixed op's d/dw for the candidate.
// The arithmetic is runtime/cpu/batchnorm.cpp's (its reference): per channel, each sample's
// row (h*w contiguous values) reduced in float, the rows combined in double, then one pass
// that applies. What generated code adds is specialisation: the shapes are constants, so
// every row is whole vectors and one masked vector, with no scalar loop; any activation's
// formula (formula_codegen.h) runs inline, where the library applies a formula other than
// ReLU's per element through a call, or computes the incoming gradient into a scratch
// buffer first; and a batch norm output nothing stores is never written.
//
// What is generated is a body over a range of channels, `void body(void** slots, int64_t
// begin, int64_t end)`, one per signature (shape, attributes, program), each in a module
// of its own named by the signature's hash (cached apart: another plan with the same batch
// norm loads its object); the JIT runs a
// region's step through batchnorm_region.h, which fills the slots from the run's state. A
// DARTS search's weight-step plan has 1,858 batch norm steps and 21 bodies.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/exec/exec_plan.h"
#include "runtime/exec/region_programs.h"
#include "runtime/jit/batchnorm_region.h"
#include "runtime/jit/ir_helpers.h"
#include "runtime/jit/region_codegen.h"

namespace nas {

class BatchNormCodegen : IrHelpers {
 public:
  // For the steps of `plan`, with loops `vector_floats` wide, in `context`; activations
  // through `ops`.
  BatchNormCodegen(const ExecPlan& plan, int vector_floats, llvm::LLVMContext& context,
                   RegionOpsEmitter& ops);

  // Whether step `s` of `plan` is a batch norm step this generator makes code for: one of
  // a training plan, fused or alone, with more than one value per channel (the library
  // reports the others).
  static bool generates(const ExecPlan& plan, const Step& s);
  // False when NASC_JIT_BATCHNORM=library: batch norm then runs the library's loops, to
  // measure what generated code buys (bench/README.md). Read once.
  static bool enabled();

  // The body that runs step `s` (generates(plan, s) holds), generated on first use in a
  // module of its own. An external function named by a hash of its signature, so that the
  // module's bitcode depends on the signature alone (and its cached object serves every
  // plan that has it): the JIT looks it up by that name.
  llvm::Function* body(const Step& s);
  // The modules made so far, one per body, moved out.
  std::vector<std::unique_ptr<llvm::Module>> take_modules();

 private:
  // What a body is made from: the shape, the attributes and the program, not the values
  // (batchnorm_region.h passes them). The cells of a DARTS supernet repeat a few signatures many
  // times, and one body serves them all.
  std::string signature(const Step& s, const BatchNormProgram& program) const;
  // One channel's work; `slots` are the body's args, loaded.
  void forward_channel(llvm::IRBuilder<>& b, const Step& s, const BatchNormProgram& program,
                       const std::vector<llvm::Value*>& slots, llvm::Value* channel);
  void backward_channel(llvm::IRBuilder<>& b, const Step& s, const BatchNormProgram& program,
                        const std::vector<llvm::Value*>& slots, llvm::Value* channel);
  // Emits `emit`'s code under `pointer` != null.
  void when_nonnull(llvm::IRBuilder<>& b, llvm::Value* pointer, const std::function<void()>& emit);

  const ExecPlan& plan_;
  int width_;
  std::vector<std::unique_ptr<llvm::Module>> modules_;
  RegionOpsEmitter& ops_;
  std::map<std::string, llvm::Function*> bodies_;  // by signature: one per shape and program
};

}  // namespace nas
