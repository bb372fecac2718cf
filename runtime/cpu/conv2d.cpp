#include "runtime/cpu/conv2d.h"

#include <fmt/format.h>

#include <stdexcept>

#include "runtime/cpu/dnnl_context.h"
#include "runtime/cpu/kernel_cache.h"

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

}  // namespace

int64_t Conv2dParams::out_h() const {
  return conv_out(h, *this);
}
int64_t Conv2dParams::out_w() const {
  return conv_out(w, *this);
}

void Conv2dParams::validate() const {
  auto fail = [](const std::string& msg) { throw std::invalid_argument("conv2d: " + msg); };
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

Conv2dKernel::Conv2dKernel(const Conv2dParams& p) : params_(p) {
  p.validate();
  const dnnl::engine& engine = cpu_engine();
  src_md_ = memory::desc({p.n, p.c_in, p.h, p.w}, dt::f32, tag::nchw);
  dst_md_ = memory::desc({p.n, p.c_out, p.out_h(), p.out_w()}, dt::f32, tag::nchw);
  // goihw with plain strides is byte-for-byte the [c_out, c_in/g, k, k] layout, so grouped
  // and dense weights share one user-visible format.
  if (p.groups == 1)
    weights_md_ = memory::desc({p.c_out, p.c_in, p.kernel, p.kernel}, dt::f32, tag::oihw);
  else
    weights_md_ = memory::desc(
        {p.groups, p.c_out / p.groups, p.c_in / p.groups, p.kernel, p.kernel}, dt::f32, tag::goihw);
  if (p.bias) bias_md_ = memory::desc({p.c_out}, dt::f32, tag::x);

  memory::dims strides{p.stride, p.stride}, dilates{p.dilation - 1, p.dilation - 1},
      padding{p.pad, p.pad};
  // Symmetric padding with floor output size: oneDNN accepts windows that stop short of
  // the right padding, which is exactly the floor rule of the `conv` op.
  auto algo = dnnl::algorithm::convolution_direct;
  auto fwd_desc = p.bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algo,
                                                           src_md_, weights_md_, bias_md_, dst_md_,
                                                           strides, dilates, padding, padding)
                         : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algo,
                                                           src_md_, weights_md_, dst_md_, strides,
                                                           dilates, padding, padding);
  dnnl::convolution_forward::primitive_desc fwd_pd(fwd_desc, engine);
  fwd_ = dnnl::convolution_forward(fwd_pd);

  dnnl::convolution_backward_data::desc bwd_data_desc(algo, src_md_, weights_md_, dst_md_, strides,
                                                      dilates, padding, padding);
  bwd_data_ = dnnl::convolution_backward_data(
      dnnl::convolution_backward_data::primitive_desc(bwd_data_desc, engine, fwd_pd));

  auto bwd_w_desc =
      p.bias ? dnnl::convolution_backward_weights::desc(algo, src_md_, weights_md_, bias_md_,
                                                        dst_md_, strides, dilates, padding, padding)
             : dnnl::convolution_backward_weights::desc(algo, src_md_, weights_md_, dst_md_,
                                                        strides, dilates, padding, padding);
  bwd_weights_ = dnnl::convolution_backward_weights(
      dnnl::convolution_backward_weights::primitive_desc(bwd_w_desc, engine, fwd_pd));
}

void Conv2dKernel::forward(const float* x, const float* w, const float* b, float* y) const {
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, wrap(src_md_, x)},
                                       {DNNL_ARG_WEIGHTS, wrap(weights_md_, w)},
                                       {DNNL_ARG_DST, wrap(dst_md_, y)}};
  if (params_.bias) args.emplace(DNNL_ARG_BIAS, wrap(bias_md_, b));
  fwd_.execute(cpu_stream(), args);
  cpu_stream().wait();
}

void Conv2dKernel::backward_data(const float* dy, const float* w, float* dx) const {
  bwd_data_.execute(cpu_stream(), {{DNNL_ARG_DIFF_DST, wrap(dst_md_, dy)},
                                   {DNNL_ARG_WEIGHTS, wrap(weights_md_, w)},
                                   {DNNL_ARG_DIFF_SRC, wrap(src_md_, dx)}});
  cpu_stream().wait();
}

void Conv2dKernel::backward_weights(const float* x, const float* dy, float* dw, float* db) const {
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, wrap(src_md_, x)},
                                       {DNNL_ARG_DIFF_DST, wrap(dst_md_, dy)},
                                       {DNNL_ARG_DIFF_WEIGHTS, wrap(weights_md_, dw)}};
  if (params_.bias) args.emplace(DNNL_ARG_DIFF_BIAS, wrap(bias_md_, db));
  bwd_weights_.execute(cpu_stream(), args);
  cpu_stream().wait();
}

std::shared_ptr<const Conv2dKernel> conv2d_kernel(const Conv2dParams& params) {
  params.validate();
  return cache().get(params.key(), [&] { return std::make_shared<const Conv2dKernel>(params); });
}

std::size_t conv2d_kernels_created() {
  return cache().created();
}

}  // namespace nas
