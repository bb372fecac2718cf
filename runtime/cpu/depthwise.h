// Depthwise convolution (groups == c_in == c_out) on NCHW float buffers, as direct loops over
// one (sample, channel) plane at a time. Conv2dKernel runs these, pass by pass, where
// oneDNN 2.6 would fall back to im2col + GEMM (the dilated backward passes, the 5x5 weight
// gradient) and where they beat its JIT kernel, which reorders NCHW values to a blocked
// layout and back around each call (the forward and data passes on 32x32 planes); see
// Conv2dKernel::DepthwiseCode. Depthwise convolutions were about half of a DARTS step
// (docs/results.md, "Depthwise loops").
//
// Each plane is first copied into a zero-padded scratch plane, split into stride x stride
// phases when the stride is above 1, so every tap reads a contiguous, in-bounds run: the
// inner loops are branch-free multiply-adds over the plane's outputs as one flat run, which
// vectorise. The plane loops are compiled twice, for the build's baseline (SSE2 on x86-64)
// and for x86-64-v3 (AVX2, FMA), and the copy this CPU can run is picked once per process.
#pragma once

#include <vector>

#include "runtime/cpu/conv2d.h"

namespace nas {

// groups == c_in == c_out: each channel convolved with its own k x k filter.
bool is_depthwise(const Conv2dParams& p);

// Which compiled copy of the plane loops runs.
enum class DepthwiseIsa { Baseline, X86_64_V3 };
const char* depthwise_isa_name(DepthwiseIsa isa);
// The best copy this CPU runs: X86_64_V3 where it has that whole level (AVX2, FMA, ...).
DepthwiseIsa depthwise_isa();
// Every copy this CPU can run (the tests check each against the reference).
std::vector<DepthwiseIsa> depthwise_isas_runnable();

// y = dwconv(x, w) + b; `b` is ignored unless p.bias. Outputs are overwritten.
void depthwise_forward(const Conv2dParams& p, const float* x, const float* w, const float* b,
                       float* y, DepthwiseIsa isa = depthwise_isa());
// dx from dy.
void depthwise_backward_data(const Conv2dParams& p, const float* dy, const float* w, float* dx,
                             DepthwiseIsa isa = depthwise_isa());
// dw (and db when p.bias; `db` may be null otherwise) from x and dy, summed in double.
void depthwise_backward_weights(const Conv2dParams& p, const float* x, const float* dy, float* dw,
                                float* db, DepthwiseIsa isa = depthwise_isa());

}  // namespace nas
