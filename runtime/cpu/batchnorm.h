// Batch normalisation on the CPU on plain NCHW float buffers (per-channel statistics over
// n, h and w): training forward and backward are plain loops, inference a oneDNN
// primitive, created once per signature and cached. Semantics
// follow the `batchnorm` op and PyTorch's BatchNorm2d:
//   training:  y = (x - mean_b) / sqrt(var_b + eps) * scale + shift, with the batch mean and
//              biased batch variance; the running statistics are then updated as
//              running = (1 - momentum) * running + momentum * batch, where the variance
//              folded into running_var is the UNBIASED one (var_b * m / (m - 1), m = n*h*w).
//   inference: the same with running mean/var in place of the batch statistics.
// With affine = false there is no scale or shift (scale 1, shift 0). A 1-D feature vector
// per sample is the h = w = 1 case.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <string>
#include <vector>

#include "runtime/cpu/batchnorm_params.h"
#include "runtime/cpu/row_activation.h"

namespace nas {

// What a training forward also computes, row by row, from each row of y while it is in
// cache (a BatchNorm region): `out` = the activations applied in order to y.
struct BatchNormEpilogue {
  std::vector<RowActivation> activations;
  float* out = nullptr;

  // out[at, at + n) = the activations of y[0, n) (y: the batch norm's output from `at` on).
  void apply(const float* y, int64_t at, int64_t n) const;
};

// How a backward pass gets its incoming gradient (a BatchNormGrad region):
// dy = scale * g * f'(x), without f' when there is no activation, never stored (read inline
// by the loops for none and ReLU, computed into scratch for any other). The `dy` argument
// is then g.
struct BatchNormPrologue {
  std::optional<RowActivation> activation;
  const float* x = nullptr;  // the activation's input
  float scale = 1.0f;        // a mixed op candidate's weight

  // dy[0, n) from g[0, n), reading the activation's input from element `at` on.
  void incoming(const float* g, int64_t at, float* dy, int64_t n) const;
};

// The primitives of one batch-norm signature; immutable and shared. All outputs are
// overwritten except running_mean/running_var, which are updated in place. `scale` and
// `shift` (and `dscale`/`dshift`) are [c] and ignored (may be null) when affine is false.
class BatchNormKernel {
 public:
  explicit BatchNormKernel(const BatchNormParams& params);

  const BatchNormParams& params() const { return params_; }

  // Normalises with the batch statistics, writing the batch mean and biased variance to
  // `mean`/`var` ([c] each; backward needs them) and updating running_mean/running_var
  // ([c] each; either may be null to skip the update). Throws InternalError when a
  // channel has a single value (n*h*w == 1), as PyTorch does: the unbiased variance is
  // undefined there. With an epilogue, also writes its output, and y may be null (not
  // stored).
  void forward_training(const float* x, const float* scale, const float* shift, float* y,
                        float* mean, float* var, float* running_mean, float* running_var,
                        const BatchNormEpilogue* epilogue = nullptr) const;
  // Normalises with the given (running) statistics.
  void forward_inference(const float* x, const float* scale, const float* shift,
                         const float* running_mean, const float* running_var, float* y) const;
  // Gradients of the training forward: dx, and (when affine) dscale and dshift, from x, dy,
  // the batch mean/var that forward_training returned, and scale. With a prologue, `dy` is
  // its g.
  void backward(const float* x, const float* dy, const float* mean, const float* var,
                const float* scale, float* dx, float* dscale, float* dshift,
                const BatchNormPrologue* prologue = nullptr) const;
  // dx of a batch norm without scale and shift from its output y (which is x_hat), dy and
  // the batch variance: the backward pass then need not keep the input. With `product`
  // (a prologue that only scales: a mixed op candidate's share), also sets it to
  // sum(g * y), the mixed op's d/dw for the candidate (compiler/passes/fusion.h).
  void backward_from_output(const float* y, const float* dy, const float* var, float* dx,
                            const BatchNormPrologue* prologue = nullptr,
                            double* product = nullptr) const;

 private:
  BatchNormParams params_;
  dnnl::memory::desc data_md_, stat_md_;
  dnnl::batch_normalization_forward fwd_infer_;
};

// The cached kernel for `params` (validated first); thread-safe, built once per signature.
std::shared_ptr<const BatchNormKernel> batchnorm_kernel(const BatchNormParams& params);

// How many BatchNormKernel objects the cache has built since start-up.
std::size_t batchnorm_kernels_created();

}  // namespace nas
