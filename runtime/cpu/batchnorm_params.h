// The parameters of batch normalisation, shared by the CPU's kernels (batchnorm.h) and the
// CUDA backend's (runtime/cuda/norm_pool_kernels.h), without oneDNN's headers.
#pragma once

#include <cstdint>
#include <string>

namespace nas {

// Batch norm of at most this many values runs on the calling thread: waking the OpenMP
// team costs more than the layer. Shared by the library's loops (batchnorm.cpp,
// sync_batchnorm.cpp) and the JIT's per-channel bodies (nasc_jit_parallel_channels).
inline constexpr int64_t kBatchNormParallelMin = 32768;

struct BatchNormParams {
  int64_t n = 1, c = 1, h = 1, w = 1;
  bool affine = true;
  double eps = 1e-5;
  double momentum = 0.1;  // only used by forward_training's running-stat update

  int64_t size() const { return n * c * h * w; }
  // Values each channel's statistics are taken over.
  int64_t per_channel() const { return n * h * w; }

  // An inconsistent field is an InternalError naming it: the backend fills these from
  // plans nasc lowered, so a bad one is a bug. (batchnorm_params.cpp)
  void validate() const;
  // Identifies the kernel. Momentum is applied outside the primitives but the kernel keeps
  // it, so it is part of the key. (batchnorm_params.cpp)
  std::string key() const;
};

}  // namespace nas
