// Layout assignment (run by lowering): which values of an inference plan live channels-last
// (NHWC) instead of NCHW. oneDNN's fastest convolutions on current x86 CPUs (brgconv,
// brdgmm depthwise) read and write NHWC; a convolution on NCHW values pays a reorder of its
// input and of its output around every call, which at MobileNetV2's 224x224 batch 1 cost as
// much time as the convolutions themselves (docs/results.md, "MobileNetV2 inference").
//
// A value is NHWC when a conv epilogue (fusion.h) computes it and every step that reads it
// is a conv epilogue too, as its convolution's input or its add's other operand: those
// kernels read and write either layout. Everything else stays NCHW, which the plan's input,
// its output and every other kernel keep using. Training plans are untouched (their
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
