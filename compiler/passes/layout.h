// Layout assignment (run by lowering): which values of an inference plan live channels-last
// (NHWC) instead of NCHW. oneDNN's fastest convolutions on current x86 CPUs (brgconv,
// brdgmm depthwise) read and write NHWC; a convolution on NCHW values pays a reorder of its
// input and of its output around every call, which at MobileNetV2's 224x224 batch 1 cost as
// much time as the convolutions themselves (docs/results.md, "MobileNetV2 inference").
//
// Steps fall into three kinds:
//   - conv epilogues (fusion.h) read their input and their add's operand, and write their
//     output, in either layout, each chosen on its own;
//   - layout-agnostic steps compute each output element from the same element of each
//     input (activations, add, scale, choice, elementwise regions, zero) or alias their
//     input unchanged (identity, dropout at inference): any layout works as long as their
//     inputs and output share it;
//   - every other step (pooling, linear, flatten, concat, crop, ...) and every region with a
//     crop in it reads and writes NCHW.
// Values joined by agnostic steps form groups that must share a layout. A group is NHWC
// when a conv epilogue writes into it, every value in it is an image ([C, H, W] per
// sample), none is the plan's input or output, and nothing else writes or reads it. So in
// MobileNetV2 everything between the stem and the last 1x1 conv is NHWC, and in a
// supernet the choices between blocks are too. Training plans are untouched (their
// convolutions and batch norms run the NCHW kernels of the backward pass).
#pragma once

#include <vector>

#include "compiler/ir/ir.h"
#include "compiler/passes/fusion.h"
#include "runtime/exec/value_type.h"

namespace nas {

// Per node of `g`: the layout of its value. `fusion` is g's fusion plan.
std::vector<Layout> assign_layouts(const Graph& g, const FusionPlan& fusion);

}  // namespace nas
