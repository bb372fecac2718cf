// The `jit` backend: the CPU backend's memory, copies and optimizer updates, with every plan
// compiled by the JIT engine (jit_engine.h) from the code plan_codegen.h generates for it. The
// generated plan function runs the whole plan in one call: fused elementwise regions, batch
// norm and depthwise convolutions on small planes (training), and global average pooling
// as generated vectorised loops, the other steps (the other convolutions, pooling windows,
// linear, the loss) as the CPU backend's library kernels. The CPU backend (the
// interpreter) is its reference: both run the same kernels on everything else, and the
// conformance and JIT tests compare them.
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <memory>

#include "runtime/exec/backend.h"
#include "runtime/jit/batchnorm_region.h"
#include "runtime/jit/depthwise_run.h"
#include "runtime/jit/jit_engine.h"
#include "runtime/jit/jit_runtime.h"
#include "runtime/jit/plan_codegen.h"

namespace nas {

std::unique_ptr<Backend> make_cpu_backend();

namespace {

using Entry = int32_t (*)(void** args);

class JitPlan : public PreparedPlan {
 public:
  JitPlan(const ExecPlan& plan, Backend& cpu) : library_(cpu.prepare(plan)) {
    PlanModule generated = generate_plan_module(plan, host_target().vector_floats);
    module_ = std::make_unique<JitModule>(std::move(generated.context), plan_sources(generated),
                                          generated.symbols, shared_object_cache());
    plan_fn_ = reinterpret_cast<Entry>(module_->address(0));
    region_fn_.assign(plan.steps.size(), nullptr);
    for (size_t i = 0; i < generated.region_steps.size(); ++i)
      region_fn_[generated.region_steps[i]] = reinterpret_cast<Entry>(module_->address(i + 1));
    batchnorm_.resize(plan.steps.size());
    for (const auto& [step, symbol] : generated.batchnorm_steps) {
      const Step& s = plan.steps[step];
      // Batch norm's statistics: written by the forward step and read by the backward one,
      // either of them generated or the library's.
      auto* stats = static_cast<float*>(library_->state_address(s.state));
      NAS_CHECK(stats != nullptr, "the JIT's step `" + s.name + "` has no saved statistics");
      batchnorm_[step] = std::make_unique<BatchNormRegionRun>(
          plan, s, reinterpret_cast<RegionBody>(module_->address(symbol)), stats);
    }
    depthwise_.resize(plan.steps.size());
    for (const auto& [step, symbol] : generated.depthwise_steps)
      depthwise_[step] = std::make_unique<DepthwiseRun>(
          plan.steps[step], reinterpret_cast<RegionBody>(module_->address(symbol)));
    context_.library = this;  // nasc_jit_run_step runs the generated bodies too
  }

  bool run(size_t index, RunState& st) override {
    if (batchnorm_[index]) return batchnorm_[index]->run(index, st, *library_);
    if (depthwise_[index]) return depthwise_[index]->run(st);
    if (!region_fn_[index]) return library_->run(index, st);
    bind(st, nullptr, PlanRunControl{});
    return region_fn_[index](args_) > 0;
  }

  int64_t run_plan(RunState& st, const PlanRunControl& control) override {
    bind(st, control.live, control);
    steps_run_ = 0;
    const int32_t status = plan_fn_(args_);
    if (status < 0) {
      std::exception_ptr error = context_.error;
      context_.error = nullptr;
      NAS_CHECK(error != nullptr, "the JIT plan function failed without an error");
      std::rethrow_exception(error);
    }
    return steps_run_;
  }

  void upload_choice_weights(const RunState& st) override { library_->upload_choice_weights(st); }
  void download_choice_weight_grads(RunState& st) override {
    library_->download_choice_weight_grads(st);
  }

 private:
  // The args every generated entry takes (plan_codegen.h, PlanArg), for this run.
  void bind(RunState& st, const char* live, const PlanRunControl& control) {
    weights_.resize(st.choice_weights.size());
    for (size_t g = 0; g < weights_.size(); ++g) weights_[g] = st.choice_weights[g].data();
    control_[kControlWeightGrads] = control.weight_grads ? 1 : 0;
    control_[kControlArchGrads] = control.arch_grads ? 1 : 0;
    control_[kControlForwardOnly] = control.forward_only ? 1 : 0;
    context_.state = &st;
    args_[kArgValues] = st.values.data();
    args_[kArgComputed] = st.computed.data();
    args_[kArgLive] = const_cast<char*>(live);
    args_[kArgWeights] = weights_.data();
    args_[kArgControl] = control_;
    args_[kArgStepsRun] = &steps_run_;
    args_[kArgContext] = &context_;
    draws_[0] = st.dropout_seed;
    draws_[1] = static_cast<uint64_t>(st.first_sample);
    args_[kArgDraws] = draws_;
  }

  std::unique_ptr<PreparedPlan> library_;
  std::unique_ptr<JitModule> module_;
  Entry plan_fn_ = nullptr;
  std::vector<Entry> region_fn_;  // per step: its region's entry, or null
  void* args_[kPlanArgCount] = {};
  std::vector<std::unique_ptr<BatchNormRegionRun>> batchnorm_;  // per step, or null
  std::vector<std::unique_ptr<DepthwiseRun>> depthwise_;        // per step, or null
  std::vector<float*> weights_;
  int32_t control_[kControlCount] = {1, 1, 0};
  uint64_t draws_[2] = {0, 0};
  int64_t steps_run_ = 0;
  JitRunContext context_;
};

// Everything but prepare is the CPU backend's: the same host memory and operations.
class JitBackend : public Backend {
 public:
  JitBackend() : cpu_(make_cpu_backend()) {}

  std::string name() const override { return "jit"; }
  bool supports(const Step& step) const override { return cpu_->supports(step); }
  bool supports(DType dtype, Layout layout) const override { return cpu_->supports(dtype, layout); }
  void* allocate(size_t bytes) override { return cpu_->allocate(bytes); }
  void release(void* p) override { cpu_->release(p); }
  MemoryUse memory_use() const override { return cpu_->memory_use(); }
  void upload(DeviceBuffer& dst, const void* host, size_t bytes, size_t offset) override {
    cpu_->upload(dst, host, bytes, offset);
  }
  void download(void* host, const DeviceBuffer& src, size_t bytes, size_t offset) override {
    cpu_->download(host, src, bytes, offset);
  }
  void copy(DeviceBuffer& dst, const DeviceBuffer& src) override { cpu_->copy(dst, src); }
  void fill(DeviceBuffer& dst, float value) override { cpu_->fill(dst, value); }
  void scale(DeviceBuffer& x, float factor) override { cpu_->scale(x, factor); }
  void axpy(DeviceBuffer& y, float a, const DeviceBuffer& x) override { cpu_->axpy(y, a, x); }
  double sum_squares(const std::vector<const DeviceBuffer*>& xs) override {
    return cpu_->sum_squares(xs);
  }
  void sgd_update(const SgdUpdate& u, DeviceBuffer& value, const DeviceBuffer& grad,
                  DeviceBuffer* momentum) override {
    cpu_->sgd_update(u, value, grad, momentum);
  }
  void adam_update(const AdamUpdate& u, DeviceBuffer& value, const DeviceBuffer& grad,
                   DeviceBuffer& m, DeviceBuffer& v) override {
    cpu_->adam_update(u, value, grad, m, v);
  }
  Stream create_stream() override { return cpu_->create_stream(); }
  void set_stream(Stream s) override { cpu_->set_stream(s); }
  Event record_event() override { return cpu_->record_event(); }
  void wait_event(const Event& e) override { cpu_->wait_event(e); }
  void synchronize() override { cpu_->synchronize(); }

  std::unique_ptr<PreparedPlan> prepare(const ExecPlan& plan) override {
    return std::make_unique<JitPlan>(plan, *cpu_);
  }

 private:
  std::unique_ptr<Backend> cpu_;
};

}  // namespace

std::unique_ptr<Backend> make_jit_backend() {
  return std::make_unique<JitBackend>();
}

}  // namespace nas
