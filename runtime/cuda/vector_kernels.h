// The CUDA backend's vector and optimizer operations (Backend::fill ... adam_update) as
// kernels, enqueued on a stream. The arithmetic is the CPU backend's, in the same order, so
// that the two agree to rounding (nvcc may fuse a multiply and an add where the CPU does
// not).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "runtime/exec/backend.h"

namespace nas::cuda {

// Blocks of the sum-of-squares kernel: each adds its share into its own partial sum, so the
// total is the same on every run (no atomics, a fixed order).
constexpr int kSquareSumBlocks = 256;

void launch_fill(float* x, size_t n, float value, cudaStream_t stream);
void launch_scale(float* x, size_t n, float factor, cudaStream_t stream);
void launch_axpy(float* y, float a, const float* x, size_t n, cudaStream_t stream);
// partials[b] += the sum of squares of block b's share of x, in double.
void launch_add_squares(const float* x, size_t n, double* partials, cudaStream_t stream);
// *total = the sum of partials[0 .. kSquareSumBlocks), in a fixed order.
void launch_sum_partials(const double* partials, double* total, cudaStream_t stream);

void launch_sgd_update(const SgdUpdate& u, float* w, const float* g, float* momentum, size_t n,
                       cudaStream_t stream);
void launch_adam_update(const AdamUpdate& u, float* w, const float* g, float* m, float* v, size_t n,
                        cudaStream_t stream);

}  // namespace nas::cuda
