// Code generation for the depthwise convolutions of training plans on small planes: the
// forward pass, the data gradient and the weight gradient of a stride-1 dwconv whose output
// plane is its input's ("same" padding: a DARTS cell's sep_conv and dil_conv on 16x16 and
// 8x8 planes).
//
// The library runs these through oneDNN's JIT kernel, which vectorises across 16 channels of
// its blocked layout (nChw16c) and so reorders the NCHW values in and out around every call:
// with the 1x1 weight gradients, those reorders were the last ones of a DARTS step. nasc's
// own plane loops (runtime/cpu/depthwise.h) lose to that on small planes, since each plane
// is first copied into padded scratch. Generated code needs neither: the plane's shape is a
// constant, so the plane is walked as one flat run of vectors, and each tap of each vector
// is one load from the input at a constant offset, under a constant lane mask for the lanes
// whose tap falls outside the plane (the padding). A vector whose tap is wholly inside
// loads plainly; one wholly outside is not emitted. Vectors are code of their own where
// their masks differ from their neighbours' (the rows near the plane's edges), and a loop
// where a run of them shares every mask (the rows inside): a 16x16 plane with a 5x5 filter
// is four vectors and a loop of twelve, each 25 multiply-adds of 16 floats.
//   - forward: y[i] = b + sum over taps t of w[t] x[i + offset(t)] (offset = (kh d - p) W +
//     kw d - p, the lanes whose tap lies outside the plane reading 0);
//   - data gradient: dx[i] = sum over t of w[t] dy[i - offset(t)], the same code with the
//     offsets negated;
//   - weight gradient: dw[t] += sum over the planes of the channel of sum over i of
//     dy[i] x[i + offset(t)], one vector accumulator per tap (25 of 32 registers with
//     AVX-512 for a 5x5 filter), each plane's sum reduced into double, as the library's.
// Bodies: `void body(void** slots, int64_t begin, int64_t end)`, over planes (forward, data)
// or channels (weights), one per signature, each in a module of its own named by the
// signature's hash (cached apart, like the batch norm bodies); depthwise_run.h runs them.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/exec/exec_plan.h"
#include "runtime/jit/ir_helpers.h"

namespace llvm {
class Module;
}

namespace nas {

class DepthwiseCodegen : IrHelpers {
 public:
  DepthwiseCodegen(int vector_floats, llvm::LLVMContext& context);

  // Whether step `s` of `plan` is one this generator makes code for (see above): a
  // training plan's Conv (no epilogue), ConvGradInput or ConvGradWeight of a depthwise
  // convolution at stride 1 whose output plane is its input's, of at most kMaxPlane values.
  // False when NASC_JIT_DEPTHWISE=library.
  static bool generates(const ExecPlan& plan, const Step& s);
  // Larger planes run nasc's plane loops (runtime/cpu/depthwise.h), which beat oneDNN there
  // and whose per-plane costs no longer weigh.
  static constexpr int64_t kMaxPlane = 16 * 16;

  // The body that runs step `s`, generated on first use in a module of its own.
  llvm::Function* body(const Step& s);
  // The modules made so far, one per body, moved out.
  std::vector<std::unique_ptr<llvm::Module>> take_modules();

 private:
  struct Shape;
  void convolve(llvm::IRBuilder<>& b, const Shape& shape, llvm::Function* f, bool data);
  void weight_gradient(llvm::IRBuilder<>& b, const Shape& shape, llvm::Function* f);

  int width_;
  std::vector<std::unique_ptr<llvm::Module>> modules_;
  std::map<std::string, llvm::Function*> bodies_;  // by signature
};

}  // namespace nas
