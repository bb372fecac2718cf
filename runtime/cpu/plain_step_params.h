// The parameters of the plain kernels (plain_kernels.h), batch norm and pooling
// (batchnorm_params.h, pool2d_params.h) as a plan step gives them: shared
// by the CPU backend and the CUDA backend (runtime/cuda), whose kernels take the same
// parameter structs, so that both read a step's shapes and attributes the same way.
#pragma once

#include <vector>

#include "runtime/cpu/batchnorm_params.h"
#include "runtime/cpu/plain_kernels.h"
#include "runtime/cpu/pool2d_params.h"
#include "runtime/exec/exec_plan.h"

namespace nas {

// [N, C, rest...] as N, C, H, W for kernels on images; a vector [N, F] is C = F, H = W = 1.
struct Nchw {
  int64_t n, c, h, w;
};
inline Nchw nchw(const std::vector<int64_t>& s) {
  Nchw r{s[0], s.size() > 1 ? s[1] : 1, 1, 1};
  if (s.size() == 4) r.h = s[2], r.w = s[3];
  if (s.size() == 3) r.h = s[2];
  return r;
}

inline plain::CropParams crop_params(const Step& s) {
  Nchw x = nchw(s.fwd_in_shape);
  plain::CropParams p;
  p.batch = x.n, p.channels = x.c, p.height = x.h, p.width = x.w;
  p.top = s.int_attr("top"), p.left = s.int_attr("left");
  p.bottom = s.int_attr("bottom"), p.right = s.int_attr("right");
  return p;
}

// A batchnorm step's (or its gradient's) shape and attributes; an input of more than two
// spatial axes counts them all as its height.
inline BatchNormParams batchnorm_params(const Step& s) {
  Nchw x = nchw(s.fwd_in_shape);
  BatchNormParams p;
  p.n = x.n, p.c = x.c, p.h = x.h, p.w = x.w;
  if (s.fwd_in_shape.size() > 4) p.h = shape_elements(s.fwd_in_shape) / (x.n * x.c);
  p.affine = s.int_attr("affine") != 0;
  p.eps = s.float_attr("eps");
  p.momentum = s.float_attr("momentum");
  return p;
}

// A conv or dwconv step's (or its gradients') shape and attributes, over its forward input,
// into any struct with Conv2dParams' fields (the CPU's Conv2dParams, conv2d.h; the CUDA
// backend's ConvShape).
template <typename ConvFields>
ConvFields conv_fields(const Step& s) {
  const Nchw in = nchw(s.fwd_in_shape);
  ConvFields p;
  p.n = in.n, p.c_in = in.c, p.h = in.h, p.w = in.w;
  p.c_out = s.int_attr("out");
  p.kernel = s.int_attr("kernel");
  p.stride = s.int_attr("stride");
  p.pad = s.int_attr("pad");
  p.dilation = s.int_attr("dilation");
  p.groups = s.int_attr("groups");
  p.bias = s.int_attr("bias") != 0;
  return p;
}

// A max_pool or avg_pool step's window over its forward input (the pool's or its gradient's).
inline Pool2dParams pool_params(const Step& s) {
  Nchw x = nchw(s.fwd_in_shape);
  Pool2dParams p;
  p.kind = s.int_attr("max") != 0 ? PoolKind::max : PoolKind::avg;
  p.n = x.n, p.c = x.c, p.h = x.h, p.w = x.w;
  p.kernel = s.int_attr("kernel");
  p.stride = s.int_attr("stride");
  p.pad = s.int_attr("pad");
  p.count_include_pad = s.int_attr_or("count_include_pad", p.count_include_pad) != 0;
  return p;
}

// [N, C, ...] as [N, C, inner] for the channel kernels.
template <typename Params>
Params channel_params(const std::vector<int64_t>& shape) {
  Params p;
  p.batch = shape[0];
  p.channels = shape.size() > 1 ? shape[1] : 1;
  for (size_t d = 2; d < shape.size(); ++d) p.inner *= shape[d];
  return p;
}

inline plain::ChannelSliceParams channel_slice_params(const Step& s) {
  auto p = channel_params<plain::ChannelSliceParams>(s.fwd_in_shape);
  p.start = s.int_attr("start"), p.count = s.int_attr("count");
  return p;
}

inline plain::ChannelShuffleParams channel_shuffle_params(const Step& s) {
  auto p = channel_params<plain::ChannelShuffleParams>(s.fwd_in_shape);
  p.groups = s.int_attr("groups");
  return p;
}

// The forward concat's per-sample input shapes and axis, for its step and its gradient
// steps (whose `guard` is the forward concat's step).
inline plain::ConcatParams concat_params(const ExecPlan& plan, const Step& s) {
  const Step& fwd = s.kind == StepKind::Concat ? s : plan.steps[s.guard >= 0 ? s.guard : 0];
  std::vector<std::vector<int64_t>> shapes;
  for (const auto& shape : fwd.input_shapes) shapes.push_back({shape.begin() + 1, shape.end()});
  return plain::ConcatParams::from_shapes(s.fwd_out_shape[0], shapes, s.int_attr("axis"));
}

// A scale step by a factor tensor: the input with fewer elements is the factor (either,
// when they have as many). Returns the index of the scaled input (the other one is the
// factor) and the kernel's parameters.
inline std::pair<int, plain::MulParams> mul_params(const Step& s) {
  const int x = shape_elements(s.input_shapes[0]) < shape_elements(s.input_shapes[1]);
  const int64_t factors = shape_elements(s.input_shapes[1 - x]);
  return {x, plain::MulParams{factors, shape_elements(s.output_shape) / factors,
                              s.float_attr("scale")}};
}

}  // namespace nas
