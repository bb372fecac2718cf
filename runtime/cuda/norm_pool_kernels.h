// The CUDA backend's batch normalisation, pooling and global average pooling on plain NCHW
// float buffers, as kernels enqueued on a stream. Each launcher mirrors a CPU function (named
// in its comment) in arithmetic, accumulation type and order of float operations as far as a
// parallel kernel allows, so that the two backends agree to rounding. Every result is the
// same on every run: no floating-point atomics, every reduction in a fixed order.
//
// Conventions: pointers are device pointers; the last parameter is the stream the kernels
// are enqueued on; launchers never synchronise and never allocate. A bad launch is an
// InternalError (NAS_CUDA), and so is an inconsistent parameter (NAS_CHECK): the backend
// fills these from plans nasc lowered, so a bad one is a bug. The parameters are the CPU's
// (runtime/cpu/batchnorm_params.h, pool2d_params.h).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "runtime/cpu/batchnorm_params.h"
#include "runtime/cpu/pool2d_params.h"

namespace nas::cuda {

// --- Batch normalisation ---------------------------------------------------------------------
//
// Per-channel statistics over n, h and w (m = n*h*w values), as nas::BatchNormParams:
//   training:  y = (x - mean_b) / sqrt(var_b + eps) * scale + shift, with the batch mean and
//              the BIASED batch variance; running = (1 - momentum) * running + momentum *
//              batch, where the variance folded in is the UNBIASED one (var_b * m / (m - 1)).
//   inference: the same with the running statistics in place of the batch ones.
// affine = false: no scale or shift (scale 1, shift 0; their pointers may be null). A 1-D
// feature vector per sample is h = w = 1. One block per channel does all of a channel's work,
// so C blocks are launched.

// BatchNormKernel::forward_training (without an epilogue): y [n,c,h,w] from x; mean/var [c]
// get the batch mean and biased variance (backward reads them); running_mean/running_var
// [c] are updated in place, each skipped when null. Throws InternalError when a channel has
// a single value (n*h*w == 1): the unbiased variance is undefined there (as PyTorch).
// Statistics: each sample's row (h*w values) is reduced in float (its mean, then its squared
// deviations from that mean) and the rows are combined in double in sample order (Chan et
// al.'s pairwise update), as the CPU does.
void batchnorm_forward_training(const BatchNormParams& p, const float* x, const float* scale,
                                const float* shift, float* y, float* mean, float* var,
                                float* running_mean, float* running_var, cudaStream_t stream);

// BatchNormKernel::forward_inference (a oneDNN primitive on the CPU):
// y = (x - running_mean) * (1 / sqrt(running_var + eps)) * scale + shift, all in float with
// eps as a float, the last multiply-add fused as oneDNN's x86 JIT kernel does.
void batchnorm_forward_inference(const BatchNormParams& p, const float* x, const float* scale,
                                 const float* shift, const float* running_mean,
                                 const float* running_var, float* y, cudaStream_t stream);

// BatchNormKernel::backward (without a prologue), with x_hat = (x - mean) / sqrt(var + eps):
//   dx = scale / sqrt(var + eps) * (dy - sum(dy) / m - x_hat * sum(dy * x_hat) / m)
// written to dx; when affine, dscale[c] += sum(dy * x_hat) and dshift[c] += sum(dy) (they
// are parameter gradients: the CPU backend computes them into scratch and adds that, so
// the result is the same float additions). mean/var are forward_training's [c] outputs.
// Sums: each row in float, the rows combined in double in sample order.
void batchnorm_backward(const BatchNormParams& p, const float* x, const float* dy,
                        const float* mean, const float* var, const float* scale, float* dx,
                        float* dscale, float* dshift, cudaStream_t stream);

// BatchNormKernel::backward_from_output (without prologue or product), affine = false only:
//   dx = (dy - mean(dy) - y * mean(dy * y)) / sqrt(var + eps)
// from the output y (which is x_hat), dy and the batch variance [c].
void batchnorm_backward_from_output(const BatchNormParams& p, const float* y, const float* dy,
                                    const float* var, float* dx, cudaStream_t stream);

// --- 2-D max and average pooling -------------------------------------------------------------
//
// As oneDNN's pooling the CPU runs: a square kernel x kernel window,
// stride 0 meaning "equal to the kernel", symmetric implicit padding of at most kernel/2, no
// dilation, floor output size out = (in + 2*pad - kernel) / stride + 1. Every window then
// holds at least one input. Average pooling with count_include_pad divides by kernel^2 (the
// window always lies inside the padded image), without it by the number of inputs in the
// window. Backward passes gather: each input element sums its covering outputs' shares
// in output order (row, then column), so overlapping windows need no atomics.

// Bytes of the workspace max_pool_forward writes and max_pool_backward reads: one int32 per
// output, the index (iy * w + ix) within its input plane of the input it came from.
inline std::size_t max_pool_workspace_bytes(const Pool2dParams& p) {
  return static_cast<std::size_t>(p.output_size()) * sizeof(int32_t);
}

// Pool2dKernel::forward for max pooling: y = the maximum of each window. As oneDNN's, the
// running maximum starts at -FLT_MAX and is replaced only by a strictly greater value: ties
// go to the first maximum in window order (row, then column), NaN never wins, and a window
// holding nothing above -FLT_MAX gives -FLT_MAX with its first input as the argmax.
// argmax (max_pool_workspace_bytes) may be null when no backward follows.
void max_pool_forward(const Pool2dParams& p, const float* x, float* y, int32_t* argmax,
                      cudaStream_t stream);

// Pool2dKernel::backward for max pooling: dx (fully written) = the sum of dy over the
// outputs whose argmax is that input, in output order.
void max_pool_backward(const Pool2dParams& p, const float* dy, const int32_t* argmax, float* dx,
                       cudaStream_t stream);

// Pool2dKernel::forward for average pooling: y = (the window's inputs summed in float in
// window order) / divisor, the division in float as oneDNN's.
void avg_pool_forward(const Pool2dParams& p, const float* x, float* y, cudaStream_t stream);

// Pool2dKernel::backward for average pooling: dx (fully written) = the sum over covering
// outputs, in output order, of dy / that output's divisor (in float).
void avg_pool_backward(const Pool2dParams& p, const float* dy, float* dx, cudaStream_t stream);

// --- Global average pooling ------------------------------------------------------------------

// plain::global_avg_pool_forward (without activations): y[b, ch] = the mean of x[b, ch] over
// h and w. Each plane is summed by one thread in double in memory order, then multiplied by
// 1.0 / (h*w) in double and rounded to float: exactly the CPU's operations, so the results
// are identical.
void global_avg_pool_forward(int64_t n, int64_t c, int64_t h, int64_t w, const float* x, float* y,
                             cudaStream_t stream);

// plain::global_avg_pool_backward: dx[b, ch, :, :] = float(double(dy[b, ch]) * (1.0 / (h*w))).
void global_avg_pool_backward(int64_t n, int64_t c, int64_t h, int64_t w, const float* dy,
                              float* dx, cudaStream_t stream);

}  // namespace nas::cuda
