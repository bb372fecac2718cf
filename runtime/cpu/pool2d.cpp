#include "runtime/cpu/pool2d.h"

#include "runtime/cpu/dnnl_context.h"
#include "runtime/cpu/kernel_cache.h"
#include "support/errors.h"

namespace nas {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

memory wrap(const memory::desc& md, const void* data) {
  return memory(md, cpu_engine(), const_cast<void*>(data));
}

dnnl::algorithm algorithm_of(const Pool2dParams& p) {
  if (p.kind == PoolKind::max) return dnnl::algorithm::pooling_max;
  // With symmetric padding, pad <= kernel/2 and floor output sizes every window lies inside
  // the padded image, so "include padding" divides by kernel^2 exactly as PyTorch does.
  return p.count_include_pad ? dnnl::algorithm::pooling_avg_include_padding
                             : dnnl::algorithm::pooling_avg_exclude_padding;
}

KernelCache<Pool2dKernel>& cache() {
  static KernelCache<Pool2dKernel> instance;
  return instance;
}

}  // namespace

Pool2dKernel::Pool2dKernel(const Pool2dParams& p) : params_(p) {
  p.validate();
  const dnnl::engine& engine = cpu_engine();
  src_md_ = memory::desc({p.n, p.c, p.h, p.w}, dt::f32, tag::nchw);
  dst_md_ = memory::desc({p.n, p.c, p.out_h(), p.out_w()}, dt::f32, tag::nchw);
  memory::dims strides{p.effective_stride(), p.effective_stride()}, kernel{p.kernel, p.kernel},
      padding{p.pad, p.pad};
  dnnl::pooling_forward::desc fwd_desc(dnnl::prop_kind::forward_training, algorithm_of(p), src_md_,
                                       dst_md_, strides, kernel, padding, padding);
  dnnl::pooling_forward::primitive_desc fwd_pd(fwd_desc, engine);
  workspace_md_ = fwd_pd.workspace_desc();
  fwd_ = dnnl::pooling_forward(fwd_pd);
  dnnl::pooling_backward::desc bwd_desc(algorithm_of(p), src_md_, dst_md_, strides, kernel, padding,
                                        padding);
  bwd_ = dnnl::pooling_backward(dnnl::pooling_backward::primitive_desc(bwd_desc, engine, fwd_pd));
}

std::size_t Pool2dKernel::workspace_bytes() const {
  return workspace_md_.get_size();
}

void Pool2dKernel::forward(const float* x, float* y, void* workspace) const {
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, wrap(src_md_, x)},
                                       {DNNL_ARG_DST, wrap(dst_md_, y)}};
  if (workspace_bytes() > 0) {
    if (!workspace)
      internal_error(__FILE__, __LINE__, "pool2d: max pooling forward needs a workspace");
    args.emplace(DNNL_ARG_WORKSPACE, wrap(workspace_md_, workspace));
  }
  fwd_.execute(cpu_stream(), args);
  cpu_stream().wait();
}

void Pool2dKernel::backward(const float* dy, const void* workspace, float* dx) const {
  std::unordered_map<int, memory> args{{DNNL_ARG_DIFF_DST, wrap(dst_md_, dy)},
                                       {DNNL_ARG_DIFF_SRC, wrap(src_md_, dx)}};
  if (workspace_bytes() > 0) {
    if (!workspace)
      internal_error(__FILE__, __LINE__,
                     "pool2d: max pooling backward needs the forward's workspace");
    args.emplace(DNNL_ARG_WORKSPACE, wrap(workspace_md_, workspace));
  }
  bwd_.execute(cpu_stream(), args);
  cpu_stream().wait();
}

std::shared_ptr<const Pool2dKernel> pool2d_kernel(const Pool2dParams& params) {
  params.validate();
  return cache().get(params.key(), [&] { return std::make_shared<const Pool2dKernel>(params); });
}

std::size_t pool2d_kernels_created() {
  return cache().created();
}

}  // namespace nas
