// The parameters of 2-D max and average pooling, shared by the CPU's oneDNN kernels
// (pool2d.h) and the CUDA backend's (runtime/cuda/norm_pool_kernels.h), without oneDNN's
// headers: square window, symmetric implicit padding of at most kernel/2, floor output
// size, stride 0 meaning "equal to the kernel", as the `max_pool`/`avg_pool` ops define them.
#pragma once

#include <cstdint>
#include <string>

namespace nas {

enum class PoolKind { max, avg };

struct Pool2dParams {
  PoolKind kind = PoolKind::max;
  int64_t n = 1, c = 1, h = 1, w = 1;
  int64_t kernel = 1;
  int64_t stride = 0;  // 0 = kernel, as the op's attribute default (PyTorch's)
  int64_t pad = 0;
  bool count_include_pad = true;  // avg only: padded cells count in the divisor

  int64_t effective_stride() const { return stride == 0 ? kernel : stride; }
  int64_t out_h() const { return (h + 2 * pad - kernel) / effective_stride() + 1; }
  int64_t out_w() const { return (w + 2 * pad - kernel) / effective_stride() + 1; }
  int64_t input_size() const { return n * c * h * w; }
  int64_t output_size() const { return n * c * out_h() * out_w(); }

  // An inconsistent field is an InternalError naming it: the backend fills these from
  // plans nasc lowered, so a bad one is a bug. (pool2d_params.cpp)
  void validate() const;
  // Identifies the primitives; stride 0 and stride == kernel give the same key.
  // (pool2d_params.cpp)
  std::string key() const;
};

}  // namespace nas
