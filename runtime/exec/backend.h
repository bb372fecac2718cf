// The backend interface (docs/architecture.md, "Backends"). A Backend is a
// device: it owns the memory that values, parameters, gradients and optimizer state live
// in (DeviceBuffer), copies between that memory and the host only when asked (upload,
// download), runs the optimizer updates and the few vector operations training needs on
// its own memory, orders work on streams, and prepares plans into PreparedPlans that run
// one step at a time. The executor drives it; application code gets one from the backend
// registry (backend_registry.h) by name and never names a concrete backend. The CPU
// backend (runtime/cpu/cpu_backend.cpp) is the reference every other one is tested against.
//
// Addresses: DeviceBuffer::data() and every pointer in RunState except the ones marked
// "host" are device addresses, meaningful to the backend's kernels only. On the CPU they
// happen to be host memory; nothing outside a backend and its tests may rely on that.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/exec/exec_plan.h"
#include "runtime/exec/value_type.h"
#include "support/rng.h"

namespace nas {

class Collectives;

class Backend;

// Memory on a backend: `elements` of `dtype`, released with the buffer (move-only). A
// default-constructed buffer is empty and owns nothing.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Backend& owner, size_t elements, DType dtype = DType::F32);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  bool empty() const { return elements_ == 0; }
  size_t size() const { return elements_; }  // elements
  size_t bytes() const { return elements_ * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Backend* backend() const { return owner_; }
  // The device address (fp32 view; the backend's kernels and operations only).
  float* data() const { return static_cast<float*>(ptr_); }
  void* raw() const { return ptr_; }

  // Changes whenever the contents may have changed, to a value no buffer of its backend had
  // before (the backend counts them: Backend::next_generation): every Backend operation that writes
  // a buffer calls mark_written() on it, and the executor does for the running statistics a
  // training run updates in place. Kernels that keep something derived from a parameter (a conv
  // epilogue's folded, reordered weights) redo it only when a generation they read from changed.
  uint64_t generation() const { return generation_; }
  void mark_written();

 private:
  void reset();
  Backend* owner_ = nullptr;
  void* ptr_ = nullptr;
  size_t elements_ = 0;
  DType dtype_ = DType::F32;
  uint64_t generation_ = 0;
};

// An ordered queue of work on a backend, and a point in one. Work on one stream runs in
// order; across streams only an event orders it. The CPU backend runs everything at once
// on the calling thread, so its streams and events are no-ops.
struct Stream {
  int id = 0;  // 0: the backend's default stream
};
struct Event {
  int stream = 0;
  uint64_t sequence = 0;
};

// What a step reads and writes besides its values, for one run of a plan.
struct RunState {
  std::vector<float*> values;  // per value: its storage (alias roots resolved)
  std::vector<char> computed;  // host, per value: written during this run
  std::vector<float*> param;   // per plan parameter: values
  std::vector<float*> grad;    // per plan parameter: gradient (accumulated into), or null
  // Host: per plan parameter, its buffer's DeviceBuffer::generation() at this run.
  std::vector<uint64_t> param_generation;
  // Host: the choice weights of each plan arch group (a handful of floats; which
  // candidates are 0 also decides which run at all), uploaded once per run by
  // PreparedPlan::upload_choice_weights. Full mode computes them on the host from the
  // downloaded alphas.
  std::vector<std::vector<float>> choice_weights;
  // Host: d(loss)/d(weight) per group, added to by the architecture-gradient steps and
  // valid after PreparedPlan::download_choice_weight_grads.
  std::vector<std::vector<double>> choice_weight_grads;
  // Whether this run computes architecture gradients (PlanRunControl::arch_grads): steps
  // that take one on the side (a batch norm gradient region's d/dw) read it.
  bool arch_grads = true;
  const int32_t* labels = nullptr;  // the uploaded labels, or null (no loss)
  int64_t valid_samples = 0;        // the loss counts the first valid_samples rows only
  // [loss sum over the valid samples, top-1 hits]: the loss step adds into them; the
  // executor zeroes them before a run and downloads them once after it.
  double* metrics = nullptr;
  uint64_t dropout_seed = 0;  // per run; each dropout node's draws derive from it
  // Label smoothing eps of the loss steps (forward and gradient), in [0, 1); 0: one-hot.
  double label_smoothing = 0;
  // The drop probability of drop_path steps without their own, in [0, 1) (nasc train's
  // per-epoch drop_path_prob schedule; 0: they keep every sample).
  double drop_path_prob = 0;
  float* logits_out = nullptr;  // when set, the loss step copies the logits here
  // A data-parallel run (runtime/dist/collectives.h): each rank holds `first_sample`..
  // first_sample + batch - 1 of the global batch, so that per-sample random draws (dropout,
  // drop path) are those one process would make for the same samples. With
  // sync_batchnorm, training batch norm takes its statistics (and their gradients) over
  // the global batch through `collectives`; otherwise over the rank's own samples.
  int64_t first_sample = 0;
  Collectives* collectives = nullptr;
  bool sync_batchnorm = false;
};

// The seed of dropout (or drop path) node `node`'s draws in this run (support/rng.h).
inline uint64_t dropout_node_seed(const RunState& st, int node) {
  return derive_seed(st.dropout_seed, static_cast<uint64_t>(node));
}

// What a whole-plan run skips: the executor's settings for one run (step_gate.h).
struct PlanRunControl {
  const char* live = nullptr;  // host, per forward node: live or not; null: all live
  bool weight_grads = true;
  bool arch_grads = true;
  bool forward_only = false;  // stop after the loss
};

// A plan prepared on a backend: its kernels (created once per signature, shared through
// the backend's caches) and saved-state buffers.
class PreparedPlan {
 public:
  virtual ~PreparedPlan() = default;
  // Runs step `index`. Returns whether it wrote its output: a gradient sum whose
  // contributions were all skipped, or a candidate's gradient with mixing weight 0,
  // writes nothing.
  virtual bool run(size_t index, RunState& state) = 0;
  // A backend with generated code for the whole plan (the JIT) runs every step in one
  // call, gated as the executor gates them (step_gate.h; the regions' guards against
  // control.live), and returns how many steps ran. -1: it has no such code, and the
  // executor runs the plan step by step.
  virtual int64_t run_plan(RunState& state, const PlanRunControl& control) { return -1; }
  // Alpha's softmax and its backward are a few floats per choice and run on the host, so
  // the choice weights cross the interface once per run: the executor calls
  // upload_choice_weights after it set RunState::choice_weights, before the first step,
  // and download_choice_weight_grads after synchronize(), before it reads
  // RunState::choice_weight_grads.
  virtual void upload_choice_weights(const RunState& state) = 0;
  virtual void download_choice_weight_grads(RunState& state) = 0;
  // The host address of saved state `index` (Step::state: batch-norm statistics), for code
  // that runs a step beside this plan's kernels and shares the state with them (the JIT's
  // batch norm regions); null where the plan keeps no such state in host memory.
  virtual void* state_address(int index) { return nullptr; }
};

// One update of a parameter by torch.optim.SGD (dampening 0), scalars in float as
// PyTorch's float32 tensors: d = g + wd * w; with momentum, buf = first ? d : m * buf + d
// and d = nesterov ? d + m * buf : buf; w -= lr * d.
struct SgdUpdate {
  float lr = 0, momentum = 0, weight_decay = 0;
  bool nesterov = false;
  bool first = false;  // the momentum buffer's first step (PyTorch: buf is None)
};
// One update by torch.optim.Adam (amsgrad off): g += wd * w; m += w1 * (g - m);
// v = b2 * v + w2 * g * g; w -= step_size * m / (sqrt(v) / bc2_sqrt + eps).
struct AdamUpdate {
  float step_size = 0;  // lr / (1 - beta1^t)
  float bc2_sqrt = 1;   // sqrt(1 - beta2^t)
  float w1 = 0.1f, b2 = 0.999f, w2 = 0.001f, eps = 1e-8f, weight_decay = 0;
};

// Memory a backend has handed out through Backend::allocate (and, on a GPU, its kernels'
// own device allocations): now, and the most at any one time.
struct MemoryUse {
  size_t current = 0, peak = 0;
};

// Counts allocations by address, for the backends' memory_use(). Thread-safe.
class AllocationTracker {
 public:
  void added(void* p, size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    sizes_[p] = bytes;
    use_.current += bytes;
    use_.peak = std::max(use_.peak, use_.current);
  }
  void removed(void* p) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sizes_.find(p);
    if (it == sizes_.end()) return;  // not one of ours (null)
    use_.current -= it->second;
    sizes_.erase(it);
  }
  MemoryUse use() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return use_;
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<void*, size_t> sizes_;
  MemoryUse use_;
};

// Every operation below that writes a DeviceBuffer (upload, copy, fill, scale, axpy and the
// optimizer updates) marks it written (DeviceBuffer::mark_written); the backend tests check
// it for every registered backend.
class Backend {
 public:
  virtual ~Backend() = default;
  // The next DeviceBuffer generation on this backend. The counter lives in the backend
  // object rather than in a global so that a backend in a plugin (runtime/cuda), which has
  // its own copy of DeviceBuffer's code, counts on the same counter as the host's code.
  uint64_t next_generation() { return ++last_generation_; }

  virtual std::string name() const = 0;
  virtual bool supports(const Step& step) const = 0;
  // Whether values of this element type and layout can be planned on the backend.
  virtual bool supports(DType dtype, Layout layout) const = 0;

  // Raw memory, aligned for the backend's kernels (DeviceBuffer is the owning form).
  // Running out is a UserError: it is the size of the user's network and batch.
  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* p) = 0;
  // What this backend's memory holds now and held at most: the host memory allocate handed
  // out on the CPU backends (the arena, parameters, gradients, optimizer state), every
  // device allocation on a GPU (libraries' own workspaces aside).
  virtual MemoryUse memory_use() const = 0;

  // Copies between host and device memory, `bytes` from `offset` bytes into the buffer.
  // An upload may return before the copy is done (the host memory must stay unchanged
  // until the stream is synchronized); a download returns when the host copy is done.
  virtual void upload(DeviceBuffer& dst, const void* host, size_t bytes, size_t offset = 0) = 0;
  virtual void download(void* host, const DeviceBuffer& src, size_t bytes, size_t offset = 0) = 0;
  // Device-side vector operations over whole fp32 buffers of equal size.
  virtual void copy(DeviceBuffer& dst, const DeviceBuffer& src) = 0;
  virtual void fill(DeviceBuffer& dst, float value) = 0;
  virtual void scale(DeviceBuffer& x, float factor) = 0;
  virtual void axpy(DeviceBuffer& y, float a, const DeviceBuffer& x) = 0;  // y += a * x
  // The sum of squares of every element of every buffer, accumulated in double, read
  // back (the one value gradient clipping needs on the host).
  virtual double sum_squares(const std::vector<const DeviceBuffer*>& xs) = 0;

  // Optimizer updates of one parameter in place. `momentum` is null without momentum.
  virtual void sgd_update(const SgdUpdate& u, DeviceBuffer& value, const DeviceBuffer& grad,
                          DeviceBuffer* momentum) = 0;
  virtual void adam_update(const AdamUpdate& u, DeviceBuffer& value, const DeviceBuffer& grad,
                           DeviceBuffer& m, DeviceBuffer& v) = 0;

  // Streams and events. Work is enqueued on the current stream (the default one unless
  // set_stream chose another).
  virtual Stream create_stream() = 0;
  virtual void set_stream(Stream s) = 0;
  virtual Event record_event() = 0;             // a point after the work enqueued so far
  virtual void wait_event(const Event& e) = 0;  // later work on the current stream waits
  virtual void synchronize() = 0;               // the host waits for all work

  // Creates the kernels of every step and the saved-state buffers of `plan`, which must
  // outlive the result. An unsupported step is an InternalError naming it.
  virtual std::unique_ptr<PreparedPlan> prepare(const ExecPlan& plan) = 0;

 private:
  std::atomic<uint64_t> last_generation_{0};
};

// The checks every backend's operations make on their buffers (InternalErrors: nasc's own
// callers pass them): `bytes` from `offset` lie inside `b`; `a` and `b` are fp32 buffers of
// one size.
void check_buffer_range(const DeviceBuffer& b, size_t bytes, size_t offset, const char* what);
void check_same_fp32(const DeviceBuffer& a, const DeviceBuffer& b, const char* what);

// Synchronous host copies of a whole fp32 buffer (checkpoints, weights files, tests).
std::vector<float> download_floats(Backend& backend, const DeviceBuffer& src);
void upload_floats(Backend& backend, DeviceBuffer& dst, const std::vector<float>& host);

}  // namespace nas
