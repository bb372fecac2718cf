// Fully connected layers on the GPU through cuBLAS, with nn.Linear's semantics (x [n, in],
// weights [out, in], bias [out], y = x * weights^T + bias), in plain FP32: the context's
// cuBLAS handle is in pedantic math mode, so no TF32 tensor cores (cuda_context.cpp).
// Row-major matrices are handed to column-major cuBLAS as their transposes.
#pragma once

#include <cstdint>
#include <memory>

#include "runtime/cuda/cuda_context.h"

namespace nas::cuda {

struct LinearShape {
  int64_t n = 1, in = 1, out = 1;
  bool bias = true;
};

class CublasLinear {
 public:
  CublasLinear(CudaContext& context, const LinearShape& shape);
  ~CublasLinear();
  CublasLinear(const CublasLinear&) = delete;
  CublasLinear& operator=(const CublasLinear&) = delete;

  // y = x * w^T (+ bias).
  void forward(const float* x, const float* w, const float* bias, float* y) const;
  // dx = dy * w.
  void backward_data(const float* dy, const float* w, float* dx) const;
  // dw += dy^T * x; db += the column sums of dy (when db is set): gradients accumulate.
  void backward_weights(const float* x, const float* dy, float* dw, float* db) const;

 private:
  CudaContext& context_;
  LinearShape shape_;
  float* ones_ = nullptr;  // n ones: the bias as a rank-1 update, its gradient as a product
};

}  // namespace nas::cuda
