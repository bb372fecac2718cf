#include "runtime/cpu/conv2d.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "runtime/cpu/depthwise.h"
#include "runtime/cpu/dnnl_context.h"
#include "runtime/cpu/eltwise.h"
#include "runtime/cpu/kernel_cache.h"
#include "runtime/cpu/plain_kernels.h"
#include "runtime/cpu/plain_step_params.h"
#include "runtime/cpu/pointwise.h"
#include "support/elementwise_ops.h"
#include "support/errors.h"

namespace nas {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

int64_t conv_out(int64_t size, const Conv2dParams& p) {
  int64_t span = (p.kernel - 1) * p.dilation + 1;
  return (size + 2 * p.pad - span) / p.stride + 1;
}

// oneDNN reads `memory` handles as void*; inputs are never written through them.
memory wrap(const memory::desc& md, const float* data) {
  return memory(md, cpu_engine(), const_cast<float*>(data));
}

KernelCache<Conv2dKernel>& cache() {
  static KernelCache<Conv2dKernel> instance;
  return instance;
}

KernelCache<Conv2dEpilogueKernel>& epilogue_cache() {
  static KernelCache<Conv2dEpilogueKernel> instance;
  return instance;
}

}  // namespace

Conv2dParams conv_params(const Step& s) {
  return conv_fields<Conv2dParams>(s);
}

int64_t Conv2dParams::out_h() const {
  return conv_out(h, *this);
}
int64_t Conv2dParams::out_w() const {
  return conv_out(w, *this);
}

void Conv2dParams::validate() const {
  auto fail = [](const std::string& msg) { internal_error(__FILE__, __LINE__, "conv2d: " + msg); };
  if (n < 1 || c_in < 1 || h < 1 || w < 1 || c_out < 1)
    fail(fmt::format("sizes must be positive, got n={} c_in={} h={} w={} c_out={}", n, c_in, h, w,
                     c_out));
  if (kernel < 1 || stride < 1 || pad < 0 || dilation < 1 || groups < 1)
    fail(fmt::format("bad window kernel={} stride={} pad={} dilation={} groups={}", kernel, stride,
                     pad, dilation, groups));
  if (c_in % groups != 0 || c_out % groups != 0)
    fail(fmt::format("groups={} must divide c_in={} and c_out={}", groups, c_in, c_out));
  if (h + 2 * pad < (kernel - 1) * dilation + 1 || w + 2 * pad < (kernel - 1) * dilation + 1)
    fail(fmt::format("kernel {} (dilation {}) does not fit the padded {}x{} input", kernel,
                     dilation, h + 2 * pad, w + 2 * pad));
}

std::string Conv2dParams::key() const {
  return fmt::format("conv2d n{} c{} h{} w{} o{} k{} s{} p{} d{} g{} b{}", n, c_in, h, w, c_out,
                     kernel, stride, pad, dilation, groups, bias ? 1 : 0);
}

// oneDNN's fast convolutions (direct JIT, depthwise) work on blocked layouts such as
// nChw16c; on plain NCHW it falls back to im2col + GEMM, which is slow for depthwise and
// small-channel convolutions. So each primitive is created with `any` layouts and the
// plain buffers of the executor are reordered into the primitive's layout (and back)
// around each call, through per-thread scratch buffers. Where oneDNN picks the plain
// layout itself, no reorder runs.
Conv2dKernel::Staged::Staged(const memory::desc& plain_md, const memory::desc& chosen_md)
    : plain(plain_md), chosen(chosen_md), same(plain_md == chosen_md) {
  if (same) return;
  const dnnl::engine& engine = cpu_engine();
  to_chosen = dnnl::reorder(dnnl::reorder::primitive_desc(engine, plain, engine, chosen));
  to_plain = dnnl::reorder(dnnl::reorder::primitive_desc(engine, chosen, engine, plain));
}

namespace {

// Per-thread staging buffers, one per role, grown on demand and reused across calls.
void* scratch(int slot, size_t bytes) {
  thread_local std::vector<std::vector<float>> buffers(4);
  std::vector<float>& b = buffers[slot];
  if (b.size() * sizeof(float) < bytes) b.resize((bytes + sizeof(float) - 1) / sizeof(float));
  return b.data();
}

// The primitive's view of a user input: the user buffer itself, or a reordered copy.
memory stage_in(const Conv2dKernel::Staged& s, const float* user, int slot) {
  if (s.same) return wrap(s.plain, user);
  memory m(s.chosen, cpu_engine(), scratch(slot, s.chosen.get_size()));
  memory src = wrap(s.plain, user);
  s.to_chosen.execute(cpu_stream(), src, m);
  return m;
}

// Where the primitive writes an output: the user buffer, or scratch reordered afterwards.
memory stage_out(const Conv2dKernel::Staged& s, float* user, int slot) {
  if (s.same) return wrap(s.plain, user);
  return memory(s.chosen, cpu_engine(), scratch(slot, s.chosen.get_size()));
}
void finish_out(const Conv2dKernel::Staged& s, memory& m, float* user) {
  if (s.same) return;
  memory dst = wrap(s.plain, user);
  s.to_plain.execute(cpu_stream(), m, dst);
}

// The weights' dims: [c_out, c_in, k, k], or [g, c_out/g, c_in/g, k, k] when grouped.
// goihw with plain strides is byte-for-byte the [c_out, c_in/g, k, k] layout, so grouped
// and dense weights share one user-visible format.
memory::dims weight_dims(const Conv2dParams& p) {
  if (p.groups == 1) return {p.c_out, p.c_in, p.kernel, p.kernel};
  return {p.groups, p.c_out / p.groups, p.c_in / p.groups, p.kernel, p.kernel};
}
memory::desc plain_weights(const Conv2dParams& p) {
  return memory::desc(weight_dims(p), dt::f32, p.groups == 1 ? tag::oihw : tag::goihw);
}

// oneDNN's depthwise primitives are JIT kernels (jit_dw) where it has one; elsewhere (the
// dilated backward passes, 5x5 backward weights) it falls back to im2col + GEMM or a
// reference loop, 2-15x slower than nasc's loops (bench/depthwise_conv.cpp).
bool slow_depthwise_primitive(const char* implementation) {
  const std::string name = implementation;
  return name.find("gemm") != std::string::npos || name.find("ref") != std::string::npos;
}

// Where the loops beat even oneDNN's JIT kernel, which reorders NCHW planes into its
// blocked layout and back around every call: at stride 1 on planes of 32x32 outputs or
// more, over which the loops' own per-plane costs (padding, the dropped columns) spread
// (1.2-2x faster there in bench/depthwise_conv.cpp; 1-2x slower on 16x16 and 8x8 planes).
bool loops_beat_primitive(int64_t stride, int64_t out_plane) {
  return stride == 1 && out_plane >= 32 * 32;
}

// A pointwise signature's forward and data passes always beat oneDNN's 1x1 kernels, which
// reorder every input and output (0.3-0.9x their time in bench/pointwise_conv.cpp). Its
// weight gradient, a product summed over the samples, does only with at least three times
// as many input channels as output channels on planes of 32x32 or more (48 -> 16 and
// 64 -> 16: 0.55-0.86x); elsewhere oneDNN's kernel was as fast or up to 2.2x faster,
// reorders included.
bool pointwise_weights_beat_primitive(const Conv2dParams& p) {
  return p.c_in >= 3 * p.c_out && p.h * p.w >= 32 * 32;
}

}  // namespace

Conv2dKernel::Conv2dKernel(const Conv2dParams& p, Code code) : params_(p) {
  p.validate();
  const bool nasc_has_code = is_depthwise(p) || is_pointwise(p);
  const bool pointwise_fastest = is_pointwise(p) && code == Code::Fastest;
  if ((nasc_has_code && code == Code::Nasc) ||
      (pointwise_fastest && pointwise_weights_beat_primitive(p))) {
    nasc_forward_ = nasc_backward_data_ = nasc_backward_weights_ = true;
    return;  // no primitives to create
  }
  const dnnl::engine& engine = cpu_engine();
  src_md_ = memory::desc({p.n, p.c_in, p.h, p.w}, dt::f32, tag::nchw);
  dst_md_ = memory::desc({p.n, p.c_out, p.out_h(), p.out_w()}, dt::f32, tag::nchw);
  const memory::dims wdims = weight_dims(p);
  weights_md_ = plain_weights(p);
  if (p.bias) bias_md_ = memory::desc({p.c_out}, dt::f32, tag::x);
  memory::desc src_any({p.n, p.c_in, p.h, p.w}, dt::f32, tag::any);
  memory::desc dst_any({p.n, p.c_out, p.out_h(), p.out_w()}, dt::f32, tag::any);
  memory::desc weights_any(wdims, dt::f32, tag::any);

  memory::dims strides{p.stride, p.stride}, dilates{p.dilation - 1, p.dilation - 1},
      padding{p.pad, p.pad};
  // Symmetric padding with floor output size: oneDNN accepts windows that stop short of
  // the right padding, which is exactly the floor rule of the `conv` op.
  auto algo = dnnl::algorithm::convolution_direct;
  auto fwd_desc = p.bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algo,
                                                           src_any, weights_any, bias_md_, dst_any,
                                                           strides, dilates, padding, padding)
                         : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algo,
                                                           src_any, weights_any, dst_any, strides,
                                                           dilates, padding, padding);
  dnnl::convolution_forward::primitive_desc fwd_pd(fwd_desc, engine);

  dnnl::convolution_backward_data::desc bwd_data_desc(algo, src_any, weights_any, dst_any, strides,
                                                      dilates, padding, padding);
  dnnl::convolution_backward_data::primitive_desc bd_pd(bwd_data_desc, engine, fwd_pd);

  auto bwd_w_desc =
      p.bias ? dnnl::convolution_backward_weights::desc(algo, src_any, weights_any, bias_md_,
                                                        dst_any, strides, dilates, padding, padding)
             : dnnl::convolution_backward_weights::desc(algo, src_any, weights_any, dst_any,
                                                        strides, dilates, padding, padding);
  dnnl::convolution_backward_weights::primitive_desc bw_pd(bwd_w_desc, engine, fwd_pd);
  if (is_depthwise(p) && code == Code::Fastest) {
    nasc_forward_ = slow_depthwise_primitive(fwd_pd.impl_info_str()) ||
                    loops_beat_primitive(p.stride, p.out_h() * p.out_w());
    nasc_backward_data_ = slow_depthwise_primitive(bd_pd.impl_info_str()) ||
                          loops_beat_primitive(p.stride, p.h * p.w);
    nasc_backward_weights_ = slow_depthwise_primitive(bw_pd.impl_info_str());
  }
  if (pointwise_fastest) {  // the weight gradient stays with oneDNN
    nasc_forward_ = nasc_backward_data_ = true;
  }
  // Only the passes oneDNN runs get a primitive and its reorders: creating them compiles
  // code, and the descriptors above were needed only to choose.
  if (!nasc_forward_) {
    fwd_ = dnnl::convolution_forward(fwd_pd);
    fwd_src_ = Staged(src_md_, fwd_pd.src_desc());
    fwd_weights_ = Staged(weights_md_, fwd_pd.weights_desc());
    fwd_dst_ = Staged(dst_md_, fwd_pd.dst_desc());
  }
  if (!nasc_backward_data_) {
    bwd_data_ = dnnl::convolution_backward_data(bd_pd);
    bd_diff_dst_ = Staged(dst_md_, bd_pd.diff_dst_desc());
    bd_weights_ = Staged(weights_md_, bd_pd.weights_desc());
    bd_diff_src_ = Staged(src_md_, bd_pd.diff_src_desc());
  }
  if (!nasc_backward_weights_) {
    bwd_weights_ = dnnl::convolution_backward_weights(bw_pd);
    bw_src_ = Staged(src_md_, bw_pd.src_desc());
    bw_diff_dst_ = Staged(dst_md_, bw_pd.diff_dst_desc());
    bw_diff_weights_ = Staged(weights_md_, bw_pd.diff_weights_desc());
  }
}

void Conv2dKernel::forward(const float* x, const float* w, const float* b, float* y) const {
  if (nasc_forward_)
    return is_depthwise(params_) ? depthwise_forward(params_, x, w, b, y)
                                 : pointwise_forward(params_, x, w, b, y);
  memory dst = stage_out(fwd_dst_, y, 2);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, stage_in(fwd_src_, x, 0)},
                                       {DNNL_ARG_WEIGHTS, stage_in(fwd_weights_, w, 1)},
                                       {DNNL_ARG_DST, dst}};
  if (params_.bias) args.emplace(DNNL_ARG_BIAS, wrap(bias_md_, b));
  fwd_.execute(cpu_stream(), args);
  finish_out(fwd_dst_, dst, y);
  cpu_stream().wait();
}

void Conv2dKernel::backward_data(const float* dy, const float* w, float* dx) const {
  if (nasc_backward_data_)
    return is_depthwise(params_) ? depthwise_backward_data(params_, dy, w, dx)
                                 : pointwise_backward_data(params_, dy, w, dx);
  memory diff_src = stage_out(bd_diff_src_, dx, 2);
  bwd_data_.execute(cpu_stream(), {{DNNL_ARG_DIFF_DST, stage_in(bd_diff_dst_, dy, 0)},
                                   {DNNL_ARG_WEIGHTS, stage_in(bd_weights_, w, 1)},
                                   {DNNL_ARG_DIFF_SRC, diff_src}});
  finish_out(bd_diff_src_, diff_src, dx);
  cpu_stream().wait();
}

void Conv2dKernel::backward_weights(const float* x, const float* dy, float* dw, float* db) const {
  if (nasc_backward_weights_)
    return is_depthwise(params_) ? depthwise_backward_weights(params_, x, dy, dw, db)
                                 : pointwise_backward_weights(params_, x, dy, dw, db);
  memory diff_w = stage_out(bw_diff_weights_, dw, 2);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, stage_in(bw_src_, x, 0)},
                                       {DNNL_ARG_DIFF_DST, stage_in(bw_diff_dst_, dy, 1)},
                                       {DNNL_ARG_DIFF_WEIGHTS, diff_w}};
  if (params_.bias) args.emplace(DNNL_ARG_DIFF_BIAS, wrap(bias_md_, db));
  bwd_weights_.execute(cpu_stream(), args);
  finish_out(bw_diff_weights_, diff_w, dw);
  cpu_stream().wait();
}

std::string ConvEpilogue::key() const {
  std::string out = batchnorm ? "bn" : "";
  out += fmt::format(" nhwc{}{}{}", src_nhwc ? 1 : 0, dst_nhwc ? 1 : 0, other_nhwc ? 1 : 0);
  for (const ConvEpilogueOp& op : ops)
    out += op.kind == ConvEpilogueOp::Kind::Add ? std::string("+add")
                                                : fmt::format("+{}({:.9g})", op.op, op.param);
  return out;
}

Conv2dEpilogueKernel::Conv2dEpilogueKernel(const Conv2dParams& p, const ConvEpilogue& e)
    : params_(p), epilogue_(e) {
  p.validate();
  const dnnl::engine& engine = cpu_engine();
  has_bias_ = p.bias || e.batchnorm;
  // The post-ops, when oneDNN has every activation of the epilogue.
  dnnl::post_ops post;
  std::vector<EltwiseAlgorithm> eltwise_post_ops;
  post_ops_ = true;
  for (const ConvEpilogueOp& op : e.ops) {
    if (op.kind == ConvEpilogueOp::Kind::Add) {
      NAS_CHECK(!has_add_, "conv epilogue: at most one add");
      has_add_ = true;
      post.append_sum(1.0f);
      continue;
    }
    std::optional<EltwiseKind> kind = eltwise_kind_of(op.op);
    if (!kind) {
      NAS_CHECK(find_elementwise(op.op) != nullptr,
                "conv epilogue: no element-wise formula for " + op.op);
      post_ops_ = false;
      continue;
    }
    for (const EltwiseAlgorithm& a : eltwise_forward_algorithms(*kind, op.param)) {
      // oneDNN 2.6's brgconv applies one algorithm's first alpha/beta to its later post-ops:
      // leaky_relu then relu came out as leaky_relu twice (tests/test_conv_epilogue.cpp).
      // A chain that repeats an algorithm with other constants runs as loops instead.
      for (const EltwiseAlgorithm& seen : eltwise_post_ops)
        if (seen.alg == a.alg && (seen.alpha != a.alpha || seen.beta != a.beta)) post_ops_ = false;
      eltwise_post_ops.push_back(a);
      post.append_eltwise(1.0f, a.alg, a.alpha, a.beta);
    }
  }
  dnnl::primitive_attr attr;
  if (post_ops_) attr.set_post_ops(post);

  const memory::desc src_md({p.n, p.c_in, p.h, p.w}, dt::f32, e.src_nhwc ? tag::nhwc : tag::nchw);
  const memory::dims dst_dims{p.n, p.c_out, p.out_h(), p.out_w()};
  const memory::desc dst_md(dst_dims, dt::f32, e.dst_nhwc ? tag::nhwc : tag::nchw);
  weights_md_ = plain_weights(p);
  if (has_bias_) bias_md_ = memory::desc({p.c_out}, dt::f32, tag::x);
  memory::desc src_any({p.n, p.c_in, p.h, p.w}, dt::f32, tag::any);
  memory::desc dst_any({p.n, p.c_out, p.out_h(), p.out_w()}, dt::f32, tag::any);
  memory::desc weights_any(weight_dims(p), dt::f32, tag::any);
  memory::dims strides{p.stride, p.stride}, dilates{p.dilation - 1, p.dilation - 1},
      padding{p.pad, p.pad};
  auto algo = dnnl::algorithm::convolution_direct;
  auto prop = dnnl::prop_kind::forward_inference;
  auto desc = has_bias_
                  ? dnnl::convolution_forward::desc(prop, algo, src_any, weights_any, bias_md_,
                                                    dst_any, strides, dilates, padding, padding)
                  : dnnl::convolution_forward::desc(prop, algo, src_any, weights_any, dst_any,
                                                    strides, dilates, padding, padding);
  dnnl::convolution_forward::primitive_desc pd(desc, attr, engine);
  fwd_ = dnnl::convolution_forward(pd);
  src_ = Conv2dKernel::Staged(src_md, pd.src_desc());
  weights_ = Conv2dKernel::Staged(weights_md_, pd.weights_desc());
  dst_ = Conv2dKernel::Staged(dst_md, pd.dst_desc());
  if (has_add_) {
    other_md_ = memory::desc(dst_dims, dt::f32, e.other_nhwc ? tag::nhwc : tag::nchw);
    if (other_md_ != dst_.chosen)
      other_to_dst_ =
          dnnl::reorder(dnnl::reorder::primitive_desc(engine, other_md_, engine, dst_.chosen));
    if (other_md_ != dst_md)
      other_to_plain_dst_ =
          dnnl::reorder(dnnl::reorder::primitive_desc(engine, other_md_, engine, dst_md));
  }
}

size_t Conv2dEpilogueKernel::prepared_weights_size() const {
  return weights_.chosen.get_size() / sizeof(float);
}

void Conv2dEpilogueKernel::prepare_weights(const float* w, const float* channel_scale,
                                           float* prepared) const {
  NAS_CHECK((channel_scale != nullptr) == epilogue_.batchnorm,
            "conv epilogue: channel scales exactly with a batch norm");
  // Scaled in the plain layout (rows of c_in/groups * k * k floats per output channel),
  // then reordered. oneDNN's reorder can scale as it goes, but measured 3-10x slower than
  // this loop plus a plain reorder for the 1x1 weights of MobileNetV2.
  const float* plain = w;
  if (channel_scale) {
    const int64_t row = params_.weight_size() / params_.c_out;
    float* scaled = weights_.same
                        ? prepared
                        : static_cast<float*>(scratch(3, sizeof(float) * params_.weight_size()));
    for (int64_t o = 0; o < params_.c_out; ++o)
      for (int64_t i = 0; i < row; ++i) scaled[o * row + i] = w[o * row + i] * channel_scale[o];
    plain = scaled;
  }
  if (weights_.same) {
    if (plain != prepared) std::memcpy(prepared, plain, sizeof(float) * params_.weight_size());
    return;
  }
  memory from = wrap(weights_.plain, plain), to(weights_.chosen, cpu_engine(), prepared);
  weights_.to_chosen.execute(cpu_stream(), from, to);
  cpu_stream().wait();
}

void Conv2dEpilogueKernel::forward(const float* x, const float* prepared, const float* bias,
                                   const float* other, float* y) const {
  NAS_CHECK(!has_bias_ || bias != nullptr, "conv epilogue: the bias is missing");
  NAS_CHECK((other != nullptr) == has_add_, "conv epilogue: the add's operand exactly with an add");
  memory dst = stage_out(dst_, y, 2);
  if (has_add_ && post_ops_) {
    // The sum post-op adds the convolution's result to what dst holds: the add's operand.
    if (other_md_ == dst_.chosen) {
      if (dst.get_data_handle() != other)
        std::memcpy(dst.get_data_handle(), other, sizeof(float) * params_.output_size());
    } else {
      memory from = wrap(other_md_, other);
      other_to_dst_.execute(cpu_stream(), from, dst);
    }
  }
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, stage_in(src_, x, 0)},
                                       {DNNL_ARG_WEIGHTS, wrap(weights_.chosen, prepared)},
                                       {DNNL_ARG_DST, dst}};
  if (has_bias_) args.emplace(DNNL_ARG_BIAS, wrap(bias_md_, bias));
  fwd_.execute(cpu_stream(), args);
  finish_out(dst_, dst, y);
  cpu_stream().wait();
  if (!post_ops_) run_epilogue_loops(other, y);
}

// The epilogue as loops over the output, for an activation oneDNN lacks. Every operation is
// elementwise, so only the add's operand has to be in the output's layout.
void Conv2dEpilogueKernel::run_epilogue_loops(const float* other, float* y) const {
  const int64_t size = params_.output_size();
  if (has_add_ && other_md_ != dst_.plain) {
    float* same_layout = static_cast<float*>(scratch(3, sizeof(float) * size));
    memory from = wrap(other_md_, other), to(dst_.plain, cpu_engine(), same_layout);
    other_to_plain_dst_.execute(cpu_stream(), from, to);
    cpu_stream().wait();
    other = same_layout;
  }
  for (const ConvEpilogueOp& op : epilogue_.ops) {
    if (op.kind == ConvEpilogueOp::Kind::Add) {
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < size; ++i) y[i] += other[i];
      continue;
    }
    const ElementwiseFn* fn = find_elementwise(op.op);
    plain::elementwise_forward(size, fn->value, op.param, y, y);
  }
}

std::shared_ptr<const Conv2dEpilogueKernel> conv2d_epilogue_kernel(const Conv2dParams& params,
                                                                   const ConvEpilogue& epilogue) {
  params.validate();
  return epilogue_cache().get(params.key() + " " + epilogue.key(), [&] {
    return std::make_shared<const Conv2dEpilogueKernel>(params, epilogue);
  });
}

std::shared_ptr<const Conv2dKernel> conv2d_kernel(const Conv2dParams& params) {
  params.validate();
  return cache().get(params.key(), [&] { return std::make_shared<const Conv2dKernel>(params); });
}

std::size_t conv2d_kernels_created() {
  return cache().created();
}

}  // namespace nas
