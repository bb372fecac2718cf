// What the CUDA backend's operations and a plan's kernels share on one GPU: the device,
// the streams (the current one is where everything is enqueued), cuDNN's and cuBLAS's
// handles (kept on the current stream), a workspace, and the driver API calls that load
// and launch generated PTX (region_ptx.h).
#pragma once

#include <cublas_v2.h>
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/exec/backend.h"

namespace nas::cuda {

// Whether a GPU can run the backend: "" with `device` set to its description (name, SMs,
// memory, compute capability, driver, CUDA runtime and cuDNN versions: what a GPU latency
// table's fingerprint records), else why not ("no CUDA GPU: CUDA driver version is
// insufficient for CUDA runtime version").
std::string probe_device(std::string* device);

// The driver API functions nasc uses, reached through the runtime
// (cudaGetDriverEntryPointByVersion), so that the plugin links no libcuda: a machine
// without a driver still loads it and gets probe_device's message.
struct DriverApi {
  CUresult (*module_load_data)(CUmodule*, const void*) = nullptr;
  CUresult (*module_unload)(CUmodule) = nullptr;
  CUresult (*module_get_function)(CUfunction*, CUmodule, const char*) = nullptr;
  CUresult (*launch_kernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                            unsigned, CUstream, void**, void**) = nullptr;
  CUresult (*get_error_string)(CUresult, const char**) = nullptr;
};

class CudaContext {
 public:
  explicit CudaContext(int device);
  ~CudaContext();
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;

  cudaStream_t stream() const { return streams_[current_]; }
  int current_stream() const { return current_; }
  int create_stream();
  void use_stream(int id);

  cudnnHandle_t cudnn() const { return cudnn_; }
  cublasHandle_t cublas() const { return cublas_; }
  const cudaDeviceProp& properties() const { return properties_; }
  const DriverApi& driver() const { return driver_; }

  // The kernel object cached under `key` ("conv 64x16x32x32 ..."), made by make() on first
  // use: plans with the same signatures share kernels and their algorithm choices.
  template <typename Kernel, typename Make>
  std::shared_ptr<const Kernel> cached(const std::string& key, Make make) {
    std::shared_ptr<const void>& slot = cache_[key];
    if (!slot) slot = make();
    return std::static_pointer_cast<const Kernel>(slot);
  }

  // Scratch device memory of at least `bytes`, for work enqueued on the current stream
  // (work on one stream runs in order, so users of one stream never overlap; a plan's steps
  // all run on one). Growing it waits for the stream before the old one is freed.
  void* workspace(size_t bytes);

 private:
  int device_ = 0;
  cudaDeviceProp properties_{};
  std::vector<cudaStream_t> streams_;  // [0]: the backend's default stream
  int current_ = 0;
  cudnnHandle_t cudnn_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  DriverApi driver_;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  std::map<std::string, std::shared_ptr<const void>> cache_;
};

// cudaMalloc of `bytes` (at least one) for `what`; running out of GPU memory is a UserError
// with the free and total memory (it is the size of the user's network and batch).
void* device_malloc(size_t bytes, const std::string& what);
// cudaFree of what device_malloc returned (no throw: destructors call it).
void device_free(void* p);
// What device_malloc holds in this process, now and at most (Backend::memory_use).
MemoryUse device_memory_use();

// Checks a driver API call's status (InternalError with the driver's message).
void check_driver(const DriverApi& driver, CUresult status, const char* call);

}  // namespace nas::cuda
