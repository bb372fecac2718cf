#include "runtime/cuda/cuda_context.h"

#include <fmt/format.h>

#include "runtime/cuda/cuda_check.h"
#include "support/errors.h"

namespace nas::cuda {

namespace {

// The compute capability this plugin's kernels were compiled for (the lowest of
// CMAKE_CUDA_ARCHITECTURES): a GPU below it cannot run them.
constexpr int kMinimumComputeCapability = NASC_CUDA_MIN_ARCH;

template <typename Fn>
void driver_entry(const char* symbol, Fn*& fn) {
  void* address = nullptr;
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  NAS_CUDA(cudaGetDriverEntryPointByVersion(symbol, &address, 12000, cudaEnableDefault, &found));
  NAS_CHECK(found == cudaDriverEntryPointSuccess && address != nullptr,
            std::string("the CUDA driver has no ") + symbol);
  fn = reinterpret_cast<Fn*>(address);
}

std::string version_text(int version) {  // 12080 -> "12.8"
  return fmt::format("{}.{}", version / 1000, version % 1000 / 10);
}

}  // namespace

std::string probe_device(std::string* device) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    return std::string("no CUDA GPU: ") + cudaGetErrorString(status);
  }
  if (count == 0) return "no CUDA GPU: the driver sees no device";
  cudaDeviceProp p{};
  NAS_CUDA(cudaGetDeviceProperties(&p, 0));
  const int capability = p.major * 10 + p.minor;
  if (capability < kMinimumComputeCapability)
    return fmt::format(
        "the GPU {} has compute capability {}.{}; this plugin was built for {}.{} and up "
        "(configure with -DCMAKE_CUDA_ARCHITECTURES={} to build for it)",
        p.name, p.major, p.minor, kMinimumComputeCapability / 10, kMinimumComputeCapability % 10,
        capability);
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  const size_t cudnn = cudnnGetVersion();
  *device = fmt::format(
      "{}, {} SMs, {:.0f} GiB, compute {}.{}, driver CUDA {}, runtime {}, cuDNN {}.{}.{}", p.name,
      p.multiProcessorCount, static_cast<double>(p.totalGlobalMem) / (1024.0 * 1024 * 1024),
      p.major, p.minor, version_text(driver), version_text(runtime), cudnn / 10000,
      cudnn % 10000 / 100, cudnn % 100);
  return {};
}

CudaContext::CudaContext(int device) : device_(device) {
  NAS_CUDA(cudaSetDevice(device_));
  NAS_CUDA(cudaGetDeviceProperties(&properties_, device_));
  cudaStream_t stream = nullptr;
  NAS_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  streams_.push_back(stream);
  const cudnnStatus_t dnn = cudnnCreate(&cudnn_);
  NAS_CHECK(dnn == CUDNN_STATUS_SUCCESS,
            std::string("cudnnCreate failed: ") + cudnnGetErrorString(dnn));
  NAS_CHECK(cublasCreate(&cublas_) == CUBLAS_STATUS_SUCCESS, "cublasCreate failed");
  // Plain FP32 products: TF32 tensor cores would round the inputs to 10 bits of mantissa,
  // and the CPU backend, the reference, does not.
  NAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_PEDANTIC_MATH) == CUBLAS_STATUS_SUCCESS,
            "cublasSetMathMode failed");
  use_stream(0);
  driver_entry("cuModuleLoadData", driver_.module_load_data);
  driver_entry("cuModuleUnload", driver_.module_unload);
  driver_entry("cuModuleGetFunction", driver_.module_get_function);
  driver_entry("cuLaunchKernel", driver_.launch_kernel);
  driver_entry("cuGetErrorString", driver_.get_error_string);
}

CudaContext::~CudaContext() {
  // No throwing from a destructor: what fails to be released goes with the process.
  cudaDeviceSynchronize();
  device_free(workspace_);
  if (cublas_) cublasDestroy(cublas_);
  if (cudnn_) cudnnDestroy(cudnn_);
  for (cudaStream_t s : streams_) cudaStreamDestroy(s);
}

int CudaContext::create_stream() {
  cudaStream_t stream = nullptr;
  NAS_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  streams_.push_back(stream);
  return static_cast<int>(streams_.size()) - 1;
}

void CudaContext::use_stream(int id) {
  NAS_CHECK(id >= 0 && static_cast<size_t>(id) < streams_.size(),
            "cuda backend: no stream " + std::to_string(id));
  current_ = id;
  NAS_CHECK(cudnnSetStream(cudnn_, streams_[id]) == CUDNN_STATUS_SUCCESS, "cudnnSetStream failed");
  NAS_CHECK(cublasSetStream(cublas_, streams_[id]) == CUBLAS_STATUS_SUCCESS,
            "cublasSetStream failed");
}

void* CudaContext::workspace(size_t bytes) {
  if (bytes <= workspace_bytes_) return workspace_;
  NAS_CUDA(cudaStreamSynchronize(stream()));  // kernels may still read the old one
  device_free(workspace_);
  workspace_ = nullptr;
  workspace_bytes_ = 0;
  workspace_ = device_malloc(bytes, "a convolution's workspace");
  workspace_bytes_ = bytes;
  return workspace_;
}

namespace {

AllocationTracker& device_allocations() {
  static AllocationTracker tracker;
  return tracker;
}

}  // namespace

void device_free(void* p) {
  device_allocations().removed(p);
  cudaFree(p);
}

MemoryUse device_memory_use() {
  return device_allocations().use();
}

void* device_malloc(size_t bytes, const std::string& what) {
  void* p = nullptr;
  const cudaError_t status = cudaMalloc(&p, bytes == 0 ? 256 : bytes);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clears the error, so that later calls do not report it
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    throw UserError("cuda backend",
                    fmt::format("cannot allocate {} bytes of GPU memory for {} ({} of {} bytes "
                                "free); a smaller batch size needs less",
                                bytes, what, free_bytes, total_bytes));
  }
  NAS_CUDA(status);
  device_allocations().added(p, bytes == 0 ? 256 : bytes);
  return p;
}

void check_driver(const DriverApi& driver, CUresult status, const char* call) {
  if (status == CUDA_SUCCESS) return;
  const char* text = nullptr;
  if (driver.get_error_string) driver.get_error_string(status, &text);
  internal_error(__FILE__, __LINE__,
                 std::string(call) + " failed: " + (text ? text : std::to_string(status)));
}

}  // namespace nas::cuda
