#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/kernel_util.cuh"
#include "runtime/cuda/vector_kernels.h"

namespace nas::cuda {

namespace {

using namespace kernels;

__global__ void fill_kernel(float* x, size_t n, float value) {
  for (size_t i : GridStride{n}) x[i] = value;
}

__global__ void scale_kernel(float* x, size_t n, float factor) {
  for (size_t i : GridStride{n}) x[i] *= factor;
}

__global__ void axpy_kernel(float* y, float a, const float* x, size_t n) {
  for (size_t i : GridStride{n}) y[i] += a * x[i];
}

__global__ void add_squares_kernel(const float* x, size_t n, double* partials) {
  double sum = 0;
  for (size_t i : GridStride{n}) sum += static_cast<double>(x[i]) * x[i];
  sum = block_sum(sum);
  if (threadIdx.x == 0) partials[blockIdx.x] += sum;
}

__global__ void sum_partials_kernel(const double* partials, double* total) {
  double sum = 0;
  for (int i = threadIdx.x; i < kSquareSumBlocks; i += blockDim.x) sum += partials[i];
  sum = block_sum(sum);
  if (threadIdx.x == 0) *total = sum;
}

__global__ void sgd_kernel(SgdUpdate u, float* w, const float* g, float* buf, size_t n) {
  for (size_t i : GridStride{n}) {
    float d = g[i];
    if (u.weight_decay != 0) d += u.weight_decay * w[i];
    if (buf) {
      buf[i] = u.first ? d : u.momentum * buf[i] + d;
      d = u.nesterov ? d + u.momentum * buf[i] : buf[i];
    }
    w[i] -= u.lr * d;
  }
}

__global__ void adam_kernel(AdamUpdate u, float* w, const float* g_in, float* m, float* v,
                            size_t n) {
  for (size_t i : GridStride{n}) {
    float g = g_in[i];
    if (u.weight_decay != 0) g += u.weight_decay * w[i];
    m[i] += u.w1 * (g - m[i]);
    v[i] = u.b2 * v[i] + u.w2 * g * g;
    const float denom = sqrtf(v[i]) / u.bc2_sqrt + u.eps;
    w[i] -= u.step_size * (m[i] / denom);
  }
}

}  // namespace

void launch_fill(float* x, size_t n, float value, cudaStream_t stream) {
  fill_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, n, value);
  NAS_CUDA(cudaGetLastError());
}

void launch_scale(float* x, size_t n, float factor, cudaStream_t stream) {
  scale_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, n, factor);
  NAS_CUDA(cudaGetLastError());
}

void launch_axpy(float* y, float a, const float* x, size_t n, cudaStream_t stream) {
  axpy_kernel<<<blocks_for(n), kThreads, 0, stream>>>(y, a, x, n);
  NAS_CUDA(cudaGetLastError());
}

void launch_add_squares(const float* x, size_t n, double* partials, cudaStream_t stream) {
  add_squares_kernel<<<kSquareSumBlocks, kThreads, 0, stream>>>(x, n, partials);
  NAS_CUDA(cudaGetLastError());
}

void launch_sum_partials(const double* partials, double* total, cudaStream_t stream) {
  sum_partials_kernel<<<1, kThreads, 0, stream>>>(partials, total);
  NAS_CUDA(cudaGetLastError());
}

void launch_sgd_update(const SgdUpdate& u, float* w, const float* g, float* momentum, size_t n,
                       cudaStream_t stream) {
  sgd_kernel<<<blocks_for(n), kThreads, 0, stream>>>(u, w, g, momentum, n);
  NAS_CUDA(cudaGetLastError());
}

void launch_adam_update(const AdamUpdate& u, float* w, const float* g, float* m, float* v, size_t n,
                        cudaStream_t stream) {
  adam_kernel<<<blocks_for(n), kThreads, 0, stream>>>(u, w, g, m, v, n);
  NAS_CUDA(cudaGetLastError());
}

}  // namespace nas::cuda
