#include "runtime/cuda/linear_cublas.h"

#include <vector>

#include "runtime/cuda/cuda_check.h"

namespace nas::cuda {

CublasLinear::CublasLinear(CudaContext& context, const LinearShape& shape)
    : context_(context), shape_(shape) {
  const std::vector<float> ones(static_cast<size_t>(shape.n), 1.0f);
  ones_ = static_cast<float*>(device_malloc(ones.size() * sizeof(float), "a linear layer's ones"));
  NAS_CUDA(cudaMemcpy(ones_, ones.data(), ones.size() * sizeof(float), cudaMemcpyHostToDevice));
}

CublasLinear::~CublasLinear() {
  device_free(ones_);
}

void CublasLinear::forward(const float* x, const float* w, const float* bias, float* y) const {
  const int n = static_cast<int>(shape_.n), in = static_cast<int>(shape_.in),
            out = static_cast<int>(shape_.out);
  const float one = 1.0f, zero = 0.0f;
  // Column-major: y^T (out x n) = w^T^T (out x in) * x^T (in x n).
  NAS_CUBLAS(cublasSgemm(context_.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &one, w, in, x,
                         in, &zero, y, out));
  if (bias != nullptr)  // y^T += bias * ones^T
    NAS_CUBLAS(cublasSger(context_.cublas(), out, n, &one, bias, 1, ones_, 1, y, out));
}

void CublasLinear::backward_data(const float* dy, const float* w, float* dx) const {
  const int n = static_cast<int>(shape_.n), in = static_cast<int>(shape_.in),
            out = static_cast<int>(shape_.out);
  const float one = 1.0f, zero = 0.0f;
  // Column-major: dx^T (in x n) = w^T (in x out) * dy^T (out x n).
  NAS_CUBLAS(cublasSgemm(context_.cublas(), CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, &one, w, in, dy,
                         out, &zero, dx, in));
}

void CublasLinear::backward_weights(const float* x, const float* dy, float* dw, float* db) const {
  const int n = static_cast<int>(shape_.n), in = static_cast<int>(shape_.in),
            out = static_cast<int>(shape_.out);
  const float one = 1.0f;
  // Column-major: dw^T (in x out) += x^T (in x n) * dy (n x out).
  NAS_CUBLAS(cublasSgemm(context_.cublas(), CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, &one, x, in, dy,
                         out, &one, dw, in));
  if (db != nullptr)  // db += dy^T (out x n) * ones
    NAS_CUBLAS(
        cublasSgemv(context_.cublas(), CUBLAS_OP_N, out, n, &one, dy, out, ones_, 1, &one, db, 1));
}

}  // namespace nas::cuda
