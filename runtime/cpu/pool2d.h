// 2-D max and average pooling on the CPU through oneDNN, forward (training) and backward on
// plain NCHW float buffers, primitives created once per signature and cached. Semantics
// follow the `max_pool`/`avg_pool` ops: square window, symmetric implicit padding of at most
// kernel/2, floor output size, stride 0 meaning "equal to the kernel".
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>

#include "runtime/cpu/pool2d_params.h"

namespace nas {

// Forward and backward primitives of one pooling signature; immutable and shared.
// Max pooling records, in a workspace, which input each output came from; the caller owns
// that buffer (workspace_bytes() long) and hands the same one to forward and backward, as it
// lives exactly as long as the activation it belongs to. Outputs are overwritten.
class Pool2dKernel {
 public:
  explicit Pool2dKernel(const Pool2dParams& params);

  const Pool2dParams& params() const { return params_; }
  // Bytes of workspace forward writes and backward reads; 0 for average pooling.
  std::size_t workspace_bytes() const;

  // `workspace` may be null when workspace_bytes() is 0.
  void forward(const float* x, float* y, void* workspace) const;
  // dx from dy (and, for max, the workspace its forward wrote). The gradient of a max goes
  // to the single input the forward picked (the first maximum on ties), so inputs with ties
  // have a kink there and finite differences do not apply.
  void backward(const float* dy, const void* workspace, float* dx) const;

 private:
  Pool2dParams params_;
  dnnl::memory::desc src_md_, dst_md_, workspace_md_;
  dnnl::pooling_forward fwd_;
  dnnl::pooling_backward bwd_;
};

// The cached kernel for `params` (validated first); thread-safe, built once per signature.
std::shared_ptr<const Pool2dKernel> pool2d_kernel(const Pool2dParams& params);

// How many Pool2dKernel objects the cache has built since start-up.
std::size_t pool2d_kernels_created();

}  // namespace nas
