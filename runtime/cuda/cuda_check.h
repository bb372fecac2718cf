// How the CUDA backend turns a failed CUDA, cuDNN or cuBLAS call into nasc's errors: a bug
// (a bad launch, an illegal address) is an InternalError naming the call and the library's
// message; running out of device memory is a UserError (cuda_backend.cpp), since it is the
// size of the user's network and batch.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <string>

#include "support/errors.h"

namespace nas::cuda {

[[noreturn]] inline void cuda_failed(const char* call, cudaError_t status, const char* file,
                                     int line) {
  internal_error(file, line,
                 std::string(call) + " failed: " + cudaGetErrorName(status) + ": " +
                     cudaGetErrorString(status));
}

[[noreturn]] inline void cudnn_failed(const char* call, cudnnStatus_t status, const char* file,
                                      int line) {
  internal_error(file, line, std::string(call) + " failed: " + cudnnGetErrorString(status));
}

[[noreturn]] inline void cublas_failed(const char* call, cublasStatus_t status, const char* file,
                                       int line) {
  internal_error(file, line,
                 std::string(call) + " failed: " + cublasGetStatusName(status) + ": " +
                     cublasGetStatusString(status));
}

}  // namespace nas::cuda

// Checks a CUDA runtime call's status.
#define NAS_CUDA(call)                                                       \
  do {                                                                       \
    const cudaError_t nas_cuda_status_ = (call);                             \
    if (nas_cuda_status_ != cudaSuccess)                                     \
      ::nas::cuda::cuda_failed(#call, nas_cuda_status_, __FILE__, __LINE__); \
  } while (0)

// Checks a cuDNN call's status.
#define NAS_CUDNN(call)                                                        \
  do {                                                                         \
    const cudnnStatus_t nas_cudnn_status_ = (call);                            \
    if (nas_cudnn_status_ != CUDNN_STATUS_SUCCESS)                             \
      ::nas::cuda::cudnn_failed(#call, nas_cudnn_status_, __FILE__, __LINE__); \
  } while (0)

// Checks a cuBLAS call's status.
#define NAS_CUBLAS(call)                                                         \
  do {                                                                           \
    const cublasStatus_t nas_cublas_status_ = (call);                            \
    if (nas_cublas_status_ != CUBLAS_STATUS_SUCCESS)                             \
      ::nas::cuda::cublas_failed(#call, nas_cublas_status_, __FILE__, __LINE__); \
  } while (0)
