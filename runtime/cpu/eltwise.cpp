#include "runtime/cpu/eltwise.h"

#include <fmt/format.h>

#include <cmath>

#include "runtime/cpu/dnnl_context.h"
#include "runtime/cpu/kernel_cache.h"
#include "support/errors.h"

namespace nas {
namespace {

using dnnl::algorithm;
using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

memory wrap(const memory::desc& md, const float* data) {
  return memory(md, cpu_engine(), const_cast<float*>(data));
}

KernelCache<EltwiseKernel>& cache() {
  static KernelCache<EltwiseKernel> instance;
  return instance;
}

// One oneDNN eltwise algorithm with its alpha and beta.
struct Alg {
  algorithm alg;
  float alpha = 0, beta = 0;
};

// The primitive of each kind (for hard_sigmoid: of its backward's mask, see below). relu6
// is clip_v2 on [0, 6] (clip_v2 rather than clip so the gradient at the upper bound is
// defined the same as oneDNN's bounded_relu).
Alg main_alg(const EltwiseParams& p) {
  switch (p.kind) {
    case EltwiseKind::relu:
      return {algorithm::eltwise_relu, 0.0f, 0.0f};
    case EltwiseKind::relu6:
      return {algorithm::eltwise_clip_v2, 0.0f, 6.0f};
    case EltwiseKind::leaky_relu:
      return {algorithm::eltwise_relu, static_cast<float>(p.slope), 0.0f};
    case EltwiseKind::sigmoid:
      return {algorithm::eltwise_logistic, 0.0f, 0.0f};
    case EltwiseKind::hard_swish:
      return {algorithm::eltwise_hardswish, 0.0f, 0.0f};
    case EltwiseKind::hard_sigmoid:
      return {algorithm::eltwise_clip_v2, -3.0f, 3.0f};
  }
  internal_error(__FILE__, __LINE__, "eltwise: unknown kind");
}

// hard_sigmoid(x) = clip(x / 6 + 1/2, 0, 1) (= relu6(x + 3) / 6): forward runs the affine
// map then the clip (so the saturated values are exactly 0 and 1); backward multiplies by
// the affine map's 1/6 then by the mask of clip(x, -3, 3), the same mask expressed on x.
const Alg hs_affine{algorithm::eltwise_linear, 1.0f / 6.0f, 0.5f};
const Alg hs_clip{algorithm::eltwise_clip_v2, 0.0f, 1.0f};

dnnl::eltwise_forward::primitive_desc forward_pd(const Alg& a, const memory::desc& md) {
  dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_training, a.alg, md, a.alpha, a.beta);
  return dnnl::eltwise_forward::primitive_desc(d, cpu_engine());
}

dnnl::eltwise_backward backward_of(const Alg& a, const memory::desc& md,
                                   const dnnl::eltwise_forward::primitive_desc& hint) {
  dnnl::eltwise_backward::desc d(a.alg, md, md, a.alpha, a.beta);
  return dnnl::eltwise_backward(dnnl::eltwise_backward::primitive_desc(d, cpu_engine(), hint));
}

}  // namespace

std::vector<EltwiseAlgorithm> eltwise_forward_algorithms(EltwiseKind kind, double slope) {
  if (kind == EltwiseKind::hard_sigmoid)
    return {{hs_affine.alg, hs_affine.alpha, hs_affine.beta},
            {hs_clip.alg, hs_clip.alpha, hs_clip.beta}};
  EltwiseParams p;
  p.kind = kind;
  p.slope = slope;
  const Alg a = main_alg(p);
  return {{a.alg, a.alpha, a.beta}};
}

const char* eltwise_name(EltwiseKind kind) {
  switch (kind) {
    case EltwiseKind::relu:
      return "relu";
    case EltwiseKind::relu6:
      return "relu6";
    case EltwiseKind::leaky_relu:
      return "leaky_relu";
    case EltwiseKind::sigmoid:
      return "sigmoid";
    case EltwiseKind::hard_swish:
      return "hard_swish";
    case EltwiseKind::hard_sigmoid:
      return "hard_sigmoid";
  }
  return "?";
}

std::optional<EltwiseKind> eltwise_kind_of(std::string_view op) {
  for (EltwiseKind kind :
       {EltwiseKind::relu, EltwiseKind::relu6, EltwiseKind::leaky_relu, EltwiseKind::sigmoid,
        EltwiseKind::hard_swish, EltwiseKind::hard_sigmoid})
    if (op == eltwise_name(kind)) return kind;
  return std::nullopt;
}

void EltwiseParams::validate() const {
  auto fail = [](const std::string& msg) { internal_error(__FILE__, __LINE__, "eltwise: " + msg); };
  switch (kind) {
    case EltwiseKind::relu:
    case EltwiseKind::relu6:
    case EltwiseKind::leaky_relu:
    case EltwiseKind::sigmoid:
    case EltwiseKind::hard_swish:
    case EltwiseKind::hard_sigmoid:
      break;
    default:
      fail(fmt::format("unknown kind {}", static_cast<int>(kind)));
  }
  if (size < 1) fail(fmt::format("{}: size must be positive, got {}", eltwise_name(kind), size));
  if (kind == EltwiseKind::leaky_relu && !std::isfinite(slope))
    fail(fmt::format("leaky_relu: slope must be finite, got {}", slope));
}

std::string EltwiseParams::key() const {
  if (kind == EltwiseKind::leaky_relu)
    // The slope is stored as a float by oneDNN; key on that value so that doubles rounding
    // to the same float share a kernel.
    return fmt::format("eltwise leaky_relu n{} slope{}", size, static_cast<float>(slope));
  return fmt::format("eltwise {} n{}", eltwise_name(kind), size);
}

EltwiseKernel::EltwiseKernel(const EltwiseParams& p) : params_(p) {
  p.validate();
  md_ = memory::desc({p.size}, dt::f32, tag::a);
  Alg main = main_alg(p);
  auto fwd_pd = forward_pd(main, md_);
  bwd_ = backward_of(main, md_, fwd_pd);
  if (p.kind != EltwiseKind::hard_sigmoid) {
    fwd_ = dnnl::eltwise_forward(fwd_pd);
  } else {
    has_post_ = true;
    auto affine_pd = forward_pd(hs_affine, md_);
    fwd_ = dnnl::eltwise_forward(affine_pd);
    post_fwd_ = dnnl::eltwise_forward(forward_pd(hs_clip, md_));
    post_bwd_ = backward_of(hs_affine, md_, affine_pd);
  }
}

void EltwiseKernel::forward(const float* x, float* y) const {
  memory dst = wrap(md_, y);
  fwd_.execute(cpu_stream(), {{DNNL_ARG_SRC, wrap(md_, x)}, {DNNL_ARG_DST, dst}});
  if (has_post_) post_fwd_.execute(cpu_stream(), {{DNNL_ARG_SRC, dst}, {DNNL_ARG_DST, dst}});
  cpu_stream().wait();
}

void EltwiseKernel::backward(const float* x, const float* dy, float* dx) const {
  memory src = wrap(md_, x), diff_src = wrap(md_, dx);
  if (!has_post_) {
    bwd_.execute(
        cpu_stream(),
        {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, wrap(md_, dy)}, {DNNL_ARG_DIFF_SRC, diff_src}});
  } else {
    // Chain rule backwards through the two stages: the affine map's gradient (a constant
    // 1/6, so its src is irrelevant) first, then the clip's, both in place on dx.
    post_bwd_.execute(
        cpu_stream(),
        {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, wrap(md_, dy)}, {DNNL_ARG_DIFF_SRC, diff_src}});
    bwd_.execute(
        cpu_stream(),
        {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, diff_src}, {DNNL_ARG_DIFF_SRC, diff_src}});
  }
  cpu_stream().wait();
}

std::shared_ptr<const EltwiseKernel> eltwise_kernel(const EltwiseParams& params) {
  params.validate();
  return cache().get(params.key(), [&] { return std::make_shared<const EltwiseKernel>(params); });
}

std::size_t eltwise_kernels_created() {
  return cache().created();
}

}  // namespace nas
