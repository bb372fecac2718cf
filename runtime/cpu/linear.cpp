#include "runtime/cpu/linear.h"

#include <fmt/format.h>

#include "runtime/cpu/dnnl_context.h"
#include "runtime/cpu/kernel_cache.h"
#include "support/errors.h"

namespace nas {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

memory wrap(const memory::desc& md, const float* data) {
  return memory(md, cpu_engine(), const_cast<float*>(data));
}

KernelCache<LinearKernel>& cache() {
  static KernelCache<LinearKernel> instance;
  return instance;
}

}  // namespace

void LinearParams::validate() const {
  if (n < 1 || in < 1 || out < 1)
    internal_error(
        __FILE__, __LINE__,
        fmt::format("linear: sizes must be positive, got n={} in={} out={}", n, in, out));
}

std::string LinearParams::key() const {
  return fmt::format("linear n{} in{} out{} b{}", n, in, out, bias ? 1 : 0);
}

LinearKernel::LinearKernel(const LinearParams& p) : params_(p) {
  p.validate();
  const dnnl::engine& engine = cpu_engine();
  src_md_ = memory::desc({p.n, p.in}, dt::f32, tag::nc);
  weights_md_ = memory::desc({p.out, p.in}, dt::f32, tag::oi);  // PyTorch's [out, in]
  dst_md_ = memory::desc({p.n, p.out}, dt::f32, tag::nc);
  if (p.bias) bias_md_ = memory::desc({p.out}, dt::f32, tag::x);

  auto prop = dnnl::prop_kind::forward_training;
  auto fwd_desc =
      p.bias ? dnnl::inner_product_forward::desc(prop, src_md_, weights_md_, bias_md_, dst_md_)
             : dnnl::inner_product_forward::desc(prop, src_md_, weights_md_, dst_md_);
  dnnl::inner_product_forward::primitive_desc fwd_pd(fwd_desc, engine);
  fwd_ = dnnl::inner_product_forward(fwd_pd);

  dnnl::inner_product_backward_data::desc bwd_data_desc(src_md_, weights_md_, dst_md_);
  bwd_data_ = dnnl::inner_product_backward_data(
      dnnl::inner_product_backward_data::primitive_desc(bwd_data_desc, engine, fwd_pd));

  auto bwd_w_desc =
      p.bias ? dnnl::inner_product_backward_weights::desc(src_md_, weights_md_, bias_md_, dst_md_)
             : dnnl::inner_product_backward_weights::desc(src_md_, weights_md_, dst_md_);
  bwd_weights_ = dnnl::inner_product_backward_weights(
      dnnl::inner_product_backward_weights::primitive_desc(bwd_w_desc, engine, fwd_pd));
}

void LinearKernel::forward(const float* x, const float* w, const float* b, float* y) const {
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, wrap(src_md_, x)},
                                       {DNNL_ARG_WEIGHTS, wrap(weights_md_, w)},
                                       {DNNL_ARG_DST, wrap(dst_md_, y)}};
  if (params_.bias) {
    if (!b) internal_error(__FILE__, __LINE__, "linear: forward with bias needs a bias buffer");
    args.emplace(DNNL_ARG_BIAS, wrap(bias_md_, b));
  }
  fwd_.execute(cpu_stream(), args);
  cpu_stream().wait();
}

void LinearKernel::backward_data(const float* dy, const float* w, float* dx) const {
  bwd_data_.execute(cpu_stream(), {{DNNL_ARG_DIFF_DST, wrap(dst_md_, dy)},
                                   {DNNL_ARG_WEIGHTS, wrap(weights_md_, w)},
                                   {DNNL_ARG_DIFF_SRC, wrap(src_md_, dx)}});
  cpu_stream().wait();
}

void LinearKernel::backward_weights(const float* x, const float* dy, float* dw, float* db) const {
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, wrap(src_md_, x)},
                                       {DNNL_ARG_DIFF_DST, wrap(dst_md_, dy)},
                                       {DNNL_ARG_DIFF_WEIGHTS, wrap(weights_md_, dw)}};
  if (params_.bias) {
    if (!db)
      internal_error(__FILE__, __LINE__, "linear: backward with bias needs a bias-gradient buffer");
    args.emplace(DNNL_ARG_DIFF_BIAS, wrap(bias_md_, db));
  }
  bwd_weights_.execute(cpu_stream(), args);
  cpu_stream().wait();
}

std::shared_ptr<const LinearKernel> linear_kernel(const LinearParams& params) {
  params.validate();
  return cache().get(params.key(), [&] { return std::make_shared<const LinearKernel>(params); });
}

std::size_t linear_kernels_created() {
  return cache().created();
}

}  // namespace nas
