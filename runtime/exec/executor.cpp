#include "runtime/exec/executor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "runtime/cpu/plain_kernels.h"

namespace nas {

Executor::Executor(ExecPlan plan, ParamStore& store, std::unique_ptr<Backend> backend,
                   uint64_t seed)
    : plan_(std::move(plan)), store_(store), backend_(std::move(backend)) {
  // Plans, selections, masks and batch sizes all come from nasc itself (the compiler and
  // the trainers): a mismatch is a bug, so these are NAS_CHECKs.
  for (const Step& s : plan_.steps)
    NAS_CHECK(backend_->supports(s), "backend " + backend_->name() + " does not support step `" +
                                         s.op + "` (" + s.name + ")");
  param_index_ = store_.bind(plan_, seed);
  arch_index_ = store_.bind_arch(plan_, seed);
  backend_->prepare(plan_);
  arena_ = backend_->allocate(static_cast<size_t>(std::max<int64_t>(plan_.arena_bytes, 64)));
  const ValueSlot& out = plan_.values[plan_.output];
  output_ =
      static_cast<float*>(backend_->allocate(static_cast<size_t>(out.elements) * sizeof(float)));

  state_.values.assign(plan_.values.size(), nullptr);
  state_.computed.assign(plan_.values.size(), 0);
  bind_arena(arena_);
  state_.param.resize(plan_.params.size());
  state_.grad.resize(plan_.params.size());
  for (size_t i = 0; i < plan_.params.size(); ++i) {
    StoredParam& p = store_.params()[param_index_[i]];
    state_.param[i] = p.value.data();
    state_.grad[i] = p.grad.empty() ? nullptr : p.grad.data();
  }
  state_.choice_weights.resize(plan_.arch.size());
  state_.choice_weight_grads.resize(plan_.arch.size());
  for (size_t g = 0; g < plan_.arch.size(); ++g) {
    state_.choice_weights[g].assign(plan_.arch[g].candidates.size(), 0.0f);
    state_.choice_weight_grads[g].assign(plan_.arch[g].candidates.size(), 0.0);
  }
}

Executor::~Executor() {
  if (owns_arena_) backend_->release(arena_);
  backend_->release(output_);
}

void Executor::bind_arena(void* arena) {
  arena_ = arena;
  for (size_t v = 0; v < plan_.values.size(); ++v) {
    const ValueSlot& slot = plan_.values[v];
    if (slot.storage == ValueStorage::Arena)
      state_.values[v] = reinterpret_cast<float*>(static_cast<char*>(arena_) + slot.offset);
    else if (slot.storage == ValueStorage::Output)
      state_.values[v] = output_;
  }
}

void Executor::share_arena(Executor& a, Executor& b) {
  NAS_CHECK(a.owns_arena_ && b.owns_arena_, "share_arena: an executor already shares its arena");
  Executor& big = a.plan_.arena_bytes >= b.plan_.arena_bytes ? a : b;
  Executor& small = &big == &a ? b : a;
  small.backend_->release(small.arena_);
  small.owns_arena_ = false;
  small.bind_arena(big.arena_);
}

void Executor::use_full_choices() {
  full_ = true;
}

void Executor::use_selection(const std::vector<std::vector<int>>& chosen) {
  NAS_CHECK(chosen.size() == plan_.arch.size(), "selection has " + std::to_string(chosen.size()) +
                                                    " groups, the plan " +
                                                    std::to_string(plan_.arch.size()));
  for (size_t g = 0; g < chosen.size(); ++g) {
    std::vector<float>& w = state_.choice_weights[g];
    std::fill(w.begin(), w.end(), 0.0f);
    for (int c : chosen[g]) {
      NAS_CHECK(c >= 0 && static_cast<size_t>(c) < w.size(),
                "selection: candidate " + std::to_string(c) + " out of range for choice `" +
                    plan_.arch[g].key + "`");
      w[c] = 1.0f;
    }
  }
  full_ = false;
}

void Executor::set_live_mask(std::vector<char> mask) {
  NAS_CHECK(mask.empty() || mask.size() >= static_cast<size_t>(plan_.forward_nodes),
            "live mask covers " + std::to_string(mask.size()) + " nodes, the plan has " +
                std::to_string(plan_.forward_nodes));
  live_ = std::move(mask);
}

void Executor::refresh_choice_weights() {
  if (!full_) return;
  for (size_t g = 0; g < plan_.arch.size(); ++g) {
    const StoredArch& a = store_.arch()[arch_index_[g]];
    plain::softmax_forward(static_cast<int64_t>(a.alpha.size()), a.alpha.data(),
                           state_.choice_weights[g].data());
  }
}

RunResult Executor::run(const float* images, const int32_t* labels, int64_t samples,
                        float* logits) {
  NAS_CHECK(
      samples >= 1 && samples <= plan_.batch,
      "a run takes 1.." + std::to_string(plan_.batch) + " samples, got " + std::to_string(samples));
  NAS_CHECK(!plan_.training || samples == plan_.batch, "a training run needs a full batch of " +
                                                           std::to_string(plan_.batch) +
                                                           " (batch-norm statistics)");
  refresh_choice_weights();
  for (auto& g : state_.choice_weight_grads) std::fill(g.begin(), g.end(), 0.0);
  std::fill(state_.computed.begin(), state_.computed.end(), 0);
  // The input is the caller's; views resolve to their root's storage.
  state_.values[plan_.input] = const_cast<float*>(images);
  for (size_t v = 0; v < plan_.values.size(); ++v)
    if (plan_.values[v].storage == ValueStorage::Alias)
      state_.values[v] = state_.values[plan_.values[v].root];
  state_.labels = labels;
  state_.valid_samples = samples;
  state_.loss_sum = 0;
  state_.correct = 0;
  state_.logits_out = logits;

  const bool masked = !live_.empty();
  steps_run_ = 0;
  if (step_timing_) step_seconds_.assign(plan_.steps.size(), 0.0);
  for (size_t i = 0; i < plan_.steps.size(); ++i) {
    const Step& s = plan_.steps[i];
    if (masked && s.guard >= 0 && s.guard < plan_.forward_nodes && !live_[s.guard]) continue;
    if ((!weight_grads_ &&
         (s.kind == StepKind::ConvGradWeight || s.kind == StepKind::LinearGradWeight)) ||
        (!arch_grads_ && s.kind == StepKind::ChoiceGradArch))
      continue;
    bool ready = true;
    if (s.kind != StepKind::Add && s.kind != StepKind::Choice && s.kind != StepKind::Input)
      for (int in : s.inputs) ready = ready && state_.computed[in];
    if (s.kind == StepKind::ChoiceGradArch) ready = state_.computed[s.inputs[0]];
    if (!ready) continue;
    ++steps_run_;
    if (profiling_ || step_timing_) {
      auto t0 = std::chrono::steady_clock::now();
      bool wrote = backend_->run(i, state_);
      backend_->synchronize();
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (step_timing_) step_seconds_[i] = seconds;
      if (wrote) state_.computed[s.node] = 1;
      if (forward_only_ && s.kind == StepKind::CrossEntropy) break;
      if (!profiling_) continue;
      // Gradient steps are told apart by their forward op (conv_grad_input of a dwconv
      // vs a conv), dilated convolutions by a suffix: they take different kernels.
      std::string key = s.op == s.fwd_op ? s.op : s.op + " (" + s.fwd_op + ")";
      if (s.int_attr_or("dilation", 1) > 1) key += " dilated";
      OpTime& t = profile_[key];
      t.seconds += seconds;
      ++t.calls;
      continue;
    }
    if (backend_->run(i, state_)) state_.computed[s.node] = 1;
    if (forward_only_ && s.kind == StepKind::CrossEntropy) break;
  }
  backend_->synchronize();

  if (plan_.training && full_ && arch_grads_ && !forward_only_)
    for (size_t g = 0; g < plan_.arch.size(); ++g) {
      // d(loss)/d(alpha) = softmax backward of d(loss)/d(weights).
      const std::vector<float>& w = state_.choice_weights[g];
      std::vector<float> dw(w.size()), da(w.size());
      for (size_t c = 0; c < w.size(); ++c)
        dw[c] = static_cast<float>(state_.choice_weight_grads[g][c]);
      plain::softmax_backward(static_cast<int64_t>(w.size()), w.data(), dw.data(), da.data());
      StoredArch& a = store_.arch()[arch_index_[g]];
      for (size_t c = 0; c < w.size(); ++c) a.alpha_grad[c] += da[c];
    }
  RunResult r;
  r.loss_sum = state_.loss_sum;
  r.correct = state_.correct;
  r.samples = samples;
  return r;
}

}  // namespace nas
