// What the CUDA backend's hand-written kernels share (vector_kernels.cu, data_kernels.cu,
// norm_pool_kernels.cu): the block size, a launch's block count, grid-stride loops and a
// block-wide sum whose order is fixed, so that a sum is the same on every run.
#pragma once

#include <cstddef>

namespace nas::cuda::kernels {

constexpr int kThreads = 256;

// Enough blocks to fill the GPU, each striding over the rest.
inline unsigned blocks_for(size_t n) {
  const size_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 4096 ? (blocks == 0 ? 1 : blocks) : 4096);
}

// The indices 0..n-1 of this thread's share: a grid-stride loop over the x dimension,
// `for (size_t i : GridStride{n})`.
struct GridStride {
  size_t n;
  struct Iterator {
    size_t i, step;
    __device__ size_t operator*() const { return i; }
    __device__ Iterator& operator++() {
      i += step;
      return *this;
    }
    __device__ bool operator!=(size_t end) const { return i < end; }
  };
  __device__ Iterator begin() const {
    return {blockIdx.x * size_t(blockDim.x) + threadIdx.x, size_t(gridDim.x) * blockDim.x};
  }
  __device__ size_t end() const { return n; }
};

// A block's sum of `value` over its kThreads threads (every thread gets it). The shuffle
// tree and the warp order are fixed, so the sum is the same on every run.
__device__ inline double block_sum(double value) {
  __shared__ double warp_sums[kThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2)
    value += __shfl_down_sync(0xffffffffu, value, offset);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_sums[warp] = value;
  __syncthreads();
  double total = 0;
  for (int w = 0; w < kThreads / 32; ++w) total += warp_sums[w];
  __syncthreads();
  return total;
}

}  // namespace nas::cuda::kernels
