// The CUDA backend: device memory, copies, the vector and optimizer operations, streams and
// events on one NVIDIA GPU (device 0 of those CUDA_VISIBLE_DEVICES shows), and plans
// prepared into CudaPlans (cuda_plan.h). It is built into the plugin libnasc_cuda.so, which
// nasc loads only when the backend is asked for (runtime/exec/backend_plugin.h); the
// plugin's entry point is at the end of this file.
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <cstring>
#include <map>
#include <string>

#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/cuda_context.h"
#include "runtime/cuda/cuda_plan.h"
#include "runtime/cuda/vector_kernels.h"
#include "runtime/exec/backend_plugin.h"

namespace nas::cuda {
namespace {

class CudaBackend : public Backend {
 public:
  CudaBackend() : ctx_(std::make_shared<CudaContext>(0)) {
    square_sums_ = static_cast<double*>(
        device_malloc((kSquareSumBlocks + 1) * sizeof(double), "gradient clipping's sums"));
  }
  ~CudaBackend() override {
    // Destructors do not throw: a failure here leaves the memory to the process's end.
    cudaDeviceSynchronize();
    for (auto& [sequence, event] : events_) cudaEventDestroy(event);
    device_free(square_sums_);
  }

  std::string name() const override { return "cuda"; }
  bool supports(const Step& step) const override { return cuda_plan_supports(step); }
  bool supports(DType dtype, Layout layout) const override {
    // NHWC: the values only conv epilogues read and write (compiler/passes/layout.h).
    return (layout == Layout::NCHW || layout == Layout::NHWC) && dtype == DType::F32;
  }

  void* allocate(size_t bytes) override { return device_malloc(bytes, "the network's tensors"); }
  void release(void* p) override { device_free(p); }  // no throw: called from destructors
  MemoryUse memory_use() const override { return device_memory_use(); }

  void upload(DeviceBuffer& dst, const void* host, size_t bytes, size_t offset) override {
    check_buffer_range(dst, bytes, offset, "upload");
    NAS_CUDA(cudaMemcpyAsync(static_cast<char*>(dst.raw()) + offset, host, bytes,
                             cudaMemcpyHostToDevice, ctx_->stream()));
    dst.mark_written();
  }
  void download(void* host, const DeviceBuffer& src, size_t bytes, size_t offset) override {
    check_buffer_range(src, bytes, offset, "download");
    NAS_CUDA(cudaMemcpyAsync(host, static_cast<const char*>(src.raw()) + offset, bytes,
                             cudaMemcpyDeviceToHost, ctx_->stream()));
    NAS_CUDA(cudaStreamSynchronize(ctx_->stream()));
  }
  void copy(DeviceBuffer& dst, const DeviceBuffer& src) override {
    check_same_fp32(dst, src, "copy");
    NAS_CUDA(cudaMemcpyAsync(dst.raw(), src.raw(), src.bytes(), cudaMemcpyDeviceToDevice,
                             ctx_->stream()));
    dst.mark_written();
  }
  void fill(DeviceBuffer& dst, float value) override {
    launch_fill(dst.data(), dst.size(), value, ctx_->stream());
    dst.mark_written();
  }
  void scale(DeviceBuffer& x, float factor) override {
    launch_scale(x.data(), x.size(), factor, ctx_->stream());
    x.mark_written();
  }
  void axpy(DeviceBuffer& y, float a, const DeviceBuffer& x) override {
    check_same_fp32(y, x, "axpy");
    launch_axpy(y.data(), a, x.data(), y.size(), ctx_->stream());
    y.mark_written();
  }
  double sum_squares(const std::vector<const DeviceBuffer*>& xs) override {
    cudaStream_t stream = ctx_->stream();
    NAS_CUDA(cudaMemsetAsync(square_sums_, 0, kSquareSumBlocks * sizeof(double), stream));
    for (const DeviceBuffer* x : xs) launch_add_squares(x->data(), x->size(), square_sums_, stream);
    launch_sum_partials(square_sums_, square_sums_ + kSquareSumBlocks, stream);
    double total = 0;
    NAS_CUDA(cudaMemcpyAsync(&total, square_sums_ + kSquareSumBlocks, sizeof total,
                             cudaMemcpyDeviceToHost, stream));
    NAS_CUDA(cudaStreamSynchronize(stream));
    return total;
  }

  void sgd_update(const SgdUpdate& u, DeviceBuffer& value, const DeviceBuffer& grad,
                  DeviceBuffer* momentum) override {
    check_same_fp32(value, grad, "sgd_update");
    if (momentum) check_same_fp32(value, *momentum, "sgd_update momentum");
    launch_sgd_update(u, value.data(), grad.data(), momentum ? momentum->data() : nullptr,
                      value.size(), ctx_->stream());
    value.mark_written();
    if (momentum) momentum->mark_written();
  }
  void adam_update(const AdamUpdate& u, DeviceBuffer& value, const DeviceBuffer& grad,
                   DeviceBuffer& m, DeviceBuffer& v) override {
    check_same_fp32(value, grad, "adam_update");
    check_same_fp32(value, m, "adam_update m");
    check_same_fp32(value, v, "adam_update v");
    launch_adam_update(u, value.data(), grad.data(), m.data(), v.data(), value.size(),
                       ctx_->stream());
    value.mark_written();
    m.mark_written();
    v.mark_written();
  }

  Stream create_stream() override { return {ctx_->create_stream()}; }
  void set_stream(Stream s) override { ctx_->use_stream(s.id); }
  Event record_event() override {
    cudaEvent_t event = nullptr;
    NAS_CUDA(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    NAS_CUDA(cudaEventRecord(event, ctx_->stream()));
    const uint64_t sequence = ++last_event_;
    events_[sequence] = event;
    return {ctx_->current_stream(), sequence};
  }
  void wait_event(const Event& e) override {
    auto it = events_.find(e.sequence);
    // Events are destroyed at synchronize(), when every one of them has happened.
    if (it == events_.end()) return;
    NAS_CUDA(cudaStreamWaitEvent(ctx_->stream(), it->second, 0));
  }
  void synchronize() override {
    NAS_CUDA(cudaDeviceSynchronize());
    for (auto& [sequence, event] : events_) NAS_CUDA(cudaEventDestroy(event));
    events_.clear();
  }

  std::unique_ptr<PreparedPlan> prepare(const ExecPlan& plan) override {
    return make_cuda_plan(plan, ctx_);
  }

 private:
  std::shared_ptr<CudaContext> ctx_;
  double* square_sums_ = nullptr;  // kSquareSumBlocks partial sums, then their total
  std::map<uint64_t, cudaEvent_t> events_;
  uint64_t last_event_ = 0;
};

// Writes `text` into the plugin interface's message buffer.
void put_message(const std::string& text, char* message, size_t size) {
  if (size == 0) return;
  const size_t n = text.size() < size - 1 ? text.size() : size - 1;
  std::memcpy(message, text.data(), n);
  message[n] = 0;
}

int probe(char* message, size_t size) {
  try {
    std::string device;
    const std::string problem = probe_device(&device);
    put_message(problem.empty() ? device : problem, message, size);
    return problem.empty() ? 1 : 0;
  } catch (const std::exception& e) {
    put_message(e.what(), message, size);
    return 0;
  }
}

Backend* create(char* message, size_t size) {
  try {
    return new CudaBackend();
  } catch (const std::exception& e) {
    put_message(e.what(), message, size);
    return nullptr;
  }
}

}  // namespace
}  // namespace nas::cuda

extern "C" __attribute__((visibility("default"))) const NascBackendPlugin* nasc_backend_plugin() {
  static const NascBackendPlugin table{NASC_PLUGIN_ABI, &nas::cuda::probe, &nas::cuda::create};
  return &table;
}
