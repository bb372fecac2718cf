// Code generation for the depthwise convolutions of training plans on small planes: the
// forward pass, the data gradient and the weight gradient of a depthwise convolution at
// stride 1 or 2 whose output plane is at most 16x16 (a DARTS cell's sep_conv and dil_conv
// on 16x16 and 8x8 planes, and the stride-2 ones of its reduction cells, from 32x32 and
// 16x16).
//
// The library runs these through oneDNN's JIT kernel, which vectorises across 16 channels of
// its blocked layout (nChw16c) and so reorders the NCHW values in and out around every call.
// nasc's own plane loops (runtime/cpu/depthwise.h) lose to that on small planes, since each
// plane is first copied into padded scratch. Generated code needs neither: the planes'
// shapes are constants, so a body walks one plane (the output, or dx for the data gradient)
// as a flat run of vectors, and what each lane of each vector reads for each tap is a
// constant index into the other plane, or nothing where the tap falls in the padding:
//   - forward: y[o] = b + sum over taps t of w[t] x[read(o, t)], where output (a, b) reads x
//     at (s a + kh d - p, s b + kw d - p);
//   - data gradient: dx[i] = sum over t of w[t] dy[read(i, t)], where dx (a, b) reads the
//     output whose window holds it at tap t, ((a - kh d + p) / s, (b - kw d + p) / s), when
//     both divide evenly;
//   - weight gradient: dw[t] += sum over the planes of the channel of sum over o of
//     dy[o] x[read(o, t)], one vector accumulator per tap (25 of 32 registers with AVX-512
//     for a 5x5 filter), each plane's sum reduced into double, as the library's.
// At stride 1 a tap's lanes read consecutive values: one load at a constant offset under a
// constant lane mask, the masked lanes reading 0; a load whose lanes all read is plain, one
// whose lanes read nothing is not emitted. At stride 2 a tap's lanes read every other value
// (forward, weight gradient) or half the lanes read (data gradient): the values read are
// loaded the same way, a vector at a time, and the lanes picked from them with a shuffle.
// Vectors are code of their own where their reads differ from their neighbours' (near the
// plane's edges), and a counted loop where a block of them repeats, each repetition reading
// a constant distance further on (the rows inside): a 16x16 plane with a 5x5 filter is four
// vectors and a loop of twelve, each 25 multiply-adds of 16 floats.
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

struct DepthwiseShape;  // a body's pass, shape and attributes

class DepthwiseCodegen : IrHelpers {
 public:
  DepthwiseCodegen(int vector_floats, llvm::LLVMContext& context);

  // Whether step `s` of `plan` is one this generator makes code for (see above): a
  // training plan's Conv (no epilogue), ConvGradInput or ConvGradWeight of a depthwise
  // convolution at a stride of at most kMaxStride whose output plane holds at most
  // kMaxPlane values. False when NASC_JIT_DEPTHWISE=library.
  static bool generates(const ExecPlan& plan, const Step& s);
  // Larger planes run the library's code: at stride 1 nasc's plane loops, which beat oneDNN
  // there and whose per-plane costs no longer weigh.
  static constexpr int64_t kMaxPlane = 16 * 16;
  static constexpr int64_t kMaxStride = 2;

  // The body that runs step `s`, generated on first use in a module of its own.
  llvm::Function* body(const Step& s);
  // The modules made so far, one per body, moved out.
  std::vector<std::unique_ptr<llvm::Module>> take_modules();

 private:
  void convolve(llvm::IRBuilder<>& b, const DepthwiseShape& shape, llvm::Function* f);
  void weight_gradient(llvm::IRBuilder<>& b, const DepthwiseShape& shape, llvm::Function* f);

  int width_;
  std::vector<std::unique_ptr<llvm::Module>> modules_;
  std::map<std::string, llvm::Function*> bodies_;  // by signature
};

}  // namespace nas
